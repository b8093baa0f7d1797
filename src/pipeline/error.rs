//! The errors an execution can end with: [`TaskError`] (what callers get) and [`HookError`] (a
//! hook's failure, tagged with its policy and [`Hook`]), and what a hook may fail with
//! ([`PolicyError`]: any [`ClassifiedError`]). The policy module builds on these types; this file
//! imports nothing from it.
//!
//! Contract: a [`TaskError`] has exactly one *primary* error — the task's own error, or the
//! [`HookError`] that rejected or replaced the result — plus the *suppressed* hook errors that came
//! after it, kept in the order they happened so that no failure disappears. Its classification
//! (kind, retryable, code, retry-after) is the primary error's, captured when the primary error is
//! wrapped; for a hook error that is the classification of the policy's own error.
//!
//! Guarantees: [`TaskError::downcast_ref`] gives the original module error back (also when the
//! primary error is a hook error, in which case the policy's error is looked up), so the HTTP layer
//! maps the module's error enum, not a string. `Display` shows the primary error's whole cause chain
//! and then the suppressed list; for that reason `source()` returns `None` (a report that walks
//! `source()` would otherwise print every cause twice) — use [`TaskError::primary`] to walk the
//! chain. Wrapping a `TaskError` returned by a nested execution keeps it as it is (no double wrap).
//!
//! Failure modes: none; these are plain values.

use std::any::Any;
use std::error::Error;
use std::fmt;

use crate::error::{Classify, Code, ErrorKind};

/// An error that knows its classification; every module error enum is one.
pub trait ClassifiedError: std::error::Error + Classify + Send + Sync + 'static {}

impl<T: std::error::Error + Classify + Send + Sync + 'static> ClassifiedError for T {}

/// What a failing hook returns. `Box::new(MyModuleError::…)` converts into it.
pub type PolicyError = Box<dyn ClassifiedError>;

/// One of the four hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    Before,
    OnSuccess,
    OnFailure,
    After,
}

impl Hook {
    /// The bounded label value used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Before => "before",
            Hook::OnSuccess => "on_success",
            Hook::OnFailure => "on_failure",
            Hook::After => "after",
        }
    }
}

/// A hook of a policy returned an error.
#[derive(Debug)]
pub struct HookError {
    policy: &'static str,
    hook: Hook,
    source: PolicyError,
}

impl HookError {
    pub fn new(policy: &'static str, hook: Hook, source: PolicyError) -> Self {
        HookError {
            policy,
            hook,
            source,
        }
    }

    /// The failing policy's [`super::Policy::name`].
    pub fn policy(&self) -> &'static str {
        self.policy
    }

    /// The failing hook.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// The policy's own error.
    pub fn inner(&self) -> &dyn ClassifiedError {
        &*self.source
    }

    /// The policy's own error as its concrete type.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        let inner: &(dyn Error + 'static) = &*self.source;
        inner.downcast_ref::<E>()
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy `{}` failed in `{}`",
            self.policy,
            self.hook.as_str()
        )
    }
}

impl Error for HookError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

impl Classify for HookError {
    fn kind(&self) -> ErrorKind {
        self.source.kind()
    }

    fn retryable(&self) -> bool {
        self.source.retryable()
    }

    fn code(&self) -> Code {
        self.source.code()
    }

    fn retry_after_secs(&self) -> Option<u64> {
        self.source.retry_after_secs()
    }
}

/// The error of an execution: a primary error, its classification, and suppressed hook errors.
pub struct TaskError {
    kind: ErrorKind,
    retryable: bool,
    code: Code,
    retry_after: Option<u64>,
    primary: Box<dyn Error + Send + Sync>,
    suppressed: Vec<HookError>,
}

impl TaskError {
    /// Wraps `error` as the primary error, capturing its classification. A `TaskError` (from a
    /// nested execution) is returned unchanged.
    pub fn new<E>(error: E) -> Self
    where
        E: Error + Classify + Send + Sync + 'static,
    {
        let mut slot = Some(error);
        if let Some(nested) = (&mut slot as &mut dyn Any).downcast_mut::<Option<TaskError>>() {
            return nested.take().expect("the slot was filled just above");
        }
        let error = slot.expect("the slot is only emptied for a nested TaskError");
        TaskError {
            kind: error.kind(),
            retryable: error.retryable(),
            code: error.code(),
            retry_after: error.retry_after_secs(),
            primary: Box::new(error),
            suppressed: Vec::new(),
        }
    }

    /// The primary error: the task's error, or the [`HookError`] that rejected or replaced the result.
    pub fn primary(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.primary
    }

    /// Takes the primary error out, dropping the suppressed list.
    pub fn into_primary(self) -> Box<dyn Error + Send + Sync> {
        self.primary
    }

    /// Hook errors that happened after the primary error, in the order they happened.
    pub fn suppressed(&self) -> &[HookError] {
        &self.suppressed
    }

    /// The primary error as a hook error, when a hook (not the task) caused the failure.
    pub fn hook_error(&self) -> Option<&HookError> {
        self.primary.downcast_ref::<HookError>()
    }

    /// The primary error as the module error `E`: the task's error, or — when a hook caused the
    /// failure — the policy's own error (`HookError` itself is also reachable).
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.primary
            .downcast_ref::<E>()
            .or_else(|| self.hook_error()?.downcast_ref::<E>())
    }

    /// The primary error and its causes, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &(dyn Error + 'static)> {
        let first: &(dyn Error + 'static) = &*self.primary;
        std::iter::successors(Some(first), |e: &&(dyn Error + 'static)| (*e).source())
    }

    pub(super) fn extend_suppressed(&mut self, errors: impl IntoIterator<Item = HookError>) {
        self.suppressed.extend(errors);
    }
}

impl From<HookError> for TaskError {
    fn from(error: HookError) -> Self {
        TaskError::new(error)
    }
}

/// Writes `error` and its causes joined by `": "`.
pub(super) fn write_chain(f: &mut impl fmt::Write, error: &(dyn Error + 'static)) -> fmt::Result {
    write!(f, "{error}")?;
    let mut cause = error.source();
    while let Some(e) = cause {
        write!(f, ": {e}")?;
        cause = e.source();
    }
    Ok(())
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_chain(f, &*self.primary)?;
        if !self.suppressed.is_empty() {
            f.write_str(" [suppressed: ")?;
            for (i, e) in self.suppressed.iter().enumerate() {
                if i > 0 {
                    f.write_str("; ")?;
                }
                write_chain(f, e)?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("kind", &self.kind)
            .field("retryable", &self.retryable)
            .field("code", &self.code)
            .field("retry_after", &self.retry_after)
            .field("primary", &self.primary)
            .field("suppressed", &self.suppressed)
            .finish()
    }
}

/// The cause chain is part of `Display`; see the module documentation.
impl Error for TaskError {}

impl Classify for TaskError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn retryable(&self) -> bool {
        self.retryable
    }

    fn code(&self) -> Code {
        self.code
    }

    fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
    }
}
