//! Tests of the pipeline: one or more per invariant (`invariants`), the property test over random
//! pipelines (`property`), the standard patterns, error and context types (`patterns`), and the
//! standard policies against a real recorder and subscriber (`standard_policies`). Shared scripted
//! policies and tasks live in `support`.

mod invariants;
mod patterns;
mod property;
mod standard_policies;
mod support;
