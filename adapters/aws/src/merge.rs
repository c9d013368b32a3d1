//! Merging the shards of one index key into one listing, newest first, that resumes exactly where a page
//! ended.
//!
//! Each shard is a partition of the index, read newest first a page of entries at a time. The listing's
//! order is total: time of receipt (`gsi_at`), newest first, then the table's `pk` and `sk`, so that
//! entries of one time (the deliveries of one message, or messages of one millisecond) have a place too.
//! DynamoDB returns entries of one time in an order of its own, so an entry is taken from a shard only when
//! nothing the shard has not returned yet can come before it: when the shard is read to its end, or to an
//! entry of an earlier time. A page ends at a [`Place`]; the next starts strictly after it in every shard,
//! whatever each shard had read beyond it (what a per-shard continuation key would skip).

use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::try_join_all;

use super::dynamo::{PK, SK};
use super::item::Item;
use mailroom::ports::{ListCursor, StoreError};

/// An entry's place in a listing: compared time first, then `pk`, then `sk`; a later place lists first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// `gsi_at`.
    pub at: String,
    /// The table's partition key.
    pub pk: String,
    /// The table's sort key.
    pub sk: String,
}

impl Place {
    /// The place of an index entry whose sort key is `sort`.
    pub fn of(item: &Item, sort: &str) -> Option<Place> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        };
        Some(Place {
            at: text(sort)?,
            pk: text(PK)?,
            sk: text(SK)?,
        })
    }

    /// The place as a page token's cursor.
    pub fn cursor(&self) -> ListCursor {
        ListCursor {
            at: self.at.clone(),
            first: self.pk.clone(),
            second: self.sk.clone(),
        }
    }

    /// The place a page token's cursor names.
    pub fn from_cursor(cursor: &ListCursor) -> Place {
        Place {
            at: cursor.at.clone(),
            pk: cursor.first.clone(),
            sk: cursor.second.clone(),
        }
    }

    /// The table key of the entry.
    pub fn key(&self) -> Item {
        Item::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// One page of a shard: its entries, newest first, and where DynamoDB stopped (`None`: at the end).
pub type ShardPage = (Vec<Item>, Option<Item>);

/// One shard of a listing, as far as it has been read.
#[derive(Debug)]
struct Shard {
    partition: String,
    /// Entries read and not yet taken, oldest first (so the newest is popped).
    buffer: Vec<Place>,
    /// Where the next page starts.
    start: Option<Item>,
    /// The time of the last entry DynamoDB looked at (filtered out or not): nothing unread is later.
    read_to: Option<String>,
    /// Read to the end.
    done: bool,
}

impl Shard {
    /// Whether the newest entry read is the newest the shard holds: it is read to the end, or past that
    /// entry's time.
    fn settled(&self) -> bool {
        self.done
            || matches!((self.buffer.last(), &self.read_to), (Some(head), Some(read)) if *read < head.at)
    }

    /// Takes in a page: the entries strictly after `after`, and how far it read.
    fn take(&mut self, (items, last): ShardPage, sort: &str, after: Option<&Place>) {
        for item in &items {
            if let Some(place) = Place::of(item, sort)
                && after.is_none_or(|after| place < *after)
            {
                self.buffer.push(place);
            }
        }
        self.buffer.sort();
        match last.filter(|key| !key.is_empty()) {
            Some(key) => {
                self.read_to = match key.get(sort) {
                    Some(AttributeValue::S(at)) => Some(at.clone()),
                    _ => self.read_to.take(),
                };
                self.start = Some(key);
            }
            None => {
                self.done = true;
                self.start = None;
            }
        }
    }
}

/// The first `want` places (0: all) after `after` among the `partitions` of one index key, newest first,
/// reading each partition through `fetch(partition, start)` (one page of it, newest first, with any
/// filter applied). Shards are read concurrently; one is read again only while its unread entries could
/// still come before what the others hold. Also says whether every shard was read to its end with nothing
/// left over.
pub async fn merge<F, Fut>(
    partitions: &[String],
    sort: &str,
    after: Option<&Place>,
    want: usize,
    fetch: F,
) -> Result<(Vec<Place>, bool), StoreError>
where
    F: Fn(String, Option<Item>) -> Fut,
    Fut: Future<Output = Result<ShardPage, StoreError>>,
{
    let mut shards: Vec<Shard> = partitions
        .iter()
        .map(|partition| Shard {
            partition: partition.clone(),
            buffer: Vec::new(),
            start: None,
            read_to: None,
            done: false,
        })
        .collect();
    let mut out = Vec::new();
    let mut fetched = vec![false; shards.len()];
    while want == 0 || out.len() < want {
        // The newest entry any settled shard holds: a shard whose unread entries are all older need not
        // be read yet.
        let best = shards
            .iter()
            .filter(|s| s.settled())
            .filter_map(|s| s.buffer.last())
            .max()
            .cloned();
        let needed: Vec<usize> = (0..shards.len())
            .filter(|&i| {
                let shard = &shards[i];
                !shard.settled()
                    && (!fetched[i]
                        || best.as_ref().is_none_or(|best| {
                            shard.read_to.as_ref().is_none_or(|read| *read >= best.at)
                        }))
            })
            .collect();
        if !needed.is_empty() {
            let pages = try_join_all(
                needed
                    .iter()
                    .map(|&i| fetch(shards[i].partition.clone(), shards[i].start.clone())),
            )
            .await?;
            for (i, page) in needed.into_iter().zip(pages) {
                fetched[i] = true;
                shards[i].take(page, sort, after);
            }
            continue;
        }
        let Some(best) = best else { break };
        let shard = shards
            .iter_mut()
            .find(|s| s.settled() && s.buffer.last() == Some(&best));
        match shard.and_then(|s| s.buffer.pop()) {
            Some(place) => out.push(place),
            None => break,
        }
    }
    let exhausted = shards.iter().all(|s| s.done && s.buffer.is_empty());
    Ok((out, exhausted))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    fn entry(at: &str, pk: &str, sk: &str) -> Item {
        Item::from([
            ("gsi_at".to_owned(), AttributeValue::S(at.to_owned())),
            (PK.to_owned(), AttributeValue::S(pk.to_owned())),
            (SK.to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    }

    /// Shards as DynamoDB would serve them: newest first, entries of one time in a scrambled order, `page`
    /// entries at a time; `hidden` entries are evaluated (they move the page on) but filtered out.
    struct FakeIndex {
        shards: HashMap<String, Vec<(Item, bool)>>,
        page: usize,
        queries: Mutex<usize>,
    }

    impl FakeIndex {
        fn new(entries: &[(usize, Item, bool)], shards: usize, page: usize) -> FakeIndex {
            let mut by_shard: HashMap<String, Vec<(Item, bool)>> = (0..shards)
                .map(|n| (format!("p#{n}"), Vec::new()))
                .collect();
            for (shard, item, hidden) in entries {
                by_shard
                    .get_mut(&format!("p#{shard}"))
                    .unwrap()
                    .push((item.clone(), *hidden));
            }
            for list in by_shard.values_mut() {
                // Newest first; ties in reverse of their key order, unlike the listing's.
                list.sort_by(|(a, _), (b, _)| {
                    let pa = Place::of(a, "gsi_at").unwrap();
                    let pb = Place::of(b, "gsi_at").unwrap();
                    pb.at
                        .cmp(&pa.at)
                        .then(pa.pk.cmp(&pb.pk))
                        .then(pa.sk.cmp(&pb.sk))
                });
            }
            FakeIndex {
                shards: by_shard,
                page,
                queries: Mutex::new(0),
            }
        }

        /// One page of `partition` after `start` (the last entry of the page before), with the
        /// listing's key condition `gsi_at <= after.at`.
        async fn fetch(
            &self,
            partition: String,
            start: Option<Item>,
            after: Option<Place>,
        ) -> Result<ShardPage, StoreError> {
            *self.queries.lock().unwrap() += 1;
            let list = &self.shards[&partition];
            let mut position = match &start {
                Some(key) => list.iter().position(|(i, _)| i == key).unwrap() + 1,
                None => 0,
            };
            if let Some(after) = &after {
                while position < list.len()
                    && Place::of(&list[position].0, "gsi_at").unwrap().at > after.at
                {
                    position += 1;
                }
            }
            let evaluated: Vec<&(Item, bool)> = list[position..].iter().take(self.page).collect();
            let last = (position + evaluated.len() < list.len())
                .then(|| evaluated.last().map(|(i, _)| i.clone()))
                .flatten();
            let items = evaluated
                .iter()
                .filter(|(_, hidden)| !hidden)
                .map(|(i, _)| i.clone())
                .collect();
            Ok((items, last))
        }
    }

    /// Pages of `size` through the whole listing, each resuming after the last place of the one before.
    async fn pages(index: &FakeIndex, size: usize) -> Vec<Vec<Place>> {
        let partitions: Vec<String> = (0..index.shards.len()).map(|n| format!("p#{n}")).collect();
        let mut pages = Vec::new();
        let mut after: Option<Place> = None;
        loop {
            let (page, exhausted) = merge(&partitions, "gsi_at", after.as_ref(), size, |p, s| {
                index.fetch(p, s, after.clone())
            })
            .await
            .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().cloned();
            pages.push(page);
            if exhausted {
                break;
            }
        }
        pages
    }

    /// A deterministic scatter of `n` entries over `shards`: several per time, some hidden by the filter.
    fn scatter(n: usize, shards: usize, seed: u64) -> Vec<(usize, Item, bool)> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|i| {
                let at = format!("2026-12-03T09:{:02}:00.000Z", next() % 20);
                let message = format!("MSG#m{}", next() % (n as u64 / 2 + 1));
                let shard = (next() % shards as u64) as usize;
                let hidden = next() % 5 == 0;
                (shard, entry(&at, &message, &format!("DLV#{i:04}")), hidden)
            })
            .collect()
    }

    #[tokio::test]
    async fn pages_over_shards_list_everything_once_newest_first_whatever_the_sizes() {
        for (n, shards, page, size, seed) in [
            (60, 8, 10, 7, 1),
            (60, 8, 3, 7, 2),
            (200, 8, 10, 13, 3),
            (25, 3, 2, 1, 4),
            (40, 1, 4, 6, 5),
            (0, 8, 10, 5, 6),
            (90, 16, 1, 4, 7),
        ] {
            let entries = scatter(n, shards, seed);
            let index = FakeIndex::new(&entries, shards, page);
            let mut expected: Vec<Place> = entries
                .iter()
                .filter(|(_, _, hidden)| !hidden)
                .map(|(_, i, _)| Place::of(i, "gsi_at").unwrap())
                .collect();
            expected.sort();
            expected.reverse();
            let listed: Vec<Place> = pages(&index, size).await.into_iter().flatten().collect();
            assert_eq!(
                listed, expected,
                "n={n} shards={shards} page={page} size={size}"
            );
        }
    }

    #[tokio::test]
    async fn a_page_ending_inside_a_shard_resumes_there_not_where_the_shard_was_read_to() {
        // Shard 0 holds the newest three and two older ones; shard 1 one entry in between. A page of two
        // reads shard 0 four entries deep (its page size) but takes only two: the next page must start
        // with shard 0's third entry, which a per-shard continuation key (after the fourth) would skip.
        let entries = vec![
            (
                0,
                entry("2026-12-03T09:05:00.000Z", "MSG#a", "DLV#1"),
                false,
            ),
            (
                0,
                entry("2026-12-03T09:04:00.000Z", "MSG#b", "DLV#1"),
                false,
            ),
            (
                0,
                entry("2026-12-03T09:03:00.000Z", "MSG#c", "DLV#1"),
                false,
            ),
            (
                1,
                entry("2026-12-03T09:02:30.000Z", "MSG#x", "DLV#1"),
                false,
            ),
            (
                0,
                entry("2026-12-03T09:02:00.000Z", "MSG#d", "DLV#1"),
                false,
            ),
            (
                0,
                entry("2026-12-03T09:01:00.000Z", "MSG#e", "DLV#1"),
                false,
            ),
        ];
        let index = FakeIndex::new(&entries, 2, 4);
        let pages = pages(&index, 2).await;
        let ids: Vec<Vec<&str>> = pages
            .iter()
            .map(|p| p.iter().map(|place| place.pk.as_str()).collect())
            .collect();
        assert_eq!(
            ids,
            [
                vec!["MSG#a", "MSG#b"],
                vec!["MSG#c", "MSG#x"],
                vec!["MSG#d", "MSG#e"]
            ]
        );
    }

    #[tokio::test]
    async fn deliveries_of_one_time_are_split_across_pages_without_loss() {
        // Five deliveries of one message (one time, one shard), served in reverse of the listing's order.
        let entries: Vec<(usize, Item, bool)> = (0..5)
            .map(|n| {
                (
                    0,
                    entry("2026-12-03T09:00:00.000Z", "MSG#m", &format!("DLV#{n}")),
                    false,
                )
            })
            .collect();
        let index = FakeIndex::new(&entries, 1, 2);
        let pages = pages(&index, 2).await;
        let sks: Vec<&str> = pages.iter().flatten().map(|p| p.sk.as_str()).collect();
        assert_eq!(sks, ["DLV#4", "DLV#3", "DLV#2", "DLV#1", "DLV#0"]);
    }

    #[tokio::test]
    async fn a_shard_with_only_older_entries_is_not_read_past_its_first_page() {
        // Shard 1 holds only entries older than all of shard 0's: one page of it is enough to know.
        let mut entries = Vec::new();
        for n in 0..30 {
            let at = format!("2026-12-03T10:{n:02}:00.000Z");
            entries.push((0, entry(&at, &format!("MSG#n{n:02}"), "DLV#1"), false));
            let old = format!("2026-12-03T08:{n:02}:00.000Z");
            entries.push((1, entry(&old, &format!("MSG#o{n:02}"), "DLV#1"), false));
        }
        let index = FakeIndex::new(&entries, 2, 5);
        let partitions = vec!["p#0".to_owned(), "p#1".to_owned()];
        let (page, exhausted) = merge(&partitions, "gsi_at", None, 10, |p, s| {
            index.fetch(p, s, None)
        })
        .await
        .unwrap();
        assert_eq!(page.len(), 10);
        assert!(!exhausted);
        // Shard 0 twice (ten entries, then one more to settle the tenth), shard 1 once.
        assert_eq!(*index.queries.lock().unwrap(), 4);
    }
}
