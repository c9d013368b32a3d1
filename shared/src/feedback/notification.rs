//! SES's notifications about mail it sent, as our own serde types, and what each one says in a form the
//! use case can act on.
//!
//! Two shapes reach the feedback function: identity notifications (`notificationType`: `Bounce`,
//! `Complaint`, `Delivery`) and configuration-set event publishing (`eventType`: `Send`, `Reject`, `Bounce`,
//! `Complaint`, `Delivery`, `DeliveryDelay`, `Open`, `Click`, `Rendering Failure`, `Subscription`). Both
//! arrive inside SNS's envelope, itself either the body of an SQS message or a record of an SNS event.
//! Every field is optional here: a notification missing one is still read as far as it goes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// What an SNS envelope (or an SQS body holding one) carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A notification; `message` is SES's JSON.
    Notification {
        /// SNS's id of the message, the same on every redelivery of it.
        sns_message_id: Option<String>,
        /// The SES notification, as text.
        message: String,
    },
    /// Something to acknowledge and leave: a subscription confirmation, an unsubscribe confirmation.
    Ignore {
        /// SNS's id of the message.
        sns_message_id: Option<String>,
        /// Why it is left alone.
        why: String,
    },
}

/// A body or a notification that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

#[derive(Debug, Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type", default)]
    kind: Option<String>,
    #[serde(rename = "MessageId", default)]
    message_id: Option<String>,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

/// Reads an SQS body: SNS's JSON envelope around an SES notification, or (with raw message delivery on)
/// the SES notification itself.
pub fn read_envelope(body: &str) -> Result<Envelope, Unreadable> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| Unreadable(format!("the body is not JSON: {e}")))?;
    if value.get("notificationType").is_some() || value.get("eventType").is_some() {
        return Ok(Envelope::Notification {
            sns_message_id: None,
            message: body.to_owned(),
        });
    }
    let envelope: SnsEnvelope = serde_json::from_value(value)
        .map_err(|e| Unreadable(format!("not an SNS message: {e}")))?;
    sns_message(
        envelope.kind.as_deref(),
        envelope.message_id,
        envelope.message,
    )
}

/// Reads one record of an SNS event (`Records[].Sns`): its `Type`, `MessageId` and `Message`.
pub fn sns_message(
    kind: Option<&str>,
    sns_message_id: Option<String>,
    message: Option<String>,
) -> Result<Envelope, Unreadable> {
    match kind {
        Some("Notification") | None => match message {
            Some(message) => Ok(Envelope::Notification {
                sns_message_id,
                message,
            }),
            None => Err(Unreadable(
                "an SNS notification without a Message".to_owned(),
            )),
        },
        // A SubscribeURL is never fetched: subscriptions are made by the stack, not by messages.
        Some(other) => Ok(Envelope::Ignore {
            sns_message_id,
            why: format!("SNS {other} acknowledged"),
        }),
    }
}

/// SES's notification, either shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SesNotification {
    /// Identity notifications: `Bounce`, `Complaint`, `Delivery` (and `AmazonSnsSubscriptionSucceeded`).
    pub notification_type: Option<String>,
    /// Event publishing: `Send`, `Reject`, `Bounce`, …
    pub event_type: Option<String>,
    /// The message the notification is about.
    pub mail: Option<MailObject>,
    /// For bounces.
    pub bounce: Option<Bounce>,
    /// For complaints.
    pub complaint: Option<Complaint>,
    /// For deliveries.
    pub delivery: Option<DeliveryObject>,
    /// For rejections.
    pub reject: Option<Reject>,
    /// For delivery delays.
    pub delivery_delay: Option<DeliveryDelay>,
    /// For opens.
    pub open: Option<Engagement>,
    /// For clicks.
    pub click: Option<Engagement>,
    /// For rendering failures.
    pub failure: Option<RenderingFailure>,
    /// For subscription changes.
    pub subscription: Option<Subscription>,
}

/// The `mail` object: the message a notification is about.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MailObject {
    /// SES's message id.
    pub message_id: Option<String>,
    /// When SES accepted it.
    pub timestamp: Option<String>,
    /// The envelope sender.
    pub source: Option<String>,
    /// The recipients.
    pub destination: Vec<String>,
    /// Tags of event publishing (`ses:configuration-set`, …).
    pub tags: BTreeMap<String, Vec<String>>,
    /// Headers SES read from the message (`subject`, `from`, `to`, …).
    pub common_headers: Option<CommonHeaders>,
}

/// The `mail.commonHeaders` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CommonHeaders {
    /// The `From:` addresses.
    pub from: Vec<String>,
    /// The `To:` addresses.
    pub to: Vec<String>,
    /// The subject.
    pub subject: Option<String>,
}

/// A bounce.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Bounce {
    /// `Permanent`, `Transient` or `Undetermined`.
    pub bounce_type: Option<String>,
    /// `General`, `NoEmail`, `Suppressed`, `MailboxFull`, …
    pub bounce_sub_type: Option<String>,
    /// Who bounced.
    pub bounced_recipients: Vec<BouncedRecipient>,
    /// When.
    pub timestamp: Option<String>,
    /// SES's id of this feedback.
    pub feedback_id: Option<String>,
    /// The MTA that reported it.
    #[serde(rename = "reportingMTA")]
    pub reporting_mta: Option<String>,
    /// The remote MTA's address.
    pub remote_mta_ip: Option<String>,
}

/// One bounced recipient.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BouncedRecipient {
    /// The address.
    pub email_address: Option<String>,
    /// The DSN action (`failed`, …).
    pub action: Option<String>,
    /// The DSN status (`5.1.1`, …).
    pub status: Option<String>,
    /// The remote server's words.
    pub diagnostic_code: Option<String>,
}

/// A complaint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Complaint {
    /// Who complained.
    pub complained_recipients: Vec<Recipient>,
    /// When.
    pub timestamp: Option<String>,
    /// SES's id of this feedback.
    pub feedback_id: Option<String>,
    /// `abuse`, `fraud`, `not-spam`, …
    pub complaint_feedback_type: Option<String>,
    /// Set when SES suppressed the complaint.
    pub complaint_sub_type: Option<String>,
}

/// A recipient named by address only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Recipient {
    /// The address.
    pub email_address: Option<String>,
}

/// A delivery.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeliveryObject {
    /// When.
    pub timestamp: Option<String>,
    /// Who received it.
    pub recipients: Vec<String>,
    /// The remote server's answer.
    pub smtp_response: Option<String>,
    /// The remote MTA's address.
    pub remote_mta_ip: Option<String>,
}

/// A rejection: SES did not send the message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Reject {
    /// Why (`Bad content`).
    pub reason: Option<String>,
}

/// A delay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeliveryDelay {
    /// When.
    pub timestamp: Option<String>,
    /// `MailboxFull`, `TransientCommunicationFailure`, …
    pub delay_type: Option<String>,
    /// When SES stops trying.
    pub expiration_time: Option<String>,
    /// Who is delayed.
    pub delayed_recipients: Vec<BouncedRecipient>,
}

/// An open or a click.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Engagement {
    /// When.
    pub timestamp: Option<String>,
    /// Clicks: the link's target.
    pub link: Option<String>,
}

/// A template rendering failure.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RenderingFailure {
    /// What went wrong.
    pub error_message: Option<String>,
}

/// A subscription preference change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subscription {
    /// When.
    pub timestamp: Option<String>,
}

/// What happened, whichever shape said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// SES accepted the message for sending.
    Send,
    /// SES refused to send it.
    Reject,
    /// A recipient's server refused it.
    Bounce,
    /// A recipient marked it as spam.
    Complaint,
    /// A recipient's server accepted it.
    Delivery,
    /// Delivery is delayed.
    DeliveryDelay,
    /// Opened.
    Open,
    /// A link was clicked.
    Click,
    /// A template could not be rendered.
    RenderingFailure,
    /// Subscription preferences changed.
    Subscription,
}

impl EventKind {
    /// The name SES uses.
    pub fn from_ses(name: &str) -> Option<EventKind> {
        Some(match name {
            "Send" => EventKind::Send,
            "Reject" => EventKind::Reject,
            "Bounce" => EventKind::Bounce,
            "Complaint" => EventKind::Complaint,
            "Delivery" => EventKind::Delivery,
            "DeliveryDelay" => EventKind::DeliveryDelay,
            "Open" => EventKind::Open,
            "Click" => EventKind::Click,
            "Rendering Failure" | "RenderingFailure" => EventKind::RenderingFailure,
            "Subscription" => EventKind::Subscription,
            _ => return None,
        })
    }

    /// The word records and history entries use.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Send => "send",
            EventKind::Reject => "reject",
            EventKind::Bounce => "bounce",
            EventKind::Complaint => "complaint",
            EventKind::Delivery => "delivery",
            EventKind::DeliveryDelay => "delivery_delay",
            EventKind::Open => "open",
            EventKind::Click => "click",
            EventKind::RenderingFailure => "rendering_failure",
            EventKind::Subscription => "subscription",
        }
    }
}

/// What a bounce says about its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceKind {
    /// `Permanent`, `Transient` or `Undetermined`, as SES says it.
    pub bounce_type: String,
    /// SES's subtype.
    pub bounce_subtype: Option<String>,
}

impl BounceKind {
    /// A hard bounce: the address will not work.
    pub fn is_permanent(&self) -> bool {
        self.bounce_type.eq_ignore_ascii_case("Permanent")
    }

    /// A soft bounce: counted, suppressed only when repeated.
    pub fn is_transient(&self) -> bool {
        self.bounce_type.eq_ignore_ascii_case("Transient")
    }
}

/// One recipient a notification is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    /// The address, lowercased.
    pub address: String,
    /// The DSN status (`5.1.1`).
    pub smtp_status: Option<String>,
    /// The remote server's words.
    pub diagnostic: Option<String>,
}

/// A notification, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// What happened.
    pub kind: EventKind,
    /// SES's id of the message it is about.
    pub ses_message_id: String,
    /// When it happened (the event's own time, else the message's).
    pub timestamp: DateTime<Utc>,
    /// SES's feedback id (bounces and complaints).
    pub feedback_id: Option<String>,
    /// For bounces.
    pub bounce: Option<BounceKind>,
    /// A complaint's feedback type.
    pub complaint_type: Option<String>,
    /// A reason in words: a rejection's, a rendering failure's, a delay's type, a delivery's answer.
    pub detail: Option<String>,
    /// The recipients it is about; for opens and clicks the message's recipient when it had only one
    /// (SES does not say which of several opened it); empty for subscription changes.
    pub recipients: Vec<Affected>,
    /// Clicks: the link.
    pub link: Option<String>,
    /// What SES says of the message itself, for a record of mail sent around the send API.
    pub mail: SentMail,
}

/// The message a notification is about, as its `mail` object describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentMail {
    /// The envelope sender.
    pub source: Option<String>,
    /// The `From:` header.
    pub from: Option<String>,
    /// Every recipient.
    pub destination: Vec<String>,
    /// The subject.
    pub subject: Option<String>,
    /// Event publishing's tags: `ses:configuration-set`, the sender's own, Mailroom's `mailroom-id`.
    pub tags: BTreeMap<String, Vec<String>>,
}

impl SentMail {
    /// The first value of a tag.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// What a notification turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Something to act on.
    Feedback(Box<Feedback>),
    /// Something to acknowledge and leave, with the reason.
    Ignore(String),
}

/// Reads SES's JSON.
pub fn read_notification(text: &str, now: DateTime<Utc>) -> Result<Reading, Unreadable> {
    let ses: SesNotification = serde_json::from_str(text)
        .map_err(|e| Unreadable(format!("not an SES notification: {e}")))?;
    let Some(name) = ses
        .event_type
        .as_deref()
        .or(ses.notification_type.as_deref())
    else {
        return Err(Unreadable(
            "neither notificationType nor eventType".to_owned(),
        ));
    };
    let Some(kind) = EventKind::from_ses(name) else {
        return Ok(Reading::Ignore(format!(
            "SES notification type `{name}` acknowledged"
        )));
    };
    let mail = ses.mail.clone().unwrap_or_default();
    let Some(ses_message_id) = mail.message_id.clone().filter(|id| !id.trim().is_empty()) else {
        return Err(Unreadable(format!(
            "a {name} notification without mail.messageId"
        )));
    };
    let mut feedback = Feedback {
        kind,
        ses_message_id,
        timestamp: parse_time(mail.timestamp.as_deref()).unwrap_or(now),
        feedback_id: None,
        bounce: None,
        complaint_type: None,
        detail: None,
        recipients: Vec::new(),
        link: None,
        mail: SentMail {
            source: mail.source.clone(),
            from: mail
                .common_headers
                .as_ref()
                .and_then(|h| h.from.first().cloned()),
            destination: mail.destination.clone(),
            subject: mail.common_headers.as_ref().and_then(|h| h.subject.clone()),
            tags: mail.tags.clone(),
        },
    };
    feedback.read_event(ses, &mail.destination);
    Ok(Reading::Feedback(Box::new(feedback)))
}

impl Feedback {
    /// Fills in what the event's own object says; `destination` is the message's recipients.
    fn read_event(&mut self, ses: SesNotification, destination: &[String]) {
        match self.kind {
            EventKind::Bounce => self.read_bounce(ses.bounce.unwrap_or_default()),
            EventKind::Complaint => self.read_complaint(ses.complaint.unwrap_or_default()),
            EventKind::Delivery => self.read_delivery(ses.delivery.unwrap_or_default()),
            EventKind::DeliveryDelay => self.read_delay(ses.delivery_delay.unwrap_or_default()),
            EventKind::Reject => {
                self.detail = ses.reject.and_then(|r| r.reason);
                self.recipients = addressed(destination);
            }
            EventKind::RenderingFailure => {
                self.detail = ses.failure.and_then(|f| f.error_message);
                self.recipients = addressed(destination);
            }
            EventKind::Send => self.recipients = addressed(destination),
            EventKind::Open | EventKind::Click => {
                let engagement = if self.kind == EventKind::Open {
                    ses.open
                } else {
                    ses.click
                };
                if let Some(engagement) = engagement {
                    if let Some(at) = parse_time(engagement.timestamp.as_deref()) {
                        self.timestamp = at;
                    }
                    self.link = engagement.link;
                }
                if destination.len() == 1 {
                    self.recipients = addressed(destination);
                }
            }
            EventKind::Subscription => {
                if let Some(at) = ses
                    .subscription
                    .and_then(|s| parse_time(s.timestamp.as_deref()))
                {
                    self.timestamp = at;
                }
            }
        }
    }

    /// A bounce's time, id, kind and bounced recipients.
    fn read_bounce(&mut self, bounce: Bounce) {
        self.timestamp = parse_time(bounce.timestamp.as_deref()).unwrap_or(self.timestamp);
        self.feedback_id = bounce.feedback_id;
        self.bounce = Some(BounceKind {
            bounce_type: bounce
                .bounce_type
                .unwrap_or_else(|| "Undetermined".to_owned()),
            bounce_subtype: bounce.bounce_sub_type,
        });
        self.recipients = bounce
            .bounced_recipients
            .into_iter()
            .filter_map(|r| affected(r.email_address.as_deref()?, r.status, r.diagnostic_code))
            .collect();
    }

    /// A complaint's time, id, type and complaining recipients.
    fn read_complaint(&mut self, complaint: Complaint) {
        self.timestamp = parse_time(complaint.timestamp.as_deref()).unwrap_or(self.timestamp);
        self.feedback_id = complaint.feedback_id;
        self.complaint_type = complaint.complaint_feedback_type;
        self.detail = complaint.complaint_sub_type;
        self.recipients = complaint
            .complained_recipients
            .into_iter()
            .filter_map(|r| affected(r.email_address.as_deref()?, None, None))
            .collect();
    }

    /// A delivery's time, the remote server's answer and the recipients.
    fn read_delivery(&mut self, delivery: DeliveryObject) {
        self.timestamp = parse_time(delivery.timestamp.as_deref()).unwrap_or(self.timestamp);
        self.detail = delivery.smtp_response.clone();
        self.recipients = delivery
            .recipients
            .iter()
            .filter_map(|a| affected(a, None, delivery.smtp_response.clone()))
            .collect();
    }

    /// A delay's time, type and delayed recipients.
    fn read_delay(&mut self, delay: DeliveryDelay) {
        self.timestamp = parse_time(delay.timestamp.as_deref()).unwrap_or(self.timestamp);
        self.detail = delay.delay_type;
        self.recipients = delay
            .delayed_recipients
            .into_iter()
            .filter_map(|r| affected(r.email_address.as_deref()?, r.status, r.diagnostic_code))
            .collect();
    }
}

/// The message's recipients, for events that name no recipients of their own.
fn addressed(destination: &[String]) -> Vec<Affected> {
    destination
        .iter()
        .filter_map(|a| affected(a, None, None))
        .collect()
}

fn affected(
    address: &str,
    smtp_status: Option<String>,
    diagnostic: Option<String>,
) -> Option<Affected> {
    let address = address.trim();
    (!address.is_empty()).then(|| Affected {
        address: address.to_lowercase(),
        smtp_status,
        diagnostic,
    })
}

fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-20T10:00:00Z".parse().unwrap()
    }

    fn read(text: &str) -> Feedback {
        match read_notification(text, now()).unwrap() {
            Reading::Feedback(feedback) => *feedback,
            Reading::Ignore(why) => panic!("ignored: {why}"),
        }
    }

    #[test]
    fn a_permanent_bounce_names_its_recipients_and_dsn() {
        let feedback = read(
            r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
            "bouncedRecipients":[{"emailAddress":"Ana@Example.net","action":"failed","status":"5.1.1",
            "diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"timestamp":"2026-11-20T10:00:05.123Z",
            "feedbackId":"fb-1","reportingMTA":"dsn; a.example","somethingNew":1},
            "mail":{"timestamp":"2026-11-20T10:00:00.000Z","messageId":"ses-1","source":"x@y.example",
            "destination":["ana@example.net"],"headers":[]}}"#,
        );
        assert_eq!(feedback.kind, EventKind::Bounce);
        assert_eq!(feedback.ses_message_id, "ses-1");
        assert_eq!(feedback.feedback_id.as_deref(), Some("fb-1"));
        assert!(feedback.bounce.as_ref().unwrap().is_permanent());
        assert_eq!(feedback.recipients[0].address, "ana@example.net");
        assert_eq!(feedback.recipients[0].smtp_status.as_deref(), Some("5.1.1"));
        assert_eq!(
            feedback.timestamp,
            "2026-11-20T10:00:05.123Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn event_publishing_names_are_read_too() {
        let feedback = read(
            r#"{"eventType":"DeliveryDelay","mail":{"messageId":"ses-2"},
            "deliveryDelay":{"delayType":"MailboxFull","delayedRecipients":[{"emailAddress":"b@c.example","status":"4.2.2"}]}}"#,
        );
        assert_eq!(feedback.kind, EventKind::DeliveryDelay);
        assert_eq!(feedback.detail.as_deref(), Some("MailboxFull"));
        let feedback = read(
            r#"{"eventType":"Rendering Failure","mail":{"messageId":"ses-3","destination":["d@e.example"]},
            "failure":{"errorMessage":"Attribute 'name' is not present","templateName":"t"}}"#,
        );
        assert_eq!(feedback.kind, EventKind::RenderingFailure);
        assert_eq!(feedback.recipients.len(), 1);
    }

    #[test]
    fn unknown_types_and_garbage_are_told_apart() {
        assert!(matches!(
            read_notification(
                r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"x"}"#,
                now()
            ),
            Ok(Reading::Ignore(_))
        ));
        assert!(read_notification("garbage", now()).is_err());
        assert!(read_notification(r#"{"eventType":"Bounce"}"#, now()).is_err());
        assert!(read_notification(r#"{"mail":{"messageId":"x"}}"#, now()).is_err());
        assert!(read_notification(r#"[1,2]"#, now()).is_err());
    }

    #[test]
    fn envelopes_raw_or_wrapped() {
        let wrapped =
            r#"{"Type":"Notification","MessageId":"sns-1","Message":"{\"eventType\":\"Send\"}"}"#;
        assert_eq!(
            read_envelope(wrapped).unwrap(),
            Envelope::Notification {
                sns_message_id: Some("sns-1".to_owned()),
                message: r#"{"eventType":"Send"}"#.to_owned()
            }
        );
        let raw = r#"{"eventType":"Send","mail":{}}"#;
        assert!(matches!(
            read_envelope(raw).unwrap(),
            Envelope::Notification {
                sns_message_id: None,
                ..
            }
        ));
        let confirmation = r#"{"Type":"SubscriptionConfirmation","MessageId":"sns-2","SubscribeURL":"https://example.invalid/"}"#;
        assert!(matches!(
            read_envelope(confirmation).unwrap(),
            Envelope::Ignore { .. }
        ));
        assert!(read_envelope("not json").is_err());
        assert!(read_envelope(r#"{"Type":"Notification"}"#).is_err());
    }
}
