//! The declaration of every setting, grouped by the component that owns it: env name, default, accepted
//! range (or values), whether it is secret, and one line of meaning — each written exactly once, in the
//! [`declare!`] block below.
//!
//! From that block come: the typed group structs ([`ServerSettings`], [`UpstreamSettings`], …) and their
//! `Default` (the declared defaults), the parsing and range check of each value with a one-line error naming
//! the setting, the TOML keys (the env name without `MAPLE_`, lower-cased), and [`SETTINGS`], the table that
//! `--help`, the unknown-variable check and the README test read.
//!
//! Contract: a declared default goes through the same parser as a configured value, so a default outside
//! its own range is a configuration error (the unit tests load the defaults, and each group's `Default`
//! relies on that).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::net::IpNet;
use super::parse::read;
use super::rules::{
    ADMIN_TOKEN, ANY, API_KEY, DATABASE_URL, DIRECTORY, EXISTING_FILE, HOST_PORT, HTTP_URL,
    INSTANCE_ID, IP_NETS, NON_EMPTY, REDIS_URL, SENTINEL, WEBHOOK, default_instance_id,
};
use super::secret::{RedactedUrl, Secret};
use super::spec::{DefaultValue, Kind, Spec};
use super::{ConfigError, DatabaseSettings, LogFormat, Source};

/// The upstream's real base URL; with it and no API key the gateway runs the simulator in-process.
pub const DEFAULT_UPSTREAM_URL: &str = "https://open.api.nexon.com";

/// Declares the groups of settings. Per setting: `/// meaning` (one line), then
/// `field: Type = "ENV_NAME", Kind, Default, secret;`.
macro_rules! declare {
    ($(
        $(#[doc = $gdoc:literal])+
        $group:ident: $Group:ident {
            $(
                #[doc = $doc:literal]
                $field:ident: $ty:ty = $name:literal, $kind:expr, $default:expr, $secret:literal;
            )+
        }
    )+) => {
        $(
            $(#[doc = $gdoc])+
            #[derive(Clone, Debug)]
            pub struct $Group {
                $(#[doc = $doc] pub $field: $ty,)+
            }

            impl $Group {
                fn read(src: &Source<'_>) -> Result<Self, ConfigError> {
                    Ok($Group {
                        $($field: read::<$ty>(src, &Spec {
                            group: stringify!($group),
                            name: $name,
                            kind: $kind,
                            default: $default,
                            secret: $secret,
                            doc: $doc.trim_ascii(),
                        })?,)+
                    })
                }
            }

            impl std::default::Default for $Group {
                /// The declared defaults.
                fn default() -> Self {
                    $Group::read(&Source::empty()).expect("the declared defaults are valid")
                }
            }
        )+

        /// Every setting, in declaration order (grouped by component).
        pub static SETTINGS: &[Spec] = &[
            $($(Spec {
                group: stringify!($group),
                name: $name,
                kind: $kind,
                default: $default,
                secret: $secret,
                doc: $doc.trim_ascii(),
            },)+)+
        ];

        /// Every group, parsed and range-checked, before the cross-setting rules.
        pub(super) struct Declared {
            $(pub $group: $Group,)+
        }

        impl Declared {
            pub(super) fn read(src: &Source<'_>) -> Result<Declared, ConfigError> {
                Ok(Declared { $($group: $Group::read(src)?,)+ })
            }
        }
    };
}

use DefaultValue::{Computed, Derived, Unset, Value as Is};
use Kind::{Int, Millis, Number, OneOf, Secs, Text};

/// No upper bound (counts and sizes only: a duration always has one).
const NO_MAX: u64 = u64::MAX;
/// The upper bound of timeouts, waits and intervals: one hour.
const HOUR_MS: u64 = 3_600_000;
/// The upper bound of holds and open periods: one day.
const DAY_MS: u64 = 24 * HOUR_MS;
/// [`DAY_MS`] in seconds.
const DAY_S: u64 = DAY_MS / 1000;

declare! {
    /// The HTTP server and its inbound limits.
    server: ServerSettings {
        /// address the HTTP server binds (port 0 = any free port)
        listen: SocketAddr = "MAPLE_LISTEN", Text(HOST_PORT), Is("127.0.0.1:8080"), false;
        /// per-request timeout of the HTTP server
        request_timeout: Duration = "MAPLE_REQUEST_TIMEOUT_MS", Millis { min: 1, max: HOUR_MS }, Is("10000"), false;
        /// requests processed at once; beyond it requests are shed with 503 `OVERLOADED` (the health probes and `/metrics` are never shed)
        max_concurrency: usize = "MAPLE_MAX_CONCURRENCY", Int { min: 1, max: NO_MAX }, Is("1024"), false;
        /// requests/s per client on data routes → 429 `RATE_LIMITED`; the client is the peer address, or behind a trusted proxy its `x-api-client` header, else `X-Forwarded-For`; 0 = no limit
        client_rps: u32 = "MAPLE_CLIENT_RPS", Int { min: 0, max: 1_000_000 }, Is("0"), false;
        /// the reverse proxies whose `X-Forwarded-For` and `x-api-client` are believed (empty: none)
        trusted_proxies: Vec<IpNet> = "MAPLE_TRUSTED_PROXIES", Text(IP_NETS), Unset, false;
        /// bearer token of `/admin/*`; admin routes are absent when unset
        admin_token: Option<Secret> = "MAPLE_ADMIN_TOKEN", Text(ADMIN_TOKEN), Unset, true;
    }

    /// The Nexon client: upstream, timeouts, retries, circuit breaker, holds, shared rate budget, alerts.
    upstream: UpstreamSettings {
        /// Nexon Open API key; unset with the default upstream URL = in-process simulator
        api_key: Option<Secret> = "NEXON_API_KEY", Text(API_KEY), Unset, true;
        /// base URL of the Nexon Open API (or of a simulator)
        url: String = "MAPLE_UPSTREAM_URL", Text(HTTP_URL), Is(DEFAULT_UPSTREAM_URL), false;
        /// per-attempt timeout of an upstream call
        timeout: Duration = "MAPLE_UPSTREAM_TIMEOUT_MS", Millis { min: 1, max: HOUR_MS }, Is("3000"), false;
        /// overall deadline of one logical upstream call (retries and rate waits included)
        deadline: Duration = "MAPLE_UPSTREAM_DEADLINE_MS", Millis { min: 1, max: HOUR_MS }, Is("8000"), false;
        /// retries of a failed attempt (connect errors, timeouts, 5xx, 429 only)
        retry_max: u32 = "MAPLE_RETRY_MAX", Int { min: 0, max: 2 }, Is("2"), false;
        /// retries allowed as a share of upstream calls over a 10 s sliding window
        retry_budget_ratio: f64 = "MAPLE_RETRY_BUDGET_RATIO", Number { min: 0.0, max: 1.0 }, Is("0.2"), false;
        /// consecutive upstream faults that open the circuit breaker
        breaker_failures: u32 = "MAPLE_BREAKER_FAILURES", Int { min: 1, max: NO_MAX }, Is("5"), false;
        /// first open period of the breaker (doubles after each failed probe)
        breaker_open: Duration = "MAPLE_BREAKER_OPEN_MS", Millis { min: 10, max: DAY_MS }, Is("5000"), false;
        /// longest open period of the breaker (not below `MAPLE_BREAKER_OPEN_MS`, which it follows when unset)
        breaker_open_max: Duration = "MAPLE_BREAKER_OPEN_MAX_MS", Millis { min: 10, max: DAY_MS }, Is("60000"), false;
        /// concurrent trial calls the half-open breaker admits
        breaker_probes: u32 = "MAPLE_BREAKER_PROBES", Int { min: 1, max: NO_MAX }, Is("1"), false;
        /// after a maintenance answer (00010/00011) serve stale only for this long
        maintenance_hold: Duration = "MAPLE_MAINTENANCE_HOLD_S", Secs { min: 1, max: DAY_S }, Is("300"), false;
        /// after the key was refused (00002/00005) make no upstream call for this long
        auth_hold: Duration = "MAPLE_AUTH_HOLD_S", Secs { min: 1, max: DAY_S }, Is("60"), false;
        /// shared upstream budget per second: `test_` keys 5, others 500, embedded simulator 10000
        rate_per_s: Option<u64> = "MAPLE_RATE_PER_S", Int { min: 1, max: NO_MAX }, Derived("by key type"), false;
        /// shared budget per KST day: `test_` keys 1000, others 20000000, embedded simulator unlimited
        rate_per_day: Option<u64> = "MAPLE_RATE_PER_DAY", Int { min: 1, max: NO_MAX }, Derived("by key type"), false;
        /// longest an interactive request waits for a rate slot before stale / 429 (background never waits)
        rate_wait: Duration = "MAPLE_RATE_WAIT_MS", Millis { min: 0, max: HOUR_MS }, Is("100"), false;
        /// N: without Redis (or while it is down) each instance uses 1/N of the rate budget
        rate_instances: u32 = "MAPLE_RATE_INSTANCES", Int { min: 1, max: 1000 }, Is("1"), false;
        /// URL receiving a JSON POST when the breaker opens, maintenance begins or the key is refused
        alert_webhook: Option<String> = "MAPLE_ALERT_WEBHOOK", Text(WEBHOOK), Unset, false;
    }

    /// The tiered cache: L1 bound, cluster-wide flight, early refresh.
    cache: CacheSettings {
        /// in-process (L1) cache bound in bytes
        l1_max_bytes: u64 = "MAPLE_L1_MAX_BYTES", Int { min: 1 << 20, max: NO_MAX }, Is("268435456"), false;
        /// lease of the cluster-wide loader of a key; a dead leader is replaced after it
        flight_lease: Duration = "MAPLE_FLIGHT_LEASE_MS", Millis { min: 100, max: HOUR_MS }, Is("10000"), false;
        /// how long followers wait for the leader before re-reading L2
        flight_wait: Duration = "MAPLE_FLIGHT_WAIT_MS", Millis { min: 10, max: HOUR_MS }, Is("5000"), false;
        /// XFetch early-refresh aggressiveness (0 = refresh only at expiry)
        xfetch_beta: f64 = "MAPLE_XFETCH_BETA", Number { min: 0.0, max: 10.0 }, Is("1.0"), false;
    }

    /// How Redis is reached (resolved into [`super::RedisSettings`]).
    redis: RedisVars {
        /// standalone Redis, e.g. `redis://127.0.0.1:6379` (L2 cache, flight, shared limiter)
        url: Option<RedactedUrl> = "MAPLE_REDIS_URL", Text(REDIS_URL), Unset, false;
        /// comma-separated Sentinel list (Sentinel mode; exclusive with `MAPLE_REDIS_URL`)
        sentinels: Option<Vec<String>> = "MAPLE_REDIS_SENTINELS", Text(SENTINEL), Unset, false;
        /// Sentinel master name
        master: String = "MAPLE_REDIS_MASTER", Text(NON_EMPTY), Is("mymaster"), false;
        /// Redis password of Sentinel mode
        password: Option<Secret> = "MAPLE_REDIS_PASSWORD", Text(ANY), Unset, true;
        /// how long a durable write (likes on their way to the database) waits for a replica to acknowledge it (`WAIT`); unacknowledged, it is kept and retried
        wait: Duration = "MAPLE_REDIS_WAIT_MS", Millis { min: 10, max: 3000 }, Is("1000"), false;
    }

    /// The database (resolved into [`super::DatabaseSettings`]).
    database: DatabaseVars {
        /// the database; a password in the URL is never printed
        url: Option<DatabaseSettings> = "MAPLE_DATABASE_URL", Text(DATABASE_URL), Derived("`sqlite://<data dir>/maple.db`"), false;
    }

    /// The like write path.
    likes: LikeSettings {
        /// how often accepted likes move from the in-process buffer to Redis
        flush: Duration = "MAPLE_LIKE_FLUSH_MS", Millis { min: 10, max: HOUR_MS }, Is("500"), false;
        /// how often one instance moves likes from Redis (or from its buffer, Redis down) to the database
        sync: Duration = "MAPLE_LIKE_SYNC_MS", Millis { min: 50, max: HOUR_MS }, Is("2000"), false;
        /// likes an instance keeps until the database has them; when full, new likes get 503 `LIKES_UNAVAILABLE`
        buffer_max: usize = "MAPLE_LIKE_BUFFER_MAX", Int { min: 1, max: NO_MAX }, Is("200000"), false;
        /// likes per database transaction of the sync
        sync_batch: usize = "MAPLE_LIKE_SYNC_BATCH", Int { min: 1, max: 10_000 }, Is("2000"), false;
    }

    /// Shutdown and durability of accepted writes.
    shutdown: ShutdownSettings {
        /// how long in-flight requests may drain at shutdown
        grace: Duration = "MAPLE_SHUTDOWN_GRACE_MS", Millis { min: 0, max: HOUR_MS }, Is("20000"), false;
    }

    /// Logs.
    telemetry: TelemetrySettings {
        /// log line format
        log_format: LogFormat = "MAPLE_LOG_FORMAT", OneOf(&["text", "json"]), Is("text"), false;
    }

    /// This instance: its name, its files, its cube table.
    instance: InstanceSettings {
        /// this instance's name in logs, locks and backups
        id: String = "MAPLE_INSTANCE_ID", Text(INSTANCE_ID), Computed { shown: "<host name>-<pid>", value: default_instance_id }, false;
        /// directory for SQLite, backups and the journal
        data_dir: PathBuf = "MAPLE_DATA_DIR", Text(DIRECTORY), Is("./var"), false;
        /// cube probability CSV (see `docs/expectation.md`); unset = cube blocks unavailable, except in embedded mode (the simulator's table)
        cube_table: Option<PathBuf> = "MAPLE_CUBE_TABLE", Text(EXISTING_FILE), Unset, false;
    }
}

impl UpstreamSettings {
    /// True when the gateway must start the simulator in-process: no API key and the default upstream.
    pub fn uses_embedded_simulator(&self) -> bool {
        self.api_key.is_none() && self.url == DEFAULT_UPSTREAM_URL
    }
}
