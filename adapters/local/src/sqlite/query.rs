//! Reading records back for people (`mailroom messages`, the dev inspector, `mailroom redrive`): listed
//! newest first through the indexed columns, a page at a time, or all of one message ([`RecordQuery`]).

use chrono::Utc;
use rusqlite::params;

use super::{SqliteStore, lookup, parse_record, sql_error, time_text};
use mailroom::ports::{ListCursor, RecordFilter, RecordPage, RecordQuery, StoreError};
use mailroom::record::{Delivery, Status};

impl SqliteStore {
    /// The record of every row `sql` selects (its first column), with the row's place in the listing's
    /// order (`received_at`, `message_id`, `delivery_id`: the columns after it).
    fn records(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<(Delivery, ListCursor)>, StoreError> {
        let what = "cannot list records";
        let conn = self.conn();
        let mut statement = conn.prepare_cached(sql).map_err(|e| sql_error(what, e))?;
        let rows = statement
            .query_map(params, |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    ListCursor {
                        at: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        first: row.get(2)?,
                        second: row.get(3)?,
                    },
                ))
            })
            .map_err(|e| sql_error(what, e))?;
        let mut records = Vec::new();
        for row in rows {
            let (json, place) = row.map_err(|e| sql_error(what, e))?;
            records.push((parse_record(&json)?, place));
        }
        Ok(records)
    }
}

impl RecordQuery for SqliteStore {
    async fn page(
        &self,
        filter: &RecordFilter,
        after: Option<&str>,
    ) -> Result<RecordPage, StoreError> {
        let now = Utc::now();
        let after = after.map(ListCursor::parse).transpose()?;
        let limit = match filter.limit {
            0 => -1,
            n => i64::try_from(n).unwrap_or(i64::MAX),
        };
        // Newest first; a message's deliveries by delivery id. A page resumes strictly after the last
        // row of the one before, in that order.
        let found = self.records(
            "SELECT record, received_at, message_id, delivery_id FROM deliveries
             WHERE record IS NOT NULL AND expires_at > ?1
                 AND (?2 IS NULL OR recipient = ?2)
                 AND (?3 IS NULL OR sender = ?3)
                 AND (?4 IS NULL OR status = ?4)
                 AND (?5 IS NULL OR received_at >= ?5)
                 AND (?10 IS NULL OR received_at <= ?10)
                 AND (?7 IS NULL OR received_at < ?7
                      OR (received_at = ?7 AND (message_id < ?8
                          OR (message_id = ?8 AND delivery_id > ?9))))
             ORDER BY received_at DESC, message_id DESC, delivery_id
             LIMIT ?6",
            params![
                now.timestamp(),
                lookup(filter.recipient.as_deref()),
                lookup(filter.sender.as_deref()),
                filter.status.map(Status::as_str),
                filter.since.map(time_text),
                limit,
                after.as_ref().map(|c| c.at.as_str()),
                after.as_ref().map(|c| c.first.as_str()),
                after.as_ref().map(|c| c.second.as_str()),
                filter.until.map(time_text),
            ],
        )?;
        let full = filter.limit > 0 && found.len() == filter.limit;
        let next = found
            .last()
            .filter(|_| full)
            .map(|(_, place)| place.token());
        Ok(RecordPage {
            records: found.into_iter().map(|(record, _)| record).collect(),
            next,
        })
    }

    async fn message(&self, message_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        Ok(self
            .records(
                "SELECT record, received_at, message_id, delivery_id FROM deliveries
                 WHERE message_id = ?1 AND record IS NOT NULL AND expires_at > ?2
                 ORDER BY delivery_id",
                params![message_id, now.timestamp()],
            )?
            .into_iter()
            .map(|(record, _)| record)
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Duration as Span;

    use super::*;
    use crate::sqlite::testing::{record, store, with_status};
    use mailroom::ports::RecordStore;

    #[tokio::test]
    async fn listings_filter_and_order() {
        let store = store();
        let a = record("m-a", "Support@Example.com", Span::hours(3), 60);
        let b = with_status(
            record("m-b", "sales@example.com", Span::hours(2), 60),
            Status::Delivered,
        );
        let mut c = record("m-c", "support@example.com", Span::hours(1), 60);
        c.sender = Some("bob@other.example".to_owned());
        let mut redacted = record("m-d", "support@example.com", Span::minutes(30), 60);
        redacted.recipient = None;
        redacted.sender = None;
        for r in [&a, &b, &c, &redacted] {
            assert!(store.save(r, None).await.unwrap());
        }
        let ids = |records: Vec<Delivery>| -> Vec<String> {
            records.into_iter().map(|r| r.message_id).collect()
        };
        let list = |filter: RecordFilter| {
            let store = &store;
            async move { ids(store.list(&filter).await.unwrap()) }
        };

        assert_eq!(
            list(RecordFilter::default()).await,
            ["m-d", "m-c", "m-b", "m-a"]
        );
        assert_eq!(
            list(RecordFilter {
                recipient: Some("SUPPORT@example.COM".into()),
                ..Default::default()
            })
            .await,
            ["m-c", "m-a"]
        );
        assert_eq!(
            list(RecordFilter {
                sender: Some("alice@sender.example".into()),
                ..Default::default()
            })
            .await,
            ["m-b", "m-a"]
        );
        assert_eq!(
            list(RecordFilter {
                status: Some(Status::Delivered),
                ..Default::default()
            })
            .await,
            ["m-b"]
        );
        assert_eq!(
            list(RecordFilter {
                since: Some(c.received_at),
                ..Default::default()
            })
            .await,
            ["m-d", "m-c"]
        );
        assert_eq!(
            list(RecordFilter {
                until: Some(c.received_at),
                ..Default::default()
            })
            .await,
            ["m-c", "m-b", "m-a"]
        );
        assert_eq!(
            list(RecordFilter {
                since: Some(c.received_at),
                until: Some(c.received_at),
                ..Default::default()
            })
            .await,
            ["m-c"]
        );
        assert_eq!(
            list(RecordFilter {
                limit: 2,
                ..Default::default()
            })
            .await,
            ["m-d", "m-c"]
        );
        let stored: (Option<String>, Option<String>) = store
            .conn()
            .query_row(
                "SELECT recipient, sender FROM deliveries WHERE message_id = 'm-a'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            stored,
            (
                Some("support@example.com".into()),
                Some("alice@sender.example".into())
            )
        );
    }

    #[tokio::test]
    async fn pages_resume_after_the_last_record_even_among_records_of_one_time() {
        let store = store();
        let at = Utc::now() - Span::hours(1);
        let mut records = Vec::new();
        for n in 0..4 {
            let mut r = record(&format!("m-{n}"), "support@example.com", Span::hours(1), 60);
            r.received_at = at - Span::minutes(n + 1);
            records.push(r);
        }
        // Three records of one instant: two deliveries of one message, and another message.
        for (message, delivery) in [("m-4", "d-a"), ("m-4", "d-b"), ("m-5", "d-a")] {
            let mut r = record(message, "support@example.com", Span::hours(1), 60);
            r.received_at = at;
            r.delivery_id = delivery.to_owned();
            records.push(r);
        }
        for r in &records {
            assert!(store.save(r, None).await.unwrap());
        }
        let whole: Vec<String> = store
            .list(&RecordFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{}/{}", r.message_id, r.delivery_id))
            .collect();
        assert_eq!(whole.len(), 7);
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .page(
                    &RecordFilter {
                        limit: 2,
                        ..RecordFilter::default()
                    },
                    after.as_deref(),
                )
                .await
                .unwrap();
            paged.extend(
                page.records
                    .iter()
                    .map(|r| format!("{}/{}", r.message_id, r.delivery_id)),
            );
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, whole);
        assert!(
            store
                .page(&RecordFilter::default(), Some("nonsense"))
                .await
                .is_err()
        );
    }
}
