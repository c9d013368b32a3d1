//! Routes and delivery records in one DynamoDB table (`MAILROOM_TABLE`).
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | route | `ROUTE` | `ROUTE#<pattern>` |
//! | delivery record | `MSG#<SES message id>` | `DLV#<digest of recipient and target>` |
//!
//! Delivery records (and the outbound records of [`super::feedback`]) also carry the keys of the global
//! secondary indexes ([`INDEXES`]), so records are found by address or by day without a scan: `gsi_recipient`
//! and `gsi_sender` (the addresses, lowercased), `gsi_from` and `gsi_reply_to` (keyed digests of the
//! `From:` and `Reply-To:` addresses, which records do not hold; `Reply-To` only when it differs),
//! `gsi_target` (the address a forward goes to), `gsi_day` (`YYYY-MM-DD` of receipt) and `gsi_at` (the time
//! of receipt, RFC 3339 with milliseconds, which sorts). Each partition key ends in `#<shard>`, the shard a
//! hash of the message id picks ([`super::shards`]), so one busy day or address is spread over several
//! partitions. Where the route redacts the recipient or the sender, its index key is the keyed digest that
//! stands in for it too ([`mailroom::record::Lookup`]). The digests are keyed with the table's lookup key
//! (item `CONFIG` / `LOOKUP_KEY`, made at first need).
//!
//! Records carry `expires_at` (Unix seconds) for the table's TTL; reads treat an expired item as gone,
//! since DynamoDB deletes expired items only eventually. A delivery is claimed with a conditional write
//! (`claim_token`, `claim_until`) before it is attempted, so duplicate events never post twice at once; a
//! claim with no record after it (the attempt never finished) expires too. A claim carries no index key
//! and the indexes project none of its attributes, so claiming writes the table alone.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use super::item::{Item, from_item, number, string, to_item};
use super::shards::{Layout, sharded};
use super::store_error;
use mailroom::ports::{Claim, RecordStore, RouteStore, StoreError};
use mailroom::record::{
    DEFAULT_INDEX_SHARDS, Delivery, DeliveryKey, LookupKey, MAX_INDEX_SHARDS, Party, Status,
};
use mailroom::route::{Disabled, Pattern, Route};

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// The TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Partition of the routes.
pub const ROUTES_PK: &str = "ROUTE";

/// What a global secondary index holds of each item besides the keys (the table's and its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Every attribute: a full copy of each item (the indexes before issue #20).
    All,
    /// Nothing more: an index erasure reads, which follows each entry with a read of the item.
    KeysOnly,
    /// Only these attributes: what a listing filters on. A record's content comes from the table, so a
    /// write that changes none of them (a claim, an attempt that leaves the status as it was) writes no
    /// index entry at all.
    Include(&'static [&'static str]),
}

/// A global secondary index of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    /// Its name.
    pub name: &'static str,
    /// Its partition key attribute.
    pub partition: &'static str,
    /// Its sort key attribute.
    pub sort: &'static str,
    /// What it holds.
    pub projection: Projection,
}

impl Index {
    /// Whether its entries carry `type` (so a query can keep only records of one kind), or only keys.
    pub fn has_type(&self) -> bool {
        match self.projection {
            Projection::All => true,
            Projection::KeysOnly => false,
            Projection::Include(names) => names.contains(&"type"),
        }
    }
}

/// What a listing filters on: the kind of item, its status, its expiry. The rows themselves are read from
/// the table by key, so no attempt's write has to copy them into an index.
pub const LISTED: &[&str] = &["type", "status", TTL_ATTRIBUTE];

/// [`LISTED`], and the sender's index key: `messages list --recipient A --sender S` filters on it.
pub const LISTED_WITH_SENDER: &[&str] = &["type", "status", TTL_ATTRIBUTE, "gsi_sender"];

/// Records by recipient (inbound) or forward address (outbound), newest first; the key is sharded.
pub const BY_RECIPIENT: Index = Index {
    name: "by_recipient_shard",
    partition: "gsi_recipient",
    sort: "gsi_at",
    projection: Projection::Include(LISTED_WITH_SENDER),
};

/// Records by envelope sender (inbound) or sending address (outbound), newest first; sharded.
pub const BY_SENDER: Index = Index {
    name: "by_sender_shard",
    partition: "gsi_sender",
    sort: "gsi_at",
    projection: Projection::Include(LISTED),
};

/// Delivery records by day of receipt, newest first: listings without an address; sharded.
pub const BY_DAY: Index = Index {
    name: "by_day_shard",
    partition: "gsi_day",
    sort: "gsi_at",
    projection: Projection::Include(LISTED),
};

/// Forward deliveries and outbound records by the address they forward to (for erasure; keys only);
/// sharded.
pub const BY_TARGET: Index = Index {
    name: "by_target_shard",
    partition: "gsi_target",
    sort: "gsi_at",
    projection: Projection::KeysOnly,
};

/// Records by the address of the `From:` header (for erasure; keys only); sharded.
pub const BY_FROM: Index = Index {
    name: "by_from",
    partition: "gsi_from",
    sort: "gsi_at",
    projection: Projection::KeysOnly,
};

/// Records by the address of the `Reply-To:` header when it differs from `From:` (for erasure; keys
/// only); sharded.
pub const BY_REPLY_TO: Index = Index {
    name: "by_reply_to",
    partition: "gsi_reply_to",
    sort: "gsi_at",
    projection: Projection::KeysOnly,
};

/// Every index, as `template.yaml` and `mailroom setup emulator` create them.
pub const INDEXES: [Index; 6] = [
    BY_RECIPIENT,
    BY_SENDER,
    BY_DAY,
    BY_TARGET,
    BY_FROM,
    BY_REPLY_TO,
];

/// The indexes of stacks deployed before issue #20: the same keys unsharded, every attribute copied.
/// A stack upgrades by adding [`INDEXES`]' new ones and then removing these, one per deploy
/// (docs/records-at-scale.md, "Upgrading a stack").
pub const LEGACY_INDEXES: [Index; 4] = [
    Index {
        name: "by_recipient",
        projection: Projection::All,
        ..BY_RECIPIENT
    },
    Index {
        name: "by_sender",
        projection: Projection::All,
        ..BY_SENDER
    },
    Index {
        name: "by_day",
        projection: Projection::All,
        ..BY_DAY
    },
    Index {
        name: "by_target",
        projection: Projection::All,
        ..BY_TARGET
    },
];

/// The index of each party a record names.
pub fn party_index(party: Party) -> Index {
    match party {
        Party::Recipient => BY_RECIPIENT,
        Party::Sender => BY_SENDER,
        Party::From => BY_FROM,
        Party::ReplyTo => BY_REPLY_TO,
    }
}

/// The index keys of an outbound record sent `at` (keyed `id`, its SES message id), for `recipient` and
/// `sender`, spread over `shards`. No day: listings by day list deliveries only.
pub fn index_attributes(
    id: &str,
    shards: u32,
    recipient: Option<&str>,
    sender: Option<&str>,
    at: DateTime<Utc>,
) -> Item {
    let mut item = Item::from([(BY_DAY.sort.to_owned(), s(sort_time(at)))]);
    for (index, address) in [(BY_RECIPIENT, recipient), (BY_SENDER, sender)] {
        if let Some(address) = address.filter(|a| !a.is_empty()) {
            let key = mailroom::mail::envelope::normalise_address(address);
            item.insert(index.partition.to_owned(), s(sharded(&key, id, shards)));
        }
    }
    item
}

/// The `gsi_day` value of a time, before its shard.
pub fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// The `gsi_at` value of a time: fixed width, so text order is time order.
pub fn sort_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

const CLAIM_TOKEN: &str = "claim_token";
const CLAIM_UNTIL: &str = "claim_until";

pub use mailroom::record::CLAIM_ONLY_TTL;

/// Partition of the table's own settings.
pub const CONFIG_PK: &str = "CONFIG";
/// Sort key of the lookup key's item.
pub const LOOKUP_KEY_SK: &str = "LOOKUP_KEY";

/// The table of routes and records.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    lookup_key: Arc<OnceCell<LookupKey>>,
    /// How many shards this store spreads the index keys it writes over.
    pub(crate) shards: u32,
    /// How the table's index keys are spread, as the table records it: read once, for listings.
    pub(crate) layout: Arc<OnceCell<Layout>>,
    /// Set once this store has recorded its shard count in the table (before its first index key).
    pub(crate) recorded: Arc<OnceCell<()>>,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The key of a delivery record.
pub fn delivery_key(key: &DeliveryKey) -> Item {
    Item::from([
        (PK.to_owned(), s(format!("MSG#{}", key.message_id))),
        (SK.to_owned(), s(format!("DLV#{}", key.delivery_id))),
    ])
}

/// The key of a route.
pub fn route_key(pattern: &Pattern) -> Item {
    Item::from([
        (PK.to_owned(), s(ROUTES_PK)),
        (SK.to_owned(), s(format!("ROUTE#{pattern}"))),
    ])
}

fn serialisation(what: &str, error: serde_json::Error) -> StoreError {
    StoreError {
        what: format!("{what}: {error}"),
        retryable: false,
        source: Some(Box::new(error)),
    }
}

/// A delivery record as an item: its fields, its key, `type`, and the index keys of its day and of the
/// people it names (addresses lowercased, or the digests standing in for them: seal the record first), each
/// spread over `shards` by the message id.
pub fn delivery_item(record: &Delivery, shards: u32) -> Result<Item, StoreError> {
    let mut item = to_item(record).map_err(|e| serialisation("cannot store a record", e))?;
    item.extend(delivery_key(&record.key()));
    let id = record.message_id.as_str();
    let mut keys = vec![
        (BY_DAY.partition, day_of(record.received_at)),
        (BY_DAY.sort, sort_time(record.received_at)),
    ];
    let from = record.party_key(Party::From);
    for party in Party::ALL {
        let Some(key) = record.party_key(party) else {
            continue;
        };
        if party == Party::ReplyTo && from.as_deref() == Some(key.as_str()) {
            // Reply-To is worth an index entry only where it leads elsewhere than From.
            continue;
        }
        keys.push((party_index(party).partition, key));
    }
    if let Some(address) = record.forward_address() {
        keys.push((
            BY_TARGET.partition,
            mailroom::mail::envelope::normalise_address(address),
        ));
    }
    for (attribute, value) in keys {
        let value = if attribute == BY_DAY.sort {
            value
        } else {
            sharded(&value, id, shards)
        };
        item.insert(attribute.to_owned(), s(value));
    }
    item.insert("type".to_owned(), s("delivery"));
    Ok(item)
}

/// A delivery record from an item, unless it has expired.
pub fn delivery_from_item(item: &Item, now: DateTime<Utc>) -> Result<Option<Delivery>, StoreError> {
    if !item.contains_key("status") {
        // Only a claim was written so far.
        return Ok(None);
    }
    let record: Delivery = from_item(item).map_err(|e| serialisation("cannot read a record", e))?;
    Ok((!record.is_expired(now)).then_some(record))
}

impl DynamoStore {
    /// Uses `table` through a client built once at init.
    /// Writes index keys over [`DEFAULT_INDEX_SHARDS`] shards; see [`with_index_shards`](Self::with_index_shards).
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            lookup_key: Arc::new(OnceCell::new()),
            shards: DEFAULT_INDEX_SHARDS,
            layout: Arc::new(OnceCell::new()),
            recorded: Arc::new(OnceCell::new()),
        }
    }

    /// The same store, writing index keys over `shards` shards (`MAILROOM_INDEX_SHARDS`; 1 to
    /// [`MAX_INDEX_SHARDS`]). Listings read whatever the table says writers have used.
    pub fn with_index_shards(mut self, shards: u32) -> DynamoStore {
        self.shards = shards.clamp(1, MAX_INDEX_SHARDS);
        self
    }

    /// How many shards this store writes index keys over.
    pub fn index_shards(&self) -> u32 {
        self.shards
    }

    /// The table's lookup key, read once (and made, when `create` and the table has none yet: the first
    /// record of a redacting route makes it). `None` when there is none and none was to be made.
    pub async fn lookup_key(&self, create: bool) -> Result<Option<LookupKey>, StoreError> {
        if let Some(key) = self.lookup_key.get() {
            return Ok(Some(key.clone()));
        }
        let key_item = || {
            Item::from([
                (PK.to_owned(), s(CONFIG_PK)),
                (SK.to_owned(), s(LOOKUP_KEY_SK)),
            ])
        };
        let mut text = self
            .get_item(key_item())
            .await?
            .and_then(|item| string(&item, "key"));
        if text.is_none() && create {
            let fresh = LookupKey::generate().map_err(|e| StoreError {
                what: format!("cannot make a lookup key: {e}"),
                retryable: false,
                source: Some(Box::new(e)),
            })?;
            let mut item = key_item();
            item.insert("key".to_owned(), s(fresh));
            item.insert("type".to_owned(), s("config"));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            match put {
                Ok(_) => {}
                // Another writer made it first: theirs is the key.
                Err(error) if conditional_failed::<PutItemError>(&error) => {}
                Err(error) => {
                    return Err(store_error(
                        format!("cannot store the lookup key in {}", self.table),
                        error,
                    ));
                }
            }
            text = self
                .get_item(key_item())
                .await?
                .and_then(|item| string(&item, "key"));
        }
        let Some(text) = text else {
            return Ok(None);
        };
        let key = LookupKey::parse(&text).map_err(|e| {
            StoreError::permanent(format!("the lookup key in {} is unusable: {e}", self.table))
        })?;
        let _ = self.lookup_key.set(key.clone());
        Ok(Some(key))
    }

    /// `record` as it is stored: the addresses its route redacted turned into digests.
    async fn sealed(&self, record: &Delivery) -> Result<Delivery, StoreError> {
        let mut record = record.clone();
        if record.needs_lookup_key()
            && let Some(key) = self.lookup_key(true).await?
        {
            record.seal(&key);
        }
        Ok(record)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(format!("cannot read from table {}", self.table), e))?;
        Ok(output.item)
    }
}

fn conditional_failed<E>(
    error: &aws_sdk_dynamodb::error::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

impl RecordStore for DynamoStore {
    async fn get(&self, key: &DeliveryKey) -> Result<Option<Delivery>, StoreError> {
        match self.get_item(delivery_key(key)).await? {
            Some(item) => delivery_from_item(&item, Utc::now()),
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
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(delivery_key(key)))
            // A claim-only item expires some days after its claim, so an attempt that never recorded its
            // end leaves nothing behind for good; a record keeps its own expiry.
            .update_expression(
                "SET #token = :token, #until = :until, #expires = if_not_exists(#expires, :claim_expires)",
            )
            // A claim-only item (a first attempt under way) is as busy as a retrying one.
            .condition_expression(
                "attribute_not_exists(#pk) OR #expires <= :now \
                 OR ((attribute_not_exists(#status) OR #status = :pending OR #status = :retrying) \
                     AND (attribute_not_exists(#until) OR #until < :now))",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_names("#token", CLAIM_TOKEN)
            .expression_attribute_names("#until", CLAIM_UNTIL)
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":until", n(until.timestamp()))
            .expression_attribute_values(
                ":claim_expires",
                n((until + CLAIM_ONLY_TTL).timestamp()),
            )
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":retrying", s(Status::Retrying.as_str()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let previous = match output.attributes {
                    Some(item) => delivery_from_item(&item, now)?,
                    None => None,
                };
                Ok(Claim::Granted(previous.map(Box::new)))
            }
            Err(error) if conditional_failed::<UpdateItemError>(&error) => {
                let item = self.get_item(delivery_key(key)).await?.unwrap_or_default();
                match delivery_from_item(&item, now)? {
                    Some(record) if record.status.is_final() => Ok(Claim::Final(Box::new(record))),
                    _ => {
                        let until = number(&item, CLAIM_UNTIL)
                            .and_then(|t| DateTime::from_timestamp(t, 0))
                            .unwrap_or(now);
                        Ok(Claim::Busy(until))
                    }
                }
            }
            Err(error) => Err(store_error(
                format!("cannot claim a delivery in {}", self.table),
                error,
            )),
        }
    }

    async fn save(&self, record: &Delivery, token: Option<&str>) -> Result<bool, StoreError> {
        let record = self.sealed(record).await?;
        self.record_shards().await?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(delivery_item(&record, self.shards)?));
        let request = match token {
            Some(token) => request
                .condition_expression("#token = :token")
                .expression_attribute_names("#token", CLAIM_TOKEN)
                .expression_attribute_values(":token", s(token)),
            None => request
                .condition_expression(
                    "attribute_not_exists(#status) OR #status = :pending OR #status = :retrying",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":pending", s(Status::Pending.as_str()))
                .expression_attribute_values(":retrying", s(Status::Retrying.as_str())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if conditional_failed::<PutItemError>(&error) => Ok(false),
            Err(error) => Err(store_error(
                format!("cannot write a record to {}", self.table),
                error,
            )),
        }
    }
}

impl RouteStore for DynamoStore {
    async fn routes(&self) -> Result<Vec<Route>, StoreError> {
        let mut routes = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :routes")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":routes", s(ROUTES_PK))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item
                .map_err(|e| store_error(format!("cannot read routes from {}", self.table), e))?;
            match from_item::<Route>(&item) {
                Ok(route) => routes.push(route),
                Err(error) => {
                    // One broken item must not stop all mail; it is reported and skipped.
                    tracing::error!(error = %error, "a route item cannot be read and is skipped");
                }
            }
        }
        Ok(routes)
    }

    async fn put_route(&self, route: &Route) -> Result<(), StoreError> {
        let mut item = to_item(route).map_err(|e| serialisation("cannot store a route", e))?;
        item.extend(route_key(&route.pattern));
        item.insert("type".to_owned(), s("route"));
        item.insert("updated_at".to_owned(), s(Utc::now().to_rfc3339()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error(format!("cannot write a route to {}", self.table), e))?;
        Ok(())
    }

    async fn remove_route(&self, pattern: &Pattern) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(route_key(pattern)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error(format!("cannot remove a route from {}", self.table), e))?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn set_webhook_disabled(
        &self,
        pattern: &Pattern,
        disabled: Option<Disabled>,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(route_key(pattern)))
            .condition_expression("attribute_exists(#pk) AND attribute_exists(#webhook)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#webhook", "webhook")
            .expression_attribute_names("#disabled", "disabled");
        let request = match disabled {
            Some(disabled) => {
                let value =
                    to_item(&disabled).map_err(|e| serialisation("cannot store a route", e))?;
                request
                    .update_expression("SET #webhook.#disabled = :disabled")
                    .expression_attribute_values(":disabled", AttributeValue::M(value))
            }
            None => request.update_expression("REMOVE #webhook.#disabled"),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            // The route was removed or lost its webhook meanwhile: nothing to mark.
            Err(error) if conditional_failed::<UpdateItemError>(&error) => Ok(()),
            Err(error) => Err(store_error(
                format!("cannot update a route in {}", self.table),
                error,
            )),
        }
    }

    async fn set_enabled(&self, pattern: &Pattern, enabled: bool) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(route_key(pattern)))
            .condition_expression("attribute_exists(#pk)")
            .update_expression("SET #enabled = :enabled")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#enabled", "enabled")
            .expression_attribute_values(":enabled", AttributeValue::Bool(enabled))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if conditional_failed::<UpdateItemError>(&error) => Ok(false),
            Err(error) => Err(store_error(
                format!("cannot update a route in {}", self.table),
                error,
            )),
        }
    }
}
