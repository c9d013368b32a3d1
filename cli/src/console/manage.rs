//! Routes (list, add, edit, enable and disable, rotate a secret shown once), suppressions (list, add,
//! remove), and data requests (export and erase by address): what the `routes`, `suppressions` and `data`
//! commands do, with the same checks.

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use hyper::StatusCode;
use mailroom::feedback::{Suppression, SuppressionReason};
use mailroom::format::Format;
use mailroom::ports::{MailSender, Webhooks};
use mailroom::route::{AttachmentMode, DropOn, Redact, Route, WebhookSecret};

use super::views::{self, Frame, or_dash};
use super::web::{self, Asked, Params, Reply, escape};
use super::{Console, ConsoleMail, ConsoleStore};

fn to_page(path: &str, notice: &str) -> Reply {
    web::redirect(&format!(
        "{path}?{}",
        web::query_string(&[("notice", notice)])
    ))
}

/// The arguments of `routes add` from the route form.
fn add_args(form: &Params) -> crate::routes::AddArgs {
    let split = |name: &str| -> Vec<String> {
        form.get(name)
            .map(|v| {
                v.split([',', ' ', '\n'])
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    crate::routes::AddArgs {
        pattern: form.get("pattern").unwrap_or_default().to_owned(),
        webhook: form.get("webhook").map(str::to_owned),
        format: form
            .get("format")
            .and_then(|f| f.parse().ok())
            .unwrap_or_default(),
        generate_secret: form.get("generate_secret").is_some() && form.get("webhook").is_some(),
        attachments: form
            .get("attachments")
            .and_then(|a| a.parse().ok())
            .unwrap_or_default(),
        forward: split("forward"),
        forward_from: form.get("forward_from").map(str::to_owned),
        drop_on: form
            .all("drop_on")
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect(),
        redact: form
            .all("redact")
            .iter()
            .filter_map(|r| r.parse().ok())
            .collect(),
        events: form.get("events").map(str::to_owned),
        ..crate::routes::AddArgs::default()
    }
}

impl<S, M, W, X> Console<S, M, W, X>
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    pub(super) async fn routes_page(&self, asked: &Asked) -> Reply {
        let csrf = self.guard.csrf();
        let frame = self.frame("Routes", "/routes", &csrf);
        let mut routes = match self.store.routes().await {
            Ok(routes) => routes,
            Err(error) => return self.store_error("reading the routes", &error),
        };
        routes.sort_by_key(|r| r.pattern.to_string());
        let mut body = String::from(
            "<p><a href=\"/routes/edit\" id=\"add-route\">Add a route</a></p><table id=\"routes\"><thead><tr>\
             <th>Pattern</th><th>Targets</th><th>Signing</th><th>State</th><th></th></tr></thead><tbody>",
        );
        for route in &routes {
            body.push_str(&route_row(&frame, route));
        }
        body.push_str("</tbody></table>");
        if routes.is_empty() {
            body.push_str("<p class=\"muted\">No routes: mail to any address is recorded as no_route (or goes to the default webhook).</p>");
        }
        web::html(StatusCode::OK, frame.page(asked.query.get("notice"), &body))
    }

    /// The form that adds a route, or edits the one `?pattern=` names.
    pub(super) async fn route_form_page(&self, asked: &Asked) -> Reply {
        let csrf = self.guard.csrf();
        let editing = match asked.query.get("pattern") {
            Some(pattern) => match self.store.routes().await {
                Ok(routes) => routes
                    .into_iter()
                    .find(|r| r.pattern.to_string() == pattern),
                Err(error) => return self.store_error("reading the routes", &error),
            },
            None => None,
        };
        let title = if editing.is_some() {
            "Edit a route"
        } else {
            "Add a route"
        };
        let frame = self.frame(title, "/routes", &csrf);
        let body = route_form(&frame, editing.as_ref());
        web::html(StatusCode::OK, frame.page(asked.query.get("notice"), &body))
    }

    /// POST `/routes/{save|enable|disable|remove|rotate|retire}`.
    pub(super) async fn route_action(&self, asked: &Asked, action: &str) -> Reply {
        if action == "save" {
            return self.save_route(asked).await;
        }
        let Some(pattern) = asked
            .form
            .get("pattern")
            .and_then(|p| crate::routes::parse_pattern(p).ok())
        else {
            return to_page("/routes", "That is not a route pattern.");
        };
        let done = match action {
            "enable" => match self.store.set_enabled(&pattern, true).await {
                Ok(true) => self
                    .store
                    .set_webhook_disabled(&pattern, None)
                    .await
                    .map(|_| format!("Enabled route {pattern}.")),
                Ok(false) => Ok(format!("There is no route {pattern}.")),
                Err(error) => Err(error),
            },
            "disable" => self.store.set_enabled(&pattern, false).await.map(|found| {
                if found {
                    format!("Disabled route {pattern}: its mail is recorded, not delivered.")
                } else {
                    format!("There is no route {pattern}.")
                }
            }),
            "remove" => self.store.remove_route(&pattern).await.map(|found| {
                if found {
                    format!("Removed route {pattern}.")
                } else {
                    format!("There is no route {pattern}.")
                }
            }),
            "rotate" | "retire" => return self.change_secrets(&pattern.to_string(), action).await,
            _ => return self.not_found(),
        };
        self.forget_routes();
        match done {
            Ok(notice) => to_page("/routes", &notice),
            Err(error) => to_page("/routes", &format!("Failed: {error}")),
        }
    }

    async fn save_route(&self, asked: &Asked) -> Reply {
        let args = add_args(&asked.form);
        let pattern = args.pattern.clone();
        let (mut route, generated) = match crate::routes::route_from(args) {
            Ok(made) => made,
            Err(error) => {
                let notice = format!("Not saved: {error}");
                let query = web::query_string(&[("notice", &notice), ("pattern", &pattern)]);
                return web::redirect(&format!("/routes/edit?{query}"));
            }
        };
        let existing = self.store.routes().await.unwrap_or_default();
        let old = existing.iter().find(|r| r.pattern == route.pattern);
        // An edit keeps the secrets (never shown again) and the on/off state unless told otherwise.
        if let (Some(old), None) = (old, &generated) {
            if let (Some(new_hook), Some(old_hook)) = (route.webhook.as_mut(), old.webhook.as_ref())
            {
                new_hook.secrets = old_hook.secrets.clone();
            }
            route.enabled = old.enabled;
        }
        let saved = self.store.put_route(&route).await;
        self.forget_routes();
        if let Err(error) = saved {
            return to_page("/routes", &format!("Not saved: {error}"));
        }
        match generated {
            Some(secret) => self.secret_page(&route.pattern.to_string(), &secret, "saved"),
            None => to_page("/routes", &format!("Saved route {}.", route.pattern)),
        }
    }

    /// Rotation: a new secret signs first and the current one second (both signatures go out, so the app
    /// can switch when it likes); retiring drops all but the newest.
    async fn change_secrets(&self, pattern: &str, action: &str) -> Reply {
        let routes = match self.store.routes().await {
            Ok(routes) => routes,
            Err(error) => return self.store_error("reading the routes", &error),
        };
        let Some(mut route) = routes
            .into_iter()
            .find(|r| r.pattern.to_string() == pattern)
        else {
            return to_page("/routes", &format!("There is no route {pattern}."));
        };
        let Some(webhook) = route.webhook.as_mut() else {
            return to_page(
                "/routes",
                &format!("Route {pattern} has no webhook to sign for."),
            );
        };
        let generated = if action == "rotate" {
            let Ok(secret) = WebhookSecret::generate() else {
                return to_page("/routes", "Cannot generate a secret (no randomness).");
            };
            webhook.secrets.insert(0, secret.clone());
            webhook.secrets.truncate(2);
            Some(secret)
        } else {
            webhook.secrets.truncate(1);
            None
        };
        let saved = self.store.put_route(&route).await;
        self.forget_routes();
        if let Err(error) = saved {
            return to_page("/routes", &format!("Not saved: {error}"));
        }
        match generated {
            Some(secret) => self.secret_page(pattern, &secret, "rotated"),
            None => to_page(
                "/routes",
                &format!("Route {pattern} now signs with its newest secret only."),
            ),
        }
    }

    /// The one page that shows a secret.
    fn secret_page(&self, pattern: &str, secret: &WebhookSecret, what: &str) -> Reply {
        let csrf = self.guard.csrf();
        let frame = self.frame("Webhook secret", "/routes", &csrf);
        let body = format!(
            "<p>Route <b>{}</b> {what}. Its new signing secret is shown <b>this once</b>; Mailroom keeps \
             it but never shows it again. Verify the <code>webhook-signature</code> header with it.</p>\
             <p class=\"secret\" id=\"secret\">{}</p><p><a href=\"/routes\">Back to the routes</a></p>",
            escape(pattern),
            escape(&secret.to_string()),
        );
        web::html(StatusCode::OK, frame.page(None, &body))
    }

    pub(super) async fn suppressions_page(&self, asked: &Asked) -> Reply {
        let csrf = self.guard.csrf();
        let frame = self.frame("Suppressions", "/suppressions", &csrf);
        let list = match self.store.suppressions().await {
            Ok(list) => list,
            Err(error) => return self.store_error("reading the suppression list", &error),
        };
        let add = frame.form(
            "/suppressions/add",
            &format!(
                "{}{}",
                views::input("address", "Address", "", "email"),
                views::input("note", "Note", "", "text")
            ),
            "Suppress",
            "inline",
        );
        let mut body = format!(
            "<p class=\"muted\">Nothing is forwarded or sent to these addresses. Bounces and complaints \
             add them; you may add and remove them by hand.</p>{add}<table id=\"suppressions\"><thead><tr>\
             <th>Address</th><th>Reason</th><th>Since</th><th>Detail</th><th></th></tr></thead><tbody>"
        );
        for s in &list {
            let remove = frame.form(
                "/suppressions/remove",
                &format!(
                    "<input type=\"hidden\" name=\"address\" value=\"{}\">",
                    escape(&s.address)
                ),
                "Remove",
                "inline",
            );
            body.push_str(&format!(
                "<tr data-address=\"{a}\"><td>{a}</td><td>{}</td><td>{}</td><td>{}</td><td>{remove}</td></tr>",
                escape(s.reason.as_str()),
                escape(&s.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
                or_dash(s.detail.as_deref()),
                a = escape(&s.address),
            ));
        }
        body.push_str("</tbody></table>");
        if list.is_empty() {
            body.push_str("<p class=\"muted\" id=\"no-suppressions\">No suppressed addresses.</p>");
        }
        web::html(StatusCode::OK, frame.page(asked.query.get("notice"), &body))
    }

    /// POST `/suppressions/{add|remove}`.
    pub(super) async fn suppression_action(&self, asked: &Asked, action: &str) -> Reply {
        let address =
            match crate::suppressions::check_address(asked.form.get("address").unwrap_or("")) {
                Ok(address) => address,
                Err(error) => return to_page("/suppressions", &error.to_string()),
            };
        let done = match action {
            "add" => self
                .store
                .suppress(&Suppression {
                    address: address.clone(),
                    reason: SuppressionReason::Manual,
                    created_at: Utc::now(),
                    feedback_id: None,
                    ses_message_id: None,
                    detail: asked.form.get("note").map(str::to_owned),
                })
                .await
                .map(|added| {
                    if added {
                        format!("Suppressed {address}.")
                    } else {
                        format!("{address} was suppressed already.")
                    }
                }),
            "remove" => self.store.unsuppress(&address).await.map(|removed| {
                if removed {
                    format!("Removed {address} from the suppression list.")
                } else {
                    format!("{address} is not suppressed.")
                }
            }),
            _ => return self.not_found(),
        };
        match done {
            Ok(notice) => to_page("/suppressions", &notice),
            Err(error) => to_page("/suppressions", &format!("Failed: {error}")),
        }
    }

    pub(super) async fn data_page(self: &Arc<Self>, asked: &Asked) -> Reply {
        let csrf = self.guard.csrf();
        let frame = self.frame("Data requests", "/data", &csrf);
        let body = format!(
            "<p>What Mailroom holds about one address (as the recipient, the envelope sender, or the From: or \
             Reply-To: address), as <code>mailroom data</code> finds it.</p>\
             <form method=\"get\" action=\"/data/export\" class=\"inline\" id=\"export\">{}<button>Export (JSON)</button></form>\
             <form method=\"get\" action=\"/data/erase\" class=\"inline\" id=\"erase\">{}<button class=\"danger\">Erase…</button></form>",
            views::input("address", "Address", "", "email"),
            views::input("address", "Address", "", "email"),
        );
        web::html(StatusCode::OK, frame.page(asked.query.get("notice"), &body))
    }

    /// GET `/data/export?address=`: everything held, as the JSON `mailroom data export` prints.
    pub(super) async fn export(&self, asked: &Asked) -> Reply {
        let Some(address) = asked.query.get("address").filter(|a| a.contains('@')) else {
            return to_page("/data", "Give an email address.");
        };
        match self.held(address).await {
            Ok(held) => {
                let mut reply = web::json(
                    StatusCode::OK,
                    &serde_json::to_value(&held).unwrap_or_default(),
                );
                web::set_header(
                    &mut reply,
                    hyper::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"mailroom-export.json\"",
                );
                reply
            }
            Err(error) => self.store_error("finding what is held", &error),
        }
    }
}

fn route_row(frame: &Frame<'_>, route: &Route) -> String {
    let pattern = route.pattern.to_string();
    let hidden = format!(
        "<input type=\"hidden\" name=\"pattern\" value=\"{}\">",
        escape(&pattern)
    );
    let signing = match route.webhook.as_ref().map(|w| w.secrets.len()) {
        None => "–".to_owned(),
        Some(0) => "unsigned".to_owned(),
        Some(1) => "1 secret".to_owned(),
        Some(n) => format!("{n} secrets (rotating)"),
    };
    let toggle = if route.enabled {
        frame.form("/routes/disable", &hidden, "Disable", "inline")
    } else {
        frame.form("/routes/enable", &hidden, "Enable", "inline")
    };
    let mut actions = format!(
        "<a href=\"/routes/edit?{}\">Edit</a> {toggle}",
        escape(&web::query_string(&[("pattern", &pattern)]))
    );
    if route.webhook.is_some() {
        actions.push_str(&frame.form("/routes/rotate", &hidden, "Rotate secret", "inline"));
        if route.webhook.as_ref().is_some_and(|w| w.secrets.len() > 1) {
            actions.push_str(&frame.form("/routes/retire", &hidden, "Retire old secret", "inline"));
        }
    }
    actions.push_str(
        &frame
            .form("/routes/remove", &hidden, "Remove", "inline")
            .replacen(
                "<form ",
                &format!("<form data-confirm=\"Remove route {}?\" ", escape(&pattern)),
                1,
            ),
    );
    format!(
        "<tr data-pattern=\"{p}\"><td>{p}</td><td>{}</td><td>{signing}</td><td>{}</td><td>{actions}</td></tr>",
        escape(&crate::routes::targets(route)),
        if route.enabled { "enabled" } else { "disabled" },
        p = escape(&pattern),
    )
}

fn route_form(frame: &Frame<'_>, route: Option<&Route>) -> String {
    let pattern = route.map(|r| r.pattern.to_string()).unwrap_or_default();
    let pattern_field = if route.is_some() {
        format!(
            "<label>Pattern <input name=\"pattern\" value=\"{}\" readonly></label>",
            escape(&pattern)
        )
    } else {
        views::input(
            "pattern",
            "Pattern (support@example.com, *@example.com, *@*.example.com, *)",
            "",
            "text",
        )
    };
    let drop_on = route.map_or_else(|| vec![DropOn::Virus], |r| r.drop_on.clone());
    let redact: Vec<Redact> = route.map(|r| r.redact.clone()).unwrap_or_default();
    let fields = format!(
        "{pattern_field}{}{}<fieldset><legend>Drop on SES verdict</legend>{}</fieldset>\
         <fieldset><legend>Keep out of the records</legend>{}</fieldset>{}",
        webhook_fields(route),
        views::input(
            "forward",
            "Forward to (addresses, comma separated)",
            &route.map(|r| r.forward.join(", ")).unwrap_or_default(),
            "text"
        ) + &views::input(
            "forward_from",
            "Forward from (verified address)",
            route.and_then(|r| r.forward_from.as_deref()).unwrap_or(""),
            "email"
        ),
        checkboxes("drop_on", &["virus", "spam"], &|v| {
            drop_on.iter().any(|d| d.as_str() == v)
        }),
        checkboxes("redact", &Redact::ALL.map(|r| r.as_str()), &|v| {
            redact.iter().any(|r| r.as_str() == v)
        }),
        views::input(
            "events",
            "Events URL (bounces, complaints of forwards)",
            route.and_then(|r| r.events.as_deref()).unwrap_or(""),
            "url"
        ),
    );
    frame.form("/routes/save", &fields, "Save route", "stack")
}

/// The webhook's URL, format, attachment mode, and the choice to generate a secret.
fn webhook_fields(route: Option<&Route>) -> String {
    let webhook = route.and_then(|r| r.webhook.as_ref());
    let formats: Vec<(String, String)> = Format::ALL
        .iter()
        .map(|f| (f.as_str().to_owned(), f.as_str().to_owned()))
        .collect();
    let modes: Vec<(String, String)> = [
        AttachmentMode::Inline,
        AttachmentMode::S3,
        AttachmentMode::Auto,
    ]
    .iter()
    .map(|m| (m.as_str().to_owned(), m.as_str().to_owned()))
    .collect();
    format!(
        "{}{}{}<label><span><input type=\"checkbox\" name=\"generate_secret\" value=\"1\"{}> \
         generate a new signing secret (shown once)</span></label>",
        views::input(
            "webhook",
            "Webhook URL",
            webhook.map(|w| w.url.as_str()).unwrap_or(""),
            "url"
        ),
        views::select(
            "format",
            "Format",
            &formats,
            webhook.map_or("json", |w| w.format.as_str())
        ),
        views::select(
            "attachments",
            "Attachments",
            &modes,
            webhook.map_or("inline", |w| w.attachments.as_str())
        ),
        if route.is_none() { " checked" } else { "" },
    )
}

fn checkboxes(name: &str, values: &[&str], on: &dyn Fn(&str) -> bool) -> String {
    values
        .iter()
        .map(|v| {
            let checked = if on(v) { " checked" } else { "" };
            format!(
                "<label><span><input type=\"checkbox\" name=\"{name}\" value=\"{v}\"{checked}> {v}</span></label>"
            )
        })
        .collect()
}
