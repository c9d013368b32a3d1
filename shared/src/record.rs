//! The metadata record: one per message, recipient and target, holding only the fields the data policy
//! lists, kept `RetentionDays` (60 by default) through DynamoDB's TTL on `expires_at`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::route::Redact;

/// Default retention of records, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 60;

/// Most attempts kept in a record's history.
pub const MAX_HISTORY: usize = 30;

/// Bytes of each answer a history entry keeps (the record's last answer keeps 2 KiB).
pub const HISTORY_EXCERPT_BYTES: usize = 256;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A delivery is under way or not yet attempted.
    Pending,
    /// The target answered 2xx.
    Delivered,
    /// A retryable failure; another attempt is scheduled.
    Retrying,
    /// The target refused it (4xx, 410, refused target, disabled route): not retried.
    Rejected,
    /// Gave up: retries ran out, or the message could not be read or parsed.
    Failed,
    /// No route takes the recipient.
    NoRoute,
    /// The target kind was not supported by the version that received the message (older records).
    Unsupported,
    /// Dropped on an SES verdict the route names.
    Dropped,
    /// Erased on request; a pending delivery of erased mail is cancelled.
    Erased,
    /// A forward SES accepted; its outbound record follows what became of it.
    Sent,
    /// A forward not sent: the address is on the suppression list.
    Suppressed,
    /// Too large to forward: a notice with a link to the original was sent instead.
    NoticeSent,
}

impl Status {
    /// Every status, for listings and argument checks.
    pub const ALL: [Status; 12] = [
        Status::Pending,
        Status::Delivered,
        Status::Retrying,
        Status::Rejected,
        Status::Failed,
        Status::NoRoute,
        Status::Unsupported,
        Status::Dropped,
        Status::Erased,
        Status::Sent,
        Status::Suppressed,
        Status::NoticeSent,
    ];

    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Retrying => "retrying",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
            Status::NoRoute => "no_route",
            Status::Unsupported => "unsupported",
            Status::Dropped => "dropped",
            Status::Erased => "erased",
            Status::Sent => "sent",
            Status::Suppressed => "suppressed",
            Status::NoticeSent => "notice_sent",
        }
    }

    /// Whether nothing more will happen on its own.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Pending | Status::Retrying)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| format!("unknown status `{text}`"))
    }
}

/// One attempt, as the history of a record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it started.
    pub at: DateTime<Utc>,
    /// The answer's status code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// What it led to.
    pub outcome: Status,
    /// Why, when it was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the answer (at most [`HISTORY_EXCERPT_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    /// How long it took.
    pub ms: u64,
}

/// Identifies one delivery: a message, one of its recipients, one target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    /// SES's message id.
    pub message_id: String,
    /// A digest of recipient and target, so the key holds no address.
    pub delivery_id: String,
}

impl DeliveryKey {
    /// The key of delivering `message_id` for `recipient` to `target`.
    pub fn new(message_id: &str, recipient: &str, target: &str) -> DeliveryKey {
        let digest = Sha256::new()
            .chain_update(recipient.to_ascii_lowercase().as_bytes())
            .chain_update([0u8])
            .chain_update(target.as_bytes())
            .finalize();
        let mut delivery_id = String::with_capacity(32);
        for byte in digest.iter().take(16) {
            delivery_id.push_str(&format!("{byte:02x}"));
        }
        DeliveryKey {
            message_id: message_id.to_owned(),
            delivery_id,
        }
    }
}

/// The record of one delivery. Optional fields are absent when unknown or redacted by the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// SES's message id (the stored object's name).
    pub message_id: String,
    /// See [`DeliveryKey`].
    pub delivery_id: String,
    /// Where the delivery stands.
    pub status: Status,
    /// The recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// `smtp` when the recipient came from the SMTP transaction, `headers` when recovered from To/Cc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_source: Option<String>,
    /// The route pattern that took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `webhook <url without credentials>` or `forward <address>`; empty when there is no target.
    pub target: String,
    /// Attempts made.
    pub attempts: u32,
    /// The `webhook-id` of every attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    /// A forward's outbound record: SES's message id of the sent copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_id: Option<String>,
    /// When SES received the message.
    pub received_at: DateTime<Utc>,
    /// The connecting client's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_ip: Option<String>,
    /// The envelope sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The `Message-ID` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id_header: Option<String>,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The last answer's status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// The start of the last answer (2 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// Milliseconds the last attempt took, rendering included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_ms: Option<u64>,
    /// Why it is not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The stored raw message.
    pub s3_key: String,
    /// When the next attempt is due, while retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first (at most [`MAX_HISTORY`]).
    #[serde(default)]
    pub history: Vec<Attempt>,
    /// Unix seconds after which DynamoDB's TTL removes the record; reads treat it as gone from then on.
    pub expires_at: i64,
}

impl Delivery {
    /// A record for `key` with nothing known yet but the message's place and time.
    pub fn new(
        key: &DeliveryKey,
        s3_key: &str,
        received_at: DateTime<Utc>,
        retention_days: u32,
    ) -> Delivery {
        Delivery {
            message_id: key.message_id.clone(),
            delivery_id: key.delivery_id.clone(),
            status: Status::Pending,
            recipient: None,
            recipient_source: None,
            route: None,
            target: String::new(),
            attempts: 0,
            webhook_id: None,
            outbound_id: None,
            received_at,
            sender_ip: None,
            sender: None,
            message_id_header: None,
            subject: None,
            response_status: None,
            response_body: None,
            processing_ms: None,
            error: None,
            s3_key: s3_key.to_owned(),
            next_attempt_at: None,
            history: Vec::new(),
            expires_at: expires_at(received_at, retention_days),
        }
    }

    /// The address a forward delivery sends to (its target is `forward <address>`).
    pub fn forward_address(&self) -> Option<&str> {
        self.target
            .strip_prefix("forward ")
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }

    /// The key of this record.
    pub fn key(&self) -> DeliveryKey {
        DeliveryKey {
            message_id: self.message_id.clone(),
            delivery_id: self.delivery_id.clone(),
        }
    }

    /// Whether DynamoDB's TTL may already have removed it: reads treat it as gone.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now.timestamp()
    }

    /// Adds an attempt to the history, dropping the oldest past [`MAX_HISTORY`].
    pub fn push_attempt(&mut self, attempt: Attempt) {
        self.history.push(attempt);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
    }

    /// Removes the fields a route redacts, so they are never stored.
    pub fn redact(&mut self, fields: &[Redact]) {
        for field in fields {
            match field {
                Redact::Subject => self.subject = None,
                Redact::Sender => self.sender = None,
                Redact::Recipient => self.recipient = None,
                Redact::SenderIp => self.sender_ip = None,
                Redact::MessageId => self.message_id_header = None,
                Redact::ResponseBody => {
                    self.response_body = None;
                    for attempt in &mut self.history {
                        attempt.response_excerpt = None;
                    }
                }
            }
        }
    }
}

/// `received_at` plus the retention, in Unix seconds, for DynamoDB's TTL.
pub fn expires_at(received_at: DateTime<Utc>, retention_days: u32) -> i64 {
    (received_at + Duration::days(i64::from(retention_days))).timestamp()
}

/// An address as logs may show it: the first character of the local part and the domain.
pub fn masked_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// A route pattern as logs may show it: wildcard patterns whole, an exact address masked.
pub fn masked_pattern(pattern: &str) -> String {
    match pattern.rsplit_once('@') {
        Some((local, _)) if local != "*" => masked_address(pattern),
        _ => pattern.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns_in_logs_hold_no_address() {
        assert_eq!(masked_pattern("support@example.com"), "s***@example.com");
        assert_eq!(masked_pattern("*@example.com"), "*@example.com");
        assert_eq!(masked_pattern("*@*.example.com"), "*@*.example.com");
        assert_eq!(masked_pattern("*"), "*");
    }

    #[test]
    fn keys_hold_no_address_and_are_stable() {
        let a = DeliveryKey::new("m1", "Support@Example.com", "webhook https://x");
        let b = DeliveryKey::new("m1", "support@example.com", "webhook https://x");
        assert_eq!(a, b);
        assert!(!a.delivery_id.contains('@'));
        assert_ne!(
            a,
            DeliveryKey::new("m1", "support@example.com", "webhook https://y")
        );
    }

    #[test]
    fn retention_and_redaction() {
        let received: DateTime<Utc> = "2024-11-05T09:14:07Z".parse().unwrap();
        let key = DeliveryKey::new("m1", "a@b.example", "t");
        let mut record = Delivery::new(&key, "inbound/m1", received, 60);
        assert_eq!(record.expires_at, received.timestamp() + 60 * 86_400);
        assert!(!record.is_expired(received));
        assert!(record.is_expired(received + Duration::days(61)));
        record.subject = Some("s".into());
        record.sender = Some("x@y.example".into());
        record.response_body = Some("ok".into());
        record.push_attempt(Attempt {
            at: received,
            status_code: Some(200),
            outcome: Status::Delivered,
            error: None,
            response_excerpt: Some("ok".into()),
            ms: 3,
        });
        record.redact(&[Redact::Subject, Redact::Sender, Redact::ResponseBody]);
        assert_eq!(record.subject, None);
        assert_eq!(record.sender, None);
        assert_eq!(record.response_body, None);
        assert_eq!(record.history[0].response_excerpt, None);
    }

    #[test]
    fn history_is_bounded_and_addresses_masked() {
        let received = Utc::now();
        let mut record = Delivery::new(&DeliveryKey::new("m", "r", "t"), "k", received, 60);
        for _ in 0..(MAX_HISTORY + 5) {
            record.push_attempt(Attempt {
                at: received,
                status_code: None,
                outcome: Status::Retrying,
                error: None,
                response_excerpt: None,
                ms: 0,
            });
        }
        assert_eq!(record.history.len(), MAX_HISTORY);
        assert_eq!(masked_address("support@example.com"), "s***@example.com");
        assert_eq!("no_route".parse::<Status>().unwrap(), Status::NoRoute);
    }
}
