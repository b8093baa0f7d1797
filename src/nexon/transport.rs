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
//! | 00007, HTTP 429 | `RateLimited` (honours `Retry-After`) |
//! | 00009 | `DataPreparing` |
//! | 00010, 00011 | `Maintenance` |
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
            .and_then(|v| v.trim().parse::<u64>().ok());
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
