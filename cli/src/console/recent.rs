//! The rows of the last 60 days, kept in memory by the counting passes (`stats.rs`) for a stack's console:
//! the list and its filters are answered from here, and a message's records are read by their keys
//! (GetItem) instead of a query. Index queries cost a round trip per shard and day; an operator paging and
//! filtering would pay them at every click. The dev store (SQLite) is read directly.
//!
//! What a row lacks is what the list does not show (attempt history, answers); a message page reads its
//! records from the table. Rows are as fresh as the last pass: new mail within [`TAIL_EVERY`] while the
//! list is open, status changes of the settling days within a minute, and the console's own actions at
//! once. Past [`MOST_ROWS`] rows the console stops keeping them and reads the store for every page.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use mailroom::record::{Delivery, DeliveryKey};

/// The most rows kept: about 2.8 KiB of the console's memory each (100,000 rows: 285 MiB, bench/README.md).
pub const MOST_ROWS: usize = 200_000;

/// How often the newest mail is read again while someone looks.
pub const TAIL_EVERY: Duration = Duration::seconds(3);

/// Where a row sits in the order of the list: time of receipt, then message and delivery id.
type Place = (DateTime<Utc>, String, String);

/// The rows, in list order, and the keys of each message's records.
#[derive(Debug, Default)]
pub struct Recent {
    rows: BTreeMap<Place, Delivery>,
    by_message: HashMap<String, Vec<Place>>,
    /// When the rows were last brought up to date with the newest mail.
    pub fresh_at: Option<DateTime<Utc>>,
}

/// What a list page holds when it comes from the rows.
pub struct Listed {
    /// The rows, newest first.
    pub records: Vec<Delivery>,
    /// The place after the last row, as a page token, when more rows follow.
    pub next: Option<String>,
    /// How many rows were looked at.
    pub examined: usize,
}

/// Page tokens of the rows: `c1.` and the place, which the store's tokens (`r1.`) never look like.
const TOKEN_PREFIX: &str = "c1.";

fn token(place: &Place) -> String {
    format!(
        "{TOKEN_PREFIX}{}.{}.{}",
        place.0.timestamp_nanos_opt().unwrap_or_default(),
        place.1,
        place.2
    )
}

fn place_of(token: &str) -> Option<Place> {
    let mut parts = token.strip_prefix(TOKEN_PREFIX)?.splitn(3, '.');
    let nanos: i64 = parts.next()?.parse().ok()?;
    Some((
        DateTime::from_timestamp_nanos(nanos),
        parts.next()?.to_owned(),
        parts.next()?.to_owned(),
    ))
}

/// Whether a page token is one of the rows' (else it is the store's).
pub fn is_row_token(token: &str) -> bool {
    token.starts_with(TOKEN_PREFIX)
}

fn place(record: &Delivery) -> Place {
    (
        record.received_at,
        record.message_id.clone(),
        record.delivery_id.clone(),
    )
}

/// A record as a row: what the list shows and filters on.
fn row(record: &Delivery) -> Delivery {
    Delivery {
        history: Vec::new(),
        response_body: None,
        ..record.clone()
    }
}

impl Recent {
    /// Rows from a pass that read every record received since `since`: they replace the rows of that time.
    pub fn replace_since(&mut self, since: DateTime<Utc>, records: &[Delivery]) {
        let newer = self.rows.split_off(&(since, String::new(), String::new()));
        for gone in newer.keys() {
            self.forget_place(gone);
        }
        for record in records {
            self.put(record);
        }
    }

    /// Adds or replaces one record's row.
    pub fn put(&mut self, record: &Delivery) {
        let place = place(record);
        let places = self
            .by_message
            .entry(record.message_id.clone())
            .or_default();
        if !places.contains(&place) {
            places.push(place.clone());
        }
        self.rows.insert(place, row(record));
    }

    /// Replaces the rows of one message with its records as read now (none: it is gone).
    pub fn put_message(&mut self, message_id: &str, records: &[Delivery]) {
        for place in self.by_message.remove(message_id).unwrap_or_default() {
            self.rows.remove(&place);
        }
        for record in records {
            self.put(record);
        }
    }

    /// Drops the rows older than `oldest`.
    pub fn drop_before(&mut self, oldest: DateTime<Utc>) {
        let kept = self.rows.split_off(&(oldest, String::new(), String::new()));
        let old = std::mem::replace(&mut self.rows, kept);
        for gone in old.keys() {
            self.forget_place(gone);
        }
    }

    fn forget_place(&mut self, place: &Place) {
        if let Some(places) = self.by_message.get_mut(&place.1) {
            places.retain(|p| p != place);
            if places.is_empty() {
                self.by_message.remove(&place.1);
            }
        }
    }

    /// How many rows there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The newest row's time of receipt.
    pub fn newest(&self) -> Option<DateTime<Utc>> {
        self.rows.keys().next_back().map(|p| p.0)
    }

    /// The keys of a message's records, if it has rows.
    pub fn keys_of(&self, message_id: &str) -> Option<Vec<DeliveryKey>> {
        let places = self.by_message.get(message_id)?;
        Some(
            places
                .iter()
                .map(|p| DeliveryKey {
                    message_id: p.1.clone(),
                    delivery_id: p.2.clone(),
                })
                .collect(),
        )
    }

    /// Up to `want` rows that `keep` accepts, newest first, after `after` (a token of an earlier page),
    /// looking at no more than `most` rows.
    pub fn page(
        &self,
        after: Option<&str>,
        want: usize,
        most: usize,
        keep: impl Fn(&Delivery) -> bool,
    ) -> Listed {
        let start = after.and_then(place_of);
        let rows: Box<dyn Iterator<Item = (&Place, &Delivery)>> = match &start {
            Some(start) => Box::new(self.rows.range(..start).rev()),
            None => Box::new(self.rows.iter().rev()),
        };
        let mut listed = Listed {
            records: Vec::new(),
            next: None,
            examined: 0,
        };
        let mut last = None;
        for (place, record) in rows {
            if listed.records.len() >= want || listed.examined >= most {
                listed.next = last.map(token);
                return listed;
            }
            listed.examined += 1;
            last = Some(place);
            if keep(record) {
                listed.records.push(record.clone());
            }
        }
        listed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mailroom::record::Status;

    fn record(id: &str, minutes_ago: i64, status: Status) -> Delivery {
        let mut record: Delivery = serde_json::from_value(serde_json::json!({
            "message_id": id, "delivery_id": "d", "status": "delivered", "target": "webhook https://a/",
            "attempts": 1, "received_at": "2026-12-03T10:00:00Z", "s3_key": "k", "expires_at": 0,
            "history": [{"at": "2026-12-03T10:00:01Z", "outcome": "delivered", "ms": 250}],
            "response_body": "ok"
        }))
        .unwrap();
        record.received_at -= Duration::minutes(minutes_ago);
        record.status = status;
        record
    }

    #[test]
    fn pages_follow_each_other_newest_first_and_filters_apply() {
        let mut recent = Recent::default();
        let all: Vec<Delivery> = (0..10)
            .map(|n| {
                record(
                    &format!("m{n}"),
                    n,
                    if n % 3 == 0 {
                        Status::Failed
                    } else {
                        Status::Delivered
                    },
                )
            })
            .collect();
        recent.replace_since(DateTime::<Utc>::MIN_UTC, &all);
        let first = recent.page(None, 4, 1000, |_| true);
        let ids = |l: &Listed| {
            l.records
                .iter()
                .map(|r| r.message_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&first), ["m0", "m1", "m2", "m3"]);
        assert!(first.records[0].history.is_empty() && first.records[0].response_body.is_none());
        let second = recent.page(first.next.as_deref(), 4, 1000, |_| true);
        assert_eq!(ids(&second), ["m4", "m5", "m6", "m7"]);
        let last = recent.page(second.next.as_deref(), 4, 1000, |_| true);
        assert_eq!(ids(&last), ["m8", "m9"]);
        assert!(last.next.is_none());
        let failed = recent.page(None, 10, 1000, |r| r.status == Status::Failed);
        assert_eq!(ids(&failed), ["m0", "m3", "m6", "m9"]);
        // Looking at few rows stops early and says where to go on.
        let some = recent.page(None, 10, 2, |r| r.status == Status::Failed);
        assert_eq!(ids(&some), ["m0"]);
        assert!(is_row_token(some.next.as_deref().unwrap()));
    }

    #[test]
    fn a_pass_replaces_its_window_and_a_message_can_be_replaced_alone() {
        let mut recent = Recent::default();
        recent.replace_since(
            DateTime::<Utc>::MIN_UTC,
            &[
                record("old", 600, Status::Delivered),
                record("new", 1, Status::Retrying),
            ],
        );
        let window = record("x", 5, Status::Delivered).received_at;
        recent.replace_since(
            window,
            &[
                record("new", 1, Status::Delivered),
                record("newer", 0, Status::Delivered),
            ],
        );
        let listed = recent.page(None, 10, 100, |_| true);
        let seen: Vec<(String, Status)> = listed
            .records
            .iter()
            .map(|r| (r.message_id.clone(), r.status))
            .collect();
        assert_eq!(
            seen,
            [
                ("newer".to_owned(), Status::Delivered),
                ("new".to_owned(), Status::Delivered),
                ("old".to_owned(), Status::Delivered)
            ]
        );
        assert_eq!(recent.keys_of("new").unwrap().len(), 1);
        recent.put_message("new", &[]);
        assert!(recent.keys_of("new").is_none());
        assert_eq!(recent.len(), 2);
        recent.drop_before(window);
        assert_eq!(recent.len(), 1);
        assert!(recent.keys_of("old").is_none());
    }
}
