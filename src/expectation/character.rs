//! The character profile the targets are built for: main stat, sub stat, attack type — inferred from the gear.
//!
//! Contract: [`infer`] looks at every potential and additional-potential line of every item in the payload
//! (`item_equipment` and presets 1–3; an item present in several lists counts each time) and never fails:
//! - main stat = the primary stat whose `% ` lines (`INT +12%`, not flat, not per-level, not all stat) are seen most;
//!   ties are broken by the larger sum of those percentages, then by the flames (`item_add_option`) total of
//!   the tied stats, then in the order STR, DEX, INT, LUK. With no stat % line at all, the stat with the largest
//!   flame total is used; with no flames either the main stat is unknown (`null`): stat% targets then count only
//!   all stat % lines, and flames are `no_main_stat`.
//! - sub stat = the usual partner of the main stat (STR→DEX, DEX→STR, INT→LUK, LUK→DEX).
//! - attack type = magic if `마력 +N%` lines outnumber `공격력 +N%` lines, attack if the reverse; on a tie (including
//!   none) magic for an INT main stat and attack otherwise.
//!
//! The evidence (the counts) is returned with the profile so that a response can show why.
//!
//! Why: the upstream's `character_class` is a localised job name whose list changes with the game; the gear
//! itself says what the player optimises, and it is the same data the expectation is computed from.
//! Known misfits: Xenon (STR+DEX+LUK) and Demon Avenger (HP) are read as whichever stat dominates their lines.

use serde::Serialize;

use super::model::{ItemEquipment, ItemOption};
use super::option_line::{LineValue, Stat, Unit};
use super::types::{AttackType, MainStat};

/// Who the targets are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Profile {
    pub main_stat: Option<MainStat>,
    pub sub_stat: Option<MainStat>,
    pub attack_type: AttackType,
}

impl Profile {
    /// A profile with a given main stat (sub stat derived) and attack type.
    pub fn fixed(main_stat: Option<MainStat>, attack_type: AttackType) -> Profile {
        Profile {
            main_stat,
            sub_stat: main_stat.map(MainStat::usual_sub_stat),
            attack_type,
        }
    }
}

/// Where the main stat came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    PotentialLines,
    Flames,
    None,
}

/// The counts the inference used.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// Number of `STAT +N%` lines per primary stat, in the order STR, DEX, INT, LUK.
    pub stat_pct_lines: [u32; 4],
    pub attack_pct_lines: u32,
    pub magic_pct_lines: u32,
    pub main_stat_source: Source,
}

/// Infers the profile; see the module contract.
pub fn infer(eq: &ItemEquipment) -> (Profile, Evidence) {
    let lists = [
        &eq.item_equipment,
        &eq.item_equipment_preset_1,
        &eq.item_equipment_preset_2,
        &eq.item_equipment_preset_3,
    ];
    let mut count = [0u32; 4];
    let mut pct_sum = [0i64; 4];
    let mut flames = [0i64; 4];
    let (mut atk, mut mag) = (0u32, 0u32);
    // Items the engine leaves out (a value outside the game's maxima) say nothing about the character.
    for item in lists
        .into_iter()
        .flatten()
        .filter(|i| i.out_of_range().is_none())
    {
        for text in item
            .potential_lines()
            .into_iter()
            .chain(item.additional_lines())
            .flatten()
        {
            let line = LineValue::read(text);
            if line.unit != Unit::Percent {
                continue;
            }
            if let Some(s) = line.stat.main_stat() {
                count[s.index()] += 1;
                pct_sum[s.index()] = pct_sum[s.index()].saturating_add(line.value);
            } else if line.stat == Stat::Attack {
                atk += 1;
            } else if line.stat == Stat::Magic {
                mag += 1;
            }
        }
        if let Some(add) = &item.item_add_option {
            for s in MainStat::ALL {
                flames[s.index()] = flames[s.index()].saturating_add(stat_of(add, s).max(0));
            }
        }
    }

    let (main_stat, source) = if count.iter().any(|&c| c > 0) {
        let best = MainStat::ALL
            .into_iter()
            .max_by_key(|s| {
                let i = s.index();
                // max_by_key keeps the last maximum; reverse the index so STR wins a full tie.
                (count[i], pct_sum[i], flames[i], 3 - i)
            })
            .unwrap_or(MainStat::Str);
        (Some(best), Source::PotentialLines)
    } else if flames.iter().any(|&f| f > 0) {
        let best = MainStat::ALL
            .into_iter()
            .max_by_key(|s| (flames[s.index()], 3 - s.index()))
            .unwrap_or(MainStat::Str);
        (Some(best), Source::Flames)
    } else {
        (None, Source::None)
    };
    let attack_type = match mag.cmp(&atk) {
        std::cmp::Ordering::Greater => AttackType::Magic,
        std::cmp::Ordering::Less => AttackType::Attack,
        std::cmp::Ordering::Equal if main_stat == Some(MainStat::Int) => AttackType::Magic,
        std::cmp::Ordering::Equal => AttackType::Attack,
    };
    (
        Profile::fixed(main_stat, attack_type),
        Evidence {
            stat_pct_lines: count,
            attack_pct_lines: atk,
            magic_pct_lines: mag,
            main_stat_source: source,
        },
    )
}

/// The value of one primary stat in an option object.
pub fn stat_of(opt: &ItemOption, s: MainStat) -> i64 {
    ItemOption::get(match s {
        MainStat::Str => &opt.str,
        MainStat::Dex => &opt.dex,
        MainStat::Int => &opt.int,
        MainStat::Luk => &opt.luk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectation::model::{Item, StrNum};

    fn item(lines: [&str; 3]) -> Item {
        Item {
            potential_option_1: Some(lines[0].into()),
            potential_option_2: Some(lines[1].into()),
            potential_option_3: Some(lines[2].into()),
            ..Default::default()
        }
    }

    fn eq(items: Vec<Item>) -> ItemEquipment {
        ItemEquipment {
            item_equipment_preset_1: items,
            ..Default::default()
        }
    }

    #[test]
    fn the_evan_sample_is_an_int_mage() {
        let bytes = std::fs::read("../shared/data/nexon/item-equipment-evan.json").unwrap();
        let e = ItemEquipment::from_json(&bytes).unwrap();
        let (p, ev) = infer(&e);
        assert_eq!(p.main_stat, Some(MainStat::Int));
        assert_eq!(p.sub_stat, Some(MainStat::Luk));
        assert_eq!(p.attack_type, AttackType::Magic);
        assert_eq!(ev.main_stat_source, Source::PotentialLines);
        assert!(ev.stat_pct_lines[2] > ev.stat_pct_lines[3]);
    }

    #[test]
    fn most_seen_stat_wins_and_attack_type_follows_lines() {
        let (p, _) = infer(&eq(vec![
            item(["LUK +12%", "LUK +9%", "공격력 +12%"]),
            item(["INT +12%", "올스탯 +9%", "DEX +6%"]),
        ]));
        assert_eq!(p.main_stat, Some(MainStat::Luk));
        assert_eq!(p.sub_stat, Some(MainStat::Dex));
        assert_eq!(p.attack_type, AttackType::Attack);
        // Tie on count → larger sum.
        let (p, _) = infer(&eq(vec![item(["STR +6%", "DEX +9%", "마력 +9%"])]));
        assert_eq!(p.main_stat, Some(MainStat::Dex));
        assert_eq!(p.attack_type, AttackType::Magic);
        // Flat and per-level lines are not evidence.
        let (p, ev) = infer(&eq(vec![item([
            "STR +12",
            "캐릭터 기준 9레벨 당 STR +2",
            "올스탯 +9%",
        ])]));
        assert_eq!(p.main_stat, None);
        assert_eq!(ev.main_stat_source, Source::None);
    }

    #[test]
    fn falls_back_to_flames_then_to_nothing() {
        let mut it = item(["최대 HP +9%", "", ""]);
        it.item_add_option = Some(ItemOption {
            dex: Some(StrNum(40)),
            str: Some(StrNum(12)),
            ..Default::default()
        });
        let (p, ev) = infer(&eq(vec![it]));
        assert_eq!(p.main_stat, Some(MainStat::Dex));
        assert_eq!(ev.main_stat_source, Source::Flames);
        assert_eq!(p.attack_type, AttackType::Attack);
        let (p, _) = infer(&ItemEquipment::default());
        assert_eq!(p.main_stat, None);
        assert_eq!(p.sub_stat, None);
    }
}
