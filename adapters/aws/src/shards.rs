//! Index keys spread over shards. DynamoDB gives one partition of an index about 1,000 write units a
//! second, so an index key that every message of a day, or of a busy address, shares would hold a stack
//! back: each index partition key ends in `#<shard>` instead (`2026-12-03#7`, `support@example.com#3`),
//! the shard picked from a hash of the message id ([`mailroom::record::index_shard`]), and listings query
//! every shard and merge ([`super::query`]).
//!
//! The table records, in its item `CONFIG` / `INDEX_SHARDS`, what readers must know ([`Layout`], read and
//! written by [`super::layout`]):
//!
//! | attribute | meaning |
//! |---|---|
//! | `reach` | the most shards any writer has used: listings query shards `0..reach`. Each writer raises it, before its first index key, to its own count; it never goes down, so lowering `MAILROOM_INDEX_SHARDS` loses no listing (records keep their keys until they expire or `mailroom records reindex` moves them) |
//! | `legacy` | keys written before shards (no `#<shard>`) may remain: listings query the unsharded key too. The first writer sets it; `mailroom records reindex` clears it once none is left; `mailroom setup emulator` makes a table without |

use mailroom::record::index_shard;

/// `value#<shard>`: an index partition key of an item keyed `id`, spread over `shards`.
pub fn sharded(value: &str, id: &str, shards: u32) -> String {
    format!("{value}#{}", index_shard(id, shards))
}

/// What an index key was made from: the key without its `#<shard>` suffix, or the key as it is when it
/// has none (written before shards). An address may hold a `#`, but never at the end of its domain; a day
/// or a digest never holds one.
pub fn unsharded(key: &str) -> &str {
    match key.rsplit_once('#') {
        Some((value, shard)) if !shard.is_empty() && shard.bytes().all(|b| b.is_ascii_digit()) => {
            value
        }
        _ => key,
    }
}

/// Whether an index key carries a shard, and which.
pub fn shard_of(key: &str) -> Option<u32> {
    let value = unsharded(key);
    (value.len() < key.len())
        .then(|| key[value.len() + 1..].parse().ok())
        .flatten()
}

/// How the table's index keys are spread, as listings need to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Listings query shards `0..reach`.
    pub reach: u32,
    /// And the unsharded key, while keys written before shards may remain.
    pub legacy: bool,
}

impl Layout {
    /// Every partition key a listing of `value` queries: each shard's, then the unsharded one while it
    /// may hold entries.
    pub fn partitions(&self, value: &str) -> Vec<String> {
        let mut keys: Vec<String> = (0..self.reach).map(|n| format!("{value}#{n}")).collect();
        if self.legacy {
            keys.push(value.to_owned());
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_its_value_and_its_shard() {
        assert_eq!(
            sharded("support@example.com", "m1", 8),
            "support@example.com#1"
        );
        assert_eq!(unsharded("support@example.com#1"), "support@example.com");
        assert_eq!(unsharded("2026-12-03#17"), "2026-12-03");
        assert_eq!(shard_of("2026-12-03#17"), Some(17));
        // Written before shards: as it is, even with a `#` inside.
        for key in [
            "support@example.com",
            "a#1@example.com",
            "2026-12-03",
            "h:0f3a",
            "x#",
        ] {
            assert_eq!(unsharded(key), key);
            assert_eq!(shard_of(key), None);
        }
        assert_eq!(unsharded("a#1@example.com#4"), "a#1@example.com");
    }

    #[test]
    fn a_listing_asks_every_shard_and_the_old_key_while_there_may_be_one() {
        let layout = Layout {
            reach: 3,
            legacy: true,
        };
        assert_eq!(
            layout.partitions("2026-12-03"),
            ["2026-12-03#0", "2026-12-03#1", "2026-12-03#2", "2026-12-03"]
        );
        let settled = Layout {
            legacy: false,
            ..layout
        };
        assert_eq!(settled.partitions("a@b.example").len(), 3);
    }
}
