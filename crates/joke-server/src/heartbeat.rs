//! The heartbeat: a task that is due every millisecond and records how late it ran.
//!
//! Slow polls (see [`crate::SLOW_POLL`]) show a task that *held* a worker thread. They cannot
//! say whether anybody waited meanwhile: on the multi-thread runtime the other workers steal
//! the queued tasks of a blocked one, and `block_in_place` hands them away on purpose. The
//! heartbeat is the other side: an ordinary task, asleep between ticks like any connection
//! waiting for its socket, whose lateness is the delay every task of the runtime suffers.
//!
//! **Measured against the schedule.** Tick `n` is due at `start + n × PERIOD`. When the task
//! finally runs, *every* tick that fell due since its last run is recorded, each with its own
//! lateness: a 20 ms stall records about twenty samples, from 20 ms down to 1 ms, as twenty
//! tasks due in that time would have suffered. A loop that slept one period and measured the
//! oversleep since its last wake-up would record one late sample per stall, and a thousand
//! on-time ones per idle second: the stall would vanish from its percentiles. That mistake has
//! a name, *coordinated omission*: the measuring loop stops measuring exactly while the system
//! is stuck.
//!
//! **Only while serving.** Ticks are recorded only while the server has a connection open
//! (or had one at the heartbeat's previous run, so the end of a stall is not lost).
//! `bench-client compare` runs the acts one after the other, so each server is idle most of
//! the time; counting idle ticks would make an act's percentiles depend on how many other
//! acts shared the run. The statistics therefore cover every round at once, served time only,
//! and the maximum, which nothing dilutes.
//!
//! The resolution is the timer's: Tokio's timer wheel rounds a deadline up to its next
//! millisecond, so an idle runtime already shows up to a millisecond of lateness.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the heartbeat is due.
// ANCHOR: period
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(1);
// ANCHOR_END: period

/// The lateness of every recorded tick, in microseconds.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    lateness_us: Mutex<Histogram<u64>>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        // From 1 µs to an hour, three significant digits.
        let histogram =
            Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("the bounds are valid");
        Heartbeat {
            lateness_us: Mutex::new(histogram),
        }
    }
}

/// The heartbeat's numbers at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HeartbeatSummary {
    pub(crate) ticks: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) max_us: u64,
}

impl Heartbeat {
    /// Beats until `stopping` is cancelled, recording ticks while `connections` has a task.
    // ANCHOR: beat
    pub(crate) async fn beat(&self, connections: TaskTracker, stopping: CancellationToken) {
        let start = Instant::now();
        let mut next: u32 = 1;
        let mut was_serving = false;
        loop {
            let due = start + HEARTBEAT_PERIOD * next;
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep_until(due) => {}
            }
            let now = Instant::now();
            let serving = !connections.is_empty();
            let record = serving || was_serving;
            was_serving = serving;
            let mut lateness = self.lock();
            // Every tick due by now ran now: record each one's own lateness.
            while start + HEARTBEAT_PERIOD * next <= now {
                if record {
                    let late = now - (start + HEARTBEAT_PERIOD * next);
                    lateness.saturating_record(late.as_micros().max(1) as u64);
                }
                next += 1;
            }
        }
    }
    // ANCHOR_END: beat

    pub(crate) fn summary(&self) -> HeartbeatSummary {
        let lateness = self.lock();
        if lateness.is_empty() {
            return HeartbeatSummary::default();
        }
        HeartbeatSummary {
            ticks: lateness.len(),
            p50_us: lateness.value_at_quantile(0.50),
            p99_us: lateness.value_at_quantile(0.99),
            max_us: lateness.max(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.lateness_us.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stall of the heartbeat's own thread is recorded tick by tick: a 30 ms block makes
    /// the maximum at least 25 ms, and many ticks late, not one. (A lower bound only.)
    #[test]
    fn a_stall_is_recorded_for_every_tick_it_delayed() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let heartbeat = std::sync::Arc::new(Heartbeat::default());
        let summary = runtime.block_on(async {
            let connections = TaskTracker::new();
            // One open "connection", so every tick counts.
            let open = connections.spawn(std::future::pending::<()>());
            let stopping = CancellationToken::new();
            let beating = tokio::spawn({
                let (heartbeat, stopping) = (heartbeat.clone(), stopping.clone());
                async move { heartbeat.beat(connections, stopping).await }
            });
            tokio::time::sleep(Duration::from_millis(5)).await;
            // Blocks the only thread of this runtime: the heartbeat cannot run.
            std::thread::sleep(Duration::from_millis(30));
            tokio::time::sleep(Duration::from_millis(5)).await;
            stopping.cancel();
            beating.await.unwrap();
            open.abort();
            heartbeat.summary()
        });
        assert!(summary.max_us >= 25_000, "{summary:?}");
        let late_ticks = {
            let lateness = heartbeat.lock();
            lateness.count_between(10_000, u64::MAX)
        };
        assert!(
            late_ticks >= 10,
            "{late_ticks} ticks over 10 ms: {summary:?}"
        );
    }

    #[test]
    fn idle_ticks_are_not_recorded() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let heartbeat = Heartbeat::default();
        runtime.block_on(async {
            let stopping = CancellationToken::new();
            let stop = stopping.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                stop.cancel();
            });
            heartbeat.beat(TaskTracker::new(), stopping).await;
        });
        assert_eq!(heartbeat.summary().ticks, 0);
    }
}
