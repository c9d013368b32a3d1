//! What the links function builds once at init: the link keys (read again when a link names a newer
//! one) and the presigner.

use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use mailroom::deliver::links::{LinkKeys, token_from_path, token_key_id};
use mailroom_aws::links::S3Presigner;
use mailroom_aws::secrets::link_keys;

use crate::config::{Config, InitError};

/// The shortest time between two reads of the secret prompted by an unknown key id.
pub const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// What the function builds once at init.
pub struct App {
    keys: RwLock<LinkKeys>,
    secrets: Option<(aws_sdk_secretsmanager::Client, String)>,
    last_read: Mutex<Instant>,
    refresh_every: Duration,
    pub(crate) presigner: S3Presigner,
}

impl App {
    /// Reads the keys (two Secrets Manager calls when its ARN is given: the current and the previous
    /// value) and builds the S3 client.
    pub async fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Result<App, InitError> {
        let (keys, secrets) = match (&config.link_key_arn, &config.link_key) {
            (Some(arn), _) => {
                let client = aws_sdk_secretsmanager::Client::new(sdk);
                let keys = link_keys(&client, arn)
                    .await
                    .map_err(|e| InitError::Key(e.to_string()))?;
                (keys, Some((client, arn.clone())))
            }
            (None, Some(text)) => (
                LinkKeys::parse(text).map_err(|e| InitError::Key(e.to_string()))?,
                None,
            ),
            (None, None) => return Err(InitError::Missing("MAILROOM_LINK_KEY_ARN")),
        };
        // Path-style addressing keeps presigned URLs valid for emulators reached by name too.
        let client = mailroom_aws::s3_client(sdk);
        Ok(App {
            keys: RwLock::new(keys),
            secrets,
            last_read: Mutex::new(Instant::now()),
            refresh_every: REFRESH_AT_MOST_EVERY,
            presigner: S3Presigner::new(client, config.bucket.clone()),
        })
    }

    /// The keys now, after reading the secret again if the token names a key not known yet and the last
    /// read is long enough ago.
    pub(crate) async fn keys_for(&self, path: &str) -> LinkKeys {
        let known = self.current_keys();
        let Some(key_id) = token_from_path(path).and_then(token_key_id) else {
            return known;
        };
        let Some((client, arn)) = &self.secrets else {
            return known;
        };
        if known.knows(key_id) || !self.may_read_again() {
            return known;
        }
        match link_keys(client, arn).await {
            Ok(keys) => {
                tracing::info!(
                    current = keys.current().id(),
                    "read the link keys again: a link names a key this container had not read"
                );
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys.clone();
                keys
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the link keys again");
                known
            }
        }
    }

    fn current_keys(&self) -> LinkKeys {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the secret may be read now; if so, the time is taken.
    fn may_read_again(&self) -> bool {
        let mut last = self
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.elapsed() < self.refresh_every {
            return false;
        }
        *last = Instant::now();
        true
    }

    /// The same app, reading the secret again at most once per `every` (instead of
    /// [`REFRESH_AT_MOST_EVERY`]).
    pub fn refreshing_at_most_every(mut self, every: Duration) -> App {
        self.refresh_every = every;
        self
    }
}
