//! The upstream HTTP client: one reqwest client, typed responses, the Nexon error table mapped exactly.
//!
//! Contract: every call is a GET with the key in `x-nxopen-api-key` (never logged), a 1 s connect timeout and
//! a per-attempt timeout; the body is capped at [`MAX_BODY`] bytes and must parse into the typed response,
//! otherwise the call fails with [`NexonError::BadResponse`] / [`NexonError::TooLarge`]. Upstream error bodies
//! are mapped by code (DESIGN §5):
//!
//! | code | error |
//! |---|---|
//! | 00001, 5xx without a known code | `Server` (upstream fault, retryable) |
//! | 00002, 00005 | `Auth` (alert, 503, not retried) |
//! | 00003; 00004 on `/id` | `NotFound` |
//! | 00004 elsewhere, 00006 | `Bug` (502) |
//! | 00007, HTTP 429 | `RateLimited` (honours `Retry-After`) |
//! | 00009 | `DataPreparing` |
//! | 00010, 00011 | `Maintenance` |

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

use super::names::{CharacterName, Ocid};
use super::wire::{
    API_KEY_HEADER, CharacterBasic, ErrorBody, IdResponse, NexonErrorCode, PATH_BASIC, PATH_ID,
    PATH_ITEM_EQUIPMENT,
};
use crate::error::{Classify, ErrorKind};
use crate::expectation::model::ItemEquipment;
use crate::telemetry;

/// Largest upstream body accepted.
pub const MAX_BODY: usize = 8 << 20;

/// Why an upstream call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NexonError {
    #[error("character not found")]
    NotFound,
    #[error("upstream data is being prepared")]
    DataPreparing,
    #[error("upstream under maintenance ({0})")]
    Maintenance(&'static str),
    #[error("upstream rate limit exceeded")]
    RateLimited { retry_after: Option<u64> },
    #[error("upstream refused the API key ({0})")]
    Auth(&'static str),
    #[error("upstream rejected the request as malformed ({0})")]
    Bug(&'static str),
    #[error("upstream server error (HTTP {0})")]
    Server(u16),
    #[error("upstream timed out")]
    Timeout,
    #[error("cannot connect to upstream: {0}")]
    Connect(String),
    #[error("upstream sent a bad response: {0}")]
    BadResponse(String),
    #[error("upstream response exceeds {MAX_BODY} bytes")]
    TooLarge,
}

impl NexonError {
    /// Faults of the upstream itself (what a circuit breaker counts); never not-found or bad input.
    pub fn is_upstream_fault(&self) -> bool {
        matches!(
            self,
            NexonError::Server(_)
                | NexonError::Timeout
                | NexonError::Connect(_)
                | NexonError::Maintenance(_)
        )
    }
}

impl Classify for NexonError {
    fn kind(&self) -> ErrorKind {
        match self {
            NexonError::NotFound => ErrorKind::Client,
            NexonError::Bug(_) => ErrorKind::Internal,
            _ => ErrorKind::Upstream,
        }
    }
    fn retryable(&self) -> bool {
        matches!(
            self,
            NexonError::Server(_)
                | NexonError::Timeout
                | NexonError::Connect(_)
                | NexonError::RateLimited { .. }
                | NexonError::DataPreparing
                | NexonError::Maintenance(_)
        )
    }
    fn code(&self) -> &'static str {
        match self {
            NexonError::NotFound => "CHARACTER_NOT_FOUND",
            NexonError::Bug(_) => "UPSTREAM_BUG",
            NexonError::BadResponse(_) | NexonError::TooLarge => "UPSTREAM_BAD_RESPONSE",
            NexonError::RateLimited { .. } => "RATE_LIMITED",
            NexonError::Auth(_) => "UPSTREAM_AUTH",
            _ => "UPSTREAM_UNAVAILABLE",
        }
    }
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            NexonError::RateLimited { retry_after } => Some(retry_after.unwrap_or(1)),
            NexonError::Maintenance(_) => Some(60),
            NexonError::DataPreparing => Some(30),
            NexonError::Server(_) | NexonError::Timeout | NexonError::Connect(_) => Some(5),
            _ => None,
        }
    }
}

/// The client.
#[derive(Clone)]
pub struct NexonClient {
    http: reqwest::Client,
    base: String,
    key: crate::config::Secret,
    attempt_timeout: Duration,
}

impl std::fmt::Debug for NexonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NexonClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
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

impl NexonClient {
    pub fn new(
        base: &str,
        key: crate::config::Secret,
        attempt_timeout: Duration,
    ) -> Result<Self, NexonError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .gzip(true)
            .pool_max_idle_per_host(64)
            .user_agent(concat!("maple-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NexonError::Connect(e.to_string()))?;
        Ok(NexonClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
            attempt_timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `/id`: name → ocid.
    pub async fn ocid(&self, name: &CharacterName) -> Result<Ocid, NexonError> {
        let body = self
            .get(Endpoint::Id, &[("character_name", name.as_str())])
            .await?;
        let r: IdResponse = serde_json::from_slice(&body)
            .map_err(|e| NexonError::BadResponse(format!("id: {e}")))?;
        Ocid::parse(&r.ocid).map_err(|_| NexonError::BadResponse("id: malformed ocid".into()))
    }

    /// `/character/basic`.
    pub async fn basic(
        &self,
        ocid: &Ocid,
        date: Option<&str>,
    ) -> Result<CharacterBasic, NexonError> {
        let mut q = vec![("ocid", ocid.as_str())];
        if let Some(d) = date {
            q.push(("date", d));
        }
        let body = self.get(Endpoint::Basic, &q).await?;
        serde_json::from_slice(&body).map_err(|e| NexonError::BadResponse(format!("basic: {e}")))
    }

    /// `/character/item-equipment`: the raw bytes (validated by parsing) and the parsed model.
    pub async fn item_equipment(
        &self,
        ocid: &Ocid,
        date: Option<&str>,
    ) -> Result<(Bytes, ItemEquipment), NexonError> {
        let mut q = vec![("ocid", ocid.as_str())];
        if let Some(d) = date {
            q.push(("date", d));
        }
        let body = self.get(Endpoint::ItemEquipment, &q).await?;
        let parsed = ItemEquipment::from_json(&body)
            .map_err(|e| NexonError::BadResponse(format!("item-equipment: {e}")))?;
        Ok((body, parsed))
    }

    async fn get(&self, ep: Endpoint, query: &[(&str, &str)]) -> Result<Bytes, NexonError> {
        let started = Instant::now();
        let result = self.get_inner(ep, query).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        metrics::counter!(telemetry::UPSTREAM_CALLS_TOTAL, "endpoint" => ep.as_str(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(telemetry::UPSTREAM_CALL_DURATION, "endpoint" => ep.as_str())
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn get_inner(&self, ep: Endpoint, query: &[(&str, &str)]) -> Result<Bytes, NexonError> {
        let url = format!("{}{}", self.base, ep.path());
        let fut = async {
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
        };
        match tokio::time::timeout(self.attempt_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(NexonError::Timeout),
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

    #[test]
    fn only_upstream_faults_count_for_a_breaker() {
        assert!(NexonError::Timeout.is_upstream_fault());
        assert!(NexonError::Server(500).is_upstream_fault());
        assert!(NexonError::Maintenance("OPENAPI00011").is_upstream_fault());
        assert!(!NexonError::NotFound.is_upstream_fault());
        assert!(!NexonError::Bug("OPENAPI00006").is_upstream_fault());
        assert!(!NexonError::BadResponse("x".into()).is_upstream_fault());
    }
}
