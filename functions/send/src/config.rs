//! The send function's configuration, read once from the environment at init.

use mailroom::record::{DEFAULT_INDEX_SHARDS, DEFAULT_RETENTION_DAYS, MAX_INDEX_SHARDS};
use mailroom::settings::Settings;
use mailroom_aws::ses::TrackedSets;

/// A setting that is missing or not understood.
pub use mailroom::settings::SettingError as ConfigError;

/// Every setting the send function reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MAILROOM_TABLE`: keys, records and suppressions.
    pub table: String,
    /// `MAILROOM_BUCKET`: where the sent copies are stored (`outbound/`).
    pub bucket: String,
    /// `MAILROOM_DOMAINS`: the stack's domains, comma-separated; a key sends only from these.
    pub domains: Vec<String>,
    /// `MAILROOM_RETENTION_DAYS` (60): how long records are kept.
    pub retention_days: u32,
    /// `MAILROOM_INDEX_SHARDS` (8): shards the index keys of records are spread over.
    pub index_shards: u32,
    /// `MAILROOM_CONFIGURATION_SET`: the untracked set (TLS required, events to the feedback topic).
    pub configuration_set: Option<String>,
    /// `MAILROOM_TRACKED_CONFIGURATION_SET`, `MAILROOM_OPENS_CONFIGURATION_SET`,
    /// `MAILROOM_CLICKS_CONFIGURATION_SET`: the sets that also publish opens, clicks, or both.
    pub tracked: TrackedSets,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Settings::new(lookup);
        let domains = env
            .required("MAILROOM_DOMAINS", "list the domains keys may send from")?
            .split(',')
            .map(|d| d.trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        Ok(Config {
            table: env.required(
                "MAILROOM_TABLE",
                "name the DynamoDB table of keys and records",
            )?,
            bucket: env.required(
                "MAILROOM_BUCKET",
                "name the bucket sent copies are stored in",
            )?,
            domains,
            retention_days: env.number(
                "MAILROOM_RETENTION_DAYS",
                u64::from(DEFAULT_RETENTION_DAYS),
                3650,
            )? as u32,
            index_shards: env.number(
                "MAILROOM_INDEX_SHARDS",
                u64::from(DEFAULT_INDEX_SHARDS),
                u64::from(MAX_INDEX_SHARDS),
            )? as u32,
            configuration_set: env.text("MAILROOM_CONFIGURATION_SET"),
            tracked: TrackedSets {
                both: env.text("MAILROOM_TRACKED_CONFIGURATION_SET"),
                opens: env.text("MAILROOM_OPENS_CONFIGURATION_SET"),
                clicks: env.text("MAILROOM_CLICKS_CONFIGURATION_SET"),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_required_and_read_as_a_list() {
        let read = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Config::from_lookup(|name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        };
        assert!(read(&[("MAILROOM_TABLE", "t"), ("MAILROOM_BUCKET", "b")]).is_err());
        let config = read(&[
            ("MAILROOM_TABLE", "t"),
            ("MAILROOM_BUCKET", "b"),
            ("MAILROOM_DOMAINS", "Shop.example, mail.example.com"),
        ])
        .unwrap();
        assert_eq!(config.domains, ["shop.example", "mail.example.com"]);
        assert_eq!(config.retention_days, 60);
        assert_eq!(config.tracked, TrackedSets::default());
    }
}
