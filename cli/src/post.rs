//! `mailroom post`: one message sent exactly as the inbound function sends it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use mailroom::deliver::{WebhookRequest, random_webhook_id};
use mailroom::format::{Format, MailgunSignature, Payload};
use mailroom::mail::{self, envelope::Envelope, envelope::KnownEnvelope};
use mailroom::route::WebhookSecret;
use mailroom_http::{HttpClient, TargetPolicy};

/// How much of the answer is printed, as in the delivery record.
const SHOWN_RESPONSE_BYTES: usize = 2048;

/// Arguments of `mailroom post`.
#[derive(clap::Args)]
#[command(
    after_help = "Exits 0 when the target answers 2xx, 1 otherwise.\n\nExample:\n  mailroom post --url http://127.0.0.1:3000/mail --secret whsec_... events/sample.eml"
)]
pub struct Args {
    /// Where to POST (localhost is fine: this runs on your machine).
    #[arg(long)]
    url: url::Url,
    /// Payload format: json, multipart, raw, postmark, postmark-raw, mailgun (mailgun-mime, or a URL
    /// path ending in `mime`), sendgrid, sendgrid-raw.
    #[arg(long, short, default_value = "json", value_parser = crate::render::parse_format)]
    format: Format,
    /// Signing secret (`whsec_` + base64); without it the request is unsigned. Mailgun's formats also
    /// sign their `signature` field with this text, the app's Mailgun signing key.
    #[arg(long, env = "MAILROOM_WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// SMTP recipient of the delivery (repeat for several); wins over what the headers say.
    #[arg(long = "recipient", value_name = "ADDR")]
    recipients: Vec<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The raw message (.eml); `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let secrets = match &args.secret {
        Some(text) => vec![WebhookSecret::parse(text).context("--secret is not usable")?],
        None => Vec::new(),
    };
    let raw = crate::render::read_input(&args.file)?;
    let email =
        mail::parse(raw).with_context(|| format!("cannot parse {}", args.file.display()))?;
    let envelope = Envelope::recover(&email).with_known(KnownEnvelope {
        recipients: (!args.recipients.is_empty()).then(|| args.recipients.clone()),
        ..KnownEnvelope::default()
    });
    let timestamp = chrono::Utc::now().timestamp();
    // Mailgun's formats sign with the secret's text, as the app holds it for its signing key.
    let mailgun_key = secrets.first().map(ToString::to_string);
    let payload = Payload::new(args.format.for_url(args.url.as_str()), &email, &envelope)
        .with_mailgun_signature(MailgunSignature::new(timestamp, mailgun_key.as_deref()));
    let request = WebhookRequest::new(
        random_webhook_id(),
        timestamp,
        payload.content_type(),
        payload.to_vec(),
        &secrets,
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = HttpClient::new(Duration::from_secs(args.timeout), TargetPolicy::LOCAL)
        .context("cannot build the HTTP client")?;
    let answer = runtime
        .block_on(client.post_following_redirects(&args.url, &request))
        .with_context(|| {
            format!(
                "POST {} failed",
                mailroom::route::redact_url(args.url.as_str())
            )
        })?;

    let response = &answer.response;
    println!("{}", response.status);
    if let Some(reason) = &answer.unfollowed_redirect {
        eprintln!("redirect not followed: {reason}");
    }
    let shown = response
        .body
        .get(..SHOWN_RESPONSE_BYTES)
        .unwrap_or(&response.body);
    if !shown.is_empty() {
        println!("{}", String::from_utf8_lossy(shown));
    }
    Ok(if (200..300).contains(&response.status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
