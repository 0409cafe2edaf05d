//! Every output bench-client prints, in one place: each report as text for people or as one
//! JSON object for tools (`--output`), and `compare --chart` as an SVG file. The modes build
//! their report and hand it here; nothing else writes results to stdout.

mod chart;
mod curve;
mod figures;
mod rate;
mod text;

pub(crate) use figures::note_load_at_start;
pub(crate) use figures::{Figures, machine};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::cli::OutputMode;
use crate::compare::CompareReport;
use crate::rate::RateReport;
use crate::soak::SoakReport;
use crate::stats::LoadReport;
use crate::sweep::SweepReport;

/// A report to print, one per mode.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Report<'a> {
    Load(&'a LoadRun<'a>),
    Compare(&'a CompareReport),
    Soak(&'a SoakReport),
    Rate(&'a RateRun<'a>),
    Sweep(&'a SweepReport),
}

/// A load run: what was asked, then the report's keys (the load mode's JSON, documented in
/// `bench-client/README.md`).
#[derive(Debug, Serialize)]
pub(crate) struct LoadRun<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) conns: usize,
    pub(crate) rounds: usize,
    pub(crate) timeout_ms: f64,
    pub(crate) verify: Option<PathBuf>,
    pub(crate) send_bytes: usize,
    pub(crate) optimized: bool,
    #[serde(flatten)]
    pub(crate) report: &'a LoadReport,
}

/// A rate-mode run: what was asked, then the report's keys (documented in
/// `bench-client/README.md`).
#[derive(Debug, Serialize)]
pub(crate) struct RateRun<'a> {
    pub(crate) addr: SocketAddr,
    /// `--rate` as understood, per second (`2000/s`).
    pub(crate) rate: String,
    pub(crate) timeout_ms: f64,
    pub(crate) verify: Option<PathBuf>,
    pub(crate) send_bytes: usize,
    pub(crate) optimized: bool,
    #[serde(flatten)]
    pub(crate) report: &'a RateReport,
}

/// Prints `report` on stdout as `mode` says.
pub(crate) fn print(mode: OutputMode, report: Report<'_>) -> anyhow::Result<()> {
    match mode {
        OutputMode::Text => print!("{}", as_text(report)),
        OutputMode::Json => println!("{}", as_json(report)?),
    }
    Ok(())
}

fn as_text(report: Report<'_>) -> String {
    match report {
        Report::Load(run) => text::load_report(run),
        Report::Compare(compare) => text::compare_report(compare),
        Report::Soak(soak) => text::soak_report(soak),
        Report::Rate(run) => rate::rate_report(run),
        Report::Sweep(sweep) => rate::sweep_report(sweep),
    }
}

fn as_json(report: Report<'_>) -> serde_json::Result<String> {
    match report {
        Report::Load(run) => serde_json::to_string_pretty(run),
        Report::Compare(compare) => serde_json::to_string_pretty(compare),
        Report::Soak(soak) => serde_json::to_string_pretty(soak),
        Report::Rate(run) => serde_json::to_string_pretty(run),
        Report::Sweep(sweep) => serde_json::to_string_pretty(sweep),
    }
}

/// Draws `compare`'s results as a bar chart into the SVG file `path`.
pub(crate) fn write_chart(path: &Path, report: &CompareReport) -> anyhow::Result<()> {
    chart::write_chart(path, report)
}

/// Draws `sweep`'s curves (p99 response time against offered rate) into the SVG file `path`.
pub(crate) fn write_curve(path: &Path, report: &SweepReport) -> anyhow::Result<()> {
    curve::write_curve(path, report)
}

/// Writes `sweep`'s results as the book's keyed figures into `path`.
pub(crate) fn write_sweep_figures(path: &Path, report: &SweepReport) -> anyhow::Result<()> {
    figures::sweep_figures(report).write(path)
}

/// Creates the folder `path` is to be written in, if it names one.
fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    Ok(())
}

/// Writes `compare`'s results as a keyed figures file for the book into `path`.
pub(crate) fn write_figures(path: &Path, report: &CompareReport) -> anyhow::Result<()> {
    figures::compare_figures(report).write(path)
}
