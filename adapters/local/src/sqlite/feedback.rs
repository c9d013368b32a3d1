//! What the feedback use case keeps, in the same file as routes and records: suppressions, each address's
//! soft-bounce counts and the outbound record of each forward. Outbound records and counts are written with
//! optimistic concurrency on `version`, as in the DynamoDB adapter.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{SqliteStore, lookup, serialisation, sql_error, time_text};
use mailroom::feedback::{Origin, Outbound, SoftBounces, Suppression};
use mailroom::mail::envelope::normalise_address;
use mailroom::ports::{
    KeyStore, OutboundLog, OutboundStore, SoftBounceStore, StoreError, SuppressionList,
};
use mailroom::send::key::ApiKey;

impl SuppressionList for SqliteStore {
    async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        self.json_row(
            "cannot read a suppression",
            "SELECT suppression FROM suppressions WHERE address = ?1",
            params![normalise_address(address)],
        )
    }

    async fn suppress(&self, suppression: &Suppression) -> Result<bool, StoreError> {
        let mut suppression = suppression.clone();
        suppression.address = normalise_address(&suppression.address);
        let json = serde_json::to_string(&suppression)
            .map_err(|e| serialisation("cannot store a suppression", e))?;
        let added = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO suppressions (address, suppression) VALUES (?1, ?2)",
                params![suppression.address, json],
            )
            .map_err(|e| sql_error("cannot store a suppression", e))?;
        Ok(added > 0)
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let removed = self
            .conn()
            .execute(
                "DELETE FROM suppressions WHERE address = ?1",
                params![normalise_address(address)],
            )
            .map_err(|e| sql_error("cannot remove a suppression", e))?;
        Ok(removed > 0)
    }

    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        self.json_rows(
            "cannot read suppressions",
            "SELECT suppression FROM suppressions ORDER BY address",
            [],
        )
    }
}

impl OutboundStore for SqliteStore {
    async fn outbound(&self, ses_message_id: &str) -> Result<Option<Outbound>, StoreError> {
        self.json_row(
            "cannot read an outbound record",
            "SELECT record FROM outbound WHERE id = ?1 AND expires_at > ?2",
            params![ses_message_id, Utc::now().timestamp()],
        )
    }

    async fn put_outbound(
        &self,
        record: &Outbound,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let what = "cannot store an outbound record";
        let json = serde_json::to_string(&record).map_err(|e| serialisation(what, e))?;
        let written = match expected {
            None => self.conn().execute(
                // An expired row the clean-up has not removed yet counts as none.
                "INSERT INTO outbound (id, message_id, record, version, expires_at, recipient, sender, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET message_id = excluded.message_id,
                     record = excluded.record, version = excluded.version,
                     expires_at = excluded.expires_at, recipient = excluded.recipient,
                     sender = excluded.sender, sent_at = excluded.sent_at
                 WHERE outbound.expires_at <= ?6",
                params![
                    record.ses_message_id,
                    record.message_id,
                    json,
                    record.version as i64,
                    record.expires_at,
                    Utc::now().timestamp(),
                    lookup(record.to.first().map(String::as_str)),
                    lookup(record.from.as_deref()),
                    // As in DynamoDB, forwards are listed with their deliveries, not by time here.
                    (record.origin != Origin::Forward).then(|| time_text(record.sent_at))
                ],
            ),
            Some(version) => self.conn().execute(
                "UPDATE outbound SET record = ?2, version = ?3, expires_at = ?4
                 WHERE id = ?1 AND version = ?5",
                params![
                    record.ses_message_id,
                    json,
                    record.version as i64,
                    record.expires_at,
                    version as i64
                ],
            ),
        }
        .map_err(|e| sql_error(what, e))?;
        if written > 0 {
            // Every address it names, so erasure finds a message by any of its recipients.
            for address in record.addresses() {
                self.conn()
                    .execute(
                        "INSERT OR IGNORE INTO outbound_addresses (id, address) VALUES (?1, ?2)",
                        params![record.ses_message_id, normalise_address(&address)],
                    )
                    .map_err(|e| sql_error(what, e))?;
            }
        }
        Ok(written > 0)
    }
}

impl OutboundLog for SqliteStore {
    async fn sent_between(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Outbound>, StoreError> {
        let mut rows: Vec<Outbound> = self.json_rows(
            "cannot list outbound records",
            "SELECT record FROM outbound
             WHERE sent_at IS NOT NULL AND expires_at > ?1
               AND (?2 IS NULL OR sent_at >= ?2) AND (?3 IS NULL OR sent_at <= ?3)
             ORDER BY sent_at DESC, id DESC LIMIT ?4",
            params![
                Utc::now().timestamp(),
                since.map(time_text),
                until.map(time_text),
                if limit == 0 {
                    -1
                } else {
                    i64::try_from(limit).unwrap_or(i64::MAX)
                }
            ],
        )?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.sent_at));
        Ok(rows)
    }
}

impl KeyStore for SqliteStore {
    async fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.json_row(
            "cannot read an API key",
            "SELECT api_key FROM api_keys WHERE id = ?1",
            params![id],
        )
    }

    async fn put_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let what = "cannot store an API key";
        let json = serde_json::to_string(key).map_err(|e| serialisation(what, e))?;
        self.conn()
            .execute(
                "INSERT INTO api_keys (id, api_key, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET api_key = excluded.api_key",
                params![key.id, json, time_text(key.created_at)],
            )
            .map_err(|e| sql_error(what, e))?;
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.json_rows(
            "cannot read API keys",
            "SELECT api_key FROM api_keys ORDER BY created_at, id",
            [],
        )
    }
}

impl SoftBounceStore for SqliteStore {
    async fn soft_bounces(&self, address: &str) -> Result<Option<SoftBounces>, StoreError> {
        self.json_row(
            "cannot read soft-bounce counts",
            "SELECT counts FROM soft_bounces WHERE address = ?1",
            params![normalise_address(address)],
        )
    }

    async fn put_soft_bounces(
        &self,
        counts: &SoftBounces,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let what = "cannot store soft-bounce counts";
        let json = serde_json::to_string(counts).map_err(|e| serialisation(what, e))?;
        let address = normalise_address(&counts.address);
        let written = match expected {
            None => self.conn().execute(
                "INSERT OR IGNORE INTO soft_bounces (address, counts, version) VALUES (?1, ?2, ?3)",
                params![address, json, counts.version as i64],
            ),
            Some(version) => self.conn().execute(
                "UPDATE soft_bounces SET counts = ?2, version = ?3 WHERE address = ?1 AND version = ?4",
                params![address, json, counts.version as i64, version as i64],
            ),
        }
        .map_err(|e| sql_error(what, e))?;
        Ok(written > 0)
    }

    async fn clear_soft_bounces(&self, address: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM soft_bounces WHERE address = ?1",
                params![normalise_address(address)],
            )
            .map_err(|e| sql_error("cannot clear soft-bounce counts", e))?;
        Ok(())
    }
}
