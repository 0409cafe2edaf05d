//! # bench-client: a burst of connections, every joke checked
//!
//! The seed article measured its servers with a client that opened 1000 connections and printed
//! one total time. This is that client grown up, because it is how a reader *sees* each lesson:
//!
//! - **Load mode** (`bench-client --conns 1000 --rounds 5 --verify jokes.txt`): opens `--conns`
//!   connections at the same instant, reads each to end-of-stream, and reports latency
//!   percentiles, wall time per round, errors by kind. With `--verify` every response must be
//!   exactly one joke of the file.
//! - **Rate mode** (`bench-client --rate 2000/s --duration 10s`): an open loop, connections
//!   started on a schedule whatever became of the earlier ones; response time from the moment
//!   each was due beside service time from its connect, and the client's own lateness.
//! - **`sweep`**: every act climbs a ladder of rates in the rate mode; p50/p99 per act per rate,
//!   each act's knee, a chart of latency against offered rate.
//! - **`compare`** (`cargo run --release -p bench-client -- compare`): starts every act as its
//!   own process, runs the same load against each, round by round, and prints one table with
//!   the server's own count of blocked worker threads beside the client's timings.
//!
//! The shape follows oha, a load generator people like: a thin `main`, and here a library with
//! [`Opts`] (parsed by clap, declared in `cli.rs` with the options the modes share declared
//! once) and [`run`]. Every result goes through one printer (`printer.rs`): text for people or
//! JSON for tools (`--output json`; the keys are documented in `bench-client/README.md`). The
//! acts `compare` and `soak` start come from the `acts` crate, the one list of them.
//!
//! Exit codes: 0 when every connection succeeded (and verified); 1 when any failed or something
//! else went wrong; 2 for bad usage or a bad `--verify`/`--jokes` file.

// Everything but `Opts` and `run` is private: `unreachable_pub` keeps it that way.
#![warn(unreachable_pub)]

mod cli;
mod compare;
mod load;
mod printer;
mod rate;
// The servers `compare` and `soak` start, about to be replaced by the harness's supervisor.
mod separate_build;
#[allow(unreachable_pub)]
mod servers;
mod slow_disk;
mod soak;
mod stats;
mod sweep;
mod timeline;
mod verify;

pub use cli::Opts;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use joke_index::exit_code;

use crate::cli::{Command, CompareOpts, LoadOpts, SoakOpts, SweepOpts};
use crate::compare::{CompareSettings, compare};
use crate::load::{LoadPlan, run_round};
use crate::printer::{LoadRun, RateRun, Report};
use crate::rate::{RatePlan, open_bound, run_rate};
use crate::soak::{SoakSettings, soak};
use crate::stats::Tally;
use crate::sweep::{Pinning, SweepSettings, sweep};
use crate::verify::JokeSet;

/// Bad input found before any connection (an unreadable `--verify` file, say): exit code 2.
#[derive(Debug)]
struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

// ANCHOR: run
/// Runs what the command line asks for, and returns the exit code.
pub fn run(opts: Opts) -> ExitCode {
    // A figures file says how loaded the machine was when the run began.
    printer::note_load_at_start();
    let outcome = match opts.command {
        // The server builds its own runtime and installs its own signal handlers: hand it the
        // process before we start anything of ours. It follows the death of the `compare` that
        // started it by itself: see `joke_server::supervisor`.
        Some(Command::Serve(serve)) => return serve.act.run(serve.args),
        Some(Command::Compare(compare)) => run_compare(compare),
        Some(Command::Soak(soak)) => run_soak(soak),
        Some(Command::Sweep(sweep)) => run_sweep(sweep),
        None if opts.load.rate.is_some() => run_rate_mode(opts.load),
        None => run_load(opts.load),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(exit_code::FAILURE),
        Err(error) => {
            eprintln!("bench-client: error: {error:#}");
            if let Some(interrupted) = error.downcast_ref::<slow_disk::Interrupted>() {
                ExitCode::from(128 + interrupted.number)
            } else if error.is::<BadInput>() {
                ExitCode::from(exit_code::BAD_INPUT)
            } else {
                ExitCode::from(exit_code::FAILURE)
            }
        }
    }
}
// ANCHOR_END: run

/// The load mode. Returns whether every connection succeeded.
fn run_load(opts: LoadOpts) -> anyhow::Result<bool> {
    if let Some(flag) = opts.open_loop.given() {
        return Err(BadInput(format!("{flag} belongs to the rate mode: add --rate")).into());
    }
    warn_if_unoptimised();
    let conns = opts.conns.get();
    let rounds = opts.rounds.get();
    load::ensure_open_files(conns);
    let plan = load_plan(&opts, conns)?;

    let tally = client_runtime()?.block_on(async {
        let progress = progress_bar((conns * rounds) as u64);
        let mut tally = Tally::default();
        for round in 1..=rounds {
            progress.set_message(format!("round {round}/{rounds}"));
            tally.add_round(&run_round(&plan, &progress).await);
        }
        progress.finish_and_clear();
        tally
    });
    let report = tally.report();

    let run = LoadRun {
        addr: opts.addr,
        conns,
        rounds,
        timeout_ms: opts.shared.timeout.as_secs_f64() * 1e3,
        verify: opts.verify.clone(),
        send_bytes: plan.send.len(),
        optimized: !cfg!(debug_assertions),
        report: &report,
    };
    printer::print(opts.shared.output, Report::Load(&run))?;
    Ok(report.all_succeeded())
}

/// Where to connect and what counts as a good joke, from the load mode's options (shared by
/// the burst and the rate mode).
fn load_plan(opts: &LoadOpts, conns: usize) -> anyhow::Result<Arc<LoadPlan>> {
    let verify = match &opts.verify {
        Some(path) => Some(Arc::new(
            JokeSet::load(path).map_err(|error| BadInput(format!("--verify: {error:#}")))?,
        )),
        None => None,
    };
    let send = opts.send.clone().map(|s| s.0).unwrap_or_default();
    Ok(Arc::new(LoadPlan {
        addr: opts.addr,
        conns,
        timeout: opts.shared.timeout,
        send: Arc::from(send),
        verify,
    }))
}

// ANCHOR: rate_mode
/// The rate mode (`--rate`). Returns whether every connection of the schedule started on its
/// slot, succeeded and verified.
fn run_rate_mode(opts: LoadOpts) -> anyhow::Result<bool> {
    let rate = opts.rate.context("the rate mode needs --rate")?;
    warn_if_unoptimised();
    let (max_open, bound) = open_bound(opts.open_loop.max_open());
    let plan = RatePlan {
        connection: load_plan(&opts, 0)?,
        rate,
        duration: opts.duration,
        warmup: opts.open_loop.warmup(),
        max_open,
        bound,
    };
    let expected = (rate.per_second() * (plan.duration + plan.warmup).as_secs_f64()).ceil();
    let report = client_runtime()?.block_on(async {
        let progress = progress_bar(expected as u64);
        progress.set_message(format!(
            "{rate} for {}",
            humantime::format_duration(plan.duration)
        ));
        let report = run_rate(&plan, &progress).await;
        progress.finish_and_clear();
        report
    });
    let run = RateRun {
        addr: opts.addr,
        rate: rate.to_string(),
        timeout_ms: opts.shared.timeout.as_secs_f64() * 1e3,
        verify: opts.verify.clone(),
        send_bytes: plan.connection.send.len(),
        optimized: !cfg!(debug_assertions),
        report: &report,
    };
    printer::print(opts.shared.output, Report::Rate(&run))?;
    if let Some(message) = report.limit_message() {
        eprintln!("bench-client: error: {message}");
    }
    if let Some(message) = report.lateness_message() {
        eprintln!("bench-client: warning: {message}");
    }
    Ok(report.all_succeeded())
}
// ANCHOR_END: rate_mode

/// `sweep`. Returns whether every server ran and stopped cleanly (rates past an act's knee
/// fail by design: they are the result).
fn run_sweep(opts: SweepOpts) -> anyhow::Result<bool> {
    warn_if_unoptimised();
    // Before the runtime starts its threads, so that they all inherit the client's CPU.
    let pinning = Pinning::apply(!opts.no_pin);
    eprintln!("bench-client sweep: {}", pinning.note);
    let (max_open, bound) = open_bound(opts.open_loop.max_open());
    let settings = SweepSettings {
        acts: opts.acts.chosen(),
        rates: sweep::ladder(opts.rates.clone()),
        step: opts.step,
        warmup: opts.open_loop.warmup(),
        threshold: opts.threshold,
        io_delay: opts.io_delay,
        max_open,
        bound,
        timeout: opts.shared.timeout,
        jokes: opts.acts.jokes_path(),
        every_rate: opts.every_rate,
        pinning,
    };
    let report = client_runtime()?.block_on(sweep(&settings))?;
    printer::print(opts.shared.output, Report::Sweep(&report))?;
    if let Some(path) = &opts.chart {
        printer::write_curve(path, &report)?;
        eprintln!("bench-client: chart written to {}", path.display());
    }
    if let Some(path) = &opts.figures {
        printer::write_sweep_figures(path, &report)?;
        eprintln!("bench-client: figures written to {}", path.display());
    }
    Ok(report.servers_ok())
}

/// `compare`. Returns whether every act served every connection and exited cleanly.
fn run_compare(opts: CompareOpts) -> anyhow::Result<bool> {
    let mut settings = CompareSettings {
        acts: opts.acts.chosen(),
        conns: opts.conns.get(),
        rounds: opts.rounds.get(),
        timeout: opts.shared.timeout,
        io_delay: opts.io_delay,
        flavor: opts.flavor,
        jokes: opts.acts.jokes_path(),
        disk: slow_disk::DiskReport::plain(opts.io_delay),
    };
    if let Some(dir) = &opts.timeline {
        return run_timelines(&opts, settings, dir);
    }
    warn_if_unoptimised();
    load::ensure_open_files(opts.conns.get());
    let runtime = client_runtime()?;
    let report = match opts.slow_disk {
        None => runtime.block_on(compare(&settings))?,
        // The handlers before the mount, the mount before the servers; the mount is dropped
        // (unmounted) after the servers, however the run ends.
        Some(delay) => runtime.block_on(async {
            let signals = slow_disk::Signals::install()?;
            let disk = slow_disk::SlowDisk::mount(&settings.jokes, delay)?;
            settings.jokes = disk.jokes.clone();
            let mut report = signals.unless_interrupted(compare(&settings)).await?;
            report.disk = disk.report();
            anyhow::Ok(report)
        })?,
    };
    printer::print(opts.shared.output, Report::Compare(&report))?;
    if let Some(path) = &opts.chart {
        printer::write_chart(path, &report)?;
        eprintln!("bench-client: chart written to {}", path.display());
    }
    if let Some(path) = &opts.figures {
        printer::write_figures(path, &report)?;
        eprintln!("bench-client: figures written to {}", path.display());
    }
    Ok(report.all_ok())
}

/// `compare --timeline DIR`. Returns whether every act served every connection and exited
/// cleanly.
fn run_timelines(
    opts: &CompareOpts,
    compare: CompareSettings,
    dir: &std::path::Path,
) -> anyhow::Result<bool> {
    if opts.shared.output == cli::OutputMode::Json {
        return Err(BadInput(
            "--timeline prints a table and writes files; it has no --output json".into(),
        )
        .into());
    }
    warn_if_unoptimised();
    let settings = timeline::TimelineSettings {
        dir: dir.to_owned(),
        picture_conns: opts.timeline_conns.get(),
        compare,
    };
    load::ensure_open_files(settings.compare.conns.max(settings.picture_conns));
    let results = client_runtime()?.block_on(timeline::timelines(&settings))?;
    print!("{}", timeline::table(&results, &settings));
    if let Some(path) = &opts.figures {
        timeline::write_figures(path, &results, &settings)?;
        eprintln!("bench-client: figures written to {}", path.display());
    }
    Ok(results.iter().all(|act| act.ok))
}

/// `soak`. Returns whether every connection to every act succeeded and verified.
fn run_soak(opts: SoakOpts) -> anyhow::Result<bool> {
    warn_if_unoptimised();
    load::ensure_open_files(opts.burst.get());
    let settings = SoakSettings {
        acts: opts.acts.chosen(),
        total: opts.total.get(),
        burst: opts.burst.get(),
        timeout: opts.shared.timeout,
        jokes: opts.acts.jokes_path(),
    };
    let report = client_runtime()?.block_on(soak(&settings))?;
    printer::print(opts.shared.output, Report::Soak(&report))?;
    Ok(report.all_ok())
}

/// The client's runtime: multi-threaded, so the connections of a round are read in parallel.
fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A debug build runs several times slower, and not evenly across the acts: its numbers would
/// teach the wrong lesson.
fn warn_if_unoptimised() {
    if cfg!(debug_assertions) {
        eprintln!(
            "bench-client: warning: this is a debug build (client and servers unoptimised); \
             the timings are not meaningful. Use `cargo run --release -p bench-client -- ...`."
        );
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal: in a pipe or a log file it
/// would only be noise.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {msg:32} [{bar:30}] {pos}/{len} connections ({per_sec}, {eta} left)",
    )
    .map(|style| style.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}
