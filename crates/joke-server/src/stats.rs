//! What the server counts: jokes served, failures by kind, how long connection tasks held
//! a worker thread in one poll, and (the victims' side) how long tasks waited for one.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor, RuntimeMetrics};
use tokio_metrics::TaskMonitor;

use crate::heartbeat::Heartbeat;

/// A poll longer than this is "slow": the task held its thread that long without returning to
/// the scheduler. An async task should get from one `.await` to the next in some tens of
/// microseconds; a millisecond, ten times the most that is comfortable, means it did blocking
/// work (or heavy computing). A slow poll says the task held a thread; whether other tasks
/// waited meanwhile is what the heartbeat and the scheduling delay say.
// ANCHOR: slow_poll
pub const SLOW_POLL: Duration = Duration::from_millis(1);
// ANCHOR_END: slow_poll

/// Counters shared by every connection task of one server.
///
/// The poll statistics come from `tokio-metrics`: every connection task is wrapped by
/// [`TaskMonitor::instrument`], which times each poll and how long the task waited to be
/// polled. We add the single longest poll, which the monitor does not keep, the heartbeat
/// (see the `heartbeat` module) and the runtime's own busy time.
#[derive(Debug)]
pub struct Stats {
    monitor: TaskMonitor,
    pub(crate) heartbeat: Heartbeat,
    /// The runtime the server runs on (when it was made inside one) and when it started.
    runtime: Option<(RuntimeMetrics, RuntimeFlavor)>,
    started: Instant,
    served: AtomicU64,
    read_failures: AtomicU64,
    write_failures: AtomicU64,
    write_timeouts: AtomicU64,
    joke_timeouts: AtomicU64,
    per_address_refusals: AtomicU64,
    proxied: AtomicU64,
    health_checks: AtomicU64,
    proxy_header_refusals: AtomicU64,
    proxy_closed_early: AtomicU64,
    accept_errors: AtomicU64,
    longest_poll_ns: AtomicU64,
    udp: UdpCounters,
}

/// What the UDP answerer counts.
#[derive(Debug, Default)]
struct UdpCounters {
    received: AtomicU64,
    bytes_in: AtomicU64,
    replies: AtomicU64,
    bytes_out: AtomicU64,
    per_source_limited: AtomicU64,
    global_limited: AtomicU64,
    sources_full: AtomicU64,
    too_long: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            monitor: TaskMonitor::with_slow_poll_threshold(SLOW_POLL),
            heartbeat: Heartbeat::default(),
            runtime: Handle::try_current()
                .ok()
                .map(|runtime| (runtime.metrics(), runtime.runtime_flavor())),
            started: Instant::now(),
            served: AtomicU64::new(0),
            read_failures: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            write_timeouts: AtomicU64::new(0),
            joke_timeouts: AtomicU64::new(0),
            per_address_refusals: AtomicU64::new(0),
            proxied: AtomicU64::new(0),
            health_checks: AtomicU64::new(0),
            proxy_header_refusals: AtomicU64::new(0),
            proxy_closed_early: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            longest_poll_ns: AtomicU64::new(0),
            udp: UdpCounters::default(),
        }
    }
}

/// The counters at one moment, as printed at shutdown (one line on stderr, one JSON object on
/// stdout for tools such as `bench-client compare`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StatsSummary {
    /// Connections that received a whole joke.
    pub served: u64,
    /// Connections closed without a joke because the file could not be read.
    pub read_failures: u64,
    /// Connections whose client went away (or reset) while the joke was being written.
    pub write_failures: u64,
    /// Connections whose client accepted no byte of its joke for `--write-timeout` (the
    /// kernel's TCP_USER_TIMEOUT); ended with a reset.
    pub write_timeouts: u64,
    /// Connections whose joke was not ready within `--joke-timeout` (a slow disk, a reload, a
    /// busy blocking pool), not counting time spent waiting for the client; ended with a reset.
    pub joke_timeouts: u64,
    /// Connections reset unserved because their address already had `--max-per-address`
    /// connections open.
    pub per_address_refusals: u64,
    /// Connections whose PROXY header (`--proxy-protocol`) named a client.
    pub proxied: u64,
    /// Connections whose PROXY header was LOCAL (v2) or UNKNOWN (v1): the balancer's health
    /// checks, closed without a joke and counted neither as clients nor as failures.
    pub health_checks: u64,
    /// Connections closed unserved: no valid PROXY header within `--proxy-header-timeout`.
    pub proxy_header_refusals: u64,
    /// Connections that closed before sending a whole PROXY header (checks that connect and go).
    pub proxy_closed_early: u64,
    /// Failed `accept` calls (for example when the process ran out of file descriptors).
    pub accept_errors: u64,
    /// Polls of connection tasks.
    pub polls: u64,
    /// Polls that took longer than `slow_poll_threshold_us`.
    pub slow_polls: u64,
    /// The threshold for a slow poll, in microseconds.
    pub slow_poll_threshold_us: u64,
    /// The longest single poll of a connection task, in microseconds.
    pub longest_poll_us: u64,
    /// Mean duration of a poll, in microseconds.
    pub mean_poll_us: f64,
    /// The runtime: `multi-thread` or `current-thread` (`--flavor`).
    pub runtime_flavor: String,
    /// Its worker threads (1 on a current-thread runtime).
    pub workers: u64,
    /// The victims' view: mean time from a connection task being woken to being polled, in
    /// microseconds (`tokio-metrics`' mean scheduled duration).
    pub mean_scheduled_us: f64,
    /// Mean time from a connection task being spawned to its first poll, in microseconds.
    pub mean_first_poll_delay_us: f64,
    /// Heartbeat ticks recorded (one per millisecond while a connection was open).
    pub heartbeat_ticks: u64,
    /// Median lateness of a heartbeat tick against its schedule, in microseconds.
    pub heartbeat_p50_us: u64,
    /// 99th percentile of that lateness, in microseconds.
    pub heartbeat_p99_us: u64,
    /// The latest tick, in microseconds late.
    pub heartbeat_max_us: u64,
    /// The workers' busy time summed, divided by workers × the server's running time (0 to 1).
    pub worker_busy_ratio: f64,
    /// UDP datagrams received (`--udp`).
    pub udp_received: u64,
    /// Their bytes.
    pub udp_bytes_in: u64,
    /// UDP datagrams answered with a joke (also counted in `served`).
    pub udp_replies: u64,
    /// Their bytes: `udp_bytes_out / udp_bytes_in` is the amplification a forger could buy.
    pub udp_bytes_out: u64,
    /// Datagrams not answered: their source had used up its `--udp-rate`/`--udp-burst`.
    pub udp_per_source_limited: u64,
    /// Datagrams not answered: all sources together had used up `--udp-global-rate`.
    pub udp_global_limited: u64,
    /// Datagrams not answered: the table of sources was full of sources seen a moment ago.
    pub udp_sources_full: u64,
    /// Datagrams not answered: the joke picked was longer than 512 bytes once served.
    pub udp_too_long: u64,
}

impl Stats {
    pub(crate) fn served(&self) {
        self.served.fetch_add(1, Relaxed);
    }
    pub(crate) fn read_failed(&self) {
        self.read_failures.fetch_add(1, Relaxed);
    }
    pub(crate) fn write_failed(&self) {
        self.write_failures.fetch_add(1, Relaxed);
    }
    pub(crate) fn write_timed_out(&self) {
        self.write_timeouts.fetch_add(1, Relaxed);
    }
    pub(crate) fn joke_timed_out(&self) {
        self.joke_timeouts.fetch_add(1, Relaxed);
    }
    pub(crate) fn proxied(&self) {
        self.proxied.fetch_add(1, Relaxed);
    }
    pub(crate) fn health_check(&self) {
        self.health_checks.fetch_add(1, Relaxed);
    }
    pub(crate) fn proxy_header_refused(&self) {
        self.proxy_header_refusals.fetch_add(1, Relaxed);
    }
    pub(crate) fn proxy_closed_early(&self) {
        self.proxy_closed_early.fetch_add(1, Relaxed);
    }
    pub(crate) fn per_address_refused(&self) {
        self.per_address_refusals.fetch_add(1, Relaxed);
    }
    pub(crate) fn udp_received(&self, bytes: usize) {
        self.udp.received.fetch_add(1, Relaxed);
        self.udp.bytes_in.fetch_add(bytes as u64, Relaxed);
    }
    pub(crate) fn udp_replied(&self, bytes: usize) {
        self.udp.replies.fetch_add(1, Relaxed);
        self.udp.bytes_out.fetch_add(bytes as u64, Relaxed);
    }
    pub(crate) fn udp_refused(&self, why: crate::udp::Refusal) {
        use crate::udp::Refusal;
        let counter = match why {
            Refusal::PerSource => &self.udp.per_source_limited,
            Refusal::Global => &self.udp.global_limited,
            Refusal::SourcesFull => &self.udp.sources_full,
        };
        counter.fetch_add(1, Relaxed);
    }
    pub(crate) fn udp_too_long(&self) {
        self.udp.too_long.fetch_add(1, Relaxed);
    }
    pub(crate) fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }

    /// Wraps a connection task so that each of its polls is timed.
    pub(crate) fn instrument<F: Future>(&self, task: F) -> tokio_metrics::Instrumented<F> {
        self.monitor.instrument(task)
    }

    /// Wraps a future so that its longest poll is recorded.
    // ANCHOR: time_polls
    pub(crate) async fn time_polls<F: Future>(&self, task: F) -> F::Output {
        let mut task = std::pin::pin!(task);
        std::future::poll_fn(|cx| {
            let started = Instant::now();
            let result = task.as_mut().poll(cx);
            let took = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
            self.longest_poll_ns.fetch_max(took, Relaxed);
            result
        })
        .await
    }
    // ANCHOR_END: time_polls

    /// The counters now.
    pub fn summary(&self) -> StatsSummary {
        let metrics = self.monitor.cumulative();
        let heartbeat = self.heartbeat.summary();
        let (runtime_flavor, workers, worker_busy_ratio) = self.runtime_numbers();
        StatsSummary {
            served: self.served.load(Relaxed),
            read_failures: self.read_failures.load(Relaxed),
            write_failures: self.write_failures.load(Relaxed),
            write_timeouts: self.write_timeouts.load(Relaxed),
            joke_timeouts: self.joke_timeouts.load(Relaxed),
            per_address_refusals: self.per_address_refusals.load(Relaxed),
            proxied: self.proxied.load(Relaxed),
            health_checks: self.health_checks.load(Relaxed),
            proxy_header_refusals: self.proxy_header_refusals.load(Relaxed),
            proxy_closed_early: self.proxy_closed_early.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            polls: metrics.total_poll_count,
            slow_polls: metrics.total_slow_poll_count,
            slow_poll_threshold_us: SLOW_POLL.as_micros() as u64,
            longest_poll_us: self.longest_poll_ns.load(Relaxed) / 1_000,
            mean_poll_us: metrics.mean_poll_duration().as_secs_f64() * 1e6,
            runtime_flavor,
            workers,
            mean_scheduled_us: metrics.mean_scheduled_duration().as_secs_f64() * 1e6,
            mean_first_poll_delay_us: metrics.mean_first_poll_delay().as_secs_f64() * 1e6,
            heartbeat_ticks: heartbeat.ticks,
            heartbeat_p50_us: heartbeat.p50_us,
            heartbeat_p99_us: heartbeat.p99_us,
            heartbeat_max_us: heartbeat.max_us,
            worker_busy_ratio,
            udp_received: self.udp.received.load(Relaxed),
            udp_bytes_in: self.udp.bytes_in.load(Relaxed),
            udp_replies: self.udp.replies.load(Relaxed),
            udp_bytes_out: self.udp.bytes_out.load(Relaxed),
            udp_per_source_limited: self.udp.per_source_limited.load(Relaxed),
            udp_global_limited: self.udp.global_limited.load(Relaxed),
            udp_sources_full: self.udp.sources_full.load(Relaxed),
            udp_too_long: self.udp.too_long.load(Relaxed),
        }
    }

    /// The runtime's flavour, its workers, and how busy they were since the server was made:
    /// `worker_total_busy_duration` (stable) summed over the workers, over workers × elapsed.
    // ANCHOR: busy_ratio
    fn runtime_numbers(&self) -> (String, u64, f64) {
        let Some((runtime, flavor)) = &self.runtime else {
            return (String::new(), 0, 0.0);
        };
        let flavor = match flavor {
            RuntimeFlavor::CurrentThread => "current-thread",
            RuntimeFlavor::MultiThread => "multi-thread",
            _ => "other",
        };
        let workers = runtime.num_workers();
        let busy: Duration = (0..workers)
            .map(|worker| runtime.worker_total_busy_duration(worker))
            .sum();
        let available = self.started.elapsed().as_secs_f64() * workers as f64;
        let ratio = if available > 0.0 {
            (busy.as_secs_f64() / available).min(1.0)
        } else {
            0.0
        };
        (flavor.to_owned(), workers as u64, ratio)
    }
    // ANCHOR_END: busy_ratio
}

/// `1 joke`, `2 jokes`: the count with its noun, in the right number.
pub(crate) fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

impl std::fmt::Display for StatsSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "served {}; failed: {} reads, {} writes, {} write timeouts, {} joke timeouts, \
             {} accepts; {} refused per address; \
             {} of {} polls slower than {} µs (longest {} µs, mean {:.1} µs); \
             waiting: heartbeat late p50 {} µs, p99 {} µs, max {} µs; woken to polled {:.1} µs, \
             spawned to polled {:.1} µs; {} {} workers {:.0}% busy",
            plural(self.served, "joke"),
            self.read_failures,
            self.write_failures,
            self.write_timeouts,
            self.joke_timeouts,
            self.accept_errors,
            self.per_address_refusals,
            self.slow_polls,
            self.polls,
            self.slow_poll_threshold_us,
            self.longest_poll_us,
            self.mean_poll_us,
            self.heartbeat_p50_us,
            self.heartbeat_p99_us,
            self.heartbeat_max_us,
            self.mean_scheduled_us,
            self.mean_first_poll_delay_us,
            self.workers,
            self.runtime_flavor,
            self.worker_busy_ratio * 100.0,
        )?;
        if self.proxied + self.health_checks + self.proxy_header_refusals + self.proxy_closed_early
            > 0
        {
            write!(
                f,
                "; proxy: {} clients, {} health checks, {} bad headers, {} closed before one",
                self.proxied,
                self.health_checks,
                self.proxy_header_refusals,
                self.proxy_closed_early,
            )?;
        }
        if self.udp_received > 0 {
            write!(
                f,
                "; udp: {} datagrams in ({} bytes), {} answered ({} bytes), not answered: {} \
                 over a source's rate, {} over the global rate, {} with the sources table \
                 full, {} too long",
                self.udp_received,
                self.udp_bytes_in,
                self.udp_replies,
                self.udp_bytes_out,
                self.udp_per_source_limited,
                self.udp_global_limited,
                self.udp_sources_full,
                self.udp_too_long,
            )?;
        }
        Ok(())
    }
}
