//! Flames: expected powerful and eternal flames to reach at least the item's current flame score.
//!
//! Contract (armor and accessories that take flames; weapons are `weapon_flames_unsupported`, see ADR 0002):
//! - Score in main-stat equivalents: main stat × 1, sub stat × 0.1, all stat % × 10, attack (or magic, by the
//!   character's attack type) × 4; every other flame line 0. Internally in tenths, so all arithmetic is integer.
//! - One flame: boss drops ([`super::boss_drops`]) roll exactly 4 distinct line types, other items 1/2/3/4 lines
//!   with probabilities [`NON_BOSS_LINE_COUNTS`] (40/40/16/4 %); types are drawn uniformly without replacement
//!   from the 19-type armor pool ([`ARMOR_POOL`]); each line draws a stage independently ([`stages`]). Values per
//!   stage: single stat `(min(⌊L/20⌋, SINGLE_STAT_BRACKET_CAP)+1)·stage` (a level-250 item gets 12, like 220–239),
//!   dual stat `(⌊L/40⌋+1)·stage` to each of its two stats, all stat % = stage, attack/magic = stage.
//! - The score distribution is exact: a subset-size dynamic programme over the pool types that score (at most 9
//!   for any character), with the non-scoring types accounted for combinatorially (`C(zero, k − j) / C(19, k)`).
//!   `p = P(score ≥ current)`, expected flames `1/p`; `p = 0` → that flame kind is `unreachable`.
//! - A distribution depends only on (single-stat bracket, ⌊L/40⌋, boss, kind, profile), so [`FlameMemo`] computes
//!   each once and answers every item of that shape from a suffix-sum table. Distributions are also kept in a bounded
//!   process-wide memo ([`SHARED_MEMO_CAPACITY`]): memoising a pure function, it changes no result, and it removes
//!   the dominant cost of `compute` for every character after the first with the same level brackets.
//!
//! Why exact and memoised: a character has ~20 flammable items × 3 presets × 2 kinds; a distribution takes tens of
//! microseconds, a lookup nanoseconds. Rules and their sources: `docs/expectation.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::Serialize;

use super::block::{Block, Unavailable};
use super::boss_drops::is_boss_drop;
use super::character::{Profile, stat_of};
use super::model::{Item, ItemOption};
use super::types::{AttackType, MainStat};

/// Flame kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlameKind {
    Powerful,
    Eternal,
}

/// `(stage, probability)` by kind and boss-drop status.
pub fn stages(kind: FlameKind, boss: bool) -> &'static [(u32, f64)] {
    match (kind, boss) {
        (FlameKind::Powerful, true) => &[(3, 0.20), (4, 0.30), (5, 0.36), (6, 0.14)],
        (FlameKind::Powerful, false) => &[(1, 0.20), (2, 0.30), (3, 0.36), (4, 0.14)],
        (FlameKind::Eternal, true) => &[(4, 0.29), (5, 0.45), (6, 0.25), (7, 0.01)],
        (FlameKind::Eternal, false) => &[(2, 0.29), (3, 0.45), (4, 0.25), (5, 0.01)],
    }
}

/// One flame line type of the armor pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlameLine {
    Single(MainStat),
    Dual(MainStat, MainStat),
    MaxHp,
    MaxMp,
    LevelReduction,
    Defence,
    Attack,
    Magic,
    Speed,
    Jump,
    AllStatPct,
}

use MainStat::{Dex, Int, Luk, Str};

/// The armor flame pool: 19 types.
pub const ARMOR_POOL: [FlameLine; 19] = [
    FlameLine::Single(Str),
    FlameLine::Single(Dex),
    FlameLine::Single(Int),
    FlameLine::Single(Luk),
    FlameLine::Dual(Str, Dex),
    FlameLine::Dual(Str, Int),
    FlameLine::Dual(Str, Luk),
    FlameLine::Dual(Dex, Int),
    FlameLine::Dual(Dex, Luk),
    FlameLine::Dual(Int, Luk),
    FlameLine::MaxHp,
    FlameLine::MaxMp,
    FlameLine::LevelReduction,
    FlameLine::Defence,
    FlameLine::Attack,
    FlameLine::Magic,
    FlameLine::Speed,
    FlameLine::Jump,
    FlameLine::AllStatPct,
];

/// Slot names (`item_equipment_slot`) whose items take armor flames.
pub const FLAMMABLE_SLOTS: &[&str] = &[
    "모자",
    "상의",
    "하의",
    "한벌옷",
    "신발",
    "장갑",
    "망토",
    "벨트",
    "펜던트",
    "펜던트2",
    "귀고리",
    "얼굴장식",
    "눈장식",
    "포켓 아이템",
];

/// The single-stat bracket `⌊L/20⌋` stops here: items of level 220 and above get `11 + 1 = 12` per stage (a
/// level-250 item is not 13). Every level-250 item of the real samples is consistent with 12 and most cannot be
/// built with 13.
pub const SINGLE_STAT_BRACKET_CAP: i64 = 11;

/// Lines per flame on a non-boss item: `(count, probability)` from Nexon's additional-option probability page
/// (환생의 불꽃류 40 / 40 / 16 / 4 %).
pub const NON_BOSS_LINE_COUNTS: [(usize, f64); 4] = [(1, 0.40), (2, 0.40), (3, 0.16), (4, 0.04)];

/// The single-stat bracket of a level (`min(⌊L/20⌋, cap)`).
pub fn single_stat_bracket(level: i64) -> i64 {
    (level.max(0) / 20).min(SINGLE_STAT_BRACKET_CAP)
}

/// Score weights in tenths of a main-stat point.
const MAIN: u32 = 10;
const SUB: u32 = 1;
const ALL_STAT_PCT: u32 = 100;
const ATTACK: u32 = 40;

fn stat_weight(s: MainStat, p: &Profile) -> u32 {
    if Some(s) == p.main_stat {
        MAIN
    } else if Some(s) == p.sub_stat {
        SUB
    } else {
        0
    }
}

/// Score per stage of a line type, in tenths.
pub fn line_weight(line: FlameLine, level: i64, p: &Profile) -> u32 {
    let single = (single_stat_bracket(level) + 1) as u32;
    let dual = (level.max(0) / 40 + 1) as u32;
    match line {
        FlameLine::Single(s) => single * stat_weight(s, p),
        FlameLine::Dual(x, y) => dual * (stat_weight(x, p) + stat_weight(y, p)),
        FlameLine::AllStatPct => ALL_STAT_PCT,
        FlameLine::Attack if p.attack_type == AttackType::Attack => ATTACK,
        FlameLine::Magic if p.attack_type == AttackType::Magic => ATTACK,
        _ => 0,
    }
}

/// The item's current flame score in tenths (negative fields count as 0).
pub fn score_tenths(add: &ItemOption, p: &Profile) -> u64 {
    let v = |x: i64| x.max(0) as u64;
    // Saturating: the engine only scores items within `MAX_FLAME_STAT`, but this is public and total.
    let stats = MainStat::ALL.iter().fold(0u64, |acc, &s| {
        acc.saturating_add(v(stat_of(add, s)).saturating_mul(u64::from(stat_weight(s, p))))
    });
    let attack = match p.attack_type {
        AttackType::Attack => ItemOption::get(&add.attack_power),
        AttackType::Magic => ItemOption::get(&add.magic_power),
    };
    stats
        .saturating_add(v(ItemOption::get(&add.all_stat)).saturating_mul(u64::from(ALL_STAT_PCT)))
        .saturating_add(v(attack).saturating_mul(u64::from(ATTACK)))
}

/// `C(n, k)` as a float (small arguments).
fn choose(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The exact PMF of one flame's score (in tenths) for an item of this level and boss status; see the module
/// contract for the model. Index = score.
pub fn score_pmf(level: i64, boss: bool, kind: FlameKind, p: &Profile) -> Vec<f64> {
    let mut weights: Vec<u32> = ARMOR_POOL
        .iter()
        .map(|&l| line_weight(l, level, p))
        .filter(|&w| w > 0)
        .collect();
    // Small weights first keeps the occupied prefix of every row short for as long as possible.
    weights.sort_unstable();
    let zero = ARMOR_POOL.len() - weights.len();
    let st = stages(kind, boss);
    let max_stage = st.iter().map(|s| s.0).max().unwrap_or(0);
    let mut top = weights.clone();
    top.sort_unstable_by(|a, b| b.cmp(a));
    let size = top.iter().take(4).sum::<u32>() as usize * max_stage as usize + 1;

    // g[j][score]: Σ over j-subsets of scoring types of the convolution of their stage PMFs.
    // `used[j]`: every non-zero cell of g[j] lies below it.
    let mut g = vec![vec![0.0f64; size]; 5];
    let mut used = [1usize, 0, 0, 0, 0];
    g[0][0] = 1.0;
    for &w in &weights {
        for j in (0..4).rev() {
            if used[j] == 0 {
                continue;
            }
            let (lo, hi) = g.split_at_mut(j + 1);
            let (src, dst) = (&lo[j][..used[j]], &mut hi[0]);
            for (idx, &m) in src.iter().enumerate() {
                if m == 0.0 {
                    continue;
                }
                for &(stage, q) in st {
                    dst[idx + (w * stage) as usize] += m * q;
                }
            }
            used[j + 1] = used[j + 1].max(used[j] + (w * max_stage) as usize);
        }
    }
    let counts: &[(usize, f64)] = if boss {
        &[(4, 1.0)]
    } else {
        &NON_BOSS_LINE_COUNTS
    };
    let mut pmf = vec![0.0f64; size];
    for &(k, pk) in counts {
        let all = choose(ARMOR_POOL.len(), k);
        for (j, row) in g.iter().enumerate().take(k + 1) {
            let coef = pk * choose(zero, k - j) / all;
            if coef == 0.0 {
                continue;
            }
            for (cell, &m) in pmf.iter_mut().zip(&row[..used[j].min(size)]) {
                *cell += coef * m;
            }
        }
    }
    pmf
}

/// The score distribution of one flame, as `P(score ≥ t)` for every `t`.
#[derive(Clone, Debug, PartialEq)]
pub struct FlameDistribution {
    /// `tail[t] = P(score ≥ t)`; `P(score ≥ t) = 0` beyond the end.
    tail: Vec<f64>,
}

impl FlameDistribution {
    /// Computes the exact distribution for an item of this level and boss status.
    pub fn new(level: i64, boss: bool, kind: FlameKind, p: &Profile) -> FlameDistribution {
        let pmf = score_pmf(level, boss, kind, p);
        let mut tail = vec![0.0f64; pmf.len() + 1];
        for t in (0..pmf.len()).rev() {
            tail[t] = tail[t + 1] + pmf[t];
        }
        for x in &mut tail {
            *x = x.clamp(0.0, 1.0);
        }
        FlameDistribution { tail }
    }

    /// `P(score ≥ t)` (t in tenths).
    pub fn at_least(&self, t: u64) -> f64 {
        usize::try_from(t)
            .ok()
            .and_then(|t| self.tail.get(t).copied())
            .unwrap_or(0.0)
    }
}

/// What a distribution depends on: the per-stage values (through the single-stat bracket and ⌊L/40⌋), boss
/// status, kind, profile.
type MemoKey = (i64, i64, bool, FlameKind, Profile);

/// Most distributions the process-wide memo keeps (each is a few thousand `f64`s, ≤ ~25 KB).
pub const SHARED_MEMO_CAPACITY: usize = 512;

fn shared_memo() -> &'static Mutex<HashMap<MemoKey, Arc<FlameDistribution>>> {
    static MEMO: OnceLock<Mutex<HashMap<MemoKey, Arc<FlameDistribution>>>> = OnceLock::new();
    MEMO.get_or_init(Default::default)
}

/// Distributions used during one compute call, backed by a process-wide memo.
///
/// A distribution is a pure function of its key (level brackets, boss, kind, profile), so sharing it across calls and threads changes no
/// result; the process-wide memo stops growing at [`SHARED_MEMO_CAPACITY`] entries (further shapes are computed
/// per call). Keys in practice: a handful of level brackets × boss status × 2 kinds × the profiles seen.
#[derive(Default)]
pub struct FlameMemo {
    entries: Vec<(MemoKey, Arc<FlameDistribution>)>,
}

impl FlameMemo {
    pub fn get(
        &mut self,
        level: i64,
        boss: bool,
        kind: FlameKind,
        p: &Profile,
    ) -> &FlameDistribution {
        let key = (
            single_stat_bracket(level),
            level.max(0) / 40,
            boss,
            kind,
            *p,
        );
        let pos = match self.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let lock = || shared_memo().lock().unwrap_or_else(PoisonError::into_inner);
                let known = lock().get(&key).cloned();
                let dist = known.unwrap_or_else(|| {
                    let d = Arc::new(FlameDistribution::new(level, boss, kind, p));
                    let mut memo = lock();
                    if memo.len() < SHARED_MEMO_CAPACITY {
                        memo.entry(key).or_insert_with(|| Arc::clone(&d));
                    }
                    d
                });
                self.entries.push((key, dist));
                self.entries.len() - 1
            }
        };
        &self.entries[pos].1
    }
}

/// Chance and expected count for one flame kind.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FlameOdds {
    pub probability: f64,
    pub expected_flames: f64,
}

/// One flame block's result.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FlameResult {
    /// Current flame score in main-stat equivalents.
    pub score: f64,
    pub boss_drop: bool,
    pub level: i64,
    pub powerful: Block<FlameOdds>,
    pub eternal: Block<FlameOdds>,
}

fn has_any_flame(a: &ItemOption) -> bool {
    [
        &a.str,
        &a.dex,
        &a.int,
        &a.luk,
        &a.max_hp,
        &a.max_mp,
        &a.attack_power,
        &a.magic_power,
        &a.armor,
        &a.speed,
        &a.jump,
        &a.boss_damage,
        &a.damage,
        &a.all_stat,
        &a.ignore_monster_armor,
    ]
    .into_iter()
    .any(|v| ItemOption::get(v) != 0)
        || a.equipment_level_decrease.unwrap_or(0) != 0
}

/// The flame block of one item.
pub fn evaluate(item: &Item, profile: &Profile, memo: &mut FlameMemo) -> Block<FlameResult> {
    let slot = item
        .item_equipment_slot
        .as_deref()
        .map(str::trim)
        .unwrap_or("");
    if slot == "무기" {
        return Block::unavailable(Unavailable::WeaponFlamesUnsupported);
    }
    let flamed = item.item_add_option.as_ref().is_some_and(has_any_flame);
    if !FLAMMABLE_SLOTS.contains(&slot) {
        return if flamed {
            Block::unavailable_because(Unavailable::FlamesUnattributed, slot.to_owned())
        } else {
            Block::unavailable(Unavailable::NotFlammable)
        };
    }
    if profile.main_stat.is_none() {
        return Block::unavailable(Unavailable::NoMainStat);
    }
    let score = item
        .item_add_option
        .as_ref()
        .map(|a| score_tenths(a, profile))
        .unwrap_or(0);
    if score == 0 {
        return Block::unavailable(Unavailable::NoFlameScore);
    }
    let level = item.base_level();
    let boss = is_boss_drop(item.item_name.as_deref().unwrap_or(""));
    let mut odds = |kind| {
        let p = memo.get(level, boss, kind, profile).at_least(score);
        if p > 0.0 {
            Block::Available(FlameOdds {
                probability: p,
                expected_flames: 1.0 / p,
            })
        } else {
            Block::unavailable(Unavailable::Unreachable)
        }
    };
    let powerful = odds(FlameKind::Powerful);
    let eternal = odds(FlameKind::Eternal);
    if powerful.available().is_none() && eternal.available().is_none() {
        return Block::unavailable(Unavailable::Unreachable);
    }
    Block::Available(FlameResult {
        score: score as f64 / 10.0,
        boss_drop: boss,
        level,
        powerful,
        eternal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectation::model::StrNum;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

    fn mage() -> Profile {
        Profile::fixed(Some(Int), AttackType::Magic)
    }

    #[test]
    fn weights_follow_the_documented_values() {
        let p = mage();
        // L = 200: single 11 per stage, dual 6 per stage.
        assert_eq!(line_weight(FlameLine::Single(Int), 200, &p), 110);
        assert_eq!(line_weight(FlameLine::Single(Luk), 200, &p), 11);
        assert_eq!(line_weight(FlameLine::Single(Str), 200, &p), 0);
        assert_eq!(line_weight(FlameLine::Dual(Int, Luk), 200, &p), 66);
        assert_eq!(line_weight(FlameLine::Dual(Str, Int), 200, &p), 60);
        assert_eq!(line_weight(FlameLine::Dual(Str, Dex), 200, &p), 0);
        assert_eq!(line_weight(FlameLine::AllStatPct, 200, &p), 100);
        assert_eq!(line_weight(FlameLine::Magic, 200, &p), 40);
        assert_eq!(line_weight(FlameLine::Attack, 200, &p), 0);
        let add = ItemOption {
            int: Some(StrNum(130)),
            luk: Some(StrNum(42)),
            dex: Some(StrNum(28)),
            all_stat: Some(StrNum(5)),
            magic_power: Some(StrNum(2)),
            attack_power: Some(StrNum(9)),
            ..Default::default()
        };
        // 130 + 4.2 + 50 + 8 = 192.2
        assert_eq!(score_tenths(&add, &p), 1922);
    }

    #[test]
    fn level_250_items_get_12_per_stage_like_level_220_to_239() {
        let p = mage();
        assert_eq!(line_weight(FlameLine::Single(Int), 250, &p), 120);
        assert_eq!(line_weight(FlameLine::Single(Int), 240, &p), 120);
        assert_eq!(line_weight(FlameLine::Single(Int), 220, &p), 120);
        assert_eq!(line_weight(FlameLine::Single(Int), 219, &p), 110);
        assert_eq!(line_weight(FlameLine::Dual(Int, Luk), 250, &p), 77);
        assert_eq!(
            score_pmf(250, true, FlameKind::Eternal, &p),
            score_pmf(240, true, FlameKind::Eternal, &p)
        );
    }

    /// The exact PMF against a brute-force enumeration written here: every line count (40/40/16/4 %), every
    /// subset of the 19 types, every stage tuple, with the level-250 per-stage values spelled out (single 12,
    /// dual 7) for an INT mage (sub stat LUK).
    #[test]
    fn the_pmf_matches_a_brute_force_enumeration_at_level_250() {
        let weight = |line: FlameLine| -> u64 {
            let stat = |s: MainStat| match s {
                Int => 10,
                Luk => 1,
                _ => 0,
            };
            match line {
                FlameLine::Single(s) => 12 * stat(s),
                FlameLine::Dual(a, b) => 7 * (stat(a) + stat(b)),
                FlameLine::AllStatPct => 100,
                FlameLine::Magic => 40,
                _ => 0,
            }
        };
        let stage_table = [(1u64, 0.20), (2, 0.30), (3, 0.36), (4, 0.14)];
        let counts = [(1usize, 0.40), (2, 0.40), (3, 0.16), (4, 0.04)];
        let mut expected: HashMap<u64, f64> = HashMap::new();
        fn subsets(
            n: usize,
            k: usize,
            start: usize,
            cur: &mut Vec<usize>,
            out: &mut Vec<Vec<usize>>,
        ) {
            if cur.len() == k {
                out.push(cur.clone());
                return;
            }
            for i in start..n {
                cur.push(i);
                subsets(n, k, i + 1, cur, out);
                cur.pop();
            }
        }
        for (k, pk) in counts {
            let mut all = Vec::new();
            subsets(19, k, 0, &mut Vec::new(), &mut all);
            let per_subset = pk / all.len() as f64;
            for subset in &all {
                for code in 0..4usize.pow(k as u32) {
                    let (mut score, mut prob, mut c) = (0u64, per_subset, code);
                    for &i in subset {
                        let (stage, q) = stage_table[c % 4];
                        c /= 4;
                        score += weight(ARMOR_POOL[i]) * stage;
                        prob *= q;
                    }
                    *expected.entry(score).or_default() += prob;
                }
            }
        }
        let pmf = score_pmf(250, false, FlameKind::Powerful, &mage());
        for (t, &m) in pmf.iter().enumerate() {
            let e = expected.get(&(t as u64)).copied().unwrap_or(0.0);
            assert!(
                (m - e).abs() < 1e-12,
                "score {t}: engine {m}, enumeration {e}"
            );
        }
        assert!(expected.keys().all(|&t| (t as usize) < pmf.len()));
    }

    #[test]
    fn distributions_have_mass_one() {
        for boss in [false, true] {
            for kind in [FlameKind::Powerful, FlameKind::Eternal] {
                for level in [0, 75, 140, 200, 250] {
                    let pmf = score_pmf(level, boss, kind, &mage());
                    let total: f64 = pmf.iter().sum();
                    assert!((total - 1.0).abs() < 1e-12, "{total}");
                    assert!(pmf.iter().all(|&m| m >= 0.0));
                    let d = FlameDistribution::new(level, boss, kind, &mage());
                    assert!((d.at_least(0) - 1.0).abs() < 1e-12);
                    assert_eq!(d.at_least(pmf.len() as u64), 0.0);
                }
            }
        }
    }

    /// Simulates flames by drawing line types and stages, and compares `P(score ≥ t)` with the exact value.
    #[test]
    fn monte_carlo_agrees_with_the_exact_distribution() {
        let p = mage();
        let mut rng = StdRng::seed_from_u64(7);
        for (level, boss, kind, upper) in [
            (200, true, FlameKind::Powerful, 0.3),
            (160, false, FlameKind::Eternal, 0.05),
            (250, true, FlameKind::Eternal, 0.6),
            (250, false, FlameKind::Powerful, 0.1),
        ] {
            let d = FlameDistribution::new(level, boss, kind, &p);
            // The first score whose tail falls to `upper` or below: a threshold with a testable probability.
            let t = (0..).find(|&t| d.at_least(t) <= upper).unwrap();
            let exact = d.at_least(t);
            let st = stages(kind, boss);
            let n = 200_000u32;
            let mut hits = 0u32;
            let mut pool = ARMOR_POOL;
            for _ in 0..n {
                // 40 / 40 / 16 / 4 % for 1..=4 lines, written out here independently of the constant.
                let k = if boss {
                    4
                } else {
                    let u: f64 = rng.random();
                    if u < 0.4 {
                        1
                    } else if u < 0.8 {
                        2
                    } else if u < 0.96 {
                        3
                    } else {
                        4
                    }
                };
                pool.shuffle(&mut rng);
                let mut score = 0u64;
                for &line in &pool[..k] {
                    let mut u: f64 = rng.random();
                    let mut stage = st[st.len() - 1].0;
                    for &(s, q) in st {
                        if u < q {
                            stage = s;
                            break;
                        }
                        u -= q;
                    }
                    score += u64::from(line_weight(line, level, &p) * stage);
                }
                if score >= t {
                    hits += 1;
                }
            }
            let freq = f64::from(hits) / f64::from(n);
            let se = (exact * (1.0 - exact) / f64::from(n)).sqrt();
            assert!(exact > 0.001 && exact < 0.999, "{exact}");
            assert!(
                (freq - exact).abs() <= 3.0 * se,
                "sim {freq} exact {exact} se {se}"
            );
        }
    }

    #[test]
    fn the_memo_answers_like_a_fresh_computation() {
        let p = mage();
        let mut memo = FlameMemo::default();
        for (level, boss, kind) in [
            (200, true, FlameKind::Eternal),
            (219, true, FlameKind::Eternal),
            (220, true, FlameKind::Eternal),
            (200, false, FlameKind::Eternal),
            (200, true, FlameKind::Powerful),
        ] {
            let fresh = FlameDistribution::new(level, boss, kind, &p);
            for t in [0, 500, 1000, 1500, 2000] {
                assert_eq!(
                    memo.get(level, boss, kind, &p).at_least(t),
                    fresh.at_least(t)
                );
            }
        }
        // 200 and 220 are different brackets: the distributions differ.
        let a = FlameDistribution::new(200, true, FlameKind::Eternal, &p);
        let b = FlameDistribution::new(220, true, FlameKind::Eternal, &p);
        assert!((0..2000).any(|t| a.at_least(t) != b.at_least(t)));
    }

    fn item(slot: &str, name: &str, level: i64, add: ItemOption) -> Item {
        Item {
            item_equipment_slot: Some(slot.into()),
            item_name: Some(name.into()),
            item_base_option: Some(ItemOption {
                base_equipment_level: Some(level),
                ..Default::default()
            }),
            item_add_option: Some(add),
            ..Default::default()
        }
    }

    #[test]
    fn blocks_and_reasons() {
        let p = mage();
        let mut memo = FlameMemo::default();
        let add = ItemOption {
            int: Some(StrNum(72)),
            str: Some(StrNum(24)),
            magic_power: Some(StrNum(5)),
            all_stat: Some(StrNum(5)),
            ..Default::default()
        };
        let pendant = item("펜던트", "도미네이터 펜던트", 140, add.clone());
        let r = evaluate(&pendant, &p, &mut memo);
        let r = r.available().unwrap();
        assert!(r.boss_drop);
        assert_eq!(r.score, 142.0);
        let pw = r.powerful.available().unwrap();
        let et = r.eternal.available().unwrap();
        assert!(et.probability > pw.probability);
        assert!((pw.expected_flames * pw.probability - 1.0).abs() < 1e-12);

        let weapon = item("무기", "제네시스 스태프", 200, add.clone());
        assert_eq!(
            evaluate(&weapon, &p, &mut memo).reason(),
            Some(Unavailable::WeaponFlamesUnsupported)
        );
        let ring = item("반지1", "x", 200, ItemOption::default());
        assert_eq!(
            evaluate(&ring, &p, &mut memo).reason(),
            Some(Unavailable::NotFlammable)
        );
        let odd = item("어깨장식", "x", 200, add.clone());
        assert_eq!(
            evaluate(&odd, &p, &mut memo).reason(),
            Some(Unavailable::FlamesUnattributed)
        );
        let jump_only = item(
            "펜던트2",
            "그리드 펜던트",
            75,
            ItemOption {
                jump: Some(StrNum(2)),
                ..Default::default()
            },
        );
        assert_eq!(
            evaluate(&jump_only, &p, &mut memo).reason(),
            Some(Unavailable::NoFlameScore)
        );
        let nobody = Profile::fixed(None, AttackType::Attack);
        assert_eq!(
            evaluate(&pendant, &nobody, &mut memo).reason(),
            Some(Unavailable::NoMainStat)
        );
        let absurd = item(
            "모자",
            "x",
            100,
            ItemOption {
                int: Some(StrNum(10_000)),
                ..Default::default()
            },
        );
        assert_eq!(
            evaluate(&absurd, &p, &mut memo).reason(),
            Some(Unavailable::Unreachable)
        );
    }

    proptest! {
        #[test]
        fn expected_flames_grow_with_the_score(level in 0i64..300, boss in any::<bool>(), t in 0u64..3000, eternal in any::<bool>()) {
            let kind = if eternal { FlameKind::Eternal } else { FlameKind::Powerful };
            let d = FlameDistribution::new(level, boss, kind, &mage());
            let (a, b) = (d.at_least(t), d.at_least(t + 1));
            prop_assert!((0.0..=1.0).contains(&a));
            prop_assert!(b <= a);
        }
    }
}
