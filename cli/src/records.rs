//! `mailroom records`: upkeep of a stack's table of records. `reindex` moves the index keys of the records
//! already stored to the keys this version writes: after upgrading a stack deployed before the sharded
//! indexes, or after changing its `IndexShards` (docs/records-at-scale.md).

use std::process::ExitCode;

use clap::Subcommand;

/// `mailroom records …`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mailroom records reindex --stack mailroom-eu --dry-run   # what would move\n  mailroom records reindex --stack mailroom-eu             # move it"
)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Move every record's index keys to the stack's shards (one scan of the table, one conditional
    /// update per record whose keys differ); then listings stop asking for keys without a shard.
    Reindex {
        /// Spread them over this many shards (default: the stack's IndexShards output, or
        /// MAILROOM_INDEX_SHARDS, or 8): the count the functions write with.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(mailroom::record::MAX_INDEX_SHARDS)))]
        shards: Option<u32>,
        /// Count what would move; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.target.store()? {
        #[cfg(feature = "aws")]
        crate::backend::Store::Stack { table, names } => {
            let Command::Reindex { shards, dry_run } = args.command;
            reindex(table, names, shards, dry_run)
        }
        crate::backend::Store::Dev(_) => {
            println!(
                "the dev store keeps its records in SQLite, without index shards: nothing to reindex"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reindexes the stack's table and says what it did.
#[cfg(feature = "aws")]
fn reindex(
    table: String,
    mut names: crate::stack::StackNames,
    shards: Option<u32>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    use std::io::{IsTerminal, Write};

    if shards.is_some() {
        names.index_shards = shards;
    }
    crate::backend::runtime()?.block_on(async {
        let sdk = crate::stack::sdk_config().await;
        let store = crate::stack::dynamo_store(&sdk, table.clone(), &names);
        let mut out = std::io::stdout().lock();
        let indexes = store
            .index_status()
            .await
            .map_err(crate::exit::from_store)?;
        write_index_status(&mut out, &table, &indexes)?;
        let terminal = std::io::stderr().is_terminal();
        let done = store
            .reindex(dry_run, |so_far| {
                if terminal {
                    eprint!(
                        "\rscanned {} item(s), {} record(s) to move",
                        so_far.scanned, so_far.moved
                    );
                }
            })
            .await
            .map_err(crate::exit::from_store)?;
        if terminal {
            eprintln!();
        }
        let shards = store.index_shards();
        if dry_run {
            writeln!(
                out,
                "scanned {} item(s): {} record(s) would move to {shards} shard(s) ({} written before shards); nothing changed",
                done.scanned, done.moved, done.unsharded
            )?;
        } else {
            writeln!(
                out,
                "scanned {} item(s): moved {} record(s) to {shards} shard(s) ({} written before shards); {} changed meanwhile and were left as they are",
                done.scanned, done.moved, done.unsharded, done.changed_meanwhile
            )?;
            if done.changed_meanwhile == 0 {
                writeln!(
                    out,
                    "listings now ask only for sharded keys (the table records it in CONFIG / INDEX_SHARDS)"
                )?;
            } else {
                writeln!(
                    out,
                    "run it again: listings keep asking for unsharded keys until a pass changes nothing under it"
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Which of this version's indexes the table has, and which of the unsharded ones are still to go.
#[cfg(feature = "aws")]
fn write_index_status(
    out: &mut impl std::io::Write,
    table: &str,
    indexes: &[(String, String)],
) -> anyhow::Result<()> {
    let status = |name: &str| {
        indexes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_str())
    };
    let wanted: Vec<String> = mailroom_aws::dynamo::INDEXES
        .iter()
        .map(|index| match status(index.name) {
            Some(state) => format!("{} {state}", index.name),
            None => format!("{} MISSING", index.name),
        })
        .collect();
    writeln!(out, "table {table}: {}", wanted.join(", "))?;
    let leftover: Vec<&str> = mailroom_aws::dynamo::LEGACY_INDEXES
        .iter()
        .map(|index| index.name)
        .filter(|name| status(name).is_some())
        .collect();
    let missing = wanted.iter().any(|w| !w.ends_with(" ACTIVE"));
    if missing || !leftover.is_empty() {
        writeln!(
            out,
            "the upgrade's deploys are not finished{}{}: see docs/records-at-scale.md, \"Upgrading a stack\"",
            if missing {
                " (an index above is not ACTIVE)"
            } else {
                ""
            },
            if leftover.is_empty() {
                String::new()
            } else {
                format!("; still to remove: {}", leftover.join(", "))
            }
        )?;
    }
    Ok(())
}
