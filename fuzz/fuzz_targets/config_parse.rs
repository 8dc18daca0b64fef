//! Config text from anywhere (a file, an environment variable) never panics
//! the parser, and what parses prints back to text that parses to the same
//! config.
#![no_main]

#[path = "../../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../tests/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|text: &str| {
    fuzz_harness::config_round_trip(text);
});
