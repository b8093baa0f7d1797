//! Test support: scripted policies that record every hook call into a shared event log, scripted
//! tasks, and helpers to observe an execution's result including a resumed panic.
//!
//! Contract: a [`Recorder`] at index `i` is named `p{i}`; each of its hooks records an [`Event`],
//! then (after an optional delay, or a yield) succeeds, fails with a [`TestError`] whose `what` is
//! `p{i}.{hook}`, or panics with the message `injected panic: p{i}.{hook}` — either inside the
//! returned future or, for `sync` scripts, while the hook is being called. Injected panics are kept
//! out of the test output by a filtering panic hook; every other panic is still printed.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use futures::FutureExt;

use crate::error::{Classify, Code, ErrorKind};
use crate::pipeline::{
    Hook, HookErrorMode, HookFuture, Outcome, Pipeline, Policy, PolicyError, TaskContext,
    TaskError, done, fail,
};

pub const NAMES: [&str; 8] = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"];

/// The error of scripted tasks (`what == "task"`, code `INTERNAL`, internal) and hooks
/// (`what == "p{i}.{hook}"`, code `UPSTREAM_UNAVAILABLE`, upstream, retryable).
#[derive(Debug, thiserror::Error)]
#[error("{what} failed")]
pub struct TestError {
    pub what: String,
}

impl Classify for TestError {
    fn kind(&self) -> ErrorKind {
        if self.what == "task" {
            ErrorKind::Internal
        } else {
            ErrorKind::Upstream
        }
    }

    fn retryable(&self) -> bool {
        self.what != "task"
    }

    fn code(&self) -> Code {
        if self.what == "task" {
            Code::Internal
        } else {
            Code::UpstreamUnavailable
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        (self.what != "task").then_some(7)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Ok,
    Fail,
    Panic,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Before(usize),
    Task,
    OnSuccess(usize),
    /// `saw_task_error`: the error handed to the hook was the task's own error.
    OnFailure {
        policy: usize,
        saw_task_error: bool,
    },
    After(usize, Outcome),
}

fn slot(hook: Hook) -> usize {
    match hook {
        Hook::Before => 0,
        Hook::OnSuccess => 1,
        Hook::OnFailure => 2,
        Hook::After => 3,
    }
}

/// What each hook of one recorder does.
#[derive(Clone, Copy, Debug)]
pub struct Script {
    pub mode: HookErrorMode,
    pub steps: [Step; 4],
    pub delays: [Duration; 4],
    /// Perform the step while the hook is being called instead of inside its future.
    pub sync: bool,
}

impl Script {
    pub fn ok() -> Self {
        Script {
            mode: HookErrorMode::Swallow,
            steps: [Step::Ok; 4],
            delays: [Duration::ZERO; 4],
            sync: false,
        }
    }

    pub fn mode(mut self, mode: HookErrorMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn propagate(self) -> Self {
        self.mode(HookErrorMode::Propagate)
    }

    pub fn step(mut self, hook: Hook, step: Step) -> Self {
        self.steps[slot(hook)] = step;
        self
    }

    pub fn delay(mut self, hook: Hook, delay: Duration) -> Self {
        self.delays[slot(hook)] = delay;
        self
    }

    pub fn sync(mut self) -> Self {
        self.sync = true;
        self
    }
}

pub type Log = Arc<Mutex<Vec<Event>>>;

/// `(hook, elapsed)` as seen by completion and after hooks, in call order.
pub type Timings = Arc<Mutex<Vec<(Hook, Duration)>>>;

pub fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

pub fn events(log: &Log) -> Vec<Event> {
    log.lock().unwrap().clone()
}

/// A scripted policy.
pub struct Recorder {
    pub index: usize,
    pub script: Script,
    pub log: Log,
    /// `elapsed` as seen by the completion and after hooks.
    pub timings: Timings,
}

pub fn hook_what(index: usize, hook: Hook) -> String {
    format!("{}.{}", NAMES[index], hook.as_str())
}

pub fn panic_text(what: &str) -> String {
    format!("injected panic: {what}")
}

impl Recorder {
    fn hook<'a>(&'a self, hook: Hook, event: Event) -> HookFuture<'a> {
        let step = self.script.steps[slot(hook)];
        let delay = self.script.delays[slot(hook)];
        let what = hook_what(self.index, hook);
        let log = Arc::clone(&self.log);
        if self.script.sync {
            log.lock().unwrap().push(event);
            return match step {
                Step::Ok => done(),
                Step::Fail => fail(TestError { what }),
                Step::Panic => std::panic::panic_any(panic_text(&what)),
            };
        }
        Box::pin(async move {
            log.lock().unwrap().push(event);
            if delay.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(delay).await;
            }
            match step {
                Step::Ok => Ok(()),
                Step::Fail => Err(Box::new(TestError { what }) as PolicyError),
                Step::Panic => std::panic::panic_any(panic_text(&what)),
            }
        })
    }

    fn timing(&self, hook: Hook, elapsed: Duration) {
        self.timings.lock().unwrap().push((hook, elapsed));
    }
}

impl Policy for Recorder {
    fn name(&self) -> &'static str {
        NAMES[self.index]
    }

    fn on_hook_error(&self) -> HookErrorMode {
        self.script.mode
    }

    fn before<'a>(&'a self, _ctx: &'a mut TaskContext) -> HookFuture<'a> {
        self.hook(Hook::Before, Event::Before(self.index))
    }

    fn on_success<'a>(&'a self, _ctx: &'a mut TaskContext, elapsed: Duration) -> HookFuture<'a> {
        self.timing(Hook::OnSuccess, elapsed);
        self.hook(Hook::OnSuccess, Event::OnSuccess(self.index))
    }

    fn on_failure<'a>(
        &'a self,
        _ctx: &'a mut TaskContext,
        error: &'a TaskError,
        elapsed: Duration,
    ) -> HookFuture<'a> {
        self.timing(Hook::OnFailure, elapsed);
        let saw_task_error = error.hook_error().is_none()
            && error
                .downcast_ref::<TestError>()
                .is_some_and(|e| e.what == "task");
        self.hook(
            Hook::OnFailure,
            Event::OnFailure {
                policy: self.index,
                saw_task_error,
            },
        )
    }

    fn after<'a>(
        &'a self,
        _ctx: &'a mut TaskContext,
        outcome: Outcome,
        elapsed: Duration,
    ) -> HookFuture<'a> {
        self.timing(Hook::After, elapsed);
        self.hook(Hook::After, Event::After(self.index, outcome))
    }
}

/// A pipeline of recorders, one per script, all logging into `log`.
pub fn recorders(scripts: &[Script], log: &Log) -> (Pipeline, Timings) {
    let timings = Arc::new(Mutex::new(Vec::new()));
    let mut builder = Pipeline::builder();
    for (index, script) in scripts.iter().enumerate() {
        builder = builder.policy(Recorder {
            index,
            script: *script,
            log: Arc::clone(log),
            timings: Arc::clone(&timings),
        });
    }
    (builder.build(), timings)
}

/// A task that records [`Event::Task`], yields, then does `step` (value `7` on success).
pub fn task(
    step: Step,
    log: &Log,
) -> impl Future<Output = Result<u32, TestError>> + Send + 'static {
    let log = Arc::clone(log);
    async move {
        log.lock().unwrap().push(Event::Task);
        tokio::task::yield_now().await;
        match step {
            Step::Ok => Ok(7),
            Step::Fail => Err(TestError {
                what: "task".into(),
            }),
            Step::Panic => std::panic::panic_any(panic_text("task")),
        }
    }
}

pub fn ctx() -> TaskContext {
    TaskContext::new("characters", "expectation").with_key("Alice")
}

/// How an execution ended, panics included.
#[derive(Debug)]
pub enum Observed<T> {
    Ok(T),
    Err(TaskError),
    Panic(String),
}

pub async fn observe<T>(execution: impl Future<Output = Result<T, TaskError>>) -> Observed<T> {
    quiet_injected_panics();
    match AssertUnwindSafe(execution).catch_unwind().await {
        Ok(Ok(v)) => Observed::Ok(v),
        Ok(Err(e)) => Observed::Err(e),
        Err(payload) => Observed::Panic(
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "<non-string payload>".into()),
        ),
    }
}

/// `(policy index, hook)` of a hook error produced by a recorder.
pub fn hook_id(error: &crate::pipeline::HookError) -> (usize, Hook) {
    let index = NAMES
        .iter()
        .position(|n| *n == error.policy())
        .expect("recorder policy name");
    (index, error.hook())
}

/// Hides the output of panics injected by these tests; other panics print as usual.
pub fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if text.is_some_and(|t| t.starts_with("injected panic")) {
                return;
            }
            previous(info);
        }));
    });
}

/// Waits (yielding to the runtime, advancing paused time) until `done` holds for the log.
pub async fn wait_until(log: &Log, done: impl Fn(&[Event]) -> bool) {
    for _ in 0..1000 {
        if done(&log.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition not reached; events: {:?}", events(log));
}

/// Sets a flag when dropped: shows whether a task future was dropped.
pub struct DropFlag(pub Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
