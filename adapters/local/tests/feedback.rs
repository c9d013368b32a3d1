//! The feedback use case over the SQLite store.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use mailroom::budget::Deadline;
use mailroom::deliver::WebhookRequest;
use mailroom::deliver::answer::{Answer, SendError};
use mailroom::feedback::{Outbound, SoftBounces, Suppression};
use mailroom::ports::{
    OutboundStore, RouteStore, SoftBounceStore, StoreError, SuppressionList, SuppressionMirror,
    Webhooks,
};
use mailroom::route::{Disabled, Pattern, Route};
use mailroom::usecases::feedback::*;
use mailroom_local::sqlite::SqliteStore;
use url::Url;

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

impl mailroom::ports::KeyStore for Memory {
    async fn key(&self, id: &str) -> Result<Option<mailroom::send::key::ApiKey>, StoreError> {
        self.sqlite.key(id).await
    }
    async fn put_key(&self, key: &mailroom::send::key::ApiKey) -> Result<(), StoreError> {
        self.sqlite.put_key(key).await
    }
    async fn keys(&self) -> Result<Vec<mailroom::send::key::ApiKey>, StoreError> {
        self.sqlite.keys().await
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
        mailroom::ports::SystemClock,
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
        mailroom::ports::SystemClock,
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
