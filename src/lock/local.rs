//! The in-process tier: leases in a map, for the embedded mode (one process, SQLite, no Redis).
//!
//! Contract: the same semantics as the distributed tiers within one process — one owner per name, a lease
//! (tokio time, so tests drive it with paused time) that the guard's watchdog extends, owner-checked
//! release, and fencing tokens from the wall clock in µs forced monotonic. Waiters sleep on a `Notify`
//! woken by a release, or until the current lease ends, or their deadline.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Acquired, Held, TierDown, next_clock_token};

struct Slot {
    owner: u64,
    expires: Instant,
}

#[derive(Default)]
struct Table {
    slots: HashMap<String, Slot>,
    signals: HashMap<String, Arc<Notify>>,
}

pub(crate) struct LocalTier {
    table: Arc<Mutex<Table>>,
    owners: AtomicU64,
    tokens: AtomicU64,
}

impl LocalTier {
    pub fn new() -> LocalTier {
        LocalTier {
            table: Arc::new(Mutex::new(Table::default())),
            owners: AtomicU64::new(1),
            tokens: AtomicU64::new(0),
        }
    }

    /// `None` when the deadline passed with the lock still held by someone else.
    pub async fn acquire(
        &self,
        name: &str,
        deadline: Instant,
        lease: Duration,
    ) -> Option<Acquired> {
        let owner = self
            .owners
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        loop {
            let (signal, until) = {
                let mut t = self.table.lock().expect("poisoned");
                let now = Instant::now();
                match t.slots.get(name).map(|s| s.expires).filter(|e| *e > now) {
                    Some(expires) => {
                        let signal = t.signals.entry(name.to_string()).or_default().clone();
                        (signal, expires)
                    }
                    None => {
                        t.slots.insert(
                            name.to_string(),
                            Slot {
                                owner,
                                expires: now + lease,
                            },
                        );
                        return Some(Acquired {
                            held: Box::new(LocalHeld {
                                table: self.table.clone(),
                                name: name.to_string(),
                                owner,
                            }),
                            token: next_clock_token(&self.tokens),
                            taken_at: now,
                        });
                    }
                }
            };
            let notified = signal.notified();
            tokio::pin!(notified);
            // Register before re-checking the time, so a release in between is not missed.
            notified.as_mut().enable();
            if Instant::now() >= deadline {
                return None;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until.min(deadline)) => {}
            }
        }
    }
}

struct LocalHeld {
    table: Arc<Mutex<Table>>,
    name: String,
    owner: u64,
}

impl Held for LocalHeld {
    fn renew(&mut self, lease: Duration) -> BoxFuture<'_, Result<bool, TierDown>> {
        let mut t = self.table.lock().expect("poisoned");
        let ok = match t.slots.get_mut(&self.name) {
            Some(s) if s.owner == self.owner && s.expires > Instant::now() => {
                s.expires = Instant::now() + lease;
                true
            }
            _ => false,
        };
        async move { Ok(ok) }.boxed()
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), TierDown>> {
        let mut t = self.table.lock().expect("poisoned");
        let mine = t
            .slots
            .get(&self.name)
            .is_some_and(|s| s.owner == self.owner);
        if mine {
            t.slots.remove(&self.name);
        }
        if let Some(n) = t.signals.remove(&self.name) {
            n.notify_waiters();
        }
        let r = if mine {
            Ok(())
        } else {
            Err(TierDown::new("not the owner any more"))
        };
        async move { r }.boxed()
    }
}
