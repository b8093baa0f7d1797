//! The per-execution context that every hook of every policy sees.
//!
//! Contract: a [`TaskContext`] names one unit of work by `component` and `operation` — two
//! non-empty, bounded-cardinality names (`[a-z][a-z0-9_.-]*`, at most 64 bytes) that policies use
//! as metric labels — plus an optional `key` (a character name, an ocid, …) that is for logs and
//! traces only and must never become a metric label, because its cardinality is unbounded.
//!
//! Guarantees: the names are `&'static str`, so they cannot be built from request data at run time
//! by accident; [`TaskContext::new`] checks their shape with a `debug_assert!` (a programming error,
//! caught by the test suite) and [`TaskContext::try_new`] checks it for callers that prefer an error.
//! The context also carries the mutable per-execution state policies need to cooperate: the task's
//! tracing span (set by the tracing policy, entered around the task by the pipeline) and typed
//! [`Extensions`] (where a policy keeps a value, e.g. a guard, from `before` until `after`).
//!
//! Failure modes: an invalid name panics in debug builds (`new`) or is returned as
//! [`InvalidTaskName`] (`try_new`); nothing else here can fail. Why: policies are shared between
//! concurrent executions (`&self`), so any state that lives from `before` to `after` must live in
//! the context of that one execution, not in the policy.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;

/// Longest accepted component or operation name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Names one execution for the pipeline's policies. See the module documentation.
pub struct TaskContext {
    component: &'static str,
    operation: &'static str,
    key: Option<String>,
    span: tracing::Span,
    extensions: Extensions,
}

/// A component or operation name that is empty or not of the form `[a-z][a-z0-9_.-]*` (≤ 64 bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid task {field} name {value:?}: expected 1..={MAX_NAME_LEN} bytes of [a-z][a-z0-9_.-]*"
)]
pub struct InvalidTaskName {
    /// `"component"` or `"operation"`.
    pub field: &'static str,
    /// The rejected name.
    pub value: &'static str,
}

/// Whether `name` is an acceptable component or operation name (also a valid metric label value
/// that is easy to grep for).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

impl TaskContext {
    /// A context for `component`/`operation`. Both must satisfy [`is_valid_name`]; a violation is a
    /// programming error and panics in debug builds. Use [`TaskContext::try_new`] to get an error.
    pub fn new(component: &'static str, operation: &'static str) -> Self {
        debug_assert!(
            is_valid_name(component),
            "invalid task component name {component:?}"
        );
        debug_assert!(
            is_valid_name(operation),
            "invalid task operation name {operation:?}"
        );
        Self::unchecked(component, operation)
    }

    /// Like [`TaskContext::new`], but reports an invalid name as an error in every build.
    pub fn try_new(
        component: &'static str,
        operation: &'static str,
    ) -> Result<Self, InvalidTaskName> {
        if !is_valid_name(component) {
            return Err(InvalidTaskName {
                field: "component",
                value: component,
            });
        }
        if !is_valid_name(operation) {
            return Err(InvalidTaskName {
                field: "operation",
                value: operation,
            });
        }
        Ok(Self::unchecked(component, operation))
    }

    fn unchecked(component: &'static str, operation: &'static str) -> Self {
        TaskContext {
            component,
            operation,
            key: None,
            span: tracing::Span::none(),
            extensions: Extensions::default(),
        }
    }

    /// A stand-in left behind when the real context is moved out of a dropped execution so that
    /// its AFTER hooks can still run elsewhere. Never handed to a hook.
    pub(super) fn placeholder() -> Self {
        Self::unchecked("pipeline", "detached")
    }

    /// Attaches the key of the work (e.g. a character name) for logs and traces. Never a metric label.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The component name (a metric label).
    pub fn component(&self) -> &'static str {
        self.component
    }

    /// The operation name (a metric label).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The key, for logs and traces only.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The span the task runs in; disabled (`Span::none()`) unless a policy set one.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Sets the span the pipeline enters while it polls the task. Intended for a tracing policy's
    /// `before` hook; policies registered later see it and may log into it.
    pub fn set_span(&mut self, span: tracing::Span) {
        self.span = span;
    }

    /// Typed per-execution state shared between the hooks of one execution.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable access to the per-execution state.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("component", &self.component)
            .field("operation", &self.operation)
            .field("key", &self.key)
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// A map from type to one value of that type; created on first insert, so unused maps cost nothing.
#[derive(Default)]
pub struct Extensions {
    map: Option<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// Stores `value`, returning the previous value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.map
            .get_or_insert_with(HashMap::new)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// The stored value of type `T`.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map
            .as_ref()?
            .get(&TypeId::of::<T>())?
            .downcast_ref::<T>()
    }

    /// Mutable access to the stored value of type `T`.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(&TypeId::of::<T>())?
            .downcast_mut::<T>()
    }

    /// Removes and returns the stored value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.map
            .as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// Number of stored values.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.len())
            .finish()
    }
}
