//! Fills a stack's table (in moto's server, or any endpoint `AWS_ENDPOINT_URL` names) with delivery
//! records, for measuring the console on a table of realistic size: `bench/console.sh` runs it.
//!
//! `seed_records TABLE BUCKET COUNT CORPUS_DIR`: COUNT records spread over the last 60 days, newest every
//! few seconds, through the adapter's own writes (`DynamoStore::save`, so every index key and shard is
//! what the inbound function writes); the newest 20 messages are real corpus messages stored in BUCKET,
//! so a message page has mail to render. Prints the id of the newest message.

use std::time::Instant;

use chrono::{Duration, Utc};
use futures_util::StreamExt;
use mailroom::ports::RecordStore;
use mailroom::record::{Attempt, Delivery, DeliveryKey, Status};
use mailroom_aws::dynamo::DynamoStore;

const STORED: usize = 20;

fn status_of(n: usize) -> Status {
    match n % 100 {
        0..=89 => Status::Delivered,
        90..=93 => Status::Rejected,
        94..=96 => Status::Failed,
        97 => Status::NoRoute,
        98 => Status::Dropped,
        _ => Status::Sent,
    }
}

fn record(n: usize, count: usize, now: chrono::DateTime<Utc>) -> Delivery {
    let received_at = now - Duration::milliseconds((n as i64) * 60 * 86_400_000 / count as i64);
    let message_id = format!("seed{n:07}");
    let recipient = format!(
        "{}@mail.example.com",
        ["support", "billing", "sales", "ops"][n % 4]
    );
    let target = if n % 10 == 9 {
        format!("forward team{}@example.net", n % 7)
    } else {
        format!("webhook https://app{}.example.com/mail", n % 5)
    };
    let status = status_of(n);
    let code = match status {
        Status::Delivered => Some(200),
        Status::Rejected => Some(422),
        Status::Failed => Some(503),
        _ => None,
    };
    let key = DeliveryKey::new(&message_id, &recipient, &target);
    Delivery {
        message_id,
        delivery_id: key.delivery_id,
        status,
        recipient: Some(recipient),
        recipient_source: Some("smtp".to_owned()),
        route: Some("*@mail.example.com".to_owned()),
        target,
        attempts: 1,
        webhook_id: Some(format!("msg_{n:032}")),
        outbound_id: None,
        received_at,
        sender_ip: Some("192.0.2.10".to_owned()),
        sender: Some(format!("customer{}@sender{}.example", n % 997, n % 13)),
        message_id_header: Some(format!("<{n}@sender.example>")),
        subject: Some(format!(
            "{} #{n}",
            [
                "Invoice",
                "Order confirmation",
                "Re: ticket",
                "Delivery report",
                "Hello"
            ][n % 5]
        )),
        response_status: code,
        response_body: code.map(|c| format!("{{\"status\":{c}}}")),
        processing_ms: Some(40 + (n % 300) as u64),
        error: None,
        s3_key: format!("inbound/seed{n:07}"),
        next_attempt_at: None,
        history: vec![Attempt {
            at: received_at + Duration::milliseconds(150),
            status_code: code,
            outcome: status,
            error: None,
            response_excerpt: code.map(|c| format!("{{\"status\":{c}}}")),
            ms: 40 + (n % 300) as u64,
        }],
        expires_at: (now + Duration::days(60)).timestamp(),
        lookup: Default::default(),
        unsealed: Default::default(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, table, bucket, count, corpus] = args.as_slice() else {
        anyhow::bail!("usage: seed_records TABLE BUCKET COUNT CORPUS_DIR");
    };
    let count: usize = count.parse()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
    let s3 = mailroom_aws::s3_client(&sdk);
    let mut mails: Vec<std::path::PathBuf> = std::fs::read_dir(corpus)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    mails.sort();
    for (n, path) in mails.iter().take(STORED).enumerate() {
        s3.put_object()
            .bucket(bucket)
            .key(format!("inbound/seed{n:07}"))
            .body(std::fs::read(path)?.into())
            .send()
            .await?;
    }
    let now = Utc::now();
    let started = Instant::now();
    let written = futures_util::stream::iter(0..count)
        .map(|n| {
            let store = store.clone();
            async move { store.save(&record(n, count, now), None).await }
        })
        .buffer_unordered(16)
        .fold(0usize, |done, result| async move {
            if let Err(error) = result {
                eprintln!("write failed: {error}");
            }
            if (done + 1) % 10_000 == 0 {
                eprintln!("{} records", done + 1);
            }
            done + 1
        })
        .await;
    eprintln!(
        "{written} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("seed0000000");
    Ok(())
}
