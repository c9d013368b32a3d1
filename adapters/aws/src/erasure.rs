//! The table and the bucket as [`mailroom::usecases::erasure`] needs them: records found by address through the
//! indexes (by the address, and by the digest standing in for it where a route redacted it; every shard of
//! each, [`super::shards`]), read whole from the table and removed by key; objects listed by prefix and
//! removed.

use std::collections::HashSet;

use futures_util::future::try_join_all;

use super::dynamo::{
    BY_RECIPIENT, BY_SENDER, BY_TARGET, DynamoStore, Index, delivery_item, delivery_key,
    party_index,
};
use super::feedback::outbound_key;
use super::item::{Item, from_item};
use super::merge::Place;
use super::query::IndexQuery;
use super::s3::S3MailStore;
use super::store_error;
use mailroom::feedback::Outbound;
use mailroom::mail::envelope::normalise_address;
use mailroom::ports::{AddressRecords, MailLocation, ObjectEraser, StoreError};
use mailroom::record::{Delivery, DeliveryKey, Party};

fn unreadable(what: &str, error: serde_json::Error) -> StoreError {
    StoreError {
        what: format!("{what}: {error}"),
        retryable: false,
        source: Some(Box::new(error)),
    }
}

impl DynamoStore {
    /// The items of one type found under `value` in each of `lookups`' indexes (every shard of it, and
    /// the unsharded key while one may remain), each once, read whole from the table.
    async fn items_in(
        &self,
        lookups: &[(Index, String)],
        kind: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let layout = self.layout().await?;
        let mut seen = HashSet::new();
        let mut places = Vec::new();
        for (index, value) in lookups {
            let queries: Vec<IndexQuery> = layout
                .partitions(value)
                .into_iter()
                .map(|partition| IndexQuery {
                    index: *index,
                    partition,
                    since: None,
                    // A keys-only index has no `type` to filter on; the item read after says it.
                    equal: if index.has_type() {
                        vec![("type", kind.to_owned())]
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            let found =
                try_join_all(queries.iter().map(|query| self.query_index(query, 0))).await?;
            for item in found.into_iter().flatten() {
                if let Some(place) = Place::of(&item, index.sort)
                    && seen.insert((place.pk.clone(), place.sk.clone()))
                {
                    places.push(place);
                }
            }
        }
        let mut items = Vec::new();
        for batch in places.chunks(100) {
            items.extend(
                self.batch_get(batch.iter().map(Place::key).collect())
                    .await?
                    .into_iter()
                    .filter(|item| {
                        item.get("type")
                            .and_then(|v| v.as_s().ok())
                            .is_some_and(|t| t == kind)
                    }),
            );
        }
        Ok(items)
    }

    async fn delete_key(&self, key: Item) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key))
            .send()
            .await
            .map_err(|e| store_error(format!("cannot delete from table {}", self.table()), e))?;
        Ok(())
    }
}

impl AddressRecords for DynamoStore {
    async fn deliveries_naming(&self, address: &str) -> Result<Vec<Delivery>, StoreError> {
        let address = normalise_address(address);
        let digest = self.lookup_digest(&address).await?;
        let mut lookups = Vec::new();
        for party in Party::ALL {
            lookups.push((party_index(party), address.clone()));
            if let Some(digest) = &digest {
                lookups.push((party_index(party), digest.clone()));
            }
        }
        lookups.push((BY_TARGET, address));
        self.items_in(&lookups, "delivery")
            .await?
            .iter()
            // A claim not followed by a record yet carries no index keys, so every item here is a record.
            .map(|item| from_item(item).map_err(|e| unreadable("cannot read a record", e)))
            .collect()
    }

    async fn outbound_naming(&self, address: &str) -> Result<Vec<Outbound>, StoreError> {
        let address = normalise_address(address);
        let lookups = [
            (BY_RECIPIENT, address.clone()),
            (BY_SENDER, address.clone()),
            (BY_TARGET, address.clone()),
        ];
        let mut records: Vec<Outbound> = self
            .items_in(&lookups, "outbound")
            .await?
            .iter()
            .map(|item| {
                from_item(item).map_err(|e| unreadable("cannot read an outbound record", e))
            })
            .collect::<Result<_, _>>()?;
        // A sent message's other recipients find it through the items beside it.
        for item in self
            .items_in(&[(BY_TARGET, address)], "outbound_address")
            .await?
        {
            let Some(id) = super::item::string(&item, super::dynamo::PK)
                .and_then(|pk| pk.strip_prefix("OUT#").map(str::to_owned))
            else {
                continue;
            };
            if !records.iter().any(|r| r.ses_message_id == id)
                && let Some(record) = mailroom::ports::OutboundStore::outbound(self, &id).await?
            {
                records.push(record);
            }
        }
        Ok(records)
    }

    async fn lookup_digest(&self, address: &str) -> Result<Option<String>, StoreError> {
        // No key yet means no record was ever redacted: nothing to find by digest.
        Ok(self.lookup_key(false).await?.map(|key| key.digest(address)))
    }

    async fn delete_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        self.delete_key(delivery_key(key)).await
    }

    async fn overwrite_delivery(&self, record: &Delivery) -> Result<(), StoreError> {
        self.record_shards().await?;
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(delivery_item(record, self.index_shards())?))
            .send()
            .await
            .map_err(|e| store_error(format!("cannot write to table {}", self.table()), e))?;
        Ok(())
    }

    async fn delete_outbound(&self, id: &str) -> Result<(), StoreError> {
        // The record and the address items beside it: the whole partition.
        for item in self.partition(&format!("OUT#{id}")).await? {
            if let Some(place) = Place::of(&item, super::dynamo::SK) {
                self.delete_key(place.key()).await?;
            }
        }
        self.delete_key(outbound_key(id)).await
    }
}

impl ObjectEraser for S3MailStore {
    async fn object_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .client()
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| store_error(format!("cannot list s3://{bucket}/{prefix}"), e))?;
            keys.extend(
                output
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match output.next_continuation_token() {
                Some(next) if output.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn delete_object(&self, location: &MailLocation) -> Result<(), StoreError> {
        self.client()
            .delete_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
            .map_err(|e| {
                store_error(
                    format!("cannot delete s3://{}/{}", location.bucket, location.key),
                    e,
                )
            })?;
        Ok(())
    }
}
