//! The one error enum of the upstream client, [`NexonError`], and its classification.
//!
//! Contract: every way a logical upstream call can end badly is one variant. Variants built from an upstream
//! answer follow the Nexon error table exactly; three more say the call was *not made* because the
//! gateway protected the upstream — the circuit breaker is open ([`NexonError::CircuitOpen`]), maintenance or
//! a refused key is being held off ([`NexonError::Held`]), or the shared rate budget had no token in time
//! ([`NexonError::RateLimited`] with a `Retry-After`). Each variant knows whether it is an upstream fault
//! (what the breaker counts), whether a retry can help, its stable client code and its `Retry-After`.
//!
//! Why the "not made" variants exist: the read path's fallback decision (serve the last good copy, or a
//! clear 503 / 429 with `Retry-After`) must not depend on *why* the upstream cannot answer right now, but the
//! metrics and logs must.

use crate::error::{Classify, Code, ErrorKind};

/// Largest upstream body accepted.
pub const MAX_BODY: usize = 8 << 20;

/// Why the gateway is holding calls off (no upstream call is made while a hold lasts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// 00010 / 00011: the game or the API is under maintenance.
    Maintenance,
    /// 00002 / 00005: the upstream refused the API key.
    Auth,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::Maintenance => "maintenance",
            HoldReason::Auth => "auth",
        }
    }
}

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
    /// The circuit breaker is open (or half-open with every probe slot taken): no call was made.
    #[error("upstream circuit open: not calling it for {retry_after} s")]
    CircuitOpen { retry_after: u64 },
    /// Maintenance or a refused key is being held off: no call was made.
    #[error("upstream calls held off ({code}, {}) for {retry_after} s", reason.as_str())]
    Held {
        reason: HoldReason,
        code: &'static str,
        retry_after: u64,
    },
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

    /// Whether the retry policy may try this attempt again (connect errors, timeouts, 5xx and 429 only).
    pub fn is_retryable_attempt(&self) -> bool {
        matches!(
            self,
            NexonError::Server(_)
                | NexonError::Timeout
                | NexonError::Connect(_)
                | NexonError::RateLimited { .. }
        )
    }

    /// True when no upstream call was made because the gateway protected the upstream.
    pub fn is_local_refusal(&self) -> bool {
        matches!(
            self,
            NexonError::CircuitOpen { .. } | NexonError::Held { .. }
        )
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            NexonError::NotFound => "not_found",
            NexonError::DataPreparing => "data_preparing",
            NexonError::Maintenance(_) => "maintenance",
            NexonError::RateLimited { .. } => "rate_limited",
            NexonError::Auth(_) => "auth",
            NexonError::Bug(_) => "bug",
            NexonError::Server(_) => "server",
            NexonError::Timeout => "timeout",
            NexonError::Connect(_) => "connect",
            NexonError::BadResponse(_) => "bad_response",
            NexonError::TooLarge => "too_large",
            NexonError::CircuitOpen { .. } => "circuit_open",
            NexonError::Held { .. } => "held",
        }
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
                | NexonError::CircuitOpen { .. }
                | NexonError::Held {
                    reason: HoldReason::Maintenance,
                    ..
                }
        )
    }
    fn code(&self) -> Code {
        match self {
            NexonError::NotFound => Code::CharacterNotFound,
            NexonError::Bug(_) => Code::UpstreamBug,
            NexonError::BadResponse(_) | NexonError::TooLarge => Code::UpstreamBadResponse,
            NexonError::RateLimited { .. } => Code::RateLimited,
            NexonError::Auth(_)
            | NexonError::Held {
                reason: HoldReason::Auth,
                ..
            } => Code::UpstreamAuth,
            _ => Code::UpstreamUnavailable,
        }
    }
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            NexonError::RateLimited { retry_after } => Some(retry_after.unwrap_or(1).max(1)),
            NexonError::Maintenance(_) => Some(60),
            NexonError::DataPreparing => Some(30),
            NexonError::Server(_) | NexonError::Timeout | NexonError::Connect(_) => Some(5),
            NexonError::CircuitOpen { retry_after } | NexonError::Held { retry_after, .. } => {
                Some((*retry_after).max(1))
            }
            NexonError::Auth(_) => Some(60),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_upstream_faults_count_for_a_breaker() {
        assert!(NexonError::Timeout.is_upstream_fault());
        assert!(NexonError::Server(500).is_upstream_fault());
        assert!(NexonError::Connect("x".into()).is_upstream_fault());
        assert!(NexonError::Maintenance("OPENAPI00011").is_upstream_fault());
        assert!(!NexonError::NotFound.is_upstream_fault());
        assert!(!NexonError::Bug("OPENAPI00006").is_upstream_fault());
        assert!(!NexonError::BadResponse("x".into()).is_upstream_fault());
        assert!(!NexonError::RateLimited { retry_after: None }.is_upstream_fault());
        assert!(!NexonError::Auth("OPENAPI00005").is_upstream_fault());
        assert!(!NexonError::CircuitOpen { retry_after: 1 }.is_upstream_fault());
    }

    #[test]
    fn only_connect_timeout_5xx_and_429_are_retried() {
        let yes = [
            NexonError::Timeout,
            NexonError::Server(502),
            NexonError::Connect("refused".into()),
            NexonError::RateLimited {
                retry_after: Some(1),
            },
        ];
        let no = [
            NexonError::NotFound,
            NexonError::DataPreparing,
            NexonError::Maintenance("OPENAPI00010"),
            NexonError::Auth("OPENAPI00005"),
            NexonError::Bug("OPENAPI00006"),
            NexonError::BadResponse("x".into()),
            NexonError::TooLarge,
            NexonError::CircuitOpen { retry_after: 1 },
        ];
        assert!(yes.iter().all(NexonError::is_retryable_attempt));
        assert!(!no.iter().any(NexonError::is_retryable_attempt));
    }

    #[test]
    fn refusals_carry_their_retry_after_and_client_code() {
        let open = NexonError::CircuitOpen { retry_after: 7 };
        assert_eq!(open.code(), "UPSTREAM_UNAVAILABLE");
        assert_eq!(open.retry_after_secs(), Some(7));
        let held = NexonError::Held {
            reason: HoldReason::Auth,
            code: "OPENAPI00005",
            retry_after: 42,
        };
        assert_eq!(held.code(), "UPSTREAM_AUTH");
        assert_eq!(held.retry_after_secs(), Some(42));
        let maint = NexonError::Held {
            reason: HoldReason::Maintenance,
            code: "OPENAPI00011",
            retry_after: 0,
        };
        assert_eq!(maint.code(), "UPSTREAM_UNAVAILABLE");
        assert_eq!(maint.retry_after_secs(), Some(1), "never Retry-After: 0");
    }
}
