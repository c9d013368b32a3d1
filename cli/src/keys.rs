//! `mailroom keys`: the send API's keys. A key is printed once, when it is made, with the `username` and
//! `baseURL` CloudMailin's client takes; the store keeps only its salted hash.

use std::io::Write;
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use clap::Subcommand;
use mailroom::ports::KeyStore;
use mailroom::route::WebhookSecret;
use mailroom::send::key::ApiKey;
use serde_json::json;

use crate::backend;
use crate::exit::{self, CliError};

/// The dev console's default address, where `mailroom dev` serves the send API too.
const DEV_BASE_URL: &str = "http://127.0.0.1:8025/api/v0.1";

/// `mailroom keys …`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a key; it is printed once (`key:`), with the `username:` and `baseURL:` for CloudMailin's client.
    Create {
        /// What to call it; records name the key that sent them.
        #[arg(long)]
        name: String,
        /// A domain it may send from (repeat for more); among the stack's domains. Default: all of them.
        #[arg(long = "from-domain", value_name = "DOMAIN")]
        from_domains: Vec<String>,
        /// Its messages are not tracked (no open image, no rewritten links), whatever they ask.
        #[arg(long)]
        no_tracking: bool,
        /// POST the events of its messages here (delivered, bounced, complained, delayed, opened, clicked),
        /// signed with a secret printed once.
        #[arg(long, value_name = "URL")]
        events: Option<String>,
        /// Keep this field of its messages out of their records: `subject` (the only one; recipients and
        /// sender are what bounces, complaints and erasure are matched by).
        #[arg(long, value_name = "FIELD", value_parser = parse_redact)]
        redact: Vec<mailroom::route::Redact>,
        /// The base URL to print, instead of the stack's (output SendUrl) or `mailroom dev`'s.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// List the keys (never the keys themselves).
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name or id: it authenticates nothing from now on.
    Revoke {
        /// The key's name or id (username).
        key: String,
    },
}

fn parse_redact(text: &str) -> Result<mailroom::route::Redact, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "subject" => Ok(mailroom::route::Redact::Subject),
        other => Err(format!(
            "`{other}`: a key redacts only `subject` (recipients and sender are what bounces, \
             complaints and erasure are matched by)"
        )),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = backend::runtime()?;
    match args.target.store()? {
        #[cfg(feature = "aws")]
        backend::Store::Stack { table, names } => runtime.block_on(async {
            let base = names
                .send_url
                .as_deref()
                .map(|url| format!("{}/api/v0.1", url.trim_end_matches('/')));
            let place = Place {
                base_url: base,
                domains: names.domains.clone(),
            };
            run_on(
                &crate::stack::table_store(table).await,
                args.command,
                &place,
            )
            .await
        }),
        backend::Store::Dev(data) => {
            let place = Place {
                base_url: Some(DEV_BASE_URL.to_owned()),
                domains: None,
            };
            runtime.block_on(run_on(&backend::dev_store(&data)?, args.command, &place))
        }
    }
}

/// What the command knows of where the keys are used.
struct Place {
    /// The base URL for CloudMailin's client.
    base_url: Option<String>,
    /// The stack's domains, when known (`None`: the dev store, any domain).
    domains: Option<Vec<String>>,
}

async fn run_on<S: KeyStore>(
    store: &S,
    command: Command,
    place: &Place,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Create {
            name,
            from_domains,
            no_tracking,
            events,
            redact,
            base_url,
        } => {
            let asked = NewKeyArgs {
                name,
                from_domains,
                tracking: !no_tracking,
                events,
                redact,
                base_url,
            };
            create(store, place, asked).await?;
        }
        Command::List { json } => list(store, json).await?,
        Command::Revoke { key } => {
            let keys = store.keys().await.map_err(exit::from_store)?;
            let Some(found) = keys.into_iter().find(|k| k.id == key || k.name == key) else {
                return Err(
                    CliError::new(exit::NOTHING_MATCHED, format!("no key named {key}")).into(),
                );
            };
            let mut revoked = found;
            if revoked.revoked_at.is_none() {
                revoked.revoked_at = Some(Utc::now());
                store.put_key(&revoked).await.map_err(exit::from_store)?;
            }
            writeln!(
                std::io::stdout(),
                "revoked key {} ({})",
                revoked.name,
                revoked.id
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `keys create` was asked for.
struct NewKeyArgs {
    name: String,
    from_domains: Vec<String>,
    tracking: bool,
    events: Option<String>,
    redact: Vec<mailroom::route::Redact>,
    base_url: Option<String>,
}

async fn create<S: KeyStore>(store: &S, place: &Place, args: NewKeyArgs) -> anyhow::Result<()> {
    let NewKeyArgs {
        name,
        from_domains,
        tracking,
        events,
        redact,
        base_url,
    } = args;
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(CliError::new(exit::BAD_ARGUMENTS, "--name needs a printable name").into());
    }
    let existing = store.keys().await.map_err(exit::from_store)?;
    if existing
        .iter()
        .any(|k| k.name == name && k.revoked_at.is_none())
    {
        return Err(CliError::new(
            exit::BAD_ARGUMENTS,
            format!("a key named {name} exists; revoke it first or choose another name"),
        )
        .into());
    }
    let from_domains: Vec<String> = from_domains
        .iter()
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    if let Some(domains) = &place.domains
        && let Some(outside) = from_domains.iter().find(|d| !domains.contains(d))
    {
        return Err(CliError::new(
            exit::BAD_ARGUMENTS,
            format!(
                "{outside} is not one of the stack's domains ({}); SES would refuse to send from it",
                domains.join(", ")
            ),
        )
        .into());
    }
    if let Some(url) = &events {
        url::Url::parse(url).map_err(|e| {
            CliError::new(exit::BAD_ARGUMENTS, format!("--events is not a URL: {e}"))
        })?;
    }
    let made = ApiKey::create(&name, &from_domains, Utc::now())?;
    let mut stored = made.stored;
    stored.tracking = tracking;
    stored.redact = redact;
    let secret = match &events {
        Some(_) => Some(WebhookSecret::generate()?),
        None => None,
    };
    stored.events_url = events;
    stored.events_secrets = secret.iter().cloned().collect();
    store.put_key(&stored).await.map_err(exit::from_store)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "key: {}", made.secret)?;
    writeln!(out, "username: {}", stored.id)?;
    match base_url.or_else(|| place.base_url.clone()) {
        Some(base) => writeln!(out, "baseURL: {}", base.trim_end_matches('/'))?,
        None => writeln!(
            out,
            "baseURL: (unknown: name the stack with --stack, or pass --base-url; it is the stack's SendUrl output + api/v0.1)"
        )?,
    }
    if let Some(secret) = secret {
        writeln!(out, "events secret: {secret}")?;
    }
    writeln!(
        out,
        "The key is shown this once; Mailroom keeps only a salted hash of it. Sends from: {}.",
        if from_domains.is_empty() {
            "any of the stack's domains".to_owned()
        } else {
            from_domains.join(", ")
        }
    )?;
    Ok(())
}

async fn list<S: KeyStore>(store: &S, json: bool) -> anyhow::Result<()> {
    let keys = store.keys().await.map_err(exit::from_store)?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| {
                json!({
                    "name": k.name,
                    "username": k.id,
                    "from_domains": k.from_domains,
                    "tracking": k.tracking,
                    "redact": k.redact,
                    "events": k.events_url.as_deref().map(mailroom::route::redact_url),
                    "created_at": k.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "revoked_at": k.revoked_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    if keys.is_empty() {
        writeln!(
            out,
            "no keys; make one with `mailroom keys create --name NAME`"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<18} {:<30} {:<9} {:<17} revoked",
        "name", "username", "from domains", "tracking", "created"
    )?;
    for k in &keys {
        writeln!(
            out,
            "{:<20} {:<18} {:<30} {:<9} {:<17} {}",
            k.name,
            k.id,
            if k.from_domains.is_empty() {
                "(any)".to_owned()
            } else {
                k.from_domains.join(",")
            },
            if k.tracking { "on" } else { "off" },
            k.created_at.format("%Y-%m-%d %H:%M"),
            k.revoked_at
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default()
        )?;
    }
    Ok(())
}
