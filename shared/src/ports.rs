//! One small trait per capability the use cases need. The adapter crates (`mailroom-aws`, `mailroom-local`,
//! `mailroom-http`) implement them; tests may fake them.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use url::Url;

use crate::deliver::WebhookRequest;
use crate::deliver::answer::{Answer, SendError};
use crate::feedback::{Outbound, SoftBounces, Suppression};
use crate::record::{Delivery, DeliveryKey};
use crate::route::{Disabled, Pattern, Route};
use crate::send::key::ApiKey;

/// A failure of a store, said with whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct StoreError {
    /// What failed, for people.
    pub what: String,
    /// Whether a later attempt may succeed (throttling, timeouts, 5xx).
    pub retryable: bool,
    /// The underlying error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A failure that a later attempt may not see.
    pub fn retryable(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            what: what.into(),
            retryable: true,
            source: Some(Box::new(source)),
        }
    }

    /// A failure that will happen again.
    pub fn permanent(what: impl Into<String>) -> Self {
        StoreError {
            what: what.into(),
            retryable: false,
            source: None,
        }
    }
}

/// Where a raw message is stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailLocation {
    /// The bucket (or the local store's folder).
    pub bucket: String,
    /// The object key, already URL-decoded.
    pub key: String,
}

impl MailLocation {
    /// SES's message id: the last segment of the key.
    pub fn message_id(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// Why a raw message could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// There is no such object.
    #[error("no stored message at {0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The raw messages SES stored (S3, or a folder).
pub trait MailStore: Send + Sync {
    /// The bytes of one stored message.
    fn fetch(
        &self,
        location: &MailLocation,
    ) -> impl Future<Output = Result<Bytes, FetchError>> + Send;
}

/// How a claim on a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This worker may attempt the delivery; the record as it was before (if any).
    Granted(Option<Box<Delivery>>),
    /// Another worker holds it until the given time.
    Busy(DateTime<Utc>),
    /// Nothing more is to be done: the record is final.
    Final(Box<Delivery>),
}

/// The delivery records (DynamoDB, or SQLite in `mailroom dev`).
pub trait RecordStore: Send + Sync {
    /// A record, unless it is missing or expired.
    fn get(
        &self,
        key: &DeliveryKey,
    ) -> impl Future<Output = Result<Option<Delivery>, StoreError>> + Send;

    /// Takes the right to attempt a delivery until `until`, with a conditional write: granted when there is
    /// no record, or the record is not final and nobody else's claim is still running.
    fn claim(
        &self,
        key: &DeliveryKey,
        token: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Writes a record. With `token`, only while this worker's claim holds (and releases it); without, only
    /// when no final record is there already. Returns whether it was written.
    fn save(
        &self,
        record: &Delivery,
        token: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The routes (DynamoDB, or SQLite seeded from `mailroom.toml`).
pub trait RouteStore: Send + Sync {
    /// Every route.
    fn routes(&self) -> impl Future<Output = Result<Vec<Route>, StoreError>> + Send;

    /// Adds or replaces the route of `route.pattern`.
    fn put_route(&self, route: &Route) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes a route; false when there was none.
    fn remove_route(
        &self,
        pattern: &Pattern,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks a route's webhook disabled (after a 410), or clears the mark.
    fn set_webhook_disabled(
        &self,
        pattern: &Pattern,
        disabled: Option<Disabled>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Turns a whole route on or off; false when there is no such route.
    fn set_enabled(
        &self,
        pattern: &Pattern,
        enabled: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Sends webhook requests.
pub trait Webhooks: Send + Sync {
    /// POSTs one signed request, following redirects as the policy allows.
    fn post(
        &self,
        url: &Url,
        request: &WebhookRequest,
    ) -> impl Future<Output = Result<Answer, SendError>> + Send;
}

/// The time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// Which records a listing wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Only records of this recipient (case-insensitive).
    pub recipient: Option<String>,
    /// Only records of this envelope sender (case-insensitive).
    pub sender: Option<String>,
    /// Only records in this status.
    pub status: Option<crate::record::Status>,
    /// Only messages received at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only messages received at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// At most this many records.
    pub limit: usize,
}

/// One page of a listing: records newest first, and where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordPage {
    /// The records, newest first.
    pub records: Vec<Delivery>,
    /// The token of the next page ([`ListCursor::token`]) when the page is full and the listing may go
    /// on (the next page can still turn out empty); `None` when nothing is left.
    pub next: Option<String>,
}

/// Where a listing stopped: the last record of a page, in the order the store lists (time of receipt,
/// newest first, then two keys of the store's own that make the order total: the next page resumes after
/// it even when many records share a time). It travels as text, [`token`](Self::token), which callers
/// hand back unread.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListCursor {
    /// The last record's time of receipt, as the store sorts it (fixed-width text).
    pub at: String,
    /// The store's first tie-breaker (DynamoDB: the table's partition key; the dev store: the message id).
    pub first: String,
    /// Its second (DynamoDB: the sort key; the dev store: the delivery id).
    pub second: String,
}

/// What every listing token starts with: the token's version.
const CURSOR_PREFIX: &str = "r1.";

impl ListCursor {
    /// The cursor as a page token: `r1.` and URL-safe base64 of its JSON.
    pub fn token(&self) -> String {
        use base64::Engine;
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!(
            "{CURSOR_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Reads a token made by [`token`](Self::token).
    pub fn parse(token: &str) -> Result<ListCursor, StoreError> {
        use base64::Engine;
        let bad = || {
            StoreError::permanent(format!(
                "`{token}` is not a page token of a listing (it is printed after a full page)"
            ))
        };
        let body = token.trim().strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad())?;
        serde_json::from_slice(&json).map_err(|_| bad())
    }
}

/// Reading records back, for people: the inspector, `mailroom messages`, and the console's pages.
pub trait RecordQuery: Send + Sync {
    /// One page of the records that match, newest first, expired ones left out: at most `filter.limit`
    /// (0: all of them, in one page), starting after `after` (a token of an earlier page's
    /// [`RecordPage::next`], for the same filter).
    fn page(
        &self,
        filter: &RecordFilter,
        after: Option<&str>,
    ) -> impl Future<Output = Result<RecordPage, StoreError>> + Send;

    /// Records that match, newest first; expired ones are left out: the first page.
    fn list(
        &self,
        filter: &RecordFilter,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send {
        async move { Ok(self.page(filter, None).await?.records) }
    }

    /// Every record of one message (one per recipient and target); expired ones are left out.
    fn message(
        &self,
        message_id: &str,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;
}

/// The records of messages Mailroom sent through SES, found by SES's message id.
pub trait OutboundStore: Send + Sync {
    /// A record, unless it is missing or expired.
    fn outbound(
        &self,
        ses_message_id: &str,
    ) -> impl Future<Output = Result<Option<Outbound>, StoreError>> + Send;

    /// Writes a record whose `version` is one more than `expected` (`None`: only if there is none yet).
    /// False when someone else wrote in between: read again and redo the change.
    fn put_outbound(
        &self,
        record: &Outbound,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The addresses nothing is sent to; everything that sends mail asks it first.
pub trait SuppressionList: Send + Sync {
    /// The suppression of an address, if any.
    fn suppression(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Option<Suppression>, StoreError>> + Send;

    /// Adds an address; false when it was there already (the first reason is kept).
    fn suppress(
        &self,
        suppression: &Suppression,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes an address; false when it was not there.
    fn unsuppress(&self, address: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every suppressed address, in address order.
    fn suppressions(&self) -> impl Future<Output = Result<Vec<Suppression>, StoreError>> + Send;
}

/// The recent transient bounces of each address.
pub trait SoftBounceStore: Send + Sync {
    /// The counts of an address, if any.
    fn soft_bounces(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Option<SoftBounces>, StoreError>> + Send;

    /// Writes counts whose `version` is one more than `expected` (`None`: only if there are none yet);
    /// false when someone else wrote in between.
    fn put_soft_bounces(
        &self,
        counts: &SoftBounces,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets the counts of an address (a delivery went through).
    fn clear_soft_bounces(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// SES's own account-level suppression list, kept in step when `MAILROOM_MIRROR_SES_SUPPRESSION` is on.
pub trait SuppressionMirror: Send + Sync {
    /// Adds an address to it.
    fn mirror(
        &self,
        suppression: &Suppression,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Short-lived direct URLs to stored objects, for the link endpoint.
pub trait Presigner: Send + Sync {
    /// A URL that GETs `key` for the next `valid_for`, or `None` when there is no such object.
    fn presign(
        &self,
        key: &str,
        valid_for: std::time::Duration,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Writes objects beside the stored mail: attachments kept for links.
pub trait ObjectStore: Send + Sync {
    /// The size of the object at `location`, or `None` when there is none.
    fn object_size(
        &self,
        location: &MailLocation,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Stores `bytes` at `location` (replacing what is there: a retry writes the same bytes again).
    fn put_object(
        &self,
        location: &MailLocation,
        bytes: Bytes,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Lists and removes stored objects, for erasure on request.
pub trait ObjectEraser: Send + Sync {
    /// The keys under `prefix` in `bucket`.
    fn object_keys(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Removes one object; removing one that is not there is no error.
    fn delete_object(
        &self,
        location: &MailLocation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The records that name an address, found through indexes, and their removal: what `mailroom data`
/// works on.
pub trait AddressRecords: Send + Sync {
    /// Delivery records whose recipient, envelope sender, `From:` or `Reply-To:` address (in the clear,
    /// or as the digest standing in for it where the route redacted it) or forward address is `address`,
    /// expired ones included (they are still stored until the TTL removes them).
    fn deliveries_naming(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Outbound records sent from or to `address`, expired ones included.
    fn outbound_naming(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Vec<Outbound>, StoreError>> + Send;

    /// The digest that stands in for `address` in records whose route redacted it (under the store's
    /// lookup key), or `None` when the store has never redacted an address.
    fn lookup_digest(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Removes a delivery record.
    fn delete_delivery(
        &self,
        key: &DeliveryKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes `record` whatever is stored under its key (a tombstone over a pending delivery).
    fn overwrite_delivery(
        &self,
        record: &Delivery,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes an outbound record.
    fn delete_outbound(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendMailError {
    /// Throttling, a 5xx, no answer: try again on the delivery schedule.
    #[error("{0}")]
    Retryable(String),
    /// Refused for good (content, an unverified identity, the sandbox, a paused account): record it.
    #[error("{0}")]
    Rejected(String),
}

/// How a message is sent: which of SES's events it is tracked with, and the tags its events carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Opens are tracked (SES adds its image).
    pub track_opens: bool,
    /// Clicks are tracked (SES rewrites the links).
    pub track_clicks: bool,
    /// Message tags, name and value (SES's `EmailTags`), repeated in every event of the message.
    pub tags: Vec<(String, String)>,
}

/// A message the sender took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The sender's id of it (SES's message id).
    pub message_id: String,
    /// The configuration set it went through.
    pub configuration_set: Option<String>,
}

/// Sends mail Mailroom wrote (forwards, notices, the send API's): SES v2, or `mailroom dev`'s outbox.
pub trait MailSender: Send + Sync {
    /// Sends `raw` from `from` to `to` through the configuration set `options` chooses.
    fn send_raw(
        &self,
        from: &str,
        to: &[String],
        raw: Bytes,
        options: &SendOptions,
    ) -> impl Future<Output = Result<Sent, SendMailError>> + Send;
}

/// The send API's keys.
pub trait KeyStore: Send + Sync {
    /// A key by its id, revoked ones included (they authenticate nothing).
    fn key(&self, id: &str) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;

    /// Stores a key, or replaces the one with its id.
    fn put_key(&self, key: &ApiKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every key, oldest first.
    fn keys(&self) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;
}

/// Reading outbound records back by time, for `messages list --outbound` and the console.
pub trait OutboundLog: Send + Sync {
    /// The records sent within `since..=until` (either end open), newest first, at most `limit`
    /// (0: all), expired ones left out.
    fn sent_between(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Outbound>, StoreError>> + Send;
}

/// Gives failed deliveries another chance, for `mailroom redrive`: a failed record is final, so the use
/// case would skip it when its message comes back.
pub trait Reopen: Send + Sync {
    /// Turns every record of `message_id` in one of `statuses` (and of `target`, when given) into
    /// `retrying`, due at once, with a conditional write (only while it is still in the status it was read
    /// in); attempts, history and `webhook_id` are kept, so the next attempt carries the same `webhook-id`.
    /// Returns how many were reopened.
    fn reopen(
        &self,
        message_id: &str,
        statuses: &[crate::record::Status],
        target: Option<&str>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_reads_back_and_nothing_else_does() {
        let cursor = ListCursor {
            at: "2026-12-03T09:14:07.123Z".to_owned(),
            first: "MSG#o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g81".to_owned(),
            second: "DLV#0f3a".to_owned(),
        };
        let token = cursor.token();
        assert!(token.starts_with("r1."));
        assert!(
            token[3..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}: safe in a URL and a shell"
        );
        assert_eq!(ListCursor::parse(&token).unwrap(), cursor);
        for bad in ["", "r1.", "r1.!!", "r2.e30", &token[3..]] {
            assert!(ListCursor::parse(bad).is_err(), "{bad}");
        }
    }
}
