//! The background loops and the bounded drain.
//!
//! Guarantee: [`LikeService::run_flush_loop`] flushes every flush interval and
//! [`LikeService::run_sync_loop`] syncs every sync interval (±20 % jitter) until cancelled; on its way out
//! the sync loop drains for at most 3 s. [`LikeService::drain`] flushes and syncs until the buffer is
//! empty or its budget is spent and returns, in [`DrainReport::remaining`], every entry not yet known to
//! be in MySQL — what the shutdown sequence writes to the backup file.
//!
//! Failure modes: a failing flush or sync is logged once per streak (and once when it recovers) and
//! retried every interval; the entries stay buffered meanwhile. A drain never fails: what it could not
//! move is in its report.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LikeEntry, LikeService, SyncOutcome};

/// What [`LikeService::drain`] achieved.
#[derive(Clone, Debug, Default)]
pub struct DrainReport {
    pub flushed: usize,
    pub synced: usize,
    /// Entries not known to be in MySQL when the budget ran out (back them up).
    pub remaining: Vec<LikeEntry>,
}

impl LikeService {
    /// Flushes and syncs until the buffer is empty or `budget` is spent; returns what is still pending.
    pub async fn drain(&self, budget: Duration) -> DrainReport {
        let deadline = Instant::now() + budget;
        let mut report = DrainReport::default();
        let pause = Duration::from_millis(50);
        while self.buffered() > 0 && Instant::now() < deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok(n)) = tokio::time::timeout(remaining, self.flush_once()).await {
                report.flushed += n;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok(SyncOutcome::Synced { entries, .. })) =
                tokio::time::timeout(remaining, self.sync_once()).await
            {
                report.synced += entries;
            }
            // Confirmations arrive with the next flush (it reads the watermark).
            let remaining = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(remaining, self.flush_once()).await;
            if self.buffered() > 0 {
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
            }
        }
        report.remaining = self.pending_entries();
        report
    }

    /// Flushes to Redis every flush interval until cancelled (returns at once without Redis).
    pub async fn run_flush_loop(self, cancel: CancellationToken) {
        if self.inner.redis.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(self.inner.cfg.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.flush_once().await {
                Ok(_) => {
                    if failing {
                        tracing::info!("like flush to redis recovered");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, buffered = self.buffered(), "like flush to redis failed; likes stay buffered");
                    }
                    failing = true;
                }
            }
        }
    }

    /// Syncs every sync interval (±20 % jitter) until cancelled, then drains for at most 3 s (the
    /// shutdown coordinator backs up whatever is left, see [`LikeService::pending_entries`]).
    pub async fn run_sync_loop(self, cancel: CancellationToken) {
        let mut failing = false;
        loop {
            let base = self.inner.cfg.sync_interval.as_millis() as u64;
            let jitter = base / 5;
            let d = Duration::from_millis(base - jitter + rand::random::<u64>() % (2 * jitter + 1));
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(d) => {}
            }
            match self.sync_once().await {
                Ok(_) => {
                    if failing {
                        tracing::info!("like sync recovered");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, buffered = self.buffered(), "like sync failed; retrying every interval");
                    }
                    failing = true;
                }
            }
        }
        let report = self.drain(Duration::from_secs(3)).await;
        if !report.remaining.is_empty() {
            tracing::warn!(
                remaining = report.remaining.len(),
                "likes still pending at shutdown (not yet known to be in the database)"
            );
        }
    }
}
