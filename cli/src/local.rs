//! What the dev store's users share (the dev server, the console, `redrive`, `messages`, `data`): the name
//! of the local "bucket", the address forwards are sent from, and the entry of the retry queue.

use chrono::{DateTime, Utc};
use mailroom::mail::envelope::KnownEnvelope;
use mailroom::ports::MailLocation;
use mailroom::usecases::inbound::Received;
use serde::{Deserialize, Serialize};

/// The local "bucket" name in records.
pub const LOCAL_BUCKET: &str = "local";

/// Forwards are sent from this address when neither the route nor `mailroom.toml` names one: nothing
/// leaves the machine, so no identity has to be verified.
pub const DEV_FORWARD_FROM: &str = "forward@mailroom.localhost";

/// A message waiting for its next attempt, as the store keeps it across restarts.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    key: String,
    received_at: DateTime<Utc>,
    first_seen: DateTime<Utc>,
    recipients: Vec<String>,
    from: String,
    helo: String,
    remote_ip: String,
    #[serde(default)]
    tls: Option<bool>,
}

impl Pending {
    /// The queue's entry for a message.
    pub(crate) fn of(received: &Received) -> Pending {
        Pending {
            key: received.location.key.clone(),
            received_at: received.received_at,
            first_seen: received.first_seen,
            recipients: received.known.recipients.clone().unwrap_or_default(),
            from: received.known.from.clone().unwrap_or_default(),
            helo: received.known.helo_domain.clone().unwrap_or_default(),
            remote_ip: received.known.remote_ip.clone().unwrap_or_default(),
            tls: received.known.tls,
        }
    }

    /// The message the entry stands for.
    pub(crate) fn received(self) -> Received {
        Received {
            location: MailLocation {
                bucket: LOCAL_BUCKET.to_owned(),
                key: self.key,
            },
            received_at: self.received_at,
            first_seen: self.first_seen,
            known: KnownEnvelope {
                recipients: Some(self.recipients),
                from: Some(self.from),
                helo_domain: Some(self.helo),
                remote_ip: Some(self.remote_ip),
                tls: self.tls,
                ..KnownEnvelope::default()
            },
            size: None,
        }
    }
}
