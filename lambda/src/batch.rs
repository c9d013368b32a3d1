//! One SQS batch, the same way in every function: each record read into work items (a record may announce
//! several messages, or none), the items of the whole batch processed together within the invocation, and
//! each record settled by the most urgent verdict of its items. Records that can never be read go to the
//! dead-letter queue at once; the others are acknowledged, hidden for their wait, handed back or left to
//! fail, and only the failures are reported (partial batch responses).

use std::future::Future;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use mailroom::budget::Deadline;
use mailroom::usecases::inbound::{Outcome, Retryable};
use mailroom_aws::sqs::{Queues, Settlement};
use serde_json::Value;
use tracing::warn;

use crate::error::HandlerError;
use crate::trigger::Invocation;

/// What a function does with the records of one batch.
pub trait BatchWork: Sync {
    /// One unit of work a record announces.
    type Item: Send + Sync;

    /// The items `record` announces, or why it can never be read. Never called for a record without a
    /// body.
    fn read(&self, record: &SqsMessage, body: &str) -> Result<Vec<Self::Item>, String>;

    /// Processes every item of the batch within `deadline`; one verdict per item, in their order.
    fn process(
        &self,
        items: &[Self::Item],
        deadline: Deadline,
    ) -> impl Future<Output = Vec<Verdict>> + Send;
}

/// What became of one item.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The use case's outcome.
    Outcome(Outcome),
    /// A failure that may pass: the queue's visibility timeout brings the record back.
    Passing(String),
    /// A failure that will not pass (a refused write, a missing permission): to the dead-letter queue,
    /// whose alarm calls for a look and from where `mailroom redrive` brings it back.
    Permanent(String),
}

impl Verdict {
    /// The verdict of the inbound use case on the delivery of `what`: its outcome, or a failure that says
    /// whether trying again can help (a refused write or a missing permission cannot).
    pub fn of_delivery(result: Result<Outcome, Retryable>, what: &str) -> Verdict {
        match result {
            Ok(outcome) => Verdict::Outcome(outcome),
            Err(Retryable(error)) if !error.retryable => {
                Verdict::Permanent(format!("{what}: {error}"))
            }
            Err(error) => Verdict::Passing(format!("{what}: {error}")),
        }
    }

    /// The more urgent of two verdicts for one record: a permanent failure, then a passing one, then the
    /// sooner return of the outcomes.
    pub fn fold(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Permanent(why), _) | (_, Verdict::Permanent(why)) => Verdict::Permanent(why),
            (Verdict::Passing(why), _) | (_, Verdict::Passing(why)) => Verdict::Passing(why),
            (Verdict::Outcome(a), Verdict::Outcome(b)) => Verdict::Outcome(a.combine(b)),
        }
    }

    /// How the record it decides is settled on its queue.
    pub fn settlement(self) -> Settlement {
        match self {
            Verdict::Outcome(Outcome::Done) => Settlement::Done,
            Verdict::Outcome(Outcome::RetryAfter(wait)) => Settlement::Later(wait),
            Verdict::Outcome(Outcome::HandBack) => Settlement::HandBack,
            Verdict::Outcome(Outcome::GaveUp) => Settlement::DeadLetter(
                "gave up after 72 hours of retries; recorded failed".to_owned(),
            ),
            Verdict::Passing(why) => Settlement::Fail(why),
            Verdict::Permanent(why) => {
                warn!(error = %why, "a store refused for good");
                Settlement::DeadLetter(why)
            }
        }
    }

    /// The verdict of a direct (queue-less) invocation about `what`: there is no queue to carry a wait,
    /// so anything to be tried again is a `Retryable` error, for Lambda's own retries.
    pub fn into_direct(self, what: &str) -> Result<(), HandlerError> {
        match self {
            Verdict::Outcome(Outcome::Done) => Ok(()),
            Verdict::Outcome(Outcome::RetryAfter(wait)) => Err(HandlerError::Retryable(format!(
                "{what} is to be retried in {} s",
                wait.as_secs()
            ))),
            Verdict::Outcome(Outcome::HandBack) => {
                Err(HandlerError::Retryable(format!("no time left for {what}")))
            }
            Verdict::Outcome(Outcome::GaveUp) => Err(HandlerError::Permanent(format!(
                "gave up on {what} after 72 hours of retries"
            ))),
            Verdict::Passing(why) => Err(HandlerError::Retryable(why)),
            Verdict::Permanent(why) => Err(HandlerError::Permanent(why)),
        }
    }
}

/// Runs one SQS batch through `work` and settles every record on `queues`; the answer is Lambda's
/// partial batch response.
pub async fn run_batch<W: BatchWork>(
    work: &W,
    queues: &Queues,
    event: SqsEvent,
    invocation: Invocation,
) -> Result<Value, HandlerError> {
    let records = &event.records;
    let mut unreadable: Vec<Option<Settlement>> = vec![None; records.len()];
    let mut items = Vec::new();
    let mut owners = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let id = record.message_id.as_deref().unwrap_or("(no id)");
        let Some(body) = record.body.as_deref() else {
            unreadable[index] = Some(Settlement::DeadLetter(format!(
                "SQS record {id} has no body"
            )));
            continue;
        };
        match work.read(record, body) {
            Ok(read) => {
                owners.extend(std::iter::repeat_n(index, read.len()));
                items.extend(read);
            }
            // It will never read better: to the dead-letter queue (and its alarm) at once.
            Err(why) => {
                unreadable[index] = Some(Settlement::DeadLetter(format!(
                    "unreadable SQS record {id}: {why}"
                )));
            }
        }
    }
    let verdicts = work.process(&items, invocation.deadline).await;
    let settlements = settle_records(unreadable, &owners, verdicts);
    let response: SqsBatchResponse = queues
        .settle(records, settlements, invocation.received)
        .await;
    serde_json::to_value(response).map_err(|e| HandlerError::Permanent(e.to_string()))
}

/// Each record's settlement: why it was unreadable, or the fold of its items' verdicts (no items: done).
fn settle_records(
    unreadable: Vec<Option<Settlement>>,
    owners: &[usize],
    verdicts: Vec<Verdict>,
) -> Vec<Settlement> {
    let mut folded: Vec<Option<Verdict>> = vec![None; unreadable.len()];
    for (owner, verdict) in owners.iter().zip(verdicts) {
        if let Some(slot) = folded.get_mut(*owner) {
            *slot = Some(match slot.take() {
                None => verdict,
                Some(earlier) => earlier.fold(verdict),
            });
        }
    }
    unreadable
        .into_iter()
        .zip(folded)
        .map(|(unreadable, folded)| match (unreadable, folded) {
            (Some(settled), _) => settled,
            (None, None) => Settlement::Done,
            (None, Some(verdict)) => verdict.settlement(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn later(secs: u64) -> Verdict {
        Verdict::Outcome(Outcome::RetryAfter(Duration::from_secs(secs)))
    }

    #[test]
    fn a_record_is_settled_by_its_most_urgent_item() {
        let unreadable = vec![
            None,
            None,
            Some(Settlement::DeadLetter("x".to_owned())),
            None,
        ];
        let owners = [0, 0, 1, 1, 1];
        let verdicts = vec![
            later(60),
            later(30),
            Verdict::Outcome(Outcome::Done),
            Verdict::Passing("timeout".to_owned()),
            Verdict::Outcome(Outcome::GaveUp),
        ];
        let settled = settle_records(unreadable, &owners, verdicts);
        assert!(matches!(settled[0], Settlement::Later(wait) if wait == Duration::from_secs(30)));
        assert!(matches!(&settled[1], Settlement::Fail(why) if why == "timeout"));
        assert!(matches!(&settled[2], Settlement::DeadLetter(why) if why == "x"));
        // A record that announced nothing (an ignored event) is done.
        assert!(matches!(settled[3], Settlement::Done));
    }

    #[test]
    fn a_permanent_failure_outranks_everything_and_a_retry_outranks_giving_up() {
        let permanent = Verdict::Permanent("denied".to_owned());
        assert!(matches!(later(5).fold(permanent), Verdict::Permanent(_)));
        let gave_up = Verdict::Outcome(Outcome::GaveUp);
        assert!(matches!(
            gave_up.fold(later(5)),
            Verdict::Outcome(Outcome::RetryAfter(_))
        ));
        assert!(matches!(
            Verdict::Outcome(Outcome::GaveUp).settlement(),
            Settlement::DeadLetter(_)
        ));
    }

    #[test]
    fn a_direct_invocation_turns_waits_into_retryable_errors() {
        assert!(Verdict::Outcome(Outcome::Done).into_direct("m").is_ok());
        assert!(
            matches!(later(9).into_direct("m"), Err(HandlerError::Retryable(why)) if why.contains("9 s"))
        );
        assert!(matches!(
            Verdict::Outcome(Outcome::GaveUp).into_direct("m"),
            Err(HandlerError::Permanent(_))
        ));
        assert!(matches!(
            Verdict::Outcome(Outcome::HandBack).into_direct("m"),
            Err(HandlerError::Retryable(_))
        ));
    }
}
