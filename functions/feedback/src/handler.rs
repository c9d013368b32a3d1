//! Event → use case → Lambda result. Nothing here decides about feedback; it only translates.

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use mailroom::aws::dynamo::DynamoStore;
use mailroom::aws::feedback::SesSuppressionMirror;
use mailroom::aws::sqs::{Queues, Settlement, first_seen_of, receive_count};
use mailroom::budget::Deadline;
use mailroom::feedback::notification::{Envelope, read_envelope, sns_message};
use mailroom::http::{BuildError, HttpClient, TargetPolicy};
use mailroom::notifications::{Arrival, FeedbackConfig, FeedbackError, Handled, Notifications};
use mailroom::ports::{Clock, SystemClock};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::Config;

/// The feedback use case on AWS.
pub type AwsNotifications =
    Notifications<DynamoStore, HttpClient, SesSuppressionMirror, Arc<dyn Clock>>;

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
        App::with_clock(config, sdk, Arc::new(SystemClock))
    }

    /// Like [`App::new`], telling the time by `clock` (tests move it on to see days pass).
    pub fn with_clock(
        config: &Config,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<App, BuildError> {
        let http = HttpClient::new(
            config.webhook_timeout,
            TargetPolicy {
                allow_private: config.allow_private_targets,
                allow_http: config.allow_http_targets,
            },
        )?;
        let mirror = config
            .mirror_ses_suppression
            .then(|| SesSuppressionMirror::new(aws_sdk_sesv2::Client::new(sdk)));
        let notifications = Notifications::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone()),
            http,
            mirror,
            clock,
            FeedbackConfig {
                soft_bounce_limit: config.soft_bounce_limit,
                attempt_limit: config.webhook_timeout,
            },
        );
        let queues = Queues::new(
            aws_sdk_sqs::Client::new(sdk),
            config.queue_url.clone(),
            config.dlq_url.clone(),
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
    let received = Instant::now();
    let deadline = Deadline::from_unix_millis(event.context.deadline);
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
            let response = handle_sqs(app, event, deadline, received).await;
            serde_json::to_value(response).map_err(|e| HandlerError::Permanent(e.to_string()))
        }
        "aws:sns" => {
            let records = payload
                .get("Records")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for record in &records {
                handle_sns_record(app, record, deadline).await?;
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
async fn handle_sns_record(
    app: &App,
    record: &Value,
    deadline: Deadline,
) -> Result<(), HandlerError> {
    let text = |name: &str| {
        record
            .pointer(&format!("/Sns/{name}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let envelope = sns_message(text("Type").as_deref(), text("MessageId"), text("Message"));
    let sns_message_id = text("MessageId");
    match apply(
        app,
        envelope,
        sns_message_id.as_deref(),
        1,
        Utc::now(),
        deadline,
    )
    .await
    {
        Settlement::Done => Ok(()),
        Settlement::DeadLetter(why) => Err(HandlerError::Permanent(why)),
        Settlement::Fail(why) => Err(HandlerError::Retryable(why)),
        Settlement::HandBack => Err(HandlerError::Retryable(
            "no time left for an event POST".to_owned(),
        )),
        Settlement::Later(wait) => Err(HandlerError::Retryable(format!(
            "an event POST is to be retried in {} s",
            wait.as_secs()
        ))),
    }
}

async fn handle_sqs(
    app: &App,
    event: SqsEvent,
    deadline: Deadline,
    received: Instant,
) -> SqsBatchResponse {
    let settlements = join_all(
        event
            .records
            .iter()
            .map(|record| handle_record(app, record, deadline)),
    )
    .await;
    app.queues
        .settle(&event.records, settlements, received)
        .await
}

/// What becomes of one SQS record.
async fn handle_record(app: &App, record: &SqsMessage, deadline: Deadline) -> Settlement {
    let id = record.message_id.as_deref().unwrap_or("(no id)");
    let Some(body) = record.body.as_deref() else {
        return Settlement::DeadLetter(format!("SQS record {id} has no body"));
    };
    let envelope = read_envelope(body);
    let sns_message_id = match &envelope {
        Ok(
            Envelope::Notification { sns_message_id, .. } | Envelope::Ignore { sns_message_id, .. },
        ) => sns_message_id.clone(),
        Err(_) => None,
    };
    apply(
        app,
        envelope,
        sns_message_id.as_deref(),
        receive_count(record),
        first_seen_of(record),
        deadline,
    )
    .await
}

async fn apply(
    app: &App,
    envelope: Result<Envelope, mailroom::feedback::notification::Unreadable>,
    sns_message_id: Option<&str>,
    attempt: u32,
    first_seen: DateTime<Utc>,
    deadline: Deadline,
) -> Settlement {
    let logged_id = sns_message_id.unwrap_or("(none)");
    let message = match envelope {
        Ok(Envelope::Notification { message, .. }) => message,
        Ok(Envelope::Ignore { why, .. }) => {
            // Known and harmless: SNS's subscription confirmations and the like.
            info!(sns_message_id = logged_id, why, "acknowledged");
            return Settlement::Done;
        }
        Err(unreadable) => {
            // A lost bounce is an address never suppressed: never dropped, kept in the dead-letter queue
            // for a look (its alarm fires).
            return Settlement::DeadLetter(format!("unreadable notification: {unreadable}"));
        }
    };
    let arrival = Arrival {
        message: &message,
        sns_message_id,
        attempt,
        first_seen,
        deadline,
    };
    match app.notifications.handle(&arrival).await {
        Ok(Handled::Done) => Settlement::Done,
        Ok(Handled::Ignored(why)) => {
            info!(sns_message_id = logged_id, why, "acknowledged");
            Settlement::Done
        }
        Ok(Handled::RetryAfter(wait)) => Settlement::Later(wait),
        Ok(Handled::HandBack) => Settlement::HandBack,
        Ok(Handled::GaveUp) => {
            Settlement::DeadLetter("an event POST gave up after 72 hours".to_owned())
        }
        Err(FeedbackError::Unreadable(unreadable)) => {
            error!(sns_message_id = logged_id, error = %unreadable, "unreadable notification");
            Settlement::DeadLetter(format!("unreadable notification: {unreadable}"))
        }
        Err(FeedbackError::Store(store)) if !store.retryable => {
            Settlement::DeadLetter(format!("a store refused for good: {store}"))
        }
        Err(FeedbackError::Store(store)) => {
            warn!(sns_message_id = logged_id, error = %store, "store failure");
            Settlement::Fail(store.to_string())
        }
    }
}
