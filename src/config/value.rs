//! The types a setting can have, and how each reads and writes as text.

use std::time::Duration;

use super::error::ConfigError;

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

/// Which idle connection a checkout takes.
///
/// # Examples
///
/// ```
/// use ringpool::{Config, IdleOrder};
///
/// let config: Config = "idle_order=fifo".parse().unwrap();
/// assert_eq!(config.idle_order, IdleOrder::Fifo);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdleOrder {
    /// The connection this thread returned last, if it is idle (warm caches,
    /// and a lightly used pool shrinks to what it uses), else the one idle
    /// longest.
    #[default]
    Lifo,
    /// Always the one idle longest: every connection is exercised in turn.
    Fifo,
}

impl SettingValue for IdleOrder {
    fn parse(field: &'static str, text: &str) -> Result<Self, ConfigError> {
        match text.trim() {
            "lifo" | "LIFO" => Ok(IdleOrder::Lifo),
            "fifo" | "FIFO" => Ok(IdleOrder::Fifo),
            other => Err(ConfigError::new(
                field,
                format!("`{other}` is not an idle order"),
                "write lifo (the default: warm connections first) or fifo (every connection in turn)",
            )),
        }
    }
    fn show(&self) -> String {
        match self {
            IdleOrder::Lifo => "lifo".to_string(),
            IdleOrder::Fifo => "fifo".to_string(),
        }
    }
}
