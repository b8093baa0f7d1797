//! One or more unit tests per invariant of the pipeline (numbered as in the module
//! documentation), each checking the exact event log and result of a scripted execution.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{Classify, Code, ErrorKind};
use crate::pipeline::{Hook, Outcome};

use super::support::*;

use Event::*;

fn on_failure(policy: usize) -> Event {
    OnFailure {
        policy,
        saw_task_error: true,
    }
}

// ---- 1. BEFORE in registration order; a successful `before` enters the policy ----

#[tokio::test]
async fn inv1_before_runs_in_registration_order_and_only_success_enters() {
    let log = new_log();
    let scripts = [
        Script::ok(),
        Script::ok().step(Hook::Before, Step::Fail), // swallowed: not entered, execution goes on
        Script::ok(),
        Script::ok(),
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Ok, &log))).await;

    assert!(matches!(result, Observed::Ok(7)), "{result:?}");
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Before(2),
            Before(3),
            Task,
            OnSuccess(3),
            OnSuccess(2),
            OnSuccess(0),
            After(3, Outcome::Success),
            After(2, Outcome::Success),
            After(0, Outcome::Success),
        ]
    );
}

// ---- 2. Only entered policies get on_success / on_failure / after ----

#[tokio::test]
async fn inv2_policies_not_entered_get_no_completion_or_after_hooks() {
    let log = new_log();
    let scripts = [
        Script::ok().step(Hook::Before, Step::Fail),
        Script::ok(),
        Script::ok().step(Hook::Before, Step::Fail).sync(),
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Fail, &log))).await;

    let Observed::Err(error) = result else {
        panic!("expected the task's error, got {result:?}");
    };
    assert_eq!(error.downcast_ref::<TestError>().unwrap().what, "task");
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Before(2),
            Task,
            on_failure(1),
            After(1, Outcome::Failure)
        ]
    );
}

// ---- 3. AFTER in reverse order over the entered policies, always ----

#[tokio::test]
async fn inv3_after_is_lifo_when_the_task_fails() {
    let log = new_log();
    let (pipeline, _) = recorders(&[Script::ok(), Script::ok(), Script::ok()], &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Fail, &log))).await;

    assert!(matches!(result, Observed::Err(_)), "{result:?}");
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Before(2),
            Task,
            on_failure(2),
            on_failure(1),
            on_failure(0),
            After(2, Outcome::Failure),
            After(1, Outcome::Failure),
            After(0, Outcome::Failure),
        ]
    );
}

#[tokio::test]
async fn inv3_after_is_lifo_when_a_before_propagates() {
    let log = new_log();
    let scripts = [
        Script::ok(),
        Script::ok(),
        Script::ok().propagate().step(Hook::Before, Step::Fail),
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Ok, &log))).await;

    assert!(matches!(result, Observed::Err(_)), "{result:?}");
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Before(2),
            After(1, Outcome::Rejected),
            After(0, Outcome::Rejected),
        ]
    );
}

#[tokio::test]
async fn inv3_after_is_lifo_when_the_task_panics_and_the_panic_is_resumed() {
    let log = new_log();
    let (pipeline, _) = recorders(&[Script::ok(), Script::ok(), Script::ok()], &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Panic, &log))).await;

    match result {
        Observed::Panic(message) => assert_eq!(message, panic_text("task")),
        other => panic!("the task's panic must be resumed, got {other:?}"),
    }
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Before(2),
            Task,
            After(2, Outcome::Panicked),
            After(1, Outcome::Panicked),
            After(0, Outcome::Panicked),
        ]
    );
}

// ---- 4. `elapsed` measures the task alone ----

#[tokio::test(start_paused = true)]
async fn inv4_elapsed_measures_the_task_and_not_the_hooks() {
    let log = new_log();
    let slow_hooks = Script::ok()
        .delay(Hook::Before, Duration::from_secs(5))
        .delay(Hook::OnSuccess, Duration::from_secs(5))
        .delay(Hook::After, Duration::from_secs(5));
    let (pipeline, timings) = recorders(&[slow_hooks, slow_hooks], &log);

    let start = tokio::time::Instant::now();
    let result = pipeline
        .execute(ctx(), async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, TestError>(1)
        })
        .await;
    let total = start.elapsed();

    assert_eq!(result.unwrap(), 1);
    // Six hooks of five seconds each ran around a two-second task...
    assert_eq!(total, Duration::from_secs(32));
    // ...and every hook was told two seconds.
    let timings = timings.lock().unwrap().clone();
    assert_eq!(timings.len(), 4, "{timings:?}");
    for (hook, elapsed) in timings {
        assert_eq!(elapsed, Duration::from_secs(2), "{hook:?}");
    }
}

// ---- 5. Error precedence ----

#[tokio::test]
async fn inv5_task_error_is_primary_and_later_propagated_hook_errors_are_suppressed() {
    let log = new_log();
    let scripts = [
        Script::ok().propagate().step(Hook::After, Step::Fail),
        Script::ok().propagate().step(Hook::OnFailure, Step::Fail),
        Script::ok().step(Hook::After, Step::Fail), // swallowed: not part of the result
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Fail, &log))).await;

    let Observed::Err(error) = result else {
        panic!("expected an error, got {result:?}");
    };
    assert!(error.hook_error().is_none());
    assert_eq!(error.downcast_ref::<TestError>().unwrap().what, "task");
    assert_eq!(
        (error.kind(), error.code(), error.retryable()),
        (ErrorKind::Internal, Code::Internal, false)
    );
    let suppressed: Vec<_> = error.suppressed().iter().map(hook_id).collect();
    assert_eq!(suppressed, [(1, Hook::OnFailure), (0, Hook::After)]);
    assert_eq!(
        error.to_string(),
        "task failed [suppressed: policy `p1` failed in `on_failure`: p1.on_failure failed; \
         policy `p0` failed in `after`: p0.after failed]"
    );
}

#[tokio::test]
async fn inv5_after_a_successful_task_the_first_propagated_hook_error_is_primary() {
    let log = new_log();
    let scripts = [
        Script::ok().propagate().step(Hook::After, Step::Fail),
        Script::ok().propagate().step(Hook::OnSuccess, Step::Fail),
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Ok, &log))).await;

    let Observed::Err(error) = result else {
        panic!("expected an error, got {result:?}");
    };
    let primary = error.hook_error().expect("a hook error is primary");
    assert_eq!(hook_id(primary), (1, Hook::OnSuccess));
    assert_eq!(
        error.downcast_ref::<TestError>().unwrap().what,
        "p1.on_success"
    );
    assert_eq!(
        (
            error.kind(),
            error.code(),
            error.retryable(),
            error.retry_after_secs()
        ),
        (
            ErrorKind::Upstream,
            Code::UpstreamUnavailable,
            true,
            Some(7)
        )
    );
    let suppressed: Vec<_> = error.suppressed().iter().map(hook_id).collect();
    assert_eq!(suppressed, [(0, Hook::After)]);
    // Both completion hooks still ran; the error did not cut the sequence short.
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Task,
            OnSuccess(1),
            OnSuccess(0),
            After(1, Outcome::Success),
            After(0, Outcome::Success),
        ]
    );
}

#[tokio::test]
async fn inv5_swallowed_hook_errors_do_not_change_the_result() {
    let log = new_log();
    let scripts = [Script::ok()
        .step(Hook::OnSuccess, Step::Fail)
        .step(Hook::After, Step::Fail)];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Ok, &log))).await;

    assert!(matches!(result, Observed::Ok(7)), "{result:?}");
    assert_eq!(
        events(&log),
        [Before(0), Task, OnSuccess(0), After(0, Outcome::Success)]
    );
}

#[tokio::test]
async fn inv5_a_panic_in_a_swallowing_hook_is_fatal_and_resumed_after_every_after() {
    let log = new_log();
    let scripts = [
        Script::ok(),
        Script::ok().step(Hook::OnSuccess, Step::Panic).sync(), // panics while being called
        Script::ok(),
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Ok, &log))).await;

    match result {
        Observed::Panic(message) => assert_eq!(message, panic_text("p1.on_success")),
        other => panic!("the hook's panic must be resumed, got {other:?}"),
    }
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Before(2),
            Task,
            OnSuccess(2),
            OnSuccess(1),
            After(2, Outcome::Panicked),
            After(1, Outcome::Panicked),
            After(0, Outcome::Panicked),
        ]
    );
}

#[tokio::test]
async fn inv5_a_panic_in_before_stops_later_policies_and_still_runs_entered_afters() {
    let log = new_log();
    let scripts = [
        Script::ok(),
        Script::ok().step(Hook::Before, Step::Panic),
        Script::ok(),
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Ok, &log))).await;

    match result {
        Observed::Panic(message) => assert_eq!(message, panic_text("p1.before")),
        other => panic!("the hook's panic must be resumed, got {other:?}"),
    }
    assert_eq!(
        events(&log),
        [Before(0), Before(1), After(0, Outcome::Panicked)]
    );
}

#[tokio::test]
async fn inv5_panics_in_after_do_not_stop_later_afters_and_the_first_panic_wins() {
    let log = new_log();
    let scripts = [
        Script::ok().step(Hook::After, Step::Panic),
        Script::ok().step(Hook::After, Step::Panic),
        Script::ok().propagate().step(Hook::After, Step::Fail),
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let result = observe(pipeline.execute(ctx(), task(Step::Fail, &log))).await;

    match result {
        Observed::Panic(message) => assert_eq!(message, panic_text("p1.after")),
        other => panic!("a panic must beat every error, got {other:?}"),
    }
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Before(2),
            Task,
            on_failure(2),
            on_failure(1),
            on_failure(0),
            After(2, Outcome::Failure),
            After(1, Outcome::Failure),
            After(0, Outcome::Failure),
        ]
    );
}

// ---- 6. A propagated `before` prevents the task; policies not entered do not run ----

#[tokio::test]
async fn inv6_a_propagated_before_error_skips_the_task_and_later_policies() {
    let log = new_log();
    let scripts = [
        Script::ok(),
        Script::ok().propagate().step(Hook::Before, Step::Fail),
        Script::ok(),
    ];
    let (pipeline, _) = recorders(&scripts, &log);
    let polled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&polled);

    let result = observe(pipeline.execute(ctx(), async move {
        flag.store(true, Ordering::SeqCst);
        Ok::<_, TestError>(1)
    }))
    .await;

    let Observed::Err(error) = result else {
        panic!("expected the rejection, got {result:?}");
    };
    assert!(!polled.load(Ordering::SeqCst), "the task must not run");
    assert_eq!(hook_id(error.hook_error().unwrap()), (1, Hook::Before));
    assert_eq!(error.downcast_ref::<TestError>().unwrap().what, "p1.before");
    assert_eq!(error.code(), "UPSTREAM_UNAVAILABLE");
    assert!(error.suppressed().is_empty());
    assert_eq!(
        events(&log),
        [Before(0), Before(1), After(0, Outcome::Rejected)]
    );
}

// ---- 7. Cancellation still runs the entered AFTER hooks ----

#[tokio::test(start_paused = true)]
async fn inv7_a_dropped_execution_runs_the_entered_afters_and_drops_the_task() {
    let log = new_log();
    let scripts = [
        Script::ok(),
        Script::ok(),
        Script::ok().step(Hook::Before, Step::Fail), // not entered
    ];
    let (pipeline, timings) = recorders(&scripts, &log);
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(Arc::clone(&dropped));
    let task_log = Arc::clone(&log);

    let execution = pipeline.execute(ctx(), async move {
        let _guard = guard;
        task_log.lock().unwrap().push(Task);
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, TestError>(1)
    });
    let timed_out = tokio::time::timeout(Duration::from_secs(1), execution).await;

    assert!(timed_out.is_err(), "the outer timeout must fire");
    assert!(
        dropped.load(Ordering::SeqCst),
        "the task is dropped with the execution"
    );
    wait_until(&log, |e| e.len() >= 6).await;
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Before(2),
            Task,
            After(1, Outcome::Cancelled),
            After(0, Outcome::Cancelled),
        ]
    );
    let timings = timings.lock().unwrap().clone();
    assert_eq!(
        timings,
        [
            (Hook::After, Duration::from_secs(1)),
            (Hook::After, Duration::from_secs(1))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn inv7_a_drop_during_before_runs_the_afters_of_the_policies_entered_so_far() {
    let log = new_log();
    let scripts = [
        Script::ok(),
        Script::ok().delay(Hook::Before, Duration::from_secs(10)),
        Script::ok(),
    ];
    let (pipeline, timings) = recorders(&scripts, &log);

    let execution = pipeline.execute(ctx(), task(Step::Ok, &log));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), execution)
            .await
            .is_err()
    );

    wait_until(&log, |e| e.len() >= 3).await;
    tokio::time::sleep(Duration::from_secs(20)).await; // nothing else may show up
    assert_eq!(
        events(&log),
        [Before(0), Before(1), After(0, Outcome::Cancelled)]
    );
    assert_eq!(
        timings.lock().unwrap().clone(),
        [(Hook::After, Duration::ZERO)]
    );
}

#[tokio::test(start_paused = true)]
async fn inv7_an_after_interrupted_by_the_drop_is_not_restarted() {
    let log = new_log();
    let scripts = [
        Script::ok(),
        Script::ok().delay(Hook::After, Duration::from_secs(10)),
    ];
    let (pipeline, _) = recorders(&scripts, &log);

    let execution = pipeline.execute(ctx(), task(Step::Ok, &log));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), execution)
            .await
            .is_err()
    );

    wait_until(&log, |e| e.len() >= 7).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        events(&log),
        [
            Before(0),
            Before(1),
            Task,
            OnSuccess(1),
            OnSuccess(0),
            After(1, Outcome::Success),
            After(0, Outcome::Cancelled),
        ]
    );
}
