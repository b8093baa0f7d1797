//! The read path: name → ocid → raw equipment → expectation, through the tiered cache and the Nexon client.
//! This module owns the stale / fallback decisions.
//!
//! Contract:
//! - Keys: `maple:v1:c:{name}:{kind}:…` (name canonicalised), so `maple:v1:c:{name}:` invalidates everything
//!   of one character. Expectations are keyed by (character, date, starforce options, table version) and are
//!   *derived from the cached raw equipment*: a new table recomputes without an upstream call.
//! - One upstream call per key: every step goes through [`TieredCache::get_or_load`] (local + cluster flight).
//! - Not found (the upstream's 00003/00004) is cached negatively for [`NEGATIVE_TTL`] and reported as
//!   `CHARACTER_NOT_FOUND`; a stored ocid is then forgotten.
//! - When the upstream cannot answer (a fault, maintenance, rate limit, data being prepared), the last good
//!   copy is served as `STALE`: first the cache's value within its 30-day window, then the database snapshot
//!   (`equipment_snapshots`). Without one the upstream's error is returned (503 + `Retry-After`).
//!   Malformed upstream responses (502) are never cached and never replaced by stale data silently: they are
//!   a bug to see.
//! - Data being prepared (00009) is served the same way, flagged `"data_preparing": true` in JSON envelopes.
//! - Loads run with the cache's [`Priority`], passed on to the client: background refreshes
//!   never wait for a rate slot, are not retried, are skipped outright (no database or render work) while
//!   the client says the upstream would refuse them (open breaker, maintenance or key hold), and never fall
//!   back on stale copies or snapshots — a refresh that cannot get fresh data fails and leaves the cached
//!   value in place.
//! - Every raw equipment payload fetched is also written (gzip) to the database as the source of last resort;
//!   those writes run in the background and are counted, and their failure never fails the request.
//! - Raw equipment loaded on behalf of an expectation is kept in L2 only ([`Tiers::L2Only`]): L1 holds
//!   what clients are served (expectations, and raw equipment only when `/equipment` itself was asked).
//!   An interactive load of raw equipment that is still fresh in the database (the snapshot written by an
//!   earlier load) is taken from there instead of the upstream — without Redis that is where a new option
//!   set or table version finds it, so there a load waits (up to [`SNAPSHOT_WAIT`]) for its snapshot write
//!   before it completes. A snapshot that does not parse is counted, logged and ignored.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDate;
use serde::Serialize;

use crate::cache::{
    CacheError, CacheStatus, CachedValue, LoadFailure, ServedValue, TieredCache, Tiers, freshness,
};
use crate::error::{Classify, Code, ErrorKind};
use crate::expectation::{self, CubeTables, ItemEquipment, StarforceOptions};
use crate::ids::{CharacterName, Ocid, Priority};
use crate::nexon::client::parse_item_equipment;
use crate::nexon::{NexonClient, NexonError};
use crate::store::{CharacterRow, Store, codec};

/// How long "character not found" is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(300);
/// How long an expectation derived from a stale copy is served before the next attempt to refresh it.
pub const STALE_RECHECK: Duration = Duration::from_secs(30);
/// How long a load waits for its snapshot write when the database is the only second tier (no Redis).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);
/// Parsed payloads kept for the expectation computed right after a load (saves a second inflate + parse).
const RECENT_MODELS: u64 = 32;
/// The earliest date the upstream serves.
pub const FIRST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2023, 12, 21) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// Why a read failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CharacterError {
    #[error("character not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Upstream(#[from] NexonError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CacheError> for CharacterError {
    fn from(e: CacheError) -> Self {
        CharacterError::Internal(e.to_string())
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

/// Which snapshot: the latest, or a past date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataDate(Option<NaiveDate>);

impl DataDate {
    pub const LATEST: DataDate = DataDate(None);

    /// Parses `YYYY-MM-DD`; rejects dates in the future (KST) and before the upstream's first date.
    pub fn parse(raw: &str, now_ms: i64) -> Result<DataDate, CharacterError> {
        let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
            CharacterError::BadRequest(format!("date must be YYYY-MM-DD, got {raw:?}"))
        })?;
        if d < FIRST_DATE {
            return Err(CharacterError::BadRequest(format!(
                "date must be on or after {FIRST_DATE}"
            )));
        }
        if d > freshness::kst_today(now_ms) {
            return Err(CharacterError::BadRequest(
                "date must not be in the future (KST)".into(),
            ));
        }
        Ok(DataDate(Some(d)))
    }

    pub fn date(&self) -> Option<NaiveDate> {
        self.0
    }

    fn key(&self) -> String {
        let mut key = String::new();
        self.push_key(&mut key);
        key
    }

    /// Appends [`DataDate::key`] (`YYYY-MM-DD` or `latest`) to `out`.
    fn push_key(&self, out: &mut String) {
        use std::fmt::Write;
        match self.0 {
            Some(d) => {
                let _ = write!(out, "{d}");
            }
            None => out.push_str("latest"),
        }
    }

    fn query(&self) -> Option<String> {
        self.0.map(|d| d.to_string())
    }
}

/// A body ready to send, with how it was served.
#[derive(Clone, Debug)]
pub struct Answer {
    /// gzip body.
    pub body_gz: Bytes,
    pub status: CacheStatus,
    pub fetched_at_ms: i64,
    /// Served stale because the upstream is still preparing the data (00009).
    pub data_preparing: bool,
}

/// Runs the CPU-heavy steps of the read path (parsing ~350 KB of upstream JSON, gzip, computing and
/// rendering an expectation) on the blocking pool, at most one per core at a time. More at once would only
/// make the kernel time-slice between them (on the cold path context switches were a tenth of the CPU time)
/// and take the cores from the async workers that serve cached reads; queued work waits for a permit.
#[derive(Clone)]
struct CpuLane {
    permits: Arc<tokio::sync::Semaphore>,
}

impl CpuLane {
    fn new() -> Self {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        CpuLane {
            permits: Arc::new(tokio::sync::Semaphore::new(n)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CharacterError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CharacterError::Internal("CPU lane closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| CharacterError::Internal(e.to_string()))
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
}

#[derive(Serialize)]
struct ExpectationEnvelope<'a> {
    character: &'a str,
    data_as_of: String,
    stale: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    data_preparing: bool,
    #[serde(flatten)]
    expectation: &'a expectation::Expectation,
}

impl CharacterService {
    pub fn new(
        nexon: NexonClient,
        store: Store,
        tables: Option<Arc<CubeTables>>,
        cache: TieredCache<CharacterError>,
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
        })
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

    /// Waits (bounded) for background snapshot writes — used at shutdown.
    pub async fn flush_snapshot_writes(&self, max: Duration) -> bool {
        self.snapshot_writes.close();
        let ok = tokio::time::timeout(max, self.snapshot_writes.wait())
            .await
            .is_ok();
        self.snapshot_writes.reopen();
        ok
    }

    fn prefix(name: &CharacterName) -> String {
        let mut prefix = String::new();
        Self::push_prefix(&mut prefix, name);
        prefix
    }

    /// Appends [`CharacterService::prefix`] (`maple:v1:c:<lowercased name>:`) to `out`.
    fn push_prefix(out: &mut String, name: &CharacterName) {
        out.push_str("maple:v1:c:");
        name.push_key(out);
        out.push(':');
    }

    fn eq_key(name: &CharacterName, date: DataDate) -> String {
        format!("{}eq:{}", Self::prefix(name), date.key())
    }

    /// The `recent_models` key of the raw equipment of (name, date) fetched at `fetched_at_ms`.
    fn model_key(name: &CharacterName, date: DataDate, fetched_at_ms: i64) -> String {
        format!("{}@{fetched_at_ms}", Self::eq_key(name, date))
    }

    /// After a forced refresh: other instances drop their L1 copies of the character (they read the new
    /// values from L2); this instance keeps the values it just loaded.
    pub async fn announce_refresh(&self, name: &CharacterName) {
        self.cache.publish_invalidation(&Self::prefix(name)).await;
    }

    /// Drops every cached entry of a character in the whole cluster.
    pub async fn invalidate(&self, name: &CharacterName) {
        self.cache.invalidate_prefix(&Self::prefix(name)).await;
    }

    /// name → ocid (cached; negative-cached when the character does not exist).
    pub async fn ocid(
        self: &Arc<Self>,
        name: &CharacterName,
        force: bool,
    ) -> Result<Ocid, CharacterError> {
        self.ocid_for(name, force, Priority::Interactive).await
    }

    /// As [`CharacterService::ocid`], on behalf of a load of the given priority (a background refresh that
    /// needs the ocid loads it as background work too).
    async fn ocid_for(
        self: &Arc<Self>,
        name: &CharacterName,
        force: bool,
        outer: Priority,
    ) -> Result<Ocid, CharacterError> {
        self.ocid_served(name, force, outer).await.map(|(o, _)| o)
    }

    /// As [`CharacterService::ocid_for`], with how the ocid was served (`Miss`: resolved by the upstream just
    /// now, so nothing can have been stored under it yet).
    async fn ocid_served(
        self: &Arc<Self>,
        name: &CharacterName,
        force: bool,
        outer: Priority,
    ) -> Result<(Ocid, CacheStatus), CharacterError> {
        let key = format!("{}ocid", Self::prefix(name));
        let this = self.clone();
        let n = name.clone();
        let served = self
            .cache
            .get_or_load(&key, force, move |mode| async move {
                let p = outer.lower(mode);
                this.load_ocid(&n, p).await
            })
            .await;
        let served = match served {
            Ok(s) => s,
            // A background refresh gains nothing from a stale copy: it fails and the cached values stay.
            Err(f) if outer == Priority::Background => return Err(f.error),
            // An ocid does not go stale in a way that matters: use the last one when the upstream is down.
            Err(LoadFailure {
                stale: Some(v),
                error,
            }) if fallback_allowed(&error) && !v.negative => ServedValue {
                value: v,
                status: CacheStatus::Stale,
            },
            Err(f) => match (&f.error, self.store.get_character(&name.key()).await) {
                (e, Ok(Some(CharacterRow { ocid: Some(o), .. }))) if fallback_allowed(e) => {
                    return Ocid::parse(&o)
                        .map(|o| (o, CacheStatus::Stale))
                        .map_err(|_| f.error.clone());
                }
                _ => return Err(f.error),
            },
        };
        if served.value.negative {
            return Err(CharacterError::NotFound);
        }
        let raw = codec::decompress(&served.value.body_gz)
            .map_err(|e| CharacterError::Internal(e.to_string()))?;
        let s = String::from_utf8(raw).map_err(|e| CharacterError::Internal(e.to_string()))?;
        Ocid::parse(&s)
            .map(|o| (o, served.status))
            .map_err(|e| CharacterError::Internal(e.to_string()))
    }

    async fn load_ocid(
        self: Arc<Self>,
        name: &CharacterName,
        priority: Priority,
    ) -> Result<CachedValue, CharacterError> {
        skip_if_refused(&self.nexon, priority)?;
        let now = self.now_ms();
        match self.nexon.ocid(name, priority).await {
            Ok(ocid) => {
                let w = freshness::window(None, now);
                // The ocid rarely changes: keep it for a day, refresh in the background after that.
                let fresh = now + 24 * 3600 * 1000;
                let store = self.store.clone();
                let (key, stored_ocid) = (name.key(), ocid.to_string());
                self.snapshot_writes.spawn(async move {
                    if let Err(e) = store.set_ocid(&key, &stored_ocid, now).await {
                        metrics::counter!("maple_store_write_failures_total", "what" => "character").increment(1);
                        tracing::warn!(error = %e, "character row write failed");
                    }
                });
                Ok(CachedValue {
                    body_gz: Bytes::from(codec::compress(ocid.as_str().as_bytes())),
                    fetched_at_ms: now,
                    fresh_until_ms: fresh.min(w.stale_until_ms),
                    stale_until_ms: w.stale_until_ms,
                    load_ms: 0,
                    negative: false,
                    stale: false,
                })
            }
            Err(NexonError::NotFound) => {
                let store = self.store.clone();
                let key = name.key();
                self.snapshot_writes.spawn(async move {
                    let _ = store.clear_ocid(&key).await;
                });
                Ok(negative(now))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The raw item-equipment JSON (gzip) of a character.
    pub async fn equipment(
        self: &Arc<Self>,
        name: &CharacterName,
        date: DataDate,
        force: bool,
    ) -> Result<Answer, CharacterError> {
        self.equipment_for(name, date, force, Priority::Interactive, Tiers::All)
            .await
    }

    /// As [`CharacterService::equipment`], on behalf of a load of the given priority, cached in `tiers`.
    async fn equipment_for(
        self: &Arc<Self>,
        name: &CharacterName,
        date: DataDate,
        force: bool,
        outer: Priority,
        tiers: Tiers,
    ) -> Result<Answer, CharacterError> {
        let key = Self::eq_key(name, date);
        let this = self.clone();
        let n = name.clone();
        let served = self
            .cache
            .get_or_load_in(&key, force, tiers, move |mode| async move {
                this.load_equipment(&n, date, force, outer.lower(mode))
                    .await
            })
            .await;
        match served {
            Ok(s) if s.value.negative => Err(CharacterError::NotFound),
            Ok(s) => Ok(Answer {
                body_gz: s.value.body_gz.clone(),
                status: s.status,
                fetched_at_ms: s.value.fetched_at_ms,
                data_preparing: false,
            }),
            // A background refresh gains nothing from re-deriving the stale copy it would replace.
            Err(f) if outer == Priority::Background => Err(f.error),
            Err(f) => self.equipment_fallback(name, date, f).await,
        }
    }

    async fn equipment_fallback(
        &self,
        name: &CharacterName,
        date: DataDate,
        f: LoadFailure<CharacterError>,
    ) -> Result<Answer, CharacterError> {
        if !fallback_allowed(&f.error) {
            return Err(f.error);
        }
        let data_preparing = is_data_preparing(&f.error);
        if let Some(v) = f.stale.filter(|v| !v.negative) {
            self.cache.record_stale();
            return Ok(Answer {
                body_gz: v.body_gz.clone(),
                status: CacheStatus::Stale,
                fetched_at_ms: v.fetched_at_ms,
                data_preparing,
            });
        }
        // Last resort: the database snapshot, when we know the ocid.
        if let Ok(Some(CharacterRow {
            ocid: Some(ocid), ..
        })) = self.store.get_character(&name.key()).await
            && let Ok(Some(snap)) = self.store.get_snapshot(&ocid, &date.key()).await
            && snap.fetched_at_ms + freshness::MAX_AGE.as_millis() as i64 > self.now_ms()
        {
            self.cache.record_stale();
            metrics::counter!("maple_stale_from_database_total").increment(1);
            return Ok(Answer {
                body_gz: Bytes::from(codec::compress_raw(&snap.payload)),
                status: CacheStatus::Stale,
                fetched_at_ms: snap.fetched_at_ms,
                data_preparing,
            });
        }
        Err(f.error)
    }

    async fn load_equipment(
        self: Arc<Self>,
        name: &CharacterName,
        date: DataDate,
        force: bool,
        priority: Priority,
    ) -> Result<CachedValue, CharacterError> {
        skip_if_refused(&self.nexon, priority)?;
        let (ocid, ocid_status) = match self.ocid_served(name, force, priority).await {
            Ok(o) => o,
            Err(CharacterError::NotFound) => return Ok(negative(self.now_ms())),
            Err(e) => return Err(e),
        };
        // A character whose ocid was only just resolved has no snapshot to look for.
        if !force
            && priority == Priority::Interactive
            && ocid_status != CacheStatus::Miss
            && let Some(v) = self.fresh_snapshot(name, &ocid, date).await
        {
            return Ok(v);
        }
        let now = self.now_ms();
        let raw = match self
            .nexon
            .item_equipment_raw(&ocid, date.query().as_deref(), priority)
            .await
        {
            Ok(r) => r,
            Err(NexonError::NotFound) => {
                // The stored ocid is no longer valid: forget it so the next request resolves the name again.
                self.cache
                    .invalidate_prefix(&format!("{}ocid", Self::prefix(name)))
                    .await;
                let store = self.store.clone();
                let key = name.key();
                let _ = store.clear_ocid(&key).await;
                return Ok(negative(now));
            }
            Err(e) => return Err(e.into()),
        };
        let w = freshness::window(date.date(), now);
        // Validate (parse) and compress in one job: the parsed model goes to the render that follows.
        let (parsed, gz) = self
            .cpu
            .run(move || {
                let parsed = parse_item_equipment(&raw)?;
                Ok::<_, NexonError>((parsed, Bytes::from(codec::compress_raw(&raw))))
            })
            .await??;
        self.recent_models
            .insert(Self::model_key(name, date, now), Arc::new(parsed));
        let store = self.store.clone();
        let snap_gz = gz.clone();
        let date_key = date.key();
        let write = self.snapshot_writes.spawn(async move {
            match store
                .put_snapshot(ocid.as_str(), &date_key, &snap_gz, now)
                .await
            {
                Ok(()) => {
                    metrics::counter!("maple_snapshot_writes_total", "result" => "ok").increment(1)
                }
                Err(e) => {
                    metrics::counter!("maple_snapshot_writes_total", "result" => "error")
                        .increment(1);
                    tracing::warn!(error = %e, "equipment snapshot write failed");
                }
            }
        });
        // Without Redis the database is the only place raw equipment kept out of L1 lives: let the write land
        // before the load completes (bounded), so the next option set or table version finds it there.
        if !self.cache.has_l2() {
            let _ = tokio::time::timeout(SNAPSHOT_WAIT, write).await;
        }
        Ok(fresh_value(gz, now, w))
    }

    /// The database snapshot of (ocid, date) as a cache value, when it is still within its freshness window
    /// and parses; its parsed model is handed to the render that follows.
    async fn fresh_snapshot(
        &self,
        name: &CharacterName,
        ocid: &Ocid,
        date: DataDate,
    ) -> Option<CachedValue> {
        let (gz, fetched_at_ms) = match self.store.get_snapshot_gz(ocid.as_str(), &date.key()).await
        {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                metrics::counter!("maple_snapshot_reads_total", "result" => "error").increment(1);
                tracing::warn!(error = %e, "equipment snapshot read failed: loading from the upstream");
                return None;
            }
        };
        let w = freshness::window(date.date(), fetched_at_ms);
        if w.fresh_until_ms <= self.now_ms() {
            return None;
        }
        let gz = Bytes::from(gz);
        let body = gz.clone();
        let parsed = self
            .cpu
            .run(move || {
                let raw = codec::decompress(&body).ok()?;
                ItemEquipment::from_json_for_engine(&raw).ok()
            })
            .await
            .ok()
            .flatten();
        let Some(model) = parsed else {
            metrics::counter!("maple_snapshot_reads_total", "result" => "unreadable").increment(1);
            tracing::warn!(ocid = ocid.as_str(), date = %date.key(), "stored equipment snapshot does not parse: ignored, loading from the upstream");
            return None;
        };
        metrics::counter!("maple_snapshot_reads_total", "result" => "fresh").increment(1);
        self.recent_models
            .insert(Self::model_key(name, date, fetched_at_ms), Arc::new(model));
        Some(fresh_value(gz, fetched_at_ms, w))
    }

    /// The expectation JSON (gzip), derived from the cached raw equipment.
    pub async fn expectation(
        self: &Arc<Self>,
        name: &CharacterName,
        date: DataDate,
        opts: StarforceOptions,
        force: bool,
    ) -> Result<Answer, CharacterError> {
        opts.validate()
            .map_err(|e| CharacterError::BadRequest(e.to_string()))?;
        let key = expectation_key(name, date, &opts, self.table_version().unwrap_or("none"));
        // While the upstream refuses calls (open breaker, hold), a copy already derived from stale data is
        // served as it is: asking the cache would only spawn a refresh that cannot succeed.
        if !force
            && self.nexon.refusal().is_some()
            && let Some((v, _)) = self.cache.lookup(&key).await
            && !v.negative
            && v.stale
        {
            self.cache.record_stale();
            return Ok(Answer {
                body_gz: v.body_gz.clone(),
                status: CacheStatus::Stale,
                fetched_at_ms: v.fetched_at_ms,
                data_preparing: false,
            });
        }
        // The loader is built only on a miss or a refresh: a hit clones nothing.
        let make_load = || {
            let this = self.clone();
            let n = name.clone();
            move |priority| async move {
                // A refresh that cannot reach the upstream would only re-derive the same stale copy.
                skip_if_refused(&this.nexon, priority)?;
                let eq = this
                    .equipment_for(&n, date, force, priority, Tiers::L2Only)
                    .await?;
                let stale = eq.status == CacheStatus::Stale;
                let mut v = this.render_expectation(&n, date, opts, eq, stale).await?;
                if stale {
                    // Computed from a stale copy: reported STALE, and retried only after a short pause so
                    // an upstream outage does not turn every read into a refresh attempt.
                    v.stale = true;
                    v.fresh_until_ms = this.now_ms() + STALE_RECHECK.as_millis() as i64;
                }
                Ok(v)
            }
        };
        let served = self
            .cache
            .get_or_load_with(&key, force, Tiers::All, make_load)
            .await;
        match served {
            Ok(s) if s.value.negative => Err(CharacterError::NotFound),
            Ok(s) => {
                let stale = s.value.stale;
                if stale && s.status != CacheStatus::Miss {
                    // Derived from a stale copy earlier and served again from the cache: a stale serve.
                    self.cache.record_stale();
                }
                Ok(Answer {
                    body_gz: s.value.body_gz.clone(),
                    status: if stale { CacheStatus::Stale } else { s.status },
                    fetched_at_ms: s.value.fetched_at_ms,
                    data_preparing: false,
                })
            }
            Err(f) => {
                if !fallback_allowed(&f.error) {
                    return Err(f.error);
                }
                let data_preparing = is_data_preparing(&f.error);
                if let Some(v) = f.stale.filter(|v| !v.negative) {
                    self.cache.record_stale();
                    return Ok(Answer {
                        body_gz: mark_stale(&v.body_gz, data_preparing)?,
                        status: CacheStatus::Stale,
                        fetched_at_ms: v.fetched_at_ms,
                        data_preparing,
                    });
                }
                Err(f.error)
            }
        }
    }

    /// Computes and renders an expectation on the blocking pool (parse, compute and gzip are CPU work that
    /// must not hold up the async workers serving cached reads).
    async fn render_expectation(
        &self,
        name: &CharacterName,
        date: DataDate,
        opts: StarforceOptions,
        eq: Answer,
        stale: bool,
    ) -> Result<CachedValue, CharacterError> {
        let model = self
            .recent_models
            .get(&Self::model_key(name, date, eq.fetched_at_ms));
        let tables = self.tables.clone();
        let character = name.as_str().to_string();
        self.cpu
            .run(move || {
                let model = match model {
                    Some(m) => m,
                    None => {
                        let raw = codec::decompress(&eq.body_gz)
                            .map_err(|e| CharacterError::Internal(e.to_string()))?;
                        Arc::new(ItemEquipment::from_json_for_engine(&raw).map_err(|e| {
                            CharacterError::Upstream(NexonError::BadResponse(e.to_string()))
                        })?)
                    }
                };
                let exp = expectation::compute(&model, tables.as_deref(), &opts);
                let env = ExpectationEnvelope {
                    character: &character,
                    data_as_of: rfc3339(eq.fetched_at_ms),
                    stale,
                    data_preparing: eq.data_preparing,
                    expectation: &exp,
                };
                let json = serde_json::to_vec(&env)
                    .map_err(|e| CharacterError::Internal(e.to_string()))?;
                let w = freshness::window(date.date(), eq.fetched_at_ms);
                Ok(fresh_value(
                    Bytes::from(codec::compress(&json)),
                    eq.fetched_at_ms,
                    w,
                ))
            })
            .await?
    }

    /// Basic info (world, class, level, image) plus the like count.
    pub async fn basic(self: &Arc<Self>, name: &CharacterName) -> Result<Answer, CharacterError> {
        let key = format!("{}basic", Self::prefix(name));
        let this = self.clone();
        let n = name.clone();
        let served = self
            .cache
            .get_or_load(&key, false, move |priority| async move {
                this.load_basic(&n, priority).await
            })
            .await;
        let (value, status, data_preparing) = match served {
            Ok(s) if s.value.negative => return Err(CharacterError::NotFound),
            Ok(s) => (s.value, s.status, false),
            Err(LoadFailure {
                stale: Some(v),
                error,
            }) if fallback_allowed(&error) && !v.negative => {
                self.cache.record_stale();
                (v, CacheStatus::Stale, is_data_preparing(&error))
            }
            Err(f) => return Err(f.error),
        };
        // The like count is live (not cached with the basic info).
        let likes = self
            .store
            .get_character(&name.key())
            .await
            .ok()
            .flatten()
            .map(|r| r.like_count)
            .unwrap_or(0);
        let raw = codec::decompress(&value.body_gz)
            .map_err(|e| CharacterError::Internal(e.to_string()))?;
        let mut v: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| CharacterError::Internal(e.to_string()))?;
        v["like_count"] = likes.into();
        v["stale"] = (status == CacheStatus::Stale).into();
        if data_preparing {
            v["data_preparing"] = true.into();
        }
        let json = serde_json::to_vec(&v).map_err(|e| CharacterError::Internal(e.to_string()))?;
        Ok(Answer {
            body_gz: Bytes::from(codec::compress(&json)),
            status,
            fetched_at_ms: value.fetched_at_ms,
            data_preparing,
        })
    }

    async fn load_basic(
        self: Arc<Self>,
        name: &CharacterName,
        priority: Priority,
    ) -> Result<CachedValue, CharacterError> {
        skip_if_refused(&self.nexon, priority)?;
        let ocid = match self.ocid_for(name, false, priority).await {
            Ok(o) => o,
            Err(CharacterError::NotFound) => return Ok(negative(self.now_ms())),
            Err(e) => return Err(e),
        };
        let now = self.now_ms();
        let b = match self.nexon.basic(&ocid, None, priority).await {
            Ok(b) => b,
            Err(NexonError::NotFound) => return Ok(negative(now)),
            Err(e) => return Err(e.into()),
        };
        let row = CharacterRow {
            name: name.key(),
            ocid: Some(ocid.to_string()),
            world: b.world_name.clone(),
            class: b.character_class.clone(),
            level: b.character_level,
            image: b.character_image.clone(),
            fetched_at_ms: now,
            like_count: 0,
        };
        let store = self.store.clone();
        self.snapshot_writes.spawn(async move {
            if let Err(e) = store.upsert_character(&row).await {
                metrics::counter!("maple_store_write_failures_total", "what" => "character")
                    .increment(1);
                tracing::warn!(error = %e, "character row write failed");
            }
        });
        let body = serde_json::json!({
            "character": name.as_str(),
            "world": b.world_name,
            "class": b.character_class,
            "level": b.character_level,
            "image": b.character_image,
            "data_as_of": rfc3339(now),
        });
        let w = freshness::window(None, now);
        Ok(fresh_value(
            Bytes::from(codec::compress(&serde_json::to_vec(&body).expect("json"))),
            now,
            w,
        ))
    }
}

/// A value fetched at `fetched_at_ms`, with the freshness window `w`.
fn fresh_value(body_gz: Bytes, fetched_at_ms: i64, w: freshness::Window) -> CachedValue {
    CachedValue {
        body_gz,
        fetched_at_ms,
        fresh_until_ms: w.fresh_until_ms,
        stale_until_ms: w.stale_until_ms,
        load_ms: 0,
        negative: false,
        stale: false,
    }
}

/// Whether an error may be answered with the last good copy.
fn fallback_allowed(e: &CharacterError) -> bool {
    match e {
        CharacterError::Upstream(n) => matches!(
            n,
            NexonError::Server(_)
                | NexonError::Timeout
                | NexonError::Connect(_)
                | NexonError::Maintenance(_)
                | NexonError::RateLimited { .. }
                | NexonError::DataPreparing
                | NexonError::Auth(_)
                | NexonError::CircuitOpen { .. }
                | NexonError::Held { .. }
        ),
        _ => false,
    }
}

fn is_data_preparing(e: &CharacterError) -> bool {
    matches!(e, CharacterError::Upstream(NexonError::DataPreparing))
}

/// Background work that the client would refuse anyway fails at once (no database reads, no rendering).
fn skip_if_refused(nexon: &NexonClient, priority: Priority) -> Result<(), CharacterError> {
    match (priority, nexon.refusal()) {
        (Priority::Background, Some(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

fn negative(now: i64) -> CachedValue {
    CachedValue {
        body_gz: Bytes::new(),
        fetched_at_ms: now,
        fresh_until_ms: now + NEGATIVE_TTL.as_millis() as i64,
        stale_until_ms: now + NEGATIVE_TTL.as_millis() as i64,
        load_ms: 0,
        negative: true,
        stale: false,
    }
}

/// `maple:v1:c:<name>:exp:<date>:<options>:<table>`, built in one buffer (every request builds it).
fn expectation_key(
    name: &CharacterName,
    date: DataDate,
    opts: &StarforceOptions,
    table_version: &str,
) -> String {
    use std::fmt::Write;
    let mut key = String::with_capacity(64 + table_version.len());
    CharacterService::push_prefix(&mut key, name);
    key.push_str("exp:");
    date.push_key(&mut key);
    let _ = write!(
        key,
        ":sc{}su{}pr{}d{}:{table_version}",
        opts.starcatch as u8,
        opts.sunday as u8,
        opts.prevention as u8,
        (opts.discount * 10_000.0).round() as i64
    );
    key
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Rewrites a cached expectation body with `"stale": true` (only on the degraded path).
fn mark_stale(body_gz: &[u8], data_preparing: bool) -> Result<Bytes, CharacterError> {
    let raw = codec::decompress(body_gz).map_err(|e| CharacterError::Internal(e.to_string()))?;
    let mut v: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|e| CharacterError::Internal(e.to_string()))?;
    v["stale"] = true.into();
    if data_preparing {
        v["data_preparing"] = true.into();
    }
    Ok(Bytes::from(codec::compress(
        &serde_json::to_vec(&v).expect("json"),
    )))
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn expectation_keys_name_character_date_options_and_table_under_the_character_prefix() {
        let name = CharacterName::parse("BenchHot").unwrap();
        let plain = StarforceOptions::new(false, false, false, 0.0).unwrap();
        let key = expectation_key(&name, DataDate::LATEST, &plain, "v7");
        assert_eq!(key, "maple:v1:c:benchhot:exp:latest:sc0su0pr0d0:v7");
        assert!(key.starts_with(&CharacterService::prefix(&name)));

        let date = DataDate(Some(NaiveDate::from_ymd_opt(2025, 1, 2).unwrap()));
        let opts = StarforceOptions::new(true, false, true, 0.3).unwrap();
        assert_eq!(
            expectation_key(&name, date, &opts, "none"),
            "maple:v1:c:benchhot:exp:2025-01-02:sc1su0pr1d3000:none"
        );
    }
}
