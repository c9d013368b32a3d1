//! Event → use case → Lambda result. Nothing here decides about feedback; it only translates.

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use mailroom::feedback::notification::sns_message;
use mailroom_lambda::trigger::sns_field;
use mailroom_lambda::{HandlerError, Invocation, Trigger, run_batch};
use serde_json::Value;

use crate::app::{App, Notice};

/// Handles one invocation: an SQS batch of SNS messages (the stack's wiring), or an SNS event.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
    let invocation = Invocation::of(&event);
    match Trigger::of(event.payload)? {
        Trigger::Sqs(batch) => run_batch(app, &app.queues, batch, invocation).await,
        Trigger::Sns(records) => {
            for record in &records {
                direct(app, record, invocation).await?;
            }
            Ok(Value::Null)
        }
        Trigger::Other(_) => Err(HandlerError::Permanent(
            "not an SQS or SNS event".to_owned(),
        )),
    }
}

/// One record of an SNS event. There is no queue to carry a wait, so anything to retry becomes a
/// `Retryable` error and Lambda's own retries of the asynchronous invocation apply.
async fn direct(app: &App, record: &Value, invocation: Invocation) -> Result<(), HandlerError> {
    let field = |name: &str| sns_field(record, name);
    let envelope = sns_message(
        field("Type").as_deref(),
        field("MessageId"),
        field("Message"),
    )
    .map_err(|e| HandlerError::Permanent(format!("unreadable notification: {e}")))?;
    let notice = Notice {
        envelope,
        attempt: 1,
        first_seen: Utc::now(),
    };
    app.apply(&notice, invocation.deadline)
        .await
        .into_direct("a notification")
}
