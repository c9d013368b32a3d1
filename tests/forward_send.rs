//! Forwards sent through SES v2 on moto's server: the bytes SES got are the rewrite's, byte for byte, for 20
//! corpus messages; an unverified sender is a rejection, not a retry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use integration_tests::{endpoint, repo, resources, sdk, unique};
use mailroom::aws::ses::SesSender;
use mailroom::format::forward::{ForwardHeaders, rewrite_for_forward};
use mailroom::ports::{MailSender, SendMailError};
use serde_json::Value;

/// What moto's SES kept of a raw send.
async fn sent(id: &str) -> Value {
    let body = reqwest::get(format!("{}/moto-api/data.json", endpoint()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let data: Value = serde_json::from_slice(&body).unwrap();
    data["ses"]["RawMessage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("moto has no send {id}"))
}

#[tokio::test]
async fn forwards_reach_ses_as_rewritten_and_unverified_senders_are_rejected() {
    let sdk = sdk().await;
    let res = resources(&sdk, "fwd-send").await;
    let domain = format!("{}.example.com", unique("fwd"));
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    ses.create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
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
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = sent(&id).await;
        assert_eq!(
            got["raw_data"].as_str().unwrap().as_bytes(),
            &forward[..],
            "{}",
            path.display()
        );
        assert_eq!(got["source"], from.as_str());
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
        )
        .await;
    assert!(
        matches!(refused, Err(SendMailError::Rejected(_))),
        "{refused:?}"
    );
}
