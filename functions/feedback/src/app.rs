//! What the feedback function builds once at init, and how one notification becomes a verdict.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsMessage;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use mailroom::budget::Deadline;
use mailroom::feedback::notification::{Envelope, read_envelope};
use mailroom::ports::{Clock, SystemClock};
use mailroom::usecases::feedback::{
    Arrival, FeedbackConfig, FeedbackError, Handled, Notifications,
};
use mailroom::usecases::inbound::Outcome;
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::feedback::SesSuppressionMirror;
use mailroom_aws::sqs::{Queues, first_seen_of, receive_count};
use mailroom_http::{BuildError, HttpClient, TargetPolicy};
use mailroom_lambda::{BatchWork, Verdict};
use tracing::{error, info, warn};

use crate::config::Config;

/// The feedback use case on AWS.
pub type AwsNotifications =
    Notifications<DynamoStore, HttpClient, SesSuppressionMirror, Arc<dyn Clock>>;

/// What the function builds once at init.
pub struct App {
    notifications: AwsNotifications,
    pub(crate) queues: Queues,
}

/// One notification as it arrived, readable or not.
pub struct Notice {
    /// The SNS envelope around SES's JSON.
    pub envelope: Envelope,
    /// Which delivery of it this is (1 for the first).
    pub attempt: u32,
    /// When it first arrived.
    pub first_seen: DateTime<Utc>,
}

impl App {
    /// Builds the SDK clients and the use case once; makes no network call.
    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Result<App, BuildError> {
        App::with_clock(config, sdk, Arc::new(SystemClock))
    }

    /// Like [`App::new`], telling the time by `clock` (tests move it on to see days pass).
    pub fn with_clock(
        config: &Config,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<App, BuildError> {
        let policy = TargetPolicy {
            allow_private: config.allow_private_targets,
            allow_http: config.allow_http_targets,
        };
        let mirror = config
            .mirror_ses_suppression
            .then(|| SesSuppressionMirror::new(aws_sdk_sesv2::Client::new(sdk)));
        let notifications = Notifications::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone())
                .with_index_shards(config.index_shards),
            HttpClient::new(config.webhook_timeout, policy)?,
            mirror,
            clock,
            FeedbackConfig {
                soft_bounce_limit: config.soft_bounce_limit,
                attempt_limit: config.webhook_timeout,
                retention_days: config.retention_days,
            },
        );
        let queues = Queues::new(
            aws_sdk_sqs::Client::new(sdk),
            config.queue_url.clone(),
            config.dlq_url.clone(),
        );
        Ok(App {
            notifications,
            queues,
        })
    }

    /// The use case, for tests.
    pub fn notifications(&self) -> &AwsNotifications {
        &self.notifications
    }

    /// Hands one notice to the use case.
    pub async fn apply(&self, notice: &Notice, deadline: Deadline) -> Verdict {
        let (message, sns_message_id) = match &notice.envelope {
            Envelope::Notification {
                message,
                sns_message_id,
            } => (message, sns_message_id.as_deref()),
            Envelope::Ignore {
                why,
                sns_message_id,
            } => {
                // Known and harmless: SNS's subscription confirmations and the like.
                info!(
                    sns_message_id = sns_message_id.as_deref().unwrap_or("(none)"),
                    why, "acknowledged"
                );
                return Verdict::Outcome(Outcome::Done);
            }
        };
        let arrival = Arrival {
            message,
            sns_message_id,
            attempt: notice.attempt,
            first_seen: notice.first_seen,
            deadline,
        };
        let logged_id = sns_message_id.unwrap_or("(none)");
        match self.notifications.handle(&arrival).await {
            Ok(Handled::Done) => Verdict::Outcome(Outcome::Done),
            Ok(Handled::Ignored(why)) => {
                info!(sns_message_id = logged_id, why, "acknowledged");
                Verdict::Outcome(Outcome::Done)
            }
            Ok(Handled::RetryAfter(wait)) => Verdict::Outcome(Outcome::RetryAfter(wait)),
            Ok(Handled::HandBack) => Verdict::Outcome(Outcome::HandBack),
            Ok(Handled::GaveUp) => Verdict::Outcome(Outcome::GaveUp),
            // A lost bounce is an address never suppressed: never dropped, kept in the dead-letter queue
            // for a look (its alarm fires).
            Err(FeedbackError::Unreadable(unreadable)) => {
                error!(sns_message_id = logged_id, error = %unreadable, "unreadable notification");
                Verdict::Permanent(format!("unreadable notification: {unreadable}"))
            }
            Err(FeedbackError::Store(store)) if !store.retryable => {
                Verdict::Permanent(format!("a store refused for good: {store}"))
            }
            Err(FeedbackError::Store(store)) => {
                warn!(sns_message_id = logged_id, error = %store, "store failure");
                Verdict::Passing(store.to_string())
            }
        }
    }
}

impl BatchWork for App {
    type Item = Notice;

    fn read(&self, record: &SqsMessage, body: &str) -> Result<Vec<Notice>, String> {
        let envelope = read_envelope(body).map_err(|e| format!("unreadable notification: {e}"))?;
        Ok(vec![Notice {
            envelope,
            attempt: receive_count(record),
            first_seen: first_seen_of(record),
        }])
    }

    async fn process(&self, items: &[Notice], deadline: Deadline) -> Vec<Verdict> {
        join_all(items.iter().map(|notice| self.apply(notice, deadline))).await
    }
}
