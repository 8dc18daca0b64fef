//! Replays the checked-in fuzz corpus and regression cases of the `put_get`
//! target on stable, so a bug the fuzzer found stays fixed; plus a fixed set
//! of seeded random sequences.
mod common;
mod fuzz_harness;

use std::path::Path;

fn replay_dir(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut count = 0;
    for entry in entries.flatten() {
        let data = std::fs::read(entry.path()).expect("readable corpus file");
        fuzz_harness::run(&data);
        count += 1;
    }
    count
}

#[test]
fn the_checked_in_corpus_and_regressions_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let replayed =
        replay_dir(&root.join("corpus/put_get")) + replay_dir(&root.join("regressions/put_get"));
    assert!(replayed > 0, "no corpus found under {}", root.display());
}

#[test]
fn seeded_random_sequences_pass() {
    for seed in 0..300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let data: Vec<u8> = (0..rng.usize(16..512)).map(|_| rng.u8(..)).collect();
        fuzz_harness::run(&data);
    }
}
