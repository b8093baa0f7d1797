//! The operator API under `/admin/*`: status, cache invalidation, drills.
//!
//! Contract: the routes exist only when `MAPLE_ADMIN_TOKEN` is configured. Every request needs
//! `Authorization: Bearer <token>`: missing → 401, wrong → 403; the comparison takes the same time whatever
//! the bytes (no early exit), and the token is never echoed or logged. Every admin action is logged with its
//! caller (peer address, `x-api-client`, user agent).
//!
//! Drills (`/admin/drills/*`) answer when they are done, with their report; they are exempt from the
//! request timeout and bound themselves. Each runs as its own task owned by its request: if the request goes
//! away (the client disconnects) the drill is cancelled and restores what it changed — an outage drill closes
//! the breaker, a failover drill stops its probe writes, quits its Sentinel clients and deletes its probe keys.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::ApiError;
use crate::error::Code;
use crate::ids::CharacterName;
use crate::nexon::breaker::Force;
use crate::redis::sentinel;

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as usize;
    }
    diff == 0
}

fn caller(req: &Request) -> String {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".into());
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(64).collect::<String>())
            .unwrap_or_default()
    };
    format!(
        "peer={peer} client={:?} agent={:?}",
        h("x-api-client"),
        h("user-agent")
    )
}

/// Bearer-token check for every admin route.
pub async fn auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = s.admin_token.as_ref() else {
        return ApiError::not_found("no such route").into_response();
    };
    let who = caller(&req);
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => {
            tracing::warn!(caller = %who, path = %req.uri().path(), "admin request without a token");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                Code::Unauthorized,
                "missing bearer token",
            )
            .into_response()
        }
        Some(t) if !constant_time_eq(t.as_bytes(), token.expose().as_bytes()) => {
            tracing::warn!(caller = %who, path = %req.uri().path(), "admin request with a wrong token");
            ApiError::new(StatusCode::FORBIDDEN, Code::Forbidden, "wrong bearer token")
                .into_response()
        }
        Some(_) => {
            tracing::info!(caller = %who, method = %req.method(), path = %req.uri().path(), "admin action");
            next.run(req).await
        }
    }
}

/// `GET /admin/status`
#[utoipa::path(get, tag = "admin", path = "/admin/status", summary = "Instance status for operators",
    security(("bearer" = [])), responses(super::openapi::AdminStatusResponses))]
pub async fn status(State(s): State<AppState>) -> impl IntoResponse {
    let database_up = tokio::time::timeout(Duration::from_secs(1), s.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = match &s.redis {
        None => json!({"mode": "disabled"}),
        Some(r) => json!({
            "mode": r.mode(),
            "connected": tokio::time::timeout(Duration::from_secs(1), r.ping()).await.is_ok_and(|r| r.is_ok()),
            "server": r.connected_server(),
            "master": r.master().info(),
        }),
    };
    let (l1_entries, l1_bytes) = s.characters.cache().l1_usage().await;
    let stats = s.characters.cache().stats();
    let by_kind: serde_json::Map<String, serde_json::Value> = s
        .characters
        .cache()
        .l1_breakdown()
        .await
        .into_iter()
        .map(|(kind, entries, bytes)| (kind, json!({"entries": entries, "bytes": bytes})))
        .collect();
    Json(json!({
        "instance_id": s.instance_id,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started_at.elapsed().as_secs(),
        "ready": s.readiness.is_ready(),
        "upstream_mode": s.upstream_mode,
        "redis": redis,
        "database": {"backend": s.store.backend(), "up": database_up},
        "cache": {"l1_entries": l1_entries, "l1_bytes": l1_bytes, "l1_by_kind": by_kind, "requests": stats},
        "cube_table": s.table_status,
        "upstream": s.nexon.status(),
        "likes": {"buffered": s.likes.buffered()},
        "lock_tier": s.likes.locks().preferred_tier().as_str(),
        "http_5xx_total": s.server_errors.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

#[derive(serde::Deserialize)]
pub struct SecondsParam {
    seconds: Option<u64>,
}

fn seconds(q: &SecondsParam, default: u64) -> Result<u64, ApiError> {
    match q.seconds.unwrap_or(default) {
        n @ 1..=3600 => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "seconds must be 1..=3600, got {n}"
        ))),
    }
}

/// `POST /admin/breakers/nexon/{open|close|reset}` (`open` takes `?seconds=N`, default 60).
#[utoipa::path(post, tag = "admin", path = "/admin/breakers/nexon/{action}",
    summary = "Force the Nexon circuit breaker open (for ?seconds, default 60), closed, or back to automatic",
    security(("bearer" = [])), params(super::openapi::BreakerParams), responses(super::openapi::BreakerResponses))]
pub async fn breaker(
    State(s): State<AppState>,
    Path(action): Path<String>,
    Query(q): Query<SecondsParam>,
) -> Result<impl IntoResponse, ApiError> {
    let cmd = match action.as_str() {
        "open" => Force::Open(Duration::from_secs(seconds(&q, 60)?)),
        "close" => Force::Close,
        "reset" => Force::Reset,
        other => {
            return Err(ApiError::bad_request(format!(
                "action must be open, close or reset, got {other:?}"
            )));
        }
    };
    s.nexon.breaker().force(cmd);
    Ok(Json(json!({"breaker": s.nexon.breaker().status()})))
}

/// Runs a drill as its own task, owned by the request: if the request goes away (the client disconnects)
/// the drop guard cancels the drill, which restores what it changed before its task ends.
async fn owned_drill<T, F, Fut>(drill: F) -> Result<T, ApiError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    T: Send + 'static,
{
    let cancel = CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    tokio::spawn(drill(cancel)).await.map_err(|e| {
        tracing::error!(error = %e, "drill task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            "the drill failed",
        )
    })?
}

/// Closes the Nexon breaker when dropped: an outage drill ends with the breaker closed, however it ends.
struct CloseBreaker(AppState);

impl Drop for CloseBreaker {
    fn drop(&mut self) {
        self.0.nexon.breaker().force(Force::Close);
    }
}

/// What an outage drill saw while the breaker was open.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OutageReport {
    /// How long the breaker was held open.
    seconds: u64,
    /// Stale copies served meanwhile.
    stale_served: u64,
    hits: u64,
    misses: u64,
    /// Answers with a 5xx status meanwhile.
    errors_5xx: u64,
    /// Upstream calls the open breaker refused.
    breaker_rejections: u64,
    /// Calls counted against the upstream rate budget meanwhile.
    upstream_calls: u64,
    /// The breaker's state once the drill closed it.
    breaker_after: crate::nexon::breaker::BreakerState,
}

/// `POST /admin/cache/invalidate/{name}`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Invalidated {
    /// The character whose keys were dropped.
    invalidated: String,
}

/// `POST /admin/drills/upstream-outage?seconds=N` — forces the breaker open for N seconds (clients get stale
/// copies or fast 503s), then closes it, and reports what was served meanwhile. Exempt from the request
/// timeout; abandoned by its request, it closes the breaker at once.
#[utoipa::path(post, tag = "admin", path = "/admin/drills/upstream-outage",
    summary = "Outage drill: the breaker forced open for ?seconds (default 10), then a report of what was served",
    security(("bearer" = [])), params(super::openapi::OutageParams), responses(super::openapi::OutageResponses))]
pub async fn upstream_outage(
    State(s): State<AppState>,
    Query(q): Query<SecondsParam>,
) -> Result<impl IntoResponse, ApiError> {
    let secs = seconds(&q, 10)?;
    let report = owned_drill(move |cancel| async move {
        let cache0 = s.characters.cache().stats();
        let up0 = s.nexon.status();
        let errors0 = s.server_errors.load(std::sync::atomic::Ordering::Relaxed);
        let restore = CloseBreaker(s.clone());
        s.nexon
            .breaker()
            .force(Force::Open(Duration::from_secs(secs)));
        let abandoned = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(secs)) => false,
            _ = cancel.cancelled() => true,
        };
        drop(restore);
        if abandoned {
            tracing::warn!(
                seconds = secs,
                "upstream outage drill abandoned by its request: breaker closed"
            );
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Internal,
                "drill abandoned",
            ));
        }
        let cache1 = s.characters.cache().stats();
        let up1 = s.nexon.status();
        let errors1 = s.server_errors.load(std::sync::atomic::Ordering::Relaxed);
        Ok(OutageReport {
            seconds: secs,
            stale_served: cache1.stale - cache0.stale,
            hits: (cache1.hit_l1 + cache1.hit_l2) - (cache0.hit_l1 + cache0.hit_l2),
            misses: cache1.miss - cache0.miss,
            errors_5xx: errors1 - errors0,
            breaker_rejections: up1.breaker.rejected_total - up0.breaker.rejected_total,
            upstream_calls: up1.rate.used_today.saturating_sub(up0.rate.used_today),
            breaker_after: up1.breaker.state,
        })
    })
    .await?;
    tracing::warn!(?report, "upstream outage drill finished");
    Ok(Json(report))
}

/// `POST /admin/cache/invalidate/{name}`: drops the character's keys from L2 (Redis) and its L1 copies in
/// every instance (pub/sub).
#[utoipa::path(post, tag = "admin", path = "/admin/cache/invalidate/{name}",
    summary = "Drop a character's cached data on every instance",
    security(("bearer" = [])), params(super::openapi::NamePath), responses(super::openapi::InvalidateResponses))]
pub async fn invalidate(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let name = CharacterName::parse(&raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    s.characters.invalidate(&name).await;
    Ok(Json(Invalidated {
        invalidated: name.as_str().to_owned(),
    }))
}

/// How long a failover drill waits for the switch.
const DRILL_SWITCH_WAIT: Duration = Duration::from_secs(15);

/// `POST /admin/drills/redis-failover` — asks a Sentinel to fail the master over and reports what the
/// gateway saw for both write classes (`lost_writes`: the durable probe, must be 0; `lost_disposable_writes`:
/// the plain probe, explained in `note`; see [`sentinel::failover_drill`]). Bounded: about 60 s at most.
/// Exempt from the request timeout; abandoned by its request, it stops its probe writes and deletes the probe
/// keys (after the switch, so the delete reaches the new master).
#[utoipa::path(post, tag = "admin", path = "/admin/drills/redis-failover",
    summary = "Failover drill: a Sentinel fails the Redis master over; the report says what the gateway saw",
    security(("bearer" = [])), responses(super::openapi::FailoverResponses))]
pub async fn redis_failover(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let Some(r) = &s.redis else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::NotApplicable,
            "Redis is not configured",
        ));
    };
    let Some(ss) = r.sentinel_settings() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::NotApplicable,
            "Redis is not in Sentinel mode",
        ));
    };
    let (client, master) = (r.client().clone(), r.master().clone());
    let durable = r.durable_shared();
    let ss = ss.clone();
    let report = owned_drill(move |cancel| async move {
        sentinel::failover_drill(
            &client,
            durable,
            &ss.sentinels,
            &ss.master,
            ss.password.clone(),
            &master,
            DRILL_SWITCH_WAIT,
            &cancel,
        )
        .await
        .map_err(|e| ApiError::from_classified(&e))
    })
    .await?;
    tracing::warn!(?report, "redis failover drill finished");
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abc", b"abcdef"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
        // Lengths differing by a multiple of 256 must not compare equal.
        assert!(!constant_time_eq(&[0u8; 256], b""));
    }
}
