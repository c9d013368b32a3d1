//! The links function: behind a Lambda Function URL (auth NONE: the signed link is the credential), it
//! answers a valid, unexpired link with a 302 to a presigned S3 GET valid a few minutes, and anything
//! else with a bare 404.
//!
//! It accepts links signed with the key's current and previous values (Secrets Manager's `AWSCURRENT` and
//! `AWSPREVIOUS`), read at init. A link signed by a key it has not read (the key was rotated since this
//! container started) makes it read the secret again, at most once per [`REFRESH_AT_MOST_EVERY`], so a
//! stream of forged key ids cannot turn into a stream of Secrets Manager calls.

use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use mailroom::aws::links::S3Presigner;
use mailroom::aws::secrets::link_keys;
use mailroom::deliver::links::{LinkAnswer, LinkKeys, resolve, token_from_path, token_key_id};
use serde_json::{Value, json};

/// The shortest time between two reads of the secret prompted by an unknown key id.
pub const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

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

/// What the function builds once at init.
pub struct App {
    keys: RwLock<LinkKeys>,
    secrets: Option<(aws_sdk_secretsmanager::Client, String)>,
    last_read: Mutex<Instant>,
    refresh_every: Duration,
    presigner: S3Presigner,
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
        let client = Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .build(),
        );
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
    async fn keys_for(&self, path: &str) -> LinkKeys {
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

/// Answers one Function URL request. Never fails: every outcome is an HTTP answer.
pub async fn handle(
    app: &App,
    event: LambdaEvent<Value>,
) -> Result<Value, std::convert::Infallible> {
    let request = event.payload;
    let method = request
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let path = request.get("rawPath").and_then(Value::as_str).unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return Ok(answer(405, None));
    }
    let keys = app.keys_for(path).await;
    Ok(
        match resolve(&keys, &app.presigner, path, Utc::now()).await {
            LinkAnswer::Redirect(url) => answer(302, Some(url)),
            LinkAnswer::NotFound => answer(404, None),
            LinkAnswer::Unavailable => answer(503, None),
        },
    )
}

fn answer(status: u16, location: Option<String>) -> Value {
    let mut headers = json!({
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "content-type": "text/plain; charset=utf-8",
    });
    if let Some(location) = location {
        headers["location"] = Value::String(location);
    }
    let body = match status {
        302 => "Found",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    json!({ "statusCode": status, "headers": headers, "body": body, "isBase64Encoded": false })
}
