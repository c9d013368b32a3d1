//! `mailroom setup emulator`: the resources the functions need, created in whatever AWS endpoint the
//! standard environment points at (moto's server, LocalStack), with the key schema, indexes and TTL
//! attribute of `template.yaml`; a new table records that it holds no unsharded index key
//! ([`super::shards`]).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::dynamo::{PK, SK, TTL_ATTRIBUTE};
use super::store_error;
use mailroom::ports::StoreError;

/// Receives before SQS moves a message to the dead-letter queue (see `sqs` for the arithmetic).
pub use super::sqs::MAX_RECEIVE_COUNT;

/// Seconds a received message stays invisible by default: six times the function's timeout (30 s).
pub const VISIBILITY_TIMEOUT_SECS: u32 = 180;

/// Message retention of both queues: 14 days, SQS's maximum.
pub const RETENTION_SECS: u32 = 14 * 24 * 3600;

/// What was created, as the environment variables the functions and the CLI read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `MAILROOM_BUCKET`.
    pub bucket: String,
    /// `MAILROOM_TABLE`.
    pub table: String,
    /// `MAILROOM_QUEUE_URL`.
    pub queue_url: String,
    /// `MAILROOM_DLQ_URL`.
    pub dlq_url: String,
    /// `MAILROOM_TOPIC_ARN`.
    pub topic_arn: String,
    /// `MAILROOM_FEEDBACK_QUEUE_URL`: the feedback topic's subscribed queue.
    pub feedback_queue_url: String,
    /// The feedback queue's dead-letter queue.
    pub feedback_dlq_url: String,
    /// `MAILROOM_CONFIGURATION_SET`.
    pub configuration_set: String,
    /// `MAILROOM_LINK_KEY_ARN`: the secret that signs attachment and original-mail links.
    pub link_key_arn: String,
}

impl Resources {
    /// The `export NAME=value` lines, ready for `eval`.
    pub fn exports(&self) -> String {
        [
            ("MAILROOM_BUCKET", &self.bucket),
            ("MAILROOM_TABLE", &self.table),
            ("MAILROOM_QUEUE_URL", &self.queue_url),
            ("MAILROOM_DLQ_URL", &self.dlq_url),
            ("MAILROOM_TOPIC_ARN", &self.topic_arn),
            ("MAILROOM_FEEDBACK_QUEUE_URL", &self.feedback_queue_url),
            ("MAILROOM_FEEDBACK_DLQ_URL", &self.feedback_dlq_url),
            ("MAILROOM_CONFIGURATION_SET", &self.configuration_set),
            ("MAILROOM_LINK_KEY_ARN", &self.link_key_arn),
        ]
        .iter()
        .map(|(name, value)| format!("export {name}={}\n", shell_quote(value)))
        .collect()
    }
}

fn shell_quote(value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The table's key schema, as `template.yaml` declares it.
pub fn table_key_schema() -> Vec<(String, KeyType)> {
    vec![
        (PK.to_owned(), KeyType::Hash),
        (SK.to_owned(), KeyType::Range),
    ]
}

/// The table's global secondary indexes, as `template.yaml` declares them: what listings filter on
/// (`INCLUDE`), or only the keys for the indexes only erasure reads.
pub fn global_secondary_indexes() -> Vec<aws_sdk_dynamodb::types::GlobalSecondaryIndex> {
    indexes_of(&super::dynamo::INDEXES)
}

/// `indexes` as DynamoDB takes them.
pub fn indexes_of(
    indexes: &[super::dynamo::Index],
) -> Vec<aws_sdk_dynamodb::types::GlobalSecondaryIndex> {
    use super::dynamo::Projection as Projected;
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    indexes
        .iter()
        .filter_map(|index| {
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(index.partition)
                        .key_type(KeyType::Hash)
                        .build()
                        .ok()?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(index.sort)
                        .key_type(KeyType::Range)
                        .build()
                        .ok()?,
                )
                .projection(match index.projection {
                    Projected::All => Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                    Projected::KeysOnly => Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                    Projected::Include(names) => Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(
                            names.iter().map(|n| (*n).to_owned()).collect(),
                        ))
                        .build(),
                })
                .build()
                .ok()
        })
        .collect()
}

/// Every attribute a key of the table or of an index names (all strings).
pub fn key_attributes() -> Vec<String> {
    let mut names: Vec<String> = table_key_schema().into_iter().map(|(n, _)| n).collect();
    for index in super::dynamo::INDEXES {
        for name in [index.partition, index.sort] {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// Creates (or finds) every resource, named `<prefix>-…`. Safe to run twice.
pub async fn create_all(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
) -> Result<Resources, StoreError> {
    let bucket = format!("{prefix}-mail");
    let table = format!("{prefix}-table");
    create_bucket(sdk, &bucket).await?;
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &table).await?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let (queue_url, dlq_url) =
        create_queue_with_dead_letters(&sqs, &format!("{prefix}-inbound")).await?;
    // As in the template: topic → feedback queue (SNS's envelope kept, raw delivery off) → function,
    // with a dead-letter queue for what keeps failing.
    let (feedback_queue_url, feedback_dlq_url) =
        create_queue_with_dead_letters(&sqs, &format!("{prefix}-feedback")).await?;
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic_arn = sns
        .create_topic()
        .name(format!("{prefix}-feedback"))
        .send()
        .await
        .map_err(|e| store_error("cannot create the feedback topic", e))?
        .topic_arn
        .unwrap_or_default();
    let feedback_queue_arn = queue_arn(&sqs, &feedback_queue_url).await?;
    // Subscribing the same queue twice returns the existing subscription.
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&feedback_queue_arn)
        .send()
        .await
        .map_err(|e| store_error("cannot subscribe the feedback queue to the topic", e))?;
    let configuration_set = format!("{prefix}-sending");
    create_configuration_set(&aws_sdk_sesv2::Client::new(sdk), &configuration_set).await?;
    let link_key_arn = create_link_key(
        &aws_sdk_secretsmanager::Client::new(sdk),
        &format!("{prefix}-link-key"),
    )
    .await?;
    Ok(Resources {
        link_key_arn,
        bucket,
        table,
        queue_url,
        dlq_url,
        topic_arn,
        feedback_queue_url,
        feedback_dlq_url,
        configuration_set,
    })
}

/// The bucket, in the SDK's region; one that exists already is fine.
async fn create_bucket(sdk: &aws_config::SdkConfig, bucket: &str) -> Result<(), StoreError> {
    let s3 = crate::s3_client(sdk);
    let mut request = s3.create_bucket().bucket(bucket);
    if let Some(region) = sdk
        .region()
        .map(|r| r.as_ref().to_owned())
        .filter(|r| r != "us-east-1")
    {
        request = request.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(error) => Err(store_error(format!("cannot create bucket {bucket}"), error)),
    }
}

/// The queue `name` and its dead-letter queue `name-dlq`, as the template makes them: the functions'
/// visibility timeout, and dead-lettering by count only past what the 72-hour schedule needs.
async fn create_queue_with_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<(String, String), StoreError> {
    let dlq_url = create_queue(sqs, &format!("{name}-dlq"), &[]).await?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive =
        format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}"#);
    let queue_url = create_queue(
        sqs,
        name,
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                VISIBILITY_TIMEOUT_SECS.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await?;
    Ok((queue_url, dlq_url))
}

async fn create_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| StoreError::permanent(format!("key schema: {e}")))
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| StoreError::permanent(format!("attribute definition: {e}")))
    };
    let mut request = dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in table_key_schema() {
        request = request.key_schema(key(&name, kind)?);
    }
    for name in key_attributes() {
        request = request.attribute_definitions(attribute(&name)?);
    }
    request = request.set_global_secondary_indexes(Some(global_secondary_indexes()));
    match request.send().await {
        // A new table holds no index key written before shards.
        Ok(_) => {
            super::dynamo::DynamoStore::new(dynamo.clone(), table)
                .set_legacy(false)
                .await?;
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(store_error(format!("cannot create table {table}"), error)),
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(|e| StoreError::permanent(format!("TTL: {e}")))?;
    match dynamo
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Already enabled on a second run.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.meta().code() == Some("ValidationException")) =>
        {
            Ok(())
        }
        Err(error) => Err(store_error(
            format!("cannot turn on TTL for {table}"),
            error,
        )),
    }
}

/// The link-signing key, made once: a second run finds the first one's.
async fn create_link_key(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<String, StoreError> {
    let key = mailroom::deliver::links::LinkKey::generate().map_err(|e| StoreError {
        what: format!("cannot generate a link key: {e}"),
        retryable: false,
        source: None,
    })?;
    match secrets
        .create_secret()
        .name(name)
        .description("Signs Mailroom's attachment and original-mail links")
        .secret_string(key)
        .send()
        .await
    {
        Ok(output) => Ok(output.arn.unwrap_or_default()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            let found = secrets
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| store_error(format!("cannot find the secret {name}"), e))?;
            Ok(found.arn.unwrap_or_default())
        }
        Err(error) => Err(store_error(
            format!("cannot create the secret {name}"),
            error,
        )),
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<String, StoreError> {
    let mut request = sqs.create_queue().queue_name(name).attributes(
        QueueAttributeName::MessageRetentionPeriod,
        RETENTION_SECS.to_string(),
    );
    for (attribute, value) in attributes {
        request = request.attributes(attribute.clone(), value);
    }
    let output = request
        .send()
        .await
        .map_err(|e| store_error(format!("cannot create queue {name}"), e))?;
    output
        .queue_url
        .ok_or_else(|| StoreError::permanent(format!("queue {name} has no URL")))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, StoreError> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| store_error(format!("cannot read the attributes of {url}"), e))?;
    output
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| StoreError::permanent(format!("queue {url} has no ARN")))
}

async fn create_configuration_set(
    ses: &aws_sdk_sesv2::Client,
    name: &str,
) -> Result<(), StoreError> {
    let options = aws_sdk_sesv2::types::DeliveryOptions::builder()
        .tls_policy(aws_sdk_sesv2::types::TlsPolicy::Require)
        .build();
    match ses
        .create_configuration_set()
        .configuration_set_name(name)
        .delivery_options(options)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // AWS says AlreadyExistsException; some emulators name it ConfigurationSetAlreadyExistsException.
        Err(error)
            if error
                .as_service_error()
                .and_then(|e| e.meta().code())
                .is_some_and(|code| code.ends_with("AlreadyExistsException")) =>
        {
            Ok(())
        }
        Err(error) => Err(store_error(
            format!("cannot create configuration set {name}"),
            error,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_quoted_for_the_shell() {
        let resources = Resources {
            bucket: "b".into(),
            table: "t".into(),
            queue_url: "http://127.0.0.1:5000/123456789012/q".into(),
            dlq_url: "d".into(),
            topic_arn: "arn:aws:sns:us-east-1:123456789012:f".into(),
            feedback_queue_url: "fq".into(),
            feedback_dlq_url: "fd".into(),
            configuration_set: "it's".into(),
            link_key_arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k".into(),
        };
        let exports = resources.exports();
        assert!(
            exports.contains("export MAILROOM_QUEUE_URL=http://127.0.0.1:5000/123456789012/q\n")
        );
        assert!(exports.contains("export MAILROOM_CONFIGURATION_SET='it'\\''s'\n"));
    }
}
