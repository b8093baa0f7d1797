//! The expectation engine: what it costs, in expectation, to reproduce a character's gear.
//!
//! Contract: pure domain code. No I/O except [`CubeTables::load`] (which reads one file and hands the bytes to
//! the pure parser, [`CubeTables::parse_bytes`]; [`CubeTables::parse`] takes any reader), no async, no imports from the infrastructure modules. Entry point:
//! [`compute()`]`(&ItemEquipment, Option<&CubeTables>, &StarforceSettings | &StarforceOptions) -> Expectation`, total
//! and deterministic: for every item of presets 1–3 it returns potential-cube, additional-cube, starforce and flame
//! blocks, each a result or `{"unavailable": "<reason>"}`, the item's `warnings`, item, preset and headline totals
//! (integer meso with Korean text), and a [`Rules`] object naming the rule set (chosen by the snapshot date) and the
//! table version.
//! Failure modes are confined to the edges: an unreadable or malformed table and invalid starforce options are
//! [`ExpectationError`]s; everything about one item is an `unavailable` reason on that item's block.
//!
//! Why this shape: the gateway caches the expectation under the table version, the options' key fragment and the
//! rule set's key fragment, so the math must be a function of (payload, table, options) only; and a table with a few bad groups or an item with an odd field must degrade
//! one block, not the whole answer. Formulas, constants and rules are in `docs/expectation.md`.
//!
//! | module | owns |
//! |---|---|
//! | [`model`] | the upstream payload as typed data (shared with the simulator) |
//! | [`types`] | newtypes built by `parse`: [`Grade`], [`Stars`], [`PartName`], [`CubeType`], [`MainStat`] |
//! | [`option_line`] | the option-line parser ([`OptionLine`]) |
//! | [`character`] | main stat / attack type inference |
//! | [`table`] | cube tables: parse, precompute per group, [`TableReport`] |
//! | [`pmf`] | clamped PMFs and their convolution |
//! | [`cube`] | targets, probabilities, cube prices |
//! | [`starforce`] | options as players have them, rates, costs, the absorbing chain, scroll starring, fixed stars |
//! | [`rules`] | the rule set by snapshot date, per-item warnings, the per-response rules object |
//! | [`flames`], [`boss_drops`] | flame score distribution; the boss-drop list as data |
//! | [`meso`] | Korean meso text |
//! | [`compute`](mod@compute) | the entry point and the output types |

pub mod block;
pub mod boss_drops;
pub mod character;
pub mod compute;
pub mod cube;
pub mod error;
pub mod flames;
pub mod meso;
pub mod model;
pub mod option_line;
pub mod pmf;
pub mod rules;
pub mod starforce;
pub mod table;
pub mod types;

pub use block::{Block, Unavailable};
pub use character::{Evidence, Profile};
pub use compute::{
    Expectation, Headline, ItemExpectation, PresetExpectation, Totals, compute, compute_json,
};
pub use cube::{Category, ClassifiedLine, CubeResult, Target};
pub use error::ExpectationError;
pub use flames::{FlameOdds, FlameResult};
pub use meso::meso_text;
pub use model::{Item, ItemEquipment, ItemOption, StrNum};
pub use option_line::{LineValue, OptionLine, Stat, Unit};
pub use rules::{RuleSet, Rules, Warning};
pub use starforce::{
    MvpGrade, Replacement, StarforceKind, StarforceOptions, StarforceResult, StarforceSettings,
    ToSettings,
};
pub use table::{CubeTables, GroupKey, OverOneGroup, TableReport};
pub use types::{AttackType, CubeType, Grade, MainStat, PartName, Stars};
