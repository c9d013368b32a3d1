//! Links to stored objects (attachments, the original message) that stay valid for days. A presigned S3
//! URL made inside Lambda dies with the role's temporary credentials, so a link points at Mailroom's own
//! link endpoint instead, with a token that names the object and its expiry and is signed with a key of
//! ours. The endpoint checks the token and only then presigns a GET valid for minutes.
//!
//! Token: `<key id>.<object key, base64url>.<expiry, unix seconds>.<HMAC-SHA256, base64url>`. The HMAC
//! covers the first three parts exactly as they are written, and the expiry must be written canonically
//! (decimal digits, no sign, no leading zero), so one link has one spelling. The key id names the key that
//! signed it: two keys are accepted at once, the current one and the previous one, so rotating the key
//! (`mailroom links rotate-key`) breaks no live link as long as rotations are further apart than links live.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The prefixes a link may reach: stored attachments and stored originals, nothing else in the bucket.
pub const LINKABLE_PREFIXES: [&str; 2] = ["attachments/", "inbound/"];

/// Fewest key bytes accepted.
pub const MIN_KEY_BYTES: usize = 32;

/// Longest object key a token carries (S3's limit is 1,024 bytes).
const MAX_OBJECT_KEY: usize = 1024;

/// Characters of a key id.
const KEY_ID_LEN: usize = 8;

/// Most digits of a canonical expiry (Unix seconds stay at 10 digits for centuries).
const MAX_EXPIRY_DIGITS: usize = 12;

/// The key links are signed with.
#[derive(Clone)]
pub struct LinkKey {
    // Keyed once; each token clones it.
    mac: Hmac<Sha256>,
    id: String,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKey({}, …)", self.id)
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
    /// No key at all.
    #[error("no link key is given")]
    Missing,
}

impl LinkKey {
    /// Reads a key stored as base64 (standard alphabet, as `mailroom setup emulator`, `mailroom links
    /// rotate-key` and the stack make it).
    pub fn parse(text: &str) -> Result<LinkKey, KeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::NotBase64)?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(&bytes).map_err(|_| KeyError::Unusable)?;
        // The id is derived from the key, so nothing but the key has to be stored or rotated; it says
        // which key signed a token and nothing about the key itself.
        let digest = Sha256::new()
            .chain_update(b"mailroom link key id\0")
            .chain_update(&bytes)
            .finalize();
        let mut id = URL_SAFE_NO_PAD.encode(digest);
        id.truncate(KEY_ID_LEN);
        Ok(LinkKey { mac, id })
    }

    /// A fresh random key, as base64 text.
    pub fn generate() -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; MIN_KEY_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The key's id, as tokens carry it.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, signed: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        mac
    }

    /// The token of a link to `object_key` valid until `expires_at`.
    pub fn token(&self, object_key: &str, expires_at: DateTime<Utc>) -> String {
        let encoded_key = URL_SAFE_NO_PAD.encode(object_key.as_bytes());
        let signed = format!("{}.{encoded_key}.{}", self.id, expires_at.timestamp());
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&signed).finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    /// The object key a token names, if this key signed it, it is unexpired, and it names a linkable
    /// object. Says nothing about why not: the endpoint answers every refusal the same way.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<String> {
        let parts = TokenParts::split(token)?;
        (parts.key_id == self.id).then_some(())?;
        parts.verified_by(self, now)
    }
}

/// The keys links are checked with: the current one, which signs, and the previous one, whose links
/// stay valid until the next rotation.
#[derive(Debug, Clone)]
pub struct LinkKeys {
    current: LinkKey,
    previous: Option<LinkKey>,
}

impl LinkKeys {
    /// One key, nothing rotated yet.
    pub fn single(current: LinkKey) -> LinkKeys {
        LinkKeys {
            current,
            previous: None,
        }
    }

    /// The current key and, after a rotation, the previous one.
    pub fn new(current: LinkKey, previous: Option<LinkKey>) -> LinkKeys {
        LinkKeys { current, previous }
    }

    /// Reads keys written as text: the current key, then optionally the previous one, separated by a
    /// comma or a line break (the dev store's `link-key` file, `MAILROOM_LINK_KEY`).
    pub fn parse(text: &str) -> Result<LinkKeys, KeyError> {
        let mut keys = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let current = LinkKey::parse(keys.next().ok_or(KeyError::Missing)?)?;
        let previous = keys.next().map(LinkKey::parse).transpose()?;
        Ok(LinkKeys { current, previous })
    }

    /// The key new links are signed with.
    pub fn current(&self) -> &LinkKey {
        &self.current
    }

    /// The key of the rotation before, if any.
    pub fn previous(&self) -> Option<&LinkKey> {
        self.previous.as_ref()
    }

    /// Whether one of these keys has the id `key_id`.
    pub fn knows(&self, key_id: &str) -> bool {
        self.current.id == key_id || self.previous.as_ref().is_some_and(|k| k.id == key_id)
    }

    /// The object key a token names, if one of these keys signed it and it is unexpired and linkable.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<String> {
        let parts = TokenParts::split(token)?;
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == parts.key_id)?;
        parts.verified_by(key, now)
    }
}

/// The id of the key a token says signed it, when the token has the shape of one: lets the endpoint
/// notice a key it has not read yet.
pub fn token_key_id(token: &str) -> Option<&str> {
    TokenParts::split(token).map(|parts| parts.key_id)
}

/// A token cut into its parts, nothing checked yet but the shape.
struct TokenParts<'a> {
    key_id: &'a str,
    signed: &'a str,
    encoded_key: &'a str,
    expires: &'a str,
    signature: &'a str,
}

impl<'a> TokenParts<'a> {
    fn split(token: &'a str) -> Option<TokenParts<'a>> {
        let (signed, signature) = token.rsplit_once('.')?;
        let mut parts = signed.split('.');
        let (key_id, encoded_key, expires) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || key_id.len() != KEY_ID_LEN
            || encoded_key.len() > MAX_OBJECT_KEY * 4 / 3 + 4
        {
            return None;
        }
        Some(TokenParts {
            key_id,
            signed,
            encoded_key,
            expires,
            signature,
        })
    }

    fn verified_by(&self, key: &LinkKey, now: DateTime<Utc>) -> Option<String> {
        let expires = canonical_seconds(self.expires)?;
        let signature = URL_SAFE_NO_PAD.decode(self.signature).ok()?;
        // Checked before anything else is believed, in constant time, over the text as received.
        key.mac(self.signed).verify_slice(&signature).ok()?;
        if expires <= now.timestamp() {
            return None;
        }
        let object_key = String::from_utf8(URL_SAFE_NO_PAD.decode(self.encoded_key).ok()?).ok()?;
        let linkable = LINKABLE_PREFIXES.iter().any(|p| object_key.starts_with(p))
            && !object_key
                .split('/')
                .any(|segment| segment == ".." || segment.is_empty());
        linkable.then_some(object_key)
    }
}

/// Unix seconds written the one way a token writes them: decimal digits, the first not `0`. `+5`, `05`,
/// ` 5` and `5.0` are refused, so no token has a second spelling.
fn canonical_seconds(text: &str) -> Option<i64> {
    let canonical = !text.is_empty()
        && text.len() <= MAX_EXPIRY_DIGITS
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    canonical.then(|| text.parse().ok()).flatten()
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn key() -> LinkKey {
        LinkKey::parse(&LinkKey::generate().unwrap()).unwrap()
    }

    /// A token's four parts.
    fn parts(token: &str) -> [String; 4] {
        let p: Vec<&str> = token.split('.').collect();
        assert_eq!(p.len(), 4, "{token}");
        [p[0].into(), p[1].into(), p[2].into(), p[3].into()]
    }

    /// A token signed by `key` over exactly these parts, as a forger holding the key could write it.
    fn signed(key: &LinkKey, id: &str, encoded: &str, expires: &str) -> String {
        let text = format!("{id}.{encoded}.{expires}");
        let signature = URL_SAFE_NO_PAD.encode(key.mac(&text).finalize().into_bytes());
        format!("{text}.{signature}")
    }

    #[test]
    fn a_token_names_its_object_until_it_expires() {
        let key = key();
        let now = Utc::now();
        let token = key.token("attachments/m1/0", now + Duration::days(7));
        assert!(token.starts_with(&format!("{}.", key.id())), "{token}");
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
        assert_eq!(token_key_id(&token), Some(key.id()));
    }

    #[test]
    fn an_expiry_has_one_spelling() {
        let key = key();
        let now = Utc::now();
        let expires = (now + Duration::days(1)).timestamp();
        let encoded = URL_SAFE_NO_PAD.encode("attachments/m1/0");
        let id = key.id().to_owned();
        assert_eq!(
            key.verify(&signed(&key, &id, &encoded, &expires.to_string()), now)
                .as_deref(),
            Some("attachments/m1/0")
        );
        // Even correctly signed, a second spelling of the number is no token: `+N`, `0N`, and others.
        for spelling in [
            format!("+{expires}"),
            format!("0{expires}"),
            format!("00{expires}"),
            format!(" {expires}"),
            format!("{expires} "),
            format!("{expires}.0"),
            format!("-{expires}"),
            "0".to_owned(),
            String::new(),
            "99999999999999999999".to_owned(),
        ] {
            let token = signed(&key, &id, &encoded, &spelling);
            assert_eq!(key.verify(&token, now), None, "`{spelling}`");
            assert_eq!(LinkKeys::single(key.clone()).verify(&token, now), None);
        }
    }

    #[test]
    fn tampered_foreign_and_unlinkable_tokens_are_refused() {
        let key = key();
        let now = Utc::now();
        let token = key.token("attachments/m1/0", now + Duration::days(7));
        let [id, encoded, expires, signature] = parts(&token);
        // Another object, a later expiry, a changed signature, another key id, another key.
        let other = URL_SAFE_NO_PAD.encode("attachments/m2/0");
        assert_eq!(
            key.verify(&format!("{id}.{other}.{expires}.{signature}"), now),
            None
        );
        let later = expires.parse::<i64>().unwrap() + 86_400;
        assert_eq!(
            key.verify(&format!("{id}.{encoded}.{later}.{signature}"), now),
            None
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&signature).unwrap();
        bytes[0] ^= 1;
        assert_eq!(
            key.verify(
                &format!("{id}.{encoded}.{expires}.{}", URL_SAFE_NO_PAD.encode(bytes)),
                now
            ),
            None
        );
        assert_eq!(
            key.verify(&format!("AAAAAAAA.{encoded}.{expires}.{signature}"), now),
            None
        );
        // The three-part tokens of earlier versions are not tokens any more.
        assert_eq!(
            key.verify(&format!("{encoded}.{expires}.{signature}"), now),
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
        for garbage in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.1.",
            "a.b.c.d",
            "€.1.x",
            "abcdefgh.a.1.",
        ] {
            assert_eq!(key.verify(garbage, now), None, "{garbage}");
        }
    }

    #[test]
    fn the_previous_key_still_verifies_after_a_rotation() {
        let now = Utc::now();
        let old = key();
        let new = key();
        assert_ne!(old.id(), new.id());
        let old_link = old.token("attachments/m1/0", now + Duration::days(7));
        let new_link = new.token("attachments/m2/0", now + Duration::days(7));
        let rotated = LinkKeys::new(new.clone(), Some(old.clone()));
        assert_eq!(rotated.current().id(), new.id());
        assert_eq!(
            rotated.verify(&old_link, now).as_deref(),
            Some("attachments/m1/0")
        );
        assert_eq!(
            rotated.verify(&new_link, now).as_deref(),
            Some("attachments/m2/0")
        );
        assert!(rotated.knows(old.id()) && rotated.knows(new.id()));
        // One rotation later the oldest key is gone.
        let again = LinkKeys::new(key(), Some(new.clone()));
        assert_eq!(again.verify(&old_link, now), None);
        assert!(!again.knows(old.id()));
        // Keys as text: current first, then the previous one.
        let text = format!(
            "{}\n{}\n",
            LinkKey::generate().unwrap(),
            LinkKey::generate().unwrap()
        );
        let parsed = LinkKeys::parse(&text).unwrap();
        assert!(parsed.previous().is_some());
        assert_eq!(LinkKeys::parse(" \n").unwrap_err(), KeyError::Missing);
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
        let shown = format!("{:?}", key());
        assert!(shown.contains('…'), "Debug hides the key: {shown}");
        assert_eq!(token_from_path("/l/"), None);
        assert_eq!(token_from_path("/other/x"), None);
        assert_eq!(token_from_path("/l/a/b"), None);
    }
}
