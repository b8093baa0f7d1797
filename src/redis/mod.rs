//! Redis client construction: standalone (`MAPLE_REDIS_URL`) or Sentinel (`MAPLE_REDIS_SENTINELS` +
//! `MAPLE_REDIS_MASTER`), via fred.
//!
//! Contract: [`RedisHandle::connect`] never fails because Redis is down — the gateway must start and degrade
//! (L1 only) when Redis is unreachable — it fails only on a configuration fred rejects. The client always has
//! a reconnect policy (exponential, 50 ms → 2 s, unbounded attempts: without one fred never reconnects), a
//! command timeout (so a hung Redis becomes an error, not a hung request), unresponsive-connection detection,
//! and treats `READONLY` / `LOADING` replies as reconnect triggers (a demoted master is left at once).
//! Every Redis failure is a [`RedisError`]: a failed or timed-out call is upstream-kind and retryable, a
//! rejected configuration is internal; both keep the client's error as their source when there is one.
//!
//! In Sentinel mode fred does not follow `+switch-master` by itself: [`sentinel`] runs a watcher
//! that forces every registered client to reconnect on a switch; the command client, the durable-write
//! client and every pub/sub client built by [`RedisHandle::subscriber`] are registered automatically.
//!
//! Writes come in two classes (`docs/locks-and-likes.md`, ADR 0012): disposable ones (cache values, leases,
//! messages, limiter state) go through [`RedisHandle::client`] and are done when the master answers; durable
//! ones (the likes' staging area) go through [`RedisHandle::durable`], which acknowledges a write only once
//! `WAIT` saw a replica take it (see [`durable`]).

pub mod durable;
pub mod sentinel;

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;
use fred::types::config::{ReconnectError, Server, UnresponsiveConfig};

use crate::config::RedisSettings;
use crate::error::{Classify, Code, ErrorKind};

/// Command timeout: Redis answers in well under a millisecond on a healthy network.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// How long start-up waits for the first connection before going on degraded.
pub const CONNECT_WAIT: Duration = Duration::from_secs(2);
/// The `WAIT` timeout of durable writes when none is given (`MAPLE_REDIS_WAIT_MS`'s default).
pub const DEFAULT_WAIT: Duration = Duration::from_millis(1000);

/// A Redis failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    /// The settings cannot make a client (bad address or port).
    #[error("redis configuration rejected: {0}")]
    Config(String),
    /// The client rejected the configuration.
    #[error("redis configuration rejected: {0}")]
    ConfigRejected(#[source] fred::error::Error),
    /// Redis did not answer in time, or a call found it unusable.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// A Redis call failed with the client's error.
    #[error("redis unavailable: {0}")]
    Client(#[from] fred::error::Error),
}

impl Classify for RedisError {
    fn kind(&self) -> ErrorKind {
        match self {
            RedisError::Config(_) | RedisError::ConfigRejected(_) => ErrorKind::Internal,
            RedisError::Unavailable(_) | RedisError::Client(_) => ErrorKind::Upstream,
        }
    }
    fn retryable(&self) -> bool {
        matches!(self, RedisError::Unavailable(_) | RedisError::Client(_))
    }
    fn code(&self) -> Code {
        Code::RedisUnavailable
    }
}

/// Standalone or Sentinel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    Standalone,
    Sentinel,
}

/// A connected (or reconnecting) Redis client.
#[derive(Clone)]
pub struct RedisHandle {
    client: Client,
    mode: RedisMode,
    config: Config,
    master: Arc<sentinel::MasterState>,
    /// Sentinel mode: the Sentinels, the master name and the password.
    sentinel: Option<sentinel::SentinelSettings>,
    /// The client of durable writes (its own connection).
    durable: Arc<durable::DurableWrites>,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandle")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl RedisHandle {
    /// Builds the clients and starts connecting; `Ok(None)` when Redis is disabled. Durable writes wait
    /// [`DEFAULT_WAIT`] for a replica.
    pub async fn connect(settings: &RedisSettings) -> Result<Option<RedisHandle>, RedisError> {
        Self::connect_with(settings, DEFAULT_WAIT).await
    }

    /// As [`RedisHandle::connect`], with the `WAIT` timeout of durable writes (`MAPLE_REDIS_WAIT_MS`).
    pub async fn connect_with(
        settings: &RedisSettings,
        wait: Duration,
    ) -> Result<Option<RedisHandle>, RedisError> {
        let mut sentinel_info = None;
        let (config, mode) = match settings {
            RedisSettings::Disabled => return Ok(None),
            RedisSettings::Standalone { url } => (
                Config::from_url(url.expose()).map_err(RedisError::ConfigRejected)?,
                RedisMode::Standalone,
            ),
            RedisSettings::Sentinel {
                sentinels,
                master,
                password,
            } => {
                let mut hosts = Vec::new();
                for s in sentinels {
                    let (h, p) = s
                        .rsplit_once(':')
                        .ok_or_else(|| RedisError::Config(format!("bad sentinel address {s}")))?;
                    let port = p
                        .parse::<u16>()
                        .map_err(|_| RedisError::Config(format!("bad sentinel port in {s}")))?;
                    hosts.push(Server::new(h, port));
                }
                sentinel_info = Some(sentinel::SentinelSettings {
                    sentinels: hosts.iter().map(|s| (s.host.to_string(), s.port)).collect(),
                    master: master.clone(),
                    password: password.as_ref().map(|p| p.expose().to_string()),
                });
                let config = Config {
                    server: ServerConfig::Sentinel {
                        service_name: master.clone(),
                        hosts,
                        username: None,
                        password: password.as_ref().map(|p| p.expose().to_string()),
                    },
                    password: password.as_ref().map(|p| p.expose().to_string()),
                    ..Default::default()
                };
                (config, RedisMode::Sentinel)
            }
        };
        let client = build_client(&config)?;
        client.connect();
        let durable_client = build_client_with(&config, 1, wait + COMMAND_TIMEOUT)?;
        durable_client.connect();
        if tokio::time::timeout(CONNECT_WAIT, client.wait_for_connect())
            .await
            .is_err()
        {
            tracing::warn!(
                ?mode,
                "redis not reachable at start-up: running degraded (L1 only) and reconnecting"
            );
        }
        let master = Arc::new(sentinel::MasterState::default());
        if mode == RedisMode::Sentinel {
            master.follow(sentinel::Follower::Client(client.clone()));
            master.follow(sentinel::Follower::Client(durable_client.clone()));
        }
        Ok(Some(RedisHandle {
            client,
            mode,
            config,
            master,
            sentinel: sentinel_info,
            durable: Arc::new(durable::DurableWrites::new(durable_client, mode, wait)),
        }))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn mode(&self) -> RedisMode {
        self.mode
    }

    /// Durable writes: acknowledged only once a replica has them (see [`durable`]).
    pub fn durable(&self) -> &durable::DurableWrites {
        &self.durable
    }

    /// [`RedisHandle::durable`], shared (for a task that outlives the borrow).
    pub fn durable_shared(&self) -> Arc<durable::DurableWrites> {
        self.durable.clone()
    }

    /// A new client with the same configuration (for a subscriber, a lock's dedicated connection, …).
    pub fn clone_new(&self) -> Result<Client, RedisError> {
        build_client(&self.config)
    }

    /// A pub/sub client with the same configuration; it resubscribes after reconnecting
    /// (call `manage_subscriptions`).
    pub fn subscriber(&self) -> Result<fred::clients::SubscriberClient, RedisError> {
        let sub = Builder::from_config(self.config.clone())
            .with_performance_config(|p| {
                p.default_command_timeout = COMMAND_TIMEOUT;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .build_subscriber_client()
            .map_err(RedisError::ConfigRejected)?;
        if self.mode == RedisMode::Sentinel {
            self.master
                .follow(sentinel::Follower::Subscriber(sub.clone()));
        }
        Ok(sub)
    }

    /// What the Sentinel watcher knows about the master (empty in standalone mode).
    pub fn master(&self) -> &Arc<sentinel::MasterState> {
        &self.master
    }

    /// The Sentinels, the master name and the password, in Sentinel mode.
    pub fn sentinel_settings(&self) -> Option<&sentinel::SentinelSettings> {
        self.sentinel.as_ref()
    }

    /// The watcher to run in the background (Sentinel mode only).
    pub fn watcher(
        &self,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let s = self.sentinel.clone()?;
        Some(sentinel::run_watcher(
            s.sentinels,
            s.master,
            s.password,
            self.master.clone(),
            cancel,
        ))
    }

    /// `PING` within the command timeout.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let _: String = self.client.ping(None).await?;
        Ok(())
    }

    /// The address of the server the client is connected to, when connected.
    pub fn connected_server(&self) -> Option<String> {
        server_address(&self.client)
    }

    pub async fn quit(&self) {
        let _ = self.durable.client().quit().await;
        let _ = self.client.quit().await;
    }
}

/// `host:port` of the first server in a client's connection list (fred keeps the last one there while it
/// reconnects; callers that need a live connection check `is_connected` too).
fn server_address(client: &impl ClientLike) -> Option<String> {
    client
        .active_connections()
        .first()
        .map(|s| format!("{}:{}", s.host, s.port))
}

fn build_client(config: &Config) -> Result<Client, RedisError> {
    build_client_with(config, 2, COMMAND_TIMEOUT)
}

/// A client; `attempts` bounds how often fred writes one command (1: never re-sent after a reconnect).
fn build_client_with(
    config: &Config,
    attempts: u32,
    command_timeout: Duration,
) -> Result<Client, RedisError> {
    Builder::from_config(config.clone())
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(1);
            c.internal_command_timeout = Duration::from_secs(1);
            c.max_command_attempts = attempts;
            c.unresponsive = UnresponsiveConfig {
                max_timeout: Some(Duration::from_secs(2)),
                interval: Duration::from_millis(500),
            };
            c.reconnect_errors = vec![
                ReconnectError::ReadOnly,
                ReconnectError::Loading,
                ReconnectError::ClusterDown,
            ];
        })
        .with_performance_config(|p| {
            p.default_command_timeout = command_timeout;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
        .build()
        .map_err(RedisError::ConfigRejected)
}

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn client_errors_keep_their_source_and_classification() {
        let e = RedisError::from(fred::error::Error::new(
            fred::error::ErrorKind::IO,
            "connection reset",
        ));
        let source = std::error::Error::source(&e).expect("the client's error is the source");
        assert!(source.to_string().contains("connection reset"), "{source}");
        assert!(e.to_string().starts_with("redis unavailable: "), "{e}");
        assert_eq!(
            (e.kind(), e.retryable(), e.code()),
            (ErrorKind::Upstream, true, Code::RedisUnavailable)
        );
    }
}
