//! The simulator's own, clearly synthetic cube probability table, and line draws from it.
//!
//! Contract:
//! - [`synthetic_table_csv`] generates the table from the rules below; `data/sim-cube-table.csv` is that
//!   output checked in, embedded as [`SYNTHETIC_TABLE_CSV`], and a test fails when the two differ
//!   (regenerate with `SIM_WRITE_TABLE=1 cargo test --lib sim::table::tests::checked_in`, then
//!   rerun the tests without it).
//! - The CSV has the reference table's schema, `option,rate,slot,potential_option_grade,
//!   base_equipment_level,item_equipment_slot,cube_type`, with `cube_type` `BLACK` (potential) and
//!   `ADDITIONAL` (additional potential) rows. A group is `(cube_type, grade, base_equipment_level,
//!   item_equipment_slot, slot)`; every group's rates are six-decimal numbers summing to exactly
//!   1.000000 (an explicit remainder line such as `최대 HP +12%` absorbs rounding), and option texts are
//!   unique within a group.
//! - Groups exist for every grade × line slot 1..3 × cube type × `(item_equipment_slot, level)` of
//!   [`super::catalog::potential_combos`], i.e. for everything the generator can produce, and nothing else.
//! - [`CubeTable::draw`] picks one line of a group with exactly the group's rates (integer arithmetic on
//!   millionths), so the frequencies of generated lines converge to the table: the gateway's cube math can
//!   be checked against the simulator by Monte Carlo.
//!
//! Model (synthetic, not the game's data): line 1 draws from the grade's own lines; lines 2 and 3 draw the
//! grade's own lines with a small total mass (legendary 20 %, unique 25 %, epic 30 %) and otherwise the
//! grade below's core lines. Option values follow the real texts' format and rough magnitudes
//! (`INT +12%`, `보스 몬스터 데미지 +35%`, `스킬 재사용 대기시간 -2초`, `캐릭터 기준 9레벨 당 INT +2`, …),
//! one step higher for level-250 items. The real game's per-item caps (e.g. at most two cooldown lines)
//! are not modelled: lines are independent draws.
//!
//! Failure modes: [`CubeTable::parse`] rejects malformed CSV, unknown grades/cube types, bad rates and
//! groups not summing to 1 with a [`TableError`]; the embedded table is parsed once and checked by tests,
//! so [`table`] does not fail in practice (it panics only if the checked-in file is corrupted).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::catalog::{CubeType, Grade, Kind, Stat, potential_combos};
use super::rng::SplitMix64;

/// The checked-in synthetic table (see the module contract).
pub const SYNTHETIC_TABLE_CSV: &str = include_str!("../../data/sim-cube-table.csv");

/// Rates are stored in millionths; a group sums to exactly this.
pub const RATE_SCALE: u32 = 1_000_000;

/// The reference table's header.
pub const HEADER: &str =
    "option,rate,slot,potential_option_grade,base_equipment_level,item_equipment_slot,cube_type";

/// One group's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub cube: CubeType,
    pub grade: Grade,
    pub level: i64,
    pub part: String,
    pub slot: u8,
}

/// Why a table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cube table line {line}: {msg}")]
    Row { line: usize, msg: String },
    #[error("cube table group {0:?} sums to {1} millionths, not {RATE_SCALE}")]
    Sum(GroupKey, u64),
}

/// A parsed cube table: group → lines with rates in millionths, in file order.
#[derive(Debug, Default)]
pub struct CubeTable {
    groups: HashMap<GroupKey, Vec<(String, u32)>>,
    rows: usize,
}

impl CubeTable {
    /// Parses a table of the reference schema whose rates have at most six decimals and whose groups sum to
    /// exactly 1.
    pub fn parse(csv_text: &str) -> Result<Self, TableError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(csv_text.as_bytes());
        let header = rdr
            .headers()
            .map_err(|e| row_err(1, e.to_string()))?
            .iter()
            .collect::<Vec<_>>()
            .join(",");
        if header != HEADER {
            return Err(row_err(1, format!("header is {header:?}")));
        }
        let mut t = CubeTable::default();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| row_err(line, e.to_string()))?;
            if rec.len() != 7 {
                return Err(row_err(line, format!("{} fields", rec.len())));
            }
            let rate =
                parse_rate(&rec[1]).ok_or_else(|| row_err(line, format!("rate {:?}", &rec[1])))?;
            let slot: u8 = rec[2]
                .parse()
                .ok()
                .filter(|s| (1..=3).contains(s))
                .ok_or_else(|| row_err(line, format!("slot {:?}", &rec[2])))?;
            let grade = Grade::parse(&rec[3])
                .ok_or_else(|| row_err(line, format!("grade {:?}", &rec[3])))?;
            let level: i64 = rec[4]
                .parse()
                .map_err(|_| row_err(line, format!("level {:?}", &rec[4])))?;
            let cube = CubeType::parse(&rec[6])
                .ok_or_else(|| row_err(line, format!("cube_type {:?}", &rec[6])))?;
            if rec[0].is_empty() || rec[5].is_empty() {
                return Err(row_err(line, "empty option or part".into()));
            }
            let key = GroupKey {
                cube,
                grade,
                level,
                part: rec[5].to_string(),
                slot,
            };
            t.groups
                .entry(key)
                .or_default()
                .push((rec[0].to_string(), rate));
            t.rows += 1;
        }
        for (k, lines) in &t.groups {
            let sum: u64 = lines.iter().map(|l| l.1 as u64).sum();
            if sum != RATE_SCALE as u64 {
                return Err(TableError::Sum(k.clone(), sum));
            }
        }
        Ok(t)
    }

    /// The lines of one group, `None` when the table has no such group.
    pub fn group(&self, key: &GroupKey) -> Option<&[(String, u32)]> {
        self.groups.get(key).map(|v| v.as_slice())
    }

    /// All groups (unordered).
    pub fn groups(&self) -> impl Iterator<Item = (&GroupKey, &[(String, u32)])> {
        self.groups.iter().map(|(k, v)| (k, v.as_slice()))
    }

    pub fn row_count(&self) -> usize {
        self.rows
    }

    /// Draws one line of the group with the group's rates; `None` when the group does not exist.
    pub fn draw<'a>(&'a self, key: &GroupKey, rng: &mut SplitMix64) -> Option<&'a str> {
        let lines = self.groups.get(key)?;
        let mut u = rng.below(RATE_SCALE as u64) as u32;
        for (text, rate) in lines {
            if u < *rate {
                return Some(text);
            }
            u -= rate;
        }
        // Unreachable for a parsed table (rates sum to RATE_SCALE); stay total anyway.
        lines.last().map(|l| l.0.as_str())
    }
}

fn row_err(line: usize, msg: String) -> TableError {
    TableError::Row { line, msg }
}

/// `"0.047619"` → 47619; at most six decimals, value in [0, 1].
fn parse_rate(s: &str) -> Option<u32> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) || !matches!(int, "0" | "1") {
        return None;
    }
    let frac: u32 = format!("{frac:0<6}").parse().ok()?;
    let v = int.parse::<u32>().ok()? * RATE_SCALE + frac;
    (v <= RATE_SCALE).then_some(v)
}

fn format_rate(v: u32) -> String {
    format!("{}.{:06}", v / RATE_SCALE, v % RATE_SCALE)
}

/// The embedded table, parsed once.
pub fn table() -> &'static CubeTable {
    static T: OnceLock<CubeTable> = OnceLock::new();
    T.get_or_init(|| {
        CubeTable::parse(SYNTHETIC_TABLE_CSV).expect("data/sim-cube-table.csv is checked by tests")
    })
}

// ---------------------------------------------------------------------------------------------------------
// The rules that generate the table.

/// A candidate line and its relative weight within its set.
type Weighted = (String, u32);

/// Share (in millionths) of lines 2–3 that come from the grade's own lines.
fn own_mass(g: Grade) -> u32 {
    match g {
        Grade::Rare => RATE_SCALE,
        Grade::Epic => 300_000,
        Grade::Unique => 250_000,
        Grade::Legendary => 200_000,
    }
}

fn step(values: [i64; 4], g: Grade, hi: bool) -> i64 {
    values[g.index()] + hi as i64
}

fn stat_lines(v: i64, w: u32) -> Vec<Weighted> {
    Stat::ALL
        .iter()
        .map(|s| (format!("{} +{v}%", s.label()), w))
        .collect()
}

/// The grade's own lines and its remainder line (which also absorbs rounding in line 1).
fn own_lines(cube: CubeType, kind: Kind, g: Grade, hi: bool) -> (Vec<Weighted>, Weighted) {
    let mut v: Vec<Weighted> = Vec::new();
    let legendary = g == Grade::Legendary;
    match cube {
        CubeType::Black if kind.is_weapon_like() => {
            let p = step([3, 6, 9, 12], g, hi);
            v.push((format!("공격력 +{p}%"), 10));
            v.push((format!("마력 +{p}%"), 10));
            v.push((format!("데미지 +{p}%"), 8));
            match g {
                Grade::Rare => {}
                Grade::Legendary => {
                    v.push(("몬스터 방어율 무시 +35%".into(), 5));
                    v.push(("몬스터 방어율 무시 +40%".into(), 3));
                }
                _ => v.push((
                    format!("몬스터 방어율 무시 +{}%", [0, 15, 30, 0][g.index()]),
                    7,
                )),
            }
            if kind != Kind::Emblem && g >= Grade::Unique {
                if legendary {
                    v.push(("보스 몬스터 데미지 +35%".into(), 6));
                    v.push(("보스 몬스터 데미지 +40%".into(), 3));
                } else {
                    v.push(("보스 몬스터 데미지 +30%".into(), 7));
                }
            }
            let c = step([4, 8, 9, 12], g, hi);
            (v, (format!("크리티컬 확률 +{c}%"), 8))
        }
        CubeType::Black => {
            let s = step([3, 6, 9, 12], g, hi);
            v.extend(stat_lines(s, 10));
            if g >= Grade::Epic {
                v.push((format!("올스탯 +{}%", step([0, 3, 6, 9], g, hi)), 6));
            }
            if legendary {
                match kind {
                    Kind::Hat => {
                        v.push(("스킬 재사용 대기시간 -1초".into(), 6));
                        v.push(("스킬 재사용 대기시간 -2초".into(), 3));
                    }
                    Kind::Gloves => v.push(("크리티컬 데미지 +8%".into(), 6)),
                    k if k.is_accessory() => {
                        v.push(("메소 획득량 +20%".into(), 5));
                        v.push(("아이템 드롭률 +20%".into(), 5));
                    }
                    _ => {}
                }
            }
            (v, (format!("최대 HP +{s}%"), 10))
        }
        CubeType::Additional if kind.is_weapon_like() => {
            let p = step([3, 6, 9, 12], g, hi);
            v.push((format!("공격력 +{p}%"), 10));
            v.push((format!("마력 +{p}%"), 10));
            v.push((format!("데미지 +{p}%"), 8));
            if kind != Kind::Emblem && g >= Grade::Unique {
                v.push((
                    format!("보스 몬스터 데미지 +{}%", if legendary { 18 } else { 12 }),
                    5,
                ));
            }
            let f = step([10, 11, 12, 14], g, false) + 3 * hi as i64;
            v.push((format!("공격력 +{f}"), 4));
            v.push((format!("마력 +{f}"), 4));
            let c = step([2, 4, 6, 8], g, hi);
            (v, (format!("크리티컬 확률 +{c}%"), 8))
        }
        CubeType::Additional => {
            let s = step([2, 4, 6, 8], g, hi);
            v.extend(stat_lines(s, 8));
            let f = step([10, 11, 12, 14], g, false) + 3 * hi as i64;
            v.push((format!("공격력 +{f}"), 5));
            v.push((format!("마력 +{f}"), 5));
            if g >= Grade::Epic {
                v.push((format!("올스탯 +{}%", step([0, 2, 3, 5], g, hi)), 5));
            }
            if g >= Grade::Unique {
                let per = if legendary { 2 } else { 1 };
                for st in Stat::ALL {
                    v.push((format!("캐릭터 기준 9레벨 당 {} +{per}", st.label()), 4));
                }
            }
            if legendary {
                match kind {
                    Kind::Hat => v.push(("스킬 재사용 대기시간 -1초".into(), 3)),
                    Kind::Gloves => v.push(("크리티컬 데미지 +3%".into(), 3)),
                    _ => {}
                }
            }
            (v, (format!("최대 HP +{s}%"), 8))
        }
    }
}

/// The lower grade's core lines (lines 2–3 of a higher grade) and their remainder line.
fn core_lines(cube: CubeType, kind: Kind, g: Grade, hi: bool) -> (Vec<Weighted>, Weighted) {
    let (own, rem) = own_lines(cube, kind, g, hi);
    let keep = if kind.is_weapon_like() { 3 } else { 4 };
    (own.into_iter().take(keep).collect(), rem)
}

/// Spreads `mass` millionths over `lines` by weight (floors); returns the rates.
fn spread(lines: &[Weighted], mass: u32) -> Vec<(String, u32)> {
    let w: u64 = lines.iter().map(|l| l.1 as u64).sum();
    lines
        .iter()
        .map(|(t, wi)| (t.clone(), (mass as u64 * *wi as u64 / w) as u32))
        .collect()
}

/// One group's lines: exact rates summing to [`RATE_SCALE`], unique texts, remainder last.
fn group_lines(cube: CubeType, kind: Kind, g: Grade, hi: bool, slot: u8) -> Vec<(String, u32)> {
    let (own, own_rem) = own_lines(cube, kind, g, hi);
    let (mut lines, rem_text) = match g.lower().filter(|_| slot > 1) {
        None => {
            let mut all = own.clone();
            all.push(own_rem.clone());
            (spread(&all, RATE_SCALE), own_rem.0)
        }
        Some(lower) => {
            let mut mine = own.clone();
            mine.push(own_rem);
            let mut out = spread(&mine, own_mass(g));
            let (core, core_rem) = core_lines(cube, kind, lower, hi);
            let mut theirs = core;
            theirs.push(core_rem.clone());
            out.extend(spread(&theirs, RATE_SCALE - own_mass(g)));
            (out, core_rem.0)
        }
    };
    // Merge equal texts, then let the remainder line absorb the rounding.
    let mut merged: Vec<(String, u32)> = Vec::new();
    for (t, r) in lines.drain(..) {
        match merged.iter_mut().find(|m| m.0 == t) {
            Some(m) => m.1 += r,
            None => merged.push((t, r)),
        }
    }
    let pos = merged
        .iter()
        .position(|m| m.0 == rem_text)
        .expect("remainder is present");
    let rem = merged.remove(pos);
    let used: u32 = merged.iter().map(|m| m.1).sum();
    merged.push((rem.0, RATE_SCALE - used));
    merged
}

/// The synthetic table as CSV text (header + rows, `\n` line ends), sorted by cube type, part, level,
/// grade and slot.
pub fn synthetic_table_csv() -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let mut out = String::from(HEADER);
    out.push('\n');
    for cube in CubeType::ALL {
        for (part, level, kind) in potential_combos() {
            for g in Grade::ALL {
                for slot in 1..=3u8 {
                    for (text, rate) in group_lines(cube, kind, g, level >= 250, slot) {
                        w.write_record([
                            text.as_str(),
                            &format_rate(rate),
                            &slot.to_string(),
                            g.name(),
                            &level.to_string(),
                            part,
                            cube.name(),
                        ])
                        .expect("writing to memory");
                    }
                }
            }
        }
    }
    out.push_str(
        &String::from_utf8(w.into_inner().expect("writing to memory"))
            .expect("utf-8 in, utf-8 out"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::catalog::potential_combos;

    #[test]
    fn checked_in_table_equals_the_generator_output() {
        let generated = synthetic_table_csv();
        if std::env::var_os("SIM_WRITE_TABLE").is_some() {
            // The embedded copy is the one compiled in; the next build picks the new file up.
            std::fs::write("data/sim-cube-table.csv", &generated).unwrap();
            return;
        }
        assert!(
            generated == SYNTHETIC_TABLE_CSV,
            "data/sim-cube-table.csv is stale: run SIM_WRITE_TABLE=1 cargo test --lib sim::table"
        );
    }

    #[test]
    fn every_group_sums_to_exactly_one_and_has_unique_lines() {
        let t = table();
        assert!(t.row_count() > 0);
        for (k, lines) in t.groups() {
            let sum: u64 = lines.iter().map(|l| l.1 as u64).sum();
            assert_eq!(sum, RATE_SCALE as u64, "{k:?}");
            let f: f64 = lines.iter().map(|l| l.1 as f64 / RATE_SCALE as f64).sum();
            assert!((f - 1.0).abs() < 1e-9, "{k:?}: {f}");
            let mut texts: Vec<_> = lines.iter().map(|l| &l.0).collect();
            texts.sort();
            texts.dedup();
            assert_eq!(texts.len(), lines.len(), "{k:?} repeats a line");
            assert!(lines.iter().all(|l| l.1 > 0), "{k:?} has a zero-rate line");
        }
    }

    #[test]
    fn groups_cover_exactly_the_generator_combos_for_both_cube_types() {
        let t = table();
        let mut expected = 0;
        for cube in CubeType::ALL {
            for (part, level, _) in potential_combos() {
                for grade in Grade::ALL {
                    for slot in 1..=3 {
                        let key = GroupKey {
                            cube,
                            grade,
                            level,
                            part: part.to_string(),
                            slot,
                        };
                        assert!(t.group(&key).is_some(), "missing {key:?}");
                        expected += 1;
                    }
                }
            }
        }
        assert_eq!(
            t.groups().count(),
            expected,
            "no groups beyond what the generator produces"
        );
    }

    #[test]
    fn texts_follow_the_real_format() {
        let all: std::collections::HashSet<&str> = table()
            .groups()
            .flat_map(|(_, l)| l.iter().map(|x| x.0.as_str()))
            .collect();
        for needed in [
            "INT +12%",
            "올스탯 +9%",
            "보스 몬스터 데미지 +35%",
            "몬스터 방어율 무시 +40%",
            "공격력 +12%",
            "마력 +12%",
            "크리티컬 데미지 +8%",
            "스킬 재사용 대기시간 -2초",
            "캐릭터 기준 9레벨 당 INT +2",
            "메소 획득량 +20%",
            "아이템 드롭률 +20%",
        ] {
            assert!(all.contains(needed), "{needed}");
        }
    }

    #[test]
    fn draws_follow_the_rates() {
        let t = table();
        let key = GroupKey {
            cube: CubeType::Black,
            grade: Grade::Legendary,
            level: 200,
            part: "무기".into(),
            slot: 1,
        };
        let lines = t.group(&key).unwrap();
        let mut rng = SplitMix64::new(99);
        let n = 200_000;
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for _ in 0..n {
            *counts.entry(t.draw(&key, &mut rng).unwrap()).or_default() += 1;
        }
        for (text, rate) in lines {
            let p = *rate as f64 / RATE_SCALE as f64;
            let got = counts.get(text.as_str()).copied().unwrap_or(0) as f64 / n as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((got - p).abs() < 5.0 * sd + 1e-4, "{text}: {got} vs {p}");
        }
        let missing = GroupKey { level: 999, ..key };
        assert_eq!(t.draw(&missing, &mut rng), None);
    }

    #[test]
    fn parse_rejects_bad_tables() {
        let ok = format!("{HEADER}\nINT +3%,1.000000,1,레어,100,모자,BLACK\n");
        assert!(CubeTable::parse(&ok).is_ok());
        for bad in [
            "option,rate\nx,1\n".to_string(),
            format!("{HEADER}\nINT +3%,0.5,1,레어,100,모자,BLACK\n"),
            format!("{HEADER}\nINT +3%,1.0000001,1,레어,100,모자,BLACK\n"),
            format!("{HEADER}\nINT +3%,1,4,레어,100,모자,BLACK\n"),
            format!("{HEADER}\nINT +3%,1,1,노말,100,모자,BLACK\n"),
            format!("{HEADER}\nINT +3%,1,1,레어,100,모자,RED\n"),
            format!(
                "{HEADER}\nINT +3%,0.6,1,레어,100,모자,BLACK\nDEX +3%,0.6,1,레어,100,모자,BLACK\n"
            ),
        ] {
            assert!(CubeTable::parse(&bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rate("0.047619"), Some(47_619));
        assert_eq!(parse_rate("1"), Some(RATE_SCALE));
        assert_eq!(parse_rate("1.5"), None);
        assert_eq!(parse_rate("-0.1"), None);
    }
}
