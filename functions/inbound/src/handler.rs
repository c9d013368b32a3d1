//! Event → use case → Lambda result. Nothing here decides about mail; it only translates.

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent};
use mailroom::aws::dynamo::DynamoStore;
use mailroom::aws::metrics;
use mailroom::aws::s3::S3MailStore;
use mailroom::aws::secrets::secret_string;
use mailroom::aws::ses::SesSender;
use mailroom::aws::sqs::{Queues, Settlement, first_seen_of};
use mailroom::budget::{Deadline, MemoryBudget};
use mailroom::deliver::links::LinkKeys;
use mailroom::deliver::signing::WebhookSecret;
use mailroom::format::Format;
use mailroom::http::{HttpClient, TargetPolicy};
use mailroom::inbound::{
    ForwardSettings, Inbound, InboundConfig, LinkSettings, Outcome, Received, Retryable,
};
use mailroom::ports::{Clock, SystemClock};
use mailroom::route::{AttachmentMode, WebhookTarget};
use serde_json::Value;
use tracing::{info, warn};

use crate::config::Config;
use crate::events::{self, Work};

/// The inbound use case on AWS.
pub type AwsInbound = Inbound<S3MailStore, DynamoStore, HttpClient, SesSender, Arc<dyn Clock>>;

/// What the function builds once at init.
pub struct App {
    inbound: AwsInbound,
    queues: Queues,
    memory: MemoryBudget,
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
        App::with_clock(config, sdk, Arc::new(SystemClock)).await
    }

    /// Like [`App::new`], telling the time by `clock` (tests move it on to see days pass).
    pub async fn with_clock(
        config: Config,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<App, InitError> {
        let http = HttpClient::new(
            config.webhook_timeout,
            TargetPolicy {
                allow_private: config.allow_private_targets,
                allow_http: config.allow_http_targets,
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
        if default_webhook
            .as_ref()
            .is_some_and(|webhook| webhook.secrets.is_empty())
        {
            warn!(
                "the catch-all webhook (MAILROOM_DEFAULT_WEBHOOK_URL) has no secret: its posts are not signed, \
                 so the receiver cannot tell them from forgeries; give the stack a WebhookSecret"
            );
        }
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
                    // `MAILROOM_LINK_KEY` may name the previous key after the current one; links are
                    // signed with the current.
                    key: LinkKeys::parse(&text)
                        .map_err(|e| InitError::Secret(format!("the link key: {e}")))?
                        .current()
                        .clone(),
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
            clock,
            InboundConfig {
                retention_days: config.retention_days,
                default_webhook,
                tls_required: config.tls_required,
                domains: config.domains.clone(),
                claim_for: InboundConfig::claim_for_timeout(config.webhook_timeout),
                attempt_limit: config.webhook_timeout,
                links,
                inline_max_bytes: config.inline_max_bytes,
                forward: ForwardSettings {
                    from: config.forward_from.clone(),
                    max_bytes: config.forward_max_bytes,
                },
            },
        )
        .with_observer(Box::new(metrics::count_failed_deliveries));
        let queues = Queues::new(
            aws_sdk_sqs::Client::new(sdk),
            config.queue_url,
            config.dlq_url,
        );
        let memory = config
            .memory_mb
            .map_or(MemoryBudget::unlimited(), MemoryBudget::for_function_memory);
        Ok(App {
            inbound,
            queues,
            memory,
        })
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
    let received = Instant::now();
    let deadline = Deadline::from_unix_millis(event.context.deadline);
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
            let response = handle_sqs(app, event, deadline, received).await;
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
                handle_direct(app, events::read_body(&message, Utc::now()), deadline).await?;
            }
            Ok(Value::Null)
        }
        _ => handle_direct(app, events::read_value(&payload, Utc::now()), deadline)
            .await
            .map(|()| Value::Null),
    }
}

/// A direct trigger has no queue to carry a wait: a retryable failure becomes a `Retryable` error so
/// Lambda's own retries apply.
async fn handle_direct(
    app: &App,
    work: Result<Work, events::Malformed>,
    deadline: Deadline,
) -> Result<(), HandlerError> {
    let work = work.map_err(|e| HandlerError::Permanent(format!("unreadable event: {e}")))?;
    for received in work_items(work) {
        match app.inbound.process_within(&received, deadline).await {
            Ok(Outcome::Done) => {}
            Ok(Outcome::RetryAfter(wait)) => {
                return Err(HandlerError::Retryable(format!(
                    "a delivery of {} is to be retried in {} s",
                    received.location.message_id(),
                    wait.as_secs()
                )));
            }
            Ok(Outcome::HandBack) => {
                return Err(HandlerError::Retryable(format!(
                    "no time left to deliver {}",
                    received.location.message_id()
                )));
            }
            Ok(Outcome::GaveUp) => {
                return Err(HandlerError::Permanent(format!(
                    "gave up delivering {}",
                    received.location.message_id()
                )));
            }
            Err(Retryable(error)) if !error.retryable => {
                return Err(HandlerError::Permanent(error.to_string()));
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

/// One SQS batch: every record read, the messages processed together within the invocation's memory and
/// time, and each record settled (acknowledged, hidden for its wait, handed back, or dead-lettered).
async fn handle_sqs(
    app: &App,
    event: SqsEvent,
    deadline: Deadline,
    received: Instant,
) -> SqsBatchResponse {
    let mut settlements: Vec<Option<Settlement>> = vec![None; event.records.len()];
    // (record index, message) for every message the records announce.
    let mut messages: Vec<(usize, Received)> = Vec::new();
    for (index, record) in event.records.iter().enumerate() {
        let id = record.message_id.as_deref().unwrap_or("(no id)");
        let Some(body) = record.body.as_deref() else {
            settlements[index] = Some(Settlement::DeadLetter(
                "an SQS record without a body".to_owned(),
            ));
            continue;
        };
        match events::read_body(body, first_seen_of(record)) {
            Ok(work) => messages.extend(work_items(work).into_iter().map(|m| (index, m))),
            Err(malformed) => {
                // It will never read better: to the dead-letter queue (and its alarm) at once.
                settlements[index] = Some(Settlement::DeadLetter(format!(
                    "unreadable SQS record {id}: {malformed}"
                )));
            }
        }
    }
    let batch: Vec<Received> = messages.iter().map(|(_, m)| m.clone()).collect();
    let results = app
        .inbound
        .process_batch(&batch, deadline, app.memory)
        .await;
    // A record may announce several messages: the most urgent of their results decides for it.
    let mut folded: Vec<Option<Folded>> = vec![None; event.records.len()];
    for ((index, message), result) in messages.iter().zip(results) {
        let id = message.location.message_id();
        let this = match result {
            Ok(outcome) => Folded::Outcome(outcome),
            // Trying again cannot help (a refused write, a missing permission): straight to the dead-letter
            // queue, where the alarm calls for a look and `mailroom redrive` brings it back.
            Err(Retryable(error)) if !error.retryable => {
                Folded::Permanent(format!("{id}: {error}"))
            }
            Err(error) => Folded::Passing(format!("{id}: {error}")),
        };
        if let Some(slot) = folded.get_mut(*index) {
            *slot = Some(match slot.take() {
                None => this,
                Some(earlier) => earlier.fold(this),
            });
        }
    }
    let settlements = settlements
        .into_iter()
        .zip(folded)
        .map(|(settled, folded)| match (settled, folded) {
            (Some(settled), _) => settled,
            (None, None) => Settlement::Done,
            (None, Some(folded)) => folded.settlement(),
        })
        .collect();
    app.queues
        .settle(&event.records, settlements, received)
        .await
}

/// What the messages of one record came to.
#[derive(Debug, Clone)]
enum Folded {
    Outcome(Outcome),
    /// A failure that may pass.
    Passing(String),
    /// A failure that will not.
    Permanent(String),
}

impl Folded {
    fn fold(self, other: Folded) -> Folded {
        match (self, other) {
            (Folded::Permanent(why), _) | (_, Folded::Permanent(why)) => Folded::Permanent(why),
            (Folded::Passing(why), _) | (_, Folded::Passing(why)) => Folded::Passing(why),
            (Folded::Outcome(a), Folded::Outcome(b)) => Folded::Outcome(a.combine(b)),
        }
    }

    fn settlement(self) -> Settlement {
        match self {
            Folded::Outcome(Outcome::Done) => Settlement::Done,
            Folded::Outcome(Outcome::RetryAfter(wait)) => Settlement::Later(wait),
            Folded::Outcome(Outcome::HandBack) => Settlement::HandBack,
            Folded::Outcome(Outcome::GaveUp) => {
                Settlement::DeadLetter("gave up after 72 hours; recorded failed".to_owned())
            }
            Folded::Passing(why) => Settlement::Fail(why),
            Folded::Permanent(why) => {
                warn!(error = %why, "a store refused for good");
                Settlement::DeadLetter(why)
            }
        }
    }
}
