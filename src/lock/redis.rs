//! The Redis tier: `SET NX PX` with a random owner token, fencing token, compare-and-extend and
//! compare-and-delete, all as Lua scripts; release notifications over pub/sub.
//!
//! Contract: [`RedisTier::try_once`] makes one attempt — `Ok(Some)` taken, `Ok(None)` held by someone
//! else, `Err` Redis did not answer (disconnected, error, command timeout) so the caller may fall back.
//! The fencing token is computed inside the acquire script from the Redis server's clock (`TIME`, µs) and
//! kept above the last token issued for the name (`<key>:fence`), so it survives a restart that lost the
//! data and stays comparable with the MySQL tier's database-clock tokens. A release deletes the key only
//! if it still holds the owner's token and then publishes the lock name on [`RELEASED_CHANNEL`]; a
//! listener (started on first wait) wakes this process's waiters for that name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fred::prelude::*;
use fred::types::scripts::Script;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Acquired, Held, TierDown};
use crate::redis::RedisHandle;

/// Channel on which releases are announced (payload: the lock name).
pub const RELEASED_CHANNEL: &str = "maple:v1:lock:released";

const ACQUIRE: &str = r#"
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local t = redis.call('time')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('get', KEYS[2]) or '0')
  if now <= last then now = last + 1 end
  redis.call('set', KEYS[2], string.format('%.0f', now))
  return now
end
return 0
"#;

const EXTEND: &str = r#"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"#;

const RELEASE: &str = r#"
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  redis.call('publish', ARGV[2], ARGV[3])
  return 1
end
return 0
"#;

/// The Redis key of a lock.
pub fn lock_key(name: &str) -> String {
    format!("maple:v1:lock:{name}")
}

struct Scripts {
    acquire: Script,
    extend: Script,
    release: Script,
}

#[derive(Default)]
struct Signals {
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Signals {
    fn notify_for(&self, name: &str) -> Arc<Notify> {
        self.waiters
            .lock()
            .expect("poisoned")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    fn signal(&self, name: &str) {
        if let Some(n) = self.waiters.lock().expect("poisoned").remove(name) {
            n.notify_waiters();
        }
    }
}

pub(crate) struct RedisTier {
    redis: RedisHandle,
    scripts: Arc<Scripts>,
    signals: Arc<Signals>,
    listener: OnceLock<()>,
    stop: CancellationToken,
}

impl Drop for RedisTier {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn down(e: fred::error::Error) -> TierDown {
    TierDown::from_error(e)
}

impl RedisTier {
    pub fn new(redis: RedisHandle) -> RedisTier {
        RedisTier {
            redis,
            scripts: Arc::new(Scripts {
                acquire: Script::from_lua(ACQUIRE),
                extend: Script::from_lua(EXTEND),
                release: Script::from_lua(RELEASE),
            }),
            signals: Arc::new(Signals::default()),
            listener: OnceLock::new(),
            stop: CancellationToken::new(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.redis.client().is_connected()
    }

    /// The notification that fires when `name` is released (register before trying).
    pub fn signal_for(&self, name: &str) -> Arc<Notify> {
        self.signals.notify_for(name)
    }

    /// One attempt.
    pub async fn try_once(
        &self,
        name: &str,
        lease: Duration,
    ) -> Result<Option<Acquired>, TierDown> {
        if !self.is_connected() {
            return Err(TierDown::new("redis is not connected"));
        }
        let owner = format!("{:032x}", rand::random::<u128>());
        let key = lock_key(name);
        let taken_at = Instant::now();
        let token: i64 = self
            .scripts
            .acquire
            .evalsha_with_reload(
                self.redis.client(),
                vec![key.clone(), format!("{key}:fence")],
                vec![owner.clone(), lease.as_millis().to_string()],
            )
            .await
            .map_err(down)?;
        if token <= 0 {
            return Ok(None);
        }
        Ok(Some(Acquired {
            held: Box::new(RedisHeld {
                redis: self.redis.clone(),
                scripts: self.scripts.clone(),
                name: name.to_string(),
                key,
                owner,
            }),
            token: token as u64,
            taken_at,
        }))
    }

    /// Starts the release listener once (waiters also poll, so a listener that cannot subscribe only
    /// makes waking slower).
    pub fn ensure_listener(&self) {
        if self.listener.set(()).is_err() {
            return;
        }
        let sub = match self.redis.subscriber() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "lock release listener unavailable; waiters poll");
                return;
            }
        };
        let signals = self.signals.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let _ = sub.init().await;
            let _manage = sub.manage_subscriptions();
            if let Err(e) = sub.subscribe(RELEASED_CHANNEL).await {
                tracing::debug!(error = %e, "lock release subscribe failed; fred resubscribes on reconnect");
            }
            let mut rx = sub.message_rx();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    msg = rx.recv() => match msg {
                        Ok(m) => {
                            if let Some(name) = m.value.as_string() {
                                signals.signal(&name);
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
            }
            let _ = sub.quit().await;
        });
    }
}

struct RedisHeld {
    redis: RedisHandle,
    scripts: Arc<Scripts>,
    name: String,
    key: String,
    owner: String,
}

impl Held for RedisHeld {
    fn renew(&mut self, lease: Duration) -> BoxFuture<'_, Result<bool, TierDown>> {
        async move {
            let n: i64 = self
                .scripts
                .extend
                .evalsha_with_reload(
                    self.redis.client(),
                    vec![self.key.clone()],
                    vec![self.owner.clone(), lease.as_millis().to_string()],
                )
                .await
                .map_err(down)?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), TierDown>> {
        async move {
            let n: i64 = self
                .scripts
                .release
                .evalsha_with_reload(
                    self.redis.client(),
                    vec![self.key.clone()],
                    vec![
                        self.owner.clone(),
                        RELEASED_CHANNEL.to_string(),
                        self.name.clone(),
                    ],
                )
                .await
                .map_err(down)?;
            if n == 1 {
                Ok(())
            } else {
                Err(TierDown::new("not the owner any more"))
            }
        }
        .boxed()
    }
}
