//! `mailroom dev --demo`: the whole loop on this machine, checked. A built-in receiver verifies every
//! signature; the sample messages of `events/` go through the SMTP listener as a mail server would send
//! them; what arrived and what was recorded is printed; the exit code says whether every sample arrived
//! verified.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mailroom::deliver::signing::verify;
use mailroom::format::Format;
use mailroom::ports::RecordQuery;
use mailroom::route::{AttachmentMode, Pattern, Route, WebhookSecret, WebhookTarget};
use tokio::net::TcpListener;

use super::Args;

/// The samples, built in so the demo runs from anywhere.
const SAMPLES: [(&str, &[u8]); 3] = [
    ("sample.eml", include_bytes!("../../../events/sample.eml")),
    (
        "plain-reply.eml",
        include_bytes!("../../../events/plain-reply.eml"),
    ),
    (
        "html-only.eml",
        include_bytes!("../../../events/html-only.eml"),
    ),
];

/// How long the demo waits for every sample to arrive.
const PATIENCE: Duration = Duration::from_secs(30);

/// One POST the receiver got.
struct Arrival {
    verified: bool,
    id: String,
    bytes: usize,
    to: String,
    subject: String,
    attachments: usize,
    reply: String,
}

pub async fn run() -> anyhow::Result<ExitCode> {
    let secret = WebhookSecret::generate().context("cannot generate a secret")?;
    let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
    let receiver = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the demo receiver")?;
    let receiver_url = format!("http://{}/mail", receiver.local_addr()?);
    tokio::spawn(receive(receiver, secret.clone(), arrivals.clone()));

    let data = TempDir(std::env::temp_dir().join(format!("mailroom-demo-{}", std::process::id())));
    let demo_args = Args {
        config: None,
        webhook: None,
        data: data.0.clone(),
        smtp: "127.0.0.1:0".to_owned(),
        http: "127.0.0.1:0".to_owned(),
        demo: true,
    };
    let mut route = Route::new(Pattern::CatchAll);
    route.webhook = Some(WebhookTarget {
        url: receiver_url.clone(),
        format: Format::Json,
        secrets: vec![secret],
        attachments: AttachmentMode::Inline,
        disabled: None,
    });
    let started = super::start(&demo_args, Some(vec![route])).await?;
    println!("{}", started.banner);
    println!("demo receiver: {receiver_url} (verifies every signature)\n");
    send_samples(started.smtp).await?;
    wait_for(&arrivals).await;

    let (count, all_verified) = print_arrivals(&arrivals)?;
    print_records(&started.dev).await?;
    let listed = console_count(started.http, &started.token).await;
    match &listed {
        Ok(n) => println!(
            "\nthe console's API (http://{}/api/messages) lists {n} message(s)",
            started.http
        ),
        Err(error) => println!("\nthe console's API did not answer: {error:#}"),
    }
    let console_ok = listed.is_ok_and(|n| n == SAMPLES.len());
    if count == SAMPLES.len() && all_verified && console_ok {
        println!(
            "\ndemo passed: {count} of {} samples arrived with a valid signature",
            SAMPLES.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "\ndemo FAILED: {count} of {} samples arrived, all verified: {all_verified}, the console lists them: {console_ok}",
            SAMPLES.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Sends every sample over SMTP, each to its own recipient.
async fn send_samples(smtp: std::net::SocketAddr) -> anyhow::Result<()> {
    for (i, (name, bytes)) in SAMPLES.iter().enumerate() {
        let recipient = format!("demo+sample{}@mailroom.test", i + 1);
        let bytes = bytes.to_vec();
        let name = (*name).to_owned();
        tokio::task::spawn_blocking(move || send(smtp, &recipient, &bytes))
            .await
            .context("the SMTP client stopped")?
            .with_context(|| format!("cannot send {name} over SMTP"))?;
        println!("sent {name} over SMTP to {smtp}");
    }
    Ok(())
}

/// Waits until every sample has arrived, or [`PATIENCE`] runs out.
async fn wait_for(arrivals: &Mutex<Vec<Arrival>>) {
    let deadline = Instant::now() + PATIENCE;
    while arrivals.lock().map(|a| a.len()).unwrap_or(0) < SAMPLES.len() && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The records are written just after the answer; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Prints what the receiver got; how many arrived, and whether every signature was valid.
fn print_arrivals(arrivals: &Mutex<Vec<Arrival>>) -> anyhow::Result<(usize, bool)> {
    println!("\nthe receiver got:");
    let arrivals = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("receiver state poisoned"))?;
    for arrival in arrivals.iter() {
        println!(
            "  {} {}  to {}  {:?}  {} attachment(s), {} bytes, webhook-id {}\n      reply_plain: {:?}",
            if arrival.verified { "✔" } else { "✘" },
            if arrival.verified {
                "signature verified"
            } else {
                "SIGNATURE INVALID"
            },
            arrival.to,
            arrival.subject,
            arrival.attachments,
            arrival.bytes,
            arrival.id,
            arrival.reply,
        );
    }
    Ok((arrivals.len(), arrivals.iter().all(|a| a.verified)))
}

/// Prints the records the dev store kept.
async fn print_records(dev: &super::Dev) -> anyhow::Result<()> {
    println!("\nrecorded:");
    let records = dev
        .store
        .list(&mailroom::ports::RecordFilter::default())
        .await
        .map_err(crate::exit::from_store)?;
    for record in &records {
        println!(
            "  {}  {} → {}  {}  attempts {}  HTTP {}  expires {}",
            record.message_id,
            record.sender.as_deref().unwrap_or("<>"),
            record.recipient.as_deref().unwrap_or("-"),
            record.status,
            record.attempts,
            record
                .response_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".to_owned()),
            chrono::DateTime::from_timestamp(record.expires_at, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        );
    }
    Ok(())
}

/// Sends one message as a mail server would: EHLO, MAIL FROM, RCPT TO, DATA.
fn send(smtp: std::net::SocketAddr, recipient: &str, bytes: &[u8]) -> anyhow::Result<()> {
    use lettre::Transport;
    let envelope = lettre::address::Envelope::new(
        Some(
            "sender@demo.mailroom.test"
                .parse()
                .context("sender address")?,
        ),
        vec![recipient.parse().context("recipient address")?],
    )
    .context("envelope")?;
    let transport = lettre::SmtpTransport::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .timeout(Some(Duration::from_secs(10)))
        .build();
    transport.send_raw(&envelope, bytes).context("SMTP")?;
    Ok(())
}

/// The built-in receiver: checks each POST's signature and notes what it carried.
async fn receive(listener: TcpListener, secret: WebhookSecret, arrivals: Arc<Mutex<Vec<Arrival>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let secret = secret.clone();
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let secret = secret.clone();
                    let arrivals = arrivals.clone();
                    async move {
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned()
                        };
                        let (id, timestamp, signature) = (
                            header("webhook-id"),
                            header("webhook-timestamp"),
                            header("webhook-signature"),
                        );
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let verified = verify(
                            &secret,
                            &id,
                            &timestamp,
                            &signature,
                            &body,
                            chrono::Utc::now().timestamp(),
                        )
                        .is_ok();
                        let json: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        if let Ok(mut list) = arrivals.lock() {
                            list.push(Arrival {
                                verified,
                                id,
                                bytes: body.len(),
                                to: json["envelope"]["to"].as_str().unwrap_or("").to_owned(),
                                subject: json["headers"]["subject"]
                                    .as_str()
                                    .unwrap_or("")
                                    .to_owned(),
                                attachments: json["attachments"].as_array().map_or(0, Vec::len),
                                reply: json["reply_plain"]
                                    .as_str()
                                    .unwrap_or("")
                                    .chars()
                                    .take(80)
                                    .collect(),
                            });
                        }
                        let status = if verified { 200 } else { 401 };
                        let mut response =
                            hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                        *response.status_mut() =
                            hyper::StatusCode::from_u16(status).unwrap_or_default();
                        Ok::<_, Infallible>(response)
                    }
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// How many messages the console's API lists, asked as a script does: with the token as a bearer.
async fn console_count(http: std::net::SocketAddr, token: &str) -> anyhow::Result<usize> {
    let body = reqwest::Client::new()
        .get(format!("http://{http}/api/messages"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    list.as_array()
        .map(Vec::len)
        .context("the API answered something other than a list")
}

/// The demo's data folder, removed however the demo ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
