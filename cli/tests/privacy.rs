//! Data-protection requests as a data subject would make them, on a stack (moto's server, records
//! written by the real inbound handler) and on the dev store: an export hands out no secret, token or
//! credentials; mail found only by its `From:` header, or kept by a route that redacts addresses, is
//! exported and erased with everything else; and the link key rotates with `mailroom links rotate-key`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::Duration;

use chrono::Utc;
use integration_tests::{
    Receiver, files_containing, on_emulator, resources, s3, sdk, store_inbound, unique,
};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::format::Format;
use mailroom::ports::RouteStore;
use mailroom::route::{AttachmentMode, Redact, Route, WebhookTarget};
use mailroom_aws::dynamo::DynamoStore;
use serde_json::Value;

/// The person asking.
const ADDRESS: &str = "carla@example.org";

fn mailroom(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    on_emulator(&mut command)
        .args(args)
        .env_remove("MAILROOM_BUCKET")
        .env_remove("MAILROOM_LINK_KEY_ARN");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn export(env: &[(&str, &str)], extra: &[&str]) -> Value {
    exported(env, extra, 0)
}

/// An export that exits with `code` (5: nothing held).
fn exported(env: &[(&str, &str)], extra: &[&str], code: i32) -> Value {
    let mut args = vec!["data", "export", "--address", ADDRESS];
    args.extend(extra);
    let out = mailroom(env, &args);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Mail whose envelope sender is a sending service's bounce address: only `From:` (and `Reply-To:`)
/// name the person.
fn mail_from_header(to: &str) -> Vec<u8> {
    format!(
        "Return-Path: <bounces+8812@esp.example>\r\nFrom: Carla <{ADDRESS}>\r\n\
         Reply-To: \"Carla (other)\" <carla.other@example.org>\r\nTo: {to}\r\n\
         Subject: my contract\r\nMessage-ID: <{}@esp.example>\r\n\r\nplease delete me\r\n",
        unique("m")
    )
    .into_bytes()
}

fn assert_no_secret(export: &Value) {
    let json = export.to_string();
    for secret in [
        "whsec_",
        "SUPERSECRET",
        "EVENTSECRET",
        "hunter2",
        "/hook",
        "bob@",
    ] {
        assert!(!json.contains(secret), "{secret} in {json}");
    }
}

#[test]
fn an_export_names_routes_by_pattern_kind_and_host_only_on_the_dev_store() {
    let dir = std::env::temp_dir().join(unique("mailroom-privacy-export"));
    let data = dir.join("data");
    let data_arg = data.to_str().unwrap();
    let added = mailroom(
        &[],
        &[
            "routes",
            "add",
            ADDRESS,
            "--webhook",
            "https://app:hunter2@app.example.com/hook?token=SUPERSECRET",
            "--generate-secret",
            "--forward",
            "bob@team.example",
            "--events",
            "https://events.example.com/e?key=EVENTSECRET",
            "--data",
            data_arg,
        ],
    );
    assert!(added.status.success(), "{}", text(&added));
    assert!(
        String::from_utf8_lossy(&added.stdout).contains("whsec_"),
        "the operator is shown the new secret once"
    );
    let exported = export(&[], &["--data", data_arg]);
    assert_no_secret(&exported);
    let route = &exported["routes"][0];
    assert_eq!(route["pattern"], ADDRESS);
    assert_eq!(route["names_address_as"][0], "pattern");
    let targets: Vec<(String, String)> = route["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap().to_owned(),
                t["host"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("webhook".to_owned(), "https://app.example.com".to_owned()),
            ("forward".to_owned(), "team.example".to_owned()),
            ("events".to_owned(), "https://events.example.com".to_owned()),
        ]
    );

    // Without a secret the operator is warned: the posts cannot be told from forgeries.
    let unsigned = mailroom(
        &[],
        &[
            "routes",
            "add",
            "*@example.org",
            "--webhook",
            "https://app.example.com/other",
            "--data",
            data_arg,
        ],
    );
    assert!(unsigned.status.success(), "{}", text(&unsigned));
    let warned = String::from_utf8_lossy(&unsigned.stderr);
    assert!(
        warned.contains("warning") && warned.contains("unsigned"),
        "{warned}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

struct Stack {
    sdk: aws_config::SdkConfig,
    table: String,
    bucket: String,
    app: inbound::App,
}

impl Stack {
    fn env(&self) -> [(&str, &str); 2] {
        [
            ("MAILROOM_TABLE", self.table.as_str()),
            ("MAILROOM_BUCKET", self.bucket.as_str()),
        ]
    }

    async fn receive(&self, raw: Vec<u8>) -> String {
        let (id, event) = store_inbound(&self.sdk, &self.bucket, raw).await;
        let _ = inbound::handle(&self.app, LambdaEvent::new(event, Context::default())).await;
        id
    }

    /// Every string of every item of the table, routes aside.
    async fn table_text(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page = aws_sdk_dynamodb::Client::new(&self.sdk)
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let pk = item["pk"].as_s().unwrap().clone();
                if pk != "ROUTE" {
                    all.push((pk, format!("{item:?}").to_lowercase()));
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        all
    }

    async fn bucket_text(&self) -> Vec<(String, String)> {
        let client = s3(&self.sdk);
        let listed = client
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        let mut all = Vec::new();
        for object in listed.contents() {
            let key = object.key().unwrap().to_owned();
            let body = client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
            all.push((key, String::from_utf8_lossy(&body).to_lowercase()));
        }
        all
    }
}

fn webhook(url: String) -> WebhookTarget {
    WebhookTarget {
        url,
        format: Format::Json,
        secrets: Vec::new(),
        attachments: AttachmentMode::Inline,
        disabled: None,
    }
}

#[tokio::test]
async fn mail_found_only_by_its_from_header_is_exported_and_erased_on_the_stack() {
    let sdk = sdk().await;
    let res = resources(&sdk, "privacy-from").await;
    let env: HashMap<&str, String> = HashMap::from([
        ("MAILROOM_TABLE", res.table.clone()),
        ("MAILROOM_ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ("MAILROOM_ALLOW_HTTP_TARGETS", "true".to_owned()),
        ("MAILROOM_WEBHOOK_TIMEOUT_SECS", "5".to_owned()),
    ]);
    let app = inbound::App::new(
        inbound::Config::from_lookup(|name| env.get(name).cloned()).unwrap(),
        &sdk,
    )
    .await
    .unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    let receiver = Receiver::start().await;
    let mut support = Route::new("support@mail.example.com".parse().unwrap());
    support.webhook = Some(webhook(receiver.url("/support")));
    let mut private = Route::new("private@mail.example.com".parse().unwrap());
    private.webhook = Some(webhook(receiver.url("/private")));
    private.redact = vec![Redact::Sender, Redact::Recipient, Redact::Subject];
    for route in [&support, &private] {
        store.put_route(route).await.unwrap();
    }
    let stack = Stack {
        sdk,
        table: res.table.clone(),
        bucket: res.bucket.clone(),
        app,
    };
    let plain = stack
        .receive(mail_from_header("support@mail.example.com"))
        .await;
    let redacted = stack
        .receive(mail_from_header("private@mail.example.com"))
        .await;
    let other = stack
        .receive(
            b"Return-Path: <dora@other.example>\r\nFrom: dora@other.example\r\n\
              To: support@mail.example.com\r\nSubject: x\r\n\r\nhi\r\n"
                .to_vec(),
        )
        .await;
    assert_eq!(receiver.requests().len(), 3);
    // The redacting route's record holds none of Carla's addresses.
    let before = stack.table_text().await;
    let redacted_items: Vec<&String> = before
        .iter()
        .filter(|(pk, _)| pk.ends_with(&redacted))
        .map(|(_, text)| text)
        .collect();
    assert!(!redacted_items.is_empty());
    for item in &redacted_items {
        assert!(
            !item.contains("carla") && !item.contains("my contract"),
            "{item}"
        );
    }

    let env = stack.env();
    // A route naming her, with a signing secret and a token in its URL.
    let added = mailroom(
        &env,
        &[
            "routes",
            "add",
            ADDRESS,
            "--webhook",
            "https://app.example.com/hook?token=SUPERSECRET",
            "--generate-secret",
        ],
    );
    assert!(added.status.success(), "{}", text(&added));
    for address in [ADDRESS, "carla.other@example.org"] {
        let out = mailroom(&env, &["data", "export", "--address", address]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let held: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_no_secret(&held);
        let mut messages: Vec<String> = held["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect();
        messages.sort();
        let mut expected = vec![plain.clone(), redacted.clone()];
        expected.sort();
        assert_eq!(messages, expected, "{address}: {held}");
        let objects = held["objects"].to_string();
        assert!(
            objects.contains(&plain) && objects.contains(&redacted),
            "{held}"
        );
        assert!(!objects.contains(&other), "{held}");
    }

    let deleted = mailroom(&env, &["data", "delete", "--address", ADDRESS, "--yes"]);
    assert!(deleted.status.success(), "{}", text(&deleted));
    for (pk, item) in stack.table_text().await {
        assert!(!item.contains("carla"), "{pk} still names her: {item}");
    }
    for (key, body) in stack.bucket_text().await {
        assert!(!body.contains("carla"), "{key} still holds her mail");
    }
    let left: Vec<String> = stack
        .bucket_text()
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, [format!("inbound/{other}")], "other mail stays");
    let after = export(&env, &[]);
    assert_eq!(after["deliveries"], serde_json::json!([]), "{after}");
    assert_eq!(
        after["routes"][0]["targets"][0]["host"],
        "https://app.example.com"
    );
    assert_no_secret(&after);
}

#[tokio::test]
async fn mail_found_only_by_its_from_header_is_erased_from_every_dev_store_file() {
    use mailroom::mail::envelope::KnownEnvelope;
    use mailroom::ports::{MailLocation, SystemClock};
    use mailroom::usecases::inbound::{Inbound, InboundConfig, Received};
    use mailroom_http::{HttpClient, TargetPolicy};
    use mailroom_local::files::LocalMailStore;
    use mailroom_local::outbox::Outbox;
    use mailroom_local::sqlite::SqliteStore;

    let dir = std::env::temp_dir().join(unique("mailroom-privacy-dev"));
    let data = dir.join("data");
    let receiver = Receiver::start().await;
    {
        mailroom_local::private::create_dir_all(&data).unwrap();
        let store = SqliteStore::open(&data.join("mailroom.db")).unwrap();
        let mail = LocalMailStore::new(data.join("mail"));
        let mut support = Route::new("support@example.test".parse().unwrap());
        support.webhook = Some(webhook(receiver.url("/support")));
        let mut private = Route::new("private@example.test".parse().unwrap());
        private.webhook = Some(webhook(receiver.url("/private")));
        private.redact = vec![Redact::Sender, Redact::Recipient];
        for route in [&support, &private] {
            store.put_route(route).await.unwrap();
        }
        let inbound = Inbound::new(
            mail.clone(),
            store.clone(),
            HttpClient::new(Duration::from_secs(5), TargetPolicy::LOCAL).unwrap(),
            Outbox::new(data.join("outbox")),
            SystemClock,
            InboundConfig::with_defaults(60),
        );
        for to in ["support@example.test", "private@example.test"] {
            let key = format!("inbound/{}", unique("dev"));
            mail.put(&key, &mail_from_header(to)).unwrap();
            let received = Received {
                location: MailLocation {
                    bucket: "local".to_owned(),
                    key,
                },
                received_at: Utc::now(),
                first_seen: Utc::now(),
                known: KnownEnvelope {
                    recipients: Some(vec![to.to_owned()]),
                    from: Some("bounces+8812@esp.example".to_owned()),
                    ..KnownEnvelope::default()
                },
                size: None,
            };
            inbound.process(&received).await.unwrap();
        }
    }
    assert_eq!(receiver.requests().len(), 2);
    let data_arg = data.to_str().unwrap();
    let held = export(&[], &["--data", data_arg]);
    assert_eq!(held["deliveries"].as_array().unwrap().len(), 2, "{held}");
    assert_eq!(held["objects"].as_array().unwrap().len(), 2, "{held}");

    let deleted = mailroom(
        &[],
        &[
            "data",
            "delete",
            "--address",
            ADDRESS,
            "--yes",
            "--data",
            data_arg,
        ],
    );
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert_eq!(files_containing(&data, "carla"), Vec::<String>::new());
    let after = exported(&[], &["--data", data_arg], 5);
    assert_eq!(after["deliveries"], serde_json::json!([]), "{after}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn rotate_key_keeps_the_previous_key_on_the_stack_and_in_the_dev_store() {
    let sdk = sdk().await;
    let res = resources(&sdk, "privacy-rotate").await;
    let secrets = mailroom_aws::secrets::client(&sdk);
    let before = mailroom_aws::secrets::link_keys(&secrets, &res.link_key_arn)
        .await
        .unwrap();
    let out = mailroom(
        &[("MAILROOM_LINK_KEY_ARN", &res.link_key_arn)],
        &["links", "rotate-key"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let after = mailroom_aws::secrets::link_keys(&secrets, &res.link_key_arn)
        .await
        .unwrap();
    assert_ne!(after.current().id(), before.current().id());
    assert_eq!(
        after.previous().map(|k| k.id().to_owned()),
        Some(before.current().id().to_owned())
    );
    let link = before
        .current()
        .token("attachments/m/0", Utc::now() + chrono::Duration::days(7));
    assert_eq!(
        after.verify(&link, Utc::now()).as_deref(),
        Some("attachments/m/0")
    );
    assert!(text(&out).contains(after.current().id()), "{}", text(&out));

    // The dev store: DATA/link-key gets the new key first and keeps the one before.
    let dir = std::env::temp_dir().join(unique("mailroom-privacy-rotate"));
    let data = dir.join("data");
    mailroom_local::private::create_dir_all(&data).unwrap();
    let key = mailroom::deliver::links::LinkKey::generate().unwrap();
    mailroom_local::private::write(&data.join("link-key"), format!("{key}\n").as_bytes()).unwrap();
    let old = mailroom::deliver::links::LinkKey::parse(&key).unwrap();
    let out = mailroom(
        &[],
        &["links", "rotate-key", "--data", data.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let keys = mailroom::deliver::links::LinkKeys::parse(
        &std::fs::read_to_string(data.join("link-key")).unwrap(),
    )
    .unwrap();
    assert_eq!(keys.previous().map(|k| k.id()), Some(old.id()));
    assert_ne!(keys.current().id(), old.id());
    std::fs::remove_dir_all(&dir).unwrap();
}
