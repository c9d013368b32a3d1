//! Reading the stored message: its size first, so that one over the limit is never downloaded, then its
//! bytes, then its parse. A message that cannot be read is a failure of the whole message, recorded once.

use std::sync::Arc;

use tracing::warn;

use super::{Inbound, Received, Retryable};
use crate::mail::{self, Email};
use crate::ports::{
    Clock, FetchError, MailSender, MailStore, ObjectStore, OutboundStore, RecordStore, RouteStore,
    SuppressionList, Webhooks,
};

/// A stored message as read: parsed, with the size of its bytes.
pub(super) struct Parsed {
    /// The parsed message.
    pub(super) email: Arc<Email>,
    /// How many bytes were read.
    pub(super) size: usize,
}

impl<M, S, W, X, C> Inbound<M, S, W, X, C>
where
    M: MailStore + ObjectStore,
    S: RecordStore + RouteStore + SuppressionList + OutboundStore,
    W: Webhooks,
    X: MailSender,
    C: Clock,
{
    /// Reads and parses the stored message; `None` when it is missing, too large or unreadable, which is
    /// recorded as a failure of the whole message.
    pub(super) async fn read_message(
        &self,
        received: &Received,
    ) -> Result<Option<Parsed>, Retryable> {
        let message_id = received.location.message_id();
        if !self.has_readable_size(received).await? {
            return Ok(None);
        }
        let raw = match self.mail.fetch(&received.location).await {
            Ok(raw) => raw,
            Err(FetchError::NotFound(what)) => {
                warn!(message_id, "stored message not found");
                self.record_failure(received, None, format!("no stored message: {what}"))
                    .await?;
                return Ok(None);
            }
            Err(FetchError::Store(error)) if error.retryable => return Err(error.into()),
            Err(FetchError::Store(error)) => {
                warn!(message_id, error = %error, "stored message could not be read");
                self.record_failure(
                    received,
                    None,
                    format!("cannot read the stored message: {error}"),
                )
                .await?;
                return Ok(None);
            }
        };
        let size = raw.len();
        match mail::parse(raw) {
            Ok(email) => Ok(Some(Parsed {
                email: Arc::new(email),
                size,
            })),
            Err(error) => {
                warn!(message_id, size, error = %error, "message could not be parsed; it stays stored");
                self.record_failure(received, None, format!("cannot parse the message: {error}"))
                    .await?;
                Ok(None)
            }
        }
    }

    /// Whether the stored message is there and within the size limit, looked up unless the event said;
    /// when it is not, records why.
    async fn has_readable_size(&self, received: &Received) -> Result<bool, Retryable> {
        let message_id = received.location.message_id();
        // The size is known before a byte is read, so an object over the limit is never downloaded.
        let size = match received.size {
            Some(size) => Some(size),
            None => match self.mail.object_size(&received.location).await {
                Ok(size) => size,
                Err(error) if error.retryable => return Err(error.into()),
                // Reading it will say what is wrong.
                Err(_) => Some(0),
            },
        };
        let Some(size) = size else {
            warn!(message_id, "stored message not found");
            self.record_failure(
                received,
                None,
                format!(
                    "no stored message at s3://{}/{}",
                    received.location.bucket, received.location.key
                ),
            )
            .await?;
            return Ok(false);
        };
        if size > mail::MAX_MESSAGE_BYTES as u64 {
            warn!(
                message_id,
                size, "stored message over the size limit; not read"
            );
            self.record_failure(
                received,
                None,
                format!(
                    "the stored message is {size} bytes, over the {}-byte limit (SES accepts 40 MB); \
                     it was not read, and stays stored",
                    mail::MAX_MESSAGE_BYTES
                ),
            )
            .await?;
            return Ok(false);
        }
        Ok(true)
    }
}
