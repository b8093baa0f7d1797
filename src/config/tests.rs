//! Unit tests of loading: defaults, layering, one-line errors per setting, secrecy, and the README table
//! against the declaration.

use super::*;
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn unknown_maple_variables_are_reported_with_suggestions() {
    let names = [
        "MAPLE_RATE_PER_SECOND",
        "MAPLE_LISTEN",
        "PATH",
        "MAPLE_NOPE",
    ]
    .map(String::from);
    let unknown = unknown_env_vars(names);
    assert_eq!(unknown.len(), 2, "{unknown:?}");
    assert_eq!(unknown[1].0, "MAPLE_RATE_PER_SECOND");
    assert!(unknown[1].1.contains(&"MAPLE_RATE_PER_S"), "{unknown:?}");
    assert_eq!(unknown[0], ("MAPLE_NOPE".to_string(), vec![]));
}

#[test]
fn the_other_commands_variables_are_not_unknown_to_serve() {
    let names = COMMAND_VARS.iter().map(|n| n.to_string());
    assert_eq!(unknown_env_vars(names), vec![]);
    assert!(COMMAND_VARS.contains(&"MAPLE_SIM_API_KEY"));
}

fn load(file: Option<&Path>, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load(file, &move |k| map.get(k).cloned())
}

#[test]
fn defaults_are_the_embedded_mode() {
    let s = load(None, &[]).unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(s.upstream.url, DEFAULT_UPSTREAM_URL);
    assert!(s.uses_embedded_simulator());
    assert_eq!(s.redis, RedisSettings::Disabled);
    assert_eq!(
        s.database,
        DatabaseSettings::Sqlite {
            path: PathBuf::from("./var/maple.db")
        }
    );
    assert!(s.server.admin_token.is_none());
    assert_eq!(s.cache.l1_max_bytes, 256 << 20);
    assert!(!s.instance.id.is_empty());
    assert_eq!(s.upstream.deadline, Duration::from_millis(8_000));
    assert_eq!(s.upstream.retry_max, 2);
    assert_eq!(s.upstream.retry_budget_ratio, 0.2);
    assert_eq!(s.upstream.breaker_failures, 5);
    assert_eq!(s.upstream.breaker_open, Duration::from_secs(5));
    assert_eq!(s.upstream.breaker_open_max, Duration::from_secs(60));
    assert_eq!(s.upstream.breaker_probes, 1);
    assert_eq!(s.upstream.maintenance_hold, Duration::from_secs(300));
    assert_eq!(s.upstream.auth_hold, Duration::from_secs(60));
    assert_eq!(
        (s.upstream.rate_per_s, s.upstream.rate_per_day),
        (None, None),
        "from the key type"
    );
    assert_eq!(s.upstream.rate_wait, Duration::from_millis(100));
    assert_eq!(s.upstream.rate_instances, 1);
    assert_eq!(s.upstream.alert_webhook, None);
}

#[test]
fn resilience_settings_are_read_from_the_environment() {
    let s = load(
        None,
        &[
            ("MAPLE_BREAKER_OPEN_MS", "200"),
            ("MAPLE_BREAKER_FAILURES", "3"),
            ("MAPLE_RATE_PER_S", "7"),
            ("MAPLE_RATE_WAIT_MS", "0"),
            ("MAPLE_ALERT_WEBHOOK", "http://127.0.0.1:9/hook"),
        ],
    )
    .unwrap();
    assert_eq!(s.upstream.breaker_open, Duration::from_millis(200));
    assert_eq!(s.upstream.breaker_open_max, Duration::from_secs(60));
    assert_eq!(s.upstream.breaker_failures, 3);
    assert_eq!(s.upstream.rate_per_s, Some(7));
    assert_eq!(s.upstream.rate_wait, Duration::ZERO);
    assert_eq!(
        s.upstream.alert_webhook.as_deref(),
        Some("http://127.0.0.1:9/hook")
    );
    let e = load(
        None,
        &[
            ("MAPLE_BREAKER_OPEN_MS", "20000"),
            ("MAPLE_BREAKER_OPEN_MAX_MS", "10000"),
        ],
    )
    .unwrap_err();
    assert_eq!(e.setting, "MAPLE_BREAKER_OPEN_MAX_MS");
}

#[test]
fn env_overrides_file_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maple.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\nredis_master = \"filemaster\"\nl1_max_bytes = 2097152\n",
    )
    .unwrap();
    let s = load(Some(&file), &[]).unwrap();
    assert_eq!(s.server.listen.port(), 9000);
    assert_eq!(s.instance.data_dir, PathBuf::from("/tmp/from-file"));
    assert_eq!(s.cache.l1_max_bytes, 2 << 20);

    let s = load(
        Some(&file),
        &[
            ("MAPLE_LISTEN", "127.0.0.1:9100"),
            ("MAPLE_REDIS_SENTINELS", "127.0.0.1:26379, 127.0.0.1:26380"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.listen.port(), 9100, "env beats file");
    assert_eq!(
        s.instance.data_dir,
        PathBuf::from("/tmp/from-file"),
        "file beats default"
    );
    assert_eq!(
        s.redis,
        RedisSettings::Sentinel {
            sentinels: vec!["127.0.0.1:26379".into(), "127.0.0.1:26380".into()],
            master: "filemaster".into(),
            password: None
        }
    );
}

#[test]
fn api_key_or_custom_upstream_turns_the_simulator_off() {
    assert!(
        !load(None, &[("NEXON_API_KEY", "test_abc")])
            .unwrap()
            .uses_embedded_simulator()
    );
    assert!(
        !load(None, &[("MAPLE_UPSTREAM_URL", "http://127.0.0.1:9999/")])
            .unwrap()
            .uses_embedded_simulator()
    );
    assert_eq!(
        load(None, &[("MAPLE_UPSTREAM_URL", "http://127.0.0.1:9999/")])
            .unwrap()
            .upstream
            .url,
        "http://127.0.0.1:9999"
    );
}

#[test]
fn each_invalid_value_names_its_setting_in_one_line() {
    let cases: &[(&str, &str)] = &[
        ("MAPLE_LISTEN", "not-an-address"),
        ("MAPLE_UPSTREAM_URL", "ftp://x"),
        ("MAPLE_REDIS_URL", "http://x"),
        ("MAPLE_REDIS_SENTINELS", "hostonly"),
        ("MAPLE_DATABASE_URL", "postgres://x"),
        ("MAPLE_ADMIN_TOKEN", "short"),
        ("MAPLE_CUBE_TABLE", "/no/such/table.csv"),
        ("MAPLE_INSTANCE_ID", "has space"),
        ("MAPLE_L1_MAX_BYTES", "lots"),
        ("MAPLE_UPSTREAM_TIMEOUT_MS", "0"),
        ("MAPLE_LOG_FORMAT", "xml"),
        ("MAPLE_CLIENT_RPS", "-3"),
        ("MAPLE_XFETCH_BETA", "-1"),
        ("MAPLE_FLIGHT_LEASE_MS", "5"),
        ("NEXON_API_KEY", " "),
        ("MAPLE_UPSTREAM_DEADLINE_MS", "0"),
        ("MAPLE_RETRY_MAX", "3"),
        ("MAPLE_RETRY_BUDGET_RATIO", "1.5"),
        ("MAPLE_BREAKER_FAILURES", "0"),
        ("MAPLE_BREAKER_OPEN_MS", "soon"),
        ("MAPLE_BREAKER_OPEN_MAX_MS", "9"),
        ("MAPLE_BREAKER_PROBES", "0"),
        ("MAPLE_MAINTENANCE_HOLD_S", "0"),
        ("MAPLE_AUTH_HOLD_S", "-1"),
        ("MAPLE_RATE_PER_S", "0"),
        ("MAPLE_RATE_PER_DAY", "many"),
        ("MAPLE_RATE_WAIT_MS", "1.5"),
        ("MAPLE_RATE_INSTANCES", "0"),
        ("MAPLE_ALERT_WEBHOOK", "mailto:ops@example.com"),
        ("MAPLE_LIKE_FLUSH_MS", "5"),
        ("MAPLE_LIKE_SYNC_MS", "soon"),
        ("MAPLE_LIKE_BUFFER_MAX", "0"),
        ("MAPLE_LIKE_SYNC_BATCH", "20000"),
    ];
    for (name, value) in cases {
        let e = load(None, &[(name, value)]).unwrap_err();
        assert_eq!(&e.setting, name, "{e}");
        let line = e.to_string();
        assert!(line.starts_with("invalid configuration: "), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
    }
}

#[test]
fn both_redis_modes_at_once_is_an_error() {
    let e = load(
        None,
        &[
            ("MAPLE_REDIS_URL", "redis://127.0.0.1:6379"),
            ("MAPLE_REDIS_SENTINELS", "127.0.0.1:26379"),
        ],
    )
    .unwrap_err();
    assert_eq!(e.setting, "MAPLE_REDIS_SENTINELS");
}

#[test]
fn bad_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nno_such_key = 1\n").unwrap();
    let e = load(Some(&file), &[]).unwrap_err();
    assert_eq!(e.setting, "--config");
    assert!(e.problem.contains("no_such_key"), "{e}");
    let e = load(Some(&dir.path().join("missing.toml")), &[]).unwrap_err();
    assert!(e.problem.contains("cannot read"), "{e}");
}

#[test]
fn secrets_never_appear_in_debug() {
    let s = load(
        None,
        &[
            ("NEXON_API_KEY", "test_supersecretkey"),
            ("MAPLE_ADMIN_TOKEN", "admintoken-0123456789"),
            (
                "MAPLE_DATABASE_URL",
                "mysql://root:dbpass123@127.0.0.1:3306/maple",
            ),
            ("MAPLE_REDIS_URL", "redis://:redispass9@127.0.0.1:6379"),
        ],
    )
    .unwrap();
    let dbg = format!("{s:?}");
    for secret in [
        "supersecretkey",
        "admintoken-0123456789",
        "dbpass123",
        "redispass9",
    ] {
        assert!(!dbg.contains(secret), "{secret} leaked in {dbg}");
    }
    assert!(
        dbg.contains("127.0.0.1:3306/maple"),
        "non-secret parts stay readable: {dbg}"
    );
    let e = load(
        None,
        &[("MAPLE_DATABASE_URL", "postgres://u:topsecret@h/db")],
    )
    .unwrap_err();
    assert!(!e.to_string().contains("topsecret"), "{e}");
}

#[test]
fn readme_documents_every_env_var() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for Spec { name, .. } in SETTINGS {
        assert!(readme.contains(name), "README.md does not mention {name}");
    }
}

/// The README's configuration table is the declaration's: same rows, same order, same defaults, ranges
/// and meanings. On a mismatch the message carries the table to paste.
#[test]
fn readme_table_equals_the_declaration() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let header = "| variable | default | accepts | meaning |";
    let start = readme
        .find(header)
        .expect("README.md has the configuration table");
    let table: String = readme[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        table,
        readme_table(),
        "README.md's table differs from the declaration; expected:\n{}",
        readme_table()
    );
}

#[test]
fn every_setting_is_declared_once_with_a_valid_default() {
    let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), SETTINGS.len(), "a name is declared twice");
    for spec in SETTINGS {
        assert!(
            spec.name.starts_with("MAPLE_") || spec.name == "NEXON_API_KEY",
            "{}",
            spec.name
        );
        assert!(
            !spec.doc.is_empty() && !spec.doc.contains('\n'),
            "{}",
            spec.name
        );
    }
    assert_eq!(
        SETTINGS
            .iter()
            .find(|s| s.name == "NEXON_API_KEY")
            .map(Spec::toml_key),
        Some("nexon_api_key".to_string())
    );
    // The groups' defaults are the defaults `load` yields.
    let s = load(None, &[]).unwrap();
    assert_eq!(
        LikeSettings::default().sync_batch,
        s.likes.sync_batch,
        "group defaults come from the declaration"
    );
    assert_eq!(CacheSettings::default().flight_lease, s.cache.flight_lease);
    assert_eq!(s.likes.flush, Duration::from_millis(500));
}

#[test]
fn every_setting_can_be_set_in_the_file_under_its_toml_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maple.toml");
    std::fs::write(
        &file,
        "like_sync_batch = 99\nxfetch_beta = 0.5\nlog_format = \"json\"\nbreaker_open_ms = \"120000\"\n",
    )
    .unwrap();
    let s = load(Some(&file), &[]).unwrap();
    assert_eq!(s.likes.sync_batch, 99);
    assert_eq!(s.cache.xfetch_beta, 0.5);
    assert_eq!(s.telemetry.log_format, LogFormat::Json);
    assert_eq!(
        s.upstream.breaker_open_max,
        Duration::from_secs(120),
        "unset, the longest open period follows the first"
    );
    let e = load(Some(&file), &[("MAPLE_LIKE_SYNC_BATCH", "10001")]).unwrap_err();
    assert_eq!(e.setting, "MAPLE_LIKE_SYNC_BATCH");
    assert_eq!(e.problem, "must be at most 10000, got 10001");
}

#[test]
fn trusted_proxies_are_ips_or_cidrs() {
    assert!(load(None, &[]).unwrap().server.trusted_proxies.is_empty());
    let s = load(
        None,
        &[("MAPLE_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,fd00::/8")],
    )
    .unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let nets = &s.server.trusted_proxies;
    assert_eq!(nets.len(), 3);
    assert!(nets[0].contains(ip("10.200.3.4")));
    assert!(!nets[0].contains(ip("11.0.0.1")));
    assert!(nets[1].contains(ip("127.0.0.1")));
    assert!(nets[1].contains(ip("::ffff:127.0.0.1")), "IPv4-mapped");
    assert!(!nets[1].contains(ip("127.0.0.2")));
    assert!(nets[2].contains(ip("fd12::1")));
    assert!(!nets[2].contains(ip("10.0.0.1")));
    assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x"] {
        let e = load(None, &[("MAPLE_TRUSTED_PROXIES", bad)]).unwrap_err();
        assert_eq!(e.setting, "MAPLE_TRUSTED_PROXIES", "{bad}");
    }
}

#[test]
fn every_duration_has_a_finite_documented_maximum() {
    // A duration is added to `Instant::now()` somewhere (holds, leases, sync and flush timers): its declared
    // maximum must leave that sum far from overflowing, and a value above it must be refused at start-up.
    const DAY_MS: u64 = 24 * 3600 * 1000;
    for spec in SETTINGS {
        let max_ms = match spec.kind {
            Kind::Millis { max, .. } => max,
            Kind::Secs { max, .. } => max.saturating_mul(1000),
            _ => continue,
        };
        assert!(
            max_ms <= 7 * DAY_MS,
            "{} allows up to {max_ms} ms",
            spec.name
        );
        assert!(
            std::time::Instant::now()
                .checked_add(Duration::from_millis(max_ms))
                .is_some(),
            "{}",
            spec.name
        );
    }
    for name in [
        "MAPLE_MAINTENANCE_HOLD_S",
        "MAPLE_AUTH_HOLD_S",
        "MAPLE_FLIGHT_LEASE_MS",
        "MAPLE_LIKE_SYNC_MS",
    ] {
        let e = load(None, &[(name, "18446744073709551615")]).unwrap_err();
        assert_eq!(e.setting, name);
    }
}
