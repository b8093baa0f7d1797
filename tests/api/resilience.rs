//! The resilient upstream client, black-box: the real gateway against the simulator with injected faults
//! (`/_sim/faults`), upstream calls counted at `/_sim/stats`, the shared rate budget on a real `redis-server`.
//! Waits on real processes poll with a deadline; paused-time tests of the same policies live next to the
//! code (`src/nexon/*`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use maple_gateway::cache::{CacheConfig, CacheError, CachedValue, Clock, TieredCache};
use maple_gateway::config::{DatabaseSettings, RedactedUrl, RedisSettings, Secret, Settings};
use maple_gateway::ids::Priority;
use maple_gateway::nexon::rate_limit::{RateConfig, RateLimitMode, RateLimiter, WINDOW};
use maple_gateway::redis::RedisHandle;
use serde_json::{Value, json};

use crate::harness::RedisServer;
use crate::helpers::{TestApp, spawn_app_with};
use crate::services::{faults, sim_calls, start_sim};

/// A service key (500/s), so the budget does not interfere unless a test sets it.
const KEY: &str = "live_resilience_key";

async fn gateway(sim_url: &str, tweak: impl FnOnce(&mut Settings) + Send + 'static) -> TestApp {
    let sim_url = sim_url.to_string();
    spawn_app_with(move |s| {
        s.upstream.url = sim_url;
        s.upstream.api_key = Some(Secret::new(KEY));
        tweak(s);
    })
    .await
}

async fn clear_faults(http: &reqwest::Client, sim_url: &str) {
    http.delete(format!("{sim_url}/_sim/faults"))
        .send()
        .await
        .unwrap();
}

async fn reset_stats(http: &reqwest::Client, sim_url: &str) {
    http.post(format!("{sim_url}/_sim/stats/reset"))
        .send()
        .await
        .unwrap();
}

async fn total_calls(http: &reqwest::Client, sim_url: &str) -> u64 {
    let c = sim_calls(http, sim_url).await;
    ["id", "basic", "item_equipment"]
        .iter()
        .map(|k| c[k].as_u64().unwrap())
        .sum()
}

async fn upstream(app: &TestApp) -> Value {
    app.get_json("/health/ready").await.1
}

/// Polls the app's upstream status until `check` holds.
async fn wait_for_upstream(app: &TestApp, what: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = upstream(app).await;
        if check(&ready) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn expectation(app: &TestApp, name: &str) -> (u16, Option<String>, Option<String>, Value) {
    let r = app
        .get(&format!("/api/v4/characters/{name}/expectation"))
        .await;
    let status = r.status().as_u16();
    let header = |h: &str| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (cache, retry_after) = (header("x-cache"), header("retry-after"));
    (
        status,
        cache,
        retry_after,
        r.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn latency_above_the_timeout_answers_within_timeout_times_attempts_plus_backoff() {
    let sim = start_sim().await;
    let app = gateway(&sim.base_url(), |s| {
        s.upstream.timeout = Duration::from_millis(200);
    })
    .await;
    let http = &app.http;
    // Successful calls in the window give the retry budget room (20 calls → 4 retries).
    for i in 0..10 {
        assert_eq!(expectation(&app, &format!("Warm{i}")).await.0, 200);
    }
    faults(http, &sim.base_url(), json!({"latency_ms": 3000})).await;
    reset_stats(http, &sim.base_url()).await;
    let t = Instant::now();
    let (status, _, retry_after, body) = expectation(&app, "Slowpoke").await;
    let took = t.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "UPSTREAM_UNAVAILABLE");
    assert!(retry_after.is_some());
    // 3 attempts × 200 ms + backoff ≤ 100 + 200 ms, plus room for a busy test machine; without the
    // timeouts the same request would take 3 × 3 s.
    assert!(took < Duration::from_millis(600 + 300 + 700), "{took:?}");
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert_eq!(
        sim_calls(http, &sim.base_url()).await["id"],
        3,
        "one attempt and two retries"
    );
}

#[tokio::test]
async fn outage_opens_the_breaker_then_zero_calls_then_one_probe_closes_it() {
    let sim = start_sim().await;
    let app = gateway(&sim.base_url(), |s| {
        s.upstream.breaker_failures = 3;
        s.upstream.breaker_open = Duration::from_millis(1500);
    })
    .await;
    let (http, sim_url) = (&app.http, sim.base_url());
    faults(
        http,
        &sim_url,
        json!({"outage": true, "nexon_error": "OPENAPI00001"}),
    )
    .await;
    // A fresh instance has no retry budget yet: one call per request.
    for (i, name) in ["Down1", "Down2", "Down3"].iter().enumerate() {
        let ready = upstream(&app).await;
        assert_eq!(ready["upstream"]["breaker"]["state"], "closed", "{ready}");
        let (s, _, ra, body) = expectation(&app, name).await;
        assert_eq!((s, ra.is_some()), (503, true), "{body}");
        assert_eq!(total_calls(http, &sim_url).await, i as u64 + 1);
    }
    let ready = upstream(&app).await;
    assert_eq!(ready["dependencies"]["upstream"], "down", "{ready}");
    assert_eq!(ready["upstream"]["breaker"]["state"], "open");
    assert_eq!(ready["upstream"]["breaker"]["opened_total"], 1);
    assert_eq!(ready["status"], "ready", "the gateway still serves (stale)");

    reset_stats(http, &sim_url).await;
    let t = Instant::now();
    let answers = join_all((0..20).map(|i| {
        let app = &app;
        async move { expectation(app, &format!("Open{i}")).await }
    }))
    .await;
    for (s, _, ra, body) in &answers {
        assert_eq!(*s, 503, "{body}");
        assert_eq!(body["error"]["code"], "UPSTREAM_UNAVAILABLE");
        assert!(ra.is_some());
    }
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        total_calls(http, &sim_url).await,
        0,
        "no upstream call while open"
    );
    assert!(
        upstream(&app).await["upstream"]["breaker"]["rejected_total"]
            .as_u64()
            .unwrap()
            >= 20
    );

    // After the open period, one probe; the upstream is back, so it closes.
    clear_faults(http, &sim_url).await;
    wait_for_upstream(&app, "the end of the open period", |r| {
        r["upstream"]["breaker"]["retry_in_ms"] == 0
    })
    .await;
    assert_eq!(total_calls(http, &sim_url).await, 0);
    let (s, cache, _, body) = expectation(&app, "Back1").await;
    assert_eq!((s, cache.as_deref()), (200, Some("MISS")), "{body}");
    let calls = sim_calls(http, &sim_url).await;
    assert_eq!(
        (calls["id"].as_u64(), calls["item_equipment"].as_u64()),
        (Some(1), Some(1))
    );
    let ready = upstream(&app).await;
    assert_eq!(ready["upstream"]["breaker"]["state"], "closed", "{ready}");
    assert_eq!(ready["dependencies"]["upstream"], "up");
}

#[tokio::test]
async fn fifty_concurrent_requests_during_half_open_make_at_most_one_upstream_call() {
    let sim = start_sim().await;
    let app = gateway(&sim.base_url(), |s| {
        s.upstream.breaker_failures = 2;
        s.upstream.breaker_open = Duration::from_millis(800);
        s.upstream.breaker_probes = 1;
    })
    .await;
    let (http, sim_url) = (&app.http, sim.base_url());
    faults(
        http,
        &sim_url,
        json!({"outage": true, "nexon_error": "OPENAPI00001", "latency_ms": 300}),
    )
    .await;
    for name in ["Trip1", "Trip2"] {
        expectation(&app, name).await;
    }
    assert_eq!(upstream(&app).await["upstream"]["breaker"]["state"], "open");
    wait_for_upstream(&app, "the end of the open period", |r| {
        r["upstream"]["breaker"]["retry_in_ms"] == 0
    })
    .await;
    reset_stats(http, &sim_url).await;
    let answers = join_all((0..50).map(|i| {
        let app = &app;
        async move { expectation(app, &format!("Probe{i}")).await }
    }))
    .await;
    assert!(answers.iter().all(|a| a.0 == 503));
    let calls = total_calls(http, &sim_url).await;
    assert_eq!(calls, 1, "one probe, everyone else rejected");
    let ready = upstream(&app).await;
    assert_eq!(
        ready["upstream"]["breaker"]["state"], "open",
        "the failed probe re-opened it: {ready}"
    );
    assert_eq!(ready["upstream"]["breaker"]["open_for_ms"], 1600, "doubled");
}

#[tokio::test]
async fn thirty_percent_errors_keep_cached_characters_at_full_success_within_the_retry_budget() {
    let sim = start_sim().await;
    let app = gateway(&sim.base_url(), |s| {
        // Isolate the retry budget from the breaker in this test.
        s.upstream.breaker_failures = 1_000;
    })
    .await;
    let (http, sim_url) = (&app.http, sim.base_url());
    let names: Vec<String> = (0..20).map(|i| format!("Cached{i}")).collect();
    for n in &names {
        assert_eq!(expectation(&app, n).await.0, 200);
    }
    assert_eq!(total_calls(http, &sim_url).await, 40);
    faults(
        http,
        &sim_url,
        json!({"error_rate": 0.3, "nexon_error": "OPENAPI00001"}),
    )
    .await;
    let mut statuses = Vec::new();
    let mut stale = 0;
    // A character's forced refreshes are admitted once per route and minute: each round forces another route.
    for round in 0..3 {
        for chunk in names.chunks(5) {
            let answers = join_all(chunk.iter().map(|n| {
                let app = &app;
                async move {
                    let r = match round {
                        0 => {
                            app.get(&format!("/api/v4/characters/{n}/expectation?force=true"))
                                .await
                        }
                        1 => app
                            .http
                            .post(
                                app.url(&format!("/api/v4/characters/{n}/expectation/recalculate")),
                            )
                            .send()
                            .await
                            .unwrap(),
                        _ => {
                            app.get(&format!("/api/v4/characters/{n}/equipment?force=true"))
                                .await
                        }
                    };
                    let cache = r.headers()["x-cache"].to_str().unwrap().to_string();
                    (r.status().as_u16(), cache)
                }
            }))
            .await;
            for (s, cache) in answers {
                statuses.push(s);
                stale += (cache == "STALE") as usize;
            }
        }
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // 40 warm-up calls + 60 forced requests × (id + item-equipment) = 160 logical calls.
    let logical = 40 + 60 * 2;
    let calls = total_calls(http, &sim_url).await;
    let retries = calls - logical;
    assert!(retries > 0, "some failed attempts were retried");
    assert!(
        retries as f64 <= 0.2 * logical as f64,
        "{retries} retries for {logical} calls"
    );
    eprintln!(
        "30% errors: {calls} upstream calls for {logical} logical calls, {stale} stale answers"
    );
}

/// One reading of the simulator's call counter: it was taken between `sent` and `received`.
struct Sample {
    sent: Instant,
    received: Instant,
    calls: u64,
}

/// Samples the simulator's call counter until `stop` is set.
async fn sample_calls(
    http: reqwest::Client,
    sim_url: String,
    stop: Arc<AtomicBool>,
) -> Vec<Sample> {
    let mut out = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let sent = Instant::now();
        let calls = total_calls(&http, &sim_url).await;
        out.push(Sample {
            sent,
            received: Instant::now(),
            calls,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

/// The most calls between two readings surely taken within one second of each other (from the first
/// reading's request to the second's answer), so a slow reading can never stretch a window.
fn max_per_second(samples: &[Sample]) -> u64 {
    let mut max = 0;
    for (i, a) in samples.iter().enumerate() {
        for b in &samples[i + 1..] {
            if b.received - a.sent > Duration::from_secs(1) {
                break;
            }
            max = max.max(b.calls - a.calls);
        }
    }
    max
}

#[tokio::test]
async fn two_instances_sharing_redis_never_exceed_the_rate_even_in_a_429_storm() {
    const RATE: u64 = 10;
    let redis = RedisServer::start();
    let sim = start_sim().await;
    let sim_url = sim.base_url();
    let mk = |url: String| {
        let sim_url = sim_url.clone();
        async move {
            gateway(&sim_url, move |s| {
                s.redis = RedisSettings::Standalone {
                    url: RedactedUrl::new(url),
                };
                s.upstream.rate_per_s = Some(RATE);
            })
            .await
        }
    };
    let a = mk(redis.url()).await;
    let b = mk(redis.url()).await;
    assert_eq!(upstream(&a).await["upstream"]["rate"]["mode"], "shared");
    let http = a.http.clone();

    for storm in [false, true] {
        if storm {
            faults(
                &http,
                &sim_url,
                json!({"outage": true, "nexon_error": "OPENAPI00007"}),
            )
            .await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn(sample_calls(http.clone(), sim_url.clone(), stop.clone()));
        let mut statuses = Vec::new();
        for round in 0..15 {
            let batch = join_all((0..15).flat_map(|i| {
                let name = format!("S{}R{round}N{i}", storm as u8);
                [&a, &b].map(|app| {
                    let name = name.clone();
                    async move { expectation(app, &name).await }
                })
            }))
            .await;
            for (s, _, ra, body) in batch {
                if s == 429 {
                    assert_eq!(body["error"]["code"], "RATE_LIMITED");
                    assert!(ra.is_some(), "429 carries Retry-After");
                }
                statuses.push(s);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let samples = sampler.await.unwrap();
        let max = max_per_second(&samples);
        let total = samples.last().unwrap().calls - samples[0].calls;
        eprintln!(
            "storm={storm}: {total} upstream calls, at most {max} within one second; statuses {:?}",
            count(&statuses)
        );
        assert!(max <= RATE, "{max} calls within one second (rate {RATE})");
        assert!(statuses.contains(&429), "the budget refused some requests");
        if !storm {
            // Cold requests need two calls (id, then item-equipment); under this contention most of them
            // find the window full for their second call, so admissions show in the call count.
            assert!(total >= RATE, "the budget was used: {total}");
        }
        reset_stats(&http, &sim_url).await;
    }
}

fn count(statuses: &[u16]) -> Vec<(u16, usize)> {
    let mut out: Vec<(u16, usize)> = Vec::new();
    for s in statuses {
        match out.iter_mut().find(|(k, _)| k == s) {
            Some((_, n)) => *n += 1,
            None => out.push((*s, 1)),
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_shared_budget_holds_across_limiters_and_falls_back_to_one_nth_without_redis() {
    let mut redis = RedisServer::start();
    let handle = || async {
        RedisHandle::connect(&RedisSettings::Standalone {
            url: RedactedUrl::new(redis.url()),
        })
        .await
        .unwrap()
    };
    let cfg = RateConfig {
        per_second: 20,
        per_day: 1_000_000,
        max_wait: Duration::ZERO,
        instances: 4,
    };
    let l1 = RateLimiter::new(cfg.clone(), "test_shared", handle().await);
    let l2 = RateLimiter::new(cfg.clone(), "test_shared", handle().await);
    let mut admitted = 0;
    for i in 0..100 {
        let l = if i % 2 == 0 { &l1 } else { &l2 };
        admitted += l
            .acquire(Priority::Interactive, Duration::ZERO)
            .await
            .is_ok() as u32;
    }
    assert_eq!(l1.mode(), RateLimitMode::Shared);
    assert_eq!(admitted, 20, "one budget for both");
    assert_eq!(
        l2.status().used_today,
        20,
        "the daily count is cluster-wide"
    );
    // The key itself never reaches Redis.
    let keys = crate::harness::redis_cmd(redis.port, &["KEYS", "*"]).unwrap();
    assert!(!keys.contains("test_shared"), "{keys}");
    assert!(keys.contains("maple:v1:rate:"), "{keys}");

    // Background refreshes never wait and leave the second half of the window to interactive calls.
    tokio::time::sleep(WINDOW).await;
    let bg = join_all((0..20).map(|_| l1.acquire(Priority::Background, Duration::ZERO))).await;
    assert_eq!(bg.iter().filter(|r| r.is_ok()).count(), 10);
    let fg = join_all((0..20).map(|_| l2.acquire(Priority::Interactive, Duration::ZERO))).await;
    assert_eq!(fg.iter().filter(|r| r.is_ok()).count(), 10);

    redis.stop();
    tokio::time::sleep(WINDOW).await;
    let mut admitted = 0;
    for _ in 0..20 {
        admitted += l1
            .acquire(Priority::Interactive, Duration::ZERO)
            .await
            .is_ok() as u32;
    }
    assert_eq!(l1.mode(), RateLimitMode::Local);
    assert_eq!(admitted, 5, "20/s over N = 4 instances");
}

#[tokio::test]
async fn each_nexon_error_code_gets_its_documented_status_and_body() {
    // (code, never-seen status, its error code, Retry-After?, previously-seen status, health while it lasts)
    let cases: &[(&str, u16, &str, bool, u16, &str)] = &[
        ("OPENAPI00001", 503, "UPSTREAM_UNAVAILABLE", true, 200, "up"),
        (
            "OPENAPI00002",
            503,
            "UPSTREAM_AUTH",
            true,
            200,
            "key_refused",
        ),
        ("OPENAPI00003", 404, "CHARACTER_NOT_FOUND", false, 404, "up"),
        ("OPENAPI00004", 404, "CHARACTER_NOT_FOUND", false, 404, "up"),
        (
            "OPENAPI00005",
            503,
            "UPSTREAM_AUTH",
            true,
            200,
            "key_refused",
        ),
        ("OPENAPI00006", 502, "UPSTREAM_BUG", false, 502, "up"),
        ("OPENAPI00007", 429, "RATE_LIMITED", true, 200, "up"),
        ("OPENAPI00009", 503, "UPSTREAM_UNAVAILABLE", true, 200, "up"),
        (
            "OPENAPI00010",
            503,
            "UPSTREAM_UNAVAILABLE",
            true,
            200,
            "maintenance",
        ),
        (
            "OPENAPI00011",
            503,
            "UPSTREAM_UNAVAILABLE",
            true,
            200,
            "maintenance",
        ),
    ];
    let results = join_all(cases.iter().map(
        |&(code, s_new, e_new, ra, s_seen, health)| async move {
            let sim = start_sim().await;
            let app = gateway(&sim.base_url(), |s| s.upstream.breaker_failures = 1_000).await;
            assert_eq!(expectation(&app, "Seen1").await.0, 200);
            faults(
                &app.http,
                &sim.base_url(),
                json!({"outage": true, "nexon_error": code}),
            )
            .await;
            let (s, _, retry_after, body) = expectation(&app, "Fresh1").await;
            assert_eq!(s, s_new, "{code} never seen: {body}");
            assert_eq!(body["error"]["code"], e_new, "{code}: {body}");
            assert_eq!(
                retry_after.is_some(),
                ra,
                "{code}: Retry-After {retry_after:?}"
            );
            assert!(body["error"]["request_id"].is_string());
            let r = app
                .get("/api/v4/characters/Seen1/expectation?force=true")
                .await;
            let seen_status = r.status().as_u16();
            let seen_cache = r
                .headers()
                .get("x-cache")
                .map(|v| v.to_str().unwrap().to_string());
            let seen: Value = r.json().await.unwrap();
            assert_eq!(seen_status, s_seen, "{code} previously seen: {seen}");
            if s_seen == 200 {
                assert_eq!(seen_cache.as_deref(), Some("STALE"), "{code}");
                assert_eq!(seen["stale"], true, "{code}");
                assert!(seen["data_as_of"].is_string());
                assert_eq!(
                    seen["data_preparing"] == true,
                    code == "OPENAPI00009",
                    "{code}: data_preparing flag"
                );
            }
            let ready = upstream(&app).await;
            assert_eq!(ready["dependencies"]["upstream"], health, "{code}: {ready}");
            if health == "maintenance" {
                assert_eq!(ready["upstream"]["hold"]["code"], code);
                assert_eq!(ready["upstream"]["hold"]["reason"], "maintenance");
            }
            code
        },
    ))
    .await;
    assert_eq!(results.len(), cases.len());
}

#[tokio::test]
async fn previously_seen_is_stale_fast_and_never_seen_is_503_fast_during_a_full_outage() {
    let sim = start_sim().await;
    let sim_url = sim.base_url();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let on_disk = move |s: &mut Settings| {
        s.instance.data_dir = dir.clone();
        s.database = DatabaseSettings::Sqlite {
            path: dir.join("maple.db"),
        };
    };
    // Yesterday's instance saw the character: its snapshot is then past the 15-minute freshness window (a
    // fresher snapshot would rightly be served as fresh data, not as a stale fallback).
    let before = gateway(&sim_url, on_disk.clone()).await;
    assert_eq!(expectation(&before, "Veteran1").await.0, 200);
    before.stop().await;
    age_snapshots(
        &data.path().join("maple.db"),
        Duration::from_secs(24 * 3600),
    )
    .await;

    faults(
        &reqwest::Client::new(),
        &sim_url,
        json!({"outage": true, "nexon_error": "OPENAPI00001"}),
    )
    .await;
    let app = gateway(&sim_url, move |s| {
        on_disk(s);
        s.upstream.breaker_failures = 2;
    })
    .await;

    let t = Instant::now();
    let (s, _, retry_after, body) = expectation(&app, "Newbie1").await;
    let never_seen = t.elapsed();
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["error"]["code"], "UPSTREAM_UNAVAILABLE");
    assert!(retry_after.is_some());

    let t = Instant::now();
    let (s, cache, _, body) = expectation(&app, "Veteran1").await;
    let first_stale = t.elapsed();
    assert_eq!((s, cache.as_deref()), (200, Some("STALE")), "{body}");
    assert_eq!(body["stale"], true);
    assert!(body["data_as_of"].is_string());
    assert_eq!(upstream(&app).await["upstream"]["breaker"]["state"], "open");

    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let (s, cache, _, _) = expectation(&app, "Veteran1").await;
        times.push(t.elapsed());
        assert_eq!((s, cache.as_deref()), (200, Some("STALE")));
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let max = *times.last().unwrap();
    eprintln!(
        "outage: never-seen 503 in {never_seen:?}, first stale answer in {first_stale:?}, \
         then p50 {p50:?}, max {max:?}"
    );
    // The 10 ms target is for the steady state (p50 here, in a debug build); the bounds on the first
    // answers and the maximum only leave room for a busy test machine.
    assert!(p50 < Duration::from_millis(10), "{p50:?}");
    assert!(never_seen < Duration::from_millis(500), "{never_seen:?}");
    assert!(max < Duration::from_millis(250), "{max:?}");
    assert!(first_stale < Duration::from_millis(1000), "{first_stale:?}");
}

#[tokio::test]
async fn the_webhook_hears_when_the_breaker_opens() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                // A slow webhook: the request that tripped the breaker must not wait for it.
                tokio::time::sleep(Duration::from_secs(3)).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let sim = start_sim().await;
    let app = gateway(&sim.base_url(), move |s| {
        s.upstream.breaker_failures = 1;
        s.upstream.alert_webhook = Some(hook_url);
        s.instance.id = "alerting-1".into();
    })
    .await;
    faults(
        &app.http,
        &sim.base_url(),
        json!({"outage": true, "nexon_error": "OPENAPI00001"}),
    )
    .await;
    let t = Instant::now();
    assert_eq!(expectation(&app, "Alarm1").await.0, 503);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "the alert is off the request path: {:?}",
        t.elapsed()
    );
    let alert = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an alert within 10 s")
        .unwrap();
    assert_eq!(alert["kind"], "breaker_open", "{alert}");
    assert_eq!(alert["instance"], "alerting-1");
    assert_eq!(alert["detail"]["to"], "open");
}

#[tokio::test]
async fn background_refreshes_are_loaded_in_background_mode() {
    let cache: TieredCache<TestError> =
        TieredCache::new(CacheConfig::default(), None, Clock::new(), "modes".into());
    let now = cache.clock().now_ms();
    let value = move |fresh_ms: i64| CachedValue {
        body_gz: Bytes::from_static(b"x"),
        fetched_at_ms: now,
        fresh_until_ms: now + fresh_ms,
        stale_until_ms: now + 3_600_000,
        load_ms: 0,
        negative: false,
        stale: false,
        etag: maple_gateway::cache::ETag::of(b"x"),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Priority>();
    let t = tx.clone();
    cache
        .get_or_load("k", false, move |mode| async move {
            t.send(mode).unwrap();
            Ok(value(-1))
        })
        .await
        .unwrap();
    assert_eq!(
        rx.recv().await,
        Some(Priority::Interactive),
        "a miss is waited for"
    );
    // Past fresh, within the grace: served at once and refreshed by the cache itself.
    cache
        .get_or_load("k", false, move |mode| async move {
            tx.send(mode).unwrap();
            Ok(value(60_000))
        })
        .await
        .unwrap();
    let mode = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(mode, Some(Priority::Background));
}

#[derive(Debug, Clone, thiserror::Error)]
enum TestError {
    #[error("cache: {0}")]
    Cache(String),
}

impl From<CacheError> for TestError {
    fn from(e: CacheError) -> Self {
        TestError::Cache(e.to_string())
    }
}

/// Moves every stored equipment snapshot of a SQLite database `by` into the past (as if fetched earlier).
pub(crate) async fn age_snapshots(db: &std::path::Path, by: Duration) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let n = sqlx::query("UPDATE equipment_snapshots SET fetched_at = fetched_at - ?")
        .bind(by.as_millis() as i64)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert!(n >= 1, "no snapshot to age in {}", db.display());
    pool.close().await;
}

/// A shared back-off deadline beyond the maximum (written by an older version, or by hand) holds calls off
/// for at most `MAX_RETRY_AFTER`, and the admission rewrites it to that bound.
#[tokio::test]
async fn a_shared_backoff_beyond_the_maximum_holds_calls_off_for_at_most_the_maximum() {
    use maple_gateway::nexon::rate_limit::RefusalReason;
    use maple_gateway::nexon::transport::MAX_RETRY_AFTER;
    let redis = RedisServer::start();
    let handle = RedisHandle::connect(&RedisSettings::Standalone {
        url: RedactedUrl::new(redis.url()),
    })
    .await
    .unwrap();
    let cfg = RateConfig {
        per_second: 20,
        per_day: 1_000_000,
        max_wait: Duration::ZERO,
        instances: 1,
    };
    let limiter = RateLimiter::new(cfg.clone(), "test_backoff", handle);
    limiter.penalize(Duration::from_millis(50)).await;
    let keys = crate::harness::redis_cmd(redis.port, &["KEYS", "maple:v1:rate:*:backoff"]).unwrap();
    let key = keys
        .lines()
        .next()
        .expect("the back-off key")
        .trim()
        .to_string();
    // A deadline about 3,000 years from now, with no expiry.
    crate::harness::redis_cmd(redis.port, &["SET", &key, "99999999999999999999"]).unwrap();

    let fresh = RateLimiter::new(
        cfg,
        "test_backoff",
        RedisHandle::connect(&RedisSettings::Standalone {
            url: RedactedUrl::new(redis.url()),
        })
        .await
        .unwrap(),
    );
    let refused = fresh
        .acquire(Priority::Interactive, Duration::ZERO)
        .await
        .expect_err("held off");
    assert_eq!(refused.reason, RefusalReason::Backoff);
    assert!(
        refused.retry_after <= MAX_RETRY_AFTER,
        "held off for {:?}",
        refused.retry_after
    );
    let stored: f64 = crate::harness::redis_cmd(redis.port, &["GET", &key])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as f64;
    assert!(
        stored <= now_us + MAX_RETRY_AFTER.as_micros() as f64 + 5e6,
        "the stored deadline stays {stored}"
    );
    let ttl: i64 = crate::harness::redis_cmd(redis.port, &["PTTL", &key])
        .unwrap()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!(
        ttl > 0 && ttl as u128 <= MAX_RETRY_AFTER.as_millis() + 2_000,
        "the rewritten deadline expires: PTTL {ttl}"
    );
}
