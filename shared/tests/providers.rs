//! The providers' own published example payloads, rendered back from the message they describe: Postmark's
//! inbound webhook example, Mailgun's sample `forward()` payload and SendGrid's two Inbound Parse examples
//! (tests/providers/examples, with their sources). Every field must come out equal, except the few the
//! examples themselves make unreachable, each asserted and explained in docs/formats.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use mailroom::format::{Format, MailgunSignature, Payload, mailgun_signature};
use mailroom::mail::envelope::{Envelope, KnownEnvelope, SesVerdicts, Spf, Verdict};
use mailroom::mail::{self, Email};
use serde_json::Value;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/providers/examples")
}

fn example_json(name: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(examples().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn message(name: &str) -> Email {
    mail::parse(std::fs::read(examples().join(name)).unwrap()).unwrap()
}

/// A form body as field name → values (a repeated field keeps every value, in order).
fn form_fields(payload: &Payload<'_>) -> BTreeMap<String, Vec<String>> {
    let body = payload.to_vec();
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for part in support::parse_form(&body, &payload.content_type()) {
        assert!(part.file_name.is_none(), "no file parts in these examples");
        fields
            .entry(part.name)
            .or_default()
            .push(String::from_utf8(part.body).unwrap());
    }
    fields
}

fn text<'a>(example: &'a serde_json::Map<String, Value>, field: &str) -> &'a str {
    example[field].as_str().unwrap()
}

#[test]
fn postmarks_example_round_trips() {
    let example = example_json("postmark-inbound.json");
    let email = message("postmark-inbound.eml");
    let envelope = Envelope::recover(&email).with_known(KnownEnvelope {
        recipients: Some(vec![text(&example, "OriginalRecipient").to_owned()]),
        ses_message_id: Some(text(&example, "MessageID").to_owned()),
        ..KnownEnvelope::default()
    });
    let ours: serde_json::Map<String, Value> =
        serde_json::from_slice(&Payload::new(Format::Postmark, &email, &envelope).to_vec())
            .unwrap();

    let mut ours_keys: Vec<&String> = ours.keys().collect();
    let mut example_keys: Vec<&String> = example.keys().collect();
    ours_keys.sort();
    example_keys.sort();
    assert_eq!(ours_keys, example_keys, "the same fields");
    let order = |text: &str| -> Vec<usize> {
        [
            "\"FromName\"",
            "\"MessageStream\"",
            "\"FromFull\"",
            "\"ToFull\"",
            "\"OriginalRecipient\"",
            "\"MessageID\"",
            "\"Date\"",
            "\"HtmlBody\"",
            "\"Tag\"",
            "\"Headers\"",
            "\"Attachments\"",
        ]
        .iter()
        .map(|key| text.find(key).unwrap())
        .collect()
    };
    let rendered =
        String::from_utf8(Payload::new(Format::Postmark, &email, &envelope).to_vec()).unwrap();
    let published = std::fs::read_to_string(examples().join("postmark-inbound.json")).unwrap();
    assert!(
        order(&rendered).is_sorted() && order(&published).is_sorted(),
        "the example's order"
    );
    for (key, expected) in &example {
        match key.as_str() {
            // Postmark's example sets a tag, which real inbound payloads leave empty: nothing in a
            // message says it.
            "Tag" => assert_eq!(ours[key], "", "Tag"),
            // The example's stripped reply is not in its own text body; ours is the text body's reply.
            "StrippedTextReply" => assert_eq!(ours[key], example["TextBody"], "StrippedTextReply"),
            _ => assert_eq!(&ours[key], expected, "{key}"),
        }
    }

    let raw: Value =
        serde_json::from_slice(&Payload::new(Format::PostmarkRaw, &email, &envelope).to_vec())
            .unwrap();
    assert_eq!(
        raw["RawEmail"].as_str().unwrap().as_bytes(),
        email.raw().as_ref(),
        "RawEmail is the message, byte for byte"
    );
}

#[test]
fn mailguns_example_round_trips_and_its_signature_is_mailguns() {
    let example = example_json("mailgun-forward.json");
    let email = message("mailgun-forward.eml");
    let envelope = Envelope::recover(&email).with_known(KnownEnvelope {
        recipients: Some(vec![text(&example, "recipient").to_owned()]),
        from: Some(text(&example, "sender").to_owned()),
        ..KnownEnvelope::default()
    });
    let timestamp: i64 = text(&example, "timestamp").parse().unwrap();
    let token = text(&example, "token").to_owned();
    let signing_key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let signature = MailgunSignature {
        timestamp,
        token: token.clone(),
        signature: mailgun_signature(signing_key, timestamp, &token),
    };
    let payload = Payload::new(Format::Mailgun, &email, &envelope)
        .with_boundary("mg")
        .with_mailgun_signature(signature);
    let ours = form_fields(&payload);

    let ours_keys: Vec<&String> = ours.keys().collect();
    let mut example_keys: Vec<&String> = example.keys().collect();
    example_keys.sort();
    assert_eq!(ours_keys, example_keys, "the same fields");
    for (key, expected) in &example {
        let value = ours[key].as_slice();
        match key.as_str() {
            // The sample's signature has 65 hex digits, which no HMAC-SHA256 has: ours is 64, and is
            // HMAC-SHA256 of the sample's own timestamp and token.
            "signature" => {
                assert_eq!(expected.as_str().unwrap().len(), 65);
                assert_eq!(value[0].len(), 64);
                assert_eq!(value[0], mailgun_signature(signing_key, timestamp, &token));
            }
            _ => assert_eq!(value, [expected.as_str().unwrap()], "{key}"),
        }
    }

    // The MIME variant: the same envelope and headers, the message itself instead of the bodies.
    let mime =
        form_fields(&Payload::new(Format::MailgunMime, &email, &envelope).with_boundary("mg"));
    assert_eq!(mime["body-mime"][0].as_bytes(), email.raw().as_ref());
    assert!(!mime.contains_key("body-plain") && !mime.contains_key("body-html"));
    assert_eq!(mime["message-headers"], ours["message-headers"]);
    assert_eq!(mime["recipient"], ours["recipient"]);
}

#[test]
fn sendgrids_parsed_example_round_trips() {
    let example = example_json("sendgrid-parse.json");
    let email = message("sendgrid-parse.eml");
    let envelope_field: Value = serde_json::from_str(text(&example, "envelope")).unwrap();
    let envelope = Envelope::recover(&email).with_known(sendgrid_known(&example, &envelope_field));
    let ours = form_fields_without_files(
        &Payload::new(Format::Sendgrid, &email, &envelope).with_boundary("xYzZY"),
    );
    compare_sendgrid(&example, &ours);
}

#[test]
fn sendgrids_raw_example_round_trips() {
    let example = example_json("sendgrid-parse-raw.json");
    let email = mail::parse(text(&example, "email").as_bytes().to_vec()).unwrap();
    let envelope_field: Value = serde_json::from_str(text(&example, "envelope")).unwrap();
    let envelope = Envelope::recover(&email).with_known(sendgrid_known(&example, &envelope_field));
    let ours =
        form_fields(&Payload::new(Format::SendgridRaw, &email, &envelope).with_boundary("xYzZY"));
    compare_sendgrid(&example, &ours);
}

/// What SES tells us of the SMTP transaction SendGrid's example describes.
fn sendgrid_known(example: &serde_json::Map<String, Value>, envelope: &Value) -> KnownEnvelope {
    KnownEnvelope {
        recipients: Some(vec![envelope["to"][0].as_str().unwrap().to_owned()]),
        from: Some(envelope["from"].as_str().unwrap().to_owned()),
        remote_ip: Some(text(example, "sender_ip").to_owned()),
        spf: Some(Spf {
            result: text(example, "SPF").to_owned(),
            domain: String::new(),
        }),
        ses: Some(SesVerdicts {
            dkim: Some(Verdict::Pass),
            ..SesVerdicts::default()
        }),
        ..KnownEnvelope::default()
    }
}

/// The form's fields, with the attachment file parts checked apart and left out.
fn form_fields_without_files(payload: &Payload<'_>) -> BTreeMap<String, Vec<String>> {
    let body = payload.to_vec();
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files = Vec::new();
    for part in support::parse_form(&body, &payload.content_type()) {
        match part.file_name {
            Some(file_name) => files.push((part.name, file_name, part.content_type.unwrap())),
            None => fields
                .entry(part.name)
                .or_default()
                .push(String::from_utf8(part.body).unwrap()),
        }
    }
    assert_eq!(
        files,
        [
            (
                "attachment1".to_owned(),
                "MG_2359.jpg".to_owned(),
                "image/jpeg".to_owned()
            ),
            (
                "attachment2".to_owned(),
                "DockMcWordface.docx".to_owned(),
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                    .to_owned()
            ),
        ]
    );
    fields
}

fn compare_sendgrid(
    example: &serde_json::Map<String, Value>,
    ours: &BTreeMap<String, Vec<String>>,
) {
    // SendGrid posts its spam fields only when its Spam Check is on; SES has no score or report.
    let expected_keys: Vec<&String> = example
        .keys()
        .filter(|k| !matches!(k.as_str(), "spam_score" | "spam_report"))
        .collect();
    let mut expected_keys = expected_keys;
    expected_keys.sort();
    assert_eq!(ours.keys().collect::<Vec<_>>(), expected_keys);
    for key in expected_keys {
        let expected = text(example, key);
        let value = &ours[key];
        assert_eq!(value.len(), 1, "{key} once");
        match key.as_str() {
            // JSON in a field: equal as JSON (SendGrid's key order is its map's).
            "envelope" | "charsets" | "attachment-info" | "content-ids" => assert_eq!(
                serde_json::from_str::<Value>(&value[0]).unwrap(),
                serde_json::from_str::<Value>(expected).unwrap(),
                "{key}"
            ),
            _ => assert_eq!(value[0], expected, "{key}"),
        }
    }
}
