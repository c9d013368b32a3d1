//! Sending through SES v2 (`SendEmail` with raw content) with the stack's configuration set, which
//! requires TLS and publishes events to the feedback topic.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use bytes::Bytes;

use mailroom::ports::{MailSender, SendMailError, SendOptions, Sent};

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

/// The configuration sets that publish opens and clicks: SES tracks what a set's event destination asks
/// for, so each mix of the two is its own set (`template.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackedSets {
    /// Opens and clicks (`MAILROOM_TRACKED_CONFIGURATION_SET`).
    pub both: Option<String>,
    /// Opens only (`MAILROOM_OPENS_CONFIGURATION_SET`).
    pub opens: Option<String>,
    /// Clicks only (`MAILROOM_CLICKS_CONFIGURATION_SET`).
    pub clicks: Option<String>,
}

/// SES v2 with an optional configuration set (`MAILROOM_CONFIGURATION_SET`), and the tracked ones.
#[derive(Debug, Clone)]
pub struct SesSender {
    client: Client,
    configuration_set: Option<String>,
    tracked: TrackedSets,
}

impl SesSender {
    /// Uses a client built once at init; sends through `configuration_set`, never tracked.
    pub fn new(client: Client, configuration_set: Option<String>) -> SesSender {
        SesSender {
            client,
            configuration_set,
            tracked: TrackedSets::default(),
        }
    }

    /// Also sends through the tracked sets when a message asks for tracking.
    pub fn with_tracking(mut self, tracked: TrackedSets) -> SesSender {
        self.tracked = tracked;
        self
    }

    /// The set `options` send through. Where the tracked set asked for is not configured, the message
    /// goes untracked rather than not at all.
    pub fn configuration_set(&self, options: &SendOptions) -> Option<String> {
        let tracked = match (options.track_opens, options.track_clicks) {
            (true, true) => self.tracked.both.clone(),
            (true, false) => self.tracked.opens.clone(),
            (false, true) => self.tracked.clicks.clone(),
            (false, false) => None,
        };
        tracked.or_else(|| self.configuration_set.clone())
    }
}

impl MailSender for SesSender {
    async fn send_raw(
        &self,
        from: &str,
        to: &[String],
        raw: Bytes,
        options: &SendOptions,
    ) -> Result<Sent, SendMailError> {
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
        let configuration_set = self.configuration_set(options);
        let tags = options
            .tags
            .iter()
            .filter_map(|(name, value)| MessageTag::builder().name(name).value(value).build().ok())
            .collect::<Vec<_>>();
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
            .set_configuration_set_name(configuration_set.clone())
            .set_email_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await;
        match result {
            Ok(output) => Ok(Sent {
                message_id: output.message_id.unwrap_or_default(),
                configuration_set,
            }),
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
