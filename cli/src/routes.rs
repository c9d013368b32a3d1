//! `mailroom routes`: add, list, remove, test, enable and disable routes.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use mailroom::format::Format;
use mailroom::ports::RouteStore;
use mailroom::route::{
    self, AttachmentMode, DropOn, Pattern, Redact, Route, WebhookSecret, WebhookTarget,
};
use serde_json::json;

use crate::backend;
use crate::exit::{self, CliError};

/// `mailroom routes …`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add a route, or replace the route of the same pattern.
    #[command(
        after_help = "Patterns, most specific first: support@example.com (also takes support+tag@example.com), \
*@example.com, *@*.example.com, *.\n\nExample:\n  mailroom routes add 'support@example.com' --webhook https://app.example.com/mail --generate-secret"
    )]
    Add(AddArgs),
    /// List the routes.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove the route of a pattern.
    Remove {
        /// The route's pattern, as listed.
        pattern: String,
    },
    /// Show which route and targets an address reaches, and why.
    Test {
        /// A recipient address.
        address: String,
    },
    /// Turn a route back on (also re-enables a webhook disabled by a 410 answer).
    Enable {
        /// The route's pattern.
        pattern: String,
    },
    /// Turn a route off: its mail is recorded, not delivered.
    Disable {
        /// The route's pattern.
        pattern: String,
    },
}

#[derive(clap::Args, Default)]
pub(crate) struct AddArgs {
    /// Which recipients: an address, *@domain, *@*.domain or *.
    pub(crate) pattern: String,
    /// POST each message to this URL (https; basic auth in the URL is sent as a header).
    #[arg(long)]
    pub(crate) webhook: Option<String>,
    /// Payload format of the webhook: json, multipart, raw, postmark, postmark-raw, mailgun (a URL path
    /// ending in `mime` gets mailgun-mime, as at Mailgun), sendgrid, sendgrid-raw.
    #[arg(long, default_value = "json", value_parser = crate::render::parse_format, requires = "webhook")]
    pub(crate) format: Format,
    /// Signing secret (whsec_ + base64); give it twice to rotate (both signatures are sent).
    #[arg(long = "secret", value_name = "whsec_…", requires = "webhook")]
    pub(crate) secrets: Vec<String>,
    /// Make a new signing secret and print it once.
    #[arg(long, conflicts_with = "secrets", requires = "webhook")]
    pub(crate) generate_secret: bool,
    /// How attachments travel: inline (base64 in the payload), s3 (stored; the payload carries a link valid
    /// MAILROOM_ATTACHMENT_URL_DAYS), or auto (links only when the inline payload would pass
    /// MAILROOM_INLINE_MAX_BYTES).
    #[arg(long, default_value = "inline", requires = "webhook")]
    pub(crate) attachments: AttachmentMode,
    /// Forward each message to this address (repeat for several).
    #[arg(long = "forward", value_name = "ADDR")]
    pub(crate) forward: Vec<String>,
    /// The verified SES address forwards are sent from.
    #[arg(long, value_name = "ADDR")]
    pub(crate) forward_from: Option<String>,
    /// Drop instead of deliver when this SES verdict fails (repeatable; default: virus).
    #[arg(long = "drop-on", value_name = "virus|spam")]
    pub(crate) drop_on: Vec<DropOn>,
    /// Keep these fields out of the records: subject, sender, recipient, sender_ip, message_id, response_body.
    #[arg(long, num_args = 1.., value_name = "FIELD")]
    pub(crate) redact: Vec<Redact>,
    /// POST bounce, complaint and delivery events of forwarded mail here.
    #[arg(long, value_name = "URL")]
    pub(crate) events: Option<String>,
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

async fn run_on<S: RouteStore>(store: &S, command: Command) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Add(add) => {
            let (route, generated) = route_from(add)?;
            store.put_route(&route).await.map_err(exit::from_store)?;
            writeln!(out, "added route {}", route.pattern)?;
            if let Some(secret) = generated {
                writeln!(
                    out,
                    "webhook secret (shown once; verify signatures with it): {secret}"
                )?;
            }
        }
        Command::List { json } => {
            let mut routes = store.routes().await.map_err(exit::from_store)?;
            routes.sort_by_key(|r| r.pattern.to_string());
            if json {
                let list: Vec<_> = routes.iter().map(route_json).collect();
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
            } else {
                print_table(&mut out, &routes)?;
            }
        }
        Command::Remove { pattern } => {
            let pattern = parse_pattern(&pattern)?;
            if !store
                .remove_route(&pattern)
                .await
                .map_err(exit::from_store)?
            {
                return Err(
                    CliError::new(exit::NOTHING_MATCHED, format!("no route {pattern}")).into(),
                );
            }
            writeln!(out, "removed route {pattern}")?;
        }
        Command::Test { address } => {
            let routes = store.routes().await.map_err(exit::from_store)?;
            explain(&mut out, &routes, &address)?;
        }
        Command::Enable { pattern } => {
            let pattern = parse_pattern(&pattern)?;
            if !store
                .set_enabled(&pattern, true)
                .await
                .map_err(exit::from_store)?
            {
                return Err(
                    CliError::new(exit::NOTHING_MATCHED, format!("no route {pattern}")).into(),
                );
            }
            store
                .set_webhook_disabled(&pattern, None)
                .await
                .map_err(exit::from_store)?;
            writeln!(out, "enabled route {pattern}")?;
        }
        Command::Disable { pattern } => {
            let pattern = parse_pattern(&pattern)?;
            if !store
                .set_enabled(&pattern, false)
                .await
                .map_err(exit::from_store)?
            {
                return Err(
                    CliError::new(exit::NOTHING_MATCHED, format!("no route {pattern}")).into(),
                );
            }
            writeln!(
                out,
                "disabled route {pattern}: its mail is recorded, not delivered"
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn parse_pattern(text: &str) -> anyhow::Result<Pattern> {
    text.parse::<Pattern>()
        .map_err(|e| CliError::new(exit::BAD_ARGUMENTS, e.to_string()).into())
}

/// The route the arguments describe, and the secret generated for it, if any.
pub(crate) fn route_from(add: AddArgs) -> anyhow::Result<(Route, Option<WebhookSecret>)> {
    let bad =
        |message: String| -> anyhow::Error { CliError::new(exit::BAD_ARGUMENTS, message).into() };
    let pattern = parse_pattern(&add.pattern)?;
    if add.webhook.is_none() && add.forward.is_empty() {
        return Err(bad(
            "a route needs a target: give --webhook URL and/or --forward ADDR".to_owned(),
        ));
    }
    let mut route = Route::new(pattern);
    let mut generated = None;
    if let Some(url) = add.webhook {
        let parsed = url::Url::parse(&url)
            .map_err(|e| bad(format!("--webhook {}: {e}", route::redact_url(&url))))?;
        match parsed.scheme() {
            "https" => {}
            "http" => eprintln!(
                "warning: {} is plain http; the inbound function refuses it unless MAILROOM_ALLOW_HTTP_TARGETS=true",
                route::redact_url(&url)
            ),
            other => return Err(bad(format!("--webhook must be an https URL, not {other}:"))),
        }
        if add.secrets.len() > 2 {
            return Err(bad(
                "give at most two --secret (the current one and the next, while rotating)"
                    .to_owned(),
            ));
        }
        let mut secrets = add
            .secrets
            .iter()
            .map(|s| WebhookSecret::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("--secret: {e}")))?;
        if add.generate_secret {
            let secret = WebhookSecret::generate().context("cannot generate a secret")?;
            secrets.push(secret.clone());
            generated = Some(secret);
        }
        if secrets.is_empty() {
            eprintln!(
                "warning: the webhook {} has no secret, so its posts are unsigned and your application \
                 cannot tell them from forged ones; give --generate-secret (or --secret whsec_…)",
                route::redact_url(&url)
            );
        }
        if add.attachments == AttachmentMode::S3 && !add.format.takes_attachment_links() {
            return Err(bad(format!(
                "--attachments s3 needs a format with a field for links (json or multipart); the {} format carries the files, as that service does",
                add.format
            )));
        }
        route.webhook = Some(WebhookTarget {
            url,
            format: add.format,
            secrets,
            attachments: add.attachments,
            disabled: None,
        });
    }
    for address in add.forward.iter().chain(add.forward_from.iter()) {
        if !address.contains('@') || address.contains(char::is_whitespace) {
            return Err(bad(format!("`{address}` is not an email address")));
        }
    }
    route.forward = add.forward;
    route.forward_from = add.forward_from;
    if !add.drop_on.is_empty() {
        route.drop_on = add.drop_on;
        route.drop_on.dedup();
    }
    route.redact = add.redact;
    if let Some(events) = &add.events {
        url::Url::parse(events).map_err(|e| bad(format!("--events: {e}")))?;
    }
    route.events = add.events;
    Ok((route, generated))
}

/// A route as `routes list --json` prints it: never a secret, never URL credentials.
fn route_json(route: &Route) -> serde_json::Value {
    json!({
        "pattern": route.pattern.to_string(),
        "enabled": route.enabled,
        "webhook": route.webhook.as_ref().map(|w| json!({
            "url": w.display_url(),
            "format": w.format,
            "attachments": w.attachments,
            "secrets": w.secrets.len(),
            "disabled": w.disabled,
        })),
        "forward": route.forward,
        "forward_from": route.forward_from,
        "drop_on": route.drop_on,
        "redact": route.redact,
        "events": route.events.as_deref().map(route::redact_url),
    })
}

pub(crate) fn targets(route: &Route) -> String {
    let mut targets = Vec::new();
    if let Some(webhook) = &route.webhook {
        let mut text = format!("webhook {} ({})", webhook.display_url(), webhook.format);
        if webhook.disabled.is_some() {
            text.push_str(" [disabled after 410]");
        }
        targets.push(text);
    }
    targets.extend(route.forward.iter().map(|a| format!("forward {a}")));
    targets.join(", ")
}

fn print_table(out: &mut impl Write, routes: &[Route]) -> anyhow::Result<()> {
    if routes.is_empty() {
        writeln!(out, "no routes")?;
        return Ok(());
    }
    let rows: Vec<[String; 5]> = routes
        .iter()
        .map(|r| {
            [
                r.pattern.to_string(),
                if r.enabled { "on" } else { "off" }.to_owned(),
                targets(r),
                r.drop_on
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                r.redact
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    crate::table::print(
        out,
        &["PATTERN", "ENABLED", "TARGETS", "DROP ON", "REDACT"],
        &rows,
    )
}

fn explain(out: &mut impl Write, routes: &[Route], address: &str) -> anyhow::Result<()> {
    if !address.contains('@') {
        bail!(CliError::new(
            exit::BAD_ARGUMENTS,
            format!("`{address}` is not an address")
        ));
    }
    match route::resolve(routes, address) {
        Some(found) => {
            writeln!(
                out,
                "{address} → route {} ({})",
                found.route.pattern,
                found.rule.describe()
            )?;
            if let Some(hash) = mailroom::mail::envelope::mailbox_hash(address) {
                writeln!(out, "mailbox_hash: {hash}")?;
            }
            if !found.route.enabled {
                writeln!(
                    out,
                    "the route is disabled: mail is recorded, not delivered"
                )?;
            }
            writeln!(out, "targets: {}", targets(found.route))?;
            if !found.route.drop_on.is_empty() {
                let verdicts: Vec<_> = found.route.drop_on.iter().map(|d| d.as_str()).collect();
                writeln!(
                    out,
                    "dropped when SES's {} verdict fails",
                    verdicts.join(" or ")
                )?;
            }
            Ok(())
        }
        None => {
            match std::env::var("MAILROOM_DEFAULT_WEBHOOK_URL")
                .ok()
                .filter(|u| !u.is_empty())
            {
                Some(url) => writeln!(
                    out,
                    "{address} → no route; the default webhook {} takes it (MAILROOM_DEFAULT_WEBHOOK_URL)",
                    route::redact_url(&url)
                )?,
                None => {
                    writeln!(
                        out,
                        "{address} → no route: its mail would be recorded no_route and not delivered"
                    )?;
                    return Err(CliError::new(
                        exit::NOTHING_MATCHED,
                        format!("no route takes {address}"),
                    )
                    .into());
                }
            }
            Ok(())
        }
    }
}
