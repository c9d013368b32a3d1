//! `mailroom messages list` page by page, and `mailroom records reindex`, on a stack's table (moto's
//! server): the token printed after a full page resumes the listing exactly, and reindex moves the index
//! keys of stored records to the stack's shards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use chrono::{Duration, Utc};
use integration_tests::{on_emulator, printed_array, resources, sdk};
use mailroom::ports::RecordStore;
use mailroom::record::{Delivery, DeliveryKey, Status};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;

fn mailroom(res: &Resources, args: &[&str]) -> Output {
    on_emulator(&mut Command::new(env!("CARGO_BIN_EXE_mailroom")))
        .args(args)
        .env("MAILROOM_TABLE", &res.table)
        .env_remove("MAILROOM_INDEX_SHARDS")
        .output()
        .unwrap()
}

/// The `--after` token a listing printed to stderr after a full page, if any.
fn next_token(output: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .split_whitespace()
        .skip_while(|word| *word != "--after")
        .nth(1)
        .map(str::to_owned)
}

#[tokio::test]
async fn a_long_listing_comes_in_pages_and_reindex_moves_keys_to_the_stacks_shards() {
    let sdk = sdk().await;
    let res = resources(&sdk, "pages").await;
    // Written by functions spreading over three shards.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone())
        .with_index_shards(3);
    let now = Utc::now() - Duration::seconds(5);
    let mut expected = Vec::new();
    for n in 0..12 {
        let id = format!("page-{n:02}");
        let target = "webhook https://app.example/in";
        let mut record = Delivery::new(
            &DeliveryKey::new(&id, "support@mail.example.com", target),
            &format!("inbound/{id}"),
            now - Duration::minutes(n),
            60,
        );
        record.recipient = Some("support@mail.example.com".to_owned());
        record.target = target.to_owned();
        record.status = Status::Delivered;
        assert!(store.save(&record, None).await.unwrap());
        expected.push(id);
    }

    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec!["messages", "list", "--json", "--limit", "5"];
        if let Some(token) = &after {
            args.extend(["--after", token.as_str()]);
        }
        let output = mailroom(&res, &args);
        let page = printed_array(&output);
        assert!(page.len() <= 5);
        listed.extend(
            page.iter()
                .map(|r| r["message_id"].as_str().unwrap().to_owned()),
        );
        after = next_token(&output);
        if after.is_none() {
            break;
        }
    }
    assert_eq!(listed, expected, "every record once, newest first");
    let bad = mailroom(&res, &["messages", "list", "--after", "nonsense"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a token that is none is a bad argument"
    );

    // The stack says eight shards (MAILROOM_INDEX_SHARDS, as `--stack` reads its output).
    let dry = mailroom(&res, &["records", "reindex", "--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        dry.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let moving = expected
        .iter()
        .filter(|id| mailroom::record::index_shard(id, 3) != mailroom::record::index_shard(id, 8))
        .count();
    assert!(
        text.contains(&format!("{moving} record(s) would move to 8 shard(s)")),
        "{text}"
    );
    assert!(text.contains("nothing changed"), "{text}");
    let done = mailroom(&res, &["records", "reindex"]);
    let text = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(
        text.contains(&format!("moved {moving} record(s) to 8 shard(s)")),
        "{text}"
    );
    let again = mailroom(&res, &["records", "reindex", "--shards", "8"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("moved 0 record(s)"));
    // Still every record, through whatever shards they are in now.
    let all = printed_array(&mailroom(&res, &["messages", "list", "--json"]));
    let ids: Vec<&str> = all
        .iter()
        .map(|r| r["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, expected);
}
