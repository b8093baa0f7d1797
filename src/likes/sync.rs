//! The sync: pending likes into the database, one syncer at a time, under the lock and its fence.
//!
//! Guarantee: a sync round runs under the `likes-sync` lock ([`SYNC_LOCK`]) and applies each batch in one
//! transaction fenced by the lock's token (a syncer whose lease was taken over cannot write) that records
//! the batch id: a batch applied twice counts once, and pairs already stored are not counted again.
//!
//! * **From Redis** (the lock's Redis tier; the others skip their turn): batches of
//!   `MAPLE_LIKE_SYNC_BATCH` are claimed off the queue with an id (they stay at its head, recorded as in
//!   flight), applied, then the cached counts are raised, the pairs leave the pending set and the batch is
//!   acknowledged (trimmed off, advancing each source's watermark). A syncer that dies between claim and
//!   acknowledgement leaves the batch in flight; the next one applies it again (a no-op) and acknowledges
//!   it.
//! * **Direct** (Redis down or absent: the lock's fallback tier): this instance's own buffer, pushed or
//!   not, goes straight to the database in batches whose id is derived from their entry ids, holding the
//!   count view exclusively; applied entries leave the buffer.
//! * [`LikeService::apply_entries`]: given entries under a given batch id (recovery of backed-up entries).
//!
//! Every staging script of the Redis path (claim, settle, ack) is a durable write (`crate::redis::durable`):
//! the round moves on only once a replica has it. Redis connected but unable to take durable writes
//! (Sentinel mode, no replica online) counts as Redis down: the direct path.
//!
//! Failure modes: another holder of the lock → [`SyncOutcome::Busy`]; a lock lost mid-round, a database
//! or Redis error — a staging write no replica acknowledged included — → an error for this round
//! (`maple_like_sync_failures_total`), the entries stay where
//! they were (queue or buffer) and the next round retries them. A round stops after one sync interval
//! (at least one second) so the lock is not held indefinitely.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::lock::{LockError, LockGuard, LockTier};
use crate::redis::RedisHandle;
use crate::store::{AppliedBatch, LikeBatch, LikeRecord};

use super::buffer::pair_key;
use super::staging::{self, QueueItem};
use super::{JOB_REDIS_TIMEOUT, LikeEntry, LikeError, LikeService, redis_err, timed_out};

/// The lock one syncer holds at a time.
pub const SYNC_LOCK: &str = "likes-sync";
/// Duration of one sync batch into the database, by path (`redis`, `direct`) (seconds).
pub const LIKE_SYNC_SECONDS: &str = "maple_like_sync_batch_duration_seconds";
/// Failed sync rounds, by path.
pub const LIKE_SYNC_FAILURES_TOTAL: &str = "maple_like_sync_failures_total";
/// Entries moved into the database, by path (`direct` is the fallback with Redis down).
pub const LIKE_SYNCED_TOTAL: &str = "maple_like_synced_entries_total";

/// About how many pairs (and cached counts) one [`staging::SETTLE`] call carries; a character is never
/// split, so a call may carry more when one character has more pairs in a batch.
const SYNCED_CHUNK: usize = 250;

/// How the database was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPath {
    /// From the Redis queue, under the Redis lock.
    Redis,
    /// From this instance's buffer, under the fallback lock (Redis unavailable, or no Redis).
    Direct,
}

impl SyncPath {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncPath::Redis => "redis",
            SyncPath::Direct => "direct",
        }
    }
}

/// What one sync round did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Nothing to do (direct path with an empty buffer).
    Idle,
    /// Another instance holds the sync lock.
    Busy,
    Synced {
        path: SyncPath,
        entries: usize,
        inserted: u64,
    },
}

impl LikeService {
    /// One sync round (see the module documentation).
    pub async fn sync_once(&self) -> Result<SyncOutcome, LikeError> {
        let _one = self.inner.syncing.lock().await;
        // Redis without a replica to acknowledge durable writes is treated as down (ADR 0012).
        let staging = match self.inner.redis.as_ref() {
            Some(r) => self.staging_usable(r).await,
            None => false,
        };
        let redis_path = staging && self.inner.locks.preferred_tier() == LockTier::Redis;
        if !redis_path && self.buffered() == 0 {
            return Ok(SyncOutcome::Idle);
        }
        let wait = if redis_path {
            Duration::ZERO
        } else {
            (self.inner.cfg.sync_interval / 2).min(Duration::from_secs(2))
        };
        let guard = match self
            .inner
            .locks
            .acquire(SYNC_LOCK, wait, self.inner.cfg.sync_lease)
            .await
        {
            Ok(g) => g,
            Err(LockError::Timeout { .. }) => return Ok(SyncOutcome::Busy),
            Err(e) => {
                metrics::counter!(LIKE_SYNC_FAILURES_TOTAL, "path" => "lock").increment(1);
                return Err(e.into());
            }
        };
        let path = if guard.tier() == LockTier::Redis && staging {
            SyncPath::Redis
        } else {
            SyncPath::Direct
        };
        let r = match path {
            SyncPath::Redis => self.sync_from_redis(&guard).await,
            SyncPath::Direct => self.sync_direct(&guard).await,
        };
        if let Err(e) = guard.release().await {
            tracing::debug!(error = %e, "sync lock release");
        }
        if r.is_err() {
            metrics::counter!(LIKE_SYNC_FAILURES_TOTAL, "path" => path.as_str()).increment(1);
        }
        self.report_depth();
        r
    }

    async fn sync_from_redis(&self, guard: &LockGuard) -> Result<SyncOutcome, LikeError> {
        let r = self.inner.redis.as_ref().expect("redis path");
        let deadline = Instant::now() + self.inner.cfg.sync_interval.max(Duration::from_secs(1));
        let (mut entries, mut inserted) = (0, 0);
        loop {
            if !guard.is_held() {
                return Err(LockError::Lost(SYNC_LOCK.into()).into());
            }
            let started = Instant::now();
            let call = r.durable().eval(
                &self.inner.scripts.claim,
                vec![staging::INFLIGHT.to_string(), staging::QUEUE.to_string()],
                vec![
                    format!("lk:{:032x}", rand::random::<u128>()),
                    self.inner.cfg.sync_batch.to_string(),
                ],
            );
            let (v, _) = tokio::time::timeout(JOB_REDIS_TIMEOUT, call)
                .await
                .map_err(|_| timed_out("claim"))?
                .map_err(redis_err)?;
            let mut a = v.into_array().into_iter();
            let id = a.next().and_then(|v| v.into_string()).unwrap_or_default();
            if id.is_empty() {
                break;
            }
            let joined = a.next().and_then(|v| v.into_string()).unwrap_or_default();
            let items: Vec<QueueItem> = joined
                .split(staging::RECORD_SEP)
                .filter(|s| !s.is_empty())
                .filter_map(|s| {
                    let it = QueueItem::parse(s);
                    if it.is_none() {
                        tracing::error!(item = %s.escape_debug(), "unparseable like queue item skipped");
                    }
                    it
                })
                .collect();
            let batch = LikeBatch {
                id: id.clone(),
                likes: items
                    .iter()
                    .map(|it| LikeRecord {
                        character: it.character.clone(),
                        liker: it.liker.clone(),
                        at_ms: it.at_ms,
                    })
                    .collect(),
            };
            let applied = self.inner.store.apply_likes(&batch, &guard.fence()).await?;
            self.ack(r, &id, &items, &applied).await?;
            metrics::histogram!(LIKE_SYNC_SECONDS, "path" => "redis")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!(LIKE_SYNCED_TOTAL, "path" => "redis").increment(items.len() as u64);
            entries += items.len();
            inserted += applied.inserted;
            if Instant::now() >= deadline {
                break;
            }
        }
        Ok(SyncOutcome::Synced {
            path: SyncPath::Redis,
            entries,
            inserted,
        })
    }

    /// One [`staging::SETTLE`] call: the cached counts and the pairs of whole characters.
    async fn settle(
        &self,
        r: &RedisHandle,
        id: &str,
        chunk: &[(&str, Option<i64>, Vec<String>)],
    ) -> Result<(), LikeError> {
        let mut keys = vec![
            staging::INFLIGHT.to_string(),
            staging::REL.to_string(),
            staging::PENDING.to_string(),
        ];
        let counted: Vec<_> = chunk
            .iter()
            .filter_map(|(c, n, _)| n.map(|n| (*c, n)))
            .collect();
        let mut args = vec![
            id.to_string(),
            staging::SYNCED_TTL_MS.to_string(),
            counted.len().to_string(),
        ];
        for (c, n) in &counted {
            keys.push(staging::synced_key(c));
            args.push(n.to_string());
        }
        for (c, _, pairs) in chunk {
            for p in pairs {
                args.push(c.to_string());
                args.push(p.clone());
            }
        }
        let call = r.durable().eval(&self.inner.scripts.settle, keys, args);
        tokio::time::timeout(JOB_REDIS_TIMEOUT, call)
            .await
            .map_err(|_| timed_out("settle"))?
            .map_err(redis_err)?;
        Ok(())
    }

    async fn ack(
        &self,
        r: &RedisHandle,
        id: &str,
        items: &[QueueItem],
        applied: &AppliedBatch,
    ) -> Result<(), LikeError> {
        // Each character's exact MySQL count and the release of its pairs in one step (in chunks that
        // never split a character), then the acknowledgement.
        let mut by_char: std::collections::BTreeMap<&str, (Option<i64>, Vec<String>)> =
            std::collections::BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for it in items {
            if seen.insert((it.character.as_str(), it.liker.as_str())) {
                by_char
                    .entry(it.character.as_str())
                    .or_default()
                    .1
                    .push(pair_key(&it.character, &it.liker));
            }
        }
        for (c, n) in &applied.counts {
            self.remember_count(c, *n);
            by_char.entry(c.as_str()).or_default().0 = Some(*n);
        }
        let mut chunk: Vec<(&str, Option<i64>, Vec<String>)> = Vec::new();
        let mut size = 0;
        for (c, (count, pairs)) in by_char {
            size += pairs.len() + 1;
            chunk.push((c, count, pairs));
            if size >= SYNCED_CHUNK {
                self.settle(r, id, &chunk).await?;
                chunk.clear();
                size = 0;
            }
        }
        if !chunk.is_empty() {
            self.settle(r, id, &chunk).await?;
        }
        let ranges = staging::source_ranges(items);
        let mut keys = vec![
            staging::INFLIGHT.to_string(),
            staging::QUEUE.to_string(),
            staging::ACKED.to_string(),
        ];
        let mut args = vec![
            id.to_string(),
            staging::WATERMARK_TTL_MS.to_string(),
            ranges.len().to_string(),
        ];
        for (src, first, last) in &ranges {
            keys.push(staging::watermark_key(src));
            args.push(first.to_string());
            args.push(last.to_string());
        }
        let call = r.durable().eval(&self.inner.scripts.ack, keys, args);
        let (done, _) = tokio::time::timeout(JOB_REDIS_TIMEOUT, call)
            .await
            .map_err(|_| timed_out("ack"))?
            .map_err(redis_err)?;
        let done = done.as_i64().unwrap_or(0);
        if done != 1 {
            tracing::warn!(
                batch = id,
                "like batch was no longer in flight at acknowledgement"
            );
        }
        Ok(())
    }

    async fn sync_direct(&self, guard: &LockGuard) -> Result<SyncOutcome, LikeError> {
        let deadline = Instant::now() + self.inner.cfg.sync_interval.max(Duration::from_secs(1));
        let (mut entries, mut inserted) = (0, 0);
        loop {
            if !guard.is_held() {
                return Err(LockError::Lost(SYNC_LOCK.into()).into());
            }
            let items = self
                .inner
                .buf
                .lock()
                .expect("poisoned")
                .oldest(self.inner.cfg.sync_batch);
            if items.is_empty() {
                break;
            }
            let started = Instant::now();
            let seqs: Vec<u64> = items.iter().map(|(s, _)| *s).collect();
            let entries_only: Vec<LikeEntry> = items.into_iter().map(|(_, e)| e).collect();
            let move_guard = self.inner.count_view.write().await;
            let applied = self
                .apply_with_fence(&direct_batch_id(&entries_only), &entries_only, guard)
                .await?;
            self.inner.buf.lock().expect("poisoned").remove(&seqs);
            drop(move_guard);
            metrics::histogram!(LIKE_SYNC_SECONDS, "path" => "direct")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!(LIKE_SYNCED_TOTAL, "path" => "direct").increment(seqs.len() as u64);
            entries += seqs.len();
            inserted += applied.inserted;
            if Instant::now() >= deadline {
                break;
            }
        }
        Ok(SyncOutcome::Synced {
            path: SyncPath::Direct,
            entries,
            inserted,
        })
    }

    async fn apply_with_fence(
        &self,
        batch_id: &str,
        entries: &[LikeEntry],
        guard: &LockGuard,
    ) -> Result<AppliedBatch, LikeError> {
        let batch = LikeBatch {
            id: batch_id.to_string(),
            likes: entries
                .iter()
                .map(|e| LikeRecord {
                    character: e.character.clone(),
                    liker: e.liker.clone(),
                    at_ms: e.at_ms,
                })
                .collect(),
        };
        let applied = self.inner.store.apply_likes(&batch, &guard.fence()).await?;
        for (c, n) in &applied.counts {
            self.remember_count(c, *n);
        }
        Ok(applied)
    }

    /// Applies entries straight to the database under the sync lock (waiting up to `wait` for it),
    /// idempotently by `batch_id` (≤ 128 bytes): for recovery of backed-up entries when Redis is down.
    pub async fn apply_entries(
        &self,
        batch_id: &str,
        entries: &[LikeEntry],
        wait: Duration,
    ) -> Result<AppliedBatch, LikeError> {
        let guard = self
            .inner
            .locks
            .acquire(SYNC_LOCK, wait, self.inner.cfg.sync_lease)
            .await?;
        let r = self.apply_with_fence(batch_id, entries, &guard).await;
        let _ = guard.release().await;
        r
    }
}

/// A deterministic id for a direct batch: the same entries retried give the same id.
fn direct_batch_id(entries: &[LikeEntry]) -> String {
    let mut h = Sha256::new();
    for e in entries {
        h.update(e.id.as_bytes());
        h.update([0u8]);
    }
    format!("ld:{}", &hex::encode(h.finalize())[..40])
}
