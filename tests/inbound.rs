//! The inbound function end to end: the real handler, moto's server through the real AWS SDK, and a real
//! HTTP receiver on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{
    Receiver, Reply, failures, inbound_settings, receive_as_event, repo, resources, s3, sdk, unique,
};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::format::Format;
use mailroom::ports::RouteStore;
use mailroom::route::{AttachmentMode, Redact, Route, WebhookSecret, WebhookTarget};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use serde_json::{Value, json};

struct World {
    sdk: aws_config::SdkConfig,
    res: Resources,
    app: inbound::App,
    store: DynamoStore,
}

async fn world(test: &str, settings: &[(&str, &str)]) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let env = inbound_settings(&res, settings);
    let config = inbound::Config::from_lookup(|name| env.get(name).cloned()).unwrap();
    let app = inbound::App::new(config, &sdk).await.unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    World {
        sdk,
        res,
        app,
        store,
    }
}

impl World {
    async fn route(&self, pattern: &str, url: &str, secrets: &[WebhookSecret], redact: &[Redact]) {
        let mut route = Route::new(pattern.parse().unwrap());
        route.webhook = Some(WebhookTarget {
            url: url.to_owned(),
            format: Format::Json,
            secrets: secrets.to_vec(),
            attachments: AttachmentMode::Inline,
            disabled: None,
        });
        route.redact = redact.to_vec();
        self.store.put_route(&route).await.unwrap();
    }

    async fn put_mail(&self, key: &str, bytes: Vec<u8>) {
        s3(&self.sdk)
            .put_object()
            .bucket(&self.res.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .unwrap();
    }

    async fn object_exists(&self, key: &str) -> bool {
        s3(&self.sdk)
            .head_object()
            .bucket(&self.res.bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    async fn invoke(&self, payload: Value) -> Result<Value, inbound::HandlerError> {
        inbound::handle(&self.app, LambdaEvent::new(payload, Context::default())).await
    }

    /// Every record item of a message, as stored.
    async fn items(&self, message_id: &str) -> Vec<HashMap<String, AttributeValue>> {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .query()
            .table_name(&self.res.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("MSG#{message_id}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }

    /// Every record of a message, as JSON.
    async fn records(&self, message_id: &str) -> Vec<Value> {
        let mut records: Vec<Value> = self
            .items(message_id)
            .await
            .iter()
            .map(|item| {
                serde_json::to_value(
                    mailroom_aws::item::from_item::<mailroom::record::Delivery>(item).unwrap(),
                )
                .unwrap()
            })
            .collect();
        records.sort_by_key(|r| r["recipient"].as_str().unwrap_or("").to_owned());
        records
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// Sends a body to the inbound queue and receives it back as Lambda would get it.
    async fn through_queue(&self, body: &str) -> Value {
        self.sqs()
            .send_message()
            .queue_url(&self.res.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
        self.receive().await.expect("the message is visible")
    }

    /// Receives one message from the inbound queue as an SQS event, or `None` when none is visible.
    async fn receive(&self) -> Option<Value> {
        receive_as_event(&self.sqs(), &self.res.queue_url, 1).await
    }
}

fn sample() -> Vec<u8> {
    std::fs::read(repo("events/sample.eml")).unwrap()
}

/// When the test's mail was received: a minute ago, so its records are well within their retention.
fn received_at() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    (Utc::now() - chrono::Duration::minutes(1)).trunc_subsecs(3)
}

fn s3_event(bucket: &str, encoded_key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": received_at().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": encoded_key, "size": 1}}
    }]})
}

fn ses_notification(bucket: &str, key: &str, recipients: &[&str], virus: &str) -> String {
    let message_id = key.rsplit('/').next().unwrap();
    let ses = json!({
        "notificationType": "Received",
        "mail": {"timestamp": received_at().to_rfc3339(), "source": "ana.lima@sender.example",
                 "messageId": message_id, "destination": recipients},
        "receipt": {"recipients": recipients,
                    "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": virus},
                    "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"},
                    "dmarcVerdict": {"status": "PASS"},
                    "action": {"type": "S3", "bucketName": bucket, "objectKeyPrefix": "inbound/", "objectKey": key}}
    });
    json!({"Type": "Notification", "MessageId": unique("sns"), "Message": ses.to_string()})
        .to_string()
}

#[tokio::test]
async fn an_s3_event_becomes_a_signed_post_and_a_record_kept_sixty_days() {
    let w = world("s3event", &[]).await;
    let receiver = Receiver::start().await;
    let secret = WebhookSecret::generate().unwrap();
    w.route(
        "*@mail.example.com",
        &receiver.url("/hook"),
        std::slice::from_ref(&secret),
        &[],
    )
    .await;
    // The key has a space, which S3 events encode as `+`.
    w.put_mail("inbound/sample one", sample()).await;

    let event = s3_event(&w.res.bucket, "inbound/sample+one");
    let received: chrono::DateTime<chrono::Utc> = event["Records"][0]["eventTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let response = w.invoke(event).await.unwrap();
    assert_eq!(response, Value::Null);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert!(
        request.verifies(&[secret]),
        "verified with the core's verifier"
    );
    assert!(request.header("user-agent").starts_with("Mailroom/"));
    let body = request.json();
    assert_eq!(
        body["envelope"]["to"],
        "support+ticket-4821@mail.example.com"
    );
    assert_eq!(body["envelope"]["mailbox_hash"], "ticket-4821");
    assert_eq!(body["envelope"]["remote_ip"], "198.51.100.23");
    assert_eq!(
        body["headers"]["subject"],
        "Re: Invoice 4821 — wrong address"
    );
    assert_eq!(body["attachments"].as_array().unwrap().len(), 2);

    let records = w.records("sample one").await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["status"], "delivered");
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["response_status"], 200);
    assert_eq!(record["response_body"], "ok");
    assert_eq!(record["webhook_id"], request.header("webhook-id"));
    assert_eq!(
        record["target"],
        format!("webhook {}", receiver.url("/hook"))
    );
    assert_eq!(record["sender_ip"], "198.51.100.23");
    assert_eq!(
        record["message_id_header"],
        "CAF3x9Yv1s2d3f4g5h6@mail.sender.example"
    );
    assert_eq!(record["expires_at"], received.timestamp() + 60 * 86_400);
    assert!(
        w.object_exists("inbound/sample one").await,
        "the raw mail stays"
    );
}

#[tokio::test]
async fn a_503_is_retried_through_the_queue_with_the_same_webhook_id() {
    let w = world("retry", &[]).await;
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "busy")]);
    w.route("*@mail.example.com", &receiver.url("/hook"), &[], &[])
        .await;
    w.put_mail("inbound/retry-1", sample()).await;
    let body = s3_event(&w.res.bucket, "inbound/retry-1").to_string();

    let event = w.through_queue(&body).await;
    let id = event["Records"][0]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = w.invoke(event).await.unwrap();
    assert_eq!(
        failures(&response),
        std::slice::from_ref(&id),
        "reported failed so it comes back"
    );
    let record = &w.records("retry-1").await[0];
    assert_eq!(record["status"], "retrying");
    assert_eq!(record["response_status"], 503);
    assert!(
        w.receive().await.is_none(),
        "the visibility change hides it for the first wait (5 s)"
    );

    tokio::time::sleep(Duration::from_secs(6)).await;
    let again = w
        .receive()
        .await
        .expect("visible again after the wait, not after the queue's 180 s");
    assert_eq!(again["Records"][0]["messageId"], id.as_str());
    let response = w.invoke(again).await.unwrap();
    assert!(failures(&response).is_empty());

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    let records = w.records("retry-1").await;
    assert_eq!(records.len(), 1, "one record per delivery");
    assert_eq!(records[0]["status"], "delivered");
    assert_eq!(records[0]["attempts"], 2);
    let history: Vec<_> = records[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(history, [json!("retrying"), json!("delivered")]);
}

#[tokio::test]
async fn rejections_410_and_duplicates() {
    let w = world("reject", &[]).await;
    let receiver = Receiver::start().await;
    w.route(
        "support@mail.example.com",
        &receiver.url("/support"),
        &[],
        &[],
    )
    .await;
    w.put_mail("inbound/bad-request", sample()).await;
    receiver.reply([Reply::new(400, "bad payload")]);
    w.invoke(s3_event(&w.res.bucket, "inbound/bad-request"))
        .await
        .unwrap();
    // A second delivery of the same event changes nothing.
    w.invoke(s3_event(&w.res.bucket, "inbound/bad-request"))
        .await
        .unwrap();
    assert_eq!(receiver.requests().len(), 1, "400 is not retried");
    let record = &w.records("bad-request").await[0];
    assert_eq!(record["status"], "rejected");
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["error"], "HTTP 400");
    assert_eq!(record["response_body"], "bad payload");

    receiver.reply([Reply::new(410, "gone")]);
    w.put_mail("inbound/gone", sample()).await;
    w.invoke(s3_event(&w.res.bucket, "inbound/gone"))
        .await
        .unwrap();
    let routes = w.store.routes().await.unwrap();
    let disabled = routes[0]
        .webhook
        .as_ref()
        .unwrap()
        .disabled
        .as_ref()
        .expect("410 disables the webhook");
    assert!(disabled.reason.contains("410"));
    w.put_mail("inbound/after-gone", sample()).await;
    let before = receiver.requests().len();
    // Routes are cached for a minute in a warm container; the 410 clears that cache.
    w.invoke(s3_event(&w.res.bucket, "inbound/after-gone"))
        .await
        .unwrap();
    assert_eq!(
        receiver.requests().len(),
        before,
        "a disabled webhook is not posted to"
    );
    let record = &w.records("after-gone").await[0];
    assert_eq!(record["status"], "rejected");
    assert!(record["error"].as_str().unwrap().contains("disabled"));

    let receiver = Receiver::start().await;
    let w = world("duplicate", &[]).await;
    w.route(
        "support@mail.example.com",
        &receiver.url("/again"),
        &[],
        &[],
    )
    .await;
    w.put_mail("inbound/dup", sample()).await;
    for _ in 0..3 {
        w.invoke(s3_event(&w.res.bucket, "inbound/dup"))
            .await
            .unwrap();
    }
    assert_eq!(
        receiver.requests().len(),
        1,
        "three deliveries of one event, one POST"
    );
}

#[tokio::test]
async fn an_ses_notification_delivers_to_every_smtp_recipient_bcc_included() {
    let w = world("bcc", &[]).await;
    let support = Receiver::start().await;
    let billing = Receiver::start().await;
    w.route("support@mail.example.com", &support.url("/s"), &[], &[])
        .await;
    w.route("billing@mail.example.com", &billing.url("/b"), &[], &[])
        .await;
    w.put_mail("inbound/bcc-1", sample()).await;
    let body = ses_notification(
        &w.res.bucket,
        "inbound/bcc-1",
        &[
            "support+ticket-4821@mail.example.com",
            "billing@mail.example.com",
        ],
        "PASS",
    );
    let event = w.through_queue(&body).await;
    let response = w.invoke(event).await.unwrap();
    assert!(failures(&response).is_empty());

    let to_support = support.requests()[0].json();
    let to_billing = billing.requests()[0].json();
    assert_eq!(
        to_support["envelope"]["to"],
        "support+ticket-4821@mail.example.com"
    );
    assert_eq!(
        to_billing["envelope"]["to"], "billing@mail.example.com",
        "only in Bcc, still delivered"
    );
    assert_eq!(
        to_billing["envelope"]["recipients"],
        json!([
            "support+ticket-4821@mail.example.com",
            "billing@mail.example.com"
        ])
    );
    assert_eq!(to_billing["envelope"]["ses"]["dmarc"], "PASS");
    let statuses: Vec<_> = w
        .records("bcc-1")
        .await
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("delivered"), json!("delivered")]);
}

#[tokio::test]
async fn test_events_missing_objects_and_unparseable_bytes() {
    let w = world("oddities", &[]).await;
    let receiver = Receiver::start().await;
    w.route("*", &receiver.url("/all"), &[], &[]).await;

    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-11-05T09:00:00.000Z", "Bucket": w.res.bucket});
    assert_eq!(w.invoke(test_event.clone()).await.unwrap(), Value::Null);
    let event = w.through_queue(&test_event.to_string()).await;
    assert!(
        failures(&w.invoke(event).await.unwrap()).is_empty(),
        "acknowledged inside SQS too"
    );

    w.invoke(s3_event(&w.res.bucket, "inbound/never-stored"))
        .await
        .unwrap();
    let records = w.records("never-stored").await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["status"], "failed");
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .starts_with("no stored message"),
        "{record}"
    );

    w.put_mail(
        "inbound/garbage",
        b"\x00\x01\x02 this is not an email at all".to_vec(),
    )
    .await;
    w.invoke(s3_event(&w.res.bucket, "inbound/garbage"))
        .await
        .unwrap();
    // Bytes without a header field are read as a body; with no notification naming its recipients, no
    // route can take it, and the record says so.
    let record = &w.records("garbage").await[0];
    assert_eq!(record["status"], "no_route");
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .starts_with("no recipient could be determined"),
        "{record}"
    );
    assert!(
        w.object_exists("inbound/garbage").await,
        "the stored bytes are kept, never deleted"
    );
    assert!(receiver.requests().is_empty());

    let event = w.through_queue("this is not an event").await;
    assert!(
        failures(&w.invoke(event).await.unwrap()).is_empty(),
        "a malformed record is moved, not left to come back 50 times"
    );
    let dead = w
        .sqs()
        .receive_message()
        .queue_url(&w.res.dlq_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(
        dead.len(),
        1,
        "it waits in the dead-letter queue, whose alarm fires"
    );
    assert_eq!(dead[0].body.as_deref(), Some("this is not an event"));
}

#[tokio::test]
async fn redacted_fields_are_never_stored() {
    let w = world("redact", &[]).await;
    let receiver = Receiver::start().await;
    w.route(
        "*@mail.example.com",
        &receiver.url("/r"),
        &[],
        &[Redact::Subject, Redact::Sender],
    )
    .await;
    w.put_mail("inbound/redacted", sample()).await;
    w.invoke(s3_event(&w.res.bucket, "inbound/redacted"))
        .await
        .unwrap();
    let items = w.items("redacted").await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert!(!item.contains_key("subject"), "{item:?}");
    assert!(!item.contains_key("sender"), "{item:?}");
    assert!(item.contains_key("recipient"));
    assert!(item.contains_key("sender_ip"));
    let text = format!("{item:?}");
    assert!(
        !text.contains("Invoice 4821") && !text.contains("ana.lima@"),
        "not anywhere in the item"
    );
}

#[tokio::test]
async fn a_virus_is_dropped_and_two_secrets_both_verify() {
    let w = world("virus", &[]).await;
    let receiver = Receiver::start().await;
    let (old, new) = (
        WebhookSecret::generate().unwrap(),
        WebhookSecret::generate().unwrap(),
    );
    w.route(
        "*@mail.example.com",
        &receiver.url("/v"),
        &[old.clone(), new.clone()],
        &[],
    )
    .await;

    w.put_mail("inbound/infected", sample()).await;
    let body = ses_notification(
        &w.res.bucket,
        "inbound/infected",
        &["support@mail.example.com"],
        "FAIL",
    );
    let event = w.through_queue(&body).await;
    assert!(failures(&w.invoke(event).await.unwrap()).is_empty());
    assert!(receiver.requests().is_empty(), "dropped, not posted");
    let record = &w.records("infected").await[0];
    assert_eq!(record["status"], "dropped");

    w.put_mail("inbound/clean", sample()).await;
    let body = ses_notification(
        &w.res.bucket,
        "inbound/clean",
        &["support@mail.example.com"],
        "PASS",
    );
    let event = w.through_queue(&body).await;
    w.invoke(event).await.unwrap();
    let request = &receiver.requests()[0];
    assert_eq!(request.header("webhook-signature").split(' ').count(), 2);
    assert!(request.verifies(std::slice::from_ref(&old)));
    assert!(request.verifies(std::slice::from_ref(&new)));
}

#[tokio::test]
async fn internal_targets_are_refused_in_every_disguise() {
    let w = world("ssrf", &[("MAILROOM_ALLOW_PRIVATE_TARGETS", "false")]).await;
    let receiver = Receiver::start().await;
    let port = receiver.port;
    let targets = [
        format!("https://127.0.0.1:{port}/"),
        format!("https://2130706433:{port}/"),
        format!("https://0177.0.0.1:{port}/"),
        format!("https://0x7f.1:{port}/"),
        format!("https://[::ffff:127.0.0.1]:{port}/"),
        format!("https://user@127.0.0.1:{port}/"),
        format!("https://localhost:{port}/"),
        format!("https://[64:ff9b::7f00:1]:{port}/"),
        format!("http://127.0.0.1:{port}/"),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://169.254.170.2/v2/credentials".to_owned(),
        "https://10.0.0.8/".to_owned(),
        "https://100.64.1.1/".to_owned(),
        "https://[fd12::1]/".to_owned(),
        "https://[fe80::1]/".to_owned(),
        "https://0.0.0.0/".to_owned(),
        "https://224.0.0.1/".to_owned(),
    ];
    let recipients: Vec<String> = (0..targets.len())
        .map(|i| format!("r{i}@mail.example.com"))
        .collect();
    for (recipient, target) in recipients.iter().zip(&targets) {
        w.route(recipient, target, &[], &[]).await;
    }
    w.put_mail("inbound/ssrf", sample()).await;
    let refs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let event = w
        .through_queue(&ses_notification(
            &w.res.bucket,
            "inbound/ssrf",
            &refs,
            "PASS",
        ))
        .await;
    assert!(
        failures(&w.invoke(event).await.unwrap()).is_empty(),
        "refusals are final, not retried"
    );

    let records = w.records("ssrf").await;
    assert_eq!(records.len(), targets.len());
    for record in &records {
        assert_eq!(record["status"], "rejected", "{record}");
        assert!(
            record["error"]
                .as_str()
                .unwrap()
                .starts_with("target refused"),
            "{record}"
        );
    }
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn redirects_are_followed_and_a_message_past_72_hours_is_dead_lettered() {
    let w = world("giveup", &[]).await;
    let receiver = Receiver::start().await;
    let mut redirect = Reply::new(307, "");
    redirect
        .headers
        .push(("Location".to_owned(), "/moved".to_owned()));
    receiver.reply([redirect, Reply::new(200, "ok")]);
    w.route("*@mail.example.com", &receiver.url("/old"), &[], &[])
        .await;
    w.put_mail("inbound/moved", sample()).await;
    w.invoke(s3_event(&w.res.bucket, "inbound/moved"))
        .await
        .unwrap();
    let paths: Vec<_> = receiver.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/old", "/moved"],
        "the same POST follows the redirect"
    );
    assert_eq!(w.records("moved").await[0]["status"], "delivered");

    receiver.reply([Reply::new(503, "down")]);
    w.put_mail("inbound/too-late", sample()).await;
    let mut event = w
        .through_queue(&s3_event(&w.res.bucket, "inbound/too-late").to_string())
        .await;
    // SQS says it first handed the message out 73 hours ago: the give-up point is behind us.
    let long_ago = (chrono::Utc::now() - chrono::Duration::hours(73)).timestamp_millis();
    event["Records"][0]["attributes"]["ApproximateFirstReceiveTimestamp"] =
        json!(long_ago.to_string());
    let response = w.invoke(event).await.unwrap();
    assert!(
        failures(&response).is_empty(),
        "acknowledged once it is in the DLQ"
    );
    let record = &w.records("too-late").await[0];
    assert_eq!(record["status"], "failed");
    assert!(
        record["error"].as_str().unwrap().starts_with("gave up"),
        "{record}"
    );
    let dead = w
        .sqs()
        .receive_message()
        .queue_url(&w.res.dlq_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body().unwrap().contains("inbound/too-late"));
}
