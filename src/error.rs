//! Error classification shared by every module's error enum.
//!
//! Contract: each module has its own `thiserror` enum; each variant says where the fault lies
//! ([`ErrorKind`]: the client, the upstream, or ourselves), whether retrying can help, and a stable
//! machine-readable [`Code`] (`CHARACTER_NOT_FOUND`, `UPSTREAM_UNAVAILABLE`, …). The code alone decides the
//! HTTP status ([`Code::status`], an exhaustive match: a code without a status does not compile); the one
//! response mapping in `api/error.rs` turns it into the JSON error shape. This module sits on the bottom
//! floor so that every other module can implement [`Classify`] without importing upward.

use std::fmt;

use axum::http::StatusCode;

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
    /// The stable code the client sees; it decides the HTTP status.
    fn code(&self) -> Code;
    /// Seconds after which a retry makes sense, when the error knows it.
    fn retry_after_secs(&self) -> Option<u64> {
        None
    }
}

/// The machine-readable error code sent to clients as `error.code`, with the HTTP status it is answered with.
///
/// One variant per code on the wire; [`Code::as_str`] is the exact string and [`Code::status`] the status,
/// both exhaustive matches so that a new code cannot be added without both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The request is malformed (bad identifier, parameter, body).
    BadRequest,
    /// No such route or resource.
    NotFound,
    /// The upstream knows no such character.
    CharacterNotFound,
    /// The client (or the gateway's share of the upstream) exceeded its rate limit.
    RateLimited,
    /// The request body is too large.
    PayloadTooLarge,
    /// The route exists, not for this method.
    MethodNotAllowed,
    /// An admin route without a bearer token.
    Unauthorized,
    /// An admin route with the wrong bearer token.
    Forbidden,
    /// An operator action that does not apply to this deployment (e.g. a failover drill without Sentinel).
    NotApplicable,
    /// The upstream sent a response the gateway cannot use (malformed, too large).
    UpstreamBadResponse,
    /// The upstream rejected the gateway's request as malformed: a gateway bug.
    UpstreamBug,
    /// The upstream's equipment payload does not fit the equipment model.
    UpstreamBadPayload,
    /// The upstream is down, in maintenance, or held off by the breaker.
    UpstreamUnavailable,
    /// The upstream refused the API key.
    UpstreamAuth,
    /// The gateway sheds load.
    Overloaded,
    /// The request took longer than its deadline.
    Timeout,
    /// The database does not answer.
    DatabaseUnavailable,
    /// Redis does not answer (or is misconfigured).
    RedisUnavailable,
    /// Likes cannot be accepted safely right now.
    LikesUnavailable,
    /// A lock was not acquired in time.
    LockTimeout,
    /// No lock tier is available.
    LockUnavailable,
    /// A lock's lease was lost while it was held.
    LockLost,
    /// The gateway is shutting down.
    ShuttingDown,
    /// The cube probability table cannot be read.
    CubeTableUnreadable,
    /// The cube probability table is malformed.
    CubeTableInvalid,
    /// A bug or an unexpected state inside the gateway.
    Internal,
}

impl Code {
    /// Every code, in declaration order.
    pub const ALL: [Code; 26] = [
        Code::BadRequest,
        Code::NotFound,
        Code::CharacterNotFound,
        Code::RateLimited,
        Code::PayloadTooLarge,
        Code::MethodNotAllowed,
        Code::Unauthorized,
        Code::Forbidden,
        Code::NotApplicable,
        Code::UpstreamBadResponse,
        Code::UpstreamBug,
        Code::UpstreamBadPayload,
        Code::UpstreamUnavailable,
        Code::UpstreamAuth,
        Code::Overloaded,
        Code::Timeout,
        Code::DatabaseUnavailable,
        Code::RedisUnavailable,
        Code::LikesUnavailable,
        Code::LockTimeout,
        Code::LockUnavailable,
        Code::LockLost,
        Code::ShuttingDown,
        Code::CubeTableUnreadable,
        Code::CubeTableInvalid,
        Code::Internal,
    ];

    /// The upper-snake-case string sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "BAD_REQUEST",
            Code::NotFound => "NOT_FOUND",
            Code::CharacterNotFound => "CHARACTER_NOT_FOUND",
            Code::RateLimited => "RATE_LIMITED",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotApplicable => "NOT_APPLICABLE",
            Code::UpstreamBadResponse => "UPSTREAM_BAD_RESPONSE",
            Code::UpstreamBug => "UPSTREAM_BUG",
            Code::UpstreamBadPayload => "UPSTREAM_BAD_PAYLOAD",
            Code::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Code::UpstreamAuth => "UPSTREAM_AUTH",
            Code::Overloaded => "OVERLOADED",
            Code::Timeout => "TIMEOUT",
            Code::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            Code::RedisUnavailable => "REDIS_UNAVAILABLE",
            Code::LikesUnavailable => "LIKES_UNAVAILABLE",
            Code::LockTimeout => "LOCK_TIMEOUT",
            Code::LockUnavailable => "LOCK_UNAVAILABLE",
            Code::LockLost => "LOCK_LOST",
            Code::ShuttingDown => "SHUTTING_DOWN",
            Code::CubeTableUnreadable => "CUBE_TABLE_UNREADABLE",
            Code::CubeTableInvalid => "CUBE_TABLE_INVALID",
            Code::Internal => "INTERNAL",
        }
    }

    /// The HTTP status an error with this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BadRequest => StatusCode::BAD_REQUEST,
            Code::NotFound | Code::CharacterNotFound => StatusCode::NOT_FOUND,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotApplicable => StatusCode::CONFLICT,
            Code::UpstreamBadResponse | Code::UpstreamBug => StatusCode::BAD_GATEWAY,
            Code::UpstreamBadPayload
            | Code::UpstreamUnavailable
            | Code::UpstreamAuth
            | Code::Overloaded
            | Code::DatabaseUnavailable
            | Code::RedisUnavailable
            | Code::LikesUnavailable
            | Code::LockTimeout
            | Code::LockUnavailable
            | Code::LockLost
            | Code::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Code::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Code::CubeTableUnreadable | Code::CubeTableInvalid | Code::Internal => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A code equals its wire string.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_wire_string_and_status() {
        let table: Vec<(Code, &str, u16)> = Code::ALL
            .iter()
            .map(|&c| (c, c.as_str(), c.status().as_u16()))
            .collect();
        assert_eq!(
            table,
            [
                (Code::BadRequest, "BAD_REQUEST", 400),
                (Code::NotFound, "NOT_FOUND", 404),
                (Code::CharacterNotFound, "CHARACTER_NOT_FOUND", 404),
                (Code::RateLimited, "RATE_LIMITED", 429),
                (Code::PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413),
                (Code::MethodNotAllowed, "METHOD_NOT_ALLOWED", 405),
                (Code::Unauthorized, "UNAUTHORIZED", 401),
                (Code::Forbidden, "FORBIDDEN", 403),
                (Code::NotApplicable, "NOT_APPLICABLE", 409),
                (Code::UpstreamBadResponse, "UPSTREAM_BAD_RESPONSE", 502),
                (Code::UpstreamBug, "UPSTREAM_BUG", 502),
                (Code::UpstreamBadPayload, "UPSTREAM_BAD_PAYLOAD", 503),
                (Code::UpstreamUnavailable, "UPSTREAM_UNAVAILABLE", 503),
                (Code::UpstreamAuth, "UPSTREAM_AUTH", 503),
                (Code::Overloaded, "OVERLOADED", 503),
                (Code::Timeout, "TIMEOUT", 504),
                (Code::DatabaseUnavailable, "DATABASE_UNAVAILABLE", 503),
                (Code::RedisUnavailable, "REDIS_UNAVAILABLE", 503),
                (Code::LikesUnavailable, "LIKES_UNAVAILABLE", 503),
                (Code::LockTimeout, "LOCK_TIMEOUT", 503),
                (Code::LockUnavailable, "LOCK_UNAVAILABLE", 503),
                (Code::LockLost, "LOCK_LOST", 503),
                (Code::ShuttingDown, "SHUTTING_DOWN", 503),
                (Code::CubeTableUnreadable, "CUBE_TABLE_UNREADABLE", 500),
                (Code::CubeTableInvalid, "CUBE_TABLE_INVALID", 500),
                (Code::Internal, "INTERNAL", 500),
            ]
        );
    }

    #[test]
    fn codes_serialise_and_compare_as_their_wire_string() {
        assert_eq!(
            serde_json::to_string(&Code::LockLost).unwrap(),
            "\"LOCK_LOST\""
        );
        assert_eq!(Code::Timeout.to_string(), "TIMEOUT");
        assert_eq!(Code::Timeout, "TIMEOUT");
        assert!(Code::Timeout != "UPSTREAM_UNAVAILABLE");
        let mut strings: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        strings.sort_unstable();
        strings.dedup();
        assert_eq!(strings.len(), Code::ALL.len(), "wire strings are unique");
    }
}
