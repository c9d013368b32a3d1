//! The inbound function's configuration, read once from the environment at init.

use std::time::Duration;

use mailroom::record::{DEFAULT_INDEX_SHARDS, DEFAULT_RETENTION_DAYS, MAX_INDEX_SHARDS};
use mailroom::settings::Settings;

/// Every setting the inbound function reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MAILROOM_TABLE`: routes and records.
    pub table: String,
    /// `MAILROOM_INDEX_SHARDS` (8): shards each index key of a record is spread over.
    pub index_shards: u32,
    /// `MAILROOM_QUEUE_URL`: the inbound queue (derived from the event source when absent).
    pub queue_url: Option<String>,
    /// `MAILROOM_DLQ_URL`: where messages go after the 72-hour give-up.
    pub dlq_url: Option<String>,
    /// `MAILROOM_RETENTION_DAYS` (60): how long records are kept.
    pub retention_days: u32,
    /// `MAILROOM_WEBHOOK_TIMEOUT_SECS` (30): one attempt's limit.
    pub webhook_timeout: Duration,
    /// `MAILROOM_ALLOW_PRIVATE_TARGETS` (false): allow loopback, private and other internal addresses
    /// (tests, emulators).
    pub allow_private_targets: bool,
    /// `MAILROOM_ALLOW_HTTP_TARGETS` (false): allow plain `http://` targets (tests, emulators).
    pub allow_http_targets: bool,
    /// `MAILROOM_DEFAULT_WEBHOOK_URL`: the catch-all when no route matches.
    pub default_webhook_url: Option<String>,
    /// `MAILROOM_DEFAULT_WEBHOOK_SECRET_ARN`: its secret, in Secrets Manager (what the stack sets).
    pub default_webhook_secret_arn: Option<String>,
    /// `MAILROOM_DEFAULT_WEBHOOK_SECRET`: its secret in plain text (local and emulator use).
    pub default_webhook_secret: Option<String>,
    /// `MAILROOM_TLS_REQUIRED` (false): the receipt rule requires TLS, so `envelope.tls` is true.
    pub tls_required: bool,
    /// `MAILROOM_DOMAINS`: comma-separated domains mail is received for.
    pub domains: Vec<String>,
    /// `MAILROOM_LINK_BASE_URL`: the link endpoint, for `attachments: s3|auto` routes.
    pub link_base_url: Option<String>,
    /// `MAILROOM_LINK_KEY_ARN`: the link-signing key, in Secrets Manager (what the stack sets).
    pub link_key_arn: Option<String>,
    /// `MAILROOM_LINK_KEY`: the link-signing key in plain text (local and emulator use).
    pub link_key: Option<String>,
    /// `MAILROOM_ATTACHMENT_URL_DAYS` (7): how long links live.
    pub attachment_url_days: u32,
    /// `MAILROOM_INLINE_MAX_BYTES` (5,000,000): the largest inline payload of an `auto` route.
    pub inline_max_bytes: usize,
    /// `MAILROOM_FORWARD_FROM`: the verified address forwards are sent from when the route names none.
    pub forward_from: Option<String>,
    /// `MAILROOM_FORWARD_MAX_BYTES` (40,000,000): larger forwards become a notice with a link.
    pub forward_max_bytes: usize,
    /// `MAILROOM_CONFIGURATION_SET`: the SES configuration set every forward is sent with.
    pub configuration_set: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (set by Lambda): the function's memory in MB, which bounds how
    /// much mail one invocation holds at once. Without it (local runs) nothing is bounded.
    pub memory_mb: Option<u64>,
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
                "name the DynamoDB table of routes and records",
            )?,
            index_shards: env.number(
                "MAILROOM_INDEX_SHARDS",
                u64::from(DEFAULT_INDEX_SHARDS),
                u64::from(MAX_INDEX_SHARDS),
            )? as u32,
            queue_url: env.text("MAILROOM_QUEUE_URL"),
            dlq_url: env.text("MAILROOM_DLQ_URL"),
            retention_days: env.number(
                "MAILROOM_RETENTION_DAYS",
                u64::from(DEFAULT_RETENTION_DAYS),
                3650,
            )? as u32,
            webhook_timeout: Duration::from_secs(env.number(
                "MAILROOM_WEBHOOK_TIMEOUT_SECS",
                30,
                900,
            )?),
            allow_private_targets: env.flag("MAILROOM_ALLOW_PRIVATE_TARGETS")?,
            allow_http_targets: env.flag("MAILROOM_ALLOW_HTTP_TARGETS")?,
            default_webhook_url: env.text("MAILROOM_DEFAULT_WEBHOOK_URL"),
            default_webhook_secret_arn: env.text("MAILROOM_DEFAULT_WEBHOOK_SECRET_ARN"),
            default_webhook_secret: env.text("MAILROOM_DEFAULT_WEBHOOK_SECRET"),
            tls_required: env.flag("MAILROOM_TLS_REQUIRED")?,
            link_base_url: env.text("MAILROOM_LINK_BASE_URL"),
            link_key_arn: env.text("MAILROOM_LINK_KEY_ARN"),
            link_key: env.text("MAILROOM_LINK_KEY"),
            attachment_url_days: env.number("MAILROOM_ATTACHMENT_URL_DAYS", 7, 365)? as u32,
            inline_max_bytes: env.number(
                "MAILROOM_INLINE_MAX_BYTES",
                mailroom::usecases::inbound::DEFAULT_INLINE_MAX_BYTES as u64,
                1 << 30,
            )? as usize,
            forward_from: env.text("MAILROOM_FORWARD_FROM"),
            forward_max_bytes: env.number(
                "MAILROOM_FORWARD_MAX_BYTES",
                mailroom::usecases::inbound::DEFAULT_FORWARD_MAX_BYTES as u64,
                mailroom::usecases::inbound::DEFAULT_FORWARD_MAX_BYTES as u64,
            )? as usize,
            configuration_set: env.text("MAILROOM_CONFIGURATION_SET"),
            memory_mb: match env.text("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
                Some(_) => Some(env.number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 128, 10_240)?),
                None => None,
            },
            domains: env
                .text("MAILROOM_DOMAINS")
                .map(|d| {
                    d.split(',')
                        .map(|x| x.trim().to_ascii_lowercase())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
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
        assert_eq!(c.retention_days, 60);
        assert_eq!(c.index_shards, 8);
        assert_eq!(c.webhook_timeout, Duration::from_secs(30));
        assert!(!c.allow_private_targets);
        assert!(!c.allow_http_targets);
        // Two settings: one does not bring the other.
        let private = config(&[
            ("MAILROOM_TABLE", "t"),
            ("MAILROOM_ALLOW_PRIVATE_TARGETS", "true"),
        ])
        .unwrap();
        assert!(private.allow_private_targets && !private.allow_http_targets);
        let http = config(&[
            ("MAILROOM_TABLE", "t"),
            ("MAILROOM_ALLOW_HTTP_TARGETS", "true"),
        ])
        .unwrap();
        assert!(http.allow_http_targets && !http.allow_private_targets);
        assert!(
            config(&[])
                .unwrap_err()
                .to_string()
                .starts_with("MAILROOM_TABLE")
        );
        assert!(config(&[("MAILROOM_TABLE", "t"), ("MAILROOM_RETENTION_DAYS", "0")]).is_err());
        assert!(config(&[("MAILROOM_TABLE", "t"), ("MAILROOM_INDEX_SHARDS", "65")]).is_err());
        assert_eq!(
            config(&[("MAILROOM_TABLE", "t"), ("MAILROOM_INDEX_SHARDS", "16")])
                .unwrap()
                .index_shards,
            16
        );
        assert!(
            config(&[
                ("MAILROOM_TABLE", "t"),
                ("MAILROOM_ALLOW_PRIVATE_TARGETS", "maybe")
            ])
            .is_err()
        );
        let c = config(&[
            ("MAILROOM_TABLE", "t"),
            ("MAILROOM_DOMAINS", " Mail.Example.com, b.example "),
        ])
        .unwrap();
        assert_eq!(c.domains, vec!["mail.example.com", "b.example"]);
        assert_eq!(c.forward_max_bytes, 40_000_000);
        let c = config(&[
            ("MAILROOM_TABLE", "t"),
            ("MAILROOM_FORWARD_MAX_BYTES", "10000000"),
            ("MAILROOM_FORWARD_FROM", "forward@mail.example.com"),
        ])
        .unwrap();
        assert_eq!(c.forward_max_bytes, 10_000_000);
        assert_eq!(c.forward_from.as_deref(), Some("forward@mail.example.com"));
        // SES takes no more than 40 MB, whatever the setting says.
        assert!(
            config(&[
                ("MAILROOM_TABLE", "t"),
                ("MAILROOM_FORWARD_MAX_BYTES", "50000000")
            ])
            .is_err()
        );
    }
}
