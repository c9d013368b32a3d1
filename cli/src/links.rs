//! `mailroom links rotate-key`: a new key for the links to stored attachments and originals, with no
//! live link broken. The link endpoint accepts the current key and the one before it, so links signed
//! before the rotation open until the next one.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use mailroom::deliver::links::{LinkKey, LinkKeys};

use crate::exit::{self, CliError};

/// `mailroom links …`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a new link-signing key. Links signed with the key before it keep working until the next
    /// rotation, so rotate no more often than links live (AttachmentUrlDays, 7 days by default).
    #[command(
        after_help = "On a stack the key is the secret of its LinkKey resource (`--stack NAME`, or \
--secret ARN / MAILROOM_LINK_KEY_ARN): the new value becomes AWSCURRENT and the one before AWSPREVIOUS, \
both accepted by the link endpoint. On the dev store (--data) it is DATA/link-key."
    )]
    RotateKey {
        /// The Secrets Manager secret holding the key (instead of the stack's `LinkKey`).
        #[arg(long, env = "MAILROOM_LINK_KEY_ARN", value_name = "ARN")]
        secret: Option<String>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Command::RotateKey { secret } = args.command;
    let secret = secret.filter(|s| !s.trim().is_empty());
    #[cfg(feature = "aws")]
    if secret.is_some() || args.target.stack.is_some() {
        return rotate_secret(secret, args.target.stack.as_deref());
    }
    #[cfg(not(feature = "aws"))]
    if secret.is_some() {
        return Err(CliError::new(
            exit::BAD_ARGUMENTS,
            "--secret names a key in Secrets Manager, but this mailroom was built without AWS support",
        )
        .into());
    }
    let data = match args.target.store()? {
        #[cfg(feature = "aws")]
        crate::backend::Store::Stack { .. } => {
            return Err(CliError::new(
                exit::BAD_ARGUMENTS,
                "the link key of a stack is a secret: give --stack NAME or --secret ARN (MAILROOM_LINK_KEY_ARN)",
            )
            .into());
        }
        crate::backend::Store::Dev(data) => data,
    };
    let keys = rotate_dev_key(&data.join("link-key"))?;
    report(&keys, "restart `mailroom dev` to sign new links with it");
    Ok(ExitCode::SUCCESS)
}

/// The stack's key (or the one `--secret` names) rotated in Secrets Manager.
#[cfg(feature = "aws")]
fn rotate_secret(secret: Option<String>, stack: Option<&str>) -> anyhow::Result<ExitCode> {
    crate::backend::runtime()?.block_on(async {
        let arn = match secret {
            Some(arn) => arn,
            None => crate::stack::link_key_arn(stack.unwrap_or_default()).await?,
        };
        let sdk = crate::stack::sdk_config().await;
        let client = mailroom_aws::secrets::client(&sdk);
        let keys = mailroom_aws::secrets::rotate_link_key(&client, &arn)
            .await
            .map_err(exit::from_store)?;
        report(
            &keys,
            "the link function reads it at its next start, or at the first link of the new key",
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The dev store's key file gets a new first line; the key that was first becomes the second.
fn rotate_dev_key(path: &std::path::Path) -> anyhow::Result<LinkKeys> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::new(
                exit::NOTHING_MATCHED,
                format!(
                    "no link key at {}: `mailroom dev` makes one at its first start",
                    path.display()
                ),
            )
            .into());
        }
        Err(error) => {
            return Err(
                anyhow::Error::new(error).context(format!("cannot read {}", path.display()))
            );
        }
    };
    LinkKeys::parse(&text)
        .with_context(|| format!("{} holds no valid link key", path.display()))?;
    let current = text
        .split([',', '\n'])
        .map(str::trim)
        .find(|k| !k.is_empty())
        .unwrap_or_default();
    let new =
        LinkKey::generate().map_err(|e| anyhow::anyhow!("cannot generate a link key: {e}"))?;
    let rotated = format!("{new}\n{current}\n");
    crate::dev::write_private(path, rotated.as_bytes())?;
    Ok(LinkKeys::parse(&rotated)?)
}

fn report(keys: &LinkKeys, when: &str) {
    println!(
        "new link key {}: it signs new links ({when})",
        keys.current().id()
    );
    match keys.previous() {
        Some(previous) => println!(
            "links signed with key {} keep working until the next rotation: rotate again no sooner than \
             links live (AttachmentUrlDays, 7 days by default)",
            previous.id()
        ),
        None => println!("no previous key is kept: links signed before may not open"),
    }
}
