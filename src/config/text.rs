//! Settings as text: `key=value` pairs and `RINGPOOL_*` environment
//! variables, so a service can tune its pool without a rebuild.
//!
//! Durations use `humantime`'s format (`250ms`, `30s`, `5m`, `1h 30m`); an
//! optional value also accepts `none`. `Display` writes the same format,
//! and parsing what it wrote gives back the same config.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::error::ConfigError;
use super::fields::{Config, SETTINGS};

/// A type a setting can have, with its text form.
pub(super) trait SettingValue: Sized {
    fn parse(field: &'static str, text: &str) -> Result<Self, ConfigError>;
    fn show(&self) -> String;
}

impl SettingValue for usize {
    fn parse(field: &'static str, text: &str) -> Result<Self, ConfigError> {
        text.trim()
            .parse()
            .map_err(|_| not_a_count(field, text, ""))
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for Option<u32> {
    fn parse(field: &'static str, text: &str) -> Result<Self, ConfigError> {
        optional(text, |text| {
            text.parse()
                .map_err(|_| not_a_count(field, text, ", or none"))
        })
    }
    fn show(&self) -> String {
        self.map_or_else(|| "none".to_string(), |n| n.to_string())
    }
}

impl SettingValue for f64 {
    fn parse(field: &'static str, text: &str) -> Result<Self, ConfigError> {
        match text.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(number),
            _ => Err(ConfigError::new(
                field,
                format!("`{text}` is not a finite number"),
                "write a fraction such as 0.025",
            )),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for Duration {
    fn parse(field: &'static str, text: &str) -> Result<Self, ConfigError> {
        humantime::parse_duration(text.trim()).map_err(|error| {
            ConfigError::new(
                field,
                format!("`{text}` is not a duration ({error})"),
                "write a number with a unit, such as 250ms, 30s or 5m",
            )
        })
    }
    fn show(&self) -> String {
        humantime::format_duration(*self).to_string()
    }
}

impl SettingValue for Option<Duration> {
    fn parse(field: &'static str, text: &str) -> Result<Self, ConfigError> {
        optional(text, |text| Duration::parse(field, text))
    }
    fn show(&self) -> String {
        self.as_ref()
            .map_or_else(|| "none".to_string(), Duration::show)
    }
}

fn optional<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    match text.trim() {
        "none" | "None" | "off" => Ok(None),
        other => parse(other).map(Some),
    }
}

fn not_a_count(field: &'static str, text: &str, alternative: &str) -> ConfigError {
    let looks_like_a_list = text.contains(char::is_whitespace) && text.contains('=');
    let problem = format!("`{text}` is not a whole number");
    match looks_like_a_list {
        true => ConfigError::new(
            field,
            problem,
            "separate settings with commas (or newlines), as in `max_size=8, idle_timeout=10s`",
        ),
        false => ConfigError::new(
            field,
            problem,
            format!("write a count such as 16{alternative}"),
        ),
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
