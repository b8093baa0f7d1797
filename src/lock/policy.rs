//! Lock use as a pipeline policy: hold a lock around a task.
//!
//! Contract: `before` acquires the lock the namer picks for the execution (none → the policy does nothing
//! and is not entered) and keeps the guard in the context's extensions ([`HeldLock`]); `after` — which the
//! pipeline runs after success, failure, a panic and cancellation — takes the guard out and releases it.
//! The mode is `Propagate`: a busy lock (`LOCK_TIMEOUT`) or no lock tier (`LOCK_UNAVAILABLE`) rejects the
//! execution and the task does not run. A lock lost while the task ran is reported by `after` (a
//! propagated `LOCK_LOST`, attached to the result) — writers that must not act on a lost lock present the
//! guard's fence to the store, which is the real protection.
//!
//! Register it after the standard policies so the span and the metrics cover the wait.

use std::sync::Arc;
use std::time::Duration;

use super::{LockError, LockGuard, LockService};
use crate::pipeline::{HookErrorMode, HookFuture, Outcome, Policy, PolicyError, TaskContext, done};

/// Picks the lock of an execution (`None`: no lock).
pub type LockNamer = Arc<dyn Fn(&TaskContext) -> Option<String> + Send + Sync>;

/// The guard of the lock held around a task, in [`TaskContext::extensions`].
#[derive(Debug)]
pub struct HeldLock(pub LockGuard);

/// Holds a lock around each task it names.
pub struct LockPolicy {
    locks: LockService,
    wait: Duration,
    lease: Duration,
    namer: LockNamer,
}

impl LockPolicy {
    pub fn new(locks: LockService, wait: Duration, lease: Duration, namer: LockNamer) -> Self {
        LockPolicy {
            locks,
            wait,
            lease,
            namer,
        }
    }

    /// One lock per (component, operation, key): `component.operation:key`; executions without a key
    /// run unlocked.
    pub fn per_key(locks: LockService, wait: Duration, lease: Duration) -> Self {
        Self::new(
            locks,
            wait,
            lease,
            Arc::new(|ctx: &TaskContext| {
                ctx.key()
                    .map(|k| format!("{}.{}:{k}", ctx.component(), ctx.operation()))
            }),
        )
    }
}

impl Policy for LockPolicy {
    fn name(&self) -> &'static str {
        "lock"
    }

    fn on_hook_error(&self) -> HookErrorMode {
        HookErrorMode::Propagate
    }

    fn before<'a>(&'a self, ctx: &'a mut TaskContext) -> HookFuture<'a> {
        let Some(name) = (self.namer)(ctx) else {
            return done();
        };
        Box::pin(async move {
            let guard = self
                .locks
                .acquire(&name, self.wait, self.lease)
                .await
                .map_err(|e| Box::new(e) as PolicyError)?;
            ctx.extensions_mut().insert(HeldLock(guard));
            Ok(())
        })
    }

    fn after<'a>(
        &'a self,
        ctx: &'a mut TaskContext,
        _outcome: Outcome,
        _elapsed: Duration,
    ) -> HookFuture<'a> {
        let Some(HeldLock(guard)) = ctx.extensions_mut().remove::<HeldLock>() else {
            return done();
        };
        Box::pin(async move {
            guard
                .release()
                .await
                .map_err(|e: LockError| Box::new(e) as PolicyError)
        })
    }
}
