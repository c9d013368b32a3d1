//! `mailroom redrive`: gives mail whose delivery gave up another chance. On a stack, dead-lettered messages
//! go back to the inbound queue; in the dev store, failed deliveries go back to the retry queue. Either way
//! the failed records are reopened first, since the use case does nothing more for a final record.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use mailroom::aws::dynamo::DynamoStore;
use mailroom::aws::events::{Work, read_body};
use mailroom::aws::sqs::{MAX_RECEIVE, Queue, QueuedMessage};
use mailroom::inbound::Received;
use mailroom::local::sqlite::SqliteStore;
use mailroom::mail::envelope::KnownEnvelope;
use mailroom::ports::{MailLocation, RecordFilter, RecordQuery, Reopen};
use mailroom::record::{Delivery, Status};

use crate::exit::{self, CliError};

/// `mailroom redrive …`.
#[derive(clap::Args)]
#[command(
    after_help = "On a stack (MAILROOM_TABLE set) it needs MAILROOM_QUEUE_URL and MAILROOM_DLQ_URL too.\n\nExamples:\n  mailroom redrive --dry-run          # what would move\n  mailroom redrive --limit 10         # move ten messages"
)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    /// At most this many messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    limit: Option<u32>,
    /// Only list what would move; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// How long a received dead letter stays hidden from other consumers while it is moved (or listed).
const HOLD: Duration = Duration::from_secs(60);

/// Short polls that come back empty before the dead-letter queue counts as drained: SQS answers a short
/// poll from a sample of its servers, so one empty answer does not prove the queue is empty.
const EMPTY_ANSWERS_TO_STOP: u32 = 2;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let names = args.target.names()?;
    let runtime = crate::backend::runtime()?;
    let limit = args.limit.map_or(usize::MAX, |n| n as usize);
    if let Some(table) = names.table {
        let queue_url = required(names.queue_url, "MAILROOM_QUEUE_URL")?;
        let dlq_url = required(names.dlq_url, "MAILROOM_DLQ_URL")?;
        return runtime.block_on(async {
            let sdk = crate::backend::sdk_config().await;
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
            let queues = Queues {
                dead_letters: Queue::new(&sdk, dlq_url),
                inbound: Queue::new(&sdk, queue_url),
            };
            redrive_queue(&store, &queues, limit, args.dry_run).await
        });
    }
    let db = args.target.data.join(crate::backend::DEV_DATABASE);
    if !db.exists() {
        return Err(CliError::new(
            exit::NOT_FOUND,
            format!(
                "no dev store at {} (run `mailroom dev`, or give --data DIR; for a stack set MAILROOM_TABLE)",
                args.target.data.display()
            ),
        )
        .into());
    }
    let store = SqliteStore::open(&db).map_err(exit::from_store)?;
    runtime.block_on(redrive_dev(&store, limit, args.dry_run))
}

fn required(value: Option<String>, name: &str) -> anyhow::Result<String> {
    value.ok_or_else(|| {
        CliError::new(
            exit::BAD_ARGUMENTS,
            format!("redrive on a stack needs {name} (or --stack NAME, whose outputs name it)"),
        )
        .into()
    })
}

struct Queues {
    dead_letters: Queue,
    inbound: Queue,
}

/// The messages a body is about, read as the inbound function reads it.
fn message_ids(body: &str) -> Result<Vec<String>, String> {
    match read_body(body, Utc::now()) {
        Ok(Work::Mail(received)) => Ok(vec![received.location.message_id().to_owned()]),
        Ok(Work::Many(all)) => Ok(all
            .iter()
            .map(|received| received.location.message_id().to_owned())
            .collect()),
        Ok(Work::Ignore(reason)) => Err(format!("nothing to deliver: {reason}")),
        Err(malformed) => Err(format!("the body cannot be read: {malformed}")),
    }
}

/// What a dead letter is, for the line printed about it.
fn described(ids: &Result<Vec<String>, String>) -> String {
    match ids {
        Ok(ids) => format!("message {}", ids.join(", ")),
        Err(why) => format!("({why}; moved anyway, the function records it)"),
    }
}

async fn failed_count<S: RecordQuery>(store: &S, message_id: &str) -> anyhow::Result<usize> {
    Ok(store
        .message(message_id)
        .await
        .map_err(exit::from_store)?
        .iter()
        .filter(|record| record.status == Status::Failed)
        .count())
}

async fn redrive_queue<S: Reopen + RecordQuery>(
    store: &S,
    queues: &Queues,
    limit: usize,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let mut listed: Vec<QueuedMessage> = Vec::new();
    let result = move_dead_letters(store, queues, limit, dry_run, &mut listed).await;
    // A dry run held what it listed: it goes back untouched, whatever happened.
    let mut released = Ok(());
    for message in &listed {
        if let Err(error) = queues.dead_letters.release(message).await {
            released = Err(exit::from_store(error));
        }
    }
    let code = result?;
    released?;
    Ok(code)
}

async fn move_dead_letters<S: Reopen + RecordQuery>(
    store: &S,
    queues: &Queues,
    limit: usize,
    dry_run: bool,
    listed: &mut Vec<QueuedMessage>,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut seen = HashSet::new();
    let (mut moved, mut reopened, mut empty_answers) = (0usize, 0usize, 0u32);
    'receiving: while moved < limit && empty_answers < EMPTY_ANSWERS_TO_STOP {
        let batch = queues
            .dead_letters
            .receive((limit - moved).min(MAX_RECEIVE), HOLD)
            .await
            .map_err(exit::from_store)?;
        if batch.is_empty() {
            empty_answers += 1;
            continue;
        }
        empty_answers = 0;
        let mut batch = batch.into_iter();
        while let Some(message) = batch.next() {
            if moved >= limit || !seen.insert(message.message_id.clone()) {
                // Over the limit, or listed already (a dry run that outlasted its hold): back it goes.
                listed.push(message);
                listed.extend(batch);
                break 'receiving;
            }
            let ids = message_ids(&message.body);
            if dry_run {
                let mut failed = 0;
                for id in ids.iter().flatten() {
                    failed += failed_count(store, id).await?;
                }
                writeln!(
                    out,
                    "would move  {}  {failed} failed delivery(ies) to reopen",
                    described(&ids)
                )?;
                listed.push(message);
                reopened += failed;
            } else {
                let mut count = 0;
                for id in ids.iter().flatten() {
                    count += store
                        .reopen(id, &[Status::Failed], None)
                        .await
                        .map_err(exit::from_store)?;
                }
                queues
                    .inbound
                    .send(&message.body)
                    .await
                    .map_err(exit::from_store)?;
                // Deleted only once it is in the inbound queue: a failure in between leaves a copy in both,
                // and the function handles a message twice without delivering twice.
                queues
                    .dead_letters
                    .delete(&message)
                    .await
                    .map_err(exit::from_store)?;
                writeln!(
                    out,
                    "moved  {}  reopened {count} delivery(ies)",
                    described(&ids)
                )?;
                reopened += count;
            }
            moved += 1;
        }
    }
    if moved == 0 {
        return Err(CliError::new(exit::NOTHING_MATCHED, "the dead-letter queue is empty").into());
    }
    if dry_run {
        writeln!(
            out,
            "would move {moved} message(s), would reopen {reopened} delivery(ies); nothing changed (dry run)"
        )?;
    } else {
        writeln!(
            out,
            "moved {moved} message(s), reopened {reopened} delivery(ies)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn redrive_dev(store: &SqliteStore, limit: usize, dry_run: bool) -> anyhow::Result<ExitCode> {
    let failed = store
        .list(&RecordFilter {
            status: Some(Status::Failed),
            limit: 0,
            ..RecordFilter::default()
        })
        .await
        .map_err(exit::from_store)?;
    let mut message_ids: Vec<String> = Vec::new();
    for record in failed {
        if !message_ids.contains(&record.message_id) {
            message_ids.push(record.message_id);
        }
    }
    message_ids.truncate(limit);
    if message_ids.is_empty() {
        return Err(CliError::new(
            exit::NOTHING_MATCHED,
            "no failed deliveries in the dev store",
        )
        .into());
    }
    let mut out = std::io::stdout().lock();
    let mut reopened = 0;
    for id in &message_ids {
        let records = store.message(id).await.map_err(exit::from_store)?;
        if dry_run {
            let failed = records
                .iter()
                .filter(|record| record.status == Status::Failed)
                .count();
            writeln!(
                out,
                "would re-queue  message {id}  {failed} failed delivery(ies) to reopen"
            )?;
            reopened += failed;
            continue;
        }
        let Some(received) = received_again(&records, crate::dev::LOCAL_BUCKET) else {
            continue;
        };
        // Reopened before it is queued: a running server may take the queued message at once, and would
        // find the records still final.
        let count = store
            .reopen(id, &[Status::Failed], None)
            .await
            .map_err(exit::from_store)?;
        let payload = serde_json::to_string(&crate::dev::Pending::of(&received))?;
        store
            .schedule(&received.location.key, Utc::now(), &payload)
            .map_err(exit::from_store)?;
        writeln!(
            out,
            "re-queued  message {id}  reopened {count} delivery(ies)"
        )?;
        reopened += count;
    }
    let moved = message_ids.len();
    if dry_run {
        writeln!(
            out,
            "would re-queue {moved} message(s), would reopen {reopened} delivery(ies); nothing changed (dry run)"
        )?;
    } else {
        writeln!(
            out,
            "re-queued {moved} message(s), reopened {reopened} delivery(ies); a running `mailroom dev` \
             delivers them within a second, a stopped one at its next start"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The message of `records` as the dev server queues it, seen for the first time now so it gets a fresh
/// 72 hours. The recipients are the records' (every delivery that is not failed is final and skipped); when
/// a route redacted one, none are given and they are recovered from the stored message, as on arrival.
pub(crate) fn received_again(records: &[Delivery], bucket: &str) -> Option<Received> {
    let first = records.first()?;
    let mut recipients: Vec<String> = Vec::new();
    if records.iter().all(|record| record.recipient.is_some()) {
        for recipient in records
            .iter()
            .filter_map(|record| record.recipient.as_ref())
        {
            if !recipients.iter().any(|r| r.eq_ignore_ascii_case(recipient)) {
                recipients.push(recipient.clone());
            }
        }
    }
    Some(Received {
        location: MailLocation {
            bucket: bucket.to_owned(),
            key: first.s3_key.clone(),
        },
        received_at: first.received_at,
        first_seen: Utc::now(),
        known: KnownEnvelope {
            recipients: Some(recipients),
            from: records.iter().find_map(|r| r.sender.clone()),
            remote_ip: records.iter().find_map(|r| r.sender_ip.clone()),
            ..KnownEnvelope::default()
        },
        size: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_as_the_function_reads_them() {
        let s3_event = serde_json::json!({"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "inbound/one"}}},
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "inbound/two"}}}
        ]})
        .to_string();
        assert_eq!(
            message_ids(&s3_event),
            Ok(vec!["one".to_owned(), "two".to_owned()])
        );
        assert!(message_ids("not json").is_err());
    }
}
