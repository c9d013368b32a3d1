//! What Mailroom holds about one address, and its erasure: the use case behind `mailroom data export` and
//! `mailroom data delete`, the same on the stack and on the dev store.
//!
//! Held about an address: the delivery records where it is the recipient, the envelope sender or the
//! address of the `From:` or `Reply-To:` header (also where a route redacted it: a keyed digest stands in
//! for it), the outbound records sent to or from it and those of forwards of its mail, its suppression
//! entry and soft-bounce counts, and the stored objects of those records (the raw mail, its attachments
//! kept for links, the copies of forwards). Mail of others forwarded to the address loses only the copy
//! sent to it. Routes that name it are listed, as pattern, target kinds and hosts, but never erased: they
//! are configuration (`routes remove`).
//!
//! Erasure deletes all of it. A delivery still pending is not just deleted: its record becomes an
//! `erased` tombstone without any address or subject, and so does a record for the message as a whole, so a
//! retry or a late event finds a final record and neither delivers nor records the message again.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::feedback::{Outbound, SoftBounces, Suppression};
use crate::mail::envelope::normalise_address;
use crate::ports::{
    AddressRecords, MailLocation, ObjectEraser, OutboundStore, RouteStore, SoftBounceStore,
    StoreError, SuppressionList,
};
use crate::record::{Delivery, DeliveryKey, Status};
use crate::route::Route;

/// Everything held about an address.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    /// The address, as looked up (lowercased).
    pub address: String,
    /// Delivery records where it is the recipient, the sender (envelope, `From:`, `Reply-To:`) or the
    /// forward address.
    pub deliveries: Vec<Delivery>,
    /// The received messages it sent or received: their stored mail, attachments and forwarded copies
    /// are its data (mail of others forwarded to it is not: only the copy sent to it is).
    pub messages: Vec<String>,
    /// Outbound records sent to or from it.
    pub outbound: Vec<Outbound>,
    /// Its suppression entry.
    pub suppression: Option<Suppression>,
    /// Its recent transient bounces.
    pub soft_bounces: Option<SoftBounces>,
    /// Routes whose pattern, forward addresses or sending address name it (kept by erasure), as pattern,
    /// target kinds and hosts: an export is what the person may be handed, so it holds no secret, no
    /// token, no credentials and nobody else's address.
    pub routes: Vec<RouteSummary>,
    /// Keys of the stored objects of those records.
    pub objects: Vec<String>,
}

impl Held {
    /// Whether nothing but configuration names the address.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
            && self.outbound.is_empty()
            && self.suppression.is_none()
            && self.soft_bounces.is_none()
            && self.objects.is_empty()
    }
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Delivery records removed.
    pub deliveries: usize,
    /// Pending deliveries cancelled (their records are now `erased` tombstones without personal data).
    pub cancelled: usize,
    /// Outbound records removed.
    pub outbound: usize,
    /// Suppression entries removed.
    pub suppressions: usize,
    /// Soft-bounce counts removed.
    pub soft_bounces: usize,
    /// Stored objects removed.
    pub objects: usize,
}

/// Finds and erases what is held about addresses.
pub struct AddressData<S, O> {
    store: S,
    objects: O,
    bucket: String,
}

impl<S, O> AddressData<S, O>
where
    S: AddressRecords + OutboundStore + SuppressionList + SoftBounceStore + RouteStore,
    O: ObjectEraser,
{
    /// Works on `store` and the objects of `bucket`.
    pub fn new(store: S, objects: O, bucket: impl Into<String>) -> Self {
        AddressData {
            store,
            objects,
            bucket: bucket.into(),
        }
    }

    /// Everything held about `address`.
    pub async fn export(&self, address: &str) -> Result<Held, StoreError> {
        let address = normalise_address(address);
        let deliveries = self.store.deliveries_naming(&address).await?;
        let mut outbound = self.store.outbound_naming(&address).await?;
        // Forwards of this address's mail name other addresses, but carry its subject and, in their
        // stored copies, its mail.
        for id in deliveries.iter().filter_map(|d| d.outbound_id.as_deref()) {
            if !outbound.iter().any(|o| o.ses_message_id == id)
                && let Some(record) = self.store.outbound(id).await?
            {
                outbound.push(record);
            }
        }
        // Its own mail: it received or sent it (envelope, `From:` or `Reply-To:`), in the clear or
        // through the digest a redacting route keeps instead. Mail of others only forwarded to it is not.
        let digest = self.store.lookup_digest(&address).await?;
        let own: Vec<&Delivery> = deliveries
            .iter()
            .filter(|d| d.names_party(&address, digest.as_deref()))
            .collect();
        let messages: Vec<String> = own
            .iter()
            .map(|d| d.message_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut objects = BTreeSet::new();
        // The raw mail, by the exact key the records name (its folder holds every other message too).
        // Each message once: its deliveries all name the same raw mail.
        let raw_keys: BTreeSet<&str> = own.iter().map(|d| d.s3_key.as_str()).collect();
        for key in raw_keys {
            let found = self.objects.object_keys(&self.bucket, key).await?;
            objects.extend(found.into_iter().filter(|k| k == key));
        }
        for message_id in &messages {
            for prefix in object_prefixes(message_id) {
                objects.extend(self.objects.object_keys(&self.bucket, &prefix).await?);
            }
        }
        // What was sent to the address from other people's mail: only the copy, not their original.
        for key in outbound.iter().filter_map(|o| o.s3_key.as_deref()) {
            let found = self.objects.object_keys(&self.bucket, key).await?;
            objects.extend(found.into_iter().filter(|k| k == key));
        }
        let routes = self
            .store
            .routes()
            .await?
            .iter()
            .filter(|route| names(route, &address))
            .map(|route| RouteSummary::of(route, &address))
            .collect();
        Ok(Held {
            deliveries,
            outbound,
            suppression: self.store.suppression(&address).await?,
            soft_bounces: self.store.soft_bounces(&address).await?,
            routes,
            objects: objects.into_iter().collect(),
            messages,
            address,
        })
    }

    /// Erases what [`export`](Self::export) finds, routes aside.
    pub async fn delete(&self, held: &Held, now: DateTime<Utc>) -> Result<Erased, StoreError> {
        let mut erased = Erased::default();
        for record in &held.deliveries {
            if record.status.is_final() {
                self.store.delete_delivery(&record.key()).await?;
                erased.deliveries += 1;
            } else {
                let tombstone = tombstone(&record.key(), Some(record.expires_at), now);
                self.store.overwrite_delivery(&tombstone).await?;
                erased.cancelled += 1;
            }
        }
        // After the records: a failure recorded for the message as a whole shares the tombstone's key.
        for message_id in &held.messages {
            let tombstone = tombstone(
                &DeliveryKey::new(message_id, "", ""),
                held.deliveries
                    .iter()
                    .find(|d| &d.message_id == message_id)
                    .map(|d| d.expires_at),
                now,
            );
            self.store.overwrite_delivery(&tombstone).await?;
        }
        for record in &held.outbound {
            self.store.delete_outbound(&record.ses_message_id).await?;
            erased.outbound += 1;
        }
        if held.suppression.is_some() && self.store.unsuppress(&held.address).await? {
            erased.suppressions += 1;
        }
        if held.soft_bounces.is_some() {
            self.store.clear_soft_bounces(&held.address).await?;
            erased.soft_bounces += 1;
        }
        for key in &held.objects {
            self.objects
                .delete_object(&MailLocation {
                    bucket: self.bucket.clone(),
                    key: key.clone(),
                })
                .await?;
            erased.objects += 1;
        }
        Ok(erased)
    }
}

/// The folders of a received message's other objects: its attachments kept for links, the copies of its
/// forwards.
pub fn object_prefixes(message_id: &str) -> [String; 2] {
    [
        format!("attachments/{message_id}/"),
        format!("outbound/{message_id}/"),
    ]
}

/// A route as an export shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteSummary {
    /// The recipients it takes (`*@example.com`, an address of the operator's domain, `*`).
    pub pattern: String,
    /// How it names the address: `pattern`, `forward` (mail is forwarded to it), `forward_from` (forwards
    /// are sent from it).
    pub names_address_as: Vec<&'static str>,
    /// Where its mail goes: kind and host only.
    pub targets: Vec<TargetSummary>,
}

/// One target of a route, as an export shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetSummary {
    /// `webhook`, `forward` or `events` (where delivery events of forwards are posted).
    pub kind: &'static str,
    /// The webhook's scheme, host and port, or the domain mail is forwarded to.
    pub host: String,
}

impl RouteSummary {
    /// The summary of `route` for an export about `address`.
    pub fn of(route: &Route, address: &str) -> RouteSummary {
        let same = |other: &str| normalise_address(other) == address;
        let mut names_address_as = Vec::new();
        if same(&route.pattern.to_string()) {
            names_address_as.push("pattern");
        }
        if route.forward.iter().any(|a| same(a)) {
            names_address_as.push("forward");
        }
        if route.forward_from.as_deref().is_some_and(same) {
            names_address_as.push("forward_from");
        }
        let mut targets = Vec::new();
        if let Some(webhook) = &route.webhook {
            targets.push(TargetSummary {
                kind: "webhook",
                host: crate::route::url_origin(&webhook.url),
            });
        }
        // Other forward addresses are other people's: only their domains are said.
        let domains: BTreeSet<String> = route
            .forward
            .iter()
            .map(|a| {
                a.rsplit_once('@')
                    .map(|(_, domain)| domain.to_ascii_lowercase())
                    .unwrap_or_default()
            })
            .collect();
        targets.extend(domains.into_iter().map(|host| TargetSummary {
            kind: "forward",
            host,
        }));
        if let Some(events) = &route.events {
            targets.push(TargetSummary {
                kind: "events",
                host: crate::route::url_origin(events),
            });
        }
        RouteSummary {
            pattern: route.pattern.to_string(),
            names_address_as,
            targets,
        }
    }
}

/// Whether a route names the address: as its exact pattern, a forward address or its sending address.
fn names(route: &Route, address: &str) -> bool {
    let same = |other: &str| normalise_address(other) == address;
    same(&route.pattern.to_string())
        || route.forward.iter().any(|a| same(a))
        || route.forward_from.as_deref().is_some_and(same)
}

/// A final record with nothing personal in it, kept as long as the record it replaces would have been.
fn tombstone(key: &DeliveryKey, expires_at: Option<i64>, now: DateTime<Utc>) -> Delivery {
    let mut record = Delivery::new(key, "", now, crate::record::DEFAULT_RETENTION_DAYS);
    if let Some(expires_at) = expires_at {
        record.expires_at = expires_at;
    }
    record.status = Status::Erased;
    record.error = Some("erased on request".to_owned());
    record
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_holds_nothing_personal() {
        let key = DeliveryKey::new("m1", "ana@example.net", "forward ana@example.net");
        let record = tombstone(&key, Some(42), Utc::now());
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains('@'), "{json}");
        assert_eq!(record.status, Status::Erased);
        assert!(record.status.is_final());
        assert_eq!(record.expires_at, 42);
    }

    #[test]
    fn routes_name_an_address_by_pattern_forward_or_sender() {
        let mut route = Route::new("*@example.com".parse().unwrap());
        assert!(!names(&route, "ana@example.net"));
        route.forward = vec!["Ana@Example.net".to_owned()];
        assert!(names(&route, "ana@example.net"));
        let exact = Route::new("ana@example.net".parse().unwrap());
        assert!(names(&exact, "ana@example.net"));
    }
}
