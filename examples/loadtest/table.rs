//! The results table, one row per mode and concurrency, and the errors
//! behind any non-zero error count.

use crate::engine::CellResult;
use crate::engine::rounds::spread_pct;

/// Milliseconds from microseconds, with as many decimals as are useful.
fn ms(micros: f64) -> String {
    let millis = micros / 1000.0;
    match millis {
        m if m >= 100.0 => format!("{m:.0}"),
        m if m >= 10.0 => format!("{m:.1}"),
        m => format!("{m:.2}"),
    }
}

/// Prints the table to stdout.
pub fn print(cells: &[CellResult]) {
    println!(
        "{:<15} {:>5} {:>8} {:>6} {:>7} {:>7} {:>7} {:>6} {:>7} {:>6} {:>8} {:>6} {:>6} {:>6}",
        "mode",
        "conc",
        "qps",
        "spread",
        "avg ms",
        "p50 ms",
        "p99 ms",
        "cpu %",
        "us/req",
        "rss MB",
        "connects",
        "reuse",
        "errors",
        "stalls"
    );
    let mut last_concurrency = None;
    for cell in cells {
        if last_concurrency.is_some_and(|c| c != cell.concurrency) {
            println!();
        }
        last_concurrency = Some(cell.concurrency);
        println!(
            "{:<15} {:>5} {:>8.0} {:>5.1}% {:>7} {:>7} {:>7} {:>6.0} {:>7.1} {:>6.1} {:>8} {:>5.1}% {:>6} {:>6}",
            cell.mode,
            cell.concurrency,
            cell.qps,
            spread_pct(cell),
            ms(cell.avg_us),
            ms(cell.p50_us as f64),
            ms(cell.p99_us as f64),
            cell.cpu_pct,
            cell.cpu_us_per_req,
            cell.rss_mb,
            cell.connects,
            cell.reuse_rate * 100.0,
            cell.errors,
            cell.stalls,
        );
    }
    let failing: Vec<_> = cells.iter().filter(|cell| cell.errors > 0).collect();
    if !failing.is_empty() {
        println!();
        println!("errors:");
        for cell in failing {
            println!(
                "  {} at {}: {} ({} timeouts, {} desyncs); first: {}",
                cell.mode,
                cell.concurrency,
                cell.errors,
                cell.timeouts,
                cell.desyncs,
                cell.first_error.as_deref().unwrap_or("-"),
            );
        }
    }
}
