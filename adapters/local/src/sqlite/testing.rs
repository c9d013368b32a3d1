//! What the tests of the store's parts share: a store in memory, records and routes to put in it, and a
//! database file that is removed after the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Duration as Span, Utc};

use super::SqliteStore;
use mailroom::record::{Delivery, DeliveryKey, Status};
use mailroom::route::{Route, WebhookTarget};

pub(super) fn store() -> SqliteStore {
    SqliteStore::in_memory().unwrap()
}

/// A record received `age` ago, kept `days`, for `recipient`.
pub(super) fn record(message_id: &str, recipient: &str, age: Span, days: u32) -> Delivery {
    let key = DeliveryKey::new(message_id, recipient, "webhook https://hooks.example/in");
    let mut record = Delivery::new(
        &key,
        &format!("inbound/{message_id}"),
        Utc::now() - age,
        days,
    );
    record.recipient = Some(recipient.to_owned());
    record.sender = Some("Alice@Sender.Example".to_owned());
    record.target = "webhook https://hooks.example/in".to_owned();
    record
}

pub(super) fn with_status(mut record: Delivery, status: Status) -> Delivery {
    record.status = status;
    record
}

pub(super) fn webhook_route(pattern: &str) -> Route {
    Route {
        webhook: Some(WebhookTarget {
            url: "https://user:pw@hooks.example/in".to_owned(),
            format: Default::default(),
            secrets: Vec::new(),
            attachments: Default::default(),
            disabled: None,
        }),
        ..Route::new(pattern.parse().unwrap())
    }
}

/// A file path under the system's temporary folder, its database files removed when dropped.
pub(super) struct TempDb(PathBuf);

impl TempDb {
    pub(super) fn new(name: &str) -> TempDb {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mailroom-sqlite-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }

    pub(super) fn file(&self) -> PathBuf {
        self.0.join("mailroom.db")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
