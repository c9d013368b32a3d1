//! The feedback use case: one SES notification in, its effects out. Each effect stands on its own and is
//! idempotent, so when one fails and the notification comes back, only what failed is done again:
//!
//! 1. the suppression list: a permanent bounce or a complaint suppresses the recipient; transient bounces
//!    are counted and suppress at the limit; a delivery clears the count;
//! 2. the outbound record found by SES's message id gets a history entry per recipient and its status;
//! 3. the route's `events` URL gets a signed POST per recipient, retried like a webhook delivery.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use url::Url;

use crate::budget::Deadline;
use crate::deliver::policy::{self, GIVE_UP_AFTER, Judgement};
use crate::deliver::{WebhookRequest, webhook_id};
use crate::feedback::Origin;
use crate::feedback::notification::{EventKind, Feedback, Reading, Unreadable, read_notification};
use crate::feedback::{
    DEFAULT_SOFT_BOUNCE_LIMIT, HookEvent, Outbound, PendingPost, SoftBounces, Suppression,
    SuppressionReason, hook_events,
};
use crate::ports::{
    Clock, KeyStore, OutboundStore, RouteStore, SoftBounceStore, StoreError, SuppressionList,
    SuppressionMirror, Webhooks,
};
use crate::record::{masked_address, masked_pattern};
use crate::route::WebhookSecret;

/// How many times an optimistic write is redone when another writer got in between.
const WRITE_ATTEMPTS: usize = 8;

/// Settings of the feedback use case.
#[derive(Debug, Clone)]
pub struct FeedbackConfig {
    /// Transient bounces within seven days that suppress an address.
    pub soft_bounce_limit: u32,
    /// The longest one event POST may take, redirects included (`MAILROOM_WEBHOOK_TIMEOUT_SECS`).
    pub attempt_limit: Duration,
    /// How long a record made from SES's `send` event (mail sent around the send API) is kept.
    pub retention_days: u32,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            soft_bounce_limit: DEFAULT_SOFT_BOUNCE_LIMIT,
            attempt_limit: Duration::from_secs(30),
            retention_days: crate::record::DEFAULT_RETENTION_DAYS,
        }
    }
}

/// How one notification was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Every effect is done.
    Done,
    /// Acknowledged and left alone, with the reason (an unknown type, SES's subscription notice).
    Ignored(String),
    /// An event POST must be tried again after this wait; everything else is done.
    RetryAfter(Duration),
    /// An event POST still failed 72 hours after the notification first arrived: given up and logged;
    /// the notification belongs in the dead-letter queue, where its alarm says so.
    GaveUp,
    /// The invocation had no time left for an event POST: nothing was attempted; bring it back shortly.
    HandBack,
}

/// Why a notification could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// It cannot be read: retrying will not help. Log it and acknowledge it.
    #[error("unreadable notification: {0}")]
    Unreadable(#[from] Unreadable),
    /// A store failed; the notification must come back (after the queue's receive limit it rests in the
    /// dead-letter queue, never dropped).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One delivery of a notification: where it came from, how often it came.
#[derive(Debug, Clone)]
pub struct Arrival<'a> {
    /// SES's JSON.
    pub message: &'a str,
    /// SNS's message id, the same on every redelivery.
    pub sns_message_id: Option<&'a str>,
    /// Which delivery of it this is (SQS's receive count; 1 for the first).
    pub attempt: u32,
    /// When it first arrived: the 72-hour give-up of event POSTs counts from here.
    pub first_seen: DateTime<Utc>,
    /// When the invocation handling it must be done.
    pub deadline: Deadline,
}

/// Where a route wants the events of what it forwarded.
struct EventsTarget {
    /// The route's events URL.
    url: Url,
    /// The secrets of the route's webhook, which sign the POSTs.
    secrets: Vec<WebhookSecret>,
    /// The route's pattern, masked for logs.
    pattern: String,
}

/// One event that was just POSTed.
struct PostedEvent {
    /// Its idempotency key.
    key: String,
    /// Its kind, for logs.
    kind: &'static str,
    /// Attempts made, this one included.
    attempts: u32,
}

/// What posting a notification's events has come to so far.
#[derive(Default)]
struct Posting {
    /// Events done with: delivered, refused, or given up.
    finished: Vec<String>,
    /// Events to POST again, and when.
    retries: Vec<PendingPost>,
    /// The soonest wait before an event is due again.
    wait: Option<Duration>,
    /// An event was given up.
    gave_up: bool,
    /// The invocation had no time left for an event.
    handed_back: bool,
}

impl Posting {
    /// Keeps the sooner of `wait` and the wait already known.
    fn wait_at_most(&mut self, wait: Duration) {
        self.wait = Some(self.wait.map_or(wait, |w| w.min(wait)));
    }

    /// What the notification should do now.
    fn handled(&self) -> Handled {
        if self.handed_back {
            Handled::HandBack
        } else if let Some(wait) = self.wait {
            Handled::RetryAfter(wait)
        } else if self.gave_up {
            Handled::GaveUp
        } else {
            Handled::Done
        }
    }
}

/// The use case, over a store of records, suppressions, soft-bounce counts and routes.
pub struct Notifications<S, W, M, C> {
    store: S,
    webhooks: W,
    mirror: Option<M>,
    clock: C,
    config: FeedbackConfig,
}

impl<S, W, M, C> Notifications<S, W, M, C>
where
    S: OutboundStore + SuppressionList + SoftBounceStore + RouteStore + KeyStore,
    W: Webhooks,
    M: SuppressionMirror,
    C: Clock,
{
    /// Builds it once at init. `mirror` keeps SES's own suppression list in step, when given.
    pub fn new(store: S, webhooks: W, mirror: Option<M>, clock: C, config: FeedbackConfig) -> Self {
        Notifications {
            store,
            webhooks,
            mirror,
            clock,
            config,
        }
    }

    /// The store, for tests and tools.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Applies one notification.
    pub async fn handle(&self, arrival: &Arrival<'_>) -> Result<Handled, FeedbackError> {
        let now = self.clock.now();
        let feedback = match read_notification(arrival.message, now)? {
            Reading::Feedback(feedback) => *feedback,
            Reading::Ignore(why) => return Ok(Handled::Ignored(why)),
        };
        info!(
            event = feedback.kind.as_str(),
            ses_message_id = %feedback.ses_message_id,
            recipients = feedback.recipients.len(),
            "SES notification"
        );
        self.suppressions(&feedback, arrival.sns_message_id).await?;
        let Some(record) = self
            .update_record(&feedback, arrival.sns_message_id)
            .await?
        else {
            info!(ses_message_id = %feedback.ses_message_id, "no outbound record (sent before Mailroom, or expired)");
            return Ok(Handled::Done);
        };
        self.post_events(&feedback, record, arrival).await
    }

    async fn suppressions(
        &self,
        feedback: &Feedback,
        sns_message_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        for recipient in &feedback.recipients {
            let suppression = |reason, detail: String| Suppression {
                address: recipient.address.clone(),
                reason,
                created_at: now,
                feedback_id: feedback.feedback_id.clone(),
                ses_message_id: Some(feedback.ses_message_id.clone()),
                detail: Some(detail),
            };
            let bounce = feedback.bounce.as_ref();
            let suppress = match feedback.kind {
                EventKind::Bounce if bounce.is_some_and(|b| b.is_permanent()) => Some(suppression(
                    SuppressionReason::Bounce,
                    describe_bounce(feedback, recipient.smtp_status.as_deref()),
                )),
                EventKind::Bounce if bounce.is_some_and(|b| b.is_transient()) => {
                    let key = crate::feedback::event_key(
                        feedback,
                        sns_message_id,
                        Some(&recipient.address),
                    );
                    let count = self
                        .count_soft_bounce(&recipient.address, feedback.timestamp, &key)
                        .await?;
                    (count >= self.config.soft_bounce_limit).then(|| {
                        suppression(
                            SuppressionReason::Bounce,
                            format!(
                                "{count} transient bounces within {} days (last: {})",
                                crate::feedback::SOFT_BOUNCE_WINDOW_DAYS,
                                describe_bounce(feedback, recipient.smtp_status.as_deref())
                            ),
                        )
                    })
                }
                EventKind::Complaint => Some(suppression(
                    SuppressionReason::Complaint,
                    format!(
                        "complaint{}",
                        feedback
                            .complaint_type
                            .as_deref()
                            .map(|t| format!(" ({t})"))
                            .unwrap_or_default()
                    ),
                )),
                EventKind::Delivery => {
                    self.store.clear_soft_bounces(&recipient.address).await?;
                    None
                }
                _ => None,
            };
            if let Some(suppression) = suppress {
                if self.store.suppress(&suppression).await? {
                    info!(address = %masked_address(&suppression.address), reason = %suppression.reason, "suppressed");
                }
                if let Some(mirror) = &self.mirror {
                    mirror.mirror(&suppression).await?;
                }
            }
        }
        Ok(())
    }

    /// Counts a transient bounce (once per key) and returns the count within the window.
    async fn count_soft_bounce(
        &self,
        address: &str,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<u32, StoreError> {
        for _ in 0..WRITE_ATTEMPTS {
            let now = self.clock.now();
            let stored = self.store.soft_bounces(address).await?;
            let expected = stored.as_ref().map(|s| s.version);
            let mut counts = stored.unwrap_or_else(|| SoftBounces::new(address));
            if !counts.count(at, key, now) {
                return Ok(u32::try_from(counts.bounces.len()).unwrap_or(u32::MAX));
            }
            counts.version = expected.map_or(1, |v| v + 1);
            if self.store.put_soft_bounces(&counts, expected).await? {
                return Ok(u32::try_from(counts.bounces.len()).unwrap_or(u32::MAX));
            }
        }
        Err(StoreError {
            what: "the soft-bounce count kept changing under us".to_owned(),
            retryable: true,
            source: None,
        })
    }

    async fn update_record(
        &self,
        feedback: &Feedback,
        sns_message_id: Option<&str>,
    ) -> Result<Option<Outbound>, StoreError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some(stored) = self.store.outbound(&feedback.ses_message_id).await? else {
                if feedback.kind != EventKind::Send
                    || feedback.mail.tag(crate::feedback::FORWARD_TAG).is_some()
                {
                    return Ok(None);
                }
                let mut record = self.record_of_send(feedback);
                if record.apply(feedback, sns_message_id)
                    && self.store.put_outbound(&record, None).await?
                {
                    info!(ses_message_id = %feedback.ses_message_id, "outbound record made from SES's send event");
                    return Ok(Some(record));
                }
                continue;
            };
            let mut record = stored.clone();
            if !record.apply(feedback, sns_message_id) {
                return Ok(Some(stored));
            }
            record.version = stored.version + 1;
            if self
                .store
                .put_outbound(&record, Some(stored.version))
                .await?
            {
                return Ok(Some(record));
            }
        }
        Err(StoreError {
            what: "the outbound record kept changing under us".to_owned(),
            retryable: true,
            source: None,
        })
    }

    /// The record of a message SES sent with the stack's configuration set but no record: mail an
    /// application sent straight through SES, or a send API message whose record is not written yet (the
    /// API lays its own over this one).
    fn record_of_send(&self, feedback: &Feedback) -> Outbound {
        let mail = &feedback.mail;
        let mut record = Outbound::sent(
            &feedback.ses_message_id,
            feedback.timestamp,
            self.config.retention_days,
        );
        record.id = mail.tag(crate::usecases::send::ID_TAG).map(str::to_owned);
        record.origin = if record.id.is_some() {
            Origin::Api
        } else {
            Origin::Ses
        };
        record.from = mail
            .from
            .as_deref()
            .and_then(crate::send::request::address_of)
            .or_else(|| {
                mail.source
                    .as_deref()
                    .and_then(crate::send::request::address_of)
            });
        record.to = mail
            .destination
            .iter()
            .filter_map(|a| crate::send::request::address_of(a))
            .collect();
        record.subject = mail.subject.clone();
        record.configuration_set = mail.tag("ses:configuration-set").map(str::to_owned);
        record.recipients = record
            .to
            .iter()
            .map(|address| crate::feedback::RecipientState {
                address: address.clone(),
                status: crate::feedback::OutboundStatus::Sent,
                at: feedback.timestamp,
                detail: None,
            })
            .collect();
        record
    }

    /// POSTs the notification's events the route still wants, each signed and retried like a webhook
    /// delivery; events already posted, or not yet due again, are not sent.
    async fn post_events(
        &self,
        feedback: &Feedback,
        record: Outbound,
        arrival: &Arrival<'_>,
    ) -> Result<Handled, FeedbackError> {
        let events: Vec<(String, HookEvent)> =
            hook_events(feedback, &record, arrival.sns_message_id)
                .into_iter()
                .filter(|(key, _)| !record.events_posted.contains(key))
                .collect();
        if events.is_empty() {
            return Ok(Handled::Done);
        }
        let Some(target) = self.events_target(&record).await? else {
            return Ok(Handled::Done);
        };

        let now = self.clock.now();
        let mut posting = Posting::default();
        for (key, event) in events {
            let earlier = record.events_pending.iter().find(|p| p.key == key);
            if let Some(due) = earlier.map(|p| p.next_at)
                && due > now
            {
                // Back before its attempt is due (a wait longer than one visibility change): no POST.
                posting.wait_at_most((due - now).to_std().unwrap_or_default());
                continue;
            }
            if !arrival.deadline.allows(self.config.attempt_limit) {
                posting.handed_back = true;
                break;
            }
            let attempts = earlier.map_or(0, |p| p.attempts) + 1;
            let judgement = self
                .post_event(
                    &target,
                    &feedback.ses_message_id,
                    &key,
                    &event,
                    arrival.deadline,
                )
                .await?;
            let posted = PostedEvent {
                key,
                kind: event.kind,
                attempts,
            };
            self.settle(&mut posting, &target, posted, judgement, arrival.first_seen);
        }
        self.mark_posted(
            &feedback.ses_message_id,
            &posting.finished,
            &posting.retries,
        )
        .await?;
        Ok(posting.handled())
    }

    /// Where the route that sent the message wants its events; `None` when there is no such route, it
    /// wants none, or its events URL is not a URL.
    async fn events_target(&self, record: &Outbound) -> Result<Option<EventsTarget>, StoreError> {
        if let Some(key_id) = record.key_id.as_deref() {
            return self.key_events_target(key_id).await;
        }
        let Some(pattern) = record.route.as_deref() else {
            return Ok(None);
        };
        let routes = self.store.routes().await?;
        let Some(route) = routes.iter().find(|r| r.pattern.to_string() == pattern) else {
            return Ok(None);
        };
        let Some(events_url) = route.events.as_deref() else {
            return Ok(None);
        };
        let pattern = masked_pattern(pattern);
        let secrets = route
            .webhook
            .as_ref()
            .map(|w| w.secrets.clone())
            .unwrap_or_default();
        match Url::parse(events_url) {
            Ok(url) => Ok(Some(EventsTarget {
                url,
                secrets,
                pattern,
            })),
            Err(error) => {
                warn!(route = pattern.as_str(), error = %error, "the route's events URL is not a URL; events not posted");
                Ok(None)
            }
        }
    }

    /// Where the API key that sent a message wants its events, if it wants them.
    async fn key_events_target(&self, key_id: &str) -> Result<Option<EventsTarget>, StoreError> {
        let Some(key) = self.store.key(key_id).await? else {
            return Ok(None);
        };
        let Some(events_url) = key.events_url.as_deref() else {
            return Ok(None);
        };
        match Url::parse(events_url) {
            Ok(url) => Ok(Some(EventsTarget {
                url,
                secrets: key.events_secrets.clone(),
                pattern: format!("key {}", key.name),
            })),
            Err(error) => {
                warn!(key = %key.name, error = %error, "the key's events URL is not a URL; events not posted");
                Ok(None)
            }
        }
    }

    /// POSTs one event, signed, within the attempt limit and the deadline, and judges the answer.
    async fn post_event(
        &self,
        target: &EventsTarget,
        ses_message_id: &str,
        key: &str,
        event: &HookEvent,
        deadline: Deadline,
    ) -> Result<Judgement, StoreError> {
        let body = serde_json::to_vec(event).map_err(|e| StoreError {
            what: format!("cannot write an event: {e}"),
            retryable: false,
            source: None,
        })?;
        let request = WebhookRequest::new(
            webhook_id(ses_message_id, key),
            self.clock.now().timestamp(),
            "application/json",
            body,
            &target.secrets,
        );
        let limit = deadline.bound(self.config.attempt_limit);
        let result =
            match tokio::time::timeout(limit, self.webhooks.post(&target.url, &request)).await {
                Ok(result) => result,
                Err(_) => Err(crate::deliver::answer::SendError::Timeout(limit)),
            };
        Ok(policy::judge(&result))
    }

    /// Notes what the POST of one event came to: done with it, due again later, or given up 72 hours
    /// after the notification first arrived (`first_seen`).
    fn settle(
        &self,
        posting: &mut Posting,
        target: &EventsTarget,
        posted: PostedEvent,
        judgement: Judgement,
        first_seen: DateTime<Utc>,
    ) {
        let PostedEvent {
            key,
            kind,
            attempts,
        } = posted;
        let pattern = target.pattern.as_str();
        match judgement {
            Judgement::Delivered => posting.finished.push(key),
            Judgement::Reject { reason, .. } => {
                warn!(
                    route = pattern,
                    event = kind,
                    reason,
                    "event refused; not retried"
                );
                posting.finished.push(key);
            }
            Judgement::Retry {
                reason,
                retry_after,
            } => {
                info!(
                    route = pattern,
                    event = kind,
                    reason,
                    attempts,
                    "event POST failed; will retry"
                );
                let attempted_at = self.clock.now();
                let elapsed = (attempted_at - first_seen).to_std().unwrap_or_default();
                let time_left = GIVE_UP_AFTER.saturating_sub(elapsed);
                match policy::next_wait(attempts, retry_after, time_left) {
                    Some(wait) => {
                        posting.wait_at_most(wait);
                        posting.retries.push(PendingPost {
                            key,
                            attempts,
                            next_at: attempted_at
                                + chrono::Duration::from_std(wait).unwrap_or_default(),
                        });
                    }
                    None => {
                        warn!(
                            route = pattern,
                            event = kind,
                            attempts,
                            "event POST given up after 72 hours"
                        );
                        posting.gave_up = true;
                        posting.finished.push(key);
                    }
                }
            }
        }
    }

    /// Records which events are done with and when the failed ones are due again.
    async fn mark_posted(
        &self,
        ses_message_id: &str,
        keys: &[String],
        retries: &[PendingPost],
    ) -> Result<(), StoreError> {
        if keys.is_empty() && retries.is_empty() {
            return Ok(());
        }
        for _ in 0..WRITE_ATTEMPTS {
            let Some(stored) = self.store.outbound(ses_message_id).await? else {
                return Ok(());
            };
            let mut record = stored.clone();
            for key in keys {
                if !record.events_posted.contains(key) {
                    record.events_posted.push(key.clone());
                }
            }
            record
                .events_pending
                .retain(|p| !keys.contains(&p.key) && !retries.iter().any(|r| r.key == p.key));
            record.events_pending.extend(retries.iter().cloned());
            if record == stored {
                return Ok(());
            }
            record.version = stored.version + 1;
            if self
                .store
                .put_outbound(&record, Some(stored.version))
                .await?
            {
                return Ok(());
            }
        }
        Err(StoreError {
            what: "the outbound record kept changing under us".to_owned(),
            retryable: true,
            source: None,
        })
    }
}

fn describe_bounce(feedback: &Feedback, smtp_status: Option<&str>) -> String {
    let mut text = String::from("bounce");
    if let Some(bounce) = &feedback.bounce {
        text = format!("{} bounce", bounce.bounce_type);
        if let Some(subtype) = &bounce.bounce_subtype {
            text.push_str(&format!(" ({subtype})"));
        }
    }
    if let Some(status) = smtp_status {
        text.push_str(&format!(", {status}"));
    }
    text
}
