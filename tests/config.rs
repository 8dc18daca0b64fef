//! Semantic 6: bad config is rejected at build with an error that names the
//! field, says what is wrong and how to fix it.
mod common;

use std::time::Duration;

use common::Mock;
use ringpool::{Config, ConfigError, Pool};

fn build(edit: impl FnOnce(&mut Config)) -> Result<(), ConfigError> {
    let mut config = Config::default();
    edit(&mut config);
    Pool::builder(Mock::new()).config(config).build().map(drop)
}

fn rejected(edit: impl FnOnce(&mut Config)) -> ConfigError {
    build(edit).expect_err("config must be rejected")
}

#[test]
fn the_defaults_are_valid() {
    assert!(build(|_| {}).is_ok());
}

#[test]
fn each_bad_value_names_its_field_and_the_fix() {
    let cases: Vec<(ConfigError, &str, &str)> = vec![
        (rejected(|c| c.max_size = 0), "max_size", "at least 1"),
        (
            rejected(|c| c.min_idle = c.max_size + 1),
            "min_idle",
            "min_idle <= max_size",
        ),
        (
            rejected(|c| c.acquire_timeout = Duration::ZERO),
            "acquire_timeout",
            "try_get",
        ),
        (
            rejected(|c| c.idle_timeout = Some(Duration::ZERO)),
            "idle_timeout",
            "None",
        ),
        (
            rejected(|c| c.max_lifetime = Some(Duration::ZERO)),
            "max_lifetime",
            "None",
        ),
        (
            rejected(|c| c.lifetime_jitter = 1.0),
            "lifetime_jitter",
            "[0, 1)",
        ),
        (
            rejected(|c| c.lifetime_jitter = f64::NAN),
            "lifetime_jitter",
            "[0, 1)",
        ),
        (
            rejected(|c| c.connect_backoff = Duration::ZERO),
            "connect_backoff",
            "positive",
        ),
        (
            rejected(|c| c.connect_backoff_max = c.connect_backoff / 2),
            "connect_backoff_max",
            ">= connect_backoff",
        ),
    ];
    for (error, field, fix) in cases {
        assert_eq!(error.field, field, "{error}");
        let message = error.to_string();
        assert!(
            message.contains(field) && message.contains(fix),
            "{message}"
        );
    }
}

#[test]
fn the_idle_queue_must_hold_max_size() {
    let error = Pool::builder(Mock::new())
        .max_size(10)
        .idle_capacity(4)
        .build()
        .unwrap_err();
    assert_eq!(error.field, "idle_capacity");

    let pool = Pool::builder(Mock::new())
        .max_size(4)
        .idle_capacity(8)
        .build()
        .unwrap();
    let mut config = pool.config();
    config.max_size = 9;
    let error = pool.reconfigure(config).unwrap_err();
    assert_eq!(error.field, "max_size");
    assert!(
        error.to_string().contains("idle queue holds only 8"),
        "{error}"
    );
}
