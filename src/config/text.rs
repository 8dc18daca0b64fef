//! Settings as text: `key=value` pairs and `RINGPOOL_*` environment
//! variables, so a service can tune its pool without a rebuild.
//!
//! Durations use `humantime`'s format (`250ms`, `30s`, `5m`, `1h 30m`); an
//! optional value also accepts `none`. `Display` writes the same format,
//! and parsing what it wrote gives back the same config.

use std::fmt;
use std::str::FromStr;

use super::error::ConfigError;
use super::fields::{Config, SETTINGS};

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
        let name = name.trim();
        self.set_field(name, value).unwrap_or_else(|| {
            Err(ConfigError::new(
                "setting",
                format!("`{name}` is not a ringpool setting"),
                format!("use one of: {}", SETTINGS.join(", ")),
            ))
        })
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
        for (index, (name, value)) in self.fields_as_text().into_iter().enumerate() {
            let separator = if index == 0 { "" } else { "," };
            write!(f, "{separator}{name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn display_and_parse_round_trip() {
        let config = Config {
            max_lifetime: None,
            breaker_threshold: None,
            check_after: Duration::from_micros(1500),
            ..Config::default()
        };
        let text = config.to_string();
        assert_eq!(text.parse::<Config>().unwrap(), config, "{text}");
        assert_eq!(text.split(',').count(), SETTINGS.len());
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

    #[test]
    fn a_list_separated_by_spaces_is_told_to_use_commas() {
        let error = "max_size=8 idle_timeout=10s".parse::<Config>().unwrap_err();
        assert_eq!(error.field, "max_size");
        assert!(error.fix.contains("commas"), "{error}");
    }
}
