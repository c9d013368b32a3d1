//! `mailroom redrive` on a stack: dead-lettered messages back to the inbound queue.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use mailroom::ports::{RecordQuery, Reopen};
use mailroom::record::Status;
use mailroom_aws::events::{Work, read_body};
use mailroom_aws::sqs::{MAX_RECEIVE, Queue, QueuedMessage};

use crate::exit::{self, CliError};
use crate::stack::StackNames;

/// How long a received dead letter stays hidden from other consumers while it is moved (or listed).
const HOLD: Duration = Duration::from_secs(60);

/// Short polls that come back empty before the dead-letter queue counts as drained: SQS answers a short
/// poll from a sample of its servers, so one empty answer does not prove the queue is empty.
const EMPTY_ANSWERS_TO_STOP: u32 = 2;

/// Dead letters back to the inbound queue, their failed records reopened first.
pub fn redrive(
    table: String,
    names: StackNames,
    limit: usize,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let queue_url = required(names.queue_url.clone(), "MAILROOM_QUEUE_URL")?;
    let dlq_url = required(names.dlq_url.clone(), "MAILROOM_DLQ_URL")?;
    crate::backend::runtime()?.block_on(async {
        let sdk = crate::stack::sdk_config().await;
        let store = crate::stack::dynamo_store(&sdk, table, &names);
        let queues = Queues {
            dead_letters: Queue::new(&sdk, dlq_url),
            inbound: Queue::new(&sdk, queue_url),
        };
        redrive_queue(&store, &queues, limit, dry_run).await
    })
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
            reopened += if dry_run {
                let failed = list_dead_letter(store, &message, &mut out).await?;
                listed.push(message);
                failed
            } else {
                move_dead_letter(store, queues, &message, &mut out).await?
            };
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

/// Prints what moving one dead letter would do; the failed deliveries it would reopen.
async fn list_dead_letter<S: RecordQuery>(
    store: &S,
    message: &QueuedMessage,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let ids = message_ids(&message.body);
    let mut failed = 0;
    for id in ids.iter().flatten() {
        failed += failed_count(store, id).await?;
    }
    writeln!(
        out,
        "would move  {}  {failed} failed delivery(ies) to reopen",
        described(&ids)
    )?;
    Ok(failed)
}

/// Reopens one dead letter's failed deliveries and moves it to the inbound queue; the deliveries reopened.
async fn move_dead_letter<S: Reopen>(
    store: &S,
    queues: &Queues,
    message: &QueuedMessage,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let ids = message_ids(&message.body);
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
    // Deleted only once it is in the inbound queue: a failure in between leaves a copy in both, and the
    // function handles a message twice without delivering twice.
    queues
        .dead_letters
        .delete(message)
        .await
        .map_err(exit::from_store)?;
    writeln!(
        out,
        "moved  {}  reopened {count} delivery(ies)",
        described(&ids)
    )?;
    Ok(count)
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
