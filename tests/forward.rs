//! Forwarding end to end on moto's server: an S3 event through the real inbound handler, the send read back
//! from moto's SES, the outbound record and the stored copy; then SES's bounce of that send through the
//! real feedback handler. Also: suppressed addresses, SES rejections, and the notice sent instead of a
//! forward that is too large, whose link fetches the original.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{
    LINK_BASE, failures, follow_link, repo, resources, s3, sdk, ses_raw_sends, store_inbound,
    unique, verified_domain,
};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::feedback::{OutboundStatus, SuppressionReason};
use mailroom::ports::{OutboundStore, RouteStore, SuppressionList};
use mailroom::record::Delivery;
use mailroom::route::Route;
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use serde_json::{Value, json};

const RECIPIENT: &str = "support@mail.example.com";
const FORWARD_TO: &str = "ana@example.net";

struct World {
    sdk: aws_config::SdkConfig,
    res: Resources,
    inbound: inbound::App,
    feedback: feedback::App,
    links: links::App,
    store: DynamoStore,
    /// A domain verified in moto's SES, forwards are sent from it.
    domain: String,
}

async fn world(test: &str, settings: &[(&str, &str)]) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let domain = verified_domain(&sdk, "fwd").await;
    let mut env: HashMap<String, String> = HashMap::from([
        ("MAILROOM_TABLE".to_owned(), res.table.clone()),
        ("MAILROOM_BUCKET".to_owned(), res.bucket.clone()),
        ("MAILROOM_QUEUE_URL".to_owned(), res.queue_url.clone()),
        ("MAILROOM_DLQ_URL".to_owned(), res.dlq_url.clone()),
        (
            "MAILROOM_FEEDBACK_QUEUE_URL".to_owned(),
            res.feedback_queue_url.clone(),
        ),
        (
            "MAILROOM_CONFIGURATION_SET".to_owned(),
            res.configuration_set.clone(),
        ),
        ("MAILROOM_LINK_BASE_URL".to_owned(), LINK_BASE.to_owned()),
        ("MAILROOM_LINK_KEY_ARN".to_owned(), res.link_key_arn.clone()),
        ("MAILROOM_WEBHOOK_TIMEOUT_SECS".to_owned(), "5".to_owned()),
        (
            "MAILROOM_ALLOW_PRIVATE_TARGETS".to_owned(),
            "true".to_owned(),
        ),
        ("MAILROOM_ALLOW_HTTP_TARGETS".to_owned(), "true".to_owned()),
    ]);
    for (name, value) in settings {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    let lookup = |name: &str| env.get(name).cloned();
    let inbound = inbound::App::new(inbound::Config::from_lookup(lookup).unwrap(), &sdk)
        .await
        .unwrap();
    let feedback =
        feedback::App::new(&feedback::Config::from_lookup(lookup).unwrap(), &sdk).unwrap();
    let links = links::App::new(&links::Config::from_lookup(lookup).unwrap(), &sdk)
        .await
        .unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    World {
        sdk,
        res,
        inbound,
        feedback,
        links,
        store,
        domain,
    }
}

/// Every raw send moto's SES kept, by its message id.
async fn sent_by_ses() -> HashMap<String, Value> {
    ses_raw_sends()
        .await
        .into_iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m))
        .collect()
}

/// The header block of a message and its body, split at the first blank line.
fn split(raw: &[u8]) -> (String, &[u8]) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap();
    (String::from_utf8_lossy(&raw[..at]).into_owned(), &raw[at..])
}

/// The values of header `name` (unfolded) in a header block.
fn values(header: &str, name: &str) -> Vec<String> {
    let unfolded = header.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .collect()
}

impl World {
    async fn route(&self, forward_from: &str) {
        let mut route = Route::new(RECIPIENT.parse().unwrap());
        route.forward = vec![FORWARD_TO.to_owned()];
        route.forward_from = Some(forward_from.to_owned());
        self.store.put_route(&route).await.unwrap();
    }

    /// Stores `raw` as SES would and hands the inbound handler the S3 event; the message's id.
    async fn receive(&self, raw: &[u8]) -> String {
        let (id, event) = store_inbound(&self.sdk, &self.res.bucket, raw.to_vec()).await;
        inbound::handle(&self.inbound, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        id
    }

    /// The one delivery record of a message.
    async fn record(&self, message_id: &str) -> Delivery {
        let items = aws_sdk_dynamodb::Client::new(&self.sdk)
            .query()
            .table_name(&self.res.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("MSG#{message_id}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        assert_eq!(items.len(), 1, "{items:?}");
        mailroom_aws::item::from_item(&items[0]).unwrap()
    }

    async fn object(&self, key: &str) -> Vec<u8> {
        s3(&self.sdk)
            .get_object()
            .bucket(&self.res.bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .to_vec()
    }

    /// Follows a link through the links handler and then the presigned URL it answers with.
    async fn follow(&self, url: &str) -> Vec<u8> {
        follow_link(&self.links, url).await
    }

    /// SES's permanent bounce of `ses_message_id` for `address`, as the feedback function gets it from the
    /// configuration set's event destination: an event in an SNS envelope in an SQS message.
    async fn bounce(&self, ses_message_id: &str, address: &str) {
        let mut event: Value =
            serde_json::from_slice(&std::fs::read(repo("events/sqs-event-bounce.json")).unwrap())
                .unwrap();
        let record = &mut event["Records"][0];
        let mut envelope: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
        let mut message: Value =
            serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
        message["mail"]["messageId"] = Value::String(ses_message_id.to_owned());
        message["mail"]["destination"] = json!([address]);
        message["bounce"]["feedbackId"] = Value::String(unique("feedback"));
        message["bounce"]["bouncedRecipients"] = json!([{
            "emailAddress": address, "action": "failed", "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 user unknown"
        }]);
        envelope["Message"] = Value::String(message.to_string());
        envelope["MessageId"] = Value::String(unique("sns"));
        record["body"] = Value::String(envelope.to_string());
        record["messageId"] = Value::String(unique("sqs"));
        let answer = feedback::handle(&self.feedback, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        assert!(failures(&answer).is_empty(), "{answer}");
    }
}

fn signed_message() -> Vec<u8> {
    format!(
        "Return-Path: <ana.lima@sender.example>\r\n\
         Delivered-To: {RECIPIENT}\r\nDelivered-To: {RECIPIENT}\r\n\
         DKIM-Signature: v=1; a=rsa-sha256; d=sender.example; s=s1; h=from:to:subject; bh=abc=; b=def=\r\n\
         From: Ana Lima <ana.lima@sender.example>\r\nTo: {RECIPIENT}\r\nSubject: Invoice 4821\r\n\
         Date: Fri, 20 Nov 2026 09:59:58 +0000\r\nMessage-ID: <{}@sender.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         The invoice has the wrong address.\r\n-- \r\nAna\r\n",
        unique("m")
    )
    .into_bytes()
}

#[tokio::test]
async fn a_forward_is_sent_recorded_and_its_bounce_suppresses_the_address() {
    let w = world("fwd-e2e", &[]).await;
    let from = format!("forward@{}", w.domain);
    w.route(&from).await;
    let raw = signed_message();
    let id = w.receive(&raw).await;

    // The delivery record points at the outbound record, which points at SES's send and the stored copy.
    let record = w.record(&id).await;
    assert_eq!(record.status.as_str(), "sent", "{record:?}");
    assert_eq!(record.target, format!("forward {FORWARD_TO}"));
    assert_eq!(record.attempts, 1);
    let ses_id = record.outbound_id.clone().expect("the SES message id");
    let outbound = w.store.outbound(&ses_id).await.unwrap().unwrap();
    assert_eq!(outbound.status, OutboundStatus::Sent);
    assert_eq!(outbound.message_id.as_deref(), Some(id.as_str()));
    assert_eq!(outbound.from.as_deref(), Some(from.as_str()));
    assert_eq!(outbound.to, vec![FORWARD_TO]);
    assert_eq!(outbound.subject.as_deref(), Some("Invoice 4821"));
    assert_eq!(
        outbound.expires_at - outbound.sent_at.timestamp(),
        60 * 86_400,
        "kept as long as every record"
    );
    let copy_key = outbound.s3_key.clone().unwrap();
    assert!(
        copy_key.starts_with(&format!("outbound/{id}/")),
        "{copy_key}"
    );

    // What SES got: the rewrite, also kept as the stored copy.
    let sent = sent_by_ses()
        .await
        .remove(&ses_id)
        .expect("moto kept the send");
    let sent_bytes = sent["raw_data"].as_str().unwrap().as_bytes().to_vec();
    assert_eq!(w.object(&copy_key).await, sent_bytes);
    assert_eq!(sent["source"], from.as_str());
    // moto adds the header's addresses after the ones given; SES sends to the given ones only.
    assert_eq!(sent["destinations"][0], FORWARD_TO, "{sent}");
    let (header, body) = split(&sent_bytes);
    assert_eq!(body, split(&raw).1, "the body is byte-identical");
    assert_eq!(
        values(&header, "from"),
        vec![format!("\"Ana Lima via Mailroom\" <{from}>")]
    );
    assert_eq!(
        values(&header, "reply-to"),
        vec!["Ana Lima <ana.lima@sender.example>"]
    );
    assert_eq!(values(&header, "x-original-to"), vec![RECIPIENT]);
    assert!(values(&header, "dkim-signature").is_empty(), "{header}");
    assert!(values(&header, "return-path").is_empty(), "{header}");
    assert!(values(&header, "message-id").is_empty(), "{header}");
    assert_eq!(values(&header, "delivered-to").len(), 1, "{header}");

    // The same event again sends nothing more.
    let sends = sent_by_ses().await.len();
    let event = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": w.res.bucket}, "object": {"key": format!("inbound/{id}"), "size": 1}}
    }]});
    inbound::handle(&w.inbound, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(sent_by_ses().await.len(), sends);

    // SES reports a permanent bounce of that send: the record shows it, the address is suppressed.
    w.bounce(&ses_id, FORWARD_TO).await;
    let outbound = w.store.outbound(&ses_id).await.unwrap().unwrap();
    assert_eq!(outbound.status, OutboundStatus::Bounced);
    assert!(
        outbound
            .history
            .iter()
            .any(|e| e.event == "bounce" && e.recipient.as_deref() == Some(FORWARD_TO)),
        "{outbound:?}"
    );
    let suppression = w.store.suppression(FORWARD_TO).await.unwrap().unwrap();
    assert_eq!(suppression.reason, SuppressionReason::Bounce);
    assert_eq!(suppression.ses_message_id.as_deref(), Some(ses_id.as_str()));

    // The next message for that route sends nothing, and its records say why.
    let sends = sent_by_ses().await.len();
    let next = w.receive(&signed_message()).await;
    assert_eq!(sent_by_ses().await.len(), sends, "nothing was sent");
    let record = w.record(&next).await;
    assert_eq!(record.status.as_str(), "suppressed", "{record:?}");
    let why = record.error.clone().unwrap();
    assert!(
        why.contains("suppression list") && why.contains("bounce"),
        "{why}"
    );
    let unsent = w
        .store
        .outbound(record.outbound_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unsent.status, OutboundStatus::Suppressed);
    assert_eq!(unsent.error.as_deref(), Some(why.as_str()));
    assert_eq!(unsent.to, vec![FORWARD_TO]);
}

#[tokio::test]
async fn an_ses_rejection_is_recorded_and_not_retried() {
    let w = world("fwd-reject", &[]).await;
    // Not a verified identity in moto's SES.
    w.route("someone@unverified.example").await;
    let raw = signed_message();
    let id = unique("msg");
    let key = format!("inbound/{id}");
    s3(&w.sdk)
        .put_object()
        .bucket(&w.res.bucket)
        .key(&key)
        .body(raw.clone().into())
        .send()
        .await
        .unwrap();
    // Through the queue's event shape, so a retry would show as a batch item failure.
    let body = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": w.res.bucket}, "object": {"key": key, "size": raw.len()}}
    }]});
    let sqs = json!({"Records": [{
        "messageId": unique("sqs"), "receiptHandle": "handle", "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1",
                       "ApproximateFirstReceiveTimestamp": chrono::Utc::now().timestamp_millis().to_string()},
        "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:inbound", "awsRegion": "eu-west-1"
    }]});
    let answer = inbound::handle(&w.inbound, LambdaEvent::new(sqs, Context::default()))
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "not retried: {answer}");

    let record = w.record(&id).await;
    assert_eq!(record.status.as_str(), "rejected", "{record:?}");
    let why = record.error.clone().unwrap();
    assert!(why.starts_with("SES "), "SES's own words: {why}");
    let outbound = w
        .store
        .outbound(record.outbound_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outbound.status, OutboundStatus::Rejected);
    assert_eq!(outbound.error.as_deref(), Some(why.as_str()));
}

#[tokio::test]
async fn a_message_over_the_limit_becomes_a_notice_whose_link_fetches_the_original() {
    let w = world("fwd-large", &[("MAILROOM_FORWARD_MAX_BYTES", "2000")]).await;
    let from = format!("forward@{}", w.domain);
    w.route(&from).await;
    let mut raw = signed_message();
    // About 6 kB of body: over the 2,000-byte limit.
    let filler = "A line of the long report that makes this message too large to forward.\r\n";
    raw.extend(filler.repeat(80).into_bytes());
    let id = w.receive(&raw).await;

    let record = w.record(&id).await;
    assert_eq!(record.status.as_str(), "notice_sent", "{record:?}");
    let ses_id = record.outbound_id.clone().unwrap();
    let outbound = w.store.outbound(&ses_id).await.unwrap().unwrap();
    assert_eq!(outbound.status, OutboundStatus::NoticeSent);

    let sent = sent_by_ses().await.remove(&ses_id).unwrap();
    let notice = sent["raw_data"].as_str().unwrap().as_bytes().to_vec();
    assert!(
        notice.len() < 2000,
        "the notice is short: {} bytes",
        notice.len()
    );
    let (header, body) = split(&notice);
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(
        values(&header, "subject"),
        vec!["Too large to forward: Invoice 4821"]
    );
    assert_eq!(
        values(&header, "reply-to"),
        vec!["\"Ana Lima\" <ana.lima@sender.example>"]
    );
    for fact in [
        "From:    Ana Lima <ana.lima@sender.example>",
        "Subject: Invoice 4821",
        "Date:    Fri, 20 Nov 2026 09:59:58 +0000",
        &format!("Size:    {} bytes", raw.len()),
        "the limit is 2 kB",
    ] {
        assert!(body.contains(fact), "{fact:?} in {body}");
    }
    let link = body
        .lines()
        .find(|l| l.starts_with(LINK_BASE))
        .expect("a link to the original");
    assert_eq!(w.follow(link).await, raw, "the link fetches the original");
}
