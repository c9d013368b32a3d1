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
    /// Sent with `test_mode`: checked, stored and recorded, never handed to SES.
    Test,
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
            OutboundStatus::Test => "test",
        }
    }

    // Later news does not undo worse news about another recipient: a delivery to one does not hide a
    // bounce from another, a delay after a delivery changes nothing.
    fn rank(self) -> u8 {
        match self {
            OutboundStatus::Sent | OutboundStatus::NoticeSent | OutboundStatus::Test => 0,
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
            OutboundStatus::Test,
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

/// How a message came to be sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A route forwarded received mail (or sent a notice for it).
    #[default]
    Forward,
    /// An application called the send API.
    Api,
    /// Sent straight through SES with the stack's configuration set; known from SES's `send` event.
    Ses,
}

/// Where one recipient of a sent message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientState {
    /// The address, lowercased.
    pub address: String,
    /// Its status.
    pub status: OutboundStatus,
    /// When it last changed.
    pub at: DateTime<Utc>,
    /// The DSN status or the reason, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How often a tracked message was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opens {
    /// Opens counted (each load of the tracking image).
    pub count: u32,
    /// The first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<DateTime<Utc>>,
    /// The latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<DateTime<Utc>>,
}

/// Clicks on one link of a tracked message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClicks {
    /// The link's target.
    pub url: String,
    /// Clicks on it.
    pub count: u32,
}

/// How often the links of a tracked message were clicked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clicks {
    /// Clicks counted, all links together.
    pub count: u32,
    /// Per link, in the order first clicked (at most [`MAX_TRACKED_LINKS`]).
    #[serde(default)]
    pub links: Vec<LinkClicks>,
}

/// Most links whose clicks a record counts one by one.
pub const MAX_TRACKED_LINKS: usize = 50;

/// The tag every forward is sent with: its record is the inbound function's to write, so SES's `send` event
/// of one makes none (it may arrive before the function has written it).
pub const FORWARD_TAG: &str = "mailroom-forward";

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
    /// How it came to be sent.
    #[serde(default)]
    pub origin: Origin,
    /// The send API's id of it, returned to the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The id of the API key that sent it (its events go to the key's events URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The name of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// The copied recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// The application's labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The configuration set it went through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_set: Option<String>,
    /// Whether opens and clicks are tracked.
    #[serde(default)]
    pub tracked: bool,
    /// Each recipient's own status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientState>,
    /// Opens, when tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens: Option<Opens>,
    /// Clicks, when tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicks: Option<Clicks>,
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
            origin: Origin::Forward,
            id: None,
            key_id: None,
            key_name: None,
            cc: Vec::new(),
            tags: Vec::new(),
            configuration_set: None,
            tracked: false,
            recipients: Vec::new(),
            opens: None,
            clicks: None,
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
        if let Some(next) = OutboundStatus::after(feedback.kind) {
            if next.rank() >= self.status.rank() {
                self.status = next;
            }
            self.move_recipients(feedback, next);
        }
        self.count_engagement(feedback);
        true
    }

    /// Each recipient the event names moves to `next`, unless it already stands somewhere worse.
    fn move_recipients(&mut self, feedback: &Feedback, next: OutboundStatus) {
        for affected in &feedback.recipients {
            let detail = affected
                .smtp_status
                .clone()
                .or_else(|| affected.diagnostic.clone())
                .or_else(|| feedback.detail.clone());
            let listing = !self.recipients.is_empty() || self.origin != Origin::Forward;
            match self
                .recipients
                .iter_mut()
                .find(|r| r.address.eq_ignore_ascii_case(&affected.address))
            {
                Some(state) if next.rank() >= state.status.rank() => {
                    state.status = next;
                    state.at = feedback.timestamp;
                    state.detail = detail;
                }
                Some(_) => {}
                None if listing => {
                    self.recipients.push(RecipientState {
                        address: affected.address.clone(),
                        status: next,
                        at: feedback.timestamp,
                        detail,
                    });
                }
                None => {}
            }
        }
    }

    /// Opens and clicks counted (once per event: [`Outbound::apply`] skips one it has seen).
    fn count_engagement(&mut self, feedback: &Feedback) {
        match feedback.kind {
            EventKind::Open => {
                let opens = self.opens.get_or_insert_with(Opens::default);
                opens.count = opens.count.saturating_add(1);
                opens.first = Some(
                    opens
                        .first
                        .map_or(feedback.timestamp, |f| f.min(feedback.timestamp)),
                );
                opens.last = Some(
                    opens
                        .last
                        .map_or(feedback.timestamp, |l| l.max(feedback.timestamp)),
                );
            }
            EventKind::Click => {
                let clicks = self.clicks.get_or_insert_with(Clicks::default);
                clicks.count = clicks.count.saturating_add(1);
                let url = feedback.link.clone().unwrap_or_default();
                let room = clicks.links.len() < MAX_TRACKED_LINKS;
                match clicks.links.iter_mut().find(|l| l.url == url) {
                    Some(link) => link.count = link.count.saturating_add(1),
                    None if room => clicks.links.push(LinkClicks { url, count: 1 }),
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// Every address it names: sender, recipients, copies.
    pub fn addresses(&self) -> Vec<String> {
        let mut all: Vec<String> = self.from.iter().cloned().collect();
        all.extend(self.to.iter().cloned());
        all.extend(self.cc.iter().cloned());
        all.extend(self.recipients.iter().map(|r| r.address.clone()));
        all
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
        EventKind::Open => Some("message.opened"),
        EventKind::Click => Some("message.clicked"),
        _ => None,
    }
}

/// The body POSTed to a route's `events` URL: `{type, timestamp, data}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookEvent {
    /// `message.delivered`, `message.bounced`, `message.complained`, `message.delayed`, `message.opened`
    /// or `message.clicked`.
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
    /// Our id of the received message that was forwarded; for a message of the send API, its `id`.
    pub message_id: Option<String>,
    /// SES's id of the sent copy.
    pub ses_message_id: String,
    /// The recipient it is about; absent for an open or click of a message to several recipients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The application's tags of the message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Clicks: the link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
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
    let engagement = matches!(feedback.kind, EventKind::Open | EventKind::Click);
    let about: Vec<Option<&notification::Affected>> =
        if feedback.recipients.is_empty() && engagement {
            vec![None]
        } else {
            feedback.recipients.iter().map(Some).collect()
        };
    about
        .into_iter()
        .map(|recipient| {
            let address = recipient.map(|r| r.address.clone());
            (
                event_key(feedback, sns_message_id, address.as_deref()),
                HookEvent {
                    kind,
                    timestamp: feedback.timestamp,
                    data: HookData {
                        message_id: outbound.id.clone().or_else(|| outbound.message_id.clone()),
                        ses_message_id: feedback.ses_message_id.clone(),
                        recipient: address,
                        tags: outbound.tags.clone(),
                        link: feedback.link.clone(),
                        timestamp: feedback.timestamp,
                        bounce_type: bounce.map(|b| b.bounce_type.clone()),
                        bounce_subtype: bounce.and_then(|b| b.bounce_subtype.clone()),
                        smtp_status: recipient.and_then(|r| r.smtp_status.clone()),
                        diagnostic: recipient.and_then(|r| r.diagnostic.clone()),
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
            link: None,
            mail: Default::default(),
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
        open.kind = EventKind::Subscription;
        assert!(hook_events(&open, &record, None).is_empty());
    }
}
