//! Tests of the error type, the context, borrowing tasks, and the execution future's bounds.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Classify, Code, ErrorKind};
use crate::pipeline::{InvalidTaskName, Pipeline, StandardConfig, TaskContext};

use super::support::*;

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
