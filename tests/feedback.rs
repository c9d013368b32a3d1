//! The feedback function end to end: the real handler on the sample events of `events/`, moto's server
//! through the real AWS SDK, and a real HTTP receiver for a route's event hook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use integration_tests::{Receiver, Reply, failures, repo, resources, sdk, unique};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::feedback::{Outbound, OutboundStatus, SuppressionReason};
use mailroom::format::Format;
use mailroom::ports::{Clock, OutboundStore, RouteStore, SuppressionList};
use mailroom::route::{AttachmentMode, Route, WebhookSecret, WebhookTarget};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use serde_json::Value;

/// The SES message id every sample is about.
const SES_ID: &str = "0102018c1a2b3c4d-11111111-2222-3333-4444-555555555555-000000";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A clock the test moves on.
#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct World {
    res: Resources,
    sdk: aws_config::SdkConfig,
    app: feedback::App,
    store: DynamoStore,
    clock: Arc<TestClock>,
}

async fn world(test: &str) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let env: HashMap<String, String> = HashMap::from([
        ("MAILROOM_TABLE".to_owned(), res.table.clone()),
        (
            "MAILROOM_FEEDBACK_QUEUE_URL".to_owned(),
            res.feedback_queue_url.clone(),
        ),
        (
            "MAILROOM_FEEDBACK_DLQ_URL".to_owned(),
            res.feedback_dlq_url.clone(),
        ),
        ("MAILROOM_WEBHOOK_TIMEOUT_SECS".to_owned(), "5".to_owned()),
        (
            "MAILROOM_ALLOW_PRIVATE_TARGETS".to_owned(),
            "true".to_owned(),
        ),
        ("MAILROOM_ALLOW_HTTP_TARGETS".to_owned(), "true".to_owned()),
    ]);
    let config = feedback::Config::from_lookup(|name| env.get(name).cloned()).unwrap();
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let app = feedback::App::with_clock(&config, &sdk, clock.clone()).unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    World {
        res,
        sdk,
        app,
        store,
        clock,
    }
}

fn sample(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo(&format!("events/{name}"))).unwrap()).unwrap()
}

/// The SES notification inside a sample SNS event.
fn notification(event: &Value) -> Value {
    serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap()
}

/// An SNS event around `message`, with its own SNS message id.
fn sns_event(message: &Value) -> Value {
    let mut event = sample("sns-delivery.json");
    event["Records"][0]["Sns"]["Message"] = Value::String(message.to_string());
    event["Records"][0]["Sns"]["MessageId"] = Value::String(unique("sns"));
    event
}

/// A transient bounce of `recipient` with its own feedback id.
fn transient_bounce(recipient: &str) -> Value {
    let mut message = notification(&sample("sns-bounce-transient.json"));
    message["bounce"]["feedbackId"] = Value::String(unique("feedback"));
    // Only bounces of the last 7 days count; the sample's date is fixed.
    message["bounce"]["timestamp"] = Value::String(Utc::now().to_rfc3339());
    message["bounce"]["bouncedRecipients"][0]["emailAddress"] = Value::String(recipient.to_owned());
    sns_event(&message)
}

fn delivery(recipient: &str) -> Value {
    let mut message = notification(&sample("sns-delivery.json"));
    message["delivery"]["recipients"] = serde_json::json!([recipient]);
    sns_event(&message)
}

impl World {
    async fn invoke(&self, payload: Value) -> Result<Value, feedback::HandlerError> {
        feedback::handle(&self.app, LambdaEvent::new(payload, Context::default())).await
    }

    /// The bodies waiting in the feedback dead-letter queue.
    async fn dead_letters(&self) -> Vec<String> {
        aws_sdk_sqs::Client::new(&self.sdk)
            .receive_message()
            .queue_url(&self.res.feedback_dlq_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.body)
            .collect()
    }

    async fn suppressed(&self, address: &str) -> Option<mailroom::feedback::Suppression> {
        self.store.suppression(address).await.unwrap()
    }

    /// The outbound record of the samples' message, sent by `route`.
    async fn sent(&self, route: Option<&str>) {
        let mut record = Outbound::sent(SES_ID, Utc::now() - Duration::minutes(5), 60);
        record.message_id = Some("inbound-4821".to_owned());
        record.route = route.map(str::to_owned);
        record.to = vec![
            "ana@example.net".to_owned(),
            "bruno@example.net".to_owned(),
            "carla@example.net".to_owned(),
        ];
        record.version = 1;
        assert!(self.store.put_outbound(&record, None).await.unwrap());
    }

    async fn record(&self) -> Outbound {
        self.store.outbound(SES_ID).await.unwrap().unwrap()
    }

    async fn events_route(&self, pattern: &str, events_url: &str) {
        let mut route = Route::new(pattern.parse().unwrap());
        route.webhook = Some(WebhookTarget {
            url: "https://app.example.com/mail".to_owned(),
            format: Format::Json,
            secrets: vec![WebhookSecret::parse(SECRET).unwrap()],
            attachments: AttachmentMode::Inline,
            disabled: None,
        });
        route.forward = vec!["ana@example.net".to_owned()];
        route.events = Some(events_url.to_owned());
        self.store.put_route(&route).await.unwrap();
    }
}

#[tokio::test]
async fn every_sample_goes_through_the_real_handler() {
    let w = world("fb-samples").await;
    w.sent(None).await;
    let mut names: Vec<String> = std::fs::read_dir(repo("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("sns-") || n.starts_with("sqs-event-") || n == "sqs-feedback-batch.json"
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 16, "{names:?}");
    for name in &names {
        let response = w
            .invoke(sample(name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.starts_with("sqs-") {
            assert!(failures(&response).is_empty(), "{name}: {response}");
        }
    }
    // Bounce, complaint and delivery samples were all about the one record.
    let record = w.record().await;
    let events: Vec<&str> = record.history.iter().map(|e| e.event.as_str()).collect();
    for event in [
        "bounce",
        "complaint",
        "delivery",
        "delivery_delay",
        "send",
        "open",
        "click",
    ] {
        assert!(events.contains(&event), "{event} in {events:?}");
    }
    assert_eq!(record.status, OutboundStatus::Complained);
}

#[tokio::test]
async fn a_permanent_bounce_and_a_complaint_suppress() {
    let w = world("fb-hard").await;
    // No outbound record: a message sent before Mailroom still updates the list.
    w.invoke(sample("sns-bounce-permanent.json")).await.unwrap();
    let ana = w
        .suppressed("ana@example.net")
        .await
        .expect("ana is suppressed");
    assert_eq!(ana.reason, SuppressionReason::Bounce);
    assert!(ana.feedback_id.is_some());
    assert_eq!(ana.ses_message_id.as_deref(), Some(SES_ID));

    w.invoke(sample("sns-complaint.json")).await.unwrap();
    let complained = notification(&sample("sns-complaint.json"));
    let address = complained["complaint"]["complainedRecipients"][0]["emailAddress"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert_eq!(
        w.suppressed(&address).await.expect("suppressed").reason,
        SuppressionReason::Complaint
    );
    // The transient sample alone suppresses nobody.
    w.invoke(sample("sns-bounce-transient.json")).await.unwrap();
    let bruno = notification(&sample("sns-bounce-transient.json"))["bounce"]["bouncedRecipients"]
        [0]["emailAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(w.suppressed(&bruno).await.is_none());
}

#[tokio::test]
async fn three_transient_bounces_suppress_two_do_not_and_a_delivery_resets() {
    let w = world("fb-soft").await;
    for _ in 0..2 {
        w.invoke(transient_bounce("two@example.net")).await.unwrap();
    }
    assert!(
        w.suppressed("two@example.net").await.is_none(),
        "two do not"
    );

    let third = transient_bounce("three@example.net");
    w.invoke(transient_bounce("three@example.net"))
        .await
        .unwrap();
    w.invoke(transient_bounce("three@example.net"))
        .await
        .unwrap();
    // The same notification twice counts once.
    w.invoke(third.clone()).await.unwrap();
    w.invoke(third).await.unwrap();
    let three = w.suppressed("three@example.net").await.expect("three do");
    assert_eq!(three.reason, SuppressionReason::Bounce);
    assert!(three.detail.unwrap().contains("3 transient bounces"));

    w.invoke(transient_bounce("reset@example.net"))
        .await
        .unwrap();
    w.invoke(transient_bounce("reset@example.net"))
        .await
        .unwrap();
    w.invoke(delivery("reset@example.net")).await.unwrap();
    w.invoke(transient_bounce("reset@example.net"))
        .await
        .unwrap();
    assert!(
        w.suppressed("reset@example.net").await.is_none(),
        "a delivery started the count again"
    );
    w.invoke(transient_bounce("reset@example.net"))
        .await
        .unwrap();
    w.invoke(transient_bounce("reset@example.net"))
        .await
        .unwrap();
    assert!(w.suppressed("reset@example.net").await.is_some());
}

#[tokio::test]
async fn a_duplicate_adds_no_second_history_entry() {
    let w = world("fb-dup").await;
    w.sent(None).await;
    let bounce = sample("sns-bounce-permanent.json");
    w.invoke(bounce.clone()).await.unwrap();
    let first = w.record().await;
    assert_eq!(first.status, OutboundStatus::Bounced);
    assert_eq!(first.history.len(), 1);
    let entry = &first.history[0];
    assert_eq!(entry.event, "bounce");
    assert_eq!(entry.recipient.as_deref(), Some("ana@example.net"));
    assert_eq!(entry.smtp_status.as_deref(), Some("5.1.1"));
    assert!(entry.diagnostic.as_deref().unwrap().contains("550"));

    w.invoke(bounce).await.unwrap();
    let second = w.record().await;
    assert_eq!(second.history, first.history);
    assert_eq!(second.version, first.version, "nothing was written");
    assert!(
        second.expires_at > Utc::now().timestamp() + 59 * 86_400,
        "kept 60 days"
    );
}

#[tokio::test]
async fn the_route_events_url_gets_a_signed_post_retried_with_the_same_id() {
    let w = world("fb-hook").await;
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "busy")]);
    w.events_route("support@mail.example.com", &receiver.url("/events"))
        .await;
    w.sent(Some("support@mail.example.com")).await;

    // Through the queue's shape: the 503 leaves the record failed so it comes back.
    let mut batch = sample("sqs-event-bounce.json");
    // The 72-hour give-up counts from the first receive; the sample's is days old.
    batch["Records"][0]["attributes"]["ApproximateFirstReceiveTimestamp"] =
        Value::String(Utc::now().timestamp_millis().to_string());
    let response = w.invoke(batch.clone()).await.unwrap();
    assert_eq!(failures(&response).len(), 1, "{response}");
    let after_first = w.record().await;
    assert_eq!(after_first.history.len(), 1);
    assert!(after_first.events_posted.is_empty());

    // Back before the 5-second wait is over (SQS returns a message early when a wait passes its
    // 12-hour cap): no POST, and it stays due.
    batch["Records"][0]["attributes"]["ApproximateReceiveCount"] = Value::String("2".to_owned());
    let response = w.invoke(batch.clone()).await.unwrap();
    assert_eq!(failures(&response).len(), 1, "{response}");
    assert_eq!(
        receiver.requests().len(),
        1,
        "nothing posted before it is due"
    );
    let pending = &w.record().await.events_pending;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);

    w.clock.advance(Duration::seconds(6));
    batch["Records"][0]["attributes"]["ApproximateReceiveCount"] = Value::String("3".to_owned());
    let response = w.invoke(batch.clone()).await.unwrap();
    assert!(failures(&response).is_empty(), "{response}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    let secret = WebhookSecret::parse(SECRET).unwrap();
    assert!(requests[1].verifies(std::slice::from_ref(&secret)));
    let body = requests[1].json();
    assert_eq!(body["type"], "message.bounced");
    assert_eq!(body["data"]["message_id"], "inbound-4821");
    assert_eq!(body["data"]["ses_message_id"], SES_ID);
    assert!(body["data"]["recipient"].as_str().unwrap().contains('@'));
    assert!(body["data"]["bounce_type"].is_string());
    assert!(body["data"]["smtp_status"].is_string());
    assert!(body["timestamp"].is_string());

    let record = w.record().await;
    assert_eq!(record.history.len(), 1, "the retry added no history");
    assert_eq!(record.events_posted.len(), 1);
    assert!(record.events_pending.is_empty());
    // Once posted, a third delivery of the same notification posts nothing.
    w.invoke(batch.clone()).await.unwrap();
    assert_eq!(receiver.requests().len(), 2);

    // A delivery notice is posted as message.delivered.
    w.invoke(sample("sns-delivery.json")).await.unwrap();
    let last = receiver.requests().pop().unwrap().json();
    assert_eq!(last["type"], "message.delivered");
}

#[tokio::test]
async fn confirmations_and_garbage_are_acknowledged_and_never_fail_the_others() {
    let w = world("fb-garbage").await;
    let receiver = Receiver::start().await;
    // A SubscribeURL is never fetched.
    let mut confirmation = sample("sns-subscription-confirmation.json");
    confirmation["Records"][0]["Sns"]["SubscribeUrl"] = Value::String(receiver.url("/subscribe"));
    confirmation["Records"][0]["Sns"]["SubscribeURL"] = Value::String(receiver.url("/subscribe"));
    w.invoke(confirmation).await.unwrap();
    assert!(receiver.requests().is_empty());

    let batch = sample("sqs-feedback-batch.json");
    let response = w.invoke(batch.clone()).await.unwrap();
    assert!(failures(&response).is_empty(), "{response}");
    assert!(
        w.suppressed("ana@example.net").await.is_some(),
        "the bounce beside the garbage was applied"
    );
    // The unreadable record is not dropped: it waits in the dead-letter queue, whose alarm fires.
    let garbage_bodies: Vec<String> = batch["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_owned())
        .filter(|body| mailroom::feedback::notification::read_envelope(body).is_err())
        .collect();
    assert_eq!(
        garbage_bodies.len(),
        1,
        "the sample batch holds one unreadable body"
    );
    assert_eq!(w.dead_letters().await, garbage_bodies);

    // Invoked directly by SNS (no queue), an unreadable notification is a failed invocation.
    let mut garbage = sample("sns-delivery.json");
    garbage["Records"][0]["Sns"]["Message"] =
        Value::String("{\"notificationType\": \"Bounce\"".to_owned());
    let error = w.invoke(garbage).await.unwrap_err();
    assert!(
        matches!(error, feedback::HandlerError::Permanent(_)),
        "{error}"
    );
    let mut unknown = sample("sns-delivery.json");
    unknown["Records"][0]["Sns"]["Message"] = Value::String(
        r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"ok"}"#.to_owned(),
    );
    w.invoke(unknown).await.unwrap();
}

#[tokio::test]
async fn an_event_post_failing_72_hours_after_the_first_receive_is_given_up() {
    let w = world("fb-giveup").await;
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "still busy")]);
    w.events_route("support@mail.example.com", &receiver.url("/events"))
        .await;
    w.sent(Some("support@mail.example.com")).await;
    let mut batch = sample("sqs-event-bounce.json");
    batch["Records"][0]["attributes"]["ApproximateFirstReceiveTimestamp"] = Value::String(
        (Utc::now() - Duration::hours(73))
            .timestamp_millis()
            .to_string(),
    );
    let response = w.invoke(batch.clone()).await.unwrap();
    assert!(failures(&response).is_empty(), "acknowledged: {response}");
    assert_eq!(receiver.requests().len(), 1, "one last attempt");
    assert_eq!(w.record().await.events_posted.len(), 1, "and marked done");
    // The give-up ends it in the dead-letter queue, where the alarm says so.
    assert_eq!(
        w.dead_letters().await,
        vec![batch["Records"][0]["body"].as_str().unwrap().to_owned()]
    );
}
