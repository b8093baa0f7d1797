//! The expectation engine (pure domain code: no I/O, no async).
//!
//! (engine to be written; the equipment model is in [`model`])
pub mod model;
