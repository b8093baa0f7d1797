//! The game rules a computation assumes, chosen by the snapshot date and made visible in every answer.
//!
//! Contract:
//! - [`RuleSet::for_date`] picks the rule set from the payload's `date` (`YYYY-MM-DD…`; absent or unreadable → the
//!   current rules): snapshots dated before [`STARFORCE_30_FROM`] fall under [`RuleSet::Kms25Stars`], whose
//!   starforce the engine does not model (those blocks say `rule_set_not_modelled`); later ones under
//!   [`RuleSet::Kms30Stars`]. The rule set's [`RuleSet::key_fragment`] must be part of every cache key of a result.
//! - [`Warning`]s are attached to the item they concern: an incomplete table group with its missing mass, fixed
//!   stars, or a rule the engine assumes without a cited official source.
//! - [`Rules`] is the per-response object naming the rule set, the table version, the starforce constants in
//!   force, and the rule families the engine does not price (tier-ups, additional-potential tables) as
//!   `unavailable` blocks with their reason.
//!
//! Why: players spend real meso on these figures; every assumption the figure rests on has to be on the answer,
//! not only in the documentation. Sources for every rule are tabled in `docs/expectation.md`.

use serde::Serialize;

use super::block::{Block, Unavailable};
use super::starforce;

/// First day (KST) of the 30-star starforce system. The KMS test-world notice of the revamp
/// (maplestory.nexon.com/testworld/news/all/88) dates it to March 2025; the live date used here is assumed (see
/// `docs/expectation.md`), and every answer says so in [`Rules::assumptions`].
pub const STARFORCE_30_FROM: &str = "2025-03-20";

/// A set of game rules in force over a range of snapshot dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleSet {
    /// Before the 30-star update: 25 stars, star drops, chance time; starforce not modelled.
    #[serde(rename = "kms_25_stars")]
    Kms25Stars,
    /// The 30-star system (current).
    #[serde(rename = "kms_30_stars")]
    Kms30Stars,
}

impl RuleSet {
    /// The rule set of a snapshot dated `date` (`YYYY-MM-DD`, optionally followed by a time); `None` or an
    /// unreadable date → the current rules.
    pub fn for_date(date: Option<&str>) -> RuleSet {
        match date.map(str::trim).and_then(|d| d.get(..10)) {
            Some(day)
                if chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok()
                    && day < STARFORCE_30_FROM =>
            {
                RuleSet::Kms25Stars
            }
            _ => RuleSet::Kms30Stars,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RuleSet::Kms25Stars => "kms_25_stars",
            RuleSet::Kms30Stars => "kms_30_stars",
        }
    }

    /// A stable cache-key fragment (`r25` / `r30`).
    pub fn key_fragment(self) -> &'static str {
        match self {
            RuleSet::Kms25Stars => "r25",
            RuleSet::Kms30Stars => "r30",
        }
    }

    /// Whether the engine prices starforce under this rule set.
    pub fn starforce_modelled(self) -> bool {
        self == RuleSet::Kms30Stars
    }
}

/// One assumption or data gap behind an item's figures.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum Warning {
    /// A cube table group used for this item sums below 1; its missing mass was priced as "some other line".
    IncompleteTableGroup {
        /// `potential` or `additional`.
        block: &'static str,
        /// The line slot (1..=3).
        slot: u8,
        /// `1 − Σ rates` of the group.
        missing_mass: f64,
    },
    /// The item was issued with these stars and is not starforced; no starforce cost is counted.
    FixedStars { stars: u8 },
    /// A value of the item lies outside the game's maxima: every block is `out_of_range` and nothing about
    /// the item is counted.
    OutOfRange { field: &'static str, value: i64 },
    /// A rule the figure rests on that no cited official source confirms.
    RuleAssumed {
        rule: &'static str,
        detail: &'static str,
    },
}

/// The starforce constants in force, echoed with every answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StarforceRules {
    pub star_catch_multiplier: f64,
    pub sunday_destroy_factor: f64,
    pub sunday_max_star: u8,
    pub prevention_stars: [u8; 2],
    pub prevention_surcharge_of_base: f64,
    pub low_star_discount_below: u8,
    pub pc_room_discount: f64,
    pub destroyed_item_returns_at: u8,
    pub scroll_failure_destroys: bool,
}

impl StarforceRules {
    pub fn current() -> StarforceRules {
        StarforceRules {
            star_catch_multiplier: starforce::STAR_CATCH_MULTIPLIER,
            sunday_destroy_factor: starforce::SUNDAY_DESTROY_FACTOR,
            sunday_max_star: *starforce::SUNDAY_STARS.end(),
            prevention_stars: [
                *starforce::PREVENTION_STARS.start(),
                *starforce::PREVENTION_STARS.end(),
            ],
            prevention_surcharge_of_base: starforce::PREVENTION_SURCHARGE,
            low_star_discount_below: starforce::LOW_STAR_DISCOUNT_BELOW,
            pc_room_discount: starforce::PC_ROOM_DISCOUNT,
            destroyed_item_returns_at: starforce::DESTROY_RETURN,
            scroll_failure_destroys: starforce::SCROLL_FAILURE_DESTROYS,
        }
    }
}

/// The per-response rules object.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rules {
    pub rule_set: RuleSet,
    /// First snapshot date of the current rule set.
    pub current_rules_from: &'static str,
    /// Version (content hash) of the cube table; `null` when none is loaded.
    pub table_version: Option<String>,
    pub starforce: StarforceRules,
    /// Cube tier-ups are not priced: no cited official source for their rates.
    #[schema(schema_with = super::block::unit_block_schema)]
    pub tier_up: Block<()>,
    /// Additional-potential cubes are priced only from rows the loaded table has.
    #[schema(schema_with = super::block::unit_block_schema)]
    pub additional_potential: Block<()>,
    /// Rules in force that no cited official source confirms.
    pub assumptions: Vec<Warning>,
}

/// The response-wide assumptions (each also named in `docs/expectation.md`).
pub const ASSUMPTIONS: &[(&str, &str)] = &[
    (
        "starforce_30_from",
        "the live date of the 30-star system is assumed; snapshots before it are not priced",
    ),
    (
        "destiny_weapons_fixed_stars",
        "Destiny weapons are taken to keep the Genesis weapon's fixed 22 stars",
    ),
    (
        "boss_flames_four_lines",
        "boss-drop items are taken to roll 4 flame lines always",
    ),
];

impl Rules {
    pub fn new(rule_set: RuleSet, table_version: Option<String>, has_additional: bool) -> Rules {
        Rules {
            rule_set,
            current_rules_from: STARFORCE_30_FROM,
            table_version,
            starforce: StarforceRules::current(),
            tier_up: Block::unavailable_because(
                Unavailable::NoCitedSource,
                "no official tier-up rate table was found to cite; tier-ups are not priced",
            ),
            additional_potential: if has_additional {
                Block::Available(())
            } else {
                Block::unavailable_because(
                    Unavailable::NoCitedSource,
                    "the loaded table has no additional-potential rows and no official table was found to cite",
                )
            },
            assumptions: ASSUMPTIONS
                .iter()
                .map(|&(rule, detail)| Warning::RuleAssumed { rule, detail })
                .collect(),
        }
    }

    /// The cache-key fragment of everything in this object that can change a result: rule set and table version.
    pub fn key_fragment(&self) -> String {
        format!(
            "{}:{}",
            self.rule_set.key_fragment(),
            self.table_version.as_deref().unwrap_or("none")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_sets_by_date() {
        assert_eq!(RuleSet::for_date(None), RuleSet::Kms30Stars);
        assert_eq!(RuleSet::for_date(Some("")), RuleSet::Kms30Stars);
        assert_eq!(RuleSet::for_date(Some("garbage-date")), RuleSet::Kms30Stars);
        assert_eq!(
            RuleSet::for_date(Some("2023-12-21T00:00+09:00")),
            RuleSet::Kms25Stars
        );
        assert_eq!(RuleSet::for_date(Some("2025-03-19")), RuleSet::Kms25Stars);
        assert_eq!(
            RuleSet::for_date(Some(STARFORCE_30_FROM)),
            RuleSet::Kms30Stars
        );
        assert_eq!(
            RuleSet::for_date(Some("2026-01-02T00:00+09:00")),
            RuleSet::Kms30Stars
        );
        assert_ne!(
            RuleSet::Kms25Stars.key_fragment(),
            RuleSet::Kms30Stars.key_fragment()
        );
    }

    #[test]
    fn the_rules_object_names_everything() {
        let r = Rules::new(RuleSet::Kms30Stars, Some("abc".into()), false);
        assert_eq!(r.key_fragment(), "r30:abc");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["rule_set"], "kms_30_stars");
        assert_eq!(v["table_version"], "abc");
        assert_eq!(v["tier_up"]["unavailable"], "no_cited_source");
        assert_eq!(v["additional_potential"]["unavailable"], "no_cited_source");
        assert_eq!(v["starforce"]["star_catch_multiplier"], 1.05);
        assert_eq!(v["assumptions"][0]["warning"], "rule_assumed");
        let w = Warning::IncompleteTableGroup {
            block: "potential",
            slot: 1,
            missing_mass: 0.25,
        };
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"warning":"incomplete_table_group","block":"potential","slot":1,"missing_mass":0.25}"#
        );
    }
}
