//! Every corpus message renders in all three formats, and each format says the same thing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope};

/// The corpus's one file that is not a message at all: it holds the line "// Not an RFC-822 Document".
/// Nothing of it may be lost: it is delivered with no header fields, its line as the text, and a warning.
const NOT_A_MESSAGE: &str = "enmime__mail_erroneous.eml";

#[test]
fn every_corpus_message_renders_in_every_format() {
    let files = support::corpus_files();
    assert_eq!(files.len(), 363, "the whole corpus is in tests/corpus");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&file).unwrap();
        if name == NOT_A_MESSAGE {
            let email = mail::parse(raw.clone()).unwrap();
            assert!(email.headers.is_empty());
            assert_eq!(
                email.plain.as_deref().map(str::trim_end),
                Some("// Not an RFC-822 Document")
            );
            assert!(email.warnings.iter().any(|w| w.code == "no_headers"));
        }
        let email = mail::parse(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let envelope = Envelope::recover(&email);

        let json_payload = Payload::new(Format::Json, &email, &envelope);
        assert_eq!(json_payload.content_type(), "application/json");
        let json: serde_json::Value = serde_json::from_slice(&json_payload.to_vec())
            .unwrap_or_else(|e| panic!("{name}: invalid JSON: {e}"));
        check_json_shape(&name, &json);

        let multipart = Payload::new(Format::Multipart, &email, &envelope);
        let form = support::parse_form(&multipart.to_vec(), &multipart.content_type());
        check_multipart_agrees(&name, &json, &form);

        let raw_payload = Payload::new(Format::Raw, &email, &envelope);
        let form = support::parse_form(&raw_payload.to_vec(), &raw_payload.content_type());
        let message = form.iter().find(|p| p.name == "message").unwrap();
        assert_eq!(
            message.body, raw,
            "{name}: the raw format carries the original bytes untouched"
        );
        let to = form.iter().find(|p| p.name == "envelope[to]").unwrap();
        assert_eq!(to.body, json["envelope"]["to"].as_str().unwrap().as_bytes());

        // The providers' formats are checked field by field by a receiving library (tests/providers.rs
        // of the integration tests); here, that every message renders into a well-formed body.
        for format in Format::ALL.into_iter().skip(3) {
            let payload = Payload::new(format, &email, &envelope);
            let body = payload.to_vec();
            if format.is_form() {
                support::parse_form(&body, &payload.content_type());
            } else {
                let value: serde_json::Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|e| panic!("{name}: {format}: invalid JSON: {e}"));
                support::assert_no_nulls(&value, name.as_str());
            }
        }
    }
}

fn check_json_shape(name: &str, json: &serde_json::Value) {
    support::assert_no_nulls(json, name);
    let envelope = &json["envelope"];
    for key in ["to", "from", "helo_domain", "remote_ip"] {
        assert!(
            envelope[key].is_string(),
            "{name}: envelope.{key} is a string"
        );
    }
    assert!(envelope["recipients"].is_array());
    assert!(envelope["spf"]["result"].is_string() && envelope["spf"]["domain"].is_string());
    for (key, value) in json["headers"].as_object().unwrap() {
        assert_eq!(
            key,
            &key.to_ascii_lowercase().replace('-', "_"),
            "{name}: header key {key}"
        );
        match value {
            serde_json::Value::String(_) => {}
            serde_json::Value::Array(values) => {
                assert!(values.len() > 1 && values.iter().all(|v| v.is_string()))
            }
            other => panic!("{name}: header {key} is {other}"),
        }
    }
    if json.get("plain").is_some() {
        assert!(
            json["reply_plain"].is_string(),
            "{name}: reply_plain accompanies plain"
        );
    }
    for attachment in json["attachments"].as_array().unwrap() {
        assert!(attachment["file_name"].is_string());
        let content_type = attachment["content_type"].as_str().unwrap();
        assert_eq!(content_type, content_type.to_ascii_lowercase());
        assert!(matches!(
            attachment["disposition"].as_str(),
            Some("attachment" | "inline")
        ));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(attachment["content"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len() as u64, attachment["size"].as_u64().unwrap());
    }
    assert!(json["warnings"].is_array());
}

fn check_multipart_agrees(name: &str, json: &serde_json::Value, form: &[support::FormPart]) {
    let field = |key: &str| {
        form.iter()
            .find(|p| p.name == key)
            .map(|p| p.body.as_slice())
    };
    assert_eq!(
        field("envelope[to]").unwrap(),
        json["envelope"]["to"].as_str().unwrap().as_bytes()
    );
    assert_eq!(
        field("plain").map(<[u8]>::to_vec),
        json.get("plain")
            .map(|p| p.as_str().unwrap().as_bytes().to_vec()),
        "{name}: plain"
    );
    assert_eq!(
        field("html").map(<[u8]>::to_vec),
        json.get("html")
            .map(|p| p.as_str().unwrap().as_bytes().to_vec()),
        "{name}: html"
    );
    if let Some(subject) = json["headers"].get("subject").and_then(|s| s.as_str()) {
        assert_eq!(field("headers[subject]").unwrap(), subject.as_bytes());
    }
    let files: Vec<_> = form.iter().filter(|p| p.file_name.is_some()).collect();
    let attachments = json["attachments"].as_array().unwrap();
    assert_eq!(
        files.len(),
        attachments.len(),
        "{name}: one file part per attachment"
    );
    for (i, (file, attachment)) in files.iter().zip(attachments).enumerate() {
        assert_eq!(file.name, format!("attachments[{i}]"));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(attachment["content"].as_str().unwrap())
            .unwrap();
        assert_eq!(file.body, decoded, "{name}: attachment {i} bytes");
        assert_eq!(
            file.content_type.as_deref(),
            attachment["content_type"].as_str()
        );
    }
}
