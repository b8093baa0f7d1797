//! The raw item-equipment JSON (gzip) of a character and date, cached under `…:eq:<date>`.
//!
//! Contract:
//! - A load resolves the ocid first (a name the upstream does not know is cached negatively, `NotFound`);
//!   an interactive, unforced load whose ocid was not just resolved takes a snapshot still fresh in the
//!   database instead of calling the upstream.
//! - A payload from the upstream is validated (parsed) before it is cached: a malformed one fails with a 502
//!   and is never cached. Its parsed model is kept for the expectation rendered next, and the payload is
//!   stored as the database snapshot (see [`super::snapshots`]).
//! - An ocid the upstream no longer knows is forgotten (cache and database) and the equipment is cached as
//!   not found.
//! - When the upstream cannot answer, the cache's last copy is served stale, else the database snapshot
//!   within its 30-day window (counted in `maple_stale_from_database_total`), as [`fallback::decide`]
//!   rules; the raw body is served as it was stored. A background refresh never falls back.

use std::sync::Arc;

use bytes::Bytes;

use super::date::RequestDate;
use super::fallback::{self, StaleCopy};
use super::{Answer, CharacterError, CharacterService, DataDate, keys, negative, skip_if_refused};
use crate::cache::{CacheStatus, CachedValue, LoadFailure, Tiers};
use crate::codec;
use crate::ids::{CharacterName, Priority};
use crate::nexon::NexonError;
use crate::nexon::client::parse_item_equipment;

impl CharacterService {
    /// The raw item-equipment JSON (gzip) of a character.
    pub async fn equipment(
        self: &Arc<Self>,
        name: &CharacterName,
        date: DataDate,
        force: bool,
    ) -> Result<Answer, CharacterError> {
        self.equipment_for(
            name,
            RequestDate::new(date),
            force,
            Priority::Interactive,
            Tiers::All,
        )
        .await
    }

    /// As [`CharacterService::equipment`], on behalf of a load of the given priority, cached in `tiers`.
    pub(super) async fn equipment_for(
        self: &Arc<Self>,
        name: &CharacterName,
        date: RequestDate,
        force: bool,
        outer: Priority,
        tiers: Tiers,
    ) -> Result<Answer, CharacterError> {
        let key = keys::equipment_key(name, date);
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
            Ok(s) => Ok(Answer::served(&s.value, s.status)),
            Err(f) => self.equipment_fallback(name, date, outer, f).await,
        }
    }

    /// A failed equipment load: the cache's last copy, else the database snapshot, else the error.
    async fn equipment_fallback(
        &self,
        name: &CharacterName,
        date: RequestDate,
        outer: Priority,
        f: LoadFailure<CharacterError>,
    ) -> Result<Answer, CharacterError> {
        let stale = fallback::decide(f, outer, || self.stale_snapshot(name, date)).await?;
        self.cache.record_stale();
        Ok(match stale.copy {
            StaleCopy::Cached(v) => {
                Answer::stale(&v, stale.data_preparing, Some(stale.upstream_status))
            }
            StaleCopy::Database((body_gz, fetched_at_ms)) => {
                metrics::counter!("maple_stale_from_database_total").increment(1);
                Answer::stale_from_database(
                    body_gz,
                    fetched_at_ms,
                    stale.data_preparing,
                    stale.upstream_status,
                )
            }
        })
    }

    async fn load_equipment(
        self: Arc<Self>,
        name: &CharacterName,
        date: RequestDate,
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
                self.cache.invalidate_prefix(&keys::ocid_key(name)).await;
                self.forget_ocid(name).await;
                return Ok(negative(now));
            }
            Err(e) => return Err(e.into()),
        };
        // Validate (parse) and compress in one job: the parsed model goes to the render that follows.
        let (parsed, gz) = self
            .cpu
            .run(move || {
                let parsed = parse_item_equipment(&raw)?;
                Ok::<_, NexonError>((parsed, Bytes::from(codec::compress_raw(&raw))))
            })
            .await??;
        self.recent_models
            .insert(keys::model_key(name, date, now), Arc::new(parsed));
        self.store_snapshot(ocid, date, gz.clone(), now).await;
        Ok(date.value(gz, now))
    }
}
