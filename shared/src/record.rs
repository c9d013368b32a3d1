//! The metadata record: one per message, recipient and target, holding only the fields the data policy
//! lists, kept `RetentionDays` (60 by default) through DynamoDB's TTL on `expires_at`.
//!
//! A record names up to four people: the recipient, the envelope sender, and the addresses of the `From:`
//! and `Reply-To:` headers. Each is an index key, so `mailroom data` finds every record of a person. The
//! header addresses are not among the fields the data policy keeps: a record holds only a keyed digest of
//! each ([`Lookup`], under the store's [`LookupKey`]). A route that redacts an address keeps it out of the
//! record the same way: its digest stands in its place as the index key, so the record holds no address
//! and erasure still finds it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::mail::envelope::{addresses_in, normalise_address};
use crate::route::Redact;

/// Default retention of records, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 60;

/// How long a claim with no record after it (an attempt that never recorded its end) outlives its claim
/// before the store's expiry removes it: past the 72-hour give-up, after which no retry can come for it.
pub const CLAIM_ONLY_TTL: Duration = Duration::days(4);

/// Most attempts kept in a record's history.
pub const MAX_HISTORY: usize = 30;

/// Bytes of each answer a history entry keeps (the record's last answer keeps 2 KiB).
pub const HISTORY_EXCERPT_BYTES: usize = 256;

/// How many shards a busy index key is spread over unless the stack says otherwise
/// (`MAILROOM_INDEX_SHARDS`, template parameter `IndexShards`). A DynamoDB partition takes about 1,000
/// write units a second, and each record puts one small index entry (under 1 KB) in each index it is keyed
/// in; eight shards let one day, or one address, take some 8,000 deliveries a second, more than a table's
/// default on-demand quota (40,000 write units a second) lets a whole stack reach at about 5 write units a
/// delivery, while a listing stays at eight concurrent queries (docs/records-at-scale.md).
pub const DEFAULT_INDEX_SHARDS: u32 = 8;

/// The most shards a key may be spread over: every listing and every erasure lookup queries each one.
pub const MAX_INDEX_SHARDS: u32 = 64;

/// The shard, among `shards`, of the index entries of an item keyed by `id` (a record's message id, an
/// outbound record's SES message id): the first eight bytes of SHA-256 of the id, big-endian, modulo
/// `shards`. Fixed for good: listings find an entry again only where this puts it. `shards` of 0 counts as
/// 1.
pub fn index_shard(id: &str, shards: u32) -> u32 {
    (shard_point(id) % u64::from(shards.max(1))) as u32
}

/// The first eight bytes of SHA-256 of `id`, big-endian: where [`index_shard`] puts it, before the modulo.
fn shard_point(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A delivery is under way or not yet attempted.
    Pending,
    /// The target answered 2xx.
    Delivered,
    /// A retryable failure; another attempt is scheduled.
    Retrying,
    /// The target refused it (4xx, 410, refused target, disabled route): not retried.
    Rejected,
    /// Gave up: retries ran out, or the message could not be read or parsed.
    Failed,
    /// No route takes the recipient.
    NoRoute,
    /// The target kind was not supported by the version that received the message (older records).
    Unsupported,
    /// Dropped on an SES verdict the route names.
    Dropped,
    /// Erased on request; a pending delivery of erased mail is cancelled.
    Erased,
    /// A forward SES accepted; its outbound record follows what became of it.
    Sent,
    /// A forward not sent: the address is on the suppression list.
    Suppressed,
    /// Too large to forward: a notice with a link to the original was sent instead.
    NoticeSent,
}

impl Status {
    /// Every status, for listings and argument checks.
    pub const ALL: [Status; 12] = [
        Status::Pending,
        Status::Delivered,
        Status::Retrying,
        Status::Rejected,
        Status::Failed,
        Status::NoRoute,
        Status::Unsupported,
        Status::Dropped,
        Status::Erased,
        Status::Sent,
        Status::Suppressed,
        Status::NoticeSent,
    ];

    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Retrying => "retrying",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
            Status::NoRoute => "no_route",
            Status::Unsupported => "unsupported",
            Status::Dropped => "dropped",
            Status::Erased => "erased",
            Status::Sent => "sent",
            Status::Suppressed => "suppressed",
            Status::NoticeSent => "notice_sent",
        }
    }

    /// Whether nothing more will happen on its own.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Pending | Status::Retrying)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| format!("unknown status `{text}`"))
    }
}

/// One attempt, as the history of a record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it started.
    pub at: DateTime<Utc>,
    /// The answer's status code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// What it led to.
    pub outcome: Status,
    /// Why, when it was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the answer (at most [`HISTORY_EXCERPT_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    /// How long it took.
    pub ms: u64,
}

/// Identifies one delivery: a message, one of its recipients, one target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    /// SES's message id.
    pub message_id: String,
    /// A digest of recipient and target, so the key holds no address.
    pub delivery_id: String,
}

impl DeliveryKey {
    /// The key of delivering `message_id` for `recipient` to `target`.
    pub fn new(message_id: &str, recipient: &str, target: &str) -> DeliveryKey {
        let digest = Sha256::new()
            .chain_update(recipient.to_ascii_lowercase().as_bytes())
            .chain_update([0u8])
            .chain_update(target.as_bytes())
            .finalize();
        let mut delivery_id = String::with_capacity(32);
        for byte in digest.iter().take(16) {
            delivery_id.push_str(&format!("{byte:02x}"));
        }
        DeliveryKey {
            message_id: message_id.to_owned(),
            delivery_id,
        }
    }
}

/// The record of one delivery. Optional fields are absent when unknown or redacted by the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// SES's message id (the stored object's name).
    pub message_id: String,
    /// See [`DeliveryKey`].
    pub delivery_id: String,
    /// Where the delivery stands.
    pub status: Status,
    /// The recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// `smtp` when the recipient came from the SMTP transaction, `headers` when recovered from To/Cc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_source: Option<String>,
    /// The route pattern that took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `webhook <url without credentials>` or `forward <address>`; empty when there is no target.
    pub target: String,
    /// Attempts made.
    pub attempts: u32,
    /// The `webhook-id` of every attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    /// A forward's outbound record: SES's message id of the sent copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_id: Option<String>,
    /// When SES received the message.
    pub received_at: DateTime<Utc>,
    /// The connecting client's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_ip: Option<String>,
    /// The envelope sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The `Message-ID` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id_header: Option<String>,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The last answer's status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// The start of the last answer (2 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// Milliseconds the last attempt took, rendering included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_ms: Option<u64>,
    /// Why it is not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The stored raw message.
    pub s3_key: String,
    /// When the next attempt is due, while retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first (at most [`MAX_HISTORY`]).
    #[serde(default)]
    pub history: Vec<Attempt>,
    /// Unix seconds after which DynamoDB's TTL removes the record; reads treat it as gone from then on.
    pub expires_at: i64,
    /// Keyed digests of the `From:` and `Reply-To:` addresses and of the addresses the route redacted:
    /// the index keys that find the record by them, without the record holding them.
    #[serde(default, skip_serializing_if = "Lookup::is_empty")]
    pub lookup: Lookup,
    /// Addresses waiting for the store to turn them into [`Lookup`] digests; never stored nor shown.
    #[serde(skip)]
    pub unsealed: Unsealed,
}

/// One of the people a record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// The recipient.
    Recipient,
    /// The envelope sender.
    Sender,
    /// The `From:` header's address.
    From,
    /// The `Reply-To:` header's address.
    ReplyTo,
}

impl Party {
    /// Every party, in index order.
    pub const ALL: [Party; 4] = [Party::Recipient, Party::Sender, Party::From, Party::ReplyTo];
}

/// Keyed digests standing in for addresses a record is found by but does not hold: the `From:` and
/// `Reply-To:` addresses always, the recipient and the envelope sender where the route redacts them (see
/// [`LookupKey::digest`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    /// The recipient's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The envelope sender's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The `From:` address's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The `Reply-To:` address's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

impl Lookup {
    /// Whether there is no digest at all.
    pub fn is_empty(&self) -> bool {
        self.recipient.is_none()
            && self.sender.is_none()
            && self.from.is_none()
            && self.reply_to.is_none()
    }

    fn slot(&mut self, party: Party) -> &mut Option<String> {
        match party {
            Party::Recipient => &mut self.recipient,
            Party::Sender => &mut self.sender,
            Party::From => &mut self.from,
            Party::ReplyTo => &mut self.reply_to,
        }
    }

    /// The digest standing in for `party`, if there is one.
    pub fn get(&self, party: Party) -> Option<&str> {
        match party {
            Party::Recipient => self.recipient.as_deref(),
            Party::Sender => self.sender.as_deref(),
            Party::From => self.from.as_deref(),
            Party::ReplyTo => self.reply_to.as_deref(),
        }
    }
}

/// Addresses a record is to be found by but must not hold (the header addresses, and those a route
/// redacted), until the store digests them. Two records are equal whatever they hold, and they are never
/// printed.
#[derive(Clone, Default)]
pub struct Unsealed(Vec<(Party, String)>);

impl PartialEq for Unsealed {
    fn eq(&self, _: &Unsealed) -> bool {
        true
    }
}

impl Eq for Unsealed {}

impl fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unsealed({} address(es))", self.0.len())
    }
}

/// The key of the digests that stand in for addresses ([`Lookup`]): random, one per stack (kept in its
/// table) or dev store, so a digest says nothing without the store, and nothing across stores.
#[derive(Clone)]
pub struct LookupKey {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LookupKey(…)")
    }
}

/// A lookup key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the lookup key is not the base64 of 32 bytes or more")]
pub struct BadLookupKey;

impl LookupKey {
    /// A fresh random key, as base64 text.
    pub fn generate() -> Result<String, getrandom::Error> {
        use base64::Engine;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Reads a key made by [`generate`](Self::generate).
    pub fn parse(text: &str) -> Result<LookupKey, BadLookupKey> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| BadLookupKey)?;
        if bytes.len() < 32 {
            return Err(BadLookupKey);
        }
        let mac = Hmac::<Sha256>::new_from_slice(&bytes).map_err(|_| BadLookupKey)?;
        Ok(LookupKey { mac })
    }

    /// The digest of an address (case-insensitive): `h:` and 32 hex digits. It has no `@`, so it never
    /// equals an address in an index.
    pub fn digest(&self, address: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(normalise_address(address).as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut digest = String::with_capacity(34);
        digest.push_str("h:");
        for byte in bytes.iter().take(16) {
            digest.push_str(&format!("{byte:02x}"));
        }
        digest
    }
}

impl Delivery {
    /// A record for `key` with nothing known yet but the message's place and time.
    pub fn new(
        key: &DeliveryKey,
        s3_key: &str,
        received_at: DateTime<Utc>,
        retention_days: u32,
    ) -> Delivery {
        Delivery {
            message_id: key.message_id.clone(),
            delivery_id: key.delivery_id.clone(),
            status: Status::Pending,
            recipient: None,
            recipient_source: None,
            route: None,
            target: String::new(),
            attempts: 0,
            webhook_id: None,
            outbound_id: None,
            received_at,
            sender_ip: None,
            sender: None,
            message_id_header: None,
            subject: None,
            response_status: None,
            response_body: None,
            processing_ms: None,
            error: None,
            s3_key: s3_key.to_owned(),
            next_attempt_at: None,
            history: Vec::new(),
            expires_at: expires_at(received_at, retention_days),
            lookup: Lookup::default(),
            unsealed: Unsealed::default(),
        }
    }

    /// Makes the record findable by the `From:` and `Reply-To:` addresses (the first address of each
    /// header's value), which it does not hold: the store keeps their digests ([`seal`](Self::seal)).
    pub fn set_header_parties(&mut self, from: Option<&str>, reply_to: Option<&str>) {
        let first = |value: Option<&str>| value.and_then(|v| addresses_in(v).into_iter().next());
        for (party, address) in [
            (Party::From, first(from)),
            (Party::ReplyTo, first(reply_to)),
        ] {
            if let Some(address) = address {
                self.unsealed.0.retain(|(p, _)| *p != party);
                self.unsealed.0.push((party, address));
            }
        }
    }

    /// The address the record holds as `party` (only the recipient and the envelope sender are held).
    pub fn party(&self, party: Party) -> Option<&str> {
        match party {
            Party::Recipient => self.recipient.as_deref(),
            Party::Sender => self.sender.as_deref(),
            Party::From | Party::ReplyTo => None,
        }
        .filter(|a| !a.is_empty())
    }

    /// What the index of `party` is keyed by: the address lowercased, or the digest standing in for it
    /// (always for `From:` and `Reply-To:`, and where the route redacted it).
    pub fn party_key(&self, party: Party) -> Option<String> {
        self.party(party)
            .map(normalise_address)
            .or_else(|| self.lookup.get(party).map(str::to_owned))
    }

    /// Whether the record names `address` as recipient, sender, `From:` or `Reply-To:`, in the clear or
    /// through `digest` (the address's digest under the store's lookup key).
    pub fn names_party(&self, address: &str, digest: Option<&str>) -> bool {
        let address = normalise_address(address);
        Party::ALL.into_iter().any(|party| {
            self.party(party)
                .is_some_and(|a| normalise_address(a) == address)
                || (digest.is_some() && self.lookup.get(party) == digest)
        })
    }

    /// Whether the record has addresses that [`seal`](Self::seal) must turn into digests before it is
    /// stored.
    pub fn needs_lookup_key(&self) -> bool {
        !self.unsealed.0.is_empty()
    }

    /// Turns the header addresses and those redaction removed into digests under `key`, so the record can
    /// be found by them without holding them; the addresses themselves are dropped.
    pub fn seal(&mut self, key: &LookupKey) {
        for (party, address) in std::mem::take(&mut self.unsealed.0) {
            *self.lookup.slot(party) = Some(key.digest(&address));
        }
    }

    /// The address a forward delivery sends to (its target is `forward <address>`).
    pub fn forward_address(&self) -> Option<&str> {
        self.target
            .strip_prefix("forward ")
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }

    /// The key of this record.
    pub fn key(&self) -> DeliveryKey {
        DeliveryKey {
            message_id: self.message_id.clone(),
            delivery_id: self.delivery_id.clone(),
        }
    }

    /// Whether DynamoDB's TTL may already have removed it: reads treat it as gone.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now.timestamp()
    }

    /// Adds an attempt to the history, dropping the oldest past [`MAX_HISTORY`].
    pub fn push_attempt(&mut self, attempt: Attempt) {
        self.history.push(attempt);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
    }

    /// Removes the fields a route redacts, so they are never stored. A redacted address is kept aside until
    /// the store seals it into a digest ([`seal`](Self::seal)).
    pub fn redact(&mut self, fields: &[Redact]) {
        let mut taken = Vec::new();
        for field in fields {
            match field {
                Redact::Subject => self.subject = None,
                Redact::Sender => taken.push((Party::Sender, self.sender.take())),
                Redact::Recipient => taken.push((Party::Recipient, self.recipient.take())),
                Redact::SenderIp => self.sender_ip = None,
                Redact::MessageId => self.message_id_header = None,
                Redact::ResponseBody => {
                    self.response_body = None;
                    for attempt in &mut self.history {
                        attempt.response_excerpt = None;
                    }
                }
            }
        }
        for (party, address) in taken {
            if let Some(address) = address.filter(|a| !a.is_empty()) {
                self.unsealed.0.push((party, address));
            }
        }
    }
}

/// `received_at` plus the retention, in Unix seconds, for DynamoDB's TTL.
pub fn expires_at(received_at: DateTime<Utc>, retention_days: u32) -> i64 {
    (received_at + Duration::days(i64::from(retention_days))).timestamp()
}

/// An address as logs may show it: the first character of the local part and the domain.
pub fn masked_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// A route pattern as logs may show it: wildcard patterns whole, an exact address masked.
pub fn masked_pattern(pattern: &str) -> String {
    match pattern.rsplit_once('@') {
        Some((local, _)) if local != "*" => masked_address(pattern),
        _ => pattern.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The counts of each shard for ids hashed to `points` (see [`shard_point`]).
    fn spread(points: impl Iterator<Item = u64>, shards: u32) -> Vec<u64> {
        let mut counts = vec![0u64; shards as usize];
        for point in points {
            counts[(point % u64::from(shards)) as usize] += 1;
        }
        counts
    }

    /// Every shard within 1.5 times of an even share, above and below.
    fn assert_even(counts: &[u64], what: &str) {
        let total: u64 = counts.iter().sum();
        let even = total as f64 / counts.len() as f64;
        for (shard, &count) in counts.iter().enumerate() {
            let ratio = count as f64 / even;
            assert!(
                (1.0 / 1.5..=1.5).contains(&ratio),
                "{what}: shard {shard} holds {count} of {total} ({ratio:.3} of an even share)"
            );
        }
    }

    #[test]
    fn a_million_message_ids_spread_evenly_over_the_shards_of_one_day_and_of_one_address() {
        // A day of SES message ids as SES writes them: 40 lower-case letters and digits, here a counter
        // and a xorshift's letters, so neighbours share long prefixes.
        let mut state: u64 = 0x5eed_1234_abcd_0001;
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut id = String::with_capacity(40);
        let day: Vec<u64> = (0..1_000_000u64)
            .map(|n| {
                id.clear();
                id.push_str(&format!("{n:012}"));
                for _ in 0..28 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    id.push(alphabet[(state % 36) as usize] as char);
                }
                if n % 100_000 == 0 {
                    assert_eq!(index_shard(&id, 8) as u64, shard_point(&id) % 8);
                }
                shard_point(&id)
            })
            .collect();
        // And ids that differ in a counter only (the worst case for a weak hash).
        let sequential: Vec<u64> = (0..1_000_000u64)
            .map(|n| {
                shard_point(&format!(
                    "0100019a2b3c4d5e-{n:08x}-0000-0000-0000-000000000000-000000"
                ))
            })
            .collect();
        for shards in [DEFAULT_INDEX_SHARDS, 2, 3, 16, MAX_INDEX_SHARDS] {
            // One day: every message of it.
            assert_even(
                &spread(day.iter().copied(), shards),
                &format!("one day, {shards} shards"),
            );
            assert_even(
                &spread(sequential.iter().copied(), shards),
                &format!("sequential ids, {shards} shards"),
            );
            // One address among ten: every tenth message of the day.
            assert_even(
                &spread(day.iter().copied().step_by(10), shards),
                &format!("one address, {shards} shards"),
            );
        }
        let eight = spread(day.iter().copied(), DEFAULT_INDEX_SHARDS);
        let (min, max) = (eight.iter().min().unwrap(), eight.iter().max().unwrap());
        // Far inside the bound: 125,000 each, give or take a few hundred.
        assert!(max - min < 2_000, "{eight:?}");
    }

    #[test]
    fn the_shard_of_an_id_never_changes() {
        // Listings find an entry only where this puts it: these values are fixed for good.
        assert_eq!(index_shard("m1", 8), index_shard("m1", 8));
        let fixed: Vec<u32> = [
            "m1",
            "0100019a2b3c4d5e",
            "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g81",
        ]
        .iter()
        .map(|id| index_shard(id, 8))
        .collect();
        assert_eq!(
            fixed,
            [1, 7, 2],
            "SHA-256, first eight bytes big-endian, modulo 8"
        );
        assert_eq!(index_shard("anything", 1), 0);
        assert_eq!(index_shard("anything", 0), 0);
    }

    #[test]
    fn patterns_in_logs_hold_no_address() {
        assert_eq!(masked_pattern("support@example.com"), "s***@example.com");
        assert_eq!(masked_pattern("*@example.com"), "*@example.com");
        assert_eq!(masked_pattern("*@*.example.com"), "*@*.example.com");
        assert_eq!(masked_pattern("*"), "*");
    }

    #[test]
    fn keys_hold_no_address_and_are_stable() {
        let a = DeliveryKey::new("m1", "Support@Example.com", "webhook https://x");
        let b = DeliveryKey::new("m1", "support@example.com", "webhook https://x");
        assert_eq!(a, b);
        assert!(!a.delivery_id.contains('@'));
        assert_ne!(
            a,
            DeliveryKey::new("m1", "support@example.com", "webhook https://y")
        );
    }

    #[test]
    fn retention_and_redaction() {
        let received: DateTime<Utc> = "2024-11-05T09:14:07Z".parse().unwrap();
        let key = DeliveryKey::new("m1", "a@b.example", "t");
        let mut record = Delivery::new(&key, "inbound/m1", received, 60);
        assert_eq!(record.expires_at, received.timestamp() + 60 * 86_400);
        assert!(!record.is_expired(received));
        assert!(record.is_expired(received + Duration::days(61)));
        record.subject = Some("s".into());
        record.sender = Some("x@y.example".into());
        record.response_body = Some("ok".into());
        record.push_attempt(Attempt {
            at: received,
            status_code: Some(200),
            outcome: Status::Delivered,
            error: None,
            response_excerpt: Some("ok".into()),
            ms: 3,
        });
        record.redact(&[Redact::Subject, Redact::Sender, Redact::ResponseBody]);
        assert_eq!(record.subject, None);
        assert_eq!(record.sender, None);
        assert_eq!(record.response_body, None);
        assert_eq!(record.history[0].response_excerpt, None);
    }

    #[test]
    fn history_is_bounded_and_addresses_masked() {
        let received = Utc::now();
        let mut record = Delivery::new(&DeliveryKey::new("m", "r", "t"), "k", received, 60);
        for _ in 0..(MAX_HISTORY + 5) {
            record.push_attempt(Attempt {
                at: received,
                status_code: None,
                outcome: Status::Retrying,
                error: None,
                response_excerpt: None,
                ms: 0,
            });
        }
        assert_eq!(record.history.len(), MAX_HISTORY);
        assert_eq!(masked_address("support@example.com"), "s***@example.com");
        assert_eq!("no_route".parse::<Status>().unwrap(), Status::NoRoute);
    }

    #[test]
    fn header_and_redacted_addresses_are_kept_only_as_keyed_digests() {
        let key = LookupKey::parse(&LookupKey::generate().unwrap()).unwrap();
        let mut record = Delivery::new(&DeliveryKey::new("m", "r", "t"), "k", Utc::now(), 60);
        record.recipient = Some("Private@Mail.Example.com".to_owned());
        record.sender = Some("bounces@esp.example".to_owned());
        record.set_header_parties(
            Some("Carla <Carla@Example.org>"),
            Some("\"Carla (other)\" <carla.other@example.org>"),
        );
        record.redact(&[Redact::Recipient]);
        assert!(record.needs_lookup_key());
        record.seal(&key);
        assert!(!record.needs_lookup_key());

        let json = serde_json::to_string(&record).unwrap();
        for address in ["carla", "private@"] {
            assert!(!json.to_lowercase().contains(address), "{json}");
        }
        assert_eq!(
            record.party_key(Party::Sender).unwrap(),
            "bounces@esp.example"
        );
        assert_eq!(
            record.party_key(Party::From).unwrap(),
            key.digest("carla@example.org")
        );
        assert_eq!(
            record.party_key(Party::Recipient).unwrap(),
            key.digest("private@mail.example.com")
        );
        let digest = key.digest("CARLA@example.org");
        assert!(record.names_party("carla@example.org", Some(&digest)));
        assert!(
            !record.names_party("carla@example.org", None),
            "not in the clear"
        );
        assert!(record.names_party("Bounces@esp.example", None));
        let other = key.digest("carla.other@example.org");
        assert!(record.names_party("carla.other@example.org", Some(&other)));
        // Another store's key gives other digests.
        let elsewhere = LookupKey::parse(&LookupKey::generate().unwrap()).unwrap();
        assert_ne!(elsewhere.digest("carla@example.org"), digest);
        assert!(!digest.contains('@'));
        // Read back, the digests stay; the addresses never come back.
        let back: Delivery = serde_json::from_str(&json).unwrap();
        assert_eq!(back.lookup, record.lookup);
        assert!(!back.needs_lookup_key());
    }
}
