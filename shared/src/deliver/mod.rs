//! Delivery to the user's application: what a webhook request carries, and how it is signed.

pub mod links;
pub mod policy;
pub mod signing;

use signing::WebhookSecret;

/// The `User-Agent` of every request Mailroom sends, from the Lambda, `mailroom dev` and `mailroom post`.
pub const USER_AGENT: &str = concat!("Mailroom/", env!("CARGO_PKG_VERSION"));

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
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// Signs `body` with every secret (one, or two while a route rotates its secret).
    pub fn new(
        id: impl Into<String>,
        timestamp: i64,
        content_type: impl Into<String>,
        body: Vec<u8>,
        secrets: &[WebhookSecret],
    ) -> WebhookRequest {
        let id = id.into();
        let signature =
            (!secrets.is_empty()).then(|| signing::sign(secrets, &id, timestamp, &body));
        WebhookRequest {
            id,
            timestamp,
            content_type: content_type.into(),
            signature,
            body,
        }
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
