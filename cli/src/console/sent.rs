//! Sent mail: the send API's messages and mail sent around it through the stack's configuration sets,
//! newest first, and one of them with each recipient's status, opens, clicks, what SES said, and the
//! stored copy. Forwards are on the messages pages, with the message they forward.

use hyper::StatusCode;
use mailroom::feedback::{Origin, Outbound, OutboundStatus};
use mailroom::ports::{MailLocation, MailSender, Webhooks};

use super::views::{or_dash, time};
use super::web::{self, Asked, Reply, escape};
use super::{Console, ConsoleMail, ConsoleStore};

/// Rows a page of sent mail shows.
const PAGE: usize = 50;

/// An outbound status as a coloured word.
fn badge(status: OutboundStatus) -> String {
    format!(
        "<span class=\"status s-{0}\">{0}</span>",
        escape(status.as_str())
    )
}

/// Who sent it: the key, or how.
fn sender(record: &Outbound) -> String {
    match (&record.key_name, record.origin) {
        (Some(key), _) => format!("key {}", escape(key)),
        (None, Origin::Ses) => "SES, around the API".to_owned(),
        (None, Origin::Api) => "the API".to_owned(),
        (None, Origin::Forward) => "a forward".to_owned(),
    }
}

fn engagement(record: &Outbound) -> String {
    if !record.tracked && record.opens.is_none() && record.clicks.is_none() {
        return "untracked".to_owned();
    }
    format!(
        "{} opens, {} clicks",
        record.opens.as_ref().map_or(0, |o| o.count),
        record.clicks.as_ref().map_or(0, |c| c.count)
    )
}

impl<S, M, W, X> Console<S, M, W, X>
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    /// GET `/sent`: the newest sent messages.
    pub(super) async fn sent_page(&self, asked: &Asked) -> Reply {
        let csrf = self.guard.csrf();
        let frame = self.frame("Sent", "/sent", &csrf);
        let records = match self.store.sent_between(None, None, PAGE).await {
            Ok(records) => records,
            Err(error) => return self.store_error("reading sent mail", &error),
        };
        let mut body = String::from(
            "<p class=\"muted\">Messages of the send API, and mail sent through SES with the stack's \
             configuration sets. Forwards are listed with the messages they forward.</p>\
             <table id=\"sent\"><thead><tr><th>Sent</th><th>From</th><th>To</th><th>Subject</th>\
             <th>Status</th><th>Opens and clicks</th><th>By</th></tr></thead><tbody>",
        );
        for record in &records {
            let to: Vec<&str> = record
                .to
                .iter()
                .chain(&record.cc)
                .map(String::as_str)
                .collect();
            body.push_str(&format!(
                "<tr data-id=\"{id}\"><td><a href=\"/sent/{id}\">{}</a></td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(record.sent_at),
                or_dash(record.from.as_deref()),
                escape(&to.join(", ")),
                or_dash(record.subject.as_deref()),
                badge(record.status),
                engagement(record),
                sender(record),
                id = escape(&web::encode(&record.ses_message_id)),
            ));
        }
        body.push_str("</tbody></table>");
        if records.is_empty() {
            body.push_str(
                "<p class=\"muted\" id=\"no-sent\">Nothing sent in the last 60 days.</p>",
            );
        }
        web::html(StatusCode::OK, frame.page(asked.query.get("notice"), &body))
    }

    /// GET `/sent/{id}`: one sent message.
    pub(super) async fn sent_message_page(&self, id: &str) -> Reply {
        let record = match self.store.outbound(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return self.not_found(),
            Err(error) => return self.store_error("reading a sent message", &error),
        };
        let csrf = self.guard.csrf();
        let title = record
            .subject
            .clone()
            .unwrap_or_else(|| "(no subject)".to_owned());
        let frame = self.frame(&title, "/sent", &csrf);
        let mut body = format!(
            "<dl class=\"facts\"><dt>Status</dt><dd>{}</dd><dt>Sent</dt><dd>{}</dd><dt>From</dt><dd>{}</dd>\
             <dt>To</dt><dd>{}</dd><dt>Cc</dt><dd>{}</dd><dt>Tags</dt><dd>{}</dd><dt>By</dt><dd>{}</dd>\
             <dt>API id</dt><dd>{}</dd><dt>SES message id</dt><dd>{}</dd><dt>Configuration set</dt><dd>{}</dd>\
             <dt>Opens and clicks</dt><dd>{}</dd><dt>Error</dt><dd>{}</dd></dl>",
            badge(record.status),
            time(record.sent_at),
            or_dash(record.from.as_deref()),
            escape(&record.to.join(", ")),
            or_dash(Some(&record.cc.join(", "))),
            or_dash(Some(&record.tags.join(", "))),
            sender(&record),
            or_dash(record.id.as_deref()),
            escape(&record.ses_message_id),
            or_dash(record.configuration_set.as_deref()),
            engagement(&record),
            or_dash(record.error.as_deref()),
        );
        body.push_str(&recipients_table(&record));
        body.push_str(&engagement_tables(&record));
        body.push_str(&history_table(&record));
        if record.s3_key.is_some() {
            body.push_str(&format!(
                "<p><a href=\"/sent/{}/raw\" download>Download what was sent</a></p>",
                escape(&web::encode(&record.ses_message_id))
            ));
        }
        web::html(StatusCode::OK, frame.page(None, &body))
    }

    /// GET `/sent/{id}/raw`: the stored copy, while it is kept.
    pub(super) async fn sent_raw(&self, id: &str) -> Reply {
        let key = match self.store.outbound(id).await {
            Ok(Some(Outbound {
                s3_key: Some(key), ..
            })) => key,
            Ok(_) => return self.not_found(),
            Err(error) => return self.store_error("reading a sent message", &error),
        };
        let location = MailLocation {
            bucket: self.bucket.clone(),
            key,
        };
        match self.mail.fetch(&location).await {
            Ok(raw) => {
                let mut reply = web::reply(StatusCode::OK, "message/rfc822", raw);
                web::set_header(
                    &mut reply,
                    hyper::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"sent.eml\"",
                );
                reply
            }
            Err(_) => self.not_found(),
        }
    }
}

fn recipients_table(record: &Outbound) -> String {
    let mut html = String::from(
        "<h2>Recipients</h2><table id=\"recipients\"><thead><tr><th>Address</th><th>Status</th>\
         <th>Since</th><th>Detail</th></tr></thead><tbody>",
    );
    for r in &record.recipients {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.address),
            badge(r.status),
            time(r.at),
            or_dash(r.detail.as_deref())
        ));
    }
    html.push_str("</tbody></table>");
    html
}

fn engagement_tables(record: &Outbound) -> String {
    let mut html = String::new();
    if let Some(opens) = &record.opens {
        html.push_str(&format!(
            "<h2>Opens</h2><p id=\"opens\">{} (first {}, last {})</p>",
            opens.count,
            opens.first.map_or_else(|| "–".to_owned(), time),
            opens.last.map_or_else(|| "–".to_owned(), time),
        ));
    }
    if let Some(clicks) = &record.clicks {
        html.push_str("<h2>Clicks</h2><table id=\"clicks\"><thead><tr><th>Link</th><th>Clicks</th></tr></thead><tbody>");
        for link in &clicks.links {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&link.url),
                link.count
            ));
        }
        html.push_str("</tbody></table>");
    }
    html
}

fn history_table(record: &Outbound) -> String {
    let mut html = String::from(
        "<h2>What SES said</h2><table id=\"history\"><thead><tr><th>When</th><th>Event</th>\
         <th>Recipient</th><th>Status</th><th>Diagnostic</th></tr></thead><tbody>",
    );
    for event in &record.history {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(event.at),
            escape(&event.event),
            or_dash(event.recipient.as_deref()),
            or_dash(event.smtp_status.as_deref()),
            or_dash(event.diagnostic.as_deref()),
        ));
    }
    html.push_str("</tbody></table>");
    html
}
