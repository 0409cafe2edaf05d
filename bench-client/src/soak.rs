//! `soak`: many bursts against each act in turn, every joke verified, and the server's memory
//! read before and after, to show that nothing accumulates per connection.
//!
//! A leak in a server like this one (a task that never ends, a buffer kept per connection, a
//! reload that keeps the old index alive) hides in a 1000-connection benchmark and shows after
//! a hundred thousand. The soak is bounded: it stops by itself after `--total` connections per
//! act, on loopback only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use joke_server::StatsSummary;
use serde::Serialize;

use crate::compare::load_jokes;
use crate::load::{LoadPlan, run_round};
use crate::progress_bar;
use crate::servers::ServerProcess;
use crate::stats::{LoadReport, Tally};
use acts::ActEntry;

/// What to soak, and how hard.
#[derive(Debug, Clone)]
pub(crate) struct SoakSettings {
    pub(crate) acts: Vec<&'static ActEntry>,
    /// Connections per act, in all.
    pub(crate) total: usize,
    /// Connections started at the same instant.
    pub(crate) burst: usize,
    pub(crate) timeout: Duration,
    pub(crate) jokes: PathBuf,
}

/// The soak of one act.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SoakAct {
    pub(crate) act: &'static str,
    pub(crate) title: &'static str,
    /// The server's resident memory (VmRSS, KiB) after start-up, before any connection.
    pub(crate) rss_kib_idle: Option<u64>,
    /// After the first burst: the runtime's threads and buffers have grown to their working size.
    pub(crate) rss_kib_after_first_burst: Option<u64>,
    /// After the last burst.
    pub(crate) rss_kib_end: Option<u64>,
    /// After each burst, in order: a leak climbs steadily, while an allocator settling into
    /// its working size climbs for a while and then stays level.
    pub(crate) rss_kib_per_burst: Vec<u64>,
    /// The client's view: every connection, errors by kind, wall time per burst.
    pub(crate) load: LoadReport,
    /// The server's own counters, printed at its shutdown.
    pub(crate) server: Option<StatsSummary>,
    pub(crate) server_problem: Option<String>,
}

impl SoakAct {
    /// Memory growth from after the first burst to the end, in KiB (negative: it shrank).
    pub(crate) fn rss_growth_kib(&self) -> Option<i64> {
        Some(self.rss_kib_end? as i64 - self.rss_kib_after_first_burst? as i64)
    }

    /// Memory growth over the second half of the bursts only, in KiB: near zero when the
    /// server has reached its working size, about half of the whole growth when it leaks.
    pub(crate) fn rss_growth_second_half_kib(&self) -> Option<i64> {
        let samples = &self.rss_kib_per_burst;
        let middle = *samples.get(samples.len().checked_sub(1)? / 2)?;
        Some(*samples.last()? as i64 - middle as i64)
    }
}

/// The whole soak.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SoakReport {
    pub(crate) total: usize,
    pub(crate) burst: usize,
    pub(crate) jokes: PathBuf,
    pub(crate) optimized: bool,
    pub(crate) acts: Vec<SoakAct>,
}

impl SoakReport {
    /// True when every connection to every act succeeded and verified, and every server exited
    /// cleanly with its statistics.
    pub(crate) fn all_ok(&self) -> bool {
        self.acts.iter().all(|act| {
            act.load.all_succeeded() && act.server_problem.is_none() && act.server.is_some()
        })
    }
}

/// Resident memory of process `pid` in KiB, from `/proc` (Linux).
fn resident_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ANCHOR: soak
/// Soaks each act in turn (one server at a time, so each has the machine to itself).
pub(crate) async fn soak(settings: &SoakSettings) -> anyhow::Result<SoakReport> {
    let jokes = std::path::absolute(&settings.jokes)
        .with_context(|| format!("resolving {}", settings.jokes.display()))?;
    let verify = Arc::new(load_jokes(&jokes).await?);
    let bursts = settings.total.div_ceil(settings.burst);
    let progress = progress_bar((bursts * settings.burst * settings.acts.len()) as u64);

    let mut acts = Vec::with_capacity(settings.acts.len());
    for &act in &settings.acts {
        let server = ServerProcess::start(
            act,
            &jokes,
            Duration::ZERO,
            joke_server::Flavor::MultiThread,
        )
        .await?;
        let rss_kib_idle = resident_kib(server.pid());
        let plan = Arc::new(LoadPlan {
            addr: server.addr,
            conns: settings.burst,
            timeout: settings.timeout,
            send: Arc::from(&[][..]),
            verify: Some(Arc::clone(&verify)),
        });
        let mut tally = Tally::default();
        let mut rss_kib_per_burst = Vec::with_capacity(bursts);
        for burst in 1..=bursts {
            progress.set_message(format!("{}: burst {burst}/{bursts}", act.name));
            tally.add_round(&run_round(&plan, &progress).await);
            rss_kib_per_burst.extend(resident_kib(server.pid()));
        }
        let rss_kib_after_first_burst = rss_kib_per_burst.first().copied();
        let rss_kib_end = rss_kib_per_burst.last().copied();
        let outcome = server.stop().await;
        acts.push(SoakAct {
            act: act.name,
            title: act.title,
            rss_kib_idle,
            rss_kib_after_first_burst,
            rss_kib_end,
            rss_kib_per_burst,
            load: tally.report(),
            server: outcome.stats,
            server_problem: outcome.problem,
        });
    }
    progress.finish_and_clear();
    Ok(SoakReport {
        total: bursts * settings.burst,
        burst: settings.burst,
        jokes,
        optimized: !cfg!(debug_assertions),
        acts,
    })
}
// ANCHOR_END: soak
