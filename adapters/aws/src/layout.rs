//! The table's record of its index shards (item `CONFIG` / `INDEX_SHARDS`, [`super::shards`]): read once
//! by listings, raised by every writer before its first index key, and settled by `mailroom setup
//! emulator` and `mailroom records reindex`.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::{CONFIG_PK, DynamoStore, PK, SK};
use super::item::Item;
use super::shards::Layout;
use super::store_error;
use mailroom::ports::StoreError;
use mailroom::record::MAX_INDEX_SHARDS;

/// Sort key of the item that records the table's shards.
pub const INDEX_SHARDS_SK: &str = "INDEX_SHARDS";
/// Its attribute: the most shards any writer has used.
pub const REACH: &str = "reach";
/// Its attribute: whether unsharded keys may remain.
pub const LEGACY: &str = "legacy";

fn shards_key() -> Item {
    Item::from([
        (PK.to_owned(), AttributeValue::S(CONFIG_PK.to_owned())),
        (SK.to_owned(), AttributeValue::S(INDEX_SHARDS_SK.to_owned())),
    ])
}

impl DynamoStore {
    /// The table's layout, read once: what the table records, or, when it records nothing yet (no
    /// writer of this version has written), this store's own count, with unsharded keys possible.
    pub async fn layout(&self) -> Result<Layout, StoreError> {
        if let Some(layout) = self.layout.get() {
            return Ok(*layout);
        }
        let layout = self.recorded_layout().await?.unwrap_or(Layout {
            reach: self.shards,
            legacy: true,
        });
        let _ = self.layout.set(layout);
        Ok(layout)
    }

    /// What the table records, read now; `None` when it records nothing.
    pub async fn recorded_layout(&self) -> Result<Option<Layout>, StoreError> {
        let Some(item) = self.get_item(shards_key()).await? else {
            return Ok(None);
        };
        let reach = super::item::number(&item, REACH)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(self.shards)
            .clamp(1, MAX_INDEX_SHARDS);
        let legacy = !matches!(item.get(LEGACY), Some(AttributeValue::Bool(false)));
        Ok(Some(Layout { reach, legacy }))
    }

    /// Raises the table's `reach` to this store's count, once per store, before its first index key: a
    /// conditional update that finds it high enough changes nothing. The first writer of a table also
    /// marks it as possibly holding unsharded keys.
    pub(crate) async fn record_shards(&self) -> Result<(), StoreError> {
        if self.recorded.get().is_some() {
            return Ok(());
        }
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(shards_key()))
            .update_expression(
                "SET #reach = :n, #legacy = if_not_exists(#legacy, :legacy), #type = :config",
            )
            .condition_expression("attribute_not_exists(#reach) OR #reach < :n")
            .expression_attribute_names("#reach", REACH)
            .expression_attribute_names("#legacy", LEGACY)
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":n", AttributeValue::N(self.shards.to_string()))
            .expression_attribute_values(":legacy", AttributeValue::Bool(true))
            .expression_attribute_values(":config", AttributeValue::S("config".to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) => {}
            Err(error) => {
                return Err(store_error(
                    format!("cannot record the index shards in {}", self.table()),
                    error,
                ));
            }
        }
        let _ = self.recorded.set(());
        Ok(())
    }

    /// Records whether unsharded keys may remain (`mailroom setup emulator` makes a table without;
    /// `mailroom records reindex` clears it once it has moved every one).
    pub async fn set_legacy(&self, legacy: bool) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(shards_key()))
            .update_expression("SET #legacy = :legacy, #type = :config")
            .expression_attribute_names("#legacy", LEGACY)
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":legacy", AttributeValue::Bool(legacy))
            .expression_attribute_values(":config", AttributeValue::S("config".to_owned()))
            .send()
            .await
            .map_err(|e| {
                store_error(
                    format!("cannot record the index shards in {}", self.table()),
                    e,
                )
            })?;
        Ok(())
    }
}
