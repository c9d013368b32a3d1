//! The feedback function's configuration, read once from the environment at init.

use std::time::Duration;

use mailroom::feedback::DEFAULT_SOFT_BOUNCE_LIMIT;
use mailroom::record::{DEFAULT_INDEX_SHARDS, DEFAULT_RETENTION_DAYS, MAX_INDEX_SHARDS};
use mailroom::settings::Settings;

/// Every setting the feedback function reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MAILROOM_TABLE`: records, suppressions and routes.
    pub table: String,
    /// `MAILROOM_INDEX_SHARDS` (8): shards the index keys of outbound records are spread over.
    pub index_shards: u32,
    /// `MAILROOM_SOFT_BOUNCE_LIMIT` (3): transient bounces within 7 days that suppress an address.
    pub soft_bounce_limit: u32,
    /// `MAILROOM_RETENTION_DAYS` (60): how long a record made from SES's `send` event is kept.
    pub retention_days: u32,
    /// `MAILROOM_MIRROR_SES_SUPPRESSION` (false): also add suppressed addresses to SES's own list.
    pub mirror_ses_suppression: bool,
    /// `MAILROOM_FEEDBACK_QUEUE_URL`: the feedback queue (derived from the event source when absent).
    pub queue_url: Option<String>,
    /// `MAILROOM_FEEDBACK_DLQ_URL`: where unreadable notifications and given-up event POSTs go at once
    /// (without it, the queue's redrive policy moves them after `maxReceiveCount` receives).
    pub dlq_url: Option<String>,
    /// `MAILROOM_WEBHOOK_TIMEOUT_SECS` (30): one event POST's limit.
    pub webhook_timeout: Duration,
    /// `MAILROOM_ALLOW_PRIVATE_TARGETS` (false): allow loopback, private and other internal addresses
    /// (tests, emulators).
    pub allow_private_targets: bool,
    /// `MAILROOM_ALLOW_HTTP_TARGETS` (false): allow plain `http://` targets (tests, emulators).
    pub allow_http_targets: bool,
}

/// A setting that is missing or not understood.
pub use mailroom::settings::SettingError as ConfigError;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Settings::new(lookup);
        Ok(Config {
            table: env.required(
                "MAILROOM_TABLE",
                "name the DynamoDB table of records and suppressions",
            )?,
            index_shards: env.number(
                "MAILROOM_INDEX_SHARDS",
                u64::from(DEFAULT_INDEX_SHARDS),
                u64::from(MAX_INDEX_SHARDS),
            )? as u32,
            soft_bounce_limit: env.number(
                "MAILROOM_SOFT_BOUNCE_LIMIT",
                u64::from(DEFAULT_SOFT_BOUNCE_LIMIT),
                1000,
            )? as u32,
            retention_days: env.number(
                "MAILROOM_RETENTION_DAYS",
                u64::from(DEFAULT_RETENTION_DAYS),
                3650,
            )? as u32,
            mirror_ses_suppression: env.flag("MAILROOM_MIRROR_SES_SUPPRESSION")?,
            queue_url: env.text("MAILROOM_FEEDBACK_QUEUE_URL"),
            dlq_url: env.text("MAILROOM_FEEDBACK_DLQ_URL"),
            webhook_timeout: Duration::from_secs(env.number(
                "MAILROOM_WEBHOOK_TIMEOUT_SECS",
                30,
                900,
            )?),
            allow_private_targets: env.flag("MAILROOM_ALLOW_PRIVATE_TARGETS")?,
            allow_http_targets: env.flag("MAILROOM_ALLOW_HTTP_TARGETS")?,
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
