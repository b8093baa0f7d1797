//! The inbound layer of every route ([`InboundLayer`]): request id, load shedding with a concurrency limit,
//! the per-request timeout, HTTP metrics, and JSON rendering of every error.
//!
//! Contract: each response gets `x-request-id` — the client's value when it is 1–64 visible ASCII
//! characters, otherwise a fresh random id. A request that finds all `max_concurrency` permits taken is
//! answered at once with 503 `OVERLOADED` and `Retry-After: 1` (nothing queues) — except the probes
//! ([`PROBE_ROUTES`]: `/health/live`, `/health/ready`, `/metrics`), which take no permit; one that runs longer than
//! the timeout is answered 503 `TIMEOUT` with `Retry-After: 1` and its handler future is dropped. An error
//! produced by a handler ([`ApiError`]) is re-rendered with the request id; a bare error produced by an
//! inner tower layer (413 from the body limit, …) is turned into the JSON error shape, so clients only ever
//! see one error format. Metrics use the matched route template, never the raw path (bounded cardinality).
//!
//! Why one hand-written layer instead of `from_fn` plus tower's `HandleError`/`LoadShed`/`ConcurrencyLimit`/
//! `Timeout`: axum clones a route's whole service stack for every request, and that stack allocated on
//! each clone (a boxed clone per layer, a fresh semaphore future in `ConcurrencyLimit`) and boxed a future
//! per layer; `cargo bench --bench http` put it at a third of a warm hit. This layer clones one `Arc` and
//! boxes one future.
//!
//! Two more choices for the warm hit, which most requests are: the concurrency limit is one atomic counter
//! (requests never wait for a permit, so a semaphore's wait queue — and the lock its release takes — buys
//! nothing), and the timeout's timer is armed only when the request first has to wait: a request answered
//! on its first poll (a cache hit) never touches the runtime's timer. The timeout therefore counts from that
//! first wait; the first poll itself runs no blocking work (handlers hand CPU-heavy steps to the blocking
//! pool).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::future::BoxFuture;
use tower::{Layer, Service, ServiceExt};

use super::error::{ApiError, PendingError};
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

/// The layer; see the module documentation. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct InboundLayer {
    shared: Arc<Inbound>,
}

struct Inbound {
    state: super::AppState,
    admission: Admission,
    timeout: Duration,
}

/// The concurrency limit: how many requests are being served, against the maximum. Never waits.
struct Admission {
    in_use: AtomicUsize,
    max: usize,
}

/// One admitted request; gives its place back when dropped.
struct Admitted<'a>(&'a Admission);

impl Admission {
    fn new(max: usize) -> Self {
        Admission {
            in_use: AtomicUsize::new(0),
            max,
        }
    }

    /// A place, or `None` when all `max` are taken. A refused attempt counts for an instant and is taken
    /// back, so concurrent attempts near the limit may all be refused, but more than `max` are never admitted.
    fn try_admit(&self) -> Option<Admitted<'_>> {
        if self.in_use.fetch_add(1, Ordering::AcqRel) < self.max {
            Some(Admitted(self))
        } else {
            self.in_use.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InboundLayer {
    pub fn new(state: super::AppState, max_concurrency: usize, timeout: Duration) -> Self {
        InboundLayer {
            shared: Arc::new(Inbound {
                state,
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

/// [`InboundLayer`] around a route.
#[derive(Clone)]
pub struct InboundService<S> {
    shared: Arc<Inbound>,
    inner: S,
}

impl<S> Service<Request> for InboundService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is decided per request (a permit or 503), never by making the caller wait.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let shared = self.shared.clone();
        let inner = self.inner.clone();
        Box::pin(async move { Ok(shared.handle(inner, req).await) })
    }
}

impl Inbound {
    async fn handle<S>(&self, inner: S, req: Request) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible> + Send,
        S::Future: Send,
    {
        let started = Instant::now();
        let id_value = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(sane_id)
            .unwrap_or_else(fresh_id);
        let id = id_value
            .to_str()
            .expect("visible ASCII, checked or generated above");
        let matched = req.extensions().get::<MatchedPath>().cloned();
        let route = matched.as_ref().map_or("unmatched", |m| m.as_str());
        let method = static_method(req.method());

        // Probes never take a permit: an orchestrator that sees `/health/live` answer 503 under load would
        // restart the instance exactly when it is busiest, and metrics are wanted most then.
        let admitted = if PROBE_ROUTES.contains(&route) {
            Some(None)
        } else {
            self.admission.try_admit().map(Some)
        };
        let mut resp = match admitted {
            None => rejected(
                "overloaded",
                "OVERLOADED",
                "server is overloaded, retry shortly",
                id,
            ),
            Some(_admitted) => {
                let span = tracing::info_span!("request", request_id = %id, method = method, route = %route);
                let run = tracing::Instrument::instrument(inner.oneshot(req), span);
                match within(self.timeout, run).await {
                    Some(Ok(resp)) => resp,
                    Some(Err(never)) => match never {},
                    None => rejected("timeout", "TIMEOUT", "request took too long", id),
                }
            }
        };

        if let Some(PendingError(err)) = resp.extensions_mut().remove::<PendingError>() {
            resp = err.into_response_with_id(id);
        } else if resp.status().is_client_error() || resp.status().is_server_error() {
            let is_json = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if !is_json {
                resp = bare_error(resp.status()).into_response_with_id(id);
            }
        }
        resp.headers_mut().insert(REQUEST_ID_HEADER, id_value);
        if resp.status().is_server_error() {
            self.state
                .server_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.state.http_metrics.record(
            route,
            method,
            resp.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        resp
    }
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

/// A request the layer turned away (`reason` is the `maple_http_rejected_total` label): 503 with `Retry-After: 1`.
fn rejected(reason: &'static str, code: &'static str, message: &str, id: &str) -> Response {
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
    fn admission_admits_up_to_the_limit_and_takes_places_back() {
        let a = Admission::new(2);
        let first = a.try_admit().expect("first place");
        let second = a.try_admit().expect("second place");
        assert!(a.try_admit().is_none(), "the limit is 2");
        assert!(
            a.try_admit().is_none(),
            "a refused attempt leaves no place taken"
        );
        drop(first);
        let third = a.try_admit().expect("a place came back");
        assert!(a.try_admit().is_none());
        drop((second, third));
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
                        if let Some(_p) = a.try_admit() {
                            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(n, Ordering::SeqCst);
                            now.fetch_sub(1, Ordering::SeqCst);
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
