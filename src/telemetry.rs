//! Tracing subscriber, the Prometheus metrics recorder, and the names of every metric the gateway exports.
//!
//! Contract: [`init_tracing`] installs the global subscriber at most once (later calls are no-ops, so tests
//! that build several applications in one process are fine). [`metrics_handle`] installs the Prometheus
//! recorder at most once per process and returns a handle that renders the text exposition format; every
//! application in the process shares it. Metric names live here as constants so that dashboards, docs and
//! code agree; labels are bounded-cardinality (never a character name).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// HTTP requests served, by route template, method and status.
pub const HTTP_REQUESTS_TOTAL: &str = "maple_http_requests_total";
/// HTTP request latency in seconds, by route template and method.
pub const HTTP_REQUEST_DURATION: &str = "maple_http_request_duration_seconds";
/// Requests rejected before reaching a handler, by reason (`overloaded`, `timeout`, `body_too_large`).
pub const HTTP_REJECTED_TOTAL: &str = "maple_http_rejected_total";
/// Cache lookups by tier and result (`hit`, `miss`, `stale`).
pub const CACHE_REQUESTS_TOTAL: &str = "maple_cache_requests_total";
/// Upstream calls by endpoint and outcome.
pub const UPSTREAM_CALLS_TOTAL: &str = "maple_upstream_calls_total";
/// Upstream call latency in seconds, by endpoint.
pub const UPSTREAM_CALL_DURATION: &str = "maple_upstream_call_duration_seconds";
/// 1 when the loaded cube table has groups summing over 1 (a data error), per table version.
pub const CUBE_TABLE_ERRORS: &str = "maple_cube_table_error_groups";
/// 1 while the application is ready, 0 while starting or shutting down.
pub const READY: &str = "maple_ready";

/// Installs the global tracing subscriber (idempotent). Filter from `RUST_LOG`, default `info`.
pub fn init_tracing(format: LogFormat) {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,fred=warn,hyper=warn"));
        let registry = tracing_subscriber::registry().with(filter);
        let result = match format {
            LogFormat::Json => registry
                .with(fmt::layer().json().with_current_span(true))
                .try_init(),
            LogFormat::Text => registry.with(fmt::layer().with_target(true)).try_init(),
        };
        // Another subscriber (e.g. a test harness) may already be installed; that one wins.
        let _ = result;
    });
}

/// The process-wide Prometheus handle, installing the recorder on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ])
                .expect("static bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => handle,
                // A recorder was installed by someone else: render our own (empty) one rather than panic.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_is_installed_once_and_renders_counters() {
        let h1 = metrics_handle();
        let h2 = metrics_handle();
        metrics::counter!("maple_telemetry_selftest_total").increment(3);
        let text = h2.render();
        assert!(text.contains("maple_telemetry_selftest_total 3"), "{text}");
        assert!(h1.render().contains("maple_telemetry_selftest_total"));
    }
}
