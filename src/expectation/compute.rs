//! The entry point: one parsed payload (+ tables + starforce options) → one [`Expectation`].
//!
//! Contract: [`compute`] is a pure, total function. It infers the character profile once, evaluates every item of
//! presets 1–3 (`item_equipment`, the list currently worn, only feeds the profile inference; `dragon_equipment` and
//! `mechanic_equipment` are not evaluated) (potential cube, additional cube, starforce, flames — each a result or an `unavailable` reason),
//! (an item repeated in several presets is evaluated once and its result copied), sums each item's meso
//! (available blocks only), each preset's totals, and copies the equipped preset's totals
//! (`preset_no`; 1 when the payload has none or an out-of-range one) into the headline. Meso amounts are integers
//! (each block rounded once, sums exact); every amount also has its Korean text. The table version the cube blocks
//! used is on the result and on every cube block; `null` when no table is loaded (cube blocks then say
//! `no_table`, everything else still works). Invalid starforce options do not fail the call: starforce blocks say
//! `invalid_options` (callers build [`StarforceSettings::from_params`] or validate first to answer `BAD_REQUEST`).
//! - The rule set comes from the payload's `date` ([`RuleSet::for_date`]); the answer carries a [`Rules`] object
//!   (rule set, table version, starforce constants, unpriced rule families, response-wide assumptions) and every
//!   item a `warnings` list ([`Warning`]: every incomplete table group a priced or `unreachable` cube block looked
//!   up, with its missing mass; fixed stars; rules assumed). Destroyed items and their replacement are a separate line (`replacement`), never folded into the
//!   attempts' meso; unpriced replacements make the totals' `replacement_meso` `null` ("not priced").
//! - An item with a value outside the game's maxima ([`Item::out_of_range`]: level, stars, option-line amounts,
//!   flame stats) is left out, never computed: every block `out_of_range`, one `out_of_range` warning, no meso,
//!   and it does not feed the profile inference. [`Expectation::out_of_range_items`] counts them for the
//!   caller's metrics. This is what keeps every table the engine builds small whatever the payload says.
//!
//! Why total: the gateway serves whatever the upstream returned, including the empty "before the character
//! existed" answer and items with odd fields; a partial answer with reasons beats an error.

use serde::Serialize;

use super::block::{Block, Unavailable};
use super::character::{Evidence, Profile, infer};
use super::cube::{self, CubeResult};
use super::error::ExpectationError;
use super::flames::{self, FlameMemo, FlameResult};
use super::meso::meso_text;
use super::model::{Item, ItemEquipment, OutOfRange};
use super::rules::{RuleSet, Rules, Warning};
use super::starforce::{self, StarforceKind, StarforceResult, StarforceSettings, ToSettings};
use super::table::CubeTables;
use super::types::{AttackType, CubeType, MainStat};

/// The whole answer for one character.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Expectation {
    /// Version (content hash) of the cube table used; `null` when none is loaded.
    pub table_version: Option<String>,
    /// The payload's `date` (the day the data describes), as sent.
    pub date: Option<String>,
    pub character_class: Option<String>,
    pub main_stat: Option<MainStat>,
    pub sub_stat: Option<MainStat>,
    pub attack_type: AttackType,
    /// How the profile was inferred.
    pub inference: Evidence,
    /// The starforce options priced (echo).
    pub starforce_options: StarforceSettings,
    /// The rules the figures assume.
    pub rules: Rules,
    /// The upstream's equipped preset, as sent.
    pub preset_no: Option<i64>,
    /// Presets 1, 2, 3 in order.
    pub presets: Vec<PresetExpectation>,
    /// The equipped preset's totals.
    pub headline: Headline,
    /// Items (counted once per preset they are in) left out for a value outside the game's maxima; also in
    /// their `warnings`. For the caller's metrics, not part of the answer.
    #[serde(skip)]
    pub out_of_range_items: u32,
}

/// One preset.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PresetExpectation {
    pub preset_no: u8,
    pub items: Vec<ItemExpectation>,
    pub totals: Totals,
}

/// One item.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ItemExpectation {
    /// `item_equipment_slot` (the table's slot name).
    pub slot: Option<String>,
    /// `item_equipment_part`.
    pub part: Option<String>,
    pub name: Option<String>,
    pub level: i64,
    pub potential: Block<CubeResult>,
    pub additional: Block<CubeResult>,
    pub starforce: Block<StarforceResult>,
    pub flames: Block<FlameResult>,
    /// Potential + additional + starforce meso of the available blocks (replacement items not included).
    pub meso: u64,
    pub meso_text: String,
    /// The assumptions and data gaps behind this item's figures.
    pub warnings: Vec<Warning>,
}

/// Sums over a preset. Counts are expected values (not rounded); meso are integers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    pub items: usize,
    pub meso: u64,
    pub meso_text: String,
    pub potential_meso: u64,
    pub additional_meso: u64,
    pub starforce_meso: u64,
    pub potential_cubes: f64,
    pub additional_cubes: f64,
    pub starforce_destroys: f64,
    pub starforce_scrolls: f64,
    /// Replacement meso of the destroyed items; `null` when any is not priced.
    pub replacement_meso: Option<u64>,
    /// Korean meso text, or `"not priced"`.
    pub replacement_meso_text: String,
    pub powerful_flames: f64,
    pub eternal_flames: f64,
    /// Blocks that could not be computed (their cost is not in the sums).
    pub unavailable_blocks: u32,
}

/// The equipped preset's number and totals.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Headline {
    pub preset_no: u8,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Computes the expectation; see the module contract. `opts` is a [`StarforceSettings`] or the first API's
/// [`super::StarforceOptions`] (its `discount` priced as the event sale).
pub fn compute(
    eq: &ItemEquipment,
    tables: Option<&CubeTables>,
    opts: &impl ToSettings,
) -> Expectation {
    let opts = &opts.to_settings();
    let rules = RuleSet::for_date(eq.date.as_deref());
    let (profile, evidence) = infer(eq);
    let options_valid = opts.validate().is_ok();
    let mut memo = FlameMemo::default();
    // Presets mostly hold the same items (about half of the real sample's preset items repeat an item of an
    // earlier preset): an item equal to one already evaluated gets a copy of that result. `evaluate_item`
    // depends on nothing but the item and the call's arguments, so the copy is what it would compute.
    let mut first_seen: Vec<(&Item, usize, usize)> = Vec::new();
    let mut presets: Vec<PresetExpectation> = Vec::with_capacity(3);
    for n in 1..=3u8 {
        let list = eq.preset(n).unwrap_or_default();
        let mut items: Vec<ItemExpectation> = Vec::with_capacity(list.len());
        for item in list {
            let earlier = first_seen
                .iter()
                .find(|(seen, _, _)| *seen == item)
                .map(|&(_, p, i)| (p, i));
            let e = match earlier {
                Some((p, i)) if p == presets.len() => items[i].clone(),
                Some((p, i)) => presets[p].items[i].clone(),
                None => {
                    first_seen.push((item, presets.len(), items.len()));
                    evaluate_item(
                        item,
                        tables,
                        &profile,
                        opts,
                        rules,
                        options_valid,
                        &mut memo,
                    )
                }
            };
            items.push(e);
        }
        let totals = totals(&items);
        presets.push(PresetExpectation {
            preset_no: n,
            items,
            totals,
        });
    }
    let out_of_range_items = presets
        .iter()
        .flat_map(|p| &p.items)
        .filter(|i| {
            i.warnings
                .iter()
                .any(|w| matches!(w, Warning::OutOfRange { .. }))
        })
        .count() as u32;
    let equipped = eq.preset_no.filter(|n| (1..=3).contains(n)).unwrap_or(1) as u8;
    let headline = Headline {
        preset_no: equipped,
        totals: presets[equipped as usize - 1].totals.clone(),
    };
    Expectation {
        table_version: tables.map(|t| t.version().to_owned()),
        date: eq.date.clone(),
        character_class: eq.character_class.clone(),
        main_stat: profile.main_stat,
        sub_stat: profile.sub_stat,
        attack_type: profile.attack_type,
        inference: evidence,
        starforce_options: *opts,
        rules: Rules::new(
            rules,
            tables.map(|t| t.version().to_owned()),
            tables.is_some_and(CubeTables::has_additional),
        ),
        preset_no: eq.preset_no,
        presets,
        headline,
        out_of_range_items,
    }
}

/// Parses a payload and computes its expectation.
pub fn compute_json(
    payload: &[u8],
    tables: Option<&CubeTables>,
    opts: &impl ToSettings,
) -> Result<Expectation, ExpectationError> {
    let eq = ItemEquipment::from_json_for_engine(payload)?;
    Ok(compute(&eq, tables, opts))
}

fn evaluate_item(
    item: &Item,
    tables: Option<&CubeTables>,
    profile: &Profile,
    opts: &StarforceSettings,
    rules: RuleSet,
    options_valid: bool,
    memo: &mut FlameMemo,
) -> ItemExpectation {
    if let Some(bad) = item.out_of_range() {
        return left_out(item, bad);
    }
    let (potential, potential_missing) =
        cube::evaluate_with_missing_mass(item, CubeType::Black, tables, profile);
    let (additional, additional_missing) =
        cube::evaluate_with_missing_mass(item, CubeType::Additional, tables, profile);
    let starforce = starforce::evaluate(item, opts, rules, options_valid);
    let flames = flames::evaluate(item, profile, memo);
    let missing = [
        ("potential", potential_missing),
        ("additional", additional_missing),
    ];
    let warnings = warnings(item, missing, &starforce, &flames, opts, rules);
    let meso = [&potential, &additional]
        .iter()
        .filter_map(|b| b.available().map(|r| r.expected_meso))
        .chain(starforce.available().and_then(|r| r.expected_meso))
        .fold(0u64, u64::saturating_add);
    ItemExpectation {
        slot: item.item_equipment_slot.clone(),
        part: item.item_equipment_part.clone(),
        name: item.item_name.clone(),
        level: item.base_level(),
        potential,
        additional,
        starforce,
        flames,
        meso,
        meso_text: meso_text(meso),
        warnings,
    }
}

/// An item with a value outside the game's maxima: every block `out_of_range`, nothing counted.
fn left_out(item: &Item, bad: OutOfRange) -> ItemExpectation {
    let detail = format!("{} = {}", bad.field, bad.value);
    ItemExpectation {
        slot: item.item_equipment_slot.clone(),
        part: item.item_equipment_part.clone(),
        name: item.item_name.clone(),
        level: item.base_level(),
        potential: Block::unavailable_because(Unavailable::OutOfRange, detail.clone()),
        additional: Block::unavailable_because(Unavailable::OutOfRange, detail.clone()),
        starforce: Block::unavailable_because(Unavailable::OutOfRange, detail.clone()),
        flames: Block::unavailable_because(Unavailable::OutOfRange, detail),
        meso: 0,
        meso_text: meso_text(0),
        warnings: vec![Warning::OutOfRange {
            field: bad.field,
            value: bad.value,
        }],
    }
}

/// The warnings of one item; see the module contract. `missing` is the missing mass of every group each cube
/// block looked up, whether the block is priced or `unreachable`.
fn warnings(
    item: &Item,
    missing: [(&'static str, [f64; 3]); 2],
    starforce: &Block<StarforceResult>,
    flames: &Block<FlameResult>,
    opts: &StarforceSettings,
    rules: RuleSet,
) -> Vec<Warning> {
    let mut w = Vec::new();
    for (block, masses) in missing {
        for (i, &missing_mass) in masses.iter().enumerate() {
            if missing_mass > 0.0 {
                w.push(Warning::IncompleteTableGroup {
                    block,
                    slot: i as u8 + 1,
                    missing_mass,
                });
            }
        }
    }
    if let Some(s) = starforce.available() {
        match s.kind {
            StarforceKind::Fixed => {
                w.push(Warning::FixedStars { stars: s.stars });
                if item
                    .item_name
                    .as_deref()
                    .is_some_and(|n| n.trim_start().starts_with("데스티니"))
                {
                    w.push(Warning::RuleAssumed {
                        rule: "destiny_weapons_fixed_stars",
                        detail: "Destiny weapons are taken to keep the Genesis weapon's fixed 22 stars",
                    });
                }
            }
            StarforceKind::Meso => {
                if opts.starcatch {
                    w.push(Warning::RuleAssumed {
                        rule: "star_catch_multiplier",
                        detail: "star catch priced as success × 1.05 (KMS); GMS guides give × 1.045",
                    });
                }
                if opts.sunday && starforce::System::of(rules).sunday.is_none() {
                    w.push(Warning::OptionNotInForce {
                        option: "sunday",
                        rule_set: rules,
                    });
                }
            }
            StarforceKind::Scroll => {}
        }
    }
    if let Some(f) = flames.available() {
        if f.level >= 250 {
            w.push(Warning::RuleAssumed {
                rule: "flame_single_stat_cap",
                detail: "level-250 items priced at 12 single stat per stage (as level 240), from the real samples",
            });
        }
        if f.boss_drop {
            w.push(Warning::RuleAssumed {
                rule: "boss_flames_four_lines",
                detail: "boss-drop items are taken to roll 4 flame lines always",
            });
        }
    }
    w
}

fn totals(items: &[ItemExpectation]) -> Totals {
    let mut t = Totals {
        items: items.len(),
        replacement_meso: Some(0),
        ..Totals::default()
    };
    for it in items {
        t.unavailable_blocks += [
            it.potential.reason(),
            it.additional.reason(),
            it.starforce.reason(),
            it.flames.reason(),
        ]
        .iter()
        .filter(|r| r.is_some())
        .count() as u32;
        if let Some(c) = it.potential.available() {
            t.potential_meso = t.potential_meso.saturating_add(c.expected_meso);
            t.potential_cubes += c.expected_cubes;
        }
        if let Some(c) = it.additional.available() {
            t.additional_meso = t.additional_meso.saturating_add(c.expected_meso);
            t.additional_cubes += c.expected_cubes;
        }
        if let Some(s) = it.starforce.available() {
            t.starforce_meso = t
                .starforce_meso
                .saturating_add(s.expected_meso.unwrap_or(0));
            t.starforce_destroys += s.expected_destroys.unwrap_or(0.0);
            t.starforce_scrolls += s.expected_scrolls.unwrap_or(0.0);
            if let Some(r) = &s.replacement {
                t.replacement_meso = t
                    .replacement_meso
                    .zip(r.expected_meso)
                    .map(|(a, b)| a.saturating_add(b));
            }
        }
        if let Some(f) = it.flames.available() {
            t.powerful_flames += f.powerful.available().map_or(0.0, |o| o.expected_flames);
            t.eternal_flames += f.eternal.available().map_or(0.0, |o| o.expected_flames);
        }
    }
    t.meso = t
        .potential_meso
        .saturating_add(t.additional_meso)
        .saturating_add(t.starforce_meso);
    t.meso_text = meso_text(t.meso);
    t.replacement_meso_text = t
        .replacement_meso
        .map_or_else(|| "not priced".to_owned(), meso_text);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectation::model::{ItemOption, StrNum};
    use crate::expectation::starforce::StarforceOptions;
    use crate::expectation::table::tests::reference;
    use proptest::prelude::*;

    const SAMPLE: &str = "../shared/data/nexon/item-equipment-evan.json";

    fn sample() -> ItemEquipment {
        ItemEquipment::from_json(&std::fs::read(SAMPLE).unwrap()).unwrap()
    }

    /// A plausible legendary hat with flames, for the hostile-value tests to spoil one field of.
    fn plain_hat() -> Item {
        Item {
            item_equipment_slot: Some("모자".into()),
            item_equipment_part: Some("모자".into()),
            item_name: Some("x".into()),
            potential_option_grade: Some("레전드리".into()),
            potential_option_1: Some("INT +9%".into()),
            potential_option_2: Some("INT +9%".into()),
            potential_option_3: Some("INT +6%".into()),
            additional_potential_option_grade: Some("레전드리".into()),
            additional_potential_option_1: Some("INT +7%".into()),
            additional_potential_option_2: Some("마력 +10".into()),
            additional_potential_option_3: Some("INT +4%".into()),
            starforce: Some("17".into()),
            item_base_option: Some(ItemOption {
                base_equipment_level: Some(200),
                ..Default::default()
            }),
            item_add_option: Some(ItemOption {
                int: Some(StrNum(60)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Computes one spoiled hat with the reference table; the item must be left out, not computed, and
    /// reported under `field`.
    fn left_out(field: &str, edit: impl FnOnce(&mut Item)) -> ItemExpectation {
        let (tables, _) = reference();
        let mut item = plain_hat();
        edit(&mut item);
        let eq = ItemEquipment {
            item_equipment_preset_1: vec![item.clone(), plain_hat()],
            item_equipment_preset_2: vec![item],
            preset_no: Some(1),
            ..Default::default()
        };
        let e = compute(&eq, Some(&tables), &StarforceSettings::default());
        assert_eq!(e.out_of_range_items, 2, "counted in every preset it is in");
        let it = e.presets[0].items[0].clone();
        for b in [
            it.potential.reason(),
            it.additional.reason(),
            it.starforce.reason(),
            it.flames.reason(),
        ] {
            assert_eq!(b, Some(Unavailable::OutOfRange), "{it:?}");
        }
        assert!(
            matches!(it.warnings.as_slice(), [Warning::OutOfRange { field: f, .. }] if *f == field),
            "{:?}",
            it.warnings
        );
        assert_eq!(it.meso, 0);
        assert!(e.presets[0].totals.unavailable_blocks >= 4);
        assert!(
            e.presets[0].items[1].potential.available().is_some(),
            "the plain item beside it is still computed"
        );
        it
    }

    #[test]
    fn the_plain_hat_is_computed() {
        let (tables, _) = reference();
        let eq = ItemEquipment {
            item_equipment_preset_1: vec![plain_hat()],
            preset_no: Some(1),
            ..Default::default()
        };
        let e = compute(&eq, Some(&tables), &StarforceSettings::default());
        let it = &e.presets[0].items[0];
        assert!(it.potential.available().is_some(), "{it:?}");
        assert!(it.starforce.available().is_some(), "{it:?}");
        assert!(it.flames.available().is_some(), "{it:?}");
    }

    #[test]
    fn a_potential_line_of_a_billion_percent_is_left_out() {
        left_out("potential_option_1", |i| {
            i.potential_option_1 = Some("INT +999999999%".into())
        });
    }

    #[test]
    fn an_additional_line_of_a_billion_percent_is_left_out() {
        left_out("additional_potential_option_3", |i| {
            i.additional_potential_option_3 = Some("INT +999999999%".into())
        });
    }

    #[test]
    fn an_item_level_of_ten_million_is_left_out() {
        left_out("base_equipment_level", |i| {
            i.item_base_option.as_mut().unwrap().base_equipment_level = Some(10_000_000)
        });
    }

    #[test]
    fn stars_above_the_game_cap_are_left_out() {
        left_out("starforce", |i| i.starforce = Some("4294967296".into()));
    }

    #[test]
    fn a_flame_stat_at_the_edge_of_i64_is_left_out() {
        left_out("item_add_option.int", |i| {
            i.item_add_option.as_mut().unwrap().int = Some(StrNum(i64::MAX))
        });
    }

    /// Items repeated across presets get a copy of the first result: each must equal the item evaluated on
    /// its own, and the sample must actually repeat items (else this proves nothing).
    #[test]
    fn an_item_repeated_across_presets_gets_the_result_it_gets_alone() {
        let (tables, _) = reference();
        let eq = sample();
        let (profile, _) = infer(&eq);
        let mut repeated = 0;
        for opts in [
            StarforceOptions::default(),
            StarforceOptions {
                starcatch: true,
                ..StarforceOptions::default()
            },
        ] {
            let e = compute(&eq, Some(&tables), &opts);
            let mut seen: Vec<&Item> = Vec::new();
            for (n, preset) in e.presets.iter().enumerate() {
                let list = eq.preset(n as u8 + 1).unwrap();
                assert_eq!(list.len(), preset.items.len());
                for (item, got) in list.iter().zip(&preset.items) {
                    if seen.contains(&item) {
                        repeated += 1;
                    } else {
                        seen.push(item);
                    }
                    let alone = evaluate_item(
                        item,
                        Some(&tables),
                        &profile,
                        &opts.into(),
                        RuleSet::Kms30Stars,
                        true,
                        &mut FlameMemo::default(),
                    );
                    assert_eq!(got, &alone, "preset {}: {:?}", n + 1, item.item_name);
                }
            }
        }
        assert!(repeated >= 60, "the sample repeats items: {repeated}");
    }

    #[test]
    fn the_evan_sample_yields_three_presets_with_its_item_counts() {
        let (tables, _) = reference();
        let e = compute(&sample(), Some(&tables), &StarforceOptions::default());
        assert_eq!(e.presets.len(), 3);
        let counts: Vec<usize> = e.presets.iter().map(|p| p.items.len()).collect();
        assert_eq!(counts, vec![23, 24, 23]);
        assert_eq!(
            e.presets.iter().map(|p| p.totals.items).collect::<Vec<_>>(),
            counts
        );
        assert_eq!(e.preset_no, Some(2));
        assert_eq!(e.headline.preset_no, 2);
        assert_eq!(e.headline.totals, e.presets[1].totals);
        assert_eq!(e.table_version.as_deref(), Some(tables.version()));
        assert_eq!(e.main_stat, Some(MainStat::Int));

        for p in &e.presets {
            // Item meso adds up to the preset meso; the preset meso to its parts.
            let item_sum: u64 = p.items.iter().map(|i| i.meso).sum();
            assert_eq!(item_sum, p.totals.meso);
            assert_eq!(
                p.totals.meso,
                p.totals.potential_meso + p.totals.additional_meso + p.totals.starforce_meso
            );
            for it in &p.items {
                // No additional rows in the reference table.
                assert!(matches!(
                    it.additional.reason(),
                    Some(
                        Unavailable::NoTableGroup
                            | Unavailable::NoPotential
                            | Unavailable::NoTarget
                    )
                ));
                if it.slot.as_deref() == Some("무기") {
                    assert_eq!(
                        it.flames.reason(),
                        Some(Unavailable::WeaponFlamesUnsupported)
                    );
                }
            }
        }
        // The preset-2 hat: 22 stars at level 250, boss-drop flames, a cooldown target.
        let hat = e.presets[1]
            .items
            .iter()
            .find(|i| i.slot.as_deref() == Some("모자"))
            .unwrap();
        let sf = hat.starforce.available().unwrap();
        assert_eq!(sf.stars, 22);
        assert_eq!(
            sf.expected_meso,
            Some(
                starforce::expected_chain(250, 0, 22, &StarforceSettings::default())
                    .meso
                    .round() as u64
            )
        );
        let fl = hat.flames.available().unwrap();
        assert!(fl.boss_drop);
        if let Some(c) = hat.potential.available() {
            assert_eq!(c.target.category, cube::Category::CooldownS);
            assert_eq!(c.target.threshold, 4);
        }
        // Every preset has some available starforce and some available cube result.
        for p in &e.presets {
            assert!(p.totals.starforce_meso > 0);
            assert!(p.totals.potential_cubes > 0.0);
        }
    }

    /// A level-200 legendary hat aiming at −2 s / −2 s: its slot-1 group lacks the cooldown line, so the answer
    /// must say how much mass is missing. The expected mass is summed here from the CSV rows directly.
    #[test]
    fn incomplete_groups_fixed_stars_and_old_snapshots_are_visible() {
        let (tables, _) = reference();
        let csv = std::fs::read_to_string("../shared/data/cube_probability.csv").unwrap();
        let group_sum = |slot: &str| -> f64 {
            csv.lines()
                .skip(1)
                .map(|l| l.split(',').collect::<Vec<_>>())
                .filter(|c| {
                    c[2] == slot
                        && c[3] == "레전드리"
                        && c[4] == "200"
                        && c[5] == "모자"
                        && c[6] == "BLACK"
                })
                .map(|c| c[1].parse::<f64>().unwrap())
                .sum()
        };
        let hat = Item {
            item_equipment_slot: Some("모자".into()),
            item_name: Some("x".into()),
            potential_option_grade: Some("레전드리".into()),
            potential_option_1: Some("스킬 재사용 대기시간 -2초".into()),
            potential_option_2: Some("스킬 재사용 대기시간 -2초".into()),
            potential_option_3: Some("INT +9%".into()),
            starforce: Some("17".into()),
            item_base_option: Some(crate::expectation::model::ItemOption {
                base_equipment_level: Some(200),
                ..Default::default()
            }),
            ..Default::default()
        };
        let genesis = Item {
            item_equipment_slot: Some("무기".into()),
            item_name: Some("제네시스 스태프".into()),
            starforce: Some("22".into()),
            item_base_option: Some(crate::expectation::model::ItemOption {
                base_equipment_level: Some(200),
                ..Default::default()
            }),
            ..Default::default()
        };
        let eq = ItemEquipment {
            item_equipment_preset_1: vec![hat, genesis],
            preset_no: Some(1),
            ..Default::default()
        };
        let e = compute(&eq, Some(&tables), &StarforceSettings::default());
        let items = &e.presets[0].items;
        let missing: Vec<(u8, f64)> = items[0]
            .warnings
            .iter()
            .filter_map(|w| match w {
                Warning::IncompleteTableGroup {
                    block: "potential",
                    slot,
                    missing_mass,
                } => Some((*slot, *missing_mass)),
                _ => None,
            })
            .collect();
        let slot1 = 1.0 - group_sum("1");
        assert!(slot1 > 0.1, "{slot1}");
        assert!(
            missing
                .iter()
                .any(|&(s, m)| s == 1 && (m - slot1).abs() < 1e-9),
            "{missing:?} vs {slot1}"
        );
        assert_eq!(items[1].warnings, vec![Warning::FixedStars { stars: 22 }]);
        assert_eq!(items[1].meso, 0);
        assert_eq!(e.rules.rule_set, RuleSet::Kms30Stars);
        // Priced replacements: the item's line is destroys × unit cost, and the totals add them up.
        let priced = StarforceSettings {
            replacement_cost: Some(2_000_000_000),
            ..StarforceSettings::default()
        };
        let e = compute(&eq, Some(&tables), &priced);
        let sf = e.presets[0].items[0].starforce.available().unwrap();
        let destroys = sf.expected_destroys.unwrap();
        assert!(destroys > 0.0);
        let want = (destroys * 2e9).round() as u64;
        assert_eq!(sf.replacement.as_ref().unwrap().expected_meso, Some(want));
        assert_eq!(e.headline.totals.replacement_meso, Some(want));
        // A snapshot from before the 30-star update is priced with the 25-star rules in force then, not today's.
        let old = ItemEquipment {
            date: Some("2024-06-01T00:00+09:00".into()),
            ..eq
        };
        let sunday = StarforceSettings {
            sunday: true,
            ..StarforceSettings::default()
        };
        let e = compute(&old, Some(&tables), &sunday);
        assert_eq!(e.rules.rule_set, RuleSet::Kms25Stars);
        let sf = e.presets[0].items[0].starforce.available().unwrap();
        let chain = starforce::KMS_25.expected_chain(200, 0, 17, &StarforceSettings::default());
        assert_eq!(sf.expected_meso, Some(chain.meso.round() as u64));
        assert_eq!(sf.max_stars, 25);
        assert_eq!(e.headline.totals.starforce_meso, chain.meso.round() as u64);
        // The 25-star system had no Sunday destruction relief: asked for, it is named, not priced.
        assert!(
            e.presets[0].items[0]
                .warnings
                .contains(&Warning::OptionNotInForce {
                    option: "sunday",
                    rule_set: RuleSet::Kms25Stars
                })
        );
        let now = compute(&eq_now(&old), Some(&tables), &sunday);
        assert!(
            !now.presets[0].items[0]
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::OptionNotInForce { .. }))
        );
    }

    /// The same payload dated after the 30-star update.
    fn eq_now(eq: &ItemEquipment) -> ItemEquipment {
        ItemEquipment {
            date: Some("2025-06-01T00:00+09:00".into()),
            ..eq.clone()
        }
    }

    #[test]
    fn without_a_table_cubes_are_unavailable_and_the_rest_works() {
        let e = compute(&sample(), None, &StarforceOptions::default());
        assert_eq!(e.table_version, None);
        for p in &e.presets {
            for it in &p.items {
                assert_eq!(it.potential.reason(), Some(Unavailable::NoTable));
                assert_eq!(it.additional.reason(), Some(Unavailable::NoTable));
            }
            assert_eq!(p.totals.potential_meso, 0);
            assert!(p.totals.starforce_meso > 0);
        }
    }

    #[test]
    fn options_change_starforce_and_invalid_options_are_reported() {
        let eq = sample();
        let plain = compute(&eq, None, &StarforceOptions::default());
        let cheap = compute(
            &eq,
            None,
            &StarforceOptions::new(true, true, false, 0.3).unwrap(),
        );
        assert!(cheap.headline.totals.starforce_meso < plain.headline.totals.starforce_meso);
        let bad = StarforceOptions {
            discount: 2.0,
            ..Default::default()
        };
        let e = compute(&eq, None, &bad);
        assert_eq!(e.headline.totals.starforce_meso, 0);
        // Every item is invalid_options except the fixed-star Genesis weapon, which is never starforced.
        assert!(e.presets[1].items.iter().all(|i| {
            i.starforce.reason() == Some(Unavailable::InvalidOptions)
                || i.starforce.available().map(|s| s.kind) == Some(StarforceKind::Fixed)
        }));
    }

    #[test]
    fn the_empty_before_existence_payload_computes_to_zero() {
        let eq = ItemEquipment::from_json(br#"{"date":"2023-01-01"}"#).unwrap();
        let e = compute(&eq, None, &StarforceOptions::default());
        assert_eq!(e.presets.len(), 3);
        assert!(e.presets.iter().all(|p| p.items.is_empty()));
        assert_eq!(e.headline.preset_no, 1);
        assert_eq!(e.headline.totals.meso_text, "0");
        assert_eq!(e.main_stat, None);
    }

    #[test]
    fn json_shape() {
        let (tables, _) = reference();
        let e = compute(&sample(), Some(&tables), &StarforceOptions::default());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["main_stat"], "INT");
        assert_eq!(v["attack_type"], "magic");
        assert_eq!(v["headline"]["preset_no"], 2);
        assert!(v["headline"]["meso"].is_u64());
        assert!(v["headline"]["meso_text"].is_string());
        let items = v["presets"][1]["items"].as_array().unwrap();
        let weapon = items.iter().find(|i| i["slot"] == "무기").unwrap();
        assert_eq!(weapon["flames"]["unavailable"], "weapon_flames_unsupported");
        assert_eq!(weapon["potential"]["target"]["category"], "boss%");
        assert_eq!(weapon["potential"]["lines"][0]["category"], "boss%");
        assert_eq!(weapon["potential"]["lines"][0]["amount"], 35);
        assert_eq!(weapon["potential"]["table_version"], tables.version());
        assert_eq!(weapon["additional"]["unavailable"], "no_table_group");
        // The Genesis staff is issued at 22★ and not starforced: no meso, a fixed_stars warning.
        assert_eq!(weapon["starforce"]["kind"], "fixed");
        assert!(weapon["starforce"]["expected_meso"].is_null());
        assert_eq!(weapon["warnings"][0]["warning"], "fixed_stars");
        assert_eq!(v["rules"]["rule_set"], "kms_30_stars");
        assert_eq!(v["rules"]["table_version"], tables.version());
        assert_eq!(v["headline"]["replacement_meso_text"], "not priced");
        let hat = items.iter().find(|i| i["slot"] == "모자").unwrap();
        assert!(hat["starforce"]["expected_meso"].is_u64());
        assert!(
            hat["starforce"]["replacement"]["expected_items"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        assert!(hat["starforce"]["replacement"]["expected_meso"].is_null());
    }

    #[test]
    fn compute_json_reports_malformed_payloads() {
        let err = compute_json(
            b"{\"item_equipment\": 3}",
            None,
            &StarforceOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ExpectationError::Payload(_)));
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            "\\PC{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "레전드리",
                "유니크",
                "22",
                "사용",
                "무기",
                "모자",
                "INT +12%",
                "스킬 재사용 대기시간 -2초",
                "&lt;x&gt;",
                "200",
                "-5",
                "31"
            ])
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "item_equipment_preset_1",
                            "item_equipment",
                            "preset_no",
                            "starforce",
                            "potential_option_grade",
                            "potential_option_1",
                            "potential_option_2",
                            "additional_potential_option_grade",
                            "additional_potential_option_1",
                            "item_base_option",
                            "base_equipment_level",
                            "item_add_option",
                            "int",
                            "luk",
                            "all_stat",
                            "magic_power",
                            "item_equipment_slot",
                            "item_name",
                            "starforce_scroll_flag",
                            "unknown",
                        ]),
                        inner
                    ),
                    0..6,
                )
                .prop_map(|kv| serde_json::Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn random_json_never_panics(v in arb_json()) {
            let bytes = serde_json::to_vec(&v).unwrap();
            if let Ok(e) = compute_json(&bytes, None, &StarforceOptions::default()) {
                prop_assert_eq!(e.presets.len(), 3);
                prop_assert!(serde_json::to_string(&e).is_ok());
            }
        }

        #[test]
        fn random_items_never_panic_and_stay_in_range(
            grade in prop::sample::select(vec!["레어", "에픽", "유니크", "레전드리", "?", ""]),
            l1 in "\\PC{0,20}", l2 in prop::sample::select(vec!["INT +9%", "올스탯 +6%", "마력 +12%", "보스 몬스터 데미지 +40%", "x"]),
            stars in "[0-9]{0,2}", level in -10i64..400, scroll in any::<bool>(),
            slot in prop::sample::select(vec!["모자", "무기", "반지1", "펜던트2", "엠블렘", "기계 심장", "?"]),
        ) {
            let (tables, _) = &*REF;
            let item = Item {
                item_equipment_slot: Some(slot.into()),
                potential_option_grade: Some(grade.into()),
                potential_option_1: Some(l1),
                potential_option_2: Some(l2.into()),
                potential_option_3: Some(l2.into()),
                starforce: Some(stars),
                starforce_scroll_flag: Some(if scroll { "사용" } else { "미사용" }.into()),
                item_base_option: Some(crate::expectation::model::ItemOption { base_equipment_level: Some(level), ..Default::default() }),
                ..Default::default()
            };
            let eq = ItemEquipment { item_equipment_preset_1: vec![item], preset_no: Some(1), ..Default::default() };
            let e = compute(&eq, Some(tables), &StarforceOptions::default());
            if let Some(c) = e.presets[0].items[0].potential.available() {
                prop_assert!(c.probability > 0.0 && c.probability <= 1.0);
                prop_assert!(c.expected_cubes >= 1.0);
            }
        }
    }

    static REF: std::sync::LazyLock<(CubeTables, crate::expectation::table::TableReport)> =
        std::sync::LazyLock::new(reference);
}
