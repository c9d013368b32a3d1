//! Every sample event in events/ deserialises and is understood by the function that receives it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use inbound::events::{Work, read_body, read_value};

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
            "s3-object-created.json",
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
}
