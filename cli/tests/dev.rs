//! `mailroom dev` as users run it: the binary in its own process, mail sent over real SMTP (lettre, and
//! Python's smtplib for STARTTLS), delivered to a real HTTP receiver, read back through the console and
//! `mailroom messages`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::{Receiver, Reply, printed_array, unique};
use mailroom::route::WebhookSecret;
use serde_json::Value;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn mailroom() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    command
        .env_remove("MAILROOM_TABLE")
        .env_remove("MAILROOM_WEBHOOK_SECRET");
    command
}

fn secret() -> WebhookSecret {
    WebhookSecret::parse(SECRET).unwrap()
}

/// A fresh folder for one test's `--data` and config.
fn workdir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(&format!("mailroom-dev-{test}")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `mailroom.toml` with one signed JSON route to the receiver, and no catch-all.
fn config(dir: &Path, receiver: &Receiver, extra: &str) -> PathBuf {
    let path = dir.join("mailroom.toml");
    let text = format!(
        r#"retention_days = 7

[[routes]]
pattern = "support@example.test"
[routes.webhook]
url = "{url}"
format = "json"
secret = "{SECRET}"
{extra}"#,
        url = receiver.url("/mail")
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `mailroom dev`, stopped when dropped.
struct Dev {
    child: Child,
    smtp: SocketAddr,
    http: SocketAddr,
    token: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Dev {
    fn start(dir: &Path, config: &Path) -> Dev {
        Dev::start_with(dir, &[std::ffi::OsStr::new("--config"), config.as_os_str()])
    }

    /// Starts it in `dir` with its own data folder, free ports, and `args`.
    fn start_with(dir: &Path, args: &[&std::ffi::OsStr]) -> Dev {
        let mut child = mailroom()
            .current_dir(dir)
            .args(["dev", "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(args)
            .arg("--data")
            .arg(dir.join("data"))
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
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = output.lock().unwrap().join("\n");
            if let (Some(smtp), Some(http), Some(token)) = (
                after(&text, "SMTP on "),
                after(&text, "console: http://"),
                token_in(&text),
            ) {
                return Dev {
                    child,
                    smtp,
                    http,
                    token,
                    output,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mailroom dev exited with {status}: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "no banner from mailroom dev: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn console(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .get(format!("http://{}{path}", self.http))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn api(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The console's token, from the URL the banner prints.
fn token_in(text: &str) -> Option<String> {
    let start = text.find("?token=")? + "?token=".len();
    let token: String = text[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The address printed after `marker`.
fn after(text: &str, marker: &str) -> Option<SocketAddr> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let end = rest.find([' ', '/', '\n']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Sends a message over SMTP with lettre; the server's error text when it refuses.
async fn send(smtp: SocketAddr, from: &str, to: &str, message: Vec<u8>) -> Result<(), String> {
    let from = from.to_owned();
    let to = to.to_owned();
    tokio::task::spawn_blocking(move || {
        use lettre::Transport;
        let envelope =
            lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
                .unwrap();
        lettre::SmtpTransport::builder_dangerous(smtp.ip().to_string())
            .port(smtp.port())
            .timeout(Some(Duration::from_secs(60)))
            .build()
            .send_raw(&envelope, &message)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap()
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ana <ana@client.test>\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{}@client.test>\r\nDate: Fri, 8 Nov 2024 10:00:00 +0000\r\n\r\n{body}\r\n",
        unique("m")
    )
    .into_bytes()
}

/// Waits until `check` holds, up to `patience`.
async fn eventually<T>(patience: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `mailroom messages list --json` on the test's store.
fn records(dir: &Path) -> Vec<Value> {
    let out = mailroom()
        .args(["messages", "list", "--json", "--data"])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    printed_array(&out)
}

async fn record_with_status(dir: &Path, status: &str) -> Value {
    let dir = dir.to_owned();
    let status = status.to_owned();
    eventually(Duration::from_secs(20), async || {
        records(&dir)
            .into_iter()
            .find(|r| r["status"] == status.as_str())
    })
    .await
    .unwrap_or_else(|| panic!("no record became {status}: {:?}", records(&dir)))
}

/// The record fields the data policy lists (README, "Records"), and nothing else; `lookup` holds keyed
/// digests, no address.
const POLICY_FIELDS: [&str; 23] = [
    "message_id",
    "delivery_id",
    "status",
    "recipient",
    "recipient_source",
    "route",
    "target",
    "attempts",
    "webhook_id",
    "received_at",
    "sender_ip",
    "sender",
    "message_id_header",
    "subject",
    "response_status",
    "response_body",
    "processing_ms",
    "error",
    "s3_key",
    "next_attempt_at",
    "history",
    "expires_at",
    "lookup",
];

#[tokio::test]
async fn delivers_signed_json_and_records_the_policy_fields() {
    let dir = workdir("delivered");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));

    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        message("Invoice 17", "Hello there."),
    )
    .await
    .unwrap();
    let record = record_with_status(&dir, "delivered").await;

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(
        request.verifies(&[secret()]),
        "the signature verifies with the route's secret"
    );
    let json = request.json();
    assert_eq!(json["envelope"]["to"], "support@example.test");
    assert_eq!(json["envelope"]["from"], "ana@client.test");
    assert_eq!(json["envelope"]["remote_ip"], "127.0.0.1");
    assert_eq!(json["headers"]["subject"], "Invoice 17");
    assert_eq!(json["plain"].as_str().unwrap().trim_end(), "Hello there.");

    for field in record.as_object().unwrap().keys() {
        assert!(
            POLICY_FIELDS.contains(&field.as_str()),
            "record field {field} is not in the policy"
        );
    }
    assert_eq!(record["recipient"], "support@example.test");
    assert_eq!(record["sender"], "ana@client.test");
    assert_eq!(record["sender_ip"], "127.0.0.1");
    assert_eq!(record["subject"], "Invoice 17");
    assert_eq!(record["response_status"], 200);
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["webhook_id"], request.header("webhook-id"));
    let received =
        chrono::DateTime::parse_from_rfc3339(record["received_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        record["expires_at"].as_i64().unwrap(),
        received.timestamp() + 7 * 86_400,
        "expires_at is received + retention_days (7 in this mailroom.toml)"
    );
    let console = dev.console();
    assert!(
        console.contains("ana@client.test → support@example.test")
            && console.contains("\"Invoice 17\""),
        "one console line per attempt: {console}"
    );

    // Nothing under --data but the store and the stored mail holds an address.
    drop(dev);
    for path in files(&dir.join("data")) {
        let relative = path
            .strip_prefix(dir.join("data"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if relative.starts_with("mailroom.db") || relative.starts_with("mail/") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("@client.test") && !text.contains("@example.test"),
            "{relative} holds an address"
        );
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_webhook_id() {
    let dir = workdir("retry");
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "busy")]);
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));

    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        message("Retry me", "x"),
    )
    .await
    .unwrap();
    let record = record_with_status(&dir, "delivered").await;

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one 503, then one 200");
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    assert!(requests.iter().all(|r| r.verifies(&[secret()])));
    let first: i64 = requests[0].header("webhook-timestamp").parse().unwrap();
    let second: i64 = requests[1].header("webhook-timestamp").parse().unwrap();
    assert!(
        second - first >= 4,
        "the retry waits the schedule's first 5 s ({first} → {second})"
    );
    assert_eq!(record["attempts"], 2);
    let history = record["history"].as_array().unwrap();
    assert_eq!(history[0]["status_code"], 503);
    assert_eq!(history[1]["status_code"], 200);
}

// The receiver answers the `mailroom messages resend` process while this test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_rejected_and_not_retried_until_resent() {
    let dir = workdir("rejected");
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(400, "no such ticket")]);
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));

    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        message("Bad", "x"),
    )
    .await
    .unwrap();
    let record = record_with_status(&dir, "rejected").await;
    assert_eq!(record["response_status"], 400);
    assert_eq!(record["response_body"], "no such ticket");
    // Longer than the first retry would wait.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(receiver.requests().len(), 1, "a 400 is final");
    assert_eq!(records(&dir)[0]["attempts"], 1);

    // Fixed on the app's side: the operator sends it again, as the same delivery.
    receiver.reply([Reply::new(200, "ok")]);
    let id = record["message_id"].as_str().unwrap();
    let resent = mailroom()
        .args(["messages", "resend", id, "--data"])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&resent.stdout);
    assert!(
        resent.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&resent.stderr)
    );
    assert!(said.contains("delivered after 2 attempt(s)"), "{said}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    assert!(
        requests[1].verifies(&[secret()]),
        "signed like every delivery"
    );
    assert_eq!(records(&dir)[0]["status"], "delivered");
    drop(dev);
}

#[tokio::test]
async fn a_recipient_without_a_route_gets_550() {
    let dir = workdir("no-route");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));

    let refused = send(
        dev.smtp,
        "ana@client.test",
        "nobody@example.test",
        message("Lost?", "x"),
    )
    .await;
    let error = refused.expect_err("the server refuses the recipient");
    assert!(error.contains("550"), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.requests().is_empty());
    assert!(
        records(&dir).is_empty(),
        "refused at SMTP: nothing stored, nothing recorded"
    );
    drop(dev);
}

#[tokio::test]
async fn malformed_mail_is_stored_as_sent_and_recorded() {
    let dir = workdir("malformed");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));

    // No blank line after the headers, a header line without a name, an unterminated multipart, NUL bytes
    // and bytes that are not UTF-8.
    let broken = b"Subject: broken\r\nthis is not a header\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhalf a part \x00\xff\xfe"
        .to_vec();
    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        broken.clone(),
    )
    .await
    .unwrap();
    let record = eventually(Duration::from_secs(20), async || {
        records(&dir)
            .into_iter()
            .find(|r| r["status"] != "retrying")
    })
    .await
    .expect("the message is recorded");

    let stored = std::fs::read(
        dir.join("data/mail")
            .join(record["s3_key"].as_str().unwrap()),
    )
    .unwrap();
    assert!(stored.starts_with(b"Return-Path: <ana@client.test>\r\nReceived: from "));
    // lettre ends the last line with the CRLF of its `CRLF . CRLF`.
    assert!(
        stored.ends_with(&[&broken[..], b"\r\n"].concat()),
        "stored byte for byte after SES's trace headers: {:?}",
        String::from_utf8_lossy(&stored)
    );
    let detail = dev
        .api(&format!(
            "/api/messages/{}",
            record["message_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(detail["raw_size"], stored.len());
    let warnings = detail["payload"]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!warnings.is_empty(), "the damage is reported: {detail}");
}

#[tokio::test]
async fn a_restart_keeps_pending_retries() {
    let dir = workdir("restart");
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "down for a moment")]);
    let config = config(&dir, &receiver, "");
    let dev = Dev::start(&dir, &config);
    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        message("Survive", "x"),
    )
    .await
    .unwrap();
    record_with_status(&dir, "retrying").await;
    // Killed, not stopped: nothing gets a chance to flush.
    drop(dev);

    let dev = Dev::start(&dir, &config);
    assert!(
        dev.console().contains("1 message(s) waiting for a retry"),
        "{}",
        dev.console()
    );
    let record = record_with_status(&dir, "delivered").await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    assert_eq!(record["attempts"], 2);
}

#[tokio::test]
async fn the_console_lists_and_shows_messages() {
    let dir = workdir("console");
    let receiver = Receiver::start().await;
    receiver.reply([Reply::new(503, "later")]);
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));
    let (status, page) = dev.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("No messages yet"));

    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        message("Look <here>", "Body text."),
    )
    .await
    .unwrap();
    record_with_status(&dir, "delivered").await;

    let list = dev.api("/api/messages").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["subject"], "Look <here>");
    assert_eq!(list[0]["deliveries"][0]["status"], "delivered");
    let id = list[0]["message_id"].as_str().unwrap();

    let detail = dev.api(&format!("/api/messages/{id}")).await;
    let record = &detail["records"][0];
    assert_eq!(record["attempts"], 2);
    assert_eq!(record["history"][0]["status_code"], 503);
    assert_eq!(record["history"][0]["response_excerpt"], "later");
    assert_eq!(record["history"][1]["status_code"], 200);
    assert_eq!(
        detail["payload"]["plain"].as_str().unwrap().trim_end(),
        "Body text."
    );

    let (status, page) = dev.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Look &lt;here&gt;"),
        "subjects are escaped in the page"
    );
    assert!(page.contains(&format!("/messages/{id}")));
    let (status, page) = dev.get(&format!("/messages/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("later") && page.contains("Body text."));
    assert_eq!(dev.get("/api/messages/nosuchmessage").await.0, 404);
}

#[tokio::test]
async fn starttls_and_the_size_limit_work_with_a_standard_client() {
    let dir = workdir("starttls");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));
    let script = r#"
import smtplib, ssl, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=30)
s.ehlo("client.test")
print("features", sorted(s.esmtp_features))
print("size", s.esmtp_features.get("size"))
s.starttls(context=ssl._create_unverified_context())
s.ehlo("client.test")
s.sendmail("ana@client.test", ["support@example.test"], b"Subject: over TLS\r\n\r\nsecret\r\n")
s.sendmail("", ["support@example.test"], b"Subject: Undeliverable\r\n\r\na bounce has no sender\r\n")
try:
    s.sendmail("ana@client.test", ["support@example.test"], b"x", mail_options=["SIZE=50000000"])
    print("accepted")
except smtplib.SMTPSenderRefused as e:
    print("refused", e.smtp_code)
# A client that does not declare the size is refused at the end of DATA, and nothing is kept.
s.putcmd("mail", "FROM:<ana@client.test>"); s.getreply()
s.putcmd("rcpt", "TO:<support@example.test>"); s.getreply()
print("huge", s.data(b"Subject: huge\r\n\r\n" + (b"a" * 998 + b"\r\n") * 43000)[0])
# The session goes on after the refusal.
print("after", s.sendmail("ana@client.test", ["support@example.test"], b"Subject: after\r\n\r\nsmall\r\n"))
s.quit()
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &dev.smtp.ip().to_string(),
            &dev.smtp.port().to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for feature in ["8bitmime", "pipelining", "size", "starttls"] {
        assert!(
            stdout.contains(&format!("'{feature}'")),
            "EHLO offers {feature}: {stdout}"
        );
    }
    assert!(stdout.contains("size 41943040"), "{stdout}");
    assert!(
        stdout.contains("refused 552"),
        "a declared size over 40 MiB is refused: {stdout}"
    );

    let delivered = eventually(Duration::from_secs(20), async || {
        let delivered: Vec<Value> = records(&dir)
            .into_iter()
            .filter(|r| r["status"] == "delivered")
            .collect();
        (delivered.len() == 3).then_some(delivered)
    })
    .await
    .expect("the three small messages delivered");
    assert!(delivered.iter().any(|r| r["subject"] == "over TLS"));
    let posts: Vec<Value> = receiver.requests().iter().map(|r| r.json()).collect();
    let tls = posts
        .iter()
        .find(|p| p["headers"]["subject"] == "over TLS")
        .unwrap();
    assert_eq!(tls["envelope"]["tls"], true);
    let bounce = posts
        .iter()
        .find(|p| p["headers"]["subject"] == "Undeliverable")
        .unwrap();
    assert_eq!(
        bounce["envelope"]["from"], "",
        "the null sender stays empty"
    );

    assert!(
        stdout.contains("huge 552"),
        "41 MiB of DATA is refused: {stdout}"
    );
    assert!(
        stdout.contains("after {}"),
        "the session goes on after a refusal: {stdout}"
    );
    assert!(delivered.iter().any(|r| r["subject"] == "after"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        records(&dir).len(),
        3,
        "the refused messages left no record"
    );
}

#[tokio::test]
async fn webhook_alone_makes_a_signed_catch_all_with_a_kept_secret() {
    let dir = workdir("catch-all");
    let receiver = Receiver::start().await;
    let url = receiver.url("/any");
    let printed_secret = |dev: &Dev| -> WebhookSecret {
        let console = dev.console();
        let line = console
            .lines()
            .find_map(|l| l.split_once("webhook secret (verify signatures with it): "))
            .unwrap_or_else(|| panic!("the secret is printed at start: {console}"));
        WebhookSecret::parse(line.1.trim()).unwrap()
    };
    let dev = Dev::start_with(
        &dir,
        &[
            std::ffi::OsStr::new("--webhook"),
            std::ffi::OsStr::new(&url),
        ],
    );
    let secret = printed_secret(&dev);
    send(
        dev.smtp,
        "ana@client.test",
        "anyone@elsewhere.test",
        message("Catch-all", "hi"),
    )
    .await
    .unwrap();
    record_with_status(&dir, "delivered").await;
    let request = receiver.requests().pop().unwrap();
    assert!(
        request.verifies(std::slice::from_ref(&secret)),
        "signed with the printed secret"
    );
    assert_eq!(request.json()["envelope"]["to"], "anyone@elsewhere.test");

    #[cfg(unix)]
    for private in ["webhook-secret", "tls/key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("data").join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{private} is readable by its owner only"
        );
    }

    drop(dev);
    let again = Dev::start_with(
        &dir,
        &[
            std::ffi::OsStr::new("--webhook"),
            std::ffi::OsStr::new(&url),
        ],
    );
    assert_eq!(
        printed_secret(&again).to_string(),
        secret.to_string(),
        "a restart signs with the same secret"
    );
}

#[tokio::test]
async fn an_s3_route_posts_links_the_console_port_serves() {
    use base64::Engine;
    let dir = workdir("links");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, "attachments = \"s3\"\n"));
    let content: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&content);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let raw = format!(
        "From: Ana <ana@client.test>\r\nTo: support@example.test\r\nSubject: scan\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        lines.join("\r\n")
    );
    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        raw.into_bytes(),
    )
    .await
    .unwrap();
    record_with_status(&dir, "delivered").await;
    let body = receiver.requests().pop().unwrap().json();
    let attachment = &body["attachments"][0];
    assert!(attachment.get("content").is_none());
    let url = attachment["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{}/l/", dev.http)), "{url}");
    let fetched = reqwest::get(url).await.unwrap();
    assert_eq!(fetched.status().as_u16(), 200);
    assert!(fetched.bytes().await.unwrap() == content, "the same bytes");

    let mut tampered = url.to_owned();
    tampered.pop();
    tampered.push(if url.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        reqwest::get(&tampered).await.unwrap().status().as_u16(),
        404
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("data/link-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn forwards_go_to_the_outbox_rewritten_and_large_ones_as_a_notice() {
    let dir = workdir("forward");
    let config = dir.join("mailroom.toml");
    std::fs::write(
        &config,
        r#"forward_max_bytes = 2000

[[routes]]
pattern = "support@example.test"
[routes.forward]
to = ["ana@elsewhere.test"]
from = "fwd@example.test"
"#,
    )
    .unwrap();
    let dev = Dev::start(&dir, &config);
    let outbox = dir.join("data/outbox");

    let small = message("Invoice 4821", "The address is wrong.");
    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        small.clone(),
    )
    .await
    .unwrap();
    let sent = record_with_status(&dir, "sent").await;
    assert_eq!(sent["target"], "forward ana@elsewhere.test");
    let id = sent["outbound_id"].as_str().unwrap();
    let forward = std::fs::read(outbox.join(format!("{id}.eml"))).unwrap();
    let text = String::from_utf8_lossy(&forward);
    assert!(
        text.starts_with("From: \"Ana via Mailroom\" <fwd@example.test>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nReply-To: Ana <ana@client.test>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nX-Original-To: support@example.test\r\n"),
        "{text}"
    );
    assert!(!text.contains("Message-ID"), "{text}");
    // The body is the stored original's, byte for byte.
    let stored_raw = |id: &str| {
        let out = mailroom()
            .args(["messages", "show", id, "--raw", "--data"])
            .arg(dir.join("data"))
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let body_of = |raw: &[u8]| {
        let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        raw[at..].to_vec()
    };
    assert_eq!(
        body_of(&forward),
        body_of(&stored_raw(sent["message_id"].as_str().unwrap()))
    );
    assert!(
        body_of(&forward).starts_with(b"\r\n\r\nThe address is wrong.\r\n"),
        "{text}"
    );

    let large = message(
        "Scans",
        &"A long line of the report, again and again.\r\n".repeat(100),
    );
    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        large.clone(),
    )
    .await
    .unwrap();
    let noticed = record_with_status(&dir, "notice_sent").await;
    let id = noticed["outbound_id"].as_str().unwrap();
    let notice =
        String::from_utf8(std::fs::read(outbox.join(format!("{id}.eml"))).unwrap()).unwrap();
    assert!(
        notice.contains("\r\nSubject: Too large to forward: Scans\r\n"),
        "{notice}"
    );
    let link = notice
        .lines()
        .find(|l| l.starts_with(&format!("http://{}/l/", dev.http)))
        .unwrap_or_else(|| panic!("a link in {notice}"));
    let original = reqwest::get(link).await.unwrap();
    assert_eq!(original.status().as_u16(), 200);
    let fetched = original.bytes().await.unwrap();
    assert!(
        fetched == stored_raw(noticed["message_id"].as_str().unwrap()),
        "the link fetches the original"
    );
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 2);
}

/// Talks SMTP by hand: sends `script` as it is, then reads until the server closes or `patience` passes.
async fn raw_smtp(smtp: SocketAddr, script: &[u8], patience: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(smtp).await.unwrap();
    let mut greeting = [0u8; 512];
    let _ = stream.read(&mut greeting).await.unwrap();
    // The peer may close before everything is written (a refused bare-LF dot): that is an answer too.
    let _ = stream.write_all(script).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(patience, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A GET with a `Host` header of our choosing; the status code and the body.
async fn get_as(http: SocketAddr, host: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn a_long_line_followed_by_a_dot_cannot_smuggle_a_second_message() {
    let dir = workdir("smuggle");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));
    // One body line of 65,537 bytes and then a dot: a reader in 64 KiB pieces saw the dot at the start of
    // a "line" and ended the message there; the rest became a second message from a sender of the
    // attacker's choosing.
    let mut script =
        b"EHLO client.test\r\nMAIL FROM:<ana@client.test>\r\nRCPT TO:<support@example.test>\r\n\
DATA\r\nFrom: ana@client.test\r\nTo: support@example.test\r\nSubject: first\r\n\r\n"
            .to_vec();
    script.extend(std::iter::repeat_n(b'A', 65_537));
    script.extend_from_slice(
        b".\r\nMAIL FROM:<ceo@victim.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n\
From: ceo@victim.test\r\nTo: support@example.test\r\nSubject: smuggled\r\n\r\npay the invoice\r\n.\r\nQUIT\r\n",
    );
    let said = raw_smtp(dev.smtp, &script, Duration::from_secs(30)).await;
    assert_eq!(
        said.matches("\r\n250 2.0.0 Ok: queued").count(),
        1,
        "{said}"
    );
    assert!(said.contains("221"), "{said}");

    record_with_status(&dir, "delivered").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = records(&dir);
    assert_eq!(all.len(), 1, "one message: {all:?}");
    assert_eq!(all[0]["subject"], "first");
    assert_eq!(all[0]["sender"], "ana@client.test");
    let posted = receiver.requests();
    assert_eq!(posted.len(), 1);
    let plain = posted[0].json()["plain"].as_str().unwrap().to_owned();
    assert!(
        plain.contains(&format!("{}.", "A".repeat(65_537)))
            && plain.contains("MAIL FROM:<ceo@victim.test>"),
        "the long line stayed one line, and what followed stayed in the message"
    );
}

#[tokio::test]
async fn a_bare_lf_dot_is_refused_and_the_connection_closed() {
    let dir = workdir("barelf");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));
    for ending in [&b"\n.\n"[..], b"\r\n.\n", b"\n.\r\n"] {
        let mut script = b"EHLO client.test\r\nMAIL FROM:<ana@client.test>\r\nRCPT TO:<support@example.test>\r\n\
DATA\r\nSubject: bare\r\n\r\nhello"
            .to_vec();
        script.extend_from_slice(ending);
        script.extend_from_slice(
            b"MAIL FROM:<ceo@victim.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n\
Subject: smuggled\r\n\r\nx\r\n.\r\nQUIT\r\n",
        );
        let said = raw_smtp(dev.smtp, &script, Duration::from_secs(10)).await;
        let shown = String::from_utf8_lossy(ending).escape_debug().to_string();
        assert!(said.contains("\r\n554 5.5.2"), "{shown}: {said}");
        assert!(!said.contains("queued"), "{shown}: {said}");
        assert!(!said.contains("221"), "closed at once: {shown}: {said}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(records(&dir).is_empty());
    assert!(receiver.requests().is_empty());
    // A message ended properly still goes through; a dot inside a line, and a dot-stuffed line, stay text.
    let said = raw_smtp(
        dev.smtp,
        b"EHLO client.test\r\nMAIL FROM:<ana@client.test>\r\nRCPT TO:<support@example.test>\r\n\
DATA\r\nSubject: fine\r\n\r\nbare\nlf.\n..stuffed\r\n.\r\nQUIT\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(said.contains("queued") && said.contains("221"), "{said}");
    record_with_status(&dir, "delivered").await;
    let plain = receiver.requests()[0].json()["plain"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        plain.contains(".stuffed") && !plain.contains("..stuffed"),
        "{plain:?}"
    );
}

#[tokio::test]
async fn recipients_per_message_are_capped() {
    let dir = workdir("rcpts");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));
    let mut script = b"EHLO client.test\r\nMAIL FROM:<ana@client.test>\r\n".to_vec();
    for _ in 0..101 {
        script.extend_from_slice(b"RCPT TO:<support@example.test>\r\n");
    }
    script.extend_from_slice(b"QUIT\r\n");
    let said = raw_smtp(dev.smtp, &script, Duration::from_secs(10)).await;
    assert!(said.contains("452 4.5.3"), "{said}");
    assert_eq!(
        said.matches("452 4.5.3").count(),
        1,
        "only the 101st: {said}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn every_file_under_data_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = workdir("modes");
    let receiver = Receiver::start().await;
    let config = config(
        &dir,
        &receiver,
        "attachments = \"s3\"\n\n[[routes]]\npattern = \"fwd@example.test\"\n[routes.forward]\nto = [\"ana@elsewhere.test\"]\n",
    );
    let dev = Dev::start_with(
        &dir,
        &[
            std::ffi::OsStr::new("--config"),
            config.as_os_str(),
            std::ffi::OsStr::new("--webhook"),
            std::ffi::OsStr::new(&receiver.url("/all")),
        ],
    );
    let raw = scan_with_pdf("scan");
    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        raw.as_bytes().to_vec(),
    )
    .await
    .unwrap();
    send(
        dev.smtp,
        "ana@client.test",
        "fwd@example.test",
        message("Forward", "x"),
    )
    .await
    .unwrap();
    send(
        dev.smtp,
        "ana@client.test",
        "else@other.test",
        message("Catch-all", "x"),
    )
    .await
    .unwrap();
    record_with_status(&dir, "sent").await;
    eventually(Duration::from_secs(30), async || {
        (records(&dir).len() == 3).then_some(())
    })
    .await
    .expect("three deliveries");

    let check = |when: &str| {
        let data = dir.join("data");
        let mut seen = Vec::new();
        let mut folders = vec![data.clone()];
        while let Some(folder) = folders.pop() {
            let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{when}: {}", folder.display());
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{when}: {}", path.display());
                seen.push(path.strip_prefix(&data).unwrap().display().to_string());
            }
        }
        seen
    };
    let running = check("while running");
    for wanted in [
        "mailroom.db",
        "mailroom.db-wal",
        "mailroom.db-shm",
        "link-key",
        "webhook-secret",
        "tls/cert.pem",
        "tls/key.pem",
    ] {
        assert!(
            running.iter().any(|f| f == wanted),
            "{wanted} in {running:?}"
        );
    }
    for folder in ["mail/inbound/", "mail/attachments/", "outbox/"] {
        assert!(
            running.iter().any(|f| f.starts_with(folder)),
            "{folder} in {running:?}"
        );
    }
    drop(dev);
    check("after a stop");
}

#[tokio::test]
async fn the_console_answers_only_requests_addressed_to_it_with_its_token() {
    let dir = workdir("host");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, "attachments = \"s3\"\n"));
    let raw = scan_with_pdf("secret plans");
    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        raw.as_bytes().to_vec(),
    )
    .await
    .unwrap();
    let record = record_with_status(&dir, "delivered").await;
    let id = record["message_id"].as_str().unwrap().to_owned();
    let port = dev.http.port();

    // A page of the attacker's whose name now points at 127.0.0.1 (DNS rebinding) reads nothing.
    for host in [
        "rebind.attacker.example".to_owned(),
        format!("rebind.attacker.example:{port}"),
        format!("127.0.0.1.attacker.example:{port}"),
    ] {
        for path in [
            "/",
            "/api/messages",
            &format!("/api/messages/{id}"),
            &format!("/messages/{id}"),
        ] {
            let (status, body) = get_as(dev.http, &host, path, Some(&dev.token)).await;
            assert!(status == 421 || status == 403, "{host}{path}: {body}");
            assert!(
                !body.contains("secret plans") && !body.contains("ana@client.test"),
                "{body}"
            );
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = get_as(dev.http, &host, "/api/messages", Some(&dev.token)).await;
        assert_eq!(status, 200, "{host}: {body}");
        assert!(body.contains("secret plans"));
        // Without the console's token (another user of the machine, a page guessing the port): nothing.
        for path in [
            "/",
            "/api/messages",
            &format!("/messages/{id}"),
            &format!("/messages/{id}/raw"),
        ] {
            let (status, body) = get_as(dev.http, &host, path, None).await;
            assert_eq!(status, 401, "{host}{path}: {body}");
            assert!(!body.contains("secret plans") && !body.contains("ana@client.test"));
        }
        let wrong = "0".repeat(dev.token.len());
        assert_eq!(
            get_as(dev.http, &host, "/api/messages", Some(&wrong))
                .await
                .0,
            401
        );
    }

    // A link's token is its credential: it opens whatever name the app knows this machine by, and only
    // in its one spelling.
    let url = receiver.requests().pop().unwrap().json()["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url
        .strip_prefix(&format!("http://{}", dev.http))
        .unwrap()
        .to_owned();
    assert_eq!(
        get_as(dev.http, "host.docker.internal", &path, None)
            .await
            .0,
        200
    );
    let parts: Vec<&str> = path.trim_start_matches("/l/").split('.').collect();
    assert_eq!(parts.len(), 4, "{path}");
    for expiry in [format!("+{}", parts[2]), format!("0{}", parts[2])] {
        let respelled = format!("/l/{}.{}.{expiry}.{}", parts[0], parts[1], parts[3]);
        assert_eq!(
            get_as(dev.http, "127.0.0.1", &respelled, None).await.0,
            404,
            "{respelled}"
        );
    }
}

#[tokio::test]
async fn mail_without_header_fields_arrives_with_its_text() {
    let dir = workdir("headerless");
    let receiver = Receiver::start().await;
    let dev = Dev::start(&dir, &config(&dir, &receiver, ""));
    // A client that sends text with no header field at all: the stored object has SES's trace headers
    // running straight into it, as SES's own would.
    send(
        dev.smtp,
        "ana@client.test",
        "support@example.test",
        b"Meter reading for flat 4: 1234 kWh\r\nsent from the basement\r\n".to_vec(),
    )
    .await
    .unwrap();
    record_with_status(&dir, "delivered").await;
    let json = receiver.requests()[0].json();
    assert_eq!(
        json["plain"].as_str().unwrap().trim_end(),
        "Meter reading for flat 4: 1234 kWh\r\nsent from the basement",
        "{json}"
    );
    assert!(
        json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "missing_header_separator"),
        "{json}"
    );
    assert_eq!(json["envelope"]["from"], "ana@client.test");
    assert!(json["headers"].get("meter_reading_for_flat_4").is_none());
}

/// A message to support@example.test with a short text and a one-line PDF attached.
fn scan_with_pdf(subject: &str) -> String {
    format!(
        "From: Ana <ana@client.test>\r\nTo: support@example.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
    )
}

/// What `command` printed on stdout; it must have succeeded.
fn succeeded(command: &mut Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The `label: value` line `mailroom keys create` printed.
fn printed(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|line| line.strip_prefix(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no `{label}:` line in {out}"))
        .trim()
        .to_owned()
}

/// The outbound records `messages list --outbound --json` prints.
fn outbound_records(data: &Path) -> Vec<Value> {
    printed_array(
        &mailroom()
            .args(["messages", "list", "--outbound", "--json", "--data"])
            .arg(data)
            .output()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_api_takes_cloudmailins_client_and_simulates_what_ses_says() {
    use base64::Engine as _;
    let dir = workdir("send-api");
    let data = dir.join("data");
    let events = Receiver::start().await;
    let out = String::from_utf8(succeeded(
        mailroom()
            .args([
                "keys",
                "create",
                "--name",
                "app",
                "--from-domain",
                "shop.test",
                "--events",
            ])
            .arg(events.url("/events"))
            .arg("--data")
            .arg(&data),
    ))
    .unwrap();
    let (key, username) = (printed(&out, "key"), printed(&out, "username"));
    assert_eq!(printed(&out, "baseURL"), "http://127.0.0.1:8025/api/v0.1");
    let events_secret = WebhookSecret::parse(&printed(&out, "events secret")).unwrap();
    let listed = printed_array(
        &mailroom()
            .args(["keys", "list", "--json", "--data"])
            .arg(&data)
            .output()
            .unwrap(),
    );
    assert_eq!(listed[0]["username"], username.as_str());
    assert!(
        !listed[0].to_string().contains(&key[4..]),
        "the key is never stored or listed"
    );
    succeeded(
        mailroom()
            .args(["suppressions", "add", "eve@x.test", "--data"])
            .arg(&data),
    );

    let app = Receiver::start().await;
    let dev = Dev::start_with(
        &dir,
        &[std::ffi::OsStr::new("--webhook"), app.url("/mail").as_ref()],
    );
    let base = format!("http://{}/api/v0.1", dev.http);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let raw = "From: shop@shop.test\r\nTo: carla@x.test\r\nSubject: Raw\r\n\r\nraw body\r\n";
    let results = integration_tests::cloudmailin(
        &base,
        &username,
        &key,
        serde_json::json!([
            {"message": {"from": "Shop <shop@shop.test>", "to": "ana@x.test", "subject": "Order",
                "plain": "thanks", "html": "<p><img src=\"cid:logo\"> <a href=\"https://shop.test/o\">o</a></p>",
                "attachments": [
                    {"file_name": "logo.png", "content": b64(b"\x89PNG\r\n\x1a\n"), "content_type": "image/png", "content_id": "logo"},
                    {"file_name": "a.pdf", "content": b64(b"%PDF-1.4\n"), "content_type": "application/pdf"}],
                "tags": ["orders"]}},
            {"raw": true, "message": {"from": "shop@shop.test", "to": "carla@x.test", "raw": raw}},
            {"message": {"from": "shop@shop.test", "to": ["eve@x.test", "fay@x.test"], "subject": "s",
                "plain": "x", "tracking": false}},
            {"message": {"from": "shop@elsewhere.test", "to": "ana@x.test", "subject": "s", "plain": "x"}},
            {"message": {"from": "shop@shop.test", "to": "ana@x.test", "subject": "s"}},
        ]),
    );
    let sent = &results[0]["data"];
    assert_eq!(sent["status"], "sent", "{results:?}");
    let (id, ses_id) = (
        sent["id"].as_str().unwrap(),
        sent["ses_message_id"].as_str().unwrap(),
    );
    let outboxed = std::fs::read(data.join("outbox").join(format!("{ses_id}.eml"))).unwrap();
    let stored = std::fs::read(data.join("mail/outbound").join(id).join("message.eml")).unwrap();
    assert_eq!(outboxed, stored, "the outbox has what was stored");
    let parsed = mail_parser::MessageParser::default()
        .parse(&outboxed)
        .unwrap();
    assert_eq!(parsed.subject(), Some("Order"));
    assert_eq!(parsed.attachment_count(), 2);
    assert_eq!(results[1]["data"]["status"], "sent");
    let raw_ses = results[1]["data"]["ses_message_id"].as_str().unwrap();
    assert_eq!(
        std::fs::read(data.join("outbox").join(format!("{raw_ses}.eml"))).unwrap(),
        raw.as_bytes()
    );
    assert_eq!(
        results[2]["data"]["suppressed"],
        serde_json::json!(["eve@x.test"])
    );
    assert_eq!(results[3]["status"], 403, "{}", results[3]);
    assert_eq!(results[4]["status"], 422, "{}", results[4]);
    let wrong = integration_tests::cloudmailin(
        &base,
        &username,
        "mrk_wrong",
        serde_json::json!([
        {"message": {"from": "shop@shop.test", "to": "ana@x.test", "subject": "s", "plain": "x"}}]),
    );
    assert_eq!(wrong[0]["status"], 401);

    let records = outbound_records(&data);
    assert_eq!(records.len(), 3, "{records:?}");
    let record = records.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(record["key_name"], "app");
    assert_eq!(record["configuration_set"], "dev-tracked");
    let sent_at: chrono::DateTime<chrono::Utc> =
        record["sent_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        record["expires_at"],
        (sent_at + chrono::Duration::days(60)).timestamp()
    );
    let untracked = records
        .iter()
        .find(|r| r["id"] == results[2]["data"]["id"])
        .unwrap();
    assert_eq!(untracked["configuration_set"], "dev-sending");

    // What SES would say next, on request.
    let client = reqwest::Client::new();
    for event in [
        serde_json::json!({"type": "delivery"}),
        serde_json::json!({"type": "open"}),
        serde_json::json!({"type": "click", "link": "https://shop.test/o"}),
        serde_json::json!({"type": "complaint"}),
    ] {
        let response = client
            .post(format!("{base}/{username}/messages/{id}/events"))
            .bearer_auth(&key)
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            200,
            "{}",
            response.text().await.unwrap()
        );
    }
    let forged = client
        .post(format!("{base}/{username}/messages/{id}/events"))
        .bearer_auth("mrk_wrong")
        .body(r#"{"type":"open"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let record = outbound_records(&data)
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap();
    assert_eq!(record["opens"]["count"], 1);
    assert_eq!(record["clicks"]["links"][0]["url"], "https://shop.test/o");
    assert_eq!(record["status"], "complained");
    assert_eq!(record["recipients"][0]["status"], "complained");
    let posts = events.requests();
    let kinds: Vec<_> = posts
        .iter()
        .map(|p| p.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "message.delivered",
            "message.opened",
            "message.clicked",
            "message.complained"
        ]
    );
    assert!(
        posts
            .iter()
            .all(|p| p.verifies(std::slice::from_ref(&events_secret)))
    );
    let listed = mailroom()
        .args(["suppressions", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("ana@x.test"),
        "a complaint suppresses"
    );

    // The console lists it with what SES said, and serves what was sent.
    let (status, page) = dev.get("/sent").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Order") && page.contains("key app") && page.contains("1 opens, 1 clicks"),
        "{page}"
    );
    let (status, page) = dev.get(&format!("/sent/{ses_id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("https://shop.test/o")
            && page.contains("complained")
            && page.contains("orders"),
        "{page}"
    );
    let raw_copy = reqwest::Client::new()
        .get(format!("http://{}/sent/{ses_id}/raw", dev.http))
        .bearer_auth(&dev.token)
        .send()
        .await
        .unwrap();
    assert_eq!(raw_copy.bytes().await.unwrap().to_vec(), outboxed);
    assert_eq!(
        get_as(dev.http, &dev.http.to_string(), "/sent", None)
            .await
            .0,
        401,
        "the console's token guards it"
    );

    // `mailroom send`, as an app would, through the same endpoint.
    let answer: Value = serde_json::from_slice(&succeeded(
        mailroom()
            .args([
                "send",
                "--from",
                "shop@shop.test",
                "--to",
                "gus@x.test",
                "--subject",
                "From the CLI",
                "--text",
                "hi",
                "--tag",
                "cli",
            ])
            .args(["--key", &key, "--username", &username, "--base-url", &base]),
    ))
    .unwrap();
    assert_eq!(answer["status"], "sent");
    assert!(
        outbound_records(&data)
            .iter()
            .any(|r| r["id"] == answer["id"] && r["tags"][0] == "cli")
    );
    let refused = mailroom()
        .args([
            "send",
            "--from",
            "shop@shop.test",
            "--to",
            "gus@x.test",
            "--text",
            "hi",
        ])
        .args([
            "--key",
            "mrk_wrong",
            "--username",
            &username,
            "--base-url",
            &base,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
}
