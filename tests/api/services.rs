//! The read path end to end: expectation, equipment and basic endpoints over the tiered cache, with the
//! simulator as the upstream and `/_sim/stats` as the call counter.

use std::io::Read;
use std::time::Duration;

use futures::future::join_all;
use maple_gateway::config::{RedactedUrl, RedisSettings, Secret};
use maple_gateway::sim;
use serde_json::Value;

use crate::harness::RedisServer;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// A standalone simulator shared by several gateway instances.
pub async fn start_sim() -> sim::SimHandle {
    sim::spawn(
        sim::Simulator::new(sim::SimConfig {
            seed: 7,
            api_key: None,
        }),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

pub async fn sim_calls(http: &reqwest::Client, sim_url: &str) -> Value {
    http.get(format!("{sim_url}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["calls"]
        .clone()
}

/// Merges `body` into the simulator's faults (`POST /_sim/faults`).
pub async fn faults(http: &reqwest::Client, sim_url: &str, body: Value) {
    let r = http
        .post(format!("{sim_url}/_sim/faults"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{body}");
}

/// A gateway against the simulator at `sim_url` with a test key, optionally sharing Redis at `redis`.
pub async fn app_on(sim_url: &str, redis: Option<String>) -> TestApp {
    let sim_url = sim_url.to_string();
    spawn_app_with(move |s| {
        s.upstream.url = sim_url;
        s.upstream.api_key = Some(Secret::new("test_key"));
        if let Some(url) = redis {
            s.redis = RedisSettings::Standalone {
                url: RedactedUrl::new(url),
            };
        }
    })
    .await
}

#[tokio::test]
async fn expectation_is_computed_cached_and_served_as_stored_gzip() {
    let app = spawn_app().await;
    let sim_url = app.sim_url.clone().unwrap();
    let r = app.get("/api/v4/characters/Evan123/expectation").await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-cache"], "MISS");
    assert_eq!(
        r.headers()["x-data-source"],
        "Simulated data (maple-gateway simulator), not from NEXON Open API"
    );
    assert!(r.headers().get("age").is_some());
    let text = r.text().await.unwrap();
    assert_eq!(
        text.matches("\"date\":").count(),
        1,
        "every key once at the top level"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["character"], "Evan123");
    assert_eq!(body["stale"], false);
    assert!(body["data_as_of"].is_string());
    assert_eq!(body["presets"].as_array().unwrap().len(), 3);
    assert!(
        body["table_version"].is_string(),
        "embedded mode computes with the simulator's table"
    );
    assert!(
        body["headline"]["meso"].as_u64().is_some(),
        "{}",
        body["headline"]
    );

    // Second request: an L1 hit, gzip bytes as stored.
    let r = app
        .http
        .get(app.url("/api/v4/characters/Evan123/expectation"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert_eq!(r.headers()["x-cache-tier"], "L1");
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let gz = r.bytes().await.unwrap();
    let mut raw = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut raw)
        .unwrap();
    let again: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(again, body);

    let calls = sim_calls(&app.http, &sim_url).await;
    assert_eq!(calls["id"], 1, "{calls}");
    assert_eq!(calls["item_equipment"], 1, "{calls}");
}

#[tokio::test]
async fn presets_equipment_and_basic_endpoints() {
    let app = spawn_app().await;
    let (s, body) = app
        .get_json("/api/v4/characters/Adele9/expectation/preset/2")
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["preset"]["preset_no"], 2);
    for bad in ["0", "4", "x"] {
        let (s, body) = app
            .get_json(&format!(
                "/api/v4/characters/Adele9/expectation/preset/{bad}"
            ))
            .await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "BAD_REQUEST");
    }
    let (s, eq) = app.get_json("/api/v4/characters/Adele9/equipment").await;
    assert_eq!(s, 200);
    assert_eq!(
        eq["item_equipment_preset_1"]
            .as_array()
            .map(|a| !a.is_empty()),
        Some(true)
    );
    let (s, basic) = app.get_json("/api/v1/characters/Adele9").await;
    assert_eq!(s, 200, "{basic}");
    assert!(
        basic["world"].is_string() && basic["level"].is_number(),
        "{basic}"
    );
    assert_eq!(basic["like_count"], 0);
}

#[tokio::test]
async fn unknown_characters_are_404_and_negatively_cached() {
    let app = spawn_app().await;
    let sim_url = app.sim_url.clone().unwrap();
    for _ in 0..3 {
        let (s, body) = app.get_json("/api/v4/characters/ghostly/expectation").await;
        assert_eq!(s, 404);
        assert_eq!(body["error"]["code"], "CHARACTER_NOT_FOUND");
    }
    let calls = sim_calls(&app.http, &sim_url).await;
    assert_eq!(
        calls["id"], 1,
        "negative entry answers the repeats: {calls}"
    );
}

#[tokio::test]
async fn bad_names_dates_and_options_are_400_before_any_io() {
    let app = spawn_app().await;
    let sim_url = app.sim_url.clone().unwrap();
    for path in [
        "/api/v4/characters/abcdefghijklm/expectation",
        "/api/v4/characters/a%20b/expectation",
        "/api/v4/characters/..%2F/expectation",
        "/api/v4/characters/a%2Fb/expectation",
        "/api/v4/characters/a%00b/expectation",
        "/api/v4/characters/Evan/expectation?date=2023-12-20",
        "/api/v4/characters/Evan/expectation?date=2999-01-01",
        "/api/v4/characters/Evan/expectation?date=yesterday",
        "/api/v4/characters/Evan/expectation?discount=2",
        "/api/v4/characters/Evan/expectation?starcatch=perhaps",
        "/api/v4/characters/Evan/expectation?nope=1",
        "/api/v1/characters/a.b",
    ] {
        let (s, body) = app.get_json(path).await;
        assert_eq!(s, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{path}");
    }
    let calls = sim_calls(&app.http, &sim_url).await;
    assert_eq!(
        calls,
        serde_json::json!({"id": 0, "basic": 0, "item_equipment": 0})
    );
}

#[tokio::test]
async fn starforce_options_change_the_result_and_its_key() {
    let app = spawn_app().await;
    let (_, plain) = app.get_json("/api/v4/characters/Evan123/expectation").await;
    let (_, opts) = app
        .get_json("/api/v4/characters/Evan123/expectation?starcatch=true&discount=0.3")
        .await;
    assert_eq!(opts["starforce_options"]["starcatch"], true);
    let sf = |v: &Value| v["headline"]["starforce_meso"].as_u64().unwrap();
    assert!(sf(&opts) < sf(&plain), "{} !< {}", sf(&opts), sf(&plain));
    let calls = sim_calls(&app.http, app.sim_url.as_deref().unwrap()).await;
    assert_eq!(
        calls["item_equipment"], 1,
        "options are derived from the cached raw equipment"
    );
}

/// Raw equipment loaded for an expectation is not kept in L1; it is still found — in Redis, or without Redis
/// in the database snapshot — by the next option set and by `/equipment`, without another upstream call.
#[tokio::test]
async fn raw_equipment_behind_an_expectation_is_reused_from_the_second_tier() {
    let redis = RedisServer::start();
    let sim = start_sim().await;
    let sim_url = sim.base_url();
    for (app, name) in [
        (app_on(&sim_url, None).await, "Tier1"),
        (app_on(&sim_url, Some(redis.url())).await, "Tier2"),
    ] {
        let before = sim_calls(&app.http, &sim_url).await["item_equipment"]
            .as_u64()
            .unwrap();
        let path = format!("/api/v4/characters/{name}/expectation");
        assert_eq!(app.get(&path).await.status(), 200);
        let r = app.get(&format!("{path}?sunday=true")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-cache"], "MISS");
        let r = app
            .get(&format!("/api/v4/characters/{name}/equipment"))
            .await;
        assert_eq!(r.status(), 200);
        let after = sim_calls(&app.http, &sim_url).await["item_equipment"]
            .as_u64()
            .unwrap();
        assert_eq!(
            after - before,
            1,
            "{name}: one upstream fetch for all three"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn force_and_recalculate_go_upstream_again() {
    let app = spawn_app().await;
    let sim_url = app.sim_url.clone().unwrap();
    let _ = app.get_json("/api/v4/characters/Evan123/expectation").await;
    let r = app
        .get("/api/v4/characters/Evan123/expectation?force=true")
        .await;
    assert_eq!(r.headers()["x-cache"], "MISS");
    let r = app
        .http
        .post(app.url("/api/v4/characters/Evan123/expectation/recalculate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-cache"], "MISS");
    let calls = sim_calls(&app.http, &sim_url).await;
    assert_eq!(calls["item_equipment"], 3, "{calls}");
}

async fn hammer(app: &TestApp, path: &str, n: usize) -> Vec<u16> {
    let futs = (0..n).map(|_| {
        let http = app.http.clone();
        let url = app.url(path);
        async move {
            http.get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    join_all(futs).await
}

#[tokio::test]
async fn five_hundred_concurrent_cold_requests_make_one_upstream_call_per_endpoint() {
    let sim = start_sim().await;
    let app = app_on(&sim.base_url(), None).await;
    // Slow the upstream a little so the requests really overlap.
    app.http
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&serde_json::json!({"latency_ms": 200}))
        .send()
        .await
        .unwrap();
    let statuses = hammer(&app, "/api/v4/characters/Celebrity/expectation", 500).await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    let calls = sim_calls(&app.http, &sim.base_url()).await;
    assert_eq!(calls["id"], 1, "{calls}");
    assert_eq!(calls["item_equipment"], 1, "{calls}");
}

#[tokio::test]
async fn two_instances_sharing_redis_make_one_upstream_call_per_endpoint() {
    let redis = RedisServer::start();
    let sim = start_sim().await;
    let a = app_on(&sim.base_url(), Some(redis.url())).await;
    let b = app_on(&sim.base_url(), Some(redis.url())).await;
    a.http
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&serde_json::json!({"latency_ms": 300}))
        .send()
        .await
        .unwrap();
    let path = "/api/v4/characters/SharedOne/expectation";
    let (ra, rb) = tokio::join!(hammer(&a, path, 250), hammer(&b, path, 250));
    assert!(ra.iter().chain(rb.iter()).all(|s| *s == 200));
    let calls = sim_calls(&a.http, &sim.base_url()).await;
    assert_eq!(calls["id"], 1, "{calls}");
    assert_eq!(calls["item_equipment"], 1, "{calls}");

    // A third instance finds it in L2.
    let c = app_on(&sim.base_url(), Some(redis.url())).await;
    let r = c.get(path).await;
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert_eq!(r.headers()["x-cache-tier"], "L2");
}

#[tokio::test]
async fn clients_that_disconnect_mid_flight_cause_no_extra_upstream_calls() {
    let sim = start_sim().await;
    let app = app_on(&sim.base_url(), None).await;
    app.http
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&serde_json::json!({"latency_ms": 600}))
        .send()
        .await
        .unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let path = app.url("/api/v4/characters/Leaver/expectation");
    let futs = (0..50).map(|_| impatient.get(&path).send());
    let results = join_all(futs).await;
    assert!(results.iter().all(|r| r.is_err()), "every client gave up");
    // The load went on without them: the next request is served without a new upstream call.
    let r = app.get("/api/v4/characters/Leaver/expectation").await;
    assert_eq!(r.status().as_u16(), 200);
    let calls = sim_calls(&app.http, &sim.base_url()).await;
    assert_eq!(calls["item_equipment"], 1, "{calls}");
    assert_eq!(calls["id"], 1, "{calls}");
}

#[tokio::test]
async fn redis_outage_degrades_to_l1_and_recovers_without_restart() {
    let mut redis = RedisServer::start();
    let sim = start_sim().await;
    let app = app_on(&sim.base_url(), Some(redis.url())).await;
    assert_eq!(
        app.get("/api/v4/characters/Before1/expectation")
            .await
            .status()
            .as_u16(),
        200
    );

    redis.stop();
    for name in ["During1", "During2", "Before1"] {
        let r = app
            .get(&format!("/api/v4/characters/{name}/expectation"))
            .await;
        assert_eq!(r.status().as_u16(), 200, "{name} while Redis is down");
    }
    let (s, ready) = app.get_json("/health/ready").await;
    assert_eq!(s, 200);
    assert_eq!(ready["dependencies"]["redis"], "down");

    redis.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, ready) = app.get_json("/health/ready").await;
        if ready["dependencies"]["redis"] == "up" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis never came back: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.get("/api/v4/characters/After1/expectation")
            .await
            .status()
            .as_u16(),
        200
    );
    // L2 is used again: another instance finds the new entry there.
    let other = app_on(&sim.base_url(), Some(redis.url())).await;
    let r = other.get("/api/v4/characters/After1/expectation").await;
    assert_eq!(r.headers()["x-cache-tier"], "L2");
}

#[tokio::test]
async fn simulated_answers_are_labelled_as_simulated_and_nexon_answers_as_nexon() {
    /// The `data_source` of the JSON body at `path`.
    async fn body_source(app: &TestApp, path: &str) -> serde_json::Value {
        let r = app.get(path).await;
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.json::<serde_json::Value>().await.unwrap()["data_source"].clone()
    }
    const ROUTES: [&str; 3] = [
        "/api/v4/characters/Evan123/expectation",
        "/api/v4/characters/Evan123/expectation/preset/2",
        "/api/v1/characters/Evan123",
    ];
    let app = spawn_app().await;
    let r = app.get("/api/v4/characters/Evan123/expectation").await;
    assert_eq!(r.status().as_u16(), 200);
    let label = r.headers()["x-data-source"].to_str().unwrap().to_string();
    assert!(label.contains("Simulated"), "{label}");
    assert!(!label.starts_with("Data based on NEXON"), "{label}");
    for path in ROUTES {
        assert_eq!(body_source(&app, path).await, "simulator", "{path}");
    }
    let keyed = app_on(app.sim_url.as_deref().unwrap(), None).await;
    let r = keyed.get("/api/v4/characters/Evan123/expectation").await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-data-source"], "Data based on NEXON Open API");
    for path in ROUTES {
        assert_eq!(body_source(&keyed, path).await, "nexon", "{path}");
    }
}
