//! ringpool against no pool in the four terms the article reports, beside
//! its figures, and the targets as ratios within this run.

use crate::engine::CellResult;

/// The article's improvements of pooling over dialing per request.
const ARTICLE: [(&str, &str); 4] = [
    ("QPS", "+30 %"),
    ("average latency", "-24 %"),
    ("CPU per request (client)", "-27 %"),
    ("peak RSS (process, cell)", "-12 %"),
];

fn find<'a>(cells: &'a [CellResult], mode: &str, concurrency: usize) -> Option<&'a CellResult> {
    cells
        .iter()
        .find(|cell| cell.mode == mode && cell.concurrency == concurrency)
}

/// The concurrency levels of the run, in order, each once.
fn levels(cells: &[CellResult]) -> Vec<usize> {
    let mut levels: Vec<usize> = Vec::new();
    for cell in cells {
        if !levels.contains(&cell.concurrency) {
            levels.push(cell.concurrency);
        }
    }
    levels
}

fn change(new: f64, old: f64) -> String {
    match old {
        0.0 => "n/a".into(),
        _ => format!("{:+.0} %", (new / old - 1.0) * 100.0),
    }
}

/// Prints ringpool's change over no-pool per concurrency, beside the
/// article's figures (if both modes ran).
pub fn print_article(cells: &[CellResult]) {
    let levels = levels(cells);
    let pairs: Vec<_> = levels
        .iter()
        .filter_map(|&c| Some((c, find(cells, "ringpool", c)?, find(cells, "no-pool", c)?)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!();
    print!("{:<28}", "ringpool vs no-pool");
    for (c, _, _) in &pairs {
        print!(" {:>9}", format!("c={c}"));
    }
    println!(" {:>9}", "article");
    type Metric = fn(&CellResult) -> f64;
    let metrics: [Metric; 4] = [
        |cell| cell.qps,
        |cell| cell.avg_us,
        |cell| cell.cpu_us_per_req,
        |cell| cell.rss_mb,
    ];
    for ((label, article), metric) in ARTICLE.iter().zip(metrics) {
        print!("{label:<28}");
        for (_, ring, plain) in &pairs {
            print!(" {:>9}", change(metric(ring), metric(plain)));
        }
        println!(" {article:>9}");
    }
}

/// One target at every concurrency where it applies.
struct Target {
    what: &'static str,
    /// The concurrency levels it applies to.
    applies: fn(usize) -> bool,
    /// The other mode.
    against: &'static str,
    /// ringpool's figure over the other's, and whether that meets it.
    ratio: fn(&CellResult, &CellResult) -> (f64, bool),
}

const TARGETS: [Target; 9] = [
    Target {
        what: "QPS >= 3x no-pool (c >= 50)",
        applies: |c| c >= 50,
        against: "no-pool",
        ratio: |ring, other| qps_ratio(ring, other, 3.0),
    },
    Target {
        what: "QPS >= 5x no-pool-resumed (TLS, c = 50)",
        applies: |c| c == 50,
        against: "no-pool-resumed",
        ratio: |ring, other| qps_ratio(ring, other, 5.0),
    },
    Target {
        what: "QPS within 2 % of dedicated (c = 1, 50)",
        applies: |c| c == 1 || c == 50,
        against: "dedicated",
        ratio: |ring, other| qps_ratio(ring, other, 0.98),
    },
    Target {
        what: "QPS above deadpool",
        applies: |_| true,
        against: "deadpool",
        ratio: |ring, other| qps_ratio(ring, other, 1.0),
    },
    Target {
        what: "QPS above bb8",
        applies: |_| true,
        against: "bb8",
        ratio: |ring, other| qps_ratio(ring, other, 1.0),
    },
    Target {
        what: "QPS above tonic-channel",
        applies: |_| true,
        against: "tonic-channel",
        ratio: |ring, other| qps_ratio(ring, other, 1.0),
    },
    Target {
        what: "p99 below tonic-channel",
        applies: |_| true,
        against: "tonic-channel",
        ratio: |ring, other| {
            let ratio = ring.p99_us as f64 / other.p99_us as f64;
            (ratio, ratio < 1.0)
        },
    },
    Target {
        what: "CPU/request below no-pool",
        applies: |_| true,
        against: "no-pool",
        ratio: |ring, other| {
            let ratio = ring.cpu_us_per_req / other.cpu_us_per_req;
            (ratio, ratio < 1.0)
        },
    },
    Target {
        what: "p99 below no-pool",
        applies: |_| true,
        against: "no-pool",
        ratio: |ring, other| {
            let ratio = ring.p99_us as f64 / other.p99_us as f64;
            (ratio, ratio < 1.0)
        },
    },
];

/// The ratio of the median rounds' QPS. "Above" (`at_least` 1) means
/// beyond the spread: ringpool's slowest round faster than the other's
/// fastest; the others are floors on the medians.
fn qps_ratio(ring: &CellResult, other: &CellResult, at_least: f64) -> (f64, bool) {
    let ratio = ring.qps / other.qps;
    let met = if at_least == 1.0 {
        ratio > 1.0 && ring.qps_min > other.qps_max
    } else {
        ratio >= at_least
    };
    (ratio, met)
}

/// Prints every target that this run's modes can check.
pub fn print_targets(cells: &[CellResult]) {
    let levels = levels(cells);
    let mut header = false;
    for target in &TARGETS {
        let checks: Vec<String> = levels
            .iter()
            .filter(|&&c| (target.applies)(c))
            .filter_map(|&c| {
                let ring = find(cells, "ringpool", c)?;
                let other = find(cells, target.against, c)?;
                let (ratio, met) = (target.ratio)(ring, other);
                Some(format!(
                    "c={c} {ratio:.3}x {}",
                    if met { "met" } else { "MISSED" }
                ))
            })
            .collect();
        if checks.is_empty() {
            continue;
        }
        if !header {
            println!();
            println!(
                "targets (ringpool's median round over the other mode's, this run; \"above\" \
                 met only beyond the rounds' spread):"
            );
            header = true;
        }
        println!("  {:<30} {}", target.what, checks.join(", "));
    }
}
