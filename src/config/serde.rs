//! `Config` with serde (feature `serde`), in the same form as the text and
//! environment settings: counts and fractions as numbers, durations as
//! `humantime` strings (`"250ms"`, `"30s"`), `null` for `none`. Settings
//! left out keep their defaults; an unknown one is an error that names the
//! closest setting.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fields::Config;

impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.fields_as_text();
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (name, text) in fields {
            if text == "none" {
                map.serialize_entry(name, &())?;
            } else if let Ok(count) = text.parse::<u64>() {
                map.serialize_entry(name, &count)?;
            } else if let Ok(number) = text.parse::<f64>() {
                map.serialize_entry(name, &number)?;
            } else {
                map.serialize_entry(name, &text)?;
            }
        }
        map.end()
    }
}

/// A setting's value as any self-describing format gives it.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, a duration such as \"250ms\", or null")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text, E> {
                Ok(Text(text.to_string()))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Text, E> {
                Ok(Text(number.to_string()))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Text, E> {
                Ok(Text(number.to_string()))
            }
            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Text, E> {
                Ok(Text(number.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text("none".to_string()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text("none".to_string()))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConfigVisitor;
        impl<'de> Visitor<'de> for ConfigVisitor {
            type Value = Config;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of ringpool settings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
                let mut config = Config::default();
                while let Some((name, Text(value))) = map.next_entry::<String, Text>()? {
                    config.set(&name, &value).map_err(de::Error::custom)?;
                }
                Ok(config)
            }
        }
        deserializer.deserialize_map(ConfigVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Config;
    use std::time::Duration;

    #[test]
    fn json_round_trips_in_the_text_form() {
        let config = Config {
            max_size: 64,
            max_lifetime: None,
            acquire_timeout: Duration::from_millis(250),
            ..Config::default()
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(r#""max_size":64"#), "{json}");
        assert!(json.contains(r#""acquire_timeout":"250ms""#), "{json}");
        assert!(json.contains(r#""max_lifetime":null"#), "{json}");
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);
    }

    #[test]
    fn settings_left_out_keep_their_defaults_and_typos_are_named() {
        let config: Config = serde_json::from_str(r#"{"max_size": 8}"#).unwrap();
        assert_eq!(
            config,
            Config {
                max_size: 8,
                ..Config::default()
            }
        );
        let error = serde_json::from_str::<Config>(r#"{"max_sz": 8}"#).unwrap_err();
        assert!(
            error.to_string().contains("did you mean max_size"),
            "{error}"
        );
    }
}
