//! Random sequences of get, try_get, return, discard, detach, broken
//! connections, failing and slow dials, clock moves, reconfigurations and
//! close, checked step by step against a reference model.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_harness::run(data);
});
