//! What the send function builds once at init: the use case over DynamoDB, S3 and SES v2.

use std::sync::Arc;

use mailroom::ports::{Clock, SystemClock};
use mailroom::usecases::send::{SendApi, SendConfig};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::s3::S3MailStore;
use mailroom_aws::ses::SesSender;

use crate::config::Config;

/// The send use case on AWS.
pub type AwsSendApi = SendApi<DynamoStore, S3MailStore, SesSender, Arc<dyn Clock>>;

/// What the function builds once at init.
pub struct App {
    pub(crate) api: AwsSendApi,
}

impl App {
    /// Builds the SDK clients and the use case once; makes no network call.
    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> App {
        App::with_clock(config, sdk, Arc::new(SystemClock))
    }

    /// Like [`App::new`], telling the time by `clock`.
    pub fn with_clock(config: &Config, sdk: &aws_config::SdkConfig, clock: Arc<dyn Clock>) -> App {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone())
            .with_index_shards(config.index_shards);
        let sender = SesSender::new(
            aws_sdk_sesv2::Client::new(sdk),
            config.configuration_set.clone(),
        )
        .with_tracking(config.tracked.clone());
        let api = SendApi::new(
            store,
            S3MailStore::new(mailroom_aws::s3_client(sdk)),
            sender,
            clock,
            SendConfig {
                bucket: config.bucket.clone(),
                domains: config.domains.clone(),
                retention_days: config.retention_days,
            },
        );
        App { api }
    }

    /// Wraps a use case built elsewhere (tests give it an SES client of their own).
    pub fn from_api(api: AwsSendApi) -> App {
        App { api }
    }

    /// The use case, for tests.
    pub fn api(&self) -> &AwsSendApi {
        &self.api
    }
}
