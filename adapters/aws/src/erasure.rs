//! The table and the bucket as [`mailroom::usecases::erasure`] needs them: records found by address through the
//! indexes (by the address, and by the digest standing in for it where a route redacted it), removed by
//! key; objects listed by prefix and removed.

use std::collections::HashSet;

use super::dynamo::{
    BY_RECIPIENT, BY_SENDER, BY_TARGET, DynamoStore, Index, PK, SK, delivery_item, delivery_key,
    party_index,
};
use super::feedback::outbound_key;
use super::item::{Item, from_item};
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
    /// The items of one type found under `partition` in each of `indexes`, each once, whole (an index
    /// that holds only keys is followed by a read of the item).
    async fn items_in(
        &self,
        lookups: &[(Index, String)],
        kind: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        for (index, partition) in lookups {
            let query = IndexQuery {
                index: *index,
                partition: partition.clone(),
                since: None,
                // A keys-only index has no `type` to filter on; the item read after says it.
                equal: if index.keys_only {
                    Vec::new()
                } else {
                    vec![("type", kind.to_owned())]
                },
            };
            for found in self.query_index(&query, 0).await? {
                let key = (
                    found.get(PK).and_then(|v| v.as_s().ok()).cloned(),
                    found.get(SK).and_then(|v| v.as_s().ok()).cloned(),
                );
                if !seen.insert(key.clone()) {
                    continue;
                }
                let item = if index.keys_only {
                    let (Some(pk), Some(sk)) = key else { continue };
                    let key = Item::from([
                        (
                            PK.to_owned(),
                            aws_sdk_dynamodb::types::AttributeValue::S(pk),
                        ),
                        (
                            SK.to_owned(),
                            aws_sdk_dynamodb::types::AttributeValue::S(sk),
                        ),
                    ]);
                    match self.get_item(key).await? {
                        Some(item) => item,
                        None => continue,
                    }
                } else {
                    found
                };
                let is_kind = item
                    .get("type")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|t| t == kind);
                if is_kind {
                    items.push(item);
                }
            }
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
            (BY_TARGET, address),
        ];
        self.items_in(&lookups, "outbound")
            .await?
            .iter()
            .map(|item| {
                from_item(item).map_err(|e| unreadable("cannot read an outbound record", e))
            })
            .collect()
    }

    async fn lookup_digest(&self, address: &str) -> Result<Option<String>, StoreError> {
        // No key yet means no record was ever redacted: nothing to find by digest.
        Ok(self.lookup_key(false).await?.map(|key| key.digest(address)))
    }

    async fn delete_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        self.delete_key(delivery_key(key)).await
    }

    async fn overwrite_delivery(&self, record: &Delivery) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(delivery_item(record)?))
            .send()
            .await
            .map_err(|e| store_error(format!("cannot write to table {}", self.table()), e))?;
        Ok(())
    }

    async fn delete_outbound(&self, id: &str) -> Result<(), StoreError> {
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
