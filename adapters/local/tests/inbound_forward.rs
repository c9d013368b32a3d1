//! The inbound use case's forwarding over the local adapters: a scripted sender, an SQLite store, a folder of mail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use mailroom::deliver::policy;
use mailroom::feedback::OutboundStatus;
use mailroom::mail::envelope::KnownEnvelope;
use mailroom::ports::{
    MailLocation, MailSender, OutboundStore, RecordStore, RouteStore, SendMailError, SendOptions,
    SystemClock,
};
use mailroom::record::{Delivery, DeliveryKey, Status};
use mailroom::route::Route;
use mailroom::usecases::inbound::*;
use mailroom_http::{HttpClient, TargetPolicy};
use mailroom_local::files::LocalMailStore;
use mailroom_local::sqlite::SqliteStore;

/// What a sender was given: from, to, the message.
type Sent = (String, Vec<String>, Bytes);

/// A sender that answers from a script, and remembers what it was given.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<Result<String, SendMailError>>>>,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl MailSender for Scripted {
    async fn send_raw(
        &self,
        from: &str,
        to: &[String],
        raw: Bytes,
        _options: &SendOptions,
    ) -> Result<mailroom::ports::Sent, SendMailError> {
        self.sent
            .lock()
            .unwrap()
            .push((from.to_owned(), to.to_vec(), raw));
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Ok("ses-default".to_owned()))
            .map(|message_id| mailroom::ports::Sent {
                message_id,
                configuration_set: None,
            })
    }
}

struct World {
    inbound: Inbound<LocalMailStore, SqliteStore, HttpClient, Scripted, SystemClock>,
    sender: Scripted,
    store: SqliteStore,
    root: std::path::PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn world(test: &str, answers: Vec<Result<String, SendMailError>>) -> World {
    let root = std::env::temp_dir().join(format!("mailroom-inbound-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mail = LocalMailStore::new(&root);
    let store = SqliteStore::in_memory().unwrap();
    let sender = Scripted::default();
    sender.answers.lock().unwrap().extend(answers);
    let inbound = Inbound::new(
        mail,
        store.clone(),
        HttpClient::new(Duration::from_secs(5), TargetPolicy::STRICT).unwrap(),
        sender.clone(),
        SystemClock,
        InboundConfig {
            forward: ForwardSettings {
                from: Some("forward@mail.example.com".to_owned()),
                max_bytes: DEFAULT_FORWARD_MAX_BYTES,
            },
            ..InboundConfig::with_defaults(60)
        },
    );
    World {
        inbound,
        sender,
        store,
        root,
    }
}

impl World {
    async fn receive(&self, id: &str, first_seen: DateTime<Utc>) -> Outcome {
        let mut route = Route::new("support@mail.example.com".parse().unwrap());
        route.forward = vec!["ana@example.net".to_owned()];
        self.store.put_route(&route).await.unwrap();
        let key = format!("inbound/{id}");
        LocalMailStore::new(&self.root)
            .put(
                &key,
                b"From: Bruno <bruno@sender.example>\r\nTo: support@mail.example.com\r\n\
                  Subject: hi\r\n\r\nhello\r\n",
            )
            .unwrap();
        let received = Received {
            location: MailLocation {
                bucket: "local".to_owned(),
                key,
            },
            received_at: first_seen,
            first_seen,
            known: KnownEnvelope {
                recipients: Some(vec!["support@mail.example.com".to_owned()]),
                from: Some("bruno@sender.example".to_owned()),
                ..KnownEnvelope::default()
            },
            size: None,
        };
        self.inbound.process(&received).await.unwrap()
    }

    async fn record(&self, id: &str) -> Delivery {
        let key = DeliveryKey::new(id, "support@mail.example.com", "forward ana@example.net");
        self.store.get(&key).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn throttling_is_retried_on_the_schedule_and_then_sent() {
    let w = world(
        "throttled",
        vec![
            Err(SendMailError::Retryable(
                "SES TooManyRequestsException: slow down".to_owned(),
            )),
            Ok("ses-2".to_owned()),
        ],
    );
    let outcome = w.receive("m1", Utc::now()).await;
    assert_eq!(outcome, Outcome::RetryAfter(policy::BACKOFF[0]));
    let record = w.record("m1").await;
    assert_eq!(record.status, Status::Retrying);
    assert_eq!(
        record.error.as_deref(),
        Some("SES TooManyRequestsException: slow down")
    );
    assert!(record.outbound_id.is_none());

    // The event comes back when the wait is over.
    let mut record = record;
    record.next_attempt_at = Some(Utc::now() - chrono::Duration::seconds(1));
    w.store.save(&record, None).await.unwrap();
    assert_eq!(w.receive("m1", Utc::now()).await, Outcome::Done);
    let record = w.record("m1").await;
    assert_eq!(record.status, Status::Sent);
    assert_eq!(record.attempts, 2);
    assert_eq!(record.outbound_id.as_deref(), Some("ses-2"));
    let outbound = w.store.outbound("ses-2").await.unwrap().unwrap();
    assert_eq!(outbound.status, OutboundStatus::Sent);
    let sent = w.sender.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].0, "forward@mail.example.com");
    assert_eq!(sent[1].1, vec!["ana@example.net"]);
    // The copy SES was given is kept beside the mail.
    let copy = outbound.s3_key.unwrap();
    assert_eq!(
        std::fs::read(w.root.join(&copy)).unwrap(),
        &sent[1].2[..],
        "{copy}"
    );
}

#[tokio::test]
async fn a_send_failing_for_72_hours_gives_up() {
    let w = world(
        "gives-up",
        vec![Err(SendMailError::Retryable(
            "SES 503: unavailable".to_owned(),
        ))],
    );
    let first_seen = Utc::now() - chrono::Duration::hours(73);
    assert_eq!(w.receive("m2", first_seen).await, Outcome::GaveUp);
    let record = w.record("m2").await;
    assert_eq!(record.status, Status::Failed);
    assert!(
        record
            .error
            .as_deref()
            .unwrap()
            .starts_with("gave up after 1 attempts over 72 hours; last: SES 503"),
        "{record:?}"
    );
}
