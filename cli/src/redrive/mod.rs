//! `mailroom redrive`: gives mail whose delivery gave up another chance. On a stack, dead-lettered messages
//! go back to the inbound queue; in the dev store, failed deliveries go back to the retry queue. Either way
//! the failed records are reopened first, since the use case does nothing more for a final record.

use std::io::Write;
use std::process::ExitCode;

use chrono::Utc;
use mailroom::mail::envelope::KnownEnvelope;
use mailroom::ports::{MailLocation, RecordFilter, RecordQuery, Reopen};
use mailroom::record::{Delivery, Status};
use mailroom::usecases::inbound::Received;
use mailroom_local::sqlite::SqliteStore;

use crate::exit::{self, CliError};

#[cfg(feature = "aws")]
mod stack;

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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let limit = args.limit.map_or(usize::MAX, |n| n as usize);
    let data = match args.target.store()? {
        #[cfg(feature = "aws")]
        crate::backend::Store::Stack { table, names } => {
            return stack::redrive(table, names, limit, args.dry_run);
        }
        crate::backend::Store::Dev(data) => data,
    };
    let runtime = crate::backend::runtime()?;
    let store = crate::backend::existing_dev_store(&data)?;
    runtime.block_on(redrive_dev(&store, limit, args.dry_run))
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
        let Some(received) = received_again(&records, crate::local::LOCAL_BUCKET) else {
            continue;
        };
        // Reopened before it is queued: a running server may take the queued message at once, and would
        // find the records still final.
        let count = store
            .reopen(id, &[Status::Failed], None)
            .await
            .map_err(exit::from_store)?;
        let payload = serde_json::to_string(&crate::local::Pending::of(&received))?;
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
