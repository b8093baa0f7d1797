//! The write path: likes whose every acknowledged write reaches MySQL.
//!
//! # Contract
//!
//! [`LikeService::like`] accepts one like of a character by a liker (idempotent per pair) and answers
//! `{liked: true, like_count}`; [`LikeService::status`] answers whether a liker liked a character and the
//! count. Counts are eventually exact: the count read may lag the database by at most one sync interval
//! (it may also briefly count a repeated like of an already synced pair until the next sync corrects it).
//! A read that cannot see the buffer and the stores consistently in time (a move out of the buffer held
//! the count view longer than 250 ms, or the database count came from memory) answers a lower bound: the
//! last consistent count plus the likes accepted here since — never an entry counted in two places.
//!
//! Write path:
//!
//! 1. **Accept** into the in-process [`Buffer`] (no I/O besides one Redis read for the count). An
//!    accepted like stays in the buffer until MySQL is *known* to have it.
//! 2. **Flush** every `MAPLE_LIKE_FLUSH_MS`: the buffer's new entries go to the Redis staging area in one
//!    Lua script per chunk (queue + relation set + pending-count hash, atomically; see [`staging`]).
//! 3. **Sync** every `MAPLE_LIKE_SYNC_MS` (jittered): the instance that gets the `likes-sync` lock (Redis
//!    tier, not waiting: the others skip their turn) moves the Redis queue to MySQL in batches of
//!    `MAPLE_LIKE_SYNC_BATCH`. Each batch is claimed with an id (it stays at the head of the queue,
//!    recorded as in flight), applied in one fenced transaction that records the id (a batch applied
//!    twice counts once; pairs already stored are not counted again), then the cached counts are raised,
//!    the batch's pairs leave the pending set and the batch is acknowledged (trimmed off the queue). A syncer that dies between claim and
//!    acknowledgement leaves the batch in flight; the next syncer applies it again (a no-op in MySQL) and
//!    acknowledges it.
//! 4. **Confirm**: the acknowledgement advances per-source watermarks; at its next flush each instance
//!    drops the entries covered by its watermark.
//!
//! Degraded modes:
//!
//! * **Redis down** (the lock service falls back to the MySQL tier): each instance syncs its own buffer —
//!   pushed or not — straight to MySQL under the MySQL lock, in the same idempotent batches.
//! * **Redis restarted with its data lost**: the epoch key changed, so every instance pushes its
//!   unconfirmed entries again (MySQL dedupes). The same happens after a failed flush, when the syncer
//!   went past an entry's queue position without confirming it (a queue tail lost in a failover), and,
//!   as a last resort, for entries unconfirmed for 10 minutes.
//! * **MySQL down**: the Redis queue (Redis up) or the buffers (Redis down) hold the likes until it is
//!   back.
//! * **Both down**: the buffer grows up to `MAPLE_LIKE_BUFFER_MAX` entries, then new likes get 503
//!   `LIKES_UNAVAILABLE` — a like is never acknowledged and then dropped.
//!
//! Embedded mode (SQLite, no Redis) uses the direct path with the in-process lock.
//!
//! For shutdown and recovery (issue 8): [`LikeService::drain`] flushes and syncs within a budget and
//! returns what is still pending; [`LikeService::pending_entries`] lists every retained entry with its
//! unique id; [`LikeService::restore`] re-buffers recovered entries; [`LikeService::apply_entries`]
//! applies entries straight to the database under the lock, idempotently by batch id;
//! [`LikeService::set_observer`] sees every accepted entry (a journal).

mod buffer;
pub mod staging;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::types::Value;
use fred::types::scripts::Script;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::LikeSettings;
use crate::error::{Classify, ErrorKind};
use crate::lock::{LockError, LockGuard, LockService, Tier};
use crate::nexon::CharacterName;
use crate::redis::{RedisError, RedisHandle};
use crate::store::{AppliedBatch, LikeBatch, LikeRecord, Store, StoreError};

pub use buffer::{Accept, AcceptMark, Buffer, Outgoing, pair_key};
use staging::QueueItem;

/// The lock one syncer holds at a time.
pub const SYNC_LOCK: &str = "likes-sync";

/// Entries retained in the buffer, by state (`unflushed`, `pushed`).
pub const LIKE_BUFFER_ENTRIES: &str = "maple_like_buffer_entries";
/// Likes received, by result (`new`, `duplicate`, `rejected`).
pub const LIKE_REQUESTS_TOTAL: &str = "maple_like_requests_total";
/// Duration of one flush to Redis (seconds).
pub const LIKE_FLUSH_SECONDS: &str = "maple_like_flush_duration_seconds";
/// Counts answered as a lower bound (the count view not had in time, or the database count from memory).
pub const LIKE_COUNT_BOUNDS_TOTAL: &str = "maple_like_count_lower_bounds_total";
/// Failed flushes.
pub const LIKE_FLUSH_FAILURES_TOTAL: &str = "maple_like_flush_failures_total";
/// Pushes started again, by reason (`epoch`, `failure`, `lost`, `unconfirmed`).
pub const LIKE_RESENDS_TOTAL: &str = "maple_like_resends_total";
/// Duration of one sync batch into the database, by path (`redis`, `direct`) (seconds).
pub const LIKE_SYNC_SECONDS: &str = "maple_like_sync_batch_duration_seconds";
/// Failed sync rounds, by path.
pub const LIKE_SYNC_FAILURES_TOTAL: &str = "maple_like_sync_failures_total";
/// Entries moved into the database, by path (`direct` is the fallback with Redis down).
pub const LIKE_SYNCED_TOTAL: &str = "maple_like_synced_entries_total";

/// Entries per flush script call (Redis serves nobody else while a script runs: keep each one short).
const FLUSH_CHUNK: usize = 100;
/// About how many pairs (and cached counts) one [`staging::SETTLE`] call carries; a character is never
/// split, so a call may carry more when one character has more pairs in a batch.
const SYNCED_CHUNK: usize = 250;
/// Bound on a Redis call of the request path.
const REQUEST_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// Bound on a database count read of the request path.
const REQUEST_DB_TIMEOUT: Duration = Duration::from_millis(500);
/// Bound on a Redis call of the background jobs.
const JOB_REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// After a Redis (or database) failure the request path skips it this long.
const REQUEST_COOLDOWN: Duration = Duration::from_secs(1);
/// Last-resort resend of pushed entries that stay unconfirmed (see [`LikeConfig::resend_after`]).
pub const RESEND_AFTER: Duration = Duration::from_secs(600);
/// Characters each per-character count memory (last known database counts, last exact answers) keeps
/// before it starts over.
const LAST_COUNTS_MAX: usize = 100_000;

/// Inserts into a per-character memory bounded by [`LAST_COUNTS_MAX`] (cleared when a new character would
/// exceed it: forgetting only makes later answers fall back, never wrong).
fn remember<V>(m: &mut HashMap<String, V>, character: &str, v: V) {
    if m.len() >= LAST_COUNTS_MAX && !m.contains_key(character) {
        m.clear();
    }
    m.insert(character.to_string(), v);
}

/// A count answered with the count view held, and the buffer's accept mark it was read at.
#[derive(Clone, Copy, Debug)]
struct ExactCount {
    count: i64,
    mark: AcceptMark,
}

/// One accepted like, with its unique id.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LikeEntry {
    pub id: String,
    /// The character's canonical key ([`CharacterName::key`]).
    pub character: String,
    pub liker: String,
    pub at_ms: i64,
}

/// An opaque liker id: 1–64 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LikerId(String);

impl LikerId {
    pub fn parse(raw: &str) -> Result<LikerId, LikeError> {
        let n = raw.chars().count();
        if n == 0 || n > 64 {
            return Err(LikeError::InvalidLiker(format!(
                "must be 1-64 characters, got {n}"
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(LikeError::InvalidLiker(
                "must not contain control characters".into(),
            ));
        }
        Ok(LikerId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A like failure.
#[derive(Debug, thiserror::Error)]
pub enum LikeError {
    #[error("invalid liker id: {0}")]
    InvalidLiker(String),
    /// The buffer is full because neither Redis nor the database takes likes.
    #[error("likes are temporarily unavailable: {0} likes are waiting for Redis or the database")]
    Full(usize),
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
            LikeError::InvalidLiker(_) => ErrorKind::Client,
            LikeError::Full(_) => ErrorKind::Upstream,
            LikeError::Store(e) => e.kind(),
            LikeError::Lock(e) => e.kind(),
            LikeError::Redis(e) => e.kind(),
        }
    }
    fn retryable(&self) -> bool {
        match self {
            LikeError::InvalidLiker(_) => false,
            LikeError::Full(_) => true,
            LikeError::Store(e) => e.retryable(),
            LikeError::Lock(e) => e.retryable(),
            LikeError::Redis(e) => e.retryable(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            LikeError::InvalidLiker(_) => "BAD_REQUEST",
            LikeError::Full(_) => "LIKES_UNAVAILABLE",
            LikeError::Store(e) => e.code(),
            LikeError::Lock(e) => e.code(),
            LikeError::Redis(e) => e.code(),
        }
    }
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            LikeError::Full(_) => Some(5),
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
    /// Last resort: pushed entries unconfirmed this long are pushed again (losses are normally detected
    /// at once, by epoch or queue position).
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

/// The answer to a like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LikeAnswer {
    pub liked: bool,
    pub like_count: i64,
}

/// The answer to a status read (`liked` only when a liker was asked about).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LikeStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liked: Option<bool>,
    pub like_count: i64,
}

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

/// What [`LikeService::drain`] achieved.
#[derive(Clone, Debug, Default)]
pub struct DrainReport {
    pub flushed: usize,
    pub synced: usize,
    /// Entries not known to be in MySQL when the budget ran out (back them up).
    pub remaining: Vec<LikeEntry>,
}

/// Sees every accepted like before it is acknowledged (e.g. to journal it).
pub trait LikeObserver: Send + Sync {
    fn accepted(&self, entry: &LikeEntry);
}

struct Scripts {
    flush: Script,
    peek: Script,
    fill: Script,
    claim: Script,
    settle: Script,
    ack: Script,
}

struct Peek {
    synced: Option<i64>,
    pending: i64,
    member: bool,
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
    exact_counts: Mutex<HashMap<String, ExactCount>>,
    flushing: tokio::sync::Mutex<()>,
    /// Readers of a count (the local buffer plus Redis or the database) hold it shared; the moves of entries
    /// from one place to the other (push to Redis, apply to the database) hold it exclusively, so a count
    /// never sees an entry in both places (counted twice) — which would make it go down afterwards.
    count_view: tokio::sync::RwLock<()>,
    syncing: tokio::sync::Mutex<()>,
    observer: OnceLock<Arc<dyn LikeObserver>>,
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
                observer: OnceLock::new(),
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

    /// Installs the observer of accepted likes (once; false if one is already set).
    pub fn set_observer(&self, observer: Arc<dyn LikeObserver>) -> bool {
        self.inner.observer.set(observer).is_ok()
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

    /// Re-buffers recovered entries (ids kept; pairs already retained skipped; the bound does not
    /// apply). Returns how many were added.
    pub fn restore(&self, entries: Vec<LikeEntry>) -> usize {
        let n = self.inner.buf.lock().expect("poisoned").restore(entries);
        self.report_depth();
        n
    }

    /// Accepts a like (see the module documentation).
    pub async fn like(
        &self,
        character: &CharacterName,
        liker: &LikerId,
    ) -> Result<LikeAnswer, LikeError> {
        let c = character.key();
        let l = liker.as_str();
        let view = self.count_view().await;
        let peek = self.peek(&c, &pair_key(&c, l)).await;
        let (accepted, local, mark) = {
            let mut b = self.inner.buf.lock().expect("poisoned");
            let a = if peek.as_ref().is_some_and(|p| p.member) {
                Accept::Duplicate
            } else {
                b.accept(&c, l, now_ms())
            };
            let local = if peek.is_some() {
                b.unflushed_for(&c)
            } else {
                b.retained_for(&c)
            };
            (a, local, b.accept_mark(&c))
        };
        match accepted {
            Accept::Full => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "rejected").increment(1);
                return Err(LikeError::Full(self.buffered()));
            }
            Accept::New(entry) => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "new").increment(1);
                if let Some(o) = self.inner.observer.get() {
                    o.accepted(&entry);
                }
            }
            Accept::Duplicate => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "duplicate").increment(1);
            }
        }
        let (base, fresh) = self.base_count(&c, peek.as_ref()).await;
        let like_count =
            self.settle_count(&c, view.is_some() && fresh, base + i64::from(local), mark);
        Ok(LikeAnswer {
            liked: true,
            like_count,
        })
    }

    /// Whether `liker` liked `character` (when given) and the character's count.
    pub async fn status(
        &self,
        character: &CharacterName,
        liker: Option<&LikerId>,
    ) -> Result<LikeStatus, LikeError> {
        let c = character.key();
        let pair = liker.map(|l| pair_key(&c, l.as_str())).unwrap_or_default();
        let view = self.count_view().await;
        let peek = self.peek(&c, &pair).await;
        let (local_has, local, mark) = {
            let b = self.inner.buf.lock().expect("poisoned");
            let has = liker.is_some_and(|l| b.contains_pair(&c, l.as_str()));
            let local = if peek.is_some() {
                b.unflushed_for(&c)
            } else {
                b.retained_for(&c)
            };
            (has, local, b.accept_mark(&c))
        };
        let liked = match liker {
            None => None,
            Some(_) if local_has || peek.as_ref().is_some_and(|p| p.member) => Some(true),
            Some(l) => Some(self.inner.store.has_liked(&c, l.as_str()).await?),
        };
        let (base, fresh) = self.base_count(&c, peek.as_ref()).await;
        let like_count =
            self.settle_count(&c, view.is_some() && fresh, base + i64::from(local), mark);
        Ok(LikeStatus { liked, like_count })
    }

    /// The count to answer for `character`, given the one just `computed` (the buffer's part read at
    /// `mark`).
    ///
    /// When `exact` (the count view was held and both stores answered), `computed` is exact at `mark` and
    /// is remembered. Otherwise a move may have been in progress, and `computed` may count an entry both
    /// in the buffer and where it went — a count that would go down at the next read. The answer is then
    /// the remembered exact count plus the likes this buffer accepted since its mark: a lower bound that
    /// is never below an earlier answer. Only with nothing remembered is `computed` answered as it is.
    fn settle_count(&self, character: &str, exact: bool, computed: i64, mark: AcceptMark) -> i64 {
        let mut m = self.inner.exact_counts.lock().expect("poisoned");
        if exact {
            let newer = match m.get(character) {
                Some(e) if e.mark.round == mark.round => {
                    (mark.accepted, computed) > (e.mark.accepted, e.count)
                }
                _ => true,
            };
            if newer {
                remember(
                    &mut m,
                    character,
                    ExactCount {
                        count: computed,
                        mark,
                    },
                );
            }
            return computed;
        }
        match m.get(character) {
            Some(e) if e.mark.round == mark.round => {
                metrics::counter!(LIKE_COUNT_BOUNDS_TOTAL).increment(1);
                e.count + mark.accepted.saturating_sub(e.mark.accepted) as i64
            }
            _ => computed,
        }
    }

    /// A shared hold on the count view (see `count_view`), waited for at most [`REQUEST_REDIS_TIMEOUT`]:
    /// a move stuck on a slow Redis or database must not stall requests, which then answer a lower bound
    /// instead (see [`LikeService::settle_count`]).
    async fn count_view(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        match tokio::time::timeout(REQUEST_REDIS_TIMEOUT, self.inner.count_view.read()).await {
            Ok(g) => Some(g),
            Err(_) => {
                metrics::counter!("maple_like_count_view_timeouts_total").increment(1);
                None
            }
        }
    }

    /// Redis for the request path: configured, connected, not failing in the last second.
    fn request_redis(&self) -> Option<&RedisHandle> {
        let r = self.inner.redis.as_ref()?;
        if !r.client().is_connected() {
            return None;
        }
        let cooldown = *self.inner.redis_cooldown.lock().expect("poisoned");
        if cooldown.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        Some(r)
    }

    fn redis_failed(&self) {
        *self.inner.redis_cooldown.lock().expect("poisoned") =
            Some(Instant::now() + REQUEST_COOLDOWN);
    }

    async fn peek(&self, character: &str, pair: &str) -> Option<Peek> {
        let r = self.request_redis()?;
        let call = self.inner.scripts.peek.evalsha_with_reload::<Value, _, _>(
            r.client(),
            vec![
                staging::synced_key(character),
                staging::PENDING.to_string(),
                staging::REL.to_string(),
            ],
            vec![character.to_string(), pair.to_string()],
        );
        match tokio::time::timeout(REQUEST_REDIS_TIMEOUT, call).await {
            Ok(Ok(v)) => {
                let a = v.into_array();
                let num = |i: usize| a.get(i).and_then(|v| v.as_i64()).unwrap_or(0);
                let s = num(0);
                Some(Peek {
                    synced: (s >= 0).then_some(s),
                    pending: num(1),
                    member: num(2) == 1,
                })
            }
            _ => {
                self.redis_failed();
                None
            }
        }
    }

    /// The synced count plus what Redis holds pending (when Redis answered).
    /// With whether it was read just now (not answered from memory).
    async fn base_count(&self, character: &str, peek: Option<&Peek>) -> (i64, bool) {
        if let Some(p) = peek
            && let Some(s) = p.synced
        {
            return (s + p.pending, true);
        }
        let cooling = self
            .inner
            .db_cooldown
            .lock()
            .expect("poisoned")
            .is_some_and(|t| Instant::now() < t);
        let read = if cooling {
            None
        } else {
            match tokio::time::timeout(REQUEST_DB_TIMEOUT, self.inner.store.like_count(character))
                .await
            {
                Ok(Ok(n)) => Some(n),
                _ => {
                    // Answer from memory for a while instead of waiting on a database that is down.
                    *self.inner.db_cooldown.lock().expect("poisoned") =
                        Some(Instant::now() + REQUEST_COOLDOWN);
                    None
                }
            }
        };
        let fresh = read.is_some();
        let db = match read {
            Some(n) => {
                self.remember_count(character, n);
                if peek.is_some() {
                    self.fill_cache(character, n);
                }
                n
            }
            None => self
                .inner
                .last_counts
                .lock()
                .expect("poisoned")
                .get(character)
                .copied()
                .unwrap_or(0),
        };
        (db + peek.map(|p| p.pending).unwrap_or(0), fresh)
    }

    fn remember_count(&self, character: &str, n: i64) {
        remember(
            &mut self.inner.last_counts.lock().expect("poisoned"),
            character,
            n,
        );
    }

    /// Caches a database count in Redis (raise-only), off the request's critical path.
    fn fill_cache(&self, character: &str, n: i64) {
        let Some(r) = self.inner.redis.clone() else {
            return;
        };
        let svc = self.clone();
        let key = staging::synced_key(character);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                REQUEST_REDIS_TIMEOUT,
                svc.inner.scripts.fill.evalsha_with_reload::<Value, _, _>(
                    r.client(),
                    vec![key],
                    vec![n.to_string(), staging::SYNCED_TTL_MS.to_string()],
                ),
            )
            .await;
        });
    }

    fn report_depth(&self) {
        let (all, unflushed) = {
            let b = self.inner.buf.lock().expect("poisoned");
            (b.len(), b.unflushed_len())
        };
        metrics::gauge!(LIKE_BUFFER_ENTRIES, "state" => "unflushed").set(unflushed as f64);
        metrics::gauge!(LIKE_BUFFER_ENTRIES, "state" => "pushed").set((all - unflushed) as f64);
    }

    /// Pushes the buffer's new entries to Redis and drops those MySQL is known to have. Returns how many
    /// entries were pushed. Without Redis this does nothing.
    pub async fn flush_once(&self) -> Result<usize, LikeError> {
        let Some(r) = self.inner.redis.as_ref() else {
            return Ok(0);
        };
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

    async fn flush_inner(&self, r: &RedisHandle) -> Result<usize, LikeError> {
        if !r.client().is_connected() {
            return Err(redis_err("redis is not connected"));
        }
        {
            let mut b = self.inner.buf.lock().expect("poisoned");
            if b.oldest_push()
                .is_some_and(|t| t.elapsed() >= self.inner.cfg.resend_after)
            {
                b.new_generation();
                metrics::counter!(LIKE_RESENDS_TOTAL, "reason" => "unconfirmed").increment(1);
            }
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
            let call = self.inner.scripts.flush.evalsha_with_reload::<Value, _, _>(
                r.client(),
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
            let v = tokio::time::timeout(JOB_REDIS_TIMEOUT, call)
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

    /// One sync round (see the module documentation).
    pub async fn sync_once(&self) -> Result<SyncOutcome, LikeError> {
        let _one = self.inner.syncing.lock().await;
        let redis_path =
            self.inner.redis.is_some() && self.inner.locks.preferred_tier() == Tier::Redis;
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
        let path = if guard.tier() == Tier::Redis && self.inner.redis.is_some() {
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
            let call = self.inner.scripts.claim.evalsha_with_reload::<Value, _, _>(
                r.client(),
                vec![staging::INFLIGHT.to_string(), staging::QUEUE.to_string()],
                vec![
                    format!("lk:{:032x}", rand::random::<u128>()),
                    self.inner.cfg.sync_batch.to_string(),
                ],
            );
            let v = tokio::time::timeout(JOB_REDIS_TIMEOUT, call)
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
        let call =
            self.inner
                .scripts
                .settle
                .evalsha_with_reload::<i64, _, _>(r.client(), keys, args);
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
        let call = self
            .inner
            .scripts
            .ack
            .evalsha_with_reload::<i64, _, _>(r.client(), keys, args);
        let done = tokio::time::timeout(JOB_REDIS_TIMEOUT, call)
            .await
            .map_err(|_| timed_out("ack"))?
            .map_err(redis_err)?;
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

/// A deterministic id for a direct batch: the same entries retried give the same id.
fn direct_batch_id(entries: &[LikeEntry]) -> String {
    let mut h = Sha256::new();
    for e in entries {
        h.update(e.id.as_bytes());
        h.update([0u8]);
    }
    format!("ld:{}", &hex::encode(h.finalize())[..40])
}
