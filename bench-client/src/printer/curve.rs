//! `sweep --chart FILE.svg`: each act's p99 response time against the rate offered to it.
//!
//! Both axes are logarithmic: the ladder of rates doubles more or less at each step, and the
//! latencies run from a fraction of a millisecond (an act well below its knee) to seconds (one
//! whose queue has run away); on linear axes every act below its knee would be one flat line
//! on the floor. The threshold that defines the knees is drawn across.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::rate::rate_label;
use super::text::delay;
use crate::sweep::SweepReport;

const SIZE: (u32, u32) = (1200, 640);
const THRESHOLD: RGBColor = RGBColor(0x99, 0x99, 0x99);

/// One step of an act's line: the offered rate, its p99 response time in ms, whether it passed.
type Point = (f64, f64, bool);

/// Writes the chart into `path` (creating its folder).
pub(super) fn write_curve(path: &Path, report: &SweepReport) -> anyhow::Result<()> {
    super::create_parent(path)?;
    draw(path, report).with_context(|| format!("drawing the chart {}", path.display()))
}

fn draw(path: &Path, report: &SweepReport) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;

    let lines: Vec<(&str, Vec<Point>)> = report
        .acts
        .iter()
        .map(|act| {
            let points = act
                .steps
                .iter()
                .filter_map(|step| {
                    let p99 = step.run.response_ms?.p99;
                    Some((step.rate_per_sec, p99, step.passed))
                })
                .collect();
            (act.act, points)
        })
        .collect();
    let rates = || report.rates.iter().copied();
    let x_low = rates().fold(f64::INFINITY, f64::min);
    let x_high = rates().fold(0.0, f64::max);
    let (x_low, x_high) = if x_low.is_finite() && x_high > x_low {
        (x_low / 1.15, x_high * 1.15)
    } else {
        (1.0, 10.0)
    };
    let latencies = || {
        lines
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.1))
    };
    let y_low = latencies().fold(report.threshold_ms, f64::min).max(1e-3) / 1.5;
    let y_high = latencies().fold(report.threshold_ms, f64::max) * 2.0;

    let caption = format!(
        "p99 response time against offered rate (--io-delay {}, {} per rate, {})",
        delay(report.io_delay_ms),
        delay(report.step_ms),
        if report.pinning.pinned {
            "client and servers pinned apart"
        } else {
            "not pinned"
        }
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((x_low..x_high).log_scale(), (y_low..y_high).log_scale())?;
    chart
        .configure_mesh()
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .x_desc("offered rate (new connections per second, log scale)")
        .y_desc("p99 response time, ms (log scale)")
        .x_label_formatter(&|v| rate_label(v.round()))
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .draw()?;

    chart
        .draw_series(LineSeries::new(
            [(x_low, report.threshold_ms), (x_high, report.threshold_ms)],
            THRESHOLD.stroke_width(2),
        ))?
        .label(format!(
            "threshold of the knee ({})",
            delay(report.threshold_ms)
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], THRESHOLD.stroke_width(2)));

    for (i, (name, points)) in lines.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(rate, p99, _)| (rate, p99)),
                colour.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
        // A filled dot where the act passed, a hollow one where it failed.
        chart.draw_series(points.iter().map(|&(rate, p99, passed)| {
            let style = if passed {
                colour.filled()
            } else {
                colour.stroke_width(2)
            };
            Circle::new((rate, p99), 4, style)
        }))?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
