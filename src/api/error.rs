//! The one mapping from errors to HTTP responses.
//!
//! Contract: every error the gateway returns has the JSON shape
//! `{"error":{"code":"…","message":"…","request_id":"…"}}`, a status derived from the error's
//! [`Classify`] code, and `Retry-After` when the error knows when to retry. Internal errors never leak
//! their details to the client (the message says "internal error"; the cause is logged with the request id).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Classify, ErrorKind};

/// An error ready to be sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    /// Filled in by the request-id middleware (it rewrites the body when the header is known).
    request_id: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Maps any classified error: the code picks the status; internal errors are logged, not shown.
    pub fn from_classified<E: Classify + std::fmt::Display + ?Sized>(e: &E) -> Self {
        let code = e.code();
        let status = status_for(code, e.kind());
        let message = if e.kind() == ErrorKind::Internal {
            tracing::error!(error = %e, code, "internal error");
            "internal error".to_string()
        } else {
            e.to_string()
        };
        ApiError {
            status,
            code,
            message,
            retry_after: e
                .retry_after_secs()
                .or(if status == StatusCode::SERVICE_UNAVAILABLE {
                    Some(5)
                } else {
                    None
                }),
        }
    }

    /// Renders the body with a request id.
    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let body = serde_json::to_vec(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                request_id,
            },
        })
        .expect("error body serialises");
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// The status for an error code; unknown codes fall back on the error's kind.
pub fn status_for(code: &str, kind: ErrorKind) -> StatusCode {
    match code {
        "BAD_REQUEST" => StatusCode::BAD_REQUEST,
        "NOT_FOUND" | "CHARACTER_NOT_FOUND" => StatusCode::NOT_FOUND,
        "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "PAYLOAD_TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
        "UPSTREAM_BAD_RESPONSE" | "UPSTREAM_BUG" => StatusCode::BAD_GATEWAY,
        "UPSTREAM_UNAVAILABLE"
        | "OVERLOADED"
        | "DATABASE_UNAVAILABLE"
        | "SHUTTING_DOWN"
        | "UPSTREAM_AUTH"
        | "LIKES_UNAVAILABLE"
        | "LOCK_TIMEOUT"
        | "LOCK_UNAVAILABLE"
        | "LOCK_LOST"
        | "REDIS_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        "TIMEOUT" => StatusCode::GATEWAY_TIMEOUT,
        _ => match kind {
            ErrorKind::Client => StatusCode::BAD_REQUEST,
            ErrorKind::Upstream => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

/// Without a request id at hand (the middleware fills it in from the response's `x-request-id`).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.clone().into_response_with_id("");
        resp.extensions_mut().insert(PendingError(self));
        resp
    }
}

/// Marks a response whose body must be re-rendered with the request id once it is known.
#[derive(Clone, Debug)]
pub struct PendingError(pub ApiError);
