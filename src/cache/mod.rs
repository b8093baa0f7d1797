//! The tiered cache: L1 (moka, in-process, bounded by bytes) over L2 (Redis, shared), with stale-while-
//! revalidate, XFetch early refresh, and flight (one loader per key, locally and across the cluster).
//!
//! Contract:
//! - Values are opaque gzip bodies with a freshness window and an entity tag ([`CachedValue`], [`ETag`]:
//!   computed once, when the value is created, and stored beside the body in L1 and L2). Keys are namespaced and versioned
//!   (`maple:v1:…`) by the caller. Reads go L1 → L2 (an L2 hit is promoted to L1); writes go L2 → L1.
//! - [`TieredCache::get_or_load`]: a fresh value → `Hit`; a value past `fresh_until` but within the
//!   stale-while-revalidate grace → `Hit` immediately plus one background refresh; otherwise (missing, too
//!   old, or `force`) the caller waits for a load. A load failure returns [`LoadFailure`] with the last value
//!   still within `stale_until` (if any), so the read path can serve it as `STALE` — the decision is the
//!   caller's, not the cache's. The loader is told its [`Priority`]: `Background` for the refreshes the cache
//!   spawns by itself, `Interactive` when a caller waits.
//! - Flight: concurrent loads of one key in this instance share one spawned task (a caller that goes away —
//!   client disconnect, timeout — neither restarts nor aborts it); with Redis, one leader per key in the whole
//!   cluster ([`flight`]). A leader that dies is replaced after its lease; followers wait at most
//!   lease + wait before loading themselves (at most one extra upstream call).
//! - Placement ([`Tiers`]): a key read with [`Tiers::L2Only`] is never written to nor promoted into L1 —
//!   for values that are inputs of other cached values rather than answers (the raw equipment behind an
//!   expectation): they stay in Redis (and, for the read path, the database) without taking L1 memory from
//!   the bodies clients are served. Without Redis such a value is not cached at all; its loader decides
//!   where else to look.
//! - Redis down: L1 keeps working; entries written while L2 is failing get a short L1 lifetime
//!   ([`CacheConfig::degraded_l1_ttl`]) and the degradation is counted. Nothing here panics on Redis errors.
//! - Freshness is judged by the cache's [`Clock`], which follows tokio time (so tests pause and advance it);
//!   moka's own expiry only reclaims memory.

mod etag;
pub mod flight;
pub mod freshness;
mod invalidate;
mod load;

pub use etag::ETag;
pub use invalidate::{INVALIDATE_CHANNEL, run_listener};

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::*;
use fred::types::Expiration;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use moka::Expiry;

use crate::ids::Priority;
use crate::redis::RedisHandle;
use crate::telemetry;
use flight::{ClusterFlight, FlightRole, FlightSignals};

/// A clock in Unix milliseconds that follows tokio's (pausable) time after an initial wall-clock anchor.
#[derive(Clone, Debug)]
pub struct Clock {
    anchor_wall_ms: i64,
    anchor: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self::starting_at(chrono::Utc::now().timestamp_millis())
    }
    /// A clock reading `wall_ms` now (tests pin it to a known date).
    pub fn starting_at(wall_ms: i64) -> Self {
        Clock {
            anchor_wall_ms: wall_ms,
            anchor: tokio::time::Instant::now(),
        }
    }
    pub fn now_ms(&self) -> i64 {
        self.anchor_wall_ms + self.anchor.elapsed().as_millis() as i64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A cached value: a gzip body plus its freshness.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedValue {
    /// The body, gzip-compressed (served as is to clients that accept gzip).
    #[serde(skip)]
    pub body_gz: Bytes,
    /// When the underlying data was fetched from the upstream (`data_as_of`, `age`).
    pub fetched_at_ms: i64,
    pub fresh_until_ms: i64,
    pub stale_until_ms: i64,
    /// How long the load took (XFetch's δ).
    pub load_ms: u32,
    /// A negative entry (e.g. "character not found").
    pub negative: bool,
    /// Derived from a stale copy because the upstream could not answer: served as `STALE`, and its short
    /// freshness only spaces out the attempts to refresh it.
    #[serde(default)]
    pub stale: bool,
    /// The tag of `body_gz` ([`ETag::of`]), computed when the value was created; an L2 entry written
    /// without one gets it computed when decoded.
    #[serde(default)]
    pub etag: ETag,
}

impl CachedValue {
    fn encode(&self) -> Vec<u8> {
        let meta = serde_json::to_vec(self).expect("metadata serialises");
        let mut out = Vec::with_capacity(4 + meta.len() + self.body_gz.len());
        out.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&self.body_gz);
        out
    }

    fn decode(raw: &[u8]) -> Option<CachedValue> {
        let len = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?) as usize;
        let meta = raw.get(4..4 + len)?;
        let mut v: CachedValue = serde_json::from_slice(meta).ok()?;
        v.body_gz = Bytes::copy_from_slice(raw.get(4 + len..)?);
        if v.etag.is_unset() {
            v.etag = ETag::of(&v.body_gz);
        }
        Some(v)
    }
}

/// Where a hit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheTier {
    L1,
    L2,
}

impl CacheTier {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheTier::L1 => "L1",
            CacheTier::L2 => "L2",
        }
    }
}

/// How a value was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    Hit(CacheTier),
    Miss,
    Stale,
}

impl CacheStatus {
    pub fn header(self) -> &'static str {
        match self {
            CacheStatus::Hit(_) => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
        }
    }
}

/// A value and how it was served.
#[derive(Clone, Debug)]
pub struct ServedValue {
    pub value: Arc<CachedValue>,
    pub status: CacheStatus,
}

/// Which tiers hold a key's values (see the module contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiers {
    /// L1 and L2: the bodies served to clients.
    All,
    /// L2 only: values other cached values are derived from.
    L2Only,
}

/// A failed load, with the last value still servable as stale (if any).
#[derive(Debug)]
pub struct LoadFailure<E> {
    pub error: E,
    pub stale: Option<Arc<CachedValue>>,
}

/// Cache tunables.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    pub l1_max_bytes: u64,
    /// How long past `fresh_until` a value is still served as a hit while one background refresh runs.
    pub swr_grace: Duration,
    /// XFetch β (0 disables early refresh).
    pub xfetch_beta: f64,
    /// L1 lifetime of values written while L2 is failing.
    pub degraded_l1_ttl: Duration,
    pub flight_lease: Duration,
    pub flight_wait: Duration,
}

impl CacheConfig {
    /// The cache's settings group; the tunables that are not settings keep their fixed values.
    pub fn from_settings(s: &crate::config::CacheSettings) -> CacheConfig {
        CacheConfig {
            l1_max_bytes: s.l1_max_bytes,
            swr_grace: Duration::from_secs(3600),
            xfetch_beta: s.xfetch_beta,
            degraded_l1_ttl: Duration::from_secs(60),
            flight_lease: s.flight_lease,
            flight_wait: s.flight_wait,
        }
    }
}

impl Default for CacheConfig {
    /// The declared defaults.
    fn default() -> Self {
        CacheConfig::from_settings(&crate::config::CacheSettings::default())
    }
}

/// Errors the cache itself can hand to a loader's error type.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// The spawned load task panicked or was cancelled.
    #[error("the load task failed: {0}")]
    LoadAborted(#[source] Arc<tokio::task::JoinError>),
}

#[derive(Clone)]
struct L1Entry {
    value: Arc<CachedValue>,
    /// When L1 drops it (Unix ms by the cache clock): `stale_until`, or sooner when written degraded.
    l1_until_ms: i64,
}

/// The L1 map's hasher: every lookup hashes its key (~50 bytes), and SipHash (moka's default) showed in
/// the warm hit's profile. foldhash is seeded per cache; keys are built from validated names.
type L1Hasher = foldhash::fast::RandomState;

struct L1Expiry {
    clock: Clock,
}

impl Expiry<String, L1Entry> for L1Expiry {
    fn expire_after_create(
        &self,
        _k: &String,
        v: &L1Entry,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_millis(
            (v.l1_until_ms - self.clock.now_ms()).max(0) as u64,
        ))
    }
    fn expire_after_update(
        &self,
        k: &String,
        v: &L1Entry,
        now: std::time::Instant,
        _d: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(k, v, now)
    }
}

type FlightFuture<E> = Shared<BoxFuture<'static, Result<Arc<CachedValue>, E>>>;

/// Request counts of one cache (since start), for the operator status, and the same counts for
/// `maple_cache_requests_total` (batched per thread shard, handles registered once, when the cache is built).
struct Counters {
    /// Sharded by thread (only ever added to): counting a hit does not bounce a cache line between cores.
    hit_l1: telemetry::ShardedCount,
    hit_l2: telemetry::ShardedCount,
    miss: telemetry::ShardedCount,
    stale: telemetry::ShardedCount,
    metrics: telemetry::PerShard<RequestMetrics>,
}

/// One thread shard's handles of `maple_cache_requests_total`.
struct RequestMetrics {
    hit_l1: telemetry::BatchedCounter,
    hit_l2: telemetry::BatchedCounter,
    miss: telemetry::BatchedCounter,
    stale: telemetry::BatchedCounter,
}

impl Counters {
    fn new() -> Counters {
        let requests = |tier: &'static str, result: &'static str| {
            telemetry::BatchedCounter::new(
                metrics::counter!(telemetry::CACHE_REQUESTS_TOTAL, "tier" => tier, "result" => result),
            )
        };
        Counters {
            hit_l1: Default::default(),
            hit_l2: Default::default(),
            miss: Default::default(),
            stale: Default::default(),
            metrics: telemetry::PerShard::new(|| RequestMetrics {
                hit_l1: requests(CacheTier::L1.as_str(), "hit"),
                hit_l2: requests(CacheTier::L2.as_str(), "hit"),
                miss: requests("none", "miss"),
                stale: requests("fallback", "stale"),
            }),
        }
    }
}

/// A snapshot of [`TieredCache::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub hit_l1: u64,
    pub hit_l2: u64,
    pub miss: u64,
    pub stale: u64,
}

struct Inner<E> {
    counters: Counters,
    l1: moka::future::Cache<String, L1Entry, L1Hasher>,
    l2: Option<RedisHandle>,
    cluster: Option<ClusterFlight>,
    clock: Clock,
    config: CacheConfig,
    flights: Mutex<HashMap<String, FlightFuture<E>>>,
    instance_id: String,
}

/// The tiered cache for one loader error type `E`.
pub struct TieredCache<E> {
    inner: Arc<Inner<E>>,
}

impl<E> Clone for TieredCache<E> {
    fn clone(&self) -> Self {
        TieredCache {
            inner: self.inner.clone(),
        }
    }
}

impl<E> TieredCache<E>
where
    E: Clone + Send + Sync + std::fmt::Display + From<CacheError> + 'static,
{
    pub fn new(
        config: CacheConfig,
        l2: Option<RedisHandle>,
        clock: Clock,
        instance_id: String,
    ) -> Self {
        let l1 = moka::future::Cache::builder()
            .max_capacity(config.l1_max_bytes)
            .weigher(|k: &String, v: &L1Entry| l1_weight(k, v))
            .expire_after(L1Expiry {
                clock: clock.clone(),
            })
            .support_invalidation_closures()
            .build_with_hasher(L1Hasher::default());
        let cluster = l2.clone().map(|r| {
            ClusterFlight::new(r, config.flight_lease, Arc::new(FlightSignals::default()))
        });
        TieredCache {
            inner: Arc::new(Inner {
                counters: Counters::new(),
                l1,
                l2,
                cluster,
                clock,
                config,
                flights: Mutex::new(HashMap::new()),
                instance_id,
            }),
        }
    }

    /// Hits by tier, misses and stale serves since start.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        CacheStats {
            hit_l1: c.hit_l1.sum(),
            hit_l2: c.hit_l2.sum(),
            miss: c.miss.sum(),
            stale: c.stale.sum(),
        }
    }

    /// Counts a stale serve (the read path calls it when it falls back on a stale value).
    pub fn record_stale(&self) {
        self.count(CacheStatus::Stale);
    }

    /// Counts one answer in the operator counters and in `maple_cache_requests_total`.
    fn count(&self, status: CacheStatus) {
        let c = &self.inner.counters;
        let m = c.metrics.get();
        let (count, metric) = match status {
            CacheStatus::Hit(CacheTier::L1) => (&c.hit_l1, &m.hit_l1),
            CacheStatus::Hit(CacheTier::L2) => (&c.hit_l2, &m.hit_l2),
            CacheStatus::Miss => (&c.miss, &m.miss),
            CacheStatus::Stale => (&c.stale, &m.stale),
        };
        count.add();
        metric.increment(1);
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// How long past `fresh_until` a value is still served as a hit while it is refreshed in the background.
    pub fn swr_grace(&self) -> Duration {
        self.inner.config.swr_grace
    }

    /// The flight signal dispatcher, fed by the pub/sub listener.
    pub fn flight_signals(&self) -> Option<Arc<FlightSignals>> {
        self.inner.cluster.as_ref().map(|c| c.signals().clone())
    }

    /// Whether this cache has a second tier (Redis) at all.
    pub fn has_l2(&self) -> bool {
        self.inner.l2.is_some()
    }

    /// L1 entry count and weighted size in bytes.
    pub async fn l1_usage(&self) -> (u64, u64) {
        self.inner.l1.run_pending_tasks().await;
        (self.inner.l1.entry_count(), self.inner.l1.weighted_size())
    }

    /// L1 usage by entry kind (the key segment after the character name, e.g. `exp`, `eq`, `ocid`; keys of
    /// another shape count as `other`): `(kind, entries, weighted bytes)`, sorted by kind. Walks every entry:
    /// for the operator status and benchmarks, not for the request path.
    pub async fn l1_breakdown(&self) -> Vec<(String, u64, u64)> {
        self.inner.l1.run_pending_tasks().await;
        let mut by: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for (k, v) in self.inner.l1.iter() {
            let kind = k.split(':').nth(4).unwrap_or("other").to_string();
            let e = by.entry(kind).or_default();
            e.0 += 1;
            e.1 += u64::from(l1_weight(k.as_str(), &v));
        }
        by.into_iter().map(|(k, (n, b))| (k, n, b)).collect()
    }

    /// Looks a key up in L1 then L2 (ignoring values past `stale_until`).
    pub async fn lookup(&self, key: &str) -> Option<(Arc<CachedValue>, CacheTier)> {
        self.lookup_in(key, Tiers::All, self.inner.clock.now_ms())
            .await
    }

    /// As [`TieredCache::lookup`] at `now`; with [`Tiers::L2Only`] an L2 hit is not promoted into L1.
    async fn lookup_in(
        &self,
        key: &str,
        tiers: Tiers,
        now: i64,
    ) -> Option<(Arc<CachedValue>, CacheTier)> {
        if tiers == Tiers::All
            && let Some(e) = self.inner.l1.get(key).await
            && e.value.stale_until_ms > now
            && e.l1_until_ms > now
        {
            return Some((e.value, CacheTier::L1));
        }
        // Boxed: the L2 read (a Redis call) would otherwise make every lookup's future, and so the
        // future of every L1 hit, kilobytes larger (moved on each await and into axum's box).
        Box::pin(self.lookup_l2(key, now, tiers)).await
    }

    /// The L2 half of [`TieredCache::lookup_in`]: read, check the window, promote.
    async fn lookup_l2(
        &self,
        key: &str,
        now: i64,
        tiers: Tiers,
    ) -> Option<(Arc<CachedValue>, CacheTier)> {
        let v = self.l2_get(key).await?;
        if v.stale_until_ms <= now {
            return None;
        }
        Some((self.promote(key, v, tiers).await, CacheTier::L2))
    }

    /// Copies a value read from L2 into L1 for its whole window (unless the key is [`Tiers::L2Only`]).
    async fn promote(&self, key: &str, v: CachedValue, tiers: Tiers) -> Arc<CachedValue> {
        let v = Arc::new(v);
        if tiers == Tiers::L2Only {
            return v;
        }
        self.inner
            .l1
            .insert(
                key.to_string(),
                L1Entry {
                    value: v.clone(),
                    l1_until_ms: v.stale_until_ms,
                },
            )
            .await;
        v
    }

    async fn l2_get(&self, key: &str) -> Option<CachedValue> {
        let redis = self.inner.l2.as_ref()?;
        match redis.client().get::<Option<Vec<u8>>, _>(key).await {
            Ok(Some(raw)) => CachedValue::decode(&raw),
            Ok(None) => None,
            Err(e) => {
                metrics::counter!("maple_cache_l2_errors_total", "op" => "get").increment(1);
                tracing::debug!(error = %e, "L2 read failed");
                None
            }
        }
    }

    /// Stores a value: L2 first (unless Redis is failing), then L1.
    pub async fn put(&self, key: &str, value: Arc<CachedValue>) {
        self.put_in(key, value, Tiers::All).await
    }

    /// As [`TieredCache::put`], into the given tiers.
    async fn put_in(&self, key: &str, value: Arc<CachedValue>, tiers: Tiers) {
        let now = self.inner.clock.now_ms();
        let mut l1_until = value.stale_until_ms;
        if let Some(redis) = &self.inner.l2 {
            let ttl = (value.stale_until_ms - now).max(1);
            let r: Result<(), _> = redis
                .client()
                .set(key, value.encode(), Some(Expiration::PX(ttl)), None, false)
                .await;
            if let Err(e) = r {
                metrics::counter!("maple_cache_l2_errors_total", "op" => "set").increment(1);
                metrics::counter!("maple_cache_degraded_writes_total").increment(1);
                tracing::debug!(error = %e, "L2 write failed: keeping the value in L1 only, briefly");
                l1_until = l1_until.min(now + self.inner.config.degraded_l1_ttl.as_millis() as i64);
            }
        }
        if tiers == Tiers::L2Only {
            return;
        }
        self.inner
            .l1
            .insert(
                key.to_string(),
                L1Entry {
                    value,
                    l1_until_ms: l1_until,
                },
            )
            .await;
    }
}

/// What an L1 entry counts against `l1_max_bytes`: key, body, metadata and a fixed allowance for moka's
/// own bookkeeping.
fn l1_weight(k: &str, v: &L1Entry) -> u32 {
    (k.len() + v.value.body_gz.len() + std::mem::size_of::<CachedValue>() + 64)
        .min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_encoding_round_trips() {
        let v = CachedValue {
            body_gz: Bytes::from_static(b"\x1f\x8bxyz"),
            fetched_at_ms: 1,
            fresh_until_ms: 2,
            stale_until_ms: 3,
            load_ms: 4,
            negative: true,
            stale: false,
            etag: ETag::of(b"\x1f\x8bxyz"),
        };
        assert_eq!(CachedValue::decode(&v.encode()), Some(v));
        assert_eq!(CachedValue::decode(b"\x00\x00"), None);
        assert_eq!(CachedValue::decode(b"\x00\x00\x00\x09{}"), None);
    }

    #[test]
    fn l2_entries_written_without_a_tag_get_the_tag_of_their_body() {
        let meta = br#"{"fetched_at_ms":1,"fresh_until_ms":2,"stale_until_ms":3,"load_ms":4,"negative":false}"#;
        let mut raw = (meta.len() as u32).to_be_bytes().to_vec();
        raw.extend_from_slice(meta);
        raw.extend_from_slice(b"old body");
        let v = CachedValue::decode(&raw).expect("an entry without a tag still decodes");
        assert_eq!(v.etag, ETag::of(b"old body"));
        assert_eq!(&v.body_gz[..], b"old body");
    }
}
