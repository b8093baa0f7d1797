//! [`Stats`] spelled as the upstream's option objects (string-typed numbers).
//!
//! Contract: each function picks the key set one kind of object has in real payloads — total (18 keys),
//! base (with `base_equipment_level`, without damage and level decrease), exceptional (8 stats and the
//! upgrade count), the 11-key etc / starforce objects, and the flame object; a key outside the set stays
//! absent. Pure and infallible.

use crate::expectation::model::{ItemOption, StrNum};
use crate::sim::catalog::Stats;

pub(super) fn opt_total(s: &Stats) -> ItemOption {
    ItemOption {
        str: Some(StrNum(s.str)),
        dex: Some(StrNum(s.dex)),
        int: Some(StrNum(s.int)),
        luk: Some(StrNum(s.luk)),
        max_hp: Some(StrNum(s.max_hp)),
        max_mp: Some(StrNum(s.max_mp)),
        attack_power: Some(StrNum(s.attack_power)),
        magic_power: Some(StrNum(s.magic_power)),
        armor: Some(StrNum(s.armor)),
        speed: Some(StrNum(s.speed)),
        jump: Some(StrNum(s.jump)),
        boss_damage: Some(StrNum(s.boss_damage)),
        ignore_monster_armor: Some(StrNum(s.ignore_monster_armor)),
        all_stat: Some(StrNum(s.all_stat)),
        damage: Some(StrNum(s.damage)),
        equipment_level_decrease: Some(s.equipment_level_decrease),
        max_hp_rate: Some(StrNum(s.max_hp_rate)),
        max_mp_rate: Some(StrNum(s.max_mp_rate)),
        ..ItemOption::default()
    }
}

pub(super) fn opt_base(s: &Stats, level: i64) -> ItemOption {
    ItemOption {
        damage: None,
        equipment_level_decrease: None,
        base_equipment_level: Some(level),
        ..opt_total(s)
    }
}

pub(super) fn opt_exceptional(s: &Stats, upgrades: i64) -> ItemOption {
    ItemOption {
        str: Some(StrNum(s.str)),
        dex: Some(StrNum(s.dex)),
        int: Some(StrNum(s.int)),
        luk: Some(StrNum(s.luk)),
        max_hp: Some(StrNum(s.max_hp)),
        max_mp: Some(StrNum(s.max_mp)),
        attack_power: Some(StrNum(s.attack_power)),
        magic_power: Some(StrNum(s.magic_power)),
        exceptional_upgrade: Some(upgrades),
        ..ItemOption::default()
    }
}

/// The 11-key objects (`item_etc_option`, `item_starforce_option`).
pub(super) fn opt_small(s: &Stats) -> ItemOption {
    ItemOption {
        armor: Some(StrNum(s.armor)),
        speed: Some(StrNum(s.speed)),
        jump: Some(StrNum(s.jump)),
        exceptional_upgrade: None,
        ..opt_exceptional(s, 0)
    }
}

pub(super) fn opt_add(s: &Stats) -> ItemOption {
    ItemOption {
        boss_damage: Some(StrNum(s.boss_damage)),
        damage: Some(StrNum(s.damage)),
        all_stat: Some(StrNum(s.all_stat)),
        equipment_level_decrease: Some(s.equipment_level_decrease),
        ..opt_small(s)
    }
}
