//! Delivery records as the inbound use case keeps them ([`RecordStore`]): claimed, saved and read back under
//! the DynamoDB adapter's conditions, and removed once expired.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, lookup, parse_record, serialisation, sql_error, time_text};
use mailroom::ports::{Claim, RecordStore, StoreError};
use mailroom::record::{Delivery, DeliveryKey, Party, Status};

/// What `claim` reads of a delivery row before deciding.
#[derive(Debug, Default)]
struct ClaimRow {
    record: Option<String>,
    status: Option<String>,
    expires_at: Option<i64>,
    claim_until: Option<i64>,
}

impl ClaimRow {
    /// Whether a claim may be taken at `now_secs`, under the condition of the DynamoDB adapter: no item, or
    /// expired, or no live claim on an item with no record yet (a first attempt under way) or a
    /// pending/retrying one.
    fn grants_claim(&self, now_secs: i64) -> bool {
        let claim_free = self.claim_until.is_none_or(|u| u < now_secs);
        match &self.status {
            None => claim_free,
            Some(status) => {
                self.expires_at.is_some_and(|e| e <= now_secs)
                    || ((status == Status::Pending.as_str() || status == Status::Retrying.as_str())
                        && claim_free)
            }
        }
    }
}

impl SqliteStore {
    /// Deletes the delivery records that have expired by `now`, as DynamoDB's TTL would; returns how many.
    pub fn delete_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.conn()
            .execute(
                "DELETE FROM deliveries WHERE expires_at <= ?1",
                params![now.timestamp()],
            )
            .map_err(|e| sql_error("cannot delete expired records", e))
    }
}

impl RecordStore for SqliteStore {
    async fn get(&self, key: &DeliveryKey) -> Result<Option<Delivery>, StoreError> {
        let now = Utc::now();
        let json: Option<Option<String>> = self
            .conn()
            .query_row(
                "SELECT record FROM deliveries WHERE message_id = ?1 AND delivery_id = ?2",
                params![key.message_id, key.delivery_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| sql_error("cannot read a record", e))?;
        match json.flatten() {
            Some(json) => {
                let record = parse_record(&json)?;
                Ok((!record.is_expired(now)).then_some(record))
            }
            // No row, or only a claim so far.
            None => Ok(None),
        }
    }

    async fn claim(
        &self,
        key: &DeliveryKey,
        token: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let what = "cannot claim a delivery";
        let mut conn = self.conn();
        // IMMEDIATE takes the write lock before reading, so no other writer slips in between.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(what, e))?;
        let row = tx
            .query_row(
                "SELECT record, status, expires_at, claim_until FROM deliveries
                 WHERE message_id = ?1 AND delivery_id = ?2",
                params![key.message_id, key.delivery_id],
                |row| {
                    Ok(ClaimRow {
                        record: row.get(0)?,
                        status: row.get(1)?,
                        expires_at: row.get(2)?,
                        claim_until: row.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| sql_error(what, e))?
            .unwrap_or_default();
        let granted = row.grants_claim(now.timestamp());
        let record = match (&row.record, &row.status) {
            (Some(json), Some(_)) => Some(parse_record(json)?).filter(|r| !r.is_expired(now)),
            _ => None,
        };
        if !granted {
            return match record {
                Some(record) if record.status.is_final() => Ok(Claim::Final(Box::new(record))),
                _ => {
                    let until = row
                        .claim_until
                        .and_then(|t| DateTime::from_timestamp(t, 0))
                        .unwrap_or(now);
                    Ok(Claim::Busy(until))
                }
            };
        }
        // A claim-only row expires some days after its claim (as the DynamoDB item does), so an attempt
        // that never recorded its end leaves nothing behind for good; a record keeps its own expiry.
        tx.execute(
            "INSERT INTO deliveries (message_id, delivery_id, claim_token, claim_until, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (message_id, delivery_id)
             DO UPDATE SET claim_token = excluded.claim_token, claim_until = excluded.claim_until,
                 expires_at = COALESCE(deliveries.expires_at, excluded.expires_at)",
            params![
                key.message_id,
                key.delivery_id,
                token,
                until.timestamp(),
                (until + mailroom::record::CLAIM_ONLY_TTL).timestamp()
            ],
        )
        .map_err(|e| sql_error(what, e))?;
        tx.commit().map_err(|e| sql_error(what, e))?;
        Ok(Claim::Granted(record.map(Box::new)))
    }

    async fn save(&self, record: &Delivery, token: Option<&str>) -> Result<bool, StoreError> {
        let what = "cannot write a record";
        let mut record = record.clone();
        if record.needs_lookup_key()
            && let Some(key) = self.lookup_key(true)?
        {
            record.seal(&key);
        }
        let record = &record;
        let json = serde_json::to_string(record).map_err(|e| serialisation(what, e))?;
        let recipient = record.party_key(Party::Recipient);
        let sender = record.party_key(Party::Sender);
        let from_header = record.party_key(Party::From);
        let reply_to = record.party_key(Party::ReplyTo);
        let forward_to = lookup(record.forward_address());
        let received_at = time_text(record.received_at);
        let conn = self.conn();
        // Like DynamoDB's PutItem, a write replaces the whole row, so any claim on it is released.
        let written = match token {
            Some(token) => conn.execute(
                "UPDATE deliveries SET record = ?3, status = ?4, recipient = ?5, sender = ?6,
                     received_at = ?7, expires_at = ?8, claim_token = NULL, claim_until = NULL,
                     forward_to = ?10, from_header = ?11, reply_to = ?12
                 WHERE message_id = ?1 AND delivery_id = ?2 AND claim_token = ?9",
                params![
                    record.message_id,
                    record.delivery_id,
                    json,
                    record.status.as_str(),
                    recipient,
                    sender,
                    received_at,
                    record.expires_at,
                    token,
                    forward_to,
                    from_header,
                    reply_to
                ],
            ),
            None => conn.execute(
                "INSERT INTO deliveries (message_id, delivery_id, record, status, recipient, sender,
                     received_at, expires_at, forward_to, from_header, reply_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?11, ?12, ?13)
                 ON CONFLICT (message_id, delivery_id) DO UPDATE SET
                     record = excluded.record, status = excluded.status,
                     recipient = excluded.recipient, sender = excluded.sender,
                     received_at = excluded.received_at, expires_at = excluded.expires_at,
                     forward_to = excluded.forward_to, from_header = excluded.from_header,
                     reply_to = excluded.reply_to, claim_token = NULL, claim_until = NULL
                 WHERE deliveries.record IS NULL OR deliveries.status IS NULL
                     OR deliveries.status IN (?9, ?10)",
                params![
                    record.message_id,
                    record.delivery_id,
                    json,
                    record.status.as_str(),
                    recipient,
                    sender,
                    received_at,
                    record.expires_at,
                    Status::Pending.as_str(),
                    Status::Retrying.as_str(),
                    forward_to,
                    from_header,
                    reply_to
                ],
            ),
        }
        .map_err(|e| sql_error(what, e))?;
        Ok(written > 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Duration as Span;

    use super::*;
    use crate::sqlite::testing::{record, store, with_status};
    use mailroom::ports::{RecordFilter, RecordQuery};

    #[tokio::test]
    async fn claims_follow_the_dynamo_conditions() {
        let store = store();
        let now = Utc::now();
        let until = now + Span::minutes(5);
        let record = record("m1", "support@example.com", Span::hours(1), 60);
        let key = record.key();

        // Nothing there: granted, and only a claim exists, which reads as no record.
        assert_eq!(
            store.claim(&key, "t1", now, until).await.unwrap(),
            Claim::Granted(None)
        );
        assert_eq!(store.get(&key).await.unwrap(), None);
        assert!(
            store
                .list(&RecordFilter::default())
                .await
                .unwrap()
                .is_empty()
        );

        // While that first attempt's claim is live, nobody else may start one (as in DynamoDB).
        assert_eq!(
            store.claim(&key, "t2", now, until).await.unwrap(),
            Claim::Busy(DateTime::from_timestamp(until.timestamp(), 0).unwrap())
        );
        // Once it has run out (the worker died), another worker takes the first attempt over.
        assert_eq!(
            store
                .claim(
                    &key,
                    "t2",
                    until + Span::seconds(1),
                    until + Span::minutes(5)
                )
                .await
                .unwrap(),
            Claim::Granted(None)
        );

        // A wrong token writes nothing; the right one writes and releases the claim.
        let retrying = with_status(record.clone(), Status::Retrying);
        assert!(!store.save(&retrying, Some("t1")).await.unwrap());
        assert_eq!(store.get(&key).await.unwrap(), None);
        assert!(store.save(&retrying, Some("t2")).await.unwrap());
        assert_eq!(store.get(&key).await.unwrap(), Some(retrying.clone()));
        assert!(
            !store.save(&retrying, Some("t2")).await.unwrap(),
            "the claim was released"
        );

        // Retrying, no live claim: granted with the record as it was.
        assert_eq!(
            store.claim(&key, "t3", now, until).await.unwrap(),
            Claim::Granted(Some(Box::new(retrying.clone())))
        );
        // A second claim while the first is live is busy until the first ends.
        assert_eq!(
            store
                .claim(&key, "t4", now, now + Span::minutes(9))
                .await
                .unwrap(),
            Claim::Busy(DateTime::from_timestamp(until.timestamp(), 0).unwrap())
        );
        // Once the first claim has run out, another worker takes it over.
        let later = until + Span::seconds(1);
        assert_eq!(
            store
                .claim(&key, "t5", later, later + Span::minutes(5))
                .await
                .unwrap(),
            Claim::Granted(Some(Box::new(retrying.clone())))
        );
        assert!(
            !store.save(&retrying, Some("t3")).await.unwrap(),
            "t3's claim was taken over"
        );

        // A final record is never claimed again.
        let delivered = with_status(record.clone(), Status::Delivered);
        assert!(store.save(&delivered, Some("t5")).await.unwrap());
        assert_eq!(
            store
                .claim(&key, "t6", later, later + Span::minutes(5))
                .await
                .unwrap(),
            Claim::Final(Box::new(delivered.clone()))
        );
    }

    #[tokio::test]
    async fn saves_without_a_claim_never_overwrite_a_final_record() {
        let store = store();
        let pending = record("m1", "a@example.com", Span::hours(1), 60);
        let key = pending.key();
        assert!(store.save(&pending, None).await.unwrap());
        let rejected = with_status(pending.clone(), Status::Rejected);
        assert!(
            store.save(&rejected, None).await.unwrap(),
            "pending may be replaced"
        );
        assert!(
            !store
                .save(&with_status(pending.clone(), Status::Delivered), None)
                .await
                .unwrap()
        );
        assert!(!store.save(&pending, None).await.unwrap());
        assert_eq!(store.get(&key).await.unwrap(), Some(rejected.clone()));
        // A final record holds no claim, so a token save cannot get in either.
        assert!(!store.save(&pending, Some("any")).await.unwrap());

        // A save without a claim fills a claim-only row and, like a PutItem, drops the claim.
        let other = record("m2", "a@example.com", Span::hours(1), 60);
        let now = Utc::now();
        store
            .claim(&other.key(), "t1", now, now + Span::minutes(5))
            .await
            .unwrap();
        assert!(store.save(&other, None).await.unwrap());
        assert!(!store.save(&other, Some("t1")).await.unwrap());
        assert_eq!(
            store
                .claim(&other.key(), "t2", now, now + Span::minutes(5))
                .await
                .unwrap(),
            Claim::Granted(Some(Box::new(other)))
        );
    }

    #[tokio::test]
    async fn expired_records_read_as_gone() {
        let store = store();
        let now = Utc::now();
        let old = with_status(
            record("old", "a@example.com", Span::days(61), 60),
            Status::Delivered,
        );
        let fresh = record("new", "a@example.com", Span::days(1), 60);
        assert!(store.save(&old, None).await.unwrap());
        assert!(store.save(&fresh, None).await.unwrap());

        assert_eq!(store.get(&old.key()).await.unwrap(), None);
        assert!(store.message("old").await.unwrap().is_empty());
        assert_eq!(store.message("new").await.unwrap(), vec![fresh.clone()]);
        assert_eq!(
            store.list(&RecordFilter::default()).await.unwrap(),
            vec![fresh.clone()]
        );

        // An expired final record may be claimed afresh, and nothing of it is handed back.
        assert_eq!(
            store
                .claim(&old.key(), "t", now, now + Span::minutes(5))
                .await
                .unwrap(),
            Claim::Granted(None)
        );

        assert_eq!(store.delete_expired(now).unwrap(), 1);
        assert_eq!(store.delete_expired(now).unwrap(), 0);
        let rows: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM deliveries", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }
}
