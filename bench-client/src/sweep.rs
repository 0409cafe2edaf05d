//! `bench-client sweep`: each act's latency against the load offered to it, and its knee.
//!
//! A burst says how long a crowd takes; an operator asks how many jokes a second an act can
//! serve before its latency runs away. The sweep climbs a ladder of rates, and at each one runs
//! every act in turn in the rate mode (the acts interleaved, as `compare` interleaves its
//! rounds, so that a machine that slows down mid-run costs every act alike). An act's **knee**
//! is the highest rate at which its p99 response time stayed within the threshold with no
//! errors, at that rate and every lower one. Once an act fails a rate it stops climbing (unless
//! `--every-rate`): its queue only grows at higher ones.
//!
//! The client and the servers share the machine, so they are pinned apart with `taskset`: the
//! servers to CPU 1, the client to CPU 0. A pinned server would start one worker thread per CPU
//! it may use, so it is given the machine's worker count (`--workers`) explicitly, as it would
//! have unpinned.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use joke_server::StatsSummary;
use serde::Serialize;

use crate::compare::load_jokes;
use crate::load::LoadPlan;
use crate::progress_bar;
use crate::rate::{OpenBound, Rate, RatePlan, RateReport, run_rate};
use crate::servers::{ServerOutcome, ServerProcess};
use acts::ActEntry;

/// What to sweep.
#[derive(Debug, Clone)]
pub(crate) struct SweepSettings {
    pub(crate) acts: Vec<&'static ActEntry>,
    /// Climbed in increasing order.
    pub(crate) rates: Vec<Rate>,
    pub(crate) step: Duration,
    pub(crate) warmup: Duration,
    pub(crate) threshold: Duration,
    pub(crate) io_delay: Duration,
    pub(crate) max_open: usize,
    pub(crate) bound: OpenBound,
    pub(crate) timeout: Duration,
    pub(crate) jokes: PathBuf,
    pub(crate) every_rate: bool,
    pub(crate) pinning: Pinning,
}

/// Where the client and the servers run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Pinning {
    /// Whether they were pinned apart.
    pub(crate) pinned: bool,
    /// The CPU list of the client and of the servers, as taskset takes it (`null` unpinned).
    pub(crate) client_cpus: Option<String>,
    pub(crate) server_cpus: Option<String>,
    /// Worker threads each server was started with (`null`: its own default).
    pub(crate) server_workers: Option<usize>,
    /// What was done, or why not, in a sentence for the output.
    pub(crate) note: String,
    /// The machine's CPUs (before the client was pinned to one of them).
    pub(crate) machine_cpus: usize,
}

impl Pinning {
    /// Pins this process (all its threads, and so every thread it starts later) to CPU 0, and
    /// plans to start the servers on CPU 1. Call it before the runtime is built. Falls back to
    /// no pinning, saying why, when asked to, on a single CPU, or without a working `taskset`.
    pub(crate) fn apply(wanted: bool) -> Pinning {
        // Read before pinning ourselves: afterwards this process sees one CPU.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let unpinned = |note: String| Pinning {
            pinned: false,
            client_cpus: None,
            server_cpus: None,
            server_workers: None,
            note,
            machine_cpus: cpus,
        };
        if !wanted {
            return unpinned("not pinned (--no-pin): client and servers share every CPU".into());
        }
        if cpus < 2 {
            return unpinned(
                "not pinned: this machine has one CPU, client and servers share it".into(),
            );
        }
        let pid = std::process::id().to_string();
        match Command::new("taskset")
            .args(["--all-tasks", "--cpu-list", "--pid", "0", &pid])
            .output()
        {
            Ok(output) if output.status.success() => Pinning {
                pinned: true,
                client_cpus: Some("0".into()),
                server_cpus: Some("1".into()),
                server_workers: Some(cpus),
                note: format!(
                    "pinned with taskset: bench-client on CPU 0, every server on CPU 1 (each \
                     with --workers {cpus}, its unpinned default)"
                ),
                machine_cpus: cpus,
            },
            Ok(output) => unpinned(format!(
                "not pinned: taskset failed ({}): client and servers share every CPU",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => unpinned(format!(
                "not pinned: cannot run taskset ({error}; Debian's util-linux has it): client \
                 and servers share every CPU"
            )),
        }
    }

    /// The program and arguments to start a server through, and the server's extra arguments.
    fn server_launch(&self) -> (Vec<OsString>, Vec<OsString>) {
        match (&self.server_cpus, self.server_workers) {
            (Some(cpus), Some(workers)) => (
                ["taskset", "--cpu-list", cpus].map(OsString::from).into(),
                ["--workers".into(), workers.to_string().into()].into(),
            ),
            _ => (Vec::new(), Vec::new()),
        }
    }
}

/// The whole sweep, as printed and serialised (keys in `bench-client/README.md`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SweepReport {
    /// The offered rates, connections per second, in the order climbed.
    pub(crate) rates: Vec<f64>,
    pub(crate) step_ms: f64,
    pub(crate) warmup_ms: f64,
    pub(crate) threshold_ms: f64,
    pub(crate) io_delay_ms: f64,
    pub(crate) timeout_ms: f64,
    pub(crate) max_open: usize,
    pub(crate) max_open_set_by: OpenBound,
    pub(crate) every_rate: bool,
    pub(crate) jokes: PathBuf,
    pub(crate) optimized: bool,
    pub(crate) pinning: Pinning,
    pub(crate) acts: Vec<SweepAct>,
    /// The highest rate at which some act passed, and the client's lateness there.
    pub(crate) highest_sustained: Option<Sustained>,
}

/// One act's curve.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SweepAct {
    pub(crate) act: &'static str,
    pub(crate) title: &'static str,
    /// The highest rate passed, with every lower one (`null`: not even the lowest).
    pub(crate) knee_per_sec: Option<f64>,
    /// Whether it passed every rate of the ladder (its knee is then somewhere above).
    pub(crate) passed_every_rate: bool,
    /// One per rate it ran, in the order climbed.
    pub(crate) steps: Vec<SweepStep>,
    pub(crate) server: Option<StatsSummary>,
    pub(crate) server_problem: Option<String>,
}

/// One act at one rate.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SweepStep {
    pub(crate) rate_per_sec: f64,
    /// Every connection succeeded, nothing held back, p99 response time within the threshold.
    pub(crate) passed: bool,
    pub(crate) run: RateReport,
}

/// Where the client was pushed hardest while the numbers were still the server's.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sustained {
    pub(crate) rate_per_sec: f64,
    /// The act that passed it (the first in story order, when several did).
    pub(crate) act: &'static str,
    /// The client's p99 and largest lateness in starting that act's connections.
    pub(crate) lateness_p99_ms: f64,
    pub(crate) lateness_max_ms: f64,
}

impl SweepReport {
    /// True when every server stopped cleanly with its statistics. (Rates past a knee fail by
    /// design; they are the result, not an error.)
    pub(crate) fn servers_ok(&self) -> bool {
        self.acts
            .iter()
            .all(|act| act.server_problem.is_none() && act.server.is_some())
    }
}

// ANCHOR: sweep
/// Starts every act, climbs the ladder with each, stops them, and finds the knees.
pub(crate) async fn sweep(settings: &SweepSettings) -> anyhow::Result<SweepReport> {
    let jokes = std::path::absolute(&settings.jokes)
        .with_context(|| format!("resolving {}", settings.jokes.display()))?;
    let verify = Arc::new(load_jokes(&jokes).await?);
    let (wrapper, extra) = settings.pinning.server_launch();
    let mut servers = Vec::with_capacity(settings.acts.len());
    for &act in &settings.acts {
        servers.push(
            ServerProcess::start_with(act, &jokes, settings.io_delay, &wrapper, &extra).await?,
        );
    }

    let per_step = |rate: Rate| {
        (rate.per_second() * (settings.step + settings.warmup).as_secs_f64()).ceil() as u64
    };
    let total: u64 = settings.rates.iter().map(|&rate| per_step(rate)).sum();
    let progress = progress_bar(total * servers.len() as u64);
    let mut steps: Vec<Vec<SweepStep>> = vec![Vec::new(); servers.len()];
    let mut climbing = vec![true; servers.len()];
    let threshold_ms = settings.threshold.as_secs_f64() * 1e3;
    for &rate in &settings.rates {
        for (i, server) in servers.iter().enumerate() {
            if !climbing[i] {
                progress.inc(per_step(rate));
                continue;
            }
            progress.set_message(format!("{rate}: {}", server.act.name));
            let plan = RatePlan {
                connection: Arc::new(LoadPlan {
                    addr: server.addr,
                    conns: 0,
                    timeout: settings.timeout,
                    send: Arc::from(&[][..]),
                    verify: Some(Arc::clone(&verify)),
                }),
                rate,
                duration: settings.step,
                warmup: settings.warmup,
                max_open: settings.max_open,
                bound: settings.bound,
            };
            let run = run_rate(&plan, &progress).await;
            let passed =
                run.all_succeeded() && run.response_ms.is_some_and(|r| r.p99 <= threshold_ms);
            climbing[i] = passed || settings.every_rate;
            steps[i].push(SweepStep {
                rate_per_sec: rate.per_second(),
                passed,
                run,
            });
        }
    }
    progress.finish_and_clear();

    let mut outcomes: Vec<ServerOutcome> = Vec::with_capacity(servers.len());
    for server in servers {
        outcomes.push(server.stop().await);
    }
    let acts: Vec<SweepAct> = settings
        .acts
        .iter()
        .zip(steps)
        .zip(outcomes)
        .map(|((act, steps), outcome)| {
            let passed = steps.iter().take_while(|step| step.passed).count();
            SweepAct {
                act: act.name,
                title: act.title,
                knee_per_sec: passed.checked_sub(1).map(|last| steps[last].rate_per_sec),
                passed_every_rate: passed == settings.rates.len(),
                steps,
                server: outcome.stats,
                server_problem: outcome.problem,
            }
        })
        .collect();
    Ok(SweepReport {
        rates: settings
            .rates
            .iter()
            .map(|rate| rate.per_second())
            .collect(),
        step_ms: settings.step.as_secs_f64() * 1e3,
        warmup_ms: settings.warmup.as_secs_f64() * 1e3,
        threshold_ms,
        io_delay_ms: settings.io_delay.as_secs_f64() * 1e3,
        timeout_ms: settings.timeout.as_secs_f64() * 1e3,
        max_open: settings.max_open,
        max_open_set_by: settings.bound,
        every_rate: settings.every_rate,
        jokes,
        optimized: !cfg!(debug_assertions),
        pinning: settings.pinning.clone(),
        highest_sustained: highest_sustained(&acts),
        acts,
    })
}
// ANCHOR_END: sweep

/// The highest rate some act passed, and how late the client was there.
fn highest_sustained(acts: &[SweepAct]) -> Option<Sustained> {
    let mut best: Option<Sustained> = None;
    for act in acts {
        for step in act.steps.iter().filter(|step| step.passed) {
            let Some(lateness) = step.run.lateness_ms else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|best| step.rate_per_sec > best.rate_per_sec)
            {
                best = Some(Sustained {
                    rate_per_sec: step.rate_per_sec,
                    act: act.act,
                    lateness_p99_ms: lateness.p99,
                    lateness_max_ms: lateness.max,
                });
            }
        }
    }
    best
}

/// The ladder as given, in increasing order, each rate once.
pub(crate) fn ladder(mut rates: Vec<Rate>) -> Vec<Rate> {
    rates.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    rates.dedup();
    rates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_climbs_each_rate_once() {
        let rates: Vec<Rate> = ["2000", "500", "2000/s", "1/ms", "250"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        let climbed: Vec<f64> = ladder(rates).into_iter().map(Rate::per_second).collect();
        assert_eq!(climbed, [250.0, 500.0, 1000.0, 2000.0]);
    }
}
