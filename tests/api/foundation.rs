//! The foundation: health, errors, request ids, limits, bad names.

use crate::helpers::spawn_app;
use crate::services::{faults, sim_calls};

#[tokio::test]
async fn live_and_ready_are_200_with_dependencies_listed() {
    let app = spawn_app().await;
    let (s, _) = app.get_json("/health/live").await;
    assert_eq!(s, 200);
    let (s, body) = app.get_json("/health/ready").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["dependencies"]["database"], "up");
    assert_eq!(body["dependencies"]["redis"], "disabled");
    assert_eq!(body["dependencies"]["upstream"], "up");
    assert_eq!(body["upstream_mode"], "simulator");
    app.stop().await;
}

#[tokio::test]
async fn ready_turns_503_once_shutdown_begins() {
    let app = spawn_app().await;
    let state_ready = app.get("/health/ready").await.status().as_u16();
    assert_eq!(state_ready, 200);
    let base = app.base.clone();
    app.stop().await;
    // After stop the listener is gone: connection refused, not a 200.
    let r = reqwest::get(format!("{base}/health/ready")).await;
    assert!(r.is_err() || r.unwrap().status().as_u16() == 503);
}

#[tokio::test]
async fn unknown_route_is_a_json_404_with_request_id() {
    let app = spawn_app().await;
    let r = app.get("/no/such/route").await;
    assert_eq!(r.status().as_u16(), 404);
    let id = r
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(!id.is_empty());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert_eq!(body["error"]["request_id"], id.as_str());
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn client_request_id_is_propagated_and_garbage_is_replaced() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let long = "x".repeat(200);
    let r = app
        .http
        .get(app.url("/health/live"))
        .header("x-request-id", long.as_str())
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, long);
    assert!(!id.is_empty());
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_json() {
    let app = spawn_app().await;
    let big = vec![b'a'; 64 * 1024 + 1];
    let r = app
        .http
        .post(app.url("/health/live"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn http_metrics_are_labelled_by_route_template_never_by_raw_path() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/api/v4/characters/LabelProbe7/expectation")
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.get("/no/such/route/LabelProbe7")
            .await
            .status()
            .as_u16(),
        404
    );
    let r = app.http.post(app.url("/health/live")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"maple_http_requests_total{route="/api/v4/characters/{name}/expectation",method="GET",status="200"}"#,
        r#"maple_http_requests_total{route="unmatched",method="GET",status="404"}"#,
        r#"maple_http_requests_total{route="/health/live",method="POST",status="405"}"#,
        r#"maple_http_request_duration_seconds_count{route="/api/v4/characters/{name}/expectation",method="GET"}"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("LabelProbe7"),
        "a raw path is never a label:\n{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    let _ = app.get("/health/live").await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("maple_http_requests_total"), "{text}");
}

#[tokio::test]
async fn openapi_documents_exactly_the_public_routes_and_each_is_served() {
    let app = spawn_app().await;
    let (s, doc) = app.get_json("/openapi.json").await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    documented.sort();
    let mut routes: Vec<(String, String)> = [
        ("/api/v4/characters/{name}/expectation", "get"),
        ("/api/v4/characters/{name}/expectation/preset/{n}", "get"),
        ("/api/v4/characters/{name}/expectation/recalculate", "post"),
        ("/api/v4/characters/{name}/equipment", "get"),
        ("/api/v1/characters/{name}", "get"),
        ("/api/v2/characters/{name}/like", "post"),
        ("/api/v2/characters/{name}/like", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ]
    .iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    routes.sort();
    assert_eq!(documented, routes, "the document and the served routes");
    // Every documented operation is routed: neither the fallback's 404 nor a 405.
    for (path, method) in &documented {
        let url = app.url(&path.replace("{name}", "Evan123").replace("{n}", "1"));
        let r = app
            .http
            .request(method.to_uppercase().parse().unwrap(), url)
            .header("x-liker-id", "liker-1")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_ne!(status, 405, "{method} {path}");
        if status == 404 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_ne!(
                body["error"]["code"], "NOT_FOUND",
                "{method} {path} is not routed"
            );
        }
    }
}

#[tokio::test]
async fn per_client_rate_limit_answers_429_with_retry_after() {
    // The test client speaks as a trusted proxy, which may name its clients with `x-api-client`.
    let app = crate::helpers::spawn_app_with(|s| {
        s.server.client_rps = 2;
        s.server.trusted_proxies = vec![maple_gateway::config::IpNet::parse("127.0.0.1").unwrap()];
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = app
            .http
            .get(app.url("/api/v4/characters/ghost1/expectation"))
            .header("x-api-client", "load-test-a")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "RATE_LIMITED");
        }
    }
    assert_eq!(
        &statuses[..4],
        &[404, 404, 404, 404],
        "burst of 2 x rps passes"
    );
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another client is not affected; health routes are never limited.
    let r = app
        .http
        .get(app.url("/api/v4/characters/ghost1/expectation"))
        .header("x-api-client", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(app.get("/health/live").await.status().as_u16(), 200);
}

/// With every concurrency permit taken, a request is answered 503 `OVERLOADED` at once (nothing queues) while
/// the health probes and `/metrics` still answer;
/// a request that outlives the request timeout is answered 503 `TIMEOUT`; both carry `Retry-After`, the
/// request id and the JSON error shape, and are counted by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_at_once_and_a_slow_request_times_out() {
    use std::time::{Duration, Instant};
    let app = crate::helpers::spawn_app_with(|s| {
        s.server.max_concurrency = 1;
        s.server.request_timeout = Duration::from_millis(400);
        s.upstream.timeout = Duration::from_secs(60);
        s.upstream.deadline = Duration::from_secs(60);
    })
    .await;
    let sim = app.sim_url.clone().expect("embedded simulator");
    faults(&app.http, &sim, serde_json::json!({"latency_ms": 30000})).await;

    // The only permit: a request stuck on the slow upstream until the request timeout.
    let stuck_url = app.url("/api/v1/characters/Evan");
    let client = app.http.clone();
    let stuck = tokio::spawn(async move { client.get(stuck_url).send().await.unwrap() });
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if sim_calls(&app.http, &sim).await["id"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "the request never reached the simulator"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = app
        .http
        .get(app.url("/openapi.json"))
        .header("x-request-id", "shed-1")
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(shed.headers()["x-request-id"], "shed-1");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "OVERLOADED", "{body}");
    assert_eq!(body["error"]["request_id"], "shed-1");
    // The probes take no permit: an orchestrator must not see a busy instance as a dead one.
    for probe in ["/health/live", "/health/ready", "/metrics"] {
        assert_eq!(app.get(probe).await.status().as_u16(), 200, "{probe}");
    }

    let timed_out = stuck.await.unwrap();
    assert_eq!(timed_out.status().as_u16(), 503);
    assert_eq!(timed_out.headers()["retry-after"], "1");
    let body: serde_json::Value = timed_out.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TIMEOUT", "{body}");

    // The permit came back with the timed-out request (`/openapi.json` takes one; the probes do not).
    assert_eq!(app.get("/openapi.json").await.status().as_u16(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for reason in ["overloaded", "timeout"] {
        let label = format!("reason=\"{reason}\"");
        let count: f64 = metrics
            .lines()
            .find(|l| l.starts_with("maple_http_rejected_total{") && l.contains(&label))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no maple_http_rejected_total for {reason}:\n{metrics}"));
        assert!(count >= 1.0, "{reason}: {count}");
    }
    app.stop().await;
}
