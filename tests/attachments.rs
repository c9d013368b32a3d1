//! `attachments: s3` and `auto` routes end to end on moto's server: the inbound handler stores the
//! attachments and posts links; the links handler turns each link into a presigned GET of the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use integration_tests::{
    LINK_BASE, Receiver, follow_link, resources, s3, sdk, store_inbound, unique,
};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::format::Format;
use mailroom::ports::RouteStore;
use mailroom::route::{AttachmentMode, Route, WebhookTarget};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use serde_json::Value;

struct World {
    sdk: aws_config::SdkConfig,
    res: Resources,
    inbound: inbound::App,
    links: links::App,
}

async fn world(test: &str, inline_max: &str) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let env = |name: &str| -> Option<String> {
        match name {
            "MAILROOM_TABLE" => Some(res.table.clone()),
            "MAILROOM_BUCKET" => Some(res.bucket.clone()),
            "MAILROOM_ALLOW_PRIVATE_TARGETS" => Some("true".to_owned()),
            "MAILROOM_ALLOW_HTTP_TARGETS" => Some("true".to_owned()),
            "MAILROOM_LINK_BASE_URL" => Some(LINK_BASE.to_owned()),
            "MAILROOM_LINK_KEY_ARN" => Some(res.link_key_arn.clone()),
            "MAILROOM_INLINE_MAX_BYTES" => Some(inline_max.to_owned()),
            _ => None,
        }
    };
    let inbound = inbound::App::new(inbound::Config::from_lookup(env).unwrap(), &sdk)
        .await
        .unwrap();
    let links = links::App::new(&links::Config::from_lookup(env).unwrap(), &sdk)
        .await
        .unwrap();
    World {
        sdk,
        res,
        inbound,
        links,
    }
}

/// A message with one attachment of `size` varied bytes, base64 in 76-character lines.
fn message_with_attachment(size: usize) -> (Vec<u8>, Vec<u8>) {
    let content: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&content);
    let mut body = String::with_capacity(encoded.len() * 78 / 76 + 1024);
    for line in encoded.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(line).unwrap());
        body.push_str("\r\n");
    }
    let raw = format!(
        "From: Ana <ana@sender.example>\r\nTo: docs@mail.example.com\r\nSubject: the scan\r\n\
         Message-ID: <{}@sender.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAttached.\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {body}--b1--\r\n",
        unique("m")
    );
    (raw.into_bytes(), content)
}

impl World {
    async fn route(&self, url: &str, mode: AttachmentMode) {
        let mut route = Route::new("*@mail.example.com".parse().unwrap());
        route.webhook = Some(WebhookTarget {
            url: url.to_owned(),
            format: Format::Json,
            secrets: Vec::new(),
            attachments: mode,
            disabled: None,
        });
        DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            self.res.table.clone(),
        )
        .put_route(&route)
        .await
        .unwrap();
    }

    /// Stores `raw` as SES would and hands the inbound handler the S3 event.
    async fn receive(&self, raw: Vec<u8>) -> String {
        let (id, event) = self.store_mail(raw).await;
        inbound::handle(&self.inbound, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        id
    }

    /// Stores `raw` as SES would; its id and the S3 event announcing it.
    async fn store_mail(&self, raw: Vec<u8>) -> (String, Value) {
        store_inbound(&self.sdk, &self.res.bucket, raw).await
    }

    /// Follows a link through the links handler and then the presigned URL it answers with.
    async fn follow(&self, url: &str) -> Vec<u8> {
        follow_link(&self.links, url).await
    }
}

#[tokio::test]
async fn an_s3_route_posts_a_link_that_fetches_the_attachment_byte_for_byte() {
    let w = world("attach-s3", "5000000").await;
    let receiver = Receiver::start().await;
    w.route(&receiver.url("/mail"), AttachmentMode::S3).await;
    let (raw, content) = message_with_attachment(12 * 1024 * 1024);
    let id = w.receive(raw).await;

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].json();
    let attachment = &body["attachments"][0];
    assert_eq!(attachment["file_name"], "scan.pdf");
    assert_eq!(attachment["size"], 12 * 1024 * 1024);
    assert!(attachment.get("content").is_none(), "no inline content");
    let url = attachment["url"].as_str().unwrap();
    assert!(
        requests[0].body.len() < 64 * 1024,
        "the POST is small: {} bytes",
        requests[0].body.len()
    );
    assert!(w.follow(url).await == content, "the same bytes");

    let stored = s3(&w.sdk)
        .head_object()
        .bucket(&w.res.bucket)
        .key(format!("attachments/{id}/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.content_type(), Some("application/pdf"));
}

#[tokio::test]
async fn an_auto_route_inlines_small_messages_and_links_large_ones() {
    let w = world("attach-auto", "100000").await;
    let receiver = Receiver::start().await;
    w.route(&receiver.url("/mail"), AttachmentMode::Auto).await;

    let (small, small_content) = message_with_attachment(10_000);
    w.receive(small).await;
    let (large, large_content) = message_with_attachment(200_000);
    w.receive(large).await;

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    let inline: Value = requests[0].json();
    let content = inline["attachments"][0]["content"]
        .as_str()
        .expect("inline");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(content)
            .unwrap(),
        small_content
    );
    let linked: Value = requests[1].json();
    assert!(linked["attachments"][0].get("content").is_none());
    let url = linked["attachments"][0]["url"].as_str().expect("a link");
    assert!(w.follow(url).await == large_content);
}

#[tokio::test]
async fn a_retry_finds_the_attachments_an_earlier_attempt_stored() {
    let w = world("attach-retry", "5000000").await;
    let receiver = Receiver::start().await;
    receiver.reply([integration_tests::Reply::new(503, "later")]);
    w.route(&receiver.url("/mail"), AttachmentMode::S3).await;
    let (raw, content) = message_with_attachment(100_000);
    let (id, event) = w.store_mail(raw).await;
    let first = inbound::handle(
        &w.inbound,
        LambdaEvent::new(event.clone(), Context::default()),
    )
    .await;
    assert!(first.is_err(), "a 503 asks Lambda to retry");
    let key = format!("attachments/{id}/0");
    let stored = || async {
        s3(&w.sdk)
            .head_object()
            .bucket(&w.res.bucket)
            .key(&key)
            .send()
            .await
            .unwrap()
            .last_modified()
            .cloned()
    };
    let before = stored().await;
    // The retry is due 5 s after the first attempt; S3's times have one-second steps, so a new upload
    // by then would show.
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    inbound::handle(&w.inbound, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(stored().await, before, "not uploaded again");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    let url = requests[1].json()["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(w.follow(&url).await == content);
}
