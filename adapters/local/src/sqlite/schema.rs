//! The schema of the dev store and its migrations: one step per version, counted in `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use super::sql_error;
use mailroom::ports::StoreError;

/// The schema, one step per version: step `i` takes `PRAGMA user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE routes (
        pattern TEXT PRIMARY KEY,
        route TEXT NOT NULL,
        updated_at TEXT
    );
    CREATE TABLE deliveries (
        message_id TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        record TEXT,
        status TEXT,
        recipient TEXT,
        sender TEXT,
        received_at TEXT,
        expires_at INTEGER,
        claim_token TEXT,
        claim_until INTEGER,
        PRIMARY KEY (message_id, delivery_id)
    );
    CREATE INDEX deliveries_recipient ON deliveries (recipient);
    CREATE INDEX deliveries_sender ON deliveries (sender);
    CREATE INDEX deliveries_received_at ON deliveries (received_at);
    CREATE INDEX deliveries_status ON deliveries (status);
    CREATE TABLE pending (
        message_key TEXT PRIMARY KEY,
        due_at INTEGER NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX pending_due_at ON pending (due_at);
",
    "
    CREATE TABLE suppressions (
        address TEXT PRIMARY KEY,
        suppression TEXT NOT NULL
    );
",
    "
    CREATE TABLE outbound (
        id TEXT PRIMARY KEY,
        message_id TEXT,
        record TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        recipient TEXT,
        sender TEXT
    );
    CREATE INDEX outbound_message_id ON outbound (message_id);
    CREATE INDEX outbound_recipient ON outbound (recipient);
    CREATE INDEX outbound_sender ON outbound (sender);
    CREATE TABLE soft_bounces (
        address TEXT PRIMARY KEY,
        counts TEXT NOT NULL,
        version INTEGER NOT NULL
    );
",
    "
    ALTER TABLE deliveries ADD COLUMN forward_to TEXT;
    CREATE INDEX deliveries_forward_to ON deliveries (forward_to);
",
    "
    ALTER TABLE deliveries ADD COLUMN from_header TEXT;
    ALTER TABLE deliveries ADD COLUMN reply_to TEXT;
    CREATE INDEX deliveries_from_header ON deliveries (from_header);
    CREATE INDEX deliveries_reply_to ON deliveries (reply_to);
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
",
    "
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        api_key TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    ALTER TABLE outbound ADD COLUMN sent_at TEXT;
    CREATE INDEX outbound_sent_at ON outbound (sent_at);
    CREATE TABLE outbound_addresses (
        id TEXT NOT NULL,
        address TEXT NOT NULL,
        PRIMARY KEY (id, address)
    );
    CREATE INDEX outbound_addresses_address ON outbound_addresses (address);
",
];

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema from its `user_version` up to [`SCHEMA_VERSION`], one transaction per step.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let what = "cannot set up the database schema";
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| sql_error(what, e))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::permanent(format!(
            "the database has schema version {version}, newer than this mailroom's {SCHEMA_VERSION}: \
             upgrade mailroom or use another file"
        )));
    }
    for (step, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(what, e))?;
        tx.execute_batch(sql).map_err(|e| sql_error(what, e))?;
        tx.pragma_update(None, "user_version", step as i64 + 1)
            .map_err(|e| sql_error(what, e))?;
        tx.commit().map_err(|e| sql_error(what, e))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::sqlite::testing::TempDb;

    #[test]
    fn a_newer_schema_is_refused() {
        let temp = TempDb::new("newer");
        {
            let conn = Connection::open(temp.file()).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let error = SqliteStore::open(&temp.file()).unwrap_err();
        assert!(!error.retryable);
        assert!(error.what.contains("newer"), "{}", error.what);
    }
}
