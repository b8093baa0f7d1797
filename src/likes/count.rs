//! Answering counts: what a like or a status read reports as the character's like count.
//!
//! Guarantee: a count is the database's count (or the raise-only copy Redis caches of it) plus the likes
//! pending in Redis plus the ones only this buffer holds, read under the count view shared — the moves of
//! entries between those places (`flush.rs`, `sync.rs`) hold it exclusively, so an exact answer never
//! counts an entry in two places. Counts are eventually exact (they may lag the database by one sync
//! interval, or briefly count a repeated like of an already synced pair until the next sync corrects it).
//!
//! Failure modes: when the count view is not had within 250 ms (a move stuck on a slow store), or the
//! database count came from memory (Redis and the database unreachable or cooling down), the answer is a
//! lower bound: the last exact count plus the likes accepted here since
//! (`maple_like_count_lower_bounds_total`). While the staging area is bypassed (Sentinel mode, no replica:
//! see `mod.rs`) counts read the database and the whole buffer, as with Redis down. A failed Redis or database read is skipped for one second on
//! the request path instead of being waited on again. A status read of a liker neither here nor in Redis
//! asks the database and fails with its error when it is down.

use std::collections::HashMap;
use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::types::Value;
use tokio::time::Instant;

use crate::ids::CharacterName;
use crate::redis::RedisHandle;

use super::buffer::{AcceptMark, pair_key};
use super::{LikeError, LikeService, staging};
use crate::ids::LikerId;

/// Counts answered as a lower bound (the count view not had in time, or the database count from memory).
pub const LIKE_COUNT_BOUNDS_TOTAL: &str = "maple_like_count_lower_bounds_total";

/// Bound on a Redis call of the request path.
const REQUEST_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// Bound on a database count read of the request path.
const REQUEST_DB_TIMEOUT: Duration = Duration::from_millis(500);
/// After a Redis (or database) failure the request path skips it this long.
const REQUEST_COOLDOWN: Duration = Duration::from_secs(1);
/// Characters each per-character count memory (last known database counts, last exact answers) keeps
/// before it starts over.
const LAST_COUNTS_MAX: usize = 100_000;

/// Inserts into a per-character memory bounded by [`LAST_COUNTS_MAX`] (cleared when a new character would
/// exceed it: forgetting only makes later answers fall back, never wrong).
fn remember<V>(m: &mut HashMap<String, V>, character: &str, v: V) {
    if m.len() >= LAST_COUNTS_MAX && !m.contains_key(character) {
        m.clear();
    }
    m.insert(character.to_string(), v);
}

/// A count answered with the count view held, and the buffer's accept mark it was read at.
#[derive(Clone, Copy, Debug)]
pub(super) struct ExactCount {
    count: i64,
    mark: AcceptMark,
}

pub(super) struct Peek {
    synced: Option<i64>,
    pending: i64,
    pub(super) member: bool,
}

/// The answer to a status read (`liked` only when a liker was asked about).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LikeStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liked: Option<bool>,
    pub like_count: i64,
}

impl LikeService {
    /// Whether `liker` liked `character` (when given) and the character's count.
    pub async fn status(
        &self,
        character: &CharacterName,
        liker: Option<&LikerId>,
    ) -> Result<LikeStatus, LikeError> {
        let c = character.key();
        let pair = liker.map(|l| pair_key(&c, l.as_str())).unwrap_or_default();
        let view = self.count_view().await;
        let peek = self.peek(&c, &pair).await;
        let (local_has, local, mark) = {
            let b = self.inner.buf.lock().expect("poisoned");
            let has = liker.is_some_and(|l| b.contains_pair(&c, l.as_str()));
            let local = if peek.is_some() {
                b.unflushed_for(&c)
            } else {
                b.retained_for(&c)
            };
            (has, local, b.accept_mark(&c))
        };
        let liked = match liker {
            None => None,
            Some(_) if local_has || peek.as_ref().is_some_and(|p| p.member) => Some(true),
            Some(l) => Some(self.inner.store.has_liked(&c, l.as_str()).await?),
        };
        let (base, fresh) = self.base_count(&c, peek.as_ref()).await;
        let like_count =
            self.settle_count(&c, view.is_some() && fresh, base + i64::from(local), mark);
        Ok(LikeStatus { liked, like_count })
    }

    /// The count to answer for `character`, given the one just `computed` (the buffer's part read at
    /// `mark`).
    ///
    /// When `exact` (the count view was held and both stores answered), `computed` is exact at `mark` and
    /// is remembered. Otherwise a move may have been in progress, and `computed` may count an entry both
    /// in the buffer and where it went — a count that would go down at the next read. The answer is then
    /// the remembered exact count plus the likes this buffer accepted since its mark: a lower bound that
    /// is never below an earlier answer. Only with nothing remembered is `computed` answered as it is.
    pub(super) fn settle_count(
        &self,
        character: &str,
        exact: bool,
        computed: i64,
        mark: AcceptMark,
    ) -> i64 {
        let mut m = self.inner.exact_counts.lock().expect("poisoned");
        if exact {
            let newer = match m.get(character) {
                Some(e) if e.mark.round == mark.round => {
                    (mark.accepted, computed) > (e.mark.accepted, e.count)
                }
                _ => true,
            };
            if newer {
                remember(
                    &mut m,
                    character,
                    ExactCount {
                        count: computed,
                        mark,
                    },
                );
            }
            return computed;
        }
        match m.get(character) {
            Some(e) if e.mark.round == mark.round => {
                metrics::counter!(LIKE_COUNT_BOUNDS_TOTAL).increment(1);
                e.count + mark.accepted.saturating_sub(e.mark.accepted) as i64
            }
            _ => computed,
        }
    }

    /// A shared hold on the count view (see `count_view`), waited for at most [`REQUEST_REDIS_TIMEOUT`]:
    /// a move stuck on a slow Redis or database must not stall requests, which then answer a lower bound
    /// instead (see [`LikeService::settle_count`]).
    pub(super) async fn count_view(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        match tokio::time::timeout(REQUEST_REDIS_TIMEOUT, self.inner.count_view.read()).await {
            Ok(g) => Some(g),
            Err(_) => {
                metrics::counter!("maple_like_count_view_timeouts_total").increment(1);
                None
            }
        }
    }

    /// Redis for the request path: configured, connected, its staging area in use (not bypassed for lack
    /// of a replica), not failing in the last second.
    fn request_redis(&self) -> Option<&RedisHandle> {
        let r = self.inner.redis.as_ref()?;
        if !r.client().is_connected()
            || !self
                .inner
                .staging_ok
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            return None;
        }
        let cooldown = *self.inner.redis_cooldown.lock().expect("poisoned");
        if cooldown.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        Some(r)
    }

    fn redis_failed(&self) {
        *self.inner.redis_cooldown.lock().expect("poisoned") =
            Some(Instant::now() + REQUEST_COOLDOWN);
    }

    pub(super) async fn peek(&self, character: &str, pair: &str) -> Option<Peek> {
        let r = self.request_redis()?;
        let call = self.inner.scripts.peek.evalsha_with_reload::<Value, _, _>(
            r.client(),
            vec![
                staging::synced_key(character),
                staging::PENDING.to_string(),
                staging::REL.to_string(),
            ],
            vec![character.to_string(), pair.to_string()],
        );
        match tokio::time::timeout(REQUEST_REDIS_TIMEOUT, call).await {
            Ok(Ok(v)) => {
                let a = v.into_array();
                let num = |i: usize| a.get(i).and_then(|v| v.as_i64()).unwrap_or(0);
                let s = num(0);
                Some(Peek {
                    synced: (s >= 0).then_some(s),
                    pending: num(1),
                    member: num(2) == 1,
                })
            }
            _ => {
                self.redis_failed();
                None
            }
        }
    }

    /// The synced count plus what Redis holds pending (when Redis answered).
    /// With whether it was read just now (not answered from memory).
    pub(super) async fn base_count(&self, character: &str, peek: Option<&Peek>) -> (i64, bool) {
        if let Some(p) = peek
            && let Some(s) = p.synced
        {
            return (s + p.pending, true);
        }
        let cooling = self
            .inner
            .db_cooldown
            .lock()
            .expect("poisoned")
            .is_some_and(|t| Instant::now() < t);
        let read = if cooling {
            None
        } else {
            match tokio::time::timeout(REQUEST_DB_TIMEOUT, self.inner.store.like_count(character))
                .await
            {
                Ok(Ok(n)) => Some(n),
                _ => {
                    // Answer from memory for a while instead of waiting on a database that is down.
                    *self.inner.db_cooldown.lock().expect("poisoned") =
                        Some(Instant::now() + REQUEST_COOLDOWN);
                    None
                }
            }
        };
        let fresh = read.is_some();
        let db = match read {
            Some(n) => {
                self.remember_count(character, n);
                if peek.is_some() {
                    self.fill_cache(character, n);
                }
                n
            }
            None => self
                .inner
                .last_counts
                .lock()
                .expect("poisoned")
                .get(character)
                .copied()
                .unwrap_or(0),
        };
        (db + peek.map(|p| p.pending).unwrap_or(0), fresh)
    }

    pub(super) fn remember_count(&self, character: &str, n: i64) {
        remember(
            &mut self.inner.last_counts.lock().expect("poisoned"),
            character,
            n,
        );
    }

    /// Caches a database count in Redis (raise-only), off the request's critical path.
    fn fill_cache(&self, character: &str, n: i64) {
        let Some(r) = self.inner.redis.clone() else {
            return;
        };
        let svc = self.clone();
        let key = staging::synced_key(character);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                REQUEST_REDIS_TIMEOUT,
                svc.inner.scripts.fill.evalsha_with_reload::<Value, _, _>(
                    r.client(),
                    vec![key],
                    vec![n.to_string(), staging::SYNCED_TTL_MS.to_string()],
                ),
            )
            .await;
        });
    }
}
