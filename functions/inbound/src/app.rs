//! What the inbound function builds once at init: the SDK clients, the HTTP client, the secrets, and the
//! use case over them.

use std::sync::Arc;

use mailroom::budget::MemoryBudget;
use mailroom::deliver::links::LinkKeys;
use mailroom::format::Format;
use mailroom::ports::{Clock, SystemClock};
use mailroom::route::{AttachmentMode, WebhookSecret, WebhookTarget};
use mailroom::usecases::inbound::{ForwardSettings, Inbound, InboundConfig, LinkSettings};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::metrics;
use mailroom_aws::s3::S3MailStore;
use mailroom_aws::ses::SesSender;
use mailroom_aws::sqs::Queues;
use mailroom_http::{HttpClient, TargetPolicy};
use mailroom_lambda::secrets::SecretSource;
use tracing::warn;

use crate::config::Config;

/// The inbound use case on AWS.
pub type AwsInbound = Inbound<S3MailStore, DynamoStore, HttpClient, SesSender, Arc<dyn Clock>>;

/// What the function builds once at init.
pub struct App {
    pub(crate) inbound: AwsInbound,
    pub(crate) queues: Queues,
    pub(crate) memory: MemoryBudget,
}

/// Init could not finish.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] mailroom_http::BuildError),
    /// The default webhook's secret or the link key is missing or wrong.
    #[error("{0}")]
    Secret(String),
}

impl App {
    /// Builds the SDK clients, the HTTP client and the use case once. The only network calls read the
    /// default webhook secret and the link key, when their ARNs are configured.
    pub async fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<App, InitError> {
        App::with_clock(config, sdk, Arc::new(SystemClock)).await
    }

    /// Like [`App::new`], telling the time by `clock` (tests move it on to see days pass).
    pub async fn with_clock(
        config: Config,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<App, InitError> {
        let policy = TargetPolicy {
            allow_private: config.allow_private_targets,
            allow_http: config.allow_http_targets,
        };
        let http = HttpClient::new(config.webhook_timeout, policy)?;
        let inbound_config = InboundConfig {
            retention_days: config.retention_days,
            default_webhook: default_webhook(&config, sdk).await?,
            tls_required: config.tls_required,
            domains: config.domains.clone(),
            claim_for: InboundConfig::claim_for_timeout(config.webhook_timeout),
            attempt_limit: config.webhook_timeout,
            links: link_settings(&config, sdk).await?,
            inline_max_bytes: config.inline_max_bytes,
            forward: ForwardSettings {
                from: config.forward_from.clone(),
                max_bytes: config.forward_max_bytes,
            },
        };
        let inbound = Inbound::new(
            S3MailStore::new(mailroom_aws::s3_client(sdk)),
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone())
                .with_index_shards(config.index_shards),
            http,
            SesSender::new(
                aws_sdk_sesv2::Client::new(sdk),
                config.configuration_set.clone(),
            ),
            clock,
            inbound_config,
        )
        .with_observer(Box::new(metrics::count_failed_deliveries));
        Ok(App {
            inbound,
            queues: Queues::new(
                aws_sdk_sqs::Client::new(sdk),
                config.queue_url,
                config.dlq_url,
            ),
            memory: config
                .memory_mb
                .map_or(MemoryBudget::unlimited(), MemoryBudget::for_function_memory),
        })
    }

    /// The use case, for tests.
    pub fn inbound(&self) -> &AwsInbound {
        &self.inbound
    }
}

/// The catch-all target (`MAILROOM_DEFAULT_WEBHOOK_URL`) with its secret, when configured.
async fn default_webhook(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<Option<WebhookTarget>, InitError> {
    let Some(url) = &config.default_webhook_url else {
        return Ok(None);
    };
    let source = SecretSource {
        arn: config.default_webhook_secret_arn.as_deref(),
        text: config.default_webhook_secret.as_deref(),
    };
    let unusable = |e: String| InitError::Secret(format!("the default webhook secret: {e}"));
    let secrets = match source
        .read(sdk)
        .await
        .map_err(|e| unusable(e.to_string()))?
    {
        Some(text) => vec![WebhookSecret::parse(&text).map_err(|e| unusable(e.to_string()))?],
        None => {
            warn!(
                "the catch-all webhook (MAILROOM_DEFAULT_WEBHOOK_URL) has no secret: its posts are not signed, \
                 so the receiver cannot tell them from forgeries; give the stack a WebhookSecret"
            );
            Vec::new()
        }
    };
    Ok(Some(WebhookTarget {
        url: url.clone(),
        format: Format::Json,
        secrets,
        attachments: AttachmentMode::Inline,
        disabled: None,
    }))
}

/// Where links to stored attachments point and the key they are signed with, when configured.
async fn link_settings(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<Option<LinkSettings>, InitError> {
    let Some(base_url) = &config.link_base_url else {
        return Ok(None);
    };
    let source = SecretSource {
        arn: config.link_key_arn.as_deref(),
        text: config.link_key.as_deref(),
    };
    let unusable = |e: String| InitError::Secret(format!("the link key: {e}"));
    let Some(text) = source
        .read(sdk)
        .await
        .map_err(|e| unusable(e.to_string()))?
    else {
        return Err(InitError::Secret(
            "MAILROOM_LINK_BASE_URL is set but neither MAILROOM_LINK_KEY_ARN nor MAILROOM_LINK_KEY"
                .to_owned(),
        ));
    };
    // `MAILROOM_LINK_KEY` may name the previous key after the current one; links are signed with the
    // current.
    let keys = LinkKeys::parse(&text).map_err(|e| unusable(e.to_string()))?;
    Ok(Some(LinkSettings {
        base_url: base_url.clone(),
        key: keys.current().clone(),
        days: config.attachment_url_days,
    }))
}
