//! A result block that is either a value or a machine-readable reason why there is none.
//!
//! Contract: a [`Block`] serialises as the value itself or as `{"unavailable": "<reason>"}` (plus an optional
//! human `detail`). Every reason the engine can give is a variant of [`Unavailable`]; its snake_case name is the
//! stable wire string, documented in `docs/expectation.md`. Nothing in the engine panics or fails a whole
//! character because one item lacks data: it yields `Unavailable` for that one block.
//!
//! Why: clients need to tell "costs nothing" from "could not be computed", and operators need to count why.

use serde::Serialize;

/// Why a block has no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// No cube table is loaded.
    NoTable,
    /// The table has no group for the item's (cube type, grade, level band, slot name, line slot).
    NoTableGroup,
    /// A group the item needs sums to more than 1 + 1e-4 (reported at load time).
    TableError,
    /// The item's level is below the smallest level band the table has for it.
    BelowMinLevel,
    /// The item has no potential (or no additional potential): no grade or no lines.
    NoPotential,
    /// The potential grade is not one of 레어/에픽/유니크/레전드리.
    UnknownGrade,
    /// None of the item's lines falls in a target category; there is nothing to aim for.
    NoTarget,
    /// The target has probability 0 under the table (or the flame score exceeds the maximum roll).
    Unreachable,
    /// The `starforce` field is not an integer in 0..=30.
    InvalidStars,
    /// The item has more stars than its level (or scroll starring) allows.
    StarsAboveMax,
    /// The starforce options were invalid (the caller should have validated them).
    InvalidOptions,
    /// Weapon flames are not modelled in this version (ADR 0002).
    WeaponFlamesUnsupported,
    /// The item's slot cannot carry flames.
    NotFlammable,
    /// The item's flames are worth nothing for this character (score 0).
    NoFlameScore,
    /// The item carries flames but its slot is not one the flame model knows.
    FlamesUnattributed,
    /// The character's main stat could not be inferred, so flames cannot be scored.
    NoMainStat,
    /// No official source for the rule could be cited, so the engine does not price it.
    NoCitedSource,
    /// A value of the item lies outside the game's maxima (the detail names the field); the item is left out
    /// of the computation.
    OutOfRange,
}

/// A result or the reason there is none.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Block<T> {
    Available(T),
    Unavailable {
        unavailable: Unavailable,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// The schema of a `Block<()>` (a rule family that is either in force, `null`, or not priced): `null` or the
/// unavailable object (the derive cannot describe `()`).
pub fn unit_block_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    use utoipa::{PartialSchema, ToSchema};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(
            ObjectBuilder::new()
                .property(
                    "unavailable",
                    utoipa::openapi::Ref::from_schema_name(Unavailable::name()),
                )
                .required("unavailable")
                .property("detail", String::schema()),
        )
        .into()
}

impl<T> Block<T> {
    pub fn unavailable(reason: Unavailable) -> Self {
        Block::Unavailable {
            unavailable: reason,
            detail: None,
        }
    }

    pub fn unavailable_because(reason: Unavailable, detail: impl Into<String>) -> Self {
        Block::Unavailable {
            unavailable: reason,
            detail: Some(detail.into()),
        }
    }

    pub fn available(&self) -> Option<&T> {
        match self {
            Block::Available(t) => Some(t),
            Block::Unavailable { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<Unavailable> {
        match self {
            Block::Available(_) => None,
            Block::Unavailable { unavailable, .. } => Some(*unavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape() {
        let b: Block<u32> = Block::unavailable(Unavailable::NoTable);
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"unavailable":"no_table"}"#
        );
        let b: Block<u32> = Block::unavailable_because(Unavailable::TableError, "x");
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"unavailable":"table_error","detail":"x"}"#
        );
        assert_eq!(serde_json::to_string(&Block::Available(3)).unwrap(), "3");
        assert_eq!(
            serde_json::to_string(&Unavailable::WeaponFlamesUnsupported).unwrap(),
            r#""weapon_flames_unsupported""#
        );
    }
}
