//! What operators rely on: the cache purge across instances and tiers, content negotiation, and that every
//! metric the alert rules and the dashboard use is one the gateway exports.

use std::time::Duration;

use maple_gateway::config::{RedactedUrl, RedisSettings, Secret};

use crate::harness::{RedisServer, redis_cmd};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const TOKEN: &str = "admintoken-0123456789";
const EXPECTATION: &str = "/api/v4/characters/Stat1/expectation";

/// A gateway on `redis`, as instance `id` (instances tell their own invalidation messages by it).
async fn gateway_on(redis: &RedisServer, id: &str) -> TestApp {
    let (url, id) = (redis.url(), id.to_string());
    spawn_app_with(move |s| {
        s.instance_id = id;
        s.admin_token = Some(Secret::new(TOKEN));
        s.redis = RedisSettings::Standalone {
            url: RedactedUrl::new(url),
        };
    })
    .await
}

/// `x-cache` and `x-cache-tier` of a GET.
async fn cache_status(app: &TestApp, path: &str) -> (String, String) {
    let r = app.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .map_or("-".to_string(), |v| v.to_str().unwrap().to_string())
    };
    (h("x-cache"), h("x-cache-tier"))
}

/// The character's keys in Redis (flight leases aside).
fn l2_keys(redis: &RedisServer) -> String {
    redis_cmd(redis.port, &["KEYS", "maple:v1:c:stat1:*"]).unwrap()
}

#[tokio::test]
async fn the_purge_drops_a_character_from_l2_and_from_l1_on_every_instance() {
    let redis = RedisServer::start();
    let a = gateway_on(&redis, "ops-a").await;
    let b = gateway_on(&redis, "ops-b").await;
    assert_eq!(cache_status(&a, EXPECTATION).await.0, "MISS");
    assert_eq!(
        cache_status(&b, EXPECTATION).await,
        ("HIT".into(), "L2".into())
    );
    assert_eq!(
        cache_status(&b, EXPECTATION).await,
        ("HIT".into(), "L1".into())
    );
    assert!(!l2_keys(&redis).is_empty());

    let r = a
        .http
        .post(a.url("/admin/cache/invalidate/Stat1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(l2_keys(&redis), "", "no key of the character is left in L2");
    // The other instance hears of the purge through pub/sub.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cache_status(&b, EXPECTATION).await.0,
        "MISS",
        "the other instance loads again"
    );
    assert_eq!(
        cache_status(&a, EXPECTATION).await,
        ("HIT".into(), "L2".into()),
        "the purging instance dropped its L1 copy and reads the new value from L2"
    );
}

/// `Accept-Encoding` decides the body's encoding: q=0 (in any spelling) refuses gzip, also beside `*`.
#[tokio::test]
async fn gzip_is_sent_only_to_clients_that_accept_it() {
    let app = spawn_app().await;
    let cases = [
        ("gzip", true),
        ("GZIP;q=0.5", true),
        ("*", true),
        ("gzip;q=0", false),
        ("gzip;q=0.0", false),
        ("gzip;Q=0", false),
        ("gzip;q=0, *", false),
        ("*;q=0", false),
        ("identity", false),
    ];
    for (accept, gzip) in cases {
        let r = app
            .http
            .get(app.url(EXPECTATION))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{accept}");
        let encoding = r.headers().get("content-encoding").cloned();
        let body = r.bytes().await.unwrap();
        if gzip {
            assert_eq!(encoding.unwrap(), "gzip", "{accept}");
            assert_eq!(&body[..2], &[0x1f, 0x8b], "{accept}: a gzip body");
        } else {
            assert!(encoding.is_none(), "{accept}: {encoding:?}");
            serde_json::from_slice::<serde_json::Value>(&body)
                .unwrap_or_else(|e| panic!("{accept}: plain JSON expected: {e}"));
        }
    }
}
