//! Listings over sharded index keys on moto's server: every record once, newest first, page after page,
//! with page boundaries inside shards and among records of one time; records written before shards (and
//! with another shard count) listed too; and `reindex` moving old keys without losing any.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use integration_tests::{resources, sdk};
use mailroom::ports::{RecordFilter, RecordQuery, RecordStore};
use mailroom::record::{Delivery, DeliveryKey, Status, index_shard};
use mailroom_aws::dynamo::{DynamoStore, INDEXES, delivery_item, sort_time};
use mailroom_aws::setup::Resources;
use mailroom_aws::shards::{shard_of, unsharded};

const SHARDS: u32 = 4;

fn record(id: &str, recipient: &str, sender: &str, at: DateTime<Utc>) -> Delivery {
    let target = "webhook https://app.example/in";
    let mut record = Delivery::new(
        &DeliveryKey::new(id, recipient, target),
        &format!("inbound/{id}"),
        at,
        60,
    );
    record.recipient = Some(recipient.to_owned());
    record.sender = Some(sender.to_owned());
    record.target = target.to_owned();
    record.status = Status::Delivered;
    record.attempts = 1;
    record
}

/// The listing's order: time of receipt, then the table's key, newest (greatest) first.
fn order(records: &mut [Delivery]) {
    records.sort_by_key(|r| {
        std::cmp::Reverse((
            sort_time(r.received_at),
            format!("MSG#{}", r.message_id),
            format!("DLV#{}", r.delivery_id),
        ))
    });
}

fn ids(records: &[Delivery]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{}/{}", r.message_id, &r.delivery_id[..6]))
        .collect()
}

/// Every page of `filter` with `limit` records, each from the token of the one before.
async fn pages(store: &DynamoStore, filter: &RecordFilter) -> Vec<Vec<Delivery>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.page(filter, after.as_deref()).await.unwrap();
        assert!(page.records.len() <= filter.limit);
        if !page.records.is_empty() {
            pages.push(page.records);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages.len() < 200, "the pages do not end");
    }
    pages
}

/// An id whose shard among `SHARDS` is `shard`.
fn id_in_shard(prefix: &str, shard: u32) -> String {
    (0..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| index_shard(id, SHARDS) == shard)
        .unwrap()
}

struct World {
    sdk: aws_config::SdkConfig,
    res: Resources,
    store: DynamoStore,
}

async fn world(test: &str) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone())
        .with_index_shards(SHARDS);
    World { sdk, res, store }
}

impl World {
    /// A store as another process would open it (its layout read afresh), writing over `shards`.
    fn reader(&self, shards: u32) -> DynamoStore {
        DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            self.res.table.clone(),
        )
        .with_index_shards(shards)
    }

    /// Writes `record` as a version before shards did: its index keys without a shard.
    async fn put_unsharded(&self, record: &Delivery) {
        let mut item = delivery_item(record, SHARDS).unwrap();
        for index in INDEXES {
            if let Some(AttributeValue::S(key)) = item.get(index.partition).cloned() {
                item.insert(
                    index.partition.to_owned(),
                    AttributeValue::S(unsharded(&key).to_owned()),
                );
            }
        }
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .put_item()
            .table_name(&self.res.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    /// Every stored item, by its key.
    async fn items(&self) -> HashMap<(String, String), HashMap<String, AttributeValue>> {
        let output = aws_sdk_dynamodb::Client::new(&self.sdk)
            .scan()
            .table_name(&self.res.table)
            .send()
            .await
            .unwrap();
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let key = |name: &str| item[name].as_s().unwrap().clone();
                ((key("pk"), key("sk")), item.clone())
            })
            .collect()
    }
}

#[tokio::test]
async fn pages_across_shards_list_every_record_once_newest_first() {
    let w = world("listing").await;
    let now = Utc::now() - Duration::seconds(5);
    let mut all = Vec::new();
    // Thirty messages a minute apart, from two senders, some of yesterday.
    for n in 0..30 {
        let sender = if n % 3 == 0 {
            "ana@sender.example"
        } else {
            "bruno@sender.example"
        };
        let at = now - Duration::minutes(n * 53);
        all.push(record(
            &format!("m{n:02}"),
            "support@mail.example.com",
            sender,
            at,
        ));
    }
    // One message to three recipients (three deliveries of one time, in one shard), and two messages of
    // one millisecond in two other shards.
    let tied = now - Duration::minutes(100);
    for recipient in [
        "support@mail.example.com",
        "sales@mail.example.com",
        "ops@mail.example.com",
    ] {
        all.push(record("tie-one", recipient, "ana@sender.example", tied));
    }
    let other = (index_shard("tie-one", SHARDS) + 1) % SHARDS;
    for id in [
        id_in_shard("tie-a", other),
        id_in_shard("tie-b", (other + 1) % SHARDS),
    ] {
        all.push(record(
            &id,
            "support@mail.example.com",
            "ana@sender.example",
            tied,
        ));
    }
    for r in &all {
        assert!(w.store.save(r, None).await.unwrap());
    }
    order(&mut all);

    for limit in [3, 7, 50] {
        let filter = RecordFilter {
            limit,
            ..RecordFilter::default()
        };
        let pages = pages(&w.reader(SHARDS), &filter).await;
        let listed: Vec<Delivery> = pages.iter().flatten().cloned().collect();
        assert_eq!(ids(&listed), ids(&all), "pages of {limit}");
        // A query reads ten entries of each shard at least, more than a page of three or seven takes
        // from it: a page that ends inside a shard must resume there, not after what the shard had read.
        let inside = pages.windows(2).any(|pair| {
            let last = index_shard(&pair[0].last().unwrap().message_id, SHARDS);
            pair[1]
                .iter()
                .any(|r| index_shard(&r.message_id, SHARDS) == last)
        });
        assert!(
            limit == 50 || inside,
            "some page boundary falls inside a shard"
        );
    }

    // One address, with a sender and a status to filter on.
    let filter = RecordFilter {
        recipient: Some("Support@Mail.Example.com".to_owned()),
        sender: Some("ana@sender.example".to_owned()),
        status: Some(Status::Delivered),
        limit: 2,
        ..RecordFilter::default()
    };
    let expected: Vec<Delivery> = all
        .iter()
        .filter(|r| r.recipient.as_deref() == Some("support@mail.example.com"))
        .filter(|r| r.sender.as_deref() == Some("ana@sender.example"))
        .cloned()
        .collect();
    let listed: Vec<Delivery> = pages(&w.store, &filter)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ids(&listed), ids(&expected));
    let by_sender = RecordFilter {
        sender: Some("BRUNO@sender.example".to_owned()),
        limit: 4,
        ..RecordFilter::default()
    };
    let listed: Vec<Delivery> = pages(&w.store, &by_sender)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(listed.len(), 20);
    // Since a time: the key condition, on every shard.
    let since = RecordFilter {
        since: Some(now - Duration::minutes(60)),
        limit: 1,
        ..RecordFilter::default()
    };
    let listed: Vec<Delivery> = pages(&w.store, &since)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ids(&listed), ids(&all[..2]));
    // Up to a time as well (a date range): the same key condition, bounded on both sides, and pages
    // that start inside the range.
    let (newest, oldest) = (all[3].received_at, all[all.len() - 4].received_at);
    let window = RecordFilter {
        since: Some(oldest),
        until: Some(newest),
        limit: 3,
        ..RecordFilter::default()
    };
    let expected: Vec<Delivery> = all
        .iter()
        .filter(|r| r.received_at >= oldest && r.received_at <= newest)
        .cloned()
        .collect();
    let listed: Vec<Delivery> = pages(&w.store, &window)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(expected.len() > 6, "{}", expected.len());
    assert_eq!(ids(&listed), ids(&expected));
    // A token is refused for what it is not.
    assert!(
        w.store
            .page(&filter, Some("r1.bm90IGEgdG9rZW4"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn old_keys_and_another_shard_count_stay_listed_and_reindex_moves_them() {
    let w = world("reindex").await;
    let now = Utc::now() - Duration::seconds(5);
    let mut all = Vec::new();
    // Before shards (as an upgraded stack holds them), then with four shards, then with sixteen.
    for n in 0..4 {
        let r = record(
            &format!("old{n}"),
            "support@mail.example.com",
            "ana@sender.example",
            now - Duration::minutes(90 + n),
        );
        w.put_unsharded(&r).await;
        all.push(r);
    }
    w.store.set_legacy(true).await.unwrap();
    for n in 0..5 {
        let r = record(
            &format!("four{n}"),
            "support@mail.example.com",
            "ana@sender.example",
            now - Duration::minutes(30 + n),
        );
        assert!(w.store.save(&r, None).await.unwrap());
        all.push(r);
    }
    let sixteen = w.reader(16);
    for n in 0..5 {
        let r = record(
            &format!("sixteen{n}"),
            "support@mail.example.com",
            "ana@sender.example",
            now - Duration::minutes(n),
        );
        assert!(sixteen.save(&r, None).await.unwrap());
        all.push(r);
    }
    order(&mut all);
    let layout = w.reader(2).recorded_layout().await.unwrap().unwrap();
    assert_eq!(
        (layout.reach, layout.legacy),
        (16, true),
        "the most shards any writer used"
    );

    // A reader configured for two shards still lists all: it asks the table, not its own setting.
    let filter = RecordFilter {
        recipient: Some("support@mail.example.com".to_owned()),
        limit: 4,
        ..RecordFilter::default()
    };
    let listed: Vec<Delivery> = pages(&w.reader(2), &filter)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ids(&listed), ids(&all));

    // Back to four shards: a dry run counts, changes nothing.
    let four = w.reader(SHARDS);
    let counted = four.reindex(true, |_| {}).await.unwrap();
    let moved_sixteen = all
        .iter()
        .filter(|r| r.message_id.starts_with("sixteen"))
        .filter(|r| index_shard(&r.message_id, 16) != index_shard(&r.message_id, SHARDS))
        .count() as u64;
    assert_eq!(counted.moved, 4 + moved_sixteen);
    assert_eq!(counted.unsharded, 4);
    assert!(w.reader(2).recorded_layout().await.unwrap().unwrap().legacy);

    let done = four.reindex(false, |_| {}).await.unwrap();
    assert_eq!(done.moved, counted.moved);
    assert_eq!(done.changed_meanwhile, 0);
    for ((pk, _), item) in w.items().await {
        if !pk.starts_with("MSG#") {
            continue;
        }
        let id = &pk[4..];
        for index in INDEXES {
            if let Some(AttributeValue::S(key)) = item.get(index.partition) {
                assert_eq!(shard_of(key), Some(index_shard(id, SHARDS)), "{pk}: {key}");
            }
        }
    }
    let layout = w.reader(2).recorded_layout().await.unwrap().unwrap();
    assert_eq!(
        (layout.reach, layout.legacy),
        (16, false),
        "reach never goes down"
    );
    let listed: Vec<Delivery> = pages(&w.reader(2), &filter)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ids(&listed), ids(&all));
    // Run again: nothing left to move.
    assert_eq!(four.reindex(false, |_| {}).await.unwrap().moved, 0);
}
