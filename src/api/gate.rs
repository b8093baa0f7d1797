//! The request gate: the outermost layer around the served API, which counts the requests in flight and
//! answers 503 `SHUTTING_DOWN` once the shutdown's grace period is over.
//!
//! Contract: until [`RequestGate::cut`], every request passes to the inner service and is counted while
//! it runs; after [`RequestGate::begin_drain`] the ones that finish count as drained. At the cut, every
//! request still waiting for its answer, and every request arriving later, is answered 503
//! `SHUTTING_DOWN` with `Retry-After: 1` (`maple_shutdown_cut_requests_total` counts the cut ones), so
//! a slow request never holds the process up beyond the grace period.
//!
//! Failure modes: none of its own — the gate never fails a request before the cut, and the inner
//! service's answer is passed through unchanged. A request answered by the cut may still have had its
//! effect (the inner future is dropped, not rolled back).
//!
//! Why hand-written: the gate is on every request's path, so it avoids `from_fn` (which boxes a clone of
//! the inner service per request) and a shared lock per request (see [`Gated`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::error::Code;

/// Requests answered 503 because the grace period ended.
pub const SHUTDOWN_CUT_REQUESTS_TOTAL: &str = "maple_shutdown_cut_requests_total";

#[derive(Debug, Default)]
struct GateInner {
    /// Sharded by thread: every request adds and takes back one.
    in_flight: crate::telemetry::ShardedCount,
    draining: AtomicBool,
    drained: AtomicU64,
    cut: AtomicU64,
    /// Set by [`RequestGate::cut`] before the token is cancelled: what each new request checks. The token's
    /// own `is_cancelled` takes a lock every request would share; the token is for the requests that wait.
    is_cut: AtomicBool,
    cut_token: CancellationToken,
}

/// Counts in-flight requests, and answers 503 for those still running when the grace period ends.
#[derive(Clone, Debug, Default)]
pub struct RequestGate {
    inner: Arc<GateInner>,
}

/// One request in flight: (the gate, the shard it was counted on).
struct InFlight(Arc<GateInner>, usize);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.take_back(self.1);
    }
}

impl RequestGate {
    /// Shutdown began: requests finishing from now on count as drained.
    pub fn begin_drain(&self) -> u64 {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.in_flight()
    }

    /// The grace period is over: every request still running is answered 503.
    pub fn cut(&self) {
        self.inner.is_cut.store(true, Ordering::SeqCst);
        self.inner.cut_token.cancel();
    }

    pub fn in_flight(&self) -> u64 {
        self.inner.in_flight.sum()
    }

    /// Requests completed during the drain.
    pub fn drained(&self) -> u64 {
        self.inner.drained.load(Ordering::SeqCst)
    }

    /// Requests answered 503 at the end of the grace period.
    pub fn cut_count(&self) -> u64 {
        self.inner.cut.load(Ordering::SeqCst)
    }
}

fn shutting_down() -> Response {
    let body = serde_json::json!({"error": {
        "code": Code::ShuttingDown.as_str(),
        "message": "the gateway is shutting down; retry on another instance",
        "request_id": "",
    }});
    let mut r = (Code::ShuttingDown.status(), axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// [`RequestGate`] is the layer of the gate; install it outermost, around the whole served service
/// (`tower::Layer::layer(&gate, api)`), not per route.
impl<S> tower::Layer<S> for RequestGate {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Gated<S> {
        Gated {
            gate: self.clone(),
            inner,
        }
    }
}

/// A service behind the [`RequestGate`]: counts its requests in flight and answers 503 `SHUTTING_DOWN` once
/// the gate is cut. Hand-written rather than `from_fn` (which boxes a clone of the inner service and a
/// future per request): it is on every request's path.
#[derive(Clone)]
pub struct Gated<S> {
    gate: RequestGate,
    inner: S,
}

impl<S> tower::Service<Request> for Gated<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    /// The inner service is called here, synchronously (it is not cloned per request); the returned future
    /// drives its answer against the cut.
    fn call(&mut self, req: Request) -> Self::Future {
        let gate = &self.gate.inner;
        if gate.is_cut.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Ok(shutting_down())));
        }
        let shard = gate.in_flight.add();
        let guard = InFlight(self.gate.inner.clone(), shard);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let gate = &*guard.0;
            // Biased: a request that completes on its first poll (a cache hit) never registers with the token.
            tokio::select! {
                biased;
                r = answer => {
                    if gate.draining.load(Ordering::SeqCst) {
                        gate.drained.fetch_add(1, Ordering::SeqCst);
                    }
                    match r {
                        Ok(r) => Ok(r),
                        Err(never) => match never {},
                    }
                }
                _ = gate.cut_token.cancelled() => {
                    gate.cut.fetch_add(1, Ordering::SeqCst);
                    metrics::counter!(SHUTDOWN_CUT_REQUESTS_TOTAL).increment(1);
                    Ok(shutting_down())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RequestGate;

    /// The request gate: requests pass and are counted until the cut; a request waiting at the cut and every
    /// request after it are answered 503 `SHUTTING_DOWN`.
    #[tokio::test]
    async fn the_gate_passes_requests_until_the_cut_then_answers_503() {
        use axum::body::Body;
        use axum::http::{Request, StatusCode};
        use tower::{Layer, ServiceExt};

        let gate = RequestGate::default();
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let wait = release.clone();
        let inner = tower::service_fn(move |req: Request<Body>| {
            let wait = wait.clone();
            async move {
                if req.uri().path() == "/slow" {
                    wait.notified().await;
                }
                Ok::<_, std::convert::Infallible>(axum::response::Response::new(Body::empty()))
            }
        });
        let svc = gate.layer(inner);
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();

        let r = svc.clone().oneshot(get("/fast")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            gate.in_flight(),
            0,
            "a finished request is no longer counted"
        );

        let slow = tokio::spawn(svc.clone().oneshot(get("/slow")));
        while gate.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        gate.cut();
        let r = slow.await.unwrap().unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting at the cut"
        );
        assert_eq!(gate.cut_count(), 1);
        let r = svc.clone().oneshot(get("/fast")).await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "arriving after the cut"
        );
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(gate.in_flight(), 0);
        drop(release);
    }
}
