//! A route's webhook secret: the key its posts are signed with, and its `whsec_…` text form.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Prefix of the text form of a [`WebhookSecret`].
pub const SECRET_PREFIX: &str = "whsec_";

/// Shortest accepted key, in bytes (the official test secret is 24 bytes).
pub const MIN_KEY_LEN: usize = 24;

/// Longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 64;

/// Key length, in bytes, of secrets made by [`WebhookSecret::generate`].
pub const GENERATED_KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

// Decoding accepts base64 with or without padding: people paste secrets from places that
// sometimes strip the trailing `=`, and the key bytes are unambiguous either way.
pub(crate) const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A route's symmetric signing key, written as `whsec_` + standard base64 of the key bytes.
///
/// `Display` prints that text form as it was given (to show the user once, or to store); `Debug` redacts it so
/// the key never ends up in logs.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    // The text form exactly as its owner gave it (padding included or not): Mailgun's format signs with
    // this string, which the app holds as its signing key.
    text: String,
    // Keyed once here so signing and verifying only clone it, and so they cannot fail.
    mac: HmacSha256,
}

impl WebhookSecret {
    /// Parses the `whsec_…` text form (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = LENIENT_STANDARD
            .decode(encoded)
            .map_err(SecretError::InvalidBase64)?;
        let mut secret = Self::from_key(key)?;
        secret.text = text.trim().to_owned();
        Ok(secret)
    }

    /// Makes a fresh random secret of [`GENERATED_KEY_LEN`] bytes from the OS generator.
    pub fn generate() -> Result<Self, GenerateError> {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        getrandom::fill(&mut key).map_err(GenerateError)?;
        // 32 bytes is within the accepted range, so this cannot fail; mapping keeps it panic-free.
        Self::from_key(key).map_err(|_| GenerateError(getrandom::Error::UNEXPECTED))
    }

    fn from_key(key: Vec<u8>) -> Result<Self, SecretError> {
        let len = key.len();
        if len < MIN_KEY_LEN {
            return Err(SecretError::TooShort { len });
        }
        if len > MAX_KEY_LEN {
            return Err(SecretError::TooLong { len });
        }
        // HMAC takes keys of any length, so this error is unreachable.
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| SecretError::TooLong { len })?;
        let text = format!("{SECRET_PREFIX}{}", STANDARD.encode(&key));
        Ok(Self { key, text, mac })
    }

    /// Length of the key in bytes.
    #[must_use]
    pub fn key_len(&self) -> usize {
        self.key.len()
    }

    /// The HMAC state keyed with this secret, cloned for each signature.
    pub(crate) fn keyed_mac(&self) -> &HmacSha256 {
        &self.mac
    }
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for WebhookSecret {}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_…redacted)")
    }
}

/// Why a text is not a valid [`WebhookSecret`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The text does not start with `whsec_`.
    #[error(
        "a webhook secret starts with `whsec_` followed by base64; \
         generate one with `mailroom routes add --generate-secret`"
    )]
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    #[error(
        "the part of the webhook secret after `whsec_` is not valid standard base64 ({0}); \
         copy the whole secret again, or generate a new one with \
         `mailroom routes add --generate-secret`"
    )]
    InvalidBase64(#[source] base64::DecodeError),
    /// The decoded key is shorter than [`MIN_KEY_LEN`] bytes.
    #[error(
        "the webhook secret's key is {len} bytes, too short to be safe (at least 24, 32 recommended); \
         generate one with `mailroom routes add --generate-secret`"
    )]
    TooShort {
        /// Length of the decoded key, in bytes.
        len: usize,
    },
    /// The decoded key is longer than [`MAX_KEY_LEN`] bytes.
    #[error(
        "the webhook secret's key is {len} bytes, more than the 64 allowed; \
         generate one with `mailroom routes add --generate-secret`"
    )]
    TooLong {
        /// Length of the decoded key, in bytes.
        len: usize,
    },
}

/// The operating system's random generator failed, so no secret could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "could not read random bytes from the operating system to make a webhook secret ({0}); \
     try again, or check that the system's random source is available"
)]
pub struct GenerateError(getrandom::Error);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The published Standard Webhooks / Svix test vector (also in the official libraries' tests).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn vector_secret() -> WebhookSecret {
        WebhookSecret::parse(VECTOR_SECRET).unwrap()
    }

    fn secret_of_len(len: usize) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(vec![7u8; len]))
    }

    #[test]
    fn parse_rejects_each_bad_form() {
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(WebhookSecret::parse(""), Err(SecretError::MissingPrefix));
        assert!(matches!(
            WebhookSecret::parse("whsec_not*base64!"),
            Err(SecretError::InvalidBase64(_))
        ));
        assert_eq!(
            WebhookSecret::parse(&secret_of_len(16)),
            Err(SecretError::TooShort { len: 16 })
        );
        assert_eq!(
            WebhookSecret::parse("whsec_"),
            Err(SecretError::TooShort { len: 0 })
        );
        assert_eq!(
            WebhookSecret::parse(&secret_of_len(65)),
            Err(SecretError::TooLong { len: 65 })
        );
    }

    #[test]
    fn parse_accepts_the_edges_padding_and_whitespace() {
        assert_eq!(
            WebhookSecret::parse(&secret_of_len(24)).unwrap().key_len(),
            24
        );
        assert_eq!(
            WebhookSecret::parse(&secret_of_len(64)).unwrap().key_len(),
            64
        );
        let padded = secret_of_len(32);
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(
            WebhookSecret::parse(unpadded).unwrap(),
            WebhookSecret::parse(&padded).unwrap()
        );
        let spaced = format!("  {VECTOR_SECRET}\n");
        assert_eq!(WebhookSecret::parse(&spaced).unwrap(), vector_secret());
        let via_from_str: WebhookSecret = VECTOR_SECRET.parse().unwrap();
        assert_eq!(via_from_str, vector_secret());
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let message = SecretError::MissingPrefix.to_string();
        assert!(message.contains("whsec_"));
        assert!(message.contains("mailroom routes add --generate-secret"));
        assert!(
            SecretError::TooShort { len: 16 }
                .to_string()
                .contains("16 bytes")
        );
    }

    #[test]
    fn debug_does_not_reveal_the_key() {
        let secret = vector_secret();
        let debug = format!("{secret:?}");
        assert!(
            !debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{debug}"
        );
        assert!(debug.contains("redacted"));
        let generated = WebhookSecret::generate().unwrap();
        let debug = format!("{generated:?}");
        let text = generated.to_string();
        assert!(!debug.contains(&text[SECRET_PREFIX.len()..]), "{debug}");
    }

    #[test]
    fn display_is_the_text_form() {
        assert_eq!(vector_secret().to_string(), VECTOR_SECRET);
    }

    #[test]
    fn generate_gives_distinct_secrets_that_parse_back() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        assert_ne!(a, b);
        assert_ne!(a.to_string(), b.to_string());
        for secret in [a, b] {
            assert_eq!(secret.key_len(), GENERATED_KEY_LEN);
            let text = secret.to_string();
            assert!(text.starts_with(SECRET_PREFIX));
            assert_eq!(WebhookSecret::parse(&text).unwrap(), secret);
        }
    }
}
