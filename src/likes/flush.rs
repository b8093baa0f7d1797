//! The flush: the local buffer's new entries to the Redis staging area, and confirmations back.
//!
//! Guarantee: every `MAPLE_LIKE_FLUSH_MS` the buffer's unflushed entries are pushed in chunks of
//! [`FLUSH_CHUNK`], each in one Lua script (queue + relation set + pending-count hash, atomically; see
//! [`staging`]) under the current Redis epoch, holding the count view exclusively; the same script returns
//! this source's watermark, and the entries it covers (known to be in MySQL) leave the buffer. A pushed
//! entry stays in the buffer until then. Each script is a durable write (`crate::redis::durable`): a push
//! counts as done only once `WAIT` saw a replica take it; `WAIT` answering 0 is a failed push (below). In
//! Sentinel mode with no replica online the flush does nothing (the direct sync takes the buffer).
//!
//! Failure modes: a failed or timed-out push may or may not have landed — the entries are numbered afresh
//! and pushed again (MySQL dedupes; `maple_like_resends_total{reason="failure"}`). A changed epoch (Redis
//! lost its data) or a queue position passed without confirmation (a queue tail lost in a failover) makes
//! every unconfirmed entry go again. As a last resort, while an entry stays unconfirmed for
//! [`RESEND_AFTER`], each flush checks that the queue still holds what its counters say (see [`REPAIR`]):
//! only a queue that lost entries behind the counters' back makes them go again — never a mere backlog
//! (MySQL down), which would add one copy of the whole buffer per instance and period. Without Redis a
//! flush does nothing (the direct sync takes the buffer).

use std::time::Duration;

use fred::interfaces::{ClientLike, LuaInterface};
use tokio::time::Instant;

use crate::redis::RedisHandle;

use super::{JOB_REDIS_TIMEOUT, LikeError, LikeService, redis_err, staging, timed_out};

/// Duration of one flush to Redis (seconds).
pub const LIKE_FLUSH_SECONDS: &str = "maple_like_flush_duration_seconds";
/// Failed flushes.
pub const LIKE_FLUSH_FAILURES_TOTAL: &str = "maple_like_flush_failures_total";
/// Pushes started again, by reason (`epoch`, `failure`, `lost`, `unconfirmed`).
pub const LIKE_RESENDS_TOTAL: &str = "maple_like_resends_total";

/// Entries per flush script call (Redis serves nobody else while a script runs: keep each one short).
const FLUSH_CHUNK: usize = 100;
/// Last resort for pushed entries that stay unconfirmed (see [`LikeConfig::resend_after`]).
pub const RESEND_AFTER: Duration = Duration::from_secs(600);

/// The last resort, run while a pushed entry has stayed unconfirmed for [`RESEND_AFTER`]. A mere backlog
/// (MySQL down, the syncer behind) keeps entries unconfirmed for as long as it lasts, and the queue still
/// holds them: pushing them again would add one copy per instance per period. Every script keeps
/// `llen(queue) = pushed - acked` (pushes and acknowledgements move the list and the counter together),
/// so a queue shorter than that lost entries behind the counters' back (evicted, deleted): the script
/// moves `acked` up to `pushed - llen`, as if the lost entries had been drained, and the queue position
/// check of every instance then pushes its lost entries again (MySQL dedupes). KEYS: queue, pushed, acked.
/// Returns 1 when it repaired, else 0.
const REPAIR: &str = r#"
local len = redis.call('llen', KEYS[1])
local pushed = tonumber(redis.call('get', KEYS[2]) or '0')
local acked = tonumber(redis.call('get', KEYS[3]) or '0')
if pushed - acked > len then
  redis.call('set', KEYS[3], pushed - len)
  return 1
end
return 0
"#;

impl LikeService {
    /// Pushes the buffer's new entries to Redis and drops those MySQL is known to have. Returns how many
    /// entries were pushed. Without Redis this does nothing.
    pub async fn flush_once(&self) -> Result<usize, LikeError> {
        let Some(r) = self.inner.redis.as_ref() else {
            return Ok(0);
        };
        if !self.staging_usable(r).await {
            // No replica to acknowledge a push: the entries stay here and the direct sync takes them.
            return Ok(0);
        }
        let _one = self.inner.flushing.lock().await;
        let started = Instant::now();
        let result = self.flush_inner(r).await;
        metrics::histogram!(LIKE_FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!(LIKE_FLUSH_FAILURES_TOTAL).increment(1);
            // The push may or may not have landed: number the next pushes afresh.
            self.inner.buf.lock().expect("poisoned").new_generation();
            metrics::counter!(LIKE_RESENDS_TOTAL, "reason" => "failure").increment(1);
        }
        self.report_depth();
        result
    }

    /// The last resort (see [`REPAIR`]): true when the queue had lost entries and `acked` was moved up.
    async fn repair_lost_queue(&self, r: &RedisHandle) -> Result<bool, LikeError> {
        let call = r.client().eval::<i64, _, _, _>(
            REPAIR,
            vec![
                staging::QUEUE.to_string(),
                staging::PUSHED.to_string(),
                staging::ACKED.to_string(),
            ],
            Vec::<String>::new(),
        );
        let repaired = tokio::time::timeout(JOB_REDIS_TIMEOUT, call)
            .await
            .map_err(|_| timed_out("queue check"))?
            .map_err(redis_err)?;
        Ok(repaired == 1)
    }

    async fn flush_inner(&self, r: &RedisHandle) -> Result<usize, LikeError> {
        if !r.client().is_connected() {
            return Err(redis_err("redis is not connected"));
        }
        let overdue = self
            .inner
            .buf
            .lock()
            .expect("poisoned")
            .oldest_push()
            .is_some_and(|t| t.elapsed() >= self.inner.cfg.resend_after);
        if overdue && self.repair_lost_queue(r).await? {
            // The queue position check below now sees the lost entries and pushes them again.
            metrics::counter!(LIKE_RESENDS_TOTAL, "reason" => "unconfirmed").increment(1);
            tracing::warn!(
                "the redis like queue holds fewer entries than its counters say (evicted or deleted): its likes are pushed again"
            );
        }
        let mut pushed = 0;
        let mut refusals = 0;
        loop {
            let (generation, items, epoch, has_pushed) = {
                let mut b = self.inner.buf.lock().expect("poisoned");
                let (g, items) = b.take_for_flush(FLUSH_CHUNK);
                (
                    g,
                    items,
                    b.epoch().unwrap_or("").to_string(),
                    b.has_pushed(),
                )
            };
            if items.is_empty() && !has_pushed {
                return Ok(pushed);
            }
            let src = format!("{}.g{generation}", self.inner.source);
            let mut args = Vec::with_capacity(4 + items.len() * 5);
            args.push(epoch);
            args.push(format!("{:032x}", rand::random::<u128>()));
            args.push(src.clone());
            args.push(items.len().to_string());
            for it in &items {
                args.push(it.index.to_string());
                args.push(it.entry.id.clone());
                args.push(it.entry.character.clone());
                args.push(it.entry.liker.clone());
                args.push(it.entry.at_ms.to_string());
            }
            let move_guard = self.inner.count_view.write().await;
            let call = r.durable().eval(
                &self.inner.scripts.flush,
                vec![
                    staging::EPOCH.to_string(),
                    staging::QUEUE.to_string(),
                    staging::REL.to_string(),
                    staging::PENDING.to_string(),
                    staging::watermark_key(&src),
                    staging::PUSHED.to_string(),
                    staging::ACKED.to_string(),
                ],
                args,
            );
            let (v, _) = tokio::time::timeout(JOB_REDIS_TIMEOUT, call)
                .await
                .map_err(|_| timed_out("flush"))?
                .map_err(redis_err)?;
            let a = v.into_array();
            let ok = a.first().and_then(|v| v.as_i64()) == Some(1);
            let current = a.get(1).and_then(|v| v.as_string()).unwrap_or_default();
            let num = |i: usize| a.get(i).and_then(|v| v.as_i64()).unwrap_or(0).max(0) as u64;
            let (watermark, last_position, acked) = (num(2), num(3), num(4));
            let mut b = self.inner.buf.lock().expect("poisoned");
            if !ok {
                // Not the epoch we pushed under: Redis lost its data (or this is our first push).
                refusals += 1;
                let had_pushed = b.has_pushed();
                if b.adopt_epoch(&current) && had_pushed {
                    metrics::counter!(LIKE_RESENDS_TOTAL, "reason" => "epoch").increment(1);
                }
                if refusals > 3 {
                    return Err(redis_err("the Redis epoch keeps changing"));
                }
                // Items taken for this attempt were not pushed; the new generation renumbers them.
                b.new_generation();
                continue;
            }
            b.mark_pushed(generation, &items, last_position, Instant::now());
            b.confirm(generation, watermark);
            drop(move_guard);
            if b.has_lost_push(acked, last_position) {
                b.new_generation();
                metrics::counter!(LIKE_RESENDS_TOTAL, "reason" => "lost").increment(1);
                tracing::warn!(
                    "likes pushed to redis were lost from its queue: pushing them again"
                );
                continue;
            }
            pushed += items.len();
            if items.len() < FLUSH_CHUNK {
                return Ok(pushed);
            }
        }
    }
}
