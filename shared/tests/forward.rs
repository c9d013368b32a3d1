//! The forward rewrite over the whole corpus: what SES refuses is gone, replies go to the original sender,
//! and the body is byte for byte the one received.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom::format::forward::{ForwardHeaders, SINGLE_INSTANCE, rewrite_for_forward};

/// The header block's field names (lower-case) and where the body starts.
fn names_and_body(raw: &[u8]) -> (Vec<String>, usize) {
    let end = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|sep| memchr::memmem::find(raw, sep).map(|i| i + sep.len()))
        .min()
        .unwrap_or(raw.len());
    let header = String::from_utf8_lossy(&raw[..end]);
    let names = header
        .lines()
        .filter(|l| !l.starts_with([' ', '\t']) && !l.trim().is_empty())
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
        .collect();
    (names, end)
}

#[test]
fn every_corpus_message_forwards_with_a_clean_header_and_its_body_untouched() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let Ok(email) = mailroom::mail::parse(raw.clone()) else {
            continue;
        };
        let out = rewrite_for_forward(
            &raw,
            &ForwardHeaders {
                from_address: "forward@mail.example.com",
                original_from: email.header("from"),
                original_to: "support@mail.example.com",
            },
        );
        let name = path.display();
        let (names, body_start) = names_and_body(&out);
        for single in SINGLE_INSTANCE {
            assert!(
                names.iter().filter(|n| *n == single).count() <= 1,
                "{name}: {single} twice"
            );
        }
        assert!(
            !names.iter().any(|n| n == "dkim-signature"
                || n == "message-id"
                || n == "return-path"
                || n == "sender"),
            "{name}"
        );
        assert!(
            names.iter().all(|n| !n.is_empty() && !n.contains(' ')),
            "{name}: {names:?}"
        );
        assert_eq!(names.first().map(String::as_str), Some("from"), "{name}");
        assert!(
            names.contains(&"reply-to".to_owned()) || email.header("from").is_none(),
            "{name}"
        );
        let (_, original_body) = names_and_body(&raw);
        assert!(
            out[body_start..] == raw[original_body..],
            "{name}: the body changed"
        );
        let forwarded = mailroom::mail::parse(out.clone()).expect("the forward parses");
        assert_eq!(
            forwarded.attachments.len(),
            email.attachments.len(),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 300, "{checked}");
}
