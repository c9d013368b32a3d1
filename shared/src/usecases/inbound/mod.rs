//! The inbound use case: a stored message → its recipients → their routes → a delivery per target → a record
//! of each. The same code runs in the Lambda (AWS adapters) and in `mailroom dev` (local adapters).
//!
//! Every step is idempotent, because events arrive at least once: a delivery is claimed with a conditional
//! write before it is attempted, a final record is never attempted again, and every attempt of one delivery
//! carries the same `webhook-id`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use url::Url;

use crate::budget::{Deadline, MemoryBudget};
use crate::deliver::answer::SendError;
use crate::deliver::policy::{self, Judgement};
use crate::deliver::{BodyWriter, WebhookRequest, webhook_id};
use crate::feedback::{Outbound, OutboundStatus};
use crate::format::forward::{
    ForwardHeaders, OversizeNotice, oversize_notice, rewrite_for_forward,
};
use crate::format::{Format, Payload};
use crate::mail::envelope::{Envelope, KnownEnvelope, RecipientSource};
use crate::mail::{self, Email};
use crate::ports::{
    Claim, Clock, FetchError, MailLocation, MailSender, MailStore, ObjectStore, OutboundStore,
    RecordStore, RouteStore, SendMailError, StoreError, SuppressionList, Webhooks,
};
use crate::record::{
    Attempt, Delivery, DeliveryKey, HISTORY_EXCERPT_BYTES, Status, masked_address,
};
use crate::route::{self, AttachmentMode, Disabled, Pattern, Redact, Route, WebhookTarget};

/// How long a warm container trusts its copy of the routes.
pub const ROUTES_TTL: Duration = Duration::from_secs(60);

/// What the use case needs to know beyond its ports.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// Days records are kept (`MAILROOM_RETENTION_DAYS`).
    pub retention_days: u32,
    /// The catch-all webhook used when no route matches (`MAILROOM_DEFAULT_WEBHOOK_URL`).
    pub default_webhook: Option<WebhookTarget>,
    /// The receipt rule requires TLS, so `envelope.tls` is known to be true (`MAILROOM_TLS_REQUIRED`).
    pub tls_required: bool,
    /// The domains mail is received for (`MAILROOM_DOMAINS`); recipients recovered from headers must be in
    /// one of them (or a subdomain).
    pub domains: Vec<String>,
    /// How long a claim on a delivery lasts: longer than one attempt with its redirects can take.
    pub claim_for: Duration,
    /// The longest one attempt may take, every redirect and the sending of the body included
    /// (`MAILROOM_WEBHOOK_TIMEOUT_SECS`); also the time an invocation must have left to start one.
    pub attempt_limit: Duration,
    /// Where links to stored attachments point and how they are signed; without it, `attachments: s3`
    /// and `auto` routes get their attachments inline.
    pub links: Option<LinkSettings>,
    /// `MAILROOM_INLINE_MAX_BYTES`: the largest inline payload an `attachments: auto` route gets.
    pub inline_max_bytes: usize,
    /// How forwards are sent.
    pub forward: ForwardSettings,
}

/// How forwards by email are sent.
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// `MAILROOM_FORWARD_FROM`: the verified address forwards are sent from when the route names none.
    pub from: Option<String>,
    /// `MAILROOM_FORWARD_MAX_BYTES`: the largest forward SES is given; a larger message is announced by a
    /// notice with a link to the original.
    pub max_bytes: usize,
}

/// Default of [`ForwardSettings::max_bytes`]: SES v2's 40 MB.
pub const DEFAULT_FORWARD_MAX_BYTES: usize = 40_000_000;

impl Default for ForwardSettings {
    fn default() -> Self {
        ForwardSettings {
            from: None,
            max_bytes: DEFAULT_FORWARD_MAX_BYTES,
        }
    }
}

/// Default of [`InboundConfig::inline_max_bytes`]: 5 MB.
pub const DEFAULT_INLINE_MAX_BYTES: usize = 5_000_000;

/// How links to stored attachments are made.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// The link endpoint (`MAILROOM_LINK_BASE_URL`).
    pub base_url: String,
    /// The signing key.
    pub key: crate::deliver::links::LinkKey,
    /// How long links live (`MAILROOM_ATTACHMENT_URL_DAYS`); the bucket keeps `attachments/` as long.
    pub days: u32,
}

impl InboundConfig {
    /// Every default: records kept `retention_days`, no catch-all webhook, TLS not known, any domain,
    /// claims long enough for a 30-second attempt, attachments inline, forwards from the route's address
    /// only and up to [`DEFAULT_FORWARD_MAX_BYTES`].
    pub fn with_defaults(retention_days: u32) -> InboundConfig {
        InboundConfig {
            retention_days,
            default_webhook: None,
            tls_required: false,
            domains: Vec::new(),
            claim_for: InboundConfig::claim_for_timeout(Duration::from_secs(30)),
            attempt_limit: Duration::from_secs(30),
            links: None,
            inline_max_bytes: DEFAULT_INLINE_MAX_BYTES,
            forward: ForwardSettings::default(),
        }
    }

    /// A claim long enough for an attempt limited to `attempt_limit` in all, and its record.
    pub fn claim_for_timeout(attempt_limit: Duration) -> Duration {
        attempt_limit + Duration::from_secs(30)
    }
}

/// What an event said about a stored message.
#[derive(Debug, Clone)]
pub struct Received {
    /// Where SES stored it.
    pub location: MailLocation,
    /// When SES received it.
    pub received_at: DateTime<Utc>,
    /// When the event was first seen: the 72-hour give-up is measured from here.
    pub first_seen: DateTime<Utc>,
    /// What SES's notification said about the envelope (exact recipients, Bcc included, and verdicts).
    pub known: KnownEnvelope,
    /// The stored object's size when the event said it (S3 events do); otherwise it is looked up before
    /// the message is read.
    pub size: Option<u64>,
}

/// What should happen to the event that carried the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more to do: acknowledge it.
    Done,
    /// Some delivery is to be attempted again after this wait.
    RetryAfter(Duration),
    /// A delivery ran out of time and was recorded failed: dead-letter the event.
    GaveUp,
    /// Not (wholly) attempted, for want of time in this invocation: give it back to come again shortly.
    /// No attempt was counted.
    HandBack,
}

impl Outcome {
    /// What an event carrying two messages (or two deliveries of one) should do: the sooner return wins.
    pub fn combine(self, other: Outcome) -> Outcome {
        match (self, other) {
            (Outcome::HandBack, _) | (_, Outcome::HandBack) => Outcome::HandBack,
            (Outcome::RetryAfter(a), Outcome::RetryAfter(b)) => Outcome::RetryAfter(a.min(b)),
            (Outcome::RetryAfter(a), _) | (_, Outcome::RetryAfter(a)) => Outcome::RetryAfter(a),
            (Outcome::GaveUp, _) | (_, Outcome::GaveUp) => Outcome::GaveUp,
            _ => Outcome::Done,
        }
    }
}

/// One delivery outcome, told to an observer as it happens (the `mailroom dev` console).
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// When.
    pub at: DateTime<Utc>,
    /// The envelope sender.
    pub sender: &'a str,
    /// The recipient.
    pub recipient: &'a str,
    /// The subject.
    pub subject: &'a str,
    /// `webhook <url>`, `forward <address>`, or empty.
    pub target: &'a str,
    /// What became of it.
    pub status: Status,
    /// The answer's status code, if there was an answer.
    pub http_status: Option<u16>,
    /// How long the attempt took.
    pub ms: u64,
    /// Why it was not delivered.
    pub error: Option<&'a str>,
}

/// Watches deliveries; the Lambda has none, `mailroom dev` prints a console line for each.
pub type Observer = Box<dyn Fn(&Report<'_>) + Send + Sync>;

/// A failure that a later attempt may not see: the event must come back.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Retryable(#[from] pub StoreError);

/// The inbound use case over its ports.
pub struct Inbound<M, S, W, X, C> {
    mail: M,
    store: S,
    webhooks: W,
    sender: X,
    clock: C,
    config: InboundConfig,
    routes: Mutex<Option<(Instant, Vec<Route>)>>,
    observer: Option<Observer>,
}

/// Facts about one message shared by its deliveries.
struct Message<'a> {
    received: &'a Received,
    email: Arc<Email>,
    envelope: &'a Envelope,
    started: Instant,
    deadline: Deadline,
}

/// What became of one attempt, before the record says it.
enum Verdict {
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
    fn done(status: Status, error: impl Into<Option<String>>) -> Verdict {
        Verdict::Final {
            status,
            error: error.into(),
        }
    }
}

/// A delivery this worker holds the claim on, with its record as far as it is known.
struct Claimed {
    key: DeliveryKey,
    token: String,
    record: Delivery,
}

impl<M, S, W, X, C> Inbound<M, S, W, X, C>
where
    M: MailStore + ObjectStore,
    S: RecordStore + RouteStore + SuppressionList + OutboundStore,
    W: Webhooks,
    X: MailSender,
    C: Clock,
{
    /// Builds the use case once, at init.
    pub fn new(mail: M, store: S, webhooks: W, sender: X, clock: C, config: InboundConfig) -> Self {
        Inbound {
            mail,
            store,
            webhooks,
            sender,
            clock,
            config,
            routes: Mutex::new(None),
            observer: None,
        }
    }

    /// Tells `observer` about every delivery outcome.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    fn report(&self, message: Option<&Message<'_>>, recipient: &str, record: &Delivery, ms: u64) {
        if let Some(observer) = &self.observer {
            observer(&Report {
                at: self.clock.now(),
                sender: message.map_or("", |m| m.envelope.from.as_str()),
                recipient,
                subject: message.and_then(|m| m.email.subject()).unwrap_or(""),
                target: &record.target,
                status: record.status,
                http_status: record.response_status,
                ms,
                error: record.error.as_deref(),
            });
        }
    }

    /// The configuration.
    pub fn config(&self) -> &InboundConfig {
        &self.config
    }

    /// The store of records and routes.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Processes one stored message: every recipient, every target, every record; no deadline.
    pub async fn process(&self, received: &Received) -> Result<Outcome, Retryable> {
        self.process_within(received, Deadline::none()).await
    }

    /// Processes the messages of one batch within the invocation's memory and time: messages that fit
    /// the memory budget together run at once, the next wave after them; whatever the deadline leaves no
    /// time for is handed back unattempted. One result per message, in order.
    pub async fn process_batch(
        &self,
        batch: &[Received],
        deadline: Deadline,
        memory: MemoryBudget,
    ) -> Vec<Result<Outcome, Retryable>> {
        let sized: Vec<Received> =
            futures_util::future::join_all(batch.iter().map(|received| async move {
                let mut received = received.clone();
                if received.size.is_none()
                    && let Ok(size) = self.mail.object_size(&received.location).await
                {
                    // A failed look-up leaves the size unknown; reading the message finds out what is wrong.
                    received.size = size;
                }
                received
            }))
            .await;
        let sizes: Vec<Option<u64>> = sized.iter().map(|r| r.size).collect();
        let mut results: Vec<Option<Result<Outcome, Retryable>>> =
            sized.iter().map(|_| None).collect();
        for wave in memory.waves(&sizes) {
            if !deadline.allows(self.config.attempt_limit) {
                break;
            }
            let done = futures_util::future::join_all(
                wave.iter()
                    .filter_map(|&i| sized.get(i).map(|r| (i, r)))
                    .map(|(i, received)| async move {
                        (i, self.process_within(received, deadline).await)
                    }),
            )
            .await;
            for (i, result) in done {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(result);
                }
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Ok(Outcome::HandBack)))
            .collect()
    }

    /// Processes one stored message, attempting deliveries only while `deadline` leaves time for them.
    pub async fn process_within(
        &self,
        received: &Received,
        deadline: Deadline,
    ) -> Result<Outcome, Retryable> {
        let started = Instant::now();
        let message_id = received.location.message_id().to_owned();
        if !deadline.allows(self.config.attempt_limit) {
            return Ok(Outcome::HandBack);
        }
        // The size is known before a byte is read, so an object over the limit is never downloaded.
        let size = match received.size {
            Some(size) => Some(size),
            None => match self.mail.object_size(&received.location).await {
                Ok(size) => size,
                Err(error) if error.retryable => return Err(error.into()),
                // Reading it will say what is wrong.
                Err(_) => Some(0),
            },
        };
        let Some(size) = size else {
            warn!(message_id, "stored message not found");
            self.record_failure(
                received,
                None,
                format!(
                    "no stored message at s3://{}/{}",
                    received.location.bucket, received.location.key
                ),
            )
            .await?;
            return Ok(Outcome::Done);
        };
        if size > mail::MAX_MESSAGE_BYTES as u64 {
            warn!(
                message_id,
                size, "stored message over the size limit; not read"
            );
            self.record_failure(
                received,
                None,
                format!(
                    "the stored message is {size} bytes, over the {}-byte limit (SES accepts 40 MB); \
                     it was not read, and stays stored",
                    mail::MAX_MESSAGE_BYTES
                ),
            )
            .await?;
            return Ok(Outcome::Done);
        }
        let raw = match self.mail.fetch(&received.location).await {
            Ok(raw) => raw,
            Err(FetchError::NotFound(what)) => {
                warn!(message_id, "stored message not found");
                self.record_failure(received, None, format!("no stored message: {what}"))
                    .await?;
                return Ok(Outcome::Done);
            }
            Err(FetchError::Store(error)) if error.retryable => return Err(error.into()),
            Err(FetchError::Store(error)) => {
                warn!(message_id, error = %error, "stored message could not be read");
                self.record_failure(
                    received,
                    None,
                    format!("cannot read the stored message: {error}"),
                )
                .await?;
                return Ok(Outcome::Done);
            }
        };
        let size = raw.len();
        let email = match mail::parse(raw) {
            Ok(email) => Arc::new(email),
            Err(error) => {
                warn!(message_id, size, error = %error, "message could not be parsed; it stays stored");
                self.record_failure(received, None, format!("cannot parse the message: {error}"))
                    .await?;
                return Ok(Outcome::Done);
            }
        };
        let mut envelope = Envelope::recover(&email).with_known(received.known.clone());
        if self.config.tls_required {
            envelope.tls = Some(true);
        }
        let routes = self.routes().await?;
        let recipients = self.recipients(&envelope, &routes);
        info!(
            message_id,
            size,
            recipients = recipients.len(),
            attachments = email.attachments.len(),
            warnings = email.warnings.len(),
            "message parsed"
        );
        let message = Message {
            received,
            email: email.clone(),
            envelope: &envelope,
            started,
            deadline,
        };
        if recipients.is_empty() {
            let mut record = self.base_record(&message, "", "");
            record.status = Status::NoRoute;
            record.error =
                Some("no recipient could be determined from the event or the headers".to_owned());
            self.save_once(&record).await?;
            self.report(Some(&message), "", &record, 0);
            return Ok(Outcome::Done);
        }

        let default_route = self.config.default_webhook.clone().map(|webhook| Route {
            webhook: Some(webhook),
            ..Route::new(Pattern::CatchAll)
        });
        let mut outcome = Outcome::Done;
        for recipient in &recipients {
            let matched = route::resolve(&routes, recipient)
                .map(|m| (m.route, false))
                .or(default_route.as_ref().map(|r| (r, true)));
            let this = match matched {
                None => {
                    let mut record = self.base_record(&message, recipient, "");
                    record.status = Status::NoRoute;
                    self.save_once(&record).await?;
                    self.report(Some(&message), recipient, &record, 0);
                    Outcome::Done
                }
                Some((route, is_default)) => {
                    self.deliver_route(&message, recipient, route, is_default)
                        .await?
                }
            };
            outcome = outcome.combine(this);
        }
        Ok(outcome)
    }

    /// The recipients to deliver for: the SMTP ones when known; otherwise those of To/Cc/Delivered-To that
    /// belong to our domains and match a route.
    fn recipients(&self, envelope: &Envelope, routes: &[Route]) -> Vec<String> {
        match envelope.recipient_source {
            RecipientSource::Smtp => envelope.recipients.clone(),
            RecipientSource::Unknown => Vec::new(),
            RecipientSource::Headers => envelope
                .recipients
                .iter()
                .filter(|r| self.in_our_domains(r))
                .filter(|r| {
                    route::resolve(routes, r).is_some() || self.config.default_webhook.is_some()
                })
                .cloned()
                .collect(),
        }
    }

    fn in_our_domains(&self, address: &str) -> bool {
        if self.config.domains.is_empty() {
            return true;
        }
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        self.config
            .domains
            .iter()
            .any(|ours| domain == *ours || domain.ends_with(&format!(".{ours}")))
    }

    async fn deliver_route(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        is_default: bool,
    ) -> Result<Outcome, Retryable> {
        let pattern = route.pattern.to_string();
        let finish = |mut record: Delivery, status: Status, error: Option<String>| {
            record.route = Some(pattern.clone());
            record.status = status;
            record.error = error;
            record.redact(&route.redact);
            record
        };
        if !route.enabled {
            let record = finish(
                self.base_record(message, recipient, ""),
                Status::Rejected,
                Some("the route is disabled".to_owned()),
            );
            self.save_once(&record).await?;
            self.report(Some(message), recipient, &record, 0);
            return Ok(Outcome::Done);
        }
        if let Some(rule) = route
            .drop_on
            .iter()
            .find(|rule| rule.trips(message.envelope.ses.as_ref()))
        {
            let record = finish(
                self.base_record(message, recipient, ""),
                Status::Dropped,
                Some(format!("dropped: SES {} verdict FAIL", rule.as_str())),
            );
            self.save_once(&record).await?;
            self.report(Some(message), recipient, &record, 0);
            info!(message_id = %record.message_id, route = %crate::record::masked_pattern(&route.pattern.to_string()), "dropped on SES verdict");
            return Ok(Outcome::Done);
        }
        if route.webhook.is_none() && route.forward.is_empty() {
            let record = finish(
                self.base_record(message, recipient, ""),
                Status::Rejected,
                Some("the route has no target".to_owned()),
            );
            self.save_once(&record).await?;
            self.report(Some(message), recipient, &record, 0);
            return Ok(Outcome::Done);
        }

        let mut outcome = Outcome::Done;
        if let Some(webhook) = &route.webhook {
            outcome = outcome.combine(
                self.deliver_webhook(message, recipient, route, webhook, is_default)
                    .await?,
            );
        }
        for address in &route.forward {
            outcome = outcome.combine(
                self.deliver_forward(message, recipient, route, address)
                    .await?,
            );
        }
        Ok(outcome)
    }

    /// Stores the attachments and returns their links, when the route's mode asks for it: always for
    /// `s3`, for `auto` only when the inline payload would be larger than the configured limit. The keys
    /// are the same on every attempt, so a retry finds what an earlier attempt stored and uploads only
    /// what is missing.
    async fn attachment_links(
        &self,
        message: &Message<'_>,
        mode: AttachmentMode,
        inline_size: usize,
    ) -> Result<Option<Vec<String>>, Retryable> {
        let wanted = match mode {
            AttachmentMode::Inline => false,
            AttachmentMode::S3 => true,
            AttachmentMode::Auto => inline_size > self.config.inline_max_bytes,
        };
        if !wanted || message.email.attachments.is_empty() {
            return Ok(None);
        }
        let Some(links) = &self.config.links else {
            warn!(
                "attachments travel inline: no link endpoint is configured (MAILROOM_LINK_BASE_URL)"
            );
            return Ok(None);
        };
        let message_id = message.received.location.message_id();
        let expires = self.clock.now() + chrono::Duration::days(i64::from(links.days));
        let mut urls = Vec::with_capacity(message.email.attachments.len());
        for (n, attachment) in message.email.attachments.iter().enumerate() {
            let location = MailLocation {
                bucket: message.received.location.bucket.clone(),
                key: format!("attachments/{message_id}/{n}"),
            };
            let stored = self.mail.object_size(&location).await?;
            if stored != Some(attachment.content.len() as u64) {
                self.mail
                    .put_object(
                        &location,
                        attachment.content.clone(),
                        &attachment.content_type,
                    )
                    .await?;
            }
            let token = links.key.token(&location.key, expires);
            urls.push(crate::deliver::links::link_url(&links.base_url, &token));
        }
        Ok(Some(urls))
    }

    /// Takes the claim on delivering `message` for `recipient` to `target`, or says why not now: the
    /// record is final, another worker holds it, or a long wait came back early.
    async fn claim(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        target: &str,
    ) -> Result<Result<Claimed, Outcome>, Retryable> {
        let key = DeliveryKey::new(message.received.location.message_id(), recipient, target);
        let now = self.clock.now();

        if let Some(existing) = self.store.get(&key).await?
            && existing.status == Status::Retrying
            && let Some(due) = existing.next_attempt_at
            && due > now
        {
            // A wait longer than one visibility change came back early: wait out the rest.
            return Ok(Err(Outcome::RetryAfter(to_std(due - now))));
        }
        if !message.deadline.allows(self.config.attempt_limit) {
            // Too little of this invocation is left for an attempt: no claim, no attempt counted.
            return Ok(Err(Outcome::HandBack));
        }

        let token = crate::deliver::random_webhook_id();
        let until = now
            + chrono::Duration::from_std(self.config.claim_for)
                .unwrap_or(chrono::Duration::minutes(5));
        let previous = match self.store.claim(&key, &token, now, until).await? {
            Claim::Final(_) => return Ok(Err(Outcome::Done)),
            Claim::Busy(until) => {
                return Ok(Err(Outcome::RetryAfter(
                    to_std(until - now).max(Duration::from_secs(1)),
                )));
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
        Ok(Ok(Claimed { key, token, record }))
    }

    /// Writes what an attempt came to into the record, schedules the next one or gives up, and releases
    /// the claim.
    #[allow(clippy::too_many_arguments)]
    async fn conclude(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        claimed: Claimed,
        attempt_at: DateTime<Utc>,
        ms: u64,
        verdict: Verdict,
    ) -> Result<Outcome, Retryable> {
        let Claimed {
            key,
            token,
            mut record,
        } = claimed;
        record.attempts += 1;
        record.processing_ms = Some(message.started.elapsed().as_millis() as u64);
        let excerpt = record.response_body.as_ref().map(|body| {
            let mut text = body.clone();
            if text.len() > HISTORY_EXCERPT_BYTES {
                let mut cut = HISTORY_EXCERPT_BYTES;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            text
        });

        let (status, error, outcome) = match verdict {
            Verdict::Final { status, error } => (status, error, Outcome::Done),
            Verdict::Retry {
                reason,
                retry_after,
            } => {
                let deadline = message.received.first_seen
                    + chrono::Duration::from_std(policy::GIVE_UP_AFTER).unwrap_or_default();
                let left = to_std(deadline - attempt_at);
                match policy::next_wait(record.attempts, retry_after, left) {
                    Some(wait) => {
                        record.next_attempt_at =
                            Some(attempt_at + chrono::Duration::from_std(wait).unwrap_or_default());
                        (Status::Retrying, Some(reason), Outcome::RetryAfter(wait))
                    }
                    None => (
                        Status::Failed,
                        Some(format!(
                            "gave up after {} attempts over 72 hours; last: {reason}",
                            record.attempts
                        )),
                        Outcome::GaveUp,
                    ),
                }
            }
        };
        if status != Status::Retrying {
            record.next_attempt_at = None;
        }
        record.status = status;
        record.error = error.clone();
        record.push_attempt(Attempt {
            at: attempt_at,
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

    async fn deliver_webhook(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        webhook: &WebhookTarget,
        is_default: bool,
    ) -> Result<Outcome, Retryable> {
        let target = format!("webhook {}", webhook.display_url());
        let mut claimed = match self.claim(message, recipient, route, &target).await? {
            Ok(claimed) => claimed,
            Err(outcome) => return Ok(outcome),
        };
        let id = webhook_id(
            &claimed.key.message_id,
            &format!("{}\n{target}", recipient.to_ascii_lowercase()),
        );
        claimed.record.webhook_id = Some(id.clone());

        let attempt_started = Instant::now();
        let attempt_at = self.clock.now();
        let (result, judgement) = match (&webhook.disabled, Url::parse(&webhook.url)) {
            (Some(disabled), _) => (
                None,
                Judgement::Reject {
                    reason: format!(
                        "the webhook was disabled at {}: {}",
                        disabled.at.to_rfc3339(),
                        disabled.reason
                    ),
                    disable_webhook: false,
                },
            ),
            (None, Err(error)) => (
                None,
                Judgement::Reject {
                    reason: format!("the webhook URL is not valid: {error}"),
                    disable_webhook: false,
                },
            ),
            (None, Ok(url)) => {
                let envelope = message.envelope.for_recipient(recipient);
                let inline_size =
                    Payload::new(webhook.format, &message.email, &envelope).size_hint();
                let urls = self
                    .attachment_links(message, webhook.attachments, inline_size)
                    .await?;
                let body = PayloadBody::new(webhook.format, message.email.clone(), envelope, urls);
                let content_type = body.content_type();
                match WebhookRequest::streamed(
                    id.clone(),
                    attempt_at.timestamp(),
                    content_type,
                    Arc::new(body),
                    &webhook.secrets,
                ) {
                    Ok(request) => {
                        // The whole attempt, redirects and the upload of the body included, is bounded.
                        let limit = message.deadline.bound(self.config.attempt_limit);
                        let result =
                            match tokio::time::timeout(limit, self.webhooks.post(&url, &request))
                                .await
                            {
                                Ok(result) => result,
                                Err(_) => Err(SendError::Timeout(limit)),
                            };
                        let judgement = policy::judge(&result);
                        (Some(result), judgement)
                    }
                    // Writing into a signer cannot fail; should a format ever fail, it fails every time.
                    Err(error) => (
                        None,
                        Judgement::Reject {
                            reason: format!("the payload could not be written: {error}"),
                            disable_webhook: false,
                        },
                    ),
                }
            }
        };
        let ms = attempt_started.elapsed().as_millis() as u64;

        let response = result
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(|a| &a.response);
        claimed.record.response_status = response.map(|r| r.status);
        claimed.record.response_body = response.map(|r| policy::response_excerpt(&r.body));

        let disable_webhook = matches!(
            judgement,
            Judgement::Reject {
                disable_webhook: true,
                ..
            }
        );
        let verdict = match judgement {
            Judgement::Delivered => Verdict::done(Status::Delivered, None),
            Judgement::Reject { reason, .. } => Verdict::done(Status::Rejected, reason),
            Judgement::Retry {
                reason,
                retry_after,
            } => Verdict::Retry {
                reason,
                retry_after,
            },
        };
        let outcome = self
            .conclude(message, recipient, route, claimed, attempt_at, ms, verdict)
            .await?;
        if disable_webhook && !is_default {
            let disabled = Disabled {
                at: attempt_at,
                reason: "the target answered 410 Gone".to_owned(),
            };
            self.store
                .set_webhook_disabled(&route.pattern, Some(disabled))
                .await?;
            self.forget_routes();
        }
        Ok(outcome)
    }

    /// Forwards the message to `address` through SES: the rewrite, or a notice when it is too large;
    /// nothing to a suppressed address. Each forward address is a delivery of its own, claimed and
    /// recorded like a webhook, with an outbound record the feedback function keeps up to date.
    async fn deliver_forward(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        address: &str,
    ) -> Result<Outcome, Retryable> {
        let target = format!("forward {address}");
        let mut claimed = match self.claim(message, recipient, route, &target).await? {
            Ok(claimed) => claimed,
            Err(outcome) => return Ok(outcome),
        };
        let attempt_started = Instant::now();
        let attempt_at = self.clock.now();
        let verdict = self
            .forward_once(message, recipient, route, address, &mut claimed)
            .await?;
        let ms = attempt_started.elapsed().as_millis() as u64;
        self.conclude(message, recipient, route, claimed, attempt_at, ms, verdict)
            .await
    }

    async fn forward_once(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        address: &str,
        claimed: &mut Claimed,
    ) -> Result<Verdict, Retryable> {
        let Some(from) = route
            .forward_from
            .as_deref()
            .or(self.config.forward.from.as_deref())
        else {
            return Ok(Verdict::done(
                Status::Rejected,
                "no address to send forwards from: give the route one (`routes add --forward-from`) \
                 or set MAILROOM_FORWARD_FROM"
                    .to_owned(),
            ));
        };
        // The stack lets the function send only from its `Domains`, compared case-sensitively and written
        // lower-case: `Forward@Example.com` would be refused where `forward@example.com` is allowed.
        let from = from.to_ascii_lowercase();
        let from = from.as_str();
        let now = self.clock.now();
        let outbound_of = |mut outbound: Outbound| {
            outbound.message_id = Some(claimed.key.message_id.clone());
            outbound.route = Some(route.pattern.to_string());
            outbound.from = Some(from.to_owned());
            outbound.to = vec![address.to_owned()];
            if !route.redact.contains(&Redact::Subject) {
                outbound.subject = message.email.subject().map(str::to_owned);
            }
            outbound
        };

        if let Some(suppression) = self.store.suppression(address).await? {
            let mut reason = format!(
                "not sent: the address is on the suppression list since {} ({}",
                suppression.created_at.to_rfc3339(),
                suppression.reason.as_str()
            );
            if let Some(detail) = &suppression.detail {
                reason.push_str(&format!(": {detail}"));
            }
            reason.push(')');
            let mut outbound = outbound_of(Outbound::unsent(
                &claimed.key,
                OutboundStatus::Suppressed,
                now,
                self.config.retention_days,
            ));
            outbound.error = Some(reason.clone());
            self.keep_outbound(&outbound).await?;
            claimed.record.outbound_id = Some(outbound.ses_message_id);
            return Ok(Verdict::done(Status::Suppressed, reason));
        }

        let original = message.email.raw();
        let forward = rewrite_for_forward(
            original,
            &ForwardHeaders {
                from_address: from,
                original_from: message.email.header("from"),
                original_to: recipient,
            },
        );
        let limit = self.config.forward.max_bytes;
        let too_large = forward.len() > limit;
        let bytes = if too_large {
            self.notice(message, recipient, from, address, original.len(), now)
        } else {
            forward
        };
        let copy = MailLocation {
            bucket: message.received.location.bucket.clone(),
            key: format!(
                "outbound/{}/{}.eml",
                claimed.key.message_id, claimed.key.delivery_id
            ),
        };
        let bytes = bytes::Bytes::from(bytes);
        self.mail
            .put_object(&copy, bytes.clone(), "message/rfc822")
            .await?;

        let time_limit = message.deadline.bound(self.config.attempt_limit);
        let sent = match tokio::time::timeout(
            time_limit,
            self.sender.send_raw(from, &[address.to_owned()], bytes),
        )
        .await
        {
            Ok(sent) => sent,
            Err(_) => Err(SendMailError::Retryable(format!(
                "no answer from the mail service within {} s",
                time_limit.as_secs()
            ))),
        };
        match sent {
            Ok(ses_message_id) => {
                let mut outbound = outbound_of(Outbound::sent(
                    &ses_message_id,
                    now,
                    self.config.retention_days,
                ));
                outbound.s3_key = Some(copy.key.clone());
                let (status, note) = if too_large {
                    outbound.status = OutboundStatus::NoticeSent;
                    let note = format!(
                        "too large to forward ({} bytes, the limit is {limit}): a notice with a link \
                         to the original was sent instead",
                        message.email.raw().len()
                    );
                    outbound.error = Some(note.clone());
                    (Status::NoticeSent, Some(note))
                } else {
                    (Status::Sent, None)
                };
                self.keep_outbound(&outbound).await?;
                claimed.record.outbound_id = Some(ses_message_id);
                Ok(Verdict::done(status, note))
            }
            Err(SendMailError::Rejected(reason)) => {
                let mut outbound = outbound_of(Outbound::unsent(
                    &claimed.key,
                    OutboundStatus::Rejected,
                    now,
                    self.config.retention_days,
                ));
                outbound.error = Some(reason.clone());
                outbound.s3_key = Some(copy.key);
                self.keep_outbound(&outbound).await?;
                claimed.record.outbound_id = Some(outbound.ses_message_id);
                Ok(Verdict::done(Status::Rejected, reason))
            }
            Err(SendMailError::Retryable(reason)) => Ok(Verdict::Retry {
                reason,
                retry_after: None,
            }),
        }
    }

    /// The notice sent instead of a forward over the size limit, with a link to the stored original.
    fn notice(
        &self,
        message: &Message<'_>,
        recipient: &str,
        from: &str,
        address: &str,
        size: usize,
        now: DateTime<Utc>,
    ) -> Vec<u8> {
        let location = &message.received.location;
        let link = self.config.links.as_ref().map(|links| {
            let until = now + chrono::Duration::days(i64::from(links.days));
            let token = links.key.token(&location.key, until);
            (
                crate::deliver::links::link_url(&links.base_url, &token),
                until,
            )
        });
        let stored_at = format!("{}/{}", location.bucket, location.key);
        oversize_notice(&OversizeNotice {
            from_address: from,
            to: address,
            original_to: recipient,
            original_from: message.email.header("from"),
            subject: message.email.subject(),
            date: message.email.header("date"),
            size,
            limit: self.config.forward.max_bytes,
            link: link.as_ref().map(|(url, until)| (url.as_str(), *until)),
            stored_at: &stored_at,
            now,
        })
    }

    /// Writes a new outbound record; one already there (an earlier attempt got this far) stays.
    async fn keep_outbound(&self, outbound: &Outbound) -> Result<(), Retryable> {
        self.store.put_outbound(outbound, None).await?;
        Ok(())
    }

    /// Records a failure that concerns the whole message (missing object, unparseable bytes).
    async fn record_failure(
        &self,
        received: &Received,
        recipient: Option<&str>,
        error: String,
    ) -> Result<(), Retryable> {
        let key = DeliveryKey::new(received.location.message_id(), recipient.unwrap_or(""), "");
        let mut record = Delivery::new(
            &key,
            &received.location.key,
            received.received_at,
            self.config.retention_days,
        );
        record.status = Status::Failed;
        record.error = Some(error);
        if let Some(recipients) = &received.known.recipients {
            record.recipient = recipients.first().cloned();
        }
        record.sender = received.known.from.clone();
        self.save_once(&record).await?;
        let recipient = record.recipient.clone().unwrap_or_default();
        self.report(None, &recipient, &record, 0);
        Ok(())
    }

    /// Writes a record that needs no claim, unless a final one is there already.
    async fn save_once(&self, record: &Delivery) -> Result<(), Retryable> {
        self.store.save(record, None).await?;
        Ok(())
    }

    fn base_record(&self, message: &Message<'_>, recipient: &str, target: &str) -> Delivery {
        let key = DeliveryKey::new(message.received.location.message_id(), recipient, target);
        let mut record = Delivery::new(
            &key,
            &message.received.location.key,
            message.received.received_at,
            self.config.retention_days,
        );
        record.target = target.to_owned();
        if !recipient.is_empty() {
            record.recipient = Some(recipient.to_owned());
            record.recipient_source = Some(
                match message.envelope.recipient_source {
                    RecipientSource::Headers => "headers",
                    _ => "smtp",
                }
                .to_owned(),
            );
        }
        let envelope = message.envelope;
        record.sender = Some(envelope.from.clone()).filter(|s| !s.is_empty());
        record.sender_ip = Some(envelope.remote_ip.clone()).filter(|s| !s.is_empty());
        record.subject = message.email.subject().map(str::to_owned);
        record.message_id_header = message.email.message_id().map(str::to_owned);
        record.set_header_parties(
            message.email.header("from"),
            message.email.header("reply-to"),
        );
        record
    }

    async fn routes(&self) -> Result<Vec<Route>, Retryable> {
        if let Ok(guard) = self.routes.lock()
            && let Some((loaded, routes)) = guard.as_ref()
            && loaded.elapsed() < ROUTES_TTL
        {
            return Ok(routes.clone());
        }
        let routes = self.store.routes().await?;
        if let Ok(mut guard) = self.routes.lock() {
            *guard = Some((Instant::now(), routes.clone()));
        }
        Ok(routes)
    }

    fn forget_routes(&self) {
        if let Ok(mut guard) = self.routes.lock() {
            *guard = None;
        }
    }
}

/// A POST body written on demand from the parsed message, so a large payload streams instead of being
/// built in memory (twice: once to sign it, once to send it).
struct PayloadBody {
    format: Format,
    email: Arc<Email>,
    envelope: Envelope,
    boundary: Option<String>,
    urls: Option<Vec<String>>,
}

impl PayloadBody {
    fn new(
        format: Format,
        email: Arc<Email>,
        envelope: Envelope,
        urls: Option<Vec<String>>,
    ) -> Self {
        let boundary = Payload::new(format, &email, &envelope)
            .multipart_boundary()
            .map(str::to_owned);
        PayloadBody {
            format,
            email,
            envelope,
            boundary,
            urls,
        }
    }

    fn payload(&self) -> Payload<'_> {
        let mut payload = Payload::new(self.format, &self.email, &self.envelope);
        if let Some(boundary) = &self.boundary {
            payload = payload.with_boundary(boundary.clone());
        }
        if let Some(urls) = &self.urls {
            payload = payload.with_attachment_urls(urls);
        }
        payload
    }

    fn content_type(&self) -> String {
        self.payload().content_type()
    }
}

impl BodyWriter for PayloadBody {
    fn write_body(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.payload().write_to(out)
    }
}

fn to_std(duration: chrono::Duration) -> Duration {
    duration.to_std().unwrap_or(Duration::ZERO)
}

/// Groups routes by pattern, for listings.
pub fn routes_by_pattern(routes: &[Route]) -> HashMap<String, &Route> {
    routes.iter().map(|r| (r.pattern.to_string(), r)).collect()
}
