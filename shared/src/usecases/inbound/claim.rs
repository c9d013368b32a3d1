//! Claiming a delivery before it is attempted, and concluding the attempt in its record: the conditional
//! writes that keep a delivery from being attempted twice at once or again after it is final.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{Inbound, Message, Outcome, Retryable};
use crate::deliver::policy;
use crate::ports::{
    Claim, Clock, MailSender, MailStore, ObjectStore, OutboundStore, RecordStore, RouteStore,
    SuppressionList, Webhooks,
};
use crate::record::{
    Attempt, Delivery, DeliveryKey, HISTORY_EXCERPT_BYTES, Status, masked_address,
};
use crate::route::Route;

/// A delivery this worker holds the claim on, with its record as far as it is known.
pub(super) struct Claimed {
    /// Which delivery.
    pub(super) key: DeliveryKey,
    /// The claim's token, which the record is saved under.
    pub(super) token: String,
    /// The record, refreshed with what the message says now.
    pub(super) record: Delivery,
}

/// What asking for the claim on a delivery came to.
pub(super) enum Claiming {
    /// The claim is this worker's: attempt the delivery.
    Granted(Box<Claimed>),
    /// No attempt now, and the event's outcome is already known: the record is final, another worker
    /// holds the claim, a wait is not over, or this invocation has no time left.
    Settled(Outcome),
}

/// What became of one attempt, before the record says it.
pub(super) enum Verdict {
    /// Nothing more will happen: the record ends in this status.
    Final {
        status: Status,
        error: Option<String>,
    },
    /// Try again on the delivery schedule (after `retry_after` if the target asked for a wait).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Verdict {
    /// A final verdict.
    pub(super) fn done(status: Status, error: impl Into<Option<String>>) -> Verdict {
        Verdict::Final {
            status,
            error: error.into(),
        }
    }
}

/// One attempt on a claimed delivery and what it came to: what `conclude` writes into the record.
pub(super) struct Attempted<'a> {
    /// The message delivered.
    pub(super) message: &'a Message<'a>,
    /// The recipient it was delivered for.
    pub(super) recipient: &'a str,
    /// The route that named the target.
    pub(super) route: &'a Route,
    /// The claim, with the record as the attempt left it.
    pub(super) claimed: Claimed,
    /// When the attempt began.
    pub(super) at: DateTime<Utc>,
    /// How long it took.
    pub(super) ms: u64,
    /// What it came to.
    pub(super) verdict: Verdict,
}

/// Where a delivery stands after an attempt.
struct Standing {
    status: Status,
    error: Option<String>,
    /// What the event that carried the message should do.
    outcome: Outcome,
    /// When the next attempt is due, if there is to be one.
    next_attempt_at: Option<DateTime<Utc>>,
}

impl<M, S, W, X, C> Inbound<M, S, W, X, C>
where
    M: MailStore + ObjectStore,
    S: RecordStore + RouteStore + SuppressionList + OutboundStore,
    W: Webhooks,
    X: MailSender,
    C: Clock,
{
    /// Takes the claim on delivering `message` for `recipient` to `target`, or says why not now: the
    /// record is final, another worker holds it, or a long wait came back early.
    pub(super) async fn claim(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        target: &str,
    ) -> Result<Claiming, Retryable> {
        let key = DeliveryKey::new(message.received.location.message_id(), recipient, target);
        let now = self.clock.now();

        if let Some(existing) = self.store.get(&key).await?
            && existing.status == Status::Retrying
            && let Some(due) = existing.next_attempt_at
            && due > now
        {
            // A wait longer than one visibility change came back early: wait out the rest.
            return Ok(Claiming::Settled(Outcome::RetryAfter(to_std(due - now))));
        }
        if !message.deadline.allows(self.config.attempt_limit) {
            // Too little of this invocation is left for an attempt: no claim, no attempt counted.
            return Ok(Claiming::Settled(Outcome::HandBack));
        }

        let token = crate::deliver::random_webhook_id();
        let until = now
            + chrono::Duration::from_std(self.config.claim_for)
                .unwrap_or(chrono::Duration::minutes(5));
        let previous = match self.store.claim(&key, &token, now, until).await? {
            Claim::Final(_) => return Ok(Claiming::Settled(Outcome::Done)),
            Claim::Busy(until) => {
                let wait = to_std(until - now).max(Duration::from_secs(1));
                return Ok(Claiming::Settled(Outcome::RetryAfter(wait)));
            }
            Claim::Granted(previous) => previous,
        };
        let mut record = match previous {
            Some(previous) => *previous,
            None => self.base_record(message, recipient, target),
        };
        // Facts may have been redacted or missing when the record was first written; refresh them.
        let fresh = self.base_record(message, recipient, target);
        record.recipient = fresh.recipient;
        record.recipient_source = fresh.recipient_source;
        record.sender = fresh.sender;
        record.sender_ip = fresh.sender_ip;
        record.subject = fresh.subject;
        record.message_id_header = fresh.message_id_header;
        record.route = Some(route.pattern.to_string());
        Ok(Claiming::Granted(Box::new(Claimed { key, token, record })))
    }

    /// Writes what an attempt came to into the record, schedules the next one or gives up, and releases
    /// the claim.
    pub(super) async fn conclude(&self, attempted: Attempted<'_>) -> Result<Outcome, Retryable> {
        let Attempted {
            message,
            recipient,
            route,
            claimed,
            at,
            ms,
            verdict,
        } = attempted;
        let Claimed {
            key,
            token,
            mut record,
        } = claimed;
        record.attempts += 1;
        record.processing_ms = Some(message.started.elapsed().as_millis() as u64);
        let excerpt = record.response_body.as_deref().map(history_excerpt);

        let Standing {
            status,
            error,
            outcome,
            next_attempt_at,
        } = standing_after(verdict, record.attempts, message.received.first_seen, at);
        record.next_attempt_at = next_attempt_at;
        record.status = status;
        record.error = error.clone();
        record.push_attempt(Attempt {
            at,
            status_code: record.response_status,
            outcome: status,
            error,
            response_excerpt: excerpt,
            ms,
        });
        record.redact(&route.redact);
        info!(
            message_id = %key.message_id,
            recipient = %masked_address(recipient),
            route = %crate::record::masked_pattern(&route.pattern.to_string()),
            target = if record.target.starts_with("forward ") { "forward" } else { "webhook" },
            status = status.as_str(),
            http_status = record.response_status,
            attempt = record.attempts,
            ms,
            "delivery attempt"
        );
        self.report(Some(message), recipient, &record, ms);
        if !self.store.save(&record, Some(&token)).await? {
            warn!(message_id = %key.message_id, "the claim expired before the record was saved");
        }
        Ok(outcome)
    }
}

/// Where a delivery stands after its `attempts`-th attempt, made `at`, came to `verdict`: a retry is
/// scheduled while the 72 hours since the message was `first_seen` leave time for one.
fn standing_after(
    verdict: Verdict,
    attempts: u32,
    first_seen: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Standing {
    let (reason, retry_after) = match verdict {
        Verdict::Final { status, error } => {
            return Standing {
                status,
                error,
                outcome: Outcome::Done,
                next_attempt_at: None,
            };
        }
        Verdict::Retry {
            reason,
            retry_after,
        } => (reason, retry_after),
    };
    let give_up_at =
        first_seen + chrono::Duration::from_std(policy::GIVE_UP_AFTER).unwrap_or_default();
    match policy::next_wait(attempts, retry_after, to_std(give_up_at - at)) {
        Some(wait) => Standing {
            status: Status::Retrying,
            error: Some(reason),
            outcome: Outcome::RetryAfter(wait),
            next_attempt_at: Some(at + chrono::Duration::from_std(wait).unwrap_or_default()),
        },
        None => Standing {
            status: Status::Failed,
            error: Some(format!(
                "gave up after {attempts} attempts over 72 hours; last: {reason}"
            )),
            outcome: Outcome::GaveUp,
            next_attempt_at: None,
        },
    }
}

/// The start of a response body that the attempt history keeps, cut at a character boundary.
fn history_excerpt(body: &str) -> String {
    let mut text = body.to_owned();
    if text.len() > HISTORY_EXCERPT_BYTES {
        let mut cut = HISTORY_EXCERPT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// A span of time that is negative counts as none.
fn to_std(duration: chrono::Duration) -> Duration {
    duration.to_std().unwrap_or(Duration::ZERO)
}
