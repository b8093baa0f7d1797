//! The retry budget and the retry backoff: retries stay at or below a fixed share of calls over a sliding
//! window, and each retry waits an exponentially growing, fully jittered delay. How many calls reach the
//! upstream per second is bounded separately, by the shared rate limiter (`rate_limit`).
//!
//! Contract:
//! - [`RetryBudget::record_call`] counts a logical call; [`RetryBudget::try_retry`] allows one retry only if,
//!   counting it, retries ≤ `ratio` × calls over the last [`WINDOW`] (ten one-second buckets). There is no
//!   floor: a lone failing call is not retried, so during an outage — when nearly every call fails — upstream
//!   load stays within (1 + ratio) × the load without retries, never 3×.
//! - [`full_jitter`]: retry `n` (0-based) waits a uniform delay in `[0, min(cap, base × 2ⁿ)]` (the "full
//!   jitter" of the AWS architecture note), so synchronized clients spread out.
//! - Time is tokio's, so tests drive the window with paused time.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The sliding window over which the retry ratio holds.
pub const WINDOW: Duration = Duration::from_secs(10);
const BUCKETS: usize = 10;
/// First retry's backoff ceiling.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Largest backoff ceiling.
pub const BACKOFF_CAP: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Default, Debug)]
struct Bucket {
    calls: u64,
    retries: u64,
}

#[derive(Debug)]
struct Ring {
    buckets: [Bucket; BUCKETS],
    /// Absolute index (since `start`) of the newest bucket.
    head: u64,
}

/// Retries ≤ ratio × calls over a sliding window.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    start: Instant,
    slot: Duration,
    ring: Mutex<Ring>,
}

/// The budget's counts over the current window.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RetryBudgetStatus {
    pub ratio: f64,
    pub window_s: u64,
    pub calls: u64,
    pub retries: u64,
}

impl RetryBudget {
    pub fn new(ratio: f64) -> Self {
        RetryBudget {
            ratio: ratio.clamp(0.0, 1.0),
            start: Instant::now(),
            slot: WINDOW / BUCKETS as u32,
            ring: Mutex::new(Ring {
                buckets: [Bucket::default(); BUCKETS],
                head: 0,
            }),
        }
    }

    /// Moves the ring to the current bucket (clearing the buckets that fell out of the window).
    fn advance(&self, ring: &mut Ring) -> usize {
        let idx = (Instant::now()
            .saturating_duration_since(self.start)
            .as_nanos()
            / self.slot.as_nanos()) as u64;
        if idx > ring.head {
            let gap = (idx - ring.head).min(BUCKETS as u64);
            for i in 1..=gap {
                ring.buckets[((ring.head + i) % BUCKETS as u64) as usize] = Bucket::default();
            }
            ring.head = idx;
        }
        (ring.head % BUCKETS as u64) as usize
    }

    fn totals(ring: &Ring) -> (u64, u64) {
        ring.buckets
            .iter()
            .fold((0, 0), |(c, r), b| (c + b.calls, r + b.retries))
    }

    /// Counts one logical call.
    pub fn record_call(&self) {
        let mut ring = self.ring.lock().expect("budget lock poisoned");
        let i = self.advance(&mut ring);
        ring.buckets[i].calls += 1;
    }

    /// Takes one retry from the budget, if it allows one.
    pub fn try_retry(&self) -> bool {
        let mut ring = self.ring.lock().expect("budget lock poisoned");
        let i = self.advance(&mut ring);
        let (calls, retries) = Self::totals(&ring);
        if (retries + 1) as f64 <= self.ratio * calls as f64 {
            ring.buckets[i].retries += 1;
            true
        } else {
            false
        }
    }

    pub fn status(&self) -> RetryBudgetStatus {
        let mut ring = self.ring.lock().expect("budget lock poisoned");
        self.advance(&mut ring);
        let (calls, retries) = Self::totals(&ring);
        RetryBudgetStatus {
            ratio: self.ratio,
            window_s: WINDOW.as_secs(),
            calls,
            retries,
        }
    }
}

/// The backoff before retry `n` (0-based): uniform in `[0, min(cap, base × 2ⁿ)]`, `draw` uniform in `[0, 1)`.
pub fn full_jitter(n: u32, draw: f64) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(draw.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_stay_within_the_ratio_of_calls() {
        let b = RetryBudget::new(0.2);
        b.record_call();
        assert!(!b.try_retry(), "no floor: a lone call is not retried");
        for _ in 0..4 {
            b.record_call();
        }
        assert!(b.try_retry(), "5 calls → 1 retry");
        assert!(!b.try_retry());
        for _ in 0..95 {
            b.record_call();
        }
        let granted = (0..100).filter(|_| b.try_retry()).count();
        assert_eq!(granted, 19, "100 calls → 20 retries in all");
        assert_eq!(
            b.status(),
            RetryBudgetStatus {
                ratio: 0.2,
                window_s: 10,
                calls: 100,
                retries: 20
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides() {
        let b = RetryBudget::new(0.2);
        for _ in 0..10 {
            b.record_call();
        }
        assert!(b.try_retry());
        assert!(b.try_retry());
        assert!(!b.try_retry());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!b.try_retry(), "still inside the window");
        for _ in 0..5 {
            b.record_call();
        }
        assert!(b.try_retry(), "15 calls → 3 retries");
        tokio::time::advance(Duration::from_secs(5)).await;
        // The first 10 calls and 2 retries left the window: 5 calls and 1 retry remain.
        assert_eq!(b.status().calls, 5);
        assert_eq!(b.status().retries, 1);
        assert!(!b.try_retry());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.status().calls, 0, "a long pause clears everything");
    }

    #[test]
    fn full_jitter_is_bounded_and_grows() {
        assert_eq!(full_jitter(0, 0.0), Duration::ZERO);
        assert_eq!(full_jitter(0, 0.999_999), BACKOFF_BASE.mul_f64(0.999_999));
        assert_eq!(full_jitter(1, 0.5), Duration::from_millis(100));
        assert_eq!(full_jitter(3, 1.0), Duration::from_millis(800));
        assert_eq!(full_jitter(4, 1.0), BACKOFF_CAP);
        assert_eq!(full_jitter(40, 1.0), BACKOFF_CAP);
    }
}
