//! The Nexon simulator: a stand-in for the MapleStory Open API with generated characters, fault injection
//! and call counters. Run standalone (`maple-gateway sim --listen ADDR [--seed N]`) or in-process (the
//! embedded default and the tests).
//!
//! Contract (details in `docs/simulator.md`):
//! - Endpoints `GET /maplestory/v1/id?character_name=`, `/maplestory/v1/character/basic?ocid=[&date=]`,
//!   `/maplestory/v1/character/item-equipment?ocid=[&date=]` answer like the upstream: the shared wire types
//!   ([`crate::nexon::wire`]) and equipment model ([`crate::expectation::model`]), one schema for both sides.
//!   Each needs the `x-nxopen-api-key` header (missing, empty or, when [`SimConfig::api_key`] is set,
//!   different → 400 `OPENAPI00005`). Any name of 1–12 letters/digits exists except names starting with
//!   `ghost` (400 `OPENAPI00004` on `/id`); an unknown or malformed ocid is 400 `OPENAPI00003`; a missing
//!   parameter or a malformed `date` is 400 `OPENAPI00004`.
//! - Determinism: the same seed and name give the same ocid and byte-identical payloads, across restarts
//!   ([`generate`], [`identity`]). Potential lines are drawn from the synthetic table [`table`].
//! - Faults (`/_sim/faults`, [`faults`]) and call counters (`/_sim/stats`) need no key. A call to a data
//!   endpoint is counted first, then delayed by `latency_ms`, then possibly failed by the faults, then
//!   checked for its key and parameters: counters include failed and faulted calls.
//!
//! Why in the crate: the gateway's tests, load tests and first-run experience must not depend on the real
//! upstream or a key, and sharing the wire types keeps the simulator honest about the schema.
//!
//! Failure modes: the data endpoints never panic on input; [`serve`] fails only on socket errors.

pub mod catalog;
pub mod faults;
pub mod generate;
mod http;
pub mod identity;
pub mod rng;
pub mod table;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use faults::{FaultPatch, FaultState, Faults};
pub use generate::{first_date, generate_basic, generate_equipment, parse_date};
pub use http::{SimHandle, pretty_json, serve, spawn};
pub use identity::{name_for_ocid, ocid_for};
pub use table::{SYNTHETIC_TABLE_CSV, synthetic_table_csv};

/// How a simulator instance behaves.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// Seeds every generated name, ocid and payload.
    pub seed: u64,
    /// The only accepted API key; `None` accepts any non-empty key.
    pub api_key: Option<String>,
}

/// Calls per endpoint since start or the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    pub id: u64,
    pub basic: u64,
    pub item_equipment: u64,
}

/// `GET /_sim/stats`: `{"calls":{"id":N,"basic":N,"item_equipment":N}}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    pub calls: CallCounts,
}

/// The three counted endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Id,
    Basic,
    ItemEquipment,
}

struct Shared {
    config: SimConfig,
    faults: Mutex<FaultState>,
    /// Draws for `error_rate`, seeded so a run's fault pattern is reproducible for a given call order.
    fault_rng: Mutex<rng::SplitMix64>,
    id: AtomicU64,
    basic: AtomicU64,
    item_equipment: AtomicU64,
}

/// A simulator instance: configuration, current faults and call counters. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("seed", &self.shared.config.seed)
            .field(
                "api_key",
                &self.shared.config.api_key.as_ref().map(|_| "<set>"),
            )
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Builds an instance; parses the embedded cube table now (once per process) so the first request
    /// does not pay for it.
    pub fn new(cfg: SimConfig) -> Self {
        table::table();
        let fault_rng = rng::stream(cfg.seed, &[b"faults"]);
        Simulator {
            shared: Arc::new(Shared {
                config: cfg,
                faults: Mutex::new(FaultState::default()),
                fault_rng: Mutex::new(fault_rng),
                id: AtomicU64::new(0),
                basic: AtomicU64::new(0),
                item_equipment: AtomicU64::new(0),
            }),
        }
    }

    /// The routes of the simulator (data endpoints and `/_sim/*`).
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    pub fn seed(&self) -> u64 {
        self.shared.config.seed
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Calls per endpoint since start or the last [`Simulator::reset_stats`].
    pub fn stats(&self) -> SimStats {
        let s = &self.shared;
        SimStats {
            calls: CallCounts {
                id: s.id.load(Ordering::Relaxed),
                basic: s.basic.load(Ordering::Relaxed),
                item_equipment: s.item_equipment.load(Ordering::Relaxed),
            },
        }
    }

    pub fn reset_stats(&self) {
        let s = &self.shared;
        s.id.store(0, Ordering::Relaxed);
        s.basic.store(0, Ordering::Relaxed);
        s.item_equipment.store(0, Ordering::Relaxed);
    }

    /// The current faults.
    pub fn faults(&self) -> Faults {
        self.lock_faults().view()
    }

    /// Merges a patch into the current faults (what `POST /_sim/faults` does).
    pub fn set_faults(&self, patch: &FaultPatch) -> Result<Faults, faults::FaultError> {
        let mut f = self.lock_faults();
        f.apply(patch)?;
        Ok(f.view())
    }

    /// Back to no faults (what `DELETE /_sim/faults` does).
    pub fn reset_faults(&self) -> Faults {
        let mut f = self.lock_faults();
        *f = FaultState::default();
        f.view()
    }

    pub(crate) fn fault_state(&self) -> FaultState {
        self.lock_faults().clone()
    }

    pub(crate) fn fault_draw(&self) -> f64 {
        self.shared
            .fault_rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unit()
    }

    pub(crate) fn count(&self, e: Endpoint) {
        let s = &self.shared;
        let c = match e {
            Endpoint::Id => &s.id,
            Endpoint::Basic => &s.basic,
            Endpoint::ItemEquipment => &s.item_equipment,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn lock_faults(&self) -> std::sync::MutexGuard<'_, FaultState> {
        // The state is plain data; a panic elsewhere cannot leave it half-written.
        self.shared.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}
