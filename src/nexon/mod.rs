//! The upstream (Nexon Open API): wire types and the resilient client.
//!
//! Contract: the rest of the gateway calls [`NexonClient`] only. Each of its calls is one logical call that
//! goes through, in order: a maintenance / refused-key [`hold`], the circuit [`breaker`], the shared upstream
//! rate limiter ([`rate_limit`]), one HTTP attempt with its timeout ([`transport`]), and retries within the
//! retry budget ([`retry_budget`]) — all inside an overall deadline ([`resilience`]). Failures are [`NexonError`] values that
//! say whether the upstream was reached, whether the breaker counts them and what the client should see;
//! operator alerts go to an optional webhook ([`alert`]).
//!
//! Guarantees: upstream trouble never becomes client latency beyond the deadline, never multiplies load
//! (retries ≤ 20% of calls, no calls while the breaker is open or a hold lasts), and one rate limit is
//! shared by every instance (1/N each when Redis is unreachable). See `docs/resilience.md`.

pub mod alert;
pub mod breaker;
pub mod client;
pub mod error;
pub mod hold;
pub mod rate_limit;
pub mod resilience;
pub mod retry_budget;
pub mod transport;
pub mod wire;

pub use breaker::{BreakerConfig, BreakerState, BreakerStatus};
pub use client::{ClientOptions, NexonClient};
pub use error::{HoldReason, MAX_BODY, NexonError};
pub use rate_limit::RateConfig;
pub use resilience::{ResilienceConfig, UpstreamStatus};
pub use transport::Endpoint;
