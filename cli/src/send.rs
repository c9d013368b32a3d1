//! `mailroom send`: one message through the send API, as an application sends it (CloudMailin's JSON,
//! `Authorization: Bearer`), to a stack's send function or to `mailroom dev`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::exit::{self, CliError};

/// `mailroom dev`'s send API, at the console's default address.
const DEV_BASE_URL: &str = "http://127.0.0.1:8025/api/v0.1";

/// `mailroom send …`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mailroom send --from app@example.com --to ana@example.net --subject Hi --text 'Hello'\n  mailroom send --from app@example.com --to ana@example.net --subject Invoice --html-file invoice.html \\\n      --inline logo.png=logo --attach invoice.pdf --tag invoices\n  mailroom send --from app@example.com --to ana@example.net --raw message.eml\n\nThe key, username and base URL are what `mailroom keys create` printed (or MAILROOM_API_KEY,\nMAILROOM_API_USERNAME, MAILROOM_API_URL)."
)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    /// The sender, `a@b` or `Name <a@b>`.
    #[arg(long)]
    from: String,
    /// A recipient (repeat for more).
    #[arg(long, required = true)]
    to: Vec<String>,
    /// A copied recipient (repeat for more).
    #[arg(long)]
    cc: Vec<String>,
    /// The subject.
    #[arg(long)]
    subject: Option<String>,
    /// The plain-text body.
    #[arg(long, conflicts_with = "text_file")]
    text: Option<String>,
    /// The plain-text body, from a file.
    #[arg(long, value_name = "FILE")]
    text_file: Option<PathBuf>,
    /// The HTML body.
    #[arg(long, conflicts_with = "html_file")]
    html: Option<String>,
    /// The HTML body, from a file.
    #[arg(long, value_name = "FILE")]
    html_file: Option<PathBuf>,
    /// A file to attach (repeat for more); its type is guessed from its extension.
    #[arg(long, value_name = "FILE")]
    attach: Vec<PathBuf>,
    /// An inline part the HTML shows as `cid:CID` (repeat for more).
    #[arg(long, value_name = "FILE=CID")]
    inline: Vec<String>,
    /// A tag (repeat for more).
    #[arg(long)]
    tag: Vec<String>,
    /// Send this whole message (RFC 5322) instead of building one.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["text", "text_file", "html", "html_file", "attach", "inline"])]
    raw: Option<PathBuf>,
    /// Check, store and record it, but send nothing.
    #[arg(long)]
    test_mode: bool,
    /// Neither opens nor clicks are tracked.
    #[arg(long)]
    no_tracking: bool,
    /// The API key (`key:` of `mailroom keys create`).
    #[arg(long, env = "MAILROOM_API_KEY", hide_env_values = true)]
    key: String,
    /// The key's username.
    #[arg(long, env = "MAILROOM_API_USERNAME")]
    username: String,
    /// The API's base URL (default: the stack's SendUrl output + api/v0.1 with --stack, else `mailroom
    /// dev`'s).
    #[arg(long, env = "MAILROOM_API_URL")]
    base_url: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let body = request_body(&args)?;
    let base = base_url(&args)?;
    let url = format!(
        "{}/{}/messages",
        base.trim_end_matches('/'),
        args.username.trim()
    );
    let runtime = crate::backend::runtime()?;
    let (status, answer): (reqwest::StatusCode, String) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(args.key.trim())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("cannot reach the send API at {base}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        anyhow::Ok((status, text))
    })?;
    let parsed: Value = serde_json::from_str(&answer).unwrap_or(Value::String(answer.clone()));
    if !status.is_success() {
        let said = parsed
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or(answer.as_str());
        let code = match status.as_u16() {
            401 | 403 => exit::NO_CREDENTIALS,
            413 | 422 => exit::BAD_ARGUMENTS,
            _ => exit::FAILURE,
        };
        return Err(CliError::new(code, format!("{status}: {said}")).into());
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &parsed)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

fn base_url(args: &Args) -> anyhow::Result<String> {
    if let Some(base) = &args.base_url {
        return Ok(base.clone());
    }
    #[cfg(feature = "aws")]
    if args.target.stack.is_some() {
        let names = args.target.names()?;
        return names
            .send_url
            .map(|url| format!("{}/api/v0.1", url.trim_end_matches('/')))
            .ok_or_else(|| {
                CliError::new(
                    exit::NOT_FOUND,
                    "the stack has no SendUrl output (deployed before the send API?): pass --base-url",
                )
                .into()
            });
    }
    Ok(DEV_BASE_URL.to_owned())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    String::from_utf8(read(path)?).map_err(|_| {
        CliError::new(
            exit::BAD_ARGUMENTS,
            format!("{} is not UTF-8 text", path.display()),
        )
        .into()
    })
}

/// The JSON body CloudMailin's API takes.
fn request_body(args: &Args) -> anyhow::Result<Value> {
    let mut body = json!({ "from": args.from, "to": args.to });
    if !args.cc.is_empty() {
        body["cc"] = json!(args.cc);
    }
    if let Some(subject) = &args.subject {
        body["subject"] = json!(subject);
    }
    if !args.tag.is_empty() {
        body["tags"] = json!(args.tag);
    }
    if args.test_mode {
        body["test_mode"] = json!(true);
    }
    if args.no_tracking {
        body["tracking"] = json!(false);
    }
    if let Some(raw) = &args.raw {
        body["raw"] = json!(read_text(raw)?);
        return Ok(body);
    }
    let text = match &args.text_file {
        Some(path) => Some(read_text(path)?),
        None => args.text.clone(),
    };
    let html = match &args.html_file {
        Some(path) => Some(read_text(path)?),
        None => args.html.clone(),
    };
    if text.is_none() && html.is_none() {
        return Err(CliError::new(
            exit::BAD_ARGUMENTS,
            "give --text, --html or --raw (or their -file forms)",
        )
        .into());
    }
    if let Some(text) = text {
        body["plain"] = json!(text);
    }
    if let Some(html) = html {
        body["html"] = json!(html);
    }
    let mut attachments = Vec::new();
    for path in &args.attach {
        attachments.push(attachment(path, None)?);
    }
    for spec in &args.inline {
        let Some((path, cid)) = spec.rsplit_once('=') else {
            return Err(CliError::new(
                exit::BAD_ARGUMENTS,
                format!("--inline {spec}: write FILE=CID"),
            )
            .into());
        };
        attachments.push(attachment(Path::new(path), Some(cid))?);
    }
    if !attachments.is_empty() {
        body["attachments"] = json!(attachments);
    }
    Ok(body)
}

fn attachment(path: &Path, content_id: Option<&str>) -> anyhow::Result<Value> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".to_owned());
    let mut part = json!({
        "file_name": name,
        "content_type": content_type(path),
        "content": base64::engine::general_purpose::STANDARD.encode(read(path)?),
    });
    if let Some(cid) = content_id {
        part["content_id"] = json!(cid);
    }
    Ok(part)
}

/// The MIME type of a file, by its extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "json" => "application/json",
        "ics" => "text/calendar",
        "zip" => "application/zip",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}
