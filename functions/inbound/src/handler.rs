//! Event → use case → Lambda result. Nothing here decides about mail; it only translates.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use futures_util::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use mailroom::aws::dynamo::DynamoStore;
use mailroom::aws::s3::S3MailStore;
use mailroom::aws::secrets::secret_string;
use mailroom::aws::ses::SesSender;
use mailroom::aws::sqs::{Queues, first_seen};
use mailroom::deliver::links::LinkKey;
use mailroom::deliver::signing::WebhookSecret;
use mailroom::format::Format;
use mailroom::http::{HttpClient, TargetPolicy};
use mailroom::inbound::{ForwardSettings, Inbound, InboundConfig, LinkSettings, Outcome, Received};
use mailroom::ports::SystemClock;
use mailroom::route::{AttachmentMode, WebhookTarget};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::events::{self, Work};

/// The inbound use case on AWS.
pub type AwsInbound = Inbound<S3MailStore, DynamoStore, HttpClient, SesSender, SystemClock>;

/// What the function builds once at init.
pub struct App {
    inbound: AwsInbound,
    queues: Queues,
}

/// Why an invocation failed, as Lambda's `errorType`.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: Lambda's own retries (direct S3 trigger) will bring the event back.
    #[error("{0}")]
    Retryable(String),
    /// Will fail again.
    #[error("{0}")]
    Permanent(String),
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        let error_type = match error {
            HandlerError::Retryable(_) => "Retryable",
            HandlerError::Permanent(_) => "Permanent",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Init could not finish.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest_error::Error),
    /// The default webhook's secret is missing or wrong.
    #[error("the default webhook secret: {0}")]
    Secret(String),
}

mod reqwest_error {
    pub use mailroom::http::BuildError as Error;
}

impl App {
    /// Builds the SDK clients, the HTTP client and the use case once. The only network calls read the
    /// default webhook secret and the link key, when their ARNs are configured.
    pub async fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<App, InitError> {
        let http = HttpClient::new(
            config.webhook_timeout,
            TargetPolicy {
                allow_private: config.allow_private_targets,
            },
        )?;
        let secret_text = match (
            &config.default_webhook_secret_arn,
            &config.default_webhook_secret,
        ) {
            (Some(arn), _) => {
                let client = aws_sdk_secretsmanager_client(sdk);
                Some(
                    secret_string(&client, arn)
                        .await
                        .map_err(|e| InitError::Secret(e.to_string()))?,
                )
            }
            (None, Some(text)) => Some(text.clone()),
            (None, None) => None,
        };
        let default_webhook = match &config.default_webhook_url {
            Some(url) => Some(WebhookTarget {
                url: url.clone(),
                format: Format::Json,
                secrets: match &secret_text {
                    Some(text) => vec![
                        WebhookSecret::parse(text).map_err(|e| InitError::Secret(e.to_string()))?,
                    ],
                    None => Vec::new(),
                },
                attachments: AttachmentMode::Inline,
                disabled: None,
            }),
            None => None,
        };
        let links = match &config.link_base_url {
            None => None,
            Some(base_url) => {
                let text = match (&config.link_key_arn, &config.link_key) {
                    (Some(arn), _) => secret_string(&aws_sdk_secretsmanager_client(sdk), arn)
                        .await
                        .map_err(|e| InitError::Secret(format!("the link key: {e}")))?,
                    (None, Some(text)) => text.clone(),
                    (None, None) => {
                        return Err(InitError::Secret(
                            "MAILROOM_LINK_BASE_URL is set but neither MAILROOM_LINK_KEY_ARN nor MAILROOM_LINK_KEY"
                                .to_owned(),
                        ));
                    }
                };
                Some(LinkSettings {
                    base_url: base_url.clone(),
                    key: LinkKey::parse(&text)
                        .map_err(|e| InitError::Secret(format!("the link key: {e}")))?,
                    days: config.attachment_url_days,
                })
            }
        };
        let inbound = Inbound::new(
            S3MailStore::new(aws_sdk_s3_client(sdk)),
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone()),
            http,
            SesSender::new(
                aws_sdk_sesv2::Client::new(sdk),
                config.configuration_set.clone(),
            ),
            SystemClock,
            InboundConfig {
                retention_days: config.retention_days,
                default_webhook,
                tls_required: config.tls_required,
                domains: config.domains.clone(),
                claim_for: InboundConfig::claim_for_timeout(config.webhook_timeout),
                links,
                inline_max_bytes: config.inline_max_bytes,
                forward: ForwardSettings {
                    from: config.forward_from.clone(),
                    max_bytes: config.forward_max_bytes,
                },
            },
        );
        let queues = Queues::new(
            aws_sdk_sqs::Client::new(sdk),
            config.queue_url,
            config.dlq_url,
        );
        Ok(App { inbound, queues })
    }

    /// The use case, for tests.
    pub fn inbound(&self) -> &AwsInbound {
        &self.inbound
    }
}

fn aws_sdk_s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    // Emulators reached by name need path-style addressing; AWS accepts it too for these buckets.
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn aws_sdk_secretsmanager_client(sdk: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(sdk)
}

/// Handles one invocation: an SQS batch (SES notifications or S3 events), a direct S3 event, or S3's test
/// event.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
    let payload = event.payload;
    let source = payload
        .pointer("/Records/0/eventSource")
        .or_else(|| payload.pointer("/Records/0/EventSource"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match source.as_str() {
        "aws:sqs" => {
            let event: SqsEvent = serde_json::from_value(payload)
                .map_err(|e| HandlerError::Permanent(format!("not an SQS event: {e}")))?;
            let response = handle_sqs(app, event).await;
            serde_json::to_value(response).map_err(|e| HandlerError::Permanent(e.to_string()))
        }
        "aws:sns" => {
            let messages: Vec<String> = payload
                .get("Records")
                .and_then(Value::as_array)
                .map(|records| {
                    records
                        .iter()
                        .filter_map(|r| {
                            r.pointer("/Sns/Message")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default();
            for message in messages {
                handle_direct(app, events::read_body(&message, Utc::now())).await?;
            }
            Ok(Value::Null)
        }
        _ => handle_direct(app, events::read_value(&payload, Utc::now()))
            .await
            .map(|()| Value::Null),
    }
}

/// A direct trigger has no queue to carry a wait: a retryable failure becomes a `Retryable` error so
/// Lambda's own retries apply.
async fn handle_direct(
    app: &App,
    work: Result<Work, events::Malformed>,
) -> Result<(), HandlerError> {
    let work = work.map_err(|e| HandlerError::Permanent(format!("unreadable event: {e}")))?;
    for received in work_items(work) {
        match app.inbound.process(&received).await {
            Ok(Outcome::Done) => {}
            Ok(Outcome::RetryAfter(wait)) => {
                return Err(HandlerError::Retryable(format!(
                    "a delivery of {} is to be retried in {} s",
                    received.location.message_id(),
                    wait.as_secs()
                )));
            }
            Ok(Outcome::GaveUp) => {
                return Err(HandlerError::Permanent(format!(
                    "gave up delivering {}",
                    received.location.message_id()
                )));
            }
            Err(error) => return Err(HandlerError::Retryable(error.to_string())),
        }
    }
    Ok(())
}

fn work_items(work: Work) -> Vec<Received> {
    match work {
        Work::Mail(received) => vec![*received],
        Work::Many(all) => all,
        Work::Ignore(why) => {
            info!(why, "event acknowledged and ignored");
            Vec::new()
        }
    }
}

async fn handle_sqs(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let results = join_all(
        event
            .records
            .iter()
            .map(|record| handle_record(app, record)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    for (record, ok) in event.records.iter().zip(results) {
        if !ok {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Handles one SQS record; false when it must come back (reported in `batchItemFailures`).
async fn handle_record(app: &App, record: &SqsMessage) -> bool {
    let id = record.message_id.as_deref().unwrap_or("(no id)");
    let Some(body) = record.body.as_deref() else {
        error!(sqs_message_id = id, "SQS record without a body");
        return false;
    };
    let first_seen = first_seen(&record.attributes);
    let work = match events::read_body(body, first_seen) {
        Ok(work) => work,
        Err(malformed) => {
            // Reported failed, never dropped: after maxReceiveCount it lands in the DLQ for a look.
            error!(sqs_message_id = id, error = %malformed, "malformed SQS record");
            return false;
        }
    };
    let mut outcome = Outcome::Done;
    for received in work_items(work) {
        match app.inbound.process(&received).await {
            Ok(this) => outcome = combine(outcome, this),
            Err(error) => {
                warn!(sqs_message_id = id, error = %error, "retryable failure; the message will come back");
                return false;
            }
        }
    }
    match outcome {
        Outcome::Done => true,
        Outcome::RetryAfter(wait) => {
            app.queues
                .delay_record(
                    record.event_source_arn.as_deref(),
                    record.receipt_handle.as_deref(),
                    wait,
                )
                .await;
            false
        }
        Outcome::GaveUp => match app.queues.dead_letter(body).await {
            Ok(true) => {
                info!(
                    sqs_message_id = id,
                    "gave up after 72 hours; sent to the dead-letter queue"
                );
                true
            }
            Ok(false) => {
                warn!(
                    sqs_message_id = id,
                    "gave up; no MAILROOM_DLQ_URL, so the queue's redrive policy will move it"
                );
                false
            }
            Err(error) => {
                warn!(sqs_message_id = id, error = %error, "cannot dead-letter; the message will come back");
                false
            }
        },
    }
}

fn combine(a: Outcome, b: Outcome) -> Outcome {
    match (a, b) {
        (Outcome::RetryAfter(x), Outcome::RetryAfter(y)) => Outcome::RetryAfter(x.min(y)),
        (Outcome::RetryAfter(x), _) | (_, Outcome::RetryAfter(x)) => Outcome::RetryAfter(x),
        (Outcome::GaveUp, _) | (_, Outcome::GaveUp) => Outcome::GaveUp,
        _ => Outcome::Done,
    }
}
