//! `mailroom messages` on a stack's table (moto's server): records the real inbound handler wrote, listed
//! through the table's indexes with every filter, shown, and the stored original fetched from the bucket.
//! And `--stack NAME`: every operator command finds the table, bucket and queues in the stack's outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use integration_tests::{Receiver, on_emulator, printed_array, resources, sdk, store_inbound};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::ports::RouteStore;
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use serde_json::Value;

fn mailroom(res: &Resources, args: &[&str]) -> Output {
    on_emulator(&mut Command::new(env!("CARGO_BIN_EXE_mailroom")))
        .args(args)
        .env("MAILROOM_TABLE", &res.table)
        .env("MAILROOM_BUCKET", &res.bucket)
        .output()
        .unwrap()
}

fn listed(res: &Resources, filters: &[&str]) -> Vec<Value> {
    let mut args = vec!["messages", "list", "--json"];
    args.extend(filters);
    printed_array(&mailroom(res, &args))
}

/// A JSON route of `pattern` to `url`, in the resources' table.
async fn webhook_route(sdk: &aws_config::SdkConfig, res: &Resources, pattern: &str, url: &str) {
    let route = integration_tests::webhook_route(pattern, url.to_owned());
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), res.table.clone())
        .put_route(&route)
        .await
        .unwrap();
}

/// (sender, recipient) of each listed record, sorted.
fn pairs(records: &[Value]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["sender"].as_str().unwrap().to_owned(),
                r["recipient"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn pair(sender: &str, recipient: &str) -> (String, String) {
    (sender.to_owned(), recipient.to_owned())
}

#[tokio::test]
async fn messages_are_listed_by_recipient_sender_status_and_time_and_shown() {
    let sdk = sdk().await;
    let res = resources(&sdk, "msgs").await;
    let receiver = Receiver::start().await;
    let app = inbound_app(&sdk, &res).await;
    webhook_route(&sdk, &res, "*@mail.example.com", &receiver.url("/mail")).await;

    let mut ids = Vec::new();
    for (sender, recipient) in [
        ("ana@sender.example", "support@mail.example.com"),
        ("ana@sender.example", "billing@mail.example.com"),
        ("Bruno@Sender.Example", "Support@Mail.Example.com"),
    ] {
        let raw = format!(
            "Return-Path: <{sender}>\r\nFrom: {sender}\r\nTo: {recipient}\r\nSubject: for {recipient}\r\n\r\nhello\r\n"
        );
        let (id, event) = store_inbound(&sdk, &res.bucket, raw.into_bytes()).await;
        inbound::handle(&app, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        ids.push(id);
    }

    let all = listed(&res, &[]);
    assert_eq!(all.len(), 3, "{all:?}");
    // Newest first.
    assert_eq!(all[0]["message_id"], ids[2].as_str());
    assert_eq!(
        pairs(&listed(&res, &["--recipient", "SUPPORT@mail.example.com"])),
        [
            pair("Bruno@Sender.Example", "Support@Mail.Example.com"),
            pair("ana@sender.example", "support@mail.example.com")
        ]
    );
    assert_eq!(
        pairs(&listed(&res, &["--sender", "bruno@sender.example"])),
        [pair("Bruno@Sender.Example", "Support@Mail.Example.com")]
    );
    assert_eq!(
        pairs(&listed(
            &res,
            &[
                "--recipient",
                "support@mail.example.com",
                "--sender",
                "ana@sender.example"
            ]
        )),
        [pair("ana@sender.example", "support@mail.example.com")]
    );
    assert_eq!(listed(&res, &["--status", "delivered"]).len(), 3);
    assert_eq!(listed(&res, &["--status", "failed"]).len(), 0);
    assert_eq!(listed(&res, &["--since", "1h", "--limit", "2"]).len(), 2);
    assert_eq!(
        listed(&res, &["--recipient", "nobody@mail.example.com"]).len(),
        0
    );

    // Nothing matched, for people: its own exit code.
    let none = mailroom(&res, &["messages", "list", "--status", "failed"]);
    assert_eq!(none.status.code(), Some(5));

    let shown = mailroom(&res, &["messages", "show", &ids[1], "--json"]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let records: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(records[0]["recipient"], "billing@mail.example.com");
    assert_eq!(records[0]["history"][0]["status_code"], 200);
    let raw = mailroom(&res, &["messages", "show", &ids[1], "--raw"]);
    assert!(raw.status.success());
    assert!(
        String::from_utf8_lossy(&raw.stdout).starts_with("Return-Path: <ana@sender.example>\r\n")
    );
    let unknown = mailroom(&res, &["messages", "show", "no-such-message"]);
    assert_eq!(unknown.status.code(), Some(5));
}

/// A stack in moto whose outputs name `res`, as a deployed Mailroom stack's do.
async fn stack_naming(sdk: &aws_config::SdkConfig, res: &Resources) -> String {
    let stack = integration_tests::unique("stack");
    let outputs = [
        ("Table", res.table.as_str()),
        ("Bucket", res.bucket.as_str()),
        ("QueueUrl", res.queue_url.as_str()),
        ("DeadLetterQueueUrl", res.dlq_url.as_str()),
    ];
    integration_tests::stack_with_outputs(sdk, &stack, &outputs).await;
    stack
}

/// The inbound function on the resources' table, allowed to post to the test's receiver.
async fn inbound_app(sdk: &aws_config::SdkConfig, res: &Resources) -> inbound::App {
    let lookup = |name: &str| match name {
        "MAILROOM_TABLE" => Some(res.table.clone()),
        "MAILROOM_ALLOW_PRIVATE_TARGETS" | "MAILROOM_ALLOW_HTTP_TARGETS" => Some("true".to_owned()),
        _ => None,
    };
    inbound::App::new(inbound::Config::from_lookup(lookup).unwrap(), sdk)
        .await
        .unwrap()
}

#[tokio::test]
async fn stack_names_its_resources_for_every_command() {
    let sdk = sdk().await;
    let res = resources(&sdk, "stack").await;
    let stack = stack_naming(&sdk, &res).await;
    let receiver = Receiver::start().await;
    // MAILROOM_TABLE stays unset: the stack's outputs name the table and the bucket.
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailroom"));
        on_emulator(&mut command)
            .args(args)
            .args(["--stack", &stack])
            .env_remove("MAILROOM_BUCKET")
            .output()
            .unwrap()
    };
    let url = receiver.url("/stack");
    let added = run(&["routes", "add", "help@mail.example.com", "--webhook", &url]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    // The route the CLI added is the one the inbound handler uses.
    let app = inbound_app(&sdk, &res).await;
    let raw = b"Return-Path: <ana@sender.example>\r\nFrom: ana@sender.example\r\nTo: help@mail.example.com\r\nSubject: hi\r\n\r\nhello\r\n";
    let (id, event) = store_inbound(&sdk, &res.bucket, raw.to_vec()).await;
    inbound::handle(&app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(receiver.requests().len(), 1);

    let listed = printed_array(&run(&["messages", "list", "--json"]));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["message_id"], id.as_str());
    let raw_out = run(&["messages", "show", &id, "--raw"]);
    assert_eq!(
        raw_out.stdout,
        raw.to_vec(),
        "the bucket came from the outputs"
    );
    assert!(run(&["suppressions", "list", "--json"]).status.success());
    let exported = run(&["data", "export", "--address", "ana@sender.example"]);
    let held: Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(held["deliveries"].as_array().unwrap().len(), 1);
    let redrive = run(&["redrive", "--dry-run"]);
    assert_eq!(redrive.status.code(), Some(5), "an empty dead-letter queue");

    let mut missing = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    let missing = on_emulator(&mut missing)
        .args(["messages", "list", "--stack", "no-such-stack"])
        .output()
        .unwrap();
    assert_eq!(
        missing.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

// The receiver answers the `mailroom` process while this test waits for it: a second worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_delivers_a_rejected_message_again_with_the_same_webhook_id() {
    let sdk = sdk().await;
    let res = resources(&sdk, "resend").await;
    let receiver = Receiver::start().await;
    webhook_route(&sdk, &res, "help@mail.example.com", &receiver.url("/help")).await;
    let app = inbound_app(&sdk, &res).await;
    receiver.reply([integration_tests::Reply::new(400, "no such ticket")]);
    let raw = b"Return-Path: <ana@sender.example>\r\nFrom: ana@sender.example\r\nTo: help@mail.example.com\r\nSubject: hi\r\n\r\nhello\r\n";
    let (id, event) = store_inbound(&sdk, &res.bucket, raw.to_vec()).await;
    inbound::handle(&app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let shown = |res: &Resources| {
        let out = mailroom(res, &["messages", "show", &id, "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
    };
    assert_eq!(shown(&res)["status"], "rejected");

    let elsewhere = mailroom(
        &res,
        &[
            "messages",
            "resend",
            &id,
            "--target",
            "webhook https://elsewhere.example/",
        ],
    );
    assert_eq!(elsewhere.status.code(), Some(5), "no such target");

    receiver.reply([integration_tests::Reply::new(200, "ok")]);
    let resent = on_emulator(&mut Command::new(env!("CARGO_BIN_EXE_mailroom")))
        .args(["messages", "resend", &id])
        .env("MAILROOM_TABLE", &res.table)
        .env("MAILROOM_BUCKET", &res.bucket)
        .env("MAILROOM_ALLOW_PRIVATE_TARGETS", "true")
        .env("MAILROOM_ALLOW_HTTP_TARGETS", "true")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&resent.stdout);
    assert!(
        resent.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&resent.stderr)
    );
    assert!(said.contains("delivered after 2 attempt(s)"), "{said}");
    let record = shown(&res);
    assert_eq!(record["status"], "delivered");
    assert_eq!(record["history"].as_array().unwrap().len(), 2);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id"),
        "the same webhook-id on the new attempt"
    );
    let again = mailroom(&res, &["messages", "resend", &id]);
    assert_eq!(
        again.status.code(),
        Some(5),
        "nothing rejected or failed any more"
    );
}
