//! The expectation JSON (gzip) of a character, date and starforce settings: derived from the cached raw
//! equipment and rendered on the CPU lane, cached under `…:exp:<date>:<options>:<rule set>:<table>`.
//!
//! Contract:
//! - Settings are validated first (`BadRequest`); the key names them by [`StarforceSettings::key_fragment`] and
//!   the engine computes with the same settings. The rule set in the key is the one of the requested date
//!   (the latest snapshot: the current rules); a payload whose own date falls under another rule set is not
//!   the requested snapshot and fails with a 502 instead of being cached under the wrong rules.
//! - The raw equipment is read through the equipment loader with [`Tiers::L2Only`]: L1 holds what clients are
//!   served.
//! - An expectation derived from a stale copy of the equipment is cached flagged stale, reported `STALE`,
//!   and retried only after [`STALE_RECHECK`]; served again from the cache it counts as a stale serve.
//! - While the upstream refuses calls (open breaker, hold), an unforced request finding a copy already
//!   derived from stale data serves it as it is, without asking the cache to refresh it.
//! - When the load fails and the upstream cannot answer, the cache's last copy is served rewritten with
//!   `"stale": true` (and `"data_preparing": true` for 00009), as [`fallback::decide`] rules; there is no
//!   database copy of an expectation (the equipment loader already fell back on its snapshot).
//! - A key beyond the character's and date's [`MAX_OPTION_VARIANTS`](super::MAX_OPTION_VARIANTS) is computed
//!   and answered (`MISS`) but neither looked up nor stored: it goes through no flight, so concurrent
//!   requests for it each render it (the raw equipment behind it is still cached and loaded once).
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
use crate::cache::{CacheStatus, CachedValue, LoadFailure, ServedValue, Tiers};
use crate::codec;
use crate::expectation::{self as engine, ItemEquipment, RuleSet, StarforceSettings};
use crate::ids::{CharacterName, Priority};
use crate::nexon::{NexonError, UpstreamMode};

/// Counter of items the engine left out of an expectation for a value outside the game's maxima (the item's
/// blocks say `out_of_range`).
pub const OUT_OF_RANGE_ITEMS_TOTAL: &str = "maple_expectation_out_of_range_items_total";

#[derive(Serialize)]
struct ExpectationEnvelope<'a> {
    character: &'a str,
    data_source: UpstreamMode,
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
        opts: StarforceSettings,
        force: bool,
    ) -> Result<Answer, CharacterError> {
        opts.validate()
            .map_err(|e| CharacterError::BadRequest(e.to_string()))?;
        let rule_set = rule_set_of(date);
        let date = RequestDate::new(date);
        let key = keys::expectation_key(
            name,
            date,
            &opts,
            rule_set,
            self.table_version().unwrap_or("none"),
        );
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
                    &v,
                    stale.data_preparing,
                    Some(stale.upstream_status),
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
                let mut v = this
                    .render_expectation(&n, date, opts, rule_set, eq, stale)
                    .await?;
                if stale {
                    // Computed from a stale copy: reported STALE, and retried only after a short pause so
                    // an upstream outage does not turn every read into a refresh attempt.
                    v.stale = true;
                    v.fresh_until_ms = this.now_ms() + STALE_RECHECK.as_millis() as i64;
                }
                Ok(v)
            }
        };
        let cached = self
            .variants
            .admit(&keys::variant_set_key(name, date), &key)
            .await;
        let served = if cached {
            self.cache
                .get_or_load_with(&key, force, Tiers::All, make_load)
                .await
        } else {
            // Beyond the variant bound: computed and answered, never stored.
            match make_load()(Priority::Interactive).await {
                Ok(v) => Ok(ServedValue {
                    value: Arc::new(v),
                    status: CacheStatus::Miss,
                }),
                Err(error) => Err(LoadFailure { error, stale: None }),
            }
        };
        match served {
            Ok(s) if s.value.negative => Err(CharacterError::NotFound),
            Ok(s) if s.value.stale => {
                if s.status != CacheStatus::Miss {
                    // Derived from a stale copy earlier and served again from the cache: a stale serve.
                    self.cache.record_stale();
                }
                Ok(Answer::stale(&s.value, false, None))
            }
            Ok(s) => Ok(Answer::served(&s.value, s.status)),
            Err(f) => {
                let stale =
                    fallback::decide(f, Priority::Interactive, fallback::no_database).await?;
                let StaleCopy::Cached(v) = stale.copy;
                self.cache.record_stale();
                let marked = fallback::mark_stale(&v.body_gz, stale.data_preparing)?;
                let part: &[u8] = if stale.data_preparing {
                    b"stale;data_preparing"
                } else {
                    b"stale"
                };
                Ok(
                    Answer::stale(&v, stale.data_preparing, Some(stale.upstream_status))
                        .with_body(marked, part),
                )
            }
        }
    }

    /// Computes and renders an expectation on the blocking pool (parse, compute and gzip are CPU work that
    /// must not hold up the async workers serving cached reads). `rule_set` is the one the key names; a payload
    /// priced under another is not the requested snapshot (502).
    async fn render_expectation(
        &self,
        name: &CharacterName,
        date: RequestDate,
        opts: StarforceSettings,
        rule_set: RuleSet,
        eq: Answer,
        stale: bool,
    ) -> Result<CachedValue, CharacterError> {
        let model = self
            .recent_models
            .get(&keys::model_key(name, date, eq.fetched_at_ms));
        let tables = self.tables.clone();
        let character = name.as_str().to_string();
        let data_source = self.upstream_mode;
        self.cpu
            .run(move || {
                let model = match model {
                    Some(m) => m,
                    None => {
                        let raw =
                            codec::decompress(&eq.body_gz).map_err(CharacterError::internal)?;
                        Arc::new(ItemEquipment::from_json_for_engine(&raw).map_err(|e| {
                            CharacterError::Upstream(NexonError::BadResponse(e.to_string()))
                        })?)
                    }
                };
                let exp = engine::compute(&model, tables.as_deref(), &opts);
                if exp.rules.rule_set != rule_set {
                    return Err(CharacterError::Upstream(NexonError::BadResponse(format!(
                        "the snapshot is dated {:?}, outside the {} rules of the requested date",
                        exp.date.as_deref().unwrap_or("null"),
                        rule_set.name()
                    ))));
                }
                if exp.out_of_range_items > 0 {
                    metrics::counter!(OUT_OF_RANGE_ITEMS_TOTAL)
                        .increment(u64::from(exp.out_of_range_items));
                }
                let env = ExpectationEnvelope {
                    character: &character,
                    data_source,
                    data_as_of: rfc3339(eq.fetched_at_ms),
                    stale,
                    data_preparing: eq.data_preparing,
                    expectation: &exp,
                };
                let json = serde_json::to_vec(&env).map_err(CharacterError::internal)?;
                Ok(date.value(Bytes::from(codec::compress(&json)), eq.fetched_at_ms))
            })
            .await?
    }
}

/// The rule set of a requested date: the date's own, the current rules for the latest snapshot.
fn rule_set_of(date: DataDate) -> RuleSet {
    match date.date() {
        Some(d) => RuleSet::for_date(Some(&d.format("%Y-%m-%d").to_string())),
        None => RuleSet::for_date(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_date_names_its_rule_set() {
        let now = 1_800_000_000_000; // 2027-01-15
        let date = |d: &str| DataDate::parse(d, now).unwrap();
        assert_eq!(rule_set_of(DataDate::LATEST), RuleSet::Kms30Stars);
        assert_eq!(rule_set_of(date("2025-03-19")), RuleSet::Kms25Stars);
        assert_eq!(
            rule_set_of(date(engine::rules::STARFORCE_30_FROM)),
            RuleSet::Kms30Stars
        );
        assert_eq!(rule_set_of(date("2023-12-21")), RuleSet::Kms25Stars);
    }
}
