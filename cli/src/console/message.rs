//! One message: its envelope and verdicts, headers, the payload as its route receives it (re-rendered from
//! the stored mail while it is kept; the records alone after), the HTML body in a sandboxed frame that
//! loads nothing remote until asked, attachments, every delivery with every attempt, and the actions.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use mailroom::format::{Format, Payload};
use mailroom::mail::envelope::{Envelope, KnownEnvelope, SesVerdicts};
use mailroom::mail::{self, Email};
use mailroom::ports::{FetchError, MailLocation, MailSender, StoreError, Webhooks};
use mailroom::record::Delivery;
use serde_json::{Value, json};

use super::guard::Guard;
use super::views::{self, or_dash, status_badge};
use super::web::{self, Asked, Reply, escape};
use super::{Console, ConsoleMail, ConsoleStore};

/// The most of a payload the page shows.
const PAYLOAD_SHOWN: usize = 256 * 1024;

/// What is known of a message.
pub struct Loaded {
    /// Its records, one per recipient and target.
    pub records: Vec<Delivery>,
    /// The stored original: `Ok(None)` once it is no longer kept.
    pub raw: Result<Option<Bytes>, String>,
}

impl Loaded {
    fn first(&self) -> Option<&Delivery> {
        self.records.first()
    }
}

/// Whether `id` can be a message id (SES's, or the dev server's hex): anything else is not looked up.
pub fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether a request for a message's frame (HTML body or a part) carries that message's signature.
pub fn frame_admitted(guard: &Guard, asked: &Asked) -> bool {
    let segments = asked.segments();
    match segments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["messages", id, "html"] | ["messages", id, "part", _] => {
            guard.frame_ok(id, asked.query.get("sig"))
        }
        _ => false,
    }
}

/// The message parsed with the envelope its records know.
fn parsed(loaded: &Loaded) -> Option<Result<(Email, Envelope), String>> {
    let raw = match &loaded.raw {
        Ok(Some(raw)) => raw.clone(),
        Ok(None) => return None,
        Err(error) => return Some(Err(error.clone())),
    };
    Some(match mail::parse(raw) {
        Ok(email) => {
            let recipients: Vec<String> = loaded
                .records
                .iter()
                .filter_map(|r| r.recipient.clone())
                .collect();
            let envelope = Envelope::recover(&email).with_known(KnownEnvelope {
                recipients: (!recipients.is_empty()).then_some(recipients),
                from: loaded.records.iter().find_map(|r| r.sender.clone()),
                ..KnownEnvelope::default()
            });
            Ok((email, envelope))
        }
        Err(error) => Err(format!("the stored mail cannot be read: {error}")),
    })
}

impl<S, M, W, X> Console<S, M, W, X>
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    /// The message's records and its stored original; `None` when there is no such message.
    pub async fn load(&self, id: &str) -> Result<Option<Loaded>, StoreError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        let records = self.records_of(id).await?;
        let Some(first) = records.first() else {
            return Ok(None);
        };
        let location = MailLocation {
            bucket: self.bucket.clone(),
            key: first.s3_key.clone(),
        };
        let raw = match self.mail.fetch(&location).await {
            Ok(raw) => Ok(Some(raw)),
            Err(FetchError::NotFound(_)) => Ok(None),
            Err(FetchError::Store(error)) => Err(error.to_string()),
        };
        Ok(Some(Loaded { records, raw }))
    }

    /// A message's records: read by their keys when the rows know them (a read per record instead of a
    /// query), else by the message's partition.
    async fn records_of(&self, id: &str) -> Result<Vec<Delivery>, StoreError> {
        let keys = self
            .rows
            .as_ref()
            .and_then(|rows| rows.read().ok()?.as_ref()?.keys_of(id));
        if let Some(keys) = keys {
            let read = futures_util::future::join_all(keys.iter().map(|k| self.store.get(k))).await;
            let mut records = Vec::new();
            for record in read {
                match record? {
                    Some(record) => records.push(record),
                    // Gone since the rows were read (erased, expired): the partition says what is left.
                    None => return self.store.message(id).await,
                }
            }
            records.sort_by(|a, b| a.delivery_id.cmp(&b.delivery_id));
            return Ok(records);
        }
        self.store.message(id).await
    }

    pub(super) async fn message_page(self: &Arc<Self>, asked: &Asked, id: &str) -> Reply {
        self.freshen_rows();
        let loaded = match self.load(id).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return self.not_found(),
            Err(error) => return self.store_error("reading the message", &error),
        };
        let csrf = self.guard.csrf();
        let subject = loaded
            .first()
            .and_then(|r| r.subject.clone())
            .unwrap_or_else(|| "(no subject)".to_owned());
        let frame = self.frame(&subject, "/messages", &csrf);
        let parsed = parsed(&loaded);
        let mut body = facts(&loaded, parsed.as_ref().and_then(|p| p.as_ref().ok()));
        body.push_str(&self.actions(&frame, &loaded, id).await);
        body.push_str(&self.deliveries(&loaded).await);
        match parsed {
            None => body.push_str(
                "<h2>Content</h2><p class=\"muted\" id=\"gone\">The stored original is no longer kept \
                 (RawRetentionDays): the records above are all that remains.</p>",
            ),
            Some(Err(error)) => body.push_str(&format!(
                "<h2>Content</h2><p class=\"error\">{}</p>",
                escape(&error)
            )),
            Some(Ok((email, envelope))) => {
                body.push_str(&self.content(id, &email, &envelope, &loaded).await);
            }
        }
        web::html(StatusCode::OK, frame.page(asked.query.get("notice"), &body))
    }

    /// The body, headers, attachments and payload of a message still kept.
    async fn content(
        &self,
        id: &str,
        email: &Email,
        envelope: &Envelope,
        loaded: &Loaded,
    ) -> String {
        let sig = self.guard.frame_signature(id);
        let base = format!("/messages/{}", web::encode(id));
        let mut html = String::new();
        if email.html.is_some() {
            html.push_str(&format!(
                "<h2>HTML body</h2><p class=\"muted\">Shown in a sandbox: no script runs, nothing remote \
                 loads. <a id=\"remote\" href=\"{base}/html?sig={sig}&amp;remote=1\" target=\"body\">Load \
                 remote content</a></p><iframe class=\"body\" name=\"body\" sandbox \
                 referrerpolicy=\"no-referrer\" src=\"{base}/html?sig={sig}\" title=\"HTML body\"></iframe>"
            ));
        }
        if let Some(plain) = &email.plain {
            html.push_str(&format!("<h2>Text body</h2><pre>{}</pre>", escape(plain)));
        }
        html.push_str(&attachments(email, &base, &sig));
        html.push_str(&headers(email));
        html.push_str(&self.payload(email, envelope, loaded).await);
        html
    }

    /// The payload the first delivery's route receives, in its format.
    async fn payload(&self, email: &Email, envelope: &Envelope, loaded: &Loaded) -> String {
        let route = loaded.first().and_then(|r| r.route.clone());
        let routes = self.routes().await;
        let format = routes
            .iter()
            .find(|r| Some(r.pattern.to_string()) == route)
            .and_then(|r| r.webhook.as_ref())
            .map_or(Format::Json, |w| w.format.for_url(&w.url));
        let envelope = match loaded.first().and_then(|r| r.recipient.as_deref()) {
            Some(recipient) => envelope.for_recipient(recipient),
            None => envelope.clone(),
        };
        let body = Payload::new(format, email, &envelope).to_vec();
        let shown = if !format.is_form() {
            serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned())
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        let mut cut = shown.len().min(PAYLOAD_SHOWN);
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        let more = if cut < shown.len() {
            format!("\n… {} bytes more", shown.len() - cut)
        } else {
            String::new()
        };
        format!(
            "<h2>Payload</h2><p class=\"muted\">As the route receives it: format <b>{}</b>, {} bytes, \
             re-rendered from the stored mail (attachments inline).</p><pre id=\"payload\">{}{}</pre>",
            format.as_str(),
            body.len(),
            escape(&shown[..cut]),
            escape(&more)
        )
    }

    /// `/api/messages/{id}`: the records, and the JSON payload its first recipient's webhook receives.
    pub(super) async fn message_api(&self, id: &str) -> Reply {
        let loaded = match self.load(id).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => {
                return web::json(
                    StatusCode::NOT_FOUND,
                    &json!({ "error": "no such message" }),
                );
            }
            Err(error) => {
                return web::json(
                    StatusCode::BAD_GATEWAY,
                    &json!({ "error": error.to_string() }),
                );
            }
        };
        let raw_size = loaded
            .raw
            .as_ref()
            .ok()
            .and_then(|r| r.as_ref().map(Bytes::len));
        let (payload, parse_error) = match parsed(&loaded) {
            Some(Ok((email, envelope))) => {
                let body = Payload::new(Format::Json, &email, &envelope).to_vec();
                (serde_json::from_slice::<Value>(&body).ok(), None)
            }
            Some(Err(error)) => (None, Some(error)),
            None => (
                None,
                Some("the stored original is no longer kept".to_owned()),
            ),
        };
        web::json(
            StatusCode::OK,
            &json!({
                "message_id": id,
                "received_at": loaded.first().map(|r| r.received_at),
                "raw_size": raw_size,
                "parse_error": parse_error,
                "records": loaded.records,
                "payload": payload,
            }),
        )
    }

    /// The HTML body alone, for the sandboxed frame: its policy lets nothing load but inline styles and
    /// `data:` images, unless `remote=1`.
    pub(super) async fn message_html(&self, asked: &Asked, id: &str) -> Reply {
        let html = match self.load(id).await {
            Ok(Some(loaded)) => match parsed(&loaded) {
                Some(Ok((email, _))) => email.html,
                _ => None,
            },
            _ => None,
        };
        let Some(html) = html else {
            return web::text(StatusCode::NOT_FOUND, "no HTML body\n");
        };
        let remote = asked.query.get("remote") == Some("1");
        let policy = if remote {
            "sandbox; default-src 'none'; style-src * 'unsafe-inline'; img-src * data:; font-src *; \
             frame-ancestors 'self'"
        } else {
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
        };
        let mut reply = web::html(StatusCode::OK, html);
        web::set_header(&mut reply, hyper::header::CONTENT_SECURITY_POLICY, policy);
        web::set_header(&mut reply, hyper::header::X_FRAME_OPTIONS, "SAMEORIGIN");
        reply
    }

    /// One attachment's bytes, as a download (never shown inline: it is the sender's content).
    pub(super) async fn message_part(&self, id: &str, n: &str) -> Reply {
        let attachment = match (self.load(id).await, n.parse::<usize>()) {
            (Ok(Some(loaded)), Ok(n)) => match parsed(&loaded) {
                Some(Ok((email, _))) => email.attachments.into_iter().nth(n),
                _ => None,
            },
            _ => None,
        };
        let Some(attachment) = attachment else {
            return web::text(StatusCode::NOT_FOUND, "no such attachment\n");
        };
        let name = attachment
            .file_name
            .clone()
            .unwrap_or_else(|| format!("part-{n}"));
        let mut reply = web::reply(
            StatusCode::OK,
            "application/octet-stream",
            attachment.content,
        );
        web::set_header(
            &mut reply,
            hyper::header::CONTENT_DISPOSITION,
            &format!(
                "attachment; filename*=UTF-8''{}",
                web::encode(&name).replace('+', "%20")
            ),
        );
        reply
    }

    /// Every delivery of the message with every attempt.
    async fn deliveries(&self, loaded: &Loaded) -> String {
        let mut html = String::from("<h2>Deliveries</h2>");
        for record in &loaded.records {
            html.push_str(&self.delivery(record).await);
        }
        html
    }

    async fn delivery(&self, record: &Delivery) -> String {
        let (direction, target) = super::messages::direction(&record.target);
        let forwarded = match record.outbound_id.as_deref() {
            Some(id) => match self.store.outbound(id).await {
                Ok(Some(outbound)) => format!(
                    "<dt>Forwarded copy</dt><dd>{} · SES id {}</dd>",
                    escape(outbound.status.as_str()),
                    escape(id)
                ),
                _ => format!("<dt>Forwarded copy</dt><dd>SES id {}</dd>", escape(id)),
            },
            None => String::new(),
        };
        let mut html = format!(
            "<section class=\"delivery\" data-target=\"{t}\"><h3>{status} {to} → {t}</h3><dl class=\"facts\">\
             <dt>Direction</dt><dd>{direction}</dd><dt>Route</dt><dd>{route}</dd>\
             <dt>Attempts</dt><dd>{attempts}</dd><dt>webhook-id</dt><dd>{hook}</dd>{error}{forwarded}</dl>",
            status = status_badge(record.status),
            to = or_dash(record.recipient.as_deref()),
            t = escape(&target),
            route = or_dash(record.route.as_deref()),
            attempts = record.attempts,
            hook = or_dash(record.webhook_id.as_deref()),
            error = record
                .error
                .as_deref()
                .map(|e| format!("<dt>Why</dt><dd>{}</dd>", escape(e)))
                .unwrap_or_default(),
        );
        html.push_str(&attempts(record));
        html.push_str("</section>");
        html
    }
}

/// Envelope, verdicts and the message's facts.
fn facts(loaded: &Loaded, parsed: Option<&(Email, Envelope)>) -> String {
    let Some(first) = loaded.first() else {
        return String::new();
    };
    let recipients: Vec<&str> = loaded
        .records
        .iter()
        .filter_map(|r| r.recipient.as_deref())
        .collect();
    let size = match &loaded.raw {
        Ok(Some(raw)) => format!("{} bytes", raw.len()),
        Ok(None) => "no longer kept".to_owned(),
        Err(error) => format!("cannot be read: {error}"),
    };
    let envelope = parsed.map(|(_, e)| e);
    let header = |name: &str| {
        parsed.and_then(|(email, _)| {
            email
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.clone())
        })
    };
    format!(
        "<dl class=\"facts\" id=\"envelope\"><dt>Message id</dt><dd>{id}</dd><dt>Received</dt><dd>{at}</dd>\
         <dt>Envelope sender</dt><dd>{sender}</dd><dt>From</dt><dd>{from}</dd><dt>Recipients</dt><dd>{to}</dd>\
         <dt>Sender IP</dt><dd>{ip}</dd><dt>Message-ID</dt><dd>{mid}</dd><dt>Stored mail</dt><dd>{size}</dd>\
         <dt>Verdicts</dt><dd>{verdicts}</dd><dt>TLS</dt><dd>{tls}</dd></dl>",
        id = escape(&first.message_id),
        at = views::time(first.received_at),
        sender = or_dash(first.sender.as_deref()),
        from = or_dash(header("From").as_deref()),
        to = or_dash(Some(&recipients.join(", "))),
        ip = or_dash(first.sender_ip.as_deref()),
        mid = or_dash(first.message_id_header.as_deref()),
        size = escape(&size),
        verdicts = verdicts(envelope.and_then(|e| e.ses.as_ref())),
        tls = match envelope.and_then(|e| e.tls) {
            Some(true) => "yes",
            Some(false) => "no",
            None => "–",
        },
    )
}

fn verdicts(ses: Option<&SesVerdicts>) -> String {
    let Some(ses) = ses else {
        return "–".to_owned();
    };
    [
        ("spam", ses.spam),
        ("virus", ses.virus),
        ("SPF", ses.spf),
        ("DKIM", ses.dkim),
        ("DMARC", ses.dmarc),
    ]
    .iter()
    .filter_map(|(name, verdict)| verdict.map(|v| format!("{name} {v:?}")))
    .collect::<Vec<_>>()
    .join(" · ")
}

/// Every attempt: time, answer's status, outcome, duration, the start of the answer.
fn attempts(record: &Delivery) -> String {
    if record.history.is_empty() {
        return "<p class=\"muted\">No attempt.</p>".to_owned();
    }
    let mut html = String::from(
        "<table class=\"attempts\"><thead><tr><th>#</th><th>At</th><th>Answer</th><th>Outcome</th>\
         <th>Took</th><th>Start of the answer</th></tr></thead><tbody>",
    );
    let last = record.history.len() - 1;
    for (n, attempt) in record.history.iter().enumerate() {
        // The record keeps the last answer's first 2 KiB; each attempt its first bytes.
        let answer = if n == last {
            record
                .response_body
                .as_deref()
                .or(attempt.response_excerpt.as_deref())
        } else {
            attempt.response_excerpt.as_deref()
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td><pre>{}</pre>{}</td></tr>",
            n + 1,
            views::time(attempt.at),
            attempt
                .status_code
                .map_or_else(|| "–".to_owned(), |c| c.to_string()),
            status_badge(attempt.outcome),
            attempt.ms,
            escape(answer.unwrap_or("")),
            attempt
                .error
                .as_deref()
                .map(|e| format!("<span class=\"muted\">{}</span>", escape(e)))
                .unwrap_or_default(),
        ));
    }
    html.push_str("</tbody></table>");
    html
}

fn attachments(email: &Email, base: &str, sig: &str) -> String {
    if email.attachments.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        "<h2>Attachments</h2><table id=\"attachments\"><thead><tr><th>Name</th><th>Type</th><th>Size</th>\
         <th>Disposition</th></tr></thead><tbody>",
    );
    for (n, attachment) in email.attachments.iter().enumerate() {
        let name = attachment
            .file_name
            .clone()
            .unwrap_or_else(|| format!("part-{n}"));
        html.push_str(&format!(
            "<tr><td><a href=\"{base}/part/{n}?sig={sig}\" download>{}</a></td><td>{}</td><td>{} bytes</td>\
             <td>{}</td></tr>",
            escape(&name),
            escape(&attachment.content_type),
            attachment.content.len(),
            attachment.disposition.as_str(),
        ));
    }
    html.push_str("</tbody></table>");
    html
}

fn headers(email: &Email) -> String {
    let mut html = String::from("<h2>Headers</h2><table id=\"headers\"><tbody>");
    for header in &email.headers {
        html.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(&header.name),
            escape(&header.value)
        ));
    }
    html.push_str("</tbody></table>");
    html
}
