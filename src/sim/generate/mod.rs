//! Generated characters: `basic` and `item-equipment` payloads as pure functions of `(seed, ocid)`.
//!
//! Contract:
//! - [`generate_equipment`] and [`generate_basic`] are deterministic: the same `(seed, ocid, date)` gives an
//!   equal value (and, serialised, identical bytes) on every run, build and machine; they never panic and
//!   accept any `ocid` string (the HTTP layer decides which ocids exist). Everything about a character —
//!   class, level, creation date, presets, every item — is drawn from SplitMix64 streams keyed by the seed
//!   and the ocid ([`super::rng`]), never from `rand` or the clock.
//! - The payload has the upstream's shape (the shared model [`ItemEquipment`], serialised like the Evan
//!   sample): `preset_no` 1..=3, three presets of 20–24 items over the real slot names, `item_equipment` =
//!   the equipped preset, every item with all six option objects (string-typed numbers), grades
//!   레어/에픽/유니크/레전드리, star force (some items scroll-starred: `starforce_scroll_flag` = `사용`,
//!   at most 12 stars), flames in `item_add_option` (boss items always 4 flame lines), `title` and
//!   `medal_shape` objects, and `dragon_equipment` / `mechanic_equipment` for 에반 / 메카닉.
//! - Potential and additional potential lines are drawn from the synthetic cube table ([`super::table`]),
//!   line `k` from group `(grade, item level, item_equipment_slot, k)`; nothing else produces option lines.
//! - A `date` before [`first_date`] (2023-12-21) or before the character's creation date yields the
//!   upstream's "did not exist yet" answer: every field empty except `date`. Any other date gives the same
//!   gear (only `date` differs): the simulated world does not change over time.
//!
//! Why: the gateway, its tests and its load tests need many realistic characters without storing any;
//! determinism makes cache and Monte Carlo tests reproducible. Numbers are plausible, not the game's exact
//! formulas: only the potential lines carry probabilistic meaning (they follow the table exactly).
//!
//! Rooms, each a set of pure functions over the catalog ([`super::catalog`]) and a random stream:
//! - `basic`: the character behind an ocid and its `basic` payload;
//! - `equipment`: the `item-equipment` payload — presets, companion equipment, title and medal shape;
//! - `item`: one item rolled from a catalog template (the order of its draws is fixed);
//! - `potential`: potential grades and the option lines drawn from the synthetic table;
//! - `upgrades`: what star force, scroll stars and scroll upgrades add to an item;
//! - `flames`: the flame lines of `item_add_option`;
//! - `options`: [`crate::sim::catalog::Stats`] spelled as the upstream's option objects.

mod basic;
mod equipment;
mod flames;
mod item;
mod options;
mod potential;
mod upgrades;

use chrono::NaiveDate;

pub use basic::{Character, character, generate_basic};
pub use equipment::generate_equipment;

/// The first date the upstream has data for (2023-12-21).
pub fn first_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 12, 21).expect("valid date")
}

/// Parses a `date` query value (`YYYY-MM-DD`, exactly).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The upstream's spelling of a requested date in a response.
fn wire_date(d: NaiveDate) -> String {
    format!("{}T00:00+09:00", d.format("%Y-%m-%d"))
}
