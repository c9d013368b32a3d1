//! A secret a function reads at init: from Secrets Manager when its ARN is configured (what the stack
//! does), else from a plain-text setting (local runs and emulators).

use mailroom_aws::secrets::{client, secret_string};

/// A secret configured by ARN or as text, or neither.
#[derive(Debug, Clone, Copy)]
pub struct SecretSource<'a> {
    /// The secret's ARN in Secrets Manager; wins over `text`.
    pub arn: Option<&'a str>,
    /// The secret itself.
    pub text: Option<&'a str>,
}

/// The secret could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the secret: {0}")]
pub struct SecretError(#[source] mailroom::ports::StoreError);

impl SecretSource<'_> {
    /// The secret's text (one Secrets Manager call when an ARN is configured), or `None` when neither is.
    pub async fn read(&self, sdk: &aws_config::SdkConfig) -> Result<Option<String>, SecretError> {
        match (self.arn, self.text) {
            (Some(arn), _) => secret_string(&client(sdk), arn)
                .await
                .map(Some)
                .map_err(SecretError),
            (None, text) => Ok(text.map(str::to_owned)),
        }
    }
}
