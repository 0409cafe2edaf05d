//! `compare --timeline DIR`: every act's threads, drawn from a real run.
//!
//! For each act, in turn:
//! 1. **the picture**: a server started with `--timeline DIR/ACT.json` serves one short burst
//!    (`--timeline-conns`, 100 by default) and stops; its trace is drawn as `DIR/ACT.svg`, one
//!    lane per thread (see `timeline/svg.rs`);
//! 2. **the recorder's cost**: the same act twice at once, one server recording and one not,
//!    loaded alternately with `--rounds` bursts of `--conns` connections each (the order
//!    swapped every round), so that both see the same machine at the same time. The table
//!    gives both medians and their ratio.

mod svg;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use joke_server::timeline::{Interval, Kind, Trace};

use crate::compare::{CompareSettings, load_jokes};
use crate::load::{LoadPlan, run_round};
use crate::printer::{Figures, machine};
use crate::servers::ServerProcess;
use crate::stats::Tally;
use crate::verify::JokeSet;
use acts::ActEntry;

/// What `compare --timeline` does.
#[derive(Debug, Clone)]
pub(crate) struct TimelineSettings {
    /// The folder the pictures and traces go to.
    pub(crate) dir: PathBuf,
    /// Connections of the recorded burst that is drawn.
    pub(crate) picture_conns: usize,
    /// The acts, the servers' options, and the cost measurement's bursts (`conns` connections,
    /// `rounds` times).
    pub(crate) compare: CompareSettings,
}

/// What one act's timeline showed, and what recording it cost.
#[derive(Debug, Clone)]
pub(crate) struct ActTimeline {
    pub(crate) act: &'static str,
    pub(crate) summary: TraceSummary,
    /// Median wall time of a cost-measurement burst, without and with the recorder.
    pub(crate) wall_off_ms: f64,
    pub(crate) wall_on_ms: f64,
    /// The p99 latency of one connection in those bursts, without and with the recorder.
    pub(crate) p99_off_ms: f64,
    pub(crate) p99_on_ms: f64,
    /// Whether every connection of every burst got its joke, and every server stopped cleanly.
    pub(crate) ok: bool,
    pub(crate) problems: Vec<String>,
}

/// What a trace holds, counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TraceSummary {
    pub(crate) lanes: usize,
    /// Connections with at least one poll.
    pub(crate) connections: usize,
    pub(crate) polls: usize,
    pub(crate) reads_in_task_poll: usize,
    pub(crate) reads_on_pool: usize,
    pub(crate) io_delays_in_task_poll: usize,
    pub(crate) io_delays_on_pool: usize,
    /// Threads that polled connection tasks (acted as workers).
    pub(crate) polling_threads: usize,
    /// Threads that ran reads or sleeps outside any task poll (the blocking pool).
    pub(crate) pool_threads: usize,
    /// From the burst's first connection poll to its last event, in milliseconds.
    pub(crate) span_ms: f64,
}

impl TraceSummary {
    pub(crate) fn of(trace: &Trace) -> TraceSummary {
        let intervals: Vec<Interval> = trace.intervals().collect();
        let count = |kind: Kind| intervals.iter().filter(|i| i.kind == kind).count();
        let lanes_where = |keep: &dyn Fn(&Interval) -> bool| {
            let mut lanes: Vec<u64> = intervals
                .iter()
                .filter(|i| keep(i))
                .map(|i| i.lane)
                .collect();
            lanes.sort_unstable();
            lanes.dedup();
            lanes.len()
        };
        let mut connections: Vec<u64> = intervals
            .iter()
            .filter(|i| i.kind == Kind::Poll)
            .filter_map(|i| i.connection)
            .collect();
        connections.sort_unstable();
        connections.dedup();
        let (start, end) = burst_span(&intervals);
        TraceSummary {
            lanes: trace.lanes().len(),
            connections: connections.len(),
            polls: count(Kind::Poll),
            reads_in_task_poll: count(Kind::ReadInTaskPoll),
            reads_on_pool: count(Kind::ReadOnPool),
            io_delays_in_task_poll: count(Kind::IoDelayInTaskPoll),
            io_delays_on_pool: count(Kind::IoDelayOnPool),
            polling_threads: lanes_where(&|i| i.kind == Kind::Poll),
            pool_threads: lanes_where(&|i| i.kind.is_on_pool()),
            span_ms: (end - start).max(0.0) / 1e3,
        }
    }
}

/// From the first poll of a connection task to the end of the last interval that served a
/// connection, in microseconds: the burst, without the idle time before and after it.
pub(crate) fn burst_span(intervals: &[Interval]) -> (f64, f64) {
    let start = intervals
        .iter()
        .filter(|i| i.kind == Kind::Poll)
        .map(|i| i.start_us)
        .fold(f64::INFINITY, f64::min);
    let end = intervals
        .iter()
        .filter(|i| i.connection.is_some() || i.kind.is_on_pool())
        .map(|i| i.end_us)
        .fold(f64::NEG_INFINITY, f64::max);
    if start.is_finite() && end.is_finite() {
        (start, end)
    } else {
        (0.0, 0.0)
    }
}

/// Runs `compare --timeline`.
pub(crate) async fn timelines(settings: &TimelineSettings) -> anyhow::Result<Vec<ActTimeline>> {
    let jokes = &settings.compare.jokes;
    let jokes =
        std::path::absolute(jokes).with_context(|| format!("resolving {}", jokes.display()))?;
    let verify = Arc::new(load_jokes(&jokes).await?);
    std::fs::create_dir_all(&settings.dir)
        .with_context(|| format!("creating {}", settings.dir.display()))?;
    let mut results = Vec::new();
    for &act in &settings.compare.acts {
        eprintln!("bench-client: timeline of {}", act.name);
        results.push(one_act(settings, act, &jokes, &verify).await?);
    }
    Ok(results)
}

async fn one_act(
    settings: &TimelineSettings,
    act: &'static ActEntry,
    jokes: &Path,
    verify: &Arc<JokeSet>,
) -> anyhow::Result<ActTimeline> {
    let json = settings.dir.join(format!("{}.json", act.name));
    let svg = settings.dir.join(format!("{}.svg", act.name));
    let mut problems = Vec::new();
    let TimelineSettings {
        picture_conns,
        compare:
            CompareSettings {
                conns,
                rounds,
                timeout,
                io_delay,
                flavor,
                ..
            },
        ..
    } = *settings;
    let flavor = [OsString::from("--flavor"), flavor.name().into()];
    let recorded = |path: &Path| {
        let mut args = flavor.to_vec();
        args.extend([OsString::from("--timeline"), path.into()]);
        args
    };
    let plan = |server: &ServerProcess, conns| {
        Arc::new(LoadPlan {
            addr: server.addr,
            conns,
            timeout,
            send: Arc::from(&[][..]),
            verify: Some(Arc::clone(verify)),
        })
    };

    // 1. The picture: one short burst, recorded.
    let server = ServerProcess::start_with(act, jokes, io_delay, &[], &recorded(&json)).await?;
    let mut picture = Tally::default();
    picture.add_round(&run_round(&plan(&server, picture_conns), &hidden()).await);
    let outcome = server.stop().await;
    problems.extend(outcome.problem);
    if !picture.report().all_succeeded() {
        problems.push(format!(
            "{}: the recorded burst had failed connections",
            act.name
        ));
    }
    let trace = Trace::read(&json).map_err(anyhow::Error::msg)?;
    let summary = TraceSummary::of(&trace);
    svg::draw(&svg, &trace, picture_conns).with_context(|| format!("drawing {}", svg.display()))?;
    eprintln!(
        "bench-client: {} and {} written",
        svg.display(),
        json.display()
    );

    // 2. The cost: recording and not recording, side by side, the same bursts.
    let scratch = settings.dir.join(format!(".{}-cost.json", act.name));
    let off = ServerProcess::start_with(act, jokes, io_delay, &[], &flavor).await?;
    let on = ServerProcess::start_with(act, jokes, io_delay, &[], &recorded(&scratch)).await?;
    let (off_plan, on_plan) = (plan(&off, conns), plan(&on, conns));
    let (mut off_tally, mut on_tally) = (Tally::default(), Tally::default());
    for round in 0..rounds {
        // Swapped every round: neither always runs on a machine warmed by the other.
        if round % 2 == 0 {
            off_tally.add_round(&run_round(&off_plan, &hidden()).await);
            on_tally.add_round(&run_round(&on_plan, &hidden()).await);
        } else {
            on_tally.add_round(&run_round(&on_plan, &hidden()).await);
            off_tally.add_round(&run_round(&off_plan, &hidden()).await);
        }
    }
    problems.extend(off.stop().await.problem);
    problems.extend(on.stop().await.problem);
    let _ = std::fs::remove_file(&scratch);
    let (off_report, on_report) = (off_tally.report(), on_tally.report());
    if !off_report.all_succeeded() || !on_report.all_succeeded() {
        problems.push(format!(
            "{}: the cost bursts had failed connections",
            act.name
        ));
    }
    Ok(ActTimeline {
        act: act.name,
        summary,
        wall_off_ms: off_report.wall_ms.median,
        wall_on_ms: on_report.wall_ms.median,
        p99_off_ms: off_report.latency_ms.map_or(f64::NAN, |p| p.p99),
        p99_on_ms: on_report.latency_ms.map_or(f64::NAN, |p| p.p99),
        ok: problems.is_empty(),
        problems,
    })
}

fn hidden() -> indicatif::ProgressBar {
    indicatif::ProgressBar::hidden()
}

/// The table `compare --timeline` prints.
pub(crate) fn table(results: &[ActTimeline], settings: &TimelineSettings) -> String {
    let mut out = format!(
        "timelines of {} connections per act in {}; the recorder's cost over {} bursts of {} \
         (wall and p99 in ms; rd = reads in a task poll or on the pool; threads that polled \
         connections, and that ran pool work)\n",
        settings.picture_conns,
        settings.dir.display(),
        settings.compare.rounds,
        settings.compare.conns
    );
    out.push_str(&format!(
        "{:<22} {:>5} {:>6} {:>8} {:>8} {:>7} {:>5} {:>9} {:>9} {:>6} {:>8} {:>8}\n",
        "act",
        "lanes",
        "polls",
        "rd:poll",
        "rd:pool",
        "workers",
        "pool",
        "wall off",
        "wall on",
        "on/off",
        "p99 off",
        "p99 on"
    ));
    for act in results {
        let s = &act.summary;
        out.push_str(&format!(
            "{:<22} {:>5} {:>6} {:>8} {:>8} {:>7} {:>5} {:>9.1} {:>9.1} {:>6.2} {:>8.1} {:>8.1}\n",
            act.act,
            s.lanes,
            s.polls,
            s.reads_in_task_poll,
            s.reads_on_pool,
            s.polling_threads,
            s.pool_threads,
            act.wall_off_ms,
            act.wall_on_ms,
            act.wall_on_ms / act.wall_off_ms,
            act.p99_off_ms,
            act.p99_on_ms
        ));
    }
    for problem in results.iter().flat_map(|act| &act.problems) {
        out.push_str(&format!("problem: {problem}\n"));
    }
    out
}

/// The table as Markdown, for the book.
/// The timeline table's columns after the act: the key suffix each has as a keyed figure
/// (`<act>_timeline_<suffix>`) and its header, in the order of [`values`].
const COLUMNS: [(&str, &str); 11] = [
    ("lanes", "lanes"),
    ("polls_per_connection", "polls per connection"),
    ("reads_in_task_poll", "reads in a task poll"),
    ("reads_on_pool", "reads on the pool"),
    ("polling_threads", "threads that polled"),
    ("pool_threads", "pool threads"),
    ("wall_off_ms", "wall off (ms)"),
    ("wall_on_ms", "wall on (ms)"),
    ("cost_ratio", "on ÷ off"),
    ("p99_off_ms", "p99 off (ms)"),
    ("p99_on_ms", "p99 on (ms)"),
];

/// One act's values for [`COLUMNS`], formatted once for both the table and the keyed figures.
fn values(act: &ActTimeline) -> [String; 11] {
    let s = &act.summary;
    [
        s.lanes.to_string(),
        format!("{:.1}", s.polls as f64 / s.connections.max(1) as f64),
        s.reads_in_task_poll.to_string(),
        s.reads_on_pool.to_string(),
        s.polling_threads.to_string(),
        s.pool_threads.to_string(),
        format!("{:.1}", act.wall_off_ms),
        format!("{:.1}", act.wall_on_ms),
        format!("{:.2}", act.wall_on_ms / act.wall_off_ms),
        format!("{:.1}", act.p99_off_ms),
        format!("{:.1}", act.p99_on_ms),
    ]
}

fn markdown_table(results: &[ActTimeline]) -> String {
    let headers: Vec<&str> = COLUMNS.iter().map(|(_, header)| *header).collect();
    let mut out = format!(
        "| act | {} |\n|---|{}",
        headers.join(" | "),
        "---:|".repeat(COLUMNS.len())
    );
    for act in results {
        out.push_str(&format!("\n| {} | {} |", act.act, values(act).join(" | ")));
    }
    out
}

/// The keyed figures of a `compare --timeline` run, for the timelines' captions.
pub(crate) fn write_figures(
    path: &Path,
    results: &[ActTimeline],
    settings: &TimelineSettings,
) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut figures = Figures::new(cpus);
    figures.add("table", markdown_table(results));
    figures.add("conns", settings.picture_conns);
    figures.add("cost_conns", settings.compare.conns);
    figures.add("cost_rounds", settings.compare.rounds);
    figures.add("io_delay_ms", settings.compare.io_delay.as_secs_f64() * 1e3);
    figures.add("machine", machine(cpus));
    for act in results {
        let key = act.act.replace('-', "_");
        let s = &act.summary;
        figures.add(&format!("{key}_timeline_connections"), s.connections);
        figures.add(
            &format!("{key}_timeline_io_delays_on_pool"),
            s.io_delays_on_pool,
        );
        figures.add(
            &format!("{key}_timeline_span_ms"),
            format!("{:.1}", s.span_ms),
        );
        for ((suffix, _), value) in COLUMNS.iter().zip(values(act)) {
            figures.add(&format!("{key}_timeline_{suffix}"), value);
        }
    }
    figures.write(path)
}
