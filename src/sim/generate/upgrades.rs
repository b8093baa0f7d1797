//! What enhancements add to an item's stats: star force, scroll-based stars, and scroll upgrades.
//!
//! Contract: [`starforce_stats`] and [`scroll_star_stats`] are pure functions of the star count, the class,
//! the item's kind, base stats and level (zero stars add nothing); [`scroll_stats`] applies `n` scroll
//! upgrades suited to the item's kind, drawing some amounts from the caller's stream. Numbers are
//! plausible, not the game's exact formulas.

use crate::sim::catalog::{Class, Kind, Stats};
use crate::sim::rng::SplitMix64;

/// Star-force stat bonus above 15 stars, per star, by level.
pub(super) fn star_stat_step(level: i64) -> i64 {
    match level {
        ..=139 => 7,
        140..=149 => 9,
        150..=159 => 11,
        160..=199 => 13,
        200..=249 => 15,
        _ => 17,
    }
}

pub(super) fn star_attack_base(level: i64) -> i64 {
    match level {
        ..=149 => 8,
        150..=159 => 9,
        160..=199 => 10,
        200..=249 => 12,
        _ => 14,
    }
}

pub(super) fn starforce_stats(
    stars: i64,
    kind: Kind,
    c: &Class,
    base: &Stats,
    level: i64,
) -> Stats {
    if stars == 0 {
        return Stats::default();
    }
    let stat = 2 * stars.min(5)
        + 3 * (stars - 5).clamp(0, 10)
        + star_stat_step(level) * (stars - 15).clamp(0, 7);
    let over = (stars - 15).clamp(0, 7);
    let mut atk: i64 = (0..over).map(|k| star_attack_base(level) + k).sum();
    if kind == Kind::Gloves {
        atk += [5, 7, 9, 11, 13, 14, 15]
            .iter()
            .filter(|&&s| s <= stars)
            .count() as i64;
    }
    let mut out = Stats {
        max_hp: 17 * stars.min(15),
        armor: base.armor * 2 * stars.min(22) / 15,
        ..Stats::default().job_stats(c, stat)
    };
    if kind == Kind::Weapon {
        let compound = |b: i64| (b as f64 * (1.02f64.powi(stars.min(15) as i32) - 1.0)) as i64;
        out.attack_power = compound(base.attack_power) + (star_attack_base(level) + 4) * over;
        out.magic_power = compound(base.magic_power) + (star_attack_base(level) + 7) * over;
        if !c.magic() {
            out.magic_power = 0;
        }
        out.max_mp = out.max_hp;
    } else {
        out.attack_power = atk;
        out.magic_power = atk;
    }
    if kind == Kind::Shoes && stars > 15 {
        out.speed = 2 * over + 4;
        out.jump = 2 * over + 4;
    }
    out
}

pub(super) fn scroll_star_stats(stars: i64, c: &Class, level: i64) -> Stats {
    Stats {
        armor: stars * (level / 10),
        ..Stats::default()
            .all4(stars * (level / 50 + 1))
            .job_attack(c, stars * (level / 40 + 1))
    }
}

pub(super) fn scroll_stats(n: i64, kind: Kind, c: &Class, r: &mut SplitMix64) -> Stats {
    let mut s = Stats::default();
    for _ in 0..n {
        match kind {
            Kind::Weapon => {
                *s.stat_mut(c.main) += 4;
                s = s.job_attack(
                    c,
                    if c.magic() {
                        s.magic_power
                    } else {
                        s.attack_power
                    } + 9,
                );
            }
            Kind::Gloves => {
                s = s.job_attack(
                    c,
                    if c.magic() {
                        s.magic_power
                    } else {
                        s.attack_power
                    } + 4,
                )
            }
            Kind::Heart => {
                s = s.all4(s.str + 3);
                s.attack_power += 2;
                s.magic_power += r.range(2, 9);
            }
            k if k.is_accessory() || k == Kind::Belt => {
                *s.stat_mut(c.main) += r.range(2, 4);
                s = s.job_attack(
                    c,
                    if c.magic() {
                        s.magic_power
                    } else {
                        s.attack_power
                    } + r.range(1, 3),
                );
            }
            _ => {
                *s.stat_mut(c.main) += r.range(3, 9);
                s.max_hp += r.range(0, 150);
                s.armor += r.range(1, 15);
            }
        }
    }
    s
}
