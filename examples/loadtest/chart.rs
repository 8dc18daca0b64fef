//! The SVG chart: QPS (left) and p99 latency (right) by concurrency, one
//! line per mode.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::engine::CellResult;

/// A fixed colour per mode, so charts of different runs read alike.
fn color(mode: &str) -> RGBColor {
    match mode {
        "no-pool" => RGBColor(214, 39, 40),
        "ringpool" => RGBColor(31, 119, 180),
        "ringpool-uring" => RGBColor(23, 190, 207),
        "dedicated" => RGBColor(127, 127, 127),
        "deadpool" => RGBColor(255, 127, 14),
        "bb8" => RGBColor(44, 160, 44),
        _ => RGBColor(148, 103, 189),
    }
}

/// The run's modes, in the order they first appear.
fn modes(cells: &[CellResult]) -> Vec<&'static str> {
    let mut modes = Vec::new();
    for cell in cells {
        if !modes.contains(&cell.mode) {
            modes.push(cell.mode);
        }
    }
    modes
}

/// One mode's points, by concurrency.
fn series(cells: &[CellResult], mode: &str, y: fn(&CellResult) -> f64) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = cells
        .iter()
        .filter(|cell| cell.mode == mode && cell.requests > 0)
        .map(|cell| (cell.concurrency as f64, y(cell)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// Writes the chart to `path`.
pub fn write(path: &Path, cells: &[CellResult]) -> Result<(), Box<dyn Error>> {
    let answered: Vec<&CellResult> = cells.iter().filter(|cell| cell.requests > 0).collect();
    if answered.is_empty() {
        return Err("no cell answered any request: nothing to chart".into());
    }
    let fold = |f: fn(&CellResult) -> f64, pick: fn(f64, f64) -> f64, start: f64| {
        answered.iter().map(|cell| f(cell)).fold(start, pick)
    };
    let (c_min, c_max) = (
        fold(|c| c.concurrency as f64, f64::min, f64::MAX),
        fold(|c| c.concurrency as f64, f64::max, 0.0),
    );
    let x_range = (c_min * 0.8)..(c_max * 1.25);
    let qps_max = fold(|c| c.qps, f64::max, 0.0) * 1.1;
    let p99 = |cell: &CellResult| cell.p99_us as f64 / 1000.0;
    let (p99_min, p99_max) = (fold(p99, f64::min, f64::MAX), fold(p99, f64::max, 0.0));

    let root = SVGBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);

    let mut qps = ChartBuilder::on(&left)
        .caption("Throughput", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone().log_scale(), 0f64..qps_max)?;
    qps.configure_mesh()
        .x_desc("concurrent client tasks")
        .y_desc("requests per second")
        .x_label_formatter(&|c| format!("{c:.0}"))
        .y_label_formatter(&|q| format!("{:.0}k", q / 1000.0))
        .draw()?;

    let mut latency = ChartBuilder::on(&right)
        .caption("p99 latency", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            x_range.log_scale(),
            ((p99_min / 1.5).max(0.001)..(p99_max * 1.5)).log_scale(),
        )?;
    latency
        .configure_mesh()
        .x_desc("concurrent client tasks")
        .y_desc("p99 (ms, log scale)")
        .x_label_formatter(&|c| format!("{c:.0}"))
        .y_label_formatter(&|ms| format!("{ms}"))
        .draw()?;

    for mode in modes(cells) {
        let style = color(mode).stroke_width(if mode.starts_with("ringpool") { 3 } else { 2 });
        let points = series(cells, mode, |cell| cell.qps);
        qps.draw_series(std::iter::once(PathElement::new(points.clone(), style)))?
            .label(mode)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        qps.draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))?;

        let points = series(cells, mode, p99);
        latency.draw_series(std::iter::once(PathElement::new(points.clone(), style)))?;
        latency.draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))?;
    }
    qps.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()?;
    root.present()?;
    Ok(())
}
