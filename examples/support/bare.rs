//! The throughput baseline shared by `examples/bare_server.rs` (served over TCP for `loadtest/bench.sh`) and
//! `benches/http.rs` (driven in process): a bare axum router answering every request with the same bytes and
//! headers the gateway sends for a warm L1 hit (a stored gzip body), and nothing else — no middleware, no
//! cache lookup, no pipeline.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use maple_gateway::api::{CACHE_HEADER, DATA_SOURCE_HEADER, DATA_SOURCE_VALUE};

/// A router whose fallback answers `body` (gzip) with the headers of a gateway hit.
pub fn router(body: Bytes) -> Router {
    Router::new().fallback(move || {
        let body = body.clone();
        async move {
            let mut r = Response::new(Body::from(body));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            h.insert(
                DATA_SOURCE_HEADER,
                HeaderValue::from_static(DATA_SOURCE_VALUE),
            );
            h.insert(CACHE_HEADER, HeaderValue::from_static("HIT"));
            r
        }
    })
}
