//! The feedback function's configuration, read once from the environment at init.

use std::time::Duration;

use mailroom::feedback::DEFAULT_SOFT_BOUNCE_LIMIT;

/// Every setting the feedback function reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MAILROOM_TABLE`: records, suppressions and routes.
    pub table: String,
    /// `MAILROOM_SOFT_BOUNCE_LIMIT` (3): transient bounces within 7 days that suppress an address.
    pub soft_bounce_limit: u32,
    /// `MAILROOM_MIRROR_SES_SUPPRESSION` (false): also add suppressed addresses to SES's own list.
    pub mirror_ses_suppression: bool,
    /// `MAILROOM_FEEDBACK_QUEUE_URL`: the feedback queue (derived from the event source when absent).
    pub queue_url: Option<String>,
    /// `MAILROOM_WEBHOOK_TIMEOUT_SECS` (30): one event POST's limit.
    pub webhook_timeout: Duration,
    /// `MAILROOM_ALLOW_PRIVATE_TARGETS` (false): allow internal addresses and plain http (tests, emulators).
    pub allow_private_targets: bool,
}

/// A setting that is missing or not understood.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let table = get("MAILROOM_TABLE").ok_or(ConfigError {
            name: "MAILROOM_TABLE",
            problem: "not set: name the DynamoDB table of records and suppressions".to_owned(),
        })?;
        let number = |name: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(text) => match text.parse::<u64>() {
                    Ok(value) if (1..=max).contains(&value) => Ok(value),
                    _ => Err(ConfigError {
                        name,
                        problem: format!("`{text}` is not a whole number from 1 to {max}"),
                    }),
                },
            }
        };
        let flag = |name: &'static str| -> Result<bool, ConfigError> {
            match get(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("false") | Some("0") | Some("no") => Ok(false),
                Some("true") | Some("1") | Some("yes") => Ok(true),
                Some(other) => Err(ConfigError {
                    name,
                    problem: format!("`{other}` is neither true nor false"),
                }),
            }
        };
        Ok(Config {
            table,
            soft_bounce_limit: number(
                "MAILROOM_SOFT_BOUNCE_LIMIT",
                u64::from(DEFAULT_SOFT_BOUNCE_LIMIT),
                1000,
            )? as u32,
            mirror_ses_suppression: flag("MAILROOM_MIRROR_SES_SUPPRESSION")?,
            queue_url: get("MAILROOM_FEEDBACK_QUEUE_URL"),
            webhook_timeout: Duration::from_secs(number("MAILROOM_WEBHOOK_TIMEOUT_SECS", 30, 900)?),
            allow_private_targets: flag("MAILROOM_ALLOW_PRIVATE_TARGETS")?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_and_errors() {
        let c = config(&[("MAILROOM_TABLE", "t")]).unwrap();
        assert_eq!(c.soft_bounce_limit, 3);
        assert!(!c.mirror_ses_suppression);
        assert!(config(&[]).is_err());
        assert!(config(&[("MAILROOM_TABLE", "t"), ("MAILROOM_SOFT_BOUNCE_LIMIT", "0")]).is_err());
        let c = config(&[
            ("MAILROOM_TABLE", "t"),
            ("MAILROOM_SOFT_BOUNCE_LIMIT", "5"),
            ("MAILROOM_MIRROR_SES_SUPPRESSION", "true"),
        ])
        .unwrap();
        assert_eq!(c.soft_bounce_limit, 5);
        assert!(c.mirror_ses_suppression);
    }
}
