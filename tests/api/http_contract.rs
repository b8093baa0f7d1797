//! The HTTP contract a caching client relies on, black-box: `ETag` (stable across instances sharing Redis,
//! per representation), `If-None-Match` → 304 on hits and stale answers, `Cache-Control`/`Age`/`Cache-Status`,
//! `Allow` on 405, and HEAD answering with the GET's headers and no body.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::RedisServer;
use crate::helpers::{TestApp, spawn_app};
use crate::services::{app_on, faults, start_sim};

const EXPECTATION: &str = "/api/v4/characters/Evan123/expectation";

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.http.get(app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

/// `max-age`, `stale-while-revalidate` and `stale-if-error` of a `Cache-Control` value.
fn directives(cc: &str) -> (i64, i64, i64) {
    let get = |name: &str| {
        cc.split(',')
            .map(str::trim)
            .find_map(|d| d.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("{name} in {cc:?}"))
            .parse::<i64>()
            .unwrap()
    };
    (
        get("max-age"),
        get("stale-while-revalidate"),
        get("stale-if-error"),
    )
}

#[tokio::test]
async fn the_etag_is_the_same_on_two_instances_sharing_redis_and_differs_per_representation() {
    let redis = RedisServer::start();
    let sim = start_sim().await;
    let a = app_on(&sim.base_url(), Some(redis.url())).await;
    let b = app_on(&sim.base_url(), Some(redis.url())).await;

    let first = a.get(EXPECTATION).await;
    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(header(&first, "x-cache"), "MISS");
    let tag = header(&first, "etag");
    assert!(
        tag.len() == 34 && tag.starts_with('"') && tag.ends_with('"'),
        "{tag}"
    );
    assert_eq!(
        header(&first, "cache-status"),
        "maple-gateway; fwd=miss; fwd-status=200; stored"
    );

    let other = b.get(EXPECTATION).await;
    assert_eq!(header(&other, "x-cache"), "HIT");
    assert_eq!(header(&other, "x-cache-tier"), "L2");
    assert_eq!(header(&other, "etag"), tag, "same value, same tag");
    let again = a.get(EXPECTATION).await;
    assert_eq!(header(&again, "etag"), tag, "a hit keeps the tag");

    let gz = get_with(&b, EXPECTATION, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    let gz_tag = header(&gz, "etag");
    assert_eq!(gz_tag, format!("{}-gz\"", &tag[..tag.len() - 1]));
    assert_eq!(header(&gz, "vary"), "accept-encoding");

    // A preset is derived per request from the stored body: its own tag, equal on both instances.
    let p_a = a.get(&format!("{EXPECTATION}/preset/2")).await;
    let p_b = b.get(&format!("{EXPECTATION}/preset/2")).await;
    assert_eq!(p_a.status().as_u16(), 200);
    assert_eq!(header(&p_a, "etag"), header(&p_b, "etag"));
    assert_ne!(header(&p_a, "etag"), tag);
}

#[tokio::test]
async fn if_none_match_is_answered_304_on_a_hit_and_on_a_stale_answer() {
    let sim = start_sim().await;
    let app = app_on(&sim.base_url(), None).await;
    let first = app.get(EXPECTATION).await;
    let tag = header(&first, "etag");
    let cc = header(&first, "cache-control");

    for inm in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"other\", {tag}"),
        "*".to_string(),
    ] {
        let r = get_with(&app, EXPECTATION, &[("if-none-match", &inm)]).await;
        assert_eq!(r.status().as_u16(), 304, "{inm}");
        assert_eq!(header(&r, "x-cache"), "HIT");
        assert_eq!(header(&r, "etag"), tag);
        assert!(header(&r, "cache-control").starts_with("max-age="));
        assert_eq!(header(&r, "cache-status").split(';').nth(1), Some(" hit"));
        assert!(r.bytes().await.unwrap().is_empty(), "304 has no body");
    }
    assert_eq!(directives(&cc).0, 900, "the latest snapshot: 15 minutes");
    let miss = get_with(&app, EXPECTATION, &[("if-none-match", "\"nope\"")]).await;
    assert_eq!(miss.status().as_u16(), 200);

    // The upstream fails: a forced refresh is answered with the last good copy, marked stale.
    faults(
        &app.http,
        &sim.base_url(),
        json!({"outage": true, "nexon_error": "OPENAPI00011"}),
    )
    .await;
    let forced = format!("{EXPECTATION}?force=true");
    let stale = app.get(&forced).await;
    assert_eq!(stale.status().as_u16(), 200);
    assert_eq!(header(&stale, "x-cache"), "STALE");
    let stale_tag = header(&stale, "etag");
    assert_ne!(
        stale_tag, tag,
        "the stale body says so: another representation"
    );
    let cs = header(&stale, "cache-status");
    // The expectation computed from the stale equipment copy, or the cached expectation itself.
    assert!(
        cs.starts_with("maple-gateway; fwd=stale; fwd-status=5") || cs.ends_with("; detail=stale"),
        "{cs}"
    );
    let r = get_with(&app, &forced, &[("if-none-match", &stale_tag)]).await;
    assert_eq!(r.status().as_u16(), 304);
    assert_eq!(header(&r, "x-cache"), "STALE");
    assert_eq!(header(&r, "etag"), stale_tag);
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn cache_control_leaves_the_freshness_left_as_max_age_minus_age() {
    let app = spawn_app().await;
    let first = app.get(EXPECTATION).await;
    let (max_age, swr, if_error) = directives(&header(&first, "cache-control"));
    assert_eq!(max_age, 15 * 60, "the latest snapshot is fresh 15 minutes");
    assert_eq!(swr, 3600, "the gateway's own revalidation grace");
    assert_eq!(
        if_error,
        30 * 24 * 3600 - 15 * 60,
        "stale served up to 30 days"
    );
    let age0: i64 = header(&first, "age").parse().unwrap();

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = app.get(EXPECTATION).await;
    assert_eq!(header(&later, "x-cache"), "HIT");
    let (max_age_later, ..) = directives(&header(&later, "cache-control"));
    let age: i64 = header(&later, "age").parse().unwrap();
    assert!(age >= age0 + 2, "age grows: {age0} then {age}");
    assert!(
        max_age_later - age < max_age - age0,
        "freshness left decreases with age"
    );
    let ttl: i64 = header(&later, "cache-status")
        .rsplit("ttl=")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ttl, max_age_later - age, "Cache-Status ttl = max-age - Age");

    let like = app.get("/api/v2/characters/Evan123/like").await;
    assert_eq!(header(&like, "cache-control"), "private, no-store");
}

#[tokio::test]
async fn a_405_lists_the_routes_methods_in_allow() {
    let app = spawn_app().await;
    for (method, path, want) in [
        ("TRACE", "/health/ready", "GET,HEAD"),
        ("DELETE", EXPECTATION, "GET,HEAD"),
        ("PUT", "/api/v2/characters/Evan123/like", "GET,HEAD,POST"),
    ] {
        let r = app
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(path),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
        let mut allow: Vec<String> = header(&r, "allow")
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        allow.sort();
        assert_eq!(allow.join(","), want, "{method} {path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn head_answers_with_the_get_headers_and_no_body() {
    let app = spawn_app().await;
    let get = app.get(EXPECTATION).await;
    assert_eq!(get.status().as_u16(), 200);
    let get_headers = get.headers().clone();
    let get_len = get.bytes().await.unwrap().len();
    let head = app.http.head(app.url(EXPECTATION)).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(header(&head, "x-cache"), "HIT");
    for name in ["etag", "content-type", "vary", "x-data-source"] {
        assert_eq!(head.headers().get(name), get_headers.get(name), "{name}");
    }
    assert!(header(&head, "cache-control").starts_with("max-age=900,"));
    assert_eq!(header(&head, "content-length"), get_len.to_string());
    assert!(head.bytes().await.unwrap().is_empty());

    for path in [
        "/health/live",
        "/openapi.json",
        "/api/v1/characters/Evan123",
    ] {
        let r = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "HEAD {path}");
        assert!(r.bytes().await.unwrap().is_empty());
    }
}
