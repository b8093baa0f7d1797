//! One HTTP attempt against the upstream: one reqwest client, the key header, the body cap, the error table.
//!
//! Contract: [`Transport::get`] performs exactly one GET (no retries, no breaker, no rate limit — that is
//! [`super::resilience`]'s job) with the key in `x-nxopen-api-key` (never logged), a 1 s connect timeout and
//! the attempt timeout it is given. The body is capped at [`MAX_BODY`] bytes (declared length checked first,
//! then the streamed length), gzip is accepted. Success statuses return the raw bytes; error answers are mapped
//! by their Nexon code, falling back on the HTTP status:
//!
//! | code | error |
//! |---|---|
//! | 00001, 5xx without a known code | `Server` (upstream fault, retryable) |
//! | 00002, 00005 | `Auth` (alert, 503, not retried, held off) |
//! | 00003; 00004 on `/id` | `NotFound` |
//! | 00004 elsewhere, 00006 | `Bug` (502) |
//! | 00007, HTTP 429 | `RateLimited` (honours `Retry-After`, see below) |
//! | 00009 | `DataPreparing` |
//! | 00010, 00011 | `Maintenance` |
//!
//! `Retry-After` is read by [`parse_retry_after`]: seconds or an HTTP-date, clamped to [`MAX_RETRY_AFTER`],
//! garbage ignored — so no header value can overflow the limiter's clock or stop the cluster for longer.
//!
//! Every attempt is counted in `maple_upstream_calls_total{endpoint,outcome}` and timed in
//! `maple_upstream_call_duration_seconds` — these are real upstream calls, retries included.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

use super::error::{MAX_BODY, NexonError};
use super::wire::{
    API_KEY_HEADER, ErrorBody, NexonErrorCode, PATH_BASIC, PATH_ID, PATH_ITEM_EQUIPMENT,
};
use crate::error::Classify;
use crate::telemetry;

/// The longest upstream `Retry-After` the gateway honours; a longer one is clamped to it. The backoff it sets
/// is cluster-wide (every instance stops calling the upstream), so one absurd header must not stop the whole
/// cluster for longer than this. The upstream's own 429s ask for about a second.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Reads a `Retry-After` header value (RFC 9110 §10.2.3) as whole seconds from `now`, clamped to
/// [`MAX_RETRY_AFTER`]: delay-seconds (any number of digits; one too long for `u64` is the maximum) or an
/// HTTP-date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`, rounded up to whole seconds; a date in
/// the past is 0). Anything else — signs, fractions, the obsolete date forms, garbage — is `None` (no hint).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    let value = value.trim();
    let max = MAX_RETRY_AFTER.as_secs();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse::<u64>().map_or(max, |s| s.min(max)));
    }
    let date = chrono::NaiveDateTime::parse_from_str(value, "%a, %d %b %Y %H:%M:%S GMT")
        .ok()?
        .and_utc();
    // Both ends are valid `DateTime`s, whose difference always fits a `TimeDelta`.
    let ms = date.signed_duration_since(now).num_milliseconds();
    Some(if ms <= 0 {
        0
    } else {
        (ms as u64).div_ceil(1000).min(max)
    })
}

/// Which upstream endpoint a call went to (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Id,
    Basic,
    ItemEquipment,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Id => "id",
            Endpoint::Basic => "basic",
            Endpoint::ItemEquipment => "item_equipment",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Endpoint::Id => PATH_ID,
            Endpoint::Basic => PATH_BASIC,
            Endpoint::ItemEquipment => PATH_ITEM_EQUIPMENT,
        }
    }
}

/// The HTTP side of the client.
#[derive(Clone)]
pub struct Transport {
    http: reqwest::Client,
    base: String,
    key: crate::config::Secret,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(base: &str, key: crate::config::Secret) -> Result<Self, NexonError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .gzip(true)
            .pool_max_idle_per_host(64)
            .user_agent(concat!("maple-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NexonError::Connect(e.to_string()))?;
        Ok(Transport {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// One GET, bounded by `timeout`.
    pub async fn get(
        &self,
        ep: Endpoint,
        query: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Bytes, NexonError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, self.get_inner(ep, query)).await {
            Ok(r) => r,
            Err(_) => Err(NexonError::Timeout),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        metrics::counter!(telemetry::UPSTREAM_CALLS_TOTAL, "endpoint" => ep.as_str(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(telemetry::UPSTREAM_CALL_DURATION, "endpoint" => ep.as_str())
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn get_inner(&self, ep: Endpoint, query: &[(&str, &str)]) -> Result<Bytes, NexonError> {
        let url = format!("{}{}", self.base, ep.path());
        let mut resp = self
            .http
            .get(&url)
            .header(API_KEY_HEADER, self.key.expose())
            .query(query)
            .send()
            .await
            .map_err(map_transport)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        if let Some(len) = resp.content_length()
            && len as usize > MAX_BODY
        {
            return Err(NexonError::TooLarge);
        }
        let mut buf = Vec::with_capacity(resp.content_length().unwrap_or(16 * 1024) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(map_transport)? {
            if buf.len() + chunk.len() > MAX_BODY {
                return Err(NexonError::TooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        if status.is_success() {
            Ok(Bytes::from(buf))
        } else {
            Err(map_error(ep, status, retry_after, &buf))
        }
    }
}

fn map_transport(e: reqwest::Error) -> NexonError {
    if e.is_timeout() {
        NexonError::Timeout
    } else if e.is_connect() {
        NexonError::Connect(e.to_string())
    } else if e.is_decode() || e.is_body() {
        NexonError::BadResponse(e.to_string())
    } else {
        NexonError::Connect(e.to_string())
    }
}

/// Maps an error response by its Nexon code, falling back on the HTTP status.
pub fn map_error(
    ep: Endpoint,
    status: StatusCode,
    retry_after: Option<u64>,
    body: &[u8],
) -> NexonError {
    let code = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| NexonErrorCode::parse(&b.error.name));
    match code {
        Some(NexonErrorCode::InternalError) => NexonError::Server(status.as_u16()),
        Some(c @ (NexonErrorCode::Forbidden | NexonErrorCode::InvalidApiKey)) => {
            NexonError::Auth(c.name())
        }
        Some(NexonErrorCode::InvalidIdentifier) => NexonError::NotFound,
        Some(NexonErrorCode::InvalidParameter) if ep == Endpoint::Id => NexonError::NotFound,
        Some(c @ (NexonErrorCode::InvalidParameter | NexonErrorCode::InvalidPath)) => {
            NexonError::Bug(c.name())
        }
        Some(NexonErrorCode::RateLimited) => NexonError::RateLimited { retry_after },
        Some(NexonErrorCode::DataPreparing) => NexonError::DataPreparing,
        Some(c @ (NexonErrorCode::GameMaintenance | NexonErrorCode::ApiMaintenance)) => {
            NexonError::Maintenance(c.name())
        }
        None if status == StatusCode::TOO_MANY_REQUESTS => NexonError::RateLimited { retry_after },
        None if status.is_server_error() => NexonError::Server(status.as_u16()),
        None => NexonError::BadResponse(format!(
            "HTTP {} without a known error code",
            status.as_u16()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: NexonErrorCode) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody::new(code, "x")).unwrap()
    }

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn retry_after_seconds_are_read_and_clamped() {
        let now = at("2026-01-01T00:00:00Z");
        let max = MAX_RETRY_AFTER.as_secs();
        assert_eq!(parse_retry_after("3", now), Some(3));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(parse_retry_after("3600", now), Some(max));
        assert_eq!(parse_retry_after("100000000", now), Some(max));
        assert_eq!(parse_retry_after("9223372036854775808", now), Some(max));
        assert_eq!(
            parse_retry_after("99999999999999999999999999999999", now),
            Some(max),
            "too long for u64 is still the maximum, not ignored"
        );
    }

    #[test]
    fn retry_after_http_dates_are_read_relative_to_now() {
        let now = at("1994-11-06T08:49:00Z");
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(37)
        );
        let now_ms = at("1994-11-06T08:49:36.200Z");
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now_ms),
            Some(1),
            "rounded up"
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:48:00 GMT", now),
            Some(0),
            "a date in the past means now"
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER.as_secs())
        );
    }

    #[test]
    fn retry_after_garbage_is_ignored() {
        let now = at("2026-01-01T00:00:00Z");
        for v in [
            "",
            " ",
            "-1",
            "+5",
            "1.5",
            "1e9",
            "soon",
            "0x10",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
        ] {
            assert_eq!(parse_retry_after(v, now), None, "{v:?}");
        }
    }

    /// Through a real HTTP answer and the limiter, the way the client uses them: an absurd `Retry-After`
    /// becomes the maximum, the cluster backs off for at most that, and calls pass again afterwards.
    #[tokio::test]
    async fn an_absurd_retry_after_from_the_upstream_backs_off_at_most_the_maximum() {
        use crate::ids::Priority;
        use crate::nexon::rate_limit::{RateConfig, RateLimiter};

        let app = axum::Router::new().fallback(|| async {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(reqwest::header::RETRY_AFTER, "18446744073709551615")],
                axum::Json(ErrorBody::new(NexonErrorCode::RateLimited, "slow down")),
            )
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let t = Transport::new(
            &format!("http://{addr}"),
            crate::config::Secret::new("test_k"),
        )
        .unwrap();
        let e = t
            .get(Endpoint::Basic, &[("ocid", "x")], Duration::from_secs(5))
            .await
            .unwrap_err();
        let NexonError::RateLimited {
            retry_after: Some(secs),
        } = e
        else {
            panic!("{e:?}");
        };
        assert_eq!(secs, MAX_RETRY_AFTER.as_secs());

        tokio::time::pause();
        let limiter = RateLimiter::new(
            RateConfig {
                per_second: 5,
                per_day: u64::MAX,
                max_wait: Duration::from_millis(100),
                instances: 1,
            },
            "test_k",
            None,
        );
        limiter.penalize(Duration::from_secs(secs)).await;
        let wait = Duration::from_millis(100);
        let r = limiter
            .acquire(Priority::Interactive, wait)
            .await
            .unwrap_err();
        assert!(r.retry_after <= MAX_RETRY_AFTER, "{:?}", r.retry_after);
        tokio::time::advance(MAX_RETRY_AFTER).await;
        limiter.acquire(Priority::Interactive, wait).await.unwrap();
    }

    #[test]
    fn maps_the_error_table_exactly() {
        use NexonErrorCode::*;
        let s = |c: NexonErrorCode| StatusCode::from_u16(c.http_status()).unwrap();
        let m = |ep, c| map_error(ep, s(c), None, &body(c));
        assert!(matches!(
            m(Endpoint::Basic, InternalError),
            NexonError::Server(500)
        ));
        assert!(matches!(m(Endpoint::Basic, Forbidden), NexonError::Auth(_)));
        assert!(matches!(
            m(Endpoint::Basic, InvalidIdentifier),
            NexonError::NotFound
        ));
        assert!(matches!(
            m(Endpoint::Id, InvalidParameter),
            NexonError::NotFound
        ));
        assert!(matches!(
            m(Endpoint::ItemEquipment, InvalidParameter),
            NexonError::Bug(_)
        ));
        assert!(matches!(
            m(Endpoint::Basic, InvalidApiKey),
            NexonError::Auth(_)
        ));
        assert!(matches!(
            m(Endpoint::Basic, InvalidPath),
            NexonError::Bug(_)
        ));
        assert!(matches!(
            m(Endpoint::Basic, RateLimited),
            NexonError::RateLimited { .. }
        ));
        assert!(matches!(
            m(Endpoint::Basic, DataPreparing),
            NexonError::DataPreparing
        ));
        assert!(matches!(
            m(Endpoint::Basic, GameMaintenance),
            NexonError::Maintenance(_)
        ));
        assert!(matches!(
            m(Endpoint::Basic, ApiMaintenance),
            NexonError::Maintenance(_)
        ));
        assert!(matches!(
            map_error(Endpoint::Basic, StatusCode::BAD_GATEWAY, None, b"<html>"),
            NexonError::Server(502)
        ));
        assert!(matches!(
            map_error(Endpoint::Basic, StatusCode::TOO_MANY_REQUESTS, Some(3), b""),
            NexonError::RateLimited {
                retry_after: Some(3)
            }
        ));
    }
}
