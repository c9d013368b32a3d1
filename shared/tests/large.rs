//! A message at SES's 40 MB ceiling renders correctly in every format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope};

fn forty_megabyte_message() -> (Vec<u8>, Vec<u8>) {
    // Deterministic, incompressible-looking bytes (xorshift), so no encoder shortcut can hide a bug.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let attachment: Vec<u8> = (0..29 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let mut raw = b"From: Big Sender <big@example.com>\r\nTo: in@example.com\r\nSubject: the big one\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n--big\r\n\
Content-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&attachment);
    for line in encoded.as_bytes().chunks(76) {
        raw.extend_from_slice(line);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"--big--\r\n");
    (raw, attachment)
}

#[test]
fn forty_megabytes_render_in_every_format() {
    let (raw, attachment) = forty_megabyte_message();
    assert!(
        raw.len() > 39 * 1024 * 1024 && raw.len() <= 40 * 1024 * 1024,
        "{}",
        raw.len()
    );
    let email = mail::parse(raw.clone()).unwrap();
    let envelope = Envelope::recover(&email);
    assert!(email.warnings.is_empty(), "{:?}", email.warnings);

    let json: serde_json::Value =
        serde_json::from_slice(&Payload::new(Format::Json, &email, &envelope).to_vec()).unwrap();
    assert_eq!(json["plain"], "See attached.");
    let content = base64::engine::general_purpose::STANDARD
        .decode(json["attachments"][0]["content"].as_str().unwrap())
        .unwrap();
    assert!(
        content == attachment,
        "the attachment survives byte for byte"
    );
    assert_eq!(json["attachments"][0]["size"], attachment.len());

    let multipart = Payload::new(Format::Multipart, &email, &envelope);
    let form = support::parse_form(&multipart.to_vec(), &multipart.content_type());
    let file = form.iter().find(|p| p.name == "attachments[0]").unwrap();
    assert!(file.body == attachment);
    assert_eq!(file.file_name.as_deref(), Some("data.bin"));

    let raw_payload = Payload::new(Format::Raw, &email, &envelope);
    let form = support::parse_form(&raw_payload.to_vec(), &raw_payload.content_type());
    assert!(form.iter().find(|p| p.name == "message").unwrap().body == raw);
}

#[test]
fn over_the_size_limit_is_a_clear_error() {
    let raw = vec![b'a'; mail::MAX_MESSAGE_BYTES + 1];
    let error = mail::parse(raw).unwrap_err();
    assert!(error.to_string().contains("over the"), "{error}");
}
