//! Which store a command works on: AWS when `MAILROOM_TABLE` (or `--stack`) is given, otherwise the dev
//! store under `--data`.

use anyhow::Context;

/// The SDK configuration from the standard environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A current-thread runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The dev store's database under `data` (the folder `mailroom dev` uses), created when missing: the
/// folder 0700, the database 0600.
pub fn dev_store(data: &std::path::Path) -> anyhow::Result<mailroom::local::sqlite::SqliteStore> {
    mailroom::local::private::create_dir_all(data)
        .with_context(|| format!("cannot create the dev store folder {}", data.display()))?;
    mailroom::local::sqlite::SqliteStore::open(&data.join(DEV_DATABASE))
        .map_err(crate::exit::from_store)
}

/// The dev store's database file, inside `--data`.
pub const DEV_DATABASE: &str = "mailroom.db";

/// The stack's table, through the standard AWS environment.
pub async fn table_store(table: String) -> mailroom::aws::dynamo::DynamoStore {
    let sdk = sdk_config().await;
    mailroom::aws::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)
}

/// An S3 client for the stack's bucket; path-style addressing, which emulators reached by name need and AWS
/// accepts.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Which store an operator command works on: the same three options on every such command.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// A deployed stack: its table, bucket and queues are read from its outputs (otherwise from
    /// MAILROOM_TABLE, MAILROOM_BUCKET, MAILROOM_QUEUE_URL, MAILROOM_DLQ_URL).
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// The stack's DynamoDB table, instead of MAILROOM_TABLE.
    #[arg(long, global = true, value_name = "TABLE")]
    pub table: Option<String>,
    /// The dev store, used when neither a stack nor a table is given.
    #[arg(long, global = true, value_name = "DIR", default_value = ".mailroom")]
    pub data: std::path::PathBuf,
}

impl Target {
    /// The stack's names (`--stack` wins over `--table`, which wins over the environment); all `None`
    /// for the dev store.
    pub fn names(&self) -> anyhow::Result<StackNames> {
        let mut names = StackNames::resolve(self.stack.as_deref())?;
        if self.stack.is_none()
            && let Some(table) = self.table.as_ref().filter(|t| !t.trim().is_empty())
        {
            names.table = Some(table.clone());
        }
        Ok(names)
    }
}

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
}

impl StackNames {
    /// `--stack NAME`: the names from the stack's outputs; without it, from the environment.
    pub fn resolve(stack: Option<&str>) -> anyhow::Result<StackNames> {
        let Some(stack) = stack.map(str::trim).filter(|s| !s.is_empty()) else {
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            return Ok(StackNames {
                table: env("MAILROOM_TABLE"),
                bucket: env("MAILROOM_BUCKET"),
                queue_url: env("MAILROOM_QUEUE_URL"),
                dlq_url: env("MAILROOM_DLQ_URL"),
            });
        };
        runtime()?.block_on(async {
            let sdk = sdk_config().await;
            let mut outputs = crate::setup::stack_outputs(&sdk, stack).await?;
            let names = StackNames {
                table: outputs.remove("Table"),
                bucket: outputs.remove("Bucket"),
                queue_url: outputs.remove("QueueUrl"),
                dlq_url: outputs.remove("DeadLetterQueueUrl"),
            };
            if names.table.is_none() {
                return Err(crate::exit::CliError::new(
                    crate::exit::NOT_FOUND,
                    format!("stack {stack} has no Table output: is it a Mailroom stack?"),
                )
                .into());
            }
            Ok(names)
        })
    }
}
