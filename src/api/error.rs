//! The one mapping from errors to HTTP responses.
//!
//! Contract: every error the gateway returns has the JSON shape
//! `{"error":{"code":"…","message":"…","request_id":"…"}}`, the status of the error's [`Classify`] code
//! ([`Code::status`]), and `Retry-After` when the error knows when to retry (5 s for any other 503).
//! Errors the client cannot act on never leak their details: internal errors (kind internal) and failures
//! of the gateway's own infrastructure (database, Redis, locks) are answered with their code and a generic
//! message, and the detail (pool timeouts, SQL, lock names, Redis replies) is logged inside the request's
//! span, so the log line carries the request id. Client errors keep the message that tells the client what
//! it did wrong (e.g. "date must be YYYY-MM-DD"); upstream (Nexon) errors keep theirs.

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

/// The body of every error answer (its schema is the document's `ErrorBody`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Machine-readable code.
    #[schema(schema_with = super::openapi::code_schema)]
    code: &'a str,
    /// For people: what the client did wrong, or a generic text for the gateway's own failures.
    message: &'a str,
    /// The request's id, also in `x-request-id`.
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

    /// Maps any classified error: the code picks the status; internal and infrastructure errors are
    /// logged, not shown.
    pub fn from_classified<E: Classify + std::fmt::Display + ?Sized>(e: &E) -> Self {
        let code = e.code();
        let status = code.status();
        let message = match generic_message(e.kind(), code) {
            Some(generic) => {
                if e.kind() == ErrorKind::Internal {
                    tracing::error!(error = %e, code = code.as_str(), "internal error");
                } else {
                    tracing::warn!(error = %e, code = code.as_str(), "infrastructure error");
                }
                generic.to_string()
            }
            None => e.to_string(),
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
        let body = serde_json::to_vec(&ErrorBody {
            error: ErrorDetail {
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

/// The message sent instead of the error's own text, for errors whose detail is the gateway's business:
/// `None` when the error's text is for the client.
fn generic_message(kind: ErrorKind, code: Code) -> Option<&'static str> {
    match code {
        Code::DatabaseUnavailable => Some("database unavailable"),
        Code::RedisUnavailable => Some("cache backend unavailable"),
        Code::LockTimeout | Code::LockUnavailable | Code::LockLost => {
            Some("coordination lock unavailable")
        }
        _ if kind == ErrorKind::Internal => Some("internal error"),
        _ => None,
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::lock::LockError;
    use crate::redis::RedisError;
    use crate::store::StoreError;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Maps `e` inside a request span, returning the client's message and the log written.
    fn mapped<E: Classify + std::fmt::Display>(e: &E) -> (ApiError, String) {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let err = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "req-42");
            let _g = span.enter();
            ApiError::from_classified(e)
        });
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        (err, text)
    }

    #[test]
    fn infrastructure_failures_answer_their_code_and_log_the_detail_with_the_request_id() {
        let cases = [
            (
                mapped(&StoreError::from(sqlx::Error::PoolTimedOut)),
                Code::DatabaseUnavailable,
                "pool timed out",
            ),
            (
                mapped(&LockError::Timeout {
                    name: "GET_LOCK(maple:maple_prod:likes-sync)".into(),
                    waited_ms: 5000,
                }),
                Code::LockTimeout,
                "GET_LOCK(maple:maple_prod:likes-sync)",
            ),
            (
                mapped(&RedisError::Unavailable(
                    "READONLY You can't write against a read only replica".into(),
                )),
                Code::RedisUnavailable,
                "READONLY",
            ),
            (
                mapped(&StoreError::Query(sqlx::Error::Protocol(
                    "SELECT like_count FROM characters".into(),
                ))),
                Code::Internal,
                "SELECT like_count",
            ),
        ];
        for ((err, log), code, detail) in cases {
            assert_eq!(err.code, code);
            assert_eq!(err.status, code.status());
            let lower = err.message.to_lowercase();
            for leak in ["pool", "get_lock", "maple:", "select", "readonly", "sqlx"] {
                assert!(
                    !lower.contains(leak),
                    "{code}: {:?} leaks {leak}",
                    err.message
                );
            }
            assert!(log.contains(detail), "{code}: log lacks the detail: {log}");
            assert!(
                log.contains("req-42"),
                "{code}: log lacks the request id: {log}"
            );
        }
    }

    #[test]
    fn client_errors_keep_the_message_that_names_the_problem() {
        let (err, _) = mapped(&crate::ids::IdError::TooLong(13));
        assert_eq!(err.code, Code::BadRequest);
        assert_eq!(
            err.message,
            "character name must be at most 12 characters, got 13"
        );
    }
}
