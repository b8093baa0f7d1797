//! Error classification shared by every module's error enum.
//!
//! Contract: each module has its own `thiserror` enum; each variant says where the fault lies
//! ([`ErrorKind`]: the client, the upstream, or ourselves), whether retrying can help, and a stable
//! machine-readable code (`CHARACTER_NOT_FOUND`, `UPSTREAM_UNAVAILABLE`, …) that the one response mapping in
//! `api/error.rs` turns into an HTTP status and the JSON error shape. This module sits on the bottom floor so
//! that every other module can implement [`Classify`] without importing upward.

/// Where a fault lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request was wrong; retrying the same request cannot help.
    Client,
    /// The upstream (Nexon) or a backing service failed or refused.
    Upstream,
    /// A bug or an unexpected state inside the gateway.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Client => "client",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Implemented by every module error enum.
pub trait Classify {
    fn kind(&self) -> ErrorKind;
    /// Whether the same call may succeed if tried again later.
    fn retryable(&self) -> bool;
    /// A stable, upper-snake-case code for the client (`BAD_REQUEST`, `UPSTREAM_UNAVAILABLE`, …).
    fn code(&self) -> &'static str;
    /// Seconds after which a retry makes sense, when the error knows it.
    fn retry_after_secs(&self) -> Option<u64> {
        None
    }
}
