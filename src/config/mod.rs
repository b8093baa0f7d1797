//! Typed settings: declared defaults < optional TOML file (`--config PATH`) < `MAPLE_*` / `NEXON_API_KEY` env vars.
//!
//! Contract: [`Settings::load`] either returns settings that are valid as a whole, or one [`ConfigError`]
//! whose message is a single line naming the setting (its env var name) and the problem. It never panics.
//! Secrets (API key, admin token, Redis password, passwords inside URLs) are wrapped in [`Secret`] or redacted
//! ([`RedactedUrl`]), so neither `Debug` nor logs nor errors can print them.
//!
//! Every setting is declared once, in `declare.rs`: env name, default, accepted range, secrecy, meaning.
//! Loading is that declaration applied to a [`Source`] (the file's keys overlaid by the environment): each
//! group is parsed and range-checked setting by setting, then [`resolve`] applies the rules that involve
//! more than one setting (the Redis mode, the database default, the breaker's longest open period).
//! [`Settings`] is grouped by the component that owns each setting, so the application hands every
//! component its group. The env var names are part of the public interface: `--help`, the unknown-variable
//! check ([`unknown_env_vars`]) and the README table all come from [`SETTINGS`]. The environment is passed
//! in (a lookup function), not read from the process, so tests never mutate global state.
//!
//! Failure modes: an unreadable or malformed file, an unknown key in it, a value outside its range, or a
//! contradiction between settings — each a [`ConfigError`]. Unknown `MAPLE_*` env vars are not an error
//! (other tools share the prefix); [`unknown_env_vars`] lists them for a warning.

mod declare;
mod net;
mod parse;
mod rules;
mod secret;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use declare::{
    CacheSettings, DEFAULT_UPSTREAM_URL, DatabaseVars, InstanceSettings, LikeSettings, RedisVars,
    SETTINGS, ServerSettings, ShutdownSettings, TelemetrySettings, UpstreamSettings,
};
pub use net::IpNet;
pub use secret::{RedactedUrl, Secret};
pub use spec::{DefaultValue, Kind, Rule, Spec, readme_table};

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

/// Validated settings of one gateway instance, one group per component.
#[derive(Clone, Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub upstream: UpstreamSettings,
    pub cache: CacheSettings,
    pub redis: RedisSettings,
    /// The `WAIT` timeout of durable Redis writes (`MAPLE_REDIS_WAIT_MS`).
    pub redis_wait: std::time::Duration,
    pub database: DatabaseSettings,
    pub likes: LikeSettings,
    pub shutdown: ShutdownSettings,
    pub telemetry: TelemetrySettings,
    pub instance: InstanceSettings,
}

impl Settings {
    /// True when the gateway must start the simulator in-process: no API key and the default upstream.
    pub fn uses_embedded_simulator(&self) -> bool {
        self.upstream.uses_embedded_simulator()
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
        let file = match file {
            Some(path) => read_file(path)?,
            None => HashMap::new(),
        };
        let src = Source {
            file,
            env: Some(env),
        };
        resolve(declare::Declared::read(&src)?, &src)
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

/// A lookup of environment variables by name.
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where raw values come from: the environment first, then the file (keyed by env name).
pub(crate) struct Source<'a> {
    file: HashMap<&'static str, String>,
    env: Option<Env<'a>>,
}

impl Source<'_> {
    /// No file, no environment: only the declared defaults.
    fn empty() -> Source<'static> {
        Source {
            file: HashMap::new(),
            env: None,
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.env
            .and_then(|env| env(name))
            .or_else(|| self.file.get(name).cloned())
    }

    fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Reads the TOML file into raw values keyed by env name; its keys are the declared TOML keys, its
/// values strings or numbers.
fn read_file(path: &Path) -> Result<HashMap<&'static str, String>, ConfigError> {
    let bad = |problem: String| {
        err(
            "--config",
            format!("{} is not valid: {problem}", path.display()),
        )
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("--config", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| bad(e.message().replace('\n', " ")))?;
    let mut out = HashMap::new();
    for (key, value) in table {
        let Some(spec) = SETTINGS.iter().find(|s| s.toml_key() == key) else {
            return Err(bad(format!("unknown key `{key}`")));
        };
        let raw = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            other => {
                return Err(bad(format!(
                    "`{key}` must be a string or a number, got a {}",
                    other.type_str()
                )));
            }
        };
        out.insert(spec.name, raw);
    }
    Ok(out)
}

/// The rules that involve more than one setting, applied to the per-setting results.
fn resolve(d: declare::Declared, src: &Source<'_>) -> Result<Settings, ConfigError> {
    let declare::Declared {
        server,
        mut upstream,
        cache,
        redis,
        database,
        likes,
        shutdown,
        telemetry,
        instance,
    } = d;

    let redis_wait = redis.wait;
    let redis = match (redis.url, redis.sentinels) {
        (Some(_), Some(_)) => {
            return Err(err(
                "MAPLE_REDIS_SENTINELS",
                "set either MAPLE_REDIS_URL (standalone) or MAPLE_REDIS_SENTINELS (Sentinel), not both",
            ));
        }
        (Some(url), None) => RedisSettings::Standalone { url },
        (None, Some(sentinels)) => RedisSettings::Sentinel {
            sentinels,
            master: redis.master,
            password: redis.password,
        },
        (None, None) => RedisSettings::Disabled,
    };

    let database = database.url.unwrap_or_else(|| DatabaseSettings::Sqlite {
        path: instance.data_dir.join("maple.db"),
    });

    // Unset, the longest open period follows a first open period above its default.
    if upstream.breaker_open_max < upstream.breaker_open {
        if src.is_set("MAPLE_BREAKER_OPEN_MAX_MS") {
            return Err(err(
                "MAPLE_BREAKER_OPEN_MAX_MS",
                format!(
                    "must not be below MAPLE_BREAKER_OPEN_MS ({}), got {}",
                    upstream.breaker_open.as_millis(),
                    upstream.breaker_open_max.as_millis()
                ),
            ));
        }
        upstream.breaker_open_max = upstream.breaker_open;
    }

    Ok(Settings {
        server,
        upstream,
        cache,
        redis,
        redis_wait,
        database,
        likes,
        shutdown,
        telemetry,
        instance,
    })
}

/// `--help`'s list of environment variables, one line each.
pub fn env_help() -> String {
    let mut s = String::from(
        "Environment variables (override the config file, which overrides defaults):\n",
    );
    for spec in SETTINGS {
        s.push_str(&spec.help_line());
        s.push('\n');
    }
    s
}

/// The simulator's API key (`maple-gateway sim`), read by that command only.
pub const SIM_API_KEY_VAR: &str = "MAPLE_SIM_API_KEY";
/// `MAPLE_*` variables that other commands than `serve` read (not settings of the gateway, and not unknown).
pub const COMMAND_VARS: &[&str] = &[SIM_API_KEY_VAR];

/// The `MAPLE_*` variables in `names` that the gateway does not know (a typo would otherwise be ignored
/// silently), each with the known variables that share its first word as suggestions.
pub fn unknown_env_vars<I: IntoIterator<Item = String>>(
    names: I,
) -> Vec<(String, Vec<&'static str>)> {
    let mut out: Vec<(String, Vec<&'static str>)> = names
        .into_iter()
        .filter(|n| {
            n.starts_with("MAPLE_")
                && !SETTINGS.iter().any(|s| s.name == n)
                && !COMMAND_VARS.contains(&n.as_str())
        })
        .map(|n| {
            let word = n.split('_').take(2).collect::<Vec<_>>().join("_") + "_";
            let close = SETTINGS
                .iter()
                .map(|s| s.name)
                .filter(|k| k.starts_with(&word))
                .collect();
            (n, close)
        })
        .collect();
    out.sort();
    out
}
