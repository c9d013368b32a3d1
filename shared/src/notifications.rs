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
use crate::feedback::notification::{EventKind, Feedback, Reading, Unreadable, read_notification};
use crate::feedback::{
    DEFAULT_SOFT_BOUNCE_LIMIT, HookEvent, Outbound, PendingPost, SoftBounces, Suppression,
    SuppressionReason, hook_events,
};
use crate::ports::{
    Clock, OutboundStore, RouteStore, SoftBounceStore, StoreError, SuppressionList,
    SuppressionMirror, Webhooks,
};
use crate::record::{masked_address, masked_pattern};

/// How many times an optimistic write is redone when another writer got in between.
const WRITE_ATTEMPTS: usize = 8;

/// Settings of the feedback use case.
#[derive(Debug, Clone)]
pub struct FeedbackConfig {
    /// Transient bounces within seven days that suppress an address.
    pub soft_bounce_limit: u32,
    /// The longest one event POST may take, redirects included (`MAILROOM_WEBHOOK_TIMEOUT_SECS`).
    pub attempt_limit: Duration,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            soft_bounce_limit: DEFAULT_SOFT_BOUNCE_LIMIT,
            attempt_limit: Duration::from_secs(30),
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
    S: OutboundStore + SuppressionList + SoftBounceStore + RouteStore,
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
            Reading::Feedback(feedback) => feedback,
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
                return Ok(None);
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
        let Some(pattern) = record.route.as_deref() else {
            return Ok(Handled::Done);
        };
        let routes = self.store.routes().await?;
        let Some(route) = routes.iter().find(|r| r.pattern.to_string() == pattern) else {
            return Ok(Handled::Done);
        };
        let Some(events_url) = route.events.as_deref() else {
            return Ok(Handled::Done);
        };
        let pattern = masked_pattern(pattern);
        let pattern = pattern.as_str();
        let secrets = route
            .webhook
            .as_ref()
            .map(|w| w.secrets.clone())
            .unwrap_or_default();
        let url = match Url::parse(events_url) {
            Ok(url) => url,
            Err(error) => {
                warn!(route = pattern, error = %error, "the route's events URL is not a URL; events not posted");
                return Ok(Handled::Done);
            }
        };

        let now = self.clock.now();
        let pending = |key: &str| record.events_pending.iter().find(|p| p.key == key);
        let mut finished = Vec::new();
        let mut retries: Vec<PendingPost> = Vec::new();
        let mut wait: Option<Duration> = None;
        let mut gave_up = false;
        let mut handed_back = false;
        for (key, event) in events {
            let earlier = pending(&key).cloned();
            if let Some(due) = earlier.as_ref().map(|p| p.next_at)
                && due > now
            {
                // Back before its attempt is due (a wait longer than one visibility change): no POST.
                let left = (due - now).to_std().unwrap_or_default();
                wait = Some(wait.map_or(left, |w| w.min(left)));
                continue;
            }
            if !arrival.deadline.allows(self.config.attempt_limit) {
                handed_back = true;
                break;
            }
            let body = serde_json::to_vec(&event).map_err(|e| StoreError {
                what: format!("cannot write an event: {e}"),
                retryable: false,
                source: None,
            })?;
            let request = WebhookRequest::new(
                webhook_id(&feedback.ses_message_id, &key),
                self.clock.now().timestamp(),
                "application/json",
                body,
                &secrets,
            );
            let limit = arrival.deadline.bound(self.config.attempt_limit);
            let result = match tokio::time::timeout(limit, self.webhooks.post(&url, &request)).await
            {
                Ok(result) => result,
                Err(_) => Err(crate::http::SendError::Timeout(limit)),
            };
            match policy::judge(&result) {
                Judgement::Delivered => finished.push(key),
                Judgement::Reject { reason, .. } => {
                    warn!(
                        route = pattern,
                        event = event.kind,
                        reason,
                        "event refused; not retried"
                    );
                    finished.push(key);
                }
                Judgement::Retry {
                    reason,
                    retry_after,
                } => {
                    let attempts = earlier.map_or(0, |p| p.attempts) + 1;
                    info!(
                        route = pattern,
                        event = event.kind,
                        reason,
                        attempts,
                        "event POST failed; will retry"
                    );
                    let attempted_at = self.clock.now();
                    let elapsed = (attempted_at - arrival.first_seen)
                        .to_std()
                        .unwrap_or_default();
                    let time_left = GIVE_UP_AFTER.saturating_sub(elapsed);
                    match policy::next_wait(attempts, retry_after, time_left) {
                        Some(this) => {
                            wait = Some(wait.map_or(this, |w| w.min(this)));
                            retries.push(PendingPost {
                                key,
                                attempts,
                                next_at: attempted_at
                                    + chrono::Duration::from_std(this).unwrap_or_default(),
                            });
                        }
                        None => {
                            warn!(
                                route = pattern,
                                event = event.kind,
                                attempts,
                                "event POST given up after 72 hours"
                            );
                            gave_up = true;
                            finished.push(key);
                        }
                    }
                }
            }
        }
        self.mark_posted(&feedback.ses_message_id, &finished, &retries)
            .await?;
        Ok(if handed_back {
            Handled::HandBack
        } else if let Some(wait) = wait {
            Handled::RetryAfter(wait)
        } else if gave_up {
            Handled::GaveUp
        } else {
            Handled::Done
        })
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::http::{Answer, SendError};
    use crate::local::sqlite::SqliteStore;
    use crate::route::{Disabled, Pattern, Route};

    /// Records and counts in memory; routes and suppressions in an in-memory SQLite store. The first
    /// `conflicts` outbound writes fail as if another writer got in first.
    struct Memory {
        sqlite: SqliteStore,
        outbound: Mutex<HashMap<String, Outbound>>,
        counts: Mutex<HashMap<String, SoftBounces>>,
        conflicts: AtomicUsize,
    }

    impl OutboundStore for Memory {
        async fn outbound(&self, id: &str) -> Result<Option<Outbound>, StoreError> {
            Ok(self.outbound.lock().unwrap().get(id).cloned())
        }
        async fn put_outbound(
            &self,
            record: &Outbound,
            expected: Option<u64>,
        ) -> Result<bool, StoreError> {
            if self.conflicts.load(Ordering::SeqCst) > 0 {
                self.conflicts.fetch_sub(1, Ordering::SeqCst);
                return Ok(false);
            }
            let mut all = self.outbound.lock().unwrap();
            if all.get(&record.ses_message_id).map(|r| r.version) != expected {
                return Ok(false);
            }
            all.insert(record.ses_message_id.clone(), record.clone());
            Ok(true)
        }
    }

    impl SoftBounceStore for Memory {
        async fn soft_bounces(&self, address: &str) -> Result<Option<SoftBounces>, StoreError> {
            Ok(self.counts.lock().unwrap().get(address).cloned())
        }
        async fn put_soft_bounces(
            &self,
            counts: &SoftBounces,
            expected: Option<u64>,
        ) -> Result<bool, StoreError> {
            let mut all = self.counts.lock().unwrap();
            if all.get(&counts.address).map(|c| c.version) != expected {
                return Ok(false);
            }
            all.insert(counts.address.clone(), counts.clone());
            Ok(true)
        }
        async fn clear_soft_bounces(&self, address: &str) -> Result<(), StoreError> {
            self.counts.lock().unwrap().remove(address);
            Ok(())
        }
    }

    impl SuppressionList for Memory {
        async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
            self.sqlite.suppression(address).await
        }
        async fn suppress(&self, suppression: &Suppression) -> Result<bool, StoreError> {
            self.sqlite.suppress(suppression).await
        }
        async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
            self.sqlite.unsuppress(address).await
        }
        async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
            self.sqlite.suppressions().await
        }
    }

    impl RouteStore for Memory {
        async fn routes(&self) -> Result<Vec<Route>, StoreError> {
            self.sqlite.routes().await
        }
        async fn put_route(&self, route: &Route) -> Result<(), StoreError> {
            self.sqlite.put_route(route).await
        }
        async fn remove_route(&self, pattern: &Pattern) -> Result<bool, StoreError> {
            self.sqlite.remove_route(pattern).await
        }
        async fn set_webhook_disabled(
            &self,
            pattern: &Pattern,
            disabled: Option<Disabled>,
        ) -> Result<(), StoreError> {
            self.sqlite.set_webhook_disabled(pattern, disabled).await
        }
        async fn set_enabled(&self, pattern: &Pattern, enabled: bool) -> Result<bool, StoreError> {
            self.sqlite.set_enabled(pattern, enabled).await
        }
    }

    struct NoWebhooks;

    impl Webhooks for NoWebhooks {
        async fn post(&self, _url: &Url, _request: &WebhookRequest) -> Result<Answer, SendError> {
            panic!("no route has an events URL in these tests")
        }
    }

    /// Counts mirrored suppressions; fails while `failing` is set.
    #[derive(Default)]
    struct Mirror {
        mirrored: Mutex<Vec<String>>,
        failing: std::sync::atomic::AtomicBool,
    }

    impl SuppressionMirror for &Mirror {
        async fn mirror(&self, suppression: &Suppression) -> Result<(), StoreError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::permanent("SES said no"));
            }
            self.mirrored
                .lock()
                .unwrap()
                .push(suppression.address.clone());
            Ok(())
        }
    }

    fn memory(conflicts: usize) -> Memory {
        Memory {
            sqlite: SqliteStore::in_memory().unwrap(),
            outbound: Mutex::default(),
            counts: Mutex::default(),
            conflicts: AtomicUsize::new(conflicts),
        }
    }

    fn notification(kind: &str, body: &str) -> String {
        format!(
            r#"{{"notificationType":"{kind}","mail":{{"messageId":"ses-1","timestamp":"{now}"}},{body}}}"#,
            now = Utc::now().to_rfc3339()
        )
    }

    fn arrival(message: &str) -> Arrival<'_> {
        Arrival {
            message,
            sns_message_id: Some("sns-1"),
            attempt: 1,
            first_seen: Utc::now(),
            deadline: Deadline::none(),
        }
    }

    const HARD_BOUNCE: &str = r#""bounce":{"bounceType":"Permanent","bounceSubType":"General","feedbackId":"fb-1",
        "bouncedRecipients":[{"emailAddress":"ana@example.net","status":"5.1.1"}]}"#;

    #[tokio::test]
    async fn suppressions_are_mirrored_to_ses_and_a_failed_mirror_comes_back() {
        let mirror = Mirror::default();
        let use_case = Notifications::new(
            memory(0),
            NoWebhooks,
            Some(&mirror),
            crate::ports::SystemClock,
            FeedbackConfig::default(),
        );
        let bounce = notification("Bounce", HARD_BOUNCE);

        mirror.failing.store(true, Ordering::SeqCst);
        assert!(matches!(
            use_case.handle(&arrival(&bounce)).await,
            Err(FeedbackError::Store(_))
        ));
        assert!(
            use_case
                .store()
                .suppression("ana@example.net")
                .await
                .unwrap()
                .is_some(),
            "the list is updated first"
        );

        mirror.failing.store(false, Ordering::SeqCst);
        assert_eq!(
            use_case.handle(&arrival(&bounce)).await.unwrap(),
            Handled::Done
        );
        assert_eq!(
            *mirror.mirrored.lock().unwrap(),
            ["ana@example.net"],
            "the retry mirrors it"
        );

        let delivery = notification(
            "Delivery",
            r#""delivery":{"recipients":["bo@example.net"]}"#,
        );
        use_case.handle(&arrival(&delivery)).await.unwrap();
        assert_eq!(
            mirror.mirrored.lock().unwrap().len(),
            1,
            "a delivery suppresses nobody"
        );
    }

    #[tokio::test]
    async fn a_concurrent_write_to_the_record_is_redone_not_lost() {
        let use_case = Notifications::new(
            memory(2),
            NoWebhooks,
            None::<&Mirror>,
            crate::ports::SystemClock,
            FeedbackConfig::default(),
        );
        let mut record = Outbound::sent("ses-1", Utc::now(), 60);
        record.version = 1;
        use_case
            .store()
            .outbound
            .lock()
            .unwrap()
            .insert("ses-1".to_owned(), record);
        let bounce = notification("Bounce", HARD_BOUNCE);
        assert_eq!(
            use_case.handle(&arrival(&bounce)).await.unwrap(),
            Handled::Done
        );
        let stored = use_case.store().outbound("ses-1").await.unwrap().unwrap();
        assert_eq!(stored.history.len(), 1);
        assert_eq!(stored.version, 2);

        // Unknown types are acknowledged; unreadable ones are an error the handler logs and acknowledges.
        let unknown = r#"{"notificationType":"AmazonSnsSubscriptionSucceeded"}"#;
        assert!(matches!(
            use_case.handle(&arrival(unknown)).await.unwrap(),
            Handled::Ignored(_)
        ));
        assert!(matches!(
            use_case.handle(&arrival("{")).await,
            Err(FeedbackError::Unreadable(_))
        ));
    }
}
