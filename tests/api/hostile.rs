//! Hostile clients: a client cannot buy itself fresh rate-limit buckets, force the upstream at will, fan a
//! character out into unbounded cache variants, or split one character into several by its Unicode spelling.

use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::services::sim_calls;

async fn get_as(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = app.http.get(app.url(path));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.expect("request")
}

/// A client rotating `x-api-client` gets no fresh burst: without a trusted proxy in front, the peer address
/// is the client.
#[tokio::test]
async fn rotating_the_client_header_buys_no_fresh_burst() {
    let app = spawn_app_with(|s| s.server.client_rps = 2).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let who = format!("rotating-{i}");
        let r = get_as(
            &app,
            "/api/v4/characters/ghost1/expectation",
            &[("x-api-client", &who)],
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..4], &[404, 404, 404, 404], "{statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
}

/// A second forced refresh of the same character and route within the window is answered as a normal
/// read, says so, and costs no upstream call.
#[tokio::test]
async fn a_second_forced_refresh_within_the_window_is_throttled() {
    let app = spawn_app().await;
    let sim_url = app.sim_url.clone().unwrap();
    let path = "/api/v4/characters/Evan123/expectation";
    assert_eq!(app.get(path).await.status().as_u16(), 200);
    let r = app.get(&format!("{path}?force=true")).await;
    assert_eq!(r.headers()["x-cache"], "MISS");
    assert!(r.headers().get("x-force-refresh").is_none());
    let r = app.get(&format!("{path}?force=true")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-force-refresh"], "throttled");
    assert_ne!(r.headers()["x-cache"], "MISS", "answered as a normal read");
    let calls = sim_calls(&app.http, &sim_url).await;
    assert_eq!(calls["item_equipment"], 2, "{calls}");
    // Another character is not affected.
    let r = app
        .get("/api/v4/characters/Adele7/expectation?force=true")
        .await;
    assert!(r.headers().get("x-force-refresh").is_none());
}

/// Distinct option sets beyond the bound are computed and answered but not cached.
#[tokio::test]
async fn option_variants_beyond_the_bound_are_answered_but_not_cached() {
    let app = spawn_app().await;
    let bound = maple_gateway::characters::MAX_OPTION_VARIANTS;
    let mut variants = Vec::new();
    for discount in ["0", "0.1", "0.3"] {
        for flags in 0..8 {
            variants.push(format!(
                "starcatch={}&sunday={}&prevention={}&discount={discount}",
                flags & 1 == 1,
                flags & 2 == 2,
                flags & 4 == 4
            ));
        }
    }
    assert!(variants.len() > bound);
    let path = |q: &str| format!("/api/v4/characters/Evan123/expectation?{q}");
    for q in &variants[..=bound] {
        let r = app.get(&path(q)).await;
        assert_eq!(r.status().as_u16(), 200, "{q}");
    }
    // The first `bound` variants were stored, the one after them was not.
    for q in &variants[..bound] {
        assert_eq!(app.get(&path(q)).await.headers()["x-cache"], "HIT", "{q}");
    }
    let over = &variants[bound];
    let r = app.get(&path(over)).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-cache"], "MISS", "{over}");
    let body: Value = r.json().await.unwrap();
    assert!(body["presets"].is_array(), "still computed and answered");
}

/// "에반" precomposed (NFC) and decomposed into jamo (NFD) are one character: one ocid key, one like count.
#[tokio::test]
async fn nfc_and_nfd_spellings_are_one_character() {
    let app = spawn_app().await;
    let sim_url = app.sim_url.clone().unwrap();
    let nfc = "%EC%97%90%EB%B0%98"; // 에반
    // ᄋ ᅦ ᄇ ᅡ ᆫ
    let nfd = "%E1%84%8B%E1%85%A6%E1%84%87%E1%85%A1%E1%86%AB";
    let r = app
        .get(&format!("/api/v4/characters/{nfc}/expectation"))
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let r = app
        .get(&format!("/api/v4/characters/{nfd}/expectation"))
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["x-cache"],
        "HIT",
        "the NFD spelling hits the NFC entry"
    );
    let calls = sim_calls(&app.http, &sim_url).await;
    assert_eq!(calls["id"], 1, "one ocid lookup: {calls}");

    for (name, liker) in [(nfc, "u1"), (nfd, "u2")] {
        let r = app
            .http
            .post(app.url(&format!("/api/v2/characters/{name}/like")))
            .header("x-liker-id", liker)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    for name in [nfc, nfd] {
        let (status, body) = app
            .get_json(&format!("/api/v2/characters/{name}/like"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["like_count"], 2, "{name}: {body}");
    }
}

/// Behind a trusted proxy the client is the rightmost untrusted `X-Forwarded-For` hop: forging the left part
/// of the chain buys no fresh burst, while two real clients keep separate buckets.
#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited_not_the_forged_chain() {
    let app = spawn_app_with(|s| {
        s.server.client_rps = 2;
        s.server.trusted_proxies =
            vec![maple_gateway::config::IpNet::parse("127.0.0.0/8").unwrap()];
    })
    .await;
    let path = "/api/v4/characters/ghost1/expectation";
    let mut statuses = Vec::new();
    for i in 0..8 {
        let chain = format!("10.0.0.{i}, 198.51.100.7");
        let r = get_as(&app, path, &[("x-forwarded-for", &chain)]).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..4], &[404, 404, 404, 404], "{statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = get_as(&app, path, &[("x-forwarded-for", "198.51.100.8")]).await;
    assert_eq!(
        r.status().as_u16(),
        404,
        "another client has its own bucket"
    );
}

/// With Redis the force window is cluster-wide: a second instance refuses the force the first honoured, and
/// the option-variant bound is shared.
#[tokio::test]
async fn force_window_and_variant_bound_are_shared_through_redis() {
    use maple_gateway::config::{RedactedUrl, RedisSettings, Secret};
    let redis = crate::harness::RedisServer::start();
    let sim = crate::services::start_sim().await;
    let mut apps = Vec::new();
    for _ in 0..2 {
        let (sim_url, redis_url) = (sim.base_url(), redis.url());
        apps.push(
            spawn_app_with(move |s| {
                s.upstream.url = sim_url;
                s.upstream.api_key = Some(Secret::new("test_key"));
                s.redis = RedisSettings::Standalone {
                    url: RedactedUrl::new(redis_url),
                };
            })
            .await,
        );
    }
    let path = "/api/v4/characters/Shared1/expectation?force=true";
    let r = apps[0].get(path).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("x-force-refresh").is_none());
    let r = apps[1].get(path).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-force-refresh"], "throttled");

    let bound = maple_gateway::characters::MAX_OPTION_VARIANTS;
    let q = |i: usize| {
        format!(
            "/api/v4/characters/Shared1/expectation?starcatch={}&sunday={}&prevention={}&discount={}",
            i & 1 == 1,
            i & 2 == 2,
            i & 4 == 4,
            ["0.1", "0.3", "0.5"][i / 8]
        )
    };
    // The default options already hold one place; fill the rest through the first instance.
    for i in 0..bound - 1 {
        assert_eq!(apps[0].get(&q(i)).await.status().as_u16(), 200);
    }
    let over = q(bound - 1);
    for app in &apps {
        let r = app.get(&over).await;
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["x-cache"], "MISS", "never stored");
    }
    let r = apps[1].get(&over).await;
    assert_eq!(
        r.headers()["x-cache"],
        "MISS",
        "the second instance sees the bound"
    );
    assert_eq!(apps[1].get(&q(0)).await.headers()["x-cache"], "HIT");
}
