//! The inbound layer ([`InboundLayer`]) around the router: request id, load shedding with a concurrency
//! limit, the request body limit, the per-request timeout, HTTP metrics, and JSON rendering of every error.
//!
//! Contract: each response gets `x-request-id` — the client's value when it is 1–64 visible ASCII
//! characters, otherwise a fresh random id. A request that finds all `max_concurrency` places taken is
//! answered at once with 503 `OVERLOADED` and `Retry-After: 1` (nothing queues) — except the probes
//! ([`PROBE_ROUTES`]: `/health/live`, `/health/ready`, `/metrics`), which take no place; one that runs longer than
//! the timeout is answered 503 `TIMEOUT` with `Retry-After: 1` and its handler future is dropped — except the
//! operator drills ([`UNTIMED_ROUTES`]), which bound themselves. A body
//! declared (`Content-Length`) over 64 KiB is answered 413 without being read; a body without a length is
//! capped at 64 KiB (reading past it fails, and the extractor answers 413). An error
//! produced by a handler ([`ApiError`]) is re-rendered with the request id; a bare error produced by an
//! inner layer or by axum (405, a rejection, …) is turned into the JSON error shape, so clients only ever
//! see one error format; answers of private routes (likes, admin) get `Cache-Control: private, no-store`;
//! a 405 keeps the `Allow` header listing the route's methods (`GET` routes also
//! answer `HEAD`: the router runs the GET handler and sends its headers without the body). Metrics use the route template the request is routed to ([`RouteTemplates`],
//! `unmatched` for none), never the raw path (bounded cardinality).
//!
//! Every response is logged as one access-log event (tracing target `access`, INFO): method, route template,
//! status, duration, request id and cache status (`x-cache`, `-` for none); never the raw path or query
//! string (no secrets, bounded lines). `RUST_LOG=…,access=off` silences it. A panic in routing or in a
//! handler is caught and answered 500 `INTERNAL` in the JSON error shape, counted in
//! `maple_http_panics_total{route}` and logged at ERROR with the request id.
//!
//! [`accepts_gzip`] is the response-encoding negotiation the data handlers use (RFC 9110 `Accept-Encoding`:
//! q-values, `*`, `identity`), a pure function over the header's lines.
//!
//! Why one hand-written layer around the router instead of `from_fn` plus tower's `HandleError`/`LoadShed`/
//! `ConcurrencyLimit`/`Timeout`/`RequestBodyLimit`, and instead of `Router::layer`: `Router::layer` wraps
//! every route, and axum clones a route's whole service stack (a boxed clone per layer) and boxes a future
//! per layer for every request; tower's layers added a semaphore future and their own boxes. This layer
//! wraps the router once, calls it synchronously in `call` (routing happens there, so the router is not
//! cloned per request) and boxes one future. The price: the route template is not known from axum's
//! `MatchedPath` (set inside the router), so the layer matches the path against the router's templates
//! itself, with the same matcher (`matchit`), from the list the router was built from (`api::router`).
//!
//! Two more choices for the warm hit, which most requests are: the concurrency limit is one atomic counter
//! (requests never wait for a permit, so a semaphore's wait queue — and the lock its release takes — buys
//! nothing), and the timeout's timer is armed only when the request first has to wait: a request answered
//! on its first poll (a cache hit) never touches the runtime's timer. The timeout therefore counts from that
//! first wait; the first poll itself runs no blocking work (handlers hand CPU-heavy steps to the blocking
//! pool).

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::FutureExt;
use futures::future::BoxFuture;
use tower::{Layer, Service};

use super::error::{ApiError, PendingError};
use crate::error::Code;
use crate::telemetry;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The client's request id when it is sane (1–64 visible ASCII characters), as it came (a cheap clone).
fn sane_id(v: &HeaderValue) -> Option<HeaderValue> {
    let b = v.as_bytes();
    (!b.is_empty() && b.len() <= 64 && b.iter().all(|b| b.is_ascii_graphic())).then(|| v.clone())
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
fn fresh_id() -> HeaderValue {
    let mut hex = [0u8; 16];
    hex::encode_to_slice(rand::random::<u64>().to_be_bytes(), &mut hex).expect("16 hex digits");
    HeaderValue::from_bytes(&hex).expect("hex digits are a valid header value")
}

/// Routes answered without a concurrency permit (the timeout still applies): cheap, bounded, and needed most
/// while the instance is overloaded.
pub const PROBE_ROUTES: [&str; 3] = ["/health/live", "/health/ready", "/metrics"];

/// Content negotiation of the response encoding (RFC 9110 §12.5.3): whether a response may be sent gzip-encoded
/// to a request whose `Accept-Encoding` field lines are `lines` (no field: no gzip, the body goes as it is).
///
/// Codings compare case-insensitively (`x-gzip` is `gzip`); the weight parameter is `q` or `Q` with a
/// qvalue (`0`–`1`, at most three decimals; an element with a malformed weight is ignored); a coding not
/// listed takes the weight of `*`, if listed. gzip is chosen when its weight is above zero and `identity`
/// is not listed with a higher one. So `gzip;q=0`, `gzip;q=0.0`, `gzip;Q=0` and `gzip;q=0, *` refuse gzip.
pub fn accepts_gzip<'a>(lines: impl IntoIterator<Item = &'a str>) -> bool {
    let (mut gzip, mut any, mut identity) = (None, None, None);
    for element in lines.into_iter().flat_map(|l| l.split(',')) {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut weight = Some(1000);
        for param in parts {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                weight = qvalue(value.trim());
            }
        }
        let Some(weight) = weight else { continue };
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding == "*" {
            &mut any
        } else if coding.eq_ignore_ascii_case("identity") {
            &mut identity
        } else {
            continue;
        };
        slot.get_or_insert(weight);
    }
    let gzip = gzip.or(any).unwrap_or(0);
    gzip > 0 && identity.is_none_or(|identity| identity <= gzip)
}

/// A qvalue in thousandths: `0` or `1`, optionally followed by `.` and up to three digits (only zeros
/// after a `1`); `None` when malformed.
fn qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac.bytes().chain(std::iter::repeat(b'0')).take(3);
    let frac = thousandths.fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}
/// Routes the request timeout does not apply to: operator drills, which last as long as they are asked to
/// and bound themselves (see `api::admin`).
pub const UNTIMED_ROUTES: [&str; 2] = [
    "/admin/drills/redis-failover",
    "/admin/drills/upstream-outage",
];

/// The route templates of the router the layer wraps, matched with the matcher axum routes with: the
/// template a request will be routed to (its metrics label, and whether it is a probe) is known before
/// routing.
pub struct RouteTemplates(matchit::Router<(&'static str, bool)>);

impl RouteTemplates {
    /// `private`: the templates whose answers get `Cache-Control: private, no-store`.
    ///
    /// # Panics
    /// When a template is not a valid route or is given twice (the router would panic on it as well).
    pub fn new(templates: &[&'static str], private: &[&'static str]) -> Self {
        let mut router = matchit::Router::new();
        for t in templates {
            router
                .insert(*t, (*t, private.contains(t)))
                .unwrap_or_else(|e| panic!("route template {t:?}: {e}"));
        }
        RouteTemplates(router)
    }

    /// The template `path` matches, or `unmatched`.
    #[cfg(test)]
    fn label(&self, path: &str) -> &'static str {
        self.route(path).0
    }

    /// The template `path` matches (or `unmatched`) and whether its answers are private.
    fn route(&self, path: &str) -> (&'static str, bool) {
        self.0.at(path).map_or(("unmatched", false), |m| *m.value)
    }
}

/// The layer; see the module documentation. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct InboundLayer {
    shared: Arc<Inbound>,
}

struct Inbound {
    state: super::AppState,
    templates: RouteTemplates,
    admission: Admission,
    timeout: Duration,
}

/// The concurrency limit: how many requests are being served, against the maximum. Never waits.
struct Admission {
    in_use: AtomicUsize,
    max: usize,
}

impl Admission {
    fn new(max: usize) -> Self {
        Admission {
            in_use: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a place, or `false` when all `max` are taken. A refused attempt counts for an instant and is
    /// taken back, so concurrent attempts near the limit may all be refused, but more than `max` are never
    /// admitted. Every `true` must be matched by one [`Admission::give_back`].
    fn try_admit(&self) -> bool {
        if self.in_use.fetch_add(1, Ordering::AcqRel) < self.max {
            true
        } else {
            self.in_use.fetch_sub(1, Ordering::AcqRel);
            false
        }
    }

    fn give_back(&self) {
        self.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InboundLayer {
    pub fn new(
        state: super::AppState,
        templates: RouteTemplates,
        max_concurrency: usize,
        timeout: Duration,
    ) -> Self {
        InboundLayer {
            shared: Arc::new(Inbound {
                state,
                templates,
                admission: Admission::new(max_concurrency),
                timeout,
            }),
        }
    }
}

impl<S> Layer<S> for InboundLayer {
    type Service = InboundService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InboundService {
            shared: self.shared.clone(),
            inner,
        }
    }
}

/// [`InboundLayer`] around the router.
#[derive(Clone)]
pub struct InboundService<S> {
    shared: Arc<Inbound>,
    inner: S,
}

impl<S> Service<Request> for InboundService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is decided per request (a permit or 503), never by making the caller wait.
        Poll::Ready(Ok(()))
    }

    /// Admission, the body limit and the inner service's `call` (routing) happen here, synchronously; the
    /// returned future only drives the routed request and finishes the response. So the inner service is
    /// not cloned per request (the router's future does not borrow it).
    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(sane_id)
            .unwrap_or_else(fresh_id);
        let (route, private) = self.shared.templates.route(req.uri().path());
        let method = static_method(req.method());
        let done = Done {
            started,
            id,
            route,
            method,
            private,
        };

        // Probes never take a place: an orchestrator that sees `/health/live` answer 503 under load would
        // restart the instance exactly when it is busiest, and metrics are wanted most then.
        let place = if PROBE_ROUTES.contains(&route) {
            Place::free(self.shared.clone())
        } else {
            match Place::try_admit(self.shared.clone()) {
                Ok(place) => place,
                Err(shared) => {
                    let resp = rejected(
                        "overloaded",
                        Code::Overloaded,
                        "server is overloaded, retry shortly",
                        done.id_str(),
                    );
                    return Box::pin(std::future::ready(Ok(shared.finish(resp, done))));
                }
            }
        };
        if declared_too_large(&req) {
            let resp =
                bare_error(StatusCode::PAYLOAD_TOO_LARGE).into_response_with_id(done.id_str());
            return Box::pin(std::future::ready(Ok(place.shared.finish(resp, done))));
        }
        let span = tracing::info_span!("request", request_id = %done.id_str(), method = method, route = %route);
        // A panic in routing or in the handler is caught here and answered 500, instead of resetting the
        // connection. Unwind safety: the request's own state is dropped with it; shared state the handler
        // touched is behind locks and atomics that stay consistent (a poisoned lock fails later calls loudly).
        let inner = &mut self.inner;
        let routed = std::panic::catch_unwind(AssertUnwindSafe(move || inner.call(cap_body(req))));
        let run = match routed {
            Ok(fut) => tracing::Instrument::instrument(fut, span),
            Err(panic) => {
                let resp = panicked(panic.as_ref(), &done);
                return Box::pin(std::future::ready(Ok(place.shared.finish(resp, done))));
            }
        };
        let untimed = UNTIMED_ROUTES.contains(&route);
        Box::pin(async move {
            let run = AssertUnwindSafe(run).catch_unwind();
            let finished = if untimed {
                Some(run.await)
            } else {
                within(place.shared.timeout, run).await
            };
            let resp = match finished {
                Some(Ok(Ok(resp))) => resp,
                Some(Ok(Err(never))) => match never {},
                Some(Err(panic)) => panicked(panic.as_ref(), &done),
                None => rejected(
                    "timeout",
                    Code::Timeout,
                    "request took too long",
                    done.id_str(),
                ),
            };
            Ok(place.shared.finish(resp, done))
        })
    }
}

/// What the response's finishing needs of its request.
struct Done {
    started: Instant,
    id: HeaderValue,
    route: &'static str,
    method: &'static str,
    /// The route's answers are `Cache-Control: private, no-store`.
    private: bool,
}

impl Done {
    fn id_str(&self) -> &str {
        self.id
            .to_str()
            .expect("visible ASCII, checked or generated in `call`")
    }
}

/// A request's place under the concurrency limit (none for the probes): given back when dropped, also when
/// the request's future is dropped unfinished.
struct Place {
    shared: Arc<Inbound>,
    admitted: bool,
}

impl Place {
    fn free(shared: Arc<Inbound>) -> Self {
        Place {
            shared,
            admitted: false,
        }
    }

    /// A place, or the layer back when all are taken.
    fn try_admit(shared: Arc<Inbound>) -> Result<Self, Arc<Inbound>> {
        if shared.admission.try_admit() {
            Ok(Place {
                shared,
                admitted: true,
            })
        } else {
            Err(shared)
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.admitted {
            self.shared.admission.give_back();
        }
    }
}

impl Inbound {
    /// Error re-rendering, the request id header, and the HTTP metrics, for every response.
    fn finish(&self, mut resp: Response, done: Done) -> Response {
        if let Some(PendingError(err)) = resp.extensions_mut().remove::<PendingError>() {
            resp = err.into_response_with_id(done.id_str());
        } else if resp.status().is_client_error() || resp.status().is_server_error() {
            let is_json = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if !is_json {
                // The re-rendered error keeps the `Allow` of a 405 (the methods the route answers).
                let allow = resp.headers_mut().remove(header::ALLOW);
                resp = bare_error(resp.status()).into_response_with_id(done.id_str());
                if let Some(allow) = allow {
                    resp.headers_mut().insert(header::ALLOW, allow);
                }
            }
        }
        if resp.status().is_server_error() {
            self.state
                .server_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let elapsed = done.started.elapsed();
        self.state.http_metrics.record(
            done.route,
            done.method,
            resp.status().as_u16(),
            elapsed.as_secs_f64(),
        );
        tracing::info!(
            target: "access",
            method = done.method,
            route = done.route,
            status = resp.status().as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            request_id = %done.id_str(),
            cache = resp
                .headers()
                .get(super::CACHE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            "request"
        );
        if done.private {
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(super::http_cache::PRIVATE_NO_STORE),
            );
        }
        resp.headers_mut().insert(REQUEST_ID_HEADER, done.id);
        resp
    }
}

/// Whether the request declares a body over [`super::MAX_BODY_BYTES`] (answered 413 without reading it).
fn declared_too_large(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > super::MAX_BODY_BYTES as u64)
}

/// Caps the body at [`super::MAX_BODY_BYTES`] for bodies without (or with a lying) length: reading past it
/// fails, and axum's extractors answer 413. A request without a body (most of them) is passed as it is.
fn cap_body(req: Request) -> Request {
    use axum::body::HttpBody;
    if req.body().is_end_stream() {
        return req;
    }
    req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, super::MAX_BODY_BYTES)))
}

/// Runs `run` to completion, or `None` when it has waited longer than `timeout`. Polled once before any
/// timer exists: a future that is ready at once never arms one (see the module documentation).
async fn within<F: Future>(timeout: Duration, run: F) -> Option<F::Output> {
    let mut run = std::pin::pin!(run);
    if let Poll::Ready(out) = futures::poll!(run.as_mut()) {
        return Some(out);
    }
    tokio::time::timeout(timeout, run).await.ok()
}

/// The answer to a request whose handler panicked: 500 `INTERNAL` in the JSON error shape, counted in
/// `maple_http_panics_total{route}` and logged at ERROR with the request id and the panic message.
fn panicked(panic: &(dyn std::any::Any + Send), done: &Done) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)");
    metrics::counter!(telemetry::HTTP_PANICS_TOTAL, "route" => done.route).increment(1);
    tracing::error!(
        request_id = %done.id_str(),
        method = done.method,
        route = done.route,
        panic = message,
        "request handler panicked; answered 500"
    );
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
        "internal error",
    )
    .into_response_with_id(done.id_str())
}

/// A request the layer turned away (`reason` is the `maple_http_rejected_total` label): 503 with `Retry-After: 1`.
fn rejected(reason: &'static str, code: Code, message: &str, id: &str) -> Response {
    metrics::counter!(telemetry::HTTP_REJECTED_TOTAL, "reason" => reason).increment(1);
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        .with_retry_after(1)
        .into_response_with_id(id)
}

fn bare_error(status: StatusCode) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            metrics::counter!(telemetry::HTTP_REJECTED_TOTAL, "reason" => "body_too_large")
                .increment(1);
            ApiError::new(status, Code::PayloadTooLarge, "request body exceeds 64 KiB")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(status, Code::MethodNotAllowed, "method not allowed")
        }
        StatusCode::NOT_FOUND => ApiError::not_found("not found"),
        s if s.is_client_error() => ApiError::new(
            s,
            Code::BadRequest,
            s.canonical_reason().unwrap_or("bad request"),
        ),
        s => ApiError::new(s, Code::Internal, s.canonical_reason().unwrap_or("error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_the_clients_when_sane_else_16_fresh_hex_digits() {
        let fresh = fresh_id();
        let s = fresh.to_str().unwrap();
        assert_eq!(s.len(), 16);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{s}"
        );
        assert_ne!(fresh_id(), fresh, "random");
        let ok = HeaderValue::from_static("abc-123");
        assert_eq!(sane_id(&ok), Some(ok));
        for bad in ["", "has space", &"x".repeat(65)] {
            assert_eq!(
                sane_id(&HeaderValue::from_str(bad).unwrap()),
                None,
                "{bad:?}"
            );
        }
        assert!(sane_id(&HeaderValue::from_str(&"y".repeat(64)).unwrap()).is_some());
    }

    #[test]
    fn gzip_negotiation_follows_the_accept_encoding_rules() {
        let cases: &[(&[&str], bool)] = &[
            (&[], false),
            (&[""], false),
            (&["gzip"], true),
            (&["GZIP"], true),
            (&["x-gzip"], true),
            (&["br, gzip;q=0.8"], true),
            (&["gzip;q=0.001"], true),
            (&["gzip;q=1"], true),
            (&["gzip;q=1.000"], true),
            (&["gzip ; q=0.5"], true),
            (&["*"], true),
            (&["*;q=0.1"], true),
            (&["deflate", "gzip"], true),
            (&["gzip, identity;q=0"], true),
            (&["gzip;q=0.5, identity;q=0.5"], true),
            (&["gzip;q=0"], false),
            (&["gzip;q=0.0"], false),
            (&["gzip;q=0.000"], false),
            (&["gzip;Q=0"], false),
            (&["gzip; q=0"], false),
            (&["gzip;q=0, *"], false),
            (&["*, gzip;q=0"], false),
            (&["gzip;q=0", "*"], false),
            (&["*;q=0"], false),
            (&["identity"], false),
            (&["deflate, br"], false),
            (&["gzip;q=0.5, identity"], false),
            (&["gzip;q=2"], false),
            (&["gzip;q=1.5"], false),
            (&["gzip;q=0.0001"], false),
            (&["gzip;q=abc"], false),
            (&["gzip;q="], false),
            (&["gzip;q=abc, *"], true),
        ];
        for (lines, want) in cases {
            assert_eq!(accepts_gzip(lines.iter().copied()), *want, "{lines:?}");
        }
    }

    /// A handler that panics (in its future, or while being routed) is answered 500 in the JSON error shape
    /// with the request id, counted, and the connection's service stays usable.
    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_in_the_json_error_shape() {
        use axum::body::Body;
        let log = Captured::default();
        let _log = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(log.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish(),
        );
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings::for_data_dir(dir.path());
        let app = crate::app::Application::build(settings).await.unwrap();
        let state = app.state().clone();
        let router = axum::Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    if rand::random::<u8>() < u8::MAX {
                        panic!("handler bug");
                    }
                    "lucky"
                }),
            )
            .route("/fine", axum::routing::get(|| async { "fine" }));
        let layer = InboundLayer::new(
            state.clone(),
            RouteTemplates::new(&["/boom", "/fine"], &[]),
            4,
            Duration::from_secs(5),
        );
        let mut svc = layer.layer(router);
        let errors_before = state.server_errors.load(Ordering::Relaxed);
        let req = Request::builder()
            .uri("/boom")
            .header(REQUEST_ID_HEADER, "panic-1")
            .body(Body::empty())
            .unwrap();
        let resp = svc.call(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()[REQUEST_ID_HEADER], "panic-1");
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "INTERNAL", "{body}");
        assert_eq!(body["error"]["request_id"], "panic-1", "{body}");
        assert_eq!(
            state.server_errors.load(Ordering::Relaxed),
            errors_before + 1
        );
        let req = Request::builder().uri("/fine").body(Body::empty()).unwrap();
        assert_eq!(svc.call(req).await.unwrap().status(), StatusCode::OK);
        let text = state.metrics.render();
        assert!(
            text.lines()
                .any(|l| l.starts_with("maple_http_panics_total{route=\"/boom\"}")),
            "{text}"
        );
        let log = log.text();
        let panic_line = log
            .lines()
            .find(|l| l.contains("request handler panicked"))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(panic_line.contains("ERROR") && panic_line.contains("request_id=panic-1"));
        let access: Vec<&str> = log.lines().filter(|l| l.contains(" access:")).collect();
        assert_eq!(access.len(), 2, "one access line per request: {log}");
        for (line, route, status) in [(access[0], "/boom", 500), (access[1], "/fine", 200)] {
            assert!(line.contains(" INFO "), "{line}");
            assert!(line.contains("method=\"GET\""), "{line}");
            assert!(line.contains(&format!("route=\"{route}\"")), "{line}");
            assert!(line.contains(&format!("status={status}")), "{line}");
            assert!(line.contains("duration_ms="), "{line}");
            assert!(line.contains("request_id="), "{line}");
            assert!(line.contains("cache=\"-\""), "{line}");
        }
    }

    /// A log writer into memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn route_templates_label_paths_as_the_router_matches_them() {
        let t = RouteTemplates::new(
            &[
                "/health/live",
                "/api/v4/characters/{name}/expectation",
                "/api/v4/characters/{name}/expectation/preset/{n}",
            ],
            &["/health/live"],
        );
        assert_eq!(t.route("/health/live"), ("/health/live", true));
        assert!(!t.route("/api/v4/characters/Alice/expectation").1);
        assert_eq!(t.label("/health/live"), "/health/live");
        assert_eq!(
            t.label("/api/v4/characters/Alice/expectation"),
            "/api/v4/characters/{name}/expectation"
        );
        assert_eq!(
            t.label("/api/v4/characters/%EC%95%84/expectation/preset/2"),
            "/api/v4/characters/{name}/expectation/preset/{n}"
        );
        for unmatched in ["/", "/health/live/", "/api/v4/characters/Alice"] {
            assert_eq!(t.label(unmatched), "unmatched", "{unmatched:?}");
        }
    }

    #[tokio::test]
    async fn bodies_are_capped_at_the_limit_and_empty_ones_pass_as_they_are() {
        use axum::body::{Body, HttpBody};
        let streamed = |n: usize| {
            let chunk = bytes::Bytes::from(vec![b'a'; n]);
            let body = Body::from_stream(futures::stream::iter([Ok::<_, Infallible>(chunk)]));
            cap_body(Request::new(body)).into_body()
        };
        let at_limit =
            axum::body::to_bytes(streamed(super::super::MAX_BODY_BYTES), usize::MAX).await;
        assert_eq!(
            at_limit.expect("a body at the limit is read whole").len(),
            super::super::MAX_BODY_BYTES
        );
        let over =
            axum::body::to_bytes(streamed(super::super::MAX_BODY_BYTES + 1), usize::MAX).await;
        assert!(over.is_err(), "reading past the limit fails");
        let empty = cap_body(Request::new(Body::empty()));
        assert!(empty.body().is_end_stream());
    }

    #[test]
    fn admission_admits_up_to_the_limit_and_takes_places_back() {
        let a = Admission::new(2);
        assert!(a.try_admit(), "first place");
        assert!(a.try_admit(), "second place");
        assert!(!a.try_admit(), "the limit is 2");
        assert!(!a.try_admit(), "a refused attempt leaves no place taken");
        a.give_back();
        assert!(a.try_admit(), "a place came back");
        assert!(!a.try_admit());
        a.give_back();
        a.give_back();
        assert_eq!(a.in_use.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn admission_never_admits_more_than_the_limit_under_contention() {
        let a = Admission::new(3);
        let most = AtomicUsize::new(0);
        let now = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..20_000 {
                        if a.try_admit() {
                            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(n, Ordering::SeqCst);
                            now.fetch_sub(1, Ordering::SeqCst);
                            a.give_back();
                        }
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3, "{most:?}");
        assert_eq!(a.in_use.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn within_answers_ready_futures_without_a_timer_and_times_out_waiting_ones() {
        let t0 = tokio::time::Instant::now();
        assert_eq!(within(Duration::from_secs(1), async { 7 }).await, Some(7));
        let slow = within(Duration::from_secs(1), async {
            tokio::time::sleep(Duration::from_millis(999)).await;
            8
        });
        assert_eq!(slow.await, Some(8), "done just inside the timeout");
        let t1 = tokio::time::Instant::now();
        let stuck = within(Duration::from_secs(1), std::future::pending::<()>());
        assert_eq!(stuck.await, None);
        assert_eq!(
            t1.elapsed(),
            Duration::from_secs(1),
            "timed out at the timeout"
        );
        assert_eq!(t0.elapsed(), Duration::from_millis(1999));
    }
}
