//! The text output of the rate mode and of `sweep`.

use std::fmt::Write as _;

use console::style;

use super::RateRun;
use super::text::{delay, ms, plural, write_error_counts};
use crate::rate::RateReport;
use crate::sweep::{SweepAct, SweepReport, SweepStep};

/// The text report of a rate-mode run: the summary, then response and service time side by
/// side, the client's own lateness, the errors.
pub(super) fn rate_report(run: &RateRun<'_>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_rate_report(&mut out, run);
    out
}

fn write_rate_report(out: &mut String, run: &RateRun<'_>) -> std::fmt::Result {
    let report = run.report;
    writeln!(
        out,
        "{} {} for {} (after {} of warm-up, not counted) to {}{}, at most {} open",
        style("bench-client:").bold(),
        run.rate,
        delay(report.duration_ms),
        delay(report.warmup_ms),
        run.addr,
        run.verify
            .as_ref()
            .map(|path| format!(", verifying against {}", path.display()))
            .unwrap_or_default(),
        report.max_open,
    )?;
    writeln!(out)?;
    writeln!(out, "{}", style("Summary:").bold())?;
    let rate = if report.scheduled == 0 {
        0.0
    } else {
        report.succeeded as f64 / report.scheduled as f64 * 100.0
    };
    let rate = format!("{rate:.2}%");
    let rate = if report.all_succeeded() {
        style(rate).green()
    } else {
        style(rate).red()
    };
    writeln!(
        out,
        "  Success rate:    {rate} ({} of {} scheduled{})",
        report.succeeded,
        report.scheduled,
        if report.not_started > 0 {
            format!(", {} never started", report.not_started)
        } else {
            String::new()
        }
    )?;
    writeln!(out, "  Target rate:     {:.1}/s", report.target_per_sec)?;
    writeln!(
        out,
        "  Achieved:        {:.1} jokes/s (received whole)",
        report.achieved_per_sec
    )?;
    writeln!(
        out,
        "  Warm-up:         {} connections, not counted",
        report.warmup_connections
    )?;
    writeln!(out, "  Schedule:        {}", schedule_verdict(report))?;
    writeln!(
        out,
        "  Data:            {} bytes received, {} bytes sent",
        report.bytes_received, report.bytes_sent
    )?;

    writeln!(out)?;
    writeln!(
        out,
        "{}",
        style("Response time (from the moment each connection was due) and service time (from its connect):")
            .bold()
    )?;
    writeln!(out, "  {:>6}    {:>12} {:>12}", "", "response", "service")?;
    let cell = |p: Option<crate::stats::Percentiles>, f: fn(&crate::stats::Percentiles) -> f64| {
        p.as_ref().map(f).map(ms).unwrap_or("-".into())
    };
    for (label, pick) in [
        (
            "50.00%",
            (|p| p.p50) as fn(&crate::stats::Percentiles) -> f64,
        ),
        ("90.00%", |p| p.p90),
        ("99.00%", |p| p.p99),
        ("99.90%", |p| p.p99_9),
        ("max", |p| p.max),
    ] {
        writeln!(
            out,
            "  {label:>6} in {:>12} {:>12}",
            cell(report.response_ms, pick),
            cell(report.service_ms, pick)
        )?;
    }
    if let Some(late) = report.lateness_ms {
        writeln!(out)?;
        writeln!(
            out,
            "{} p50 {}, p99 {}, max {}",
            style("Client lateness in starting connections:").bold(),
            ms(late.p50),
            ms(late.p99),
            ms(late.max)
        )?;
    }
    writeln!(out)?;
    write_error_counts(out, &report.errors, &report.error_examples, "")?;
    Ok(())
}

/// Whether the client kept its schedule, in words.
fn schedule_verdict(report: &RateReport) -> String {
    let p99 = report.lateness_ms.map(|l| ms(l.p99)).unwrap_or("-".into());
    if report.limited_by.is_some() {
        style(format!(
            "NOT KEPT: {} connections waited for a free slot (bound: {} open)",
            report.waited_for_slot, report.max_open
        ))
        .red()
        .to_string()
    } else if report.schedule_kept {
        format!(
            "kept (p99 lateness {p99}, within {})",
            ms(report.lateness_tolerance_ms)
        )
    } else {
        style(format!(
            "NOT KEPT: p99 lateness {p99}, over {}: these numbers are partly the client's",
            ms(report.lateness_tolerance_ms)
        ))
        .red()
        .to_string()
    }
}

/// A short number of milliseconds for a table cell: 0.213, 4.56, 45.6, 456.
pub(super) fn short_ms(value: f64) -> String {
    if value < 1.0 {
        format!("{value:.3}")
    } else if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// A rate of the ladder as a column header: `1500/s`.
pub(super) fn rate_label(per_second: f64) -> String {
    crate::rate::per_second_text(per_second)
}

/// One act's cell at one rate: `p50/p99`, a `*` when it failed, `-` when it did not run.
pub(super) fn step_cell(step: Option<&SweepStep>) -> String {
    let Some(step) = step else {
        return "-".into();
    };
    let mark = if step.passed { "" } else { "*" };
    match step.run.response_ms {
        Some(r) => format!("{}/{}{mark}", short_ms(r.p50), short_ms(r.p99)),
        None => format!("no joke{mark}"),
    }
}

/// The act's step at `rate`, if it ran it.
pub(super) fn step_at(act: &SweepAct, rate: f64) -> Option<&SweepStep> {
    act.steps.iter().find(|step| step.rate_per_sec == rate)
}

/// An act's knee in words: `1000/s`, `≥ 8000/s (every rate passed)`, `none (…)`.
pub(super) fn knee_text(act: &SweepAct) -> String {
    match act.knee_per_sec {
        Some(knee) if act.passed_every_rate => {
            format!("≥ {} (passed every rate)", rate_label(knee))
        }
        Some(knee) => rate_label(knee),
        None => "none (failed the lowest rate)".into(),
    }
}

/// Why a step failed, in a few words.
pub(super) fn failure_reason(step: &SweepStep, threshold_ms: f64) -> String {
    let run = &step.run;
    let mut reasons = Vec::new();
    if run.limited_by.is_some() {
        reasons.push(format!(
            "{} connections waited for one of the {} slots",
            run.waited_for_slot, run.max_open
        ));
    }
    if run.failed > 0 {
        let kinds: Vec<String> = crate::load::ErrorKind::ALL
            .iter()
            .filter(|&&kind| run.errors.get(kind) > 0)
            .map(|&kind| format!("{} {}", run.errors.get(kind), kind.name()))
            .collect();
        reasons.push(format!("errors: {}", kinds.join(", ")));
    }
    if run.not_started > 0 {
        reasons.push(format!("{} never started", run.not_started));
    }
    match run.response_ms {
        Some(r) if r.p99 > threshold_ms => {
            reasons.push(format!("p99 {} over {}", ms(r.p99), ms(threshold_ms)))
        }
        None => reasons.push("no joke received".into()),
        _ => {}
    }
    reasons.join("; ")
}

/// The table of `sweep`, the knees, and the client's lateness.
pub(super) fn sweep_report(report: &SweepReport) -> String {
    let mut out = String::new();
    let _ = write_sweep_report(&mut out, report);
    out
}

fn write_sweep_report(out: &mut String, report: &SweepReport) -> std::fmt::Result {
    writeln!(
        out,
        "{} {} × {}, {} each after {} of warm-up, --io-delay {}, jokes from {}",
        style("bench-client sweep:").bold(),
        plural(report.acts.len(), "act"),
        plural(report.rates.len(), "rate"),
        delay(report.step_ms),
        delay(report.warmup_ms),
        delay(report.io_delay_ms),
        report.jokes.display()
    )?;
    writeln!(out, "{}.", report.pinning.note)?;
    writeln!(
        out,
        "Cells: response time p50/p99 in ms, from the moment each connection was due; \
         * = failed (errors, the --max-open bound reached, or p99 over {}); - = not run (the act \
         had stopped climbing).",
        ms(report.threshold_ms)
    )?;
    writeln!(out)?;
    let width = report
        .acts
        .iter()
        .flat_map(|act| {
            report
                .rates
                .iter()
                .map(|&rate| step_cell(step_at(act, rate)))
        })
        .map(|cell| cell.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    let mut header = format!("{:<20}", "act");
    for &rate in &report.rates {
        let _ = write!(header, " {:>width$}", rate_label(rate));
    }
    writeln!(out, "{}", style(header).bold())?;
    for act in &report.acts {
        write!(out, "{:<20}", act.act)?;
        for &rate in &report.rates {
            let cell = step_cell(step_at(act, rate));
            let cell = format!("{cell:>width$}");
            if cell.ends_with('*') {
                write!(out, " {}", style(cell).red())?;
            } else {
                write!(out, " {cell}")?;
            }
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        style(format!(
            "Knees (the highest rate with p99 within {} and no errors, at it and every lower rate):",
            ms(report.threshold_ms)
        ))
        .bold()
    )?;
    for act in &report.acts {
        let first_failure = act
            .steps
            .iter()
            .find(|step| !step.passed)
            .map(|step| {
                format!(
                    "  (at {}: {})",
                    rate_label(step.rate_per_sec),
                    failure_reason(step, report.threshold_ms)
                )
            })
            .unwrap_or_default();
        writeln!(out, "  {:<20} {}{first_failure}", act.act, knee_text(act))?;
    }
    writeln!(out)?;
    match &report.highest_sustained {
        Some(top) => writeln!(
            out,
            "Client: at the highest rate any act sustained, {} ({}), bench-client started its \
             connections {} late at p99 ({} at most).",
            rate_label(top.rate_per_sec),
            top.act,
            ms(top.lateness_p99_ms),
            ms(top.lateness_max_ms)
        )?,
        None => writeln!(out, "Client: no act sustained any rate of the ladder.")?,
    }
    for act in &report.acts {
        for step in &act.steps {
            if let Some(warning) = step.run.lateness_message() {
                writeln!(
                    out,
                    "{} {} at {}: {warning}",
                    style("warning:").yellow().bold(),
                    act.act,
                    rate_label(step.rate_per_sec)
                )?;
            }
        }
        if let Some(problem) = &act.server_problem {
            writeln!(out, "{} {problem}", style("server problem:").red().bold())?;
        }
    }
    Ok(())
}
