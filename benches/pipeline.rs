//! Overhead of `Pipeline::execute` on a trivially succeeding task, against awaiting the task directly.
//!
//! Contract: the target is ≤ 2 µs median overhead per execution with the two standard
//! policies (tracing, metrics), so the pipeline never shows in request latency. Overhead =
//! `execute/*` − `direct`. Cases:
//! * `execute/empty` — the pipeline machinery alone (no policies);
//! * `execute/standard` — the standard policies with no metrics recorder and no tracing subscriber
//!   (the facades drop everything: the floor);
//! * `execute/standard+recorder`, `execute/standard+subscriber` — each half of the production cost;
//! * `execute/standard+recorder+subscriber[+key]` — a real Prometheus recorder and an info-level
//!   `fmt` subscriber writing to a sink, i.e. what production pays per task (a span, a counter and a
//!   histogram).
//!
//! Every case runs twice: `pipeline-wall` measures wall-clock time (criterion's default) and, on
//! 64-bit Linux, `pipeline-cpu` measures the bench thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
//! The CPU figure is the one to compare with the budget on a shared machine: wall-clock time also
//! counts the time the thread waits for a core while other processes run, CPU time does not. All
//! cases run on a current-thread runtime, so the whole execution happens on the measured thread.
//!
//! Run with `cargo bench --bench pipeline` (3 s per case). Failure modes: none — a bench only
//! measures; the figures are reported in `docs/pipeline.md`.

use std::fmt;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{Criterion, criterion_group, criterion_main};
use maple_gateway::error::{Classify, Code, ErrorKind};
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
    fn code(&self) -> Code {
        match *self {}
    }
}

async fn trivial() -> Result<u64, Never> {
    Ok(black_box(1))
}

fn ctx() -> TaskContext {
    TaskContext::new("characters", "expectation")
}

/// An info-level `fmt` subscriber writing to a sink: formats spans and events like production does.
fn subscriber() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish()
}

fn cases<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let empty = Pipeline::builder().build();
    let standard = Pipeline::standard(StandardConfig::default());

    let mut group = c.benchmark_group(group_name);
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
    {
        let _metrics = metrics::set_default_local_recorder(&recorder);
        group.bench_function("execute/standard+recorder", |b| {
            b.to_async(&runtime)
                .iter(|| standard.execute(ctx(), trivial()))
        });
    }
    {
        let _tracing = tracing::subscriber::set_default(subscriber());
        group.bench_function("execute/standard+subscriber", |b| {
            b.to_async(&runtime)
                .iter(|| standard.execute(ctx(), trivial()))
        });
    }
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let _tracing = tracing::subscriber::set_default(subscriber());
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

fn wall_clock(c: &mut Criterion) {
    cases(c, "pipeline-wall");
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod cpu {
    //! CPU time of the calling thread as a criterion measurement.

    use std::time::Duration;

    use criterion::Criterion;
    use criterion::measurement::{Measurement, ValueFormatter, WallTime};

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    unsafe extern "C" {
        // From the C library every Rust program on Linux links.
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }

    fn thread_cpu_time() -> Duration {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `struct timespec` (64-bit `time_t` and `long` on
        // 64-bit Linux); the clock id is a constant the kernel always supports.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    pub struct ThreadCpuTime;

    static DURATION_FORMAT: WallTime = WallTime;

    impl Measurement for ThreadCpuTime {
        type Intermediate = Duration;
        type Value = Duration;

        fn start(&self) -> Duration {
            thread_cpu_time()
        }

        fn end(&self, start: Duration) -> Duration {
            thread_cpu_time().saturating_sub(start)
        }

        fn add(&self, a: &Duration, b: &Duration) -> Duration {
            *a + *b
        }

        fn zero(&self) -> Duration {
            Duration::ZERO
        }

        fn to_f64(&self, value: &Duration) -> f64 {
            value.as_nanos() as f64
        }

        fn formatter(&self) -> &dyn ValueFormatter {
            DURATION_FORMAT.formatter()
        }
    }

    pub fn thread_cpu(c: &mut Criterion<ThreadCpuTime>) {
        super::cases(c, "pipeline-cpu");
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(cpu::ThreadCpuTime);
    targets = cpu::thread_cpu
}

criterion_group!(wall_time, wall_clock);

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
criterion_main!(wall_time, cpu_time);

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
criterion_main!(wall_time);
