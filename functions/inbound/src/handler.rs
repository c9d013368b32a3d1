//! Event → use case → Lambda result. Nothing here decides about mail; it only translates.

use aws_lambda_events::sqs::SqsMessage;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use mailroom::budget::Deadline;
use mailroom::usecases::inbound::Received;
use mailroom_aws::events::{self, Malformed, Work};
use mailroom_aws::sqs::first_seen_of;
use mailroom_lambda::trigger::sns_field;
use mailroom_lambda::{BatchWork, HandlerError, Invocation, Trigger, Verdict, run_batch};
use serde_json::Value;

use crate::app::App;

/// Handles one invocation: an SQS batch (SES notifications or S3 events), an SNS event, a direct S3
/// event, or S3's test event.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
    let invocation = Invocation::of(&event);
    match Trigger::of(event.payload)? {
        Trigger::Sqs(batch) => run_batch(app, &app.queues, batch, invocation).await,
        Trigger::Sns(records) => {
            for message in records.iter().filter_map(|r| sns_field(r, "Message")) {
                direct(app, events::read_body(&message, Utc::now()), invocation).await?;
            }
            Ok(Value::Null)
        }
        Trigger::Other(payload) => {
            direct(app, events::read_value(&payload, Utc::now()), invocation)
                .await
                .map(|()| Value::Null)
        }
    }
}

/// A direct trigger has no queue to carry a wait: a retryable failure becomes a `Retryable` error so
/// Lambda's own retries apply.
async fn direct(
    app: &App,
    work: Result<Work, Malformed>,
    invocation: Invocation,
) -> Result<(), HandlerError> {
    let work = work.map_err(|e| HandlerError::Permanent(format!("unreadable event: {e}")))?;
    for received in work.into_messages() {
        let result = app
            .inbound
            .process_within(&received, invocation.deadline)
            .await;
        let what = format!("the delivery of {}", received.location.message_id());
        Verdict::of_delivery(result, &what).into_direct(&what)?;
    }
    Ok(())
}

impl BatchWork for App {
    type Item = Received;

    fn read(&self, record: &SqsMessage, body: &str) -> Result<Vec<Received>, String> {
        events::read_body(body, first_seen_of(record))
            .map(Work::into_messages)
            .map_err(|malformed| malformed.to_string())
    }

    async fn process(&self, items: &[Received], deadline: Deadline) -> Vec<Verdict> {
        let results = self
            .inbound
            .process_batch(items, deadline, self.memory)
            .await;
        items
            .iter()
            .zip(results)
            .map(|(received, result)| Verdict::of_delivery(result, received.location.message_id()))
            .collect()
    }
}
