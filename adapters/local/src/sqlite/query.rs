//! Reading records back for people (`mailroom messages`, the dev inspector, `mailroom redrive`): listed
//! newest first through the indexed columns, or all of one message ([`RecordQuery`]).

use chrono::Utc;
use rusqlite::params;

use super::{SqliteStore, lookup, parse_record, sql_error, time_text};
use mailroom::ports::{RecordFilter, RecordQuery, StoreError};
use mailroom::record::{Delivery, Status};

impl SqliteStore {
    /// The record of every row `sql` selects.
    fn records(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Delivery>, StoreError> {
        let what = "cannot list records";
        let conn = self.conn();
        let mut statement = conn.prepare_cached(sql).map_err(|e| sql_error(what, e))?;
        let rows = statement
            .query_map(params, |row| row.get::<_, String>(0))
            .map_err(|e| sql_error(what, e))?;
        let mut records = Vec::new();
        for row in rows {
            records.push(parse_record(&row.map_err(|e| sql_error(what, e))?)?);
        }
        Ok(records)
    }
}

impl RecordQuery for SqliteStore {
    async fn list(&self, filter: &RecordFilter) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let limit = match filter.limit {
            0 => -1,
            n => i64::try_from(n).unwrap_or(i64::MAX),
        };
        self.records(
            "SELECT record FROM deliveries
             WHERE record IS NOT NULL AND expires_at > ?1
                 AND (?2 IS NULL OR recipient = ?2)
                 AND (?3 IS NULL OR sender = ?3)
                 AND (?4 IS NULL OR status = ?4)
                 AND (?5 IS NULL OR received_at >= ?5)
             ORDER BY received_at DESC, message_id DESC, delivery_id
             LIMIT ?6",
            params![
                now.timestamp(),
                lookup(filter.recipient.as_deref()),
                lookup(filter.sender.as_deref()),
                filter.status.map(Status::as_str),
                filter.since.map(time_text),
                limit
            ],
        )
    }

    async fn message(&self, message_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        self.records(
            "SELECT record FROM deliveries
             WHERE message_id = ?1 AND record IS NOT NULL AND expires_at > ?2
             ORDER BY delivery_id",
            params![message_id, now.timestamp()],
        )
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
}
