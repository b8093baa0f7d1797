//! Execution-policy pipeline: every handler's work runs through the same before/after hooks, with
//! one set of rules for order, timing, errors, panics and cancellation.
//!
//! # Contract
//!
//! [`Pipeline::execute`] runs a task (a future yielding `Result<T, E>` where `E` is a module error
//! that implements [`Classify`]) between the hooks of its registered [`Policy`]s:
//!
//! 1. **BEFORE** runs in registration order. A policy whose `before` succeeded is *entered*. A
//!    swallowed `before` error leaves that policy not entered and goes on; a propagated one stops
//!    the BEFORE phase (later policies' hooks never run) and the task never runs.
//! 2. **Task**. Only if every `before` either succeeded or was swallowed. It is polled inside the
//!    context's span. `elapsed` is measured around the task alone.
//! 3. **Completion**: `on_success` or `on_failure` for the entered policies in reverse order
//!    (not run when the task did not run or panicked; stops at a panic).
//! 4. **AFTER** for the entered policies in reverse order (LIFO), always: after success, failure,
//!    a propagated `before`, a panic in the task or a hook, and cancellation (see below). A panic in
//!    an `after` does not stop the remaining `after`s.
//!
//! Only entered policies get completion and AFTER hooks (entered pairing).
//!
//! # Error precedence
//!
//! * A panic in the task or in any hook is fatal: every entered `after` still runs, then the first
//!   panic is resumed with [`std::panic::resume_unwind`] — never converted into an error and never
//!   swallowed, whatever the policy's [`HookErrorMode`]. Later panics are logged and dropped.
//! * Otherwise, if the task failed (or a `before` propagated), that error is the primary error and
//!   every propagated hook error after it is attached to it as *suppressed*, in order.
//! * If the task succeeded, the first propagated hook error becomes the primary error and the later
//!   ones are suppressed under it.
//! * Swallowed hook errors never change the result; they are logged (warn) and counted in
//!   `maple_pipeline_hook_errors_total{policy,hook}`.
//!
//! # Cancellation: a drop guard, not spawn-and-await
//!
//! When the caller drops the execution future (client disconnect, an outer timeout), the task
//! future is dropped with it — the work stops at its next await point — and a guard owned by the
//! execution hands the entered policies that have not started their `after` yet, together with the
//! context, to a task spawned on the current Tokio runtime, which runs those `after` hooks in LIFO
//! order with [`Outcome::Cancelled`]. Each entered `after` is started exactly once: an `after` that
//! was itself interrupted by the drop is not restarted. Hook errors and panics in that detached run
//! have no caller to go to, so they are logged (and errors counted) whatever the policy's mode.
//!
//! Why not spawn-and-await: spawning the task would demand `'static` tasks (no borrowing from the
//! handler; every service call would clone its inputs into `Arc`s), add a task spawn, a join handle
//! and a cross-thread wake-up to every execution, and — worse — let a cancelled request's work run
//! on detached in the background, which is the opposite of what an outer timeout wants. The cost of
//! the guard: on cancellation the `after` hooks run shortly *after* the drop returns rather than
//! before it, they need a Tokio runtime (a future dropped outside any runtime logs an error naming
//! the skipped policies), completion hooks do not run for a cancelled task, and a runtime that is
//! shutting down drops such a detached run without polling it — so the shutdown coordinator must
//! let in-flight executions finish before it stops the runtime. Because nothing is spawned per
//! execution, tasks need not be `'static` or `Send`; the execution future is `Send` whenever the
//! task future is.
//!
//! Panic safety uses `catch_unwind` around the task and every hook call and poll
//! (`AssertUnwindSafe`: after a panic nothing observes the task's state except `after` hooks that
//! only see the context; the panic itself is resumed to the caller).
//!
//! # Standard policies and others
//!
//! [`Pipeline::standard`] registers [`TracingPolicy`] (span per task, slow-task warning) then
//! [`MetricsPolicy`] (`maple_task_duration_seconds`, `maple_task_total`). Other policies plug in
//! through the context: one that holds something from `before` to `after` (a guard, a permit) keeps
//! it in [`TaskContext::extensions_mut`]. Register them after the standard ones so that the span and
//! the metrics cover them.

mod context;
mod error;
mod policy;
mod standard;

#[cfg(test)]
mod tests;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::Classify;

pub use context::{Extensions, InvalidTaskName, MAX_NAME_LEN, TaskContext, is_valid_name};
pub use error::{ClassifiedError, Hook, HookError, PolicyError, TaskError};
pub use policy::{HookErrorMode, HookFuture, Outcome, Policy, done, fail};
pub use standard::{
    HOOK_ERRORS_TOTAL, MetricsPolicy, StandardConfig, TASK_DURATION_SECONDS, TASK_TOTAL,
    TracingPolicy,
};

/// An ordered list of policies that every task runs through. Cheap to clone (shared list).
#[derive(Clone)]
pub struct Pipeline {
    policies: Arc<[Arc<dyn Policy>]>,
}

/// Builds a [`Pipeline`]; policies run BEFORE in the order they are added.
#[derive(Default)]
pub struct PipelineBuilder {
    policies: Vec<Arc<dyn Policy>>,
}

impl PipelineBuilder {
    /// Appends a policy.
    pub fn policy(mut self, policy: impl Policy + 'static) -> Self {
        self.policies.push(Arc::new(policy));
        self
    }

    /// Appends a policy that is shared with other pipelines or with the caller.
    pub fn shared(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policies.push(policy);
        self
    }

    pub fn build(self) -> Pipeline {
        Pipeline {
            policies: self.policies.into(),
        }
    }
}

impl Pipeline {
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The pipeline every handler uses: [`TracingPolicy`] then [`MetricsPolicy`].
    pub fn standard(config: StandardConfig) -> Pipeline {
        Pipeline::builder()
            .policy(TracingPolicy::new(config.slow_threshold))
            .policy(MetricsPolicy::default())
            .build()
    }

    /// The registered policies' names, in BEFORE order.
    pub fn policy_names(&self) -> Vec<&'static str> {
        self.policies.iter().map(|p| p.name()).collect()
    }

    /// Runs `task` between the policies' hooks. See the module documentation for the order and
    /// the error precedence. Panics of the task or of a hook are resumed after the AFTER hooks.
    ///
    /// The task is boxed before anything else: the execution future then holds a pointer, not the
    /// task's state, so callers' futures stay small (a large future is copied on every move, and
    /// axum boxes each handler's future).
    pub fn execute<T, E, F>(
        &self,
        ctx: TaskContext,
        task: F,
    ) -> impl Future<Output = Result<T, TaskError>>
    where
        F: Future<Output = Result<T, E>>,
        E: std::error::Error + Classify + Send + Sync + 'static,
    {
        self.run(ctx, Box::pin(task))
    }

    async fn run<T, E, F>(&self, ctx: TaskContext, task: Pin<Box<F>>) -> Result<T, TaskError>
    where
        F: Future<Output = Result<T, E>>,
        E: std::error::Error + Classify + Send + Sync + 'static,
    {
        let policies: &[Arc<dyn Policy>] = &self.policies;
        let mut run = Run {
            policies,
            ctx,
            entered: Vec::with_capacity(policies.len()),
            started: None,
            elapsed: None,
        };
        let mut panicked: Option<PanicPayload> = None;
        let mut rejected: Option<HookError> = None;
        let mut propagated: Vec<HookError> = Vec::new();

        // 1. BEFORE, registration order.
        for (index, policy) in policies.iter().enumerate() {
            let ctx = &mut run.ctx;
            match run_hook(move || policy.before(ctx)).await {
                HookRun::Ok => run.entered.push(index),
                HookRun::Err(source) => {
                    let error = HookError::new(policy.name(), Hook::Before, source);
                    match policy.on_hook_error() {
                        HookErrorMode::Swallow => report_swallowed(&run.ctx, &error),
                        HookErrorMode::Propagate => {
                            rejected = Some(error);
                            break;
                        }
                    }
                }
                HookRun::Panic(payload) => {
                    panicked = Some(payload);
                    break;
                }
            }
        }

        // 2. The task, timed alone.
        let mut value: Option<T> = None;
        let mut failure: Option<TaskError> = None;
        let mut ran = false;
        if panicked.is_none() && rejected.is_none() {
            let started = Instant::now();
            run.started = Some(started);
            let joined = AssertUnwindSafe(task)
                .catch_unwind()
                .map(|r| r.map(|result| result.map_err(TaskError::new)))
                .instrument(run.ctx.span().clone())
                .await;
            run.elapsed = Some(started.elapsed());
            match joined {
                Ok(Ok(v)) => {
                    value = Some(v);
                    ran = true;
                }
                Ok(Err(e)) => {
                    failure = Some(e);
                    ran = true;
                }
                Err(payload) => panicked = Some(payload),
            }
        }
        let elapsed = run.elapsed.unwrap_or_default();

        // 3. Completion, reverse order over the entered policies.
        if ran {
            for &index in run.entered.iter().rev() {
                let policy = &policies[index];
                let ctx = &mut run.ctx;
                let (hook, result) = match &failure {
                    None => (
                        Hook::OnSuccess,
                        run_hook(move || policy.on_success(ctx, elapsed)).await,
                    ),
                    Some(error) => (
                        Hook::OnFailure,
                        run_hook(move || policy.on_failure(ctx, error, elapsed)).await,
                    ),
                };
                match result {
                    HookRun::Ok => {}
                    HookRun::Err(source) => {
                        let error = HookError::new(policy.name(), hook, source);
                        match policy.on_hook_error() {
                            HookErrorMode::Swallow => report_swallowed(&run.ctx, &error),
                            HookErrorMode::Propagate => propagated.push(error),
                        }
                    }
                    HookRun::Panic(payload) => {
                        panicked = Some(payload);
                        break;
                    }
                }
            }
        }

        // 4. AFTER, LIFO over the entered policies, always. Popped before it starts, so that a
        //    drop in the middle of an `after` does not restart it.
        let outcome = if panicked.is_some() {
            Outcome::Panicked
        } else if rejected.is_some() {
            Outcome::Rejected
        } else if failure.is_some() {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        while let Some(index) = run.entered.pop() {
            let policy = &policies[index];
            let ctx = &mut run.ctx;
            match run_hook(move || policy.after(ctx, outcome, elapsed)).await {
                HookRun::Ok => {}
                HookRun::Err(source) => {
                    let error = HookError::new(policy.name(), Hook::After, source);
                    match policy.on_hook_error() {
                        HookErrorMode::Swallow => report_swallowed(&run.ctx, &error),
                        HookErrorMode::Propagate => propagated.push(error),
                    }
                }
                HookRun::Panic(payload) => match panicked {
                    None => panicked = Some(payload),
                    Some(_) => report_extra_panic(&run.ctx, policy.name(), Hook::After, &payload),
                },
            }
        }

        if let Some(payload) = panicked {
            drop(run);
            panic::resume_unwind(payload);
        }

        // 5. Error precedence.
        if let Some(mut error) = rejected.map(TaskError::from).or(failure) {
            error.extend_suppressed(propagated);
            return Err(error);
        }
        let mut propagated = propagated.into_iter();
        match propagated.next() {
            None => Ok(value.expect("the task ran and succeeded")),
            Some(first) => {
                let mut error = TaskError::from(first);
                error.extend_suppressed(propagated);
                Err(error)
            }
        }
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("policies", &self.policy_names())
            .finish()
    }
}

type PanicPayload = Box<dyn Any + Send + 'static>;

/// How one hook ended.
enum HookRun {
    Ok,
    Err(PolicyError),
    Panic(PanicPayload),
}

/// Calls and awaits one hook, catching a panic in the call or in the poll.
async fn run_hook<'a>(call: impl FnOnce() -> HookFuture<'a>) -> HookRun {
    let future = match panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(future) => future,
        Err(payload) => return HookRun::Panic(payload),
    };
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(())) => HookRun::Ok,
        Ok(Err(source)) => HookRun::Err(source),
        Err(payload) => HookRun::Panic(payload),
    }
}

/// The state of one execution that must survive a drop: the context and the entered policies
/// whose `after` has not started. Dropping it with policies left means the execution was
/// cancelled; see the module documentation.
struct Run<'p> {
    policies: &'p [Arc<dyn Policy>],
    ctx: TaskContext,
    /// Entered policies (indices, registration order) whose `after` has not started yet.
    entered: Vec<usize>,
    started: Option<Instant>,
    elapsed: Option<Duration>,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if self.entered.is_empty() {
            return;
        }
        let elapsed = self
            .elapsed
            .or_else(|| self.started.map(|s| s.elapsed()))
            .unwrap_or_default();
        let pending: Vec<Arc<dyn Policy>> = self
            .entered
            .drain(..)
            .rev()
            .map(|index| Arc::clone(&self.policies[index]))
            .collect();
        let ctx = std::mem::replace(&mut self.ctx, TaskContext::placeholder());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(run_cancelled_afters(pending, ctx, elapsed));
            }
            Err(_) => {
                let skipped: Vec<&'static str> = pending.iter().map(|p| p.name()).collect();
                tracing::error!(
                    component = ctx.component(),
                    operation = ctx.operation(),
                    ?skipped,
                    "execution dropped outside a Tokio runtime; the AFTER hooks of its entered policies cannot run"
                );
            }
        }
    }
}

/// The AFTER hooks of a cancelled execution, LIFO, on the runtime. Nobody awaits the result, so
/// errors and panics are reported here whatever the policy's mode.
async fn run_cancelled_afters(
    pending: Vec<Arc<dyn Policy>>,
    mut ctx: TaskContext,
    elapsed: Duration,
) {
    for policy in &pending {
        let hook_ctx = &mut ctx;
        match run_hook(move || policy.after(hook_ctx, Outcome::Cancelled, elapsed)).await {
            HookRun::Ok => {}
            HookRun::Err(source) => {
                report_swallowed(&ctx, &HookError::new(policy.name(), Hook::After, source))
            }
            HookRun::Panic(payload) => {
                report_extra_panic(&ctx, policy.name(), Hook::After, &payload)
            }
        }
    }
}

/// Logs and counts a swallowed hook error.
fn report_swallowed(ctx: &TaskContext, error: &HookError) {
    metrics::counter!(
        HOOK_ERRORS_TOTAL,
        "policy" => error.policy(),
        "hook" => error.hook().as_str(),
    )
    .increment(1);
    let mut chain = String::new();
    let _ = error::write_chain(&mut chain, error);
    tracing::warn!(
        parent: ctx.span(),
        component = ctx.component(),
        operation = ctx.operation(),
        key = ctx.key(),
        policy = error.policy(),
        hook = error.hook().as_str(),
        code = error.code().as_str(),
        error = %chain,
        "pipeline hook error swallowed"
    );
}

/// Logs a panic that cannot be resumed (one is already pending, or nobody is waiting).
fn report_extra_panic(ctx: &TaskContext, policy: &'static str, hook: Hook, payload: &PanicPayload) {
    tracing::error!(
        parent: ctx.span(),
        component = ctx.component(),
        operation = ctx.operation(),
        key = ctx.key(),
        policy,
        hook = hook.as_str(),
        panic = panic_message(payload),
        "pipeline hook panicked; the panic cannot be resumed and is dropped"
    );
}

/// The message of a panic payload, when it is a string.
fn panic_message(payload: &PanicPayload) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>")
}
