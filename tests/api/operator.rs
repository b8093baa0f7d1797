//! Operator paths and background work that must not leak, hang or stall: drills abandoned by their
//! request or longer than the request timeout, the cluster flight's local signal map while Redis fails or
//! a leader never signals, and a like batch holding one character's thousands of likers.

use std::time::{Duration, Instant};

use maple_gateway::cache::flight::{
    ClusterFlight, FlightRole, FlightSignals, WaitOutcome, lease_key,
};
use maple_gateway::config::{DatabaseSettings, RedactedUrl, RedisSettings, Secret, Settings};
use maple_gateway::redis::RedisHandle;
use serde_json::Value;

use crate::harness::{RedisServer, SentinelTopology, TestDatabase, redis_cmd};
use crate::helpers::{TestApp, spawn_app_with};
use crate::likes::{Workload, assert_all_ok, send, wait_for_exact_totals};

const TOKEN: &str = "operator-token-0123456789";

fn with_token(s: &mut Settings) {
    s.server.admin_token = Some(Secret::new(TOKEN));
}

async fn admin_post(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Starts an admin POST and abandons it after `after` (the client goes away mid-request).
async fn abandon_post(app: &TestApp, path: &str, after: Duration) {
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(TOKEN)
        .timeout(after)
        .send()
        .await;
    assert!(
        r.as_ref().is_err_and(|e| e.is_timeout()),
        "the drill was still running when the client left: {r:?}"
    );
}

async fn breaker_state(app: &TestApp) -> String {
    let r = app
        .http
        .get(app.url("/admin/status"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["upstream"]["breaker"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_upstream_outage_drill_longer_than_the_request_timeout_runs_to_its_end() {
    let app = spawn_app_with(|s| {
        with_token(s);
        s.server.request_timeout = Duration::from_secs(1);
    })
    .await;
    let (status, report) = admin_post(&app, "/admin/drills/upstream-outage?seconds=2").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["seconds"], 2, "{report}");
    assert_eq!(report["breaker_after"], "closed", "{report}");
    assert_eq!(breaker_state(&app).await, "closed");
}

#[tokio::test]
async fn an_abandoned_upstream_outage_drill_closes_the_breaker_at_once() {
    let app = spawn_app_with(with_token).await;
    abandon_post(
        &app,
        "/admin/drills/upstream-outage?seconds=60",
        Duration::from_millis(300),
    )
    .await;
    let started = Instant::now();
    loop {
        let state = breaker_state(&app).await;
        if state == "closed" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the breaker stays {state:?} after its drill was abandoned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn probe_keys(port: u16) -> String {
    redis_cmd(port, &["KEYS", "maple:v1:drill:probe:*"]).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abandoned_failover_drill_stops_its_probe_and_deletes_its_key() {
    let topo = SentinelTopology::start();
    let sentinels: Vec<String> = topo.sentinel_list().split(',').map(String::from).collect();
    let app = spawn_app_with(move |s| {
        with_token(s);
        s.redis = RedisSettings::Sentinel {
            sentinels,
            master: "mymaster".into(),
            password: None,
        };
    })
    .await;
    let address = format!("127.0.0.1:{}", topo.master.port);
    let started = Instant::now();
    loop {
        let (_, ready) = app.get_json("/health/ready").await;
        if ready["redis_master"]["address"] == address && ready["dependencies"]["redis"] == "up" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    abandon_post(
        &app,
        "/admin/drills/redis-failover",
        Duration::from_millis(400),
    )
    .await;
    // The drill's job finishes what it started (the switch is awaited, bounded) and then removes its probe
    // key from whichever server is the master; nothing writes it any more. If the failover was asked for,
    // the demoted master's copy goes only with its resync from the new master (~15 s after the switch).
    let ports = [topo.master.port, topo.replica.port];
    let started = Instant::now();
    loop {
        let left: Vec<String> = ports.iter().map(|p| probe_keys(*p)).collect();
        if left.iter().all(|k| k.is_empty()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the probe key of an abandoned drill is still there: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let left: Vec<String> = ports.iter().map(|p| probe_keys(*p)).collect();
    assert!(
        left.iter().all(|k| k.is_empty()),
        "something still writes the probe: {left:?}"
    );
}

async fn redis_at(url: String) -> RedisHandle {
    RedisHandle::connect(&RedisSettings::Standalone {
        url: RedactedUrl::new(url),
    })
    .await
    .expect("client builds")
    .expect("redis configured")
}

#[tokio::test]
async fn the_flight_signal_map_empties_while_redis_fails() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let redis = redis_at(format!("redis://127.0.0.1:{closed}")).await;
    let signals = std::sync::Arc::new(FlightSignals::default());
    let flight = ClusterFlight::new(redis, Duration::from_secs(5), signals.clone());
    let joins = (0..200).map(|i| {
        let flight = flight.clone();
        async move { flight.join(&format!("maple:v1:test:unreachable:{i}")).await }
    });
    let results = futures::future::join_all(joins).await;
    assert!(results.iter().all(|r| r.is_err()), "Redis is unreachable");
    assert_eq!(signals.len(), 0, "every failed join left its registration");
}

#[tokio::test]
async fn the_flight_signal_map_empties_when_followers_give_up() {
    let server = RedisServer::start();
    let redis = redis_at(server.url()).await;
    let signals = std::sync::Arc::new(FlightSignals::default());
    let flight = ClusterFlight::new(redis, Duration::from_secs(60), signals.clone());
    // A leader elsewhere holds every lease and never signals.
    let keys: Vec<String> = (0..50)
        .map(|i| format!("maple:v1:test:silent:{i}"))
        .collect();
    for k in &keys {
        redis_cmd(
            server.port,
            &["SET", &lease_key(k), "someone-else", "PX", "60000"],
        )
        .expect("lease set");
    }
    let mut waits = Vec::new();
    for k in &keys {
        match flight.join(k).await.expect("redis up") {
            FlightRole::Follower(w) => waits.push(w),
            FlightRole::Leader(_) => panic!("the lease of {k} is held elsewhere"),
        }
    }
    // Half of them time out, the other half are abandoned by their callers.
    let abandoned = waits.split_off(25);
    drop(abandoned);
    for w in waits {
        let outcome = w.wait(Duration::from_millis(60), || async { false }).await;
        assert_eq!(outcome, WaitOutcome::TimedOut);
    }
    assert_eq!(
        signals.len(),
        0,
        "followers that gave up left their entries"
    );
    // A leader of a fresh key registers nothing that outlives it either.
    match flight.join("maple:v1:test:fresh").await.expect("redis up") {
        FlightRole::Leader(p) => p.complete().await,
        FlightRole::Follower(_) => panic!("nobody holds this lease"),
    }
    assert_eq!(signals.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nine_thousand_likers_of_one_character_settle_in_one_batch() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let (redis_url, db_url) = (redis.url(), db.url());
    let backends = move |s: &mut Settings| {
        s.redis = RedisSettings::Standalone {
            url: RedactedUrl::new(redis_url.clone()),
        };
        s.database = DatabaseSettings::Mysql {
            url: RedactedUrl::new(db_url.clone()),
        };
        s.likes.flush = Duration::from_millis(100);
    };
    // The first instance only pushes into the queue (its sync interval is longer than the test) ...
    let pusher = {
        let backends = backends.clone();
        spawn_app_with(move |s| {
            backends(s);
            s.likes.sync = Duration::from_secs(3600);
        })
        .await
    };
    let likes: Vec<(String, String)> = (0..9_000)
        .map(|i| ("Popular".to_string(), format!("liker-{i}")))
        .collect();
    let w = Workload::of(likes);
    let statuses = send(&[&pusher], &w.likes).await;
    assert_all_ok(&statuses, "likes");
    let started = Instant::now();
    while redis_cmd(redis.port, &["LLEN", "maple:v1:likes:queue"]).as_deref() != Some(":9000") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the likes never all reached the queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... so the second one claims all 9,000 pairs of one character in one batch.
    let syncer = {
        let backends = backends.clone();
        spawn_app_with(move |s| {
            backends(s);
            s.likes.sync = Duration::from_millis(300);
            s.likes.sync_batch = 10_000;
        })
        .await
    };
    wait_for_exact_totals(&db, &w, Duration::from_secs(30)).await;
    let started = Instant::now();
    loop {
        let queue = redis_cmd(redis.port, &["LLEN", "maple:v1:likes:queue"]);
        let pending = redis_cmd(redis.port, &["HLEN", "maple:v1:likes:pending"]);
        if queue.as_deref() == Some(":0") && pending.as_deref() == Some(":0") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the batch was never settled: queue {queue:?}, pending {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = syncer.get_json("/api/v2/characters/Popular/like").await;
    assert_eq!(
        (status, body["like_count"].as_i64()),
        (200, Some(9_000)),
        "{body}"
    );
    syncer.stop().await;
    pusher.stop().await;
}
