//! The table and the bucket as [`crate::erasure`] needs them: records found by address through the
//! indexes, removed by key; objects listed by prefix and removed.

use std::collections::HashSet;

use super::dynamo::{
    BY_RECIPIENT, BY_SENDER, BY_TARGET, DynamoStore, PK, SK, delivery_item, delivery_key,
};
use super::feedback::outbound_key;
use super::item::{Item, from_item};
use super::query::IndexQuery;
use super::s3::S3MailStore;
use super::store_error;
use crate::feedback::{Outbound, normalise_address};
use crate::ports::{AddressRecords, MailLocation, ObjectEraser, StoreError};
use crate::record::{Delivery, DeliveryKey};

fn unreadable(what: &str, error: serde_json::Error) -> StoreError {
    StoreError {
        what: format!("{what}: {error}"),
        retryable: false,
        source: Some(Box::new(error)),
    }
}

impl DynamoStore {
    /// The items of one type that name `address` as recipient, sender or forward address, each once.
    async fn items_naming(&self, address: &str, kind: &str) -> Result<Vec<Item>, StoreError> {
        let address = normalise_address(address);
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        for index in [BY_RECIPIENT, BY_SENDER, BY_TARGET] {
            let query = IndexQuery {
                index,
                partition: address.clone(),
                since: None,
                equal: vec![("type", kind.to_owned())],
            };
            for item in self.query_index(&query, 0).await? {
                let key = (
                    item.get(PK).and_then(|v| v.as_s().ok()).cloned(),
                    item.get(SK).and_then(|v| v.as_s().ok()).cloned(),
                );
                if seen.insert(key) {
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
        self.items_naming(address, "delivery")
            .await?
            .iter()
            // A claim not followed by a record yet carries no index keys, so every item here is a record.
            .map(|item| from_item(item).map_err(|e| unreadable("cannot read a record", e)))
            .collect()
    }

    async fn outbound_naming(&self, address: &str) -> Result<Vec<Outbound>, StoreError> {
        self.items_naming(address, "outbound")
            .await?
            .iter()
            .map(|item| {
                from_item(item).map_err(|e| unreadable("cannot read an outbound record", e))
            })
            .collect()
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
