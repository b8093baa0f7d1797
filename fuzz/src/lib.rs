//! The expectation engine compiled on its own, for fuzzing: the very source files of the gateway's
//! `expectation` module and the error vocabulary it implements (`src/error.rs`), without the gateway's I/O
//! stack (TLS, Redis, SQL, the HTTP server). The engine is pure and imports nothing else from the crate, so
//! this is the same code; the instrumented build takes minutes instead of most of an hour.
#[path = "../../src/error.rs"]
pub mod error;
#[path = "../../src/expectation/mod.rs"]
pub mod expectation;
