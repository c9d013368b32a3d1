//! Delivery at the limits AWS enforces: SQS's 12-hour visibility cap counted from the receive, a 72-hour
//! outage, the invocation's deadline, SES's setup message, and an AccessDenied from SES. The real handler,
//! moto's server (which enforces the visibility cap) through the real SDK, and a real HTTP receiver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use integration_tests::{
    Receiver, Reply, failures, inbound_settings, receive_as_event, resources, s3, sdk,
    store_inbound, unique,
};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::format::Format;
use mailroom::ports::{Clock, RecordStore, RouteStore};
use mailroom::record::{Delivery, DeliveryKey, Status};
use mailroom::route::{AttachmentMode, Route, WebhookTarget};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use mailroom_aws::sqs::{MAX_RECEIVE_COUNT, VISIBILITY_MARGIN};
use serde_json::{Value, json};

/// A clock the test moves on, to see days pass in seconds.
#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct World {
    sdk: aws_config::SdkConfig,
    res: Resources,
    app: inbound::App,
    store: DynamoStore,
    clock: Arc<TestClock>,
}

async fn world(test: &str, settings: &[(&str, &str)]) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let env = inbound_settings(&res, settings);
    let config = inbound::Config::from_lookup(|name| env.get(name).cloned()).unwrap();
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let app = inbound::App::with_clock(config, &sdk, clock.clone())
        .await
        .unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    World {
        sdk,
        res,
        app,
        store,
        clock,
    }
}

impl World {
    async fn route(&self, pattern: &str, url: &str) {
        let mut route = Route::new(pattern.parse().unwrap());
        route.webhook = Some(WebhookTarget {
            url: url.to_owned(),
            format: Format::Json,
            secrets: Vec::new(),
            attachments: AttachmentMode::Inline,
            disabled: None,
        });
        self.store.put_route(&route).await.unwrap();
    }

    async fn invoke(&self, payload: Value) -> Value {
        inbound::handle(&self.app, LambdaEvent::new(payload, Context::default()))
            .await
            .unwrap()
    }

    /// Invokes with Lambda's deadline `left` from now.
    async fn invoke_until(&self, payload: Value, left: Duration) -> Value {
        let mut context = Context::default();
        context.deadline =
            (Utc::now() + chrono::Duration::from_std(left).unwrap()).timestamp_millis() as u64;
        inbound::handle(&self.app, LambdaEvent::new(payload, context))
            .await
            .unwrap()
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    async fn send(&self, body: &str) {
        self.sqs()
            .send_message()
            .queue_url(&self.res.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    async fn receive(&self) -> Option<Value> {
        receive_as_event(&self.sqs(), &self.res.queue_url, 10).await
    }

    /// Does what Lambda's poller does with the answer: deletes every record not reported failed.
    async fn acknowledge(&self, event: &Value, response: &Value) {
        let failed = failures(response);
        for record in event["Records"].as_array().unwrap() {
            if !failed.contains(&record["messageId"].as_str().unwrap().to_owned()) {
                self.sqs()
                    .delete_message()
                    .queue_url(&self.res.queue_url)
                    .receipt_handle(record["receiptHandle"].as_str().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Makes a hidden message visible at once, as if its wait were over.
    async fn bring_back(&self, event: &Value) {
        for record in event["Records"].as_array().unwrap() {
            self.sqs()
                .change_message_visibility()
                .queue_url(&self.res.queue_url)
                .receipt_handle(record["receiptHandle"].as_str().unwrap())
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
    }

    async fn queue_counts(&self, queue: &str) -> (u64, u64) {
        let attributes = self
            .sqs()
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let count = |name: QueueAttributeName| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    async fn record(&self, message_id: &str, recipient: &str, url: &str) -> Option<Delivery> {
        let key = DeliveryKey::new(message_id, recipient, &format!("webhook {url}"));
        self.store.get(&key).await.unwrap()
    }
}

const RECIPIENT: &str = "support@mail.example.com";

fn mail(subject: &str) -> Vec<u8> {
    format!(
        "From: Ana <ana@sender.example>\r\nTo: {RECIPIENT}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@sender.example>\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

/// The SNS-wrapped SES notification of a stored message, as the default wiring delivers it.
fn ses_notification(bucket: &str, message_id: &str) -> String {
    let ses = json!({
        "notificationType": "Received",
        "mail": {"timestamp": Utc::now().to_rfc3339(), "source": "ana@sender.example",
                 "messageId": message_id, "destination": [RECIPIENT]},
        "receipt": {"recipients": [RECIPIENT],
                    "action": {"type": "S3", "bucketName": bucket, "objectKeyPrefix": "inbound/",
                               "objectKey": format!("inbound/{message_id}")}}
    });
    json!({"Type": "Notification", "MessageId": unique("sns"), "Message": ses.to_string()})
        .to_string()
}

#[tokio::test]
async fn a_day_long_retry_after_stays_hidden_and_an_early_return_posts_nothing() {
    let w = world("retry-after", &[]).await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/hook");
    receiver.reply([Reply::new(503, "maintenance").with_header("Retry-After", "86400")]);
    w.route("*@mail.example.com", &url).await;
    // A queue whose own visibility timeout is 2 s: a message hidden longer was hidden by the handler.
    w.sqs()
        .set_queue_attributes()
        .queue_url(&w.res.queue_url)
        .attributes(QueueAttributeName::VisibilityTimeout, "2")
        .send()
        .await
        .unwrap();
    let (id, _) = store_inbound(&w.sdk, &w.res.bucket, mail("day-long")).await;
    w.send(&ses_notification(&w.res.bucket, &id)).await;

    let event = w.receive().await.expect("the notification is visible");
    let response = w.invoke(event.clone()).await;
    assert_eq!(
        failures(&response).len(),
        1,
        "reported failed: it must come back"
    );
    assert_eq!(receiver.requests().len(), 1);
    let record = w.record(&id, RECIPIENT, &url).await.unwrap();
    assert_eq!(record.status, Status::Retrying);
    let due = record.next_attempt_at.unwrap();
    assert!(
        (due - Utc::now()).num_hours() >= 23,
        "the target's Retry-After is honoured: due {due}"
    );
    // SQS refuses a visibility past 12 hours from the receive (moto too): the change must have been
    // accepted, so the message is hidden, not back at the queue's own timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(w.receive().await.is_none(), "hidden, not receivable");
    assert_eq!(
        w.queue_counts(&w.res.queue_url).await,
        (0, 1),
        "still in the queue"
    );

    // Back early, as it will be after at most 11 h 45 min: hidden again, nothing posted, no attempt.
    w.bring_back(&event).await;
    let early = w.receive().await.expect("visible again");
    let response = w.invoke(early).await;
    assert_eq!(failures(&response).len(), 1);
    assert_eq!(
        receiver.requests().len(),
        1,
        "no POST before the attempt is due"
    );
    let record = w.record(&id, RECIPIENT, &url).await.unwrap();
    assert_eq!(record.attempts, 1);
    assert_eq!(record.status, Status::Retrying);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(w.receive().await.is_none(), "hidden again");
    assert_eq!(w.queue_counts(&w.res.queue_url).await, (0, 1));
}

#[tokio::test]
async fn a_72_hour_outage_ends_failed_by_the_give_up_not_by_the_receive_count() {
    let w = world("outage", &[]).await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/hook");
    receiver.reply((0..40).map(|_| Reply::new(503, "down")));
    w.route("*@mail.example.com", &url).await;
    let (id, _) = store_inbound(&w.sdk, &w.res.bucket, mail("outage")).await;
    w.send(&ses_notification(&w.res.bucket, &id)).await;

    let longest_hide =
        chrono::Duration::from_std(Duration::from_secs(12 * 3600) - VISIBILITY_MARGIN).unwrap();
    let mut receives = 0;
    let mut last_receive_count;
    loop {
        let event = w
            .receive()
            .await
            .expect("the message is still in the queue");
        receives += 1;
        last_receive_count = event["Records"][0]["attributes"]["ApproximateReceiveCount"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap();
        let posts_before = receiver.requests().len();
        let response = w.invoke(event.clone()).await;
        w.acknowledge(&event, &response).await;
        let record = w.record(&id, RECIPIENT, &url).await.unwrap();
        if record.status != Status::Retrying {
            assert!(failures(&response).is_empty(), "given up: acknowledged");
            assert_eq!(record.status, Status::Failed);
            break;
        }
        assert_eq!(failures(&response).len(), 1);
        // SQS brings the message back when its wait is over, or when the longest hide ends first.
        let now = w.clock.now();
        let due = record.next_attempt_at.unwrap();
        let back_at = due.min(now + longest_hide);
        if back_at < due {
            assert!(receiver.requests().len() <= posts_before + 1);
        }
        w.clock.set(back_at);
        w.bring_back(&event).await;
        assert!(receives < 40, "runaway");
    }
    let record = w.record(&id, RECIPIENT, &url).await.unwrap();
    assert_eq!(record.attempts, 10, "every attempt of the schedule");
    assert!(
        record
            .error
            .as_deref()
            .unwrap()
            .starts_with("gave up after 10 attempts over 72 hours"),
        "{record:?}"
    );
    assert_eq!(
        receiver.requests().len(),
        10,
        "one POST per attempt, none on an early return"
    );
    assert_eq!(receives, 13, "10 attempts and 3 early returns");
    assert!(last_receive_count < MAX_RECEIVE_COUNT);
    // Dead-lettered by the give-up itself (the alarm's queue), gone from the inbound queue.
    assert_eq!(w.queue_counts(&w.res.queue_url).await, (0, 0));
    assert_eq!(w.queue_counts(&w.res.dlq_url).await.0, 1);
    let elapsed = w.clock.now() - record.received_at;
    assert!(elapsed >= chrono::Duration::hours(72), "{elapsed}");
}

/// A message of about `size` bytes: a short text and a large attachment.
fn large_mail(subject: &str, size: usize) -> Vec<u8> {
    use base64::Engine;
    let payload = vec![b'x'; size * 3 / 4];
    let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
    let mut lines = String::with_capacity(encoded.len() + encoded.len() / 38);
    for chunk in encoded.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).unwrap());
        lines.push_str("\r\n");
    }
    format!(
        "From: ana@sender.example\r\nTo: {RECIPIENT}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
         --b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{lines}--b--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_slow_target_hands_the_rest_of_the_batch_back_with_records_intact() {
    // 128 MB of memory: the large message is handled alone, the two small ones after it.
    let w = world("slow", &[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]).await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/hook");
    receiver.reply([Reply::new(200, "late").after(Duration::from_secs(8))]);
    w.route("*@mail.example.com", &url).await;
    let (large, _) = store_inbound(&w.sdk, &w.res.bucket, large_mail("large", 30_000_000)).await;
    let (small_a, _) = store_inbound(&w.sdk, &w.res.bucket, mail("small-a")).await;
    let (small_b, _) = store_inbound(&w.sdk, &w.res.bucket, mail("small-b")).await;
    for id in [&large, &small_a, &small_b] {
        w.send(&ses_notification(&w.res.bucket, id)).await;
    }
    let mut event = w.receive().await.unwrap();
    while event["Records"].as_array().unwrap().len() < 3 {
        let more = w.receive().await.unwrap();
        let records = event["Records"].as_array_mut().unwrap();
        records.extend(more["Records"].as_array().unwrap().iter().cloned());
    }
    // Put the large message first, as a batch may well have it.
    let records = event["Records"].as_array_mut().unwrap();
    records.sort_by_key(|r| !r["body"].as_str().unwrap().contains(&large));

    // 14 s left: time for one 5-second attempt after reading the large message (an attempt needs 5 s and
    // the 5-second reserve), none for another after it.
    let response = w.invoke_until(event, Duration::from_secs(14)).await;
    assert_eq!(failures(&response).len(), 3, "all three come back");
    let posts = receiver.requests();
    assert_eq!(posts.len(), 1, "only the large message was attempted");
    let record = w.record(&large, RECIPIENT, &url).await.unwrap();
    assert_eq!(record.status, Status::Retrying);
    assert_eq!(record.attempts, 1);
    assert!(
        record.error.as_deref().unwrap().contains("timed out"),
        "{record:?}"
    );
    for id in [&small_a, &small_b] {
        assert!(
            w.record(id, RECIPIENT, &url).await.is_none(),
            "handed back untouched: no record, no attempt counted"
        );
    }
    // Handed back for a short wait, not hidden for a retry's.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let back = w
        .receive()
        .await
        .expect("the handed-back messages return within seconds");
    let bodies: Vec<&str> = back["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap())
        .collect();
    assert!(
        bodies.iter().any(|b| b.contains(&small_a)) || bodies.iter().any(|b| b.contains(&small_b))
    );
    let response = w.invoke(back.clone()).await;
    w.acknowledge(&back, &response).await;
    for id in [&small_a, &small_b] {
        if bodies.iter().any(|b| b.contains(id.as_str())) {
            let record = w.record(id, RECIPIENT, &url).await.unwrap();
            assert_eq!(record.status, Status::Delivered);
            assert_eq!(record.attempts, 1);
        }
    }
}

#[tokio::test]
async fn ses_setup_notification_posts_nothing_and_records_nothing() {
    let w = world("setup-notice", &[]).await;
    let receiver = Receiver::start().await;
    w.route("*", &receiver.url("/hook")).await;
    // What SES writes when the receipt rule is created, and the S3 event announcing it.
    s3(&w.sdk)
        .put_object()
        .bucket(&w.res.bucket)
        .key("inbound/AMAZON_SES_SETUP_NOTIFICATION")
        .body(
            b"Return-Path: <>\r\nSubject: Amazon SES Setup Notification\r\n\r\nThis is a test.\r\n"
                .to_vec()
                .into(),
        )
        .send()
        .await
        .unwrap();
    let s3_event = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "awsRegion": "eu-west-1", "eventTime": Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": w.res.bucket}, "object": {"key": "inbound/AMAZON_SES_SETUP_NOTIFICATION", "size": 80}}}]});
    assert_eq!(w.invoke(s3_event.clone()).await, Value::Null);
    // Through the queue in both trigger modes: the S3 event, and SES's notification of it.
    w.send(&s3_event.to_string()).await;
    w.send(&ses_notification(
        &w.res.bucket,
        "AMAZON_SES_SETUP_NOTIFICATION",
    ))
    .await;
    let mut seen = 0;
    while let Some(event) = w.receive().await {
        seen += event["Records"].as_array().unwrap().len();
        let response = w.invoke(event.clone()).await;
        assert!(failures(&response).is_empty(), "acknowledged");
        w.acknowledge(&event, &response).await;
    }
    assert_eq!(seen, 2);
    assert!(receiver.requests().is_empty(), "no POST");
    let items = aws_sdk_dynamodb::Client::new(&w.sdk)
        .query()
        .table_name(&w.res.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(
                "MSG#AMAZON_SES_SETUP_NOTIFICATION".to_owned(),
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(items.count, 0, "no record");
}

#[tokio::test]
async fn an_object_over_the_size_limit_is_recorded_failed_without_being_read() {
    let w = world("oversize", &[]).await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/hook");
    w.route("*@mail.example.com", &url).await;
    let mut oversized = mail("oversized");
    oversized.resize(mailroom::mail::MAX_MESSAGE_BYTES + 1, b'x');
    let (id, _) = store_inbound(&w.sdk, &w.res.bucket, oversized).await;
    // SES's notification says no size: the function asks S3 for it before reading.
    w.send(&ses_notification(&w.res.bucket, &id)).await;
    let event = w.receive().await.unwrap();
    let response = w.invoke(event.clone()).await;
    assert!(failures(&response).is_empty(), "recorded, not retried");
    assert!(receiver.requests().is_empty());
    let record = w
        .store
        .get(&DeliveryKey::new(&id, "", ""))
        .await
        .unwrap()
        .expect("a failure record for the whole message");
    assert_eq!(record.status, Status::Failed);
    let error = record.error.unwrap();
    assert!(
        error.contains("over the") && error.contains("not read"),
        "{error}"
    );
    assert!(
        s3(&w.sdk)
            .head_object()
            .bucket(&w.res.bucket)
            .key(format!("inbound/{id}"))
            .send()
            .await
            .is_ok(),
        "the raw mail stays"
    );
}

#[tokio::test]
async fn a_forward_ses_refuses_with_access_denied_is_rejected_at_once() {
    use mailroom::mail::envelope::KnownEnvelope;
    use mailroom::ports::{MailLocation, SystemClock};
    use mailroom::usecases::inbound::{Inbound, InboundConfig, Outcome, Received};
    use mailroom_aws::ses::SesSender;
    use mailroom_http::{HttpClient, TargetPolicy};
    use mailroom_local::files::LocalMailStore;
    use mailroom_local::sqlite::SqliteStore;

    // SES as IAM answers a send from an address outside the stack's Domains (restJson1's error shape).
    let ses = Receiver::start().await;
    ses.reply([Reply::new(
        403,
        r#"{"message":"User `arn:aws:sts::123456789012:assumed-role/mailroom-inbound/mailroom-inbound` is not authorized to perform `ses:SendRawEmail` on resource `arn:aws:ses:eu-west-1:123456789012:identity/Example.com`"}"#,
    )
    .with_header("x-amzn-ErrorType", "AccessDeniedException")
    .with_header("Content-Type", "application/json")]);
    let sdk = sdk().await;
    let client = aws_sdk_sesv2::Client::from_conf(
        aws_sdk_sesv2::config::Builder::from(&sdk)
            .endpoint_url(&ses.base)
            .build(),
    );
    let root = std::env::temp_dir().join(unique("mailroom-access-denied"));
    let mail = LocalMailStore::new(&root);
    mail.put("inbound/denied-1", &mail_bytes()).unwrap();
    let store = SqliteStore::in_memory().unwrap();
    let mut route = Route::new(RECIPIENT.parse().unwrap());
    route.forward = vec!["ana@example.net".to_owned()];
    route.forward_from = Some("Forward@Example.com".to_owned());
    store.put_route(&route).await.unwrap();
    let inbound = Inbound::new(
        mail,
        store.clone(),
        HttpClient::new(Duration::from_secs(5), TargetPolicy::STRICT).unwrap(),
        SesSender::new(client, Some("mailroom-sending".to_owned())),
        SystemClock,
        InboundConfig::with_defaults(60),
    );
    let received = Received {
        location: MailLocation {
            bucket: "local".to_owned(),
            key: "inbound/denied-1".to_owned(),
        },
        received_at: Utc::now(),
        first_seen: Utc::now(),
        known: KnownEnvelope {
            recipients: Some(vec![RECIPIENT.to_owned()]),
            ..KnownEnvelope::default()
        },
        size: None,
    };
    assert_eq!(
        inbound.process(&received).await.unwrap(),
        Outcome::Done,
        "not retried"
    );
    let record = store
        .get(&DeliveryKey::new(
            "denied-1",
            RECIPIENT,
            "forward ana@example.net",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, Status::Rejected);
    assert_eq!(record.attempts, 1);
    let error = record.error.unwrap();
    assert!(
        error.starts_with("SES AccessDeniedException: User"),
        "SES's words: {error}"
    );
    // The address went out lower-case, as the stack's IAM condition compares it.
    let sent = &ses.requests()[0];
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["FromEmailAddress"], "forward@example.com");
    let _ = std::fs::remove_dir_all(&root);
}

fn mail_bytes() -> Vec<u8> {
    mail("denied")
}

#[tokio::test]
async fn mail_without_header_fields_keeps_its_text() {
    let w = world("headerless", &[]).await;
    let receiver = Receiver::start().await;
    w.route("*@mail.example.com", &receiver.url("/hook")).await;
    let cases = [
        // The sender wrote no header field: SES's trace headers run straight into the text.
        (
            "ses-trace-then-text.eml",
            "missing_header_separator",
            "my order 1234 never arrived",
        ),
        // No header field at all (put by hand, or a stray upload).
        (
            "no-header-fields.eml",
            "no_headers",
            "Please find the meter reading below.",
        ),
    ];
    for (file, warning, text) in cases {
        let raw = std::fs::read(integration_tests::repo(&format!(
            "tests/golden/cases/{file}"
        )))
        .unwrap();
        let (id, _) = store_inbound(&w.sdk, &w.res.bucket, raw).await;
        w.send(&ses_notification(&w.res.bucket, &id)).await;
        let event = w.receive().await.unwrap();
        let response = w.invoke(event.clone()).await;
        assert!(failures(&response).is_empty(), "{file}: delivered");
        w.acknowledge(&event, &response).await;
        let post = receiver.requests().pop().unwrap().json();
        assert!(
            post["plain"].as_str().unwrap().contains(text),
            "{file}: {post}"
        );
        assert!(
            post["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["code"] == warning),
            "{file}: {post}"
        );
        let record = w
            .record(&id, RECIPIENT, &receiver.url("/hook"))
            .await
            .unwrap();
        assert_eq!(record.status, Status::Delivered);
    }
    let last = receiver.requests().pop().unwrap().json();
    assert_eq!(last["headers"], json!({}));
}
