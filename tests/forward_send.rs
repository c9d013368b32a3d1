//! Forwards sent through SES v2 on moto's server: the bytes SES got are the rewrite's, byte for byte, for 20
//! corpus messages; an unverified sender is a rejection, not a retry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use integration_tests::{repo, resources, sdk, ses_raw_sends, verified_domain};
use mailroom::format::forward::{ForwardHeaders, rewrite_for_forward};
use mailroom::ports::{MailSender, SendMailError, SendOptions};
use mailroom_aws::ses::SesSender;
use serde_json::Value;

/// What moto's SES kept of a raw send.
async fn sent(id: &str) -> Value {
    ses_raw_sends()
        .await
        .into_iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("moto has no send {id}"))
}

/// Where the header block ends (the index of the first body byte).
fn body_start(raw: &[u8]) -> usize {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(c), Some(l)) => c.min(l),
        (c, l) => c.or(l).unwrap_or(raw.len()),
    }
}

/// The header fields of a block, unfolded: (lower-case name, value).
fn fields(header: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(header);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    fields
}

/// What the issue asks of every forward SES gets, checked on the sent bytes themselves.
fn check_forward(original: &[u8], sent: &[u8], from: &str, path: &std::path::Path) {
    let at = body_start(sent);
    let original_at = body_start(original);
    assert_eq!(
        &sent[at..],
        &original[original_at..],
        "{}: body",
        path.display()
    );
    let sent_fields = fields(&sent[..at]);
    let original_fields = fields(&original[..original_at]);
    let count = |name: &str| sent_fields.iter().filter(|(n, _)| n == name).count();
    for single in mailroom::format::forward::SINGLE_INSTANCE {
        assert!(count(single) <= 1, "{}: {single} repeated", path.display());
    }
    assert_eq!(count("dkim-signature"), 0, "{}", path.display());
    assert!(
        sent_fields.iter().all(|(n, _)| !n.is_empty()),
        "{}",
        path.display()
    );
    let value = |fields: &[(String, String)], name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let sent_from = value(&sent_fields, "from").unwrap();
    assert!(
        sent_from.ends_with(&format!(" via Mailroom\" <{from}>"))
            || sent_from.ends_with(&format!("?= <{from}>")),
        "{}: From {sent_from}",
        path.display()
    );
    let expected_reply_to =
        value(&original_fields, "reply-to").or_else(|| value(&original_fields, "from"));
    assert_eq!(
        value(&sent_fields, "reply-to"),
        expected_reply_to,
        "{}: Reply-To",
        path.display()
    );
}

#[tokio::test]
async fn forwards_reach_ses_as_rewritten_and_unverified_senders_are_rejected() {
    let sdk = sdk().await;
    let res = resources(&sdk, "fwd-send").await;
    let domain = verified_domain(&sdk, "fwd").await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let sender = SesSender::new(ses, Some(res.configuration_set.clone()));
    let from = format!("forward@{domain}");

    let mut names: Vec<_> = std::fs::read_dir(repo("tests/corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    let mut checked = 0;
    for path in names {
        let raw = std::fs::read(&path).unwrap();
        // moto hands the message back as text: compare only messages that are UTF-8 throughout.
        if std::str::from_utf8(&raw).is_err() {
            continue;
        }
        let Ok(email) = mailroom::mail::parse(raw.clone()) else {
            continue;
        };
        let forward = rewrite_for_forward(
            &raw,
            &ForwardHeaders {
                from_address: &from,
                original_from: email.header("from"),
                original_to: "support@mail.example.com",
            },
        );
        let id = sender
            .send_raw(
                &from,
                &["someone@example.net".to_owned()],
                Bytes::from(forward.clone()),
                &SendOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .message_id;
        let got = sent(&id).await;
        assert_eq!(
            got["raw_data"].as_str().unwrap().as_bytes(),
            &forward[..],
            "{}",
            path.display()
        );
        assert_eq!(got["source"], from.as_str());
        check_forward(
            &raw,
            got["raw_data"].as_str().unwrap().as_bytes(),
            &from,
            &path,
        );
        checked += 1;
        if checked == 20 {
            break;
        }
    }
    assert_eq!(checked, 20);

    let refused = sender
        .send_raw(
            "nobody@unverified.example",
            &["someone@example.net".to_owned()],
            Bytes::from_static(b"From: nobody@unverified.example\r\nSubject: x\r\n\r\nhi\r\n"),
            &SendOptions::default(),
        )
        .await;
    assert!(
        matches!(refused, Err(SendMailError::Rejected(_))),
        "{refused:?}"
    );
}
