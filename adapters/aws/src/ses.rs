//! Sending through SES v2 (`SendEmail` with raw content) with the stack's configuration set, which
//! requires TLS and publishes events to the feedback topic.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use bytes::Bytes;

use mailroom::ports::{MailSender, SendMailError};

/// SES error codes that will not change on a retry. `AccessDenied…` is IAM refusing the From address
/// (outside the stack's `Domains`) or the configuration set: only a change of the stack or the route helps.
const REJECTIONS: [&str; 8] = [
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "NotFoundException",
    "BadRequestException",
    "AccessDeniedException",
    "AccessDenied",
];

/// SES v2 with an optional configuration set (`MAILROOM_CONFIGURATION_SET`).
#[derive(Debug, Clone)]
pub struct SesSender {
    client: Client,
    configuration_set: Option<String>,
}

impl SesSender {
    /// Uses a client built once at init.
    pub fn new(client: Client, configuration_set: Option<String>) -> SesSender {
        SesSender {
            client,
            configuration_set,
        }
    }
}

impl MailSender for SesSender {
    async fn send_raw(
        &self,
        from: &str,
        to: &[String],
        raw: Bytes,
    ) -> Result<String, SendMailError> {
        let content = EmailContent::builder()
            .raw(
                RawMessage::builder()
                    // Without a copy when nothing else holds the bytes any more (the stored copy was written).
                    .data(Blob::new(Vec::from(raw)))
                    .build()
                    .map_err(|e| {
                        SendMailError::Rejected(format!("cannot build the message: {e}"))
                    })?,
            )
            .build();
        // IAM's `ses:FromAddress` condition compares case-sensitively, against the stack's lower-case
        // `Domains`: the address goes out lower-case.
        let from = from.to_ascii_lowercase();
        let result = self
            .client
            .send_email()
            .from_email_address(&from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
                    .build(),
            )
            .content(content)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.message_id.unwrap_or_default()),
            Err(error) => {
                let code = error.code().unwrap_or("").to_owned();
                let text = format!(
                    "SES {}: {}",
                    if code.is_empty() {
                        "error"
                    } else {
                        code.as_str()
                    },
                    error.message().unwrap_or("no message")
                );
                if REJECTIONS.contains(&code.as_str()) {
                    Err(SendMailError::Rejected(text))
                } else {
                    // Throttling, 5xx, no answer, and anything SES has not said is final: the delivery
                    // schedule retries it until the 72-hour give-up.
                    Err(SendMailError::Retryable(text))
                }
            }
        }
    }
}
