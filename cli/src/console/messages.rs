//! The list of messages: newest first, a page at a time through the store's indexes (never a scan), with
//! filters; counts per status; new rows fetched by the page's script.
//!
//! Recipient, sender, status and the date range are the store's own filters (index keys and conditions).
//! Subject words, route and tag are applied to what the store lists: a page keeps reading until it has
//! [`PAGE`] rows or has looked at [`MOST_EXAMINED`] records, then offers to go on from there.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use hyper::StatusCode;
use mailroom::ports::{MailSender, RecordFilter, StoreError, Webhooks};
use mailroom::record::{Delivery, Status};
use serde_json::{Value, json};

use super::views::{self, or_dash, status_badge};
use super::web::{self, Asked, Params, Reply, escape};
use super::{Console, ConsoleMail, ConsoleStore};

/// Rows a page shows (more when the words, route or tag filters keep more of the last read).
pub const PAGE: usize = 50;

/// Records one page looks at, at most, for the filters the store cannot apply.
const MOST_EXAMINED: usize = 5_000;

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct Search {
    recipient: Option<String>,
    sender: Option<String>,
    words: Vec<String>,
    status: Option<Status>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    route: Option<String>,
    tag: Option<String>,
    after: Option<String>,
    /// The parameters as given, for links to other pages of the same search.
    given: Vec<(String, String)>,
}

/// The fields of the filter form, in order: name and label.
const FIELDS: [(&str, &str); 8] = [
    ("recipient", "Recipient"),
    ("sender", "Sender"),
    ("subject", "Subject words"),
    ("status", "Status"),
    ("since", "From date"),
    ("until", "To date"),
    ("route", "Route"),
    ("tag", "Tag (+detail)"),
];

impl Search {
    /// Reads the query string; a bad status or date is a message for the page.
    pub fn read(query: &Params) -> Result<Search, String> {
        let text = |name: &str| query.get(name).map(str::to_owned);
        let status = match query.get("status") {
            Some(s) => Some(s.parse::<Status>()?),
            None => None,
        };
        let given = FIELDS
            .iter()
            .filter_map(|(name, _)| query.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
            .collect();
        Ok(Search {
            recipient: text("recipient"),
            sender: text("sender"),
            words: query
                .get("subject")
                .map(|s| s.split_whitespace().map(str::to_lowercase).collect())
                .unwrap_or_default(),
            status,
            since: query.get("since").map(|t| moment(t, false)).transpose()?,
            until: query.get("until").map(|t| moment(t, true)).transpose()?,
            route: text("route"),
            tag: text("tag").map(|t| t.to_lowercase()),
            after: text("after"),
            given,
        })
    }

    fn filter(&self, limit: usize) -> RecordFilter {
        RecordFilter {
            recipient: self.recipient.clone(),
            sender: self.sender.clone(),
            status: self.status,
            since: self.since,
            until: self.until,
            limit,
        }
    }

    /// Whether some filters are applied to what the store lists.
    fn narrows(&self) -> bool {
        !self.words.is_empty() || self.route.is_some() || self.tag.is_some()
    }

    /// Whether a record meets every filter (for rows kept in memory).
    fn matches(&self, record: &Delivery) -> bool {
        let same = |wanted: &Option<String>, value: &Option<String>| {
            wanted.as_ref().is_none_or(|w| {
                value
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case(w.trim()))
            })
        };
        same(&self.recipient, &record.recipient)
            && same(&self.sender, &record.sender)
            && self.status.is_none_or(|s| s == record.status)
            && self.since.is_none_or(|since| record.received_at >= since)
            && self.until.is_none_or(|until| record.received_at <= until)
            && self.keeps(record)
    }

    /// Whether a record the store listed meets the filters it could not apply.
    fn keeps(&self, record: &Delivery) -> bool {
        let subject = record.subject.as_deref().unwrap_or("").to_lowercase();
        self.words
            .iter()
            .all(|word| subject.contains(word.as_str()))
            && self
                .route
                .as_ref()
                .is_none_or(|route| record.route.as_deref() == Some(route.as_str()))
            && self
                .tag
                .as_ref()
                .is_none_or(|tag| tag_of(record).as_deref() == Some(tag.as_str()))
    }

    /// The query string of this search, starting after `after` when given.
    pub fn query(&self, after: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .given
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(after) = after {
            pairs.push(("after", after));
        }
        web::query_string(&pairs)
    }

    fn value(&self, name: &str) -> &str {
        self.given
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A date (`2026-12-03`: the whole day), a `datetime-local` value or RFC 3339; `end` picks the day's end.
fn moment(text: &str, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M") {
        return Ok(at.and_utc());
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date (2026-12-03, or 2026-12-03T14:00)"))?;
    let time = if end {
        day.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    time.map(|t| t.and_utc())
        .ok_or_else(|| format!("`{text}` is not a date"))
}

/// The `+detail` of the recipient's local part (`support+acme@…` → `acme`): the tag of inbound mail.
pub fn tag_of(record: &Delivery) -> Option<String> {
    let recipient = record.recipient.as_deref()?;
    let (local, _) = recipient.rsplit_once('@')?;
    let (_, detail) = local.split_once('+')?;
    (!detail.is_empty()).then(|| detail.to_lowercase())
}

/// One page of a search.
pub struct Found {
    /// The records, newest first.
    pub records: Vec<Delivery>,
    /// Where the next page starts.
    pub next: Option<String>,
    /// How many records the store listed for it.
    pub examined: usize,
}

impl<S, M, W, X> Console<S, M, W, X>
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    /// One page of records that meet `search`: from the rows kept in memory when there are (but for an
    /// address, which the index finds even where a route redacted it), else from the store.
    pub async fn find(self: &Arc<Self>, search: &Search) -> Result<Found, StoreError> {
        let _ = self.statistics().await;
        if search.recipient.is_none()
            && search.sender.is_none()
            && let Some(found) = self.page_of_rows(search)
        {
            self.freshen_rows();
            return Ok(found);
        }
        let after = search
            .after
            .clone()
            .filter(|token| !super::recent::is_row_token(token));
        let mut found = Found {
            records: Vec::new(),
            next: after,
            examined: 0,
        };
        loop {
            let want = if search.narrows() {
                200
            } else {
                PAGE - found.records.len()
            };
            let page = self
                .store
                .page(&search.filter(want), found.next.as_deref())
                .await?;
            found.examined += page.records.len();
            found
                .records
                .extend(page.records.into_iter().filter(|r| search.keeps(r)));
            found.next = page.next;
            if found.records.len() >= PAGE
                || found.next.is_none()
                || found.examined >= MOST_EXAMINED
            {
                return Ok(found);
            }
        }
    }

    fn page_of_rows(&self, search: &Search) -> Option<Found> {
        let rows = self.rows.as_ref()?.read().ok()?;
        let listed = rows.as_ref()?.page(
            search
                .after
                .as_deref()
                .filter(|t| super::recent::is_row_token(t)),
            PAGE,
            super::recent::MOST_ROWS,
            |record| search.matches(record),
        );
        Some(Found {
            records: listed.records,
            next: listed.next,
            examined: listed.examined,
        })
    }

    /// Starts reading the newest mail into the rows when they are older than [`TAIL_EVERY`].
    ///
    /// [`TAIL_EVERY`]: super::recent::TAIL_EVERY
    pub(super) fn freshen_rows(self: &Arc<Self>) {
        let stale = self
            .rows
            .as_ref()
            .and_then(|rows| {
                rows.read()
                    .ok()
                    .map(|r| r.as_ref().and_then(|r| r.fresh_at))
            })
            .flatten()
            .is_some_and(|at| super::now() - at > self.stats.tail_every(super::recent::TAIL_EVERY));
        if !stale {
            return;
        }
        let Ok(running) = self.stats.tail_running.clone().try_lock_owned() else {
            return;
        };
        let console = self.clone();
        tokio::spawn(async move {
            let _running = running;
            let _ = console.read_tail().await;
        });
    }

    /// Reads a message's records again into the rows, after an action changed them.
    pub(super) async fn reread(&self, message_id: &str) {
        let Some(rows) = &self.rows else {
            return;
        };
        let Ok(records) = self.store.message(message_id).await else {
            return;
        };
        if let Ok(mut kept) = rows.write()
            && let Some(kept) = kept.as_mut()
        {
            kept.put_message(message_id, &records);
        }
    }

    pub(super) async fn messages_page(self: &Arc<Self>, asked: &Asked) -> Reply {
        let csrf = self.guard.csrf();
        let frame = self.frame("Messages", "/messages", &csrf);
        let search = match Search::read(&asked.query) {
            Ok(search) => search,
            Err(error) => {
                let body = format!(
                    "<p class=\"error\">{}</p>{}",
                    escape(&error),
                    filter_form(&Search::default(), &[])
                );
                return web::html(StatusCode::BAD_REQUEST, frame.page(None, &body));
            }
        };
        let found = match self.find(&search).await {
            Ok(found) => found,
            Err(error) => return self.store_error("listing the messages", &error),
        };
        let routes = self.route_patterns().await;
        let mut body = self.status_counts(&search).await;
        body.push_str(&filter_form(&search, &routes));
        body.push_str(&listing(&search, &found));
        web::html(StatusCode::OK, frame.page(asked.query.get("notice"), &body))
    }

    async fn route_patterns(&self) -> Vec<String> {
        let mut patterns: Vec<String> = self
            .routes()
            .await
            .iter()
            .map(|r| r.pattern.to_string())
            .collect();
        patterns.sort();
        patterns
    }

    /// Counts per status over the days the overview counts, each a link to the filtered list.
    async fn status_counts(self: &Arc<Self>, search: &Search) -> String {
        let Some(snapshot) = self.statistics().await else {
            return "<p class=\"counts muted\" id=\"counts\">counting the last 60 days…</p>"
                .to_owned();
        };
        let mut html = String::from("<p class=\"counts\" id=\"counts\">");
        let all = search.status.is_none();
        html.push_str(&format!(
            "<a href=\"/messages\" aria-current=\"{all}\">all<b>{}</b></a>",
            snapshot.total()
        ));
        for (status, count) in snapshot.by_status() {
            let current = search.status == Some(status);
            html.push_str(&format!(
                "<a href=\"/messages?status={0}\" aria-current=\"{current}\" data-status=\"{0}\">{0}<b>{count}</b></a>",
                status.as_str()
            ));
        }
        html.push_str(&format!(
            "<span class=\"muted\">last {} days, as of {}</span></p>",
            super::stats::DAYS,
            snapshot.at.format("%H:%M:%S")
        ));
        html
    }

    /// `/api/messages`: the page's messages, each with its deliveries (the inspector's shape); the next
    /// page's token in `X-Next-Page`.
    pub(super) async fn messages_api(self: &Arc<Self>, asked: &Asked) -> Reply {
        let search = match Search::read(&asked.query) {
            Ok(search) => search,
            Err(error) => return web::json(StatusCode::BAD_REQUEST, &json!({ "error": error })),
        };
        match self.find(&search).await {
            Ok(found) => {
                let mut reply = web::json(StatusCode::OK, &Value::Array(grouped(&found.records)));
                if let Some(next) = &found.next {
                    web::set_header(
                        &mut reply,
                        hyper::header::HeaderName::from_static("x-next-page"),
                        next,
                    );
                }
                reply
            }
            Err(error) => web::json(
                StatusCode::BAD_GATEWAY,
                &json!({ "error": error.to_string() }),
            ),
        }
    }

    /// `/api/rows`: the first page's rows as the list renders them, for the script that adds new ones.
    pub(super) async fn rows_api(self: &Arc<Self>, asked: &Asked) -> Reply {
        let search = match Search::read(&asked.query) {
            Ok(search) => Search {
                after: None,
                ..search
            },
            Err(error) => return web::json(StatusCode::BAD_REQUEST, &json!({ "error": error })),
        };
        match self.find(&search).await {
            Ok(found) => web::json(
                StatusCode::OK,
                &json!({ "rows_html": rows(&found.records), "count": found.records.len() }),
            ),
            Err(error) => web::json(
                StatusCode::BAD_GATEWAY,
                &json!({ "error": error.to_string() }),
            ),
        }
    }
}

/// The filter form.
fn filter_form(search: &Search, routes: &[String]) -> String {
    let mut statuses = vec![(String::new(), "any".to_owned())];
    statuses.extend(
        Status::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), s.as_str().to_owned())),
    );
    let mut route_options = vec![(String::new(), "any".to_owned())];
    route_options.extend(routes.iter().map(|r| (r.clone(), r.clone())));
    let mut html =
        String::from("<form method=\"get\" action=\"/messages\" class=\"filters\" id=\"filters\">");
    for (name, label) in FIELDS {
        html.push_str(&match name {
            "status" => views::select(name, label, &statuses, search.value(name)),
            "route" => views::select(name, label, &route_options, search.value(name)),
            "since" | "until" => views::input(name, label, search.value(name), "date"),
            _ => views::input(name, label, search.value(name), "search"),
        });
    }
    html.push_str("<button type=\"submit\">Filter</button> <a href=\"/messages\">Clear</a></form>");
    html
}

/// The table of one page, and the link to the next.
fn listing(search: &Search, found: &Found) -> String {
    let poll = if search.after.is_none() {
        format!(" data-poll=\"/api/rows?{}\"", escape(&search.query(None)))
    } else {
        String::new()
    };
    let mut html = format!(
        "<table id=\"messages\"{poll}><thead><tr><th>Received</th><th>Direction</th><th>From</th>\
         <th>To</th><th>Subject</th><th>Route</th><th>Target</th><th>Status</th><th>Attempts</th>\
         </tr></thead><tbody>{}</tbody></table>",
        rows(&found.records)
    );
    if found.records.is_empty() {
        html.push_str(if found.next.is_some() {
            "<p id=\"empty\" class=\"muted\">No match among the records looked at so far.</p>"
        } else if search.given.is_empty() {
            "<p id=\"empty\" class=\"muted\">No messages yet. New ones appear here as they arrive.</p>"
        } else {
            "<p id=\"empty\" class=\"muted\">No messages match. New ones appear here as they arrive.</p>"
        });
    }
    if let Some(next) = &found.next {
        html.push_str(&format!(
            "<p class=\"pager\"><a rel=\"next\" id=\"older\" href=\"/messages?{}\">Older messages →</a> \
             <span class=\"muted\">({} records looked at for this page)</span></p>",
            escape(&search.query(Some(next))),
            found.examined
        ));
    }
    html
}

/// The rows of records.
fn rows(records: &[Delivery]) -> String {
    let mut html = String::new();
    for record in records {
        let link = format!("/messages/{}", web::encode(&record.message_id));
        let (direction, target) = direction(&record.target);
        html.push_str(&format!(
            "<tr data-key=\"{key}\" data-message=\"{id}\"><td class=\"when\"><a href=\"{link}\">{at}</a></td>\
             <td>{direction}</td><td>{from}</td><td>{to}</td><td class=\"subject\"><a href=\"{link}\">{subject}</a></td>\
             <td>{route}</td><td>{target}</td><td class=\"nowrap\">{status}</td><td>{attempts}</td></tr>",
            key = escape(&format!("{}/{}", record.message_id, record.delivery_id)),
            id = escape(&record.message_id),
            at = views::time(record.received_at),
            from = or_dash(record.sender.as_deref()),
            to = or_dash(record.recipient.as_deref()),
            subject = or_dash(record.subject.as_deref()),
            route = or_dash(record.route.as_deref()),
            target = escape(&target),
            status = status_badge(record.status),
            attempts = record.attempts,
        ));
    }
    html
}

/// Inbound mail posted to a webhook, or forwarded: sent on as outbound mail.
pub fn direction(target: &str) -> (&'static str, String) {
    match target.split_once(' ') {
        Some(("forward", address)) => ("in → out (forward)", address.to_owned()),
        Some(("webhook", url)) => ("in", url.to_owned()),
        _ => ("in", target.to_owned()),
    }
}

/// Records grouped by message, newest first: the JSON the dev inspector's API always had.
fn grouped(records: &[Delivery]) -> Vec<Value> {
    let mut messages: Vec<(String, Vec<&Delivery>)> = Vec::new();
    for record in records {
        match messages.last_mut() {
            Some((id, deliveries)) if *id == record.message_id => deliveries.push(record),
            _ => messages.push((record.message_id.clone(), vec![record])),
        }
    }
    messages
        .into_iter()
        .map(|(id, deliveries)| {
            let first = deliveries.first();
            json!({
                "message_id": id,
                "received_at": first.map(|d| d.received_at),
                "sender": first.and_then(|d| d.sender.clone()),
                "subject": first.and_then(|d| d.subject.clone()),
                "deliveries": deliveries.iter().map(|d| json!({
                    "recipient": d.recipient,
                    "route": d.route,
                    "target": d.target,
                    "status": d.status,
                    "attempts": d.attempts,
                    "response_status": d.response_status,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(recipient: &str, subject: &str, route: &str) -> Delivery {
        serde_json::from_value(json!({
            "message_id": "m1", "delivery_id": "d1", "status": "delivered",
            "recipient": recipient, "subject": subject, "route": route,
            "target": "webhook https://app.example/mail", "attempts": 1,
            "received_at": "2026-12-03T10:00:00Z", "s3_key": "inbound/m1", "expires_at": 0
        }))
        .unwrap()
    }

    #[test]
    fn words_route_and_tag_narrow_what_the_store_lists() {
        let search = Search::read(&Params::parse(
            "subject=Invoice+march&route=*%40example.com&tag=ACME",
        ))
        .unwrap();
        assert!(search.narrows());
        assert!(search.keeps(&record(
            "support+acme@example.com",
            "Your invoice for March",
            "*@example.com"
        )));
        assert!(!search.keeps(&record(
            "support@example.com",
            "Your invoice for March",
            "*@example.com"
        )));
        assert!(!search.keeps(&record(
            "support+acme@example.com",
            "Your invoice",
            "*@example.com"
        )));
        assert!(!search.keeps(&record("support+acme@example.com", "Invoice march", "*")));
    }

    #[test]
    fn dates_cover_whole_days_and_bad_ones_say_why() {
        let search = Search::read(&Params::parse("since=2026-12-01&until=2026-12-02")).unwrap();
        assert_eq!(
            search.since.unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(
            search.until.unwrap().to_rfc3339(),
            "2026-12-02T23:59:59.999+00:00"
        );
        assert!(
            Search::read(&Params::parse("since=yesterday"))
                .unwrap_err()
                .contains("not a date")
        );
        assert!(Search::read(&Params::parse("status=lost")).is_err());
        assert_eq!(
            search.query(Some("r1.x")),
            "since=2026-12-01&until=2026-12-02&after=r1.x"
        );
    }
}
