//! Replays the checked-in fuzz corpora and regression cases on stable, so a
//! bug the fuzzer found stays fixed; plus a fixed set of seeded random
//! `put_get` sequences.
mod common;
mod fuzz_harness;

use std::path::Path;

fn replay_dir(dir: &Path, check: &impl Fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut count = 0;
    for entry in entries.flatten() {
        let data = std::fs::read(entry.path()).expect("readable corpus file");
        check(&data);
        count += 1;
    }
    count
}

fn replay_target(target: &str, check: impl Fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let replayed = replay_dir(&root.join("corpus").join(target), &check)
        + replay_dir(&root.join("regressions").join(target), &check);
    assert!(
        replayed > 0,
        "no corpus found for {target} under {}",
        root.display()
    );
}

#[test]
fn the_put_get_corpus_and_regressions_pass() {
    replay_target("put_get", fuzz_harness::run);
}

#[test]
fn the_config_parse_corpus_passes() {
    replay_target("config_parse", |data| {
        if let Ok(text) = std::str::from_utf8(data) {
            fuzz_harness::config_round_trip(text);
        }
    });
}

#[test]
fn seeded_random_sequences_pass() {
    for seed in 0..300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let data: Vec<u8> = (0..rng.usize(16..512)).map(|_| rng.u8(..)).collect();
        fuzz_harness::run(&data);
    }
}
