//! Several rounds per cell, the modes in a rotating order, and the median
//! round as the cell's figure: on a shared machine one window per cell
//! lets the cell's position and the machine's moment decide, not the pool.

use super::{CellResult, Mode};

/// The order of the modes in round `round` (0-based): each round starts
/// one mode later, so every mode runs first, middle and last in turn.
/// Returns each mode with its index in `modes`.
pub fn rotated(modes: &[Mode], round: usize) -> Vec<(usize, Mode)> {
    (0..modes.len())
        .map(|step| {
            let index = (step + round) % modes.len();
            (index, modes[index])
        })
        .collect()
}

/// One cell from its rounds: the round with the median QPS (the lower
/// middle one for an even count) gives every figure, with each round's QPS
/// and their spread beside it; failures are summed over all rounds, so an
/// error in any round shows.
pub fn median(mut rounds: Vec<CellResult>) -> CellResult {
    assert!(!rounds.is_empty(), "a cell ran at least one round");
    let in_run_order: Vec<f64> = rounds.iter().map(|cell| cell.qps).collect();
    let (errors, timeouts, desyncs, stalls) = rounds.iter().fold((0, 0, 0, 0), |sum, cell| {
        (
            sum.0 + cell.errors,
            sum.1 + cell.timeouts,
            sum.2 + cell.desyncs,
            sum.3 + cell.stalls,
        )
    });
    let first_error = rounds.iter().find_map(|cell| cell.first_error.clone());
    rounds.sort_by(|a, b| a.qps.total_cmp(&b.qps));
    let (low, high) = (rounds[0].qps, rounds[rounds.len() - 1].qps);
    let mut cell = rounds.swap_remove((rounds.len() - 1) / 2);
    cell.rounds = in_run_order.len();
    cell.qps_min = low;
    cell.qps_max = high;
    cell.qps_rounds = in_run_order;
    cell.errors = errors;
    cell.timeouts = timeouts;
    cell.desyncs = desyncs;
    cell.stalls = stalls;
    cell.first_error = first_error;
    cell
}

/// The spread of a cell's rounds, `(max - min) / median`, as a percentage.
pub fn spread_pct(cell: &CellResult) -> f64 {
    match cell.qps {
        0.0 => 0.0,
        qps => (cell.qps_max - cell.qps_min) / qps * 100.0,
    }
}
