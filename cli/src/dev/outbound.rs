//! `mailroom dev`'s send API: the stack's endpoint (`POST /api/v0.1/{account}/messages`, the same use
//! case) over the dev store, sending to the outbox; and what SES would say next, on request:
//! `POST /api/v0.1/{account}/messages/{id}/events` with `{"type": "delivery" | "bounce" | "soft_bounce" |
//! "complaint" | "open" | "click", "recipient"?, "link"?}` makes an SES event notification of that kind
//! (the documented shape) and hands it to the feedback use case, the Lambda's own: the record moves on, the
//! suppression list learns, the key's events URL gets its signed POST.

use chrono::{SecondsFormat, Utc};
use mailroom::budget::Deadline;
use mailroom::feedback::Outbound;
use mailroom::ports::{OutboundLog, StoreError, SuppressionMirror, SystemClock};
use mailroom::usecases::feedback::{Arrival, FeedbackConfig, Handled, Notifications};
use mailroom::usecases::send::{ApiAnswer, ApiRequest, SendApi, SendConfig, events_path};
use mailroom_http::{HttpClient, TargetPolicy};
use mailroom_local::files::LocalMailStore;
use mailroom_local::outbox::Outbox;
use mailroom_local::sqlite::SqliteStore;
use serde::Deserialize;
use serde_json::{Value, json};

use super::LOCAL_BUCKET;

/// SES's own suppression list has no stand-in locally: the dev store's list is the only one.
pub struct NoMirror;

impl SuppressionMirror for NoMirror {
    async fn mirror(&self, _: &mailroom::feedback::Suppression) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The send use case over the dev store.
pub type DevSend = SendApi<SqliteStore, LocalMailStore, Outbox, SystemClock>;

/// The feedback use case over the dev store.
pub type DevFeedback = Notifications<SqliteStore, HttpClient, NoMirror, SystemClock>;

/// Both, as `mailroom dev` serves them.
pub struct DevOutbound {
    send: DevSend,
    feedback: DevFeedback,
    store: SqliteStore,
}

impl DevOutbound {
    /// Builds both once; any From domain a key allows is accepted (no verified domains locally).
    pub fn new(
        store: &SqliteStore,
        mail: &LocalMailStore,
        outbox: &Outbox,
        retention_days: u32,
    ) -> anyhow::Result<DevOutbound> {
        let webhooks = HttpClient::new(std::time::Duration::from_secs(30), TargetPolicy::LOCAL)
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        let send = SendApi::new(
            store.clone(),
            mail.clone(),
            outbox.clone(),
            SystemClock,
            SendConfig {
                bucket: LOCAL_BUCKET.to_owned(),
                domains: Vec::new(),
                retention_days,
            },
        );
        let feedback = Notifications::new(
            store.clone(),
            webhooks,
            None,
            SystemClock,
            FeedbackConfig {
                retention_days,
                ..FeedbackConfig::default()
            },
        );
        Ok(DevOutbound {
            send,
            feedback,
            store: store.clone(),
        })
    }

    /// Answers a request under `/api/v0.1/`.
    pub async fn answer(&self, request: ApiRequest<'_>) -> ApiAnswer {
        match events_path(request.path) {
            Some((account, id)) => self.simulate(request, account, id).await,
            None => self.send.answer(request).await,
        }
    }

    async fn simulate(&self, request: ApiRequest<'_>, account: &str, id: &str) -> ApiAnswer {
        let error = |status: u16, text: String| ApiAnswer {
            status,
            body: json!({ "status": status, "error": text }),
        };
        if request.method != "POST" {
            return error(405, "only POST is answered here".to_owned());
        }
        let key = match self.send.authenticate(account, request.authorization).await {
            Ok(Some(key)) => key,
            Ok(None) => return error(401, "Unauthorized: a valid API key is required".to_owned()),
            Err(e) => return error(503, e.to_string()),
        };
        let wanted: Simulated = match serde_json::from_slice(request.body) {
            Ok(wanted) => wanted,
            Err(e) => return error(422, format!("the body is not an event: {e}")),
        };
        let record = match self.find(id).await {
            Ok(Some(record)) if record.key_id.as_deref() == Some(key.id.as_str()) => record,
            Ok(_) => return error(404, format!("no message {id} sent with this key")),
            Err(e) => return error(503, e.to_string()),
        };
        let notification = match notification(&record, &wanted) {
            Ok(notification) => notification,
            Err(text) => return error(422, text),
        };
        let text = notification.to_string();
        let arrival = Arrival {
            message: &text,
            sns_message_id: None,
            attempt: 1,
            first_seen: Utc::now(),
            deadline: Deadline::after(std::time::Duration::from_secs(60)),
        };
        match self.feedback.handle(&arrival).await {
            Ok(handled) => {
                let record = self.find(id).await.ok().flatten().unwrap_or(record);
                ApiAnswer {
                    status: 200,
                    body: json!({
                        "event": wanted.kind,
                        "handled": describe(&handled),
                        "record": record,
                    }),
                }
            }
            Err(e) => error(422, e.to_string()),
        }
    }

    /// A record by the API's id or by SES's (the outbox's) id.
    async fn find(&self, id: &str) -> Result<Option<Outbound>, StoreError> {
        let all = self.store.sent_between(None, None, 0).await?;
        Ok(all
            .into_iter()
            .find(|r| r.id.as_deref() == Some(id) || r.ses_message_id == id))
    }
}

fn describe(handled: &Handled) -> String {
    match handled {
        Handled::Done => "done".to_owned(),
        Handled::Ignored(why) => format!("ignored: {why}"),
        Handled::RetryAfter(wait) => {
            format!("an event POST failed; retried after {} s", wait.as_secs())
        }
        Handled::GaveUp => "an event POST was given up".to_owned(),
        Handled::HandBack => "handed back".to_owned(),
    }
}

/// What a developer asks SES to have said.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Simulated {
    /// `delivery`, `bounce`, `soft_bounce`, `complaint`, `open` or `click`.
    #[serde(rename = "type")]
    kind: String,
    /// Whom it is about (default: the first recipient).
    recipient: Option<String>,
    /// Clicks: the link (default: `https://example.com/`).
    link: Option<String>,
}

/// SES's name of the event, the field its object goes in, and the object, for `kind` about `recipient`.
fn event_object(
    kind: &str,
    recipient: &str,
    link: Option<&str>,
    feedback_id: &str,
) -> Result<(&'static str, &'static str, Value), String> {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    Ok(match kind {
        "delivery" => (
            "Delivery",
            "delivery",
            json!({
                "timestamp": now, "processingTimeMillis": 1200, "recipients": [recipient],
                "smtpResponse": "250 2.0.0 OK (mailroom dev)", "reportingMTA": "mailroom-dev",
            }),
        ),
        "bounce" | "soft_bounce" => {
            let permanent = kind == "bounce";
            let (status, diagnostic) = if permanent {
                ("5.1.1", "smtp; 550 5.1.1 user unknown (mailroom dev)")
            } else {
                ("4.2.2", "smtp; 452 4.2.2 mailbox full (mailroom dev)")
            };
            (
                "Bounce",
                "bounce",
                json!({
                    "bounceType": if permanent { "Permanent" } else { "Transient" },
                    "bounceSubType": if permanent { "General" } else { "MailboxFull" },
                    "bouncedRecipients": [{
                        "emailAddress": recipient, "action": "failed", "status": status, "diagnosticCode": diagnostic,
                    }],
                    "timestamp": now, "feedbackId": feedback_id, "reportingMTA": "dsn; mailroom-dev",
                }),
            )
        }
        "complaint" => (
            "Complaint",
            "complaint",
            json!({
                "complainedRecipients": [{ "emailAddress": recipient }], "timestamp": now,
                "feedbackId": feedback_id, "complaintFeedbackType": "abuse",
            }),
        ),
        "open" => (
            "Open",
            "open",
            json!({
                "timestamp": now, "ipAddress": "127.0.0.1", "userAgent": "mailroom dev",
            }),
        ),
        "click" => (
            "Click",
            "click",
            json!({
                "timestamp": now, "ipAddress": "127.0.0.1", "userAgent": "mailroom dev",
                "link": link.unwrap_or("https://example.com/"), "linkTags": {},
            }),
        ),
        other => {
            return Err(format!(
                "`{other}` is not an event; use delivery, bounce, soft_bounce, complaint, open or click"
            ));
        }
    })
}

/// The SES event notification (configuration-set event publishing) a simulated event stands for.
fn notification(record: &Outbound, wanted: &Simulated) -> Result<Value, String> {
    let recipients: Vec<String> = record
        .recipients
        .iter()
        .map(|r| r.address.clone())
        .collect();
    let recipient = match &wanted.recipient {
        Some(r) if recipients.iter().any(|a| a.eq_ignore_ascii_case(r)) => r.to_ascii_lowercase(),
        Some(r) => return Err(format!("{r} is not a recipient of this message")),
        None => recipients
            .first()
            .cloned()
            .ok_or("the message has no recipients")?,
    };
    let feedback_id = format!(
        "dev-{}-{}",
        record.ses_message_id,
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let mut tags =
        json!({ "ses:configuration-set": [record.configuration_set.clone().unwrap_or_default()] });
    if let Some(id) = &record.id {
        tags[mailroom::usecases::send::ID_TAG] = json!([id]);
    }
    let mail = json!({
        "timestamp": record.sent_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "source": record.from,
        "messageId": record.ses_message_id,
        "destination": recipients,
        "tags": tags,
        "commonHeaders": { "from": [record.from], "to": record.to, "subject": record.subject },
    });
    let (event_type, field, body) = event_object(
        &wanted.kind,
        &recipient,
        wanted.link.as_deref(),
        &feedback_id,
    )?;
    let mut notification = json!({ "eventType": event_type, "mail": mail });
    notification[field] = body;
    Ok(notification)
}
