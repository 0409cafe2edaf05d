//! The text output: a fixed order a reader learns once (oha's: success rate, total, slowest,
//! fastest, average, rate, then a latency histogram and percentiles, then errors by kind).
//!
//! Colour comes from `console`, which styles only when stdout is a terminal (and `NO_COLOR` is
//! unset), so piping the output to a file or another program gives plain text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use console::style;

use super::LoadRun;
use crate::compare::CompareReport;
use crate::load::ErrorKind;
use crate::soak::SoakReport;
use crate::stats::{ErrorCounts, LoadReport, Percentiles};

/// The text report of a load run.
pub(super) fn load_report(run: &LoadRun<'_>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the `let _` keeps that from looking like a bug.
    let _ = write_load_report(&mut out, run);
    out
}

/// What the load mode checks when it was not given a jokes file: it cannot know which file the
/// server serves, so it says how little it checked.
const UNVERIFIED: &str =
    ", checking only that each answer is not empty and at most 64 KiB (--verify FILE checks jokes)";

fn write_load_report(out: &mut String, run: &LoadRun<'_>) -> std::fmt::Result {
    let report = run.report;
    writeln!(
        out,
        "{} {} × {} to {}{}{}",
        style("bench-client:").bold(),
        plural(run.rounds, "round"),
        plural(run.conns, "connection"),
        run.addr,
        run.verify
            .as_ref()
            .map(|path| format!(", verifying every joke against {}", path.display()))
            .unwrap_or_else(|| UNVERIFIED.to_owned()),
        if run.send_bytes > 0 {
            format!(", sending {} first", plural(run.send_bytes, "byte"))
        } else {
            String::new()
        },
    )?;
    writeln!(out)?;
    writeln!(out, "{}", style("Summary:").bold())?;
    let rate = format!("{:.2}%", report.success_rate * 100.0);
    let rate = if report.all_succeeded() {
        style(rate).green()
    } else {
        style(rate).red()
    };
    writeln!(
        out,
        "  Success rate:    {rate} ({} of {})",
        report.succeeded, report.connections
    )?;
    writeln!(
        out,
        "  Total:           {} (all rounds)",
        ms(report.total_ms)
    )?;
    let latency = report.latency_ms;
    let pick = |f: fn(&Percentiles) -> f64| latency.as_ref().map(f).map(ms).unwrap_or("-".into());
    writeln!(out, "  Slowest:         {}", pick(|p| p.max))?;
    writeln!(out, "  Fastest:         {}", pick(|p| p.min))?;
    writeln!(out, "  Average:         {}", pick(|p| p.mean))?;
    writeln!(out, "  Connections/sec: {:.1}", report.connections_per_sec)?;
    writeln!(
        out,
        "  Wall per round:  median {} (fastest round {}, slowest {})",
        ms(report.wall_ms.median),
        ms(report.wall_ms.min),
        ms(report.wall_ms.max)
    )?;
    writeln!(
        out,
        "  Data:            {} bytes received, {} bytes sent",
        report.bytes_received, report.bytes_sent
    )?;

    if !report.latency_histogram.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            style("Latency histogram (connect to end-of-stream):").bold()
        )?;
        let most = report
            .latency_histogram
            .iter()
            .map(|bucket| bucket.count)
            .max()
            .unwrap_or(0)
            .max(1);
        let count_width = most.to_string().len();
        for bucket in &report.latency_histogram {
            // Up to 40 squares for the fullest bucket; any non-empty bucket gets at least one.
            let squares = (bucket.count * 40).div_ceil(most) as usize;
            writeln!(
                out,
                "  {:>12} [{:>count_width$}] |{}",
                ms(bucket.upper_ms),
                bucket.count,
                "■".repeat(squares)
            )?;
        }
    }

    if let Some(p) = latency {
        writeln!(out)?;
        writeln!(out, "{}", style("Latency percentiles:").bold())?;
        for (label, value) in [
            ("50.00%", p.p50),
            ("90.00%", p.p90),
            ("99.00%", p.p99),
            ("99.90%", p.p99_9),
            ("max", p.max),
        ] {
            writeln!(out, "  {label:>6} in {}", ms(value))?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            style("Phases, from the start of each connection (p50 / p99):").bold()
        )?;
        for (label, phase) in [
            ("connected", report.connect_ms),
            ("first byte", report.first_byte_ms),
            ("end", report.latency_ms),
        ] {
            if let Some(phase) = phase {
                writeln!(out, "  {label:<11} {} / {}", ms(phase.p50), ms(phase.p99))?;
            }
        }
    }

    writeln!(out)?;
    write_errors(out, report, "")?;
    Ok(())
}

/// "Errors: none", or one line per kind that occurred with an example message.
fn write_errors(out: &mut String, report: &LoadReport, indent: &str) -> std::fmt::Result {
    write_error_counts(out, &report.errors, &report.error_examples, indent)
}

/// [`write_errors`] from the counts and examples themselves.
pub(super) fn write_error_counts(
    out: &mut String,
    errors: &ErrorCounts,
    examples: &BTreeMap<String, String>,
    indent: &str,
) -> std::fmt::Result {
    if errors.total() == 0 {
        return writeln!(out, "{indent}{} none", style("Errors:").bold());
    }
    writeln!(out, "{indent}{}", style("Errors:").bold().red())?;
    for kind in ErrorKind::ALL {
        let count = errors.get(kind);
        if count == 0 {
            continue;
        }
        let example = examples
            .get(kind.name())
            .map(|e| format!(" (e.g. {e})"))
            .unwrap_or_default();
        writeln!(out, "{indent}  {:<8} {count}{example}", kind.name())?;
    }
    Ok(())
}

/// The table of `compare`.
pub(super) fn compare_report(report: &CompareReport) -> String {
    let mut out = String::new();
    let _ = write_compare_report(&mut out, report);
    out
}

fn write_compare_report(out: &mut String, report: &CompareReport) -> std::fmt::Result {
    writeln!(
        out,
        "{} {} × {} × {}, --io-delay {}, --flavor {}, jokes from {}",
        style("bench-client compare:").bold(),
        plural(report.acts.len(), "act"),
        plural(report.rounds, "round"),
        plural(report.conns, "connection"),
        delay(report.io_delay_ms),
        report.flavor,
        report.jokes.display()
    )?;
    for line in crate::slow_disk::text_lines(report) {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "Acts interleaved round by round. wall = median wall time of a round of {} connections; \
         p50, p99 = latency of one connection, over all rounds.",
        report.conns
    )?;
    writeln!(out)?;
    let baseline = report.baseline.unwrap_or("baseline");
    let short_baseline = baseline.split('-').next().unwrap_or(baseline);
    let header = format!(
        "{:<20} {:>11} {:>10} {:>10} {:>7} {:>10} {:>11} {:>10} {:>10} {:>11}   {}",
        "act",
        "wall",
        "p50",
        "p99",
        "errors",
        format!("÷ {short_baseline}"),
        "slow polls",
        "hb p99",
        "sched",
        "polls/conn",
        "2018 ÷ cached"
    );
    writeln!(out, "{}", style(header).bold())?;
    for act in &report.acts {
        let latency = act.load.latency_ms;
        let errors = act.load.failed;
        let errors_text = format!("{errors:>7}");
        let errors_text = if errors == 0 {
            style(errors_text)
        } else {
            style(errors_text).red()
        };
        let slow_polls = act
            .server
            .as_ref()
            .map(|stats| stats.slow_polls.to_string())
            .unwrap_or_else(|| "?".into());
        writeln!(
            out,
            "{:<20} {:>11} {:>10} {:>10} {errors_text} {:>10} {:>11} {:>10} {:>10} {:>11}   {}",
            act.act,
            ms(act.load.wall_ms.median),
            latency.map(|p| ms(p.p50)).unwrap_or("-".into()),
            latency.map(|p| ms(p.p99)).unwrap_or("-".into()),
            act.ratio_to_baseline
                .map(|r| format!("{r:.2}×"))
                .unwrap_or("-".into()),
            slow_polls,
            act.heartbeat_p99_ms().map(ms).unwrap_or("?".into()),
            act.scheduled_us()
                .map(|us| format!("{us:.0} µs"))
                .unwrap_or("?".into()),
            act.polls_per_connection
                .map(|polls| format!("{polls:.2}"))
                .unwrap_or("?".into()),
            act.seed_ratio_2018,
        )?;
    }
    if report.baseline.is_none() {
        writeln!(
            out,
            "(no ratios: add finale-cached to --acts to compare against it)"
        )?;
    }
    if let Some(threshold) = report
        .acts
        .iter()
        .find_map(|act| act.server.as_ref().map(|s| s.slow_poll_threshold_us))
    {
        writeln!(
            out,
            "slow polls: polls of a connection task longer than {threshold} µs, counted by the \
             server (a task held its thread that long)."
        )?;
        writeln!(
            out,
            "hb p99: how late the server's heartbeat (due every millisecond) ran, 99th \
             percentile, while it served: the wait any task suffered. sched: a connection \
             task's mean time from woken to polled. polls/conn: polls per joke served."
        )?;
    }

    for act in &report.acts {
        if act.load.failed > 0 {
            writeln!(out)?;
            writeln!(out, "{}:", style(act.act).bold())?;
            write_errors(out, &act.load, "  ")?;
        }
        if let Some(problem) = &act.server_problem {
            writeln!(out)?;
            writeln!(out, "{} {problem}", style("server problem:").red().bold())?;
        }
    }
    Ok(())
}

/// A delay given in milliseconds, as humantime writes it, but "0ms" rather than "0s" (as the
/// `--io-delay` default reads).
pub(super) fn delay(milliseconds: f64) -> String {
    if milliseconds <= 0.0 {
        return "0ms".into();
    }
    humantime::format_duration(std::time::Duration::from_secs_f64(milliseconds / 1e3)).to_string()
}

/// "1 round", "2 rounds".
pub(super) fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Milliseconds, with three decimals below 10 ms and fewer above (a histogram label then stays
/// narrow, and nobody needs microseconds of a 2-second round).
pub(super) fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.3} ms")
    } else if value < 1000.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// The report as a table for people.
pub(super) fn soak_report(report: &SoakReport) -> String {
    let mib = |kib: Option<u64>| {
        kib.map_or("?".to_string(), |kib| {
            format!("{:.1} MiB", kib as f64 / 1024.0)
        })
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bench-client soak: {} connections per act in bursts of {}, every joke verified against {}",
        report.total,
        report.burst,
        report.jokes.display()
    );
    let _ = writeln!(
        out,
        "Memory is the server's resident set (VmRSS): idle after start-up, after the first \
         burst, and after the last; growth is from the first burst to the last, and over the \
         second half of the bursts alone (a leak keeps climbing there).\n"
    );
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>7} {:>10} {:>11} {:>11} {:>11} {:>10} {:>12}",
        "act",
        "served",
        "errors",
        "wall/burst",
        "rss idle",
        "rss first",
        "rss end",
        "growth",
        "2nd half"
    );
    for act in &report.acts {
        let wall = format!("{:.0} ms", act.load.wall_ms.median);
        let signed_mib = |kib: Option<i64>| {
            kib.map_or("?".to_string(), |kib| {
                format!("{:+.1} MiB", kib as f64 / 1024.0)
            })
        };
        let growth = signed_mib(act.rss_growth_kib());
        let second_half = signed_mib(act.rss_growth_second_half_kib());
        let served = act
            .server
            .as_ref()
            .map_or("?".to_string(), |stats| stats.served.to_string());
        let _ = writeln!(
            out,
            "{:<20} {:>9} {:>7} {:>10} {:>11} {:>11} {:>11} {:>10} {:>12}",
            act.act,
            served,
            act.load.errors.total(),
            wall,
            mib(act.rss_kib_idle),
            mib(act.rss_kib_after_first_burst),
            mib(act.rss_kib_end),
            growth,
            second_half
        );
        if let Some(problem) = &act.server_problem {
            let _ = writeln!(out, "  server problem: {problem}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Tally;

    #[test]
    fn milliseconds_keep_a_sensible_precision() {
        assert_eq!(ms(0.04123), "0.041 ms");
        assert_eq!(ms(12.345), "12.3 ms");
        assert_eq!(ms(2345.6), "2346 ms");
    }

    #[test]
    fn delays_read_like_the_option() {
        assert_eq!(delay(0.0), "0ms");
        assert_eq!(delay(2.0), "2ms");
        assert_eq!(delay(1500.0), "1s 500ms");
    }

    #[test]
    fn an_empty_run_prints_without_panicking() {
        let report = Tally::default().report();
        let run = LoadRun {
            addr: "127.0.0.1:1".parse().unwrap(),
            conns: 0,
            rounds: 1,
            timeout_ms: 1.0,
            verify: None,
            send_bytes: 0,
            optimized: false,
            report: &report,
        };
        let text = load_report(&run);
        assert!(text.contains("Success rate"), "{text}");
        assert!(text.contains("Errors"), "{text}");
        // Without --verify the report says how little was checked.
        assert!(text.lines().next().unwrap().contains(UNVERIFIED), "{text}");
        let verified = LoadRun {
            verify: Some("jokes.txt".into()),
            ..run
        };
        let text = load_report(&verified);
        assert!(
            text.contains("verifying every joke against jokes.txt") && !text.contains(UNVERIFIED),
            "{text}"
        );
    }
}
