//! name → ocid, cached under `…:ocid`.
//!
//! Contract:
//! - An ocid is kept fresh for a day (capped by the 30-day window) and refreshed in the background after that;
//!   every ocid resolved is also recorded in the character row.
//! - A name the upstream does not know is cached negatively and reported as `NotFound`; its stored ocid is
//!   forgotten.
//! - When the upstream cannot answer, the last ocid is used — the cache's, else the character row's — as
//!   [`fallback::decide`] rules; an ocid does not go stale in a way that matters, so this is not counted as a
//!   stale serve. A background refresh never falls back.
//! - A cached body that does not decode to an ocid fails with `Internal`.

use std::sync::Arc;

use bytes::Bytes;

use super::date::RequestDate;
use super::fallback::{self, StaleCopy};
use super::{CharacterError, CharacterService, keys, negative, skip_if_refused};
use crate::cache::{CacheStatus, CachedValue, ServedValue};
use crate::codec;
use crate::ids::{CharacterName, Ocid, Priority};
use crate::nexon::NexonError;

/// How long a resolved ocid is fresh: it rarely changes.
const OCID_FRESH_MS: i64 = 24 * 3600 * 1000;

impl CharacterService {
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
    pub(super) async fn ocid_for(
        self: &Arc<Self>,
        name: &CharacterName,
        force: bool,
        outer: Priority,
    ) -> Result<Ocid, CharacterError> {
        self.ocid_served(name, force, outer).await.map(|(o, _)| o)
    }

    /// As [`CharacterService::ocid_for`], with how the ocid was served (`Miss`: resolved by the upstream just
    /// now, so nothing can have been stored under it yet).
    pub(super) async fn ocid_served(
        self: &Arc<Self>,
        name: &CharacterName,
        force: bool,
        outer: Priority,
    ) -> Result<(Ocid, CacheStatus), CharacterError> {
        let key = keys::ocid_key(name);
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
            Err(f) => {
                let stale = fallback::decide(f, outer, || self.stored_ocid(name)).await?;
                match stale.copy {
                    StaleCopy::Cached(value) => ServedValue {
                        value,
                        status: CacheStatus::Stale,
                    },
                    StaleCopy::Database(ocid) => return Ok((ocid, CacheStatus::Stale)),
                }
            }
        };
        if served.value.negative {
            return Err(CharacterError::NotFound);
        }
        let raw = codec::decompress(&served.value.body_gz).map_err(CharacterError::internal)?;
        let s = String::from_utf8(raw).map_err(CharacterError::internal)?;
        Ocid::parse(&s)
            .map(|o| (o, served.status))
            .map_err(CharacterError::internal)
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
                self.store_ocid(name, &ocid, now);
                // The ocid rarely changes: keep it for a day, refresh in the background after that.
                let mut v = RequestDate::LATEST
                    .value(Bytes::from(codec::compress(ocid.as_str().as_bytes())), now);
                v.fresh_until_ms = (now + OCID_FRESH_MS).min(v.stale_until_ms);
                Ok(v)
            }
            Err(NexonError::NotFound) => {
                self.forget_ocid_later(name);
                Ok(negative(now))
            }
            Err(e) => Err(e.into()),
        }
    }
}
