//! Fuzz target: arbitrary bytes through `mail::parse`, envelope recovery and all three POST formats, plus
//! `strip_reply` on the input read as text. Panics, timeouts and runaway memory are what libFuzzer reports;
//! the assertions add two output checks: the JSON body is valid JSON, and the raw body carries the input
//! bytes untouched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope, reply::strip_reply};

fuzz_target!(|data: &[u8]| {
    // The reply stripper on its own, on any valid UTF-8 (the lossy form too, so every input reaches it).
    if let Ok(text) = std::str::from_utf8(data) {
        let stripped = strip_reply(text);
        assert!(stripped.len() <= text.len());
    } else {
        let text = String::from_utf8_lossy(data);
        let _ = strip_reply(&text);
    }

    let Ok(email) = mail::parse(data.to_vec()) else {
        return;
    };
    let envelope = Envelope::recover(&email);
    let _ = email.reply_plain();

    let json = Payload::new(Format::Json, &email, &envelope).to_vec();
    if let Err(error) = serde_json::from_slice::<serde_json::Value>(&json) {
        panic!(
            "JSON output does not parse: {error}\n{}",
            String::from_utf8_lossy(&json)
        );
    }

    let multipart = Payload::new(Format::Multipart, &email, &envelope).to_vec();
    assert!(multipart.ends_with(b"--\r\n"), "multipart body not closed");

    let raw = Payload::new(Format::Raw, &email, &envelope).to_vec();
    assert!(
        memchr::memmem::find(&raw, data).is_some(),
        "raw body does not contain the input bytes"
    );
});
