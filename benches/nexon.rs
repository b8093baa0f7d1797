//! Overhead of the upstream client's resilience policy (hold check, breaker ticket, rate-budget slot, attempt
//! timeout, outcome recording, retry bookkeeping) on a successful call, against awaiting the call directly.
//!
//! Contract: the target is ≤ 50 µs median overhead per logical call. Overhead = `call/*` − `direct`.
//! Measured with a real Prometheus recorder and an info-level subscriber writing to a sink (what production
//! pays), in two settings:
//! * `call/local-budget` — the rate budget in-process (no Redis, or Redis down);
//! * `call/shared-budget-redis` — the rate budget shared through a real `redis-server` on loopback (one
//!   `EVALSHA` per call): started by the bench on a free port when `redis-server` is installed, skipped
//!   otherwise, and stopped by its PID at the end. `redis/ping` is the floor: one round trip through fred.
//!
//! Run with `cargo bench --bench nexon`; measurement time is kept short (3 s per case).
//! Failure modes: none — a bench only measures; the figures are reported in `docs/resilience.md`.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use maple_gateway::config::{RedactedUrl, RedisSettings};
use maple_gateway::ids::Priority;
use maple_gateway::nexon::alert::Alerter;
use maple_gateway::nexon::rate_limit::{RateConfig, RateLimiter};
use maple_gateway::nexon::resilience::{Resilience, ResilienceConfig};
use maple_gateway::nexon::{Endpoint, NexonError};
use maple_gateway::redis::RedisHandle;
use metrics_exporter_prometheus::PrometheusBuilder;

async fn upstream_ok() -> Result<u64, NexonError> {
    Ok(black_box(1))
}

fn rate() -> RateConfig {
    // Far above what the bench reaches: the budget admits every call, so the cost measured is the check.
    RateConfig {
        per_second: 50_000_000,
        per_day: u64::MAX,
        max_wait: Duration::from_millis(100),
        instances: 1,
    }
}

fn resilience(redis: Option<RedisHandle>) -> Resilience {
    Resilience::new(
        ResilienceConfig::default(),
        RateLimiter::new(rate(), "bench_key", redis),
        Alerter::new(None, "bench".into()),
    )
}

/// A private redis-server on a free port, killed on drop.
struct RedisProc(Child, u16);

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<RedisProc> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let proc = RedisProc(child, port);
    // Wait (bounded) until it accepts connections, so the client's first connection succeeds.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(proc)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let recorder = PrometheusBuilder::new().build_recorder();
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _tracing = tracing::subscriber::set_default(subscriber);

    let local = runtime.block_on(async { resilience(None) });
    let redis_proc = start_redis();
    let shared = redis_proc.as_ref().and_then(|p| {
        runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let handle = match RedisHandle::connect(&RedisSettings::Standalone {
                url: RedactedUrl::new(format!("redis://127.0.0.1:{}", p.1)),
            })
            .await
            {
                Ok(Some(h)) => h,
                other => {
                    eprintln!("cannot connect to the bench's redis-server: {other:?}");
                    return None;
                }
            };
            while let Err(e) = handle.ping().await {
                if tokio::time::Instant::now() > deadline {
                    eprintln!("the bench's redis-server does not answer: {e}");
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Some((resilience(Some(handle.clone())), handle))
        })
    });

    let mut group = c.benchmark_group("nexon");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("direct", |b| {
        b.to_async(&runtime).iter(|| async { upstream_ok().await })
    });
    group.bench_function("call/local-budget", |b| {
        b.to_async(&runtime).iter(|| {
            local.call(Endpoint::ItemEquipment, Priority::Interactive, |_| {
                upstream_ok()
            })
        })
    });
    match &shared {
        Some((shared, handle)) => {
            group.bench_function("redis/ping", |b| {
                b.to_async(&runtime)
                    .iter(|| async { handle.ping().await.unwrap() })
            });
            group.bench_function("call/shared-budget-redis", |b| {
                b.to_async(&runtime).iter(|| {
                    shared.call(Endpoint::ItemEquipment, Priority::Interactive, |_| {
                        upstream_ok()
                    })
                })
            });
        }
        None => eprintln!("redis-server not available: skipping call/shared-budget-redis"),
    }
    group.finish();
    if let Some((s, _)) = &shared {
        assert_eq!(
            s.status().rate.mode,
            maple_gateway::nexon::rate_limit::RateLimitMode::Shared,
            "the shared case really used Redis"
        );
    }
    drop(shared);
    drop(redis_proc);
}

criterion_group!(benches, bench);
criterion_main!(benches);
