//! The outermost request middleware: request id, HTTP metrics, and JSON rendering of every error.
//!
//! Contract: each response gets `x-request-id` — the client's value when it is 1–64 visible ASCII
//! characters, otherwise a fresh random id. An error produced by a handler ([`ApiError`]) is re-rendered with
//! that id; a bare error produced by a tower layer (413 from the body limit, …) is turned into the JSON error
//! shape, so clients only ever see one error format. Metrics use the matched route template, never the raw
//! path (bounded cardinality).

use std::time::Instant;

use axum::BoxError;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, PendingError};
use crate::telemetry;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn sane_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// The method as a `'static` label (no allocation per request); methods the API does not route are `other`.
fn static_method(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// 16 random lowercase hex digits.
fn fresh_id() -> String {
    hex::encode(rand::random::<u64>().to_be_bytes())
}

pub async fn request_context(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_id)
        .unwrap_or_else(fresh_id);
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |m| m.as_str());
    let method = static_method(req.method());

    let span = tracing::info_span!("request", request_id = %id, method = method, route = %route);
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;

    if let Some(PendingError(err)) = resp.extensions_mut().remove::<PendingError>() {
        resp = err.into_response_with_id(&id);
    } else if resp.status().is_client_error() || resp.status().is_server_error() {
        let is_json = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if !is_json {
            resp = bare_error(resp.status()).into_response_with_id(&id);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if resp.status().is_server_error() {
        state
            .server_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    state.http_metrics.record(
        route,
        method,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

fn bare_error(status: StatusCode) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            metrics::counter!(telemetry::HTTP_REJECTED_TOTAL, "reason" => "body_too_large")
                .increment(1);
            ApiError::new(status, "PAYLOAD_TOO_LARGE", "request body exceeds 64 KiB")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(status, "METHOD_NOT_ALLOWED", "method not allowed")
        }
        StatusCode::NOT_FOUND => ApiError::not_found("not found"),
        s if s.is_client_error() => ApiError::new(
            s,
            "BAD_REQUEST",
            s.canonical_reason().unwrap_or("bad request"),
        ),
        s => ApiError::new(s, "INTERNAL", s.canonical_reason().unwrap_or("error")),
    }
}

/// Turns the errors of the fallible tower layers (load-shed, timeout) into responses.
pub async fn handle_layer_error(err: BoxError) -> Response {
    if err.is::<tower::load_shed::error::Overloaded>() {
        metrics::counter!(telemetry::HTTP_REJECTED_TOTAL, "reason" => "overloaded").increment(1);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "OVERLOADED",
            "server is overloaded, retry shortly",
        )
        .with_retry_after(1)
        .into_response();
    }
    if err.is::<tower::timeout::error::Elapsed>() {
        metrics::counter!(telemetry::HTTP_REJECTED_TOTAL, "reason" => "timeout").increment(1);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            "request took too long",
        )
        .with_retry_after(1)
        .into_response();
    }
    tracing::error!(error = %err, "unhandled layer error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
    .into_response()
}
