//! The `mailroom` binary as users run it: render and post.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use mailroom::deliver::signing::verify;
use mailroom::route::WebhookSecret;

fn mailroom() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    command.env_remove("MAILROOM_WEBHOOK_SECRET");
    command
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn render_writes_the_json_body_to_stdout() {
    let out = mailroom()
        .args(["render", "--recipient", "other@mail.example.com"])
        .arg(repo("events/sample.eml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["envelope"]["to"], "other@mail.example.com",
        "--recipient wins over the headers"
    );
    assert_eq!(json["attachments"].as_array().unwrap().len(), 2);
}

#[test]
fn render_out_goes_on_past_a_bad_file_and_names_it() {
    let dir = std::env::temp_dir().join(format!("mailroom-cli-render-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Any bytes render (mail without header fields too); a file that cannot be read does not.
    let bad = std::env::temp_dir().join(format!("no-such-mail-{}.eml", std::process::id()));
    let _ = std::fs::remove_file(&bad);
    let out = mailroom()
        .args(["render", "--format", "multipart", "--out"])
        .arg(&dir)
        .arg(repo("events/sample.eml"))
        .arg(&bad)
        .arg(repo("tests/corpus/enmime__mail_attachment.eml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(stderr.contains("1 of 3 file(s) failed"), "{stderr}");
    assert!(dir.join("sample.eml.multipart").is_file());
    assert!(dir.join("enmime__mail_attachment.eml.multipart").is_file());
    assert!(
        !dir.join(format!("no-such-mail-{}.eml.multipart", std::process::id()))
            .exists()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_say_what_to_do_without_a_backtrace() {
    let out = mailroom()
        .env("RUST_BACKTRACE", "1")
        .args(["render", "a.eml", "b.eml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: several files need --out DIR"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");

    let out = mailroom()
        .args(["render", "--format", "xml", "a.eml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use json, multipart, raw, postmark"));

    for command in [&["--help"][..], &["render", "--help"], &["post", "--help"]] {
        let out = mailroom().args(command).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: mailroom"));
    }
}

/// One HTTP request, as a receiver saw it.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A real HTTP server on 127.0.0.1:0 that answers one request with `status` and `reply`.
fn receive_one(status: u16, reply: &'static str) -> (String, std::thread::JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mail", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("POST /mail "), "{line}");
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(": ").unwrap();
            headers.push((name.to_ascii_lowercase(), value.to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        )
        .unwrap();
        Received { headers, body }
    });
    (url, handle)
}

#[test]
fn post_sends_a_signed_request_and_prints_the_answer() {
    let secret = WebhookSecret::generate().unwrap();
    let (url, receiver) = receive_one(200, "thanks");
    let out = mailroom()
        .args(["post", "--url", &url, "--secret", &secret.to_string()])
        .arg(repo("events/sample.eml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200\nthanks\n");

    let received = receiver.join().unwrap();
    let header = |name: &str| {
        received
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header"))
    };
    assert_eq!(header("content-type"), "application/json");
    assert!(header("user-agent").starts_with("Mailroom/"));
    assert!(header("webhook-id").starts_with("msg_"));
    let now = chrono::Utc::now().timestamp();
    verify(
        &secret,
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &received.body,
        now,
    )
    .expect("the signature verifies with the core's verifier");

    // The body is what `render` prints for the same file.
    let rendered = mailroom()
        .arg("render")
        .arg(repo("events/sample.eml"))
        .output()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&received.body).unwrap(),
        serde_json::from_slice::<serde_json::Value>(&rendered.stdout).unwrap()
    );
}

#[test]
fn post_exits_1_on_a_rejection() {
    let (url, receiver) = receive_one(422, "no such mailbox");
    let out = mailroom()
        .args(["post", "--format", "raw", "--url", &url])
        .arg(repo("events/sample.eml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "422\nno such mailbox\n"
    );
    let received = receiver.join().unwrap();
    assert!(
        received
            .headers
            .iter()
            .all(|(n, _)| n != "webhook-signature"),
        "no secret, no signature"
    );
}
