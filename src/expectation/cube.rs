//! Cubes: the target an item's lines define, the probability of reaching it, and its expected cost.
//!
//! Contract:
//! - Each of the item's three lines is classified into a [`Category`] for this character (main stat % with all
//!   stat % counting toward it, attack % or magic % by attack type, boss, ignore defence, crit damage, cooldown
//!   seconds, item drop, meso) or none. The target is the category holding most lines, ties broken in the order
//!   att%, boss%, ied%, crit_dmg%, cooldown_s, stat%, drop%, meso%; the threshold is the sum of the item's amounts
//!   in it. No line in any category → `no_target`.
//! - `p = P(X₁ + X₂ + X₃ ≥ T)` over the three independent line slots of the item's table groups, by clamped
//!   convolution ([`super::pmf`]); expected cubes `1/p`; `p = 0` → `unreachable`.
//! - Expected meso = expected cubes × the price of one cube for the cube type, grade and price band (the largest
//!   of 0/160/200/250 ≤ the item level), rounded to the nearest meso only at the end.
//! - A group whose rates sum below 1 is used with its missing mass as "some other line" and the mass is reported
//!   per slot ([`CubeResult::missing_mass`]; for an `unreachable` block too, by [`evaluate_with_missing_mass`]),
//!   never hidden: a group lacking the target's line makes the target look far rarer than it is, or unreachable.
//!
//! Why: a reroll reproduces "this item's lines" only in the sense the player cares about — the one stat the item
//! was rolled for — and a threshold over a sum is what makes `INT 12/9/9` and `INT 9/12/9` the same goal.

use serde::Serialize;

use super::block::{Block, Unavailable};
use super::character::Profile;
use super::meso::meso_text;
use super::model::Item;
use super::option_line::{LineKind, OptionLine};
use super::pmf::ClampedPmf;
use super::table::{CubeTables, GroupSum};
use super::types::{AttackType, CubeType, Grade, PartName};

/// A cube target category. Declared in tie-break order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub enum Category {
    #[serde(rename = "att%")]
    AttPct,
    #[serde(rename = "boss%")]
    BossPct,
    #[serde(rename = "ied%")]
    IedPct,
    #[serde(rename = "crit_dmg%")]
    CritDmgPct,
    #[serde(rename = "cooldown_s")]
    CooldownS,
    #[serde(rename = "stat%")]
    StatPct,
    #[serde(rename = "drop%")]
    DropPct,
    #[serde(rename = "meso%")]
    MesoPct,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::AttPct,
        Category::BossPct,
        Category::IedPct,
        Category::CritDmgPct,
        Category::CooldownS,
        Category::StatPct,
        Category::DropPct,
        Category::MesoPct,
    ];

    /// The category a line of this kind counts toward for this character, if any.
    pub fn of(kind: LineKind, profile: &Profile) -> Option<Category> {
        match kind {
            LineKind::StatPct(s) if Some(s) == profile.main_stat => Some(Category::StatPct),
            LineKind::StatPct(_) => None,
            LineKind::AllStatPct => Some(Category::StatPct),
            LineKind::AttackPct if profile.attack_type == AttackType::Attack => {
                Some(Category::AttPct)
            }
            LineKind::MagicPct if profile.attack_type == AttackType::Magic => {
                Some(Category::AttPct)
            }
            LineKind::AttackPct | LineKind::MagicPct => None,
            LineKind::BossPct => Some(Category::BossPct),
            LineKind::IedPct => Some(Category::IedPct),
            LineKind::CritDmgPct => Some(Category::CritDmgPct),
            LineKind::CooldownS => Some(Category::CooldownS),
            LineKind::DropPct => Some(Category::DropPct),
            LineKind::MesoPct => Some(Category::MesoPct),
            LineKind::Other => None,
        }
    }
}

/// What a reroll must reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Target {
    pub category: Category,
    /// Sum of the item's amounts in the category (percent points, or seconds for `cooldown_s`).
    pub threshold: u32,
}

/// One of the item's lines as the target rule saw it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClassifiedLine {
    /// The line as received.
    pub text: String,
    /// The category it counts toward, `null` for none.
    pub category: Option<Category>,
    /// Its amount in that category (0 when none).
    pub amount: u32,
}

impl ClassifiedLine {
    fn new(line: &OptionLine, profile: &Profile) -> ClassifiedLine {
        let (kind, amount) = line.kind_and_amount();
        let category = Category::of(kind, profile);
        ClassifiedLine {
            text: line.raw.clone(),
            category,
            amount: if category.is_some() { amount } else { 0 },
        }
    }
}

/// One cube block's result.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CubeResult {
    pub cube_type: CubeType,
    pub grade: Grade,
    /// The table band used for the probabilities.
    pub level_band: u32,
    /// The item's lines and how each counted.
    pub lines: Vec<ClassifiedLine>,
    pub target: Target,
    /// Probability that one cube reaches the target.
    pub probability: f64,
    pub expected_cubes: f64,
    /// Meso per cube.
    pub cube_price: u64,
    pub expected_meso: u64,
    pub meso_text: String,
    pub table_version: String,
    /// Per line slot 1..=3: the mass `1 − Σ rates` an incomplete table group lacks (priced as "some other
    /// line"); 0 for a complete group. Non-zero entries become `incomplete_table_group` warnings on the item.
    pub missing_mass: [f64; 3],
}

/// Chooses the target for a set of lines (see the module contract).
pub fn choose_target(lines: &[OptionLine], profile: &Profile) -> Option<Target> {
    let mut count = [0u32; 8];
    let mut sum = [0u32; 8];
    for line in lines {
        let (kind, amount) = line.kind_and_amount();
        if let Some(c) = Category::of(kind, profile) {
            count[c as usize] += 1;
            sum[c as usize] = sum[c as usize].saturating_add(amount);
        }
    }
    // First maximum in declaration order wins ties.
    let best = (0..8).fold(None, |best: Option<usize>, i| match best {
        Some(b) if count[b] >= count[i] => Some(b),
        _ if count[i] > 0 => Some(i),
        other => other,
    })?;
    (sum[best] > 0).then(|| Target {
        category: Category::ALL[best],
        threshold: sum[best],
    })
}

/// The per-slot `(amount, probability)` lists of the three groups for a category.
fn slot_entries<'a>(
    groups: [&'a super::table::Group; 3],
    category: Category,
    profile: &'a Profile,
) -> impl Iterator<Item = impl Iterator<Item = (u32, f64)> + 'a> + 'a {
    groups.into_iter().map(move |g| {
        g.entries.iter().filter_map(move |&(kind, amount, p)| {
            (Category::of(kind, profile) == Some(category)).then_some((amount, p))
        })
    })
}

/// `P(sum of the three slots ≥ threshold)` for the groups the item needs.
pub fn probability(groups: [&super::table::Group; 3], target: Target, profile: &Profile) -> f64 {
    let mut acc: Option<ClampedPmf> = None;
    for entries in slot_entries(groups, target.category, profile) {
        let pmf = ClampedPmf::from_entries(target.threshold, entries);
        acc = Some(match acc {
            None => pmf,
            Some(a) => a.convolve(&pmf),
        });
    }
    acc.map(|a| a.tail()).unwrap_or(0.0)
}

/// Meso per cube, by cube type, grade and the price band of the item level.
pub fn cube_price(cube_type: CubeType, grade: Grade, level: i64) -> u64 {
    const BLACK: [[u64; 4]; 4] = [
        [4_000_000, 16_000_000, 34_000_000, 40_000_000],
        [4_250_000, 17_000_000, 36_125_000, 42_500_000],
        [4_500_000, 18_000_000, 38_250_000, 45_000_000],
        [5_000_000, 20_000_000, 42_500_000, 50_000_000],
    ];
    const ADDITIONAL: [[u64; 4]; 4] = [
        [13_000_000, 36_400_000, 44_200_000, 52_000_000],
        [13_812_500, 38_675_000, 46_962_500, 55_250_000],
        [14_625_000, 40_950_000, 49_725_000, 58_500_000],
        [16_250_000, 45_500_000, 55_250_000, 65_000_000],
    ];
    let band = match level {
        l if l >= 250 => 3,
        l if l >= 200 => 2,
        l if l >= 160 => 1,
        _ => 0,
    };
    let table = match cube_type {
        CubeType::Black => &BLACK,
        CubeType::Additional => &ADDITIONAL,
    };
    table[band][grade.index()]
}

/// Rounds a non-negative meso amount to an integer (saturating at `u64::MAX`).
pub(crate) fn round_meso(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.round() as u64
    } else if x > 0.0 {
        u64::MAX
    } else {
        0
    }
}

/// The cube block of one item for one cube type. Reasons are checked in this order: `no_table`, `no_potential`,
/// `unknown_grade`, `no_target`, then the table lookup (`no_table_group`, `below_min_level`, `table_error`), then
/// `unreachable`.
pub fn evaluate(
    item: &Item,
    cube_type: CubeType,
    tables: Option<&CubeTables>,
    profile: &Profile,
) -> Block<CubeResult> {
    evaluate_with_missing_mass(item, cube_type, tables, profile).0
}

/// [`evaluate`], with the missing mass of each line slot's group the block looked up (0 where the group is
/// complete or none was looked up): an `unreachable` block rests on its groups as much as a priced one.
pub fn evaluate_with_missing_mass(
    item: &Item,
    cube_type: CubeType,
    tables: Option<&CubeTables>,
    profile: &Profile,
) -> (Block<CubeResult>, [f64; 3]) {
    let none = [0.0; 3];
    let Some(tables) = tables else {
        return (Block::unavailable(Unavailable::NoTable), none);
    };
    let (grade_text, raw_lines) = match cube_type {
        CubeType::Black => (
            item.potential_option_grade.as_deref(),
            item.potential_lines(),
        ),
        CubeType::Additional => (
            item.additional_potential_option_grade.as_deref(),
            item.additional_lines(),
        ),
    };
    let lines: Vec<OptionLine> = raw_lines
        .iter()
        .flatten()
        .filter(|l| !l.trim().is_empty())
        .map(|l| OptionLine::parse(l))
        .collect();
    let grade_text = grade_text.map(str::trim).filter(|g| !g.is_empty());
    let Some(grade_text) = grade_text else {
        return (Block::unavailable(Unavailable::NoPotential), none);
    };
    if lines.is_empty() {
        return (Block::unavailable(Unavailable::NoPotential), none);
    }
    let Some(grade) = Grade::parse(grade_text) else {
        return (
            Block::unavailable_because(Unavailable::UnknownGrade, grade_text),
            none,
        );
    };
    let Some(target) = choose_target(&lines, profile) else {
        return (Block::unavailable(Unavailable::NoTarget), none);
    };
    let Some(part) = item
        .item_equipment_slot
        .as_deref()
        .and_then(PartName::parse)
    else {
        return (
            Block::unavailable_because(Unavailable::NoTableGroup, "item has no slot name"),
            none,
        );
    };
    let level = item.base_level();
    let selected = match tables.select(cube_type, grade, &part, level) {
        Ok(s) => s,
        Err((reason, detail)) => {
            return (
                Block::Unavailable {
                    unavailable: reason,
                    detail,
                },
                none,
            );
        }
    };
    let missing_mass = selected.slots.map(|g| match g.state {
        GroupSum::Incomplete => (1.0 - g.sum).max(0.0),
        GroupSum::Normalized | GroupSum::OverOne => 0.0,
    });
    let p = probability(selected.slots, target, profile);
    if p <= 0.0 {
        return (Block::unavailable(Unavailable::Unreachable), missing_mass);
    }
    let expected_cubes = 1.0 / p;
    let cube_price = cube_price(cube_type, grade, level);
    let expected_meso = round_meso(expected_cubes * cube_price as f64);
    let result = Block::Available(CubeResult {
        cube_type,
        grade,
        level_band: selected.level_band,
        lines: lines
            .iter()
            .map(|l| ClassifiedLine::new(l, profile))
            .collect(),
        target,
        probability: p,
        expected_cubes,
        cube_price,
        expected_meso,
        meso_text: meso_text(expected_meso),
        table_version: tables.version().to_owned(),
        missing_mass,
    });
    (result, missing_mass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectation::table::tests::reference;
    use crate::expectation::types::MainStat;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn mage() -> Profile {
        Profile::fixed(Some(MainStat::Int), AttackType::Magic)
    }

    fn lines(ls: &[&str]) -> Vec<OptionLine> {
        ls.iter().map(|l| OptionLine::parse(l)).collect()
    }

    fn target(ls: &[&str], p: &Profile) -> Option<(Category, u32)> {
        choose_target(&lines(ls), p).map(|t| (t.category, t.threshold))
    }

    #[test]
    fn target_rule_counts_lines_and_breaks_ties_in_order() {
        let m = mage();
        assert_eq!(
            target(&["INT +12%", "INT +9%", "올스탯 +9%"], &m),
            Some((Category::StatPct, 30))
        );
        assert_eq!(
            target(&["몬스터 방어율 무시 +35%", "마력 +12%", "마력 +9%"], &m),
            Some((Category::AttPct, 21))
        );
        // One boss and one magic line: att% wins the tie.
        assert_eq!(
            target(&["보스 몬스터 데미지 +35%", "마력 +12%", "최대 HP +9%"], &m),
            Some((Category::AttPct, 12))
        );
        // A physical attacker's 공격력 counts, a mage's does not.
        assert_eq!(
            target(&["공격력 +12%", "최대 HP +9%", "INT +9%"], &m),
            Some((Category::StatPct, 9))
        );
        let warrior = Profile::fixed(Some(MainStat::Str), AttackType::Attack);
        assert_eq!(
            target(&["공격력 +12%", "최대 HP +9%", "INT +9%"], &warrior),
            Some((Category::AttPct, 12))
        );
        assert_eq!(
            target(
                &[
                    "스킬 재사용 대기시간 -2초",
                    "스킬 재사용 대기시간 -2초",
                    "피격 시 5% 확률로 데미지의 40% 무시"
                ],
                &m
            ),
            Some((Category::CooldownS, 4))
        );
        assert_eq!(
            target(&["아이템 드롭률 +20%", "메소 획득량 +20%", "INT +9%"], &m),
            Some((Category::StatPct, 9))
        );
        assert_eq!(
            target(&["아이템 드롭률 +20%", "메소 획득량 +20%"], &m),
            Some((Category::DropPct, 20))
        );
        assert_eq!(
            target(&["최대 HP +9%", "캐릭터 기준 9레벨 당 INT +2"], &m),
            None
        );
    }

    #[test]
    fn prices_follow_grade_and_band() {
        assert_eq!(
            cube_price(CubeType::Black, Grade::Legendary, 250),
            50_000_000
        );
        assert_eq!(cube_price(CubeType::Black, Grade::Unique, 200), 38_250_000);
        assert_eq!(cube_price(CubeType::Black, Grade::Rare, 159), 4_000_000);
        assert_eq!(cube_price(CubeType::Black, Grade::Epic, 160), 17_000_000);
        assert_eq!(
            cube_price(CubeType::Additional, Grade::Legendary, 160),
            55_250_000
        );
        assert_eq!(
            cube_price(CubeType::Additional, Grade::Unique, 0),
            44_200_000
        );
        assert_eq!(
            cube_price(CubeType::Additional, Grade::Epic, 300),
            45_500_000
        );
    }

    /// Simulates cube rolls from the reference table itself (row by row, not from the precomputed groups) and
    /// compares the success frequency with the analytic probability.
    #[test]
    fn monte_carlo_agrees_with_the_analytic_probability() {
        let (tables, _) = reference();
        let m = mage();
        // Legendary hat, level 200: INT% lines summing to at least 21 (e.g. 12 + 9).
        let part = PartName::parse("모자").unwrap();
        let target = Target {
            category: Category::StatPct,
            threshold: 21,
        };
        let sel = tables
            .select(CubeType::Black, Grade::Legendary, &part, 200)
            .ok()
            .unwrap();
        let p = probability(sel.slots, target, &m);

        let csv = std::fs::read_to_string(crate::expectation::table::tests::REFERENCE).unwrap();
        let mut slots: [Vec<(f64, u32)>; 3] = Default::default();
        for row in csv.lines().skip(1) {
            let f: Vec<&str> = row.split(',').collect();
            if f[3] == "레전드리" && f[4] == "200" && f[5] == "모자" && f[6] == "BLACK" {
                let (kind, amount) = OptionLine::parse(f[0]).kind_and_amount();
                let contributes = Category::of(kind, &m) == Some(Category::StatPct);
                let s: usize = f[2].parse().unwrap();
                slots[s - 1].push((f[1].parse().unwrap(), if contributes { amount } else { 0 }));
            }
        }
        let sums: Vec<f64> = slots.iter().map(|s| s.iter().map(|e| e.0).sum()).collect();
        let mut rng = StdRng::seed_from_u64(0x5eed_cafe);
        let n = 200_000u32;
        let mut hits = 0u32;
        for _ in 0..n {
            let mut total = 0;
            for (s, slot) in slots.iter().enumerate() {
                // Draw against the group's own mass when it is complete (normalisation), else against 1.
                let scale = if (sums[s] - 1.0).abs() <= 1e-4 {
                    sums[s]
                } else {
                    1.0
                };
                let mut u = rng.random::<f64>() * scale;
                for &(rate, amount) in slot {
                    if u < rate {
                        total += amount;
                        break;
                    }
                    u -= rate;
                }
            }
            if total >= target.threshold {
                hits += 1;
            }
        }
        let freq = f64::from(hits) / f64::from(n);
        let se = (p * (1.0 - p) / f64::from(n)).sqrt();
        assert!(
            p > 0.001 && p < 0.5,
            "pick a target with a testable p, got {p}"
        );
        assert!(
            (freq - p).abs() <= 3.0 * se,
            "simulated {freq}, analytic {p}, se {se}"
        );
    }

    #[test]
    fn reference_items_get_results_or_reasons() {
        let (tables, _) = reference();
        let m = mage();
        let item = |slot: &str, level: i64, grade: &str, ls: [&str; 3]| Item {
            item_equipment_slot: Some(slot.into()),
            item_base_option: Some(crate::expectation::model::ItemOption {
                base_equipment_level: Some(level),
                ..Default::default()
            }),
            potential_option_grade: Some(grade.into()),
            potential_option_1: Some(ls[0].into()),
            potential_option_2: Some(ls[1].into()),
            potential_option_3: Some(ls[2].into()),
            ..Default::default()
        };
        let hat = item("모자", 200, "레전드리", ["INT +12%", "INT +9%", "INT +9%"]);
        let r = evaluate(&hat, CubeType::Black, Some(&tables), &m);
        let r = r.available().expect("legendary hat is in the table");
        assert_eq!(r.target.threshold, 30);
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.lines[0].text, "INT +12%");
        assert_eq!(r.lines[0].category, Some(Category::StatPct));
        assert_eq!(r.lines.iter().map(|l| l.amount).sum::<u32>(), 30);
        assert_eq!(r.level_band, 200);
        assert!((r.expected_cubes - 1.0 / r.probability).abs() < 1e-9);
        assert_eq!(r.cube_price, 45_000_000);
        assert_eq!(
            r.expected_meso,
            (r.expected_cubes * 45_000_000.0).round() as u64
        );
        assert_eq!(r.table_version, tables.version());
        // No table / no additional rows / below the bands / over-one group.
        assert_eq!(
            evaluate(&hat, CubeType::Black, None, &m).reason(),
            Some(Unavailable::NoTable)
        );
        let mut add = hat.clone();
        add.additional_potential_option_grade = Some("레전드리".into());
        add.additional_potential_option_1 = Some("INT +9%".into());
        assert_eq!(
            evaluate(&add, CubeType::Additional, Some(&tables), &m).reason(),
            Some(Unavailable::NoTableGroup)
        );
        let low = item("모자", 80, "레전드리", ["INT +12%", "INT +9%", "INT +9%"]);
        assert_eq!(
            evaluate(&low, CubeType::Black, Some(&tables), &m).reason(),
            Some(Unavailable::BelowMinLevel)
        );
        let shoe = item("신발", 200, "에픽", ["INT +6%", "INT +3%", "INT +3%"]);
        assert_eq!(
            evaluate(&shoe, CubeType::Black, Some(&tables), &m).reason(),
            Some(Unavailable::TableError)
        );
        let impossible = item(
            "모자",
            200,
            "레전드리",
            ["INT +13%", "INT +13%", "INT +13%"],
        );
        let r = evaluate(&impossible, CubeType::Black, Some(&tables), &m);
        assert!(matches!(r.reason(), Some(Unavailable::Unreachable) | None));
        let nothing = Item::default();
        assert_eq!(
            evaluate(&nothing, CubeType::Black, Some(&tables), &m).reason(),
            Some(Unavailable::NoPotential)
        );
    }

    proptest! {
        #[test]
        fn expected_cubes_grow_with_the_threshold(t in 1u32..60, cat in 0usize..8, lv in 100i64..260) {
            let (tables, _) = &*REF;
            let m = mage();
            let part = PartName::parse("모자").unwrap();
            if let Ok(sel) = tables.select(CubeType::Black, Grade::Legendary, &part, lv) {
                let c = Category::ALL[cat];
                let lo = probability(sel.slots, Target { category: c, threshold: t }, &m);
                let hi = probability(sel.slots, Target { category: c, threshold: t + 1 }, &m);
                prop_assert!((0.0..=1.0).contains(&lo));
                prop_assert!(hi <= lo + 1e-12);
            }
        }
    }

    static REF: std::sync::LazyLock<(CubeTables, crate::expectation::table::TableReport)> =
        std::sync::LazyLock::new(reference);
}
