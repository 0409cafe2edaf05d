//! An act's real binary, run as a child process: started on a free port, stopped with SIGTERM,
//! or run to its exit when it is expected to refuse to start.
//!
//! This is a blocking face on [`joke_server::supervisor`], the one supervisor of server
//! processes that `bench-client compare` uses too: tests are plain `#[test]` functions, so each
//! [`RunningBinary`] carries a small runtime of its own, whose one worker thread keeps reading
//! the child's output while the test does something else.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::time::Duration;

use joke_server::StatsSummary;
use joke_server::supervisor::{Launch, Stopped, Supervised};
use joke_server::wire::WireError;
use rustix::process::Signal;
use tokio::runtime::Runtime;

/// How long a binary may take to say `listening on`, or to exit once asked to.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// How many stderr lines a test keeps: every line, for any server a test runs (they log a few
/// dozen at the `info` level), and still a bound should one go wild.
const STDERR_LINES: usize = 100_000;

/// How a child process ended, and everything it printed.
#[derive(Debug)]
pub struct Exited {
    /// The exit code; `None` when a signal killed it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Exited {
    /// The statistics line the server printed on stdout at its exit.
    pub fn statistics(&self) -> Result<StatsSummary, WireError> {
        joke_server::wire::parse_stats_output(&self.stdout)
    }
}

impl From<Stopped> for Exited {
    fn from(stopped: Stopped) -> Self {
        Exited {
            code: stopped.code(),
            stdout: stopped.stdout,
            stderr: stopped.stderr,
        }
    }
}

/// An act's binary, running, with the address it said it listens on.
///
/// Dropping it without [`terminate`](Self::terminate) (a failing test) kills the process.
#[derive(Debug)]
pub struct RunningBinary {
    /// Always `Some` until `terminate` or `drop` takes it; it must go before the runtime.
    server: Option<Supervised>,
    runtime: Runtime,
}

/// The launch of `binary` with `args`, with the test's limits.
fn launch(binary: &str, args: &[&OsStr]) -> Launch {
    Launch::new(binary)
        .args(args)
        .ready_timeout(PROCESS_TIMEOUT)
        .stop_timeout(PROCESS_TIMEOUT)
        .stderr_lines(STDERR_LINES)
}

/// A runtime with one worker thread: it keeps draining the child's pipes while the test runs
/// its own clients on a runtime of theirs.
fn supervisor_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("supervisor")
        .enable_all()
        .build()
        .expect("building the supervisor's runtime")
}

impl RunningBinary {
    /// Starts `binary` with `args` (which should include `--addr 127.0.0.1:0`) and waits for
    /// its `listening on ADDR` line on stderr.
    ///
    /// # Panics
    /// When the binary exits, or says nothing of the kind within [`PROCESS_TIMEOUT`].
    pub fn start(binary: &str, args: &[&OsStr]) -> Self {
        let runtime = supervisor_runtime();
        let server = runtime
            .block_on(launch(binary, args).start())
            .unwrap_or_else(|error| panic!("{error}"));
        RunningBinary {
            server: Some(server),
            runtime,
        }
    }

    /// [`start`](Self::start), with `env` added to the process's environment (such as
    /// `RUST_LOG=debug`).
    pub fn start_with_env(binary: &str, args: &[&OsStr], env: &[(&str, &str)]) -> Self {
        let runtime = supervisor_runtime();
        let launch = env
            .iter()
            .fold(launch(binary, args), |launch, (key, value)| {
                launch.env(key, value)
            });
        let server = runtime
            .block_on(launch.start())
            .unwrap_or_else(|error| panic!("{error}"));
        RunningBinary {
            server: Some(server),
            runtime,
        }
    }

    fn server(&self) -> &Supervised {
        self.server.as_ref().expect("running until terminated")
    }

    /// Waits (up to [`PROCESS_TIMEOUT`]) for a line on stderr containing `needle`, and returns
    /// it. Lines before it are passed over.
    ///
    /// # Panics
    /// When no such line comes in time, or the process closes its stderr first.
    pub fn wait_for_stderr(&mut self, needle: &str) -> String {
        let server = self.server.as_mut().expect("running until terminated");
        self.runtime
            .block_on(server.wait_for_stderr(needle, PROCESS_TIMEOUT))
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// The stderr lines printed so far, the start-up lines before `listening on` included.
    pub fn stderr_so_far(&self) -> String {
        self.server().stderr_tail()
    }

    /// Sends `signal` (such as `Signal::HUP`) to the process.
    pub fn signal(&self, signal: Signal) {
        self.server()
            .signal(signal)
            .unwrap_or_else(|error| panic!("kill -{signal:?} {}: {error}", self.server().name()));
    }

    /// The address the binary listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server().addr()
    }

    /// Waits for the process to exit by itself (after a [`signal`](Self::signal), say).
    ///
    /// # Panics
    /// When it is still running after [`PROCESS_TIMEOUT`] (it is killed).
    pub fn wait_for_exit(mut self) -> Exited {
        let server = self.server.take().expect("wait_for_exit is called once");
        let name = server.name().to_owned();
        match self
            .runtime
            .block_on(async { tokio::time::timeout(PROCESS_TIMEOUT, server.wait()).await })
        {
            Ok(stopped) => stopped.into(),
            Err(_) => panic!("{name} still running {PROCESS_TIMEOUT:?} later"),
        }
    }

    /// Sends SIGTERM and waits for the exit.
    ///
    /// # Panics
    /// When the process is still running [`PROCESS_TIMEOUT`] after SIGTERM (it is killed).
    pub fn terminate(mut self) -> Exited {
        let server = self.server.take().expect("terminate is called once");
        let name = server.name().to_owned();
        let stopped = self.runtime.block_on(server.stop());
        if !stopped.problems.is_empty() {
            panic!(
                "{name} after SIGTERM: {}; its stderr:\n{}",
                stopped.problems.join("; "),
                stopped.stderr
            );
        }
        stopped.into()
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        // Inside the runtime, so that the child's handle can kill it and hand it over for
        // reaping as it drops.
        let _inside = self.runtime.enter();
        drop(self.server.take());
    }
}

/// Runs `binary` with `args` until it exits by itself (a start-up that must fail), killing it
/// if it is still running after [`PROCESS_TIMEOUT`].
///
/// # Panics
/// When it had to be killed, or could not be started.
pub fn run_to_exit(binary: &str, args: &[&OsStr]) -> Exited {
    supervisor_runtime()
        .block_on(launch(binary, args).run_to_exit(PROCESS_TIMEOUT))
        .unwrap_or_else(|error| panic!("{error}"))
        .into()
}
