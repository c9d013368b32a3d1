//! Which store a command works on: AWS when `MAILROOM_TABLE` (or `--stack`) is given, otherwise the dev
//! store under `--data`.

use anyhow::Context;

/// The SDK configuration from the standard environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A current-thread runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
