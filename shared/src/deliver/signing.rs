//! Standard Webhooks signing and verification (<https://www.standardwebhooks.com/>).
//!
//! Every delivery carries [`HEADER_ID`], [`HEADER_TIMESTAMP`] and [`HEADER_SIGNATURE`]; the
//! signature is `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, so any Standard
//! Webhooks (or Svix) library on the receiving side can check what we send.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::route::{LENIENT_STANDARD, WebhookSecret};

/// Header carrying the message id, unique per message and unchanged across retries.
pub const HEADER_ID: &str = "webhook-id";

/// Header carrying the send time in unix seconds (decimal), fresh on every attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";

/// Header carrying the space-separated `v1,<base64>` signatures, one per active secret.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far (in seconds) a timestamp may lie in the past or future before verification
/// rejects it, which bounds the window for replaying a captured request.
pub const TOLERANCE_SECS: i64 = 300;

/// Version tag of the only signature scheme Standard Webhooks defines for symmetric keys.
const V1: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// Why a received webhook failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The `webhook-timestamp` header is not a decimal number of unix seconds.
    #[error(
        "the `webhook-timestamp` header is not a whole number of unix seconds; \
         check that the sender follows Standard Webhooks"
    )]
    InvalidTimestamp,
    /// The timestamp is more than [`TOLERANCE_SECS`] in the past.
    #[error(
        "the webhook timestamp is {age_secs} s old, more than the 300 s allowed; \
         it may be a replay, or this machine's clock is wrong"
    )]
    TooOld {
        /// How far in the past the timestamp is, in seconds.
        age_secs: i64,
    },
    /// The timestamp is more than [`TOLERANCE_SECS`] in the future.
    #[error(
        "the webhook timestamp is {ahead_secs} s in the future, more than the 300 s allowed; \
         the sender's or this machine's clock is wrong"
    )]
    TooNew {
        /// How far in the future the timestamp is, in seconds.
        ahead_secs: i64,
    },
    /// No `v1` signature in the header matches the id, timestamp and body under the secret(s).
    #[error(
        "no `v1` signature in the `webhook-signature` header matches; the secret is wrong \
         (check the route's current secret) or the id, timestamp or body were altered"
    )]
    NoMatch,
}

/// Computes the `webhook-signature` header value: one `v1,<base64>` per secret, space-separated.
///
/// Several secrets let a route rotate keys: receivers holding either the old or the new secret
/// accept the message.
#[must_use]
pub fn sign(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signer = Signer::new(secrets, id, timestamp);
    signer.update(body);
    signer.finish()
}

/// The HMAC state of `secret` over `{id}.{timestamp}.{body}`, fed piece by piece so a large body is
/// never copied.
fn mac_over(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.keyed_mac().clone();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Signs a body that is written piece by piece (`io::Write`), so a large one is never held whole; counts
/// its bytes on the way.
pub struct Signer {
    macs: Vec<HmacSha256>,
    len: u64,
}

impl Signer {
    /// Starts the signatures of `{id}.{timestamp}.` + the body to come, one per secret.
    pub fn new(secrets: &[WebhookSecret], id: &str, timestamp: i64) -> Signer {
        Signer {
            macs: secrets
                .iter()
                .map(|secret| mac_over(secret, id, timestamp, b""))
                .collect(),
            len: 0,
        }
    }

    /// Adds the next bytes of the body.
    pub fn update(&mut self, bytes: &[u8]) {
        for mac in &mut self.macs {
            mac.update(bytes);
        }
        self.len += bytes.len() as u64;
    }

    /// Bytes of body signed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no body byte was signed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `webhook-signature` header value.
    pub fn finish(self) -> String {
        let mut header = String::with_capacity(self.macs.len() * 48);
        for mac in self.macs {
            if !header.is_empty() {
                header.push(' ');
            }
            header.push_str(V1);
            header.push(',');
            STANDARD.encode_string(mac.finalize().into_bytes(), &mut header);
        }
        header
    }
}

impl std::io::Write for Signer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks a received webhook against one secret.
///
/// `timestamp` and `signature_header` are the raw header values and `now` the current unix
/// time in seconds. Succeeds when the timestamp is within [`TOLERANCE_SECS`] of `now` and any
/// `v1` entry of the header matches; other versions and malformed entries are skipped.
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    verify_any(
        std::slice::from_ref(secret),
        id,
        timestamp,
        signature_header,
        body,
        now,
    )
}

/// Like [`verify`], but succeeds if the header matches any of `secrets` (e.g. during rotation).
pub fn verify_any(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let timestamp = check_timestamp(timestamp, now)?;
    let candidates: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == V1)
        .filter_map(|(_, encoded)| LENIENT_STANDARD.decode(encoded).ok())
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::NoMatch);
    }
    for secret in secrets {
        let mac = mac_over(secret, id, timestamp, body);
        // `verify_slice` compares in constant time, so timing reveals nothing about the tag.
        if candidates
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

/// Parses the timestamp header and enforces [`TOLERANCE_SECS`] around `now`.
fn check_timestamp(timestamp: &str, now: i64) -> Result<i64, VerifyError> {
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let age_secs = now.saturating_sub(timestamp);
    if age_secs > TOLERANCE_SECS {
        return Err(VerifyError::TooOld { age_secs });
    }
    let ahead_secs = timestamp.saturating_sub(now);
    if ahead_secs > TOLERANCE_SECS {
        return Err(VerifyError::TooNew { ahead_secs });
    }
    Ok(timestamp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // The published Standard Webhooks / Svix test vector (also in the official libraries' tests).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector_secret() -> WebhookSecret {
        WebhookSecret::parse(VECTOR_SECRET).unwrap()
    }

    #[test]
    fn header_names_follow_the_spec() {
        assert_eq!(HEADER_ID, "webhook-id");
        assert_eq!(HEADER_TIMESTAMP, "webhook-timestamp");
        assert_eq!(HEADER_SIGNATURE, "webhook-signature");
    }

    #[test]
    fn signs_the_official_test_vector() {
        let header = sign(&[vector_secret()], VECTOR_ID, VECTOR_TS, VECTOR_BODY);
        assert_eq!(header, VECTOR_SIG);
    }

    #[test]
    fn verifies_the_official_test_vector() {
        let ts = VECTOR_TS.to_string();
        verify(
            &vector_secret(),
            VECTOR_ID,
            &ts,
            VECTOR_SIG,
            VECTOR_BODY,
            VECTOR_TS,
        )
        .unwrap();
    }

    #[test]
    fn round_trips_with_a_generated_secret_and_binary_body() {
        let secret = WebhookSecret::generate().unwrap();
        let body = [0xff, 0x00, 0xfe, b'.', 0x80];
        let header = sign(std::slice::from_ref(&secret), "msg_1", 1_700_000_000, &body);
        assert!(header.starts_with("v1,"));
        verify(
            &secret,
            "msg_1",
            "1700000000",
            &header,
            &body,
            1_700_000_010,
        )
        .unwrap();
    }

    #[test]
    fn two_secrets_give_two_signatures_that_each_verify() {
        let old = WebhookSecret::generate().unwrap();
        let new = WebhookSecret::generate().unwrap();
        let header = sign(&[old.clone(), new.clone()], "msg_2", VECTOR_TS, b"hello");
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_ne!(entries[0], entries[1]);
        let ts = VECTOR_TS.to_string();
        for (secret, entry) in [(&old, entries[0]), (&new, entries[1])] {
            verify(secret, "msg_2", &ts, entry, b"hello", VECTOR_TS).unwrap();
            verify(secret, "msg_2", &ts, &header, b"hello", VECTOR_TS).unwrap();
        }
        verify_any(&[new], "msg_2", &ts, entries[0], b"hello", VECTOR_TS)
            .expect_err("the new secret must not accept the old secret's signature");
    }

    #[test]
    fn no_secrets_sign_to_an_empty_header_and_verify_nothing() {
        assert_eq!(sign(&[], "msg", VECTOR_TS, b"x"), "");
        let ts = VECTOR_TS.to_string();
        assert_eq!(
            verify_any(&[], VECTOR_ID, &ts, VECTOR_SIG, VECTOR_BODY, VECTOR_TS),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn verify_any_accepts_when_one_of_several_secrets_matches() {
        let other = WebhookSecret::generate().unwrap();
        let ts = VECTOR_TS.to_string();
        let secrets = [other.clone(), vector_secret()];
        verify_any(&secrets, VECTOR_ID, &ts, VECTOR_SIG, VECTOR_BODY, VECTOR_TS).unwrap();
        assert_eq!(
            verify_any(&[other], VECTOR_ID, &ts, VECTOR_SIG, VECTOR_BODY, VECTOR_TS),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn tampered_body_id_or_timestamp_fail() {
        let secret = vector_secret();
        let ts = VECTOR_TS.to_string();
        let bumped = (VECTOR_TS + 1).to_string();
        let cases = [
            (VECTOR_ID, ts.as_str(), &br#"{"test": 2432232315}"#[..]),
            ("msg_p5jXN8AQM9LWM0D4loKWxJeK", ts.as_str(), VECTOR_BODY),
            (VECTOR_ID, bumped.as_str(), VECTOR_BODY),
        ];
        for (id, ts, body) in cases {
            assert_eq!(
                verify(&secret, id, ts, VECTOR_SIG, body, VECTOR_TS),
                Err(VerifyError::NoMatch),
                "id={id} ts={ts}"
            );
        }
    }

    #[test]
    fn rejects_timestamps_outside_the_tolerance() {
        let secret = vector_secret();
        let ts = VECTOR_TS.to_string();
        let verify_at = |now| verify(&secret, VECTOR_ID, &ts, VECTOR_SIG, VECTOR_BODY, now);
        assert_eq!(
            verify_at(VECTOR_TS + TOLERANCE_SECS + 1),
            Err(VerifyError::TooOld { age_secs: 301 })
        );
        assert_eq!(
            verify_at(VECTOR_TS - TOLERANCE_SECS - 1),
            Err(VerifyError::TooNew { ahead_secs: 301 })
        );
        // The edges of the window are still accepted.
        verify_at(VECTOR_TS + TOLERANCE_SECS).unwrap();
        verify_at(VECTOR_TS - TOLERANCE_SECS).unwrap();
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let secret = vector_secret();
        let min = i64::MIN.to_string();
        assert!(matches!(
            verify(&secret, VECTOR_ID, &min, VECTOR_SIG, VECTOR_BODY, i64::MAX),
            Err(VerifyError::TooOld { .. })
        ));
        let max = i64::MAX.to_string();
        assert!(matches!(
            verify(&secret, VECTOR_ID, &max, VECTOR_SIG, VECTOR_BODY, i64::MIN),
            Err(VerifyError::TooNew { .. })
        ));
    }

    #[test]
    fn rejects_malformed_timestamps() {
        let secret = vector_secret();
        for ts in ["", "abc", "1614265330.5", "99999999999999999999", "0x10"] {
            assert_eq!(
                verify(&secret, VECTOR_ID, ts, VECTOR_SIG, VECTOR_BODY, VECTOR_TS),
                Err(VerifyError::InvalidTimestamp),
                "{ts:?}"
            );
        }
    }

    #[test]
    fn garbage_entries_are_skipped_when_one_entry_is_good() {
        let header = format!(
            "v1,!!notbase64!! v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= nonsense \
             v1,AAAA v1, ,  v1a,xyz {VECTOR_SIG} v1,Zm9v"
        );
        let ts = VECTOR_TS.to_string();
        verify(
            &vector_secret(),
            VECTOR_ID,
            &ts,
            &header,
            VECTOR_BODY,
            VECTOR_TS,
        )
        .unwrap();
    }

    #[test]
    fn only_v1_entries_count() {
        let ts = VECTOR_TS.to_string();
        let other_version = VECTOR_SIG.replacen("v1,", "v1a,", 1);
        for header in ["", "   ", "garbage", other_version.as_str()] {
            assert_eq!(
                verify(
                    &vector_secret(),
                    VECTOR_ID,
                    &ts,
                    header,
                    VECTOR_BODY,
                    VECTOR_TS
                ),
                Err(VerifyError::NoMatch),
                "{header:?}"
            );
        }
    }
}
