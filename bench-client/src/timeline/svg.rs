//! A trace drawn as an SVG timeline: one lane per thread, time across, one colour per kind of
//! interval, a legend, and the run's parameters in the title.
//!
//! Drawn with plotters' SVG backend only, like the other charts: text is SVG `<text>`, for
//! the browser to render, so no font files are needed.

use std::path::Path;

use joke_server::timeline::{Interval, Kind, Trace};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::burst_span;

const WIDTH: u32 = 1000;
/// A lane's height: 30 pixels, less when there are many lanes (the blocking pool can start
/// dozens of threads for one burst), never under 14, the label's size.
fn lane_height(lanes: usize) -> u32 {
    (900 / lanes.max(1) as u32).clamp(15, 32)
}
/// Above the lanes: the title; below: the time axis and the legend.
const TOP: u32 = 70;
const BOTTOM: u32 = 150;
const LABELS: u32 = 200;

fn colour(kind: Kind) -> RGBColor {
    match kind {
        Kind::AcceptLoop => RGBColor(0x81, 0x72, 0xb2),
        Kind::Poll => RGBColor(0x4c, 0x72, 0xb0),
        Kind::Parked => RGBColor(0xc8, 0xc8, 0xc8),
        Kind::IoDelayInTaskPoll => RGBColor(0xf2, 0x9c, 0x9e),
        Kind::ReadInTaskPoll => RGBColor(0xb0, 0x1c, 0x24),
        Kind::IoDelayOnPool => RGBColor(0xf6, 0xc4, 0x8c),
        Kind::ReadOnPool => RGBColor(0xc8, 0x64, 0x10),
    }
}

/// What the legend says of a kind.
fn legend(kind: Kind) -> &'static str {
    match kind {
        Kind::AcceptLoop => "accept loop",
        Kind::Poll => "poll of a connection's task",
        Kind::Parked => "worker parked (idle)",
        Kind::IoDelayInTaskPoll => "--io-delay sleep inside a task poll (worker held)",
        Kind::ReadInTaskPoll => "blocking read inside a task poll (worker held)",
        Kind::IoDelayOnPool => "--io-delay sleep on the blocking pool",
        Kind::ReadOnPool => "blocking read on the blocking pool",
    }
}

/// The part of a lane's height an interval of `kind` fills, centred: polls fill most of it,
/// the blocking work inside them less (so the poll around it shows), a parked worker a thin
/// line.
fn thickness(kind: Kind) -> f64 {
    match kind {
        Kind::AcceptLoop | Kind::Poll => 0.8,
        Kind::Parked => 0.16,
        _ => 0.44,
    }
}

/// The order they are drawn in: later on top.
fn layer(kind: Kind) -> u8 {
    match kind {
        Kind::Parked => 0,
        Kind::AcceptLoop | Kind::Poll => 1,
        Kind::IoDelayInTaskPoll | Kind::IoDelayOnPool => 2,
        Kind::ReadInTaskPoll | Kind::ReadOnPool => 3,
    }
}

/// The title: the act and how it was run.
fn title(trace: &Trace, conns: usize) -> String {
    let about = &trace.other_data;
    let options = if about.act_options.is_empty() {
        String::new()
    } else {
        format!(" {}", about.act_options)
    };
    let load = about
        .load_average
        .map(|load| format!(", load {load:.1}"))
        .unwrap_or_default();
    // The usual runtime goes without saying; the other one is named.
    let flavor = if about.flavor == "multi-thread" {
        String::new()
    } else {
        format!(" ({})", about.flavor)
    };
    format!(
        "{}{options}: {conns} connections at once, --io-delay {}ms, {} workers{flavor}, {} CPUs{load}",
        about.act, about.io_delay_ms, about.workers, about.cpus
    )
}

/// Draws `trace`, whose burst had `conns` connections, into `path`.
pub(super) fn draw(path: &Path, trace: &Trace, conns: usize) -> anyhow::Result<()> {
    let lanes = trace.lanes();
    let mut intervals: Vec<Interval> = trace.intervals().collect();
    let (start, end) = burst_span(&intervals);
    // A little room on either side of the burst, in microseconds.
    let margin = ((end - start) * 0.02).max(200.0);
    let (from, to) = (start - margin, end + margin);
    intervals.retain(|i| i.end_us >= from && i.start_us <= to);
    intervals.sort_by_key(|i| layer(i.kind));

    let height = TOP + BOTTOM + lane_height(lanes.len()) * lanes.len().max(1) as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let lane_count = lanes.len().max(1) as f64;
    // Time in milliseconds from the burst's first poll; lane i is the band [i, i + 1),
    // counted from the top.
    let (x0, x1) = ((from - start) / 1e3, (to - start) / 1e3);
    let mut chart = ChartBuilder::on(&root)
        .caption(title(trace, conns), ("sans-serif", 17))
        .margin_top(14)
        .margin_left(10)
        .margin_right(24)
        .margin_bottom(BOTTOM - 50)
        .x_label_area_size(40)
        .y_label_area_size(LABELS)
        .build_cartesian_2d(x0..x1, lane_count..0.0)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .bold_line_style(BLACK.mix(0.1))
        .light_line_style(TRANSPARENT)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 15))
        .x_desc("milliseconds since the burst's first poll")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;

    // Each lane's position by its thread id.
    let row = |tid: u64| lanes.iter().position(|lane| lane.tid == tid);
    // An interval narrower than a pixel would vanish: draw it a pixel wide.
    let pixel = (x1 - x0) / f64::from(WIDTH - LABELS - 34);
    chart.draw_series(intervals.iter().filter_map(|interval| {
        let lane = row(interval.lane)? as f64;
        let pad = (1.0 - thickness(interval.kind)) / 2.0;
        let left = (interval.start_us - start) / 1e3;
        let right = ((interval.end_us - start) / 1e3).max(left + pixel);
        Some(Rectangle::new(
            [(left, lane + pad), (right, lane + 1.0 - pad)],
            colour(interval.kind).filled(),
        ))
    }))?;

    // The lanes' names, right-aligned against the plot.
    let name_style = ("sans-serif", (lane_height(lanes.len()) - 3).clamp(11, 16))
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, lane) in lanes.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(x0, i as f64 + 0.5));
        root.draw(&Text::new(
            lane.name.clone(),
            (x - 8, y),
            name_style.clone(),
        ))?;
    }

    // The legend: the kinds this trace has, in a row (two if they do not fit) under the axis.
    let present: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|kind| intervals.iter().any(|i| i.kind == *kind))
        .collect();
    let legend_style = ("sans-serif", 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let (mut x, mut y) = (20i32, height as i32 - 76);
    for kind in &present {
        let text = legend(*kind);
        let width = 30 + (text.chars().count() as i32 * 8);
        if x + width > WIDTH as i32 - 10 {
            x = 20;
            y += 24;
        }
        root.draw(&Rectangle::new(
            [(x, y - 6), (x + 18, y + 6)],
            colour(*kind).filled(),
        ))?;
        root.draw(&Text::new(text, (x + 24, y), legend_style.clone()))?;
        x += width + 14;
    }
    if !intervals
        .iter()
        .any(|i| i.kind.is_read() || i.kind.is_io_delay())
    {
        root.draw(&Text::new(
            "no blocking read and no --io-delay sleep was recorded",
            (x, y),
            legend_style.clone(),
        ))?;
    }
    root.present()?;
    Ok(())
}
