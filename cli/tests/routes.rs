//! `mailroom routes` with the same words on both backends: the stack's table (moto's server) and the dev
//! store. Add, list, test, disable, enable, remove; secrets and URL credentials never printed. And the
//! exit codes scripts rely on: 3 without credentials, 4 for a missing table, 5 when nothing matched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use integration_tests::{on_emulator, resources, sdk, unique};
use serde_json::Value;

/// Runs `mailroom routes …` on one backend.
struct Backend {
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl Backend {
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailroom"));
        on_emulator(&mut command)
            .arg("routes")
            .args(args)
            .args(&self.args);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.output().unwrap()
    }

    fn listed(&self) -> Vec<Value> {
        integration_tests::printed_array(&self.run(&["list", "--json"]))
    }
}

fn every_command(backend: &Backend) {
    let added = backend.run(&[
        "add",
        "support@mail.example.com",
        "--webhook",
        "https://user:pass@app.example.com/mail",
        "--format",
        "multipart",
        "--secret",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "--redact",
        "subject",
        "--forward",
        "ana@example.net",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let listed = backend.listed();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let route = &listed[0];
    assert_eq!(route["pattern"], "support@mail.example.com");
    assert_eq!(route["enabled"], true);
    assert_eq!(route["webhook"]["format"], "multipart");
    assert_eq!(route["webhook"]["secrets"], 1);
    assert_eq!(route["forward"][0], "ana@example.net");
    assert_eq!(route["redact"][0], "subject");
    let everything = format!("{listed:?}");
    assert!(
        !everything.contains("pass") && !everything.contains("whsec_"),
        "{everything}"
    );

    let tested = backend.run(&["test", "support+ticket-42@mail.example.com"]);
    let said = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.status.success(), "{said}");
    assert!(said.contains("support@mail.example.com"), "{said}");
    let nothing = backend.run(&["test", "other@elsewhere.example"]);
    assert_eq!(nothing.status.code(), Some(5));

    assert!(
        backend
            .run(&["disable", "support@mail.example.com"])
            .status
            .success()
    );
    assert_eq!(backend.listed()[0]["enabled"], false);
    assert!(
        backend
            .run(&["enable", "support@mail.example.com"])
            .status
            .success()
    );
    assert_eq!(backend.listed()[0]["enabled"], true);
    assert_eq!(
        backend
            .run(&["disable", "nobody@mail.example.com"])
            .status
            .code(),
        Some(5)
    );

    assert!(
        backend
            .run(&["remove", "support@mail.example.com"])
            .status
            .success()
    );
    assert!(backend.listed().is_empty());
    assert_eq!(
        backend
            .run(&["remove", "support@mail.example.com"])
            .status
            .code(),
        Some(5)
    );
    assert_eq!(
        backend
            .run(&["add", "not a pattern", "--webhook", "https://a.example/"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test]
async fn routes_on_the_stack() {
    let sdk = sdk().await;
    let res = resources(&sdk, "routes").await;
    every_command(&Backend {
        env: vec![("MAILROOM_TABLE".to_owned(), res.table.clone())],
        args: Vec::new(),
    });
}

#[tokio::test]
async fn routes_on_the_dev_store() {
    use std::time::Duration;

    use mailroom::mail::envelope::KnownEnvelope;
    use mailroom::ports::{MailLocation, SystemClock};
    use mailroom::usecases::inbound::{Inbound, InboundConfig, Received};
    use mailroom_http::{HttpClient, TargetPolicy};
    use mailroom_local::files::LocalMailStore;
    use mailroom_local::outbox::Outbox;
    use mailroom_local::sqlite::SqliteStore;

    let dir = std::env::temp_dir().join(unique("mailroom-routes"));
    let backend = Backend {
        env: Vec::new(),
        args: vec!["--data".to_owned(), dir.display().to_string()],
    };
    every_command(&backend);

    // A route added by the CLI is the one the use case delivers by, as `mailroom dev` runs it.
    let receiver = integration_tests::Receiver::start().await;
    let url = receiver.url("/dev");
    assert!(
        backend
            .run(&["add", "help@example.test", "--webhook", &url])
            .status
            .success()
    );
    let mail = LocalMailStore::new(dir.join("mail"));
    mail.put(
        "inbound/m1",
        b"From: ana@client.test\r\nTo: help@example.test\r\nSubject: hi\r\n\r\nhello\r\n",
    )
    .unwrap();
    let inbound = Inbound::new(
        mail,
        SqliteStore::open(&dir.join("mailroom.db")).unwrap(),
        HttpClient::new(Duration::from_secs(5), TargetPolicy::LOCAL).unwrap(),
        Outbox::new(dir.join("outbox")),
        SystemClock,
        InboundConfig::with_defaults(60),
    );
    let now = chrono::Utc::now();
    inbound
        .process(&Received {
            location: MailLocation {
                bucket: "local".to_owned(),
                key: "inbound/m1".to_owned(),
            },
            received_at: now,
            first_seen: now,
            known: KnownEnvelope {
                recipients: Some(vec!["help@example.test".to_owned()]),
                ..KnownEnvelope::default()
            },
            size: None,
        })
        .await
        .unwrap();
    assert_eq!(receiver.requests().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_credentials_and_a_missing_table_have_their_own_exit_codes() {
    let without_credentials = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(["routes", "list"])
        .env("MAILROOM_TABLE", "any-table")
        .env("AWS_REGION", integration_tests::REGION)
        .env("AWS_ENDPOINT_URL", integration_tests::endpoint())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .output()
        .unwrap();
    assert_eq!(
        without_credentials.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&without_credentials.stderr)
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    let missing = on_emulator(&mut command)
        .args(["messages", "list"])
        .env("MAILROOM_TABLE", unique("no-such-table"))
        .output()
        .unwrap();
    assert_eq!(
        missing.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}
