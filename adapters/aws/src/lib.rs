//! Adapters on the AWS SDK: S3 for stored mail, DynamoDB for routes and records, SQS for retries and dead
//! letters, Secrets Manager for the default webhook secret. Clients are built once, from one SDK config.

pub mod dynamo;
pub mod erasure;
pub mod events;
pub mod feedback;
pub mod item;
pub mod layout;
pub mod links;
pub mod merge;
pub mod metrics;
pub mod query;
pub mod reindex;
pub mod reopen;
pub mod s3;
pub mod secrets;
pub mod ses;
pub mod setup;
pub mod shards;
pub mod sqs;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use mailroom::ports::StoreError;

/// Error codes that mean "try again later" whatever the service.
const RETRYABLE_CODES: [&str; 10] = [
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalServerError",
    "InternalError",
    "RequestTimeout",
];

/// Whether an SDK error is worth retrying: no answer at all, a 5xx, or throttling.
pub fn is_retryable<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service
                .err()
                .code()
                .is_some_and(|code| RETRYABLE_CODES.contains(&code))
                || service.raw().status().is_server_error()
        }
        _ => false,
    }
}

/// A store error from an SDK error, keeping it as the source and saying whether a retry may help.
pub fn store_error<E>(what: impl Into<String>, error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = is_retryable(&error);
    let what = what.into();
    let detail = match error.as_service_error() {
        Some(service) => format!(
            "{what}: {} {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("")
        ),
        None => format!(
            "{what}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&error)
        ),
    };
    StoreError {
        what: detail.trim_end().to_owned(),
        retryable,
        source: Some(Box::new(error)),
    }
}

/// The variable that points every AWS call of a function at an emulator (moto's server, LocalStack).
pub const ENDPOINT_URL: &str = "MAILROOM_ENDPOINT_URL";

/// The SDK configuration a function builds once at init: the standard chain (region, credentials,
/// `AWS_ENDPOINT_URL`), with [`ENDPOINT_URL`] as the endpoint when it is set and not blank.
///
/// The stack declares `MAILROOM_ENDPOINT_URL` empty, because `sam local invoke --env-vars` can only
/// set the variables a template declares; an empty `AWS_ENDPOINT_URL` would not do, as the SDK's
/// clients take an empty value as their endpoint.
pub async fn sdk_config() -> aws_config::SdkConfig {
    sdk_config_from(|name| std::env::var(name).ok()).await
}

/// [`sdk_config`] with [`ENDPOINT_URL`] read through `lookup` (the rest of the chain reads the process
/// environment as usual).
pub async fn sdk_config_from(lookup: impl Fn(&str) -> Option<String>) -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    match mailroom::settings::Settings::new(lookup).text(ENDPOINT_URL) {
        Some(url) => loader.endpoint_url(url),
        None => loader,
    }
    .load()
    .await
}

/// An S3 client with path-style addressing, which emulators reached by name need, AWS accepts for the
/// stack's buckets, and keeps presigned URLs valid for both.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

#[cfg(test)]
mod sdk_config_tests {
    use super::*;

    #[tokio::test]
    async fn the_endpoint_is_the_variable_unless_it_is_blank() {
        let set = sdk_config_from(|name| {
            (name == ENDPOINT_URL).then(|| "http://127.0.0.1:5000".to_owned())
        })
        .await;
        assert_eq!(set.endpoint_url(), Some("http://127.0.0.1:5000"));
        // Blank is unset: whatever the standard chain says (AWS_ENDPOINT_URL may be set where tests run).
        let blank = sdk_config_from(|name| (name == ENDPOINT_URL).then(|| " ".to_owned())).await;
        let standard = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        assert_eq!(blank.endpoint_url(), standard.endpoint_url());
    }
}
