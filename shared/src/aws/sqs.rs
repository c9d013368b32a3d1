//! The inbound queue: visibility changes carry retry waits, and a message that ran out of time goes to the
//! dead-letter queue.

use std::time::Duration;

use aws_sdk_sqs::Client;

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
