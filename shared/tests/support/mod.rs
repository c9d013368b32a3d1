//! Helpers shared by the core's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use base64::Engine;
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope};
use sha2::{Digest, Sha256};

/// The real-world messages copied from ../shared/corpus, with their MANIFEST and licences.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

/// Expected JSON for a reviewed selection of the corpus.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
}

/// Every `.eml` of the corpus, sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

/// Renders a message as JSON and parses it back.
pub fn render_json(raw: &[u8]) -> serde_json::Value {
    let email = mail::parse(raw.to_vec()).expect("parses");
    let envelope = Envelope::recover(&email);
    let body = Payload::new(Format::Json, &email, &envelope).to_vec();
    serde_json::from_slice(&body).expect("the JSON payload is valid JSON")
}

/// The JSON payload with each attachment's base64 `content` replaced by `sha256:<hex>` of the decoded
/// bytes, so expected files stay small and reviewable while still pinning every byte.
pub fn normalized(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(attachments) = value.get_mut("attachments").and_then(|a| a.as_array_mut()) {
        for attachment in attachments {
            if let Some(content) = attachment.get("content").and_then(|c| c.as_str()) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(content)
                    .expect("attachment content is valid base64");
                let size = attachment.get("size").and_then(|s| s.as_u64()).unwrap();
                assert_eq!(bytes.len() as u64, size, "size is the decoded length");
                attachment["content"] = format!("sha256:{:x}", Sha256::digest(&bytes)).into();
            }
        }
    }
    value
}

/// One part of a `multipart/form-data` body.
#[derive(Debug)]
pub struct FormPart {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A strict little `multipart/form-data` reader for checking what we write.
pub fn parse_form(body: &[u8], content_type: &str) -> Vec<FormPart> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("content type names a boundary");
    let delimiter = format!("--{boundary}");
    let closing = format!("--{boundary}--\r\n");
    assert!(
        body.ends_with(closing.as_bytes()),
        "the body ends with the closing delimiter"
    );
    assert!(
        body.starts_with(delimiter.as_bytes()),
        "the body starts with a delimiter"
    );
    let separator = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &body[delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        assert!(rest.starts_with(b"\r\n"));
        rest = &rest[2..];
        let header_end = find(rest, b"\r\n\r\n").expect("part headers end");
        let headers = std::str::from_utf8(&rest[..header_end]).expect("part headers are UTF-8");
        let after_headers = &rest[header_end + 4..];
        let end = find(after_headers, separator.as_bytes()).expect("part ends with a delimiter");
        let mut part = FormPart {
            name: String::new(),
            file_name: None,
            content_type: None,
            body: after_headers[..end].to_vec(),
        };
        for line in headers.split("\r\n") {
            let (key, value) = line.split_once(": ").expect("header line");
            match key.to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    assert!(value.starts_with("form-data; name=\""));
                    let name = value.split("name=\"").nth(1).unwrap();
                    part.name = name[..name.find('"').unwrap()].to_owned();
                    if let Some(file) = value.split("filename=\"").nth(1) {
                        part.file_name = Some(file[..file.rfind('"').unwrap()].to_owned());
                    }
                }
                "content-type" => part.content_type = Some(value.to_owned()),
                "content-id" => {}
                other => panic!("unexpected part header {other}"),
            }
        }
        assert!(!part.name.is_empty(), "every part is named");
        parts.push(part);
        rest = &after_headers[end + separator.len()..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Fails when a JSON value holds `null` anywhere: optional fields are omitted, never null.
pub fn assert_no_nulls(value: &serde_json::Value, path: &str) {
    match value {
        serde_json::Value::Null => panic!("null at {path}"),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_no_nulls(item, &format!("{path}[{i}]"));
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                assert_no_nulls(item, &format!("{path}.{key}"));
            }
        }
        _ => {}
    }
}

/// A provider payload in a reviewable form: Postmark's JSON with each attachment's `Content` as
/// `sha256:<hex>` of its decoded bytes; a form as `[name, value]` pairs in order, a file part as
/// `[name, {file_name, content_type, size, sha256}]`.
pub fn normalized_provider(payload: &Payload<'_>) -> serde_json::Value {
    let body = payload.to_vec();
    if !payload.format().is_form() {
        let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if let Some(attachments) = value.get_mut("Attachments").and_then(|a| a.as_array_mut()) {
            for attachment in attachments {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(attachment["Content"].as_str().unwrap())
                    .unwrap();
                assert_eq!(attachment["ContentLength"], bytes.len());
                attachment["Content"] = format!("sha256:{:x}", Sha256::digest(&bytes)).into();
            }
        }
        return value;
    }
    let parts = parse_form(&body, &payload.content_type());
    serde_json::Value::Array(
        parts
            .into_iter()
            .map(|part| match part.file_name {
                Some(file_name) => serde_json::json!([part.name, {
                    "file_name": file_name,
                    "content_type": part.content_type,
                    "size": part.body.len(),
                    "sha256": format!("{:x}", Sha256::digest(&part.body)),
                }]),
                None => serde_json::json!([part.name, String::from_utf8_lossy(&part.body)]),
            })
            .collect(),
    )
}
