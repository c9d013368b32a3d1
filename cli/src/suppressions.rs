//! `mailroom suppressions`: the addresses Mailroom sends nothing to.

use std::io::Write;
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use clap::Subcommand;
use mailroom::feedback::{Suppression, SuppressionReason};
use mailroom::mail::envelope::normalise_address;
use mailroom::ports::SuppressionList;
use serde_json::json;

use crate::backend;
use crate::exit::{self, CliError};

/// `mailroom suppressions …`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the suppressed addresses.
    List {
        /// Print a JSON array of {address, reason, created_at, …}.
        #[arg(long)]
        json: bool,
    },
    /// Suppress an address by hand (reason `manual`).
    Add {
        /// The address.
        address: String,
        /// A note kept with it.
        #[arg(long)]
        note: Option<String>,
    },
    /// Send to an address again.
    Remove {
        /// The address.
        address: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = backend::runtime()?;
    match args.target.store()? {
        #[cfg(feature = "aws")]
        backend::Store::Stack { table, .. } => runtime.block_on(async {
            run_on(&crate::stack::table_store(table).await, args.command).await
        }),
        backend::Store::Dev(data) => {
            runtime.block_on(run_on(&backend::dev_store(&data)?, args.command))
        }
    }
}

pub(crate) fn check_address(address: &str) -> anyhow::Result<String> {
    let address = normalise_address(address);
    match address.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !address.contains(char::is_whitespace) =>
        {
            Ok(address)
        }
        _ => Err(CliError::new(
            exit::BAD_ARGUMENTS,
            format!("`{address}` is not an email address"),
        )
        .into()),
    }
}

async fn run_on<S: SuppressionList>(store: &S, command: Command) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::List { json } => {
            let all = store.suppressions().await.map_err(exit::from_store)?;
            if json {
                let list: Vec<_> = all
                    .iter()
                    .map(|s| {
                        json!({
                            "address": s.address,
                            "reason": s.reason.as_str(),
                            "created_at": s.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                            "detail": s.detail,
                            "feedback_id": s.feedback_id,
                            "ses_message_id": s.ses_message_id,
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
            } else if all.is_empty() {
                writeln!(out, "no suppressed addresses")?;
            } else {
                writeln!(
                    out,
                    "{:<40} {:<10} {:<20} detail",
                    "address", "reason", "since"
                )?;
                for s in &all {
                    writeln!(
                        out,
                        "{:<40} {:<10} {:<20} {}",
                        s.address,
                        s.reason.as_str(),
                        s.created_at.format("%Y-%m-%d %H:%M"),
                        s.detail.as_deref().unwrap_or("")
                    )?;
                }
            }
        }
        Command::Add { address, note } => {
            let address = check_address(&address)?;
            let added = store
                .suppress(&Suppression {
                    address: address.clone(),
                    reason: SuppressionReason::Manual,
                    created_at: Utc::now(),
                    feedback_id: None,
                    ses_message_id: None,
                    detail: note,
                })
                .await
                .map_err(exit::from_store)?;
            if added {
                writeln!(out, "suppressed {address}")?;
            } else {
                writeln!(out, "{address} was suppressed already")?;
            }
        }
        Command::Remove { address } => {
            let address = check_address(&address)?;
            if !store.unsuppress(&address).await.map_err(exit::from_store)? {
                return Err(CliError::new(
                    exit::NOTHING_MATCHED,
                    format!("{address} is not suppressed"),
                )
                .into());
            }
            writeln!(out, "removed {address} from the suppression list")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
