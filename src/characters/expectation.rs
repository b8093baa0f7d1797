//! The expectation JSON (gzip) of a character, date and starforce options: derived from the cached raw
//! equipment and rendered on the CPU lane, cached under `…:exp:<date>:<options>:<table>`.
//!
//! Contract:
//! - Options are validated first (`BadRequest`). The raw equipment is read through the equipment loader
//!   with [`Tiers::L2Only`]: L1 holds what clients are served.
//! - An expectation derived from a stale copy of the equipment is cached flagged stale, reported `STALE`,
//!   and retried only after [`STALE_RECHECK`]; served again from the cache it counts as a stale serve.
//! - While the upstream refuses calls (open breaker, hold), an unforced request finding a copy already
//!   derived from stale data serves it as it is, without asking the cache to refresh it.
//! - When the load fails and the upstream cannot answer, the cache's last copy is served rewritten with
//!   `"stale": true` (and `"data_preparing": true` for 00009), as [`fallback::decide`] rules; there is no
//!   database copy of an expectation (the equipment loader already fell back on its snapshot).
//! - Raw equipment that does not parse fails with a 502; rendering failures with `Internal`. Items the engine
//!   leaves out for an out-of-range value are counted in [`OUT_OF_RANGE_ITEMS_TOTAL`] each time one is rendered.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::date::RequestDate;
use super::fallback::{self, StaleCopy};
use super::{
    Answer, CharacterError, CharacterService, DataDate, STALE_RECHECK, keys, rfc3339,
    skip_if_refused,
};
use crate::cache::{CacheStatus, CachedValue, LoadFailure, Tiers};
use crate::codec;
use crate::expectation::{self as engine, ItemEquipment, StarforceOptions};
use crate::ids::{CharacterName, Priority};
use crate::nexon::NexonError;

/// Counter of items the engine left out of an expectation for a value outside the game's maxima (the item's
/// blocks say `out_of_range`).
pub const OUT_OF_RANGE_ITEMS_TOTAL: &str = "maple_expectation_out_of_range_items_total";

#[derive(Serialize)]
struct ExpectationEnvelope<'a> {
    character: &'a str,
    data_as_of: String,
    stale: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    data_preparing: bool,
    #[serde(flatten)]
    expectation: &'a engine::Expectation,
}

impl CharacterService {
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
        let date = RequestDate::new(date);
        let key = keys::expectation_key(name, date, &opts, self.table_version().unwrap_or("none"));
        // While the upstream refuses calls (open breaker, hold), a copy already derived from stale data is
        // served as it is: asking the cache would only spawn a refresh that cannot succeed.
        if !force
            && let Some(refusal) = self.nexon.refusal()
            && let Some((v, _)) = self.cache.lookup(&key).await
            && v.stale
        {
            let failure = LoadFailure {
                error: refusal.into(),
                stale: Some(v),
            };
            if let Ok(stale) =
                fallback::decide(failure, Priority::Interactive, fallback::no_database).await
            {
                let StaleCopy::Cached(v) = stale.copy;
                self.cache.record_stale();
                return Ok(Answer::stale(
                    v.body_gz.clone(),
                    v.fetched_at_ms,
                    stale.data_preparing,
                ));
            }
        }
        // The loader is built only on a miss or a refresh: a hit clones nothing.
        let make_load = || {
            let this = self.clone();
            let n = name.clone();
            move |mode| async move {
                let priority = Priority::Interactive.lower(mode);
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
            Ok(s) if s.value.stale => {
                if s.status != CacheStatus::Miss {
                    // Derived from a stale copy earlier and served again from the cache: a stale serve.
                    self.cache.record_stale();
                }
                Ok(Answer::stale(
                    s.value.body_gz.clone(),
                    s.value.fetched_at_ms,
                    false,
                ))
            }
            Ok(s) => Ok(Answer::fresh(
                s.value.body_gz.clone(),
                s.status,
                s.value.fetched_at_ms,
            )),
            Err(f) => {
                let stale =
                    fallback::decide(f, Priority::Interactive, fallback::no_database).await?;
                let StaleCopy::Cached(v) = stale.copy;
                self.cache.record_stale();
                Ok(Answer::stale(
                    fallback::mark_stale(&v.body_gz, stale.data_preparing)?,
                    v.fetched_at_ms,
                    stale.data_preparing,
                ))
            }
        }
    }

    /// Computes and renders an expectation on the blocking pool (parse, compute and gzip are CPU work that
    /// must not hold up the async workers serving cached reads).
    async fn render_expectation(
        &self,
        name: &CharacterName,
        date: RequestDate,
        opts: StarforceOptions,
        eq: Answer,
        stale: bool,
    ) -> Result<CachedValue, CharacterError> {
        let model = self
            .recent_models
            .get(&keys::model_key(name, date, eq.fetched_at_ms));
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
                let exp = engine::compute(&model, tables.as_deref(), &opts);
                if exp.out_of_range_items > 0 {
                    metrics::counter!(OUT_OF_RANGE_ITEMS_TOTAL)
                        .increment(u64::from(exp.out_of_range_items));
                }
                let env = ExpectationEnvelope {
                    character: &character,
                    data_as_of: rfc3339(eq.fetched_at_ms),
                    stale,
                    data_preparing: eq.data_preparing,
                    expectation: &exp,
                };
                let json = serde_json::to_vec(&env)
                    .map_err(|e| CharacterError::Internal(e.to_string()))?;
                Ok(date.value(Bytes::from(codec::compress(&json)), eq.fetched_at_ms))
            })
            .await?
    }
}
