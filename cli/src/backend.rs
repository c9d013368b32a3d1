//! Which store a command works on: AWS when `MAILROOM_TABLE` (or `--stack`) is given, otherwise the dev
//! store under `--data`.

use anyhow::Context;

/// How to reach the deployed stack's resources.
#[derive(Debug, Clone)]
pub struct AwsTarget {
    /// The DynamoDB table of routes and records.
    pub table: String,
}

/// The SDK configuration from the standard environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The AWS target from the environment, or an error that says how to name one.
pub fn aws_target(table: Option<String>) -> anyhow::Result<AwsTarget> {
    let table = table
        .filter(|t| !t.trim().is_empty())
        .context("no table given: set MAILROOM_TABLE to the stack's table (see `mailroom setup emulator` for a local one)")
        .map_err(|e| crate::exit::CliError::new(crate::exit::BAD_ARGUMENTS, format!("{e:#}")))?;
    Ok(AwsTarget { table })
}

/// A current-thread runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
