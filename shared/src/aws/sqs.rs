//! The inbound queue: visibility changes carry retry waits, and a message that ran out of time goes to the
//! dead-letter queue. [`Queue`] moves messages by hand (`mailroom redrive`).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageSystemAttributeName;
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

/// One message taken from a queue, hidden from other consumers until it is deleted or released.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// SQS's id of the message (a new one each time a body is sent).
    pub message_id: String,
    /// What deletes or releases this receipt of it.
    pub receipt_handle: String,
    /// The body, as sent.
    pub body: String,
    /// SQS's system attributes (`ApproximateFirstReceiveTimestamp`, `SentTimestamp`, …).
    pub attributes: HashMap<String, String>,
    /// The MD5 digest of the body, as SQS computed it.
    pub md5_of_body: Option<String>,
}

/// One SQS queue, for moving messages by hand: receive, send, delete, release.
#[derive(Debug, Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// Most messages SQS hands out per receive.
pub const MAX_RECEIVE: usize = 10;

impl Queue {
    /// The queue at `url`, through a client built from `sdk`.
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Queue {
        Queue {
            client: aws_sdk_sqs::Client::new(sdk),
            url: url.into(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Up to `max` (at most [`MAX_RECEIVE`]) messages visible now, without waiting for more, each hidden
    /// for `hold`.
    pub async fn receive(
        &self,
        max: usize,
        hold: Duration,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_RECEIVE)).unwrap_or(1))
            .wait_time_seconds(0)
            .visibility_timeout(i32::try_from(hold.as_secs()).unwrap_or(i32::MAX))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| store_error(format!("cannot receive from {}", self.url), e))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| {
                Some(QueuedMessage {
                    message_id: message.message_id?,
                    receipt_handle: message.receipt_handle?,
                    body: message.body.unwrap_or_default(),
                    attributes: message
                        .attributes
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(name, value)| (name.as_str().to_owned(), value))
                        .collect(),
                    md5_of_body: message.md5_of_body,
                })
            })
            .collect())
    }

    /// Sends `body` as a new message.
    pub async fn send(&self, body: &str) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| store_error(format!("cannot send to {}", self.url), e))?;
        Ok(())
    }

    /// Removes a received message for good.
    pub async fn delete(&self, message: &QueuedMessage) -> Result<(), StoreError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map_err(|e| store_error(format!("cannot delete from {}", self.url), e))?;
        Ok(())
    }

    /// Makes a received message visible again at once, untouched.
    pub async fn release(&self, message: &QueuedMessage) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| store_error(format!("cannot release a message of {}", self.url), e))?;
        Ok(())
    }
}
