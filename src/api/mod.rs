//! HTTP: routes, handlers, inbound protection layers, the error mapping, operational endpoints.
//!
//! Contract: handlers validate input (names, presets, options) before any I/O and call services; they hold
//! no business logic. Every response carries `x-request-id` (the client's, when it sent a sane one);
//! every error response has the JSON shape of [`error::ApiError`]; data responses carry
//! `x-data-source: Data based on NEXON Open API` and the caching headers of [`http_cache`] (`ETag`,
//! `Cache-Control`, `Age`, `Cache-Status`; a matching `If-None-Match` → 304); like and admin answers carry
//! `Cache-Control: private, no-store`. A 405 lists the route's methods in `Allow`; every GET route answers
//! HEAD with the GET's headers and no body. Unknown routes → 404 JSON; bodies over 64 KiB → 413;
//! overload → 503 `OVERLOADED` with `Retry-After` (load-shed, answered without queueing; the health probes and
//! `/metrics` are exempt); a request running
//! longer than the request timeout → 503 `TIMEOUT`-coded error.
//!
//! Layer order (outermost first): [`middleware::InboundLayer`] (request id, load-shed at the concurrency
//! limit, body limit, timeout, HTTP metrics, error re-rendering, in one layer) → router ([`Api`]); the
//! shutdown gate wraps it all (`app.rs`). These layers wrap the router once, not each route. There is no
//! compression layer: data bodies are stored gzip-compressed and sent as stored.

mod admin;
mod characters;
mod client_limit;
pub mod error;
pub mod gate;
mod health;
pub mod http_cache;
mod likes;
mod middleware;
mod openapi;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};
use metrics_exporter_prometheus::PrometheusHandle;

pub use error::ApiError;

use crate::characters::CharacterService;
use crate::error::Code;
use crate::likes::LikeService;
use crate::nexon::NexonClient;
pub use crate::nexon::{DATA_SOURCE_SIMULATED, DATA_SOURCE_VALUE, UpstreamMode};
use crate::pipeline::Pipeline;
use crate::redis::RedisHandle;
use crate::store::Store;

/// The header every data response carries.
pub const DATA_SOURCE_HEADER: HeaderName = HeaderName::from_static("x-data-source");
/// `HIT`, `MISS` or `STALE` on data responses.
pub const CACHE_HEADER: HeaderName = HeaderName::from_static("x-cache");
/// `L1` or `L2` on hits.
pub const CACHE_TIER_HEADER: HeaderName = HeaderName::from_static("x-cache-tier");
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Whether the instance can serve: false while starting, while start-up recovery has files left to
/// apply (it runs in the background, the port already serving), and once shutdown began.
#[derive(Debug, Default)]
pub struct Readiness {
    started: AtomicBool,
    recovering: AtomicBool,
    shutting_down: AtomicBool,
}

impl Readiness {
    /// Start-up recovery has files (or migrations) waiting for the database.
    pub fn mark_recovering(&self) {
        self.recovering.store(true, Ordering::SeqCst);
    }
    /// Every start-up file is applied (or quarantined).
    pub fn mark_recovered(&self) {
        self.recovering.store(false, Ordering::SeqCst);
        if self.is_ready() {
            metrics::gauge!(crate::telemetry::READY).set(1.0);
        }
    }
    pub fn is_recovering(&self) -> bool {
        self.recovering.load(Ordering::SeqCst)
    }
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
        metrics::gauge!(crate::telemetry::READY).set(if self.is_ready() { 1.0 } else { 0.0 });
    }
    pub fn mark_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        metrics::gauge!(crate::telemetry::READY).set(0.0);
    }
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
    pub fn is_ready(&self) -> bool {
        self.started.load(Ordering::SeqCst) && !self.is_recovering() && !self.is_shutting_down()
    }
}

/// Everything the handlers can reach.
pub struct Services {
    pub instance_id: String,
    pub started_at: Instant,
    pub readiness: Readiness,
    pub store: Store,
    pub nexon: NexonClient,
    pub upstream_mode: UpstreamMode,
    pub metrics: PrometheusHandle,
    /// Cube table load report for `/health/ready` (version, groups over 1).
    pub table_status: serde_json::Value,
    pub redis: Option<RedisHandle>,
    pub pipeline: Arc<Pipeline>,
    /// Responses with a 5xx status since start (drills report the difference).
    pub server_errors: std::sync::atomic::AtomicU64,
    /// Handles of the per-request HTTP metrics (the request middleware records into them).
    pub http_metrics: crate::telemetry::HttpMetrics,
    /// The operator API's bearer token; `None` = no admin routes.
    pub admin_token: Option<crate::config::Secret>,
    pub characters: Arc<CharacterService>,
    pub likes: LikeService,
}

/// Handler state: cheap to clone.
pub type AppState = Arc<Services>;

/// Tunables of the inbound layers.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub max_concurrency: usize,
    pub request_timeout: Duration,
    /// Requests per second per client on the data routes (0 = no limit).
    pub client_rps: u32,
    /// Peers whose `X-Forwarded-For` and `x-api-client` name the client.
    pub trusted_proxies: Vec<crate::config::IpNet>,
}

/// The served API: the inbound layer (which also caps request bodies) around the routes. The layer wraps
/// the router once instead of each route (`Router::layer` would box and clone it per route and per
/// request; see `middleware`), so it finds a request's route template itself
/// (`middleware::RouteTemplates`).
pub type Api = middleware::InboundService<Router>;

/// A router that records the template of each route it registers, for the inbound layer's route label
/// (templates and routes come from the same calls, so they cannot disagree).
struct Routes {
    router: Router<AppState>,
    templates: Vec<&'static str>,
    /// Templates whose answers are `Cache-Control: private, no-store` (per caller, or state-changing).
    private: Vec<&'static str>,
}

impl Routes {
    fn new() -> Self {
        Routes {
            router: Router::new(),
            templates: Vec::new(),
            private: Vec::new(),
        }
    }

    fn route(mut self, template: &'static str, method_router: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(template, method_router);
        self.templates.push(template);
        self
    }

    /// Marks every route registered so far as private (`Cache-Control: private, no-store`).
    fn private(mut self) -> Self {
        self.private = self.templates.clone();
        self
    }

    fn layer_each<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.router = self.router.layer(layer);
        self
    }

    fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.templates.extend(other.templates);
        self.private.extend(other.private);
        self
    }
}

/// Builds the served API: the routes and, around them, the inbound layer.
pub fn router(state: AppState, limits: &HttpLimits) -> Api {
    // Data routes (per-client rate limit applies to these only).
    let mut data = Routes::new()
        .route(
            "/api/v4/characters/{name}/expectation",
            get(characters::expectation),
        )
        .route(
            "/api/v4/characters/{name}/expectation/preset/{n}",
            get(characters::expectation_preset),
        )
        .route(
            "/api/v4/characters/{name}/expectation/recalculate",
            post(characters::recalculate),
        )
        .route(
            "/api/v4/characters/{name}/equipment",
            get(characters::equipment),
        )
        .route("/api/v1/characters/{name}", get(characters::basic))
        .merge(
            Routes::new()
                .route(
                    "/api/v2/characters/{name}/like",
                    post(likes::like).get(likes::status),
                )
                .private(),
        );
    if let Some(limiter) = client_limit::ClientLimiter::new(limits.client_rps) {
        data = data.layer_each(axum::middleware::from_fn_with_state(
            limiter.trusting(&limits.trusted_proxies),
            client_limit::limit,
        ));
    }
    let mut routes = Routes::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .merge(data);
    if state.admin_token.is_some() {
        let admin = Routes::new()
            .route("/admin/status", get(admin::status))
            .route("/admin/cache/invalidate/{name}", post(admin::invalidate))
            .route("/admin/drills/redis-failover", post(admin::redis_failover))
            .route(
                "/admin/drills/upstream-outage",
                post(admin::upstream_outage),
            )
            .route("/admin/breakers/nexon/{action}", post(admin::breaker))
            .private()
            .layer_each(axum::middleware::from_fn_with_state(
                state.clone(),
                admin::auth,
            ));
        routes = routes.merge(admin);
    }
    let templates = middleware::RouteTemplates::new(&routes.templates, &routes.private);
    let router = routes.router.fallback(not_found).with_state(state.clone());

    let inbound = middleware::InboundLayer::new(
        state,
        templates,
        limits.max_concurrency,
        limits.request_timeout,
    );
    tower::Layer::layer(&inbound, router)
}

async fn not_found() -> impl IntoResponse {
    ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, "no such route")
}
