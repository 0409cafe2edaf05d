//! `compare --chart FILE.svg`: the table as a picture for the book.
//!
//! plotters draws it with its SVG backend only (the workspace turns its default features off),
//! so text is written as SVG `<text>` for the browser to render: no font files, no system
//! libraries.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::text::{delay, ms};
use crate::compare::CompareReport;

const SIZE: (u32, u32) = (1200, 560);
const BAR: RGBColor = RGBColor(0x4c, 0x72, 0xb0);
const P99: RGBColor = RGBColor(0xc4, 0x4e, 0x52);
const HEARTBEAT: RGBColor = RGBColor(0xdd, 0x84, 0x52);

/// Writes a bar chart of each act's median wall time per round, with a mark at its p99
/// connection latency and one at its server's heartbeat p99 (the victims' wait); under each
/// act's name, its slow polls and its connection tasks' scheduling delay.
pub(super) fn write_chart(path: &Path, report: &CompareReport) -> anyhow::Result<()> {
    super::create_parent(path)?;
    draw(path, report).with_context(|| format!("drawing the chart {}", path.display()))
}

fn draw(path: &Path, report: &CompareReport) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;

    let bars: Vec<(&str, f64, Option<f64>)> = report
        .acts
        .iter()
        .map(|act| {
            let p99 = act.load.latency_ms.map(|p| p.p99);
            (act.act, act.load.wall_ms.median, p99)
        })
        .collect();
    let highest = bars
        .iter()
        .map(|&(_, wall, p99)| wall.max(p99.unwrap_or(0.0)))
        .fold(0.0, f64::max);
    // Head room above the tallest bar for its label; and a non-empty axis when all are zero.
    let y_top = if highest > 0.0 { highest * 1.25 } else { 1.0 };

    let io_delay = delay(report.io_delay_ms);
    let caption = format!(
        "Median wall time of a round of {} connections (--io-delay {io_delay}, --flavor {}, {} rounds)",
        report.conns, report.flavor, report.rounds
    );
    // The x axis runs from 0 to the number of acts; act i owns the slice [i, i + 1). The
    // act names are drawn by hand below, under each bar's centre.
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(56)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..bars.len().max(1) as f64, 0f64..y_top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .y_desc("milliseconds")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;

    chart
        .draw_series(bars.iter().enumerate().map(|(i, &(_, wall, _))| {
            let left = i as f64 + 0.15;
            Rectangle::new([(left, 0.0), (left + 0.7, wall)], BAR.filled())
        }))?
        .label("median wall time per round")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], BAR.filled()));
    chart
        .draw_series(bars.iter().enumerate().filter_map(|(i, &(_, _, p99))| {
            let p99 = p99?;
            let left = i as f64 + 0.08;
            Some(PathElement::new(
                vec![(left, p99), (left + 0.84, p99)],
                P99.stroke_width(3),
            ))
        }))?
        .label("p99 latency of one connection")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], P99.stroke_width(3)));
    chart
        .draw_series(report.acts.iter().enumerate().filter_map(|(i, act)| {
            let late = act.heartbeat_p99_ms()?;
            let left = i as f64 + 0.25;
            Some(PathElement::new(
                vec![(left, late), (left + 0.5, late)],
                HEARTBEAT.stroke_width(5),
            ))
        }))?
        .label("p99 lateness of the server's 1 ms heartbeat")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], HEARTBEAT.stroke_width(5)));

    let value_style = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;

    let name_style = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (i, &(name, wall, p99)) in bars.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(name, (x, y + 8), name_style.clone()))?;
        let act = &report.acts[i];
        if let Some(stats) = &act.server {
            let detail = format!(
                "{} slow polls, sched {:.0} µs",
                stats.slow_polls, stats.mean_scheduled_us
            );
            let small = ("sans-serif", 11)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(detail, (x, y + 26), small))?;
        }
        // The value sits a few pixels above both the bar and its p99 mark, so the mark never
        // strikes it out.
        let top = wall.max(p99.unwrap_or(0.0));
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, top));
        root.draw(&Text::new(ms(wall), (x, y - 4), value_style.clone()))?;
    }
    root.present()?;
    Ok(())
}
