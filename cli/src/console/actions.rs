//! What the console changes about a message: resend (to its own target, or along another route), redrive
//! (back to the function's queue), download the original, and erase everything about an address (after a
//! confirmation page that says what will go).

use std::sync::Arc;

use chrono::Utc;
use hyper::StatusCode;
use mailroom::ports::{MailSender, StoreError, Webhooks};
use mailroom::record::{Delivery, Status};
use mailroom::usecases::erasure::{AddressData, Held};
use mailroom::usecases::inbound::Received;

use super::message::Loaded;
use super::views::Frame;
use super::web::{self, Asked, Reply, escape};
use super::{Console, ConsoleMail, ConsoleStore, Requeue};

/// Where a browser goes after an action on a message, with what to tell the operator.
fn back_to(id: &str, notice: &str) -> Reply {
    web::redirect(&format!(
        "/messages/{}?{}",
        web::encode(id),
        web::query_string(&[("notice", notice)])
    ))
}

impl<S, M, W, X> Console<S, M, W, X>
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    /// The action bar of a message page.
    pub(super) async fn actions(&self, frame: &Frame<'_>, loaded: &Loaded, id: &str) -> String {
        let base = format!("/messages/{}", web::encode(id));
        let mut choices: Vec<(String, String)> = Vec::new();
        for record in loaded
            .records
            .iter()
            .filter(|r| matches!(r.status, Status::Rejected | Status::Failed))
        {
            let value = format!("target:{}", record.target);
            if !choices.iter().any(|(v, _)| *v == value) {
                choices.push((value, format!("again to {}", record.target)));
            }
        }
        for route in self.routes().await {
            let pattern = route.pattern.to_string();
            choices.push((format!("route:{pattern}"), format!("along route {pattern}")));
        }
        let kept = matches!(loaded.raw, Ok(Some(_)));
        let mut html = String::from("<div class=\"actions\" id=\"actions\">");
        if kept && !choices.is_empty() {
            let select = super::views::select("to", "Resend", &choices, "");
            html.push_str(&frame.form(&format!("{base}/resend"), &select, "Resend", "inline"));
        }
        if kept && loaded.records.iter().any(|r| r.status == Status::Failed) {
            html.push_str(&frame.form(&format!("{base}/redrive"), "", "Redrive", "inline"));
        }
        if kept {
            html.push_str(&format!(
                "<a href=\"{base}/raw\" id=\"download-raw\" download>Download raw</a>"
            ));
        }
        if let Some(sender) = loaded.records.iter().find_map(|r| r.sender.as_deref()) {
            html.push_str(&format!(
                " · <a href=\"/data/erase?{}\" id=\"erase-sender\">Erase the sender's data…</a>",
                escape(&web::query_string(&[("address", sender)]))
            ));
        }
        html.push_str("</div>");
        html
    }

    /// POST `/messages/{id}/resend`: `to` is `target:<its target>` (a rejected or failed delivery, reopened
    /// and attempted again with the same `webhook-id`) or `route:<pattern>` (a new delivery along it).
    pub(super) async fn resend(&self, asked: &Asked, id: &str) -> Reply {
        let loaded = match self.load(id).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return self.not_found(),
            Err(error) => return self.store_error("reading the message", &error),
        };
        let Some(received) = crate::redrive::received_again(&loaded.records, &self.bucket) else {
            return self.not_found();
        };
        if !matches!(self.mail.object_size(&received.location).await, Ok(Some(_))) {
            return back_to(
                id,
                "The original is no longer kept, so it cannot be sent again.",
            );
        }
        let outcome = match asked.form.get("to") {
            Some(to) if to.starts_with("target:") => {
                self.resend_to_target(id, &to["target:".len()..], &loaded.records, &received)
                    .await
            }
            Some(to) if to.starts_with("route:") => {
                self.resend_along(&to["route:".len()..], &received).await
            }
            _ => Ok("Choose where to resend it.".to_owned()),
        };
        self.reread(id).await;
        match outcome {
            Ok(notice) => back_to(id, &notice),
            Err(error) => back_to(id, &format!("Resend failed: {error}")),
        }
    }

    async fn resend_to_target(
        &self,
        id: &str,
        target: &str,
        records: &[Delivery],
        received: &Received,
    ) -> Result<String, StoreError> {
        if !records
            .iter()
            .any(|r| r.target == target && matches!(r.status, Status::Rejected | Status::Failed))
        {
            return Ok(format!("No rejected or failed delivery to {target}."));
        }
        self.store
            .reopen(id, &[Status::Rejected, Status::Failed], Some(target))
            .await?;
        self.inbound.process(received).await.map_err(|e| e.0)?;
        let after = self.store.message(id).await?;
        let became: Vec<String> = after
            .iter()
            .filter(|r| r.target == target)
            .map(|r| format!("{} after {} attempt(s)", r.status, r.attempts))
            .collect();
        Ok(format!("Resent to {target}: {}.", became.join(", ")))
    }

    async fn resend_along(&self, pattern: &str, received: &Received) -> Result<String, StoreError> {
        let routes = self.store.routes().await?;
        let Some(route) = routes.iter().find(|r| r.pattern.to_string() == pattern) else {
            return Ok(format!("There is no route {pattern}."));
        };
        self.inbound
            .process_via(received, route)
            .await
            .map_err(|e| e.0)?;
        let id = received.location.message_id();
        let became: Vec<String> = self
            .store
            .message(id)
            .await?
            .iter()
            .filter(|r| r.route.as_deref() == Some(pattern))
            .map(|r| {
                let why = r
                    .error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                format!("{} {}{why}", r.target, r.status)
            })
            .collect();
        Ok(format!(
            "Sent along route {pattern}: {}.",
            became.join(", ")
        ))
    }

    /// POST `/messages/{id}/redrive`: reopens the failed deliveries and hands the message back to the
    /// function (the stack's inbound queue, or the dev store's retry queue), with a fresh 72 hours.
    pub(super) async fn redrive(&self, id: &str) -> Reply {
        let records = match self.store.message(id).await {
            Ok(records) if !records.is_empty() => records,
            Ok(_) => return self.not_found(),
            Err(error) => return self.store_error("reading the message", &error),
        };
        if !records.iter().any(|r| r.status == Status::Failed) {
            return back_to(id, "Nothing to redrive: no delivery of it failed.");
        }
        let Some(received) = crate::redrive::received_again(&records, &self.bucket) else {
            return self.not_found();
        };
        if let Requeue::Unavailable(why) = &self.requeue {
            return back_to(id, why);
        }
        // Reopened before it is queued: the function may take it at once, and would find them final.
        let reopened = match self.store.reopen(id, &[Status::Failed], None).await {
            Ok(n) => n,
            Err(error) => return back_to(id, &format!("Redrive failed: {error}")),
        };
        self.reread(id).await;
        match self.requeue(&received).await {
            Ok(()) => back_to(
                id,
                &format!(
                    "Redriven: {reopened} failed delivery(ies) reopened and queued for the function."
                ),
            ),
            Err(error) => back_to(id, &format!("Reopened, but not queued: {error}")),
        }
    }

    async fn requeue(&self, received: &Received) -> Result<(), String> {
        match &self.requeue {
            Requeue::Dev(store) => {
                let payload = serde_json::to_string(&crate::local::Pending::of(received))
                    .map_err(|e| e.to_string())?;
                store
                    .schedule(&received.location.key, Utc::now(), &payload)
                    .map_err(|e| e.to_string())
            }
            #[cfg(feature = "aws")]
            Requeue::Queue(queue) => queue
                .send(&s3_event(&received.location).to_string())
                .await
                .map_err(|e| e.to_string()),
            Requeue::Unavailable(why) => Err((*why).to_owned()),
        }
    }

    /// GET `/messages/{id}/raw`: the stored original, as a download.
    pub(super) async fn download_raw(&self, id: &str) -> Reply {
        match self.load(id).await {
            Ok(Some(Loaded {
                raw: Ok(Some(raw)), ..
            })) => {
                let mut reply = web::reply(StatusCode::OK, "message/rfc822", raw);
                web::set_header(
                    &mut reply,
                    hyper::header::CONTENT_DISPOSITION,
                    &format!("attachment; filename=\"{id}.eml\""),
                );
                reply
            }
            Ok(_) => self.not_found(),
            Err(error) => self.store_error("reading the message", &error),
        }
    }

    /// What is held about an address (the same use case as `mailroom data export`).
    pub(super) async fn held(&self, address: &str) -> Result<Held, StoreError> {
        AddressData::new(self.store.clone(), self.mail.clone(), self.bucket.clone())
            .export(address)
            .await
    }

    /// GET `/data/erase?address=`: what erasing would remove, and the form that does it.
    pub(super) async fn erase_confirmation(self: &Arc<Self>, asked: &Asked) -> Reply {
        let csrf = self.guard.csrf();
        let frame = self.frame("Erase an address's data", "/data", &csrf);
        let Some(address) = asked.query.get("address").filter(|a| a.contains('@')) else {
            return web::html(
                StatusCode::BAD_REQUEST,
                frame.page(None, "<p class=\"error\">Give an email address.</p>"),
            );
        };
        let held = match self.held(address).await {
            Ok(held) => held,
            Err(error) => return self.store_error("finding what is held", &error),
        };
        let body = format!(
            "<p>About <b>{addr}</b>: {}. Erasing removes the records, the stored mail and attachments of \
             the messages it sent or received, its forwarded copies, its suppression and bounce counts; a \
             pending delivery is cancelled. Routes that name it are kept (configuration).</p>{}",
            crate::data::held_summary(&held),
            frame.form(
                "/data/erase",
                &format!(
                    "<input type=\"hidden\" name=\"address\" value=\"{}\"><label>Type the address to \
                     confirm <input name=\"confirm\" autocomplete=\"off\"></label>",
                    escape(address)
                ),
                "Erase everything about it",
                "stack danger",
            ),
            addr = escape(address),
        );
        web::html(StatusCode::OK, frame.page(None, &body))
    }

    /// POST `/data/erase`: erases, once the address was typed again.
    pub(super) async fn erase(&self, asked: &Asked) -> Reply {
        let (Some(address), confirm) = (asked.form.get("address"), asked.form.get("confirm"))
        else {
            return web::redirect("/data");
        };
        if !confirm.is_some_and(|c| c.eq_ignore_ascii_case(address)) {
            return web::redirect(&format!(
                "/data/erase?{}",
                web::query_string(&[("address", address)])
            ));
        }
        let outcome = async {
            let held = self.held(address).await?;
            let data = AddressData::new(self.store.clone(), self.mail.clone(), self.bucket.clone());
            let erased = data.delete(&held, Utc::now()).await?;
            let mut touched: Vec<&str> = held.deliveries.iter().map(|d| d.message_id.as_str()).collect();
            touched.extend(held.messages.iter().map(String::as_str));
            touched.sort_unstable();
            touched.dedup();
            for id in touched {
                self.reread(id).await;
            }
            if let Some(traces) = &self.traces {
                crate::data::forget_dev_traces(&traces.store, &traces.outbox, &held)
                    .map_err(|e| StoreError::permanent(e.to_string()))?;
            }
            Ok::<_, StoreError>(format!(
                "Erased: {} record(s), {} pending delivery(ies) cancelled, {} outbound record(s), {} \
                 suppression(s), {} stored object(s).",
                erased.deliveries, erased.cancelled, erased.outbound, erased.suppressions, erased.objects
            ))
        }
        .await;
        let notice = outcome.unwrap_or_else(|error| format!("Erasure failed: {error}"));
        web::redirect(&format!(
            "/data?{}",
            web::query_string(&[("notice", &notice)])
        ))
    }
}

/// The S3 event the function reads for a stored message, as SQS would carry it.
#[cfg(feature = "aws")]
fn s3_event(location: &mailroom::ports::MailLocation) -> serde_json::Value {
    // S3 notifications carry the key form-encoded; the function decodes it.
    let key: String = url::form_urlencoded::byte_serialize(location.key.as_bytes()).collect();
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "eventTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "s3": { "bucket": { "name": location.bucket }, "object": { "key": key } }
        }]
    })
}
