//! A deployed stack, through the operator's own AWS credentials: the SDK configuration, the stack's
//! resource names from its outputs, and its table. Only in a `mailroom` built with the `aws` feature.

use std::collections::HashMap;

use crate::exit::{self, CliError};

/// The SDK configuration from the standard environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The stack's table, through the standard AWS environment.
pub async fn table_store(table: String) -> mailroom_aws::dynamo::DynamoStore {
    let sdk = sdk_config().await;
    mailroom_aws::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)
}

/// The stack's table, writing index keys over the stack's shards (its output `IndexShards`, or
/// `MAILROOM_INDEX_SHARDS`) as its functions do. Reading needs no count: listings ask the table.
pub fn dynamo_store(
    sdk: &aws_config::SdkConfig,
    table: String,
    names: &StackNames,
) -> mailroom_aws::dynamo::DynamoStore {
    let store = mailroom_aws::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
    match names.index_shards {
        Some(shards) => store.with_index_shards(shards),
        None => store,
    }
}

/// `MAILROOM_INDEX_SHARDS` as the functions read it: `None` when unset.
fn index_shards_setting(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<u32>> {
    let settings = mailroom::settings::Settings::new(lookup);
    if settings.text(INDEX_SHARDS).is_none() {
        return Ok(None);
    }
    let shards = settings
        .number(
            INDEX_SHARDS,
            u64::from(mailroom::record::DEFAULT_INDEX_SHARDS),
            u64::from(mailroom::record::MAX_INDEX_SHARDS),
        )
        .map_err(|e| CliError::new(exit::BAD_ARGUMENTS, e.to_string()))?;
    Ok(Some(shards as u32))
}

/// The variable (and, without the `MAILROOM_` prefix, the stack output) that says the stack's shards.
const INDEX_SHARDS: &str = "MAILROOM_INDEX_SHARDS";

/// The physical names of a stack's resources, as the operator commands use them. All `None`: the dev
/// store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackNames {
    /// The table of routes and records (output `Table`, or `MAILROOM_TABLE`).
    pub table: Option<String>,
    /// The bucket of stored mail (output `Bucket`, or `MAILROOM_BUCKET`).
    pub bucket: Option<String>,
    /// The inbound queue (output `QueueUrl`, or `MAILROOM_QUEUE_URL`).
    pub queue_url: Option<String>,
    /// Its dead-letter queue (output `DeadLetterQueueUrl`, or `MAILROOM_DLQ_URL`).
    pub dlq_url: Option<String>,
    /// The shards its functions spread index keys over (output `IndexShards`, or
    /// `MAILROOM_INDEX_SHARDS`).
    pub index_shards: Option<u32>,
    /// The send API's Function URL (output `SendUrl`, or `MAILROOM_SEND_URL`).
    pub send_url: Option<String>,
    /// The domains it receives and sends for (output `ReceivingDomains`, or `MAILROOM_DOMAINS`).
    pub domains: Option<Vec<String>>,
}

fn domain_list(text: Option<String>) -> Option<Vec<String>> {
    text.map(|t| {
        t.split(',')
            .map(|d| d.trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect()
    })
}

impl StackNames {
    /// `--stack NAME`: the names from the stack's outputs; without it, from the environment.
    pub async fn resolve(stack: Option<&str>) -> anyhow::Result<StackNames> {
        let Some(stack) = stack.map(str::trim).filter(|s| !s.is_empty()) else {
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            return Ok(StackNames {
                table: env("MAILROOM_TABLE"),
                bucket: env("MAILROOM_BUCKET"),
                queue_url: env("MAILROOM_QUEUE_URL"),
                dlq_url: env("MAILROOM_DLQ_URL"),
                index_shards: index_shards_setting(|name| std::env::var(name).ok())?,
                send_url: env("MAILROOM_SEND_URL"),
                domains: domain_list(env("MAILROOM_DOMAINS")),
            });
        };
        let sdk = sdk_config().await;
        let mut outputs = stack_outputs(&sdk, stack).await?;
        // A stack deployed before the sharded indexes has no such output.
        let shards = outputs.remove("IndexShards");
        let names = StackNames {
            table: outputs.remove("Table"),
            bucket: outputs.remove("Bucket"),
            queue_url: outputs.remove("QueueUrl"),
            dlq_url: outputs.remove("DeadLetterQueueUrl"),
            index_shards: index_shards_setting(|name| {
                (name == INDEX_SHARDS).then(|| shards.clone()).flatten()
            })?,
            send_url: outputs.remove("SendUrl"),
            domains: domain_list(outputs.remove("ReceivingDomains")),
        };
        if names.table.is_none() {
            return Err(crate::exit::CliError::new(
                crate::exit::NOT_FOUND,
                format!("stack {stack} has no Table output: is it a Mailroom stack?"),
            )
            .into());
        }
        Ok(names)
    }
}

/// Every output of a CloudFormation stack, by key.
pub async fn stack_outputs(
    sdk: &aws_config::SdkConfig,
    stack: &str,
) -> anyhow::Result<HashMap<String, String>> {
    Ok(describe_stack(sdk, stack).await?.0)
}

/// A stack's outputs and parameters, by key.
pub async fn describe_stack(
    sdk: &aws_config::SdkConfig,
    stack: &str,
) -> anyhow::Result<(HashMap<String, String>, HashMap<String, String>)> {
    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let output = cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            let not_found = e
                .as_service_error()
                .and_then(|s| aws_sdk_cloudformation::error::ProvideErrorMetadata::message(s))
                .is_some_and(|m| m.contains("does not exist"));
            if not_found {
                exit::CliError::new(
                    exit::NOT_FOUND,
                    format!("stack {stack} not found (check --stack and the region)"),
                )
                .into()
            } else {
                exit::from_store(mailroom_aws::store_error(
                    format!("cannot read stack {stack}"),
                    e,
                ))
            }
        })?;
    let Some(found) = output.stacks().first() else {
        return Ok(Default::default());
    };
    let outputs = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect();
    let parameters = found
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_owned(),
                p.parameter_value()?.to_owned(),
            ))
        })
        .collect();
    Ok((outputs, parameters))
}

/// The ARN of a stack's link key: the physical id of its `LinkKey` resource.
pub async fn link_key_arn(stack: &str) -> anyhow::Result<String> {
    let sdk = sdk_config().await;
    let output = aws_sdk_cloudformation::Client::new(&sdk)
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id("LinkKey")
        .send()
        .await
        .map_err(|e| {
            exit::from_store(mailroom_aws::store_error(
                format!("cannot find the LinkKey of stack {stack}"),
                e,
            ))
        })?;
    output
        .stack_resource_detail()
        .and_then(|detail| detail.physical_resource_id())
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::new(
                exit::NOT_FOUND,
                format!("stack {stack} has no LinkKey: is it a Mailroom stack?"),
            )
            .into()
        })
}
