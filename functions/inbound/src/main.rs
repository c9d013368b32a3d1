//! Entry point of the inbound function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = inbound::Config::from_env()?;
    let sdk = mailroom_aws::sdk_config().await;
    let app = inbound::App::new(config, &sdk).await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        inbound::handle(&app, event)
    }))
    .await
}
