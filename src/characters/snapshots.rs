//! Database reads and writes of the read path: the character row (ocid, basic info) and the raw equipment
//! snapshots (`equipment_snapshots`), the source of last resort.
//!
//! Contract:
//! - Writes run in the background on the service's tracker ([`CharacterService::flush_snapshot_writes`]
//!   waits for them at shutdown); a failed write is counted and logged and never fails the request.
//!   Without Redis a snapshot write is awaited (up to [`SNAPSHOT_WAIT`]) before its load completes: the
//!   database is then the only second tier of raw equipment kept out of L1.
//! - [`CharacterService::fresh_snapshot`] returns a snapshot only while it is within its freshness window and
//!   parses; a read error or a snapshot that does not parse is counted, logged and ignored (the load then
//!   goes to the upstream).
//! - [`CharacterService::stale_snapshot`] and [`CharacterService::stored_ocid`] are the database copies of the
//!   stale fallback: a snapshot within its 30-day window, an ocid that parses; any failure reads as "none".

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::date::RequestDate;
use super::{CharacterService, keys};
use crate::cache::CachedValue;
use crate::codec;
use crate::expectation::ItemEquipment;
use crate::ids::{CharacterName, Ocid};
use crate::store::CharacterRow;

/// How long a load waits for its snapshot write when the database is the only second tier (no Redis).
pub(super) const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

impl CharacterService {
    /// Waits (bounded) for background snapshot writes — used at shutdown.
    pub async fn flush_snapshot_writes(&self, max: Duration) -> bool {
        self.snapshot_writes.close();
        let ok = tokio::time::timeout(max, self.snapshot_writes.wait())
            .await
            .is_ok();
        self.snapshot_writes.reopen();
        ok
    }

    /// The database snapshot of (ocid, date) as a cache value, when it is still within its freshness window
    /// and parses; its parsed model is handed to the render that follows.
    pub(super) async fn fresh_snapshot(
        &self,
        name: &CharacterName,
        ocid: &Ocid,
        date: RequestDate,
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
        if date.window(fetched_at_ms).fresh_until_ms <= self.now_ms() {
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
            .insert(keys::model_key(name, date, fetched_at_ms), Arc::new(model));
        Some(date.value(gz, fetched_at_ms))
    }

    /// The last good raw equipment of (name, date) in the database, as (gzip body, fetched at), while within
    /// its 30-day window; found through the character's stored ocid.
    pub(super) async fn stale_snapshot(
        &self,
        name: &CharacterName,
        date: RequestDate,
    ) -> Option<(Bytes, i64)> {
        if let Ok(Some(CharacterRow {
            ocid: Some(ocid), ..
        })) = self.store.get_character(&name.key()).await
            && let Ok(Some(snap)) = self.store.get_snapshot(&ocid, &date.key()).await
            && date.window(snap.fetched_at_ms).stale_until_ms > self.now_ms()
        {
            return Some((
                Bytes::from(codec::compress_raw(&snap.payload)),
                snap.fetched_at_ms,
            ));
        }
        None
    }

    /// The character's ocid as last stored in the database, when it parses.
    pub(super) async fn stored_ocid(&self, name: &CharacterName) -> Option<Ocid> {
        match self.store.get_character(&name.key()).await {
            Ok(Some(CharacterRow { ocid: Some(o), .. })) => Ocid::parse(&o).ok(),
            _ => None,
        }
    }

    /// Stores a raw equipment payload (gzip) as the last good copy of (ocid, date), in the background;
    /// without Redis waits for the write (bounded) so the next option set or table version finds it.
    pub(super) async fn store_snapshot(&self, ocid: Ocid, date: RequestDate, gz: Bytes, now: i64) {
        let store = self.store.clone();
        let date_key = date.key();
        let write = self.snapshot_writes.spawn(async move {
            match store.put_snapshot(ocid.as_str(), &date_key, &gz, now).await {
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
    }

    /// Records the character's ocid, in the background.
    pub(super) fn store_ocid(&self, name: &CharacterName, ocid: &Ocid, now: i64) {
        let store = self.store.clone();
        let (key, stored_ocid) = (name.key(), ocid.to_string());
        self.snapshot_writes.spawn(async move {
            if let Err(e) = store.set_ocid(&key, &stored_ocid, now).await {
                metrics::counter!("maple_store_write_failures_total", "what" => "character")
                    .increment(1);
                tracing::warn!(error = %e, "character row write failed");
            }
        });
    }

    /// Forgets the character's stored ocid, in the background (the upstream no longer knows the name).
    pub(super) fn forget_ocid_later(&self, name: &CharacterName) {
        let store = self.store.clone();
        let key = name.key();
        self.snapshot_writes.spawn(async move {
            let _ = store.clear_ocid(&key).await;
        });
    }

    /// Forgets the character's stored ocid now (the upstream no longer knows the ocid); errors are ignored.
    pub(super) async fn forget_ocid(&self, name: &CharacterName) {
        let _ = self.store.clear_ocid(&name.key()).await;
    }

    /// Writes the character row (ocid and basic info), in the background.
    pub(super) fn store_character(&self, row: CharacterRow) {
        let store = self.store.clone();
        self.snapshot_writes.spawn(async move {
            if let Err(e) = store.upsert_character(&row).await {
                metrics::counter!("maple_store_write_failures_total", "what" => "character")
                    .increment(1);
                tracing::warn!(error = %e, "character row write failed");
            }
        });
    }
}
