//! Flames: the bonus lines of `item_add_option`.
//!
//! Contract: [`roll_flames`] rolls no line for items without flames, exactly 4 distinct lines for boss-drop
//! items and 1–4 for other flame-able ones, each a kind drawn without replacement from weights that favour
//! the class's main stat (weapons can also roll boss damage and damage); a line's strength rises with the
//! gear tier. The result is the sum of the lines as [`Stats`].

use crate::sim::catalog::{Class, Flames, Kind, Stat, Stats};
use crate::sim::rng::SplitMix64;

/// Flame kinds; each adds one line to `item_add_option`.
#[derive(Clone, Copy, PartialEq)]
enum Flame {
    Single(Stat),
    Double(Stat, Stat),
    Hp,
    Mp,
    Attack,
    Magic,
    Armor,
    Speed,
    Jump,
    AllStat,
    Boss,
    Damage,
    LevelDown,
}

pub(super) fn roll_flames(
    flames: Flames,
    kind: Kind,
    level: i64,
    c: &Class,
    base: &Stats,
    tier: f64,
    r: &mut SplitMix64,
) -> Stats {
    let lines = match flames {
        Flames::None => return Stats::default(),
        Flames::Boss => 4,
        Flames::Normal => r.range(1, 4),
    };
    let other = |s: Stat| {
        Stat::ALL
            .into_iter()
            .find(|x| *x != c.main && *x != s)
            .unwrap_or(s)
    };
    // Weighted candidates: players keep flames that help their main stat.
    let mut cands: Vec<(Flame, u64)> = vec![
        (Flame::Single(c.main), 5),
        (Flame::Single(c.sub), 1),
        (Flame::Double(c.main, c.sub), 4),
        (Flame::Double(c.main, other(c.sub)), 2),
        (Flame::Double(c.sub, other(c.main)), 1),
        (Flame::Hp, 1),
        (Flame::Mp, 1),
        (
            if c.magic() {
                Flame::Magic
            } else {
                Flame::Attack
            },
            3,
        ),
        (
            if c.magic() {
                Flame::Attack
            } else {
                Flame::Magic
            },
            1,
        ),
        (Flame::Armor, 1),
        (Flame::Speed, 1),
        (Flame::Jump, 1),
        (Flame::AllStat, 4),
        (Flame::LevelDown, 1),
    ];
    if kind == Kind::Weapon {
        cands.push((Flame::Boss, 5));
        cands.push((Flame::Damage, 3));
    }
    let mut out = Stats::default();
    for _ in 0..lines {
        let total: u64 = cands.iter().map(|c| c.1).sum();
        let mut u = r.below(total);
        let idx = cands
            .iter()
            .position(|(_, w)| {
                if u < *w {
                    true
                } else {
                    u -= w;
                    false
                }
            })
            .unwrap_or(0);
        let (f, _) = cands.remove(idx);
        let lo = if flames == Flames::Boss { 3 } else { 1 };
        let t = (lo + (tier * 3.0) as i64 + r.range(-1, 1)).clamp(lo, 7);
        match f {
            Flame::Single(s) => *out.stat_mut(s) += (level / 20 + 1) * t,
            Flame::Double(a, b) => {
                *out.stat_mut(a) += (level / 40 + 1) * t;
                *out.stat_mut(b) += (level / 40 + 1) * t;
            }
            Flame::Hp => out.max_hp += level * 3 * t,
            Flame::Mp => out.max_mp += level * 3 * t,
            Flame::Attack | Flame::Magic => {
                let v = if kind == Kind::Weapon {
                    let b = if f == Flame::Magic && c.magic() {
                        base.magic_power
                    } else {
                        base.attack_power
                    };
                    b * t * 3 / 100 + t
                } else {
                    t
                };
                if f == Flame::Attack {
                    out.attack_power += v;
                } else {
                    out.magic_power += v;
                }
            }
            Flame::Armor => out.armor += (level / 20 + 1) * t,
            Flame::Speed => out.speed += t,
            Flame::Jump => out.jump += t,
            Flame::AllStat => out.all_stat += t,
            Flame::Boss => out.boss_damage += 2 * t,
            Flame::Damage => out.damage += t,
            Flame::LevelDown => out.equipment_level_decrease += 5 * t,
        }
    }
    out
}
