//! Entry point of the send function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = send::Config::from_env()?;
    let sdk = mailroom_aws::sdk_config().await;
    let app = send::App::new(&config, &sdk);
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        send::handle(&app, event)
    }))
    .await
}
