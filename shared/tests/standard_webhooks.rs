//! Our signatures checked by an independent implementation: `standardwebhooks`, the Rust library of the
//! Standard Webhooks specification, verifies what Mailroom sends, header for header.
//!
//! That library reads the payload as UTF-8 text (1.0.1 refuses any other body), so it cannot check a
//! multipart or raw payload that carries binary bytes; receivers should verify over the raw bytes, as ours
//! does (bench/libraries/README.md has the figures, and why we keep our own signer).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io;
use std::sync::Arc;

use mailroom::deliver::signing::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use mailroom::deliver::{BodyWriter, WebhookRequest};
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope};
use mailroom::route::WebhookSecret;
use standardwebhooks::Webhook;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The request's Standard Webhooks headers, as an HTTP receiver sees them.
fn received_headers(request: &WebhookRequest) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in request.headers() {
        if [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE].contains(&name) {
            headers.insert(name, value.parse().unwrap());
        }
    }
    headers
}

/// Writes a body in 64 KB pieces, as the functions stream large payloads.
struct Chunked(Vec<u8>);

impl BodyWriter for Chunked {
    fn write_body(&self, out: &mut dyn io::Write) -> io::Result<()> {
        self.0
            .chunks(64 * 1024)
            .try_for_each(|chunk| out.write_all(chunk))
    }
}

#[test]
fn the_specifications_test_vector_signs_the_same_in_both() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (id, timestamp, body) = (
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        br#"{"test": 2432232314}"#,
    );
    let ours = signing::sign(
        &[WebhookSecret::parse(secret).unwrap()],
        id,
        timestamp,
        body,
    );
    let theirs = Webhook::new(secret)
        .unwrap()
        .sign(id, timestamp, body)
        .unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn every_utf8_payload_of_the_corpus_verifies_with_the_reference_library() {
    let secret = WebhookSecret::generate().unwrap();
    let receiver = Webhook::new(&secret.to_string()).unwrap();
    let mut checked = [0usize; 3];
    for path in support::corpus_files() {
        let Ok(email) = mail::parse(std::fs::read(&path).unwrap()) else {
            continue;
        };
        let envelope = Envelope::recover(&email);
        for (n, format) in [Format::Json, Format::Multipart, Format::Raw]
            .into_iter()
            .enumerate()
        {
            let body = Payload::new(format, &email, &envelope).to_vec();
            if std::str::from_utf8(&body).is_err() {
                continue;
            }
            let request = WebhookRequest::new(
                "msg_corpus",
                now(),
                "x",
                body.clone(),
                std::slice::from_ref(&secret),
            );
            receiver
                .verify(&body, &received_headers(&request))
                .unwrap_or_else(|e| panic!("{} as {format}: {e}", path.display()));
            checked[n] += 1;
        }
    }
    // Every JSON payload is UTF-8; most multipart and raw ones are too.
    assert_eq!(
        checked[0],
        support::corpus_files().len(),
        "JSON payloads checked"
    );
    assert!(checked[1] > 250 && checked[2] > 300, "{checked:?}");
}

#[test]
fn a_streamed_body_and_a_rotation_header_verify_with_either_secret() {
    let (old, new) = (
        WebhookSecret::generate().unwrap(),
        WebhookSecret::generate().unwrap(),
    );
    let body: Vec<u8> = (0..5_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let request = WebhookRequest::streamed(
        "msg_streamed",
        now(),
        "application/json",
        Arc::new(Chunked(body.clone())),
        &[old.clone(), new.clone()],
    )
    .unwrap();
    for secret in [old, new] {
        Webhook::new(&secret.to_string())
            .unwrap()
            .verify(&body, &received_headers(&request))
            .unwrap();
    }
    let stranger = WebhookSecret::generate().unwrap();
    assert!(
        Webhook::new(&stranger.to_string())
            .unwrap()
            .verify(&body, &received_headers(&request))
            .is_err()
    );
}
