//! `mailroom messages` on a stack's table (moto's server): records the real inbound handler wrote, listed
//! through the table's indexes with every filter, shown, and the stored original fetched from the bucket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use integration_tests::{Receiver, on_emulator, printed_array, resources, sdk, store_inbound};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::aws::dynamo::DynamoStore;
use mailroom::aws::setup::Resources;
use mailroom::format::Format;
use mailroom::ports::RouteStore;
use mailroom::route::{AttachmentMode, Route, WebhookTarget};
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
    let lookup = |name: &str| match name {
        "MAILROOM_TABLE" => Some(res.table.clone()),
        "MAILROOM_ALLOW_PRIVATE_TARGETS" => Some("true".to_owned()),
        _ => None,
    };
    let app = inbound::App::new(inbound::Config::from_lookup(lookup).unwrap(), &sdk)
        .await
        .unwrap();
    let mut route = Route::new("*@mail.example.com".parse().unwrap());
    route.webhook = Some(WebhookTarget {
        url: receiver.url("/mail"),
        format: Format::Json,
        secrets: Vec::new(),
        attachments: AttachmentMode::Inline,
        disabled: None,
    });
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone())
        .put_route(&route)
        .await
        .unwrap();

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
