//! Basic info (world, class, level, image) of a character, cached under `…:basic`, plus its live like count.
//!
//! Contract:
//! - A load resolves the ocid, asks the upstream for the latest basic info and records it in the character
//!   row (in the background); a name or ocid the upstream does not know is cached negatively (`NotFound`).
//! - The like count is read from the database on every request (it is not cached with the basic info); a
//!   database failure reads as 0.
//! - When the load fails and the upstream cannot answer, the cache's last copy is served stale, flagged
//!   `"stale": true` (and `"data_preparing": true` for 00009), as [`fallback::decide`] rules; there is no
//!   database copy of basic info.
//! - A cached body that is not gzip JSON fails with `Internal`.

use std::sync::Arc;

use bytes::Bytes;

use super::date::RequestDate;
use super::fallback::{self, StaleCopy};
use super::{Answer, CharacterError, CharacterService, keys, negative, rfc3339, skip_if_refused};
use crate::cache::{CacheStatus, CachedValue};
use crate::codec;
use crate::ids::{CharacterName, Priority};
use crate::nexon::NexonError;
use crate::store::CharacterRow;

impl CharacterService {
    /// Basic info (world, class, level, image) plus the like count.
    pub async fn basic(self: &Arc<Self>, name: &CharacterName) -> Result<Answer, CharacterError> {
        let key = keys::basic_key(name);
        let this = self.clone();
        let n = name.clone();
        let served = self
            .cache
            .get_or_load(&key, false, move |mode| async move {
                this.load_basic(&n, Priority::Interactive.lower(mode)).await
            })
            .await;
        // `stale`: `Some(data_preparing)` when served from the last good copy.
        let (answer, status, stale) = match served {
            Ok(s) if s.value.negative => return Err(CharacterError::NotFound),
            Ok(s) => (Answer::served(&s.value, s.status), s.status, None),
            Err(f) => {
                let stale =
                    fallback::decide(f, Priority::Interactive, fallback::no_database).await?;
                let StaleCopy::Cached(v) = stale.copy;
                self.cache.record_stale();
                let answer = Answer::stale(&v, stale.data_preparing, Some(stale.upstream_status));
                (answer, CacheStatus::Stale, Some(stale.data_preparing))
            }
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
        let raw = codec::decompress(&answer.body_gz).map_err(CharacterError::internal)?;
        let mut v: serde_json::Value =
            serde_json::from_slice(&raw).map_err(CharacterError::internal)?;
        v["like_count"] = likes.into();
        v["stale"] = (status == CacheStatus::Stale).into();
        if stale == Some(true) {
            v["data_preparing"] = true.into();
        }
        let json = serde_json::to_vec(&v).map_err(CharacterError::internal)?;
        let body_gz = Bytes::from(codec::compress(&json));
        // The like count and the flags are what this body adds to the stored one.
        let part = format!("likes={likes};stale={:?}", stale);
        Ok(answer.with_body(body_gz, part.as_bytes()))
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
        self.store_character(CharacterRow {
            name: name.key(),
            ocid: Some(ocid.to_string()),
            world: b.world_name.clone(),
            class: b.character_class.clone(),
            level: b.character_level,
            image: b.character_image.clone(),
            fetched_at_ms: now,
            like_count: 0,
        });
        let body = serde_json::json!({
            "character": name.as_str(),
            "data_source": self.upstream_mode,
            "world": b.world_name,
            "class": b.character_class,
            "level": b.character_level,
            "image": b.character_image,
            "data_as_of": rfc3339(now),
        });
        Ok(RequestDate::LATEST.value(
            Bytes::from(codec::compress(&serde_json::to_vec(&body).expect("json"))),
            now,
        ))
    }
}
