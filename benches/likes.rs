//! Like figures: `POST like` latency at 64 connections (the buffered path) and the sync throughput
//! into MariaDB, against a real `redis-server` and the local MariaDB.
//!
//! Contract: the budgets are p99 ≤ 5 ms for `POST /api/v2/characters/{name}/like` at 64
//! concurrent connections, and ≥ 20,000 likes/s moved into MariaDB by the sync, in batches of
//! `MAPLE_LIKE_SYNC_BATCH` (2,000). Three measurements, printed as one table:
//!
//! 1. **POST like** — the whole gateway (`Application::build`, default settings: flush every 500 ms,
//!    sync every 2 s running in the background) on its own 2-worker runtime; 64 client tasks, each with
//!    its own keep-alive HTTP/1 connection, send likes closed-loop (a new request as soon as the last
//!    answered) over 5,000 characters (a new liker every 5,000 likes); 10 % of them repeat a like already sent. A
//!    warm-up of 5,000 likes is not measured. Latency is measured per request at the client.
//! 2. **Store batches** — `Store::apply_likes` alone: 200,000 fresh likes in batches of 2,000, each one
//!    fenced transaction.
//! 3. **Sync from Redis** — 200,000 likes staged in the Redis queue through a `LikeService` (restore +
//!    flush), then timed `sync_once` rounds until the queue is empty: claim, fenced apply,
//!    acknowledgement, i.e. the whole sync path.
//!
//! Run: `cargo bench --bench likes` (needs `redis-server` and MariaDB on 127.0.0.1:3306, as the test
//! suite). `LIKES_BENCH_REQUESTS` sets the number of measured POSTs (default 100,000),
//! `LIKES_BENCH_BATCH` the sync batch (default 2,000), `LIKES_BENCH_ONLY=post|sync` one part. The machine's
//! other load shows in the figures: run it on a quiet machine. Failure modes: none — it measures and
//! prints; a server that is missing fails it at start.

#[path = "../tests/api/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use maple_gateway::app::Application;
use maple_gateway::config::{DatabaseSettings, RedactedUrl, RedisSettings, Settings};
use maple_gateway::likes::{LikeConfig, LikeEntry, LikeService, SyncOutcome};
use maple_gateway::lock::LockService;
use maple_gateway::redis::RedisHandle;
use maple_gateway::store::{Fence, LikeBatch, LikeRecord, Store};

use harness::{RedisServer, TestDatabase, redis_cmd};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn mysql(url: &str) -> DatabaseSettings {
    DatabaseSettings::Mysql {
        url: RedactedUrl::new(url),
    }
}

/// Part 1: the gateway on its own runtime, 64 closed-loop connections.
fn post_like_latency(redis: &RedisServer, db: &TestDatabase, requests: usize) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_data_dir(dir.path());
    settings.redis = RedisSettings::Standalone {
        url: RedactedUrl::new(redis.url()),
    };
    settings.database = mysql(&db.url());
    let app = server_rt.block_on(Application::build(settings)).unwrap();
    let base = format!("http://{}", app.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(app.run_until(async {
        let _ = stop_rx.await;
    }));

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (lat, wall) = client_rt.block_on(async {
        let connections = 64;
        let run = |offset: usize, count: usize, record: bool| {
            let base = base.clone();
            async move {
                let mut tasks = Vec::new();
                for c in 0..connections {
                    let base = base.clone();
                    tasks.push(tokio::spawn(async move {
                        let http = reqwest::Client::builder()
                            .http1_only()
                            .pool_max_idle_per_host(1)
                            .build()
                            .unwrap();
                        let mut lat = Vec::with_capacity(count / connections + 1);
                        let mut i = offset + c;
                        while i < offset + count {
                            // Every 10th like repeats one sent before (idempotent, answered 200).
                            let n = if i % 10 == 9 { i - 9 } else { i };
                            let url = format!("{base}/api/v2/characters/Bench{}/like", n % 5000);
                            let t = Instant::now();
                            let r = http
                                .post(url)
                                .header("x-liker-id", format!("liker-{}", n / 5000))
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(r.status(), 200);
                            let _ = r.bytes().await.unwrap();
                            if record {
                                lat.push(t.elapsed());
                            }
                            i += connections;
                        }
                        lat
                    }));
                }
                let mut all = Vec::new();
                for t in tasks {
                    all.extend(t.await.unwrap());
                }
                all
            }
        };
        run(0, 5_000, false).await;
        let t = Instant::now();
        let mut lat = run(1_000_000, requests, true).await;
        let wall = t.elapsed();
        lat.sort();
        (lat, wall)
    });
    let _ = stop_tx.send(());
    server_rt.block_on(server).unwrap().unwrap();
    println!(
        "POST like, 64 connections, {} requests: {:.0} req/s, p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat, 0.999)),
        ms(*lat.last().unwrap()),
    );
}

/// Part 2: fenced batches straight into the store.
async fn store_batches(db: &TestDatabase, batch: usize) {
    let store = Store::connect(&mysql(&db.url())).await.unwrap();
    let fence = Fence {
        lock: "bench".into(),
        token: 1,
    };
    let total = 200_000;
    let t = Instant::now();
    for b in 0..total / batch {
        let likes = (0..batch)
            .map(|i| {
                let n = b * batch + i;
                LikeRecord {
                    character: format!("store{}", n % 5000),
                    liker: format!("l{}", n / 5000),
                    at_ms: 1,
                }
            })
            .collect();
        store
            .apply_likes(
                &LikeBatch {
                    id: format!("bench-store-{b}"),
                    likes,
                },
                &fence,
            )
            .await
            .unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "store batches: {total} likes in batches of {batch} in {secs:.2} s = {:.0} likes/s",
        total as f64 / secs
    );
}

/// Part 3: the whole sync path from the Redis queue.
async fn sync_from_redis(redis: &RedisServer, db: &TestDatabase, batch: usize) {
    let store = Store::connect(&mysql(&db.url())).await.unwrap();
    let handle = RedisHandle::connect(&RedisSettings::Standalone {
        url: RedactedUrl::new(redis.url()),
    })
    .await
    .unwrap();
    let locks = LockService::new(handle.clone(), &mysql(&db.url())).unwrap();
    let svc = LikeService::new(
        LikeConfig {
            buffer_max: 1_000_000,
            sync_batch: batch,
            ..LikeConfig::default()
        },
        store,
        handle,
        locks,
        "bench",
    );
    let total = 200_000;
    let entries: Vec<LikeEntry> = (0..total)
        .map(|n| LikeEntry {
            id: format!("bench-{n}"),
            character: format!("sync{}", n % 5000),
            liker: format!("l{}", n / 5000),
            at_ms: 1,
        })
        .collect();
    svc.restore(entries);
    svc.flush_once().await.unwrap();
    let queued = redis_cmd(redis.port, &["LLEN", "maple:v1:likes:queue"]).unwrap();
    let t = Instant::now();
    let mut moved = 0;
    loop {
        match svc.sync_once().await.unwrap() {
            SyncOutcome::Synced { entries: 0, .. } => break,
            SyncOutcome::Synced { entries, .. } => moved += entries,
            other => panic!("{other:?}"),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "sync from Redis: {moved} likes (queue {queued}) in batches of {batch} claimed, applied and acknowledged in {secs:.2} s = {:.0} likes/s",
        moved as f64 / secs
    );
    svc.flush_once().await.unwrap();
    assert_eq!(svc.buffered(), 0, "every entry confirmed");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: measure only on bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("likes bench: run with `cargo bench --bench likes`");
        return;
    }
    let requests: usize = std::env::var("LIKES_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let batch: usize = std::env::var("LIKES_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let only = std::env::var("LIKES_BENCH_ONLY").unwrap_or_default();
    let redis = RedisServer::start();
    if only.is_empty() || only == "post" {
        let db = TestDatabase::create();
        post_like_latency(&redis, &db, requests);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if only.is_empty() || only == "sync" {
        let db = TestDatabase::create();
        rt.block_on(store_batches(&db, batch));
        let db = TestDatabase::create();
        rt.block_on(sync_from_redis(&redis, &db, batch));
    }
}
