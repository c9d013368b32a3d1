//! The links function's configuration, read once from the environment at init.

/// Every setting the links function reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MAILROOM_BUCKET`: where attachments and originals are stored.
    pub bucket: String,
    /// `MAILROOM_LINK_KEY_ARN`: the signing key, in Secrets Manager (what the stack sets).
    pub link_key_arn: Option<String>,
    /// `MAILROOM_LINK_KEY`: the signing key in plain text (local and emulator use); after a rotation the
    /// current key, a comma, and the previous one.
    pub link_key: Option<String>,
}

/// A setting that is missing or not understood, or the key that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A setting is missing.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// The key could not be read or used.
    #[error("the link key: {0}")]
    Key(String),
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, InitError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, InitError> {
        let env = mailroom::settings::Settings::new(lookup);
        let config = Config {
            bucket: env
                .text("MAILROOM_BUCKET")
                .ok_or(InitError::Missing("MAILROOM_BUCKET"))?,
            link_key_arn: env.text("MAILROOM_LINK_KEY_ARN"),
            link_key: env.text("MAILROOM_LINK_KEY"),
        };
        if config.link_key_arn.is_none() && config.link_key.is_none() {
            return Err(InitError::Missing(
                "MAILROOM_LINK_KEY_ARN (or MAILROOM_LINK_KEY)",
            ));
        }
        Ok(config)
    }
}
