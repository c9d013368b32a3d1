//! `mailroom messages`: what happened to mail, from the records.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{Duration, Utc};
use clap::Subcommand;
use mailroom::ports::{
    MailLocation, MailStore, ObjectStore, OutboundLog, RecordFilter, RecordQuery, Reopen,
    SystemClock,
};
use mailroom::record::{Delivery, Status};
use mailroom::settings::{SettingError, Settings};
use mailroom::usecases::inbound::{ForwardSettings, Inbound, InboundConfig};
use mailroom_http::{HttpClient, TargetPolicy};
use mailroom_local::files::LocalMailStore;
use mailroom_local::outbox::Outbox;

use crate::backend::Store;
use crate::exit::{self, CliError};

/// `mailroom messages …`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List deliveries, newest first.
    List(ListArgs),
    /// Show one message: every delivery, every attempt and answer.
    Show {
        /// The message id, as listed.
        id: String,
        /// Print the stored original message instead (while it is kept).
        #[arg(long)]
        raw: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a rejected or failed message again, from this machine, while its raw mail is kept: a new
    /// attempt of each such delivery, with the same webhook-id.
    Resend {
        /// The message id, as listed.
        id: String,
        /// Only this target, as `messages show` prints it (`webhook https://…`, `forward a@b`).
        #[arg(long, value_name = "T")]
        target: Option<String>,
    },
}

#[derive(clap::Args)]
struct ListArgs {
    /// Only deliveries to this recipient.
    #[arg(long, value_name = "ADDR")]
    recipient: Option<String>,
    /// Only mail from this envelope sender.
    #[arg(long, value_name = "ADDR")]
    sender: Option<String>,
    /// Only deliveries in this status (delivered, retrying, rejected, failed, no_route, dropped, …).
    #[arg(long, value_parser = parse_status)]
    status: Option<Status>,
    /// Only mail received within this long (e.g. 30m, 12h, 1d, 2w).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    since: Option<Duration>,
    /// At most this many deliveries.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// The next page: the token printed (to stderr) after a full page, with the same filters.
    #[arg(long, value_name = "TOKEN", value_parser = parse_token)]
    after: Option<String>,
    /// Print a JSON array of records (the record's fields, as listed in the README's "Records" section).
    #[arg(long)]
    json: bool,
    /// List sent mail instead (the send API's, and mail sent through SES with the stack's configuration
    /// sets; forwards are listed with their deliveries): one record per message, with each recipient's
    /// status, opens and clicks.
    #[arg(long)]
    outbound: bool,
}

fn parse_status(text: &str) -> Result<Status, String> {
    text.parse()
}

fn parse_token(text: &str) -> Result<String, String> {
    mailroom::ports::ListCursor::parse(text)
        .map(|_| text.trim().to_owned())
        .map_err(|e| e.to_string())
}

/// `30m`, `12h`, `1d`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30m, 12h, 1d or 2w"))?;
    match unit {
        "s" => Ok(Duration::seconds(n)),
        "m" => Ok(Duration::minutes(n)),
        "h" | "" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        "w" => Ok(Duration::weeks(n)),
        _ => Err(format!("`{text}`: use s, m, h, d or w (e.g. 12h, 1d)")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.target.store()? {
        #[cfg(feature = "aws")]
        Store::Stack { table, names } => on_stack(args.command, table, names),
        Store::Dev(data) => on_dev_store(args.command, &data),
    }
}

/// The command on a deployed stack's table and bucket.
#[cfg(feature = "aws")]
fn on_stack(
    command: Command,
    table: String,
    names: crate::stack::StackNames,
) -> anyhow::Result<ExitCode> {
    use mailroom_aws::s3::S3MailStore;

    let bucket = names.bucket.clone();
    crate::backend::runtime()?.block_on(async {
        let sdk = crate::stack::sdk_config().await;
        let store = crate::stack::dynamo_store(&sdk, table, &names);
        let mail = S3MailStore::new(mailroom_aws::s3_client(&sdk));
        match command {
            Command::List(list) => list_records(&store, list).await,
            Command::Resend { id, target } => {
                let Some(bucket) = bucket else {
                    return Err(CliError::new(
                        exit::BAD_ARGUMENTS,
                        "resend reads the stored mail: set MAILROOM_BUCKET (or give --stack)",
                    )
                    .into());
                };
                let inbound = stack_inbound(&sdk, &store, &mail)?;
                resend(&store, &inbound, &mail, &bucket, &id, target.as_deref()).await
            }
            Command::Show { id, raw, json } => {
                if raw && bucket.is_none() {
                    return Err(CliError::new(
                        exit::BAD_ARGUMENTS,
                        "--raw reads the stack's bucket: set MAILROOM_BUCKET",
                    )
                    .into());
                }
                show(
                    &store,
                    &mail,
                    bucket.as_deref().unwrap_or(""),
                    &id,
                    raw,
                    json,
                )
                .await
            }
        }
    })
}

/// The inbound use case as the stack's function runs it, with the function's own settings read the way
/// it reads them.
#[cfg(feature = "aws")]
pub(crate) fn stack_inbound(
    sdk: &aws_config::SdkConfig,
    store: &mailroom_aws::dynamo::DynamoStore,
    mail: &mailroom_aws::s3::S3MailStore,
) -> anyhow::Result<
    Inbound<
        mailroom_aws::s3::S3MailStore,
        mailroom_aws::dynamo::DynamoStore,
        HttpClient,
        mailroom_aws::ses::SesSender,
        SystemClock,
    >,
> {
    let env = Settings::new(|name| std::env::var(name).ok());
    let policy = TargetPolicy {
        allow_private: env
            .flag("MAILROOM_ALLOW_PRIVATE_TARGETS")
            .map_err(bad_setting)?,
        allow_http: env
            .flag("MAILROOM_ALLOW_HTTP_TARGETS")
            .map_err(bad_setting)?,
    };
    Ok(Inbound::new(
        mail.clone(),
        store.clone(),
        http_client(policy)?,
        mailroom_aws::ses::SesSender::new(
            aws_sdk_sesv2::Client::new(sdk),
            env.text("MAILROOM_CONFIGURATION_SET"),
        ),
        SystemClock,
        resend_config(&env, env.text("MAILROOM_FORWARD_FROM"))?,
    ))
}

/// The command on the dev store under `data`.
fn on_dev_store(command: Command, data: &std::path::Path) -> anyhow::Result<ExitCode> {
    let runtime = crate::backend::runtime()?;
    let store = crate::backend::existing_dev_store(data)?;
    let mail = LocalMailStore::new(data.join("mail"));
    runtime.block_on(async {
        match command {
            Command::List(list) => list_records(&store, list).await,
            Command::Resend { id, target } => {
                let inbound = Inbound::new(
                    mail.clone(),
                    store.clone(),
                    http_client(TargetPolicy::LOCAL)?,
                    Outbox::new(data.join("outbox")),
                    SystemClock,
                    resend_config(
                        &Settings::new(|name| std::env::var(name).ok()),
                        Some(crate::local::DEV_FORWARD_FROM.to_owned()),
                    )?,
                );
                resend(
                    &store,
                    &inbound,
                    &mail,
                    crate::local::LOCAL_BUCKET,
                    &id,
                    target.as_deref(),
                )
                .await
            }
            Command::Show { id, raw, json } => {
                show(&store, &mail, crate::local::LOCAL_BUCKET, &id, raw, json).await
            }
        }
    })
}

pub(crate) fn http_client(policy: TargetPolicy) -> anyhow::Result<HttpClient> {
    HttpClient::new(std::time::Duration::from_secs(30), policy)
        .context("cannot build the HTTP client")
}

/// The use case's settings for a resend: attachments travel inline (links need the stack's key).
pub(crate) fn resend_config(
    env: &Settings<impl Fn(&str) -> Option<String>>,
    forward_from: Option<String>,
) -> anyhow::Result<InboundConfig> {
    let retention_days = env
        .number(
            "MAILROOM_RETENTION_DAYS",
            u64::from(mailroom::record::DEFAULT_RETENTION_DAYS),
            3650,
        )
        .map_err(bad_setting)? as u32;
    Ok(InboundConfig {
        forward: ForwardSettings {
            from: forward_from,
            ..ForwardSettings::default()
        },
        ..InboundConfig::with_defaults(retention_days)
    })
}

fn bad_setting(error: SettingError) -> anyhow::Error {
    CliError::new(exit::BAD_ARGUMENTS, error.to_string()).into()
}

/// Reopens the rejected and failed deliveries of a message (of one target, if given) and attempts them
/// again now, through the same use case as the function; prints what each became.
/// The targets of the message's rejected or failed deliveries (only `target`, when given).
fn resendable_targets(
    records: &[Delivery],
    id: &str,
    target: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let targets: Vec<String> = records
        .iter()
        .filter(|r| {
            matches!(r.status, Status::Rejected | Status::Failed)
                && target.is_none_or(|t| r.target == t)
        })
        .map(|r| r.target.clone())
        .collect();
    if targets.is_empty() {
        let about = target.map(|t| format!(" to {t}")).unwrap_or_default();
        return Err(CliError::new(
            exit::NOTHING_MATCHED,
            format!("no rejected or failed delivery of message {id}{about}"),
        )
        .into());
    }
    Ok(targets)
}

async fn resend<S, M, W, X>(
    store: &S,
    inbound: &Inbound<M, S, W, X, SystemClock>,
    mail: &M,
    bucket: &str,
    id: &str,
    target: Option<&str>,
) -> anyhow::Result<ExitCode>
where
    S: RecordQuery
        + Reopen
        + mailroom::ports::RecordStore
        + mailroom::ports::RouteStore
        + mailroom::ports::SuppressionList
        + mailroom::ports::OutboundStore
        + Clone,
    M: MailStore + ObjectStore,
    W: mailroom::ports::Webhooks,
    X: mailroom::ports::MailSender,
{
    let records = store.message(id).await.map_err(exit::from_store)?;
    let targets = resendable_targets(&records, id, target)?;
    let Some(received) = crate::redrive::received_again(&records, bucket) else {
        return Err(CliError::new(exit::NOTHING_MATCHED, format!("no message {id}")).into());
    };
    if mail
        .object_size(&received.location)
        .await
        .map_err(exit::from_store)?
        .is_none()
    {
        return Err(CliError::new(
            exit::NOTHING_MATCHED,
            format!(
                "the original of {id} is no longer kept ({}), so it cannot be sent again",
                received.location.key
            ),
        )
        .into());
    }
    store
        .reopen(id, &[Status::Rejected, Status::Failed], target)
        .await
        .map_err(exit::from_store)?;
    inbound
        .process(&received)
        .await
        .map_err(|e| exit::from_store(e.0))?;
    let mut out = std::io::stdout().lock();
    for record in store.message(id).await.map_err(exit::from_store)? {
        if targets.contains(&record.target) {
            writeln!(
                out,
                "{}  {}  {} after {} attempt(s){}",
                record.recipient.as_deref().unwrap_or("-"),
                record.target,
                record.status,
                record.attempts,
                record
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_records<Q: RecordQuery + OutboundLog>(
    store: &Q,
    args: ListArgs,
) -> anyhow::Result<ExitCode> {
    if args.outbound {
        return list_outbound(store, &args).await;
    }
    let page = store
        .page(
            &RecordFilter {
                recipient: args.recipient,
                sender: args.sender,
                status: args.status,
                since: args.since.map(|d| Utc::now() - d),
                until: None,
                limit: args.limit,
            },
            args.after.as_deref(),
        )
        .await
        .map_err(exit::from_store)?;
    let records = page.records;
    if let Some(next) = &page.next {
        // Beside the listing, not in it: --json stays one array.
        eprintln!("more deliveries may follow: the same command with --after {next}");
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &records)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        return Err(CliError::new(exit::NOTHING_MATCHED, "no deliveries match").into());
    }
    let rows: Vec<[String; 8]> = records.iter().map(row).collect();
    crate::table::print(
        &mut out,
        &[
            "RECEIVED", "MESSAGE", "FROM", "TO", "SUBJECT", "STATUS", "ATTEMPTS", "HTTP",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `messages list --outbound`: outbound records, newest first.
async fn list_outbound<Q: OutboundLog>(store: &Q, args: &ListArgs) -> anyhow::Result<ExitCode> {
    if args.recipient.is_some()
        || args.sender.is_some()
        || args.status.is_some()
        || args.after.is_some()
    {
        return Err(CliError::new(
            exit::BAD_ARGUMENTS,
            "--outbound lists by time: it takes --since, --limit and --json",
        )
        .into());
    }
    let records = store
        .sent_between(args.since.map(|d| Utc::now() - d), None, args.limit)
        .await
        .map_err(exit::from_store)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &records)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        return Err(CliError::new(exit::NOTHING_MATCHED, "no sent messages").into());
    }
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            [
                r.sent_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.id.clone().unwrap_or_else(|| r.ses_message_id.clone()),
                r.from.clone().unwrap_or_else(|| "-".to_owned()),
                r.to.iter()
                    .chain(&r.cc)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
                shortened(r.subject.as_deref().unwrap_or(""), 40),
                r.status.as_str().to_owned(),
                format!(
                    "{}/{}",
                    r.opens.as_ref().map_or(0, |o| o.count),
                    r.clicks.as_ref().map_or(0, |c| c.count)
                ),
                match (&r.key_name, r.origin) {
                    (Some(key), _) => format!("key {key}"),
                    (None, origin) => format!("{origin:?}").to_lowercase(),
                },
            ]
        })
        .collect();
    crate::table::print(
        &mut out,
        &[
            "SENT",
            "ID",
            "FROM",
            "TO",
            "SUBJECT",
            "STATUS",
            "OPENS/CLICKS",
            "BY",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn shortened(text: &str, most: usize) -> String {
    let mut short: String = text.chars().take(most).collect();
    if text.chars().count() > most {
        short.push('…');
    }
    short
}

fn row(record: &Delivery) -> [String; 8] {
    let mut subject: String = record
        .subject
        .clone()
        .unwrap_or_default()
        .chars()
        .take(40)
        .collect();
    if record
        .subject
        .as_ref()
        .is_some_and(|s| s.chars().count() > 40)
    {
        subject.push('…');
    }
    [
        record.received_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        record.message_id.clone(),
        record.sender.clone().unwrap_or_else(|| "-".to_owned()),
        record.recipient.clone().unwrap_or_else(|| "-".to_owned()),
        subject,
        record.status.to_string(),
        record.attempts.to_string(),
        record
            .response_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".to_owned()),
    ]
}

async fn show<Q: RecordQuery, M: MailStore>(
    store: &Q,
    mail: &M,
    bucket: &str,
    id: &str,
    raw: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let records = store.message(id).await.map_err(exit::from_store)?;
    let Some(first) = records.first() else {
        return Err(CliError::new(exit::NOTHING_MATCHED, format!("no message {id}")).into());
    };
    let mut out = std::io::stdout().lock();
    if raw {
        let location = MailLocation {
            bucket: bucket.to_owned(),
            key: first.s3_key.clone(),
        };
        let bytes = mail.fetch(&location).await.map_err(|e| {
            CliError::new(
                exit::NOTHING_MATCHED,
                format!("the original of {id} is no longer kept: {e}"),
            )
        })?;
        out.write_all(&bytes).context("cannot write the message")?;
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        serde_json::to_writer_pretty(&mut out, &records)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "message {id}")?;
    writeln!(out, "  received  {}", first.received_at.to_rfc3339())?;
    writeln!(
        out,
        "  from      {}",
        first.sender.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "  subject   {}",
        first.subject.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "  stored    {}", first.s3_key)?;
    for record in &records {
        write_delivery(&mut out, record)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One delivery of `messages show`: its target, status, ids and every attempt.
fn write_delivery(out: &mut impl Write, record: &Delivery) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "  → {}  {}",
        record.recipient.as_deref().unwrap_or("-"),
        if record.target.is_empty() {
            "(no target)"
        } else {
            &record.target
        }
    )?;
    writeln!(
        out,
        "    status    {} after {} attempt(s)",
        record.status, record.attempts
    )?;
    if let Some(error) = &record.error {
        writeln!(out, "    why       {error}")?;
    }
    if let Some(id) = &record.webhook_id {
        writeln!(out, "    webhook-id {id}")?;
    }
    if let Some(id) = &record.outbound_id {
        writeln!(out, "    outbound  {id}")?;
    }
    for attempt in &record.history {
        writeln!(
            out,
            "    {}  {:<10} HTTP {:<4} {:>5} ms  {}",
            attempt.at.format("%Y-%m-%d %H:%M:%S"),
            attempt.outcome.as_str(),
            attempt
                .status_code
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".to_owned()),
            attempt.ms,
            attempt
                .response_excerpt
                .as_deref()
                .unwrap_or("")
                .replace('\n', " "),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::minutes(30)));
        assert_eq!(parse_duration("1d"), Ok(Duration::days(1)));
        assert_eq!(parse_duration("2w"), Ok(Duration::weeks(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3y").is_err());
    }
}
