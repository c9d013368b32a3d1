//! What the feedback function keeps, in the same DynamoDB table as routes and records:
//!
//! | item | `pk` | `sk` | TTL |
//! |---|---|---|---|
//! | outbound record | `OUT#<SES message id>` | `OUT` | `expires_at` |
//! | API key | `KEY` | `KEY#<id>` | none: kept until removed (revoked keys stay, marked) |
//! | suppression | `SUPPRESSION` | `ADDR#<address>` | none: kept until removed |
//! | soft-bounce count | `SOFTBOUNCE#<address>` | `SOFTBOUNCE` | `expires_at`, 7 days after the last |
//!
//! Outbound records and counts are written with optimistic concurrency on `version`. Outbound records
//! of the send API and of mail sent around it carry a `gsi_day` of their own, `OUT#<day>` and the shard,
//! so the day index lists them apart from deliveries ([`OutboundLog`]); forwards are listed with their
//! deliveries.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_sesv2::types::SuppressionListReason;
use chrono::Utc;

use super::dynamo::{DynamoStore, PK, SK};
use super::item::{Item, from_item, to_item};
use super::store_error;
use mailroom::feedback::{Origin, Outbound, SoftBounces, Suppression, SuppressionReason};
use mailroom::mail::envelope::normalise_address;
use mailroom::ports::{
    KeyStore, OutboundLog, OutboundStore, SoftBounceStore, StoreError, SuppressionList,
    SuppressionMirror,
};
use mailroom::send::key::ApiKey;

/// Partition of the suppression list.
pub const SUPPRESSIONS_PK: &str = "SUPPRESSION";

/// Partition of the send API's keys.
pub const KEYS_PK: &str = "KEY";

/// How an outbound record's day key begins, before the day and the shard.
pub const OUTBOUND_DAY_PREFIX: &str = "OUT#";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(pk: String, sk: String) -> Item {
    Item::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

pub(crate) fn outbound_key(ses_message_id: &str) -> Item {
    key(format!("OUT#{ses_message_id}"), "OUT".to_owned())
}

fn suppression_key(address: &str) -> Item {
    key(
        SUPPRESSIONS_PK.to_owned(),
        format!("ADDR#{}", normalise_address(address)),
    )
}

fn soft_bounce_key(address: &str) -> Item {
    key(
        format!("SOFTBOUNCE#{}", normalise_address(address)),
        "SOFTBOUNCE".to_owned(),
    )
}

fn unreadable(what: &str, error: serde_json::Error) -> StoreError {
    StoreError {
        what: format!("{what}: {error}"),
        retryable: false,
        source: Some(Box::new(error)),
    }
}

fn conditional_failed(
    error: &aws_sdk_dynamodb::error::SdkError<
        PutItemError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> bool {
    error
        .as_service_error()
        .is_some_and(PutItemError::is_conditional_check_failed_exception)
}

impl DynamoStore {
    async fn read(&self, key: Item) -> Result<Option<Item>, StoreError> {
        self.client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map(|output| output.item)
            .map_err(|e| store_error(format!("cannot read from table {}", self.table()), e))
    }

    /// Puts `item`, whatever was there.
    async fn write(&self, item: Item) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error(format!("cannot write to table {}", self.table()), e))?;
        Ok(())
    }

    /// Puts `item` under `key` when its `version` is still `expected` (`None`: when there is no item).
    async fn put_versioned(
        &self,
        mut item: Item,
        key: Item,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        item.extend(key);
        let request = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .expression_attribute_names("#pk", PK);
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(#pk)"),
            Some(version) => request
                .condition_expression("attribute_exists(#pk) AND #version = :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", AttributeValue::N(version.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if conditional_failed(&error) => Ok(false),
            Err(error) => Err(store_error(
                format!("cannot write to table {}", self.table()),
                error,
            )),
        }
    }
}

impl OutboundStore for DynamoStore {
    async fn outbound(&self, ses_message_id: &str) -> Result<Option<Outbound>, StoreError> {
        let Some(item) = self.read(outbound_key(ses_message_id)).await? else {
            return Ok(None);
        };
        let record: Outbound =
            from_item(&item).map_err(|e| unreadable("cannot read an outbound record", e))?;
        Ok((!record.is_expired(Utc::now())).then_some(record))
    }

    async fn put_outbound(
        &self,
        record: &Outbound,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut item =
            to_item(record).map_err(|e| unreadable("cannot store an outbound record", e))?;
        item.insert("type".to_owned(), s("outbound"));
        self.record_shards().await?;
        item.extend(super::dynamo::index_attributes(
            &record.ses_message_id,
            self.index_shards(),
            record.to.first().map(String::as_str),
            record.from.as_deref(),
            record.sent_at,
        ));
        // Forwards are listed with their deliveries: their records stay off the day index, which would
        // cost every write of one a write unit more.
        if record.origin != Origin::Forward {
            item.insert(
                super::dynamo::BY_DAY.partition.to_owned(),
                s(super::shards::sharded(
                    &format!(
                        "{OUTBOUND_DAY_PREFIX}{}",
                        super::dynamo::day_of(record.sent_at)
                    ),
                    &record.ses_message_id,
                    self.index_shards(),
                )),
            );
        }
        let written = self
            .put_versioned(item, outbound_key(&record.ses_message_id), expected)
            .await?;
        if written && expected.is_none() && record.origin != Origin::Forward {
            self.put_address_keys(record).await?;
        }
        Ok(written)
    }
}

/// Sort keys of the items beside an outbound record that find it by each address it names.
const ADDRESS_KEY_PREFIX: &str = "ADDR#";

impl DynamoStore {
    /// One small item per address a sent message names (recipients, copies, sender), in the record's own
    /// partition, keyed in the target index: erasure finds the message by any of them, though the
    /// record's own index keys hold only its first recipient and its sender. Forwards have one
    /// recipient and need none.
    async fn put_address_keys(&self, record: &Outbound) -> Result<(), StoreError> {
        let mut addresses: Vec<String> = record
            .addresses()
            .iter()
            .map(|a| normalise_address(a))
            .collect();
        addresses.sort();
        addresses.dedup();
        for address in addresses {
            let mut item = key(
                format!("OUT#{}", record.ses_message_id),
                format!("{ADDRESS_KEY_PREFIX}{address}"),
            );
            item.insert("type".to_owned(), s("outbound_address"));
            item.insert(
                super::dynamo::TTL_ATTRIBUTE.to_owned(),
                AttributeValue::N(record.expires_at.to_string()),
            );
            item.insert(
                super::dynamo::BY_TARGET.partition.to_owned(),
                s(super::shards::sharded(
                    &address,
                    &record.ses_message_id,
                    self.index_shards(),
                )),
            );
            item.insert(
                super::dynamo::BY_TARGET.sort.to_owned(),
                s(super::dynamo::sort_time(record.sent_at)),
            );
            self.write(item).await?;
        }
        Ok(())
    }
}

impl OutboundLog for DynamoStore {
    async fn sent_between(
        &self,
        since: Option<chrono::DateTime<Utc>>,
        until: Option<chrono::DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Outbound>, StoreError> {
        let now = Utc::now();
        let until = until.unwrap_or(now).min(now);
        let since =
            since.unwrap_or(now - chrono::Duration::days(i64::from(super::query::LISTED_DAYS)));
        let layout = self.layout().await?;
        let mut found: Vec<Outbound> = Vec::new();
        let mut day = until.date_naive();
        while day >= since.date_naive() {
            let value = format!("{OUTBOUND_DAY_PREFIX}{}", day.format("%Y-%m-%d"));
            let mut of_day = Vec::new();
            for partition in layout.partitions(&value) {
                let query = super::query::IndexQuery {
                    index: super::dynamo::BY_DAY,
                    partition,
                    since: Some(since),
                    equal: vec![("type", "outbound".to_owned())],
                };
                for entry in self.query_index(&query, 0).await? {
                    let Some(pk) = super::item::string(&entry, super::dynamo::PK) else {
                        continue;
                    };
                    let Some(id) = pk.strip_prefix("OUT#") else {
                        continue;
                    };
                    if let Some(record) = self.outbound(id).await? {
                        of_day.push(record);
                    }
                }
            }
            of_day.retain(|r| r.sent_at <= until && r.sent_at >= since);
            of_day.sort_by_key(|r| std::cmp::Reverse(r.sent_at));
            found.extend(of_day);
            if limit > 0 && found.len() >= limit {
                found.truncate(limit);
                break;
            }
            let Some(previous) = day.pred_opt() else {
                break;
            };
            day = previous;
        }
        Ok(found)
    }
}

fn key_key(id: &str) -> Item {
    key(KEYS_PK.to_owned(), format!("KEY#{id}"))
}

impl KeyStore for DynamoStore {
    async fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        match self.read(key_key(id)).await? {
            Some(item) => from_item(&item)
                .map(Some)
                .map_err(|e| unreadable("cannot read an API key", e)),
            None => Ok(None),
        }
    }

    async fn put_key(&self, api_key: &ApiKey) -> Result<(), StoreError> {
        let mut item = to_item(api_key).map_err(|e| unreadable("cannot store an API key", e))?;
        item.insert("type".to_owned(), s("key"));
        item.extend(key_key(&api_key.id));
        self.write(item).await
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys = Vec::new();
        for item in self.partition(KEYS_PK).await? {
            match from_item::<ApiKey>(&item) {
                Ok(key) => keys.push(key),
                Err(error) => {
                    tracing::error!(error = %error, "an API key item cannot be read and is skipped")
                }
            }
        }
        keys.sort_by_key(|k| k.created_at);
        Ok(keys)
    }
}

impl SuppressionList for DynamoStore {
    async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        match self.read(suppression_key(address)).await? {
            Some(item) => from_item(&item)
                .map(Some)
                .map_err(|e| unreadable("cannot read a suppression", e)),
            None => Ok(None),
        }
    }

    async fn suppress(&self, suppression: &Suppression) -> Result<bool, StoreError> {
        let mut suppression = suppression.clone();
        suppression.address = normalise_address(&suppression.address);
        let mut item =
            to_item(&suppression).map_err(|e| unreadable("cannot store a suppression", e))?;
        item.insert("type".to_owned(), s("suppression"));
        self.put_versioned(item, suppression_key(&suppression.address), None)
            .await
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let output = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(suppression_key(address)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| {
                store_error(
                    format!("cannot remove a suppression from {}", self.table()),
                    e,
                )
            })?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        let mut all = Vec::new();
        let mut pages = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(SUPPRESSIONS_PK))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| {
                store_error(format!("cannot read suppressions from {}", self.table()), e)
            })?;
            match from_item::<Suppression>(&item) {
                Ok(suppression) => all.push(suppression),
                Err(error) => {
                    tracing::error!(error = %error, "a suppression item cannot be read and is skipped")
                }
            }
        }
        all.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(all)
    }
}

impl SoftBounceStore for DynamoStore {
    async fn soft_bounces(&self, address: &str) -> Result<Option<SoftBounces>, StoreError> {
        let Some(item) = self.read(soft_bounce_key(address)).await? else {
            return Ok(None);
        };
        let counts: SoftBounces =
            from_item(&item).map_err(|e| unreadable("cannot read soft-bounce counts", e))?;
        // An expired item the TTL has not removed yet still holds the version to write against.
        Ok(Some(counts))
    }

    async fn put_soft_bounces(
        &self,
        counts: &SoftBounces,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut item =
            to_item(counts).map_err(|e| unreadable("cannot store soft-bounce counts", e))?;
        item.insert("type".to_owned(), s("soft_bounces"));
        self.put_versioned(item, soft_bounce_key(&counts.address), expected)
            .await
    }

    async fn clear_soft_bounces(&self, address: &str) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(soft_bounce_key(address)))
            .send()
            .await
            .map_err(|e| {
                store_error(
                    format!("cannot clear soft-bounce counts in {}", self.table()),
                    e,
                )
            })?;
        Ok(())
    }
}

/// SES v2's account-level suppression list.
#[derive(Debug, Clone)]
pub struct SesSuppressionMirror {
    client: aws_sdk_sesv2::Client,
}

impl SesSuppressionMirror {
    /// Uses a client built once at init.
    pub fn new(client: aws_sdk_sesv2::Client) -> SesSuppressionMirror {
        SesSuppressionMirror { client }
    }
}

impl SuppressionMirror for SesSuppressionMirror {
    async fn mirror(&self, suppression: &Suppression) -> Result<(), StoreError> {
        // SES knows two reasons; a suppression added by hand is closest to a bounce (do not send).
        let reason = match suppression.reason {
            SuppressionReason::Complaint => SuppressionListReason::Complaint,
            SuppressionReason::Bounce | SuppressionReason::Manual => SuppressionListReason::Bounce,
        };
        self.client
            .put_suppressed_destination()
            .email_address(&suppression.address)
            .reason(reason)
            .send()
            .await
            .map_err(|e| store_error("cannot add the address to SES's suppression list", e))?;
        Ok(())
    }
}
