//! Tests of the standard execution patterns, the error type, the context, and the deadline hook
//! point that a timeout policy will use.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Classify, Code, ErrorKind};
use crate::pipeline::{
    DeadlineExceeded, HookErrorMode, HookFuture, InvalidTaskName, Outcome, Pipeline, Policy,
    StandardConfig, TaskContext, done,
};

use super::support::*;

#[tokio::test]
async fn execute_or_default_yields_the_value_or_the_default() {
    let log = new_log();
    let (pipeline, _) = recorders(&[Script::ok()], &log);

    assert_eq!(
        pipeline
            .execute_or_default(ctx(), task(Step::Ok, &log))
            .await,
        7
    );
    assert_eq!(
        pipeline
            .execute_or_default(ctx(), task(Step::Fail, &log))
            .await,
        0
    );
}

#[tokio::test]
async fn execute_or_else_recovers_from_the_task_error() {
    let pipeline = Pipeline::builder().build();
    let log = new_log();

    let value = pipeline
        .execute_or_else(ctx(), task(Step::Fail, &log), |error| {
            assert_eq!(error.code(), "INTERNAL");
            99
        })
        .await;

    assert_eq!(value, 99);
}

#[tokio::test]
async fn execute_with_translation_maps_the_error_into_the_callers_type() {
    let pipeline = Pipeline::builder().build();
    let log = new_log();

    let result: Result<u32, String> = pipeline
        .execute_with_translation(ctx(), task(Step::Fail, &log), |e| {
            format!("{}:{}", e.code(), e)
        })
        .await;

    assert_eq!(result.unwrap_err(), "INTERNAL:task failed");
}

#[tokio::test]
async fn execute_with_finally_cleans_up_exactly_once_after_the_afters() {
    for step in [Step::Ok, Step::Fail, Step::Panic] {
        let log = new_log();
        let (pipeline, _) = recorders(&[Script::ok(), Script::ok()], &log);
        let cleanup_log = Arc::clone(&log);

        let _ = observe(
            pipeline.execute_with_finally(ctx(), task(step, &log), move || {
                cleanup_log.lock().unwrap().push(Event::Cleanup)
            }),
        )
        .await;

        let events = events(&log);
        assert_eq!(
            events.iter().filter(|e| **e == Event::Cleanup).count(),
            1,
            "{step:?}: {events:?}"
        );
        assert_eq!(events.last(), Some(&Event::Cleanup), "{step:?}: {events:?}");
        assert!(
            matches!(events[events.len() - 2], Event::After(0, _)),
            "{step:?}: {events:?}"
        );
    }
}

#[tokio::test]
async fn a_nested_execution_error_keeps_its_identity_and_suppressed_list() {
    let log = new_log();
    let (inner, _) = recorders(
        &[Script::ok()
            .propagate()
            .step(crate::pipeline::Hook::After, Step::Fail)],
        &log,
    );
    let outer = Pipeline::builder().build();

    let result = outer
        .execute(ctx(), async {
            inner.execute(ctx(), task(Step::Fail, &log)).await
        })
        .await;

    let error = result.unwrap_err();
    assert_eq!(error.downcast_ref::<TestError>().unwrap().what, "task");
    assert_eq!(error.suppressed().len(), 1);
    assert_eq!(error.code(), "INTERNAL");
}

#[derive(Debug, thiserror::Error)]
#[error("loading equipment")]
struct Outer {
    #[source]
    cause: std::io::Error,
}

impl Classify for Outer {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Upstream
    }
    fn retryable(&self) -> bool {
        true
    }
    fn code(&self) -> Code {
        Code::UpstreamUnavailable
    }
    fn retry_after_secs(&self) -> Option<u64> {
        Some(30)
    }
}

#[tokio::test]
async fn task_error_shows_the_cause_chain_and_keeps_the_classification() {
    let pipeline = Pipeline::builder().build();

    let error = pipeline
        .execute(ctx(), async {
            Err::<(), _>(Outer {
                cause: std::io::Error::other("connection reset"),
            })
        })
        .await
        .unwrap_err();

    assert_eq!(error.to_string(), "loading equipment: connection reset");
    assert_eq!(error.chain().count(), 2);
    assert!(std::error::Error::source(&error).is_none());
    assert_eq!(
        (
            error.kind(),
            error.retryable(),
            error.code(),
            error.retry_after_secs()
        ),
        (
            ErrorKind::Upstream,
            true,
            Code::UpstreamUnavailable,
            Some(30)
        )
    );
    assert!(error.downcast_ref::<Outer>().is_some());
    assert!(error.downcast_ref::<TestError>().is_none());
    assert!(error.hook_error().is_none());
}

#[test]
fn task_context_accepts_bounded_names_and_rejects_others() {
    assert!(TaskContext::try_new("characters", "expectation").is_ok());
    assert!(TaskContext::try_new("likes", "sync.flush-v2").is_ok());
    for bad in ["", "Characters", "by name", "9lives", "é"] {
        assert_eq!(
            TaskContext::try_new(bad, "op").unwrap_err(),
            InvalidTaskName {
                field: "component",
                value: bad
            },
        );
        assert_eq!(
            TaskContext::try_new("component", bad).unwrap_err().field,
            "operation"
        );
    }
    let long: &'static str = "a".repeat(65).leak();
    assert!(TaskContext::try_new(long, "op").is_err());
    assert!(TaskContext::try_new(&long[..64], "op").is_ok());

    let ctx = TaskContext::new("characters", "expectation").with_key("Alice");
    assert_eq!(
        (ctx.component(), ctx.operation(), ctx.key()),
        ("characters", "expectation", Some("Alice"))
    );
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "invalid task component name")]
fn task_context_new_rejects_an_invalid_name_in_debug_builds() {
    let _ = TaskContext::new("", "expectation");
}

#[test]
fn extensions_store_one_value_per_type() {
    let mut ctx = ctx();
    assert!(ctx.extensions().is_empty());
    assert_eq!(ctx.extensions_mut().insert(5u32), None);
    assert_eq!(ctx.extensions_mut().insert(6u32), Some(5));
    ctx.extensions_mut().insert("lease");
    *ctx.extensions_mut().get_mut::<u32>().unwrap() += 1;
    assert_eq!(ctx.extensions().get::<u32>(), Some(&7));
    assert_eq!(ctx.extensions().len(), 2);
    assert_eq!(ctx.extensions_mut().remove::<&str>(), Some("lease"));
    assert_eq!(ctx.extensions().get::<&str>(), None);
}

#[tokio::test(start_paused = true)]
async fn tighten_deadline_keeps_the_earlier_deadline() {
    let now = tokio::time::Instant::now();
    let mut ctx = ctx();
    ctx.tighten_deadline(now + Duration::from_secs(5));
    ctx.tighten_deadline(now + Duration::from_secs(9));
    assert_eq!(ctx.deadline(), Some(now + Duration::from_secs(5)));
    ctx.tighten_deadline(now + Duration::from_secs(2));
    assert_eq!(ctx.deadline(), Some(now + Duration::from_secs(2)));
}

/// What a timeout policy will look like: a deadline set in `before`.
struct Deadline {
    budget: Duration,
    outcomes: Arc<Mutex<Vec<(Outcome, Duration)>>>,
}

impl Policy for Deadline {
    fn name(&self) -> &'static str {
        "deadline"
    }

    fn on_hook_error(&self) -> HookErrorMode {
        HookErrorMode::Propagate
    }

    fn before<'a>(&'a self, ctx: &'a mut TaskContext) -> HookFuture<'a> {
        ctx.tighten_deadline(tokio::time::Instant::now() + self.budget);
        done()
    }

    fn after<'a>(
        &'a self,
        _ctx: &'a mut TaskContext,
        outcome: Outcome,
        elapsed: Duration,
    ) -> HookFuture<'a> {
        self.outcomes.lock().unwrap().push((outcome, elapsed));
        done()
    }
}

#[tokio::test(start_paused = true)]
async fn a_deadline_set_by_a_policy_drops_the_task_and_fails_it() {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let pipeline = Pipeline::builder()
        .policy(Deadline {
            budget: Duration::from_secs(1),
            outcomes: Arc::clone(&outcomes),
        })
        .build();
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(Arc::clone(&dropped));

    let error = pipeline
        .execute(ctx(), async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, TestError>(())
        })
        .await
        .unwrap_err();

    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(
        error.downcast_ref::<DeadlineExceeded>(),
        Some(&DeadlineExceeded {
            budget: Duration::from_secs(1)
        })
    );
    assert_eq!(
        (error.kind(), error.code(), error.retryable()),
        (ErrorKind::Upstream, Code::Timeout, true)
    );
    assert_eq!(
        outcomes.lock().unwrap().clone(),
        [(Outcome::Failure, Duration::from_secs(1))]
    );
}

#[tokio::test]
async fn tasks_may_borrow_from_the_caller() {
    let pipeline = Pipeline::standard(StandardConfig::default());
    let names = ["Alice".to_string(), "Bob".to_string()];
    let calls = AtomicUsize::new(0);

    let joined = pipeline
        .execute(ctx(), async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(names.join(","))
        })
        .await
        .unwrap();

    assert_eq!(joined, "Alice,Bob");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Handlers run on a multi-threaded runtime: the execution future must be `Send` whenever the task is.
#[test]
fn the_execution_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let pipeline = Pipeline::standard(StandardConfig::default());
    let log = new_log();
    let execution = pipeline.execute(ctx(), task(Step::Ok, &log));
    assert_send(&execution);
    let finally = pipeline.execute_with_finally(ctx(), task(Step::Ok, &log), || {});
    assert_send(&finally);
}

#[test]
fn pipeline_lists_its_policies_in_order() {
    let pipeline = Pipeline::standard(StandardConfig::default());
    assert_eq!(pipeline.policy_names(), ["tracing", "metrics"]);
    assert_eq!(
        format!("{pipeline:?}"),
        r#"Pipeline { policies: ["tracing", "metrics"] }"#
    );
}
