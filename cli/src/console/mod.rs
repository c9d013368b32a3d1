//! `mailroom console`: the dashboard of a deployed stack or of the dev store, served on loopback. The same
//! pages are `mailroom dev`'s, over its store: one UI, two backends.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the command, the [`Console`] and its dispatch: which path goes to which page |
//! | `guard.rs` | who is answered: loopback `Host`, the token printed at start, CSRF on every action |
//! | `web.rs` | reading a request (query, form) and the replies, with their security headers |
//! | `views.rs` | the frame every page shares, small pieces of HTML, the stylesheet and script |
//! | `messages.rs` | the list of messages (filters, pages, new rows) and its JSON |
//! | `message.rs` | one message: envelope, verdicts, headers, payload, HTML body, attachments, attempts |
//! | `actions.rs` | resend, redrive, erase (with its confirmation), download raw |
//! | `manage.rs` | routes, suppressions, data requests |
//! | `sent.rs` | sent mail (the send API's, and mail sent around it): the list and one message |
//! | `stats.rs` | per-day counts of 60 days, kept in memory and refreshed from the day listing |
//! | `recent.rs` | a stack console's rows of those days, so pages and filters need no query each |
//! | `overview.rs` | the charts, as SVG drawn on the server |
//!
//! It reads the stack with the operator's own AWS credentials: nothing is added to the stack, and nothing
//! listens beyond this machine unless `--http` says so. No mail body or address is logged.

mod actions;
pub mod guard;
mod manage;
mod message;
mod messages;
mod overview;
mod recent;
mod sent;
mod stats;
mod views;
mod web;

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use mailroom::ports::{
    AddressRecords, Clock, MailSender, MailStore, ObjectEraser, ObjectStore, OutboundLog,
    OutboundStore, RecordQuery, RecordStore, Reopen, RouteStore, SoftBounceStore, SuppressionList,
    SystemClock, Webhooks,
};
use mailroom::usecases::inbound::Inbound;
use tokio::net::TcpListener;

pub use guard::Guard;
use web::{Asked, Reply};

/// Where `mailroom console` listens unless told.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8026";

/// `mailroom console …`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mailroom console --stack mailroom-eu --open      # a deployed stack, with your AWS credentials\n  mailroom console --table T --bucket B            # the same, named by hand\n  mailroom console --data .mailroom                # the dev store (mailroom dev serves it too)\n\nOpen the URL it prints: it carries the token that lets your browser in."
)]
pub struct Args {
    #[command(flatten)]
    target: crate::backend::Target,
    /// Where to listen (loopback unless you mean otherwise).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    http: String,
    /// Open the console in the default browser.
    #[arg(long)]
    open: bool,
}

/// What a console's store does: every port its pages and actions use.
pub trait ConsoleStore:
    RecordQuery
    + RecordStore
    + RouteStore
    + SuppressionList
    + AddressRecords
    + OutboundStore
    + OutboundLog
    + SoftBounceStore
    + Reopen
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> ConsoleStore for T where
    T: RecordQuery
        + RecordStore
        + RouteStore
        + SuppressionList
        + AddressRecords
        + OutboundStore
        + OutboundLog
        + SoftBounceStore
        + Reopen
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// What a console's mail store does: read stored mail, and erase it.
pub trait ConsoleMail:
    MailStore + ObjectStore + ObjectEraser + Clone + Send + Sync + 'static
{
}

impl<T> ConsoleMail for T where
    T: MailStore + ObjectStore + ObjectEraser + Clone + Send + Sync + 'static
{
}

/// How a message goes back to the function for another go ("redrive").
pub enum Requeue {
    /// The dev store's retry queue: a running `mailroom dev` takes it within a second.
    Dev(mailroom_local::sqlite::SqliteStore),
    /// The stack's inbound queue, as an S3 event the function reads.
    #[cfg(feature = "aws")]
    Queue(mailroom_aws::sqs::Queue),
    /// Not known (why, for the page).
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    Unavailable(&'static str),
}

/// The dev store's own traces of an address beyond the ports (retry queue, outbox), erased with it.
pub struct DevTraces {
    /// The store.
    pub store: mailroom_local::sqlite::SqliteStore,
    /// The outbox of sent mail.
    pub outbox: mailroom_local::outbox::Outbox,
}

/// A console over one backend.
pub struct Console<S, M, W, X> {
    store: S,
    mail: M,
    inbound: Inbound<M, S, W, X, SystemClock>,
    bucket: String,
    requeue: Requeue,
    traces: Option<DevTraces>,
    guard: Guard,
    stats: stats::Stats,
    source: String,
    /// The rows of the last 60 days, when this console keeps them (a stack's); `None` inside until the
    /// first pass has read them all, or for good past [`recent::MOST_ROWS`].
    rows: Option<std::sync::RwLock<Option<recent::Recent>>>,
    /// The routes as last read, and when.
    routes: std::sync::Mutex<Option<(std::time::Instant, Vec<mailroom::route::Route>)>>,
}

/// How long the routes read for the pages are used before they are read again (the console's own changes
/// read them at once).
const ROUTES_KEPT: std::time::Duration = std::time::Duration::from_secs(10);

impl<S, M, W, X> Console<S, M, W, X>
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    /// A console over `store` and the mail of `bucket` in `mail`; `inbound` resends as the function
    /// delivers; `source` says what it shows (in every page's header).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: S,
        mail: M,
        inbound: Inbound<M, S, W, X, SystemClock>,
        bucket: String,
        requeue: Requeue,
        traces: Option<DevTraces>,
        guard: Guard,
        source: String,
    ) -> Console<S, M, W, X> {
        Console {
            store,
            mail,
            inbound,
            bucket,
            requeue,
            traces,
            guard,
            stats: stats::Stats::default(),
            source,
            rows: None,
            routes: std::sync::Mutex::new(None),
        }
    }

    /// Keeps the rows of the last 60 days in memory (`recent.rs`): for a store whose every listing is a
    /// round trip per shard and day.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub fn keeping_rows(mut self) -> Self {
        self.rows = Some(std::sync::RwLock::new(None));
        self
    }

    /// The routes, read at most every [`ROUTES_KEPT`]; a console that keeps rows has them read again by
    /// its reads of the newest mail, so a page never waits for them but the first.
    async fn routes(&self) -> Vec<mailroom::route::Route> {
        if let Ok(kept) = self.routes.lock()
            && let Some((at, routes)) = kept.as_ref()
            && (at.elapsed() < ROUTES_KEPT || self.rows.is_some())
        {
            return routes.clone();
        }
        self.read_routes().await
    }

    /// Reads the routes from the store into what [`routes`](Self::routes) answers.
    async fn read_routes(&self) -> Vec<mailroom::route::Route> {
        let routes = self.store.routes().await.unwrap_or_default();
        if let Ok(mut kept) = self.routes.lock() {
            *kept = Some((std::time::Instant::now(), routes.clone()));
        }
        routes
    }

    /// Forgets the routes read, after the console changed one.
    fn forget_routes(&self) {
        if let Ok(mut kept) = self.routes.lock() {
            *kept = None;
        }
    }

    /// The token the console's URL carries.
    pub fn token(&self) -> &str {
        self.guard.token()
    }

    /// Answers one request: the checks every request passes, then the page.
    pub async fn handle(self: &Arc<Self>, request: Request<Incoming>) -> Reply {
        let asked = match Asked::read(request).await {
            Ok(asked) => asked,
            Err(reply) => return reply,
        };
        let mut reply = match self.admit(&asked) {
            Some(answered) => answered,
            None => self.dispatch(&asked).await,
        };
        secure(&mut reply, &asked.path);
        reply
    }

    /// The answer to a request that goes no further: a refusal, or for the token's first use the cookie
    /// and the same page without the token in its address. `None`: on to the page.
    fn admit(&self, asked: &Asked) -> Option<Reply> {
        if !self.guard.host_allowed(asked.authority.as_deref()) {
            return Some(web::text(
                StatusCode::MISDIRECTED_REQUEST,
                "421 Misdirected Request: the Mailroom console answers only requests addressed to \
                 localhost, 127.0.0.1, [::1] or the name given with --http\n",
            ));
        }
        if asked.path.starts_with("/static/") {
            return None;
        }
        let framed = asked.path.ends_with("/html") || asked.path.contains("/part/");
        if framed && message::frame_admitted(&self.guard, asked) {
            return None;
        }
        let Some(credential) = self
            .guard
            .credential(&asked.headers, asked.query.get("token"))
        else {
            return Some(unauthorised(asked));
        };
        if asked.method == Method::POST && credential != guard::Credential::Bearer {
            let csrf_ok = self.guard.csrf_ok(asked.form.get("csrf"));
            if !csrf_ok || !self.guard.origin_ok(&asked.headers) {
                return Some(web::text(
                    StatusCode::FORBIDDEN,
                    "403 Forbidden: the form did not come from this console (CSRF token or origin)\n",
                ));
            }
        }
        if credential == guard::Credential::Query
            && asked.method == Method::GET
            && !asked.wants_json()
        {
            let mut landing = web::redirect(&without_token(asked));
            web::set_header(
                &mut landing,
                hyper::header::SET_COOKIE,
                &self.guard.set_cookie(),
            );
            return Some(landing);
        }
        None
    }

    async fn dispatch(self: &Arc<Self>, asked: &Asked) -> Reply {
        let segments = asked.segments();
        let path: Vec<&str> = segments.iter().map(String::as_str).collect();
        let post = asked.method == Method::POST;
        if !post && asked.method != Method::GET {
            return web::text(StatusCode::METHOD_NOT_ALLOWED, "GET or POST only\n");
        }
        match (post, path.as_slice()) {
            (false, ["static", "console.css"]) => {
                web::reply(StatusCode::OK, "text/css; charset=utf-8", views::CSS)
            }
            (false, ["static", "console.js"]) => web::reply(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                views::SCRIPT,
            ),
            (false, [""] | ["messages"]) => self.messages_page(asked).await,
            (false, ["api", "messages"]) => self.messages_api(asked).await,
            (false, ["api", "rows"]) => self.rows_api(asked).await,
            (false, ["api", "stats"]) => self.stats_api().await,
            (false, ["api", "messages", id]) => self.message_api(id).await,
            (false, ["messages", id]) => self.message_page(asked, id).await,
            (false, ["messages", id, "html"]) => self.message_html(asked, id).await,
            (false, ["messages", id, "part", n]) => self.message_part(id, n).await,
            (false, ["messages", id, "raw"]) => self.download_raw(id).await,
            (true, ["messages", id, "resend"]) => self.resend(asked, id).await,
            (true, ["messages", id, "redrive"]) => self.redrive(id).await,
            (false, ["overview"]) => self.overview_page().await,
            (false, ["sent"]) => self.sent_page(asked).await,
            (false, ["sent", id]) => self.sent_message_page(id).await,
            (false, ["sent", id, "raw"]) => self.sent_raw(id).await,
            (false, ["routes"]) => self.routes_page(asked).await,
            (false, ["routes", "edit"]) => self.route_form_page(asked).await,
            (true, ["routes", action]) => self.route_action(asked, action).await,
            (false, ["suppressions"]) => self.suppressions_page(asked).await,
            (true, ["suppressions", action]) => self.suppression_action(asked, action).await,
            (false, ["data"]) => self.data_page(asked).await,
            (false, ["data", "export"]) => self.export(asked).await,
            (false, ["data", "erase"]) => self.erase_confirmation(asked).await,
            (true, ["data", "erase"]) => self.erase(asked).await,
            _ => self.not_found(),
        }
    }

    fn frame<'a>(&'a self, title: &'a str, section: &'a str, csrf: &'a str) -> views::Frame<'a> {
        views::Frame {
            title,
            section,
            source: &self.source,
            csrf,
        }
    }

    fn not_found(&self) -> Reply {
        let csrf = self.guard.csrf();
        web::html(
            StatusCode::NOT_FOUND,
            self.frame("Not found", "", &csrf).page(
                None,
                "<p>There is nothing here. <a href=\"/messages\">Messages</a></p>",
            ),
        )
    }

    /// A page that says what went wrong with the store.
    fn store_error(&self, what: &str, error: &dyn std::fmt::Display) -> Reply {
        let csrf = self.guard.csrf();
        web::html(
            StatusCode::BAD_GATEWAY,
            self.frame("Cannot read the store", "", &csrf).page(
                None,
                &format!(
                    "<p class=\"error\">{}: {}</p>",
                    web::escape(what),
                    web::escape(&error.to_string())
                ),
            ),
        )
    }
}

/// Headers every answer carries: nothing is cached, framed by others, sniffed, or sent on as a referrer;
/// pages load only the console's own files. A message's HTML body has its own, stricter policy.
fn secure(reply: &mut Reply, path: &str) {
    use hyper::header;
    let framed = path.ends_with("/html");
    web::set_header(reply, header::CACHE_CONTROL, "no-store");
    web::set_header(reply, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // `same-origin`, not `no-referrer`: with the latter, Chromium sends `Origin: null` on the console's
    // own forms, which the CSRF check must refuse. A message's body never sends a referrer anywhere.
    let referrer = if framed { "no-referrer" } else { "same-origin" };
    web::set_header(reply, header::REFERRER_POLICY, referrer);
    if !framed {
        web::set_header(reply, header::X_FRAME_OPTIONS, "DENY");
        web::set_header(
            reply,
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'",
        );
    }
}

fn unauthorised(asked: &Asked) -> Reply {
    if asked.wants_json() {
        return web::json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({ "error": "the console's token is missing or wrong (Authorization: Bearer TOKEN)" }),
        );
    }
    web::html(
        StatusCode::UNAUTHORIZED,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Mailroom console</title></head><body>\
         <h1>401: open the console with its token</h1><p>Open the address <code>mailroom console</code> \
         (or <code>mailroom dev</code>) printed when it started: it ends in <code>?token=…</code>. \
         The token changes at every start.</p></body></html>"
            .to_owned(),
    )
}

/// The request's address without `token=`, for the landing redirect.
fn without_token(asked: &Asked) -> String {
    let rest: Vec<(&str, &str)> = asked
        .query
        .0
        .iter()
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let query = web::query_string(&rest);
    if query.is_empty() {
        asked.path.clone()
    } else {
        format!("{}?{query}", asked.path)
    }
}

/// Serves until the task is dropped.
pub async fn serve<S, M, W, X>(listener: TcpListener, console: Arc<Console<S, M, W, X>>)
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let console = console.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let console = console.clone();
                async move { Ok::<_, Infallible>(console.handle(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `mailroom console`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = args.target.store()?;
    let runtime = crate::backend::runtime()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&args.http)
            .await
            .with_context(|| format!("cannot listen on {} (--http)", args.http))?;
        let bound = listener.local_addr()?;
        let guard = Guard::new(&args.http, bound.port())?;
        let url = format!(
            "http://{}/?token={}",
            guard::reachable_authority(&args.http, bound),
            guard.token()
        );
        let warning = (!bound.ip().is_loopback()).then(|| {
            format!(
                "WARNING: the console listens on {bound}, which other machines can reach; it answers only \
                 requests addressed to {} that carry the token",
                guard.hosts().describe()
            )
        });
        match store {
            crate::backend::Store::Dev(data) => {
                let console = Arc::new(dev_console(&data, guard)?);
                announce(&url, warning.as_deref(), &console.source, args.open);
                tokio::spawn(serve(listener, console));
            }
            #[cfg(feature = "aws")]
            crate::backend::Store::Stack { table, names } => {
                let console = Arc::new(stack_console(table, names, guard).await?);
                announce(&url, warning.as_deref(), &console.source, args.open);
                tokio::spawn(serve(listener, console));
            }
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        Ok(ExitCode::SUCCESS)
    })
}

fn announce(url: &str, warning: Option<&str>, source: &str, open: bool) {
    if let Some(warning) = warning {
        eprintln!("{warning}");
    }
    println!("Mailroom console of {source}\nconsole: {url}\n(Ctrl-C stops it)");
    if open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        if let Err(error) = std::process::Command::new(opener).arg(url).spawn() {
            eprintln!("cannot open a browser ({opener}: {error}); open the address above");
        }
    }
}

/// The console over the dev store under `data` (for `mailroom console --data`).
pub fn dev_console(
    data: &std::path::Path,
    guard: Guard,
) -> anyhow::Result<
    Console<
        mailroom_local::sqlite::SqliteStore,
        mailroom_local::files::LocalMailStore,
        mailroom_http::HttpClient,
        mailroom_local::outbox::Outbox,
    >,
> {
    let store = crate::backend::existing_dev_store(data)?;
    let mail = mailroom_local::files::LocalMailStore::new(data.join("mail"));
    let outbox = mailroom_local::outbox::Outbox::new(data.join("outbox"));
    let inbound = Inbound::new(
        mail.clone(),
        store.clone(),
        crate::messages::http_client(mailroom_http::TargetPolicy::LOCAL)?,
        outbox.clone(),
        SystemClock,
        crate::messages::resend_config(
            &mailroom::settings::Settings::new(|name| std::env::var(name).ok()),
            Some(crate::local::DEV_FORWARD_FROM.to_owned()),
        )?,
    );
    Ok(Console::new(
        store.clone(),
        mail,
        inbound,
        crate::local::LOCAL_BUCKET.to_owned(),
        Requeue::Dev(store.clone()),
        Some(DevTraces { store, outbox }),
        guard,
        format!("dev store {}", data.display()),
    ))
}

/// The console over a deployed stack's table and bucket.
#[cfg(feature = "aws")]
async fn stack_console(
    table: String,
    names: crate::stack::StackNames,
    guard: Guard,
) -> anyhow::Result<
    Console<
        mailroom_aws::dynamo::DynamoStore,
        mailroom_aws::s3::S3MailStore,
        mailroom_http::HttpClient,
        mailroom_aws::ses::SesSender,
    >,
> {
    let Some(bucket) = names.bucket.clone() else {
        return Err(crate::exit::CliError::new(
            crate::exit::BAD_ARGUMENTS,
            "the console shows stored mail from the stack's bucket: give --bucket (or MAILROOM_BUCKET, or --stack)",
        )
        .into());
    };
    let sdk = crate::stack::sdk_config().await;
    let store = crate::stack::dynamo_store(&sdk, table.clone(), &names);
    let mail = mailroom_aws::s3::S3MailStore::new(mailroom_aws::s3_client(&sdk));
    let inbound = crate::messages::stack_inbound(&sdk, &store, &mail)?;
    let requeue = match &names.queue_url {
        Some(url) => Requeue::Queue(mailroom_aws::sqs::Queue::new(&sdk, url.clone())),
        None => Requeue::Unavailable(
            "redrive needs the inbound queue: give --stack, or set MAILROOM_QUEUE_URL",
        ),
    };
    let region = sdk
        .region()
        .map(ToString::to_string)
        .unwrap_or_else(|| "default region".to_owned());
    Ok(Console::new(
        store,
        mail,
        inbound,
        bucket,
        requeue,
        None,
        guard,
        format!("table {table} ({region})"),
    )
    .keeping_rows())
}

/// Now, as the console counts it.
fn now() -> chrono::DateTime<chrono::Utc> {
    SystemClock.now()
}
