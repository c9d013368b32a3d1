//! `mailroom redrive` end to end: a delivery that gave up for good is redriven and then delivered, with the
//! same `webhook-id`, on a stack (moto's server, the real inbound handler) and in the dev store (the real
//! use case, then the `mailroom dev` binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{
    REGION, Receiver, Reply, on_emulator, resources, s3, sdk, unique, webhook_route,
};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::mail::envelope::KnownEnvelope;
use mailroom::ports::{MailLocation, RecordQuery, RouteStore, SystemClock};
use mailroom::record::{Delivery, Status};
use mailroom::usecases::inbound::{Inbound, InboundConfig, Outcome, Received};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use mailroom_aws::sqs::{Queue, QueuedMessage};
use mailroom_http::{HttpClient, TargetPolicy};
use mailroom_local::files::LocalMailStore;
use mailroom_local::outbox::Outbox;
use mailroom_local::sqlite::SqliteStore;
use serde_json::{Value, json};

fn raw_mail(recipient: &str) -> String {
    format!(
        "Return-Path: <ana@sender.example>\r\nFrom: ana@sender.example\r\nTo: {recipient}\r\nSubject: again\r\n\r\nhello\r\n"
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}

/// `mailroom redrive` on the stack of `res`.
fn redrive_stack(res: &Resources, args: &[&str]) -> Output {
    on_emulator(&mut Command::new(env!("CARGO_BIN_EXE_mailroom")))
        .arg("redrive")
        .args(args)
        .env("MAILROOM_TABLE", &res.table)
        .env("MAILROOM_QUEUE_URL", &res.queue_url)
        .env("MAILROOM_DLQ_URL", &res.dlq_url)
        .output()
        .unwrap()
}

/// A received SQS message as Lambda hands it to the function.
fn sqs_event(message: &QueuedMessage, queue_url: &str) -> Value {
    let queue_name = queue_url.rsplit('/').next().unwrap();
    json!({"Records": [{
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": message.attributes,
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:{REGION}:123456789012:{queue_name}"),
        "awsRegion": REGION
    }]})
}

async fn only_message(queue: &Queue) -> QueuedMessage {
    let mut received = queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    received.remove(0)
}

#[tokio::test]
async fn redrive_moves_dead_letters_back_and_they_are_then_delivered() {
    let sdk = sdk().await;
    let res = resources(&sdk, "redrive").await;
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "down")]);
    let env = HashMap::from([
        ("MAILROOM_TABLE", res.table.clone()),
        ("MAILROOM_QUEUE_URL", res.queue_url.clone()),
        ("MAILROOM_DLQ_URL", res.dlq_url.clone()),
        ("MAILROOM_WEBHOOK_TIMEOUT_SECS", "5".to_owned()),
        ("MAILROOM_ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ("MAILROOM_ALLOW_HTTP_TARGETS", "true".to_owned()),
    ]);
    let config = inbound::Config::from_lookup(|name| env.get(name).cloned()).unwrap();
    let app = inbound::App::new(config, &sdk).await.unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    store
        .put_route(&webhook_route("*@mail.example.com", receiver.url("/mail")))
        .await
        .unwrap();
    let inbound_queue = Queue::new(&sdk, res.queue_url.clone());
    let dead_letters = Queue::new(&sdk, res.dlq_url.clone());

    let id = unique("redriven");
    let key = format!("inbound/{id}");
    s3(&sdk)
        .put_object()
        .bucket(&res.bucket)
        .key(&key)
        .body(raw_mail("support@mail.example.com").into_bytes().into())
        .send()
        .await
        .unwrap();
    let body = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": res.bucket}, "object": {"key": key, "size": 1}}
    }]})
    .to_string();
    inbound_queue.send(&body).await.unwrap();
    let mut event = sqs_event(&only_message(&inbound_queue).await, &res.queue_url);
    // SQS first handed it out 73 hours ago: the one attempt that fails is the last.
    let long_ago = (chrono::Utc::now() - chrono::Duration::hours(73)).timestamp_millis();
    event["Records"][0]["attributes"]["ApproximateFirstReceiveTimestamp"] =
        json!(long_ago.to_string());
    inbound::handle(&app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let records = store.message(&id).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, Status::Failed, "{:?}", records[0]);
    let failed_webhook_id = receiver.requests()[0].header("webhook-id").to_owned();
    assert!(!failed_webhook_id.is_empty());

    // A dry run lists it and changes nothing.
    let listed = succeeded(&redrive_stack(&res, &["--dry-run"]));
    assert!(listed.contains(&id), "{listed}");
    assert!(
        listed.contains("would move 1 message(s), would reopen 1 delivery(ies)"),
        "{listed}"
    );
    assert_eq!(store.message(&id).await.unwrap()[0].status, Status::Failed);
    let dead = only_message(&dead_letters).await;
    assert_eq!(dead.body, body);
    dead_letters.release(&dead).await.unwrap();
    assert!(
        inbound_queue
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );

    // The receiver is back (it answers 200 from now on): redrive.
    let moved = succeeded(&redrive_stack(&res, &[]));
    assert!(moved.contains(&id), "{moved}");
    assert!(
        moved.contains("moved 1 message(s), reopened 1 delivery(ies)"),
        "{moved}"
    );
    assert!(
        dead_letters
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "the dead-letter queue is empty"
    );
    let record = &store.message(&id).await.unwrap()[0];
    assert_eq!(record.status, Status::Retrying);
    assert_eq!(record.next_attempt_at, None);
    assert_eq!(record.attempts, 1);

    // Lambda takes it from the inbound queue.
    let again = only_message(&inbound_queue).await;
    assert_eq!(again.body, body, "the body is moved unchanged");
    let response = inbound::handle(
        &app,
        LambdaEvent::new(sqs_event(&again, &res.queue_url), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(response["batchItemFailures"], json!([]));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("webhook-id"), failed_webhook_id);
    let record = &store.message(&id).await.unwrap()[0];
    assert_eq!(record.status, Status::Delivered, "{record:?}");
    assert_eq!(record.attempts, 2);
    assert_eq!(
        record.webhook_id.as_deref(),
        Some(failed_webhook_id.as_str())
    );

    let empty = redrive_stack(&res, &[]);
    assert_eq!(empty.status.code(), Some(5), "{}", stdout(&empty));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("dead-letter queue is empty"));
}

#[test]
fn redrive_on_a_stack_needs_both_queue_urls() {
    let out = on_emulator(&mut Command::new(env!("CARGO_BIN_EXE_mailroom")))
        .args(["redrive"])
        .env("MAILROOM_TABLE", "some-table")
        .env("MAILROOM_QUEUE_URL", "http://127.0.0.1:1/queue")
        .env_remove("MAILROOM_DLQ_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAILROOM_DLQ_URL"));
}

fn redrive_dev(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .env_remove("MAILROOM_TABLE")
        .arg("redrive")
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

async fn only_record(store: &SqliteStore, id: &str) -> Delivery {
    let mut records = store.message(id).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    records.remove(0)
}

#[tokio::test]
async fn redrive_requeues_failed_deliveries_of_the_dev_store_and_they_are_then_delivered() {
    let dir = std::env::temp_dir().join(unique("mailroom-redrive"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "down")]);

    // The failure, made by the use case `mailroom dev` runs, 73 hours after the message came in.
    let store = SqliteStore::open(&data.join("mailroom.db")).unwrap();
    store
        .put_route(&webhook_route(
            "support@example.test",
            receiver.url("/mail"),
        ))
        .await
        .unwrap();
    let mail = LocalMailStore::new(data.join("mail"));
    let id = unique("devmsg");
    let key = format!("inbound/{id}");
    mail.put(&key, raw_mail("support@example.test").as_bytes())
        .unwrap();
    let inbound = Inbound::new(
        mail,
        store.clone(),
        HttpClient::new(Duration::from_secs(5), TargetPolicy::LOCAL).unwrap(),
        Outbox::new(data.join("outbox")),
        SystemClock,
        InboundConfig::with_defaults(7),
    );
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(73);
    let outcome = inbound
        .process(&Received {
            location: MailLocation {
                bucket: "local".to_owned(),
                key: key.clone(),
            },
            received_at: long_ago,
            first_seen: long_ago,
            known: KnownEnvelope {
                recipients: Some(vec!["support@example.test".to_owned()]),
                from: Some("ana@sender.example".to_owned()),
                ..KnownEnvelope::default()
            },
            size: None,
        })
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::GaveUp);
    assert_eq!(only_record(&store, &id).await.status, Status::Failed);
    let failed_webhook_id = receiver.requests()[0].header("webhook-id").to_owned();
    drop(inbound);
    drop(store);

    let listed = succeeded(&redrive_dev(&data, &["--dry-run"]));
    assert!(listed.contains(&id), "{listed}");
    assert!(listed.contains("would reopen 1 delivery(ies)"), "{listed}");
    let store = SqliteStore::open(&data.join("mailroom.db")).unwrap();
    assert_eq!(only_record(&store, &id).await.status, Status::Failed);
    assert_eq!(store.pending_count().unwrap(), 0);

    let requeued = succeeded(&redrive_dev(&data, &[]));
    assert!(
        requeued.contains("re-queued 1 message(s), reopened 1 delivery(ies)"),
        "{requeued}"
    );
    assert_eq!(only_record(&store, &id).await.status, Status::Retrying);
    assert_eq!(store.pending_count().unwrap(), 1);
    let nothing = redrive_dev(&data, &[]);
    assert_eq!(nothing.status.code(), Some(5), "nothing is failed any more");

    // A stopped server takes the queued message at its next start.
    let mut dev = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .env_remove("MAILROOM_TABLE")
        .current_dir(&dir)
        .args([
            "dev",
            "--smtp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut status = Status::Retrying;
    while started.elapsed() < Duration::from_secs(20) {
        status = only_record(&store, &id).await.status;
        if status == Status::Delivered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    dev.kill().unwrap();
    dev.wait().unwrap();
    assert_eq!(status, Status::Delivered);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("webhook-id"), failed_webhook_id);
    assert_eq!(store.pending_count().unwrap(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
