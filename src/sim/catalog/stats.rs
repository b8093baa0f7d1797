//! [`Stats`]: the flat stat block of one option object, and the builders the item catalog and the generator
//! fill it with.
//!
//! Contract: plain integer fields, all zero by default; the builders set fields from a class (its main and
//! secondary stat, weapon or magic attack) and [`Stats::plus`] adds field-wise. Which fields an option
//! object shows is the serialiser's choice, not this type's.
//!
//! Failure modes: none (the numbers stay far from overflow).

use super::classes::{Class, Stat};

/// Flat stats of one option object (all fields; the serialiser picks each object's key set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub str: i64,
    pub dex: i64,
    pub int: i64,
    pub luk: i64,
    pub max_hp: i64,
    pub max_mp: i64,
    pub attack_power: i64,
    pub magic_power: i64,
    pub armor: i64,
    pub speed: i64,
    pub jump: i64,
    pub boss_damage: i64,
    pub ignore_monster_armor: i64,
    pub all_stat: i64,
    pub damage: i64,
    pub equipment_level_decrease: i64,
    pub max_hp_rate: i64,
    pub max_mp_rate: i64,
}

impl Stats {
    pub fn stat_mut(&mut self, s: Stat) -> &mut i64 {
        match s {
            Stat::Str => &mut self.str,
            Stat::Dex => &mut self.dex,
            Stat::Int => &mut self.int,
            Stat::Luk => &mut self.luk,
        }
    }

    /// Sets all four stats.
    pub fn all4(mut self, v: i64) -> Self {
        self.str = v;
        self.dex = v;
        self.int = v;
        self.luk = v;
        self
    }

    /// Sets the class's main and secondary stat.
    pub fn job_stats(mut self, c: &Class, v: i64) -> Self {
        *self.stat_mut(c.main) = v;
        *self.stat_mut(c.sub) = v;
        self
    }

    /// Sets the class's attack (magic attack for mages).
    pub fn job_attack(mut self, c: &Class, v: i64) -> Self {
        if c.magic() {
            self.magic_power = v;
        } else {
            self.attack_power = v;
        }
        self
    }

    /// Field-wise sum.
    pub fn plus(self, o: Stats) -> Stats {
        Stats {
            str: self.str + o.str,
            dex: self.dex + o.dex,
            int: self.int + o.int,
            luk: self.luk + o.luk,
            max_hp: self.max_hp + o.max_hp,
            max_mp: self.max_mp + o.max_mp,
            attack_power: self.attack_power + o.attack_power,
            magic_power: self.magic_power + o.magic_power,
            armor: self.armor + o.armor,
            speed: self.speed + o.speed,
            jump: self.jump + o.jump,
            boss_damage: self.boss_damage + o.boss_damage,
            ignore_monster_armor: self.ignore_monster_armor + o.ignore_monster_armor,
            all_stat: self.all_stat + o.all_stat,
            damage: self.damage + o.damage,
            equipment_level_decrease: self.equipment_level_decrease + o.equipment_level_decrease,
            max_hp_rate: self.max_hp_rate + o.max_hp_rate,
            max_mp_rate: self.max_mp_rate + o.max_mp_rate,
        }
    }
}
