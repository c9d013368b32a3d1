//! Hostile input, generated: each is rendered with what lies within the limits, and its `warnings` name
//! every limit hit. Time and memory are measured in bench/, not here. Each runs on a thread with a 1 MiB
//! stack (less than the 2 MiB of a tokio worker) to show that no input drives deep recursion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom::format::{Format, Payload};
use mailroom::mail::{self, MAX_HEADERS, MAX_PARTS, envelope::Envelope};

fn render_all(raw: Vec<u8>) -> serde_json::Value {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let email = mail::parse(raw).expect("hostile mail still parses");
            let envelope = Envelope::recover(&email);
            for format in Format::ALL {
                let body = Payload::new(format, &email, &envelope).to_vec();
                assert!(!body.is_empty());
                if !format.is_form() {
                    serde_json::from_slice::<serde_json::Value>(&body)
                        .unwrap_or_else(|e| panic!("{format}: invalid JSON: {e}"));
                }
            }
            let body = Payload::new(Format::Json, &email, &envelope).to_vec();
            serde_json::from_slice::<serde_json::Value>(&body).expect("valid JSON")
        })
        .unwrap()
        .join()
        .expect("no panic, no stack overflow")
}

fn codes(json: &serde_json::Value) -> Vec<String> {
    json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn five_thousand_deep_multipart() {
    let depth = 5_000;
    let mut raw = b"From: a@example.com\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n".to_vec();
    for i in 1..depth {
        raw.extend(
            format!(
                "--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n",
                i - 1
            )
            .bytes(),
        );
    }
    raw.extend(
        format!(
            "--b{}\r\nContent-Type: text/plain\r\n\r\nleaf\r\n--b{}--\r\n",
            depth - 1,
            depth - 1
        )
        .bytes(),
    );
    for i in (0..depth - 1).rev() {
        raw.extend(format!("--b{i}--\r\n").bytes());
    }
    let json = render_all(raw);
    let codes = codes(&json);
    assert!(codes.contains(&"max_mime_depth".to_owned()), "{codes:?}");
    assert!(codes.contains(&"max_parts".to_owned()), "{codes:?}");
    assert_eq!(json["headers"]["subject"], "deep");
}

#[test]
fn a_hundred_thousand_parts() {
    let mut raw = b"From: a@example.com\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n".to_vec();
    raw.extend(b"--x\r\nContent-Type: text/plain\r\n\r\nfirst\r\n");
    for i in 0..100_000 {
        raw.extend(
            format!("--x\r\nContent-Type: application/octet-stream; name=\"p{i}\"\r\n\r\nAAAA\r\n")
                .bytes(),
        );
    }
    raw.extend(b"--x--\r\n");
    let json = render_all(raw);
    assert_eq!(codes(&json), ["max_parts"]);
    assert_eq!(json["plain"], "first");
    let attachments = json["attachments"].as_array().unwrap();
    // The root and the text body count among the parts.
    assert_eq!(attachments.len(), MAX_PARTS - 2);
    assert_eq!(attachments[0]["file_name"], "p0");
}

#[test]
fn three_hundred_thousand_encoded_words_in_one_header() {
    let words = vec!["=?utf-8?q?caf=C3=A9?="; 300_000].join(" ");
    let raw = format!("From: a@example.com\r\nSubject: {words}\r\n\r\nbody\r\n").into_bytes();
    let json = render_all(raw);
    assert_eq!(codes(&json), ["max_header_value_bytes"]);
    let subject = json["headers"]["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("cafécafé"),
        "adjacent encoded words join without spaces"
    );
    assert_eq!(json["plain"], "body\r\n");
}

#[test]
fn two_hundred_thousand_header_fields() {
    let mut raw = b"From: a@example.com\r\n".to_vec();
    for i in 0..200_000 {
        raw.extend(format!("X-Field-{i}: value {i}\r\n").bytes());
    }
    raw.extend(b"Subject: late\r\n\r\nbody\r\n");
    let json = render_all(raw);
    assert_eq!(codes(&json), ["max_headers"]);
    let headers = json["headers"].as_object().unwrap();
    assert_eq!(headers.len(), MAX_HEADERS);
    assert_eq!(headers["x_field_0"], "value 0");
    assert_eq!(json["plain"], "body\r\n");
}

#[test]
fn one_ten_megabyte_header_line() {
    let long = "a".repeat(10 * 1024 * 1024);
    let cases = [
        (
            format!("From: a@example.com\r\nSubject: {long}\r\n\r\nbody\r\n"),
            "max_header_value_bytes",
        ),
        (
            format!("From: a@example.com\r\nX-{long}: v\r\n\r\nbody\r\n"),
            "max_header_name_bytes",
        ),
        (
            format!("From: a@example.com\r\n{long}\r\nX-After: v\r\n\r\nbody\r\n"),
            "malformed_header_line",
        ),
    ];
    for (raw, code) in cases {
        let json = render_all(raw.into_bytes());
        assert_eq!(codes(&json), [code]);
        assert_eq!(json["headers"]["from"], "a@example.com");
        assert_eq!(json["plain"], "body\r\n");
    }
    // With no field after it, the long line is the sender's text: the body starts there.
    let json = render_all(format!("From: a@example.com\r\n{long}\r\n\r\nbody\r\n").into_bytes());
    assert_eq!(codes(&json), ["missing_header_separator"]);
    assert_eq!(json["headers"]["from"], "a@example.com");
    assert_eq!(json["plain"], format!("{long}\r\n\r\nbody\r\n"));
}

#[test]
fn twenty_thousand_nested_messages() {
    let mut inner = b"From: a@example.com\r\nSubject: innermost\r\n\r\nleaf\r\n".to_vec();
    for _ in 0..20_000 {
        let mut outer = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
        outer.extend(inner);
        inner = outer;
    }
    let mut raw = b"From: a@example.com\r\nSubject: nest\r\n".to_vec();
    raw.extend(inner);
    let json = render_all(raw);
    assert_eq!(codes(&json), ["max_parts"]);
    assert_eq!(json["attachments"][0]["content_type"], "message/rfc822");
}

#[test]
fn an_encoded_attached_message_is_one_attachment_and_not_parsed() {
    use base64::Engine;
    let mut inner = b"From: b@example.com\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n".to_vec();
    for _ in 0..50_000 {
        inner.extend(b"--i\r\n\r\nx\r\n");
    }
    inner.extend(b"--i--\r\n");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&inner);
    let mut raw = b"From: a@example.com\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nhello\r\n--o\r\nContent-Type: Message/RFC822\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    for line in encoded.as_bytes().chunks(76) {
        raw.extend(line);
        raw.extend(b"\r\n");
    }
    raw.extend(b"--o--\r\n");
    let json = render_all(raw);
    let attachment = &json["attachments"][0];
    assert_eq!(attachment["content_type"], "message/rfc822");
    let content = base64::engine::general_purpose::STANDARD
        .decode(attachment["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        content, inner,
        "the attached message arrives whole, decoded once"
    );
    assert_eq!(json["plain"], "hello");
}

/// Inputs the fuzzer found (fuzz/run.sh), kept so they stay fixed. They are mutations of corpus messages.
#[test]
fn fuzzer_findings_parse_and_render_without_a_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz-regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            let json = render_all(std::fs::read(&path).unwrap());
            assert!(json.is_object(), "{}", path.display());
            count += 1;
        }
    }
    assert!(count >= 1);
}
