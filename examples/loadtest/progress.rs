//! The progress bar, drawn on stderr, and not at all when stderr is not a
//! terminal (so redirected output stays clean).

use std::io::IsTerminal;
use std::time::Duration;

use crate::engine::CellResult;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = match std::io::stderr().is_terminal() {
            true => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            false => ProgressBar::hidden(),
        };
        Progress { bar }
    }

    /// `cells` cells will run, taking at least `estimate`.
    pub fn start(&self, cells: usize, estimate: Duration) {
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} cells  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        self.bar.set_style(style);
        self.bar.set_length(cells as u64);
        self.bar.println(format!(
            "{cells} cells, about {}s",
            estimate.as_secs_f64().ceil()
        ));
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    pub fn cell(&self, index: usize, mode: &str, concurrency: usize) {
        self.bar
            .set_message(format!("#{} {mode} at {concurrency}", index + 1));
    }

    /// A cell finished; its errors are worth seeing while the run goes on.
    pub fn done(&self, cell: &CellResult) {
        if cell.errors > 0 {
            self.bar.println(format!(
                "{} at {}: {} errors",
                cell.mode, cell.concurrency, cell.errors
            ));
        }
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
