//! Like figures: `POST like` latency at 64 connections (the buffered path) and the sync throughput
//! into MariaDB, against a real `redis-server` and the local MariaDB.
//!
//! Contract: the targets are p99 ≤ 5 ms for `POST /api/v2/characters/{name}/like` at 64
//! concurrent connections, and ≥ 20,000 likes/s moved into MariaDB by the sync, in batches of
//! `MAPLE_LIKE_SYNC_BATCH` (2,000). Three measurements, printed as one table:
//!
//! 1. **POST like** — the whole gateway (`Application::build`, default settings: flush every 500 ms,
//!    sync every 2 s running in the background) on its own 2-worker runtime; 64 client connections
//!    (keep-alive HTTP/1, one per task) on another 2-worker runtime, over 5,000 characters (a new liker
//!    every 5,000 likes; every 10th like repeats an earlier one). First a closed loop (each connection
//!    sends as soon as its last like answered: the saturation throughput, where latency is
//!    64 / throughput by Little's law), then open loops at fixed rates (`LIKES_BENCH_RATES`, default
//!    1,000, 2,000 and 4,000 likes/s, 10 s each), whose latency counts from the scheduled send time so a
//!    slow answer also charges the requests it delayed; each starts once the Redis queue is empty (the
//!    previous run's likes synced). Each open loop is followed by the same loop
//!    against `GET /health/live` (same server and layers, no I/O): the machine's own latency floor. A
//!    5,000-like warm-up is not measured.
//! 2. **Store batches** — `Store::apply_likes` alone: 200,000 fresh likes in batches of 2,000, each one
//!    fenced transaction.
//! 3. **Sync from Redis** — 200,000 likes staged in the Redis queue through a `LikeService` (restore +
//!    flush), then timed `sync_once` rounds until the queue is empty: claim, fenced apply,
//!    acknowledgement, i.e. the whole sync path.
//!
//! Run: `cargo bench --bench likes` (needs `redis-server` and MariaDB on 127.0.0.1:3306, as the test
//! suite). `LIKES_BENCH_REQUESTS` sets the number of closed-loop POSTs (default 100,000),
//! `LIKES_BENCH_RATES` the open-loop rates, `LIKES_BENCH_BATCH` the sync batch (default 2,000),
//! `LIKES_BENCH_ONLY=post|sync` one part, `LIKES_BENCH_REPLICA=1` attaches a replica (online before the
//! first like), so that every staging write waits for it (`WAIT 1`, see `redis::durable`); the last line
//! says how many `WAIT`s the master answered. The machine's
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

use harness::{RedisServer, TestDatabase, redis_cmd, wait_replica_online};

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

/// One like request on connection `http`; `n` picks the (character, liker) pair. `n == usize::MAX`
/// sends the baseline request instead (`GET /health/live`: the same server, no I/O).
async fn like_once(http: &reqwest::Client, base: &str, n: usize) {
    if n == usize::MAX {
        let r = http
            .get(format!("{base}/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await.unwrap();
        return;
    }
    // Every 10th like repeats one sent before (idempotent, answered 200).
    let n = if n % 10 == 9 { n - 9 } else { n };
    let r = http
        .post(format!("{base}/api/v2/characters/Bench{}/like", n % 5000))
        .header("x-liker-id", format!("liker-{}", n / 5000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
}

fn connection() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

fn report(what: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    println!(
        "{what}: {} requests, {:.0} req/s, p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat, 0.999)),
        ms(*lat.last().unwrap()),
    );
}

const CONNECTIONS: usize = 64;

/// Closed loop: each connection sends its next like as soon as the last one answered.
async fn closed_loop(base: &str, offset: usize, count: usize) -> (Vec<Duration>, Duration) {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let http = connection();
            let mut lat = Vec::with_capacity(count / CONNECTIONS + 1);
            let mut i = offset + c;
            while i < offset + count {
                let t = Instant::now();
                like_once(&http, &base, i).await;
                lat.push(t.elapsed());
                i += CONNECTIONS;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, t.elapsed())
}

/// Open loop: `rate` likes/s spread evenly over the connections for `secs`; latency counts from the
/// scheduled send time, so a slow answer also charges the requests it delayed.
async fn open_loop(
    base: &str,
    offset: usize,
    rate: f64,
    secs: f64,
    baseline: bool,
) -> (Vec<Duration>, Duration) {
    let interval = Duration::from_secs_f64(CONNECTIONS as f64 / rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let http = connection();
            let mut lat = Vec::new();
            let first = start + interval.mul_f64(c as f64 / CONNECTIONS as f64);
            let mut k = 0u32;
            loop {
                let scheduled = first + interval * k;
                if scheduled >= end {
                    break;
                }
                tokio::time::sleep_until(scheduled).await;
                let n = if baseline {
                    usize::MAX
                } else {
                    offset + c + CONNECTIONS * k as usize
                };
                like_once(&http, &base, n).await;
                lat.push(scheduled.elapsed());
                k += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, Duration::from_secs_f64(secs))
}

/// Part 1: the gateway on its own runtime, 64 connections, closed loop then open loop at fixed rates.
fn post_like_latency(redis: &RedisServer, db: &TestDatabase, requests: usize, rates: &[f64]) {
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
    let env_ms = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
    };
    if let Some(d) = env_ms("MAPLE_LIKE_FLUSH_MS") {
        settings.likes.flush = d;
    }
    if let Some(d) = env_ms("MAPLE_LIKE_SYNC_MS") {
        settings.likes.sync = d;
    }
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
    redis_cmd(
        redis.port,
        &["CONFIG", "SET", "slowlog-log-slower-than", "1000"],
    );
    redis_cmd(redis.port, &["CONFIG", "SET", "slowlog-max-len", "10000"]);
    client_rt.block_on(async {
        closed_loop(&base, 0, 5_000).await;
        redis_cmd(redis.port, &["SLOWLOG", "RESET"]);
        let (lat, wall) = closed_loop(&base, 1_000_000, requests).await;
        report("POST like, 64 connections, closed loop", lat, wall);
        for (i, rate) in rates.iter().enumerate() {
            // Start from steady state: the previous run's likes synced, the Redis queue empty.
            let deadline = Instant::now() + Duration::from_secs(60);
            while redis_cmd(redis.port, &["LLEN", "maple:v1:likes:queue"]).as_deref() != Some(":0")
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (lat, wall) = open_loop(&base, 10_000_000 * (i + 2), *rate, 10.0, false).await;
            report(
                &format!("POST like, 64 connections, open loop at {rate:.0}/s for 10 s"),
                lat,
                wall,
            );
            let (lat, wall) = open_loop(&base, 0, *rate, 10.0, true).await;
            report(
                &format!("  baseline GET /health/live, same open loop at {rate:.0}/s"),
                lat,
                wall,
            );
        }
    });
    slow_redis_calls(redis);
    let _ = stop_tx.send(());
    server_rt.block_on(server).unwrap().unwrap();
}

/// Redis calls that ran longer than 1 ms during the measured POSTs, by script: while one runs, Redis
/// answers nobody else (the request path's read waits behind it).
fn slow_redis_calls(redis: &RedisServer) {
    use maple_gateway::likes::staging;
    let names: Vec<(String, &str)> = [
        (staging::FLUSH, "flush"),
        (staging::CLAIM, "claim"),
        (staging::ACK, "ack"),
        (staging::PEEK, "peek"),
        (staging::FILL, "fill"),
        (staging::SETTLE, "settle"),
    ]
    .into_iter()
    .map(|(src, name)| {
        (
            fred::types::scripts::Script::from_lua(src)
                .sha1()
                .to_string(),
            name,
        )
    })
    .collect();
    let log = redis_cmd(redis.port, &["SLOWLOG", "GET", "10000"]).unwrap_or_default();
    // Entries flatten to "id time micros evalsha <sha> …": take the number before each "EVALSHA".
    let words: Vec<&str> = log.split_whitespace().collect();
    let mut by: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
    for (i, w) in words.iter().enumerate() {
        if w.eq_ignore_ascii_case("evalsha") && i >= 1 && i + 1 < words.len() {
            let micros: u64 = words[i - 1].trim_start_matches(':').parse().unwrap_or(0);
            let name = names
                .iter()
                .find(|(sha, _)| sha == words[i + 1])
                .map(|(_, n)| *n)
                .unwrap_or("other");
            let e = by.entry(name).or_default();
            e.0 += 1;
            e.1 = e.1.max(micros);
        }
    }
    println!("  redis calls over 1 ms during the POST runs (script: count, longest µs): {by:?}");
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
    let rates: Vec<f64> = std::env::var("LIKES_BENCH_RATES")
        .unwrap_or_else(|_| "1000,2000,4000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let redis = RedisServer::start();
    // With a replica online, every staging write (flush, claim, settle, ack) waits for it (`WAIT 1`).
    let _replica = (std::env::var("LIKES_BENCH_REPLICA").as_deref() == Ok("1")).then(|| {
        let replica = RedisServer::start_replica_of(redis.port);
        wait_replica_online(redis.port, Duration::from_secs(30));
        replica
    });
    println!(
        "redis: standalone, {}",
        if _replica.is_some() {
            "one replica online (LIKES_BENCH_REPLICA=1)"
        } else {
            "no replica"
        }
    );
    if only.is_empty() || only == "post" {
        let db = TestDatabase::create();
        post_like_latency(&redis, &db, requests, &rates);
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
    // The master's own count of the `WAIT`s it answered: 0 unless staging writes waited for a replica.
    let stats = redis_cmd(redis.port, &["INFO", "commandstats"]).unwrap_or_default();
    let waits = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_wait:"))
        .unwrap_or("calls=0");
    println!("redis WAIT commands answered by the master: {waits}");
}
