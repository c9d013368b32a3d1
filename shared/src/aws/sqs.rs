//! The inbound queue: visibility changes carry retry waits, and a message that ran out of time goes to the
//! dead-letter queue.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::Client;
use chrono::{DateTime, Utc};

use super::store_error;
use crate::deliver::policy::MAX_VISIBILITY;
use crate::ports::StoreError;

/// The inbound queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct Queues {
    client: Client,
    queue_url: Option<String>,
    dlq_url: Option<String>,
}

impl Queues {
    /// Uses a client built once at init; either URL may be unknown (a direct S3 trigger needs neither).
    pub fn new(client: Client, queue_url: Option<String>, dlq_url: Option<String>) -> Queues {
        Queues {
            client,
            queue_url,
            dlq_url,
        }
    }

    /// The queue URL the event came from: the configured one, or one derived from the event source ARN
    /// (`arn:aws:sqs:region:account:name`).
    pub fn queue_url_for(&self, event_source_arn: Option<&str>) -> Option<String> {
        self.queue_url.clone().or_else(|| {
            let arn = event_source_arn?;
            let mut parts = arn.split(':');
            let (_, _, _, region, account, name) = (
                parts.next()?,
                parts.next()?,
                parts.next()?,
                parts.next()?,
                parts.next()?,
                parts.next()?,
            );
            Some(format!(
                "https://sqs.{region}.amazonaws.com/{account}/{name}"
            ))
        })
    }

    /// Makes the message visible again after `wait` (at most SQS's 12-hour cap; longer waits are finished
    /// when it comes back).
    pub async fn delay(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        wait: Duration,
    ) -> Result<(), StoreError> {
        let seconds = wait.min(MAX_VISIBILITY).as_secs().max(1);
        self.client
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error("cannot change the message's visibility", e))?;
        Ok(())
    }

    /// Makes the message of an SQS record visible again after `wait`. A failure is only logged: the
    /// queue's own visibility timeout then brings the message back sooner, which costs an early attempt,
    /// not the message.
    pub async fn delay_record(
        &self,
        event_source_arn: Option<&str>,
        receipt_handle: Option<&str>,
        wait: Duration,
    ) {
        let (Some(queue_url), Some(handle)) =
            (self.queue_url_for(event_source_arn), receipt_handle)
        else {
            tracing::warn!(
                "cannot change visibility: no queue URL or receipt handle; the queue's own timeout applies"
            );
            return;
        };
        if let Err(error) = self.delay(&queue_url, handle, wait).await {
            tracing::warn!(error = %error, "cannot change visibility; the queue's own timeout applies");
        }
    }

    /// Sends a message body to the dead-letter queue; false when none is configured.
    pub async fn dead_letter(&self, body: &str) -> Result<bool, StoreError> {
        let Some(dlq_url) = &self.dlq_url else {
            return Ok(false);
        };
        self.client
            .send_message()
            .queue_url(dlq_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| store_error("cannot send to the dead-letter queue", e))?;
        Ok(true)
    }
}

/// When SQS first handed a message out, from its record's attributes: the 72-hour give-up counts from
/// here. Now, when SQS did not say.
pub fn first_seen(attributes: &HashMap<String, String>) -> DateTime<Utc> {
    ["ApproximateFirstReceiveTimestamp", "SentTimestamp"]
        .iter()
        .find_map(|name| attributes.get(*name))
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now)
}
