//! The links function: behind a Lambda Function URL (auth NONE: the signed link is the credential), it
//! answers a valid, unexpired link with a 302 to a presigned S3 GET valid a few minutes, and anything
//! else with a bare 404.

use aws_sdk_s3::Client;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use mailroom::aws::links::S3Presigner;
use mailroom::aws::secrets::secret_string;
use mailroom::deliver::links::{LinkAnswer, LinkKey, resolve};
use serde_json::{Value, json};

/// Every setting the links function reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MAILROOM_BUCKET`: where attachments and originals are stored.
    pub bucket: String,
    /// `MAILROOM_LINK_KEY_ARN`: the signing key, in Secrets Manager (what the stack sets).
    pub link_key_arn: Option<String>,
    /// `MAILROOM_LINK_KEY`: the signing key in plain text (local and emulator use).
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
    key: LinkKey,
    presigner: S3Presigner,
}

impl App {
    /// Reads the key (one Secrets Manager call when its ARN is given) and builds the S3 client.
    pub async fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Result<App, InitError> {
        let text = match (&config.link_key_arn, &config.link_key) {
            (Some(arn), _) => secret_string(&aws_sdk_secretsmanager::Client::new(sdk), arn)
                .await
                .map_err(|e| InitError::Key(e.to_string()))?,
            (None, Some(text)) => text.clone(),
            (None, None) => return Err(InitError::Missing("MAILROOM_LINK_KEY_ARN")),
        };
        let key = LinkKey::parse(&text).map_err(|e| InitError::Key(e.to_string()))?;
        // Path-style addressing keeps presigned URLs valid for emulators reached by name too.
        let client = Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .build(),
        );
        Ok(App {
            key,
            presigner: S3Presigner::new(client, config.bucket.clone()),
        })
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
    Ok(
        match resolve(&app.key, &app.presigner, path, Utc::now()).await {
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
