//! `mailroom data export|delete` on a stack (moto's server, records written by the real inbound handler)
//! and on the dev store: export finds both sides of a message and everything around it; delete leaves no
//! trace of the address in the table (scanned), the bucket (listed) or the dev store's files, cancels a
//! pending delivery, and keeps routes and other people's mail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use integration_tests::{
    LINK_BASE, Receiver, Reply, files_containing, on_emulator, resources, s3, sdk, store_inbound,
    unique, verified_domain,
};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::feedback::{CountedBounce, SoftBounces, Suppression, SuppressionReason};
use mailroom::format::Format;
use mailroom::ports::{RouteStore, SoftBounceStore, SuppressionList};
use mailroom::route::{AttachmentMode, Route, WebhookTarget};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use serde_json::{Value, json};

/// The address a data-protection request is about.
const ADDRESS: &str = "carla@example.org";

fn mailroom(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    on_emulator(&mut command)
        .args(args)
        .env_remove("MAILROOM_BUCKET");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn export(env: &[(&str, &str)], extra: &[&str]) -> (Value, Option<i32>) {
    let mut args = vec!["data", "export", "--address", "Carla@Example.org"];
    args.extend(extra);
    let out = mailroom(env, &args);
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (value, out.status.code())
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// A message with one attachment, from `from` to `to`.
fn message(from: &str, to: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{from}>\r\nFrom: {from}\r\nTo: {to}\r\nSubject: my contract\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"c.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    .into_bytes()
}

fn suppression(at: chrono::DateTime<Utc>) -> Suppression {
    Suppression {
        address: ADDRESS.to_owned(),
        reason: SuppressionReason::Manual,
        created_at: at,
        feedback_id: None,
        ses_message_id: None,
        detail: Some("asked by phone".to_owned()),
    }
}

fn soft_bounces(at: chrono::DateTime<Utc>) -> SoftBounces {
    SoftBounces {
        address: ADDRESS.to_owned(),
        bounces: vec![CountedBounce {
            at,
            key: "bounce-1".to_owned(),
        }],
        expires_at: (at + chrono::Duration::days(7)).timestamp(),
        version: 0,
    }
}

/// Every string in an item, nested ones included.
fn strings(value: &AttributeValue, out: &mut Vec<String>) {
    match value {
        AttributeValue::S(s) => out.push(s.clone()),
        AttributeValue::L(list) => list.iter().for_each(|v| strings(v, out)),
        AttributeValue::M(map) => map.values().for_each(|v| strings(v, out)),
        AttributeValue::Ss(list) => out.extend(list.iter().cloned()),
        _ => {}
    }
}

struct Stack {
    sdk: aws_config::SdkConfig,
    res: Resources,
    app: inbound::App,
    store: DynamoStore,
}

impl Stack {
    fn env(&self) -> [(&str, &str); 2] {
        [
            ("MAILROOM_TABLE", self.res.table.as_str()),
            ("MAILROOM_BUCKET", self.res.bucket.as_str()),
        ]
    }

    /// Stores `raw` as SES would and runs the inbound handler on its S3 event; the message's id.
    async fn receive(&self, raw: Vec<u8>) -> (String, Value) {
        let (id, event) = store_inbound(&self.sdk, &self.res.bucket, raw).await;
        self.handle(event.clone()).await;
        (id, event)
    }

    async fn handle(&self, event: Value) {
        // A retrying delivery makes the direct-trigger handler answer with a retryable error; either way
        // the record is written.
        let _ = inbound::handle(&self.app, LambdaEvent::new(event, Context::default())).await;
    }

    /// Every item of the table as its strings, routes aside.
    async fn table_strings(&self) -> Vec<(String, Vec<String>)> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page = aws_sdk_dynamodb::Client::new(&self.sdk)
                .scan()
                .table_name(&self.res.table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let pk = item["pk"].as_s().unwrap().clone();
                if pk == "ROUTE" {
                    continue;
                }
                let mut found = Vec::new();
                item.values().for_each(|v| strings(v, &mut found));
                all.push((pk, found));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        all
    }

    async fn bucket_keys(&self) -> Vec<String> {
        s3(&self.sdk)
            .list_objects_v2()
            .bucket(&self.res.bucket)
            .send()
            .await
            .unwrap()
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn export_and_delete_on_the_stack() {
    let sdk = sdk().await;
    let res = resources(&sdk, "data").await;
    let domain = verified_domain(&sdk, "data").await;
    let env: HashMap<&str, String> = HashMap::from([
        ("MAILROOM_TABLE", res.table.clone()),
        ("MAILROOM_BUCKET", res.bucket.clone()),
        ("MAILROOM_CONFIGURATION_SET", res.configuration_set.clone()),
        ("MAILROOM_LINK_BASE_URL", LINK_BASE.to_owned()),
        ("MAILROOM_LINK_KEY_ARN", res.link_key_arn.clone()),
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
    let stack = Stack {
        sdk,
        res,
        app,
        store,
    };
    let receiver = Receiver::start().await;
    let webhook = |path: &str| WebhookTarget {
        url: receiver.url(path),
        format: Format::Json,
        secrets: Vec::new(),
        attachments: AttachmentMode::S3,
        disabled: None,
    };
    let mut support = Route::new("support@mail.example.com".parse().unwrap());
    support.webhook = Some(webhook("/support"));
    support.forward = vec!["ana@example.net".to_owned()];
    support.forward_from = Some(format!("forward@{domain}"));
    let mut slow = Route::new("slow@mail.example.com".parse().unwrap());
    slow.webhook = Some(webhook("/slow"));
    let mut alerts = Route::new("alerts@mail.example.com".parse().unwrap());
    alerts.forward = vec![ADDRESS.to_owned()];
    for route in [&support, &slow, &alerts] {
        stack.store.put_route(route).await.unwrap();
    }

    // Carla writes to support (posted, its attachment stored for links, forwarded); Dora writes too;
    // Carla's mail to `slow` is waiting for a retry.
    let (carla, _) = stack
        .receive(message(ADDRESS, "support@mail.example.com"))
        .await;
    let (dora, _) = stack
        .receive(message("dora@other.example", "support@mail.example.com"))
        .await;
    receiver.reply([Reply::new(503, "busy")]);
    let (pending, pending_event) = stack
        .receive(message("Carla@Example.org", "slow@mail.example.com"))
        .await;
    let now = Utc::now();
    stack.store.suppress(&suppression(now)).await.unwrap();
    assert!(
        stack
            .store
            .put_soft_bounces(&soft_bounces(now), None)
            .await
            .unwrap()
    );

    let (held, code) = export(&stack.env(), &[]);
    assert_eq!(code, Some(0), "{held}");
    assert_eq!(held["address"], ADDRESS);
    let mut messages: Vec<&str> = held["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message_id"].as_str().unwrap())
        .collect();
    messages.sort();
    let mut expected = vec![carla.as_str(), carla.as_str(), pending.as_str()];
    expected.sort();
    assert_eq!(
        messages, expected,
        "the webhook and forward of one, the pending one"
    );
    assert_eq!(
        held["outbound"].as_array().unwrap().len(),
        1,
        "the forward of Carla's mail"
    );
    assert_eq!(held["suppression"]["detail"], "asked by phone");
    assert_eq!(held["soft_bounces"]["bounces"][0]["key"], "bounce-1");
    assert_eq!(held["routes"].as_array().unwrap().len(), 1);
    let objects = keys(&held["objects"]);
    for wanted in [
        format!("inbound/{carla}"),
        format!("attachments/{carla}/0"),
        format!("inbound/{pending}"),
    ] {
        assert!(objects.contains(&wanted), "{wanted} in {objects:?}");
    }
    assert!(
        objects
            .iter()
            .any(|k| k.starts_with(&format!("outbound/{carla}/"))),
        "{objects:?}"
    );
    assert!(!objects.iter().any(|k| k.contains(&dora)), "{objects:?}");

    // Without --yes and without a terminal nothing happens.
    let refused = mailroom(&stack.env(), &["data", "delete", "--address", ADDRESS]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(export(&stack.env(), &[]).0, held);

    let deleted = mailroom(
        &stack.env(),
        &["data", "delete", "--address", ADDRESS, "--yes"],
    );
    let said = String::from_utf8_lossy(&deleted.stdout);
    assert!(
        deleted.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    assert!(
        said.contains("2 record(s), 1 pending delivery(ies) cancelled, 1 outbound record(s)"),
        "{said}"
    );

    // The late retry of the cancelled delivery finds its mail gone and its record final.
    receiver.reply([Reply::new(200, "ok")]);
    let before = receiver.requests().len();
    stack.handle(pending_event).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        receiver.requests().len(),
        before,
        "nothing delivered after erasure"
    );

    // No item of the table holds the address, in any case; no object of Carla's mail is left.
    for (pk, found) in stack.table_strings().await {
        for text in found {
            assert!(
                !text.to_lowercase().contains(ADDRESS),
                "{pk} still holds the address: {text}"
            );
        }
    }
    let left = stack.bucket_keys().await;
    assert!(
        !left
            .iter()
            .any(|k| k.contains(&carla) || k.contains(&pending)),
        "{left:?}"
    );
    assert!(
        left.contains(&format!("inbound/{dora}")),
        "other mail stays: {left:?}"
    );
    assert!(
        stack
            .store
            .routes()
            .await
            .unwrap()
            .iter()
            .any(|r| r.pattern == alerts.pattern)
    );

    let (after, code) = export(&stack.env(), &[]);
    assert_eq!(code, Some(0), "routes still name it");
    for empty in ["deliveries", "outbound", "objects"] {
        assert_eq!(after[empty], json!([]), "{empty}: {after}");
    }
    assert_eq!(after["suppression"], Value::Null);
    assert_eq!(after["soft_bounces"], Value::Null);
    let nothing = mailroom(
        &stack.env(),
        &["data", "delete", "--address", ADDRESS, "--yes"],
    );
    assert_eq!(nothing.status.code(), Some(5));
}

#[tokio::test]
async fn export_and_delete_on_the_dev_store_leave_no_trace_in_its_files() {
    use mailroom::mail::envelope::KnownEnvelope;
    use mailroom::ports::{MailLocation, SystemClock};
    use mailroom::usecases::inbound::{ForwardSettings, Inbound, InboundConfig, Received};
    use mailroom_http::{HttpClient, TargetPolicy};
    use mailroom_local::files::LocalMailStore;
    use mailroom_local::outbox::Outbox;
    use mailroom_local::sqlite::SqliteStore;

    let dir = std::env::temp_dir().join(unique("mailroom-data"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let receiver = Receiver::start().await;
    {
        let store = SqliteStore::open(&data.join("mailroom.db")).unwrap();
        let mail = LocalMailStore::new(data.join("mail"));
        let mut route = Route::new("support@example.test".parse().unwrap());
        route.webhook = Some(WebhookTarget {
            url: receiver.url("/mail"),
            format: Format::Json,
            secrets: Vec::new(),
            attachments: AttachmentMode::Inline,
            disabled: None,
        });
        route.forward = vec![ADDRESS.to_owned()];
        store.put_route(&route).await.unwrap();
        let inbound = Inbound::new(
            mail.clone(),
            store.clone(),
            HttpClient::new(Duration::from_secs(5), TargetPolicy::LOCAL).unwrap(),
            Outbox::new(data.join("outbox")),
            SystemClock,
            InboundConfig {
                forward: ForwardSettings {
                    from: Some("forward@example.test".to_owned()),
                    max_bytes: 40_000_000,
                },
                ..InboundConfig::with_defaults(60)
            },
        );
        for from in [ADDRESS, "dora@other.example"] {
            let key = format!("inbound/{}", unique("dev"));
            mail.put(&key, &message(from, "support@example.test"))
                .unwrap();
            let received = Received {
                location: MailLocation {
                    bucket: "local".to_owned(),
                    key,
                },
                received_at: Utc::now(),
                first_seen: Utc::now(),
                known: KnownEnvelope {
                    recipients: Some(vec!["support@example.test".to_owned()]),
                    from: Some(from.to_owned()),
                    ..KnownEnvelope::default()
                },
                size: None,
            };
            inbound.process(&received).await.unwrap();
        }
        store.suppress(&suppression(Utc::now())).await.unwrap();
    }
    let data_arg = data.to_str().unwrap();
    assert!(!files_containing(&data, ADDRESS).is_empty());

    let (held, code) = export(&[], &["--data", data_arg]);
    assert_eq!(code, Some(0), "{held}");
    // Carla's mail posted and forwarded, and Dora's mail forwarded to Carla: of Dora's, only that
    // delivery and the copy sent to Carla are Carla's data.
    assert_eq!(held["deliveries"].as_array().unwrap().len(), 3, "{held}");
    assert_eq!(held["outbound"].as_array().unwrap().len(), 2, "{held}");
    assert_eq!(held["messages"].as_array().unwrap().len(), 1, "{held}");
    let objects = keys(&held["objects"]);
    assert_eq!(objects.len(), 3, "{objects:?}");
    assert_eq!(
        objects.iter().filter(|k| k.starts_with("inbound/")).count(),
        1,
        "Dora's original is not Carla's: {objects:?}"
    );
    assert_eq!(held["routes"].as_array().unwrap().len(), 1);

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
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    // The route that forwards to Carla is configuration and stays; nothing else names her, in any file.
    let left = files_containing(&data, ADDRESS);
    assert!(left.iter().all(|f| f.ends_with("mailroom.db")), "{left:?}");
    let store = SqliteStore::open(&data.join("mailroom.db")).unwrap();
    let route_json = serde_json::to_string(&store.routes().await.unwrap()).unwrap();
    let db = std::fs::read(data.join("mailroom.db"))
        .unwrap()
        .to_ascii_lowercase();
    let mentions = db
        .windows(ADDRESS.len())
        .filter(|w| *w == ADDRESS.as_bytes())
        .count();
    assert_eq!(
        mentions,
        route_json.matches(ADDRESS).count(),
        "only the route names her"
    );
    let (after, _) = export(&[], &["--data", data_arg]);
    for empty in ["deliveries", "outbound", "objects"] {
        assert_eq!(after[empty], json!([]), "{empty}: {after}");
    }
    // Dora's own mail stays.
    assert_eq!(
        std::fs::read_dir(data.join("mail/inbound"))
            .unwrap()
            .count(),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
