//! Golden files: for a reviewed selection of corpus messages, the expected JSON payload, compared field by
//! field with the source message when it was checked in (see tests/golden/REVIEW.md).
//!
//! `MAILROOM_BLESS=1 cargo test -p mailroom --test golden` rewrites the files from the current output;
//! review every changed line against the source message before committing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;

#[test]
fn golden_files_match() {
    let bless = std::env::var("MAILROOM_BLESS").is_ok_and(|v| v == "1");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(support::golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    for expected_path in entries {
        let name = expected_path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // Corpus messages, or cases of our own (tests/golden/cases/) for what the corpus lacks.
        let raw = fs::read(support::corpus_dir().join(&name))
            .or_else(|_| fs::read(support::golden_dir().join("cases").join(&name)))
            .unwrap_or_else(|_| {
                panic!("neither tests/corpus/{name} nor tests/golden/cases/{name}")
            });
        let actual = support::normalized(support::render_json(&raw));
        let actual_text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        if bless {
            fs::write(&expected_path, &actual_text).unwrap();
        }
        let expected_text = fs::read_to_string(&expected_path).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&expected_text).unwrap();
        if expected != actual {
            let diff = similar::TextDiff::from_lines(&expected_text, &actual_text);
            failures.push(format!(
                "{name}:\n{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header("expected", "actual")
            ));
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} golden files");
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The corpus messages whose Postmark, Mailgun and SendGrid payloads are kept as golden files
/// (tests/golden/{postmark,mailgun,sendgrid}/), reviewed by hand (tests/golden/providers.md).
const PROVIDER_GOLDEN: [&str; 10] = [
    "enmime__dsn_simple_dsn.eml",
    "enmime__mail_attachment.eml",
    "enmime__mail_html-mime-inline.eml",
    "mailparser__legacy_009.eml",
    "mailparser__thirdparty_005.eml",
    "mikel__attachment_emails_attachment_with_encoded_name.eml",
    "mikel__multi_charset_japanese_iso_2022.eml",
    "phpmmp__issue149.eml",
    "phpmmp__m0011.eml",
    "zbateson__m4004.eml",
];

#[test]
fn provider_golden_files_match() {
    use mailroom::format::{Format, MailgunSignature, Payload, mailgun_signature};
    use mailroom::mail::{self, envelope::Envelope};

    let bless = std::env::var("MAILROOM_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for format in [Format::Postmark, Format::Mailgun, Format::Sendgrid] {
        let dir = support::golden_dir().join(format.as_str());
        if bless {
            fs::create_dir_all(&dir).unwrap();
        }
        for name in PROVIDER_GOLDEN {
            let raw = fs::read(support::corpus_dir().join(name)).unwrap();
            let email = mail::parse(raw).unwrap();
            let envelope = Envelope::recover(&email);
            let envelope = if envelope.to.is_empty() {
                envelope.for_recipient("inbound@mail.example.com")
            } else {
                envelope
            };
            // A fixed token and timestamp, signed with the secret of the docs' examples.
            let token = "golden0123456789golden0123456789golden0123456789go".to_owned();
            let signature = MailgunSignature {
                timestamp: 1_700_000_000,
                signature: mailgun_signature(
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    1_700_000_000,
                    &token,
                ),
                token,
            };
            let payload = Payload::new(format, &email, &envelope)
                .with_boundary("golden")
                .with_mailgun_signature(signature);
            let actual = support::normalized_provider(&payload);
            let actual_text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            let path = dir.join(format!("{name}.json"));
            if bless {
                fs::write(&path, &actual_text).unwrap();
            }
            let expected_text = fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("{} is missing", path.display()));
            if expected_text != actual_text {
                let diff = similar::TextDiff::from_lines(&expected_text, &actual_text);
                failures.push(format!(
                    "{format}/{name}:\n{}",
                    diff.unified_diff()
                        .context_radius(3)
                        .header("expected", "actual")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} provider golden mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
