//! `mailroom data`: everything held about an address, and its erasure, for data-protection requests.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use chrono::Utc;
use clap::Subcommand;
use mailroom::ports::{
    AddressRecords, ObjectEraser, OutboundStore, RouteStore, SoftBounceStore, SuppressionList,
};
use mailroom::usecases::erasure::{AddressData, Erased, Held};
use mailroom_local::files::LocalMailStore;
use mailroom_local::outbox::Outbox;
use mailroom_local::sqlite::SqliteStore;

use crate::exit::{self, CliError};

/// `mailroom data …`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print, as JSON, everything held about an address: records where it is sender or recipient,
    /// outbound records, suppression, routes that name it, and the keys of stored objects.
    Export {
        /// The address.
        #[arg(long, value_name = "A")]
        address: String,
    },
    /// Erase everything held about an address (routes aside: `routes remove` removes them).
    Delete {
        /// The address.
        #[arg(long, value_name = "A")]
        address: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let address = match &args.command {
        Command::Export { address } | Command::Delete { address, .. } => address.trim().to_owned(),
    };
    if !address.contains('@') || address.chars().any(char::is_whitespace) {
        return Err(CliError::new(
            exit::BAD_ARGUMENTS,
            format!("`{address}` is not an email address"),
        )
        .into());
    }
    let data = match args.target.store()? {
        #[cfg(feature = "aws")]
        crate::backend::Store::Stack { table, names } => {
            return on_stack(args.command, &address, table, names);
        }
        crate::backend::Store::Dev(data) => data,
    };
    let runtime = crate::backend::runtime()?;
    let store = crate::backend::dev_store(&data)?;
    let address_data = AddressData::new(
        store.clone(),
        LocalMailStore::new(data.join("mail")),
        crate::local::LOCAL_BUCKET,
    );
    let outbox = Outbox::new(data.join("outbox"));
    runtime.block_on(run_on(&address_data, args.command, &address, |held| {
        forget_dev_traces(&store, &outbox, held)
    }))
}

/// The command on a deployed stack's table and bucket.
#[cfg(feature = "aws")]
fn on_stack(
    command: Command,
    address: &str,
    table: String,
    names: crate::stack::StackNames,
) -> anyhow::Result<ExitCode> {
    let Some(bucket) = names.bucket.clone() else {
        return Err(CliError::new(
            exit::BAD_ARGUMENTS,
            "the stored mail is in the stack's bucket: set MAILROOM_BUCKET as well as MAILROOM_TABLE",
        )
        .into());
    };
    crate::backend::runtime()?.block_on(async {
        let sdk = crate::stack::sdk_config().await;
        let data = AddressData::new(
            crate::stack::dynamo_store(&sdk, table, &names),
            mailroom_aws::s3::S3MailStore::new(mailroom_aws::s3_client(&sdk)),
            bucket,
        );
        run_on(&data, command, address, |_| Ok(())).await
    })
}

/// What only the dev store keeps beside the ports: the retry queue's copies of envelopes and the outbox.
pub(crate) fn forget_dev_traces(
    store: &SqliteStore,
    outbox: &Outbox,
    held: &Held,
) -> anyhow::Result<()> {
    for record in &held.deliveries {
        store
            .forget_pending(&record.s3_key)
            .map_err(exit::from_store)?;
    }
    for record in &held.outbound {
        let path = outbox.path_of(&record.ses_message_id);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(
                    anyhow::Error::new(error).context(format!("cannot remove {}", path.display()))
                );
            }
        }
    }
    Ok(())
}

async fn run_on<S, O>(
    data: &AddressData<S, O>,
    command: Command,
    address: &str,
    forget_more: impl Fn(&Held) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode>
where
    S: AddressRecords + OutboundStore + SuppressionList + SoftBounceStore + RouteStore,
    O: ObjectEraser,
{
    let held = data.export(address).await.map_err(exit::from_store)?;
    match command {
        Command::Export { .. } => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &held)?;
            writeln!(out)?;
            if held.is_empty() && held.routes.is_empty() {
                return Ok(ExitCode::from(exit::NOTHING_MATCHED));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete { yes, .. } => {
            if held.is_empty() {
                let routes = if held.routes.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} route(s) name it and are kept: `mailroom routes remove` removes them)",
                        held.routes.len()
                    )
                };
                return Err(CliError::new(
                    exit::NOTHING_MATCHED,
                    format!("nothing is held about {}{routes}", held.address),
                )
                .into());
            }
            println!("about {}: {}", held.address, held_summary(&held));
            if !yes && !confirmed(&held.address)? {
                return Err(CliError::new(exit::FAILURE, "nothing was erased").into());
            }
            let erased = data
                .delete(&held, Utc::now())
                .await
                .map_err(exit::from_store)?;
            forget_more(&held)?;
            print_erased(&held.address, &erased);
            if !held.routes.is_empty() {
                println!(
                    "kept: {} route(s) that name it (configuration; `mailroom routes remove PATTERN`)",
                    held.routes.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirmed(address: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            exit::BAD_ARGUMENTS,
            "not a terminal, so nobody can confirm: give --yes to erase",
        )
        .into());
    }
    print!("erase all of it? type the address to confirm: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case(address))
}

fn print_erased(address: &str, erased: &Erased) {
    println!(
        "erased about {address}: {} record(s), {} pending delivery(ies) cancelled, {} outbound record(s), \
         {} suppression(s), {} soft-bounce count(s), {} stored object(s)",
        erased.deliveries,
        erased.cancelled,
        erased.outbound,
        erased.suppressions,
        erased.soft_bounces,
        erased.objects
    );
}

/// What is held about an address, in words (the CLI's erasure prompt, the console's confirmation page).
pub(crate) fn held_summary(held: &Held) -> String {
    format!(
        "{} record(s), {} message(s), {} outbound record(s), {} stored object(s){}{}",
        held.deliveries.len(),
        held.messages.len(),
        held.outbound.len(),
        held.objects.len(),
        if held.suppression.is_some() {
            ", a suppression"
        } else {
            ""
        },
        if held.soft_bounces.is_some() {
            ", soft-bounce counts"
        } else {
            ""
        },
    )
}
