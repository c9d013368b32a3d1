//! What one invocation may spend: the time before its deadline, and the memory of the messages it holds at
//! once. Lambda ends a function that runs past either, and takes the whole batch with it; these budgets
//! make the function hand work back before that happens.

use std::time::{Duration, Instant};

/// Time to keep after the last attempt of an invocation: writing its record and answering the batch.
pub const RESERVE: Duration = Duration::from_secs(5);

/// When the current invocation must be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// No deadline (`mailroom dev`, tools).
    pub fn none() -> Deadline {
        Deadline { at: None }
    }

    /// A deadline at `at`.
    pub fn at(at: Instant) -> Deadline {
        Deadline { at: Some(at) }
    }

    /// A deadline `left` from now.
    pub fn after(left: Duration) -> Deadline {
        Deadline::at(Instant::now() + left)
    }

    /// Lambda's deadline, given in Unix milliseconds; 0 (a context without one: tools, tests) is none.
    pub fn from_unix_millis(deadline_ms: u64) -> Deadline {
        if deadline_ms == 0 {
            return Deadline::none();
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Deadline::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    /// Time left, or `None` when there is no deadline.
    pub fn left(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether `needed` still fits before the deadline, with [`RESERVE`] to spare.
    pub fn allows(&self, needed: Duration) -> bool {
        self.left().is_none_or(|left| left >= needed + RESERVE)
    }

    /// The longest an attempt that may take `limit` can be given now: `limit`, or less when the deadline
    /// (minus [`RESERVE`]) comes first.
    pub fn bound(&self, limit: Duration) -> Duration {
        self.left()
            .map_or(limit, |left| limit.min(left.saturating_sub(RESERVE)))
    }
}

/// Bytes of memory the messages of one invocation may take at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    bytes: u64,
}

/// Memory the process needs besides the messages (code, runtime, SDK clients, buffers), measured at
/// 20–25 MiB for the inbound function; rounded up.
pub const BASELINE_BYTES: u64 = 40 << 20;

/// The share of the function's memory the budget plans for; the rest is headroom for the allocator.
const PLANNED_SHARE: f64 = 0.9;

impl MemoryBudget {
    /// A budget of `bytes` for messages.
    pub fn bytes(bytes: u64) -> MemoryBudget {
        MemoryBudget { bytes }
    }

    /// No limit (`mailroom dev`, tools).
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget { bytes: u64::MAX }
    }

    /// The budget of a function given `megabytes` of memory (Lambda's `MemorySize`): 90 % of it, less
    /// [`BASELINE_BYTES`].
    pub fn for_function_memory(megabytes: u64) -> MemoryBudget {
        let planned = (megabytes as f64 * f64::from(1u32 << 20) * PLANNED_SHARE) as u64;
        MemoryBudget {
            bytes: planned.saturating_sub(BASELINE_BYTES),
        }
    }

    /// The bytes this budget allows.
    pub fn limit(&self) -> u64 {
        self.bytes
    }

    /// What handling a stored message of `size` bytes may take at its peak, whatever its route: a forward
    /// is the most, about 5.3x (the raw bytes, the decoded attachments, the rewritten copy, and the SDK's
    /// base64 JSON of it while it grows); an inline JSON POST about 2.3x (bench/README.md).
    pub fn cost(size: u64) -> u64 {
        size.saturating_mul(6) + (2 << 20)
    }

    /// Splits messages of the given sizes (in batch order) into waves that each fit the budget; a wave runs
    /// at once, waves one after the other. A message larger than the whole budget gets a wave to itself.
    /// An unknown size (`None`) is taken for a small message: reading it finds out what is wrong.
    pub fn waves(&self, sizes: &[Option<u64>]) -> Vec<Vec<usize>> {
        let mut waves: Vec<Vec<usize>> = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        let mut used = 0u64;
        for (index, size) in sizes.iter().enumerate() {
            let cost = MemoryBudget::cost(size.unwrap_or(0));
            if !current.is_empty() && used.saturating_add(cost) > self.bytes {
                waves.push(std::mem::take(&mut current));
                used = 0;
            }
            current.push(index);
            used = used.saturating_add(cost);
        }
        if !current.is_empty() {
            waves.push(current);
        }
        waves
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    #[test]
    fn large_messages_go_one_at_a_time_and_small_ones_together() {
        let budget = MemoryBudget::for_function_memory(512);
        assert_eq!(budget.limit(), 441_240_780);
        let five_large = [Some(40 * MB); 5];
        assert_eq!(
            budget.waves(&five_large),
            vec![vec![0], vec![1], vec![2], vec![3], vec![4]]
        );
        let mixed = [
            Some(14_400_000),
            Some(14_400_000),
            Some(14_400_000),
            Some(14_400_000),
            Some(14_400_000),
        ];
        assert_eq!(budget.waves(&mixed), vec![vec![0, 1, 2, 3], vec![4]]);
        let small = [Some(20_000), None, Some(200_000), Some(5_000), Some(1)];
        assert_eq!(budget.waves(&small), vec![vec![0, 1, 2, 3, 4]]);
        // Even a message over the whole budget is handled, alone.
        let tiny = MemoryBudget::bytes(MB);
        assert_eq!(
            tiny.waves(&[Some(48 * MB), Some(1)]),
            vec![vec![0], vec![1]]
        );
        assert_eq!(
            MemoryBudget::unlimited().waves(&five_large),
            vec![vec![0, 1, 2, 3, 4]]
        );
    }

    #[test]
    fn deadlines_keep_a_reserve() {
        assert!(Deadline::none().allows(Duration::from_secs(3600)));
        assert_eq!(
            Deadline::none().bound(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        let soon = Deadline::after(Duration::from_secs(20));
        assert!(soon.allows(Duration::from_secs(10)));
        assert!(!soon.allows(Duration::from_secs(16)));
        assert!(soon.bound(Duration::from_secs(30)) <= Duration::from_secs(15));
        let past = Deadline::after(Duration::ZERO);
        assert_eq!(past.bound(Duration::from_secs(30)), Duration::ZERO);
        assert!(!past.allows(Duration::ZERO));
    }
}
