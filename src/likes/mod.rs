//! The write path: likes whose every acknowledged write reaches MySQL.
//!
//! # Contract
//!
//! [`LikeService::like`] accepts one like of a character by a liker (idempotent per pair) and answers
//! `{liked: true, like_count}`; [`LikeService::status`] answers whether a liker liked a character and the
//! count. Counts are eventually exact: the count read may lag the database by at most one sync interval
//! (it may also briefly count a repeated like of an already synced pair until the next sync corrects it).
//! A read that cannot see the buffer and the stores consistently in time answers a lower bound (see
//! `count.rs`) — never an entry counted in two places.
//!
//! The path, one file per guarantee:
//!
//! 1. **Accept** (`accept.rs`, with the local [`Buffer`] in `buffer.rs`): no I/O besides one Redis read for
//!    the count and the wait for the journal. An accepted like is acknowledged only once the journal
//!    (when one is attached) has written and fsynced it, and stays in the buffer until MySQL is *known*
//!    to have it.
//! 2. **Count** (`count.rs`): the answer is the database's (or Redis's cached) count plus what is pending,
//!    read under the count view so that no entry is counted in two places.
//! 3. **Flush** (`flush.rs`) every `MAPLE_LIKE_FLUSH_MS`: the buffer's new entries go to the Redis staging
//!    area in one Lua script per chunk (queue + relation set + pending-count hash, atomically; see
//!    [`staging`]); each instance drops the entries covered by its confirmation watermark.
//! 4. **Sync** (`sync.rs`) every `MAPLE_LIKE_SYNC_MS` (jittered): the instance that gets the `likes-sync`
//!    lock moves the Redis queue to MySQL in claimed, fenced, idempotent batches; with Redis down each
//!    instance syncs its own buffer straight to MySQL under the MySQL lock (the direct path).
//! 5. **Drain and loops** (`drain.rs`): the two background loops, and the bounded drain the shutdown
//!    sequence runs before it backs up what is left.
//!
//! Degraded modes:
//!
//! * **Redis down** (the lock service falls back to the MySQL tier): each instance syncs its own buffer —
//!   pushed or not — straight to MySQL under the MySQL lock, in the same idempotent batches.
//! * **Sentinel mode, no replica online**: the staging scripts are durable writes
//!   (`crate::redis::durable`, ADR 0012), acknowledged only once a replica has them, and without a replica
//!   they are refused; the path then acts as with Redis down — no flush, counts without Redis, the direct
//!   sync under whichever lock tier answers — until a replica is online (attached and done with its sync) ([`LikeService::staging_usable`]).
//!   A standalone Redis without a replica takes durable writes from the master alone.
//! * **Redis restarted with its data lost**: the epoch key changed, so every instance pushes its
//!   unconfirmed entries again (MySQL dedupes). The same happens after a failed flush, when the syncer
//!   went past an entry's queue position without confirming it (a queue tail lost in a failover), and,
//!   as a last resort checked once entries stay unconfirmed for 10 minutes, when the queue holds fewer
//!   entries than its counters say (evicted or deleted) — never for a mere backlog.
//! * **MySQL down**: the Redis queue (Redis up) or the buffers (Redis down) hold the likes until it is
//!   back.
//! * **Both down**: the buffer grows up to `MAPLE_LIKE_BUFFER_MAX` entries, then new likes get 503
//!   `LIKES_UNAVAILABLE` — a like is never acknowledged and then dropped.
//!
//! Embedded mode (SQLite, no Redis) uses the direct path with the in-process lock.
//!
//! Hooks for crash durability (the journal, backup files and start-up recovery live one floor up, in
//! `durability`): [`LikeService::attach_journal`] hands every accepted entry to the journal's writer;
//! [`LikeService::pending_entries`] lists every retained entry with its unique id;
//! [`LikeService::restore`] re-buffers recovered entries; [`LikeService::apply_entries`] applies entries
//! straight to the database under the lock, idempotently by batch id.

mod accept;
mod buffer;
mod count;
mod drain;
mod flush;
pub mod staging;
mod sync;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fred::types::scripts::Script;
use tokio::time::Instant;

use crate::config::LikeSettings;
use crate::error::{Classify, Code, ErrorKind};
use crate::lock::{LockError, LockService};
use crate::redis::{RedisError, RedisHandle};
use crate::store::{Store, StoreError};

pub use accept::{
    CommitMark, JournalCommits, JournalHandle, JournalMsg, LIKE_REQUESTS_TOTAL, LikeAnswer,
    LikeEntry, NotCommitted,
};
pub use buffer::{Accept, AcceptMark, Buffer, Outgoing, pair_key};
pub use count::{LIKE_COUNT_BOUNDS_TOTAL, LikeStatus};
pub use drain::DrainReport;
pub use flush::{LIKE_FLUSH_FAILURES_TOTAL, LIKE_FLUSH_SECONDS, LIKE_RESENDS_TOTAL, RESEND_AFTER};
pub use sync::{
    LIKE_SYNC_FAILURES_TOTAL, LIKE_SYNC_SECONDS, LIKE_SYNCED_TOTAL, SYNC_LOCK, SyncOutcome,
    SyncPath,
};

/// Entries retained in the buffer, by state (`unflushed`, `pushed`).
pub const LIKE_BUFFER_ENTRIES: &str = "maple_like_buffer_entries";

/// Bound on a Redis call of the background jobs.
const JOB_REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// A like failure.
#[derive(Debug, thiserror::Error)]
pub enum LikeError {
    /// The buffer is full because neither Redis nor the database takes likes.
    #[error("likes are temporarily unavailable: {0} likes are waiting for Redis or the database")]
    Full(usize),
    /// The like is retained, but the journal could not make it durable (its group's write or fsync
    /// failed, or the writer stopped): not acknowledged.
    #[error(
        "likes are temporarily unavailable: the like journal could not make this like durable ({0:?})"
    )]
    NotDurable(NotCommitted),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Lock(#[from] LockError),
    #[error("{0}")]
    Redis(#[from] RedisError),
}

impl Classify for LikeError {
    fn kind(&self) -> ErrorKind {
        match self {
            LikeError::Full(_) => ErrorKind::Upstream,
            LikeError::NotDurable(_) => ErrorKind::Internal,
            LikeError::Store(e) => e.kind(),
            LikeError::Lock(e) => e.kind(),
            LikeError::Redis(e) => e.kind(),
        }
    }
    fn retryable(&self) -> bool {
        match self {
            LikeError::Full(_) | LikeError::NotDurable(_) => true,
            LikeError::Store(e) => e.retryable(),
            LikeError::Lock(e) => e.retryable(),
            LikeError::Redis(e) => e.retryable(),
        }
    }
    fn code(&self) -> Code {
        match self {
            LikeError::Full(_) | LikeError::NotDurable(_) => Code::LikesUnavailable,
            LikeError::Store(e) => e.code(),
            LikeError::Lock(e) => e.code(),
            LikeError::Redis(e) => e.code(),
        }
    }
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            LikeError::Full(_) => Some(5),
            LikeError::NotDurable(_) => Some(1),
            LikeError::Lock(e) => e.retry_after_secs(),
            _ => None,
        }
    }
}

/// Tunables of the write path.
#[derive(Clone, Debug)]
pub struct LikeConfig {
    pub flush_interval: Duration,
    pub sync_interval: Duration,
    /// Entries the buffer retains before new likes get 503.
    pub buffer_max: usize,
    /// Entries per database batch.
    pub sync_batch: usize,
    /// Lease of the sync lock (renewed while a sync runs).
    pub sync_lease: Duration,
    /// Last resort: while pushed entries stay unconfirmed this long, each flush checks that the Redis
    /// queue still holds what its counters say, and pushes them again only when it does not (losses are
    /// normally detected at once, by epoch or queue position).
    pub resend_after: Duration,
}

impl LikeConfig {
    /// The likes' settings group; the tunables that are not settings keep their fixed values.
    pub fn from_settings(s: &LikeSettings) -> LikeConfig {
        LikeConfig {
            flush_interval: s.flush,
            sync_interval: s.sync,
            buffer_max: s.buffer_max,
            sync_batch: s.sync_batch,
            sync_lease: Duration::from_secs(10),
            resend_after: RESEND_AFTER,
        }
    }
}

impl Default for LikeConfig {
    /// The declared defaults.
    fn default() -> Self {
        LikeConfig::from_settings(&LikeSettings::default())
    }
}

struct Scripts {
    flush: Script,
    peek: Script,
    fill: Script,
    claim: Script,
    settle: Script,
    ack: Script,
}

struct Inner {
    cfg: LikeConfig,
    store: Store,
    redis: Option<RedisHandle>,
    locks: LockService,
    source: String,
    buf: Mutex<Buffer>,
    scripts: Scripts,
    redis_cooldown: Mutex<Option<Instant>>,
    db_cooldown: Mutex<Option<Instant>>,
    last_counts: Mutex<HashMap<String, i64>>,
    /// The last count answered with the count view held, per character, with the buffer's accept mark
    /// at its snapshot (see [`LikeService::settle_count`]).
    exact_counts: Mutex<HashMap<String, count::ExactCount>>,
    flushing: tokio::sync::Mutex<()>,
    /// Readers of a count (the local buffer plus Redis or the database) hold it shared; the moves of entries
    /// from one place to the other (push to Redis, apply to the database) hold it exclusively, so a count
    /// never sees an entry in both places (counted twice) — which would make it go down afterwards.
    count_view: tokio::sync::RwLock<()>,
    syncing: tokio::sync::Mutex<()>,
    /// The journal's intake, once attached (see [`LikeService::attach_journal`]).
    journal: OnceLock<JournalHandle>,
    /// False while Redis is connected but cannot take durable writes (Sentinel mode, no replica): the
    /// staging area is then left alone as if Redis were down (see [`LikeService::staging_usable`]).
    staging_ok: AtomicBool,
}

/// The like service. Cheap to clone.
#[derive(Clone)]
pub struct LikeService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LikeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LikeService")
            .field("source", &self.inner.source)
            .field("buffered", &self.buffered())
            .finish_non_exhaustive()
    }
}

fn redis_err(e: impl std::fmt::Display) -> LikeError {
    LikeError::Redis(RedisError::Unavailable(e.to_string()))
}

fn timed_out(what: &str) -> LikeError {
    LikeError::Redis(RedisError::Unavailable(format!("{what} timed out")))
}

impl LikeService {
    /// `instance_id` names this process's entries (with a random suffix, so a restart never reuses an id).
    pub fn new(
        cfg: LikeConfig,
        store: Store,
        redis: Option<RedisHandle>,
        locks: LockService,
        instance_id: &str,
    ) -> LikeService {
        let source = format!("{instance_id}.{:08x}", rand::random::<u32>());
        LikeService {
            inner: Arc::new(Inner {
                buf: Mutex::new(Buffer::new(cfg.buffer_max, source.clone())),
                cfg,
                store,
                redis,
                locks,
                source,
                scripts: Scripts {
                    flush: Script::from_lua(staging::FLUSH),
                    peek: Script::from_lua(staging::PEEK),
                    fill: Script::from_lua(staging::FILL),
                    claim: Script::from_lua(staging::CLAIM),
                    settle: Script::from_lua(staging::SETTLE),
                    ack: Script::from_lua(staging::ACK),
                },
                redis_cooldown: Mutex::new(None),
                db_cooldown: Mutex::new(None),
                last_counts: Mutex::new(HashMap::new()),
                exact_counts: Mutex::new(HashMap::new()),
                flushing: tokio::sync::Mutex::new(()),
                count_view: tokio::sync::RwLock::new(()),
                syncing: tokio::sync::Mutex::new(()),
                journal: OnceLock::new(),
                staging_ok: AtomicBool::new(true),
            }),
        }
    }

    pub fn config(&self) -> &LikeConfig {
        &self.inner.cfg
    }

    pub fn locks(&self) -> &LockService {
        &self.inner.locks
    }

    /// The prefix of this process's entry ids (`<instance>.<nonce>`).
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Entries retained in the buffer (not yet known to be in MySQL).
    pub fn buffered(&self) -> usize {
        self.inner.buf.lock().expect("poisoned").len()
    }

    /// Every retained entry with its unique id, oldest first: the unflushed ones and those pushed to
    /// Redis but not yet confirmed in MySQL (applying one again is harmless).
    pub fn pending_entries(&self) -> Vec<LikeEntry> {
        self.inner.buf.lock().expect("poisoned").pending()
    }

    /// The lowest buffer sequence number still retained (`None` when the buffer is empty): the journal
    /// deletes a closed segment once every `seq` it holds is below it.
    pub fn oldest_retained_seq(&self) -> Option<u64> {
        self.inner.buf.lock().expect("poisoned").oldest_seq()
    }

    /// Re-buffers recovered entries (ids kept; pairs already retained skipped; the bound does not
    /// apply). Returns how many were added.
    pub fn restore(&self, entries: Vec<LikeEntry>) -> usize {
        let n = self.inner.buf.lock().expect("poisoned").restore(entries);
        self.report_depth();
        n
    }

    /// Whether the Redis staging area takes durable writes now: false when Redis is connected but its
    /// durable writes cannot be acknowledged (Sentinel mode with no replica online: ADR 0012). Remembered
    /// for the request path's counts. Redis disconnected answers true: the callers' own Redis-down handling
    /// applies.
    pub(crate) async fn staging_usable(&self, r: &RedisHandle) -> bool {
        let ok = !fred::interfaces::ClientLike::is_connected(r.client())
            || r.durable().can_write().await;
        let was = self.inner.staging_ok.swap(ok, Ordering::SeqCst);
        if was != ok {
            if ok {
                tracing::warn!(
                    "redis durable writes possible again: likes go through the staging area"
                );
            } else {
                tracing::warn!(
                    "redis master has no replica: likes skip the staging area and go straight to the database"
                );
            }
        }
        ok
    }

    fn report_depth(&self) {
        let (all, unflushed) = {
            let b = self.inner.buf.lock().expect("poisoned");
            (b.len(), b.unflushed_len())
        };
        metrics::gauge!(LIKE_BUFFER_ENTRIES, "state" => "unflushed").set(unflushed as f64);
        metrics::gauge!(LIKE_BUFFER_ENTRIES, "state" => "pushed").set((all - unflushed) as f64);
    }
}
