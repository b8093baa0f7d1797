//! Cluster-wide flight: for a missing key, exactly one loader runs in the whole cluster.
//!
//! Contract: [`ClusterFlight::join`] returns a role. [`FlightRole::Leader`] holds a Redis lease
//! (`SET key token NX PX lease`, the token random per attempt); the leader loads, writes the value to L2, then
//! calls [`LeaderPermit::complete`], which publishes a completion signal and deletes the lease only if it still
//! holds the token (compare-and-delete in Lua, so a leader whose lease expired cannot delete its successor's).
//! A permit dropped without `complete` (the leader's task was aborted or panicked) releases the lease the same
//! way from a spawned task, so followers do not wait for the full lease. [`FlightRole::Follower`] waits for the
//! completion signal (pub/sub, delivered through [`FlightSignals`]) with a jittered polling fallback, up to the
//! wait bound, and then reports what it saw; the caller re-checks L2 and, if the leader died, joins again — the
//! lease has expired by then, so exactly one follower takes over.
//!
//! Failure modes: any Redis error is returned to the caller, who degrades to a local-only load (one call per
//! instance instead of per cluster) — correctness never depends on Redis. The local signal map holds a key
//! only while a join or a follower's wait for it is in progress ([`FlightSignals`]): a failed `SET`, a
//! timed-out or abandoned follower and a leader elsewhere that never signals leave nothing behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::prelude::*;
use fred::types::scripts::Script;
use fred::types::{Expiration, SetOptions};
use tokio::sync::Notify;

use crate::redis::{RedisError, RedisHandle};

/// The pub/sub channel carrying completion signals (payload: the cache key).
pub const DONE_CHANNEL: &str = "maple:v1:flight:done";

const COMPARE_AND_DELETE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// What [`lease_key`] appends to a cache key.
pub const LEASE_SUFFIX: &str = ":flight";

/// The Redis key holding the flight lease of a cache key.
pub fn lease_key(key: &str) -> String {
    format!("{key}{LEASE_SUFFIX}")
}

/// Local dispatch of completion signals to waiting followers.
///
/// An entry exists only while someone holds a [`Registration`] for its key (or until a signal removes it):
/// every join registers, and the registration is dropped on every way out — a failed `SET`, a leader, a
/// follower that was signalled, timed out or was abandoned — so the map never outgrows the joins in
/// progress, whatever Redis does.
#[derive(Default)]
pub struct FlightSignals {
    waiters: Mutex<HashMap<String, Slot>>,
}

struct Slot {
    notify: Arc<Notify>,
    holders: usize,
}

/// Interest in a key's completion signal; removes the key's entry when its last holder lets go.
struct Registration {
    signals: Arc<FlightSignals>,
    key: String,
    notify: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut waiters = self.signals.waiters.lock().expect("poisoned");
        if let Some(slot) = waiters.get_mut(&self.key)
            && Arc::ptr_eq(&slot.notify, &self.notify)
        {
            slot.holders -= 1;
            if slot.holders == 0 {
                waiters.remove(&self.key);
            }
        }
    }
}

impl FlightSignals {
    fn register(signals: &Arc<FlightSignals>, key: &str) -> Registration {
        let notify = {
            let mut waiters = signals.waiters.lock().expect("poisoned");
            let slot = waiters.entry(key.to_string()).or_insert_with(|| Slot {
                notify: Arc::default(),
                holders: 0,
            });
            slot.holders += 1;
            slot.notify.clone()
        };
        Registration {
            signals: signals.clone(),
            key: key.to_string(),
            notify,
        }
    }

    /// Keys with a registered waiter in this instance.
    pub fn len(&self) -> usize {
        self.waiters.lock().expect("poisoned").len()
    }

    /// Whether no key has a registered waiter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes every follower waiting on `key` in this instance.
    pub fn signal(&self, key: &str) {
        let slot = self.waiters.lock().expect("poisoned").remove(key);
        if let Some(slot) = slot {
            slot.notify.notify_waiters();
        }
    }
}

/// Coordinates loaders across instances through Redis.
#[derive(Clone)]
pub struct ClusterFlight {
    redis: RedisHandle,
    lease: Duration,
    signals: Arc<FlightSignals>,
    script: Arc<Script>,
}

/// What the caller must do.
pub enum FlightRole {
    /// Load, store in L2, then `complete`.
    Leader(Box<LeaderPermit>),
    /// Someone else is loading: wait for it.
    Follower(FollowerWaiter),
}

/// The lease of the cluster-wide leader for a key.
pub struct LeaderPermit {
    flight: ClusterFlight,
    key: String,
    token: String,
    done: bool,
}

/// A follower's handle on a leader's completion; its registration ends when it is dropped.
pub struct FollowerWaiter {
    registration: Registration,
}

/// How a follower's wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The leader signalled completion: read L2.
    Completed,
    /// The poll found the condition satisfied.
    Observed,
    /// Nothing happened within the wait bound: re-check L2, then join again.
    TimedOut,
}

impl ClusterFlight {
    pub fn new(redis: RedisHandle, lease: Duration, signals: Arc<FlightSignals>) -> Self {
        ClusterFlight {
            redis,
            lease,
            signals,
            script: Arc::new(Script::from_lua(COMPARE_AND_DELETE)),
        }
    }

    pub fn signals(&self) -> &Arc<FlightSignals> {
        &self.signals
    }

    /// Tries to become the leader for `key`.
    pub async fn join(&self, key: &str) -> Result<FlightRole, RedisError> {
        // Register interest before trying, so a completion between the SET and the wait is not missed.
        let registration = FlightSignals::register(&self.signals, key);
        let token = format!("{:032x}", rand::random::<u128>());
        let set: Option<String> = self
            .redis
            .client()
            .set(
                lease_key(key),
                token.as_str(),
                Some(Expiration::PX(self.lease.as_millis() as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await?;
        if set.is_some() {
            Ok(FlightRole::Leader(Box::new(LeaderPermit {
                flight: self.clone(),
                key: key.to_string(),
                token,
                done: false,
            })))
        } else {
            Ok(FlightRole::Follower(FollowerWaiter { registration }))
        }
    }

    async fn release(&self, key: &str, token: &str) -> Result<(), RedisError> {
        let _: i64 = self
            .script
            .evalsha_with_reload(
                self.redis.client(),
                vec![lease_key(key)],
                vec![token.to_string()],
            )
            .await?;
        let _: i64 = self.redis.client().publish(DONE_CHANNEL, key).await?;
        Ok(())
    }
}

impl LeaderPermit {
    /// Signals completion to followers everywhere and releases the lease (owner-checked).
    pub async fn complete(mut self) {
        self.done = true;
        if let Err(e) = self.flight.release(&self.key, &self.token).await {
            tracing::warn!(key = %self.key, error = %e, "flight lease release failed; it expires by itself");
        }
        // Local followers learn of it without the Redis round trip too.
        self.flight.signals.signal(&self.key);
    }
}

impl Drop for LeaderPermit {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let flight = self.flight.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = flight.release(&key, &token).await;
                flight.signals.signal(&key);
            });
        }
    }
}

impl FollowerWaiter {
    /// Waits for the leader's signal, or until `check` (polled every ~25–50 ms) returns true, up to `max`.
    pub async fn wait<F, Fut>(self, max: Duration, mut check: F) -> WaitOutcome
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + max;
        let notified = self.registration.notify.notified();
        tokio::pin!(notified);
        loop {
            let jitter = Duration::from_millis(25 + rand::random::<u64>() % 25);
            let next = (tokio::time::Instant::now() + jitter).min(deadline);
            tokio::select! {
                _ = &mut notified => return WaitOutcome::Completed,
                _ = tokio::time::sleep_until(next) => {}
            }
            if check().await {
                return WaitOutcome::Observed;
            }
            if tokio::time::Instant::now() >= deadline {
                return WaitOutcome::TimedOut;
            }
        }
    }
}
