//! The read path: name → ocid → raw equipment → expectation, through the tiered cache and the Nexon client.
//! This module owns the stale / fallback decisions.
//!
//! Contract:
//! - Keys: `maple:v1:c:{name}:{kind}:…` (name canonicalised), so `maple:v1:c:{name}:` invalidates everything
//!   of one character. Expectations are keyed by (character, date, starforce settings, rule set, table
//!   version) and are *derived from the cached raw equipment*: a new table recomputes without an upstream call.
//! - One upstream call per key: every step goes through [`TieredCache::get_or_load`] (local + cluster flight).
//! - Not found (the upstream's 00003/00004) is cached negatively for [`NEGATIVE_TTL`] and reported as
//!   `CHARACTER_NOT_FOUND`; a stored ocid is then forgotten.
//! - When the upstream cannot answer (a fault, maintenance, rate limit, data being prepared), the last good
//!   copy is served as `STALE`: first the cache's value within its 30-day window, then the database snapshot
//!   (`equipment_snapshots`). Without one the upstream's error is returned (503 + `Retry-After`).
//!   Malformed upstream responses (502) are never cached and never replaced by stale data silently: they are
//!   a bug to see. Every loader takes that decision through one function, [`fallback::decide`].
//! - Data being prepared (00009) is served the same way, flagged `"data_preparing": true` in JSON envelopes.
//! - Loads run with the cache's [`Priority`], passed on to the client: background refreshes
//!   never wait for a rate slot, are not retried, are skipped outright (no database or render work) while
//!   the client says the upstream would refuse them (open breaker, maintenance or key hold), and never fall
//!   back on stale copies or snapshots — a refresh that cannot get fresh data fails and leaves the cached
//!   value in place.
//! - A request's date ([`DataDate`]) is turned once, at the public entry point, into a
//!   [`RequestDate`](date::RequestDate) that carries its freshness rule; every value the request produces
//!   takes its window from there.
//! - Every raw equipment payload fetched is also written (gzip) to the database as the source of last resort;
//!   those writes run in the background and are counted, and their failure never fails the request.
//! - Raw equipment loaded on behalf of an expectation is kept in L2 only ([`Tiers::L2Only`]): L1 holds
//!   what clients are served (expectations, and raw equipment only when `/equipment` itself was asked).
//!   An interactive load of raw equipment that is still fresh in the database (the snapshot written by an
//!   earlier load) is taken from there instead of the upstream — without Redis that is where a new option
//!   set or table version finds it, so there a load waits (up to
//!   [`SNAPSHOT_WAIT`](snapshots::SNAPSHOT_WAIT)) for its snapshot write before it completes. A snapshot
//!   that does not parse is counted, logged and ignored.
//!
//! - A forced refresh is admitted once per character and route per [`FORCE_WINDOW`]
//!   ([`CharacterService::admit_force`]); the caller answers a refused one as a normal read. At most
//!   [`MAX_OPTION_VARIANTS`] option variants of a character and date are cached; further ones are computed
//!   and answered but not stored (see [`guards`]).
//!
//! Rooms: [`keys`] (the key scheme), [`date`] (the request's date and its freshness), [`ocid`],
//! [`equipment`], [`expectation`] and [`basic`] (one loader each), [`fallback`] (the stale decision),
//! [`snapshots`] (database reads and writes), [`cpu`] (the lane for CPU-heavy steps), [`guards`] (the
//! bounds on forced refreshes and option variants).
//!
//! [`Tiers::L2Only`]: crate::cache::Tiers::L2Only

mod basic;
mod cpu;
mod date;
mod equipment;
mod expectation;
mod fallback;
mod guards;
mod keys;
mod ocid;
mod snapshots;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::cache::{CacheError, CacheStatus, CachedValue, ETag, TieredCache};
use crate::error::{Classify, Code, ErrorKind};
use crate::expectation::{CubeTables, ItemEquipment};
use crate::ids::{CharacterName, Priority};
use crate::nexon::{NexonClient, NexonError, UpstreamMode};
use crate::redis::RedisHandle;
use crate::store::Store;

use cpu::CpuLane;
pub use date::{DataDate, FIRST_DATE};
pub use guards::{FORCE_REFRESH_TOTAL, FORCE_WINDOW, MAX_OPTION_VARIANTS, VARIANTS_UNCACHED_TOTAL};
use guards::{ForceGuard, VariantGuard};

/// How long "character not found" is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(300);
/// How long an expectation derived from a stale copy is served before the next attempt to refresh it.
pub const STALE_RECHECK: Duration = Duration::from_secs(30);
/// Parsed payloads kept for the expectation computed right after a load (saves a second inflate + parse).
const RECENT_MODELS: u64 = 32;

/// Why a read failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CharacterError {
    #[error("character not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Upstream(#[from] NexonError),
    /// A fault inside the gateway; the cause is kept as the error's source (shared, so the error stays
    /// cheap to clone for every waiter of a load).
    #[error("internal error: {0}")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

impl CharacterError {
    /// An internal error caused by `cause` (an error, or a message when there is no error value).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CharacterError {
        CharacterError::Internal(Arc::from(cause.into()))
    }
}

impl From<CacheError> for CharacterError {
    fn from(e: CacheError) -> Self {
        CharacterError::internal(e)
    }
}

impl Classify for CharacterError {
    fn kind(&self) -> ErrorKind {
        match self {
            CharacterError::NotFound | CharacterError::BadRequest(_) => ErrorKind::Client,
            CharacterError::Upstream(e) => e.kind(),
            CharacterError::Internal(_) => ErrorKind::Internal,
        }
    }
    fn retryable(&self) -> bool {
        match self {
            CharacterError::Upstream(e) => e.retryable(),
            _ => false,
        }
    }
    fn code(&self) -> Code {
        match self {
            CharacterError::NotFound => Code::CharacterNotFound,
            CharacterError::BadRequest(_) => Code::BadRequest,
            CharacterError::Upstream(e) => e.code(),
            CharacterError::Internal(_) => Code::Internal,
        }
    }
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            CharacterError::Upstream(e) => e.retry_after_secs(),
            _ => None,
        }
    }
}

/// A body ready to send, with how it was served, its entity tag and its freshness. Built from a cached value
/// by [`Answer::served`] or [`Answer::stale`]; [`Answer::with_body`] derives a per-request body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// gzip body.
    pub body_gz: Bytes,
    pub status: CacheStatus,
    pub fetched_at_ms: i64,
    /// Served stale because the upstream is still preparing the data (00009).
    pub data_preparing: bool,
    /// The request asked for a forced refresh that was not admitted and was answered as a normal read.
    pub force_throttled: bool,
    /// The tag of `body_gz`: the stored value's, or derived from it for a per-request body.
    pub etag: ETag,
    /// Until when the body is fresh (the cached value's window).
    pub fresh_until_ms: i64,
    /// Until when the gateway would serve it as a last good copy if the upstream failed.
    pub stale_until_ms: i64,
    /// For a `STALE` answer that replaced a failed load: the status that failure would have been answered
    /// with (e.g. 503).
    pub upstream_status: Option<u16>,
}

impl Answer {
    /// A cached value served as the cache found or loaded it (`status` is the cache's: hit, miss…).
    pub fn served(v: &CachedValue, status: CacheStatus) -> Answer {
        Answer {
            body_gz: v.body_gz.clone(),
            status,
            fetched_at_ms: v.fetched_at_ms,
            data_preparing: false,
            force_throttled: false,
            etag: v.etag,
            fresh_until_ms: v.fresh_until_ms,
            stale_until_ms: v.stale_until_ms,
            upstream_status: None,
        }
    }

    /// A last good copy from the cache served as `STALE` (because the upstream could not answer, with the
    /// status of that failure, or because the value itself was derived from a stale copy).
    pub fn stale(v: &CachedValue, data_preparing: bool, upstream_status: Option<u16>) -> Answer {
        Answer {
            status: CacheStatus::Stale,
            data_preparing,
            upstream_status,
            ..Answer::served(v, CacheStatus::Stale)
        }
    }

    /// A last good copy from the database served as `STALE`. Its tag is computed here: the database keeps
    /// no tag, and this path only runs while the upstream is failing and the cache has no copy.
    pub fn stale_from_database(
        body_gz: Bytes,
        fetched_at_ms: i64,
        data_preparing: bool,
        upstream_status: u16,
    ) -> Answer {
        Answer {
            etag: ETag::of(&body_gz),
            body_gz,
            status: CacheStatus::Stale,
            fetched_at_ms,
            data_preparing,
            force_throttled: false,
            fresh_until_ms: fetched_at_ms,
            stale_until_ms: fetched_at_ms + crate::cache::freshness::MAX_AGE.as_millis() as i64,
            upstream_status: Some(upstream_status),
        }
    }

    /// The same answer with a body derived from this one per request (a part of it, or it with request-time
    /// fields); `part` names what makes the derived body differ (e.g. `preset=2`), and the tag is derived
    /// from the stored tag and `part` ([`ETag::derive`]) without hashing the body.
    pub fn with_body(self, body_gz: Bytes, part: &[u8]) -> Answer {
        Answer {
            body_gz,
            etag: self.etag.derive(part),
            ..self
        }
    }
}

/// The service.
pub struct CharacterService {
    cpu: CpuLane,
    nexon: NexonClient,
    store: Store,
    tables: Option<Arc<CubeTables>>,
    cache: TieredCache<CharacterError>,
    snapshot_writes: tokio_util::task::TaskTracker,
    /// Parsed item-equipment of the latest loads, keyed by `{equipment key}@{fetched_at}`.
    recent_models: moka::sync::Cache<String, Arc<ItemEquipment>>,
    forces: ForceGuard,
    variants: VariantGuard,
    /// Named in every JSON body this service builds (`"data_source"`).
    upstream_mode: UpstreamMode,
}

impl CharacterService {
    pub fn new(
        nexon: NexonClient,
        store: Store,
        tables: Option<Arc<CubeTables>>,
        cache: TieredCache<CharacterError>,
        redis: Option<RedisHandle>,
        upstream_mode: UpstreamMode,
    ) -> Arc<Self> {
        Arc::new(CharacterService {
            cpu: CpuLane::new(),
            nexon,
            store,
            tables,
            cache,
            snapshot_writes: tokio_util::task::TaskTracker::new(),
            recent_models: moka::sync::Cache::builder()
                .max_capacity(RECENT_MODELS)
                .time_to_live(Duration::from_secs(30))
                .build(),
            forces: ForceGuard::new(redis.clone(), FORCE_WINDOW),
            variants: VariantGuard::new(redis, MAX_OPTION_VARIANTS),
            upstream_mode,
        })
    }

    /// Whether a forced refresh of `name` on `route` may go ahead: once per character and route per
    /// [`FORCE_WINDOW`], cluster-wide with Redis. A refused force is to be answered as a normal read.
    pub async fn admit_force(&self, name: &CharacterName, route: &str) -> bool {
        self.forces.admit(name, route).await
    }

    pub fn cache(&self) -> &TieredCache<CharacterError> {
        &self.cache
    }

    pub fn now_ms(&self) -> i64 {
        self.cache.clock().now_ms()
    }

    pub fn table_version(&self) -> Option<&str> {
        self.tables.as_deref().map(|t| t.version())
    }

    /// After a forced refresh: other instances drop their L1 copies of the character (they read the new
    /// values from L2); this instance keeps the values it just loaded.
    pub async fn announce_refresh(&self, name: &CharacterName) {
        self.cache.publish_invalidation(&keys::prefix(name)).await;
    }

    /// Drops every cached entry of a character in the whole cluster.
    pub async fn invalidate(&self, name: &CharacterName) {
        self.cache.invalidate_prefix(&keys::prefix(name)).await;
    }
}

/// Background work that the client would refuse anyway fails at once (no database reads, no rendering).
fn skip_if_refused(nexon: &NexonClient, priority: Priority) -> Result<(), CharacterError> {
    match (priority, nexon.refusal()) {
        (Priority::Background, Some(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// "Not found", remembered for [`NEGATIVE_TTL`] from `now`.
fn negative(now: i64) -> CachedValue {
    CachedValue {
        body_gz: Bytes::new(),
        fetched_at_ms: now,
        fresh_until_ms: now + NEGATIVE_TTL.as_millis() as i64,
        stale_until_ms: now + NEGATIVE_TTL.as_millis() as i64,
        load_ms: 0,
        negative: true,
        stale: false,
        etag: ETag::UNSET,
    }
}

/// `ms` as an RFC 3339 timestamp (whole seconds, UTC): the `data_as_of` of the JSON envelopes.
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
