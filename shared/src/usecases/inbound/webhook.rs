//! Delivering to a webhook target: the payload, streamed and signed, POSTed within the attempt limit; a
//! target that answers 410 Gone has its webhook disabled.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::warn;
use url::Url;

use super::claim::{Attempted, Claiming, Verdict};
use super::{Inbound, Message, Outcome, Retryable};
use crate::budget::Deadline;
use crate::deliver::answer::{Answer, HttpResponse, SendError};
use crate::deliver::policy::{self, Judgement};
use crate::deliver::{BodyWriter, WebhookRequest, webhook_id};
use crate::format::{Format, MailgunSignature, Payload};
use crate::mail::Email;
use crate::mail::envelope::Envelope;
use crate::ports::{
    Clock, MailLocation, MailSender, MailStore, ObjectStore, OutboundStore, RecordStore,
    RouteStore, SuppressionList, Webhooks,
};
use crate::record::Status;
use crate::route::{AttachmentMode, Disabled, Route, WebhookTarget};

/// What one attempt on a webhook came to.
struct WebhookAttempt {
    /// What the target answered, or why it did not; `None` when no request went out.
    result: Option<Result<Answer, SendError>>,
    /// What to do about it.
    judgement: Judgement,
}

impl WebhookAttempt {
    /// An attempt refused before a request went out, never to be tried again.
    fn refused(reason: String) -> WebhookAttempt {
        WebhookAttempt {
            result: None,
            judgement: Judgement::Reject {
                reason,
                disable_webhook: false,
            },
        }
    }

    /// The target's last answer, if it answered.
    fn response(&self) -> Option<&HttpResponse> {
        self.result
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(|a| &a.response)
    }

    /// Whether the target answered 410 Gone, which disables the route's webhook.
    fn is_gone(&self) -> bool {
        matches!(
            self.judgement,
            Judgement::Reject {
                disable_webhook: true,
                ..
            }
        )
    }
}

impl<M, S, W, X, C> Inbound<M, S, W, X, C>
where
    M: MailStore + ObjectStore,
    S: RecordStore + RouteStore + SuppressionList + OutboundStore,
    W: Webhooks,
    X: MailSender,
    C: Clock,
{
    /// Delivers the message for `recipient` to the route's webhook: claimed, attempted and recorded. The
    /// catch-all webhook (`is_default`) is never disabled, since it belongs to no route.
    pub(super) async fn deliver_webhook(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        webhook: &WebhookTarget,
        is_default: bool,
    ) -> Result<Outcome, Retryable> {
        let target = format!("webhook {}", webhook.display_url());
        let mut claimed = match self.claim(message, recipient, route, &target).await? {
            Claiming::Granted(claimed) => *claimed,
            Claiming::Settled(outcome) => return Ok(outcome),
        };
        let id = webhook_id(
            &claimed.key.message_id,
            &format!("{}\n{target}", recipient.to_ascii_lowercase()),
        );
        claimed.record.webhook_id = Some(id.clone());

        let attempt_started = Instant::now();
        let attempt_at = self.clock.now();
        let attempt = self
            .attempt_webhook(message, recipient, webhook, id, attempt_at)
            .await?;
        let ms = attempt_started.elapsed().as_millis() as u64;

        let response = attempt.response();
        claimed.record.response_status = response.map(|r| r.status);
        claimed.record.response_body = response.map(|r| policy::response_excerpt(&r.body));
        let gone = attempt.is_gone();
        let outcome = self
            .conclude(Attempted {
                message,
                recipient,
                route,
                claimed,
                at: attempt_at,
                ms,
                verdict: verdict_of(attempt.judgement),
            })
            .await?;
        if gone && !is_default {
            self.disable_gone_webhook(route, attempt_at).await?;
        }
        Ok(outcome)
    }

    /// POSTs the payload, signed with `id`, to the webhook, unless it is disabled or its URL is no URL.
    async fn attempt_webhook(
        &self,
        message: &Message<'_>,
        recipient: &str,
        webhook: &WebhookTarget,
        id: String,
        at: DateTime<Utc>,
    ) -> Result<WebhookAttempt, Retryable> {
        let url = match (&webhook.disabled, Url::parse(&webhook.url)) {
            (Some(disabled), _) => {
                return Ok(WebhookAttempt::refused(format!(
                    "the webhook was disabled at {}: {}",
                    disabled.at.to_rfc3339(),
                    disabled.reason
                )));
            }
            (None, Err(error)) => {
                return Ok(WebhookAttempt::refused(format!(
                    "the webhook URL is not valid: {error}"
                )));
            }
            (None, Ok(url)) => url,
        };
        let envelope = message.envelope.for_recipient(recipient);
        let format = webhook.format.for_url(&webhook.url);
        let urls = if format.takes_attachment_links() {
            let inline_size = Payload::new(format, &message.email, &envelope).size_hint();
            self.attachment_links(message, webhook.attachments, inline_size)
                .await?
        } else {
            None
        };
        let mailgun = matches!(format, Format::Mailgun | Format::MailgunMime).then(|| {
            MailgunSignature::new(at.timestamp(), webhook.mailgun_signing_key().as_deref())
        });
        let body = PayloadBody {
            boundary: Payload::new(format, &message.email, &envelope)
                .multipart_boundary()
                .map(str::to_owned),
            format,
            email: message.email.clone(),
            envelope,
            urls,
            mailgun,
        };
        let content_type = body.content_type();
        match WebhookRequest::streamed(
            id,
            at.timestamp(),
            content_type,
            Arc::new(body),
            &webhook.secrets,
        ) {
            Ok(request) => Ok(self.post_within(&url, &request, message.deadline).await),
            // Writing into a signer cannot fail; should a format ever fail, it fails every time.
            Err(error) => Ok(WebhookAttempt::refused(format!(
                "the payload could not be written: {error}"
            ))),
        }
    }

    /// POSTs `request` to `url` and judges the answer.
    async fn post_within(
        &self,
        url: &Url,
        request: &WebhookRequest,
        deadline: Deadline,
    ) -> WebhookAttempt {
        // The whole attempt, redirects and the upload of the body included, is bounded.
        let limit = deadline.bound(self.config.attempt_limit);
        let result = match tokio::time::timeout(limit, self.webhooks.post(url, request)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout(limit)),
        };
        let judgement = policy::judge(&result);
        WebhookAttempt {
            result: Some(result),
            judgement,
        }
    }

    /// Disables the route's webhook after its target answered 410 Gone, until it is enabled again.
    async fn disable_gone_webhook(
        &self,
        route: &Route,
        at: DateTime<Utc>,
    ) -> Result<(), Retryable> {
        let disabled = Disabled {
            at,
            reason: "the target answered 410 Gone".to_owned(),
        };
        self.store
            .set_webhook_disabled(&route.pattern, Some(disabled))
            .await?;
        self.forget_routes();
        Ok(())
    }

    /// Stores the attachments and returns their links, when the route's mode asks for it: always for
    /// `s3`, for `auto` only when the inline payload would be larger than the configured limit. The keys
    /// are the same on every attempt, so a retry finds what an earlier attempt stored and uploads only
    /// what is missing.
    async fn attachment_links(
        &self,
        message: &Message<'_>,
        mode: AttachmentMode,
        inline_size: usize,
    ) -> Result<Option<Vec<String>>, Retryable> {
        let wanted = match mode {
            AttachmentMode::Inline => false,
            AttachmentMode::S3 => true,
            AttachmentMode::Auto => inline_size > self.config.inline_max_bytes,
        };
        if !wanted || message.email.attachments.is_empty() {
            return Ok(None);
        }
        let Some(links) = &self.config.links else {
            warn!(
                "attachments travel inline: no link endpoint is configured (MAILROOM_LINK_BASE_URL)"
            );
            return Ok(None);
        };
        let message_id = message.received.location.message_id();
        let expires = self.clock.now() + chrono::Duration::days(i64::from(links.days));
        let mut urls = Vec::with_capacity(message.email.attachments.len());
        for (n, attachment) in message.email.attachments.iter().enumerate() {
            let location = MailLocation {
                bucket: message.received.location.bucket.clone(),
                key: format!("attachments/{message_id}/{n}"),
            };
            let stored = self.mail.object_size(&location).await?;
            if stored != Some(attachment.content.len() as u64) {
                self.mail
                    .put_object(
                        &location,
                        attachment.content.clone(),
                        &attachment.content_type,
                    )
                    .await?;
            }
            let token = links.key.token(&location.key, expires);
            urls.push(crate::deliver::links::link_url(&links.base_url, &token));
        }
        Ok(Some(urls))
    }
}

/// The verdict a judgement of the target's answer comes to.
fn verdict_of(judgement: Judgement) -> Verdict {
    match judgement {
        Judgement::Delivered => Verdict::done(Status::Delivered, None),
        Judgement::Reject { reason, .. } => Verdict::done(Status::Rejected, reason),
        Judgement::Retry {
            reason,
            retry_after,
        } => Verdict::Retry {
            reason,
            retry_after,
        },
    }
}

/// A POST body written on demand from the parsed message, so a large payload streams instead of being
/// built in memory (twice: once to sign it, once to send it).
struct PayloadBody {
    format: Format,
    email: Arc<Email>,
    envelope: Envelope,
    boundary: Option<String>,
    urls: Option<Vec<String>>,
    // One token and signature for the attempt: the body is written twice (to sign it, to send it).
    mailgun: Option<MailgunSignature>,
}

impl PayloadBody {
    fn payload(&self) -> Payload<'_> {
        let mut payload = Payload::new(self.format, &self.email, &self.envelope);
        if let Some(signature) = &self.mailgun {
            payload = payload.with_mailgun_signature(signature.clone());
        }
        if let Some(boundary) = &self.boundary {
            payload = payload.with_boundary(boundary.clone());
        }
        if let Some(urls) = &self.urls {
            payload = payload.with_attachment_urls(urls);
        }
        payload
    }

    fn content_type(&self) -> String {
        self.payload().content_type()
    }
}

impl BodyWriter for PayloadBody {
    fn write_body(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.payload().write_to(out)
    }
}
