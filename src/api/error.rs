//! The one mapping from errors to HTTP responses.
//!
//! Contract: every error the gateway returns has the JSON shape
//! `{"error":{"code":"…","message":"…","request_id":"…"}}`, the status of the error's [`Classify`] code
//! ([`Code::status`]), and `Retry-After` when the error knows when to retry (5 s for any other 503).
//! Internal errors never leak their details to the client (the message says "internal error"; the cause is
//! logged with the request id).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Classify, Code, ErrorKind};

/// An error ready to be sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
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
    /// An error answered with `status` (which may differ from [`Code::status`], for the responses the HTTP
    /// layer itself produces).
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, message)
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Maps any classified error: the code picks the status; internal errors are logged, not shown.
    pub fn from_classified<E: Classify + std::fmt::Display + ?Sized>(e: &E) -> Self {
        let code = e.code();
        let status = code.status();
        let message = if e.kind() == ErrorKind::Internal {
            tracing::error!(error = %e, code = code.as_str(), "internal error");
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
                code: self.code.as_str(),
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
