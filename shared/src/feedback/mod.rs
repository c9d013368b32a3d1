//! What SES tells us about mail Mailroom sent, and what we keep because of it: the suppression list, the
//! soft-bounce counts, the outbound records and the events POSTed to a route's `events` URL.

pub mod notification;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::mail::envelope::normalise_address;
use crate::record::expires_at;
use notification::{EventKind, Feedback};

/// Transient bounces within [`SOFT_BOUNCE_WINDOW_DAYS`] that suppress an address, unless
/// `MAILROOM_SOFT_BOUNCE_LIMIT` says otherwise.
pub const DEFAULT_SOFT_BOUNCE_LIMIT: u32 = 3;

/// How far back transient bounces count.
pub const SOFT_BOUNCE_WINDOW_DAYS: i64 = 7;

/// Most events kept in an outbound record's history.
pub const MAX_OUTBOUND_HISTORY: usize = 50;

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// A permanent bounce, or too many transient ones.
    Bounce,
    /// A complaint.
    Complaint,
    /// Added by hand.
    Manual,
}

impl SuppressionReason {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Bounce => "bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Manual => "manual",
        }
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An address nothing is sent to any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// The address, lowercased.
    pub address: String,
    /// Why.
    pub reason: SuppressionReason,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// SES's feedback id of the bounce or complaint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_id: Option<String>,
    /// SES's id of the message that bounced or was complained about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_message_id: Option<String>,
    /// In words: the bounce's type and status, the complaint's type, or a note given by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The recent transient bounces of one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftBounces {
    /// The address, lowercased.
    pub address: String,
    /// Each counted bounce: when, and the key that makes counting it twice impossible.
    pub bounces: Vec<CountedBounce>,
    /// Unix seconds after which the count is stale and may be removed (TTL).
    pub expires_at: i64,
    /// Bumped by every write, for optimistic concurrency.
    #[serde(default)]
    pub version: u64,
}

/// One counted transient bounce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountedBounce {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Its idempotency key.
    pub key: String,
}

impl SoftBounces {
    /// No bounces yet.
    pub fn new(address: &str) -> SoftBounces {
        SoftBounces {
            address: normalise_address(address),
            bounces: Vec::new(),
            expires_at: 0,
            version: 0,
        }
    }

    /// Adds a bounce unless its key was counted already, forgets the ones older than the window, and
    /// returns whether anything changed.
    pub fn count(&mut self, at: DateTime<Utc>, key: &str, now: DateTime<Utc>) -> bool {
        let window_start = now - Duration::days(SOFT_BOUNCE_WINDOW_DAYS);
        let before = self.bounces.len();
        self.bounces.retain(|b| b.at >= window_start);
        let forgot = self.bounces.len() != before;
        if self.bounces.iter().any(|b| b.key == key) || at < window_start {
            return forgot;
        }
        self.bounces.push(CountedBounce {
            at,
            key: key.to_owned(),
        });
        let last = self.bounces.iter().map(|b| b.at).max().unwrap_or(at);
        self.expires_at = (last + Duration::days(SOFT_BOUNCE_WINDOW_DAYS)).timestamp();
        true
    }
}

/// Where a sent message stands, after what SES told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundStatus {
    /// Handed to SES.
    Sent,
    /// Delivery is delayed.
    Delayed,
    /// A recipient's server accepted it.
    Delivered,
    /// A recipient's server refused it.
    Bounced,
    /// A recipient complained.
    Complained,
    /// Not sent: the recipient is suppressed.
    Suppressed,
    /// SES refused to send it.
    Rejected,
    /// Too large to forward; a notice with a link was sent instead.
    NoticeSent,
}

impl OutboundStatus {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundStatus::Sent => "sent",
            OutboundStatus::Delayed => "delayed",
            OutboundStatus::Delivered => "delivered",
            OutboundStatus::Bounced => "bounced",
            OutboundStatus::Complained => "complained",
            OutboundStatus::Suppressed => "suppressed",
            OutboundStatus::Rejected => "rejected",
            OutboundStatus::NoticeSent => "notice_sent",
        }
    }

    // Later news does not undo worse news about another recipient: a delivery to one does not hide a
    // bounce from another, a delay after a delivery changes nothing.
    fn rank(self) -> u8 {
        match self {
            OutboundStatus::Sent | OutboundStatus::NoticeSent => 0,
            OutboundStatus::Delayed => 1,
            OutboundStatus::Delivered => 2,
            OutboundStatus::Suppressed | OutboundStatus::Rejected | OutboundStatus::Bounced => 3,
            OutboundStatus::Complained => 4,
        }
    }

    /// The status an event leads to, if it changes the status at all.
    pub fn after(kind: EventKind) -> Option<OutboundStatus> {
        match kind {
            EventKind::Send => Some(OutboundStatus::Sent),
            EventKind::Delivery => Some(OutboundStatus::Delivered),
            EventKind::DeliveryDelay => Some(OutboundStatus::Delayed),
            EventKind::Bounce => Some(OutboundStatus::Bounced),
            EventKind::Complaint => Some(OutboundStatus::Complained),
            EventKind::Reject | EventKind::RenderingFailure => Some(OutboundStatus::Rejected),
            EventKind::Open | EventKind::Click | EventKind::Subscription => None,
        }
    }
}

impl fmt::Display for OutboundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboundStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            OutboundStatus::Sent,
            OutboundStatus::Delayed,
            OutboundStatus::Delivered,
            OutboundStatus::Bounced,
            OutboundStatus::Complained,
            OutboundStatus::Suppressed,
            OutboundStatus::Rejected,
            OutboundStatus::NoticeSent,
        ]
        .into_iter()
        .find(|s| s.as_str() == text.trim())
        .ok_or_else(|| format!("unknown outbound status `{text}`"))
    }
}

/// One thing SES told us about a sent message, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// `delivery`, `bounce`, `complaint`, … ([`EventKind::as_str`]).
    pub event: String,
    /// The recipient it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The DSN status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_status: Option<String>,
    /// The remote server's words, or SES's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
    /// The idempotency key: the same notification delivered twice adds one entry.
    pub key: String,
}

/// An event POST that failed, and when it is due again: the schedule is kept here, not in how often the
/// queue handed the notification out, so a notification that comes back early posts nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPost {
    /// The event's idempotency key.
    pub key: String,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_at: DateTime<Utc>,
}

/// How the id of an outbound record SES never took begins.
pub const UNSENT_PREFIX: &str = "unsent-";

/// The record of one message Mailroom sent through SES (a forward, a notice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    /// SES's message id of the sent copy; for a forward SES never took (suppressed, rejected),
    /// [`UNSENT_PREFIX`] and the delivery it belongs to.
    pub ses_message_id: String,
    /// Our id of the received message it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The route that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The sending address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// Where it stands.
    pub status: OutboundStatus,
    /// Why it was not sent (suppressed, rejected), or what was sent instead (a notice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The stored copy of what was sent (`outbound/…`), kept as long as the raw mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key: Option<String>,
    /// What SES told us, oldest first (at most [`MAX_OUTBOUND_HISTORY`]).
    #[serde(default)]
    pub history: Vec<OutboundEvent>,
    /// Keys of the events already POSTed to the route's `events` URL (or given up on).
    #[serde(default)]
    pub events_posted: Vec<String>,
    /// Event POSTs that failed and wait for their next attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events_pending: Vec<PendingPost>,
    /// Unix seconds: `sent_at` plus the retention, for the TTL.
    pub expires_at: i64,
    /// Bumped by every write, for optimistic concurrency.
    #[serde(default)]
    pub version: u64,
}

impl Outbound {
    /// A record of a message just handed to SES.
    pub fn sent(ses_message_id: &str, sent_at: DateTime<Utc>, retention_days: u32) -> Outbound {
        Outbound {
            ses_message_id: ses_message_id.to_owned(),
            message_id: None,
            route: None,
            from: None,
            to: Vec::new(),
            subject: None,
            sent_at,
            status: OutboundStatus::Sent,
            error: None,
            s3_key: None,
            history: Vec::new(),
            events_posted: Vec::new(),
            events_pending: Vec::new(),
            expires_at: expires_at(sent_at, retention_days),
            version: 0,
        }
    }

    /// The record of a forward SES never took, named after its delivery: one per delivery, however often
    /// it is attempted.
    pub fn unsent(
        delivery: &crate::record::DeliveryKey,
        status: OutboundStatus,
        at: DateTime<Utc>,
        retention_days: u32,
    ) -> Outbound {
        let id = format!(
            "{UNSENT_PREFIX}{}-{}",
            delivery.message_id, delivery.delivery_id
        );
        Outbound {
            status,
            ..Outbound::sent(&id, at, retention_days)
        }
    }

    /// Whether the TTL may already have removed it.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now.timestamp()
    }

    /// Adds the entries of `feedback` not yet in the history and moves the status on; false when every
    /// entry was there already (a duplicate notification).
    pub fn apply(&mut self, feedback: &Feedback, sns_message_id: Option<&str>) -> bool {
        let mut changed = false;
        for (key, entry) in history_entries(feedback, sns_message_id) {
            if self.history.iter().any(|e| e.key == key) {
                continue;
            }
            self.history.push(entry);
            changed = true;
        }
        if !changed {
            return false;
        }
        if self.history.len() > MAX_OUTBOUND_HISTORY {
            let excess = self.history.len() - MAX_OUTBOUND_HISTORY;
            self.history.drain(..excess);
        }
        if let Some(next) = OutboundStatus::after(feedback.kind)
            && next.rank() >= self.status.rank()
        {
            self.status = next;
        }
        true
    }
}

/// The idempotency key of what `feedback` says about `recipient`: SES's feedback id where there is one,
/// else SNS's message id (the same on every redelivery), else the event and its time.
pub fn event_key(
    feedback: &Feedback,
    sns_message_id: Option<&str>,
    recipient: Option<&str>,
) -> String {
    let base = feedback
        .feedback_id
        .clone()
        .or_else(|| sns_message_id.map(str::to_owned))
        .unwrap_or_else(|| {
            format!(
                "{}@{}",
                feedback.kind.as_str(),
                feedback.timestamp.timestamp_millis()
            )
        });
    match recipient {
        Some(recipient) => format!("{}:{base}:{}", feedback.kind.as_str(), recipient),
        None => format!("{}:{base}", feedback.kind.as_str()),
    }
}

fn history_entries(
    feedback: &Feedback,
    sns_message_id: Option<&str>,
) -> Vec<(String, OutboundEvent)> {
    let entry = |recipient: Option<&notification::Affected>| {
        let key = event_key(
            feedback,
            sns_message_id,
            recipient.map(|r| r.address.as_str()),
        );
        (
            key.clone(),
            OutboundEvent {
                at: feedback.timestamp,
                event: feedback.kind.as_str().to_owned(),
                recipient: recipient.map(|r| r.address.clone()),
                smtp_status: recipient.and_then(|r| r.smtp_status.clone()),
                diagnostic: recipient
                    .and_then(|r| r.diagnostic.clone())
                    .or_else(|| feedback.detail.clone()),
                key,
            },
        )
    };
    if feedback.recipients.is_empty() {
        vec![entry(None)]
    } else {
        feedback.recipients.iter().map(|r| entry(Some(r))).collect()
    }
}

/// The `type` of an event POSTed to a route's `events` URL, for the kinds that have one.
pub fn hook_event_type(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::Delivery => Some("message.delivered"),
        EventKind::Bounce => Some("message.bounced"),
        EventKind::Complaint => Some("message.complained"),
        EventKind::DeliveryDelay => Some("message.delayed"),
        _ => None,
    }
}

/// The body POSTed to a route's `events` URL: `{type, timestamp, data}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookEvent {
    /// `message.delivered`, `message.bounced`, `message.complained` or `message.delayed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    /// What it is about.
    pub data: HookData,
}

/// The `data` of a [`HookEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookData {
    /// Our id of the received message that was forwarded.
    pub message_id: Option<String>,
    /// SES's id of the sent copy.
    pub ses_message_id: String,
    /// The recipient it is about.
    pub recipient: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Bounces: `Permanent`, `Transient` or `Undetermined`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce_type: Option<String>,
    /// Bounces: SES's subtype.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce_subtype: Option<String>,
    /// Bounces and delays: the DSN status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_status: Option<String>,
    /// Bounces and delays: the remote server's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
    /// Complaints: the feedback type (`abuse`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complaint_type: Option<String>,
}

/// The events `feedback` POSTs to a route's `events` URL, each with its idempotency key.
pub fn hook_events(
    feedback: &Feedback,
    outbound: &Outbound,
    sns_message_id: Option<&str>,
) -> Vec<(String, HookEvent)> {
    let Some(kind) = hook_event_type(feedback.kind) else {
        return Vec::new();
    };
    let bounce = feedback.bounce.as_ref();
    feedback
        .recipients
        .iter()
        .map(|recipient| {
            (
                event_key(feedback, sns_message_id, Some(&recipient.address)),
                HookEvent {
                    kind,
                    timestamp: feedback.timestamp,
                    data: HookData {
                        message_id: outbound.message_id.clone(),
                        ses_message_id: feedback.ses_message_id.clone(),
                        recipient: recipient.address.clone(),
                        timestamp: feedback.timestamp,
                        bounce_type: bounce.map(|b| b.bounce_type.clone()),
                        bounce_subtype: bounce.and_then(|b| b.bounce_subtype.clone()),
                        smtp_status: recipient.smtp_status.clone(),
                        diagnostic: recipient.diagnostic.clone(),
                        complaint_type: feedback.complaint_type.clone(),
                    },
                },
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::notification::{Affected, BounceKind};
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn bounce(feedback_id: &str, recipient: &str) -> Feedback {
        Feedback {
            kind: EventKind::Bounce,
            ses_message_id: "ses-1".to_owned(),
            timestamp: at("2026-11-20T10:00:00Z"),
            feedback_id: Some(feedback_id.to_owned()),
            bounce: Some(BounceKind {
                bounce_type: "Transient".to_owned(),
                bounce_subtype: Some("MailboxFull".to_owned()),
            }),
            complaint_type: None,
            detail: None,
            recipients: vec![Affected {
                address: recipient.to_owned(),
                smtp_status: Some("4.2.2".to_owned()),
                diagnostic: Some("smtp; 452 full".to_owned()),
            }],
        }
    }

    #[test]
    fn soft_bounces_count_once_and_only_within_the_window() {
        let now = at("2026-11-20T10:00:00Z");
        let mut counts = SoftBounces::new("Ana@Example.net");
        assert_eq!(counts.address, "ana@example.net");
        assert!(counts.count(now, "a", now));
        assert!(!counts.count(now, "a", now), "the same key counts once");
        assert!(
            !counts.count(now - Duration::days(8), "old", now),
            "too old to count"
        );
        assert!(counts.count(now, "b", now));
        assert_eq!(counts.bounces.len(), 2);
        assert_eq!(counts.expires_at, (now + Duration::days(7)).timestamp());
        // Eight days later both have aged out.
        let later = now + Duration::days(8);
        assert!(counts.count(later, "c", later));
        assert_eq!(counts.bounces.len(), 1);
    }

    #[test]
    fn outbound_history_is_idempotent_and_status_does_not_go_back() {
        let mut record = Outbound::sent("ses-1", at("2026-11-20T09:59:00Z"), 60);
        let mut delivered = bounce("x", "b@example.net");
        delivered.kind = EventKind::Delivery;
        delivered.feedback_id = None;
        assert!(record.apply(&delivered, Some("sns-1")));
        assert_eq!(record.status, OutboundStatus::Delivered);
        assert!(
            !record.apply(&delivered, Some("sns-1")),
            "a duplicate changes nothing"
        );
        assert_eq!(record.history.len(), 1);

        let bounced = bounce("fb-1", "a@example.net");
        assert!(record.apply(&bounced, Some("sns-2")));
        assert_eq!(record.status, OutboundStatus::Bounced);
        let mut delay = bounce("fb-9", "c@example.net");
        delay.kind = EventKind::DeliveryDelay;
        delay.feedback_id = None;
        assert!(record.apply(&delay, Some("sns-3")));
        assert_eq!(
            record.status,
            OutboundStatus::Bounced,
            "a later delay does not hide the bounce"
        );
        assert_eq!(record.history.len(), 3);
        assert_eq!(record.history[1].smtp_status.as_deref(), Some("4.2.2"));
    }

    #[test]
    fn hook_events_carry_the_documented_fields() {
        let mut record = Outbound::sent("ses-1", at("2026-11-20T09:59:00Z"), 60);
        record.message_id = Some("inbound-1".to_owned());
        let events = hook_events(&bounce("fb-1", "a@example.net"), &record, None);
        assert_eq!(events.len(), 1);
        let body = serde_json::to_value(&events[0].1).unwrap();
        assert_eq!(body["type"], "message.bounced");
        assert_eq!(body["data"]["message_id"], "inbound-1");
        assert_eq!(body["data"]["ses_message_id"], "ses-1");
        assert_eq!(body["data"]["recipient"], "a@example.net");
        assert_eq!(body["data"]["bounce_type"], "Transient");
        assert_eq!(body["data"]["bounce_subtype"], "MailboxFull");
        assert_eq!(body["data"]["smtp_status"], "4.2.2");
        assert_eq!(body["data"]["diagnostic"], "smtp; 452 full");
        let mut open = bounce("fb-2", "a@example.net");
        open.kind = EventKind::Open;
        assert!(hook_events(&open, &record, None).is_empty());
    }
}
