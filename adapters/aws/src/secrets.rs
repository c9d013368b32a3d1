//! Secrets Manager: read once at init (the default webhook secret, the link-signing keys), and the
//! link key's rotation.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

use super::store_error;
use mailroom::deliver::links::{LinkKey, LinkKeys};
use mailroom::ports::StoreError;

/// The stage Secrets Manager gives the newest value of a secret.
pub const CURRENT: &str = "AWSCURRENT";

/// The stage Secrets Manager moves the value before it to when a new one is put.
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// The text of a secret.
pub async fn secret_string(client: &Client, arn: &str) -> Result<String, StoreError> {
    secret_at_stage(client, arn, CURRENT)
        .await?
        .ok_or_else(|| StoreError::permanent(format!("the secret {arn} has no current value")))
}

/// The text of a secret's value at `stage`, or `None` when no value has that stage (a secret never
/// rotated has no `AWSPREVIOUS`).
pub async fn secret_at_stage(
    client: &Client,
    arn: &str,
    stage: &str,
) -> Result<Option<String>, StoreError> {
    let output = match client
        .get_secret_value()
        .secret_id(arn)
        .version_stage(stage)
        .send()
        .await
    {
        Ok(output) => output,
        Err(error)
            if stage != CURRENT
                && error
                    .as_service_error()
                    .and_then(|e| e.code())
                    .is_some_and(|code| code == "ResourceNotFoundException") =>
        {
            return Ok(None);
        }
        Err(error) => return Err(store_error(format!("cannot read the secret {arn}"), error)),
    };
    output
        .secret_string
        .map(Some)
        .ok_or_else(|| StoreError::permanent(format!("the secret {arn} holds no text")))
}

/// The link-signing keys: the secret's current value, and its previous value when it was rotated (one
/// that is unreadable as a key is left out: links it signed no longer open).
pub async fn link_keys(client: &Client, arn: &str) -> Result<LinkKeys, StoreError> {
    let unusable = |e: mailroom::deliver::links::KeyError| {
        StoreError::permanent(format!("the link key in {arn}: {e}"))
    };
    let current = LinkKey::parse(&secret_string(client, arn).await?).map_err(unusable)?;
    let previous = match secret_at_stage(client, arn, PREVIOUS).await? {
        Some(text) => match LinkKey::parse(&text) {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::warn!(error = %error, "the previous link key is unusable; its links no longer open");
                None
            }
        },
        None => None,
    };
    Ok(LinkKeys::new(current, previous))
}

/// Puts a fresh random link key as the secret's current value; Secrets Manager moves the one before to
/// `AWSPREVIOUS`, which the link endpoint still accepts. Returns the new keys.
pub async fn rotate_link_key(client: &Client, arn: &str) -> Result<LinkKeys, StoreError> {
    let text = LinkKey::generate().map_err(|e| StoreError {
        what: format!("cannot generate a link key: {e}"),
        retryable: false,
        source: Some(Box::new(e)),
    })?;
    client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(&text)
        .send()
        .await
        .map_err(|e| store_error(format!("cannot write the secret {arn}"), e))?;
    link_keys(client, arn).await
}

/// A Secrets Manager client from the SDK configuration.
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    Client::new(sdk)
}
