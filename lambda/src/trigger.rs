//! Which service invoked a function, read from the event's own `eventSource`, and the invocation's limits.

use std::time::Instant;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::LambdaEvent;
use mailroom::budget::Deadline;
use serde_json::Value;

use crate::error::HandlerError;

/// What invoked the function.
#[derive(Debug)]
pub enum Trigger {
    /// An SQS event source mapping: a batch whose records are settled one by one.
    Sqs(SqsEvent),
    /// An SNS subscription: its records (`Records[].Sns`), each with `Type`, `MessageId` and `Message`.
    Sns(Vec<Value>),
    /// Anything else (a direct S3 notification, a test event), as it came.
    Other(Value),
}

impl Trigger {
    /// Reads the payload's `Records[0].eventSource` (SNS spells it `EventSource`).
    pub fn of(payload: Value) -> Result<Trigger, HandlerError> {
        let source = payload
            .pointer("/Records/0/eventSource")
            .or_else(|| payload.pointer("/Records/0/EventSource"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match source {
            "aws:sqs" => serde_json::from_value(payload)
                .map(Trigger::Sqs)
                .map_err(|e| HandlerError::Permanent(format!("not an SQS event: {e}"))),
            "aws:sns" => Ok(Trigger::Sns(
                payload
                    .get("Records")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            )),
            _ => Ok(Trigger::Other(payload)),
        }
    }
}

/// One invocation's limits: when Lambda stops it, and when it started (SQS visibility counts from the
/// receive, which is about then).
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    /// Lambda's deadline for this invocation.
    pub deadline: Deadline,
    /// When the handler was called.
    pub received: Instant,
}

impl Invocation {
    /// The limits of `event`'s invocation, taken as the handler starts.
    pub fn of<T>(event: &LambdaEvent<T>) -> Invocation {
        Invocation {
            deadline: Deadline::from_unix_millis(event.context.deadline),
            received: Instant::now(),
        }
    }
}

/// The `Sns.<name>` text field of one SNS record.
pub fn sns_field(record: &Value, name: &str) -> Option<String> {
    record
        .get("Sns")
        .and_then(|sns| sns.get(name))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_source_of_the_first_record_decides() {
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": "{}"}]});
        assert!(matches!(Trigger::of(sqs).unwrap(), Trigger::Sqs(e) if e.records.len() == 1));
        let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "hi"}}]});
        match Trigger::of(sns).unwrap() {
            Trigger::Sns(records) => {
                assert_eq!(sns_field(&records[0], "Message").as_deref(), Some("hi"))
            }
            other => panic!("{other:?}"),
        }
        let s3 = json!({"Records": [{"eventSource": "aws:s3"}]});
        assert!(matches!(Trigger::of(s3).unwrap(), Trigger::Other(_)));
        assert!(matches!(
            Trigger::of(json!("garbage")).unwrap(),
            Trigger::Other(_)
        ));
    }

    #[test]
    fn an_sqs_source_with_a_broken_shape_is_permanent() {
        let broken = json!({"Records": [{"eventSource": "aws:sqs", "messageId": 7}]});
        assert!(matches!(
            Trigger::of(broken),
            Err(HandlerError::Permanent(_))
        ));
    }
}
