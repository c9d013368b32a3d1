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
    let runtime = crate::backend::runtime()?;
    let secret = match (secret, args.target.stack.as_deref()) {
        (Some(arn), _) => Some(arn),
        (None, Some(stack)) => Some(runtime.block_on(stack_link_key(stack))?),
        (None, None) => None,
    };
    match secret {
        Some(arn) => runtime.block_on(async {
            let sdk = crate::backend::sdk_config().await;
            let client = mailroom::aws::secrets::client(&sdk);
            let keys = mailroom::aws::secrets::rotate_link_key(&client, &arn)
                .await
                .map_err(exit::from_store)?;
            report(
                &keys,
                "the link function reads it at its next start, or at the first link of the new key",
            );
            Ok(ExitCode::SUCCESS)
        }),
        None => {
            if args.target.names()?.table.is_some() {
                return Err(CliError::new(
                    exit::BAD_ARGUMENTS,
                    "the link key of a stack is a secret: give --stack NAME or --secret ARN (MAILROOM_LINK_KEY_ARN)",
                )
                .into());
            }
            let keys = rotate_dev_key(&args.target.data.join("link-key"))?;
            report(&keys, "restart `mailroom dev` to sign new links with it");
            Ok(ExitCode::SUCCESS)
        }
    }
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

/// The ARN of a stack's link key: the physical id of its `LinkKey` resource.
async fn stack_link_key(stack: &str) -> anyhow::Result<String> {
    let sdk = crate::backend::sdk_config().await;
    let output = aws_sdk_cloudformation::Client::new(&sdk)
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id("LinkKey")
        .send()
        .await
        .map_err(|e| {
            exit::from_store(mailroom::aws::store_error(
                format!("cannot find the LinkKey of stack {stack}"),
                e,
            ))
        })?;
    output
        .stack_resource_detail()
        .and_then(|detail| detail.physical_resource_id())
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::new(
                exit::NOT_FOUND,
                format!("stack {stack} has no LinkKey: is it a Mailroom stack?"),
            )
            .into()
        })
}
