//! Typed settings: defaults < optional TOML file (`--config PATH`) < `MAPLE_*` / `NEXON_API_KEY` env vars.
//!
//! Contract: [`Settings::load`] either returns settings that are valid as a whole, or one [`ConfigError`]
//! whose message is a single line naming the setting (its env var name) and the problem. It never panics.
//! Secrets (API key, admin token, Redis password, passwords inside URLs) are wrapped in [`Secret`] or redacted,
//! so neither `Debug` nor logs can print them.
//!
//! The env var names are part of the public interface; [`ENV_VARS`] is the single table of them, used by
//! `--help` and checked against the README by a test. The environment is passed in (a lookup function), not
//! read from the process, so tests never mutate global state.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The upstream's real base URL; with it and no API key the gateway runs the simulator in-process.
pub const DEFAULT_UPSTREAM_URL: &str = "https://open.api.nexon.com";

/// Every environment variable the gateway reads: (name, default, meaning).
pub const ENV_VARS: &[(&str, &str, &str)] = &[
    (
        "MAPLE_LISTEN",
        "127.0.0.1:8080",
        "address the HTTP server binds (port 0 = any free port)",
    ),
    (
        "NEXON_API_KEY",
        "(unset)",
        "Nexon Open API key; unset with the default upstream URL = in-process simulator",
    ),
    (
        "MAPLE_UPSTREAM_URL",
        DEFAULT_UPSTREAM_URL,
        "base URL of the Nexon Open API (or of a simulator)",
    ),
    (
        "MAPLE_REDIS_URL",
        "(unset)",
        "standalone Redis, e.g. redis://127.0.0.1:6379 (L2 cache, flight, shared limiter)",
    ),
    (
        "MAPLE_REDIS_SENTINELS",
        "(unset)",
        "comma-separated Sentinel host:port list (Sentinel mode)",
    ),
    ("MAPLE_REDIS_MASTER", "mymaster", "Sentinel master name"),
    ("MAPLE_REDIS_PASSWORD", "(unset)", "Redis password (secret)"),
    (
        "MAPLE_DATABASE_URL",
        "sqlite://<data dir>/maple.db",
        "mysql://user:pass@host/db or sqlite://path",
    ),
    (
        "MAPLE_DATA_DIR",
        "./var",
        "directory for SQLite, backups and the journal",
    ),
    (
        "MAPLE_ADMIN_TOKEN",
        "(unset)",
        "bearer token of the /admin API; admin routes are absent when unset (secret)",
    ),
    (
        "MAPLE_CUBE_TABLE",
        "(unset)",
        "path to a cube probability CSV; unset = cube blocks unavailable (simulator table in embedded mode)",
    ),
    (
        "MAPLE_INSTANCE_ID",
        "<host name>-<pid>",
        "this instance's name in logs, locks and backups",
    ),
    (
        "MAPLE_L1_MAX_BYTES",
        "268435456",
        "L1 (in-process) cache bound in bytes",
    ),
    (
        "MAPLE_FLIGHT_LEASE_MS",
        "10000",
        "lease of the cluster-wide loader of a key (a dead leader is replaced after it)",
    ),
    (
        "MAPLE_FLIGHT_WAIT_MS",
        "5000",
        "how long followers wait for the leader before re-reading L2",
    ),
    (
        "MAPLE_XFETCH_BETA",
        "1.0",
        "XFetch early-refresh aggressiveness (0 = refresh only at expiry)",
    ),
    (
        "MAPLE_UPSTREAM_TIMEOUT_MS",
        "3000",
        "per-attempt timeout of an upstream call",
    ),
    (
        "MAPLE_REQUEST_TIMEOUT_MS",
        "10000",
        "per-request timeout of the HTTP server",
    ),
    (
        "MAPLE_CLIENT_RPS",
        "0",
        "requests per second per client (its address; behind a trusted proxy its x-api-client header, else X-Forwarded-For) on data routes; 0 = no limit",
    ),
    (
        "MAPLE_TRUSTED_PROXIES",
        "(empty)",
        "comma-separated IPs or CIDRs of the reverse proxies whose X-Forwarded-For and x-api-client are believed",
    ),
    (
        "MAPLE_MAX_CONCURRENCY",
        "1024",
        "requests processed at once; beyond it requests are shed with 503",
    ),
    (
        "MAPLE_SHUTDOWN_GRACE_MS",
        "20000",
        "how long in-flight requests may drain at shutdown",
    ),
    ("MAPLE_LOG_FORMAT", "text", "text or json"),
    (
        "MAPLE_UPSTREAM_DEADLINE_MS",
        "8000",
        "overall deadline of one logical upstream call, retries and rate waits included",
    ),
    (
        "MAPLE_RETRY_MAX",
        "2",
        "retries of a failed upstream attempt (connect errors, timeouts, 5xx, 429 only; 0-2)",
    ),
    (
        "MAPLE_RETRY_BUDGET_RATIO",
        "0.2",
        "retries allowed as a share of upstream calls over a 10 s sliding window (0-1)",
    ),
    (
        "MAPLE_BREAKER_FAILURES",
        "5",
        "consecutive upstream faults that open the circuit breaker",
    ),
    (
        "MAPLE_BREAKER_OPEN_MS",
        "5000",
        "first open period of the circuit breaker (doubles after each failed probe)",
    ),
    (
        "MAPLE_BREAKER_OPEN_MAX_MS",
        "60000",
        "longest open period of the circuit breaker",
    ),
    (
        "MAPLE_BREAKER_PROBES",
        "1",
        "concurrent trial calls the half-open breaker admits",
    ),
    (
        "MAPLE_MAINTENANCE_HOLD_S",
        "300",
        "after an upstream maintenance answer (00010/00011), serve stale only for this long",
    ),
    (
        "MAPLE_AUTH_HOLD_S",
        "60",
        "after the upstream refused the key (00002/00005), make no call for this long",
    ),
    (
        "MAPLE_RATE_PER_S",
        "by key type",
        "shared upstream budget per second: test_ keys 5, others 500, embedded simulator 10000",
    ),
    (
        "MAPLE_RATE_PER_DAY",
        "by key type",
        "shared upstream budget per KST day: test_ keys 1000, others 20000000, embedded simulator unlimited",
    ),
    (
        "MAPLE_RATE_WAIT_MS",
        "100",
        "longest an interactive request waits for a rate slot before stale / 429 (background never waits)",
    ),
    (
        "MAPLE_RATE_INSTANCES",
        "1",
        "N: without Redis (or while it is down) each instance uses 1/N of the rate budget",
    ),
    (
        "MAPLE_ALERT_WEBHOOK",
        "(unset)",
        "http(s) URL receiving a JSON POST when the breaker opens, maintenance begins or the key is refused",
    ),
    (
        "MAPLE_LIKE_FLUSH_MS",
        "500",
        "how often accepted likes move from the in-process buffer to Redis",
    ),
    (
        "MAPLE_LIKE_SYNC_MS",
        "2000",
        "how often one instance moves likes from Redis (or from its buffer, Redis down) to the database",
    ),
    (
        "MAPLE_LIKE_BUFFER_MAX",
        "200000",
        "likes an instance keeps until the database has them; when full, new likes get 503",
    ),
    (
        "MAPLE_LIKE_SYNC_BATCH",
        "2000",
        "likes per database transaction of the sync (1-10000)",
    ),
    (
        "MAPLE_JOURNAL_FSYNC_MS",
        "50",
        "how often the like journal is fsynced (1-1000); bounds what a kill -9 can lose",
    ),
];

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A URL whose password part is redacted in `Debug` and [`RedactedUrl::redacted`].
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl(url.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with any `:password@` replaced by `:***@`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_string()
            };
            format!("{}://{}@{}", &url[..scheme_end], masked, &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

/// An IP address or CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `None` unless `s` is an address, or an address with a prefix length within its family's width.
    pub fn parse(s: &str) -> Option<IpNet> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse().ok()?, None),
        };
        let width = match addr {
            std::net::IpAddr::V4(_) => 32,
            std::net::IpAddr::V6(_) => 128,
        };
        let prefix = prefix.unwrap_or(width);
        (prefix <= width).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` lies in this block (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix as u32)
            }
        }
        match (self.addr, ip.to_canonical()) {
            (std::net::IpAddr::V4(net), std::net::IpAddr::V4(ip)) => {
                masked(u32::from(net) as u128, 32, self.prefix)
                    == masked(u32::from(ip) as u128, 32, self.prefix)
            }
            (std::net::IpAddr::V6(net), std::net::IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// How the gateway reaches Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisSettings {
    /// No Redis: L2, cluster-wide flight and the shared limiter are off.
    Disabled,
    Standalone {
        url: RedactedUrl,
    },
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        password: Option<Secret>,
    },
}

/// The database backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseSettings {
    Sqlite { path: PathBuf },
    Mysql { url: RedactedUrl },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated settings of one gateway instance.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub nexon_api_key: Option<Secret>,
    pub upstream_url: String,
    pub redis: RedisSettings,
    pub database: DatabaseSettings,
    pub data_dir: PathBuf,
    pub admin_token: Option<Secret>,
    pub cube_table: Option<PathBuf>,
    pub instance_id: String,
    pub l1_max_bytes: u64,
    pub flight_lease: Duration,
    pub flight_wait: Duration,
    pub xfetch_beta: f64,
    pub upstream_timeout: Duration,
    pub request_timeout: Duration,
    pub max_concurrency: usize,
    /// Per-client requests per second on the data routes; 0 = no limit.
    pub client_rps: u32,
    /// Peers whose `X-Forwarded-For` and `x-api-client` name the client (empty: none).
    pub trusted_proxies: Vec<IpNet>,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub upstream_deadline: Duration,
    pub retry_max: u32,
    pub retry_budget_ratio: f64,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    pub breaker_open_max: Duration,
    pub breaker_probes: u32,
    pub maintenance_hold: Duration,
    pub auth_hold: Duration,
    /// `None`: the key type's default.
    pub rate_per_s: Option<u64>,
    /// `None`: the key type's default.
    pub rate_per_day: Option<u64>,
    pub rate_wait: Duration,
    pub rate_instances: u32,
    pub alert_webhook: Option<String>,
    pub like_flush: Duration,
    pub like_sync: Duration,
    pub like_buffer_max: usize,
    pub like_sync_batch: usize,
    /// Interval of the like journal's batched fsync.
    pub journal_fsync: Duration,
}

impl Settings {
    /// True when the gateway must start the simulator in-process: no API key and the default upstream.
    pub fn uses_embedded_simulator(&self) -> bool {
        self.nexon_api_key.is_none() && self.upstream_url == DEFAULT_UPSTREAM_URL
    }

    /// Settings for tests and embedded use: all defaults, listening on a free loopback port, with
    /// everything under `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Settings {
        let env = |k: &str| match k {
            "MAPLE_LISTEN" => Some("127.0.0.1:0".to_string()),
            "MAPLE_DATA_DIR" => Some(data_dir.display().to_string()),
            "MAPLE_INSTANCE_ID" => Some("test".to_string()),
            _ => None,
        };
        Settings::load(None, &env).expect("default settings are valid")
    }

    /// Loads settings: defaults, then the TOML file if given, then the environment (via `env`).
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut raw = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    setting: "--config".into(),
                    problem: format!("cannot read {}: {e}", path.display()),
                })?;
                toml::from_str::<RawSettings>(&text).map_err(|e| ConfigError {
                    setting: "--config".into(),
                    problem: format!(
                        "{} is not valid: {}",
                        path.display(),
                        e.message().replace('\n', " ")
                    ),
                })?
            }
            None => RawSettings::default(),
        };
        raw.overlay_env(env);
        raw.validate()
    }

    /// Loads from the process environment.
    pub fn from_process(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load(file, &|k| std::env::var(k).ok())
    }
}

/// A configuration problem: one line naming the setting and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

fn err(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_string(),
        problem: problem.into(),
    }
}

/// The file/env layer before validation. Field names in the TOML file are the env names without the
/// `MAPLE_` prefix, lower-cased (`listen`, `redis_sentinels`, …; `nexon_api_key` for the key).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    listen: Option<String>,
    nexon_api_key: Option<Secret>,
    upstream_url: Option<String>,
    redis_url: Option<Secret>,
    redis_sentinels: Option<String>,
    redis_master: Option<String>,
    redis_password: Option<Secret>,
    database_url: Option<Secret>,
    data_dir: Option<String>,
    admin_token: Option<Secret>,
    cube_table: Option<String>,
    instance_id: Option<String>,
    l1_max_bytes: Option<NumOrString>,
    flight_lease_ms: Option<NumOrString>,
    flight_wait_ms: Option<NumOrString>,
    xfetch_beta: Option<String>,
    upstream_timeout_ms: Option<NumOrString>,
    request_timeout_ms: Option<NumOrString>,
    max_concurrency: Option<NumOrString>,
    client_rps: Option<NumOrString>,
    trusted_proxies: Option<String>,
    shutdown_grace_ms: Option<NumOrString>,
    log_format: Option<String>,
    upstream_deadline_ms: Option<NumOrString>,
    retry_max: Option<NumOrString>,
    retry_budget_ratio: Option<String>,
    breaker_failures: Option<NumOrString>,
    breaker_open_ms: Option<NumOrString>,
    breaker_open_max_ms: Option<NumOrString>,
    breaker_probes: Option<NumOrString>,
    maintenance_hold_s: Option<NumOrString>,
    auth_hold_s: Option<NumOrString>,
    rate_per_s: Option<NumOrString>,
    rate_per_day: Option<NumOrString>,
    rate_wait_ms: Option<NumOrString>,
    rate_instances: Option<NumOrString>,
    alert_webhook: Option<String>,
    like_flush_ms: Option<NumOrString>,
    like_sync_ms: Option<NumOrString>,
    like_buffer_max: Option<NumOrString>,
    like_sync_batch: Option<NumOrString>,
    journal_fsync_ms: Option<NumOrString>,
}

/// TOML numbers may be written as numbers or strings; env values are always strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(i64),
    Str(String),
}

impl NumOrString {
    fn parse_u64(&self, setting: &str, min: u64) -> Result<u64, ConfigError> {
        let v = match self {
            NumOrString::Num(n) if *n >= 0 => *n as u64,
            NumOrString::Num(n) => {
                return Err(err(setting, format!("must not be negative, got {n}")));
            }
            NumOrString::Str(s) => s.trim().parse::<u64>().map_err(|_| {
                err(
                    setting,
                    format!("expected a non-negative integer, got {s:?}"),
                )
            })?,
        };
        if v < min {
            return Err(err(setting, format!("must be at least {min}, got {v}")));
        }
        Ok(v)
    }
}

impl RawSettings {
    fn overlay_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        fn set<T>(slot: &mut Option<T>, v: Option<String>, f: impl Fn(String) -> T) {
            if let Some(v) = v {
                *slot = Some(f(v));
            }
        }
        set(&mut self.listen, env("MAPLE_LISTEN"), |v| v);
        set(&mut self.nexon_api_key, env("NEXON_API_KEY"), Secret);
        set(&mut self.upstream_url, env("MAPLE_UPSTREAM_URL"), |v| v);
        set(&mut self.redis_url, env("MAPLE_REDIS_URL"), Secret);
        set(
            &mut self.redis_sentinels,
            env("MAPLE_REDIS_SENTINELS"),
            |v| v,
        );
        set(&mut self.redis_master, env("MAPLE_REDIS_MASTER"), |v| v);
        set(
            &mut self.redis_password,
            env("MAPLE_REDIS_PASSWORD"),
            Secret,
        );
        set(&mut self.database_url, env("MAPLE_DATABASE_URL"), Secret);
        set(&mut self.data_dir, env("MAPLE_DATA_DIR"), |v| v);
        set(&mut self.admin_token, env("MAPLE_ADMIN_TOKEN"), Secret);
        set(&mut self.cube_table, env("MAPLE_CUBE_TABLE"), |v| v);
        set(&mut self.instance_id, env("MAPLE_INSTANCE_ID"), |v| v);
        set(
            &mut self.l1_max_bytes,
            env("MAPLE_L1_MAX_BYTES"),
            NumOrString::Str,
        );
        set(
            &mut self.flight_lease_ms,
            env("MAPLE_FLIGHT_LEASE_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.flight_wait_ms,
            env("MAPLE_FLIGHT_WAIT_MS"),
            NumOrString::Str,
        );
        set(&mut self.xfetch_beta, env("MAPLE_XFETCH_BETA"), |v| v);
        set(
            &mut self.upstream_timeout_ms,
            env("MAPLE_UPSTREAM_TIMEOUT_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.request_timeout_ms,
            env("MAPLE_REQUEST_TIMEOUT_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.max_concurrency,
            env("MAPLE_MAX_CONCURRENCY"),
            NumOrString::Str,
        );
        set(
            &mut self.client_rps,
            env("MAPLE_CLIENT_RPS"),
            NumOrString::Str,
        );
        set(
            &mut self.trusted_proxies,
            env("MAPLE_TRUSTED_PROXIES"),
            |v| v,
        );
        set(
            &mut self.shutdown_grace_ms,
            env("MAPLE_SHUTDOWN_GRACE_MS"),
            NumOrString::Str,
        );
        set(&mut self.log_format, env("MAPLE_LOG_FORMAT"), |v| v);
        set(
            &mut self.upstream_deadline_ms,
            env("MAPLE_UPSTREAM_DEADLINE_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.retry_max,
            env("MAPLE_RETRY_MAX"),
            NumOrString::Str,
        );
        set(
            &mut self.retry_budget_ratio,
            env("MAPLE_RETRY_BUDGET_RATIO"),
            |v| v,
        );
        set(
            &mut self.breaker_failures,
            env("MAPLE_BREAKER_FAILURES"),
            NumOrString::Str,
        );
        set(
            &mut self.breaker_open_ms,
            env("MAPLE_BREAKER_OPEN_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.breaker_open_max_ms,
            env("MAPLE_BREAKER_OPEN_MAX_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.breaker_probes,
            env("MAPLE_BREAKER_PROBES"),
            NumOrString::Str,
        );
        set(
            &mut self.maintenance_hold_s,
            env("MAPLE_MAINTENANCE_HOLD_S"),
            NumOrString::Str,
        );
        set(
            &mut self.auth_hold_s,
            env("MAPLE_AUTH_HOLD_S"),
            NumOrString::Str,
        );
        set(
            &mut self.rate_per_s,
            env("MAPLE_RATE_PER_S"),
            NumOrString::Str,
        );
        set(
            &mut self.rate_per_day,
            env("MAPLE_RATE_PER_DAY"),
            NumOrString::Str,
        );
        set(
            &mut self.rate_wait_ms,
            env("MAPLE_RATE_WAIT_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.rate_instances,
            env("MAPLE_RATE_INSTANCES"),
            NumOrString::Str,
        );
        set(&mut self.alert_webhook, env("MAPLE_ALERT_WEBHOOK"), |v| v);
        set(
            &mut self.like_flush_ms,
            env("MAPLE_LIKE_FLUSH_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.like_sync_ms,
            env("MAPLE_LIKE_SYNC_MS"),
            NumOrString::Str,
        );
        set(
            &mut self.like_buffer_max,
            env("MAPLE_LIKE_BUFFER_MAX"),
            NumOrString::Str,
        );
        set(
            &mut self.like_sync_batch,
            env("MAPLE_LIKE_SYNC_BATCH"),
            NumOrString::Str,
        );
        set(
            &mut self.journal_fsync_ms,
            env("MAPLE_JOURNAL_FSYNC_MS"),
            NumOrString::Str,
        );
    }

    fn validate(self) -> Result<Settings, ConfigError> {
        let listen_s = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_s.trim().parse().map_err(|_| {
            err(
                "MAPLE_LISTEN",
                format!("expected host:port such as 127.0.0.1:8080, got {listen_s:?}"),
            )
        })?;

        let nexon_api_key = match self.nexon_api_key {
            Some(k) if k.0.trim().is_empty() => {
                return Err(err("NEXON_API_KEY", "is set but empty"));
            }
            Some(k) if k.0.chars().any(|c| c.is_control() || c == ' ') => {
                return Err(err(
                    "NEXON_API_KEY",
                    "contains spaces or control characters",
                ));
            }
            other => other,
        };

        let upstream_url = self
            .upstream_url
            .unwrap_or_else(|| DEFAULT_UPSTREAM_URL.into())
            .trim_end_matches('/')
            .to_string();
        if !(upstream_url.starts_with("http://") || upstream_url.starts_with("https://"))
            || upstream_url.len() <= "https://".len()
        {
            return Err(err(
                "MAPLE_UPSTREAM_URL",
                format!("expected an http:// or https:// URL, got {upstream_url:?}"),
            ));
        }

        let master = self.redis_master.unwrap_or_else(|| "mymaster".into());
        if master.trim().is_empty() {
            return Err(err("MAPLE_REDIS_MASTER", "must not be empty"));
        }
        let redis = match (self.redis_url, self.redis_sentinels) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "MAPLE_REDIS_SENTINELS",
                    "set either MAPLE_REDIS_URL (standalone) or MAPLE_REDIS_SENTINELS (Sentinel), not both",
                ));
            }
            (Some(url), None) => {
                let u = url.0.trim().to_string();
                if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
                    return Err(err(
                        "MAPLE_REDIS_URL",
                        format!("expected redis://host:port, got {:?}", redact_url(&u)),
                    ));
                }
                RedisSettings::Standalone {
                    url: RedactedUrl(u),
                }
            }
            (None, Some(list)) => {
                let sentinels: Vec<String> = list
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if sentinels.is_empty() {
                    return Err(err(
                        "MAPLE_REDIS_SENTINELS",
                        "is set but lists no host:port",
                    ));
                }
                for s in &sentinels {
                    let ok = s.rsplit_once(':').is_some_and(|(h, p)| {
                        !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)
                    });
                    if !ok {
                        return Err(err(
                            "MAPLE_REDIS_SENTINELS",
                            format!("expected host:port entries, got {s:?}"),
                        ));
                    }
                }
                RedisSettings::Sentinel {
                    sentinels,
                    master,
                    password: self.redis_password.clone(),
                }
            }
            (None, None) => RedisSettings::Disabled,
        };

        let data_dir = PathBuf::from(self.data_dir.unwrap_or_else(|| "./var".into()));
        if data_dir.as_os_str().is_empty() {
            return Err(err("MAPLE_DATA_DIR", "must not be empty"));
        }

        let database = match self.database_url {
            None => DatabaseSettings::Sqlite {
                path: data_dir.join("maple.db"),
            },
            Some(url) => {
                let u = url.0.trim();
                if let Some(path) = u.strip_prefix("sqlite://") {
                    if path.is_empty() {
                        return Err(err("MAPLE_DATABASE_URL", "sqlite:// needs a file path"));
                    }
                    DatabaseSettings::Sqlite {
                        path: PathBuf::from(path),
                    }
                } else if u.starts_with("mysql://") || u.starts_with("mariadb://") {
                    DatabaseSettings::Mysql {
                        url: RedactedUrl(u.replacen("mariadb://", "mysql://", 1)),
                    }
                } else {
                    return Err(err(
                        "MAPLE_DATABASE_URL",
                        format!("expected mysql://… or sqlite://…, got {:?}", redact_url(u)),
                    ));
                }
            }
        };

        let admin_token = match self.admin_token {
            Some(t) if t.0.len() < 16 => {
                return Err(err(
                    "MAPLE_ADMIN_TOKEN",
                    "must be at least 16 characters long",
                ));
            }
            other => other,
        };

        let cube_table = self.cube_table.map(PathBuf::from);
        if let Some(p) = &cube_table
            && !p.is_file()
        {
            return Err(err(
                "MAPLE_CUBE_TABLE",
                format!("no such file: {}", p.display()),
            ));
        }

        let instance_id = self.instance_id.unwrap_or_else(default_instance_id);
        if instance_id.is_empty()
            || instance_id.len() > 64
            || !instance_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(err(
                "MAPLE_INSTANCE_ID",
                format!("expected 1-64 of [A-Za-z0-9._-], got {instance_id:?}"),
            ));
        }

        let num = |v: Option<NumOrString>, name: &str, default: u64, min: u64| {
            v.map(|v| v.parse_u64(name, min)).unwrap_or(Ok(default))
        };
        let l1_max_bytes = num(self.l1_max_bytes, "MAPLE_L1_MAX_BYTES", 256 << 20, 1 << 20)?;
        let flight_lease_ms = num(self.flight_lease_ms, "MAPLE_FLIGHT_LEASE_MS", 10_000, 100)?;
        let flight_wait_ms = num(self.flight_wait_ms, "MAPLE_FLIGHT_WAIT_MS", 5_000, 10)?;
        let xfetch_beta = match self.xfetch_beta.as_deref().map(str::trim) {
            None => 1.0,
            Some(b) => match b.parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=10.0).contains(&v) => v,
                _ => {
                    return Err(err(
                        "MAPLE_XFETCH_BETA",
                        format!("expected a number in [0, 10], got {b:?}"),
                    ));
                }
            },
        };
        let upstream_timeout_ms = num(
            self.upstream_timeout_ms,
            "MAPLE_UPSTREAM_TIMEOUT_MS",
            3000,
            1,
        )?;
        let request_timeout_ms = num(
            self.request_timeout_ms,
            "MAPLE_REQUEST_TIMEOUT_MS",
            10_000,
            1,
        )?;
        let max_concurrency = num(self.max_concurrency, "MAPLE_MAX_CONCURRENCY", 1024, 1)?;
        let client_rps = num(self.client_rps, "MAPLE_CLIENT_RPS", 0, 0)?;
        if client_rps > 1_000_000 {
            return Err(err(
                "MAPLE_CLIENT_RPS",
                format!("must be at most 1000000, got {client_rps}"),
            ));
        }
        let trusted_proxies = self
            .trusted_proxies
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                IpNet::parse(p).ok_or_else(|| {
                    err(
                        "MAPLE_TRUSTED_PROXIES",
                        format!("expected IPs or CIDRs such as 10.0.0.0/8, got {p:?}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shutdown_grace_ms = num(self.shutdown_grace_ms, "MAPLE_SHUTDOWN_GRACE_MS", 20_000, 0)?;

        let upstream_deadline_ms = num(
            self.upstream_deadline_ms,
            "MAPLE_UPSTREAM_DEADLINE_MS",
            8_000,
            1,
        )?;
        let retry_max = num(self.retry_max, "MAPLE_RETRY_MAX", 2, 0)?;
        if retry_max > 2 {
            return Err(err(
                "MAPLE_RETRY_MAX",
                format!("must be at most 2, got {retry_max}"),
            ));
        }
        let retry_budget_ratio = match self.retry_budget_ratio.as_deref().map(str::trim) {
            None => 0.2,
            Some(r) => match r.parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=1.0).contains(&v) => v,
                _ => {
                    return Err(err(
                        "MAPLE_RETRY_BUDGET_RATIO",
                        format!("expected a number in [0, 1], got {r:?}"),
                    ));
                }
            },
        };
        let breaker_failures = num(self.breaker_failures, "MAPLE_BREAKER_FAILURES", 5, 1)?;
        let breaker_open_ms = num(self.breaker_open_ms, "MAPLE_BREAKER_OPEN_MS", 5_000, 10)?;
        let breaker_open_max_ms = num(
            self.breaker_open_max_ms,
            "MAPLE_BREAKER_OPEN_MAX_MS",
            60_000.max(breaker_open_ms),
            10,
        )?;
        if breaker_open_max_ms < breaker_open_ms {
            return Err(err(
                "MAPLE_BREAKER_OPEN_MAX_MS",
                format!(
                    "must not be below MAPLE_BREAKER_OPEN_MS ({breaker_open_ms}), got {breaker_open_max_ms}"
                ),
            ));
        }
        let breaker_probes = num(self.breaker_probes, "MAPLE_BREAKER_PROBES", 1, 1)?;
        let maintenance_hold_s = num(self.maintenance_hold_s, "MAPLE_MAINTENANCE_HOLD_S", 300, 1)?;
        let auth_hold_s = num(self.auth_hold_s, "MAPLE_AUTH_HOLD_S", 60, 1)?;
        let rate_per_s = self
            .rate_per_s
            .map(|v| v.parse_u64("MAPLE_RATE_PER_S", 1))
            .transpose()?;
        let rate_per_day = self
            .rate_per_day
            .map(|v| v.parse_u64("MAPLE_RATE_PER_DAY", 1))
            .transpose()?;
        let rate_wait_ms = num(self.rate_wait_ms, "MAPLE_RATE_WAIT_MS", 100, 0)?;
        let rate_instances = num(self.rate_instances, "MAPLE_RATE_INSTANCES", 1, 1)?;
        if rate_instances > 1_000 {
            return Err(err(
                "MAPLE_RATE_INSTANCES",
                format!("must be at most 1000, got {rate_instances}"),
            ));
        }
        let alert_webhook = match self.alert_webhook.map(|w| w.trim().to_string()) {
            None => None,
            Some(w) if w.is_empty() => None,
            Some(w) if w.starts_with("http://") || w.starts_with("https://") => Some(w),
            Some(w) => {
                return Err(err(
                    "MAPLE_ALERT_WEBHOOK",
                    format!(
                        "expected an http:// or https:// URL, got {:?}",
                        redact_url(&w)
                    ),
                ));
            }
        };
        let like_flush_ms = num(self.like_flush_ms, "MAPLE_LIKE_FLUSH_MS", 500, 10)?;
        let like_sync_ms = num(self.like_sync_ms, "MAPLE_LIKE_SYNC_MS", 2000, 50)?;
        let like_buffer_max = num(self.like_buffer_max, "MAPLE_LIKE_BUFFER_MAX", 200_000, 1)?;
        let like_sync_batch = num(self.like_sync_batch, "MAPLE_LIKE_SYNC_BATCH", 2000, 1)?;
        if like_sync_batch > 10_000 {
            return Err(err(
                "MAPLE_LIKE_SYNC_BATCH",
                format!("must be at most 10000, got {like_sync_batch}"),
            ));
        }
        let journal_fsync_ms = num(self.journal_fsync_ms, "MAPLE_JOURNAL_FSYNC_MS", 50, 1)?;
        if journal_fsync_ms > 1000 {
            return Err(err(
                "MAPLE_JOURNAL_FSYNC_MS",
                format!("must be at most 1000, got {journal_fsync_ms}"),
            ));
        }

        let log_format = match self.log_format.as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "MAPLE_LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ));
            }
        };

        Ok(Settings {
            listen,
            nexon_api_key,
            upstream_url,
            redis,
            database,
            data_dir,
            admin_token,
            cube_table,
            instance_id,
            l1_max_bytes,
            flight_lease: Duration::from_millis(flight_lease_ms),
            flight_wait: Duration::from_millis(flight_wait_ms),
            xfetch_beta,
            upstream_timeout: Duration::from_millis(upstream_timeout_ms),
            request_timeout: Duration::from_millis(request_timeout_ms),
            max_concurrency: max_concurrency as usize,
            client_rps: client_rps as u32,
            trusted_proxies,
            shutdown_grace: Duration::from_millis(shutdown_grace_ms),
            log_format,
            upstream_deadline: Duration::from_millis(upstream_deadline_ms),
            retry_max: retry_max as u32,
            retry_budget_ratio,
            breaker_failures: breaker_failures.min(u32::MAX as u64) as u32,
            breaker_open: Duration::from_millis(breaker_open_ms),
            breaker_open_max: Duration::from_millis(breaker_open_max_ms),
            breaker_probes: breaker_probes.min(u32::MAX as u64) as u32,
            maintenance_hold: Duration::from_secs(maintenance_hold_s),
            auth_hold: Duration::from_secs(auth_hold_s),
            rate_per_s,
            rate_per_day,
            rate_wait: Duration::from_millis(rate_wait_ms),
            rate_instances: rate_instances as u32,
            alert_webhook,
            like_flush: Duration::from_millis(like_flush_ms),
            like_sync: Duration::from_millis(like_sync_ms),
            like_buffer_max: like_buffer_max as usize,
            like_sync_batch: like_sync_batch as usize,
            journal_fsync: Duration::from_millis(journal_fsync_ms),
        })
    }
}

fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "gateway".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(48)
        .collect();
    format!(
        "{}-{}",
        if host.is_empty() { "gateway" } else { &host },
        std::process::id()
    )
}

/// The `MAPLE_*` variables in `names` that the gateway does not know (a typo would otherwise be ignored
/// silently), each with the known variables that share its first word as suggestions.
pub fn unknown_env_vars<I: IntoIterator<Item = String>>(
    names: I,
) -> Vec<(String, Vec<&'static str>)> {
    let mut out: Vec<(String, Vec<&'static str>)> = names
        .into_iter()
        .filter(|n| n.starts_with("MAPLE_") && !ENV_VARS.iter().any(|(k, _, _)| k == n))
        .map(|n| {
            let word = n.split('_').take(2).collect::<Vec<_>>().join("_") + "_";
            let close = ENV_VARS
                .iter()
                .map(|(k, _, _)| *k)
                .filter(|k| k.starts_with(&word))
                .collect();
            (n, close)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {

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
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.upstream_url, DEFAULT_UPSTREAM_URL);
        assert!(s.uses_embedded_simulator());
        assert_eq!(s.redis, RedisSettings::Disabled);
        assert_eq!(
            s.database,
            DatabaseSettings::Sqlite {
                path: PathBuf::from("./var/maple.db")
            }
        );
        assert!(s.admin_token.is_none());
        assert_eq!(s.l1_max_bytes, 256 << 20);
        assert!(!s.instance_id.is_empty());
        assert_eq!(s.upstream_deadline, Duration::from_millis(8_000));
        assert_eq!(s.retry_max, 2);
        assert_eq!(s.retry_budget_ratio, 0.2);
        assert_eq!(s.breaker_failures, 5);
        assert_eq!(s.breaker_open, Duration::from_secs(5));
        assert_eq!(s.breaker_open_max, Duration::from_secs(60));
        assert_eq!(s.breaker_probes, 1);
        assert_eq!(s.maintenance_hold, Duration::from_secs(300));
        assert_eq!(s.auth_hold, Duration::from_secs(60));
        assert_eq!(
            (s.rate_per_s, s.rate_per_day),
            (None, None),
            "from the key type"
        );
        assert_eq!(s.rate_wait, Duration::from_millis(100));
        assert_eq!(s.rate_instances, 1);
        assert_eq!(s.alert_webhook, None);
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
        assert_eq!(s.breaker_open, Duration::from_millis(200));
        assert_eq!(s.breaker_open_max, Duration::from_secs(60));
        assert_eq!(s.breaker_failures, 3);
        assert_eq!(s.rate_per_s, Some(7));
        assert_eq!(s.rate_wait, Duration::ZERO);
        assert_eq!(s.alert_webhook.as_deref(), Some("http://127.0.0.1:9/hook"));
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
    fn trusted_proxies_are_ips_or_cidrs() {
        assert!(load(None, &[]).unwrap().trusted_proxies.is_empty());
        let s = load(
            None,
            &[("MAPLE_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,fd00::/8")],
        )
        .unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let nets = &s.trusted_proxies;
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
    fn env_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("maple.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\nredis_master = \"filemaster\"\nl1_max_bytes = 2097152\n",
        )
        .unwrap();
        let s = load(Some(&file), &[]).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(s.l1_max_bytes, 2 << 20);

        let s = load(
            Some(&file),
            &[
                ("MAPLE_LISTEN", "127.0.0.1:9100"),
                ("MAPLE_REDIS_SENTINELS", "127.0.0.1:26379, 127.0.0.1:26380"),
            ],
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9100, "env beats file");
        assert_eq!(
            s.data_dir,
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
                .upstream_url,
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
            ("MAPLE_JOURNAL_FSYNC_MS", "0"),
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
        for (name, _, _) in ENV_VARS {
            assert!(readme.contains(name), "README.md does not mention {name}");
        }
    }
}
