//! The HTTP caching contract of data responses: validators (`ETag`, `If-None-Match` → 304) and the headers
//! that tell a downstream cache what the gateway itself does (`Cache-Control`, `Age`, `Cache-Status`).
//!
//! Contract:
//! - `ETag` is the stored value's tag ([`ETag`]) as a strong entity tag: `"<32 hex>"` for the identity body,
//!   `"<32 hex>-gz"` for the stored gzip bytes (the two representations differ, so their tags do; `Vary:
//!   Accept-Encoding` is sent as well). Nothing is hashed per request.
//! - `If-None-Match` on a GET or HEAD ([`none_match`]): `*`, or any listed tag equal to the response's under
//!   the weak comparison (RFC 9110 §13.1.2: a `W/` prefix is ignored) → 304 with no body and the same
//!   validator and caching headers a 200 would carry. Other methods ignore the header (the recalculation
//!   produces a new body, whose tag is not known before it runs).
//! - `Cache-Control` ([`cache_control`]): `max-age` is the value's freshness lifetime (`fresh_until −
//!   fetched_at`) and `Age` how long ago it was fetched, so a downstream cache computes the freshness left
//!   as `max-age − Age` (RFC 9111 §4.2.3) — the gateway's own `fresh_until − now`; `stale-while-revalidate`
//!   is the gateway's own grace (it serves the value as a hit that long past freshness while it refreshes
//!   it); `stale-if-error` is how long past freshness the gateway serves the value as `STALE` when the
//!   upstream fails (`stale_until − fresh_until`).
//! - `Cache-Status` (RFC 9211) beside `x-cache`: `maple-gateway; hit; ttl=<s>` (freshness left, `max-age −
//!   Age`, negative in the revalidation grace), `maple-gateway; fwd=miss; fwd-status=200; stored` (or `fwd=request` when the
//!   client forced the refresh), `maple-gateway; fwd=stale; fwd-status=<the failed load's status>` for a
//!   last good copy served because the upstream failed, and `maple-gateway; hit; ttl=<s>; detail=stale`
//!   for a value derived from such a copy (an expectation computed from stale equipment, cached briefly).
//! - Routes whose answers depend on the caller or change state (likes, admin) carry
//!   [`PRIVATE_NO_STORE`] (set by the inbound layer).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};

use crate::cache::{CacheStatus, ETag};
use crate::characters::Answer;

/// RFC 9211's header.
pub const CACHE_STATUS_HEADER: HeaderName = HeaderName::from_static("cache-status");
/// The cache's name in `Cache-Status`.
pub const CACHE_NAME: &str = "maple-gateway";
/// `Cache-Control` of the like and admin routes.
pub const PRIVATE_NO_STORE: &str = "private, no-store";

/// The `ETag` header of `tag` for the gzip (`-gz`) or the identity representation.
pub fn etag_header(tag: ETag, gzip: bool) -> HeaderValue {
    let mut out = [0u8; 37];
    out[0] = b'"';
    out[1..33].copy_from_slice(&tag.hex());
    let len = if gzip {
        out[33..37].copy_from_slice(b"-gz\"");
        37
    } else {
        out[33] = b'"';
        34
    };
    HeaderValue::from_bytes(&out[..len]).expect("quoted hex is a valid header value")
}

/// Whether `If-None-Match` field values match the entity tag `etag` (as sent, quotes included): `*`, or
/// a listed tag equal under the weak comparison.
pub fn none_match<'a>(
    values: impl IntoIterator<Item = &'a HeaderValue>,
    etag: &HeaderValue,
) -> bool {
    let ours = etag
        .as_bytes()
        .strip_prefix(b"W/")
        .unwrap_or(etag.as_bytes());
    values
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).as_bytes() == ours)
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// `Cache-Control` of a data answer; `swr` is the cache's stale-while-revalidate grace.
pub fn cache_control(answer: &Answer, swr: Duration) -> HeaderValue {
    let lifetime = secs(answer.fresh_until_ms - answer.fetched_at_ms).max(0);
    let if_error = secs(answer.stale_until_ms - answer.fresh_until_ms).max(0);
    HeaderValue::from_str(&format!(
        "max-age={lifetime}, stale-while-revalidate={}, stale-if-error={if_error}",
        swr.as_secs()
    ))
    .expect("ASCII")
}

/// `Age` of a data answer at `now_ms`: whole seconds since its data was fetched.
pub fn age(answer: &Answer, now_ms: i64) -> HeaderValue {
    HeaderValue::from(secs(now_ms - answer.fetched_at_ms).max(0) as u64)
}

/// `Cache-Status` of a data answer at `now_ms`; `forced` when the client asked for a refresh.
pub fn cache_status(answer: &Answer, now_ms: i64, forced: bool) -> HeaderValue {
    // In whole seconds as `max-age − Age` (both floored), so the three headers agree.
    let ttl =
        secs(answer.fresh_until_ms - answer.fetched_at_ms) - secs(now_ms - answer.fetched_at_ms);
    let v = match (answer.status, answer.upstream_status) {
        (CacheStatus::Hit(_), _) => format!("{CACHE_NAME}; hit; ttl={ttl}"),
        (CacheStatus::Miss, _) => {
            let fwd = if forced { "request" } else { "miss" };
            format!("{CACHE_NAME}; fwd={fwd}; fwd-status=200; stored")
        }
        (CacheStatus::Stale, Some(status)) => {
            format!("{CACHE_NAME}; fwd=stale; fwd-status={status}")
        }
        (CacheStatus::Stale, None) => format!("{CACHE_NAME}; hit; ttl={ttl}; detail=stale"),
    };
    HeaderValue::from_str(&v).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheTier;
    use bytes::Bytes;

    fn answer(status: CacheStatus) -> Answer {
        Answer {
            body_gz: Bytes::new(),
            status,
            fetched_at_ms: 1_000_000,
            data_preparing: false,
            etag: ETag::of(b"body"),
            fresh_until_ms: 1_000_000 + 900_000,
            stale_until_ms: 1_000_000 + 30 * 24 * 3_600_000,
            upstream_status: None,
            force_throttled: false,
        }
    }

    #[test]
    fn etags_differ_between_representations() {
        let t = ETag::of(b"body");
        assert_eq!(
            etag_header(t, false).to_str().unwrap(),
            "\"230d8358dc8e8890b4c58deeb62912ee\""
        );
        assert_eq!(
            etag_header(t, true).to_str().unwrap(),
            "\"230d8358dc8e8890b4c58deeb62912ee-gz\""
        );
    }

    #[test]
    fn if_none_match_uses_weak_comparison_lists_and_the_wildcard() {
        let ours = etag_header(ETag::of(b"body"), true);
        let hv = |s: &str| HeaderValue::from_str(s).unwrap();
        let m = |s: &str| none_match([&hv(s)], &ours);
        assert!(m("\"230d8358dc8e8890b4c58deeb62912ee-gz\""));
        assert!(m("W/\"230d8358dc8e8890b4c58deeb62912ee-gz\""), "weak");
        assert!(m(
            "\"a\", W/\"230d8358dc8e8890b4c58deeb62912ee-gz\" , \"b\""
        ));
        assert!(m("*"));
        assert!(
            !m("\"230d8358dc8e8890b4c58deeb62912ee\""),
            "other representation"
        );
        assert!(!m("230d8358dc8e8890b4c58deeb62912ee-gz"), "unquoted");
        assert!(!m(""));
        assert!(
            none_match([&hv("\"x\""), &hv("*")], &ours),
            "several fields"
        );
        assert!(!none_match([], &ours));
    }

    #[test]
    fn cache_control_leaves_max_age_minus_age_as_the_freshness_left() {
        let a = answer(CacheStatus::Hit(CacheTier::L1));
        let cc = cache_control(&a, Duration::from_secs(3600));
        assert_eq!(
            cc.to_str().unwrap(),
            "max-age=900, stale-while-revalidate=3600, stale-if-error=2591100"
        );
        let now = a.fetched_at_ms + 100_500;
        assert_eq!(age(&a, now).to_str().unwrap(), "100");
        assert_eq!(
            cache_status(&a, now, false).to_str().unwrap(),
            "maple-gateway; hit; ttl=800"
        );
    }

    #[test]
    fn cache_status_names_misses_forced_refreshes_and_stale_copies() {
        let now = 1_000_000;
        let miss = answer(CacheStatus::Miss);
        assert_eq!(
            cache_status(&miss, now, false).to_str().unwrap(),
            "maple-gateway; fwd=miss; fwd-status=200; stored"
        );
        assert_eq!(
            cache_status(&miss, now, true).to_str().unwrap(),
            "maple-gateway; fwd=request; fwd-status=200; stored"
        );
        let mut stale = answer(CacheStatus::Stale);
        stale.upstream_status = Some(503);
        assert_eq!(
            cache_status(&stale, now, false).to_str().unwrap(),
            "maple-gateway; fwd=stale; fwd-status=503"
        );
        stale.upstream_status = None;
        assert_eq!(
            cache_status(&stale, now, false).to_str().unwrap(),
            "maple-gateway; hit; ttl=900; detail=stale"
        );
    }
}
