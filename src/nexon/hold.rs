//! Holds: after the upstream says "maintenance" (00010 / 00011) or "this key is refused" (00002 / 00005), no
//! call goes upstream for a while — the read path serves stale copies only — and then exactly one call
//! checks whether it is over.
//!
//! Contract:
//! - [`Holds::enter`] starts (or extends) a hold for a reason, code and duration. While it lasts,
//!   [`Holds::check`] fails at once with [`NexonError::Held`] (its `Retry-After` is the time left).
//! - When it ends, the next caller gets a [`HoldProbe`] and makes the one call that checks; everyone else is
//!   still held until that probe resolves. The probe resolves by [`HoldProbe::clear`] (the upstream answered
//!   something else: the hold is over) or by the caller entering the hold again; a probe dropped unresolved
//!   (its caller was cancelled) lets the next caller probe.
//! - [`Holds::is_holding`] is read on every cached answer: without a hold it is one atomic load (the mutex is
//!   taken only while a hold exists), so request threads never contend on it in normal operation.
//! - State is reported by [`Holds::status`] (for `/health/ready`) and the `maple_upstream_maintenance` /
//!   `maple_upstream_key_refused` gauges (1 while held); entering is counted in
//!   `maple_upstream_holds_total{reason}`.
//!
//! Why: during maintenance every call fails for minutes; calling anyway only burns the rate budget and
//! delays answers that the stale copy could give at once. A refused key fails every call until an operator
//! acts: hammering the upstream with it helps nobody ("do not hammer").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::error::{HoldReason, NexonError};

/// Gauge: 1 while calls are held off for maintenance.
pub const MAINTENANCE: &str = "maple_upstream_maintenance";
/// Gauge: 1 while calls are held off because the key was refused.
pub const KEY_REFUSED: &str = "maple_upstream_key_refused";
/// Counter of holds entered, by reason.
pub const HOLDS_TOTAL: &str = "maple_upstream_holds_total";

#[derive(Clone, Copy, Debug)]
struct Active {
    reason: HoldReason,
    code: &'static str,
    since: Instant,
    until: Instant,
    probing: bool,
}

/// The current hold, as reported.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HoldStatus {
    pub reason: HoldReason,
    pub code: &'static str,
    /// Milliseconds since the hold began.
    pub held_for_ms: u64,
    /// Milliseconds until the next call may check (0: the next call checks).
    pub retry_in_ms: u64,
}

/// The hold state (cheap to clone; clones share it).
#[derive(Clone, Default, Debug)]
pub struct Holds {
    inner: Arc<HoldState>,
}

#[derive(Default, Debug)]
struct HoldState {
    active: Mutex<Option<Active>>,
    /// Whether `active` is `Some`; written under the mutex, read without it by [`Holds::is_holding`].
    present: AtomicBool,
}

impl HoldState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Active>> {
        self.active.lock().expect("hold lock poisoned")
    }
}

/// The right to make the one call that checks whether a hold is over.
#[derive(Debug)]
pub struct HoldProbe {
    holds: Holds,
    resolved: bool,
}

fn gauge_for(reason: HoldReason) -> &'static str {
    match reason {
        HoldReason::Maintenance => MAINTENANCE,
        HoldReason::Auth => KEY_REFUSED,
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

impl Holds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts or extends a hold.
    pub fn enter(&self, reason: HoldReason, code: &'static str, duration: Duration) {
        let now = Instant::now();
        let mut g = self.inner.lock();
        let since = match *g {
            Some(a) if a.reason == reason => a.since,
            Some(a) => {
                metrics::gauge!(gauge_for(a.reason)).set(0.0);
                now
            }
            None => now,
        };
        let fresh = !matches!(*g, Some(a) if a.reason == reason);
        *g = Some(Active {
            reason,
            code,
            since,
            until: now + duration,
            probing: false,
        });
        self.inner.present.store(true, Ordering::Release);
        drop(g);
        metrics::gauge!(gauge_for(reason)).set(1.0);
        if fresh {
            metrics::counter!(HOLDS_TOTAL, "reason" => reason.as_str()).increment(1);
        }
    }

    /// `Ok(None)`: no hold. `Ok(Some(probe))`: a hold ended and this caller checks. `Err`: held.
    pub fn check(&self) -> Result<Option<HoldProbe>, NexonError> {
        let now = Instant::now();
        let mut g = self.inner.lock();
        let Some(a) = g.as_mut() else {
            return Ok(None);
        };
        if now >= a.until && !a.probing {
            a.probing = true;
            return Ok(Some(HoldProbe {
                holds: self.clone(),
                resolved: false,
            }));
        }
        Err(NexonError::Held {
            reason: a.reason,
            code: a.code,
            retry_after: ceil_secs(a.until.saturating_duration_since(now)),
        })
    }

    /// Ends any hold.
    pub fn clear(&self) {
        let old = {
            let mut g = self.inner.lock();
            self.inner.present.store(false, Ordering::Release);
            g.take()
        };
        if let Some(a) = old {
            metrics::gauge!(gauge_for(a.reason)).set(0.0);
            tracing::info!(
                reason = a.reason.as_str(),
                held_for_s = a.since.elapsed().as_secs(),
                "upstream hold over: calling the upstream again"
            );
        }
    }

    /// True while no call would be made (held and not due for a check).
    pub fn is_holding(&self) -> bool {
        if !self.inner.present.load(Ordering::Acquire) {
            return false;
        }
        match *self.inner.lock() {
            Some(a) => Instant::now() < a.until || a.probing,
            None => false,
        }
    }

    pub fn status(&self) -> Option<HoldStatus> {
        let now = Instant::now();
        let g = self.inner.lock();
        g.map(|a| HoldStatus {
            reason: a.reason,
            code: a.code,
            held_for_ms: now.saturating_duration_since(a.since).as_millis() as u64,
            retry_in_ms: super::breaker::ceil_ms(a.until.saturating_duration_since(now)),
        })
    }
}

impl HoldProbe {
    /// The upstream answered something other than the held condition: the hold is over.
    pub fn clear(mut self) {
        self.resolved = true;
        self.holds.clear();
    }

    /// The held condition is still there (the caller has entered the hold again).
    pub fn still_held(mut self) {
        self.resolved = true;
    }
}

impl Drop for HoldProbe {
    fn drop(&mut self) {
        if self.resolved {
            return;
        }
        if let Some(a) = self.holds.inner.lock().as_mut() {
            a.probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(300);

    #[tokio::test(start_paused = true)]
    async fn held_until_the_end_then_exactly_one_probe() {
        let h = Holds::new();
        assert!(h.check().unwrap().is_none());
        h.enter(HoldReason::Maintenance, "OPENAPI00011", HOLD);
        match h.check() {
            Err(NexonError::Held {
                reason: HoldReason::Maintenance,
                code: "OPENAPI00011",
                retry_after: 300,
            }) => {}
            other => panic!("{other:?}"),
        }
        tokio::time::advance(Duration::from_millis(299_500)).await;
        assert!(matches!(
            h.check(),
            Err(NexonError::Held { retry_after: 1, .. })
        ));
        tokio::time::advance(Duration::from_millis(500)).await;
        let probe = h.check().unwrap().expect("the first caller probes");
        assert!(h.check().is_err(), "others wait for the probe");
        assert!(h.is_holding());
        probe.clear();
        assert!(h.check().unwrap().is_none());
        assert!(h.status().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn is_holding_follows_enter_probe_and_clear() {
        let h = Holds::new();
        assert!(!h.is_holding(), "no hold yet");
        h.enter(
            HoldReason::Maintenance,
            "OPENAPI00010",
            Duration::from_secs(10),
        );
        assert!(h.is_holding());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!h.is_holding(), "over and nobody probing");
        let probe = h.check().unwrap().expect("a probe");
        assert!(h.is_holding(), "held while the probe runs");
        drop(probe);
        assert!(
            !h.is_holding(),
            "an unresolved probe lets the next caller probe"
        );
        h.enter(HoldReason::Auth, "OPENAPI00005", Duration::from_secs(60));
        assert!(h.is_holding(), "a new hold after the old one ended");
        h.clear();
        assert!(!h.is_holding(), "cleared");
        h.enter(HoldReason::Auth, "OPENAPI00005", Duration::from_secs(60));
        assert!(h.is_holding(), "held again after a clear");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_finds_the_condition_again_extends_the_hold() {
        let h = Holds::new();
        h.enter(HoldReason::Auth, "OPENAPI00005", Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(60)).await;
        let probe = h.check().unwrap().unwrap();
        h.enter(HoldReason::Auth, "OPENAPI00005", Duration::from_secs(60));
        probe.still_held();
        let s = h.status().unwrap();
        assert_eq!(s.reason, HoldReason::Auth);
        assert_eq!(s.held_for_ms, 60_000, "the hold's start is kept");
        assert_eq!(s.retry_in_ms, 60_000);
        assert!(h.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_lets_the_next_caller_probe() {
        let h = Holds::new();
        h.enter(
            HoldReason::Maintenance,
            "OPENAPI00010",
            Duration::from_secs(1),
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(h.check().unwrap().unwrap());
        assert!(h.check().unwrap().is_some());
    }
}
