//! Distributed locks: a Redis tier, a MySQL named-lock tier used only when Redis is unavailable, and an
//! in-process tier for the embedded mode — one API for all three.
//!
//! # Contract
//!
//! [`LockService::acquire`]`(name, wait, lease)` returns a [`LockGuard`] or a [`LockError`]:
//!
//! * [`LockError::Timeout`] — somebody else held the lock for the whole `wait`. Contention never moves a
//!   lock to another tier.
//! * [`LockError::Unavailable`] — no tier could be asked (Redis unavailable *and* the database unreachable).
//!
//! The guard renews its lease while held (a watchdog task every `lease / 3`), releases on drop or with
//! [`LockGuard::release`] (owner-checked on every tier: only the random owner token — Redis — or the very
//! session — MySQL — that took the lock can release it), and exposes a monotonic fencing token
//! ([`LockGuard::fence`]) that writers present to the store (`lock_fences`): a holder whose lease silently
//! expired while it was paused is rejected by the database when it resumes ([`crate::store::StoreError::Fenced`]).
//! When the watchdog cannot renew before the lease runs out, the guard reports itself lost
//! ([`LockGuard::is_held`], [`LockGuard::lost`]).
//!
//! # Tiers and selection
//!
//! * **Redis** ([`redis`]): `SET key owner NX PX lease` plus a fencing token in the same Lua script (the
//!   Redis server's clock in µs, forced above the last one issued); compare-and-extend and
//!   compare-and-delete in Lua; a release publishes the lock name, and waiters wake on that message or on a
//!   jittered 20–60 ms poll (never a busy loop).
//! * **MySQL** ([`mysql`]): `GET_LOCK(name, wait)` on a connection taken from a small dedicated pool and
//!   pinned for the lock's lifetime; `RELEASE_LOCK` on that same connection. The session's `wait_timeout`
//!   is set to the lease, so a holder that stops renewing (the watchdog runs a query every `lease / 3`)
//!   loses its session, and the lock with it, after the lease. On any error the connection is closed,
//!   never returned to the pool. Tokens come from the `lock_tokens` table (the database clock in µs, forced
//!   above the last one issued).
//! * **In-process** ([`local`]): a map of leases in this process, for the embedded mode (SQLite, no Redis).
//!
//! Redis is used while it is healthy. The MySQL tier is used only when Redis is *unavailable*: the client is
//! disconnected, a command fails or times out, or the Redis breaker is open (it opens on such a failure and
//! lets one probe through after [`BREAKER_COOLDOWN`]). A Redis lock that is merely held by somebody else
//! is waited for and ends in `Timeout`.
//!
//! # Two holders around a Redis failover
//!
//! When Redis becomes unavailable, a waiter moves to MySQL at once, while the last Redis holder may still
//! believe it holds the lock until its lease runs out (it cannot renew). The overlap is bounded by one
//! lease, and the fencing token closes it: both tiers issue tokens from a clock (µs) forced monotonic per
//! tier, the store accepts a write only with a token ≥ the last one presented for that lock, and it
//! serialises fenced writers through the fence row. The later holder's first write therefore fences out
//! the earlier one. In the other direction (Redis back while a MySQL holder still works), a Redis acquirer
//! also checks `IS_FREE_LOCK` in MySQL and treats a held MySQL lock as contention. Fencing relies on the
//! Redis and database clocks agreeing to within the time between two acquisitions; with a larger skew a
//! holder can be refused (never two writers accepted out of order) until the clocks catch up.

mod breaker;
mod local;
mod mysql;
mod redis;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::DatabaseSettings;
use crate::error::{Classify, Code, ErrorKind};
use crate::redis::RedisHandle;
use crate::store::Fence;

pub use breaker::{Breaker, BreakerState};
pub use mysql::{POOL_SIZE as MYSQL_POOL_SIZE, mysql_lock_name};
pub use redis::{RELEASED_CHANNEL, lock_key};

/// How long the Redis tier is skipped after it failed, before one probe is let through.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(1);
/// Longest lock name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Lock acquisitions by tier and result (`acquired`, `timeout`, `unavailable`).
pub const LOCK_ACQUISITIONS_TOTAL: &str = "maple_lock_acquisitions_total";
/// Time spent acquiring a lock, by tier (seconds).
pub const LOCK_WAIT_SECONDS: &str = "maple_lock_wait_seconds";
/// Acquisitions that moved from Redis to the fallback tier because Redis was unavailable.
pub const LOCK_FALLBACKS_TOTAL: &str = "maple_lock_fallbacks_total";
/// Held locks whose lease could not be kept, by tier.
pub const LOCK_LOST_TOTAL: &str = "maple_lock_lost_total";

/// A lock failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LockError {
    /// Somebody else held the lock for the whole wait.
    #[error("lock {name} is busy: not acquired within {waited_ms} ms")]
    Timeout { name: String, waited_ms: u64 },
    /// No tier could be asked.
    #[error("no lock tier available for {name}: {reason}")]
    Unavailable {
        name: String,
        reason: String,
        /// The tier's own error, when one said it is down.
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    #[error("invalid lock name {0:?}: 1-128 bytes without spaces or control characters")]
    InvalidName(String),
    /// The lease was lost while the guard was held.
    #[error("lock {0} was lost (lease expired or session closed)")]
    Lost(String),
}

impl Classify for LockError {
    fn kind(&self) -> ErrorKind {
        match self {
            LockError::InvalidName(_) => ErrorKind::Internal,
            _ => ErrorKind::Upstream,
        }
    }
    fn retryable(&self) -> bool {
        !matches!(self, LockError::InvalidName(_))
    }
    fn code(&self) -> Code {
        match self {
            LockError::Timeout { .. } => Code::LockTimeout,
            LockError::Unavailable { .. } => Code::LockUnavailable,
            LockError::Lost(_) => Code::LockLost,
            LockError::InvalidName(_) => Code::Internal,
        }
    }
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            LockError::Timeout { .. } | LockError::Lost(_) => Some(1),
            LockError::Unavailable { .. } => Some(5),
            LockError::InvalidName(_) => None,
        }
    }
}

/// Where a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockTier {
    Redis,
    Mysql,
    InProcess,
}

impl LockTier {
    pub fn as_str(self) -> &'static str {
        match self {
            LockTier::Redis => "redis",
            LockTier::Mysql => "mysql",
            LockTier::InProcess => "in_process",
        }
    }
}

/// Why a tier could not answer (the tier is unavailable, not the lock busy), with the error that said so
/// when there is one.
#[derive(Debug, Clone)]
pub(crate) struct TierDown {
    pub reason: String,
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl TierDown {
    /// A tier found unusable without an underlying error.
    pub(crate) fn new(reason: impl Into<String>) -> TierDown {
        TierDown {
            reason: reason.into(),
            source: None,
        }
    }

    /// A tier whose client or server failed with `e`.
    pub(crate) fn from_error(e: impl std::error::Error + Send + Sync + 'static) -> TierDown {
        TierDown {
            reason: e.to_string(),
            source: Some(Arc::new(e)),
        }
    }
}

/// A lock as held on one tier; owned by the guard's keeper task.
pub(crate) trait Held: Send + 'static {
    /// Extends the lease: `Ok(true)` still ours, `Ok(false)` lost for sure, `Err` could not tell.
    fn renew(&mut self, lease: Duration) -> BoxFuture<'_, Result<bool, TierDown>>;
    /// Releases the lock if this owner still holds it.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), TierDown>>;
}

/// A freshly taken lock: its tier handle and fencing token.
pub(crate) struct Acquired {
    pub held: Box<dyn Held>,
    pub token: u64,
    /// When the successful attempt was sent: the lease counts from here.
    pub taken_at: Instant,
}

/// Checks a lock name.
pub fn validate_name(name: &str) -> Result<(), LockError> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(LockError::InvalidName(name.to_string()));
    }
    Ok(())
}

/// A token from a clock in µs, forced above the last one issued (shared helper of the in-process tier).
pub(crate) fn next_clock_token(last: &AtomicU64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut cur = last.load(Ordering::SeqCst);
    loop {
        let next = now.max(cur + 1);
        match last.compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(actual) => cur = actual,
        }
    }
}

/// State shared between a guard and its keeper task.
struct GuardState {
    lost: CancellationToken,
    watchdog: AtomicBool,
    valid_until: Mutex<Instant>,
}

type ReleaseReply = oneshot::Sender<Result<(), LockError>>;

/// A held lock. Dropping it releases the lock (from its keeper task); [`LockGuard::release`] does the same
/// and reports the outcome.
pub struct LockGuard {
    name: String,
    tier: LockTier,
    token: u64,
    acquired_in: Duration,
    state: Arc<GuardState>,
    release: Option<oneshot::Sender<ReleaseReply>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("tier", &self.tier)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tier(&self) -> LockTier {
        self.tier
    }

    /// The fencing token (monotonic per lock name across holders).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// What writers present to the store.
    pub fn fence(&self) -> Fence {
        Fence {
            lock: self.name.clone(),
            token: self.token,
        }
    }

    /// How long the acquisition took.
    pub fn acquired_in(&self) -> Duration {
        self.acquired_in
    }

    /// True while the lease is known to be ours: not lost, and renewed recently enough.
    pub fn is_held(&self) -> bool {
        !self.state.lost.is_cancelled()
            && Instant::now() < *self.state.valid_until.lock().expect("poisoned")
    }

    /// Resolves when the lock is known to be lost (renewal refused, or the lease ran out unrenewed).
    pub async fn lost(&self) {
        self.state.lost.cancelled().await
    }

    /// Stops renewing: the lease then runs out on its own (the guard turns lost), as for a holder that
    /// stalled. The lock is still released (owner-checked) when the guard drops.
    pub fn stop_watchdog(&self) {
        self.state.watchdog.store(false, Ordering::SeqCst);
    }

    /// Releases the lock now. `Err(Lost)` when it was no longer ours (someone else may hold it).
    pub async fn release(mut self) -> Result<(), LockError> {
        let lost = self.state.lost.is_cancelled();
        let Some(tx) = self.release.take() else {
            return Ok(());
        };
        let (reply_tx, reply_rx) = oneshot::channel();
        if tx.send(reply_tx).is_err() {
            return Err(LockError::Lost(self.name.clone()));
        }
        let r = reply_rx
            .await
            .unwrap_or_else(|_| Err(LockError::Lost(self.name.clone())));
        if lost && r.is_ok() {
            return Err(LockError::Lost(self.name.clone()));
        }
        r
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Dropping the sender tells the keeper to release (it owns the tier handle).
        self.release.take();
    }
}

/// Spawns the keeper of a held lock: renews every `lease / 3` while the watchdog is on, marks the guard
/// lost when the lease cannot be kept, releases when the guard asks or drops.
fn spawn_keeper(
    name: String,
    tier: LockTier,
    mut held: Box<dyn Held>,
    lease: Duration,
    state: Arc<GuardState>,
    mut release_rx: oneshot::Receiver<ReleaseReply>,
) {
    let period = (lease / 3).max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mark_lost = |why: &str| {
            if !state.lost.is_cancelled() {
                metrics::counter!(LOCK_LOST_TOTAL, "tier" => tier.as_str()).increment(1);
                tracing::warn!(lock = %name, tier = tier.as_str(), why, "lock lost");
                state.lost.cancel();
            }
        };
        loop {
            if state.lost.is_cancelled() {
                // Nothing left to renew: wait for the guard to go, then release (owner-checked).
                let reply = (&mut release_rx).await;
                let r = held
                    .release()
                    .await
                    .map_err(|e| LockError::Lost(format!("{name}: {}", e.reason)));
                if let Ok(tx) = reply {
                    let _ = tx.send(r);
                }
                return;
            }
            let valid_until = *state.valid_until.lock().expect("poisoned");
            let next = (Instant::now() + period).min(valid_until);
            tokio::select! {
                reply = &mut release_rx => {
                    let r = held.release().await.map_err(|e| LockError::Lost(format!("{name}: {}", e.reason)));
                    if let Ok(tx) = reply {
                        let _ = tx.send(r);
                    }
                    return;
                }
                _ = tokio::time::sleep_until(next) => {}
            }
            let started = Instant::now();
            if state.watchdog.load(Ordering::SeqCst) {
                match held.renew(lease).await {
                    Ok(true) => {
                        *state.valid_until.lock().expect("poisoned") = started + lease;
                        continue;
                    }
                    Ok(false) => {
                        mark_lost("renewal refused: another owner or no lease");
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(lock = %name, error = %e.reason, "lock renewal failed; retrying")
                    }
                }
            }
            if Instant::now() >= *state.valid_until.lock().expect("poisoned") {
                mark_lost("lease ran out without renewal");
            }
        }
    });
}

/// Per-service counters (the Prometheus metrics are process-wide; these are this service's own).
#[derive(Debug, Default)]
pub struct LockStats {
    pub redis: AtomicU64,
    pub mysql: AtomicU64,
    pub in_process: AtomicU64,
    pub timeouts: AtomicU64,
    pub fallbacks: AtomicU64,
    pub unavailable: AtomicU64,
}

impl LockStats {
    pub fn acquired(&self, tier: LockTier) -> u64 {
        match tier {
            LockTier::Redis => self.redis.load(Ordering::SeqCst),
            LockTier::Mysql => self.mysql.load(Ordering::SeqCst),
            LockTier::InProcess => self.in_process.load(Ordering::SeqCst),
        }
    }
}

/// The fallback behind Redis.
enum Fallback {
    Mysql(mysql::MysqlTier),
    Local(local::LocalTier),
}

struct Inner {
    redis: Option<redis::RedisTier>,
    fallback: Fallback,
    breaker: Mutex<Breaker>,
    stats: LockStats,
}

/// The lock API. Cheap to clone.
#[derive(Clone)]
pub struct LockService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LockService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockService")
            .field("redis", &self.inner.redis.is_some())
            .field(
                "fallback",
                &match self.inner.fallback {
                    Fallback::Mysql(_) => "mysql",
                    Fallback::Local(_) => "in_process",
                },
            )
            .finish()
    }
}

impl LockService {
    /// In-process locks only (embedded mode).
    pub fn in_process() -> LockService {
        Self::from_parts(None, Fallback::Local(local::LocalTier::new()))
    }

    /// Redis first (when given), then MySQL named locks when the database is MySQL, else in-process
    /// locks. Never fails because a server is down: connections are made on first use. The MySQL tier
    /// issues tokens from `lock_tokens`, created by the store's migrations (connect the store first).
    pub fn new(
        redis: Option<RedisHandle>,
        database: &DatabaseSettings,
    ) -> Result<LockService, LockError> {
        let fallback = match database {
            DatabaseSettings::Mysql { url } => {
                Fallback::Mysql(mysql::MysqlTier::new(url).map_err(|reason| {
                    LockError::Unavailable {
                        name: "-".into(),
                        reason,
                        source: None,
                    }
                })?)
            }
            DatabaseSettings::Sqlite { .. } => Fallback::Local(local::LocalTier::new()),
        };
        Ok(Self::from_parts(redis.map(redis::RedisTier::new), fallback))
    }

    fn from_parts(redis: Option<redis::RedisTier>, fallback: Fallback) -> LockService {
        LockService {
            inner: Arc::new(Inner {
                redis,
                fallback,
                breaker: Mutex::new(Breaker::new(BREAKER_COOLDOWN)),
                stats: LockStats::default(),
            }),
        }
    }

    /// This service's counters.
    pub fn stats(&self) -> &LockStats {
        &self.inner.stats
    }

    /// The tier an acquisition would try first right now.
    pub fn preferred_tier(&self) -> LockTier {
        if self.redis_usable(false) {
            LockTier::Redis
        } else {
            self.fallback_tier()
        }
    }

    fn fallback_tier(&self) -> LockTier {
        match self.inner.fallback {
            Fallback::Mysql(_) => LockTier::Mysql,
            Fallback::Local(_) => LockTier::InProcess,
        }
    }

    /// Whether Redis may be asked: configured, connected and its breaker not open. `take_probe` claims
    /// the half-open probe.
    fn redis_usable(&self, take_probe: bool) -> bool {
        let Some(r) = &self.inner.redis else {
            return false;
        };
        if !r.is_connected() {
            self.inner
                .breaker
                .lock()
                .expect("poisoned")
                .on_failure(Instant::now());
            return false;
        }
        let mut b = self.inner.breaker.lock().expect("poisoned");
        if take_probe {
            b.allow(Instant::now())
        } else {
            b.would_allow(Instant::now())
        }
    }

    /// Acquires `name`, waiting at most `wait` for another holder; the lease is `lease` (renewed by the
    /// guard's watchdog every `lease / 3`).
    pub async fn acquire(
        &self,
        name: &str,
        wait: Duration,
        lease: Duration,
    ) -> Result<LockGuard, LockError> {
        validate_name(name)?;
        let lease = lease.max(Duration::from_millis(30));
        let started = Instant::now();
        let deadline = started + wait;
        if self.redis_usable(true) {
            let r = self.inner.redis.as_ref().expect("checked");
            match self.acquire_redis(r, name, deadline, lease).await {
                Ok(Some(a)) => {
                    self.inner.breaker.lock().expect("poisoned").on_success();
                    return Ok(self.guard(name, LockTier::Redis, a, lease, started));
                }
                Ok(None) => {
                    self.inner.breaker.lock().expect("poisoned").on_success();
                    return Err(self.timed_out(name, LockTier::Redis, started));
                }
                Err(TierDown { reason, .. }) => {
                    self.inner
                        .breaker
                        .lock()
                        .expect("poisoned")
                        .on_failure(Instant::now());
                    self.inner.stats.fallbacks.fetch_add(1, Ordering::SeqCst);
                    metrics::counter!(LOCK_FALLBACKS_TOTAL, "to" => self.fallback_tier().as_str())
                        .increment(1);
                    tracing::warn!(lock = name, %reason, "redis unavailable for locks: falling back");
                }
            }
        } else if self.inner.redis.is_some() {
            self.inner.stats.fallbacks.fetch_add(1, Ordering::SeqCst);
            metrics::counter!(LOCK_FALLBACKS_TOTAL, "to" => self.fallback_tier().as_str())
                .increment(1);
        }
        let tier = self.fallback_tier();
        let r = match &self.inner.fallback {
            Fallback::Mysql(m) => m.acquire(name, deadline, lease).await,
            Fallback::Local(l) => Ok(l.acquire(name, deadline, lease).await),
        };
        match r {
            Ok(Some(a)) => Ok(self.guard(name, tier, a, lease, started)),
            Ok(None) => Err(self.timed_out(name, tier, started)),
            Err(TierDown { reason, source }) => {
                self.inner.stats.unavailable.fetch_add(1, Ordering::SeqCst);
                metrics::counter!(LOCK_ACQUISITIONS_TOTAL, "tier" => tier.as_str(), "result" => "unavailable")
                    .increment(1);
                Err(LockError::Unavailable {
                    name: name.to_string(),
                    reason,
                    source,
                })
            }
        }
    }

    /// The Redis tier with its waiting loop; `Err` means Redis is unavailable (the caller falls back).
    async fn acquire_redis(
        &self,
        r: &redis::RedisTier,
        name: &str,
        deadline: Instant,
        lease: Duration,
    ) -> Result<Option<Acquired>, TierDown> {
        loop {
            let signal = r.signal_for(name);
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(a) = r.try_once(name, lease).await? {
                // Failback guard: a MySQL holder from a Redis outage may still be working.
                match &self.inner.fallback {
                    Fallback::Mysql(m) if !m.is_free(name).await => {
                        let _ = a.held.release().await;
                    }
                    _ => return Ok(Some(a)),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            r.ensure_listener();
            let jitter = Duration::from_millis(20 + rand::random::<u64>() % 40);
            let until = (now + jitter).min(deadline);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    fn timed_out(&self, name: &str, tier: LockTier, started: Instant) -> LockError {
        let waited = started.elapsed();
        self.inner.stats.timeouts.fetch_add(1, Ordering::SeqCst);
        metrics::counter!(LOCK_ACQUISITIONS_TOTAL, "tier" => tier.as_str(), "result" => "timeout")
            .increment(1);
        metrics::histogram!(LOCK_WAIT_SECONDS, "tier" => tier.as_str())
            .record(waited.as_secs_f64());
        LockError::Timeout {
            name: name.to_string(),
            waited_ms: waited.as_millis() as u64,
        }
    }

    fn guard(
        &self,
        name: &str,
        tier: LockTier,
        a: Acquired,
        lease: Duration,
        started: Instant,
    ) -> LockGuard {
        let waited = started.elapsed();
        let counter = match tier {
            LockTier::Redis => &self.inner.stats.redis,
            LockTier::Mysql => &self.inner.stats.mysql,
            LockTier::InProcess => &self.inner.stats.in_process,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        metrics::counter!(LOCK_ACQUISITIONS_TOTAL, "tier" => tier.as_str(), "result" => "acquired")
            .increment(1);
        metrics::histogram!(LOCK_WAIT_SECONDS, "tier" => tier.as_str())
            .record(waited.as_secs_f64());
        let state = Arc::new(GuardState {
            lost: CancellationToken::new(),
            watchdog: AtomicBool::new(true),
            valid_until: Mutex::new(a.taken_at + lease),
        });
        let (tx, rx) = oneshot::channel();
        spawn_keeper(name.to_string(), tier, a.held, lease, state.clone(), rx);
        LockGuard {
            name: name.to_string(),
            tier,
            token: a.token,
            acquired_in: waited,
            state,
            release: Some(tx),
        }
    }
}
