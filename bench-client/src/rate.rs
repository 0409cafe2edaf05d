//! The rate mode: connections started on a schedule (an *open* loop), whatever became of the
//! earlier ones.
//!
//! The burst mode waits for a round to end before it starts the next. Such a *closed* loop
//! measures politely: when the server falls behind, the client slows down with it, and the
//! connections it would have started in the meantime are never timed at all (coordinated
//! omission). A user does not wait for the previous user. Here connection `i` is due at
//! `t0 + i / rate`, and two durations are kept for it:
//!
//! - its **response time**, from the moment it was *due* to the end of its joke: what someone
//!   who arrived at that moment saw, queueing included;
//! - its **service time**, from its actual connect to the end of its joke: what a closed-loop
//!   client would have reported.
//!
//! They differ by the client's own **lateness** in starting the connection. On a quiet client
//! that is the timer's grain (Tokio's timer ticks once a millisecond, so connections due within
//! one tick start together). It grows when connections must wait for one of the `--max-open`
//! slots, which is the bound, not the server, limiting the run (reported as an error), or when
//! the client has no CPU left to start them on time (reported too: its numbers are then not
//! the server's).
//!
//! Every connection is the burst mode's own ([`load::one_connection`]): same deadlines, same
//! verification of the joke.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::load::{ConnOutcome, ErrorKind, Failure, LoadPlan, one_connection};
use crate::stats::{DurationTally, ErrorCounts, Percentiles, Tally};

/// Above this many connections a second no client on one machine keeps a schedule (each is a
/// handshake, a read and a close); refusing it at start-up is kinder than a run of lateness.
const HIGHEST_RATE: f64 = 1_000_000.0;

/// A connection that starts more than this late (at the 99th percentile) means the client did
/// not keep its schedule. Tokio's timer has a 1 ms grain, and a busy scheduler adds a little.
pub(crate) const LATENESS_TOLERANCE: Duration = Duration::from_millis(5);

/// Connections to start per second (`--rate 2000/s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    per_second: f64,
}

impl Rate {
    /// Connections per second.
    pub(crate) fn per_second(self) -> f64 {
        self.per_second
    }

    /// The rate of `per_second` connections a second, if it is a usable one.
    pub(crate) fn new(per_second: f64) -> Result<Rate, String> {
        if !per_second.is_finite() {
            return Err("the rate must be a finite number".into());
        }
        if per_second <= 0.0 {
            return Err("the rate must be more than zero connections per unit of time".into());
        }
        if per_second > HIGHEST_RATE {
            return Err(format!(
                "{per_second} connections a second is more than any client on one machine can \
                 start on time (at most {HIGHEST_RATE})"
            ));
        }
        Ok(Rate { per_second })
    }

    /// The gap between two connections due one after the other.
    fn interval(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }
}

impl FromStr for Rate {
    type Err = String;

    /// `2000/s`, `120/min`, `2/ms`, or a bare `2000` (per second).
    fn from_str(text: &str) -> Result<Rate, String> {
        let usage = || {
            format!(
                "a rate is a number of connections per second, minute or millisecond, such as \
                 2000/s, 120/min or 2/ms (or a bare 2000, per second), not {text:?}"
            )
        };
        let (number, unit) = match text.trim().split_once('/') {
            Some((number, unit)) => (number.trim(), unit.trim()),
            None => (text.trim(), "s"),
        };
        let per_unit: f64 = number.parse().map_err(|_| usage())?;
        let units_per_second = match unit {
            "s" | "sec" | "second" => 1.0,
            "min" | "minute" => 1.0 / 60.0,
            "ms" => 1000.0,
            _ => return Err(usage()),
        };
        Rate::new(per_unit * units_per_second)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&per_second_text(self.per_second))
    }
}

/// A rate as people write it: whole rates without decimals (`2000/s`), others with as many as
/// they need (`0.5/s`).
pub(crate) fn per_second_text(per_second: f64) -> String {
    if per_second.fract() == 0.0 {
        format!("{per_second:.0}/s")
    } else {
        format!("{per_second}/s")
    }
}

/// What limits the number of connections open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OpenBound {
    /// `--max-open`, as asked.
    MaxOpen,
    /// The process's open-files limit, lower than `--max-open` and not raisable.
    OpenFiles,
}

impl OpenBound {
    fn describe(self, max_open: usize) -> String {
        match self {
            OpenBound::MaxOpen => format!("--max-open {max_open}"),
            OpenBound::OpenFiles => format!(
                "the open-files limit (room for {max_open} connections; raise it with ulimit -n)"
            ),
        }
    }
}

/// One run at a constant rate.
#[derive(Debug, Clone)]
pub(crate) struct RatePlan {
    /// Where to connect and how each connection is checked (`conns` is not used).
    pub(crate) connection: Arc<LoadPlan>,
    pub(crate) rate: Rate,
    /// How long the measured part of the schedule lasts.
    pub(crate) duration: Duration,
    /// How long the schedule runs before it, its connections made but not counted: the
    /// server's and the client's threads, buffers and caches warm up there.
    pub(crate) warmup: Duration,
    /// Connections open at once, at most.
    pub(crate) max_open: usize,
    /// Where `max_open` comes from.
    pub(crate) bound: OpenBound,
}

impl RatePlan {
    /// Connections due during the warm-up, and during the measured part.
    fn counts(&self) -> (u64, u64) {
        let per_second = self.rate.per_second();
        let warmup = (self.warmup.as_secs_f64() * per_second).ceil() as u64;
        let measured = ((self.duration.as_secs_f64() * per_second).round() as u64).max(1);
        (warmup, measured)
    }
}

/// What happened to one connection of the schedule.
#[derive(Debug)]
struct Scheduled {
    /// Counted (false during the warm-up).
    measured: bool,
    /// From the moment it was due to the moment it started connecting.
    lateness: Duration,
    /// Whether it had to wait for a free slot (the `--max-open` bound).
    waited_for_slot: bool,
    /// When it ended, from the start of the measured part.
    ended: Duration,
    outcome: ConnOutcome,
}

// ANCHOR: schedule
/// Runs the schedule of `plan` and gathers its report.
///
/// This function is the scheduler, one loop that sleeps until the next connection is due and
/// spawns it as a task of its own: a slow connection never delays the next one. A slot (a
/// semaphore permit) is taken before each spawn and given back when the connection ends, so no
/// more than `max_open` are ever open. When every slot is taken the next connection *waits* for
/// one, late, and its lateness counts in its response time, as it would for a user; the run is
/// then reported as limited by the bound.
pub(crate) async fn run_rate(plan: &RatePlan, progress: &ProgressBar) -> RateReport {
    let (warmup_count, measured_count) = plan.counts();
    let interval = plan.rate.interval();
    let slots = Arc::new(Semaphore::new(plan.max_open));
    let t0 = Instant::now();
    let measured_from = t0 + interval.mul_f64(warmup_count as f64);
    // A schedule held back by the bound could run on for as long as the server takes; it is
    // cut off one `--timeout` after its last connection was due.
    let give_up = measured_from + plan.duration + plan.connection.timeout;
    let mut tally = RateTally::default();
    let mut connections = JoinSet::new();
    let mut not_started = 0;

    for i in 0..warmup_count + measured_count {
        let due = t0 + interval.mul_f64(i as f64);
        // A connection due now or earlier (several share each tick of the timer) starts at
        // once, without a trip through the timer.
        if due > Instant::now() {
            sleep_until(due).await;
        }
        let (slot, waited_for_slot) = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => (slot, false),
            Err(_) => {
                match tokio::time::timeout_at(give_up, Arc::clone(&slots).acquire_owned()).await {
                    Ok(Ok(slot)) => (slot, true),
                    // Out of time (or, never, a closed semaphore): the rest of the schedule is
                    // counted as not started.
                    _ => {
                        not_started = (warmup_count + measured_count - i).min(measured_count);
                        tally.waited_for_slot += 1;
                        break;
                    }
                }
            }
        };
        let measured = i >= warmup_count;
        let connection = Arc::clone(&plan.connection);
        let progress = progress.clone();
        connections.spawn(async move {
            let started = Instant::now();
            let outcome = one_connection(&connection).await;
            drop(slot);
            progress.inc(1);
            Scheduled {
                measured,
                lateness: started.saturating_duration_since(due),
                waited_for_slot,
                ended: Instant::now().saturating_duration_since(measured_from),
                outcome,
            }
        });
        // Gather what has finished as we go, so results do not pile up in the set.
        while let Some(joined) = connections.try_join_next() {
            tally.add(joined);
        }
    }
    while let Some(joined) = connections.join_next().await {
        tally.add(joined);
    }
    tally.report(plan, measured_count, not_started)
}
// ANCHOR_END: schedule

/// The measured connections of one run, as they come in.
#[derive(Debug, Default)]
struct RateTally {
    /// Service times and everything the burst mode keeps (errors by kind, bytes, phases).
    service: Tally,
    /// Response times, from the moment each connection was due.
    response: DurationTally,
    /// How late each connection started.
    lateness: DurationTally,
    /// Connections (warm-up ones too) that had to wait for a slot.
    waited_for_slot: u64,
    warmup_connections: u64,
    /// When the last measured connection ended, from the start of the measured part.
    last_end: Duration,
}

impl RateTally {
    fn add(&mut self, joined: Result<Scheduled, tokio::task::JoinError>) {
        let scheduled = joined.unwrap_or_else(|panic| Scheduled {
            measured: true,
            lateness: Duration::ZERO,
            waited_for_slot: false,
            ended: Duration::ZERO,
            outcome: ConnOutcome {
                result: Err(Failure {
                    kind: ErrorKind::Other,
                    detail: format!("the connection's task failed: {panic}"),
                }),
                bytes_received: 0,
                bytes_sent: 0,
            },
        });
        self.waited_for_slot += u64::from(scheduled.waited_for_slot);
        if !scheduled.measured {
            self.warmup_connections += 1;
            return;
        }
        self.lateness.record(scheduled.lateness);
        self.last_end = self.last_end.max(scheduled.ended);
        if let Ok(timings) = &scheduled.outcome.result {
            self.response.record(scheduled.lateness + timings.total);
        }
        self.service.add(&scheduled.outcome);
    }

    fn report(self, plan: &RatePlan, scheduled: u64, not_started: u64) -> RateReport {
        let started = self.service.connections;
        let succeeded = self.service.latency.count();
        let per_second = |count: u64, over: Duration| {
            if over.is_zero() {
                0.0
            } else {
                count as f64 / over.as_secs_f64()
            }
        };
        let lateness = self.lateness.percentiles();
        let limited_by = (self.waited_for_slot > 0).then_some(plan.bound);
        RateReport {
            target_per_sec: plan.rate.per_second(),
            duration_ms: plan.duration.as_secs_f64() * 1e3,
            warmup_ms: plan.warmup.as_secs_f64() * 1e3,
            max_open: plan.max_open,
            max_open_set_by: plan.bound,
            scheduled,
            started,
            not_started,
            warmup_connections: self.warmup_connections,
            succeeded,
            failed: self.service.errors.total(),
            errors: self.service.errors,
            error_examples: self
                .service
                .error_examples
                .iter()
                .map(|(kind, detail)| (kind.name().to_owned(), detail.clone()))
                .collect(),
            achieved_per_sec: per_second(succeeded, self.last_end.max(plan.duration)),
            response_ms: self.response.percentiles(),
            service_ms: self.service.latency.percentiles(),
            connect_ms: self.service.connect.percentiles(),
            lateness_ms: lateness,
            lateness_tolerance_ms: LATENESS_TOLERANCE.as_secs_f64() * 1e3,
            schedule_kept: lateness
                .is_some_and(|l| l.p99 <= LATENESS_TOLERANCE.as_secs_f64() * 1e3),
            waited_for_slot: self.waited_for_slot,
            limited_by,
            bytes_received: self.service.bytes_received,
            bytes_sent: self.service.bytes_sent,
        }
    }
}

/// The result of one run at a constant rate, as printed and serialised (the keys are
/// documented in `bench-client/README.md`; change them only together with it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RateReport {
    pub(crate) target_per_sec: f64,
    pub(crate) duration_ms: f64,
    pub(crate) warmup_ms: f64,
    pub(crate) max_open: usize,
    pub(crate) max_open_set_by: OpenBound,
    /// Connections due in the measured part of the schedule.
    pub(crate) scheduled: u64,
    /// Of those, started (the others were cut off waiting for a slot).
    pub(crate) started: u64,
    pub(crate) not_started: u64,
    /// Connections of the warm-up, made and not counted.
    pub(crate) warmup_connections: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) errors: ErrorCounts,
    pub(crate) error_examples: std::collections::BTreeMap<String, String>,
    /// Jokes received whole per second, from the start of the measured part to the end of its
    /// last connection (or its planned duration, if longer).
    pub(crate) achieved_per_sec: f64,
    pub(crate) response_ms: Option<Percentiles>,
    pub(crate) service_ms: Option<Percentiles>,
    pub(crate) connect_ms: Option<Percentiles>,
    pub(crate) lateness_ms: Option<Percentiles>,
    pub(crate) lateness_tolerance_ms: f64,
    /// Whether the client started its connections on time (p99 lateness within the tolerance).
    pub(crate) schedule_kept: bool,
    pub(crate) waited_for_slot: u64,
    /// What held connections back, when something did.
    pub(crate) limited_by: Option<OpenBound>,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
}

impl RateReport {
    /// True when every connection of the schedule started, succeeded and verified, and no
    /// bound held any back.
    pub(crate) fn all_succeeded(&self) -> bool {
        self.succeeded > 0
            && self.failed == 0
            && self.not_started == 0
            && self.succeeded == self.scheduled
            && self.limited_by.is_none()
    }

    /// The error to print when the bound, not the server, limited the run.
    pub(crate) fn limit_message(&self) -> Option<String> {
        let bound = self.limited_by?;
        let cut = if self.not_started > 0 {
            format!(
                "; {} of the schedule's connections never started",
                self.not_started
            )
        } else {
            String::new()
        };
        Some(format!(
            "{} connections waited for a free slot: {} was reached, so the client, not the \
             server, limited this run{cut}. Their waits count in the response times. Raise the \
             bound or lower --rate.",
            self.waited_for_slot,
            self.limited_by_text(bound)
        ))
    }

    fn limited_by_text(&self, bound: OpenBound) -> String {
        bound.describe(self.max_open)
    }

    /// The warning to print when the client could not start its connections on time.
    pub(crate) fn lateness_message(&self) -> Option<String> {
        if self.schedule_kept || self.limited_by.is_some() {
            return None;
        }
        let p99 = self.lateness_ms.map(|l| l.p99)?;
        Some(format!(
            "bench-client could not keep its schedule: at the 99th percentile it started \
             connections {p99:.1} ms late (more than {:.0} ms). It had too little CPU for this \
             rate, so these numbers are partly the client's, not the server's.",
            self.lateness_tolerance_ms
        ))
    }
}

/// How many connections may be open at once: `asked` if the open-files limit allows, else as
/// many as it does (raising the soft limit first, as far as the hard limit allows).
pub(crate) fn open_bound(asked: usize) -> (usize, OpenBound) {
    let allowed = crate::load::raise_open_files(asked);
    if allowed < asked {
        (allowed.max(1), OpenBound::OpenFiles)
    } else {
        (asked, OpenBound::MaxOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_several_units() {
        let per_second = |text: &str| text.parse::<Rate>().map(Rate::per_second);
        assert_eq!(per_second("2000/s"), Ok(2000.0));
        assert_eq!(per_second("2000"), Ok(2000.0));
        assert_eq!(per_second(" 120/min "), Ok(2.0));
        assert_eq!(per_second("2/ms"), Ok(2000.0));
        assert_eq!(per_second("0.5/s"), Ok(0.5));
    }

    #[test]
    fn bad_rates_are_refused_with_a_reason() {
        for (text, says) in [
            ("0/s", "more than zero"),
            ("-5/s", "more than zero"),
            ("fast", "not \"fast\""),
            ("2000/h", "such as 2000/s"),
            ("", "a rate is"),
            ("inf/s", "finite"),
            ("NaN", "finite"),
            ("5000000/s", "at most"),
        ] {
            let error = text.parse::<Rate>().unwrap_err();
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }

    #[test]
    fn rates_print_as_they_are_written() {
        let rate = |text: &str| text.parse::<Rate>().unwrap();
        assert_eq!(rate("2000").to_string(), "2000/s");
        assert_eq!(rate("0.5").to_string(), "0.5/s");
    }

    #[test]
    fn the_schedule_counts_warmup_and_measured_connections() {
        let plan = RatePlan {
            connection: Arc::new(LoadPlan {
                addr: "127.0.0.1:1".parse().unwrap(),
                conns: 0,
                timeout: Duration::from_secs(1),
                send: Arc::from(&[][..]),
                verify: None,
            }),
            rate: "100/s".parse().unwrap(),
            duration: Duration::from_secs(2),
            warmup: Duration::from_millis(500),
            max_open: 10,
            bound: OpenBound::MaxOpen,
        };
        assert_eq!(plan.counts(), (50, 200));
        let short = RatePlan {
            duration: Duration::from_millis(1),
            warmup: Duration::ZERO,
            ..plan
        };
        // Never an empty schedule.
        assert_eq!(short.counts(), (0, 1));
    }
}
