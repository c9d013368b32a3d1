//! Adapters on the AWS SDK: S3 for stored mail, DynamoDB for routes and records, SQS for retries and dead
//! letters, Secrets Manager for the default webhook secret. Clients are built once, from one SDK config.

pub mod dynamo;
pub mod erasure;
pub mod events;
pub mod feedback;
pub mod item;
pub mod links;
pub mod metrics;
pub mod query;
pub mod reopen;
pub mod s3;
pub mod secrets;
pub mod ses;
pub mod setup;
pub mod sqs;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::ports::StoreError;

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
