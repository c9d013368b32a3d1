//! The events the inbound function accepts, read with only the fields it needs so events from AWS, from
//! `sam local` and from emulators (moto, LocalStack) all work.

use chrono::{DateTime, Utc};
use mailroom::mail::envelope::{KnownEnvelope, SesVerdicts, Verdict};
use mailroom::ports::MailLocation;
use mailroom::usecases::inbound::Received;
use serde::Deserialize;
use serde_json::Value;

/// What one message (an SQS body, an SNS message, an S3 record) asks for.
#[derive(Debug, Clone)]
pub enum Work {
    /// Deliver a stored message.
    Mail(Box<Received>),
    /// Several stored messages (an S3 event with several records inside one SQS body).
    Many(Vec<Received>),
    /// Nothing to do, with the reason (S3's `s3:TestEvent`, an SNS subscription confirmation).
    Ignore(&'static str),
}

impl Work {
    /// The messages to deliver; an ignored event is logged with its reason and has none.
    pub fn into_messages(self) -> Vec<Received> {
        match self {
            Work::Mail(received) => vec![*received],
            Work::Many(all) => all,
            Work::Ignore(why) => {
                tracing::info!(why, "event acknowledged and ignored");
                Vec::new()
            }
        }
    }
}

/// The object SES writes under the rule's prefix when the receipt rule is created (and the message id of
/// the notification announcing it): a check that SES may write to the bucket, not mail.
pub const SES_SETUP_NOTIFICATION: &str = "AMAZON_SES_SETUP_NOTIFICATION";

const SETUP_IGNORED: &str =
    "SES's setup notification (written when the receipt rule was created), not mail";

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// Reads one SQS body, SNS message or direct event: an SNS envelope around an SES notification, an SES
/// notification, an S3 event, or S3's test event.
pub fn read_body(body: &str, first_seen: DateTime<Utc>) -> Result<Work, Malformed> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| Malformed(format!("the body is not JSON: {e}")))?;
    read_value(&value, first_seen)
}

/// Like [`read_body`], for a parsed value.
pub fn read_value(value: &Value, first_seen: DateTime<Utc>) -> Result<Work, Malformed> {
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Work::Ignore("S3 test event"));
    }
    match value.get("Type").and_then(Value::as_str) {
        Some("Notification") => {
            let message = value
                .get("Message")
                .and_then(Value::as_str)
                .ok_or_else(|| Malformed("an SNS notification without a Message".to_owned()))?;
            return read_body(message, first_seen);
        }
        Some("SubscriptionConfirmation") | Some("UnsubscribeConfirmation") => {
            return Ok(Work::Ignore("SNS subscription message"));
        }
        _ => {}
    }
    if value.get("notificationType").is_some() || value.get("receipt").is_some() {
        if value.pointer("/mail/messageId").and_then(Value::as_str) == Some(SES_SETUP_NOTIFICATION)
        {
            return Ok(Work::Ignore(SETUP_IGNORED));
        }
        return ses_notification(value, first_seen).map(|r| Work::Mail(Box::new(r)));
    }
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        let mut received = records
            .iter()
            .map(|record| s3_record(record, first_seen))
            .collect::<Result<Vec<_>, _>>()?;
        let announced = received.len();
        received.retain(|r| r.location.message_id() != SES_SETUP_NOTIFICATION);
        return Ok(match received.len() {
            0 if announced > 0 => Work::Ignore(SETUP_IGNORED),
            1 => Work::Mail(Box::new(
                received
                    .into_iter()
                    .next()
                    .ok_or_else(|| Malformed("empty".into()))?,
            )),
            _ => Work::Many(received),
        });
    }
    Err(Malformed(
        "neither an SES notification, an S3 event nor an SNS notification".to_owned(),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesNotification {
    #[serde(default)]
    notification_type: Option<String>,
    mail: SesMail,
    receipt: SesReceipt,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesMail {
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesReceipt {
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    spam_verdict: Option<SesVerdict>,
    #[serde(default)]
    virus_verdict: Option<SesVerdict>,
    #[serde(default)]
    spf_verdict: Option<SesVerdict>,
    #[serde(default)]
    dkim_verdict: Option<SesVerdict>,
    #[serde(default)]
    dmarc_verdict: Option<SesVerdict>,
    action: SesAction,
}

#[derive(Deserialize)]
struct SesVerdict {
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesAction {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    bucket_name: Option<String>,
    #[serde(default)]
    object_key: Option<String>,
    #[serde(default)]
    object_key_prefix: Option<String>,
}

fn ses_notification(value: &Value, first_seen: DateTime<Utc>) -> Result<Received, Malformed> {
    let notification: SesNotification = serde_json::from_value(value.clone())
        .map_err(|e| Malformed(format!("not an SES receipt notification: {e}")))?;
    if let Some(kind) = &notification.notification_type
        && kind != "Received"
    {
        return Err(Malformed(format!(
            "an SES {kind} notification is not received mail"
        )));
    }
    let action = &notification.receipt.action;
    if action.kind != "S3" {
        return Err(Malformed(format!(
            "the receipt rule's action is {}, not S3: there is no stored message to read",
            action.kind
        )));
    }
    let bucket = action
        .bucket_name
        .clone()
        .ok_or_else(|| Malformed("the S3 action names no bucket".to_owned()))?;
    let key = match (&action.object_key, &notification.mail.message_id) {
        (Some(key), _) => key.clone(),
        (None, Some(id)) => format!("{}{id}", action.object_key_prefix.as_deref().unwrap_or("")),
        (None, None) => {
            return Err(Malformed(
                "the notification names no stored object".to_owned(),
            ));
        }
    };
    let verdict = |v: &Option<SesVerdict>| v.as_ref().and_then(|v| Verdict::from_status(&v.status));
    let receipt = &notification.receipt;
    let ses = SesVerdicts {
        spam: verdict(&receipt.spam_verdict),
        virus: verdict(&receipt.virus_verdict),
        spf: verdict(&receipt.spf_verdict),
        dkim: verdict(&receipt.dkim_verdict),
        dmarc: verdict(&receipt.dmarc_verdict),
    };
    let received_at = notification
        .mail
        .timestamp
        .as_deref()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        .unwrap_or(first_seen);
    Ok(Received {
        location: MailLocation { bucket, key },
        received_at,
        first_seen,
        known: KnownEnvelope {
            recipients: (!receipt.recipients.is_empty()).then(|| receipt.recipients.clone()),
            from: notification.mail.source.clone(),
            ses: (ses != SesVerdicts::default()).then_some(ses),
            ses_message_id: notification.mail.message_id.clone(),
            ..KnownEnvelope::default()
        },
        size: None,
    })
}

fn s3_record(record: &Value, first_seen: DateTime<Utc>) -> Result<Received, Malformed> {
    let s3 = record
        .get("s3")
        .ok_or_else(|| Malformed("an S3 event record without `s3`".to_owned()))?;
    let bucket = s3
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or_else(|| Malformed("an S3 event record without a bucket name".to_owned()))?;
    let key = s3
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or_else(|| Malformed("an S3 event record without an object key".to_owned()))?;
    if let Some(name) = record.get("eventName").and_then(Value::as_str)
        && !name.starts_with("ObjectCreated")
    {
        return Err(Malformed(format!(
            "an S3 {name} event is not a stored message"
        )));
    }
    let received_at = record
        .get("eventTime")
        .and_then(Value::as_str)
        .and_then(parse_event_time)
        .unwrap_or(first_seen);
    Ok(Received {
        location: MailLocation {
            bucket: bucket.to_owned(),
            key: decode_key(key),
        },
        received_at,
        first_seen,
        known: KnownEnvelope::default(),
        size: s3.pointer("/object/size").and_then(Value::as_u64),
    })
}

/// S3 event times are RFC 3339; some emulators leave out the zone, which is UTC.
fn parse_event_time(text: &str) -> Option<DateTime<Utc>> {
    text.parse::<DateTime<Utc>>().ok().or_else(|| {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|naive| naive.and_utc())
    })
}

/// S3 event keys are URL-encoded with `+` for a space.
pub fn decode_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_key("inbound/a+b%2Bc%C3%A9"), "inbound/a b+cé");
    }

    #[test]
    fn test_events_and_confirmations_are_ignored() {
        let now = Utc::now();
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-01-01T00:00:00.000Z","Bucket":"b"}"#;
        assert!(matches!(read_body(test, now).unwrap(), Work::Ignore(_)));
        let wrapped = serde_json::json!({"Type": "Notification", "Message": test}).to_string();
        assert!(matches!(read_body(&wrapped, now).unwrap(), Work::Ignore(_)));
        let confirmation =
            r#"{"Type":"SubscriptionConfirmation","SubscribeURL":"https://example.com"}"#;
        assert!(matches!(
            read_body(confirmation, now).unwrap(),
            Work::Ignore(_)
        ));
        assert!(read_body("not json", now).is_err());
        // What SES writes and announces when the receipt rule is created.
        let setup_object = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "inbound/AMAZON_SES_SETUP_NOTIFICATION", "size": 559}}}]});
        assert!(matches!(
            read_value(&setup_object, now).unwrap(),
            Work::Ignore(_)
        ));
        let setup_notification = serde_json::json!({"notificationType": "Received",
            "mail": {"messageId": "AMAZON_SES_SETUP_NOTIFICATION", "source": "no-reply@amazonaws.com"},
            "receipt": {"recipients": [], "action": {"type": "S3", "bucketName": "b",
                "objectKey": "inbound/AMAZON_SES_SETUP_NOTIFICATION"}}});
        let wrapped =
            serde_json::json!({"Type": "Notification", "Message": setup_notification.to_string()});
        assert!(matches!(
            read_body(&wrapped.to_string(), now).unwrap(),
            Work::Ignore(_)
        ));
        let sized = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "inbound/abc", "size": 1234}}}]});
        let Work::Mail(received) = read_value(&sized, now).unwrap() else {
            panic!("one message")
        };
        assert_eq!(received.size, Some(1234));
        assert!(read_body("{}", now).is_err());
    }
}
