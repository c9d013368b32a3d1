//! The inbound use case: a stored message → its recipients → their routes → a delivery per target → a record
//! of each. The same code runs in the Lambda (AWS adapters) and in `mailroom dev` (local adapters).
//!
//! Every step is idempotent, because events arrive at least once: a delivery is claimed with a conditional
//! write before it is attempted, a final record is never attempted again, and every attempt of one delivery
//! carries the same `webhook-id`.

mod claim;
mod forward;
mod read;
mod records;
mod routing;
mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::info;

use crate::budget::{Deadline, MemoryBudget};
use crate::mail::Email;
use crate::mail::envelope::{Envelope, KnownEnvelope};
use crate::ports::{
    Clock, MailLocation, MailSender, MailStore, ObjectStore, OutboundStore, RecordStore,
    RouteStore, StoreError, SuppressionList, Webhooks,
};
use crate::record::{Delivery, Status};
use crate::route::{Route, WebhookTarget};

use read::Parsed;

/// How long a warm container trusts its copy of the routes before it reads them again.
pub const ROUTES_REREAD_AFTER: Duration = Duration::from_secs(60);

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

    /// Tells the observer, if there is one, what became of a delivery.
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
        self.process_routed(received, deadline, None).await
    }

    /// Delivers a stored message once more, for each of its recipients, along `route` instead of the route
    /// that takes the recipient: what an operator's "send it to that route too" does. Each delivery is a
    /// record of its own (a new target is a new key), attempted once now; a retryable failure stays
    /// `retrying` with no retry scheduled (the operator's console shows it).
    pub async fn process_via(
        &self,
        received: &Received,
        route: &Route,
    ) -> Result<Outcome, Retryable> {
        self.process_routed(received, Deadline::none(), Some(route))
            .await
    }

    /// Processes one stored message along the routes that take its recipients, or along `only`.
    async fn process_routed(
        &self,
        received: &Received,
        deadline: Deadline,
        only: Option<&Route>,
    ) -> Result<Outcome, Retryable> {
        let started = Instant::now();
        if !deadline.allows(self.config.attempt_limit) {
            return Ok(Outcome::HandBack);
        }
        let Some(Parsed { email, size }) = self.read_message(received).await? else {
            return Ok(Outcome::Done);
        };
        let mut envelope = Envelope::recover(&email).with_known(received.known.clone());
        if self.config.tls_required {
            envelope.tls = Some(true);
        }
        let routes = self.routes().await?;
        let recipients = self.recipients(&envelope, &routes);
        info!(
            message_id = received.location.message_id(),
            size,
            recipients = recipients.len(),
            attachments = email.attachments.len(),
            warnings = email.warnings.len(),
            "message parsed"
        );
        let message = Message {
            received,
            email,
            envelope: &envelope,
            started,
            deadline,
        };
        if recipients.is_empty() {
            let why = "no recipient could be determined from the event or the headers";
            self.record_no_route(&message, "", Some(why.to_owned()))
                .await?;
            return Ok(Outcome::Done);
        }
        match only {
            Some(route) => self.deliver_along(&message, &recipients, route).await,
            None => {
                self.deliver_to_recipients(&message, &recipients, &routes)
                    .await
            }
        }
    }
}

/// Groups routes by pattern, for listings.
pub fn routes_by_pattern(routes: &[Route]) -> HashMap<String, &Route> {
    routes.iter().map(|r| (r.pattern.to_string(), r)).collect()
}
