//! `mailroom records reindex`: moves the index keys of records already in the table to the keys this
//! version writes (every partition key ending in `#<shard>` for the store's shard count; no day key on
//! outbound records, which listings by day never show). For a stack deployed before the sharded indexes,
//! and after a change of `IndexShards`. One `Scan` of the table, then one conditional `UpdateItem` per
//! record whose keys differ: only while the keys are still those it read, so a record a function rewrote
//! (or erasure removed) in the meantime is left as it now is.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::try_join_all;

use super::dynamo::{BY_DAY, DynamoStore, INDEXES, PK, SK};
use super::item::{Item, string};
use super::shards::{sharded, unsharded};
use super::store_error;
use mailroom::ports::StoreError;

/// Every index partition key attribute a record may carry.
pub fn partition_attributes() -> Vec<&'static str> {
    INDEXES.iter().map(|index| index.partition).collect()
}

/// The index keys a stored item should carry for `shards`: the attributes to set, with the value each
/// has now, and those to remove. `None` when it carries them already (or is no record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rekey {
    /// (attribute, value now, value it should have).
    pub set: Vec<(&'static str, String, String)>,
    /// (attribute, value now).
    pub remove: Vec<(&'static str, String)>,
}

/// What `item` must change to carry the index keys of this version over `shards`.
pub fn rekey(item: &Item, shards: u32) -> Option<Rekey> {
    let kind = string(item, "type")?;
    let pk = string(item, PK)?;
    let id = match kind.as_str() {
        "delivery" => pk.strip_prefix("MSG#")?.to_owned(),
        "outbound" => pk.strip_prefix("OUT#")?.to_owned(),
        _ => return None,
    };
    let mut change = Rekey {
        set: Vec::new(),
        remove: Vec::new(),
    };
    for attribute in partition_attributes() {
        let Some(now) = string(item, attribute) else {
            continue;
        };
        // Outbound records had a day key like deliveries' once; theirs now begins `OUT#`.
        if kind == "outbound"
            && attribute == BY_DAY.partition
            && !now.starts_with(super::feedback::OUTBOUND_DAY_PREFIX)
        {
            change.remove.push((attribute, now));
            continue;
        }
        let wanted = sharded(unsharded(&now), &id, shards);
        if wanted != now {
            change.set.push((attribute, now, wanted));
        }
    }
    (!change.set.is_empty() || !change.remove.is_empty()).then_some(change)
}

/// What a reindex found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reindexed {
    /// Items the scan read.
    pub scanned: u64,
    /// Records whose keys were (or, in a dry run, would be) moved.
    pub moved: u64,
    /// Of those, records whose keys had no shard at all (written before shards).
    pub unsharded: u64,
    /// Records that changed between the scan and their update, left as they now are.
    pub changed_meanwhile: u64,
}

impl DynamoStore {
    /// Moves every record's index keys to this store's shard count (`dry_run`: only counts), calling
    /// `progress` after each page of the scan. The table records its reach before any key moves and,
    /// after a pass in which no record changed under it, that listings need not ask for unsharded keys
    /// any more (otherwise run it again).
    pub async fn reindex(
        &self,
        dry_run: bool,
        mut progress: impl FnMut(&Reindexed),
    ) -> Result<Reindexed, StoreError> {
        if !dry_run {
            self.record_shards().await?;
        }
        let mut done = Reindexed::default();
        let mut start: Option<Item> = None;
        loop {
            let (items, next) = self.scan_page(start.take()).await?;
            done.scanned += items.len() as u64;
            let changes: Vec<(Item, Rekey)> = items
                .into_iter()
                .filter_map(|item| rekey(&item, self.index_shards()).map(|c| (item, c)))
                .collect();
            for (_, change) in &changes {
                done.moved += 1;
                if change
                    .set
                    .iter()
                    .any(|(_, now, _)| unsharded(now).len() == now.len())
                {
                    done.unsharded += 1;
                }
            }
            if !dry_run {
                for batch in changes.chunks(16) {
                    let applied = try_join_all(
                        batch
                            .iter()
                            .map(|(item, change)| self.apply_rekey(item, change)),
                    )
                    .await?;
                    let missed = applied.iter().filter(|applied| !**applied).count() as u64;
                    done.changed_meanwhile += missed;
                    done.moved -= missed;
                }
            }
            progress(&done);
            match next {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        // A record that changed meanwhile was rewritten by a writer (or removed): most likely with this
        // version's keys, but only a pass that moved everything proves no unsharded key is left.
        if !dry_run && done.changed_meanwhile == 0 {
            self.set_legacy(false).await?;
        }
        Ok(done)
    }

    /// One page of a scan of the table: each item's keys, `type`, and index keys.
    async fn scan_page(
        &self,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut names: HashMap<String, String> = HashMap::from([
            ("#pk".to_owned(), PK.to_owned()),
            ("#sk".to_owned(), SK.to_owned()),
            ("#type".to_owned(), "type".to_owned()),
        ]);
        let mut projection = vec!["#pk", "#sk", "#type"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        for (n, attribute) in partition_attributes().into_iter().enumerate() {
            names.insert(format!("#k{n}"), attribute.to_owned());
            projection.push(format!("#k{n}"));
        }
        let output = self
            .client()
            .scan()
            .table_name(self.table())
            .projection_expression(projection.join(", "))
            .set_expression_attribute_names(Some(names))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| store_error(format!("cannot scan table {}", self.table()), e))?;
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }

    /// Writes one record's new index keys while its keys are still those read; false when they are not.
    async fn apply_rekey(&self, item: &Item, change: &Rekey) -> Result<bool, StoreError> {
        let (Some(pk), Some(sk)) = (item.get(PK), item.get(SK)) else {
            return Ok(false);
        };
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut conditions = Vec::new();
        for (n, (attribute, now, wanted)) in change.set.iter().enumerate() {
            names.insert(format!("#s{n}"), (*attribute).to_owned());
            values.insert(format!(":was{n}"), AttributeValue::S(now.clone()));
            values.insert(format!(":new{n}"), AttributeValue::S(wanted.clone()));
            sets.push(format!("#s{n} = :new{n}"));
            conditions.push(format!("#s{n} = :was{n}"));
        }
        for (n, (attribute, now)) in change.remove.iter().enumerate() {
            names.insert(format!("#r{n}"), (*attribute).to_owned());
            values.insert(format!(":gone{n}"), AttributeValue::S(now.clone()));
            removes.push(format!("#r{n}"));
            conditions.push(format!("#r{n} = :gone{n}"));
        }
        let mut expression = String::new();
        if !sets.is_empty() {
            expression.push_str(&format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, pk.clone())
            .key(SK, sk.clone())
            .update_expression(expression.trim())
            .condition_expression(conditions.join(" AND "))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(error) => Err(store_error(
                format!("cannot move the index keys of a record in {}", self.table()),
                error,
            )),
        }
    }

    /// The table's global secondary indexes and the status of each (`ACTIVE`, `CREATING`, …).
    pub async fn index_status(&self) -> Result<Vec<(String, String)>, StoreError> {
        let described = self
            .client()
            .describe_table()
            .table_name(self.table())
            .send()
            .await
            .map_err(|e| store_error(format!("cannot describe table {}", self.table()), e))?;
        Ok(described
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .map(|index| {
                (
                    index.index_name().unwrap_or_default().to_owned(),
                    index
                        .index_status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect()
    }

    #[test]
    fn old_keys_get_their_shard_and_outbound_records_lose_their_day() {
        let shard = mailroom::record::index_shard("m1", 8);
        let record = item(&[
            ("pk", "MSG#m1"),
            ("sk", "DLV#d"),
            ("type", "delivery"),
            ("gsi_day", "2026-12-03"),
            ("gsi_recipient", "support@example.com"),
            ("gsi_from", &format!("h:0f3a#{}", (shard + 1) % 8)),
        ]);
        let change = rekey(&record, 8).unwrap();
        assert_eq!(
            change.set,
            vec![
                (
                    "gsi_recipient",
                    "support@example.com".to_owned(),
                    format!("support@example.com#{shard}")
                ),
                (
                    "gsi_day",
                    "2026-12-03".to_owned(),
                    format!("2026-12-03#{shard}")
                ),
                (
                    "gsi_from",
                    format!("h:0f3a#{}", (shard + 1) % 8),
                    format!("h:0f3a#{shard}")
                ),
            ]
        );
        assert!(change.remove.is_empty());

        let outbound = item(&[
            ("pk", "OUT#s1"),
            ("sk", "OUT"),
            ("type", "outbound"),
            ("gsi_day", "2026-12-03"),
        ]);
        let change = rekey(&outbound, 8).unwrap();
        assert_eq!(change.remove, vec![("gsi_day", "2026-12-03".to_owned())]);

        // In place already, or no record: nothing to do.
        let moved = item(&[
            ("pk", "MSG#m1"),
            ("sk", "DLV#d"),
            ("type", "delivery"),
            ("gsi_day", &format!("2026-12-03#{shard}")),
        ]);
        assert_eq!(rekey(&moved, 8), None);
        assert_eq!(rekey(&item(&[("pk", "ROUTE"), ("type", "route")]), 8), None);
        assert_eq!(rekey(&item(&[("pk", "MSG#m1"), ("sk", "DLV#d")]), 8), None);
    }
}
