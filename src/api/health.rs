//! Operational endpoints: liveness, readiness (per dependency), Prometheus metrics.
//!
//! Contract: `/health/live` is 200 while the process runs — from the moment the port is bound, which is
//! before start-up recovery (so a liveness probe never kills an instance whose recovery waits for the
//! database). `/health/ready` is 200 when the instance can serve (started, start-up recovery done, not
//! shutting down) — also while Redis or the database is down, since the gateway degrades around them —
//! and 503 with `"status"` `starting`, `recovering` (backup files or journal segments of an earlier process
//! are not all in the database yet; reads are served meanwhile) or `shutting_down`; its JSON lists each dependency as
//! `up`, `down` or `disabled` — the upstream as `up`, `degraded` (breaker half-open), `down` (breaker open),
//! `maintenance` or `key_refused` (calls held off), with the client's breaker, hold, rate-budget and
//! retry-budget detail under `upstream` (stale copies are served meanwhile, so none of these makes the
//! instance unready). Probes of dependencies are bounded by a short timeout so a hung dependency
//! cannot hang the readiness probe.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// The body of `/health/live`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Live {
    #[schema(value_type = String, examples("live"))]
    status: &'static str,
}

#[utoipa::path(get, tag = "operations", path = "/health/live", summary = "Liveness",
    responses((status = 200, description = "the process runs", body = Live)))]
pub async fn live() -> impl IntoResponse {
    Json(Live { status: "live" })
}

#[utoipa::path(get, tag = "operations", path = "/health/ready",
    summary = "Readiness, with each dependency up/down/disabled and the upstream client's state",
    responses(
        (status = 200, description = "ready (also while Redis or the database is down: the gateway degrades around them)", body = Object),
        (status = 503, description = "starting or shutting down", body = Object),
    ))]
pub async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    let database = match tokio::time::timeout(PROBE_TIMEOUT, s.store.ping()).await {
        Ok(Ok(())) => "up",
        _ => "down",
    };
    let redis = match &s.redis {
        None => "disabled",
        Some(r) => match tokio::time::timeout(PROBE_TIMEOUT, r.ping()).await {
            Ok(Ok(())) => "up",
            _ => "down",
        },
    };
    let upstream = s.nexon.status();
    let (status, label) = if s.readiness.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting_down")
    } else if s.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else if s.readiness.is_recovering() {
        (StatusCode::SERVICE_UNAVAILABLE, "recovering")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    };
    let (l1_entries, l1_bytes) = s.characters.cache().l1_usage().await;
    let body = json!({
        "status": label,
        "instance_id": s.instance_id,
        "uptime_s": s.started_at.elapsed().as_secs(),
        "dependencies": {
            "upstream": upstream.health,
            "redis": redis,
            "database": database,
        },
        "upstream_mode": s.upstream_mode,
        "upstream": upstream,
        "database_backend": s.store.backend(),
        "redis_mode": s.redis.as_ref().map(|r| r.mode()),
        "redis_server": s.redis.as_ref().and_then(|r| r.connected_server()),
        "redis_master": s.redis.as_ref().map(|r| r.master().info()),
        "cube_table": s.table_status,
        "cache": {"l1_entries": l1_entries, "l1_bytes": l1_bytes},
    });
    (status, Json(body))
}

#[utoipa::path(get, tag = "operations", path = "/metrics", summary = "Prometheus metrics",
    responses((status = 200, description = "text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    // The hot paths' counters and histograms are batched per thread: hand them over first.
    crate::telemetry::flush();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}
