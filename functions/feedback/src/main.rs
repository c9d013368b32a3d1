//! Entry point of the feedback function.
// The handler's future nests the SDK's deeply; its layout needs more than the default 128 levels.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = feedback::Config::from_env()?;
    let sdk = mailroom_aws::sdk_config().await;
    let app = feedback::App::new(&config, &sdk)?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        feedback::handle(&app, event)
    }))
    .await
}
