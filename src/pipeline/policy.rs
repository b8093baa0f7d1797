//! The [`Policy`] trait: four asynchronous hooks around a task, and what to do when one fails.
//!
//! Contract: a policy is shared by every execution (`&self`, `Send + Sync`) and is used as a trait
//! object (`Arc<dyn Policy>`), so hooks return a boxed future ([`HookFuture`]) instead of being
//! `async fn`s. Per-execution state belongs in the [`TaskContext`] (its span or extensions), never
//! in the policy. Each hook returns `Ok(())` or a [`PolicyError`] — any error that implements
//! [`Classify`](crate::error::Classify), so that a hook error which ends up as the primary error of
//! an execution still says whose fault it is and whether a retry helps. [`Policy::on_hook_error`]
//! declares what the pipeline does with that error: [`HookErrorMode::Swallow`] (logged and counted in
//! `maple_pipeline_hook_errors_total{policy,hook}`, execution continues as if the hook had
//! succeeded — except that a `before` that failed does not *enter* its policy) or
//! [`HookErrorMode::Propagate`] (a failing `before` stops the execution; any other failing hook adds
//! its error to the result, following the precedence rules in `mod.rs`).
//!
//! Guarantees: the default hooks do nothing and do not allocate ([`done`] boxes a zero-sized
//! future). Policies whose hooks are synchronous (tracing, metrics) do their work in the method body
//! and return [`done`]: the pipeline awaits every hook immediately after calling it, so the
//! observable order is the same and the hot path stays allocation-free.
//!
//! Failure modes: a hook that panics — while being called or while being polled — is fatal for the
//! execution whatever its mode: the pipeline still runs every entered `after`, then resumes the
//! panic. Hooks must therefore not use panics for control flow.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::context::TaskContext;
use super::error::{ClassifiedError, PolicyError, TaskError};

/// The future a hook returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PolicyError>> + Send + 'a>>;

/// A hook that has already succeeded. Does not allocate.
pub fn done<'a>() -> HookFuture<'a> {
    Box::pin(Done)
}

/// A hook that has already failed with `error`.
pub fn fail<'a>(error: impl ClassifiedError) -> HookFuture<'a> {
    Box::pin(std::future::ready(Err(Box::new(error) as PolicyError)))
}

/// A zero-sized, immediately ready success.
struct Done;

impl Future for Done {
    type Output = Result<(), PolicyError>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(()))
    }
}

/// What the pipeline does with an error returned by one of a policy's hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookErrorMode {
    /// Log it (warn) and count it in `maple_pipeline_hook_errors_total{policy,hook}`; the result of
    /// the execution is unaffected. A swallowed `before` error still leaves the policy not entered.
    Swallow,
    /// Make it part of the result: a failing `before` rejects the execution (primary error); any
    /// other hook error becomes the primary error if the task succeeded and nothing failed before
    /// it, otherwise it is attached as suppressed.
    Propagate,
}

/// What happened to the task, as seen by `after` hooks (and used as the `outcome` metric label).
/// It describes the task, not the hooks: a task that succeeded is `Success` even if a later hook
/// turned the execution's result into an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The task returned `Ok`.
    Success,
    /// The task returned `Err`.
    Failure,
    /// The task or a hook panicked; the panic is resumed after the AFTER hooks.
    Panicked,
    /// A `before` hook propagated an error; the task never ran.
    Rejected,
    /// The caller dropped the execution before it finished.
    Cancelled,
}

impl Outcome {
    /// The bounded label value used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Panicked => "panic",
            Outcome::Rejected => "rejected",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// Cross-cutting behaviour around every task. See the module documentation for the contract and
/// `mod.rs` for the order in which the pipeline calls the hooks.
pub trait Policy: Send + Sync {
    /// A short, stable name (a metric label of `maple_pipeline_hook_errors_total`).
    fn name(&self) -> &'static str;

    /// What the pipeline does when one of this policy's hooks returns an error.
    fn on_hook_error(&self) -> HookErrorMode;

    /// Runs before the task, in registration order. Success *enters* the policy: only entered
    /// policies get `on_success`/`on_failure` and `after`.
    fn before<'a>(&'a self, ctx: &'a mut TaskContext) -> HookFuture<'a> {
        let _ = ctx;
        done()
    }

    /// Runs after the task returned `Ok`, in reverse registration order over entered policies.
    /// `elapsed` is the task's own duration.
    fn on_success<'a>(&'a self, ctx: &'a mut TaskContext, elapsed: Duration) -> HookFuture<'a> {
        let _ = (ctx, elapsed);
        done()
    }

    /// Runs after the task returned `Err`, in reverse registration order over entered policies.
    /// `error` is the task's error, before any hook error is attached to it.
    fn on_failure<'a>(
        &'a self,
        ctx: &'a mut TaskContext,
        error: &'a TaskError,
        elapsed: Duration,
    ) -> HookFuture<'a> {
        let _ = (ctx, error, elapsed);
        done()
    }

    /// Runs last, in reverse registration order over entered policies, whatever happened:
    /// success, failure, rejection by a later policy's `before`, a panic, or cancellation.
    /// `elapsed` is the task's own duration (zero when the task did not start).
    fn after<'a>(
        &'a self,
        ctx: &'a mut TaskContext,
        outcome: Outcome,
        elapsed: Duration,
    ) -> HookFuture<'a> {
        let _ = (ctx, outcome, elapsed);
        done()
    }
}
