//! Reading records back from the table for people (`mailroom messages`, `mailroom data`, the console):
//! through the global secondary indexes of [`super::dynamo`], never a scan. A listing queries every shard
//! of its index key at once and merges them newest first ([`super::merge`]); the index holds only what
//! the listing filters on, and the page's records are then read whole from the table by key.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::dynamo::{
    BY_DAY, BY_RECIPIENT, BY_SENDER, DynamoStore, Index, PK, SK, TTL_ATTRIBUTE, delivery_from_item,
    sort_time,
};
use super::item::Item;
use super::merge::{Place, ShardPage, merge};
use super::store_error;
use mailroom::mail::envelope::normalise_address;
use mailroom::ports::{ListCursor, RecordFilter, RecordPage, RecordQuery, StoreError};
use mailroom::record::{DEFAULT_RETENTION_DAYS, Delivery};

/// How far back a listing without `since` and without an address looks, in days: the default retention.
/// Records kept longer are listed with `since`.
pub const LISTED_DAYS: u32 = DEFAULT_RETENTION_DAYS;

/// One query on an index: a partition, newest first, with conditions on the other attributes.
#[derive(Debug, Clone)]
pub struct IndexQuery {
    /// Which index.
    pub index: Index,
    /// Its partition key value.
    pub partition: String,
    /// Only items at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only items whose attribute (name) has the value.
    pub equal: Vec<(&'static str, String)>,
}

impl DynamoStore {
    /// The items of one index partition that meet the query's conditions, newest first, at most `limit`
    /// (0: all).
    pub async fn query_index(
        &self,
        query: &IndexQuery,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut names = HashMap::from([("#p".to_owned(), query.index.partition.to_owned())]);
        let mut values =
            HashMap::from([(":p".to_owned(), AttributeValue::S(query.partition.clone()))]);
        let mut condition = "#p = :p".to_owned();
        if let Some(since) = query.since {
            condition.push_str(" AND #at >= :since");
            names.insert("#at".to_owned(), query.index.sort.to_owned());
            values.insert(":since".to_owned(), AttributeValue::S(sort_time(since)));
        }
        let mut filters = Vec::new();
        for (n, (attribute, value)) in query.equal.iter().enumerate() {
            names.insert(format!("#f{n}"), (*attribute).to_owned());
            values.insert(format!(":f{n}"), AttributeValue::S(value.clone()));
            filters.push(format!("#f{n} = :f{n}"));
        }
        let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
        let what = format!(
            "cannot query index {} of table {}",
            query.index.name,
            self.table()
        );
        self.pages(limit, &what, |start| {
            self.client()
                .query()
                .table_name(self.table())
                .index_name(query.index.name)
                .key_condition_expression(&condition)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start)
        })
        .await
    }

    /// Runs a query page after page, until there are no more or `limit` items (0: no limit).
    async fn pages(
        &self,
        limit: usize,
        what: &str,
        query: impl Fn(Option<Item>) -> QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = query(start.take())
                .send()
                .await
                .map_err(|e| store_error(what, e))?;
            items.extend(output.items.unwrap_or_default());
            if limit > 0 && items.len() >= limit {
                items.truncate(limit);
                break;
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Every item of one partition of the table itself.
    pub async fn partition(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let what = format!("cannot read table {}", self.table());
        self.pages(0, &what, |start| {
            self.client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
        })
        .await
    }
}

/// What answers a listing: one index, the unsharded keys to list in turn (one address; or each day back
/// to `since`, today first), the time range, and the filter on what the index projects.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Which index.
    pub index: Index,
    /// Its partition keys before their shards, newest first.
    pub keys: Vec<String>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only entries whose attribute (name) has the value, or, for [`Listing::sharded_equal`], the value
    /// with any shard.
    pub equal: Vec<(&'static str, String)>,
    /// Attributes that hold a sharded index key, compared without their shard.
    pub sharded_equal: Vec<(&'static str, String)>,
}

/// The listing that answers `filter`: one index key when an address is given, else one per day, from the
/// day of the page's start (today when none) back to `since` or [`LISTED_DAYS`].
pub fn listing(filter: &RecordFilter, now: DateTime<Utc>, after: Option<&Place>) -> Listing {
    let mut equal = vec![("type", "delivery".to_owned())];
    if let Some(status) = filter.status {
        equal.push(("status", status.as_str().to_owned()));
    }
    let mut sharded_equal = Vec::new();
    let (index, keys) = match (&filter.recipient, &filter.sender) {
        (Some(recipient), sender) => {
            if let Some(sender) = sender {
                sharded_equal.push((BY_SENDER.partition, normalise_address(sender)));
            }
            (BY_RECIPIENT, vec![normalise_address(recipient)])
        }
        (None, Some(sender)) => (BY_SENDER, vec![normalise_address(sender)]),
        (None, None) => {
            let oldest = filter
                .since
                .unwrap_or(now - Duration::days(i64::from(LISTED_DAYS)));
            let newest = after
                .and_then(|place| DateTime::parse_from_rfc3339(&place.at).ok())
                .map_or(now, |at| at.with_timezone(&Utc).min(now))
                .min(filter.until.unwrap_or(now));
            let mut days = Vec::new();
            let mut day = newest;
            while day.date_naive() >= oldest.date_naive() {
                days.push(super::dynamo::day_of(day));
                day -= Duration::days(1);
            }
            (BY_DAY, days)
        }
    };
    Listing {
        index,
        keys,
        since: filter.since,
        until: filter.until,
        equal,
        sharded_equal,
    }
}

/// A query's conditions as DynamoDB takes them: the key condition, the filter, and their names and values.
struct Conditions {
    key: String,
    filter: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Listing {
    /// Whether a filter beyond the record type drops entries the key condition reads.
    fn narrows(&self) -> bool {
        self.equal.len() > 1 || !self.sharded_equal.is_empty()
    }

    /// The conditions of a query of one partition, from `since` up to `upto` (the page's start), of
    /// entries not expired at `now`.
    fn conditions(&self, upto: Option<&str>, now: DateTime<Utc>) -> Conditions {
        let mut names = HashMap::from([
            ("#p".to_owned(), self.index.partition.to_owned()),
            ("#expires".to_owned(), TTL_ATTRIBUTE.to_owned()),
        ]);
        if self.since.is_some() || upto.is_some() {
            names.insert("#at".to_owned(), self.index.sort.to_owned());
        }
        let mut values = HashMap::from([(
            ":now".to_owned(),
            AttributeValue::N(now.timestamp().to_string()),
        )]);
        let since = self.since.map(sort_time);
        let key = match (&since, upto) {
            (Some(since), Some(upto)) => {
                values.insert(":since".to_owned(), AttributeValue::S(since.clone()));
                values.insert(":upto".to_owned(), AttributeValue::S(upto.to_owned()));
                "#p = :p AND #at BETWEEN :since AND :upto"
            }
            (Some(since), None) => {
                values.insert(":since".to_owned(), AttributeValue::S(since.clone()));
                "#p = :p AND #at >= :since"
            }
            (None, Some(upto)) => {
                values.insert(":upto".to_owned(), AttributeValue::S(upto.to_owned()));
                "#p = :p AND #at <= :upto"
            }
            (None, None) => "#p = :p",
        };
        let mut filters = vec!["#expires > :now".to_owned()];
        for (n, (attribute, value)) in self.equal.iter().enumerate() {
            names.insert(format!("#f{n}"), (*attribute).to_owned());
            values.insert(format!(":f{n}"), AttributeValue::S(value.clone()));
            filters.push(format!("#f{n} = :f{n}"));
        }
        for (n, (attribute, value)) in self.sharded_equal.iter().enumerate() {
            names.insert(format!("#s{n}"), (*attribute).to_owned());
            values.insert(format!(":s{n}"), AttributeValue::S(value.clone()));
            values.insert(
                format!(":s{n}shard"),
                AttributeValue::S(format!("{value}#")),
            );
            filters.push(format!("(#s{n} = :s{n} OR begins_with(#s{n}, :s{n}shard))"));
        }
        Conditions {
            key: key.to_owned(),
            filter: filters.join(" AND "),
            names,
            values,
        }
    }
}

/// Entries a query of one shard reads at least when a filter drops most of what the index holds (a status,
/// a second address): a page of 50 failed deliveries among 3% would otherwise take hundreds of round trips
/// of ten entries each. DynamoDB counts `Limit` before the filter, and a shard read past the page is
/// resumed from the page's last entry, so reading more loses nothing.
const NARROWED_READ: i32 = 300;

/// Entries one query of a listing reads at most: enough for an even share of the page from each shard,
/// with room to spare, and never a trickle.
fn chunk(want: usize, partitions: usize) -> i32 {
    if want == 0 {
        return 1000;
    }
    (want.div_ceil(partitions.max(1)) + 2).clamp(10, 1000) as i32
}

impl DynamoStore {
    /// One page of a shard partition of a listing.
    async fn listing_query(
        &self,
        listing: &Listing,
        conditions: &Conditions,
        partition: String,
        start: Option<Item>,
        limit: i32,
    ) -> Result<ShardPage, StoreError> {
        let mut values = conditions.values.clone();
        values.insert(":p".to_owned(), AttributeValue::S(partition));
        let output = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(listing.index.name)
            .key_condition_expression(&conditions.key)
            .filter_expression(&conditions.filter)
            .set_expression_attribute_names(Some(conditions.names.clone()))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| {
                store_error(
                    format!(
                        "cannot query index {} of table {}{}",
                        listing.index.name,
                        self.table(),
                        missing_index_hint(&e)
                    ),
                    e,
                )
            })?;
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }

    /// The places of up to `want` entries (0: all) of a listing after `after`, newest first, key after
    /// key, each key's shards merged; and whether more may follow.
    pub async fn listing_places(
        &self,
        listing: &Listing,
        after: Option<&Place>,
        want: usize,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Place>, bool), StoreError> {
        let layout = self.layout().await?;
        let until = listing.until.map(sort_time);
        // The page's start or the listing's end, whichever is older: BETWEEN bounds both.
        let upto = match (after.map(|place| place.at.as_str()), until.as_deref()) {
            (Some(start), Some(end)) => Some(start.min(end)),
            (start, end) => start.or(end),
        };
        if let (Some(since), Some(upto)) = (listing.since.map(sort_time), upto)
            && since.as_str() > upto
        {
            return Ok((Vec::new(), false));
        }
        let conditions = listing.conditions(upto, now);
        let mut places = Vec::new();
        for (n, key) in listing.keys.iter().enumerate() {
            let left = if want == 0 { 0 } else { want - places.len() };
            let partitions = layout.partitions(key);
            let limit = if listing.narrows() {
                chunk(left, partitions.len()).max(NARROWED_READ)
            } else {
                chunk(left, partitions.len())
            };
            let (found, exhausted) = merge(
                &partitions,
                listing.index.sort,
                after,
                left,
                |partition, start| {
                    self.listing_query(listing, &conditions, partition, start, limit)
                },
            )
            .await?;
            places.extend(found);
            if want > 0 && places.len() >= want {
                let last_key = n + 1 == listing.keys.len();
                return Ok((places, !(exhausted && last_key)));
            }
        }
        Ok((places, false))
    }

    /// The records at `places`, read whole from the table, in the same order; one gone or expired since
    /// the index listed it is left out.
    pub async fn records_at(
        &self,
        places: &[Place],
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for batch in places.chunks(100) {
            for item in self
                .batch_get(batch.iter().map(Place::key).collect())
                .await?
            {
                if let Some(place) = Place::of(&item, SK) {
                    found.insert((place.pk, place.sk), item);
                }
            }
        }
        let mut records = Vec::new();
        for place in places {
            if let Some(item) = found.get(&(place.pk.clone(), place.sk.clone()))
                && let Some(record) = delivery_from_item(item, now)?
            {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Reads up to 100 items by key, asking again for what DynamoDB leaves unprocessed.
    pub async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut keys = keys;
        let mut pause = std::time::Duration::from_millis(50);
        while !keys.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(|e| StoreError::permanent(format!("a batch read: {e}")))?;
            let output = self
                .client()
                .batch_get_item()
                .request_items(self.table(), request)
                .send()
                .await
                .map_err(|e| store_error(format!("cannot read from table {}", self.table()), e))?;
            if let Some(mut responses) = output.responses {
                items.extend(responses.remove(self.table()).unwrap_or_default());
            }
            keys = output
                .unprocessed_keys
                .and_then(|mut left| left.remove(self.table()))
                .map(|left| left.keys)
                .unwrap_or_default();
            if !keys.is_empty() {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
        }
        Ok(items)
    }
}

/// What to say when a listing's index does not exist (yet): a stack in the middle of its upgrade.
fn missing_index_hint<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    error: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> &'static str {
    let message = error
        .as_service_error()
        .and_then(|e| e.message())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if message.contains("index") {
        " (a stack deployed before sharded indexes gets them one deploy at a time: \
         docs/records-at-scale.md, \"Upgrading a stack\")"
    } else {
        ""
    }
}

impl RecordQuery for DynamoStore {
    async fn page(
        &self,
        filter: &RecordFilter,
        after: Option<&str>,
    ) -> Result<RecordPage, StoreError> {
        let now = Utc::now();
        let after = after
            .map(ListCursor::parse)
            .transpose()?
            .map(|cursor| Place::from_cursor(&cursor));
        let listing = listing(filter, now, after.as_ref());
        let (places, more) = self
            .listing_places(&listing, after.as_ref(), filter.limit, now)
            .await?;
        let next = places
            .last()
            .filter(|_| more && filter.limit > 0 && places.len() == filter.limit)
            .map(|place| place.cursor().token());
        Ok(RecordPage {
            records: self.records_at(&places, now).await?,
            next,
        })
    }

    async fn message(&self, message_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let mut records = Vec::new();
        for item in self.partition(&format!("MSG#{message_id}")).await? {
            let is_delivery =
                matches!(item.get(SK), Some(AttributeValue::S(sk)) if sk.starts_with("DLV#"));
            if is_delivery && let Some(record) = delivery_from_item(&item, now)? {
                records.push(record);
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mailroom::record::Status;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_is_one_index_key_and_the_rest_are_filters() {
        let filter = RecordFilter {
            recipient: Some("Support@Mail.Example.com".to_owned()),
            sender: Some("Ana@Sender.Example".to_owned()),
            status: Some(Status::Failed),
            since: Some(at("2026-11-20T00:00:00Z")),
            limit: 10,
            ..RecordFilter::default()
        };
        let listing = listing(&filter, at("2026-11-29T12:00:00Z"), None);
        assert_eq!(listing.index, BY_RECIPIENT);
        assert_eq!(listing.keys, ["support@mail.example.com"]);
        assert_eq!(
            listing.equal,
            vec![
                ("type", "delivery".to_owned()),
                ("status", "failed".to_owned()),
            ]
        );
        assert_eq!(
            listing.sharded_equal,
            vec![("gsi_sender", "ana@sender.example".to_owned())]
        );
        let conditions =
            listing.conditions(Some("2026-11-28T00:00:00.000Z"), at("2026-11-29T12:00:00Z"));
        assert_eq!(conditions.key, "#p = :p AND #at BETWEEN :since AND :upto");
        assert_eq!(
            conditions.filter,
            "#expires > :now AND #f0 = :f0 AND #f1 = :f1 AND (#s0 = :s0 OR begins_with(#s0, :s0shard))"
        );
        assert_eq!(
            conditions.values[":s0shard"],
            AttributeValue::S("ana@sender.example#".to_owned())
        );
    }

    #[test]
    fn without_an_address_each_day_back_to_since_is_asked_newest_first() {
        let filter = RecordFilter {
            since: Some(at("2026-11-27T23:00:00Z")),
            ..RecordFilter::default()
        };
        let days = listing(&filter, at("2026-11-29T12:00:00Z"), None).keys;
        assert_eq!(days, ["2026-11-29", "2026-11-28", "2026-11-27"]);
        let all = listing(&RecordFilter::default(), at("2026-11-29T12:00:00Z"), None);
        assert_eq!(all.keys.len(), LISTED_DAYS as usize + 1);
        // A later page starts on the day its first entry can be on.
        let after = Place {
            at: "2026-11-28T08:00:00.000Z".to_owned(),
            pk: "MSG#m".to_owned(),
            sk: "DLV#d".to_owned(),
        };
        let days = listing(&filter, at("2026-11-29T12:00:00Z"), Some(&after)).keys;
        assert_eq!(days, ["2026-11-28", "2026-11-27"]);
    }

    #[test]
    fn a_query_reads_an_even_share_of_the_page_from_each_shard_and_some_more() {
        assert_eq!(chunk(50, 8), 10);
        assert_eq!(chunk(200, 8), 27);
        assert_eq!(chunk(3, 9), 10);
        assert_eq!(chunk(0, 8), 1000);
    }
}
