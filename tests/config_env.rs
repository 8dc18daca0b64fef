//! `Config::from_env`: `RINGPOOL_*` variables override the defaults, and a
//! bad one is named in the error. (Alone in its binary: it edits the
//! process environment.)

use std::time::Duration;

use ringpool::Config;

#[test]
fn environment_variables_override_the_defaults() {
    // SAFETY: this binary has this one test, so no other thread reads or
    // writes the environment while it runs.
    unsafe {
        std::env::set_var("RINGPOOL_MAX_SIZE", "64");
        std::env::set_var("RINGPOOL_IDLE_TIMEOUT", "45s");
        std::env::set_var("RINGPOOL_MAX_LIFETIME", "none");
    }
    let config = Config::from_env().unwrap();
    assert_eq!(config.max_size, 64);
    assert_eq!(config.idle_timeout, Some(Duration::from_secs(45)));
    assert_eq!(config.max_lifetime, None);
    assert_eq!(config.acquire_timeout, Config::default().acquire_timeout);

    // SAFETY: as above.
    unsafe { std::env::set_var("RINGPOOL_ACQUIRE_TIMEOUT", "whenever") };
    let error = Config::from_env().unwrap_err();
    assert_eq!(error.field, "acquire_timeout");
    assert!(
        error.to_string().contains("RINGPOOL_ACQUIRE_TIMEOUT"),
        "{error}"
    );
}
