//! Every sample event in events/ deserialises and is understood by the function that receives it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom_aws::events::{Work, read_body, read_value};

use integration_tests::repo;

fn load(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo(&format!("events/{name}"))).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("events/{name} is not JSON: {e}"))
}

#[test]
fn every_event_file_is_accounted_for() {
    let mut files: Vec<String> = std::fs::read_dir(repo("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "env.json",
            "function-url-link.json",
            "function-url-send.json",
            "s3-object-created.json",
            "sns-bounce-permanent.json",
            "sns-bounce-transient.json",
            "sns-complaint.json",
            "sns-delivery.json",
            "sns-subscription-confirmation.json",
            "sqs-event-bounce.json",
            "sqs-event-click.json",
            "sqs-event-complaint.json",
            "sqs-event-delivery-delay.json",
            "sqs-event-delivery.json",
            "sqs-event-open.json",
            "sqs-event-reject.json",
            "sqs-event-rendering-failure.json",
            "sqs-event-send.json",
            "sqs-event-subscription.json",
            "sqs-feedback-batch.json",
            "sqs-s3.json",
            "sqs-ses-received.json"
        ],
        "a new event file needs a test here"
    );
}

#[test]
fn the_direct_s3_event_names_the_sample_object() {
    let event = load("s3-object-created.json");
    let Work::Mail(received) = read_value(&event, chrono::Utc::now()).unwrap() else {
        panic!("one stored message");
    };
    assert_eq!(received.location.bucket, "mailroom-mail");
    assert_eq!(
        received.location.key,
        "inbound/4m1ab2cd3ef4gh5ij6kl7mn8op9qr0st1uv2wx3"
    );
    assert_eq!(
        received.received_at.to_rfc3339(),
        "2024-11-05T09:14:08.112+00:00"
    );
}

#[test]
fn sqs_batches_deserialise_as_sqs_events_with_readable_bodies() {
    for name in ["sqs-s3.json", "sqs-ses-received.json"] {
        let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(load(name)).unwrap();
        assert_eq!(event.records.len(), 1);
        let record = &event.records[0];
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        let Work::Mail(received) =
            read_body(record.body.as_deref().unwrap(), chrono::Utc::now()).unwrap()
        else {
            panic!("{name}: one stored message");
        };
        assert_eq!(
            received.location.key, "inbound/4m1ab2cd3ef4gh5ij6kl7mn8op9qr0st1uv2wx3",
            "{name}"
        );
    }
    let event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_value(load("sqs-ses-received.json")).unwrap();
    let Work::Mail(received) = read_body(
        event.records[0].body.as_deref().unwrap(),
        chrono::Utc::now(),
    )
    .unwrap() else {
        panic!();
    };
    assert_eq!(
        received.known.recipients.as_deref().unwrap(),
        [
            "support+ticket-4821@mail.example.com",
            "billing@mail.example.com"
        ]
    );
    assert_eq!(
        received.known.ses.as_ref().unwrap().virus,
        Some(mailroom::mail::envelope::Verdict::Pass)
    );
}

#[test]
fn env_json_configures_the_inbound_function() {
    let env = load("env.json");
    let vars = env["Inbound"].as_object().unwrap();
    let config = inbound::Config::from_lookup(|name| {
        vars.get(name).and_then(|v| v.as_str()).map(str::to_owned)
    })
    .expect("env.json is a valid configuration");
    assert_eq!(config.table, "mailroom-table");
    let vars = env["Feedback"].as_object().unwrap();
    let config = feedback::Config::from_lookup(|name| {
        vars.get(name).and_then(|v| v.as_str()).map(str::to_owned)
    })
    .expect("env.json configures the feedback function too");
    assert_eq!(config.table, "mailroom-table");
    let vars = env["Links"].as_object().unwrap();
    let config = links::Config::from_lookup(|name| {
        vars.get(name).and_then(|v| v.as_str()).map(str::to_owned)
    })
    .expect("env.json configures the links function too");
    assert_eq!(config.bucket, "mailroom-mail");
    assert_eq!(
        config.link_key_arn, None,
        "the key itself, no Secrets Manager call"
    );
    let key = config.link_key.expect("a link key");
    assert!(mailroom::deliver::links::LinkKey::parse(&key).is_ok());
    assert_eq!(
        vars["MAILROOM_LINK_KEY"],
        env["Inbound"]["MAILROOM_LINK_KEY"]
    );
}

/// The SES notification of a feedback sample: SNS event or SQS batch, first record.
fn ses_notification(name: &str) -> (Option<String>, String) {
    use mailroom::feedback::notification::{Envelope, read_envelope, sns_message};
    let event = load(name);
    let envelope = if name.starts_with("sns-") {
        let sns = &event["Records"][0]["Sns"];
        let text = |field: &str| sns[field].as_str().map(str::to_owned);
        sns_message(sns["Type"].as_str(), text("MessageId"), text("Message")).unwrap()
    } else {
        let batch: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(event).unwrap();
        read_envelope(batch.records[0].body.as_deref().unwrap()).unwrap()
    };
    match envelope {
        Envelope::Notification {
            sns_message_id,
            message,
        } => (sns_message_id, message),
        Envelope::Ignore { why, .. } => (None, why),
    }
}

#[test]
fn feedback_samples_read_as_the_event_they_are_named_after() {
    use mailroom::feedback::notification::{EventKind, Reading, read_notification};
    let cases = [
        ("sns-bounce-permanent.json", EventKind::Bounce),
        ("sns-bounce-transient.json", EventKind::Bounce),
        ("sns-complaint.json", EventKind::Complaint),
        ("sns-delivery.json", EventKind::Delivery),
        ("sqs-event-send.json", EventKind::Send),
        ("sqs-event-reject.json", EventKind::Reject),
        ("sqs-event-bounce.json", EventKind::Bounce),
        ("sqs-event-complaint.json", EventKind::Complaint),
        ("sqs-event-delivery.json", EventKind::Delivery),
        ("sqs-event-delivery-delay.json", EventKind::DeliveryDelay),
        ("sqs-event-open.json", EventKind::Open),
        ("sqs-event-click.json", EventKind::Click),
        (
            "sqs-event-rendering-failure.json",
            EventKind::RenderingFailure,
        ),
        ("sqs-event-subscription.json", EventKind::Subscription),
        ("sqs-feedback-batch.json", EventKind::Bounce),
    ];
    for (name, kind) in cases {
        let (sns_message_id, message) = ses_notification(name);
        assert!(sns_message_id.is_some(), "{name}: SNS's message id is read");
        let Reading::Feedback(feedback) = read_notification(&message, chrono::Utc::now()).unwrap()
        else {
            panic!("{name}: ignored");
        };
        assert_eq!(feedback.kind, kind, "{name}");
        assert!(!feedback.ses_message_id.is_empty(), "{name}");
        match kind {
            EventKind::Bounce => {
                assert!(feedback.feedback_id.is_some(), "{name}");
                assert!(feedback.recipients[0].smtp_status.is_some(), "{name}");
            }
            EventKind::Complaint => assert!(feedback.feedback_id.is_some(), "{name}"),
            EventKind::Delivery | EventKind::DeliveryDelay => {
                assert!(!feedback.recipients.is_empty(), "{name}")
            }
            _ => {}
        }
    }
    let (_, why) = ses_notification("sns-subscription-confirmation.json");
    assert!(why.contains("SubscriptionConfirmation"), "{why}");
    let batch: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_value(load("sqs-feedback-batch.json")).unwrap();
    assert_eq!(batch.records.len(), 3);
    assert!(
        mailroom::feedback::notification::read_envelope(batch.records[1].body.as_deref().unwrap())
            .is_err()
    );
}

#[test]
fn the_send_sample_is_a_message_cloudmailins_client_would_post() {
    let event = load("function-url-send.json");
    let path = event["rawPath"].as_str().unwrap();
    assert_eq!(
        mailroom::usecases::send::account_of(path),
        Some("k0123456789abcdef")
    );
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert!(
        event["headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Bearer mrk_")
    );
    let body = event["body"].as_str().unwrap().as_bytes();
    let message =
        mailroom::send::request::check(mailroom::send::request::parse(body).unwrap()).unwrap();
    assert_eq!(message.from_domain(), "mail.example.com");
    assert_eq!(
        message.recipients(),
        ["ana@example.net", "bruno@example.net"]
    );
}
