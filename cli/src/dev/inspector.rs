//! The inspector of `mailroom dev`: a plain HTML page of messages and a JSON API, on localhost.
//!
//! - `GET /` lists messages; `GET /messages/{id}` shows one.
//! - `GET /api/messages` is the list as JSON; `GET /api/messages/{id}` one message with its records (every
//!   attempt and answer) and the JSON payload its first recipient's webhook receives.
//! - `GET /l/{token}` serves a stored attachment a signed link names.
//!
//! It answers only requests addressed to a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or the name
//! given with `--http`; any other `Host` gets 421. A web page the developer visits could otherwise point
//! a name of its own at 127.0.0.1 (DNS rebinding) and read their mail. Links are the exception: their
//! signed token is the credential, as on the stack's link endpoint, and the app following one may know
//! the machine by another name.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope, envelope::KnownEnvelope};
use mailroom::ports::{MailLocation, MailStore, RecordFilter, RecordQuery};
use mailroom::record::Delivery;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{Dev, LOCAL_BUCKET};

/// Most messages listed.
const LISTED: usize = 200;

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, dev: Arc<Dev>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let dev = dev.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let dev = dev.clone();
                async move { Ok::<_, Infallible>(route(&dev, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn json_reply(status: StatusCode, value: &Value) -> Reply {
    reply(
        status,
        "application/json",
        serde_json::to_vec_pretty(value).unwrap_or_default(),
    )
}

fn not_found() -> Reply {
    reply(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "not found\n",
    )
}

/// The names the inspector answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// The host of `--http` when it names this machine in a way other than loopback.
    given: Option<String>,
}

impl AllowedHosts {
    /// Loopback names, and the host part of `--http ADDR` unless it is an unspecified address
    /// (`0.0.0.0`, `[::]`), which no request is addressed to.
    pub fn new(http: &str) -> AllowedHosts {
        let host = normalise_host(host_part(http));
        let unspecified = host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        AllowedHosts {
            given: (!host.is_empty() && !unspecified && !is_loopback_name(&host)).then_some(host),
        }
    }

    /// Whether a request addressed to `authority` (`host[:port]`, as the `Host` header has it) is ours.
    pub fn allows(&self, authority: &str) -> bool {
        let host = normalise_host(host_part(authority));
        is_loopback_name(&host) || self.given.as_deref() == Some(host.as_str())
    }

    /// The names, for the warning printed at start.
    pub fn describe(&self) -> String {
        match &self.given {
            Some(given) => format!("localhost, 127.0.0.1, [::1] or {given}"),
            None => "localhost, 127.0.0.1 or [::1]".to_owned(),
        }
    }
}

/// The host of `host[:port]`, `[v6][:port]` or a bare IPv6 address.
fn host_part(authority: &str) -> &str {
    let authority = authority.trim();
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address, no port.
        Some((host, _)) if !host.contains(':') => host,
        _ => authority,
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `localhost` and its subdomains (RFC 6761: always this machine), and loopback addresses.
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` of the inspector as it should appear in links and in the banner: the name given with
/// `--http`, or for an unspecified address (`0.0.0.0`) the loopback address, which the inspector answers.
pub fn reachable_authority(http: &str, bound: SocketAddr) -> String {
    let host = host_part(http);
    let unspecified = host
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .map_or(host.is_empty(), |ip| ip.is_unspecified());
    let port = bound.port();
    match (unspecified, bound.ip()) {
        (true, IpAddr::V6(_)) => format!("[::1]:{port}"),
        (true, IpAddr::V4(_)) => format!("127.0.0.1:{port}"),
        (false, IpAddr::V6(ip)) if host.parse::<IpAddr>().is_ok() => format!("[{ip}]:{port}"),
        (false, ip) if host.parse::<IpAddr>().is_ok() => format!("{ip}:{port}"),
        (false, _) => format!("{host}:{port}"),
    }
}

/// The host a request was addressed to: the request target's authority, or the `Host` header.
fn addressed_to(request: &Request<Incoming>) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn route(dev: &Dev, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_owned();
    let is_link = path.starts_with(mailroom::deliver::links::LINK_PATH_PREFIX);
    let ours = addressed_to(&request).is_some_and(|host| dev.inspector_hosts.allows(&host));
    if !is_link && !ours {
        return reply(
            StatusCode::MISDIRECTED_REQUEST,
            "text/plain; charset=utf-8",
            "421 Misdirected Request: the mailroom dev inspector answers only requests addressed to \
             localhost, 127.0.0.1, [::1] or the name given with --http\n",
        );
    }
    if request.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET only\n",
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => match messages(dev).await {
            Ok(list) => reply(StatusCode::OK, "text/html; charset=utf-8", list_page(&list)),
            Err(error) => server_error(&error),
        },
        ["messages", id] => match message(dev, id).await {
            Ok(Some(detail)) => reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                detail_page(&detail),
            ),
            Ok(None) => not_found(),
            Err(error) => server_error(&error),
        },
        ["api", "messages"] => match messages(dev).await {
            Ok(list) => json_reply(StatusCode::OK, &Value::Array(list)),
            Err(error) => server_error(&error),
        },
        ["api", "messages", id] => match message(dev, id).await {
            Ok(Some(detail)) => json_reply(StatusCode::OK, &detail),
            Ok(None) => not_found(),
            Err(error) => server_error(&error),
        },
        ["l", token] => match dev.verify_link(token) {
            Some(key) => {
                let location = MailLocation {
                    bucket: LOCAL_BUCKET.to_owned(),
                    key,
                };
                match dev.mail.fetch(&location).await {
                    Ok(bytes) => reply(StatusCode::OK, "application/octet-stream", bytes),
                    Err(_) => not_found(),
                }
            }
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn server_error(error: &str) -> Reply {
    json_reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({ "error": error }),
    )
}

/// Messages, newest first, each with its deliveries.
async fn messages(dev: &Dev) -> Result<Vec<Value>, String> {
    let records = dev
        .store
        .list(&RecordFilter {
            limit: LISTED * 4,
            ..RecordFilter::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut grouped: BTreeMap<(chrono::DateTime<chrono::Utc>, String), Vec<Delivery>> =
        BTreeMap::new();
    for record in records {
        grouped
            .entry((record.received_at, record.message_id.clone()))
            .or_default()
            .push(record);
    }
    Ok(grouped
        .into_iter()
        .rev()
        .take(LISTED)
        .map(|((received_at, id), deliveries)| {
            let first = deliveries.first();
            json!({
                "message_id": id,
                "received_at": received_at,
                "sender": first.and_then(|d| d.sender.clone()),
                "subject": first.and_then(|d| d.subject.clone()),
                "deliveries": deliveries.iter().map(|d| json!({
                    "recipient": d.recipient,
                    "target": d.target,
                    "status": d.status,
                    "attempts": d.attempts,
                    "response_status": d.response_status,
                })).collect::<Vec<_>>(),
            })
        })
        .collect())
}

/// One message: its records and the payload its first recipient's webhook receives.
async fn message(dev: &Dev, id: &str) -> Result<Option<Value>, String> {
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let records = dev.store.message(id).await.map_err(|e| e.to_string())?;
    let Some(first) = records.first() else {
        return Ok(None);
    };
    let location = MailLocation {
        bucket: LOCAL_BUCKET.to_owned(),
        key: first.s3_key.clone(),
    };
    let (payload, raw_size, parse_error) = match dev.mail.fetch(&location).await {
        Ok(raw) => {
            let size = raw.len();
            match mail::parse(raw) {
                Ok(email) => {
                    let recipients: Vec<String> =
                        records.iter().filter_map(|r| r.recipient.clone()).collect();
                    let envelope = Envelope::recover(&email).with_known(KnownEnvelope {
                        recipients: (!recipients.is_empty()).then_some(recipients),
                        ..KnownEnvelope::default()
                    });
                    let body = Payload::new(Format::Json, &email, &envelope).to_vec();
                    (
                        serde_json::from_slice::<Value>(&body).ok(),
                        Some(size),
                        None,
                    )
                }
                Err(error) => (None, Some(size), Some(error.to_string())),
            }
        }
        Err(error) => (None, None, Some(error.to_string())),
    };
    Ok(Some(json!({
        "message_id": id,
        "received_at": first.received_at,
        "raw_size": raw_size,
        "parse_error": parse_error,
        "records": records,
        "payload": payload,
    })))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}\
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:40em}.delivered{color:#080}.retrying{color:#a60}\
.rejected,.failed{color:#b00}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\
<body><h1>{}</h1>{body}</body></html>",
        escape(title),
        escape(title)
    )
}

fn list_page(messages: &[Value]) -> String {
    if messages.is_empty() {
        return page(
            "mailroom dev",
            "<p>No messages yet. Send one to the SMTP address.</p>",
        );
    }
    let mut rows = String::new();
    for message in messages {
        let id = text(&message["message_id"]);
        let deliveries = message["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let statuses: Vec<String> = deliveries
            .iter()
            .map(|d| {
                let status = text(&d["status"]);
                format!(
                    "<span class=\"{0}\">{0}</span> {1}",
                    escape(&status),
                    escape(&text(&d["recipient"]))
                )
            })
            .collect();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><a href=\"/messages/{}\">{}</a></td><td>{}</td></tr>",
            escape(&text(&message["received_at"])),
            escape(&text(&message["sender"])),
            escape(&id),
            escape(&text(&message["subject"])),
            statuses.join("<br>"),
        ));
    }
    page(
        "mailroom dev",
        &format!(
            "<table><tr><th>received</th><th>from</th><th>subject</th><th>deliveries</th></tr>{rows}</table>"
        ),
    )
}

fn detail_page(detail: &Value) -> String {
    let id = text(&detail["message_id"]);
    let mut body = format!(
        "<p><a href=\"/\">all messages</a> · <a href=\"/api/messages/{}\">JSON</a> · received {} · {} bytes</p>",
        escape(&id),
        escape(&text(&detail["received_at"])),
        escape(&text(&detail["raw_size"])),
    );
    if let Some(error) = detail["parse_error"].as_str() {
        body.push_str(&format!("<p class=\"failed\">{}</p>", escape(error)));
    }
    for record in detail["records"].as_array().cloned().unwrap_or_default() {
        let status = text(&record["status"]);
        body.push_str(&format!(
            "<h2>{} → {}</h2><p><span class=\"{}\">{}</span> after {} attempt(s){}</p>",
            escape(&text(&record["recipient"])),
            escape(&text(&record["target"])),
            escape(&status),
            escape(&status),
            escape(&text(&record["attempts"])),
            record["error"]
                .as_str()
                .map(|e| format!(": {}", escape(e)))
                .unwrap_or_default(),
        ));
        let mut rows = String::new();
        for attempt in record["history"].as_array().cloned().unwrap_or_default() {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td><code>{}</code></td></tr>",
                escape(&text(&attempt["at"])),
                escape(&text(&attempt["outcome"])),
                escape(&text(&attempt["status_code"])),
                escape(&text(&attempt["ms"])),
                escape(&text(&attempt["response_excerpt"])),
            ));
        }
        if !rows.is_empty() {
            body.push_str(&format!(
                "<table><tr><th>attempt</th><th>outcome</th><th>HTTP</th><th>time</th><th>answer</th></tr>{rows}</table>"
            ));
        }
    }
    if detail["payload"].is_object() {
        let pretty = serde_json::to_string_pretty(&detail["payload"]).unwrap_or_default();
        body.push_str(&format!(
            "<h2>Payload (json)</h2><pre>{}</pre>",
            escape(&pretty)
        ));
    }
    page(&format!("message {id}"), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_and_the_given_name_are_answered() {
        let default = AllowedHosts::new("127.0.0.1:8025");
        for ours in [
            "127.0.0.1:8025",
            "127.0.0.1",
            "127.1.2.3:8025",
            "localhost:8025",
            "LOCALHOST.",
            "app.localhost:8025",
            "[::1]:8025",
        ] {
            assert!(default.allows(ours), "{ours}");
        }
        for foreign in [
            "rebind.attacker.example",
            "rebind.attacker.example:8025",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:8025",
            "192.168.1.5:8025",
            "0.0.0.0:8025",
            "",
        ] {
            assert!(!default.allows(foreign), "{foreign}");
        }
        let named = AllowedHosts::new("devbox.lan:8025");
        assert!(named.allows("devbox.lan:8025") && named.allows("DevBox.lan"));
        assert!(!named.allows("other.lan:8025"));
        let everywhere = AllowedHosts::new("0.0.0.0:8027");
        assert!(!everywhere.allows("0.0.0.0:8027"));
        assert!(everywhere.allows("127.0.0.1:8027"));
        assert!(AllowedHosts::new("[::]:8025").allows("[::1]:8025"));
    }

    #[test]
    fn links_name_a_host_that_answers() {
        let bound = |text: &str| {
            text.parse::<SocketAddr>()
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
        };
        assert_eq!(
            reachable_authority("0.0.0.0:8027", bound("0.0.0.0:8027")),
            "127.0.0.1:8027"
        );
        assert_eq!(
            reachable_authority("[::]:8027", bound("[::]:8027")),
            "[::1]:8027"
        );
        assert_eq!(
            reachable_authority("127.0.0.1:0", bound("127.0.0.1:41234")),
            "127.0.0.1:41234"
        );
        assert_eq!(
            reachable_authority("devbox.lan:8025", bound("192.168.1.5:8025")),
            "devbox.lan:8025"
        );
        assert_eq!(
            reachable_authority("192.168.1.5:8025", bound("192.168.1.5:8025")),
            "192.168.1.5:8025"
        );
    }
}
