//! `bench-client compare`: every act under the same load, side by side.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use joke_server::{Flavor, StatsSummary};
use serde::Serialize;

use crate::load::{LoadPlan, run_round};
use crate::servers::{ServerOutcome, ServerProcess};
use crate::slow_disk::{DiskReport, ThreadPeaks, ThreadSampler};
use crate::stats::{LoadReport, Tally};
use crate::verify::JokeSet;
use crate::{BadInput, progress_bar};
use acts::{ActEntry, BASELINE, SeedRatio};

/// What to compare, and how hard.
#[derive(Debug, Clone)]
pub(crate) struct CompareSettings {
    pub(crate) acts: Vec<&'static ActEntry>,
    pub(crate) conns: usize,
    pub(crate) rounds: usize,
    pub(crate) timeout: Duration,
    pub(crate) io_delay: Duration,
    pub(crate) flavor: Flavor,
    pub(crate) jokes: PathBuf,
    /// The disk `jokes` is on, for the report (see `slow_disk`).
    pub(crate) disk: DiskReport,
}

/// The result of `compare`, as printed and as serialised. The keys are documented in
/// `bench-client/README.md`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CompareReport {
    pub(crate) conns: usize,
    pub(crate) rounds: usize,
    pub(crate) io_delay_ms: f64,
    /// The runtime every server ran on (`--flavor`): `multi-thread` or `current-thread`.
    pub(crate) flavor: &'static str,
    pub(crate) timeout_ms: f64,
    pub(crate) jokes: PathBuf,
    /// The disk every act read its jokes from: page cache, `--io-delay` or slowfs.
    pub(crate) disk: DiskReport,
    /// Whether bench-client (and so every server) was built with optimisations.
    pub(crate) optimized: bool,
    /// The act the ratios are taken against, when it was in the run.
    pub(crate) baseline: Option<&'static str>,
    pub(crate) acts: Vec<ActReport>,
}

/// One act's line of the table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ActReport {
    pub(crate) act: &'static str,
    pub(crate) title: &'static str,
    /// Its median wall time per round divided by the baseline's (`null` without a baseline).
    pub(crate) ratio_to_baseline: Option<f64>,
    /// The same ratio as the seed article measured it in 2018.
    pub(crate) seed_ratio_2018: SeedRatio,
    /// The load as the client saw it: the same keys as the load mode's JSON.
    pub(crate) load: LoadReport,
    /// The statistics the server printed at shutdown (`null` if it printed none).
    pub(crate) server: Option<StatsSummary>,
    /// Polls of connection tasks per joke served (`null` without statistics or jokes).
    pub(crate) polls_per_connection: Option<f64>,
    /// The most threads the server had at once during its rounds, by kind (`null` where
    /// /proc cannot tell).
    pub(crate) threads: Option<ThreadPeaks>,
    pub(crate) server_exit_code: Option<i32>,
    /// What went wrong with the server process, if anything.
    pub(crate) server_problem: Option<String>,
}

impl ActReport {
    /// The server's heartbeat lateness at the 99th percentile, in milliseconds.
    pub(crate) fn heartbeat_p99_ms(&self) -> Option<f64> {
        self.server
            .as_ref()
            .map(|stats| stats.heartbeat_p99_us as f64 / 1e3)
    }

    /// The server's latest heartbeat tick, in milliseconds.
    pub(crate) fn heartbeat_max_ms(&self) -> Option<f64> {
        self.server
            .as_ref()
            .map(|stats| stats.heartbeat_max_us as f64 / 1e3)
    }

    /// The connection tasks' mean scheduling delay (woken to polled), in microseconds.
    pub(crate) fn scheduled_us(&self) -> Option<f64> {
        self.server.as_ref().map(|stats| stats.mean_scheduled_us)
    }
}

impl CompareReport {
    /// True when every connection to every act succeeded and every server exited cleanly
    /// with its statistics.
    pub(crate) fn all_ok(&self) -> bool {
        self.acts.iter().all(|act| {
            act.load.all_succeeded() && act.server_problem.is_none() && act.server.is_some()
        })
    }
}

// ANCHOR: compare
/// Starts every act, loads them round by round, stops them, and gathers the numbers.
///
/// The acts are interleaved: round 1 of every act, then round 2 of every act, and so on. A
/// laptop that heats up and slows down, or a backup that starts in the middle, then costs every
/// act alike instead of whichever happened to run last. The median over the rounds then
/// discards the odd round that caught a hiccup.
pub(crate) async fn compare(settings: &CompareSettings) -> anyhow::Result<CompareReport> {
    let jokes = std::path::absolute(&settings.jokes)
        .with_context(|| format!("resolving {}", settings.jokes.display()))?;
    let verify = Arc::new(load_jokes(&jokes).await?);

    // Start them all before the first round, so that start-up costs are not in any round.
    let mut servers = Vec::with_capacity(settings.acts.len());
    for &act in &settings.acts {
        // On an error, the servers already started are killed as `servers` is dropped
        // (they were spawned with kill_on_drop).
        servers.push(ServerProcess::start(act, &jokes, settings.io_delay, settings.flavor).await?);
    }

    let plans: Vec<Arc<LoadPlan>> = servers
        .iter()
        .map(|server| {
            Arc::new(LoadPlan {
                addr: server.addr,
                conns: settings.conns,
                timeout: settings.timeout,
                send: Arc::from(&[][..]),
                verify: Some(Arc::clone(&verify)),
            })
        })
        .collect();
    let mut tallies = vec![Tally::default(); servers.len()];
    let mut threads: Vec<Option<ThreadPeaks>> = vec![None; servers.len()];
    let total = (settings.conns * settings.rounds * servers.len()) as u64;
    let progress = progress_bar(total);
    for round in 1..=settings.rounds {
        for (((server, plan), tally), peaks) in servers
            .iter()
            .zip(&plans)
            .zip(&mut tallies)
            .zip(&mut threads)
        {
            progress.set_message(format!(
                "round {round}/{}: {}",
                settings.rounds, server.act.name
            ));
            let sampler = ThreadSampler::start(server.pid());
            tally.add_round(&run_round(plan, &progress).await);
            *peaks = match (*peaks, sampler.stop().await) {
                (Some(before), Some(now)) => Some(before.max(now)),
                (before, now) => now.or(before),
            };
        }
    }
    progress.finish_and_clear();

    let mut outcomes: Vec<ServerOutcome> = Vec::with_capacity(servers.len());
    for server in servers {
        outcomes.push(server.stop().await);
    }

    let loads: Vec<LoadReport> = tallies.iter().map(Tally::report).collect();
    let baseline = settings
        .acts
        .iter()
        .zip(&loads)
        .find(|(act, _)| act.name == BASELINE)
        .map(|(act, load)| (act.name, load.wall_ms.median));
    let acts = settings
        .acts
        .iter()
        .zip(loads)
        .zip(outcomes)
        .zip(threads)
        .map(|(((act, load), outcome), threads)| ActReport {
            act: act.name,
            title: act.title,
            ratio_to_baseline: baseline
                .filter(|(_, wall)| *wall > 0.0)
                .map(|(_, wall)| load.wall_ms.median / wall),
            seed_ratio_2018: act.seed_ratio_2018,
            load,
            polls_per_connection: outcome
                .stats
                .as_ref()
                .filter(|stats| stats.served > 0)
                .map(|stats| stats.polls as f64 / stats.served as f64),
            threads,
            server: outcome.stats,
            server_exit_code: outcome.exit_code,
            server_problem: outcome.problem,
        })
        .collect();
    Ok(CompareReport {
        conns: settings.conns,
        rounds: settings.rounds,
        io_delay_ms: settings.io_delay.as_secs_f64() * 1e3,
        flavor: settings.flavor.name(),
        timeout_ms: settings.timeout.as_secs_f64() * 1e3,
        jokes,
        disk: settings.disk.clone(),
        optimized: !cfg!(debug_assertions),
        baseline: baseline.map(|(name, _)| name),
        acts,
    })
}
// ANCHOR_END: compare

/// Builds the `--verify` set off the runtime (it reads the file with blocking calls: the very
/// lesson of this workspace). A bad file is bad input, reported with exit code 2.
pub(crate) async fn load_jokes(path: &Path) -> anyhow::Result<JokeSet> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || JokeSet::load(&owned))
        .await
        .context("loading the jokes file")?
        .map_err(|error| BadInput(format!("{error:#}")).into())
}

#[cfg(test)]
impl CompareReport {
    /// A small report of one act, for the printers' tests.
    pub(crate) fn for_tests() -> Self {
        let act = acts::entry("act1-naive");
        CompareReport {
            conns: 10,
            rounds: 1,
            io_delay_ms: 2.0,
            flavor: "multi-thread",
            timeout_ms: 10_000.0,
            jokes: PathBuf::from("jokes.txt"),
            disk: DiskReport::plain(Duration::from_millis(2)),
            optimized: true,
            baseline: None,
            acts: vec![ActReport {
                act: act.name,
                title: act.title,
                ratio_to_baseline: None,
                seed_ratio_2018: act.seed_ratio_2018,
                load: Tally::default().report(),
                server: Some(StatsSummary {
                    served: 10,
                    polls: 25,
                    heartbeat_p99_us: 41_200,
                    ..StatsSummary::default()
                }),
                polls_per_connection: Some(2.5),
                threads: None,
                server_exit_code: Some(0),
                server_problem: None,
            }],
        }
    }
}
