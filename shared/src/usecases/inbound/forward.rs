//! Forwarding by email through SES: the message rewritten for the forward, or a notice with a link when
//! it is too large; nothing to a suppressed address. Each forward keeps an outbound record that the
//! feedback function keeps up to date.

use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::claim::{Attempted, Claimed, Claiming, Verdict};
use super::{Inbound, Message, Outcome, Retryable};
use crate::feedback::{Outbound, OutboundStatus, Suppression};
use crate::format::forward::{
    ForwardHeaders, OversizeNotice, oversize_notice, rewrite_for_forward,
};
use crate::ports::{
    Clock, MailLocation, MailSender, MailStore, ObjectStore, OutboundStore, RecordStore,
    RouteStore, SendMailError, SendOptions, SuppressionList, Webhooks,
};
use crate::record::{Delivery, DeliveryKey, Status};
use crate::route::{Redact, Route};

/// One forward of a message to one address: what its bytes and its outbound record are made from.
struct Forwarding<'a> {
    message: &'a Message<'a>,
    recipient: &'a str,
    route: &'a Route,
    key: &'a DeliveryKey,
    /// Where it goes.
    address: &'a str,
    /// The address it is sent from, lower-case.
    from: String,
    /// When it is sent.
    now: DateTime<Utc>,
}

impl Forwarding<'_> {
    /// `outbound` with what every outbound record of this forward says.
    fn describe(&self, mut outbound: Outbound) -> Outbound {
        outbound.message_id = Some(self.key.message_id.clone());
        outbound.route = Some(self.route.pattern.to_string());
        outbound.from = Some(self.from.clone());
        outbound.to = vec![self.address.to_owned()];
        if !self.route.redact.contains(&Redact::Subject) {
            outbound.subject = self.message.email.subject().map(str::to_owned);
        }
        outbound
    }

    /// Where the copy of what is sent is stored: the same on every attempt.
    fn copy_location(&self) -> MailLocation {
        MailLocation {
            bucket: self.message.received.location.bucket.clone(),
            key: format!(
                "outbound/{}/{}.eml",
                self.key.message_id, self.key.delivery_id
            ),
        }
    }
}

/// How a forward is sent: never tracked (it carries someone else's mail), tagged as a forward.
fn forward_options() -> SendOptions {
    SendOptions {
        tags: vec![(crate::feedback::FORWARD_TAG.to_owned(), "true".to_owned())],
        ..SendOptions::default()
    }
}

/// What a forward sends.
struct Outgoing {
    /// The message rewritten for the forward, or the notice sent in its place.
    bytes: Bytes,
    /// The message was too large to forward: a notice stands in for it.
    is_notice: bool,
}

impl<M, S, W, X, C> Inbound<M, S, W, X, C>
where
    M: MailStore + ObjectStore,
    S: RecordStore + RouteStore + SuppressionList + OutboundStore,
    W: Webhooks,
    X: MailSender,
    C: Clock,
{
    /// Forwards the message to `address` through SES: the rewrite, or a notice when it is too large;
    /// nothing to a suppressed address. Each forward address is a delivery of its own, claimed and
    /// recorded like a webhook, with an outbound record the feedback function keeps up to date.
    pub(super) async fn deliver_forward(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        address: &str,
    ) -> Result<Outcome, Retryable> {
        let target = format!("forward {address}");
        let mut claimed = match self.claim(message, recipient, route, &target).await? {
            Claiming::Granted(claimed) => *claimed,
            Claiming::Settled(outcome) => return Ok(outcome),
        };
        let attempt_started = Instant::now();
        let attempt_at = self.clock.now();
        let verdict = self
            .forward_once(message, recipient, route, address, &mut claimed)
            .await?;
        let ms = attempt_started.elapsed().as_millis() as u64;
        self.conclude(Attempted {
            message,
            recipient,
            route,
            claimed,
            at: attempt_at,
            ms,
            verdict,
        })
        .await
    }

    /// Sends one forward, unless the address is suppressed or there is no address to send from, and keeps
    /// the outbound record of it, which the delivery's record then names.
    async fn forward_once(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        address: &str,
        claimed: &mut Claimed,
    ) -> Result<Verdict, Retryable> {
        let Some(from) = self.forward_from(route) else {
            return Ok(Verdict::done(
                Status::Rejected,
                "no address to send forwards from: give the route one (`routes add --forward-from`) \
                 or set MAILROOM_FORWARD_FROM"
                    .to_owned(),
            ));
        };
        let forwarding = Forwarding {
            message,
            recipient,
            route,
            key: &claimed.key,
            address,
            from,
            now: self.clock.now(),
        };
        if let Some(suppression) = self.store.suppression(address).await? {
            return self
                .refuse_suppressed(&forwarding, &suppression, &mut claimed.record)
                .await;
        }
        let outgoing = self.outgoing(&forwarding);
        self.mail
            .put_object(
                &forwarding.copy_location(),
                outgoing.bytes.clone(),
                "message/rfc822",
            )
            .await?;
        let sent = self.send_within(&forwarding, outgoing.bytes).await;
        self.record_sent(&forwarding, sent, outgoing.is_notice, &mut claimed.record)
            .await
    }

    /// The address forwards on `route` are sent from, lower-case: the route's own, else the configured one.
    fn forward_from(&self, route: &Route) -> Option<String> {
        let from = route
            .forward_from
            .as_deref()
            .or(self.config.forward.from.as_deref())?;
        // The stack lets the function send only from its `Domains`, compared case-sensitively and written
        // lower-case: `Forward@Example.com` would be refused where `forward@example.com` is allowed.
        Some(from.to_ascii_lowercase())
    }

    /// Records a forward not sent because the address is on the suppression list.
    async fn refuse_suppressed(
        &self,
        forwarding: &Forwarding<'_>,
        suppression: &Suppression,
        record: &mut Delivery,
    ) -> Result<Verdict, Retryable> {
        let mut reason = format!(
            "not sent: the address is on the suppression list since {} ({}",
            suppression.created_at.to_rfc3339(),
            suppression.reason.as_str()
        );
        if let Some(detail) = &suppression.detail {
            reason.push_str(&format!(": {detail}"));
        }
        reason.push(')');
        let mut outbound = forwarding.describe(Outbound::unsent(
            forwarding.key,
            OutboundStatus::Suppressed,
            forwarding.now,
            self.config.retention_days,
        ));
        outbound.error = Some(reason.clone());
        self.keep_outbound(&outbound).await?;
        record.outbound_id = Some(outbound.ses_message_id);
        Ok(Verdict::done(Status::Suppressed, reason))
    }

    /// The message rewritten for the forward, or the notice sent instead when that is over the limit.
    fn outgoing(&self, forwarding: &Forwarding<'_>) -> Outgoing {
        let email = &forwarding.message.email;
        let original = email.raw();
        let forward = rewrite_for_forward(
            original,
            &ForwardHeaders {
                from_address: &forwarding.from,
                original_from: email.header("from"),
                original_to: forwarding.recipient,
            },
        );
        let is_notice = forward.len() > self.config.forward.max_bytes;
        let bytes = if is_notice {
            self.notice(forwarding, original.len())
        } else {
            forward
        };
        Outgoing {
            bytes: Bytes::from(bytes),
            is_notice,
        }
    }

    /// Hands `bytes` to SES, waiting no longer than the attempt limit and the deadline allow.
    async fn send_within(
        &self,
        forwarding: &Forwarding<'_>,
        bytes: Bytes,
    ) -> Result<String, SendMailError> {
        let time_limit = forwarding.message.deadline.bound(self.config.attempt_limit);
        let to = [forwarding.address.to_owned()];
        match tokio::time::timeout(
            time_limit,
            self.sender
                .send_raw(&forwarding.from, &to, bytes, &forward_options()),
        )
        .await
        {
            Ok(sent) => sent.map(|sent| sent.message_id),
            Err(_) => Err(SendMailError::Retryable(format!(
                "no answer from the mail service within {} s",
                time_limit.as_secs()
            ))),
        }
    }

    /// Keeps the outbound record of what SES did with a forward, and says what it came to.
    async fn record_sent(
        &self,
        forwarding: &Forwarding<'_>,
        sent: Result<String, SendMailError>,
        is_notice: bool,
        record: &mut Delivery,
    ) -> Result<Verdict, Retryable> {
        let retention_days = self.config.retention_days;
        match sent {
            Ok(ses_message_id) => {
                let mut outbound = forwarding.describe(Outbound::sent(
                    &ses_message_id,
                    forwarding.now,
                    retention_days,
                ));
                outbound.s3_key = Some(forwarding.copy_location().key);
                let (status, note) = if is_notice {
                    outbound.status = OutboundStatus::NoticeSent;
                    let note = format!(
                        "too large to forward ({} bytes, the limit is {}): a notice with a link \
                         to the original was sent instead",
                        forwarding.message.email.raw().len(),
                        self.config.forward.max_bytes
                    );
                    outbound.error = Some(note.clone());
                    (Status::NoticeSent, Some(note))
                } else {
                    (Status::Sent, None)
                };
                self.keep_outbound(&outbound).await?;
                record.outbound_id = Some(ses_message_id);
                Ok(Verdict::done(status, note))
            }
            Err(SendMailError::Rejected(reason)) => {
                let mut outbound = forwarding.describe(Outbound::unsent(
                    forwarding.key,
                    OutboundStatus::Rejected,
                    forwarding.now,
                    retention_days,
                ));
                outbound.error = Some(reason.clone());
                outbound.s3_key = Some(forwarding.copy_location().key);
                self.keep_outbound(&outbound).await?;
                record.outbound_id = Some(outbound.ses_message_id);
                Ok(Verdict::done(Status::Rejected, reason))
            }
            Err(SendMailError::Retryable(reason)) => Ok(Verdict::Retry {
                reason,
                retry_after: None,
            }),
        }
    }

    /// The notice sent instead of a forward over the size limit, with a link to the stored original.
    fn notice(&self, forwarding: &Forwarding<'_>, size: usize) -> Vec<u8> {
        let message = forwarding.message;
        let now = forwarding.now;
        let location = &message.received.location;
        let link = self.config.links.as_ref().map(|links| {
            let until = now + chrono::Duration::days(i64::from(links.days));
            let token = links.key.token(&location.key, until);
            (
                crate::deliver::links::link_url(&links.base_url, &token),
                until,
            )
        });
        let stored_at = format!("{}/{}", location.bucket, location.key);
        oversize_notice(&OversizeNotice {
            from_address: &forwarding.from,
            to: forwarding.address,
            original_to: forwarding.recipient,
            original_from: message.email.header("from"),
            subject: message.email.subject(),
            date: message.email.header("date"),
            size,
            limit: self.config.forward.max_bytes,
            link: link.as_ref().map(|(url, until)| (url.as_str(), *until)),
            stored_at: &stored_at,
            now,
        })
    }

    /// Writes a new outbound record; one already there (an earlier attempt got this far) stays.
    async fn keep_outbound(&self, outbound: &Outbound) -> Result<(), Retryable> {
        self.store.put_outbound(outbound, None).await?;
        Ok(())
    }
}
