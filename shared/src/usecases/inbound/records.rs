//! Records written without a claim (a failure of the whole message, a recipient no route takes), and the
//! facts every record of a message starts from.

use super::{Inbound, Message, Received, Retryable};
use crate::mail::envelope::RecipientSource;
use crate::ports::{
    Clock, MailSender, MailStore, ObjectStore, OutboundStore, RecordStore, RouteStore,
    SuppressionList, Webhooks,
};
use crate::record::{Delivery, DeliveryKey, Status};

impl<M, S, W, X, C> Inbound<M, S, W, X, C>
where
    M: MailStore + ObjectStore,
    S: RecordStore + RouteStore + SuppressionList + OutboundStore,
    W: Webhooks,
    X: MailSender,
    C: Clock,
{
    /// Records a failure that concerns the whole message (missing object, unparseable bytes).
    pub(super) async fn record_failure(
        &self,
        received: &Received,
        recipient: Option<&str>,
        error: String,
    ) -> Result<(), Retryable> {
        let key = DeliveryKey::new(received.location.message_id(), recipient.unwrap_or(""), "");
        let mut record = Delivery::new(
            &key,
            &received.location.key,
            received.received_at,
            self.config.retention_days,
        );
        record.status = Status::Failed;
        record.error = Some(error);
        if let Some(recipients) = &received.known.recipients {
            record.recipient = recipients.first().cloned();
        }
        record.sender = received.known.from.clone();
        self.save_once(&record).await?;
        let recipient = record.recipient.clone().unwrap_or_default();
        self.report(None, &recipient, &record, 0);
        Ok(())
    }

    /// Records that no route takes the message for `recipient` (empty when there is no recipient at all).
    pub(super) async fn record_no_route(
        &self,
        message: &Message<'_>,
        recipient: &str,
        error: Option<String>,
    ) -> Result<(), Retryable> {
        let mut record = self.base_record(message, recipient, "");
        record.status = Status::NoRoute;
        record.error = error;
        self.save_once(&record).await?;
        self.report(Some(message), recipient, &record, 0);
        Ok(())
    }

    /// Writes a record that needs no claim, unless a final one is there already.
    pub(super) async fn save_once(&self, record: &Delivery) -> Result<(), Retryable> {
        self.store.save(record, None).await?;
        Ok(())
    }

    /// A new record of delivering `message` for `recipient` to `target`, with what the message says.
    pub(super) fn base_record(
        &self,
        message: &Message<'_>,
        recipient: &str,
        target: &str,
    ) -> Delivery {
        let key = DeliveryKey::new(message.received.location.message_id(), recipient, target);
        let mut record = Delivery::new(
            &key,
            &message.received.location.key,
            message.received.received_at,
            self.config.retention_days,
        );
        record.target = target.to_owned();
        if !recipient.is_empty() {
            record.recipient = Some(recipient.to_owned());
            record.recipient_source = Some(
                match message.envelope.recipient_source {
                    RecipientSource::Headers => "headers",
                    _ => "smtp",
                }
                .to_owned(),
            );
        }
        let envelope = message.envelope;
        record.sender = Some(envelope.from.clone()).filter(|s| !s.is_empty());
        record.sender_ip = Some(envelope.remote_ip.clone()).filter(|s| !s.is_empty());
        record.subject = message.email.subject().map(str::to_owned);
        record.message_id_header = message.email.message_id().map(str::to_owned);
        record.set_header_parties(
            message.email.header("from"),
            message.email.header("reply-to"),
        );
        record
    }
}
