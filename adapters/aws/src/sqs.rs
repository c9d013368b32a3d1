//! The queues of the functions: what becomes of each record of an SQS batch ([`Queues::settle`]: the one
//! place where retry waits become visibility changes, capped as SQS requires), and [`Queue`] for moving
//! messages by hand (`mailroom redrive`).
//!
//! How many receives the 72-hour schedule needs, so that `maxReceiveCount` ([`MAX_RECEIVE_COUNT`]) never
//! ends delivery before the give-up does: SQS keeps a message hidden at most 12 hours counted from its
//! receive, so a wait `w` takes `ceil(w / H)` receives with `H` = 12 h − [`VISIBILITY_MARGIN`] = 11 h 45 min.
//! The schedule has at most 10 attempts (9 waits, `BACKOFF`) within 72 hours, so it needs at most
//! 1 + Σ ceil(wᵢ / H) ≤ 1 + 9 + 72 h / H = 16.1, i.e. 16 receives, whatever `Retry-After` asks (waits of at
//! most 24 h each, still within the 72 hours). Receives that attempt nothing (a message handed back for
//! want of time, a claim held by another worker) are not bounded by the schedule: from receive
//! [`REQUEUE_FROM_RECEIVE`] on, a message that must wait is sent again as a new message, whose receive
//! count starts at zero and which carries its first receipt along ([`FIRST_SEEN_ATTRIBUTE`]). Only a message
//! that kills the function 25 times in a row (a crash, not a wait) reaches the dead-letter queue by count.
//! The test `the_schedule_fits_the_receive_count` checks this arithmetic.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use chrono::{DateTime, Utc};

use super::store_error;
use mailroom::deliver::policy::MAX_VISIBILITY;
use mailroom::ports::StoreError;

/// Kept off SQS's 12-hour cap: the poller's time between the receive and the invocation, and clock skew.
pub const VISIBILITY_MARGIN: Duration = Duration::from_secs(15 * 60);

/// `maxReceiveCount` of both queues' redrive policies (template.yaml, `mailroom setup emulator`).
pub const MAX_RECEIVE_COUNT: u32 = 50;

/// From this receive on, a message that has to wait is sent again as a new message instead of hidden.
pub const REQUEUE_FROM_RECEIVE: u32 = 25;

// A message is sent again well before SQS would dead-letter it by count.
const _: () = assert!(REQUEUE_FROM_RECEIVE < MAX_RECEIVE_COUNT);

/// How long a message handed back unattempted stays hidden.
pub const HAND_BACK_WAIT: Duration = Duration::from_secs(10);

/// Message attribute that carries a message's first receipt (Unix milliseconds) across a requeue.
pub const FIRST_SEEN_ATTRIBUTE: &str = "MailroomFirstSeen";

/// SQS's longest `DelaySeconds`.
const MAX_DELAY: Duration = Duration::from_secs(900);

/// What should become of one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Finished: acknowledge it.
    Done,
    /// Attempt again after this wait (hidden as long as SQS allows; early returns are waited out).
    Later(Duration),
    /// Not attempted, for want of time or memory: back in [`HAND_BACK_WAIT`].
    HandBack,
    /// Will never succeed as it is (unreadable, given up, a permanent store error): to the dead-letter
    /// queue at once, with the reason logged.
    DeadLetter(String),
    /// A failure that may pass: the queue's own visibility timeout brings it back.
    Fail(String),
}

/// The queue a function reads and its dead-letter queue.
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

    /// Carries out what became of each record (`settlements[i]` for `records[i]`; a missing one counts
    /// as [`Settlement::Fail`]) and answers the batch. `received` is when the invocation began: SQS
    /// counts its 12-hour cap from the receive, which was just before.
    pub async fn settle(
        &self,
        records: &[SqsMessage],
        settlements: Vec<Settlement>,
        received: Instant,
    ) -> SqsBatchResponse {
        let mut settlements = settlements.into_iter();
        let mut response = SqsBatchResponse::default();
        for record in records {
            let settlement = settlements
                .next()
                .unwrap_or_else(|| Settlement::Fail("no outcome".to_owned()));
            if !self.settle_one(record, settlement, received).await {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Moves a record to the dead-letter queue; whether it left the batch.
    async fn settle_dead_letter(&self, record: &SqsMessage, why: &str) -> bool {
        let id = record.message_id.as_deref().unwrap_or("(no id)");
        let Some(body) = record.body.as_deref() else {
            return false;
        };
        match self.dead_letter(body).await {
            Ok(true) => {
                tracing::error!(sqs_message_id = id, why, "sent to the dead-letter queue");
                true
            }
            Ok(false) => {
                tracing::error!(
                    sqs_message_id = id,
                    why,
                    "no dead-letter queue URL: reported failed, the redrive policy will move it"
                );
                false
            }
            Err(error) => {
                tracing::error!(sqs_message_id = id, why, error = %error, "cannot dead-letter; it will come back");
                false
            }
        }
    }

    /// Settles one record; false when it must be reported failed (it comes back).
    async fn settle_one(
        &self,
        record: &SqsMessage,
        settlement: Settlement,
        received: Instant,
    ) -> bool {
        let id = record.message_id.as_deref().unwrap_or("(no id)");
        let wait = match settlement {
            Settlement::Done => return true,
            Settlement::Fail(why) => {
                tracing::warn!(
                    sqs_message_id = id,
                    why,
                    "failed; the queue's timeout brings it back"
                );
                return false;
            }
            Settlement::DeadLetter(why) => return self.settle_dead_letter(record, &why).await,
            Settlement::Later(wait) => wait,
            Settlement::HandBack => HAND_BACK_WAIT,
        };
        let Some(queue_url) = self.queue_url_for(record.event_source_arn.as_deref()) else {
            tracing::warn!(
                sqs_message_id = id,
                "no queue URL; the queue's own timeout applies"
            );
            return false;
        };
        if receive_count(record) >= REQUEUE_FROM_RECEIVE
            && let Some(body) = record.body.as_deref()
        {
            match self
                .requeue(&queue_url, body, first_seen_of(record), wait)
                .await
            {
                Ok(()) => {
                    tracing::info!(
                        sqs_message_id = id,
                        wait_secs = wait.as_secs(),
                        "sent again as a new message; its receive count starts over"
                    );
                    return true;
                }
                Err(error) => {
                    tracing::warn!(sqs_message_id = id, error = %error, "cannot send it again; hiding it instead");
                }
            }
        }
        let Some(handle) = record.receipt_handle.as_deref() else {
            tracing::warn!(
                sqs_message_id = id,
                "no receipt handle; the queue's own timeout applies"
            );
            return false;
        };
        if let Err(error) = self
            .hide(&queue_url, handle, hide_for(wait, received.elapsed()))
            .await
        {
            // The queue's own visibility timeout brings it back sooner: an early return, waited out then.
            tracing::warn!(sqs_message_id = id, error = %error, "cannot change visibility; the queue's own timeout applies");
        }
        false
    }

    /// Hides a received message for `visibility` from now.
    pub async fn hide(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        visibility: Duration,
    ) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error("cannot change the message's visibility", e))?;
        Ok(())
    }

    /// Sends `body` again as a new message, delayed up to SQS's 15 minutes, carrying `first_seen`.
    async fn requeue(
        &self,
        queue_url: &str,
        body: &str,
        first_seen: DateTime<Utc>,
        wait: Duration,
    ) -> Result<(), StoreError> {
        let first_seen = MessageAttributeValue::builder()
            .data_type("Number")
            .string_value(first_seen.timestamp_millis().to_string())
            .build()
            .map_err(|e| {
                StoreError::permanent(format!("cannot describe the first receipt: {e}"))
            })?;
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(wait.min(MAX_DELAY).as_secs()).unwrap_or(0))
            .message_attributes(FIRST_SEEN_ATTRIBUTE, first_seen)
            .send()
            .await
            .map_err(|e| store_error("cannot send the message again", e))?;
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

/// How long to hide a message that should wait `wait`, `since_receive` after it was received: never past
/// SQS's cap of 12 hours from the receive, less [`VISIBILITY_MARGIN`]. Longer waits end early; the message
/// is then hidden again without an attempt.
pub fn hide_for(wait: Duration, since_receive: Duration) -> Duration {
    let cap = MAX_VISIBILITY
        .saturating_sub(VISIBILITY_MARGIN)
        .saturating_sub(since_receive);
    wait.min(cap).max(Duration::from_secs(1))
}

/// How often SQS has handed the message out (1 the first time).
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// When the message was first received: the 72-hour give-up counts from here. A message sent again
/// carries it in [`FIRST_SEEN_ATTRIBUTE`]; otherwise SQS's first receive; now when SQS did not say.
pub fn first_seen_of(record: &SqsMessage) -> DateTime<Utc> {
    record
        .message_attributes
        .get(FIRST_SEEN_ATTRIBUTE)
        .and_then(|attribute| attribute.string_value.as_deref())
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(|| first_seen(&record.attributes))
}

/// When SQS first handed a message out, from its record's attributes. Now, when SQS did not say.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mailroom::deliver::policy::{BACKOFF, GIVE_UP_AFTER, MAX_RETRY_AFTER, next_wait};

    /// Receives a message takes from its first receive to the give-up when every attempt fails and the
    /// target asks for `retry_after` each time: each wait is hidden in steps of at most `hide_for`.
    fn receives_to_give_up(retry_after: Option<Duration>) -> u32 {
        let mut receives = 1;
        let mut elapsed = Duration::ZERO;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(mut wait) =
                next_wait(attempts, retry_after, GIVE_UP_AFTER.saturating_sub(elapsed))
            else {
                return receives;
            };
            elapsed += wait;
            while !wait.is_zero() {
                receives += 1;
                wait = wait.saturating_sub(hide_for(wait, Duration::ZERO));
            }
        }
    }

    #[test]
    fn the_schedule_fits_the_receive_count() {
        assert_eq!(BACKOFF.len(), 9);
        let plain = receives_to_give_up(None);
        let longest = receives_to_give_up(Some(MAX_RETRY_AFTER));
        let hourly = receives_to_give_up(Some(Duration::from_secs(3600)));
        for needed in [plain, longest, hourly] {
            assert!(needed <= 16, "the bound in the module comment: {needed}");
            assert!(needed < REQUEUE_FROM_RECEIVE, "{needed}");
        }
        assert_eq!(plain, 13, "10 attempts and 3 waits split in two");
    }

    #[test]
    fn visibility_stays_under_the_cap_counted_from_the_receive() {
        let day = Duration::from_secs(24 * 3600);
        let cap = Duration::from_secs(12 * 3600);
        assert_eq!(hide_for(day, Duration::ZERO), cap - VISIBILITY_MARGIN);
        assert_eq!(
            hide_for(day, Duration::from_secs(100)),
            cap - VISIBILITY_MARGIN - Duration::from_secs(100)
        );
        assert_eq!(
            hide_for(Duration::from_secs(5), Duration::from_secs(100)),
            Duration::from_secs(5)
        );
        assert_eq!(
            hide_for(Duration::ZERO, Duration::ZERO),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_requeued_message_keeps_its_first_receipt() {
        let mut record = SqsMessage::default();
        record.attributes.insert(
            "ApproximateFirstReceiveTimestamp".into(),
            "1700000000000".into(),
        );
        assert_eq!(first_seen_of(&record).timestamp(), 1_700_000_000);
        let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
        attribute.string_value = Some("1600000000000".into());
        attribute.data_type = Some("Number".into());
        record
            .message_attributes
            .insert(FIRST_SEEN_ATTRIBUTE.into(), attribute);
        assert_eq!(first_seen_of(&record).timestamp(), 1_600_000_000);
        assert_eq!(receive_count(&record), 1);
    }
}
