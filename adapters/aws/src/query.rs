//! Reading records back from the table for people (`mailroom messages`, `mailroom data`): through the
//! global secondary indexes of [`super::dynamo`], never a scan.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use super::dynamo::{
    BY_DAY, BY_RECIPIENT, BY_SENDER, DynamoStore, Index, PK, SK, delivery_from_item, sort_time,
};
use super::item::Item;
use super::store_error;
use mailroom::mail::envelope::normalise_address;
use mailroom::ports::{RecordFilter, RecordQuery, StoreError};
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

/// The queries that answer a listing: one index partition when an address is given, else one per day.
fn listing_queries(filter: &RecordFilter, now: DateTime<Utc>) -> Vec<IndexQuery> {
    let mut equal = vec![("type", "delivery".to_owned())];
    if let Some(status) = filter.status {
        equal.push(("status", status.as_str().to_owned()));
    }
    match (&filter.recipient, &filter.sender) {
        (Some(recipient), sender) => {
            if let Some(sender) = sender {
                equal.push((BY_SENDER.partition, normalise_address(sender)));
            }
            vec![IndexQuery {
                index: BY_RECIPIENT,
                partition: normalise_address(recipient),
                since: filter.since,
                equal,
            }]
        }
        (None, Some(sender)) => vec![IndexQuery {
            index: BY_SENDER,
            partition: normalise_address(sender),
            since: filter.since,
            equal,
        }],
        (None, None) => {
            let oldest = filter
                .since
                .unwrap_or(now - Duration::days(i64::from(LISTED_DAYS)));
            let mut queries = Vec::new();
            let mut day = now;
            while day.date_naive() >= oldest.date_naive() {
                queries.push(IndexQuery {
                    index: BY_DAY,
                    partition: super::dynamo::day_of(day),
                    since: filter.since,
                    equal: equal.clone(),
                });
                day -= Duration::days(1);
            }
            queries
        }
    }
}

impl RecordQuery for DynamoStore {
    async fn list(&self, filter: &RecordFilter) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let mut records = Vec::new();
        for query in listing_queries(filter, now) {
            let wanted = if filter.limit == 0 {
                0
            } else {
                filter.limit.saturating_sub(records.len())
            };
            for item in self.query_index(&query, wanted).await? {
                if let Some(record) = delivery_from_item(&item, now)? {
                    records.push(record);
                }
            }
            if filter.limit > 0 && records.len() >= filter.limit {
                break;
            }
        }
        records.sort_by_key(|r| std::cmp::Reverse(r.received_at));
        if filter.limit > 0 {
            records.truncate(filter.limit);
        }
        Ok(records)
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
    fn an_address_is_one_index_partition_and_the_rest_are_filters() {
        let filter = RecordFilter {
            recipient: Some("Support@Mail.Example.com".to_owned()),
            sender: Some("Ana@Sender.Example".to_owned()),
            status: Some(Status::Failed),
            since: Some(at("2026-11-20T00:00:00Z")),
            limit: 10,
        };
        let queries = listing_queries(&filter, at("2026-11-29T12:00:00Z"));
        assert_eq!(queries.len(), 1);
        assert_eq!(queries[0].index, BY_RECIPIENT);
        assert_eq!(queries[0].partition, "support@mail.example.com");
        assert_eq!(
            queries[0].equal,
            vec![
                ("type", "delivery".to_owned()),
                ("status", "failed".to_owned()),
                ("gsi_sender", "ana@sender.example".to_owned())
            ]
        );
    }

    #[test]
    fn without_an_address_each_day_back_to_since_is_asked_newest_first() {
        let filter = RecordFilter {
            since: Some(at("2026-11-27T23:00:00Z")),
            ..RecordFilter::default()
        };
        let days: Vec<String> = listing_queries(&filter, at("2026-11-29T12:00:00Z"))
            .into_iter()
            .map(|q| q.partition)
            .collect();
        assert_eq!(days, ["2026-11-29", "2026-11-28", "2026-11-27"]);
        let all = listing_queries(&RecordFilter::default(), at("2026-11-29T12:00:00Z"));
        assert_eq!(all.len(), LISTED_DAYS as usize + 1);
    }
}
