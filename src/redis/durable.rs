//! Durable writes: Redis writes the gateway treats as done only once a replica has them.
//!
//! Contract: [`DurableWrites::eval`] (a Lua script) and [`DurableWrites::add_member`] (the failover drill's
//! durable probe) answer `Ok(`[`Replication`]`)` only when the write is on the master **and** either
//! `WAIT 1 <timeout>` counted at least one replica holding it ([`Replication::Replicated`]), or the gateway
//! runs a standalone Redis (no Sentinel) that has no replica online ([`Replication::MasterOnly`]: with no
//! failover there is no replica that could be promoted without the write; a Redis that restarts empty is
//! detected by the likes' epoch). Every other outcome is a [`DurableError`], and the caller must treat the
//! write as *not written*: keep its own copy and retry (the likes' batch ids and pair keys make a retry
//! idempotent).
//!
//! * [`DurableError::NotReplicated`]: written on the master, but `WAIT` counted no replica within the timeout
//!   (`MAPLE_REDIS_WAIT_MS`). The write may still reach a replica later, or be lost in a failover.
//! * [`DurableError::NoReplica`]: Sentinel mode and the master has no replica online: nothing is written
//!   (a write acknowledged by the master alone is exactly the write a failover loses; without a replica
//!   the likes take the database path, see `likes::sync`).
//! * [`DurableError::Redis`]: a command failed or the connection broke; the write may or may not have
//!   landed.
//!
//! Why it is built this way (ADR 0012): `WAIT` counts the replicas that acknowledged the *connection's* last
//! write, so the write and its `WAIT` must run on the same connection, one after the other. The writes go
//! through a dedicated fred client (one connection to the master, never the hot path's multiplexed one: a
//! blocked `WAIT` would stall every request behind it), as a two-command pipeline that fred writes
//! back-to-back on that one connection; and the client never re-sends a command (`max_command_attempts =
//! 1`): a `WAIT` re-sent alone on a new connection after a reconnect would count replicas for a connection
//! that wrote nothing and answer "replicated" for a write the old master took with it. A connection that
//! breaks between the two commands fails the pair. In Sentinel mode the client is registered with the
//! watcher, so it follows a switch like the command client.
//!
//! The master's replica count (`INFO replication`: the replicas listed `state=online`; one still waiting
//! for or receiving its full sync acknowledges nothing and does not count) is read at most once a second,
//! and again after a `WAIT` that counted none; with none online, the write is not sent with a `WAIT` (which
//! would block for the whole timeout). Every outcome is counted in
//! `maple_redis_durable_writes_total{outcome}` (`replicated`, `master_only`, `not_replicated` — the `WAIT`
//! timeouts —, `no_replica`, `failed`) and each write's duration, `WAIT` included, in
//! `maple_redis_durable_write_seconds`.

use std::sync::Mutex;
use std::time::Duration;

use fred::prelude::*;
use fred::types::scripts::Script;
use fred::types::{CustomCommand, Value};
use tokio::time::Instant;

use super::{RedisError, RedisMode};

/// Durable writes by outcome.
pub const DURABLE_WRITES_TOTAL: &str = "maple_redis_durable_writes_total";
/// Duration of one durable write, its `WAIT` included (seconds).
pub const DURABLE_WRITE_SECONDS: &str = "maple_redis_durable_write_seconds";
/// How long a replica count read from the master is trusted.
pub const REPLICA_CHECK: Duration = Duration::from_secs(1);

/// How a durable write was made safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    /// `WAIT` counted this many replicas holding the write.
    Replicated(u32),
    /// Standalone Redis (no Sentinel) with no replica online: the master alone has it.
    MasterOnly,
}

/// A durable write that must be treated as not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DurableError {
    /// Written on the master, but no replica acknowledged it within the `WAIT` timeout.
    #[error("redis write not replicated: no replica acknowledged it within {0:?}")]
    NotReplicated(Duration),
    /// Sentinel mode and no replica online: nothing was written.
    #[error("redis write refused: the master has no replica to copy it")]
    NoReplica,
    #[error("{0}")]
    Redis(#[from] RedisError),
}

impl From<DurableError> for RedisError {
    fn from(e: DurableError) -> RedisError {
        match e {
            DurableError::Redis(e) => e,
            other => RedisError::Unavailable(other.to_string()),
        }
    }
}

/// One write, queued in front of its `WAIT`.
enum Write<'a> {
    Eval {
        script: &'a Script,
        keys: Vec<String>,
        args: Vec<String>,
    },
    AddMember {
        key: &'a str,
        member: &'a str,
        ttl_ms: i64,
    },
}

/// The durable-write client of one [`super::RedisHandle`].
pub struct DurableWrites {
    client: Client,
    mode: RedisMode,
    wait: Duration,
    /// The master's replica count and when it was read.
    replicas: Mutex<Option<(Instant, u32)>>,
}

impl std::fmt::Debug for DurableWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableWrites")
            .field("mode", &self.mode)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

fn count(outcome: &'static str) {
    metrics::counter!(DURABLE_WRITES_TOTAL, "outcome" => outcome).increment(1);
}

/// The replicas an `INFO replication` answer lists as `state=online`; `None` when the server is not a master.
/// A replica still waiting for or receiving its full sync (`wait_bgsave`, `send_bulk`) is attached
/// (`connected_slaves` counts it) but acknowledges no write, so a `WAIT` for it would block for its whole
/// timeout; it does not count until its sync is done.
pub fn parse_replicas(info: &str) -> Option<u32> {
    let mut master = false;
    let mut online = 0;
    for line in info.lines() {
        let line = line.trim_end();
        if line == "role:master" {
            master = true;
        } else if let Some((name, fields)) = line.split_once(':')
            && name
                .strip_prefix("slave")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            && fields.split(',').any(|f| f == "state=online")
        {
            online += 1;
        }
    }
    master.then_some(online)
}

impl DurableWrites {
    /// `client` must be dedicated to durable writes and built with `max_command_attempts = 1`.
    pub(super) fn new(client: Client, mode: RedisMode, wait: Duration) -> DurableWrites {
        DurableWrites {
            client,
            mode,
            wait,
            replicas: Mutex::new(None),
        }
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// The `WAIT` timeout.
    pub fn wait_timeout(&self) -> Duration {
        self.wait
    }

    /// True when a durable write can be acknowledged now: the master has a replica, or this is a standalone
    /// Redis (which accepts master-only writes). Reads the replica count when the last read is older than
    /// [`REPLICA_CHECK`]; false when it cannot be read.
    pub async fn can_write(&self) -> bool {
        match self.replicas().await {
            Ok(n) => n > 0 || self.mode == RedisMode::Standalone,
            Err(_) => false,
        }
    }

    /// Runs `script` (EVALSHA, loading it on `NOSCRIPT`) as a durable write; answers its result.
    pub async fn eval(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<(Value, Replication), DurableError> {
        let w = Write::Eval { script, keys, args };
        match self.write(&w).await {
            Err(DurableError::Redis(e)) if e.to_string().contains("NOSCRIPT") => {
                script
                    .load(&self.client)
                    .await
                    .map_err(|e| DurableError::Redis(e.into()))?;
                self.write(&w).await
            }
            r => r,
        }
    }

    /// `SADD key member` and `PEXPIRE key ttl_ms` as one durable write (the drill's durable probe).
    pub async fn add_member(
        &self,
        key: &str,
        member: &str,
        ttl_ms: i64,
    ) -> Result<Replication, DurableError> {
        self.write(&Write::AddMember {
            key,
            member,
            ttl_ms,
        })
        .await
        .map(|(_, r)| r)
    }

    /// The master's replica count, read again when older than [`REPLICA_CHECK`].
    async fn replicas(&self) -> Result<u32, RedisError> {
        if let Some((at, n)) = *self.replicas.lock().expect("poisoned")
            && at.elapsed() < REPLICA_CHECK
        {
            return Ok(n);
        }
        let info: String = self
            .client
            .custom(
                CustomCommand::new_static("INFO", None, false),
                vec!["replication"],
            )
            .await?;
        let n = parse_replicas(&info).ok_or_else(|| {
            RedisError::Unavailable("the durable-write connection is not on a master".into())
        })?;
        *self.replicas.lock().expect("poisoned") = Some((Instant::now(), n));
        Ok(n)
    }

    fn forget_replicas(&self) {
        *self.replicas.lock().expect("poisoned") = None;
    }

    async fn write(&self, w: &Write<'_>) -> Result<(Value, Replication), DurableError> {
        let started = Instant::now();
        let r = self.write_inner(w).await;
        metrics::histogram!(DURABLE_WRITE_SECONDS).record(started.elapsed().as_secs_f64());
        count(match &r {
            Ok((_, Replication::Replicated(_))) => "replicated",
            Ok((_, Replication::MasterOnly)) => "master_only",
            Err(DurableError::NotReplicated(_)) => "not_replicated",
            Err(DurableError::NoReplica) => "no_replica",
            Err(DurableError::Redis(_)) => "failed",
        });
        r
    }

    async fn write_inner(&self, w: &Write<'_>) -> Result<(Value, Replication), DurableError> {
        let replicas = self.replicas().await?;
        if replicas == 0 && self.mode == RedisMode::Sentinel {
            return Err(DurableError::NoReplica);
        }
        let p = self.client.pipeline();
        let queued: Result<(), fred::error::Error> = async {
            match w {
                Write::Eval { script, keys, args } => {
                    let mut a: Vec<String> = Vec::with_capacity(2 + keys.len() + args.len());
                    a.push(script.sha1().to_string());
                    a.push(keys.len().to_string());
                    a.extend(keys.iter().cloned());
                    a.extend(args.iter().cloned());
                    p.custom::<(), _>(CustomCommand::new_static("EVALSHA", None, false), a)
                        .await?;
                }
                Write::AddMember {
                    key,
                    member,
                    ttl_ms,
                } => {
                    p.sadd::<(), _, _>(*key, *member).await?;
                    p.pexpire::<(), _>(*key, *ttl_ms, None).await?;
                }
            }
            if replicas > 0 {
                p.wait::<()>(1, self.wait.as_millis() as i64).await?;
            }
            Ok(())
        }
        .await;
        queued.map_err(|e| DurableError::Redis(e.into()))?;
        let mut results = p.try_all::<Value>().await.into_iter();
        let value = results
            .next()
            .ok_or_else(|| RedisError::Unavailable("empty pipeline answer".into()))?
            .map_err(|e| DurableError::Redis(e.into()))?;
        if replicas == 0 {
            return Ok((value, Replication::MasterOnly));
        }
        let acked = results
            .last()
            .ok_or_else(|| RedisError::Unavailable("no WAIT answer".into()))?
            .map_err(|e| DurableError::Redis(e.into()))?
            .as_i64()
            .unwrap_or(0);
        if acked >= 1 {
            Ok((value, Replication::Replicated(acked as u32)))
        } else {
            self.forget_replicas();
            Err(DurableError::NotReplicated(self.wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_replicas;

    #[test]
    fn replica_count_only_from_a_master() {
        let master = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
                      slave0:ip=127.0.0.1,port=1,state=online,offset=5,lag=0\r\n\
                      slave1:ip=127.0.0.1,port=2,state=online,offset=5,lag=1\r\n";
        assert_eq!(parse_replicas(master), Some(2));
        assert_eq!(
            parse_replicas("role:master\r\nconnected_slaves:0\r\n"),
            Some(0)
        );
        assert_eq!(
            parse_replicas("role:slave\r\nmaster_host:127.0.0.1\r\nconnected_slaves:0\r\n"),
            None
        );
        assert_eq!(parse_replicas(""), None);
    }

    /// A replica waiting for or receiving its full sync (`wait_bgsave`, `send_bulk`) is listed in
    /// `connected_slaves` but acknowledges nothing: a `WAIT` for it blocks for the whole timeout.
    #[test]
    fn only_online_replicas_count() {
        let syncing = "role:master\r\nconnected_slaves:2\r\n\
                       slave0:ip=127.0.0.1,port=1,state=wait_bgsave,offset=0,lag=0\r\n\
                       slave1:ip=127.0.0.1,port=2,state=send_bulk,offset=0,lag=0\r\n";
        assert_eq!(parse_replicas(syncing), Some(0));
        let one_online = "role:master\r\nconnected_slaves:2\r\n\
                          slave0:ip=127.0.0.1,port=1,state=wait_bgsave,offset=0,lag=0\r\n\
                          slave1:ip=127.0.0.1,port=2,state=online,offset=9,lag=0\r\n";
        assert_eq!(parse_replicas(one_online), Some(1));
    }
}
