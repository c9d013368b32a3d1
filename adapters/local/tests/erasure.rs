//! Erasure over the local adapters: what `mailroom data delete` removes from the dev store.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use mailroom::record::{Delivery, DeliveryKey, Status};
use mailroom::usecases::erasure::*;

#[tokio::test]
async fn a_failure_of_the_whole_message_becomes_its_tombstone() {
    use mailroom::ports::RecordStore;
    use mailroom_local::files::LocalMailStore;
    use mailroom_local::sqlite::SqliteStore;

    let store = SqliteStore::in_memory().unwrap();
    let root = std::env::temp_dir().join(format!("mailroom-erasure-{}", std::process::id()));
    let mail = LocalMailStore::new(&root);
    mail.put("inbound/m1", b"Subject: x\r\n\r\nnot parseable enough")
        .unwrap();
    // What the use case writes when a message cannot be read: no target, the message's key.
    let key = DeliveryKey::new("m1", "", "");
    let mut failure = Delivery::new(&key, "inbound/m1", Utc::now(), 60);
    failure.status = Status::Failed;
    failure.recipient = Some("ana@example.net".to_owned());
    failure.error = Some("cannot parse the message".to_owned());
    store.save(&failure, None).await.unwrap();

    let data = AddressData::new(store.clone(), mail, "local");
    let held = data.export("Ana@Example.net").await.unwrap();
    assert_eq!(held.deliveries.len(), 1);
    assert_eq!(held.objects, ["inbound/m1"]);
    let erased = data.delete(&held, Utc::now()).await.unwrap();
    assert_eq!(erased.deliveries, 1);
    assert_eq!(erased.objects, 1);

    let left = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        left.status,
        Status::Erased,
        "a late event cannot record it again"
    );
    assert!(left.recipient.is_none());
    assert!(data.export("ana@example.net").await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&root);
}
