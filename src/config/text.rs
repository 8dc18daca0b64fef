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
        self.set_field(name, value)
            .unwrap_or_else(|| Err(unknown_setting(name, name)))
    }

    /// The defaults overridden by every variable `<prefix><SETTING>` that
    /// is set, for a process with more than one pool:
    /// `Config::from_env_prefixed("PAYMENTS_POOL_")` reads
    /// `PAYMENTS_POOL_MAX_SIZE`, `PAYMENTS_POOL_IDLE_TIMEOUT`, ...
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first variable that does not parse, or
    /// a variable under the prefix that names no setting (a typo such as
    /// `PAYMENTS_POOL_MAX_SZIE`), with the closest setting's variable.
    ///
    /// # Examples
    ///
    /// ```
    /// // SAFETY: nothing else touches the environment in this example.
    /// unsafe { std::env::set_var("DOCS_POOL_MAX_SZIE", "64") };
    /// let error = ringpool::Config::from_env_prefixed("DOCS_POOL_").unwrap_err();
    /// assert!(error.to_string().contains("DOCS_POOL_MAX_SIZE"), "{error}");
    /// ```
    pub fn from_env_prefixed(prefix: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut variables: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value)))
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, value)| (name, value.to_string_lossy().into_owned()))
            .collect();
        variables.sort();
        for (variable, value) in variables {
            let name = variable[prefix.len()..].to_ascii_lowercase();
            let Some(set) = config.set_field(&name, &value) else {
                let mut error = unknown_setting(&variable, &name);
                if let Some(closest) = closest_setting(&name) {
                    error.fix = format!(
                        "did you mean {prefix}{}? Every variable under {prefix} must name a setting",
                        closest.to_ascii_uppercase()
                    );
                }
                return Err(error);
            };
            set.map_err(|mut error| {
                error.problem = format!("{} (from {variable})", error.problem);
                error
            })?;
        }
        Ok(config)
    }

    /// The defaults overridden by every `RINGPOOL_<SETTING>` environment
    /// variable that is set (`RINGPOOL_MAX_SIZE=64`,
    /// `RINGPOOL_IDLE_TIMEOUT=45s`, ...). Other `RINGPOOL_*` variables are
    /// left alone; [`from_env_prefixed`](Config::from_env_prefixed) with a
    /// prefix of the pool's own rejects them.
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

/// The error for `what` (a name or variable) that names no setting.
fn unknown_setting(what: &str, name: &str) -> ConfigError {
    let fix = match closest_setting(name) {
        Some(closest) => format!(
            "did you mean {closest}? The settings: {}",
            SETTINGS.join(", ")
        ),
        None => format!("use one of: {}", SETTINGS.join(", ")),
    };
    ConfigError::new(
        "setting",
        format!("`{what}` is not a ringpool setting"),
        fix,
    )
}

/// The setting closest to `name`, if one is close enough to be a typo.
fn closest_setting(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|setting| (strsim::damerau_levenshtein(name, setting), *setting))
        .filter(|(distance, setting)| *distance <= (setting.len() / 3).max(2))
        .min()
        .map(|(_, setting)| setting)
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
    fn a_typo_is_answered_with_the_closest_setting() {
        let error = "max_sz=4".parse::<Config>().unwrap_err();
        assert!(error.fix.starts_with("did you mean max_size?"), "{error}");
        let error = "idle_timout=4s".parse::<Config>().unwrap_err();
        assert!(
            error.fix.starts_with("did you mean idle_timeout?"),
            "{error}"
        );
        let error = "flux_capacitor=1".parse::<Config>().unwrap_err();
        assert!(error.fix.starts_with("use one of"), "{error}");
    }

    #[test]
    fn a_list_separated_by_spaces_is_told_to_use_commas() {
        let error = "max_size=8 idle_timeout=10s".parse::<Config>().unwrap_err();
        assert_eq!(error.field, "max_size");
        assert!(error.fix.contains("commas"), "{error}");
    }
}
