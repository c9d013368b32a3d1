//! The send API's use case over the dev store, a folder and a scripted mail service: each answer it can
//! give, what it stores, what it records, and what reaches the mail service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::Utc;
use mailroom::budget::{Deadline, RESERVE};
use mailroom::feedback::{OutboundStatus, Suppression, SuppressionReason};
use mailroom::ports::{
    KeyStore, MailLocation, MailSender, MailStore, OutboundLog, SendMailError, SendOptions, Sent,
    SuppressionList, SystemClock,
};
use mailroom::route::Redact;
use mailroom::send::key::ApiKey;
use mailroom::usecases::send::{ApiAnswer, ApiRequest, MAX_REQUEST_BYTES, SendApi, SendConfig};
use mailroom_local::files::LocalMailStore;
use mailroom_local::sqlite::SqliteStore;
use serde_json::{Value, json};

/// What the mail service was given: from, to, the message, the options.
type Given = (String, Vec<String>, Bytes, SendOptions);

/// A mail service that answers from a script (then `Ok`) and keeps what it was given.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<SendMailError>>>,
    /// How long it takes to answer.
    delay: Arc<Mutex<std::time::Duration>>,
    sent: Arc<Mutex<Vec<Given>>>,
}

impl MailSender for Scripted {
    async fn send_raw(
        &self,
        from: &str,
        to: &[String],
        raw: Bytes,
        options: &SendOptions,
    ) -> Result<Sent, SendMailError> {
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if let Some(error) = self.answers.lock().unwrap().pop_front() {
            return Err(error);
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push((from.to_owned(), to.to_vec(), raw, options.clone()));
        Ok(Sent {
            message_id: format!("ses-{}", sent.len()),
            configuration_set: Some(
                if options.track_opens {
                    "tracked"
                } else {
                    "sending"
                }
                .to_owned(),
            ),
        })
    }
}

struct Setup {
    api: SendApi<SqliteStore, LocalMailStore, Scripted, SystemClock>,
    store: SqliteStore,
    mail: LocalMailStore,
    sender: Scripted,
    key: ApiKey,
    secret: String,
}

async fn setup(test: &str) -> Setup {
    let store = SqliteStore::in_memory().unwrap();
    let root = std::env::temp_dir().join(format!("mailroom-send-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mail = LocalMailStore::new(&root);
    let sender = Scripted::default();
    let made = ApiKey::create("app", &["shop.test".to_owned()], Utc::now()).unwrap();
    store.put_key(&made.stored).await.unwrap();
    let api = SendApi::new(
        store.clone(),
        mail.clone(),
        sender.clone(),
        SystemClock,
        SendConfig {
            bucket: "local".to_owned(),
            domains: vec!["shop.test".to_owned(), "other.test".to_owned()],
            retention_days: 60,
        },
    );
    Setup {
        api,
        store,
        mail,
        sender,
        key: made.stored,
        secret: made.secret,
    }
}

impl Setup {
    async fn post(&self, body: &Value) -> ApiAnswer {
        self.call(
            "POST",
            &format!("/api/v0.1/{}/messages", self.key.id),
            body.to_string().as_bytes(),
        )
        .await
    }

    async fn call(&self, method: &str, path: &str, body: &[u8]) -> ApiAnswer {
        let authorization = format!("Bearer {}", self.secret);
        self.api
            .answer(ApiRequest {
                method,
                path,
                authorization: Some(&authorization),
                body,
                deadline: Deadline::none(),
            })
            .await
    }

    async fn stored(&self, id: &str) -> Bytes {
        self.mail
            .fetch(&MailLocation {
                bucket: "local".to_owned(),
                key: format!("outbound/{id}/message.eml"),
            })
            .await
            .unwrap()
    }
}

fn simple(to: Value) -> Value {
    json!({"from": "shop@shop.test", "to": to, "subject": "Order 42", "plain": "thanks"})
}

#[tokio::test]
async fn a_sent_message_is_stored_before_it_is_sent_and_recorded_as_sent() {
    let s = setup("sent").await;
    let answer = s.post(&simple(json!(["a@x.test", "b@x.test"]))).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.body["id"].as_str().unwrap();
    let sent = s.sender.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (from, to, raw, options) = &sent[0];
    assert_eq!(from, "shop@shop.test");
    assert_eq!(to, &["a@x.test", "b@x.test"]);
    assert_eq!(raw, &s.stored(id).await);
    assert!(options.track_opens && options.track_clicks);
    assert_eq!(options.tags, [("mailroom-id".to_owned(), id.to_owned())]);
    let records = s.store.sent_between(None, None, 0).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].ses_message_id, "ses-1");
    assert_eq!(records[0].subject.as_deref(), Some("Order 42"));
    assert_eq!(records[0].configuration_set.as_deref(), Some("tracked"));
}

#[tokio::test]
async fn test_mode_and_an_all_suppressed_message_send_nothing_but_are_recorded() {
    let s = setup("unsent").await;
    let mut test = simple(json!("a@x.test"));
    test["test_mode"] = json!(true);
    let answer = s.post(&test).await;
    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (202, Some("test"))
    );
    assert!(
        !s.stored(answer.body["id"].as_str().unwrap())
            .await
            .is_empty()
    );
    s.store
        .suppress(&Suppression {
            address: "gone@x.test".to_owned(),
            reason: SuppressionReason::Complaint,
            created_at: Utc::now(),
            feedback_id: None,
            ses_message_id: None,
            detail: None,
        })
        .await
        .unwrap();
    let answer = s.post(&simple(json!("Gone <GONE@x.test>"))).await;
    assert_eq!(answer.status, 202);
    assert_eq!(answer.body["status"], "suppressed");
    assert_eq!(answer.body["suppressed"], json!(["gone@x.test"]));
    assert!(
        s.sender.sent.lock().unwrap().is_empty(),
        "nothing reached the mail service"
    );
    let records = s.store.sent_between(None, None, 0).await.unwrap();
    let statuses: Vec<_> = records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [OutboundStatus::Suppressed, OutboundStatus::Test]);
    assert!(records[0].ses_message_id.starts_with("unsent-"));
    assert!(records[1].ses_message_id.starts_with("test-"));
}

#[tokio::test]
async fn what_the_mail_service_refuses_is_422_and_recorded_what_fails_is_503_and_kept() {
    let s = setup("refused").await;
    s.sender.answers.lock().unwrap().extend([
        SendMailError::Rejected("SES MessageRejected: Email address is not verified".to_owned()),
        SendMailError::Retryable("SES Throttling: slow down".to_owned()),
    ]);
    let refused = s.post(&simple(json!("a@x.test"))).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("not verified")
    );
    let failed = s.post(&simple(json!("b@x.test"))).await;
    assert_eq!(failed.status, 503);
    let records = s.store.sent_between(None, None, 0).await.unwrap();
    assert_eq!(
        records.len(),
        1,
        "a refusal is recorded; a failure the client retries is not"
    );
    assert_eq!(records[0].status, OutboundStatus::Rejected);
    assert_eq!(records[0].recipients[0].status, OutboundStatus::Rejected);
    assert!(
        records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not verified")
    );
}

#[tokio::test]
async fn every_refusal_has_its_status_and_cloudmailins_shape() {
    let s = setup("refusals").await;
    let path = format!("/api/v0.1/{}/messages", s.key.id);
    let body = simple(json!("a@x.test")).to_string();
    let anonymous = s
        .api
        .answer(ApiRequest {
            method: "POST",
            path: &path,
            authorization: None,
            body: body.as_bytes(),
            deadline: Deadline::none(),
        })
        .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.body["status"], 401);
    let other_account = s
        .call("POST", "/api/v0.1/k0000/messages", body.as_bytes())
        .await;
    assert_eq!(
        other_account.status, 401,
        "a key answers only for its own username"
    );
    assert_eq!(s.call("GET", &path, b"").await.status, 405);
    assert_eq!(
        s.call("POST", "/api/v0.2/x/messages", body.as_bytes())
            .await
            .status,
        404
    );
    let huge = vec![b' '; MAX_REQUEST_BYTES + 1];
    let too_large = s.call("POST", &path, &huge).await;
    assert_eq!(too_large.status, 413);
    assert!(
        too_large.body["error"]
            .as_str()
            .unwrap()
            .contains("6291456")
    );
    let mut foreign = simple(json!("a@x.test"));
    foreign["from"] = json!("shop@other.test");
    let forbidden = s.post(&foreign).await;
    assert_eq!(
        forbidden.status, 403,
        "in the stack's domains, but not the key's"
    );
    assert_eq!(s.call("POST", &path, b"{not json").await.status, 422);
    let mut revoked = s.key.clone();
    revoked.revoked_at = Some(Utc::now());
    s.store.put_key(&revoked).await.unwrap();
    assert_eq!(s.post(&simple(json!("a@x.test"))).await.status, 401);
    assert!(s.sender.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_key_that_redacts_the_subject_keeps_it_out_of_records_and_can_turn_tracking_off() {
    let s = setup("redact").await;
    let mut key = s.key.clone();
    key.redact = vec![Redact::Subject];
    key.tracking = false;
    s.store.put_key(&key).await.unwrap();
    let answer = s.post(&simple(json!("a@x.test"))).await;
    assert_eq!(answer.status, 202);
    assert_eq!(
        answer.body["subject"], "Order 42",
        "the answer repeats the request"
    );
    let records = s.store.sent_between(None, None, 0).await.unwrap();
    assert_eq!(records[0].subject, None);
    assert!(!records[0].tracked);
    let (_, _, raw, options) = s.sender.sent.lock().unwrap()[0].clone();
    assert!(!options.track_opens && !options.track_clicks);
    assert!(
        String::from_utf8_lossy(&raw).contains("Subject: Order 42"),
        "the mail keeps it"
    );
}

#[tokio::test]
async fn a_mail_service_that_does_not_answer_is_a_503_before_the_invocations_deadline() {
    let s = setup("deadline").await;
    *s.sender.delay.lock().unwrap() = std::time::Duration::from_secs(30);
    let body = simple(json!("a@x.test")).to_string();
    let authorization = format!("Bearer {}", s.secret);
    let path = format!("/api/v0.1/{}/messages", s.key.id);
    let started = std::time::Instant::now();
    // 300 ms left once the reserve for answering is kept.
    let deadline = Deadline::after(RESERVE + std::time::Duration::from_millis(300));
    let answer = s
        .api
        .answer(ApiRequest {
            method: "POST",
            path: &path,
            authorization: Some(&authorization),
            body: body.as_bytes(),
            deadline,
        })
        .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.body["error"].as_str().unwrap().contains("try again"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        s.store
            .sent_between(None, None, 0)
            .await
            .unwrap()
            .is_empty()
    );
}
