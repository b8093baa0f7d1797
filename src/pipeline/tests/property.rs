//! Property test: random pipelines (0–6 policies; every hook succeeds, fails or panics, inside its
//! future or while being called; each policy swallows or propagates) around a random task (succeeds,
//! fails or panics), run through `execute`. The recorded event log and the result are
//! checked against a reference model of the rules in the module documentation, and the invariants
//! are also checked directly on the log so that a failure names the broken rule.

use proptest::prelude::*;

use crate::pipeline::{Hook, HookErrorMode, Outcome};

use super::support::*;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![5 => Just(Step::Ok), 2 => Just(Step::Fail), 1 => Just(Step::Panic)]
}

fn script() -> impl Strategy<Value = Script> {
    (
        prop_oneof![Just(HookErrorMode::Swallow), Just(HookErrorMode::Propagate)],
        [step(), step(), step(), step()],
        any::<bool>(),
    )
        .prop_map(|(mode, steps, sync)| Script {
            mode,
            steps,
            delays: [std::time::Duration::ZERO; 4],
            sync,
        })
}

/// What the rules say must happen.
#[derive(Debug)]
struct Expected {
    events: Vec<Event>,
    result: ExpectedResult,
}

/// The identity of an error: the task's, or a hook's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Id {
    Task,
    Hook(usize, Hook),
}

#[derive(Debug, PartialEq, Eq)]
enum ExpectedResult {
    Ok,
    Err { primary: Id, suppressed: Vec<Id> },
    Panic(String),
}

fn model(scripts: &[Script], task: Step) -> Expected {
    let step = |i: usize, hook: Hook| scripts[i].steps[hook_slot(hook)];
    let mut events = Vec::new();
    let mut entered = Vec::new();
    let mut panic: Option<String> = None;
    let mut rejected: Option<Id> = None;
    let mut propagated = Vec::new();

    for (i, script) in scripts.iter().enumerate() {
        events.push(Event::Before(i));
        match step(i, Hook::Before) {
            Step::Ok => entered.push(i),
            Step::Fail if script.mode == HookErrorMode::Swallow => {}
            Step::Fail => {
                rejected = Some(Id::Hook(i, Hook::Before));
                break;
            }
            Step::Panic => {
                panic = Some(panic_text(&hook_what(i, Hook::Before)));
                break;
            }
        }
    }

    let mut task_ok = None;
    if panic.is_none() && rejected.is_none() {
        events.push(Event::Task);
        match task {
            Step::Ok => task_ok = Some(true),
            Step::Fail => task_ok = Some(false),
            Step::Panic => panic = Some(panic_text("task")),
        }
    }

    if let Some(ok) = task_ok {
        let hook = if ok { Hook::OnSuccess } else { Hook::OnFailure };
        for &i in entered.iter().rev() {
            events.push(if ok {
                Event::OnSuccess(i)
            } else {
                Event::OnFailure {
                    policy: i,
                    saw_task_error: true,
                }
            });
            match step(i, hook) {
                Step::Ok => {}
                Step::Fail => {
                    if scripts[i].mode == HookErrorMode::Propagate {
                        propagated.push(Id::Hook(i, hook));
                    }
                }
                Step::Panic => {
                    panic = Some(panic_text(&hook_what(i, hook)));
                    break;
                }
            }
        }
    }

    let outcome = match (&panic, &rejected, task_ok) {
        (Some(_), _, _) => Outcome::Panicked,
        (None, Some(_), _) => Outcome::Rejected,
        (None, None, Some(true)) => Outcome::Success,
        (None, None, _) => Outcome::Failure,
    };
    for &i in entered.iter().rev() {
        events.push(Event::After(i, outcome));
        match step(i, Hook::After) {
            Step::Ok => {}
            Step::Fail => {
                if scripts[i].mode == HookErrorMode::Propagate {
                    propagated.push(Id::Hook(i, Hook::After));
                }
            }
            Step::Panic => {
                if panic.is_none() {
                    panic = Some(panic_text(&hook_what(i, Hook::After)));
                }
            }
        }
    }

    let result = if let Some(message) = panic {
        ExpectedResult::Panic(message)
    } else if let Some(primary) = rejected.or((task_ok == Some(false)).then_some(Id::Task)) {
        ExpectedResult::Err {
            primary,
            suppressed: propagated,
        }
    } else if propagated.is_empty() {
        ExpectedResult::Ok
    } else {
        ExpectedResult::Err {
            primary: propagated[0],
            suppressed: propagated[1..].to_vec(),
        }
    };
    Expected { events, result }
}

fn hook_slot(hook: Hook) -> usize {
    match hook {
        Hook::Before => 0,
        Hook::OnSuccess => 1,
        Hook::OnFailure => 2,
        Hook::After => 3,
    }
}

fn observed_result(observed: Observed<u32>) -> ExpectedResult {
    match observed {
        Observed::Ok(7) => ExpectedResult::Ok,
        Observed::Ok(other) => panic!("unexpected value {other}"),
        Observed::Panic(message) => ExpectedResult::Panic(message),
        Observed::Err(error) => {
            let primary = match error.hook_error() {
                Some(hook_error) => {
                    let (i, hook) = hook_id(hook_error);
                    // The policy's own error must be reachable through the task error.
                    assert_eq!(
                        error.downcast_ref::<TestError>().map(|e| e.what.clone()),
                        Some(hook_what(i, hook))
                    );
                    Id::Hook(i, hook)
                }
                None => {
                    assert_eq!(error.downcast_ref::<TestError>().unwrap().what, "task");
                    Id::Task
                }
            };
            let suppressed = error
                .suppressed()
                .iter()
                .map(|e| {
                    let (i, hook) = hook_id(e);
                    Id::Hook(i, hook)
                })
                .collect();
            ExpectedResult::Err {
                primary,
                suppressed,
            }
        }
    }
}

/// The invariants, checked on the log alone.
fn check_log(scripts: &[Script], events: &[Event]) -> Result<(), TestCaseError> {
    let befores: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::Before(i) => Some(*i),
            _ => None,
        })
        .collect();
    // 1. BEFORE in registration order, starting at the first policy, without gaps.
    prop_assert_eq!(&befores, &(0..befores.len()).collect::<Vec<_>>());
    let entered: Vec<usize> = befores
        .iter()
        .copied()
        .filter(|&i| scripts[i].steps[0] == Step::Ok)
        .collect();
    let afters: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::After(i, _) => Some(*i),
            _ => None,
        })
        .collect();
    // 2 + 3. Exactly the entered policies get AFTER, in reverse order.
    let mut lifo = entered.clone();
    lifo.reverse();
    prop_assert_eq!(&afters, &lifo);
    for event in events {
        match event {
            Event::OnSuccess(i) => {
                prop_assert!(entered.contains(i), "on_success for {} not entered", i);
            }
            Event::OnFailure {
                policy,
                saw_task_error,
            } => {
                prop_assert!(
                    entered.contains(policy),
                    "on_failure for {} not entered",
                    policy
                );
                prop_assert!(*saw_task_error, "on_failure must see the task's error");
            }
            _ => {}
        }
    }
    // 6. The task runs only when no `before` propagated or panicked.
    let stopped = befores.iter().any(|&i| {
        let s = scripts[i].steps[0];
        s == Step::Panic || (s == Step::Fail && scripts[i].mode == HookErrorMode::Propagate)
    });
    prop_assert_eq!(events.contains(&Event::Task), !stopped);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_pipelines_follow_the_rules(
        scripts in proptest::collection::vec(script(), 0..=6),
        task_step in step(),
    ) {
        let log = new_log();
        let (pipeline, _) = recorders(&scripts, &log);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();

        let observed = runtime.block_on(observe(pipeline.execute(ctx(), task(task_step, &log))));

        let events = events(&log);
        check_log(&scripts, &events)?;
        let expected = model(&scripts, task_step);
        prop_assert_eq!(&events, &expected.events);
        prop_assert_eq!(observed_result(observed), expected.result);
    }
}

/// The model itself must be able to disagree: a hand-written case where precedence matters.
#[test]
fn model_puts_the_task_error_first_and_hook_errors_after_it() {
    let scripts = [
        Script::ok().propagate().step(Hook::After, Step::Fail),
        Script::ok().propagate().step(Hook::OnFailure, Step::Fail),
    ];
    let expected = model(&scripts, Step::Fail);
    assert_eq!(
        expected.result,
        ExpectedResult::Err {
            primary: Id::Task,
            suppressed: vec![Id::Hook(1, Hook::OnFailure), Id::Hook(0, Hook::After)],
        }
    );
}
