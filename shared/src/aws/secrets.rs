//! Secrets Manager: read once at init (the default webhook secret, the link-signing key).

use aws_sdk_secretsmanager::Client;

use super::store_error;
use crate::ports::StoreError;

/// The text of a secret.
pub async fn secret_string(client: &Client, arn: &str) -> Result<String, StoreError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| store_error(format!("cannot read the secret {arn}"), e))?;
    output
        .secret_string
        .ok_or_else(|| StoreError::permanent(format!("the secret {arn} holds no text")))
}
