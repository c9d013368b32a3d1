//! Links to stored objects (attachments, the original message) that stay valid for days. A presigned S3
//! URL made inside Lambda dies with the role's temporary credentials, so a link points at Mailroom's own
//! link endpoint instead, with a token that names the object and its expiry and is signed with a key of
//! ours. The endpoint checks the token and only then presigns a GET valid for minutes.
//!
//! Token: `<object key, base64url>.<expiry, unix seconds>.<HMAC-SHA256 over both, base64url>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefixes a link may reach: stored attachments and stored originals, nothing else in the bucket.
pub const LINKABLE_PREFIXES: [&str; 2] = ["attachments/", "inbound/"];

/// Fewest key bytes accepted.
pub const MIN_KEY_BYTES: usize = 32;

/// Longest object key a token carries (S3's limit is 1,024 bytes).
const MAX_OBJECT_KEY: usize = 1024;

/// The key links are signed with.
#[derive(Clone)]
pub struct LinkKey {
    // Keyed once; each token clones it.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(…)")
    }
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64.
    #[error("the link key is not base64")]
    NotBase64,
    /// Too short to resist guessing.
    #[error("the link key has {0} bytes; it needs at least {MIN_KEY_BYTES}")]
    TooShort(usize),
    /// Refused by HMAC.
    #[error("the link key cannot key HMAC-SHA256")]
    Unusable,
}

impl LinkKey {
    /// Reads a key stored as base64 (standard alphabet, as `mailroom setup emulator` and the stack make it).
    pub fn parse(text: &str) -> Result<LinkKey, KeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::NotBase64)?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(&bytes).map_err(|_| KeyError::Unusable)?;
        Ok(LinkKey { mac })
    }

    /// A fresh random key, as base64 text.
    pub fn generate() -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; MIN_KEY_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    fn mac(&self, encoded_key: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(encoded_key.as_bytes());
        mac.update(b".");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The token of a link to `object_key` valid until `expires_at`.
    pub fn token(&self, object_key: &str, expires_at: DateTime<Utc>) -> String {
        let encoded_key = URL_SAFE_NO_PAD.encode(object_key.as_bytes());
        let expires = expires_at.timestamp();
        let signature =
            URL_SAFE_NO_PAD.encode(self.mac(&encoded_key, expires).finalize().into_bytes());
        format!("{encoded_key}.{expires}.{signature}")
    }

    /// The object key a token names, if it is ours, unexpired, and names a linkable object. Says nothing
    /// about why not: the endpoint answers every refusal the same way.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<String> {
        let mut parts = token.split('.');
        let (encoded_key, expires, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || encoded_key.len() > MAX_OBJECT_KEY * 4 / 3 + 4 {
            return None;
        }
        let expires: i64 = expires.parse().ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // Checked before anything else is believed, in constant time.
        self.mac(encoded_key, expires)
            .verify_slice(&signature)
            .ok()?;
        if expires <= now.timestamp() {
            return None;
        }
        let object_key = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded_key).ok()?).ok()?;
        let linkable = LINKABLE_PREFIXES.iter().any(|p| object_key.starts_with(p))
            && !object_key
                .split('/')
                .any(|segment| segment == ".." || segment.is_empty());
        linkable.then_some(object_key)
    }
}

/// The path under the link endpoint that serves a token.
pub const LINK_PATH_PREFIX: &str = "/l/";

/// The URL of a link: the endpoint's base URL (the Function URL, or `mailroom dev`'s inspector) and the
/// token.
pub fn link_url(base_url: &str, token: &str) -> String {
    format!(
        "{}{LINK_PATH_PREFIX}{token}",
        base_url.trim_end_matches('/')
    )
}

/// The token in a request path, if the path is a link's.
pub fn token_from_path(path: &str) -> Option<&str> {
    path.strip_prefix(LINK_PATH_PREFIX)
        .filter(|token| !token.is_empty() && !token.contains('/'))
}

/// How long the presigned URL a link redirects to stays valid.
pub const PRESIGNED_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// What the link endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAnswer {
    /// 302 to this presigned URL.
    Redirect(String),
    /// 404, whatever the reason: a bad, foreign or expired token, or an object that is gone.
    NotFound,
    /// 503: the store failed; the link may work later.
    Unavailable,
}

/// Answers a request for `path` on the link endpoint.
pub async fn resolve<P: crate::ports::Presigner>(
    key: &LinkKey,
    presigner: &P,
    path: &str,
    now: DateTime<Utc>,
) -> LinkAnswer {
    let Some(object_key) = token_from_path(path).and_then(|token| key.verify(token, now)) else {
        return LinkAnswer::NotFound;
    };
    match presigner.presign(&object_key, PRESIGNED_FOR).await {
        Ok(Some(url)) => LinkAnswer::Redirect(url),
        Ok(None) => LinkAnswer::NotFound,
        Err(error) => {
            tracing::warn!(error = %error, "cannot presign a link");
            LinkAnswer::Unavailable
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn key() -> LinkKey {
        LinkKey::parse(&LinkKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn a_token_names_its_object_until_it_expires() {
        let key = key();
        let now = Utc::now();
        let token = key.token("attachments/m1/0", now + Duration::days(7));
        assert_eq!(key.verify(&token, now).as_deref(), Some("attachments/m1/0"));
        assert_eq!(key.verify(&token, now + Duration::days(7)), None, "expired");
        let original = key.token("inbound/m1", now + Duration::days(1));
        assert_eq!(key.verify(&original, now).as_deref(), Some("inbound/m1"));
        let url = link_url("https://abc.lambda-url.eu-west-1.on.aws/", &token);
        assert_eq!(
            token_from_path(
                url.strip_prefix("https://abc.lambda-url.eu-west-1.on.aws")
                    .unwrap()
            ),
            Some(token.as_str())
        );
    }

    #[test]
    fn tampered_foreign_and_unlinkable_tokens_are_refused() {
        let key = key();
        let now = Utc::now();
        let token = key.token("attachments/m1/0", now + Duration::days(7));
        let (encoded, rest) = token.split_once('.').unwrap();
        let (expires, signature) = rest.split_once('.').unwrap();
        // Another object, a later expiry, a changed signature, another key.
        let other = URL_SAFE_NO_PAD.encode("attachments/m2/0");
        assert_eq!(
            key.verify(&format!("{other}.{expires}.{signature}"), now),
            None
        );
        let later = expires.parse::<i64>().unwrap() + 86_400;
        assert_eq!(
            key.verify(&format!("{encoded}.{later}.{signature}"), now),
            None
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[0] ^= 1;
        assert_eq!(
            key.verify(
                &format!("{encoded}.{expires}.{}", URL_SAFE_NO_PAD.encode(bytes)),
                now
            ),
            None
        );
        assert_eq!(self::key().verify(&token, now), None);
        // Signed by us, but outside what links may reach.
        for object in [
            "routes.json",
            "outbound/m1",
            "attachments/../secret",
            "attachments//x",
        ] {
            assert_eq!(
                key.verify(&key.token(object, now + Duration::days(1)), now),
                None,
                "{object}"
            );
        }
        for garbage in ["", ".", "..", "a.b.c", "a.1.", "a.b.c.d", "€.1.x"] {
            assert_eq!(key.verify(garbage, now), None, "{garbage}");
        }
    }

    #[test]
    fn keys_must_be_long_base64() {
        assert_eq!(
            LinkKey::parse("not base64!").unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(
            LinkKey::parse("c2hvcnQ=").unwrap_err(),
            KeyError::TooShort(5)
        );
        assert!(format!("{:?}", key()).contains('…'), "Debug hides the key");
        assert_eq!(token_from_path("/l/"), None);
        assert_eq!(token_from_path("/other/x"), None);
        assert_eq!(token_from_path("/l/a/b"), None);
    }
}
