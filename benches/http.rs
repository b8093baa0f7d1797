//! The gateway's own CPU cost per request, without sockets: the served service (every layer, the shutdown
//! gate, the router, the handler, the pipeline, the cache) driven in process with `tower::ServiceExt::oneshot`, against
//! a bare axum router answering the same stored gzip bytes.
//!
//! Contract: the target is a warm L1 hit at ≥ 70 % of a bare axum handler's throughput over HTTP
//! (`loadtest/bench.sh`, wrk on loopback). Over HTTP most of the time goes to the kernel's TCP path, which
//! both servers pay alike; this bench isolates what only the gateway pays, so a change to the hit path can
//! be measured in seconds and without the noise of a shared machine. Cases, all on one current-thread
//! runtime (the whole request runs on the measured thread):
//! * `bare` — a `Router` whose fallback answers the stored gzip body with the same headers;
//! * `health_live` — `GET /health/live` through every layer (the middleware's own cost);
//! * `expectation_hit` — `GET /api/v4/characters/{name}/expectation` with `Accept-Encoding: gzip`, an L1 hit.
//!
//! The gateway is built with its embedded defaults (in-process simulator, SQLite under a temporary
//! directory, no Redis), the Prometheus recorder installed as in production, and a `warn`-level tracing
//! subscriber writing to a sink (as `loadtest/bench.sh` runs it with `RUST_LOG=warn`).
//!
//! Run with `cargo bench --bench http` (3 s per case); `loadtest/benches.sh` reports the medians.
//! Failure modes: the warm-up request must be a 200 L1 hit, else the bench panics (a bench of an error path
//! would be meaningless).

use std::hint::black_box;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use criterion::{Criterion, criterion_group, criterion_main};
use maple_gateway::api::gate::RequestGate;
use maple_gateway::app::Application;
use maple_gateway::config::Settings;
use tower::ServiceExt;

#[path = "../examples/support/bare.rs"]
mod bare;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HOT: &str = "/api/v4/characters/BenchHot/expectation";

fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .expect("valid request")
}

/// One request through a clone of `service`, as hyper serves each request of a connection.
async fn call<S>(service: &S, uri: &str) -> Response
where
    S: tower::Service<Request<Body>, Response = Response, Error = std::convert::Infallible> + Clone,
{
    service.clone().oneshot(get(uri)).await.expect("infallible")
}

fn bench(c: &mut Criterion) {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let app = runtime
        .block_on(Application::build(Settings::for_data_dir(dir.path())))
        .expect("the gateway builds on its embedded defaults");
    app.state().readiness.mark_started();
    let gateway = app.router(&RequestGate::default());

    let body = runtime.block_on(async {
        let first = call(&gateway, HOT).await;
        assert_eq!(first.status(), StatusCode::OK, "warm-up load");
        let hit = call(&gateway, HOT).await;
        assert_eq!(hit.status(), StatusCode::OK);
        assert_eq!(
            hit.headers().get("x-cache-tier").map(|v| v.as_bytes()),
            Some(&b"L1"[..]),
            "the second request must be an L1 hit"
        );
        axum::body::to_bytes(hit.into_body(), usize::MAX)
            .await
            .expect("body")
    });
    let bare = bare::router(body);

    let mut group = c.benchmark_group("http");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("bare", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(call(&bare, HOT).await) })
    });
    group.bench_function("health_live", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(call(&gateway, "/health/live").await) })
    });
    group.bench_function("expectation_hit", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(call(&gateway, HOT).await) })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
