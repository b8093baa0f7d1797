//! One item rolled from a catalog template: which template a slot gets, and every field of the item.
//!
//! Contract: [`roll_slot`] picks a template near the gear tier (rings and pendants are never worn twice)
//! and [`roll_item`] fills it — potential grades and lines, stars (star force, or scroll stars for some
//! scroll-starrable items of level 150 or less), flames, scroll upgrades, exceptional enhancement, soul,
//! shape, cuttable count, golden hammer, special-ring level — drawing from the caller's stream in that
//! fixed order. The item's total option is the field-wise sum of base, flames, scroll upgrades, stars and
//! exceptional stats. [`roll_companion`] rolls one piece of dragon or mechanic equipment. [`icon`] is the
//! stable icon URL of a name. None of them panics.

use super::flames::roll_flames;
use super::options::{opt_add, opt_base, opt_exceptional, opt_small, opt_total};
use super::potential::{draw_lines, roll_grade};
use super::upgrades::{scroll_star_stats, scroll_stats, starforce_stats};
use crate::expectation::model::Item;
use crate::sim::catalog::{
    Class, Companion, CubeType, Flames, Kind, SOULS, SlotDef, Stats, Template, WEAPON_SHAPES,
    max_stars, templates,
};
use crate::sim::rng::{SplitMix64, derive};

const ICON_BASE: &str = "https://open.api.nexon.com/static/maplestory/item/icon/";

/// A stable icon URL for a name: `K` + 7 letters `A`–`P`, like the upstream's.
pub(super) fn icon(name: &str) -> String {
    let mut h = derive(0, &[b"icon", name.as_bytes()]);
    let mut s = String::from(ICON_BASE);
    s.push('K');
    for _ in 0..7 {
        s.push((b'A' + (h & 15) as u8) as char);
        h >>= 4;
    }
    s
}

pub(super) fn pick_template(
    ts: &[Template],
    tier: f64,
    used: &[String],
    r: &mut SplitMix64,
) -> usize {
    let x = (tier + (r.unit() - 0.5) * 0.6).clamp(0.0, 0.999);
    let want = (x * ts.len() as f64) as usize;
    // Nearest unused template (rings and pendants are not worn twice).
    (0..ts.len())
        .map(|d| [want.saturating_sub(d), (want + d).min(ts.len() - 1)])
        .flat_map(|p| p.into_iter())
        .find(|&i| !used.contains(&ts[i].name))
        .unwrap_or(want)
}

pub(super) fn roll_slot(
    s: &SlotDef,
    c: &Class,
    tier: f64,
    used: &mut Vec<String>,
    r: &mut SplitMix64,
) -> Item {
    let ts = templates(s, c);
    let i = pick_template(&ts, tier, used, r);
    if matches!(s.kind, Kind::Ring | Kind::Pendant) {
        used.push(ts[i].name.clone());
    }
    roll_item(s, &ts[i], c, tier, r)
}

pub(super) fn roll_item(
    s: &SlotDef,
    tpl: &Template,
    c: &Class,
    tier: f64,
    r: &mut SplitMix64,
) -> Item {
    let kind = s.kind;
    let level = tpl.level;
    let base = tpl.base;

    let (pot_grade, add_grade) = if tpl.potential {
        (roll_grade(tier, false, r), roll_grade(tier, true, r))
    } else {
        (None, None)
    };
    let [p1, p2, p3] = draw_lines(CubeType::Black, pot_grade, level, s.slot, r);
    let [a1, a2, a3] = draw_lines(CubeType::Additional, add_grade, level, s.slot, r);

    let (stars, scroll_starred) = if !tpl.starforce {
        (0, false)
    } else if tpl.scroll_starrable && level <= 150 && r.chance(0.2) {
        (r.range(5, 12).min(max_stars(level)), true)
    } else {
        const STEPS: [i64; 8] = [10, 12, 15, 17, 18, 20, 21, 22];
        let x = (tier + (r.unit() - 0.5) * 0.4).clamp(0.0, 0.999);
        (
            STEPS[(x * STEPS.len() as f64) as usize].min(max_stars(level)),
            false,
        )
    };
    let star_opt = if scroll_starred {
        scroll_star_stats(stars, c, level)
    } else {
        starforce_stats(stars, kind, c, &base, level)
    };

    let add = roll_flames(tpl.flames, kind, level, c, &base, tier, r);
    let upgrades = if tpl.starforce { r.range(2, 9) } else { 0 };
    let etc = scroll_stats(upgrades, kind, c, r);
    let exceptional = matches!(kind, Kind::Face | Kind::Eye | Kind::Earring)
        && tpl.starforce
        && r.chance(0.1 * tier);
    let exc = if exceptional {
        Stats {
            max_hp: 500,
            max_mp: 500,
            ..Stats::default().all4(15).job_attack(c, 10)
        }
    } else {
        Stats::default()
    };
    let total = base.plus(add).plus(etc).plus(star_opt).plus(exc);

    let (soul_name, soul_option) = if kind == Kind::Weapon && r.chance(0.8) {
        let (n, o) = *r.pick(&SOULS);
        (Some(n.to_string()), Some(o.to_string()))
    } else {
        (None, None)
    };
    let (shape_name, shape_icon) = if kind == Kind::Weapon && r.chance(0.2) {
        let n = *r.pick(&WEAPON_SHAPES);
        (n.to_string(), icon(n))
    } else {
        (tpl.name.clone(), icon(&tpl.name))
    };
    let cuttable = if tpl.flames == Flames::None || !tpl.starforce {
        255
    } else {
        r.range(2, 10)
    };

    Item {
        item_equipment_part: Some(tpl.part.clone()),
        item_equipment_slot: Some(s.slot.to_string()),
        item_name: Some(tpl.name.clone()),
        item_icon: Some(icon(&tpl.name)),
        item_description: tpl.description.map(str::to_string),
        item_shape_name: Some(shape_name),
        item_shape_icon: Some(shape_icon),
        item_gender: None,
        item_total_option: Some(opt_total(&total)),
        item_base_option: Some(opt_base(&base, level)),
        potential_option_grade: pot_grade.map(|g| g.name().to_string()),
        additional_potential_option_grade: add_grade.map(|g| g.name().to_string()),
        potential_option_flag: Some("false".into()),
        potential_option_1: p1,
        potential_option_2: p2,
        potential_option_3: p3,
        additional_potential_option_flag: Some("false".into()),
        additional_potential_option_1: a1,
        additional_potential_option_2: a2,
        additional_potential_option_3: a3,
        equipment_level_increase: Some(0),
        item_exceptional_option: Some(opt_exceptional(&exc, exceptional as i64)),
        item_add_option: Some(opt_add(&add)),
        growth_exp: Some(0),
        growth_level: Some(0),
        scroll_upgrade: Some(upgrades.to_string()),
        cuttable_count: Some(cuttable.to_string()),
        golden_hammer_flag: Some(
            if upgrades > 0 && r.chance(0.3) {
                "적용"
            } else {
                "미적용"
            }
            .to_string(),
        ),
        scroll_resilience_count: Some("0".into()),
        scroll_upgradeable_count: Some("0".into()),
        soul_name,
        soul_option,
        item_etc_option: Some(opt_small(&etc)),
        starforce: Some(stars.to_string()),
        starforce_scroll_flag: Some(
            if scroll_starred {
                "사용"
            } else {
                "미사용"
            }
            .to_string(),
        ),
        item_starforce_option: Some(opt_small(&star_opt)),
        special_ring_level: Some(if tpl.special_ring { r.range(1, 4) } else { 0 }),
        date_expire: None,
        freestyle_flag: Some("0".into()),
    }
}

pub(super) fn roll_companion(kind: Companion, part: &str, name: &str, r: &mut SplitMix64) -> Item {
    let level = if kind == Companion::Dragon { 125 } else { 100 };
    let base = Stats {
        armor: 40,
        int: 10,
        magic_power: 1,
        ..Stats::default()
    };
    let etc = Stats {
        int: r.range(0, 12),
        magic_power: r.range(10, 30),
        armor: r.range(10, 40),
        ..Stats::default()
    };
    let zero = Stats::default();
    Item {
        item_equipment_part: Some(part.to_string()),
        item_equipment_slot: Some(part.to_string()),
        item_name: Some(name.to_string()),
        item_icon: Some(icon(name)),
        item_description: None,
        item_shape_name: Some(name.to_string()),
        item_shape_icon: Some(icon(name)),
        item_gender: None,
        item_total_option: Some(opt_total(&base.plus(etc))),
        item_base_option: Some(opt_base(&base, level)),
        equipment_level_increase: Some(0),
        item_exceptional_option: Some(opt_exceptional(&zero, 0)),
        item_add_option: Some(opt_add(&zero)),
        growth_exp: Some(r.range(0, 99)),
        growth_level: Some(r.range(1, 4)),
        scroll_upgrade: Some("5".into()),
        cuttable_count: Some("255".into()),
        golden_hammer_flag: Some("미적용".into()),
        scroll_resilience_count: Some("0".into()),
        scroll_upgradeable_count: Some("0".into()),
        item_etc_option: Some(opt_small(&etc)),
        starforce: Some("0".into()),
        starforce_scroll_flag: Some("미사용".into()),
        item_starforce_option: Some(opt_small(&zero)),
        special_ring_level: Some(0),
        freestyle_flag: Some("0".into()),
        ..Item::default()
    }
}
