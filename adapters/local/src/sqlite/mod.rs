//! Routes, delivery records and the retry queue of `mailroom dev`, in one embedded SQLite file.
//!
//! | table | holds |
//! |---|---|
//! | `routes` | each [`Route`] as JSON, keyed by its pattern |
//! | `deliveries` | each [`Delivery`] as JSON, keyed by message and delivery id, with copies of the columns that listings filter on and the claim of the worker attempting it |
//! | `pending` | the dev server's retry queue: a payload per message, due at a time |
//! | `suppressions` | each [`Suppression`] as JSON, keyed by the normalised address |
//! | `outbound` | each [`Outbound`] record of a forward as JSON, keyed by its id, with its `version` and the addresses it was sent from and to |
//! | `soft_bounces` | each address's [`SoftBounces`] as JSON, with its `version` |
//! | `settings` | the store's own values: its lookup key |
//!
//! The address columns of `deliveries` hold what the DynamoDB indexes are keyed by: `recipient` and
//! `sender` the address lowercased, or the keyed digest standing in for it where the route redacted it;
//! `from_header` and `reply_to` always the digest of the header's address, which records do not hold.
//!
//! The semantics follow the DynamoDB adapter (adapters/aws/src/dynamo.rs) exactly: a claim-only row
//! stands for a claimed delivery not yet recorded, expired rows read as gone, and `claim` and `save` take
//! the same conditions. The file is opened with `secure_delete`, so erased rows are overwritten rather than left in
//! free pages.
//!
//! [`Route`]: mailroom::route::Route
//! [`Suppression`]: mailroom::feedback::Suppression
//! [`Outbound`]: mailroom::feedback::Outbound
//! [`SoftBounces`]: mailroom::feedback::SoftBounces

mod erasure;
mod feedback;
mod query;
mod queue;
mod records;
mod reopen;
mod routes;
mod schema;
#[cfg(test)]
mod testing;

pub use schema::SCHEMA_VERSION;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use mailroom::mail::envelope::normalise_address;
use mailroom::ports::StoreError;
use mailroom::record::{Delivery, LookupKey};

/// How long a statement waits for another connection's lock before failing as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes, records and the retry queue in one SQLite database; clones share one connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

/// A store error from a SQLite one, keeping it as the source: busy and locked databases may free up, the
/// rest will fail again.
fn sql_error(what: &str, error: rusqlite::Error) -> StoreError {
    let retryable = matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    StoreError {
        what: format!("{what}: {error}"),
        retryable,
        source: Some(Box::new(error)),
    }
}

/// A store error from a JSON one, keeping it as the source: the same value will fail again.
fn serialisation(what: &str, error: serde_json::Error) -> StoreError {
    StoreError {
        what: format!("{what}: {error}"),
        retryable: false,
        source: Some(Box::new(error)),
    }
}

/// A time as stored in text columns: fixed width and in UTC, so text order is time order.
fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A delivery record from its stored JSON.
fn parse_record(json: &str) -> Result<Delivery, StoreError> {
    serde_json::from_str(json).map_err(|e| serialisation("cannot read a record", e))
}

/// An address as the lookup columns keep it.
fn lookup(address: Option<&str>) -> Option<String> {
    address.map(normalise_address)
}

/// The name of the lookup key in `settings`.
const LOOKUP_KEY: &str = "lookup_key";

impl SqliteStore {
    /// Opens (or creates, readable by its owner only, as its `-wal` and `-shm` files then are) the database
    /// at `path`, bringing its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let what = format!("cannot open the database {}", path.display());
        super::private::touch(path).map_err(|e| StoreError {
            what: format!("{what}: {e}"),
            retryable: false,
            source: Some(Box::new(e)),
        })?;
        let conn = Connection::open(path).map_err(|e| sql_error(&what, e))?;
        SqliteStore::setup(conn).map_err(|mut e| {
            e.what = format!("{what}: {}", e.what);
            e
        })
    }

    /// A database that lives in memory only, for tests.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| sql_error("cannot open an in-memory database", e))?;
        SqliteStore::setup(conn)
    }

    /// Configures the connection and brings its schema up to date.
    fn setup(mut conn: Connection) -> Result<SqliteStore, StoreError> {
        let pragma = |e| sql_error("cannot configure the database", e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(pragma)?;
        // WAL lets the inspector read while a delivery writes; in memory it stays `memory`.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(pragma)?;
        // Erased records must not linger in free pages of the file.
        conn.pragma_update_and_check(None, "secure_delete", "ON", |row| row.get::<_, i64>(0))
            .map_err(pragma)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(pragma)?;
        schema::migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The connection; a panic elsewhere while it was held leaves SQLite consistent, so poisoning is
    /// ignored.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The one JSON column of the row `sql` selects, read as `T`.
    fn json_row<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<T>, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row(sql, params, |row| row.get(0))
            .optional()
            .map_err(|e| sql_error(what, e))?;
        json.map(|json| serde_json::from_str(&json).map_err(|e| serialisation(what, e)))
            .transpose()
    }

    /// The one JSON column of every row `sql` selects, read as `T`.
    fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(sql).map_err(|e| sql_error(what, e))?;
        let rows = statement
            .query_map(params, |row| row.get::<_, String>(0))
            .map_err(|e| sql_error(what, e))?;
        let mut all = Vec::new();
        for json in rows {
            let json = json.map_err(|e| sql_error(what, e))?;
            all.push(serde_json::from_str(&json).map_err(|e| serialisation(what, e))?);
        }
        Ok(all)
    }

    /// The store's lookup key, made when `create` and there is none yet.
    pub fn lookup_key(&self, create: bool) -> Result<Option<LookupKey>, StoreError> {
        let what = "cannot read the lookup key";
        let read = |conn: &Connection| -> Result<Option<String>, StoreError> {
            conn.query_row(
                "SELECT value FROM settings WHERE name = ?1",
                params![LOOKUP_KEY],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| sql_error(what, e))
        };
        let conn = self.conn();
        let mut text = read(&conn)?;
        if text.is_none() && create {
            let fresh = LookupKey::generate().map_err(|e| StoreError {
                what: format!("cannot make a lookup key: {e}"),
                retryable: false,
                source: Some(Box::new(e)),
            })?;
            conn.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES (?1, ?2)",
                params![LOOKUP_KEY, fresh],
            )
            .map_err(|e| sql_error("cannot store the lookup key", e))?;
            text = read(&conn)?;
        }
        text.map(|t| {
            LookupKey::parse(&t).map_err(|e| {
                StoreError::permanent(format!("the store's lookup key is unusable: {e}"))
            })
        })
        .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Duration as Span;

    use super::testing::{TempDb, record, store, webhook_route, with_status};
    use super::*;
    use mailroom::ports::{RecordStore, RouteStore};
    use mailroom::record::Status;

    #[tokio::test]
    async fn a_file_database_persists_and_is_configured() {
        let temp = TempDb::new("persist");
        let record = with_status(
            record("m1", "a@example.com", Span::hours(1), 60),
            Status::Delivered,
        );
        let route = webhook_route("*@example.com");
        {
            let store = SqliteStore::open(&temp.file()).unwrap();
            assert!(store.save(&record, None).await.unwrap());
            store.put_route(&route).await.unwrap();
            store
                .schedule("inbound/m1", record.received_at, "{}")
                .unwrap();
        }
        let store = SqliteStore::open(&temp.file()).unwrap();
        assert_eq!(store.get(&record.key()).await.unwrap(), Some(record));
        assert_eq!(store.routes().await.unwrap(), vec![route]);
        assert_eq!(store.pending_count().unwrap(), 1);

        let conn = store.conn();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
        };
        assert_eq!(pragma("secure_delete"), "1");
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("foreign_keys"), "1");
        assert_eq!(pragma("user_version"), SCHEMA_VERSION.to_string());
    }

    #[test]
    fn secure_delete_is_on_in_memory_too() {
        let store = store();
        let on: i64 = store
            .conn()
            .query_row("PRAGMA secure_delete", [], |row| row.get(0))
            .unwrap();
        assert_eq!(on, 1);
    }

    #[test]
    fn busy_databases_are_retryable() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(sql_error("x", busy).retryable);
        let other = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        );
        let error = sql_error("x", other);
        assert!(!error.retryable);
        assert!(std::error::Error::source(&error).is_some());
    }
}
