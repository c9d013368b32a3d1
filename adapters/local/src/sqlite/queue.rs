//! The retry queue of `mailroom dev`, standing in for SQS: a payload per message, due at a time, in the
//! `pending` table.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{SqliteStore, sql_error};
use mailroom::ports::StoreError;

/// Unix milliseconds back to a time, for the retry queue.
fn from_millis(millis: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StoreError::permanent(format!("a stored time is out of range: {millis}")))
}

impl SqliteStore {
    /// Puts a message in the retry queue, due at `due_at`; replaces its earlier entry, if any.
    pub fn schedule(
        &self,
        message_key: &str,
        due_at: DateTime<Utc>,
        payload: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO pending (message_key, due_at, payload) VALUES (?1, ?2, ?3)
                 ON CONFLICT (message_key) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload",
                params![message_key, due_at.timestamp_millis(), payload],
            )
            .map_err(|e| sql_error("cannot schedule a retry", e))?;
        Ok(())
    }

    /// The queued messages due by `now`, oldest first: `(message key, due at, payload)`.
    pub fn due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>, String)>, StoreError> {
        let what = "cannot read the retry queue";
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT message_key, due_at, payload FROM pending WHERE due_at <= ?1
                 ORDER BY due_at, message_key",
            )
            .map_err(|e| sql_error(what, e))?;
        let rows = statement
            .query_map(params![now.timestamp_millis()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| sql_error(what, e))?;
        let mut due = Vec::new();
        for row in rows {
            let (key, at, payload) = row.map_err(|e| sql_error(what, e))?;
            due.push((key, from_millis(at)?, payload));
        }
        Ok(due)
    }

    /// When the next queued message is due, if any is queued.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = self
            .conn()
            .query_row("SELECT MIN(due_at) FROM pending", [], |row| row.get(0))
            .map_err(|e| sql_error("cannot read the retry queue", e))?;
        next.map(from_millis).transpose()
    }

    /// Takes a message out of the retry queue; false when it was not queued.
    pub fn unschedule(&self, message_key: &str) -> Result<bool, StoreError> {
        let removed = self
            .conn()
            .execute(
                "DELETE FROM pending WHERE message_key = ?1",
                params![message_key],
            )
            .map_err(|e| sql_error("cannot unschedule a retry", e))?;
        Ok(removed > 0)
    }

    /// How many messages are queued.
    pub fn pending_count(&self) -> Result<usize, StoreError> {
        let count: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM pending", [], |row| row.get(0))
            .map_err(|e| sql_error("cannot count the retry queue", e))?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Forgets the retry-queue entry of a stored message (its mail was erased).
    pub fn forget_pending(&self, message_key: &str) -> Result<bool, StoreError> {
        let removed = self
            .conn()
            .execute(
                "DELETE FROM pending WHERE message_key = ?1",
                params![message_key],
            )
            .map_err(|e| sql_error("cannot remove a queued retry", e))?;
        Ok(removed > 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Duration as Span;

    use super::*;
    use crate::sqlite::testing::store;

    #[test]
    fn the_retry_queue() {
        let store = store();
        let now: DateTime<Utc> = "2024-11-05T09:14:07.250Z".parse().unwrap();
        assert_eq!(store.next_due().unwrap(), None);
        assert_eq!(store.pending_count().unwrap(), 0);
        store
            .schedule("inbound/b", now + Span::seconds(30), "b1")
            .unwrap();
        store
            .schedule("inbound/a", now - Span::seconds(5), "a1")
            .unwrap();
        store.schedule("inbound/c", now, "c1").unwrap();
        assert_eq!(store.pending_count().unwrap(), 3);
        assert_eq!(store.next_due().unwrap(), Some(now - Span::seconds(5)));
        assert_eq!(
            store.due(now).unwrap(),
            vec![
                (
                    "inbound/a".to_owned(),
                    now - Span::seconds(5),
                    "a1".to_owned()
                ),
                ("inbound/c".to_owned(), now, "c1".to_owned()),
            ]
        );
        // Scheduling again replaces the entry.
        store
            .schedule("inbound/a", now + Span::minutes(1), "a2")
            .unwrap();
        assert_eq!(store.pending_count().unwrap(), 3);
        assert_eq!(store.due(now).unwrap().len(), 1);
        assert!(store.unschedule("inbound/c").unwrap());
        assert!(!store.unschedule("inbound/c").unwrap());
        assert_eq!(store.next_due().unwrap(), Some(now + Span::seconds(30)));
        assert_eq!(
            store.due(now + Span::hours(1)).unwrap(),
            vec![
                (
                    "inbound/b".to_owned(),
                    now + Span::seconds(30),
                    "b1".to_owned()
                ),
                (
                    "inbound/a".to_owned(),
                    now + Span::minutes(1),
                    "a2".to_owned()
                ),
            ]
        );
    }
}
