//! Entry point of the links function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = links::Config::from_env()?;
    let sdk = mailroom_aws::sdk_config().await;
    let app = links::App::new(&config, &sdk).await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        links::handle(&app, event)
    }))
    .await
}
