//! The send API's use case: `POST /api/v0.1/{account}/messages` in, an HTTP answer out, in CloudMailin's
//! shapes. In order: the key (401), the body (413, 422), the From domain (403); then the message is built,
//! stored under `outbound/`, checked against the suppression list per recipient, handed to SES (or, in
//! `test_mode`, not) and recorded for the retention period.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::budget::Deadline;
use crate::feedback::{Origin, Outbound, OutboundStatus, RecipientState, UNSENT_PREFIX};
use crate::mail::envelope::normalise_address;
use crate::ports::{
    Clock, KeyStore, MailLocation, MailSender, ObjectStore, OutboundStore, SendMailError,
    SendOptions, Sent, StoreError, SuppressionList,
};
use crate::record::{expires_at, masked_address};
use crate::send::ErrorBody;
use crate::send::build::build;
use crate::send::key::ApiKey;
use crate::send::request::{Body, Outgoing, check, parse};

/// Largest request body a Lambda Function URL passes on (6 MB); `mailroom dev` holds to it too.
pub const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// Largest message SES v2 sends (40 MB, headers and encoding included).
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024 * 1024;

/// The tag that ties SES's events of a message to its record before the record exists.
pub const ID_TAG: &str = "mailroom-id";

/// The longest SES is given to take a message (less when the invocation's deadline comes first).
pub const SEND_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// How the id of a `test_mode` record begins.
pub const TEST_PREFIX: &str = "test-";

/// Settings of the send API.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// The bucket stored copies go to.
    pub bucket: String,
    /// The domains the stack receives and sends for; empty: any (`mailroom dev`).
    pub domains: Vec<String>,
    /// How long records are kept.
    pub retention_days: u32,
}

/// One HTTP request to the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// `POST`, …
    pub method: &'a str,
    /// The path, `/api/v0.1/{account}/messages`.
    pub path: &'a str,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
    /// When the invocation must be done (Lambda's deadline; none in `mailroom dev`).
    pub deadline: Deadline,
}

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiAnswer {
    /// Its status.
    pub status: u16,
    /// Its JSON body.
    pub body: Value,
}

impl ApiAnswer {
    fn error(status: u16, error: impl Into<String>) -> ApiAnswer {
        let body = ErrorBody {
            status,
            error: error.into(),
        };
        ApiAnswer {
            status,
            body: serde_json::to_value(body).unwrap_or(Value::Null),
        }
    }
}

/// The 202 answer: CloudMailin's message fields, and what happened to each recipient.
#[derive(Debug, Clone, Serialize)]
struct Accepted<'a> {
    id: &'a str,
    from: &'a str,
    to: &'a [String],
    cc: &'a [String],
    subject: Option<&'a str>,
    tags: &'a [String],
    test_mode: bool,
    status: OutboundStatus,
    suppressed: Vec<String>,
    ses_message_id: Option<&'a str>,
}

/// The path's account and message, when the path is `/api/v0.1/{account}/messages/{id}/events`
/// (`mailroom dev`'s simulated SES events).
pub fn events_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/api/v0.1/")?;
    let mut parts = rest.trim_end_matches('/').split('/');
    let (account, messages, id, events) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none()
        && messages == "messages"
        && events == "events"
        && !account.is_empty()
        && !id.is_empty())
    .then_some((account, id))
}

/// The path's account, when the path is the messages endpoint.
pub fn account_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/v0.1/")?;
    let (account, tail) = rest.split_once('/')?;
    (tail.trim_end_matches('/') == "messages" && !account.is_empty()).then_some(account)
}

/// The use case, over the key store, the bucket, the records, the suppression list and SES.
pub struct SendApi<S, O, M, C> {
    store: S,
    objects: O,
    sender: M,
    clock: C,
    config: SendConfig,
}

impl<S, O, M, C> SendApi<S, O, M, C>
where
    S: KeyStore + OutboundStore + SuppressionList,
    O: ObjectStore,
    M: MailSender,
    C: Clock,
{
    /// Builds it once at init.
    pub fn new(store: S, objects: O, sender: M, clock: C, config: SendConfig) -> Self {
        SendApi {
            store,
            objects,
            sender,
            clock,
            config,
        }
    }

    /// Answers one request. A store that fails is a 503 (try again; nothing was sent), never a panic.
    pub async fn answer(&self, request: ApiRequest<'_>) -> ApiAnswer {
        match self.handle(request).await {
            Ok(answer) => answer,
            Err(error) => {
                warn!(error = %error, "send API: a store failed");
                ApiAnswer::error(503, "temporarily unavailable, try again")
            }
        }
    }

    async fn handle(&self, request: ApiRequest<'_>) -> Result<ApiAnswer, StoreError> {
        let Some(account) = account_of(request.path) else {
            return Ok(ApiAnswer::error(404, "Not Found"));
        };
        if request.method != "POST" {
            return Ok(ApiAnswer::error(405, "only POST is answered here"));
        }
        let Some(key) = self.authenticate(account, request.authorization).await? else {
            return Ok(ApiAnswer::error(
                401,
                "Unauthorized: a valid API key is required",
            ));
        };
        if request.body.len() > MAX_REQUEST_BYTES {
            return Ok(ApiAnswer::error(
                413,
                format!("the request is larger than {MAX_REQUEST_BYTES} bytes"),
            ));
        }
        let outgoing = match parse(request.body).and_then(check) {
            Ok(outgoing) => outgoing,
            Err(invalid) => return Ok(ApiAnswer::error(422, invalid.0)),
        };
        if !key.may_send_from(outgoing.from_domain(), &self.config.domains) {
            return Ok(ApiAnswer::error(
                403,
                format!(
                    "Forbidden: this key may not send from {}",
                    outgoing.from_domain()
                ),
            ));
        }
        self.send(&key, outgoing, request.deadline).await
    }

    /// The key the request names and proves, if it does (for `mailroom dev`'s simulated events, which
    /// take the same key).
    pub async fn authenticate(
        &self,
        account: &str,
        authorization: Option<&str>,
    ) -> Result<Option<ApiKey>, StoreError> {
        let Some(presented) = authorization
            .and_then(|h| h.trim().strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Ok(None);
        };
        // Usernames are `k` and hex: anything else names no key, and never reaches the store.
        if account.is_empty()
            || account.len() > 64
            || !account.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Ok(None);
        }
        let Some(key) = self.store.key(account).await? else {
            return Ok(None);
        };
        Ok(key.accepts(presented).then_some(key))
    }

    /// Builds, stores, checks, sends and records one message.
    pub async fn send(
        &self,
        key: &ApiKey,
        outgoing: Outgoing,
        deadline: Deadline,
    ) -> Result<ApiAnswer, StoreError> {
        let now = self.clock.now();
        let id = new_id(now);
        let raw = build(&outgoing, &id, now);
        if raw.len() > MAX_MESSAGE_BYTES {
            return Ok(ApiAnswer::error(
                413,
                format!(
                    "the message would be {} bytes; SES sends at most {MAX_MESSAGE_BYTES}",
                    raw.len()
                ),
            ));
        }
        let location = MailLocation {
            bucket: self.config.bucket.clone(),
            key: format!("outbound/{id}/message.eml"),
        };
        let raw = Bytes::from(raw);
        self.objects
            .put_object(&location, raw.clone(), "message/rfc822")
            .await?;
        let mut record = self.describe(key, &outgoing, &id, &raw, now);
        record.s3_key = Some(location.key.clone());
        let (deliverable, suppressed) = self.split_suppressed(outgoing.recipients()).await?;
        let tracking = SendOptions {
            track_opens: outgoing.track_opens && key.tracking,
            track_clicks: outgoing.track_clicks && key.tracking,
            tags: vec![(ID_TAG.to_owned(), id.clone())],
        };
        record.tracked = tracking.track_opens || tracking.track_clicks;
        let sending = Sending {
            outgoing: &outgoing,
            deliverable: &deliverable,
            suppressed: &suppressed,
            raw,
            tracking,
            now,
            deadline,
        };
        if let Some(refusal) = self.hand_over(&sending, &mut record).await? {
            return Ok(refusal);
        }
        self.keep(&record).await?;
        info!(
            id = %id,
            key = %key.name,
            recipients = deliverable.len(),
            suppressed = suppressed.len(),
            status = record.status.as_str(),
            tracked = record.tracked,
            "send API: message accepted"
        );
        for address in &suppressed {
            info!(id = %id, address = %masked_address(address), "send API: suppressed recipient skipped");
        }
        Ok(accepted(&outgoing, &record, &id, suppressed))
    }

    /// Hands the message to SES, waiting at most [`SEND_LIMIT`] and never past the invocation's deadline,
    /// so the client hears 503 instead of Lambda ending the invocation with a bare 502.
    async fn send_within(&self, sending: &Sending<'_>) -> Result<Sent, SendMailError> {
        let limit = sending.deadline.bound(SEND_LIMIT);
        let sent = self.sender.send_raw(
            &sending.outgoing.from_address,
            sending.deliverable,
            sending.raw.clone(),
            &sending.tracking,
        );
        tokio::time::timeout(limit, sent).await.unwrap_or_else(|_| {
            Err(SendMailError::Retryable(format!(
                "SES timeout: no answer within {} ms",
                limit.as_millis()
            )))
        })
    }

    /// The recipients to send to, and those on the suppression list.
    async fn split_suppressed(
        &self,
        recipients: Vec<String>,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut deliverable = Vec::new();
        let mut suppressed = Vec::new();
        for address in recipients {
            if self.store.suppression(&address).await?.is_some() {
                suppressed.push(address);
            } else {
                deliverable.push(address);
            }
        }
        Ok((deliverable, suppressed))
    }

    /// Sends the message, unless it is in test mode or has no one to go to, and notes the outcome in
    /// `record`. A refusal to answer instead of 202: SES's (recorded), or a failure to try again.
    async fn hand_over(
        &self,
        sending: &Sending<'_>,
        record: &mut Outbound,
    ) -> Result<Option<ApiAnswer>, StoreError> {
        let id = record.id.clone().unwrap_or_default();
        let (status, sent_state) = if sending.outgoing.test_mode {
            record.ses_message_id = format!("{TEST_PREFIX}{id}");
            (OutboundStatus::Test, OutboundStatus::Test)
        } else if sending.deliverable.is_empty() {
            record.ses_message_id = format!("{UNSENT_PREFIX}{id}");
            record.error = Some("every recipient is suppressed".to_owned());
            (OutboundStatus::Suppressed, OutboundStatus::Sent)
        } else {
            match self.send_within(sending).await {
                Ok(sent) => {
                    record.ses_message_id = sent.message_id;
                    record.configuration_set = sent.configuration_set;
                    (OutboundStatus::Sent, OutboundStatus::Sent)
                }
                Err(SendMailError::Rejected(reason)) => {
                    record.ses_message_id = format!("{UNSENT_PREFIX}{id}");
                    record.error = Some(reason.clone());
                    record.status = OutboundStatus::Rejected;
                    record.recipients = sending.states(OutboundStatus::Rejected);
                    self.keep(record).await?;
                    let refused = format!("SES refused the message: {reason}");
                    return Ok(Some(ApiAnswer::error(422, refused)));
                }
                Err(SendMailError::Retryable(reason)) => {
                    // SES's words may name an address: the log keeps the error's code alone.
                    let code = reason.split(':').next().unwrap_or("");
                    warn!(id = %id, error = %code, "send API: SES did not take the message");
                    return Ok(Some(ApiAnswer::error(
                        503,
                        "the mail service did not confirm the message; try again (with no answer \
                         from SES at all it may have gone out)",
                    )));
                }
            }
        };
        record.status = status;
        record.recipients = sending.states(sent_state);
        Ok(None)
    }

    /// The record of a message about to be sent.
    fn describe(
        &self,
        key: &ApiKey,
        outgoing: &Outgoing,
        id: &str,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Outbound {
        let mut record = Outbound::sent(id, now, self.config.retention_days);
        record.origin = Origin::Api;
        record.id = Some(id.to_owned());
        record.key_id = Some(key.id.clone());
        record.key_name = Some(key.name.clone());
        record.from = Some(outgoing.from_address.clone());
        record.to = outgoing
            .to
            .iter()
            .filter_map(|a| crate::send::request::address_of(a))
            .collect();
        record.cc = outgoing
            .cc
            .iter()
            .filter_map(|a| crate::send::request::address_of(a))
            .collect();
        record.subject = match (&outgoing.subject, &outgoing.body) {
            _ if key.redact.contains(&crate::route::Redact::Subject) => None,
            (Some(subject), _) => Some(subject.clone()),
            (None, Body::Raw(_)) => raw_subject(raw),
            (None, Body::Parts { .. }) => None,
        };
        record.tags = outgoing.tags.clone();
        record.expires_at = expires_at(now, self.config.retention_days);
        record
    }

    /// Writes a new record; when SES's `send` event got there first (it made a record from the event),
    /// what the API knows is laid over it, keeping what SES said.
    async fn keep(&self, record: &Outbound) -> Result<(), StoreError> {
        for _ in 0..8 {
            if self.store.put_outbound(record, None).await? {
                return Ok(());
            }
            let Some(stored) = self.store.outbound(&record.ses_message_id).await? else {
                continue;
            };
            let mut merged = record.clone();
            merged.history = stored.history.clone();
            merged.events_posted = stored.events_posted.clone();
            merged.events_pending = stored.events_pending.clone();
            merged.opens = stored.opens.clone();
            merged.clicks = stored.clicks.clone();
            for state in &stored.recipients {
                if let Some(mine) = merged
                    .recipients
                    .iter_mut()
                    .find(|r| r.address == state.address)
                {
                    *mine = state.clone();
                }
            }
            merged.status = stored.status;
            merged.version = stored.version + 1;
            if self
                .store
                .put_outbound(&merged, Some(stored.version))
                .await?
            {
                return Ok(());
            }
        }
        Err(StoreError::retryable(
            "the outbound record kept changing under us",
            std::io::Error::other("conflict"),
        ))
    }
}

/// One message on its way to SES.
struct Sending<'a> {
    outgoing: &'a Outgoing,
    deliverable: &'a [String],
    suppressed: &'a [String],
    raw: Bytes,
    tracking: SendOptions,
    now: DateTime<Utc>,
    deadline: Deadline,
}

impl Sending<'_> {
    /// Each recipient's state: `sent` (the deliverable ones) and `suppressed`.
    fn states(&self, sent: OutboundStatus) -> Vec<RecipientState> {
        states(self.deliverable, sent, self.now)
            .into_iter()
            .chain(states(
                self.suppressed,
                OutboundStatus::Suppressed,
                self.now,
            ))
            .collect()
    }
}

/// The 202 answer.
fn accepted(
    outgoing: &Outgoing,
    record: &Outbound,
    id: &str,
    suppressed: Vec<String>,
) -> ApiAnswer {
    let status = record.status;
    let accepted = Accepted {
        id,
        from: &outgoing.from,
        to: &outgoing.to,
        cc: &outgoing.cc,
        subject: outgoing.subject.as_deref(),
        tags: &outgoing.tags,
        test_mode: outgoing.test_mode,
        status,
        suppressed,
        ses_message_id: (status == OutboundStatus::Sent).then_some(record.ses_message_id.as_str()),
    };
    ApiAnswer {
        status: 202,
        body: serde_json::to_value(accepted).unwrap_or_else(|_| json!({ "id": id })),
    }
}

fn states(addresses: &[String], status: OutboundStatus, at: DateTime<Utc>) -> Vec<RecipientState> {
    addresses
        .iter()
        .map(|address| RecipientState {
            address: normalise_address(address),
            status,
            at,
            detail: (status == OutboundStatus::Suppressed).then(|| "suppressed".to_owned()),
        })
        .collect()
}

/// The Subject of a raw message, decoded.
fn raw_subject(raw: &[u8]) -> Option<String> {
    mail_parser::MessageParser::new()
        .parse_headers(raw)
        .and_then(|m| m.subject().map(str::to_owned))
}

/// A new message id: the time (so ids sort as sent) and 48 random bits.
pub fn new_id(now: DateTime<Utc>) -> String {
    let mut random = [0u8; 6];
    let _ = getrandom::fill(&mut random);
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{suffix}", now.format("%Y%m%dT%H%M%S%3fZ"))
}
