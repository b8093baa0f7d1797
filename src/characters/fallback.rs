//! The stale decision: how a failed load is answered. Every loader (ocid, equipment, expectation, basic)
//! and the expectation's refusal short-cut take it through [`decide`].
//!
//! Contract:
//! - A load on behalf of a background refresh never falls back: it fails with its error and the cached
//!   value stays in place.
//! - Only an upstream that cannot answer allows a fallback ([`fallback_allowed`]: server fault, timeout,
//!   connection failure, maintenance, rate limit, data being prepared, authentication trouble, open breaker,
//!   key hold). Not found, bad requests, internal errors and malformed upstream responses (502) are never
//!   replaced by stale data.
//! - When allowed, the cache's last value (never a remembered "not found") comes first, then the database's
//!   copy — looked up only when the cache has none; with neither, the load's error is returned.
//! - A copy served because the upstream is preparing the data (00009) is flagged `data_preparing`.
//! - The decision counts nothing: the caller records a stale serve (an ocid taken from a stale copy is a
//!   step of a load, not an answer, and is not counted).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::CharacterError;
use crate::cache::{CachedValue, LoadFailure};
use crate::codec;
use crate::ids::Priority;
use crate::nexon::NexonError;

/// The last good copy a failed load falls back on.
pub(super) enum StaleCopy<D> {
    /// The cache's last value (within its window).
    Cached(Arc<CachedValue>),
    /// The database's copy (`D`: what the loader's database lookup returns).
    Database(D),
}

/// A failed load answered with a last good copy.
pub(super) struct Stale<D> {
    pub copy: StaleCopy<D>,
    /// The upstream is still preparing the data (00009).
    pub data_preparing: bool,
    /// The status the failure would have been answered with (the `fwd-status` of the stale answer).
    pub upstream_status: u16,
}

/// How a failed load is answered: `Ok` with the copy to serve stale, or `Err` with the error to fail with.
/// `database` is the loader's database lookup, called only when the cache has no copy to serve.
pub(super) async fn decide<D, Fut>(
    failure: LoadFailure<CharacterError>,
    outer: Priority,
    database: impl FnOnce() -> Fut,
) -> Result<Stale<D>, CharacterError>
where
    Fut: Future<Output = Option<D>>,
{
    // A background refresh gains nothing from a stale copy: it fails and the cached values stay.
    if outer == Priority::Background || !fallback_allowed(&failure.error) {
        return Err(failure.error);
    }
    let data_preparing = is_data_preparing(&failure.error);
    let upstream_status = crate::error::Classify::code(&failure.error)
        .status()
        .as_u16();
    if let Some(v) = failure.stale.filter(|v| !v.negative) {
        return Ok(Stale {
            copy: StaleCopy::Cached(v),
            data_preparing,
            upstream_status,
        });
    }
    match database().await {
        Some(d) => Ok(Stale {
            copy: StaleCopy::Database(d),
            data_preparing,
            upstream_status,
        }),
        None => Err(failure.error),
    }
}

/// The database lookup of a loader that has no database copy.
pub(super) fn no_database() -> std::future::Ready<Option<Infallible>> {
    std::future::ready(None)
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

/// Rewrites a cached JSON body with `"stale": true` (and `"data_preparing": true` when that is the cause);
/// only on the degraded path. Fails with `Internal` when the body is not gzip JSON.
pub(super) fn mark_stale(body_gz: &[u8], data_preparing: bool) -> Result<Bytes, CharacterError> {
    let raw = codec::decompress(body_gz).map_err(CharacterError::internal)?;
    let mut v: serde_json::Value =
        serde_json::from_slice(&raw).map_err(CharacterError::internal)?;
    v["stale"] = true.into();
    if data_preparing {
        v["data_preparing"] = true.into();
    }
    Ok(Bytes::from(codec::compress(
        &serde_json::to_vec(&v).expect("json"),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(negative: bool) -> Arc<CachedValue> {
        Arc::new(CachedValue {
            body_gz: Bytes::from_static(b"x"),
            fetched_at_ms: 7,
            fresh_until_ms: 8,
            stale_until_ms: 9,
            load_ms: 0,
            negative,
            stale: false,
            etag: crate::cache::ETag::of(b"x"),
        })
    }

    fn failure(e: NexonError, stale: Option<Arc<CachedValue>>) -> LoadFailure<CharacterError> {
        LoadFailure {
            error: e.into(),
            stale,
        }
    }

    fn run<D>(
        f: LoadFailure<CharacterError>,
        outer: Priority,
        db: Option<D>,
    ) -> Result<Stale<D>, CharacterError> {
        block_on(decide(f, outer, || std::future::ready(db)))
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn an_unreachable_upstream_serves_the_cached_copy_first_then_the_database() {
        let s = run(
            failure(NexonError::Timeout, Some(cached(false))),
            Priority::Interactive,
            Some(1),
        )
        .unwrap();
        assert!(matches!(s.copy, StaleCopy::Cached(_)));
        assert!(!s.data_preparing);
        let s = run(
            failure(NexonError::Timeout, Some(cached(true))),
            Priority::Interactive,
            Some(1),
        )
        .unwrap();
        assert!(
            matches!(s.copy, StaleCopy::Database(1)),
            "a remembered not-found is no copy"
        );
        let e = run::<i32>(
            failure(NexonError::Timeout, None),
            Priority::Interactive,
            None,
        );
        assert!(matches!(
            e,
            Err(CharacterError::Upstream(NexonError::Timeout))
        ));
    }

    #[test]
    fn data_being_prepared_is_flagged() {
        let s = run::<i32>(
            failure(NexonError::DataPreparing, Some(cached(false))),
            Priority::Interactive,
            None,
        )
        .unwrap();
        assert!(s.data_preparing);
    }

    #[test]
    fn background_refreshes_and_malformed_responses_never_fall_back() {
        let e = run(
            failure(NexonError::Timeout, Some(cached(false))),
            Priority::Background,
            Some(1),
        );
        assert!(e.is_err());
        let e = run(
            failure(NexonError::BadResponse("x".into()), Some(cached(false))),
            Priority::Interactive,
            Some(1),
        );
        assert!(matches!(
            e,
            Err(CharacterError::Upstream(NexonError::BadResponse(_)))
        ));
        let e = run(
            failure(NexonError::NotFound, Some(cached(false))),
            Priority::Interactive,
            Some(1),
        );
        assert!(e.is_err());
    }

    #[test]
    fn mark_stale_flags_the_body() {
        let gz = codec::compress(br#"{"a":1}"#);
        let out = mark_stale(&gz, true).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&codec::decompress(&out).unwrap()).unwrap();
        assert_eq!(v["stale"], true);
        assert_eq!(v["data_preparing"], true);
        assert_eq!(v["a"], 1);
        assert!(mark_stale(b"not gzip", false).is_err());
    }
}
