//! Stands in for `axum` in the fuzz build: `src/error.rs` only uses `axum::http::StatusCode`, and the real
//! axum would pull the gateway's whole server stack into the instrumented build.
pub use http;
