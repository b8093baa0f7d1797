//! The standard policies every handler's execution goes through: [`TracingPolicy`] and
//! [`MetricsPolicy`], registered in that order by [`super::Pipeline::standard`].
//!
//! Contract:
//! * [`TracingPolicy`] opens one span per task (`task`, with `component`, `operation`, `key`) in
//!   `before`; the pipeline polls the task inside it, so everything the task logs carries those
//!   fields. Task failures are logged once, at a level that follows the error's kind (internal →
//!   error, upstream → warn, client → debug); a task that ran longer than the configured threshold
//!   gets a `slow task` warning; panics, cancellations and rejections are logged too, each with the
//!   task's `elapsed_ms`. The outcome and duration of every task are *not* recorded on the span:
//!   they are in the metrics, and recording them would cost a second formatting pass per task in
//!   the `fmt` subscriber.
//! * [`MetricsPolicy`] records, in `after`, `maple_task_total{component,operation,outcome}` (counter)
//!   and `maple_task_duration_seconds{component,operation,outcome}` (histogram of the task's own
//!   duration; not recorded for `rejected`, where the task never ran). The `key` is never a label.
//! * The pipeline itself counts swallowed hook errors in `maple_pipeline_hook_errors_total{policy,hook}`.
//!
//! Guarantees: both policies are synchronous, do their work in the hook body and return the
//! non-allocating [`done`] future; neither can fail, so they declare [`HookErrorMode::Swallow`].
//! Label values are `&'static str` (no allocation per task).
//!
//! Failure modes: without an installed metrics recorder or tracing subscriber the policies are
//! no-ops (the `metrics` and `tracing` facades drop the data), which is what tests and benches rely on.
//!
//! Why here: timing, logging and metrics are the cross-cutting concerns every handler needs; doing
//! them once in the pipeline keeps handlers and services free of them.

use std::time::Duration;

use crate::error::{Classify, ErrorKind};
use crate::telemetry::{BatchedCounter, BatchedHistogram, HandleCache, Label};

use super::context::TaskContext;
use super::error::TaskError;
use super::policy::{HookErrorMode, HookFuture, Outcome, Policy, done};

/// Histogram of the task's own duration, labelled `component`, `operation`, `outcome`.
pub const TASK_DURATION_SECONDS: &str = "maple_task_duration_seconds";
/// Counter of finished executions, labelled `component`, `operation`, `outcome`.
pub const TASK_TOTAL: &str = "maple_task_total";
/// Counter of swallowed hook errors, labelled `policy`, `hook`.
pub const HOOK_ERRORS_TOTAL: &str = "maple_pipeline_hook_errors_total";

/// Settings of [`super::Pipeline::standard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StandardConfig {
    /// Tasks that run longer than this are logged with a `slow task` warning.
    pub slow_threshold: Duration,
}

impl Default for StandardConfig {
    fn default() -> Self {
        StandardConfig {
            slow_threshold: Duration::from_secs(1),
        }
    }
}

/// Span per task, failure logging by error kind, slow-task warning.
#[derive(Clone, Debug)]
pub struct TracingPolicy {
    slow_threshold: Duration,
}

impl TracingPolicy {
    pub fn new(slow_threshold: Duration) -> Self {
        TracingPolicy { slow_threshold }
    }
}

impl Policy for TracingPolicy {
    fn name(&self) -> &'static str {
        "tracing"
    }

    fn on_hook_error(&self) -> HookErrorMode {
        HookErrorMode::Swallow
    }

    fn before<'a>(&'a self, ctx: &'a mut TaskContext) -> HookFuture<'a> {
        let span = tracing::info_span!(
            "task",
            component = ctx.component(),
            operation = ctx.operation(),
            key = ctx.key(),
        );
        ctx.set_span(span);
        done()
    }

    fn on_failure<'a>(
        &'a self,
        ctx: &'a mut TaskContext,
        error: &'a TaskError,
        elapsed: Duration,
    ) -> HookFuture<'a> {
        let elapsed_ms = elapsed.as_secs_f64() * 1e3;
        let (kind, code, retryable) = (
            error.kind().as_str(),
            error.code().as_str(),
            error.retryable(),
        );
        match error.kind() {
            ErrorKind::Internal => tracing::error!(
                parent: ctx.span(), kind, code, retryable, elapsed_ms, error = %error, "task failed"
            ),
            ErrorKind::Upstream => tracing::warn!(
                parent: ctx.span(), kind, code, retryable, elapsed_ms, error = %error, "task failed"
            ),
            ErrorKind::Client => tracing::debug!(
                parent: ctx.span(), kind, code, retryable, elapsed_ms, error = %error, "task failed"
            ),
        }
        done()
    }

    fn after<'a>(
        &'a self,
        ctx: &'a mut TaskContext,
        outcome: Outcome,
        elapsed: Duration,
    ) -> HookFuture<'a> {
        let span = ctx.span();
        let elapsed_ms = elapsed.as_secs_f64() * 1e3;
        if elapsed > self.slow_threshold {
            tracing::warn!(
                parent: span,
                outcome = outcome.as_str(),
                elapsed_ms,
                threshold_ms = self.slow_threshold.as_secs_f64() * 1e3,
                "slow task"
            );
        }
        match outcome {
            Outcome::Panicked => {
                tracing::error!(parent: span, elapsed_ms, "task or hook panicked; resuming the panic")
            }
            Outcome::Cancelled => tracing::debug!(parent: span, elapsed_ms, "task cancelled"),
            Outcome::Rejected => tracing::debug!(parent: span, "task rejected by a policy"),
            Outcome::Success | Outcome::Failure => {}
        }
        done()
    }
}

/// Per-task counter and duration histogram. Handles are registered on first use of each
/// (component, operation, outcome) and reused (see [`crate::telemetry::HandleCache`]); they batch per
/// thread shard and reach the recorder at the next [`crate::telemetry::flush`].
#[derive(Debug, Default)]
pub struct MetricsPolicy {
    totals: HandleCache<TaskLabels, BatchedCounter>,
    durations: HandleCache<TaskLabels, BatchedHistogram>,
}

/// (component, operation, outcome)
type TaskLabels = (Label, Label, Label);

impl Policy for MetricsPolicy {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn on_hook_error(&self) -> HookErrorMode {
        HookErrorMode::Swallow
    }

    fn after<'a>(
        &'a self,
        ctx: &'a mut TaskContext,
        outcome: Outcome,
        elapsed: Duration,
    ) -> HookFuture<'a> {
        let (component, operation, outcome_label) =
            (ctx.component(), ctx.operation(), outcome.as_str());
        let labels = (Label(component), Label(operation), Label(outcome_label));
        self.totals.with(
            labels,
            || {
                BatchedCounter::new(metrics::counter!(
                    TASK_TOTAL,
                    "component" => component,
                    "operation" => operation,
                    "outcome" => outcome_label,
                ))
            },
            |total| total.increment(1),
        );
        if outcome != Outcome::Rejected {
            self.durations.with(
                labels,
                || {
                    BatchedHistogram::new(metrics::histogram!(
                        TASK_DURATION_SECONDS,
                        "component" => component,
                        "operation" => operation,
                        "outcome" => outcome_label,
                    ))
                },
                |duration| duration.record(elapsed.as_secs_f64()),
            );
        }
        done()
    }
}
