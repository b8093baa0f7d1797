//! The game rules a computation assumes, chosen by the snapshot date and made visible in every answer.
//!
//! Contract:
//! - [`RuleSet::for_date`] picks the rule set from the payload's `date` (`YYYY-MM-DD…`; absent or unreadable → the
//!   current rules): snapshots dated before [`STARFORCE_30_FROM`] fall under [`RuleSet::Kms25Stars`] (the 25-star
//!   system: star drops, chance time, its own rates and costs), later ones under [`RuleSet::Kms30Stars`]; both are
//!   priced, each with its own [`super::starforce::System`]. The rule set's [`RuleSet::key_fragment`] must be part
//!   of every cache key of a result.
//! - [`Warning`]s are attached to the item they concern: an incomplete table group with its missing mass, fixed
//!   stars, a rule the engine assumes without a cited official source, or a requested option the item's rule set
//!   did not have (not priced).
//! - [`Rules`] is the per-response object naming the rule set, the table version, the starforce constants of that
//!   rule set, the rule families the engine does not price (tier-ups, additional-potential tables) as
//!   `unavailable` blocks with their reason, and the assumptions the figures rest on (response-wide ones and
//!   those of the rule set).
//!
//! Why: players spend real meso on these figures; every assumption the figure rests on has to be on the answer,
//! not only in the documentation. Sources for every rule are tabled in `docs/expectation.md`.

use serde::Serialize;

use super::block::{Block, Unavailable};
use super::starforce::{self, System};

/// First day (KST) of the 30-star starforce system. The KMS test-world notice of the revamp
/// (maplestory.nexon.com/testworld/news/all/88) and the calculators that followed it date it to March 2025 (the
/// test server opened about a week before the live update; KMS updates land on Thursdays, and 2025-03-20 is the
/// Thursday after); no live patch note was retrieved, so the day is assumed (see `docs/expectation.md`), and
/// every answer says so in [`Rules::assumptions`].
pub const STARFORCE_30_FROM: &str = "2025-03-20";

/// A set of game rules in force over a range of snapshot dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleSet {
    /// Before the 30-star update: 25 stars, star drops, chance time.
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

    /// A stable cache-key fragment of the rule set as the engine prices it (`r25v2` / `r30`). The 25-star
    /// fragment carries a version: bodies cached under the first one (`r25`) left that rule set's starforce
    /// unpriced, and must not be served for the priced answer.
    pub fn key_fragment(self) -> &'static str {
        match self {
            RuleSet::Kms25Stars => "r25v2",
            RuleSet::Kms30Stars => "r30",
        }
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
    /// A requested starforce option the item's rule set did not have; the figure is priced without it.
    OptionNotInForce {
        option: &'static str,
        rule_set: RuleSet,
    },
}

/// The starforce constants of a rule set, echoed with every answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StarforceRules {
    /// The most stars an item can have (at level 138 and above).
    pub max_stars: u8,
    pub star_catch_multiplier: f64,
    /// `null` when the rule set has no Sunday destruction relief.
    pub sunday_destroy_factor: Option<f64>,
    pub sunday_max_star: Option<u8>,
    pub prevention_stars: [u8; 2],
    pub prevention_surcharge_of_base: f64,
    pub low_star_discount_below: u8,
    pub pc_room_discount: f64,
    pub destroyed_item_returns_at: u8,
    /// The stars at which a failure drops a star (empty: failures keep the star).
    pub drop_stars: Vec<u8>,
    /// Drops in a row after which the next attempt succeeds surely; `null` without chance time.
    pub chance_time_after_drops: Option<u8>,
    /// An attempt's price is rounded to a multiple of this many meso.
    pub cost_rounding: u32,
    pub scroll_failure_destroys: bool,
}

impl StarforceRules {
    pub fn of(rule_set: RuleSet) -> StarforceRules {
        let system = System::of(rule_set);
        StarforceRules {
            max_stars: system.top_stars,
            star_catch_multiplier: starforce::STAR_CATCH_MULTIPLIER,
            sunday_destroy_factor: system.sunday.as_ref().map(|(f, _)| *f),
            sunday_max_star: system.sunday.as_ref().map(|(_, stars)| *stars.end()),
            prevention_stars: [
                *system.prevention_stars.start(),
                *system.prevention_stars.end(),
            ],
            prevention_surcharge_of_base: system.prevention_surcharge,
            low_star_discount_below: starforce::LOW_STAR_DISCOUNT_BELOW,
            pc_room_discount: starforce::PC_ROOM_DISCOUNT,
            destroyed_item_returns_at: starforce::DESTROY_RETURN,
            drop_stars: (0..system.top_stars)
                .filter(|&s| system.drops_at(s))
                .collect(),
            chance_time_after_drops: system.chance_time.then_some(starforce::CHANCE_TIME_AFTER),
            cost_rounding: system.cost_rounding as u32,
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
        "the live date of the 30-star system (2025-03-20) is assumed; snapshots before it are priced with the \
         25-star rules",
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

/// The further assumptions of answers under the 25-star rules.
pub const ASSUMPTIONS_25: &[(&str, &str)] = &[
    (
        "starforce_25_sources",
        "the 25-star rates, star drops, chance time and costs are those of public calculators' code; no official \
         page for them was retrieved",
    ),
    (
        "starforce_25_one_system",
        "every snapshot before the 30-star update is priced with the 25-star system as last in force (the \
         calculators' code shows no change to it from 2023-11 to the update; the upstream's data starts 2023-12-21)",
    ),
];

impl Rules {
    pub fn new(rule_set: RuleSet, table_version: Option<String>, has_additional: bool) -> Rules {
        Rules {
            rule_set,
            current_rules_from: STARFORCE_30_FROM,
            table_version,
            starforce: StarforceRules::of(rule_set),
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
                .chain(match rule_set {
                    RuleSet::Kms25Stars => ASSUMPTIONS_25,
                    RuleSet::Kms30Stars => &[],
                })
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
        assert_eq!(v["starforce"]["max_stars"], 30);
        assert_eq!(v["starforce"]["sunday_destroy_factor"], 0.7);
        assert_eq!(
            v["starforce"]["prevention_stars"],
            serde_json::json!([15, 17])
        );
        assert_eq!(v["starforce"]["drop_stars"], serde_json::json!([]));
        assert_eq!(
            v["starforce"]["chance_time_after_drops"],
            serde_json::Value::Null
        );
        assert_eq!(v["starforce"]["cost_rounding"], 10);
        // The 25-star rules: their own constants and their own assumptions on top of the response-wide ones.
        let old = serde_json::to_value(Rules::new(RuleSet::Kms25Stars, None, true)).unwrap();
        let sf = &old["starforce"];
        assert_eq!(sf["max_stars"], 25);
        assert_eq!(sf["sunday_destroy_factor"], serde_json::Value::Null);
        assert_eq!(sf["sunday_max_star"], serde_json::Value::Null);
        assert_eq!(sf["prevention_stars"], serde_json::json!([15, 16]));
        assert_eq!(sf["prevention_surcharge_of_base"], 1.0);
        assert_eq!(
            sf["drop_stars"],
            serde_json::json!([16, 17, 18, 19, 21, 22, 23, 24])
        );
        assert_eq!(sf["chance_time_after_drops"], 2);
        assert_eq!(sf["cost_rounding"], 100);
        let rules: Vec<&str> = old["assumptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["rule"].as_str().unwrap())
            .collect();
        for (rule, _) in ASSUMPTIONS.iter().chain(ASSUMPTIONS_25) {
            assert!(rules.contains(rule), "{rule}: {rules:?}");
        }
        assert_eq!(
            v["assumptions"].as_array().unwrap().len(),
            ASSUMPTIONS.len()
        );
        assert_eq!(
            serde_json::to_string(&Warning::OptionNotInForce {
                option: "sunday",
                rule_set: RuleSet::Kms25Stars
            })
            .unwrap(),
            r#"{"warning":"option_not_in_force","option":"sunday","rule_set":"kms_25_stars"}"#
        );
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
