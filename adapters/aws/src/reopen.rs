//! What `mailroom redrive` and `messages resend` need of the table: failed or rejected records reopened ([`Reopen`] for [`DynamoStore`]).
//! Moving the messages themselves is [`super::sqs::Queue`]'s.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

use super::dynamo::{DynamoStore, TTL_ATTRIBUTE, delivery_key};
use super::store_error;
use mailroom::ports::{RecordQuery, Reopen, StoreError};
use mailroom::record::Status;

impl Reopen for DynamoStore {
    async fn reopen(
        &self,
        message_id: &str,
        statuses: &[Status],
        target: Option<&str>,
    ) -> Result<usize, StoreError> {
        let now = Utc::now();
        let mut reopened = 0;
        for record in self.message(message_id).await? {
            if !statuses.contains(&record.status) || target.is_some_and(|t| record.target != t) {
                continue;
            }
            let result = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(delivery_key(&record.key())))
                // A leftover claim would make the next attempt wait for it; the due time would make it
                // wait for a schedule that no longer applies.
                .update_expression(
                    "SET #status = :retrying REMOVE #next_attempt_at, #claim_token, #claim_until",
                )
                .condition_expression("#status = :was AND #expires > :now")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#next_attempt_at", "next_attempt_at")
                .expression_attribute_names("#claim_token", "claim_token")
                .expression_attribute_names("#claim_until", "claim_until")
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .expression_attribute_values(
                    ":retrying",
                    AttributeValue::S(Status::Retrying.as_str().to_owned()),
                )
                .expression_attribute_values(
                    ":was",
                    AttributeValue::S(record.status.as_str().to_owned()),
                )
                .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
                .send()
                .await;
            match result {
                Ok(_) => reopened += 1,
                // Changed (or expired) since it was read: it is no longer this redrive's to reopen.
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(error) => {
                    return Err(store_error(
                        format!("cannot reopen a delivery in {}", self.table()),
                        error,
                    ));
                }
            }
        }
        Ok(reopened)
    }
}
