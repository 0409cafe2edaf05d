//! Signals and the hard deadline of a shutdown, on plain threads outside the runtime.
//!
//! Tokio's own signal handling (`tokio::signal`) and its timers are driven by the runtime's
//! worker threads. When every worker is blocked (Act I on a slow disk, with as many clients as
//! workers), nothing drives them: SIGTERM is never seen, and a grace period measured with
//! `tokio::time` never runs out. And when the runtime is dropped, it waits for every running
//! `spawn_blocking` closure, however long its read takes. So what must work whatever the
//! runtime is doing lives here instead:
//!
//! - one thread receives SIGINT, SIGTERM, SIGHUP and SIGUSR1 (through `signal-hook`, whose
//!   handler only writes to a pipe that this thread reads);
//! - a shutdown request (the first SIGINT/SIGTERM, or the supervisor's death) starts a
//!   watchdog thread: if the process has not finished within the grace period and
//!   [`MARGIN`], the watchdog prints the statistics as they are and exits;
//! - the live statistics (SIGUSR1, `--stats-every`) are printed from these threads, so they
//!   come even while every worker is blocked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use joke_index::exit_code;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{Stats, StatsSummary};

/// How long past the grace period a shutdown may take before the watchdog ends the process.
/// The runtime's own path needs a little of it: the jokes cut off at the end of the grace
/// period get a second to reset their connections, and the runtime another to wind down.
pub const MARGIN: Duration = Duration::from_secs(3);

/// How long the runtime may take to wind down after the server has stopped. A blocking read
/// still running then (a disk that never answers) is abandoned, not waited for.
pub const RUNTIME_WIND_DOWN: Duration = Duration::from_secs(1);

/// The signals the server handles, installed at start-up.
pub(crate) fn install() -> std::io::Result<Signals> {
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
}

/// What the threads of this module share with `main`.
#[derive(Debug)]
pub(crate) struct Shutdown {
    name: &'static str,
    stats: Arc<Stats>,
    grace_period: Duration,
    /// Cancelled on the first request to stop; the server's `run` waits for it.
    pub(crate) requested: CancellationToken,
    /// Notified on SIGHUP; a task of the runtime reloads the jokes file.
    pub(crate) hangup: Notify,
    /// Set by whoever prints the final statistics: `main` at the end of a clean shutdown, or
    /// the watchdog when that did not come in time. Only the first prints.
    finished: AtomicBool,
}

impl Shutdown {
    pub(crate) fn new(name: &'static str, stats: Arc<Stats>, grace_period: Duration) -> Arc<Self> {
        Arc::new(Shutdown {
            name,
            stats,
            grace_period,
            requested: CancellationToken::new(),
            hangup: Notify::new(),
            finished: AtomicBool::new(false),
        })
    }

    /// Runs the signal thread.
    pub(crate) fn handle_signals(self: &Arc<Self>, mut signals: Signals) {
        let shutdown = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    match signal {
                        SIGINT => shutdown.request_by_signal("SIGINT received"),
                        SIGTERM => shutdown.request_by_signal("SIGTERM received"),
                        SIGHUP => {
                            tracing::info!("SIGHUP: reloading the jokes file");
                            shutdown.hangup.notify_one();
                        }
                        SIGUSR1 => shutdown.print_live(),
                        _ => {}
                    }
                }
            });
        if let Err(error) = spawned {
            // Without it no signal would be seen: refuse to run half-deaf.
            eprintln!(
                "{}: error: cannot start the signal thread: {error}",
                self.name
            );
            exit(exit_code::FAILURE);
        }
    }

    /// Logs the live statistics every `every`.
    pub(crate) fn print_every(self: &Arc<Self>, every: Duration) {
        let shutdown = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("stats-every".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    if shutdown.finished.load(Ordering::SeqCst) {
                        return;
                    }
                    shutdown.print_live();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!("cannot start the --stats-every thread: {error}");
        }
    }

    fn print_live(&self) {
        crate::log_queue::report_dropped();
        tracing::info!("{}", crate::wire::live_stats_line(&self.stats.summary()));
    }

    /// A signal's request to stop. The first is a graceful shutdown, as [`request`](Self::request);
    /// a second one while that shutdown still waits (for a blocked read, say) is someone who
    /// does not want to wait: the process prints its statistics as they are and exits at once.
    fn request_by_signal(self: &Arc<Self>, why: &str) {
        if !self.requested.is_cancelled() {
            return self.request(why);
        }
        if self.claim_the_end() {
            tracing::warn!("{why} again: stopping now, without waiting for the jokes in flight");
            self.print_final(&self.stats.summary());
            exit(exit_code::FAILURE);
        }
    }

    /// Asks the server to stop (the first time; later requests are only logged), and starts
    /// the watchdog that ends the process if the stop takes too long.
    pub(crate) fn request(self: &Arc<Self>, why: &str) {
        if self.requested.is_cancelled() {
            tracing::info!("{why}; already shutting down");
            return;
        }
        tracing::info!("{why}");
        self.requested.cancel();
        let shutdown = Arc::clone(self);
        let deadline = self.grace_period + MARGIN;
        let spawned = std::thread::Builder::new()
            .name("shutdown-watchdog".into())
            .spawn(move || {
                std::thread::sleep(deadline);
                if shutdown.claim_the_end() {
                    tracing::error!(
                        "shutdown not finished {deadline:?} after the signal (a read that never \
                         returns, or every worker thread blocked): exiting now"
                    );
                    shutdown.print_final(&shutdown.stats.summary());
                    exit(exit_code::FAILURE);
                }
            });
        if let Err(error) = spawned {
            tracing::warn!("cannot start the shutdown watchdog: {error}");
        }
    }

    /// Whether the caller is the first to end the process (and so prints the final line).
    fn claim_the_end(&self) -> bool {
        !self.finished.swap(true, Ordering::SeqCst)
    }

    /// At the end of a clean shutdown: prints the final statistics, unless the watchdog is
    /// already doing so, in which case this thread waits for it to end the process.
    pub(crate) fn finish(&self, summary: &StatsSummary) {
        if self.claim_the_end() {
            self.print_final(summary);
        } else {
            loop {
                std::thread::park();
            }
        }
    }

    fn print_final(&self, summary: &StatsSummary) {
        tracing::info!("{}: {summary}", self.name);
        // One JSON line on stdout: the statistics, for `bench-client compare` and other tools.
        // Not `println!`: it panics when stdout is gone (a reader that closed its pipe), and a
        // panic here, on the signal thread or the watchdog, would keep the process from exiting.
        // The line is lost then, and the log says so (if anyone still reads that).
        use std::io::Write;
        let line = crate::wire::stats_line(summary);
        if let Err(error) = writeln!(std::io::stdout().lock(), "{line}") {
            tracing::warn!("cannot print the statistics line on stdout: {error}");
        }
    }
}

/// Ends the process with `code`, once the log's queued lines are written out (within a bound:
/// see `log_queue.rs`). `std::process::exit` runs no destructors, so nothing else would.
fn exit(code: u8) -> ! {
    crate::log_queue::finish();
    std::process::exit(code.into());
}
