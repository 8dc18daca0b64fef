//! `Config::from_env` and `Config::from_env_prefixed`: variables override
//! the defaults, a bad one is named in the error, and a typo under a pool's
//! prefix is answered with the closest setting. (Alone in its binary: it edits the
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

    // A second pool in the same process reads its own prefix, and a typo
    // under it is an error that names the closest variable.
    // SAFETY: as above.
    unsafe {
        std::env::set_var("PAYMENTS_POOL_MAX_SIZE", "12");
        std::env::set_var("PAYMENTS_POOL_PING_AFTER", "2s");
    }
    let payments = Config::from_env_prefixed("PAYMENTS_POOL_").unwrap();
    assert_eq!(payments.max_size, 12);
    assert_eq!(payments.ping_after, Some(Duration::from_secs(2)));
    assert_eq!(payments.idle_timeout, Config::default().idle_timeout);
    // SAFETY: as above.
    unsafe { std::env::set_var("PAYMENTS_POOL_MAX_SZIE", "64") };
    let error = Config::from_env_prefixed("PAYMENTS_POOL_").unwrap_err();
    assert!(
        error.to_string().contains("PAYMENTS_POOL_MAX_SZIE")
            && error.fix.contains("did you mean PAYMENTS_POOL_MAX_SIZE?"),
        "{error}"
    );
}
