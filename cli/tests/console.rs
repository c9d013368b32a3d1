//! The console in a real browser: headless Chromium (Debian's package), driven by playwright-core through
//! `tests/browser/console.mjs`, against `mailroom dev`'s store (mail sent over SMTP) and against a stack's
//! table and bucket in moto (mail handled by the real inbound handler). Both runs list, filter, open a
//! message, read its attempts, resend the rejected delivery and see the new one, add and remove a
//! suppression, add a route, and check that a foreign Host, a missing token and a forged form are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::{
    Receiver, Reply, on_emulator, printed_array, repo, resources, sdk, store_inbound, unique,
    webhook_route,
};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::ports::RouteStore;
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use serde_json::{Value, json};

/// The three messages every run starts with: (sender, recipient, subject). The first one's webhook
/// answers 400, so its delivery is rejected until resent.
const MESSAGES: [(&str, &str, &str); 3] = [
    ("ana@client.test", "support@{domain}", "Invoice for March"),
    ("bruno@other.test", "sales+acme@{domain}", "Quote request"),
    ("carla@third.test", "support@{domain}", "Weekly report"),
];

/// A child process killed when dropped, and what it printed.
struct Running {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(command: &mut Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let output: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let collected = output.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        Running { child, output }
    }

    /// The first printed word after `marker`, waiting for it.
    fn printed_after(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.output.lock().unwrap().join("\n");
            if let Some(start) = text.find(marker) {
                let rest = &text[start + marker.len()..];
                return rest.split_whitespace().next().unwrap_or("").to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited with {status} before printing {marker}: {text}");
            }
            assert!(Instant::now() < deadline, "no {marker} in: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the browser script against the console at `url` with what it should find; panics with the
/// script's output when a step fails.
fn drive_browser(url: &str, scenario: &Value) {
    let browser_dir = repo("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "the browser tests need `npm ci --prefix tests/browser` (scripts/test runs it)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "the browser tests need Chromium at {chromium} (Debian's chromium package; scripts/test installs it)"
    );
    let mut command = Command::new("node");
    command
        .arg(browser_dir.join("console.mjs"))
        .current_dir(&browser_dir)
        .env("MAILROOM_CONSOLE_URL", url)
        .env("MAILROOM_SCENARIO", scenario.to_string())
        .env("CHROMIUM", &chromium);
    if let Ok(dir) = std::env::var("MAILROOM_CONSOLE_SCREENSHOTS") {
        command.env("MAILROOM_SCREENSHOTS", dir);
    }
    let out = command.output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{printed}");
    assert!(out.status.success(), "the browser run failed:\n{printed}");
    assert!(!printed.contains("FAIL"), "{printed}");
}

fn scenario(domain: &str, smtp: Option<SocketAddr>, erase: bool) -> Value {
    let at = |text: &str| text.replace("{domain}", domain);
    json!({
        "rejected_subject": MESSAGES[0].2,
        "rejected_sender": MESSAGES[0].0,
        "subjects": MESSAGES.iter().map(|m| m.2).collect::<Vec<_>>(),
        "tag": "acme",
        "tagged_subject": MESSAGES[1].2,
        "recipient": at(MESSAGES[0].1),
        "smtp": smtp.map(|a| a.to_string()),
        "erase": erase,
    })
}

fn raw(sender: &str, recipient: &str, subject: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{sender}>\r\nFrom: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\n\
         Message-ID: <{}@client.test>\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         Hello about {subject}.\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hello about <b>{subject}</b>.\
         <img src=\"https://tracker.example/pixel.gif\"></p>\r\n--b--\r\n",
        unique("m")
    )
    .into_bytes()
}

/// The console's address (`http://host:port`) and token, from the URL it printed.
fn origin_and_token(console_url: &str) -> (String, String) {
    let url = url::Url::parse(console_url).unwrap();
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    (
        format!("http://{}:{}", url.host_str().unwrap(), url.port().unwrap()),
        token,
    )
}

/// The inbound function as the stack runs it, over the emulator's resources.
async fn inbound_app(sdk: &aws_config::SdkConfig, res: &Resources) -> inbound::App {
    let settings = integration_tests::inbound_settings(res, &[]);
    inbound::App::new(
        inbound::Config::from_lookup(|name| settings.get(name).cloned()).unwrap(),
        sdk,
    )
    .await
    .unwrap()
}

/// `mailroom console` on the emulator's table, bucket and queue, allowed to post to this machine (the
/// receiver) when it resends; the running process and the URL it printed.
fn stack_console(res: &Resources) -> (Running, String) {
    let mut console = Running::start(
        on_emulator(&mut Command::new(env!("CARGO_BIN_EXE_mailroom")))
            .args(["console", "--http", "127.0.0.1:0", "--table", &res.table])
            .args(["--bucket", &res.bucket])
            .env("MAILROOM_QUEUE_URL", &res.queue_url)
            .env("MAILROOM_ALLOW_PRIVATE_TARGETS", "true")
            .env("MAILROOM_ALLOW_HTTP_TARGETS", "true"),
    );
    let url = console.printed_after("console: ");
    (console, url)
}

fn workdir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(&format!("mailroom-console-{test}")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sends one message over SMTP (lettre).
fn send(smtp: SocketAddr, from: &str, to: &str, message: Vec<u8>) {
    use lettre::Transport;
    let envelope =
        lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
            .unwrap();
    lettre::SmtpTransport::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .build()
        .send_raw(&envelope, &message)
        .unwrap();
}

fn dev_records(data: &Path) -> Vec<Value> {
    printed_array(
        &Command::new(env!("CARGO_BIN_EXE_mailroom"))
            .args(["messages", "list", "--json", "--data"])
            .arg(data)
            .env_remove("MAILROOM_TABLE")
            .output()
            .unwrap(),
    )
}

#[tokio::test]
async fn the_console_works_in_a_browser_over_the_dev_store() {
    let dir = workdir("dev");
    let receiver = Receiver::start().await;
    let config = dir.join("mailroom.toml");
    std::fs::write(
        &config,
        format!(
            "[[routes]]\npattern = \"*@example.test\"\n[routes.webhook]\nurl = \"{}\"\nformat = \"json\"\n",
            receiver.url("/mail")
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let mut dev = Running::start(
        Command::new(env!("CARGO_BIN_EXE_mailroom"))
            .args([
                "dev",
                "--smtp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(&config)
            .arg("--data")
            .arg(&data)
            .env_remove("MAILROOM_TABLE"),
    );
    let smtp: SocketAddr = dev.printed_after("SMTP on ").parse().unwrap();
    let url = dev.printed_after("console: ");
    receiver.reply([Reply::new(400, "no such mailbox")]);
    for (n, (sender, recipient, subject)) in MESSAGES.iter().enumerate() {
        let recipient = recipient.replace("{domain}", "example.test");
        send(smtp, sender, &recipient, raw(sender, &recipient, subject));
        let deadline = Instant::now() + Duration::from_secs(20);
        while dev_records(&data).len() <= n {
            assert!(Instant::now() < deadline, "message {n} was not recorded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let url_for_browser = url.clone();
    let scenario = scenario("example.test", Some(smtp), true);
    tokio::task::spawn_blocking(move || drive_browser(&url_for_browser, &scenario))
        .await
        .unwrap();
    // The resend reached the app: a second post of the first message, with the same webhook-id.
    let posts = receiver.requests();
    let first: Vec<_> = posts
        .iter()
        .filter(|p| p.json()["headers"]["subject"] == MESSAGES[0].2)
        .collect();
    assert_eq!(first.len(), 2, "{} posts", posts.len());
    assert_eq!(first[0].header("webhook-id"), first[1].header("webhook-id"));
}

#[tokio::test]
async fn the_console_works_in_a_browser_over_a_stack_in_moto() {
    let sdk = sdk().await;
    let res = resources(&sdk, "console").await;
    let receiver = Receiver::start().await;
    let route = webhook_route("*@mail.example.com", receiver.url("/mail"));
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone())
        .put_route(&route)
        .await
        .unwrap();
    let app = inbound_app(&sdk, &res).await;
    receiver.reply([Reply::new(400, "no such mailbox")]);
    for (sender, recipient, subject) in MESSAGES {
        let recipient = recipient.replace("{domain}", "mail.example.com");
        let (_, event) = store_inbound(&sdk, &res.bucket, raw(sender, &recipient, subject)).await;
        inbound::handle(&app, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        // Distinct times of receipt, so "newest first" has one answer.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_console, url) = stack_console(&res);
    let scenario = scenario("mail.example.com", None, false);
    let url_for_browser = url.clone();
    tokio::task::spawn_blocking(move || drive_browser(&url_for_browser, &scenario))
        .await
        .unwrap();
    // Mail that arrives while the console runs is listed within seconds (the rows it keeps read the
    // newest mail again while someone looks).
    let (_, event) = store_inbound(
        &sdk,
        &res.bucket,
        raw(
            "dora@late.test",
            "support@mail.example.com",
            "Arrived later",
        ),
    )
    .await;
    inbound::handle(&app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get_page(&url, "/api/messages")
        .await
        .contains("Arrived later")
    {
        assert!(Instant::now() < deadline, "new mail never listed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let posts = receiver.requests();
    let first: Vec<_> = posts
        .iter()
        .filter(|p| p.json()["headers"]["subject"] == MESSAGES[0].2)
        .collect();
    assert_eq!(first.len(), 2, "{} posts", posts.len());
    assert_eq!(first[0].header("webhook-id"), first[1].header("webhook-id"));
}

/// POSTs an action to the console as a script does (the token as a bearer, so no CSRF token); the
/// status and where it redirects.
async fn post_action(console_url: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let (origin, token) = origin_and_token(console_url);
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{origin}{path}"))
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (answer.status().as_u16(), location)
}

#[tokio::test]
async fn redrive_from_the_console_hands_a_failed_message_back_to_the_function() {
    use mailroom::ports::RecordQuery;
    use mailroom::record::Status;

    let sdk = sdk().await;
    let res = resources(&sdk, "console-redrive").await;
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "down")]);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    let route = webhook_route("*@mail.example.com", receiver.url("/mail"));
    store.put_route(&route).await.unwrap();
    let app = inbound_app(&sdk, &res).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (id, s3_event) = store_inbound(
        &sdk,
        &res.bucket,
        raw("ana@client.test", "support@mail.example.com", "Gave up"),
    )
    .await;
    sqs.send_message()
        .queue_url(&res.queue_url)
        .message_body(s3_event.to_string())
        .send()
        .await
        .unwrap();
    let mut event = integration_tests::receive_as_event(&sqs, &res.queue_url, 1)
        .await
        .unwrap();
    // First handed out 73 hours ago: the failing attempt is the last one.
    let long_ago = (chrono::Utc::now() - chrono::Duration::hours(73)).timestamp_millis();
    event["Records"][0]["attributes"]["ApproximateFirstReceiveTimestamp"] =
        json!(long_ago.to_string());
    inbound::handle(&app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(store.message(&id).await.unwrap()[0].status, Status::Failed);
    let failed_webhook_id = receiver.requests()[0].header("webhook-id").to_owned();

    let (_console, url) = stack_console(&res);
    let (status, location) = post_action(&url, &format!("/messages/{id}/redrive"), &[]).await;
    assert_eq!(status, 303);
    assert!(location.contains("Redriven"), "{location}");
    let reopened = store.message(&id).await.unwrap();
    assert_ne!(reopened[0].status, Status::Failed, "{reopened:?}");

    // The function takes it from its queue, with a fresh 72 hours, and the receiver is back.
    let event = integration_tests::receive_as_event(&sqs, &res.queue_url, 1)
        .await
        .expect("the console queued the message for the function");
    inbound::handle(&app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let delivered = store.message(&id).await.unwrap();
    assert_eq!(delivered[0].status, Status::Delivered, "{delivered:?}");
    let posts = receiver.requests();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].header("webhook-id"), failed_webhook_id);

    // Resent along another route: a delivery of its own, to that route's webhook.
    let other = webhook_route("archive@mail.example.com", receiver.url("/archive"));
    store.put_route(&other).await.unwrap();
    let (status, location) = post_action(
        &url,
        &format!("/messages/{id}/resend"),
        &[("to", "route:archive@mail.example.com")],
    )
    .await;
    assert_eq!(status, 303);
    assert!(location.contains("Sent+along+route"), "{location}");
    assert!(location.contains("delivered"), "{location}");
    let posts = receiver.requests();
    assert_eq!(
        posts.len(),
        3,
        "{location} {:?}",
        store.message(&id).await.unwrap()
    );
    assert_eq!(posts[2].path, "/archive");
    let records = store.message(&id).await.unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records
            .iter()
            .any(|r| r.route.as_deref() == Some("archive@mail.example.com")
                && r.status == Status::Delivered)
    );

    // Nothing failed any more: a second redrive says so and queues nothing.
    let (_, location) = post_action(&url, &format!("/messages/{id}/redrive"), &[]).await;
    assert!(location.contains("Nothing+to+redrive"), "{location}");
    assert!(
        integration_tests::receive_as_event(&sqs, &res.queue_url, 1)
            .await
            .is_none()
    );

    // Once the bucket no longer keeps the original, the page shows the records alone.
    integration_tests::s3(&sdk)
        .delete_object()
        .bucket(&res.bucket)
        .key(format!("inbound/{id}"))
        .send()
        .await
        .unwrap();
    let page = get_page(&url, &format!("/messages/{id}")).await;
    assert!(page.contains("id=\"gone\""), "{page}");
    assert!(page.contains("Gave up") && page.contains("archive@mail.example.com"));
    assert!(!page.contains("id=\"payload\""));
}

/// A page of the console, read with the token as a bearer.
async fn get_page(console_url: &str, path: &str) -> String {
    let (origin, token) = origin_and_token(console_url);
    let answer = reqwest::Client::new()
        .get(format!("{origin}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    answer.text().await.unwrap()
}
