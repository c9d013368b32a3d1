//! Event → use case → Lambda result. Nothing here decides about feedback; it only translates.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use mailroom::aws::dynamo::DynamoStore;
use mailroom::aws::feedback::SesSuppressionMirror;
use mailroom::aws::sqs::{Queues, first_seen};
use mailroom::feedback::notification::{Envelope, read_envelope, sns_message};
use mailroom::http::{BuildError, HttpClient, TargetPolicy};
use mailroom::notifications::{Arrival, FeedbackConfig, FeedbackError, Handled, Notifications};
use mailroom::ports::SystemClock;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::Config;

/// The feedback use case on AWS.
pub type AwsNotifications =
    Notifications<DynamoStore, HttpClient, SesSuppressionMirror, SystemClock>;

/// What the function builds once at init.
pub struct App {
    notifications: AwsNotifications,
    queues: Queues,
}

/// Why an invocation failed, as Lambda's `errorType`.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: for a direct SNS invocation, Lambda's own retries bring the event back.
    #[error("{0}")]
    Retryable(String),
    /// Will fail again.
    #[error("{0}")]
    Permanent(String),
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        let error_type = match error {
            HandlerError::Retryable(_) => "Retryable",
            HandlerError::Permanent(_) => "Permanent",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

impl App {
    /// Builds the SDK clients and the use case once; makes no network call.
    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Result<App, BuildError> {
        let http = HttpClient::new(
            config.webhook_timeout,
            TargetPolicy {
                allow_private: config.allow_private_targets,
            },
        )?;
        let mirror = config
            .mirror_ses_suppression
            .then(|| SesSuppressionMirror::new(aws_sdk_sesv2::Client::new(sdk)));
        let notifications = Notifications::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone()),
            http,
            mirror,
            SystemClock,
            FeedbackConfig {
                soft_bounce_limit: config.soft_bounce_limit,
            },
        );
        let queues = Queues::new(
            aws_sdk_sqs::Client::new(sdk),
            config.queue_url.clone(),
            None,
        );
        Ok(App {
            notifications,
            queues,
        })
    }

    /// The use case, for tests.
    pub fn notifications(&self) -> &AwsNotifications {
        &self.notifications
    }
}

/// Handles one invocation: an SQS batch of SNS messages, or an SNS event.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
    let payload = event.payload;
    let source = payload
        .pointer("/Records/0/eventSource")
        .or_else(|| payload.pointer("/Records/0/EventSource"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match source.as_str() {
        "aws:sqs" => {
            let event: SqsEvent = serde_json::from_value(payload)
                .map_err(|e| HandlerError::Permanent(format!("not an SQS event: {e}")))?;
            let response = handle_sqs(app, event).await;
            serde_json::to_value(response).map_err(|e| HandlerError::Permanent(e.to_string()))
        }
        "aws:sns" => {
            let records = payload
                .get("Records")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for record in &records {
                handle_sns_record(app, record).await?;
            }
            Ok(Value::Null)
        }
        other => Err(HandlerError::Permanent(format!(
            "not an SQS or SNS event (event source `{other}`)"
        ))),
    }
}

/// One record of an SNS event. There is no queue to carry a wait, so anything to retry becomes a
/// `Retryable` error and Lambda's own retries of the asynchronous invocation apply.
async fn handle_sns_record(app: &App, record: &Value) -> Result<(), HandlerError> {
    let text = |name: &str| {
        record
            .pointer(&format!("/Sns/{name}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let envelope = sns_message(text("Type").as_deref(), text("MessageId"), text("Message"));
    let sns_message_id = text("MessageId");
    match apply(app, envelope, sns_message_id.as_deref(), 1, Utc::now()).await {
        Verdict::Done => Ok(()),
        Verdict::Retry(why) => Err(HandlerError::Retryable(why)),
        Verdict::RetryAfter(wait) => Err(HandlerError::Retryable(format!(
            "an event POST is to be retried in {} s",
            wait.as_secs()
        ))),
    }
}

async fn handle_sqs(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let results = join_all(
        event
            .records
            .iter()
            .map(|record| handle_record(app, record)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    for (record, ok) in event.records.iter().zip(results) {
        if !ok {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Handles one SQS record; false when it must come back (reported in `batchItemFailures`).
async fn handle_record(app: &App, record: &SqsMessage) -> bool {
    let id = record.message_id.as_deref().unwrap_or("(no id)");
    let Some(body) = record.body.as_deref() else {
        warn!(
            sqs_message_id = id,
            "SQS record without a body; acknowledged"
        );
        return true;
    };
    let attempt = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1);
    let envelope = match read_envelope(body) {
        Ok(envelope) => envelope,
        Err(unreadable) => {
            // Acknowledged: it will never read better, and the other records go on.
            error!(sqs_message_id = id, error = %unreadable, "unreadable SQS body acknowledged");
            return true;
        }
    };
    let (Envelope::Notification { sns_message_id, .. } | Envelope::Ignore { sns_message_id, .. }) =
        &envelope;
    let sns_message_id = sns_message_id.clone();
    let envelope = Ok(envelope);
    match apply(
        app,
        envelope,
        sns_message_id.as_deref(),
        attempt,
        first_seen(&record.attributes),
    )
    .await
    {
        Verdict::Done => true,
        Verdict::Retry(why) => {
            info!(sqs_message_id = id, why, "the notification will come back");
            false
        }
        Verdict::RetryAfter(wait) => {
            app.queues
                .delay_record(
                    record.event_source_arn.as_deref(),
                    record.receipt_handle.as_deref(),
                    wait,
                )
                .await;
            false
        }
    }
}

enum Verdict {
    Done,
    Retry(String),
    RetryAfter(std::time::Duration),
}

async fn apply(
    app: &App,
    envelope: Result<Envelope, mailroom::feedback::notification::Unreadable>,
    sns_message_id: Option<&str>,
    attempt: u32,
    first_seen: DateTime<Utc>,
) -> Verdict {
    let logged_id = sns_message_id.unwrap_or("(none)");
    let message = match envelope {
        Ok(Envelope::Notification { message, .. }) => message,
        Ok(Envelope::Ignore { why, .. }) => {
            info!(sns_message_id = logged_id, why, "acknowledged");
            return Verdict::Done;
        }
        Err(unreadable) => {
            // Acknowledged: it will never read better, and the other records go on.
            error!(sns_message_id = logged_id, error = %unreadable, "unreadable message acknowledged");
            return Verdict::Done;
        }
    };
    let arrival = Arrival {
        message: &message,
        sns_message_id,
        attempt,
        first_seen,
    };
    match app.notifications.handle(&arrival).await {
        Ok(Handled::Done) => Verdict::Done,
        Ok(Handled::Ignored(why)) => {
            info!(sns_message_id = logged_id, why, "acknowledged");
            Verdict::Done
        }
        Ok(Handled::RetryAfter(wait)) => Verdict::RetryAfter(wait),
        Err(FeedbackError::Unreadable(unreadable)) => {
            error!(sns_message_id = logged_id, error = %unreadable, "unreadable notification acknowledged");
            Verdict::Done
        }
        Err(FeedbackError::Store(store)) => {
            warn!(sns_message_id = logged_id, error = %store, "store failure");
            Verdict::Retry(store.to_string())
        }
    }
}
