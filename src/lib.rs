//! maple-gateway: a resilient caching API gateway in front of the Nexon MapleStory Open API that answers
//! "what would it cost to reproduce this character's gear?" (the equipment expectation).
//!
//! The layout is the architecture (see `docs/architecture.md`); imports only point down the floors:
//!
//! | floor | modules |
//! |---|---|
//! | bottom | [`error`] (classification), [`codec`] (gzip), [`ids`] (identifiers, priority), [`expectation`] (pure domain), [`store`], [`redis`], [`config`], [`telemetry`] |
//! | 2 | [`cache`] (tiered cache, flight), [`nexon`] (upstream client), [`lock`], [`pipeline`] (execution policies) |
//! | 3 | [`characters`] (the read path), [`likes`] (the write path), [`sim`] (the Nexon simulator) |
//! | 4 | [`api`] (HTTP, the request gate), [`durability`] (like journal, backup files, start-up recovery) |
//! | 5 | [`shutdown`] (the shutdown sequence: drain, flush, backup) |
//! | top | [`app`] (`Application::build` → bound port → `run_until(shutdown)`), then `main.rs` |

pub mod api;
pub mod app;
pub mod cache;
pub mod characters;
pub mod codec;
pub mod config;
pub mod durability;
pub mod error;
pub mod expectation;
pub mod ids;
pub mod likes;
pub mod lock;
pub mod nexon;
pub mod pipeline;
pub mod redis;
pub mod shutdown;
pub mod sim;
pub mod store;
pub mod telemetry;
