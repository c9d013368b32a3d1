//! [`Reopen`] for the dev store: the same conditional change as the DynamoDB adapter's, in one
//! transaction.

use chrono::Utc;
use rusqlite::{TransactionBehavior, params};

use super::{SqliteStore, parse_record, serialisation, sql_error};
use mailroom::ports::{Reopen, StoreError};
use mailroom::record::Status;

impl Reopen for SqliteStore {
    async fn reopen(
        &self,
        message_id: &str,
        statuses: &[Status],
        target: Option<&str>,
    ) -> Result<usize, StoreError> {
        let what = "cannot reopen a delivery";
        let now = Utc::now();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(what, e))?;
        let candidates: Vec<(String, String)> = {
            let mut statement = tx
                .prepare(
                    "SELECT delivery_id, record FROM deliveries
                     WHERE message_id = ?1 AND record IS NOT NULL AND expires_at > ?2",
                )
                .map_err(|e| sql_error(what, e))?;
            let rows = statement
                .query_map(params![message_id, now.timestamp()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(|e| sql_error(what, e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| sql_error(what, e))?
        };
        let mut reopened = 0;
        for (delivery_id, json) in candidates {
            let mut record = parse_record(&json)?;
            if !statuses.contains(&record.status) || target.is_some_and(|t| record.target != t) {
                continue;
            }
            let was = record.status;
            record.status = Status::Retrying;
            record.next_attempt_at = None;
            let json = serde_json::to_string(&record).map_err(|e| serialisation(what, e))?;
            reopened += tx
                .execute(
                    "UPDATE deliveries SET record = ?3, status = ?4, claim_token = NULL, claim_until = NULL
                     WHERE message_id = ?1 AND delivery_id = ?2 AND status = ?5",
                    params![
                        message_id,
                        delivery_id,
                        json,
                        Status::Retrying.as_str(),
                        was.as_str()
                    ],
                )
                .map_err(|e| sql_error(what, e))?;
        }
        tx.commit().map_err(|e| sql_error(what, e))?;
        Ok(reopened)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use mailroom::ports::RecordStore;
    use mailroom::record::{Delivery, DeliveryKey};

    fn failed(message_id: &str, recipient: &str) -> Delivery {
        let key = DeliveryKey::new(message_id, recipient, "webhook https://example.com/");
        let mut record = Delivery::new(&key, &format!("inbound/{message_id}"), Utc::now(), 60);
        record.status = Status::Failed;
        record.attempts = 7;
        record.webhook_id = Some("msg_same".to_owned());
        record.next_attempt_at = Some(Utc::now());
        record
    }

    #[tokio::test]
    async fn only_failed_records_of_the_message_are_reopened_and_keep_their_history() {
        let store = SqliteStore::in_memory().unwrap();
        let first = failed("m1", "a@example.com");
        let mut delivered = failed("m1", "b@example.com");
        delivered.status = Status::Delivered;
        let other = failed("m2", "a@example.com");
        for record in [&first, &delivered, &other] {
            assert!(store.save(record, None).await.unwrap());
        }

        assert_eq!(
            store.reopen("m1", &[Status::Failed], None).await.unwrap(),
            1
        );
        let reopened = store.get(&first.key()).await.unwrap().unwrap();
        assert_eq!(reopened.status, Status::Retrying);
        assert_eq!(reopened.next_attempt_at, None);
        assert_eq!(reopened.attempts, 7);
        assert_eq!(reopened.webhook_id.as_deref(), Some("msg_same"));
        assert_eq!(
            store.get(&delivered.key()).await.unwrap().unwrap().status,
            Status::Delivered
        );
        assert_eq!(
            store.get(&other.key()).await.unwrap().unwrap().status,
            Status::Failed
        );
        assert_eq!(
            store.reopen("m1", &[Status::Failed], None).await.unwrap(),
            0,
            "a reopened record is not failed any more"
        );
    }
}
