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
        s.instance.id = id;
        s.server.admin_token = Some(Secret::new(TOKEN));
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

fn repo_file(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `program args…` in the repository, asserting it succeeds (its stderr in the message).
fn run_ok(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/install-deps.sh installs it)"));
    assert!(
        out.status.success(),
        "{program} {}: {}{}",
        args.last().filter(|a| a.len() < 80).unwrap_or(&"(script)"),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// No Docker engine runs here: the compose file is checked with a YAML parser for what a deployment relies
/// on, and the deploy scripts with the shells' syntax check.
#[test]
fn the_compose_file_and_the_deploy_scripts_hold_what_operators_rely_on() {
    const CHECK: &str = r#"
import yaml
d = yaml.safe_load(open("deploy/docker-compose.yml"))
s = d["services"]
gateways = [n for n in s if n.startswith("gateway-")]
assert len(gateways) >= 2, gateways
for g in gateways:
    env = s[g]["environment"]
    table = str(env.get("MAPLE_CUBE_TABLE"))
    assert "sim-cube-table" not in table and "cube_probability.csv" in table, f"{g}: MAPLE_CUBE_TABLE={table}"
    got = str(env.get("MAPLE_RATE_INSTANCES"))
    assert got == str(len(gateways)), f"{g}: MAPLE_RATE_INSTANCES={got}, {len(gateways)} gateways"
    dep = s[g]["depends_on"]
    assert dep["mariadb"]["condition"] == "service_healthy", f"{g}: {dep}"
assert s["mariadb"]["healthcheck"]["test"], "mariadb healthcheck"
for node in ("redis-master", "redis-replica"):
    assert "--replicaof" not in str(s[node].get("command")), f"{node}: a fixed --replicaof"
    assert "redis-follow-master.sh" in str(s[node].get("entrypoint")), f"{node}: entrypoint"
    env = s[node]["environment"]
    assert env["SENTINELS"] and env["MASTER_NAME"] == "mymaster", f"{node}: {env}"
assert s["redis-replica"]["environment"]["FALLBACK_MASTER_HOST"] == "redis-master"
"#;
    run_ok("python3", &["-c", CHECK]);
    for script in [
        "deploy/local-cluster.sh",
        "deploy/redis-follow-master.sh",
        "scripts/install-deps.sh",
        "scripts/test.sh",
    ] {
        run_ok("bash", &["-n", script]);
    }
    run_ok("sh", &["-n", "deploy/redis-follow-master.sh"]);
    let cluster = std::fs::read_to_string(repo_file("deploy/local-cluster.sh")).unwrap();
    assert!(
        cluster.contains(r#"MAPLE_RATE_INSTANCES="${#GW_PORTS[@]}""#),
        "local-cluster.sh gives the gateways their number as MAPLE_RATE_INSTANCES"
    );
}

/// Every `maple_*` / `process_*` token of `text` (a token starts after a character that cannot be part of
/// a name).
fn metric_tokens(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let b = text.as_bytes();
    let is_name = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
    for start in 0..b.len() {
        if (start > 0 && (is_name(b[start - 1]) || b[start - 1].is_ascii_uppercase()))
            || !(b[start..].starts_with(b"maple_") || b[start..].starts_with(b"process_"))
        {
            continue;
        }
        let end = (start..b.len())
            .find(|&i| !is_name(b[i]))
            .unwrap_or(b.len());
        out.insert(text[start..end].to_string());
    }
    out
}

/// The metric names the code records: the rows of the HELP catalog, which a unit test keeps equal to the
/// `"maple_…"` / `"process_…"` literals under `src/`.
fn names_in_code() -> std::collections::BTreeSet<String> {
    maple_gateway::telemetry::help::CATALOG
        .iter()
        .map(|(name, _, _)| name.to_string())
        .collect()
}

/// `name` as registered: a histogram's `_bucket` / `_sum` / `_count` series name its histogram.
fn registered_as(name: &str, code: &std::collections::BTreeSet<String>) -> Option<String> {
    if code.contains(name) {
        return Some(name.to_string());
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find(|base| code.contains(*base))
        .map(String::from)
}

/// The alert rules and the dashboard only use metrics the gateway exports: every name they mention is
/// registered by the code, and the scan of the code is checked against a running gateway's `/metrics`
/// (every name it exports after some traffic is in the catalog, with its `# HELP` and the catalog's `# TYPE`),
/// which must also carry the build info, the process metrics and the breaker state per state.
#[tokio::test]
async fn alert_rules_and_dashboard_use_only_metrics_the_gateway_exports() {
    let app = spawn_app().await;
    assert_eq!(app.get(EXPECTATION).await.status(), 200);
    assert_eq!(app.get(EXPECTATION).await.status(), 200);
    assert_eq!(app.get("/api/v4/characters/x/nothing").await.status(), 404);
    app.get("/health/ready").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let exported: std::collections::BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            metric_tokens(l.split(['{', ' ']).next()?)
                .into_iter()
                .next()
        })
        .collect();
    for must in [
        "maple_build_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "maple_http_requests_total",
        "maple_http_request_duration_seconds_bucket",
        "maple_ready",
        "maple_breaker_state",
    ] {
        assert!(exported.contains(must), "/metrics lacks {must}:\n{metrics}");
    }
    for state in ["closed", "open", "half_open"] {
        let want = if state == "closed" { 1 } else { 0 };
        let series = format!("maple_breaker_state{{breaker=\"nexon\",state=\"{state}\"}} {want}");
        assert!(metrics.lines().any(|l| l == series), "{series}:\n{metrics}");
    }
    assert!(
        metrics.lines().any(|l| l.starts_with("maple_build_info{")
            && l.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && l.contains("commit=\"")),
        "{metrics}"
    );

    let code = names_in_code();
    for name in &exported {
        let family = registered_as(name, &code).unwrap_or_else(|| {
            panic!("{name} is exported but has no row in telemetry::help::CATALOG")
        });
        let (kind, help) = maple_gateway::telemetry::help::row(&family).unwrap();
        let help_line = format!("# HELP {family} {help}");
        let type_line = format!("# TYPE {family} {}", kind.prometheus_type());
        assert!(
            metrics.lines().any(|l| l == help_line),
            "{help_line}:\n{metrics}"
        );
        assert!(
            metrics.lines().any(|l| l == type_line),
            "{type_line}:\n{metrics}"
        );
    }
    assert!(
        exported.len() >= 15,
        "too little traffic to check: {exported:?}"
    );
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana-dashboard.json",
    ] {
        let text = std::fs::read_to_string(repo_file(file)).unwrap();
        let used = metric_tokens(&text);
        assert!(used.len() > 10, "{file}: {used:?}");
        let unknown: Vec<_> = used
            .iter()
            .filter(|n| registered_as(n, &code).is_none())
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics the gateway does not export: {unknown:?}"
        );
    }
}

/// The Redis nodes' entrypoint follows the master the Sentinels report (this node itself: no
/// `--replicaof`), and the configured master only when no Sentinel answers.
#[test]
fn redis_nodes_start_following_the_master_the_sentinels_report() {
    let topo = crate::harness::SentinelTopology::start();
    let master = topo
        .reported_master_port()
        .expect("the Sentinels know the master");
    let sentinels = topo.sentinel_list().replace(',', " ");
    let follow = |sentinels: &str, self_port: u16| {
        let out = std::process::Command::new("sh")
            .arg(repo_file("deploy/redis-follow-master.sh"))
            .args(["echo", "redis-server"])
            .env("SENTINELS", sentinels)
            .env("MASTER_NAME", &topo.master_name)
            .env("SELF_HOST", "127.0.0.1")
            .env("SELF_PORT", self_port.to_string())
            .env("FALLBACK_MASTER_HOST", "configured-master")
            .env("FALLBACK_MASTER_PORT", "6379")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let replica = follow(&sentinels, topo.replica.port);
    assert!(
        replica.ends_with(&format!("redis-server --replicaof 127.0.0.1 {master}\n")),
        "{replica}"
    );
    let the_master = follow(&sentinels, master);
    assert!(the_master.ends_with("\nredis-server\n"), "{the_master}");
    let closed = crate::harness::free_port();
    let alone = follow(&format!("127.0.0.1:{closed}"), topo.replica.port);
    assert!(
        alone.ends_with("redis-server --replicaof configured-master 6379\n"),
        "{alone}"
    );
}
