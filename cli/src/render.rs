//! `mailroom render`: a message as the POST body a target receives.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope, envelope::KnownEnvelope};

/// Arguments of `mailroom render`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mailroom render events/sample.eml\n  mailroom render --format multipart --recipient support@example.com message.eml\n  mailroom render --out rendered/ mail/*.eml"
)]
pub struct Args {
    /// Payload format: json, multipart, raw, postmark, postmark-raw, mailgun, mailgun-mime, sendgrid,
    /// sendgrid-raw.
    #[arg(long, short, default_value = "json", value_parser = parse_format)]
    format: Format,
    /// SMTP recipient of the delivery (repeat for several); wins over what the headers say.
    #[arg(long = "recipient", value_name = "ADDR")]
    recipients: Vec<String>,
    /// Write DIR/<file name>.<format> for each input instead of one body to stdout.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The raw message(s) (.eml); `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub(crate) fn parse_format(value: &str) -> Result<Format, String> {
    value
        .parse()
        .map_err(|e: mailroom::format::UnknownFormat| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let known = KnownEnvelope {
        recipients: (!args.recipients.is_empty()).then(|| args.recipients.clone()),
        ..KnownEnvelope::default()
    };
    let Some(out_dir) = &args.out else {
        let [file] = args.files.as_slice() else {
            bail!("several files need --out DIR (one body per file); without it, give one FILE");
        };
        let raw = read_input(file)?;
        let stdout = io::stdout().lock();
        render_one(raw, args.format, &known, stdout)
            .with_context(|| format!("cannot render {}", file.display()))?;
        return Ok(ExitCode::SUCCESS);
    };

    fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create the output folder {}", out_dir.display()))?;
    let mut failed = 0usize;
    for file in &args.files {
        if let Err(error) = render_to_dir(file, out_dir, args.format, &known) {
            failed += 1;
            eprintln!("error: {}: {error:#}", file.display());
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} file(s) failed", args.files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn render_to_dir(
    file: &Path,
    out_dir: &Path,
    format: Format,
    known: &KnownEnvelope,
) -> anyhow::Result<()> {
    let raw = read_input(file)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stdin".to_owned());
    let target = out_dir.join(format!("{name}.{}", format.as_str()));
    let out =
        fs::File::create(&target).with_context(|| format!("cannot create {}", target.display()))?;
    if let Err(error) = render_one(raw, format, known, out) {
        // A half-written body is worse than none.
        let _ = fs::remove_file(&target);
        return Err(error);
    }
    Ok(())
}

fn render_one(
    raw: Vec<u8>,
    format: Format,
    known: &KnownEnvelope,
    out: impl Write,
) -> anyhow::Result<()> {
    let email = mail::parse(raw)?;
    let envelope = Envelope::recover(&email).with_known(known.clone());
    let mut out = io::BufWriter::with_capacity(256 * 1024, out);
    Payload::new(format, &email, &envelope)
        .write_to(&mut out)
        .context("cannot write the output")?;
    if !format.is_form() {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut raw = Vec::new();
        io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read stdin")?;
        return Ok(raw);
    }
    fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}
