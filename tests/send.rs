//! The send API end to end: CloudMailin's official npm client (`tests/cloudmailin`, unchanged) posting to
//! the send function's handler behind a real HTTP server that passes requests on as a Function URL does;
//! the function's DynamoDB and S3 in moto, its SES v2 calls through a proxy that keeps what SES was asked
//! (moto does not keep the configuration set); then SES's open, click and delivery events through the
//! feedback function, and erasure of a recipient who was not the first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::{Duration, Utc};
use integration_tests::{
    Answer, Receiver, Request, recording_proxy, repo, resources, s3, sdk, serve_http,
    ses_raw_sends, unique, verified_domain,
};
use lambda_runtime::{Context, LambdaEvent};
use mail_parser::MimeHeaders;
use mailroom::feedback::{Origin, Outbound, OutboundStatus, Suppression, SuppressionReason};
use mailroom::ports::{Clock, KeyStore, OutboundLog, OutboundStore, SuppressionList, SystemClock};
use mailroom::route::WebhookSecret;
use mailroom::send::key::ApiKey;
use mailroom::usecases::erasure::AddressData;
use mailroom::usecases::send::{SendApi, SendConfig};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::s3::S3MailStore;
use mailroom_aws::ses::{SesSender, TrackedSets};
use mailroom_aws::setup::Resources;
use serde_json::{Value, json};

const UNTRACKED: &str = "stack-sending";
const TRACKED: &str = "stack-tracked";

/// A 1×1 PNG and a small PDF, as an application attaches them.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

struct World {
    sdk: aws_config::SdkConfig,
    res: Resources,
    store: DynamoStore,
    domain: String,
    key: ApiKey,
    secret: String,
    events_secret: WebhookSecret,
    receiver: Receiver,
    /// What went through the proxy to SES and the rest of the API.
    asked: Arc<Mutex<Vec<Request>>>,
    /// `http://127.0.0.1:PORT/api/v0.1`: the function behind its stand-in Function URL.
    base_url: String,
}

async fn world(test: &str) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let domain = verified_domain(&sdk, "shop").await;
    let (proxy, asked) = recording_proxy().await;
    let through_proxy = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy)
        .region(aws_config::Region::new(integration_tests::REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    let receiver = Receiver::start().await;
    let made = ApiKey::create("app", std::slice::from_ref(&domain), Utc::now()).unwrap();
    let mut key = made.stored;
    let events_secret = WebhookSecret::generate().unwrap();
    key.events_url = Some(receiver.url("/events"));
    key.events_secrets = vec![events_secret.clone()];
    store.put_key(&key).await.unwrap();
    let sender = SesSender::new(
        aws_sdk_sesv2::Client::new(&through_proxy),
        Some(UNTRACKED.to_owned()),
    )
    .with_tracking(TrackedSets {
        both: Some(TRACKED.to_owned()),
        opens: Some("stack-opens".to_owned()),
        clicks: Some("stack-clicks".to_owned()),
    });
    let api = SendApi::new(
        store.clone(),
        S3MailStore::new(mailroom_aws::s3_client(&sdk)),
        sender,
        Arc::new(SystemClock) as Arc<dyn Clock>,
        SendConfig {
            bucket: res.bucket.clone(),
            domains: vec![domain.clone(), "other.example.com".to_owned()],
            retention_days: 60,
        },
    );
    let app = Arc::new(send::App::from_api(api));
    let base = serve_http(move |request| function_url(app.clone(), request)).await;
    World {
        sdk,
        res,
        store,
        domain,
        key,
        secret: made.secret,
        events_secret,
        receiver,
        asked,
        base_url: format!("{base}/api/v0.1"),
    }
}

/// What a Lambda Function URL does with a request: the payload-2.0 event to the handler, its answer back.
async fn function_url(app: Arc<send::App>, request: Request) -> Answer {
    let (path, query) = request
        .path
        .split_once('?')
        .unwrap_or((request.path.as_str(), ""));
    let (body, encoded) = match std::str::from_utf8(&request.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&request.body),
            true,
        ),
    };
    let event = json!({
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": query,
        "headers": request.headers,
        "requestContext": {"http": {"method": request.method, "path": path, "sourceIp": "127.0.0.1"}},
        "body": body,
        "isBase64Encoded": encoded,
    });
    let answer = send::handle(&app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let headers = answer["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    (
        answer["statusCode"].as_u64().unwrap() as u16,
        headers,
        answer["body"].as_str().unwrap().as_bytes().to_vec(),
    )
}

impl World {
    /// Runs the official client on `calls` with `api_key`.
    fn client(&self, api_key: &str, calls: Value) -> Vec<Value> {
        integration_tests::cloudmailin(&self.base_url, &self.key.id, api_key, calls)
    }

    /// The SES v2 `SendEmail` requests the function made, as SES received them.
    fn ses_requests(&self) -> Vec<Value> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST" && r.path.starts_with("/v2/email/outbound-emails"))
            .map(Request::json)
            .collect()
    }

    /// The `SendEmail` request of the message with the API's `id`.
    fn ses_request_of(&self, id: &str) -> Option<Value> {
        self.ses_requests().into_iter().find(|r| {
            r["EmailTags"].as_array().is_some_and(|tags| {
                tags.iter()
                    .any(|t| t["Name"] == "mailroom-id" && t["Value"] == id)
            })
        })
    }

    async fn stored(&self, id: &str) -> Vec<u8> {
        s3(&self.sdk)
            .get_object()
            .bucket(&self.res.bucket)
            .key(format!("outbound/{id}/message.eml"))
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec()
    }

    async fn record(&self, ses_message_id: &str) -> Outbound {
        self.store
            .outbound(ses_message_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no record of {ses_message_id}"))
    }

    /// The feedback function, as the stack configures it.
    fn feedback(&self) -> feedback::App {
        let env = [
            ("MAILROOM_TABLE", self.res.table.as_str()),
            (
                "MAILROOM_FEEDBACK_QUEUE_URL",
                self.res.feedback_queue_url.as_str(),
            ),
            (
                "MAILROOM_FEEDBACK_DLQ_URL",
                self.res.feedback_dlq_url.as_str(),
            ),
            ("MAILROOM_WEBHOOK_TIMEOUT_SECS", "5"),
            ("MAILROOM_ALLOW_PRIVATE_TARGETS", "true"),
            ("MAILROOM_ALLOW_HTTP_TARGETS", "true"),
        ];
        let config = feedback::Config::from_lookup(|name| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        feedback::App::new(&config, &self.sdk).unwrap()
    }
}

fn message(domain: &str, to: Value) -> Value {
    json!({
        "from": format!("orders@{domain}"),
        "to": to,
        "subject": "Hello",
        "plain": "Hello there",
    })
}

/// The SQS event of an SES event sample (`events/sqs-event-*.json`), made about `ses_message_id` sent to
/// `destination`, with its own SNS message id; `edit` changes SES's notification further.
fn ses_event(
    sample: &str,
    ses_message_id: &str,
    destination: &[&str],
    edit: impl Fn(&mut Value),
) -> Value {
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(repo(&format!("events/{sample}"))).unwrap()).unwrap();
    let mut body: Value =
        serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
    let mut notification: Value = serde_json::from_str(body["Message"].as_str().unwrap()).unwrap();
    notification["mail"]["messageId"] = json!(ses_message_id);
    notification["mail"]["destination"] = json!(destination);
    edit(&mut notification);
    body["Message"] = json!(notification.to_string());
    body["MessageId"] = json!(unique("sns"));
    event["Records"][0]["body"] = json!(body.to_string());
    event["Records"][0]["messageId"] = json!(unique("sqs"));
    event
}

/// Each recipient of a record with its status.
fn states(record: &Outbound) -> Vec<(&str, OutboundStatus)> {
    record
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.status))
        .collect()
}

async fn apply(app: &feedback::App, event: Value) {
    let answer = feedback::handle(app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert!(integration_tests::failures(&answer).is_empty(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_sends_and_ses_gets_what_was_stored_and_recorded() {
    let w = world("send-client").await;
    let d = &w.domain;
    w.store
        .suppress(&Suppression {
            address: "eve@x.example.com".to_owned(),
            reason: SuppressionReason::Bounce,
            created_at: Utc::now(),
            feedback_id: None,
            ses_message_id: None,
            detail: Some("test".to_owned()),
        })
        .await
        .unwrap();
    let raw = format!(
        "From: Orders <orders@{d}>\r\nTo: carla@x.example.com\r\nSubject: Raw hello\r\n\
         Message-ID: <raw-1@{d}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello raw\r\n"
    );
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let results = w.client(
        &w.secret,
        json!([
            {"message": {
                "from": format!("Shop Ünïcode <orders@{d}>"),
                "to": ["ana@x.example.com"],
                "cc": "bruno@y.example.com",
                "subject": "Your order 42 ✓",
                "plain": "Thanks for your order.",
                "html": "<p>Thanks! <img src=\"cid:logo\"> <a href=\"https://shop.example.com/o/42\">Track it</a></p>",
                "headers": {"X-Order": "42"},
                "attachments": [
                    {"file_name": "logo.png", "content": b64(PNG), "content_type": "image/png", "content_id": "logo"},
                    {"file_name": "invoice.pdf", "content": b64(PDF), "content_type": "application/pdf"}
                ],
                "tags": ["orders", "eu"],
                "priority": "priority"
            }},
            {"raw": true, "message": {"from": format!("orders@{d}"), "to": "carla@x.example.com", "raw": raw}},
            {"message": {"from": format!("orders@{d}"), "to": "dan@x.example.com", "subject": "Untracked",
                         "plain": "no pixel", "tracking": false}},
            {"message": {"from": format!("orders@{d}"), "to": "test@x.example.com", "subject": "Test",
                         "plain": "never sent", "test_mode": true}},
            {"message": {"from": format!("orders@{d}"), "to": ["eve@x.example.com", "fay@x.example.com"],
                         "subject": "Suppressed one", "plain": "hi"}},
            {"message": message(d, json!("gus@x.example.com")).as_object().unwrap().clone()
                .into_iter().chain([("from".to_owned(), json!("someone@foreign.example.com"))]).collect::<serde_json::Map<_, _>>()},
            {"message": {"from": format!("orders@{d}"), "subject": "no recipient", "plain": "x"}},
        ]),
    );
    for (i, result) in results.iter().take(5).enumerate() {
        assert_eq!(result["ok"], true, "call {i}: {result}");
    }

    // The message with an inline image and an attachment.
    let sent = &results[0]["data"];
    let id = sent["id"].as_str().unwrap();
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["tags"], json!(["orders", "eu"]));
    let asked = w.ses_request_of(id).expect("SES was asked to send it");
    assert_eq!(asked["ConfigurationSetName"], TRACKED, "tracked by default");
    assert_eq!(asked["FromEmailAddress"], format!("orders@{d}"));
    assert_eq!(
        asked["Destination"]["ToAddresses"],
        json!(["ana@x.example.com", "bruno@y.example.com"])
    );
    let ses_message_id = sent["ses_message_id"].as_str().unwrap();
    let moto = ses_raw_sends().await;
    let got = moto
        .iter()
        .find(|m| m["id"] == ses_message_id)
        .expect("moto's SES has the message");
    let received = got["raw_data"].as_str().unwrap().as_bytes().to_vec();
    let stored = w.stored(id).await;
    assert_eq!(stored, received, "the stored copy is what SES received");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(asked["Content"]["Raw"]["Data"].as_str().unwrap())
            .unwrap(),
        stored
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&received)
        .unwrap();
    assert_eq!(parsed.subject(), Some("Your order 42 ✓"));
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Shop Ünïcode"));
    assert_eq!(from.address(), Some(format!("orders@{d}").as_str()));
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some("ana@x.example.com")
    );
    assert_eq!(
        parsed.cc().unwrap().first().unwrap().address(),
        Some("bruno@y.example.com")
    );
    assert_eq!(parsed.message_id(), Some(format!("{id}@{d}").as_str()));
    assert_eq!(parsed.header_raw("X-Order").map(str::trim), Some("42"));
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Thanks for your order.")
    );
    assert!(parsed.body_html(0).unwrap().contains("cid:logo"));
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.contains("multipart/mixed")
            && text.contains("multipart/related")
            && text.contains("multipart/alternative")
    );
    let inline = parsed
        .attachments()
        .find(|a| a.content_id() == Some("logo"))
        .expect("the inline image");
    assert_eq!(inline.contents(), PNG);
    assert_eq!(inline.content_type().map(|c| c.ctype()), Some("image"));
    let file = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("invoice.pdf"))
        .expect("the attachment");
    assert_eq!(file.contents(), PDF);
    assert_eq!(file.content_type().and_then(|c| c.subtype()), Some("pdf"));

    let record = w.record(ses_message_id).await;
    assert_eq!(record.origin, Origin::Api);
    assert_eq!(record.id.as_deref(), Some(id));
    assert_eq!(record.key_name.as_deref(), Some("app"));
    assert_eq!(record.tags, ["orders", "eu"]);
    assert_eq!(record.subject.as_deref(), Some("Your order 42 ✓"));
    assert_eq!(record.configuration_set.as_deref(), Some(TRACKED));
    assert!(record.tracked);
    assert_eq!(
        record.s3_key.as_deref(),
        Some(format!("outbound/{id}/message.eml").as_str())
    );
    let sixty_days = (record.sent_at + Duration::days(60)).timestamp();
    assert_eq!(record.expires_at, sixty_days, "kept 60 days by TTL");
    let ttl = aws_sdk_dynamodb::Client::new(&w.sdk)
        .get_item()
        .table_name(&w.res.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("OUT#{ses_message_id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("OUT".to_owned()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap()["expires_at"]
        .as_n()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert_eq!(ttl, sixty_days, "the table's TTL attribute");
    assert_eq!(
        states(&record),
        [
            ("ana@x.example.com", OutboundStatus::Sent),
            ("bruno@y.example.com", OutboundStatus::Sent)
        ]
    );

    // The raw message goes as it came.
    let raw_sent = &results[1]["data"];
    let raw_id = raw_sent["id"].as_str().unwrap();
    assert_eq!(w.stored(raw_id).await, raw.as_bytes());
    let raw_ses = raw_sent["ses_message_id"].as_str().unwrap();
    let got = moto
        .iter()
        .find(|m| m["id"] == raw_ses)
        .expect("moto's SES has the raw message");
    assert_eq!(got["raw_data"].as_str().unwrap(), raw);
    assert_eq!(
        w.record(raw_ses).await.subject.as_deref(),
        Some("Raw hello")
    );

    // Tracking off: the untracked set.
    let untracked = results[2]["data"]["id"].as_str().unwrap();
    let asked = w.ses_request_of(untracked).unwrap();
    assert_eq!(asked["ConfigurationSetName"], UNTRACKED);
    assert!(
        !w.record(results[2]["data"]["ses_message_id"].as_str().unwrap())
            .await
            .tracked
    );

    // Tracking by kind: clicks without opens go through the set that tracks clicks alone.
    let clicks_only = w.client(
        &w.secret,
        json!([{"message": {"from": format!("orders@{d}"), "to": "dan@x.example.com", "subject": "Clicks",
                            "html": "<a href=\"https://shop.example.com\">shop</a>", "tracking": {"opens": false}}}]),
    );
    let asked = w
        .ses_request_of(clicks_only[0]["data"]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(asked["ConfigurationSetName"], "stack-clicks");

    // test_mode: checked, stored, recorded; SES never asked.
    let test = &results[3]["data"];
    let test_id = test["id"].as_str().unwrap();
    assert_eq!(test["status"], "test");
    assert_eq!(test["test_mode"], true);
    assert!(w.ses_request_of(test_id).is_none());
    assert!(!w.stored(test_id).await.is_empty());
    assert_eq!(
        w.record(&format!("test-{test_id}")).await.status,
        OutboundStatus::Test
    );

    // A suppressed recipient is skipped and named.
    let partly = &results[4]["data"];
    assert_eq!(partly["suppressed"], json!(["eve@x.example.com"]));
    let asked = w.ses_request_of(partly["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        asked["Destination"]["ToAddresses"],
        json!(["fay@x.example.com"])
    );
    let record = w.record(partly["ses_message_id"].as_str().unwrap()).await;
    assert_eq!(
        states(&record),
        [
            ("fay@x.example.com", OutboundStatus::Sent),
            ("eve@x.example.com", OutboundStatus::Suppressed)
        ]
    );

    // A foreign From is 403; a body without `to` is 422; both in CloudMailin's shape through the client.
    assert_eq!(results[5]["ok"], false);
    assert_eq!(results[5]["status"], 403);
    assert!(
        results[5]["error"]
            .as_str()
            .unwrap()
            .contains("foreign.example.com"),
        "{}",
        results[5]
    );
    assert_eq!(results[6]["status"], 422);
    assert!(
        results[6]["error"].as_str().unwrap().contains("`to`"),
        "{}",
        results[6]
    );

    // A wrong key is 401, and so is a revoked one, at once.
    let wrong = w.client(
        "mrk_0000",
        json!([{"message": message(d, json!("a@x.example.com"))}]),
    );
    assert_eq!(wrong[0]["status"], 401, "{}", wrong[0]);
    let mut revoked = w.key.clone();
    revoked.revoked_at = Some(Utc::now());
    w.store.put_key(&revoked).await.unwrap();
    let refused = w.client(
        &w.secret,
        json!([{"message": message(d, json!("a@x.example.com"))}]),
    );
    assert_eq!(refused[0]["status"], 401, "{}", refused[0]);
    assert_eq!(w.ses_requests().len(), 5, "nothing sent after the refusals");

    // Listed newest first with the rest of the sent mail.
    let listed = w.store.sent_between(None, None, 0).await.unwrap();
    assert_eq!(listed.len(), 6, "{listed:?}");
    assert!(listed.windows(2).all(|p| p[0].sent_at >= p[1].sent_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_clicks_and_deliveries_update_the_record_and_post_signed_events() {
    let w = world("send-events").await;
    let results = w.client(
        &w.secret,
        json!([{"message": {
            "from": format!("orders@{}", w.domain), "to": "ana@x.example.com", "subject": "Tracked",
            "html": "<p><a href=\"https://shop.example.com/o/42\">Track it</a></p>", "tags": ["orders"]
        }}]),
    );
    let id = results[0]["data"]["id"].as_str().unwrap().to_owned();
    let ses_id = results[0]["data"]["ses_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let feedback = w.feedback();
    let open = ses_event(
        "sqs-event-open.json",
        &ses_id,
        &["ana@x.example.com"],
        |_| {},
    );
    apply(&feedback, open.clone()).await;
    apply(&feedback, open).await;
    apply(
        &feedback,
        ses_event(
            "sqs-event-click.json",
            &ses_id,
            &["ana@x.example.com"],
            |n| {
                n["click"]["link"] = json!("https://shop.example.com/o/42");
            },
        ),
    )
    .await;
    apply(
        &feedback,
        ses_event(
            "sqs-event-delivery.json",
            &ses_id,
            &["ana@x.example.com"],
            |n| {
                n["delivery"]["recipients"] = json!(["ana@x.example.com"]);
            },
        ),
    )
    .await;

    let record = w.record(&ses_id).await;
    let opens = record.opens.as_ref().unwrap();
    assert_eq!(opens.count, 1, "the same notification twice counts once");
    assert_eq!(
        opens.first.unwrap().to_rfc3339(),
        "2026-11-20T10:05:31.114+00:00"
    );
    let clicks = record.clicks.as_ref().unwrap();
    assert_eq!(clicks.count, 1);
    assert_eq!(clicks.links[0].url, "https://shop.example.com/o/42");
    assert_eq!(record.status, OutboundStatus::Delivered);
    assert_eq!(record.recipients[0].status, OutboundStatus::Delivered);

    let posts = w.receiver.requests();
    let kinds: Vec<String> = posts
        .iter()
        .map(|p| p.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["message.opened", "message.clicked", "message.delivered"]
    );
    for post in &posts {
        assert!(
            post.verifies(std::slice::from_ref(&w.events_secret)),
            "signed with the key's events secret"
        );
        let body = post.json();
        assert_eq!(body["data"]["message_id"], id.as_str());
        assert_eq!(body["data"]["ses_message_id"], ses_id.as_str());
        assert_eq!(body["data"]["recipient"], "ana@x.example.com");
        assert_eq!(body["data"]["tags"], json!(["orders"]));
    }
    assert_eq!(
        posts[1].json()["data"]["link"],
        "https://shop.example.com/o/42"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_sent_around_the_api_is_recorded_from_ses_send_event() {
    let w = world("send-around").await;
    let feedback = w.feedback();
    let ses_id = unique("0102018c-around");
    apply(
        &feedback,
        ses_event(
            "sqs-event-send.json",
            &ses_id,
            &["ana@x.example.com", "bruno@x.example.com"],
            |n| {
                n["mail"]["timestamp"] = json!(Utc::now().to_rfc3339());
                n["mail"]["commonHeaders"]["subject"] = json!("Sent over SMTP");
                n["mail"]["commonHeaders"]["from"] =
                    json!([format!("App <app@{}>", "shop.example.com")]);
            },
        ),
    )
    .await;
    let record = w.record(&ses_id).await;
    assert_eq!(record.origin, Origin::Ses);
    assert_eq!(record.from.as_deref(), Some("app@shop.example.com"));
    assert_eq!(record.to, ["ana@x.example.com", "bruno@x.example.com"]);
    assert_eq!(record.subject.as_deref(), Some("Sent over SMTP"));
    assert_eq!(
        record.configuration_set.as_deref(),
        Some("mailroom-sending")
    );
    assert_eq!(record.status, OutboundStatus::Sent);
    assert_eq!(
        record.expires_at,
        (record.sent_at + Duration::days(60)).timestamp()
    );
    assert!(
        record.sent_at > Utc::now() - Duration::minutes(1),
        "sent when SES says"
    );
    // A delivery to the second recipient then moves that recipient on.
    apply(
        &feedback,
        ses_event(
            "sqs-event-delivery.json",
            &ses_id,
            &["ana@x.example.com", "bruno@x.example.com"],
            |n| {
                n["delivery"]["recipients"] = json!(["bruno@x.example.com"]);
            },
        ),
    )
    .await;
    let record = w.record(&ses_id).await;
    assert_eq!(
        states(&record),
        [
            ("ana@x.example.com", OutboundStatus::Sent),
            ("bruno@x.example.com", OutboundStatus::Delivered)
        ]
    );
    let listed = w.store.sent_between(None, None, 0).await.unwrap();
    assert!(listed.iter().any(|r| r.ses_message_id == ses_id));
    // A forward's send event makes no record: the inbound function writes the forward's own.
    let forward_id = unique("0102018c-forward");
    apply(
        &feedback,
        ses_event(
            "sqs-event-send.json",
            &forward_id,
            &["ana@x.example.com"],
            |n| {
                n["mail"]["tags"]["mailroom-forward"] = json!(["true"]);
            },
        ),
    )
    .await;
    assert!(w.store.outbound(&forward_id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_copied_recipient_removes_the_sent_message_and_its_stored_copy() {
    let w = world("send-erase").await;
    let results = w.client(
        &w.secret,
        json!([{"message": {
            "from": format!("orders@{}", w.domain), "to": ["ana@x.example.com", "bruno@x.example.com"],
            "cc": "carla@x.example.com", "subject": "For three", "plain": "hi"
        }}]),
    );
    let id = results[0]["data"]["id"].as_str().unwrap().to_owned();
    let ses_id = results[0]["data"]["ses_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = AddressData::new(
        w.store.clone(),
        S3MailStore::new(mailroom_aws::s3_client(&w.sdk)),
        w.res.bucket.clone(),
    );
    let held = data.export("carla@x.example.com").await.unwrap();
    assert_eq!(held.outbound.len(), 1, "found by a copied recipient");
    assert_eq!(held.outbound[0].ses_message_id, ses_id);
    assert!(
        held.objects.contains(&format!("outbound/{id}/message.eml")),
        "{:?}",
        held.objects
    );
    let erased = data.delete(&held, Utc::now()).await.unwrap();
    assert_eq!(erased.outbound, 1);
    assert!(w.store.outbound(&ses_id).await.unwrap().is_none());
    let gone = s3(&w.sdk)
        .get_object()
        .bucket(&w.res.bucket)
        .key(format!("outbound/{id}/message.eml"))
        .send()
        .await;
    assert!(gone.is_err(), "the stored copy is erased");
    assert!(
        data.export("bruno@x.example.com")
            .await
            .unwrap()
            .outbound
            .is_empty(),
        "nothing left for the others"
    );
}
