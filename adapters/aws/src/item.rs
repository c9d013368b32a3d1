//! Records and routes as DynamoDB items: a serde value converted attribute by attribute, so the item's
//! attribute names are the record's field names.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Converts any serialisable value whose JSON form is an object into an item. `null`s are left out.
pub fn to_item<T: Serialize>(value: &T) -> Result<Item, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(map) => Ok(map
            .into_iter()
            .filter_map(|(key, value)| to_attribute(value).map(|a| (key, a)))
            .collect()),
        other => Err(serde::ser::Error::custom(format!("not an object: {other}"))),
    }
}

/// Reads an item back into a value.
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, serde_json::Error> {
    let map: Map<String, Value> = item
        .iter()
        .map(|(key, attribute)| (key.clone(), from_attribute(attribute)))
        .collect();
    serde_json::from_value(Value::Object(map))
}

fn to_attribute(value: Value) -> Option<AttributeValue> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s),
        Value::Array(items) => {
            AttributeValue::L(items.into_iter().filter_map(to_attribute).collect())
        }
        Value::Object(map) => AttributeValue::M(
            map.into_iter()
                .filter_map(|(k, v)| to_attribute(v).map(|a| (k, a)))
                .collect(),
        ),
    })
}

fn from_attribute(attribute: &AttributeValue) -> Value {
    match attribute {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or(Value::Null),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(items) => Value::Array(items.iter().map(from_attribute).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), from_attribute(v)))
                .collect(),
        ),
        AttributeValue::Ss(items) => {
            Value::Array(items.iter().cloned().map(Value::String).collect())
        }
        _ => Value::Null,
    }
}

/// A string attribute of an item.
pub fn string(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|a| a.as_s().ok()).cloned()
}

/// A number attribute of an item.
pub fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|a| a.as_n().ok())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        count: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        missing: Option<String>,
        tags: Vec<String>,
        flag: bool,
    }

    #[test]
    fn round_trips() {
        let sample = Sample {
            name: "x".into(),
            count: 3,
            missing: None,
            tags: vec!["a".into(), "b".into()],
            flag: true,
        };
        let item = to_item(&sample).unwrap();
        assert_eq!(item["count"], AttributeValue::N("3".into()));
        assert!(!item.contains_key("missing"));
        assert_eq!(from_item::<Sample>(&item).unwrap(), sample);
    }
}
