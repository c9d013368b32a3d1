//! `mailroom dev`: the whole pipeline on one machine, with no AWS account. An SMTP listener stands in for
//! SES, a folder for S3, SQLite for DynamoDB, an in-process queue (kept in SQLite across restarts) for
//! SQS; the inbound use case is the Lambda's own.

mod config;
mod demo;
mod http;
mod outbound;
mod smtp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use mailroom::deliver::links::{LinkKeys, token_key_id};
use mailroom::format::Format;
use mailroom::mail::envelope::KnownEnvelope;
use mailroom::ports::{MailLocation, RouteStore, SystemClock};
use mailroom::record::DEFAULT_RETENTION_DAYS;
use mailroom::route::{self, AttachmentMode, Pattern, Route, WebhookSecret, WebhookTarget};
use mailroom::usecases::inbound::{
    ForwardSettings, Inbound, InboundConfig, LinkSettings, Outcome, Received, Report,
};
use mailroom_http::{HttpClient, TargetPolicy};
use mailroom_local::files::LocalMailStore;
use mailroom_local::outbox::Outbox;
use mailroom_local::sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::local::Pending;
pub use crate::local::{DEV_FORWARD_FROM, LOCAL_BUCKET};
pub use config::DevConfig;

/// Arguments of `mailroom dev`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  mailroom dev --webhook http://127.0.0.1:3000/mail      # every recipient to your app\n  mailroom dev --config mailroom.toml                   # routes from a file\n  mailroom dev --demo                                   # try it end to end, then exit\n\nSend mail to the SMTP address (e.g. `swaks --server 127.0.0.1:2525 --to support@example.test`) and\nwatch the terminal and the console (the URL it prints)."
)]
pub struct Args {
    /// Routes from this file (default: ./mailroom.toml when it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// One catch-all JSON route to this URL, signed with a secret made at first start.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Where the store, the stored mail and the outbox live.
    #[arg(long, value_name = "DIR", default_value = ".mailroom")]
    data: PathBuf,
    /// SMTP listener address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2525")]
    smtp: String,
    /// The console's address (web pages, JSON API, attachment links).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8025")]
    http: String,
    /// Send the sample messages to a built-in receiver, print what arrived, and exit (0 if all verified).
    /// Uses free ports and a temporary data folder, removed at the end.
    #[arg(long)]
    demo: bool,
}

/// Everything the running server shares.
pub struct Dev {
    link_keys: RwLock<LinkKeys>,
    link_key_path: PathBuf,
    link_keys_read: Mutex<Instant>,
    console: Arc<DevConsole>,
    store: SqliteStore,
    mail: LocalMailStore,
    inbound: DevInbound,
    routes: RwLock<Vec<Route>>,
    queue: mpsc::UnboundedSender<Received>,
    retention_days: u32,
    outbound: outbound::DevOutbound,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if args.demo {
        return runtime.block_on(demo::run());
    }
    runtime.block_on(async {
        let started = start(&args, None).await?;
        for warning in &started.warnings {
            eprintln!("{warning}");
        }
        println!("{}", started.banner);
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        println!("stopping; pending retries are kept for the next start");
        Ok(ExitCode::SUCCESS)
    })
}

/// A running server: where it listens and what it printed at start.
pub struct Started {
    /// The SMTP address actually bound.
    pub smtp: SocketAddr,
    /// The console's address actually bound.
    pub http: SocketAddr,
    /// The console's token (the banner's URL carries it).
    pub token: String,
    /// What to tell the user.
    pub banner: String,
    /// What to warn the user about, loudly (on stderr): listeners other machines can reach, a data
    /// folder others can read.
    pub warnings: Vec<String>,
    /// The shared state.
    pub dev: Arc<Dev>,
}

/// The console over the dev store.
type DevConsole = crate::console::Console<SqliteStore, LocalMailStore, HttpClient, Outbox>;

/// The inbound use case over the dev store.
type DevInbound = Inbound<LocalMailStore, SqliteStore, HttpClient, Outbox, SystemClock>;

/// Opens the store, seeds the routes, and starts the SMTP listener, the console, the processor and the
/// retry timer. `routes` replaces the configured routes (the demo uses it).
pub async fn start(args: &Args, routes: Option<Vec<Route>>) -> anyhow::Result<Started> {
    let mut warnings: Vec<String> = shared_data_warning(&args.data).into_iter().collect();
    let store = crate::backend::dev_store(&args.data)?;
    let mail = LocalMailStore::new(args.data.join("mail"));
    let seeded = seed(args, &store, routes).await?;
    let http = Listener::bind(&args.http, "the console", "--http").await?;
    // The console's address as a browser (or the app following a link) can use it.
    let base = format!(
        "http://{}",
        crate::console::guard::reachable_authority(&args.http, http.addr)
    );
    // Links to stored attachments point at the console's port, which serves them from the local store.
    let link_key_path = args.data.join("link-key");
    let link_keys = persistent_link_keys(&link_key_path)?;
    let links = LinkSettings {
        base_url: base.clone(),
        key: link_keys.current().clone(),
        days: ATTACHMENT_URL_DAYS,
    };
    let outbox = Outbox::new(args.data.join("outbox"));
    let inbound = dev_inbound(&seeded.config, &mail, &store, &outbox, links.clone())?;
    let console = dev_console(
        args,
        &http,
        &seeded,
        &mail,
        &store,
        &outbox,
        links,
        &mut warnings,
    )?;
    let token = console.token().to_owned();
    let outbound = outbound::DevOutbound::new(&store, &mail, &outbox, seeded.retention_days())?;
    let (queue, incoming) = mpsc::unbounded_channel();
    let dev = Arc::new(Dev {
        link_keys: RwLock::new(link_keys),
        link_key_path,
        link_keys_read: Mutex::new(Instant::now()),
        console,
        store,
        mail,
        inbound,
        routes: RwLock::new(seeded.routes.clone()),
        queue,
        retention_days: seeded.retention_days(),
        outbound,
    });
    let smtp = Listener::bind(&args.smtp, "SMTP", "--smtp").await?;
    warnings.extend(smtp.reachable_warning());
    let tls = smtp::tls_acceptor(&args.data.join("tls"))?;
    let (smtp_addr, http_addr) = (smtp.addr, http.addr);
    tokio::spawn(smtp::serve(
        smtp.listener,
        tls,
        "mailroom-dev".to_owned(),
        Arc::new(Intake(dev.clone())),
        smtp::Limits::default(),
    ));
    tokio::spawn(http::serve(http.listener, dev.clone()));
    tokio::spawn(process(dev.clone(), incoming));
    tokio::spawn(retry_timer(dev.clone()));
    tokio::spawn(refresh_routes(dev.clone()));
    let pending = dev.store.pending_count().map_err(crate::exit::from_store)?;
    let where_ = Addresses {
        smtp: smtp_addr,
        base: &base,
        token: &token,
        data: &args.data,
        outbox: outbox.dir(),
    };
    Ok(Started {
        smtp: smtp_addr,
        http: http_addr,
        token: token.clone(),
        banner: banner(&where_, &seeded, pending),
        warnings,
        dev,
    })
}

/// The warning for a data folder made by an older version that others can read.
fn shared_data_warning(data: &Path) -> Option<String> {
    (data.exists() && mailroom_local::private::is_shared(data)).then(|| {
        format!(
            "WARNING: {} can be read by other users of this machine, and it holds mail and every route's \
             secret; `chmod 700 {}` (mailroom dev creates its folders 0700 and its files 0600)",
            data.display(),
            data.display()
        )
    })
}

/// A bound listener and its actual address.
struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Listener {
    /// The warning for an SMTP listener other machines can reach.
    fn reachable_warning(&self) -> Option<String> {
        (!self.addr.ip().is_loopback()).then(|| {
            format!(
                "WARNING: the SMTP listener is on {}, which other machines can reach: anyone who can \
                 connect can send mail into your routes. Bind it to 127.0.0.1 unless you mean this.",
                self.addr
            )
        })
    }

    /// Binds `addr` for `what`, saying which option moves it when the address is taken.
    async fn bind(addr: &str, what: &str, option: &str) -> anyhow::Result<Listener> {
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen for {what} on {addr} (in use? give {option} ADDR)")
        })?;
        let addr = listener.local_addr()?;
        Ok(Listener { listener, addr })
    }
}

/// The configuration read and the routes seeded into the store.
struct Seeded {
    config: DevConfig,
    config_path: Option<PathBuf>,
    routes: Vec<Route>,
    /// Lines for the banner (the catch-all's secret).
    notes: Vec<String>,
}

impl Seeded {
    fn retention_days(&self) -> u32 {
        self.config.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS)
    }
}

/// Reads `mailroom.toml` (or `--config`), writes its routes (or `routes`, and the `--webhook` catch-all)
/// into the store, and reads back every route.
async fn seed(
    args: &Args,
    store: &SqliteStore,
    routes: Option<Vec<Route>>,
) -> anyhow::Result<Seeded> {
    let config_path = args.config.clone().or_else(|| {
        Path::new("mailroom.toml")
            .exists()
            .then(|| PathBuf::from("mailroom.toml"))
    });
    let config = match &config_path {
        Some(path) => DevConfig::load(path)?,
        None => DevConfig::default(),
    };
    let mut seed = match routes {
        Some(routes) => routes,
        None => config.routes()?,
    };
    let mut notes = Vec::new();
    if let Some(url) = &args.webhook {
        let secret = persistent_secret(&args.data.join("webhook-secret"))?;
        notes.push(format!(
            "webhook secret (verify signatures with it): {secret}"
        ));
        let mut catch_all = Route::new(Pattern::CatchAll);
        catch_all.webhook = Some(WebhookTarget {
            url: url.clone(),
            format: Format::Json,
            secrets: vec![secret],
            attachments: AttachmentMode::Inline,
            disabled: None,
        });
        seed.push(catch_all);
    }
    seed_routes(store, seed).await?;
    let routes = store.routes().await.map_err(crate::exit::from_store)?;
    if routes.is_empty() {
        anyhow::bail!(crate::exit::CliError::new(
            crate::exit::BAD_ARGUMENTS,
            "no routes: give --webhook URL, or a mailroom.toml with [[routes]] (see `mailroom dev --help`)"
        ));
    }
    Ok(Seeded {
        config,
        config_path,
        routes,
        notes,
    })
}

/// The console over the dev store, served on the `--http` port beside the attachment links.
#[allow(clippy::too_many_arguments)]
fn dev_console(
    args: &Args,
    http: &Listener,
    seeded: &Seeded,
    mail: &LocalMailStore,
    store: &SqliteStore,
    outbox: &Outbox,
    links: LinkSettings,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Arc<DevConsole>> {
    let guard = crate::console::Guard::new(&args.http, http.addr.port())?;
    if !http.addr.ip().is_loopback() {
        warnings.push(format!(
            "WARNING: the console listens on {}, which other machines can reach. It answers only requests \
             addressed to {} that carry its token, but attachment links are open to whoever has one; bind \
             it to 127.0.0.1 unless you mean this.",
            http.addr,
            guard.hosts().describe()
        ));
    }
    Ok(Arc::new(crate::console::Console::new(
        store.clone(),
        mail.clone(),
        dev_inbound(&seeded.config, mail, store, outbox, links)?,
        LOCAL_BUCKET.to_owned(),
        crate::console::Requeue::Dev(store.clone()),
        Some(crate::console::DevTraces {
            store: store.clone(),
            outbox: outbox.clone(),
        }),
        guard,
        format!("mailroom dev · {}", args.data.display()),
    )))
}

/// The inbound use case over the dev store, the mail folder and the outbox, as the function runs it.
fn dev_inbound(
    config: &DevConfig,
    mail: &LocalMailStore,
    store: &SqliteStore,
    outbox: &Outbox,
    links: LinkSettings,
) -> anyhow::Result<DevInbound> {
    let http = HttpClient::new(Duration::from_secs(30), TargetPolicy::LOCAL)
        .context("cannot build the HTTP client")?;
    let forward = ForwardSettings {
        from: Some(
            config
                .forward_from
                .clone()
                .unwrap_or_else(|| DEV_FORWARD_FROM.to_owned()),
        ),
        max_bytes: config
            .forward_max_bytes
            .unwrap_or(mailroom::usecases::inbound::DEFAULT_FORWARD_MAX_BYTES),
    };
    let retention_days = config.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
    Ok(Inbound::new(
        mail.clone(),
        store.clone(),
        http,
        outbox.clone(),
        SystemClock,
        InboundConfig {
            links: Some(links),
            forward,
            ..InboundConfig::with_defaults(retention_days)
        },
    )
    .with_observer(Box::new(console_line)))
}

/// Where `mailroom dev` listens and keeps things, for the banner.
struct Addresses<'a> {
    smtp: SocketAddr,
    base: &'a str,
    token: &'a str,
    data: &'a Path,
    outbox: &'a Path,
}

/// What `mailroom dev` prints at start: where it listens, its routes, and what waits from an earlier run.
fn banner(at: &Addresses<'_>, seeded: &Seeded, pending: usize) -> String {
    let mut banner = vec![
        format!(
            "mailroom dev: SMTP on {} (STARTTLS, up to {} MiB)",
            at.smtp,
            smtp::MAX_MESSAGE_MIB
        ),
        format!(
            "console: {base}/?token={token}  (JSON: {base}/api/messages with Authorization: Bearer {token})",
            base = at.base,
            token = at.token
        ),
        format!(
            "data: {}  (forwards: {})",
            at.data.display(),
            at.outbox.display()
        ),
    ];
    match &seeded.config_path {
        Some(path) => banner.push(format!("routes from {}:", path.display())),
        None => banner.push("routes:".to_owned()),
    }
    for route in &seeded.routes {
        banner.push(format!(
            "  {:<28} {}",
            route.pattern.to_string(),
            describe_targets(route)
        ));
    }
    banner.extend(seeded.notes.iter().cloned());
    if pending > 0 {
        banner.push(format!(
            "{pending} message(s) waiting for a retry from an earlier run"
        ));
    }
    banner.join("\n")
}

fn describe_targets(route: &Route) -> String {
    let mut targets = Vec::new();
    if let Some(webhook) = &route.webhook {
        let mut text = format!("→ {} ({})", webhook.display_url(), webhook.format);
        if webhook.is_unsigned() {
            text.push_str(
                " [UNSIGNED: no secret, your app cannot tell these posts from forged ones]",
            );
        }
        if webhook.disabled.is_some() {
            text.push_str(" [disabled after 410: `mailroom routes enable` turns it back on]");
        }
        targets.push(text);
    }
    targets.extend(route.forward.iter().map(|a| format!("→ forward {a}")));
    if !route.enabled {
        targets.push("[route disabled]".to_owned());
    }
    targets.join(", ")
}

/// The file's routes replace the stored ones of the same pattern; a webhook a 410 disabled stays disabled
/// across restarts while its URL is unchanged.
async fn seed_routes(store: &SqliteStore, seed: Vec<Route>) -> anyhow::Result<()> {
    let stored = store.routes().await.map_err(crate::exit::from_store)?;
    for mut route in seed {
        if let Some(previous) = stored.iter().find(|r| r.pattern == route.pattern)
            && let (Some(old), Some(new)) = (&previous.webhook, &mut route.webhook)
            && old.url == new.url
        {
            new.disabled = old.disabled.clone();
        }
        store
            .put_route(&route)
            .await
            .map_err(crate::exit::from_store)?;
    }
    Ok(())
}

/// A secret made once and kept in a file, so a restart signs with the same one.
fn persistent_secret(path: &Path) -> anyhow::Result<WebhookSecret> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return WebhookSecret::parse(text.trim())
            .with_context(|| format!("{} holds no valid secret", path.display()));
    }
    let secret = WebhookSecret::generate().context("cannot generate a secret")?;
    write_private(path, format!("{secret}\n").as_bytes())?;
    Ok(secret)
}

/// How long links to stored attachments live, as `MAILROOM_ATTACHMENT_URL_DAYS`'s default.
const ATTACHMENT_URL_DAYS: u32 = 7;

/// The link-signing keys, made once and kept in a file so links survive a restart: the current key on
/// its first line and, after `mailroom links rotate-key`, the previous one on the second.
pub(crate) fn persistent_link_keys(path: &Path) -> anyhow::Result<LinkKeys> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return LinkKeys::parse(&text)
            .with_context(|| format!("{} holds no valid link key", path.display()));
    }
    let text = mailroom::deliver::links::LinkKey::generate()
        .map_err(|e| anyhow::anyhow!("cannot generate a link key: {e}"))?;
    write_private(path, format!("{text}\n").as_bytes())?;
    LinkKeys::parse(&text).context("a generated link key")
}

/// The shortest time between two reads of the link-key file prompted by a link of a key not known yet.
const LINK_KEYS_READ_AT_MOST_EVERY: Duration = Duration::from_secs(1);

impl Dev {
    /// The object a link token names, if one of the link keys signed it; a token of a key not read yet
    /// (rotated by `mailroom links rotate-key` since the start) reads the key file again.
    fn verify_link(&self, token: &str) -> Option<String> {
        let now = Utc::now();
        let keys = self
            .link_keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let unknown = token_key_id(token).is_some_and(|id| !keys.knows(id));
        if unknown && self.may_read_link_keys() {
            match std::fs::read_to_string(&self.link_key_path)
                .ok()
                .and_then(|text| LinkKeys::parse(&text).ok())
            {
                Some(fresh) => {
                    let found = fresh.verify(token, now);
                    *self
                        .link_keys
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = fresh;
                    return found;
                }
                None => return keys.verify(token, now),
            }
        }
        keys.verify(token, now)
    }

    fn may_read_link_keys(&self) -> bool {
        let mut last = self
            .link_keys_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.elapsed() < LINK_KEYS_READ_AT_MOST_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }
}

/// Writes a file only its owner may read (mode 0600 on Unix), as every file under `--data` is.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    mailroom_local::private::write(path, contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// One console line per delivery outcome. The console may show addresses and subjects: it stores nothing.
fn console_line(report: &Report<'_>) {
    let http = report
        .http_status
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    let why = match (report.status.as_str(), report.error) {
        ("delivered", _) | (_, None) => String::new(),
        (_, Some(error)) => format!(" ({error})"),
    };
    println!(
        "{}  {} → {}  {:?}  {}  {}{http}  {} ms{why}",
        report.at.format("%H:%M:%S"),
        if report.sender.is_empty() {
            "<>"
        } else {
            report.sender
        },
        report.recipient,
        report.subject,
        if report.target.is_empty() {
            "-"
        } else {
            report.target
        },
        report.status,
        report.ms,
    );
}

/// Accepts mail for the SMTP listener: stores it as SES's S3 action would, then queues it.
struct Intake(Arc<Dev>);

impl smtp::Intake for Intake {
    fn accepts(&self, recipient: &str) -> bool {
        self.0
            .routes
            .read()
            .map(|routes| route::resolve(&routes, recipient).is_some())
            .unwrap_or(true)
    }

    fn receive(&self, envelope: smtp::Envelope, data: Vec<u8>) -> Result<String, String> {
        let now = Utc::now();
        let id = message_id(now);
        let key = format!("inbound/{id}");
        let stored = ses_like_object(&id, &envelope, now, &data);
        self.0.mail.put(&key, &stored).map_err(|e| e.to_string())?;
        let received = Received {
            location: MailLocation {
                bucket: LOCAL_BUCKET.to_owned(),
                key,
            },
            received_at: now,
            first_seen: now,
            known: KnownEnvelope {
                recipients: Some(envelope.recipients),
                from: Some(envelope.from),
                helo_domain: Some(envelope.helo),
                remote_ip: Some(envelope.remote_ip.to_string()),
                tls: Some(envelope.tls),
                ..KnownEnvelope::default()
            },
            size: None,
        };
        // Queued in the store before the answer, so mail accepted is delivered even if this process stops
        // before its first attempt ends.
        let payload = serde_json::to_string(&Pending::of(&received)).map_err(|e| e.to_string())?;
        self.0
            .store
            .schedule(&received.location.key, now + IN_FLIGHT, &payload)
            .map_err(|e| e.to_string())?;
        self.0
            .queue
            .send(received)
            .map_err(|_| "the processor stopped".to_owned())?;
        Ok(id)
    }
}

/// A time-ordered id in SES's alphabet.
fn message_id(now: DateTime<Utc>) -> String {
    let mut random = [0u8; 10];
    let _ = getrandom::fill(&mut random);
    let mut id = format!("{:012x}", now.timestamp_millis());
    for byte in random {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// The message with the trace headers SES's S3 action prepends, so the core's envelope recovery runs
/// unchanged: `Return-Path`, `Received: … for <rcpt>` (only with one recipient, as SES does), and
/// `Received-SPF` with `client-ip`, `envelope-from` and `helo`. No verdicts are invented.
fn ses_like_object(
    id: &str,
    envelope: &smtp::Envelope,
    now: DateTime<Utc>,
    data: &[u8],
) -> Vec<u8> {
    let helo = if envelope.helo.is_empty() {
        "unknown"
    } else {
        &envelope.helo
    };
    let ip = envelope.remote_ip;
    let ip_literal = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    let mut head = format!("Return-Path: <{}>\r\n", envelope.from);
    head.push_str(&format!(
        "Received: from {helo} ({helo} [{ip_literal}])\r\n by mailroom-dev with ESMTP id {id}"
    ));
    if let [only] = envelope.recipients.as_slice() {
        head.push_str(&format!("\r\n for {only}"));
    }
    head.push_str(&format!(";\r\n {}\r\n", now.to_rfc2822()));
    head.push_str(&format!(
        "Received-SPF: none (mailroom dev does not check SPF) client-ip={ip}; envelope-from={}; helo={helo};\r\n",
        envelope.from
    ));
    let mut stored = head.into_bytes();
    stored.extend_from_slice(data);
    stored
}

/// Delivers queued mail as it arrives.
async fn process(dev: Arc<Dev>, mut incoming: mpsc::UnboundedReceiver<Received>) {
    // Retries kept from an earlier run are the timer's: it takes the due ones at once.
    while let Some(received) = incoming.recv().await {
        let dev = dev.clone();
        tokio::spawn(async move { deliver(&dev, received).await });
    }
}

async fn deliver(dev: &Dev, received: Received) {
    let key = received.location.key.clone();
    match dev.inbound.process(&received).await {
        Ok(outcome @ (Outcome::RetryAfter(_) | Outcome::HandBack)) => {
            // Without a deadline nothing is handed back; should it be, it comes back in a few seconds.
            let wait = match outcome {
                Outcome::RetryAfter(wait) => wait,
                _ => std::time::Duration::from_secs(5),
            };
            let due = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            let payload = serde_json::to_string(&Pending::of(&received)).unwrap_or_default();
            if let Err(error) = dev.store.schedule(&key, due, &payload) {
                eprintln!("cannot keep the retry of {key}: {error}");
            }
        }
        Ok(Outcome::Done | Outcome::GaveUp) => {
            let _ = dev.store.unschedule(&key);
        }
        Err(error) => {
            // A store failure: try again shortly.
            eprintln!("{key}: {error}; trying again in 5 s");
            let payload = serde_json::to_string(&Pending::of(&received)).unwrap_or_default();
            let _ = dev
                .store
                .schedule(&key, Utc::now() + chrono::Duration::seconds(5), &payload);
        }
    }
}

/// How far a retry is pushed while its attempt runs: longer than any attempt (the webhook timeout is 30 s).
const IN_FLIGHT: chrono::Duration = chrono::Duration::seconds(120);

/// Wakes for due retries, and removes expired records (the store's stand-in for DynamoDB's TTL).
async fn retry_timer(dev: Arc<Dev>) {
    let mut last_cleanup: Option<std::time::Instant> = None;
    loop {
        let now = Utc::now();
        if last_cleanup.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
            if let Ok(removed) = dev.store.delete_expired(now)
                && removed > 0
            {
                println!(
                    "removed {removed} record(s) past their {} days",
                    dev.retention_days
                );
            }
            last_cleanup = Some(std::time::Instant::now());
        }
        if let Ok(due) = dev.store.due(now) {
            for (key, _, payload) in due {
                let Ok(pending) = serde_json::from_str::<Pending>(&payload) else {
                    eprintln!(
                        "{key}: the kept retry is unreadable; dropping it (the mail stays stored)"
                    );
                    let _ = dev.store.unschedule(&key);
                    continue;
                };
                // Pushed past the attempt's longest run rather than removed: if this process dies mid-attempt
                // the retry is still there at the next start. The attempt reschedules or removes it.
                if dev.store.schedule(&key, now + IN_FLIGHT, &payload).is_err() {
                    continue;
                }
                let dev = dev.clone();
                tokio::spawn(async move { deliver(&dev, pending.received()).await });
            }
        }
        let next = dev.store.next_due().ok().flatten();
        let wait = next
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::time::sleep(wait).await;
    }
}

/// Picks up routes changed meanwhile (by `mailroom routes … --data`, or a 410).
async fn refresh_routes(dev: Arc<Dev>) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Ok(routes) = dev.store.routes().await
            && let Ok(mut current) = dev.routes.write()
        {
            *current = routes;
        }
    }
}
