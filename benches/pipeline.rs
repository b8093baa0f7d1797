//! Overhead of `Pipeline::execute` on a trivially succeeding task, against awaiting the task directly.
//!
//! Contract: the budget is ≤ 2 µs median overhead per execution with the two standard
//! policies (tracing, metrics), so the pipeline never shows in request latency. Overhead =
//! `execute/*` − `direct`. Measured in three settings:
//! * `execute/empty` — the pipeline machinery alone (no policies);
//! * `execute/standard` — the standard policies with no metrics recorder and no tracing subscriber
//!   (the facades drop everything: the floor);
//! * `execute/standard+recorder+subscriber` — the standard policies with a real Prometheus recorder
//!   and an info-level `fmt` subscriber writing to a sink, i.e. what production pays (a span per
//!   task, a counter and a histogram per task), with and without a key.
//!
//! Run with `cargo bench --bench pipeline`; measurement time is kept short (3 s per case).
//! Failure modes: none — a bench only measures; the figure is reported in the pipeline notes.

use std::fmt;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use maple_gateway::error::{Classify, ErrorKind};
use maple_gateway::pipeline::{Pipeline, StandardConfig, TaskContext};
use metrics_exporter_prometheus::PrometheusBuilder;

/// An error that cannot happen.
#[derive(Debug)]
enum Never {}

impl fmt::Display for Never {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl std::error::Error for Never {}

impl Classify for Never {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
    fn retryable(&self) -> bool {
        match *self {}
    }
    fn code(&self) -> &'static str {
        match *self {}
    }
}

async fn trivial() -> Result<u64, Never> {
    Ok(black_box(1))
}

fn ctx() -> TaskContext {
    TaskContext::new("characters", "expectation")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let empty = Pipeline::builder().build();
    let standard = Pipeline::standard(StandardConfig::default());

    let mut group = c.benchmark_group("pipeline");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("direct", |b| {
        b.to_async(&runtime).iter(|| async { trivial().await })
    });
    group.bench_function("execute/empty", |b| {
        b.to_async(&runtime)
            .iter(|| empty.execute(ctx(), trivial()))
    });
    group.bench_function("execute/standard", |b| {
        b.to_async(&runtime)
            .iter(|| standard.execute(ctx(), trivial()))
    });

    // Thread-local recorder and subscriber: the current-thread runtime polls on this thread.
    let recorder = PrometheusBuilder::new().build_recorder();
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _tracing = tracing::subscriber::set_default(subscriber);

    group.bench_function("execute/standard+recorder+subscriber", |b| {
        b.to_async(&runtime)
            .iter(|| standard.execute(ctx(), trivial()))
    });
    group.bench_function("execute/standard+recorder+subscriber+key", |b| {
        b.to_async(&runtime)
            .iter(|| standard.execute(ctx().with_key("Alice"), trivial()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
