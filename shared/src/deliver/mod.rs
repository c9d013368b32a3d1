//! Delivery to the user's application: what a webhook request carries, and how it is signed.

pub mod answer;
pub mod links;
pub mod policy;
pub mod signing;

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

use crate::route::WebhookSecret;

/// The `User-Agent` of every request Mailroom sends, from the Lambda, `mailroom dev` and `mailroom post`.
pub const USER_AGENT: &str = concat!("Mailroom/", env!("CARGO_PKG_VERSION"));

/// Writes a request body, as often as asked: once to sign and measure it, then once for every send. A
/// payload of 40 MB is then never held whole in memory.
pub trait BodyWriter: Send + Sync {
    /// Writes the whole body to `out`, the same bytes every time.
    fn write_body(&self, out: &mut dyn io::Write) -> io::Result<()>;
}

/// What a request carries.
#[derive(Clone)]
pub enum RequestBody {
    /// Bytes in memory (small bodies, and callers that have them anyway).
    Bytes(Bytes),
    /// Written afresh for each send by `writer`; `len` bytes long.
    Streamed {
        /// Writes the body.
        writer: Arc<dyn BodyWriter>,
        /// Its length, for `Content-Length`.
        len: u64,
    },
}

impl RequestBody {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            RequestBody::Bytes(bytes) => bytes.len() as u64,
            RequestBody::Streamed { len, .. } => *len,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body in memory (for tests and tools; the sender streams it).
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        match self {
            RequestBody::Bytes(bytes) => Ok(bytes.clone()),
            RequestBody::Streamed { writer, len } => {
                let mut out = Vec::with_capacity(usize::try_from(*len).unwrap_or(0));
                writer.write_body(&mut out)?;
                Ok(Bytes::from(out))
            }
        }
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestBody::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            RequestBody::Streamed { len, .. } => write!(f, "Streamed({len} bytes)"),
        }
    }
}

/// A signed webhook POST, ready for any HTTP client.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// The `webhook-id`: the same on every attempt of one delivery.
    pub id: String,
    /// The `webhook-timestamp`, unix seconds of this attempt.
    pub timestamp: i64,
    /// The body's `Content-Type`.
    pub content_type: String,
    /// The `webhook-signature`, absent when the target has no secret.
    pub signature: Option<String>,
    /// The body.
    pub body: RequestBody,
}

impl WebhookRequest {
    /// Signs `body` with every secret (one, or two while a route rotates its secret).
    pub fn new(
        id: impl Into<String>,
        timestamp: i64,
        content_type: impl Into<String>,
        body: impl Into<Bytes>,
        secrets: &[WebhookSecret],
    ) -> WebhookRequest {
        let id = id.into();
        let body = body.into();
        let signature =
            (!secrets.is_empty()).then(|| signing::sign(secrets, &id, timestamp, &body));
        WebhookRequest {
            id,
            timestamp,
            content_type: content_type.into(),
            signature,
            body: RequestBody::Bytes(body),
        }
    }

    /// A request whose body `writer` writes on demand: one pass now signs and measures it, each send
    /// writes it again.
    pub fn streamed(
        id: impl Into<String>,
        timestamp: i64,
        content_type: impl Into<String>,
        writer: Arc<dyn BodyWriter>,
        secrets: &[WebhookSecret],
    ) -> io::Result<WebhookRequest> {
        let id = id.into();
        let mut signer = signing::Signer::new(secrets, &id, timestamp);
        writer.write_body(&mut signer)?;
        let len = signer.len();
        let signature = (!secrets.is_empty()).then(|| signer.finish());
        Ok(WebhookRequest {
            id,
            timestamp,
            content_type: content_type.into(),
            signature,
            body: RequestBody::Streamed { writer, len },
        })
    }

    /// The request headers, `User-Agent` included.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("content-type", self.content_type.clone()),
            ("user-agent", USER_AGENT.to_owned()),
            (signing::HEADER_ID, self.id.clone()),
            (signing::HEADER_TIMESTAMP, self.timestamp.to_string()),
        ];
        if let Some(signature) = &self.signature {
            headers.push((signing::HEADER_SIGNATURE, signature.clone()));
        }
        headers
    }
}

/// A `webhook-id` that is the same for every attempt to deliver one message to one target, and differs
/// between messages and targets.
pub fn webhook_id(message_id: &str, target: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(message_id.as_bytes())
        .chain_update([0u8])
        .chain_update(target.as_bytes())
        .finalize();
    let mut id = String::from("msg_");
    for byte in digest.iter().take(16) {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// A fresh random `webhook-id`, for a one-off send such as `mailroom post`.
pub fn random_webhook_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    webhook_id(&format!("{bytes:?}"), &nanos.to_string())
}
