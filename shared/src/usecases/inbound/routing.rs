//! Who the message is for and where each recipient's route sends it; the routes a warm container keeps.

use std::time::Instant;

use tracing::info;

use super::{Inbound, Message, Outcome, ROUTES_REREAD_AFTER, Retryable};
use crate::mail::envelope::{Envelope, RecipientSource};
use crate::ports::{
    Clock, MailSender, MailStore, ObjectStore, OutboundStore, RecordStore, RouteStore,
    SuppressionList, Webhooks,
};
use crate::record::{Delivery, Status};
use crate::route::{self, Pattern, Route};

impl<M, S, W, X, C> Inbound<M, S, W, X, C>
where
    M: MailStore + ObjectStore,
    S: RecordStore + RouteStore + SuppressionList + OutboundStore,
    W: Webhooks,
    X: MailSender,
    C: Clock,
{
    /// The recipients to deliver for: the SMTP ones when known; otherwise those of To/Cc/Delivered-To that
    /// belong to our domains and match a route.
    pub(super) fn recipients(&self, envelope: &Envelope, routes: &[Route]) -> Vec<String> {
        match envelope.recipient_source {
            RecipientSource::Smtp => envelope.recipients.clone(),
            RecipientSource::Unknown => Vec::new(),
            RecipientSource::Headers => envelope
                .recipients
                .iter()
                .filter(|r| self.in_our_domains(r))
                .filter(|r| {
                    route::resolve(routes, r).is_some() || self.config.default_webhook.is_some()
                })
                .cloned()
                .collect(),
        }
    }

    /// Whether `address` is in one of the domains mail is received for (any, when none are configured).
    fn in_our_domains(&self, address: &str) -> bool {
        if self.config.domains.is_empty() {
            return true;
        }
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        self.config
            .domains
            .iter()
            .any(|ours| domain == *ours || domain.ends_with(&format!(".{ours}")))
    }

    /// Delivers the message for each recipient along its route, or to the catch-all webhook when no route
    /// takes it; the outcomes combined.
    pub(super) async fn deliver_to_recipients(
        &self,
        message: &Message<'_>,
        recipients: &[String],
        routes: &[Route],
    ) -> Result<Outcome, Retryable> {
        let default_route = self.config.default_webhook.clone().map(|webhook| Route {
            webhook: Some(webhook),
            ..Route::new(Pattern::CatchAll)
        });
        let mut outcome = Outcome::Done;
        for recipient in recipients {
            let matched = route::resolve(routes, recipient)
                .map(|m| (m.route, false))
                .or(default_route.as_ref().map(|r| (r, true)));
            let this = match matched {
                None => {
                    self.record_no_route(message, recipient, None).await?;
                    Outcome::Done
                }
                Some((route, is_default)) => {
                    self.deliver_route(message, recipient, route, is_default)
                        .await?
                }
            };
            outcome = outcome.combine(this);
        }
        Ok(outcome)
    }

    /// Delivers the message for each recipient along `route`, whatever route takes the recipient.
    pub(super) async fn deliver_along(
        &self,
        message: &Message<'_>,
        recipients: &[String],
        route: &Route,
    ) -> Result<Outcome, Retryable> {
        let mut outcome = Outcome::Done;
        for recipient in recipients {
            outcome = outcome.combine(self.deliver_route(message, recipient, route, false).await?);
        }
        Ok(outcome)
    }

    /// Delivers the message for `recipient` to every target of `route`, or records why it attempts none:
    /// the route is disabled, drops the message on an SES verdict, or has no target.
    async fn deliver_route(
        &self,
        message: &Message<'_>,
        recipient: &str,
        route: &Route,
        is_default: bool,
    ) -> Result<Outcome, Retryable> {
        let pattern = route.pattern.to_string();
        let finish = |mut record: Delivery, status: Status, error: Option<String>| {
            record.route = Some(pattern.clone());
            record.status = status;
            record.error = error;
            record.redact(&route.redact);
            record
        };
        if !route.enabled {
            let record = finish(
                self.base_record(message, recipient, ""),
                Status::Rejected,
                Some("the route is disabled".to_owned()),
            );
            self.save_once(&record).await?;
            self.report(Some(message), recipient, &record, 0);
            return Ok(Outcome::Done);
        }
        if let Some(rule) = route
            .drop_on
            .iter()
            .find(|rule| rule.trips(message.envelope.ses.as_ref()))
        {
            let record = finish(
                self.base_record(message, recipient, ""),
                Status::Dropped,
                Some(format!("dropped: SES {} verdict FAIL", rule.as_str())),
            );
            self.save_once(&record).await?;
            self.report(Some(message), recipient, &record, 0);
            info!(message_id = %record.message_id, route = %crate::record::masked_pattern(&route.pattern.to_string()), "dropped on SES verdict");
            return Ok(Outcome::Done);
        }
        if route.webhook.is_none() && route.forward.is_empty() {
            let record = finish(
                self.base_record(message, recipient, ""),
                Status::Rejected,
                Some("the route has no target".to_owned()),
            );
            self.save_once(&record).await?;
            self.report(Some(message), recipient, &record, 0);
            return Ok(Outcome::Done);
        }

        let mut outcome = Outcome::Done;
        if let Some(webhook) = &route.webhook {
            outcome = outcome.combine(
                self.deliver_webhook(message, recipient, route, webhook, is_default)
                    .await?,
            );
        }
        for address in &route.forward {
            outcome = outcome.combine(
                self.deliver_forward(message, recipient, route, address)
                    .await?,
            );
        }
        Ok(outcome)
    }

    /// The routes, from the store at most every [`ROUTES_REREAD_AFTER`].
    pub(super) async fn routes(&self) -> Result<Vec<Route>, Retryable> {
        if let Ok(guard) = self.routes.lock()
            && let Some((loaded, routes)) = guard.as_ref()
            && loaded.elapsed() < ROUTES_REREAD_AFTER
        {
            return Ok(routes.clone());
        }
        let routes = self.store.routes().await?;
        if let Ok(mut guard) = self.routes.lock() {
            *guard = Some((Instant::now(), routes.clone()));
        }
        Ok(routes)
    }

    /// Drops the kept routes, so the next message reads them again.
    pub(super) fn forget_routes(&self) {
        if let Ok(mut guard) = self.routes.lock() {
            *guard = None;
        }
    }
}
