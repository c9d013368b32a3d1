//! Counts of the last [`DAYS`] days, kept in memory: per day and status, time from receipt to delivery,
//! failing targets, and what became of forwarded copies (bounces, complaints).
//!
//! A pass reads the records through the store's day listing (an index query per day and shard, never a
//! scan). The first pass reads every day; later ones only the last [`SETTLING_DAYS`], since a delivery is
//! settled once its 72 hours of retries are over and older days no longer change (but for erasure and
//! expiry, which a full pass every [`FULL_EVERY`] catches). Passes run in the background, one at a time:
//! a page never waits for one; it shows the counts of the last pass and its time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use mailroom::feedback::OutboundStatus;
use mailroom::ports::{MailSender, RecordFilter, StoreError, Webhooks};
use mailroom::record::{Delivery, Status};

use super::{Console, ConsoleMail, ConsoleStore};

/// Days counted: the records' retention.
pub const DAYS: i64 = 60;

/// Days that may still change: a delivery retries for 72 hours.
pub const SETTLING_DAYS: i64 = 4;

/// A snapshot younger than this is shown without a new pass: the counts may lag a minute, and an open
/// console reads the settling days at most once a minute.
const FRESH_FOR: Duration = Duration::seconds(60);

/// A store that takes long to answer is not kept busy: the next pass (of either kind) waits at least this
/// many times as long as the last one took, so pages asked meanwhile are not queued behind it.
pub const PACING: i32 = 5;

/// Older days are read again after this long.
const FULL_EVERY: Duration = Duration::hours(1);

/// Records one listing call asks for: enough that a shard's day is one query (a query reads at most a
/// page's share of each shard).
const READ_PAGE: usize = 5_000;

/// The counts of one day.
#[derive(Debug, Clone, Default)]
pub struct Day {
    /// Records per status, in [`Status::ALL`]'s order.
    pub statuses: [u64; Status::ALL.len()],
    /// Milliseconds from receipt to the answer that delivered, per delivered record.
    pub delivery_ms: Vec<i64>,
    /// Records that failed, were rejected or are retrying, per target.
    pub failing: HashMap<String, u64>,
    /// Forwarded copies SES took.
    pub forwards: u64,
    /// Of those, bounced.
    pub bounced: u64,
    /// Of those, complained about.
    pub complained: u64,
}

impl Day {
    fn add(&mut self, record: &Delivery, forwarded: Option<OutboundStatus>) {
        if let Some(slot) = Status::ALL
            .iter()
            .position(|s| *s == record.status)
            .and_then(|i| self.statuses.get_mut(i))
        {
            *slot += 1;
        }
        if record.status == Status::Delivered
            && let Some(last) = record.history.last()
        {
            let answered = last.at + Duration::milliseconds(last.ms as i64);
            self.delivery_ms
                .push((answered - record.received_at).num_milliseconds().max(0));
        }
        if matches!(
            record.status,
            Status::Failed | Status::Rejected | Status::Retrying
        ) && !record.target.is_empty()
        {
            *self.failing.entry(record.target.clone()).or_default() += 1;
        }
        if let Some(status) = forwarded {
            self.forwards += 1;
            self.bounced += u64::from(status == OutboundStatus::Bounced);
            self.complained += u64::from(status == OutboundStatus::Complained);
        }
    }

    /// Records of a status.
    pub fn count(&self, status: Status) -> u64 {
        Status::ALL
            .iter()
            .position(|s| *s == status)
            .and_then(|i| self.statuses.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Records of the day.
    pub fn total(&self) -> u64 {
        self.statuses.iter().sum()
    }
}

/// What a pass counted.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the pass ended.
    pub at: DateTime<Utc>,
    /// When the last pass that read every day ended.
    pub full_at: DateTime<Utc>,
    /// The days, oldest first; days without records are absent.
    pub days: BTreeMap<NaiveDate, Day>,
    /// Records the pass read.
    pub read: usize,
}

impl Snapshot {
    /// Records of the whole period.
    pub fn total(&self) -> u64 {
        self.days.values().map(Day::total).sum()
    }

    /// Records per status over the period, statuses that occur only.
    pub fn by_status(&self) -> Vec<(Status, u64)> {
        Status::ALL
            .iter()
            .map(|s| (*s, self.days.values().map(|d| d.count(*s)).sum::<u64>()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The counts, and the one pass that may be running.
#[derive(Default)]
pub struct Stats {
    current: RwLock<Option<Arc<Snapshot>>>,
    running: Arc<tokio::sync::Mutex<()>>,
    /// The one read of the newest mail that may be running (`read_tail`).
    pub(super) tail_running: Arc<tokio::sync::Mutex<()>>,
    /// Settled fates of forwarded copies (bounced, complained…), by SES message id: read once.
    settled: Mutex<HashMap<String, OutboundStatus>>,
    /// Why the last pass failed, if it did.
    error: Mutex<Option<String>>,
    /// How long the last counting pass and the last read of the newest mail took.
    took: Mutex<(Duration, Duration)>,
}

impl Stats {
    /// The last snapshot.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// Why the last pass failed, if it did.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    /// How long counts stay fresh: [`FRESH_FOR`], or [`PACING`] times the last pass.
    fn fresh_for(&self) -> Duration {
        let took = self.took.lock().map(|t| t.0).unwrap_or_default();
        FRESH_FOR.max(took * PACING)
    }

    /// How long the rows' newest mail stays fresh: `every`, or [`PACING`] times the last read.
    pub(super) fn tail_every(&self, every: Duration) -> Duration {
        let took = self.took.lock().map(|t| t.1).unwrap_or_default();
        every.max(took * PACING)
    }

    fn record(&self, counting: Option<Duration>, tail: Option<Duration>) {
        if let Ok(mut took) = self.took.lock() {
            took.0 = counting.unwrap_or(took.0);
            took.1 = tail.unwrap_or(took.1);
        }
    }
}

/// Midnight (UTC) of `days` days before `now`.
fn days_back(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    (now - Duration::days(days))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |t| t.and_utc())
}

impl<S, M, W, X> Console<S, M, W, X>
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    /// The last counts; a pass starts in the background when they are stale or missing.
    pub(super) async fn statistics(self: &Arc<Self>) -> Option<Arc<Snapshot>> {
        let current = self.stats.current();
        if current
            .as_ref()
            .is_none_or(|s| super::now() - s.at > self.stats.fresh_for())
        {
            self.start_pass();
        }
        current
    }

    fn start_pass(self: &Arc<Self>) {
        let Ok(running) = self.stats.running.clone().try_lock_owned() else {
            return;
        };
        let console = self.clone();
        tokio::spawn(async move {
            let _running = running;
            let outcome = console.count_pass().await;
            if let Ok(mut error) = console.stats.error.lock() {
                *error = outcome.err().map(|e| e.to_string());
            }
        });
    }

    /// One pass: reads the days that may have changed and keeps the others.
    pub(super) async fn count_pass(&self) -> Result<(), StoreError> {
        let now = super::now();
        let started = std::time::Instant::now();
        let previous = self.stats.current();
        let full = previous
            .as_ref()
            .is_none_or(|p| now - p.full_at > FULL_EVERY);
        let previous_full = previous.as_ref().map(|p| p.full_at);
        let since = days_back(now, if full { DAYS } else { SETTLING_DAYS });
        let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
        let mut read = 0;
        let mut rows: Vec<Delivery> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let filter = RecordFilter {
                since: Some(since),
                limit: READ_PAGE,
                ..RecordFilter::default()
            };
            let page = self.store.page(&filter, after.as_deref()).await?;
            for record in &page.records {
                let forwarded = self.forwarded_fate(record).await;
                days.entry(record.received_at.date_naive())
                    .or_default()
                    .add(record, forwarded);
            }
            read += page.records.len();
            if self.rows.is_some() && read <= super::recent::MOST_ROWS {
                rows.extend(page.records);
            }
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        if let Some(previous) = previous.filter(|_| !full) {
            for (day, counts) in previous.days.range(..since.date_naive()) {
                days.insert(*day, counts.clone());
            }
        }
        let oldest = days_back(now, DAYS).date_naive();
        days.retain(|day, _| *day >= oldest);
        let snapshot = Snapshot {
            at: super::now(),
            full_at: if full {
                now
            } else {
                previous_full.unwrap_or(now)
            },
            days,
            read,
        };
        self.keep_rows(full, since, read, &rows);
        let took = Duration::from_std(started.elapsed()).unwrap_or_default();
        self.stats.record(Some(took), None);
        if full {
            // Counts only: no address, no subject.
            eprintln!(
                "console: counted {read} records of the last {DAYS} days in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        if let Ok(mut current) = self.stats.current.write() {
            *current = Some(Arc::new(snapshot));
        }
        Ok(())
    }

    /// Hands the records a pass read to the rows the list is answered from (`recent.rs`).
    fn keep_rows(&self, full: bool, since: DateTime<Utc>, read: usize, records: &[Delivery]) {
        let Some(rows) = &self.rows else {
            return;
        };
        let Ok(mut rows) = rows.write() else {
            return;
        };
        if read > super::recent::MOST_ROWS {
            // Too many to keep: every page reads the store.
            *rows = None;
            return;
        }
        if full {
            let mut fresh = super::recent::Recent::default();
            fresh.replace_since(since, records);
            fresh.fresh_at = Some(super::now());
            *rows = Some(fresh);
        } else if let Some(kept) = rows.as_mut() {
            kept.replace_since(since, records);
            kept.drop_before(days_back(super::now(), DAYS));
        }
    }

    /// Reads the mail received since the newest row again (a little before it, for records written late)
    /// into the rows: what makes new mail appear in a stack's list.
    pub(super) async fn read_tail(&self) -> Result<(), StoreError> {
        let Some(rows) = &self.rows else {
            return Ok(());
        };
        let newest = match rows.read() {
            Ok(kept) => match kept.as_ref() {
                Some(kept) => kept.newest(),
                None => return Ok(()),
            },
            Err(_) => return Ok(()),
        };
        let now = super::now();
        let started = std::time::Instant::now();
        let since = newest.map_or(now - Duration::days(1), |n| {
            n.min(now) - Duration::seconds(30)
        });
        let mut records = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let filter = RecordFilter {
                since: Some(since),
                limit: READ_PAGE,
                ..RecordFilter::default()
            };
            let page = self.store.page(&filter, after.as_deref()).await?;
            records.extend(page.records);
            after = page.next;
            if after.is_none() || records.len() > super::recent::MOST_ROWS {
                break;
            }
        }
        if let Ok(mut kept) = rows.write()
            && let Some(kept) = kept.as_mut()
        {
            kept.replace_since(since, &records);
            kept.fresh_at = Some(now);
        }
        self.read_routes().await;
        let took = Duration::from_std(started.elapsed()).unwrap_or_default();
        self.stats.record(None, Some(took));
        Ok(())
    }

    /// What became of a forward's copy: SES's last word on it, when the record is a forward SES took.
    async fn forwarded_fate(&self, record: &Delivery) -> Option<OutboundStatus> {
        let id = record.outbound_id.as_deref()?;
        if !record.target.starts_with("forward ") || record.status != Status::Sent {
            return None;
        }
        if let Some(settled) = self.stats.settled.lock().ok()?.get(id).copied() {
            return Some(settled);
        }
        let status = match self.store.outbound(id).await {
            Ok(Some(outbound)) => outbound.status,
            _ => OutboundStatus::Sent,
        };
        if matches!(
            status,
            OutboundStatus::Bounced | OutboundStatus::Complained | OutboundStatus::Delivered
        ) && let Ok(mut settled) = self.stats.settled.lock()
        {
            settled.insert(id.to_owned(), status);
        }
        Some(status)
    }
}

/// The `p`th percentile (0–100) of `values`, by nearest rank; `None` for none.
pub fn percentile(values: &mut [i64], p: usize) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (p * values.len()).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut values: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut values, 50), Some(50));
        assert_eq!(percentile(&mut values, 95), Some(95));
        assert_eq!(percentile(&mut [7], 95), Some(7));
        assert_eq!(percentile(&mut [], 50), None);
    }

    #[test]
    fn a_day_counts_statuses_latency_and_failing_targets() {
        let mut day = Day::default();
        let delivered: Delivery = serde_json::from_value(serde_json::json!({
            "message_id": "m", "delivery_id": "d", "status": "delivered", "target": "webhook https://a/",
            "attempts": 1, "received_at": "2026-12-03T10:00:00Z", "s3_key": "k", "expires_at": 0,
            "history": [{"at": "2026-12-03T10:00:01Z", "outcome": "delivered", "ms": 250}]
        }))
        .unwrap();
        let mut failed = delivered.clone();
        failed.status = Status::Failed;
        day.add(&delivered, None);
        day.add(&failed, None);
        day.add(&failed, None);
        assert_eq!(day.count(Status::Delivered), 1);
        assert_eq!(day.count(Status::Failed), 2);
        assert_eq!(day.total(), 3);
        assert_eq!(day.delivery_ms, vec![1250]);
        assert_eq!(day.failing.get("webhook https://a/"), Some(&2));
    }
}
