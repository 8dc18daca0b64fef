//! Settings as text: `key=value` pairs and `RINGPOOL_*` environment
//! variables, so a service can tune its pool without a rebuild.
//!
//! Durations use `humantime`'s format (`250ms`, `30s`, `5m`, `1h 30m`); an
//! optional duration also accepts `none`. `Display` writes the same format,
//! and parsing what it wrote gives back the same config.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::config::{Config, ConfigError};

/// Every setting's name, in `Display` order.
pub const SETTINGS: [&str; 16] = [
    "max_size",
    "min_idle",
    "acquire_timeout",
    "idle_timeout",
    "max_lifetime",
    "lifetime_jitter",
    "check_after",
    "connect_backoff",
    "connect_backoff_max",
    "ping_after",
    "ping_timeout",
    "max_concurrent_dials",
    "breaker_threshold",
    "maintenance_interval",
    "leak_threshold",
    "demand_half_life",
];

fn count(field: &'static str, value: &str) -> Result<usize, ConfigError> {
    value.trim().parse().map_err(|_| {
        ConfigError::new(
            field,
            format!("`{value}` is not a whole number"),
            "write a count such as 16",
        )
    })
}

fn duration(field: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|error| {
        ConfigError::new(
            field,
            format!("`{value}` is not a duration ({error})"),
            "write a number with a unit, such as 250ms, 30s or 5m",
        )
    })
}

fn optional_duration(field: &'static str, value: &str) -> Result<Option<Duration>, ConfigError> {
    match value.trim() {
        "none" | "None" | "off" => Ok(None),
        other => duration(field, other).map(Some),
    }
}

fn optional_count(field: &'static str, value: &str) -> Result<Option<u32>, ConfigError> {
    match value.trim() {
        "none" | "None" | "off" => Ok(None),
        other => other.parse().map(Some).map_err(|_| {
            ConfigError::new(
                field,
                format!("`{value}` is not a whole number"),
                "write a count such as 5, or none",
            )
        }),
    }
}

fn fraction(field: &'static str, value: &str) -> Result<f64, ConfigError> {
    match value.trim().parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(number),
        _ => Err(ConfigError::new(
            field,
            format!("`{value}` is not a finite number"),
            "write a fraction such as 0.025",
        )),
    }
}

impl Config {
    /// Sets one setting from text: `config.set("idle_timeout", "30s")`.
    /// The result is not validated until the config is used (build or
    /// [`reconfigure`](crate::Pool::reconfigure)).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for an unknown name or a value that does not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut config = ringpool::Config::default();
    /// config.set("idle_timeout", "90s").unwrap();
    /// config.set("max_lifetime", "none").unwrap();
    /// assert_eq!(config.idle_timeout, Some(Duration::from_secs(90)));
    /// assert_eq!(config.max_lifetime, None);
    /// assert_eq!(config.set("max_size", "lots").unwrap_err().field, "max_size");
    /// ```
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        match name.trim() {
            "max_size" => self.max_size = count("max_size", value)?,
            "min_idle" => self.min_idle = count("min_idle", value)?,
            "acquire_timeout" => self.acquire_timeout = duration("acquire_timeout", value)?,
            "idle_timeout" => self.idle_timeout = optional_duration("idle_timeout", value)?,
            "max_lifetime" => self.max_lifetime = optional_duration("max_lifetime", value)?,
            "lifetime_jitter" => self.lifetime_jitter = fraction("lifetime_jitter", value)?,
            "check_after" => self.check_after = duration("check_after", value)?,
            "connect_backoff" => self.connect_backoff = duration("connect_backoff", value)?,
            "connect_backoff_max" => {
                self.connect_backoff_max = duration("connect_backoff_max", value)?
            }
            "ping_after" => self.ping_after = optional_duration("ping_after", value)?,
            "ping_timeout" => self.ping_timeout = duration("ping_timeout", value)?,
            "max_concurrent_dials" => {
                self.max_concurrent_dials = count("max_concurrent_dials", value)?
            }
            "breaker_threshold" => {
                self.breaker_threshold = optional_count("breaker_threshold", value)?
            }
            "maintenance_interval" => {
                self.maintenance_interval = duration("maintenance_interval", value)?
            }
            "leak_threshold" => self.leak_threshold = optional_duration("leak_threshold", value)?,
            "demand_half_life" => {
                self.demand_half_life = optional_duration("demand_half_life", value)?
            }
            unknown => {
                return Err(ConfigError::new(
                    "setting",
                    format!("`{unknown}` is not a ringpool setting"),
                    format!("use one of: {}", SETTINGS.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The defaults overridden by every `RINGPOOL_<SETTING>` environment
    /// variable that is set (`RINGPOOL_MAX_SIZE=64`,
    /// `RINGPOOL_IDLE_TIMEOUT=45s`, ...).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first variable that does not parse.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for name in SETTINGS {
            let variable = format!("RINGPOOL_{}", name.to_ascii_uppercase());
            if let Ok(value) = std::env::var(&variable) {
                config.set(name, &value).map_err(|mut error| {
                    error.problem = format!("{} (from {variable})", error.problem);
                    error
                })?;
            }
        }
        Ok(config)
    }
}

/// Parses `key=value` pairs separated by commas or newlines, on top of the
/// defaults: `"max_size=64, idle_timeout=45s"`.
impl FromStr for Config {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for pair in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(ConfigError::new(
                    "setting",
                    format!("`{pair}` has no `=`"),
                    "write settings as name=value, separated by commas",
                ));
            };
            config.set(name, value)?;
        }
        Ok(config)
    }
}

/// Writes every setting as `name=value` pairs that [`FromStr`] reads back.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let optional = |value: Option<Duration>| match value {
            None => "none".to_string(),
            Some(duration) => humantime::format_duration(duration).to_string(),
        };
        let plain = |duration: Duration| humantime::format_duration(duration).to_string();
        write!(
            f,
            "max_size={},min_idle={},acquire_timeout={},idle_timeout={},max_lifetime={},\
             lifetime_jitter={},check_after={},connect_backoff={},connect_backoff_max={},\
             ping_after={},ping_timeout={},max_concurrent_dials={},breaker_threshold={},\
             maintenance_interval={},leak_threshold={},demand_half_life={}",
            self.max_size,
            self.min_idle,
            plain(self.acquire_timeout),
            optional(self.idle_timeout),
            optional(self.max_lifetime),
            self.lifetime_jitter,
            plain(self.check_after),
            plain(self.connect_backoff),
            plain(self.connect_backoff_max),
            optional(self.ping_after),
            plain(self.ping_timeout),
            self.max_concurrent_dials,
            self.breaker_threshold
                .map_or("none".to_string(), |n| n.to_string()),
            plain(self.maintenance_interval),
            optional(self.leak_threshold),
            optional(self.demand_half_life),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let config = Config {
            max_lifetime: None,
            check_after: Duration::from_micros(1500),
            ..Config::default()
        };
        let text = config.to_string();
        assert_eq!(text.parse::<Config>().unwrap(), config, "{text}");
    }

    #[test]
    fn errors_name_the_setting_and_the_fix() {
        let error = "max_size=16, idle_timout=3s".parse::<Config>().unwrap_err();
        assert_eq!(error.field, "setting");
        assert!(error.to_string().contains("idle_timout") && error.fix.contains("idle_timeout"));
        let error = "acquire_timeout=soon".parse::<Config>().unwrap_err();
        assert_eq!(error.field, "acquire_timeout");
        assert!(error.fix.contains("250ms"));
        assert_eq!(
            "lifetime_jitter=NaN".parse::<Config>().unwrap_err().field,
            "lifetime_jitter"
        );
        assert!(
            "max_size"
                .parse::<Config>()
                .unwrap_err()
                .to_string()
                .contains("no `=`")
        );
    }
}
