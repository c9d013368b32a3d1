//! API keys of the send endpoint. A key is shown once, when it is made; what is kept is its id (the
//! `username` CloudMailin's client puts in the URL), a random salt and the HMAC-SHA256 of the key under that
//! salt, compared in constant time.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::route::{Redact, WebhookSecret};

/// How every key's text begins, so one found in a repository or a log is recognisable.
pub const KEY_PREFIX: &str = "mrk_";

/// Random bytes in a key.
const KEY_BYTES: usize = 32;

/// A stored key: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Its public id: the `username` of CloudMailin's client and the `{account}` of the URL.
    pub id: String,
    /// What the operator called it; records name the key that sent them by this.
    pub name: String,
    /// The salt, hex.
    pub salt: String,
    /// HMAC-SHA256 of the key keyed with the salt, hex.
    pub hash: String,
    /// The domains it may send from; empty: every domain of the stack.
    #[serde(default)]
    pub from_domains: Vec<String>,
    /// Whether its messages are tracked (opens and clicks) unless a message says otherwise.
    #[serde(default = "tracked_by_default")]
    pub tracking: bool,
    /// Where the events of its messages are POSTed (`message.delivered`, `message.opened`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_url: Option<String>,
    /// The secret those POSTs are signed with.
    #[serde(default, with = "crate::route::secret_texts")]
    pub events_secrets: Vec<WebhookSecret>,
    /// Fields its messages' records leave out (only `subject`: recipients and sender are what bounces,
    /// complaints and erasure are matched by).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<Redact>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked: it authenticates nothing from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

fn tracked_by_default() -> bool {
    true
}

/// A key just made: the stored part and the text shown once.
#[derive(Debug)]
pub struct NewKey {
    /// What is stored.
    pub stored: ApiKey,
    /// The key, `mrk_…`: shown once, never stored.
    pub secret: String,
}

/// The OS could not give random bytes.
#[derive(Debug, thiserror::Error)]
#[error("no random bytes from the operating system: {0}")]
pub struct NoRandom(#[from] getrandom::Error);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(len: usize) -> Result<String, NoRandom> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

// HMAC takes a key of any length: `None` never happens, and handling it keeps this panic-free.
fn mac(salt: &str) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(salt.as_bytes()).ok()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl ApiKey {
    /// Makes a key named `name` that may send from `from_domains` (lower-cased; empty: any of the stack's).
    pub fn create(
        name: &str,
        from_domains: &[String],
        now: DateTime<Utc>,
    ) -> Result<NewKey, NoRandom> {
        let id = format!("k{}", random_hex(8)?);
        let salt = random_hex(16)?;
        let mut key = vec![0u8; KEY_BYTES];
        getrandom::fill(&mut key)?;
        let secret = format!("{KEY_PREFIX}{}", hex(&key));
        let mut hasher = mac(&salt).ok_or(NoRandom(getrandom::Error::UNEXPECTED))?;
        hasher.update(secret.as_bytes());
        let hash = hex(&hasher.finalize().into_bytes());
        let stored = ApiKey {
            id,
            name: name.to_owned(),
            salt,
            hash,
            from_domains: from_domains
                .iter()
                .map(|d| d.trim().to_ascii_lowercase())
                .collect(),
            tracking: true,
            events_url: None,
            events_secrets: Vec::new(),
            redact: Vec::new(),
            created_at: now,
            revoked_at: None,
        };
        Ok(NewKey { stored, secret })
    }

    /// Whether `presented` is this key, and the key is not revoked. The comparison of the hashes takes
    /// the same time wherever they differ.
    pub fn accepts(&self, presented: &str) -> bool {
        let Some(expected) = unhex(&self.hash) else {
            return false;
        };
        let Some(mut hasher) = mac(&self.salt) else {
            return false;
        };
        hasher.update(presented.trim().as_bytes());
        hasher.verify_slice(&expected).is_ok() && self.revoked_at.is_none()
    }

    /// Whether it may send from `domain`, given the stack's own domains (empty: any, as in `mailroom dev`).
    /// Domains match exactly, as the send function's IAM policy (`ses:FromAddress` `*@<domain>`) does.
    pub fn may_send_from(&self, domain: &str, stack_domains: &[String]) -> bool {
        let domain = domain.to_ascii_lowercase();
        let covers = |list: &[String]| list.iter().any(|d| d.trim().eq_ignore_ascii_case(&domain));
        let by_key = self.from_domains.is_empty() || covers(&self.from_domains);
        let by_stack = stack_domains.is_empty() || covers(stack_domains);
        by_key && by_stack
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_only_as_made_and_only_until_revoked() {
        let now = Utc::now();
        let made = ApiKey::create("app", &["Shop.example".to_owned()], now).unwrap();
        assert!(made.secret.starts_with(KEY_PREFIX));
        assert!(!made.stored.hash.contains(&made.secret[4..]));
        assert!(made.stored.accepts(&made.secret));
        assert!(!made.stored.accepts(&format!("{}0", made.secret)));
        assert!(!made.stored.accepts(""));
        let other = ApiKey::create("app", &[], now).unwrap();
        assert!(!made.stored.accepts(&other.secret));
        assert_ne!(made.stored.salt, other.stored.salt);
        let mut revoked = made.stored.clone();
        revoked.revoked_at = Some(now);
        assert!(!revoked.accepts(&made.secret));
    }

    #[test]
    fn a_key_sends_only_from_its_domains_within_the_stacks() {
        let key = ApiKey::create("app", &["shop.example".to_owned()], Utc::now())
            .unwrap()
            .stored;
        let stack = ["shop.example".to_owned(), "other.example".to_owned()];
        assert!(key.may_send_from("shop.example", &stack));
        assert!(!key.may_send_from("mail.shop.example", &stack));
        assert!(!key.may_send_from("other.example", &stack));
        assert!(!key.may_send_from("badshop.example", &stack));
        let any = ApiKey::create("app", &[], Utc::now()).unwrap().stored;
        assert!(any.may_send_from("other.example", &stack));
        assert!(!any.may_send_from("elsewhere.example", &stack));
        assert!(any.may_send_from("elsewhere.example", &[]));
    }
}
