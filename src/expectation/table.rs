//! Cube probability tables: parse once, precompute per group, share immutably.
//!
//! Contract: [`CubeTables::parse`] reads the documented CSV (`option,rate,slot,potential_option_grade,
//! base_equipment_level,item_equipment_slot,cube_type`, columns found by header name, any order, UTF-8 BOM
//! tolerated) from any reader and returns the tables plus a [`TableReport`] for the operator. Rows are grouped by
//! (cube type, grade, level band, slot name, line slot). Each group's option lines are parsed once with the
//! option-line parser and merged into `(line kind, amount, probability)` entries, so a query does no text work.
//! Group sums are checked against 1 with tolerance 1e-4: within → normalised to exactly 1; below → the remainder
//! is kept as "some other line" (amount 0); above → the group is flagged as a table error, listed in the report,
//! and only the items that need it become unavailable. Rows of another cube type are counted and ignored.
//! A row with an unreadable grade, level, slot or rate fails the whole load with its line number
//! ([`ExpectationError::TableFormat`]): an operator installing a new table should hear about a broken file, not
//! get silently different numbers. [`CubeTables::version`] is the first 16 hex digits of the SHA-256 of the file
//! bytes, so identical content gives an identical version on every instance.
//!
//! Level bands: the band used for an item is the largest band ≤ the item's level among the bands the table has for
//! that (cube type, grade, slot name); an item below all of them is `below_min_level`. Slot names are compared
//! with the upstream's `item_equipment_slot` (`반지1`, `펜던트2`, `보조무기`), which is what the table's
//! `item_equipment_slot` column holds (the upstream's `item_equipment_part` is the coarser `반지`, `펜던트`, `문서`).
//!
//! Only [`CubeTables::load`] touches the file system; everything else is pure.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::block::Unavailable;
use super::error::ExpectationError;
use super::option_line::{LineKind, LineValue, Stat};
use super::types::{CubeType, Grade, PartName};

/// Tolerance on a group's total rate.
pub const SUM_TOLERANCE: f64 = 1e-4;

/// The identity of one group: one line slot of one (cube type, grade, level band, slot name).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    pub cube_type: CubeType,
    pub grade: Grade,
    pub level_band: u32,
    pub part: PartName,
    /// Line slot 1..=3.
    pub slot: u8,
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} line {}",
            self.cube_type.as_str(),
            self.grade.korean(),
            self.level_band,
            self.part,
            self.slot
        )
    }
}

/// How a group's rates add up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSum {
    /// Within 1e-4 of 1; normalised to exactly 1.
    Normalized,
    /// Below 1 − 1e-4; the remainder is "some other line".
    Incomplete,
    /// Above 1 + 1e-4: a table error.
    OverOne,
}

/// One group, precomputed.
#[derive(Clone, Debug)]
pub struct Group {
    pub sum: f64,
    pub state: GroupSum,
    /// Merged `(kind, amount, probability)` entries, sorted; probabilities already normalised when `Normalized`.
    pub entries: Vec<(LineKind, u32, f64)>,
}

#[derive(Clone, Debug)]
struct Band {
    level: u32,
    slots: [Option<usize>; 3],
}

/// A group whose rates sum to more than 1 + 1e-4.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverOneGroup {
    #[serde(flatten)]
    pub key: GroupKey,
    pub sum: f64,
    /// `"BLACK 에픽 200 신발 line 1"`, for logs.
    pub description: String,
}

/// What the operator should know about a loaded table (logged, exported as metrics, shown in `/health/ready`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableReport {
    /// Short content hash (the table version in every result).
    pub version: String,
    /// Full SHA-256 of the file bytes.
    pub sha256: String,
    /// Rows used.
    pub rows: usize,
    /// Rows of a cube type the engine does not model (ignored).
    pub ignored_rows: usize,
    /// Rows whose option text the line parser does not interpret (they still count as "some other line").
    pub uninterpreted_rows: usize,
    pub groups: usize,
    pub normalized: usize,
    pub incomplete: usize,
    pub over_one: Vec<OverOneGroup>,
    /// Cube types present (`BLACK`, `ADDITIONAL`).
    pub cube_types: Vec<CubeType>,
    /// Level bands present, ascending.
    pub level_bands: Vec<u32>,
    /// Slot names present, sorted.
    pub parts: Vec<PartName>,
}

/// The loaded, immutable cube tables. Cheap to share behind an `Arc`.
pub struct CubeTables {
    version: String,
    groups: Vec<Group>,
    keys: Vec<GroupKey>,
    index: HashMap<(CubeType, Grade, PartName), Vec<Band>>,
}

impl std::fmt::Debug for CubeTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CubeTables")
            .field("version", &self.version)
            .field("groups", &self.groups.len())
            .finish()
    }
}

/// The groups an item needs, or why they cannot be used.
pub struct Selected<'a> {
    pub level_band: u32,
    pub slots: [&'a Group; 3],
}

const COLUMNS: [&str; 7] = [
    "option",
    "rate",
    "slot",
    "potential_option_grade",
    "base_equipment_level",
    "item_equipment_slot",
    "cube_type",
];

#[derive(Default)]
struct Acc {
    sum: f64,
    entries: HashMap<(LineKind, u32), f64>,
}

impl CubeTables {
    /// Parses a table from any reader; see the module contract.
    pub fn parse(mut csv: impl Read) -> Result<(CubeTables, TableReport), ExpectationError> {
        let mut bytes = Vec::new();
        csv.read_to_end(&mut bytes)
            .map_err(|e| ExpectationError::TableFormat {
                line: 0,
                reason: format!("read failed: {e}"),
            })?;
        Self::parse_bytes(&bytes)
    }

    /// Reads and parses the table file at `path` (the one I/O function of the engine).
    pub fn load(path: &Path) -> Result<(CubeTables, TableReport), ExpectationError> {
        let bytes = std::fs::read(path).map_err(|source| ExpectationError::TableRead {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_bytes(&bytes)
    }

    /// Parses a table held in memory.
    pub fn parse_bytes(bytes: &[u8]) -> Result<(CubeTables, TableReport), ExpectationError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let version = sha256[..16].to_owned();
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);

        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(body);
        let headers = reader
            .headers()
            .map_err(|e| format_err(1, format!("unreadable header: {e}")))?
            .clone();
        let mut col = [0usize; 7];
        for (i, name) in COLUMNS.iter().enumerate() {
            col[i] = headers
                .iter()
                .position(|h| h == *name)
                .ok_or_else(|| format_err(1, format!("missing column `{name}`")))?;
        }
        let [c_option, c_rate, c_slot, c_grade, c_level, c_part, c_type] = col;

        let mut accs: HashMap<GroupKey, Acc> = HashMap::new();
        let mut line_cache: HashMap<String, (LineKind, u32, bool)> = HashMap::new();
        let (mut rows, mut ignored_rows, mut uninterpreted_rows) = (0usize, 0usize, 0usize);
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    return Err(format_err(line, format!("malformed CSV: {e}")));
                }
            }
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            if record.iter().all(|f| f.is_empty()) {
                continue;
            }
            let field = |c: usize| record.get(c).unwrap_or("");
            let Some(cube_type) = CubeType::parse(field(c_type)) else {
                ignored_rows += 1;
                continue;
            };
            let grade = Grade::parse(field(c_grade))
                .ok_or_else(|| format_err(line, format!("unknown grade `{}`", field(c_grade))))?;
            let level_band: u32 = field(c_level).parse().map_err(|_| {
                format_err(
                    line,
                    format!("bad base_equipment_level `{}`", field(c_level)),
                )
            })?;
            let part = PartName::parse(field(c_part))
                .ok_or_else(|| format_err(line, "empty item_equipment_slot".to_owned()))?;
            let slot: u8 = field(c_slot)
                .parse()
                .ok()
                .filter(|s| (1..=3).contains(s))
                .ok_or_else(|| format_err(line, format!("bad slot `{}`", field(c_slot))))?;
            let rate: f64 = field(c_rate)
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite() && (0.0..=1.0).contains(r))
                .ok_or_else(|| format_err(line, format!("bad rate `{}`", field(c_rate))))?;
            let text = field(c_option);
            let (kind, amount, interpreted) = match line_cache.get(text) {
                Some(v) => *v,
                None => {
                    let parsed = LineValue::read(text);
                    let (kind, amount) = parsed.kind_and_amount();
                    let v = (kind, amount, parsed.stat != Stat::Other);
                    line_cache.insert(text.to_owned(), v);
                    v
                }
            };
            if !interpreted {
                uninterpreted_rows += 1;
            }
            rows += 1;
            let acc = accs
                .entry(GroupKey {
                    cube_type,
                    grade,
                    level_band,
                    part,
                    slot,
                })
                .or_default();
            acc.sum += rate;
            if kind != LineKind::Other && amount > 0 {
                *acc.entries.entry((kind, amount)).or_default() += rate;
            }
        }
        if rows == 0 {
            return Err(ExpectationError::TableEmpty);
        }

        let mut sorted: Vec<(GroupKey, Acc)> = accs.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut groups = Vec::with_capacity(sorted.len());
        let mut keys = Vec::with_capacity(sorted.len());
        let mut index: HashMap<(CubeType, Grade, PartName), Vec<Band>> = HashMap::new();
        let (mut normalized, mut incomplete, mut over_one) = (0, 0, Vec::new());
        for (key, acc) in sorted {
            let sum = acc.sum;
            let state = if (sum - 1.0).abs() <= SUM_TOLERANCE {
                normalized += 1;
                GroupSum::Normalized
            } else if sum < 1.0 {
                incomplete += 1;
                GroupSum::Incomplete
            } else {
                over_one.push(OverOneGroup {
                    key: key.clone(),
                    sum,
                    description: key.to_string(),
                });
                GroupSum::OverOne
            };
            let scale = if state == GroupSum::Normalized {
                1.0 / sum
            } else {
                1.0
            };
            let mut entries: Vec<(LineKind, u32, f64)> = acc
                .entries
                .into_iter()
                .map(|((k, a), p)| (k, a, p * scale))
                .collect();
            entries.sort_by_key(|e| (e.0, e.1));
            let id = groups.len();
            groups.push(Group {
                sum,
                state,
                entries,
            });
            let bands = index
                .entry((key.cube_type, key.grade, key.part.clone()))
                .or_default();
            // Keys are sorted, so bands arrive in ascending order.
            if bands.last().map(|b| b.level) != Some(key.level_band) {
                bands.push(Band {
                    level: key.level_band,
                    slots: [None; 3],
                });
            }
            if let Some(b) = bands.last_mut() {
                b.slots[(key.slot - 1) as usize] = Some(id);
            }
            keys.push(key);
        }

        let mut cube_types: Vec<CubeType> = keys.iter().map(|k| k.cube_type).collect();
        cube_types.dedup();
        let mut level_bands: Vec<u32> = keys.iter().map(|k| k.level_band).collect();
        level_bands.sort_unstable();
        level_bands.dedup();
        let mut parts: Vec<PartName> = keys.iter().map(|k| k.part.clone()).collect();
        parts.sort();
        parts.dedup();

        let report = TableReport {
            version: version.clone(),
            sha256,
            rows,
            ignored_rows,
            uninterpreted_rows,
            groups: groups.len(),
            normalized,
            incomplete,
            over_one,
            cube_types,
            level_bands,
            parts,
        };
        Ok((
            CubeTables {
                version,
                groups,
                keys,
                index,
            },
            report,
        ))
    }

    /// Whether the table has any additional-potential (`ADDITIONAL`) group.
    pub fn has_additional(&self) -> bool {
        self.index
            .keys()
            .any(|(cube_type, _, _)| *cube_type == CubeType::Additional)
    }

    /// The table version: the first 16 hex digits of the SHA-256 of the file bytes.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The key of a group by position (for diagnostics).
    pub fn group(&self, key: &GroupKey) -> Option<&Group> {
        self.keys.binary_search(key).ok().map(|i| &self.groups[i])
    }

    /// Selects the three line-slot groups for an item, or says why they cannot be used.
    pub fn select(
        &self,
        cube_type: CubeType,
        grade: Grade,
        part: &PartName,
        level: i64,
    ) -> Result<Selected<'_>, (Unavailable, Option<String>)> {
        let Some(bands) = self.index.get(&(cube_type, grade, part.clone())) else {
            return Err((
                Unavailable::NoTableGroup,
                Some(format!(
                    "{} {} {}",
                    cube_type.as_str(),
                    grade.korean(),
                    part
                )),
            ));
        };
        let Some(band) = bands.iter().rev().find(|b| i64::from(b.level) <= level) else {
            return Err((Unavailable::BelowMinLevel, None));
        };
        let mut slots = [&self.groups[0]; 3];
        for (i, s) in band.slots.iter().enumerate() {
            let key = || GroupKey {
                cube_type,
                grade,
                level_band: band.level,
                part: part.clone(),
                slot: i as u8 + 1,
            };
            let Some(id) = s else {
                return Err((Unavailable::NoTableGroup, Some(key().to_string())));
            };
            let g = &self.groups[*id];
            if g.state == GroupSum::OverOne {
                return Err((
                    Unavailable::TableError,
                    Some(format!("{} sums to {:.6}", key(), g.sum)),
                ));
            }
            slots[i] = g;
        }
        Ok(Selected {
            level_band: band.level,
            slots,
        })
    }
}

fn format_err(line: u64, reason: String) -> ExpectationError {
    ExpectationError::TableFormat { line, reason }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const REFERENCE: &str = "../shared/data/cube_probability.csv";

    pub fn reference() -> (CubeTables, TableReport) {
        CubeTables::load(Path::new(REFERENCE)).expect("reference table beside the project")
    }

    const HEADER: &str = "option,rate,slot,potential_option_grade,base_equipment_level,item_equipment_slot,cube_type\n";

    fn small(rows: &str) -> Result<(CubeTables, TableReport), ExpectationError> {
        CubeTables::parse(format!("{HEADER}{rows}").as_bytes())
    }

    #[test]
    fn the_reference_table_loads_with_its_documented_shape() {
        let (t, r) = reference();
        assert_eq!(r.rows, 34_488);
        assert_eq!(r.groups, 2_000);
        assert_eq!(r.over_one.len(), 22);
        assert_eq!(r.normalized + r.incomplete + r.over_one.len(), r.groups);
        assert_eq!(r.cube_types, vec![CubeType::Black]);
        assert_eq!(
            r.level_bands,
            vec![100, 110, 120, 130, 135, 140, 150, 160, 200, 250]
        );
        assert_eq!(r.parts.len(), 25);
        assert!(r.parts.iter().any(|p| p.as_str() == "펜던트2"));
        assert_eq!(t.version().len(), 16);
        assert_eq!(&r.sha256[..16], t.version());
        // Every over-one group really sums above 1 + tolerance.
        assert!(r.over_one.iter().all(|g| g.sum > 1.0 + SUM_TOLERANCE));
        let shoe = GroupKey {
            cube_type: CubeType::Black,
            grade: Grade::Epic,
            level_band: 200,
            part: PartName::parse("신발").unwrap(),
            slot: 1,
        };
        assert!(r.over_one.iter().any(|g| g.key == shoe));
        assert_eq!(t.group(&shoe).unwrap().state, GroupSum::OverOne);
    }

    #[test]
    fn sums_are_normalised_kept_or_flagged() {
        let (t, r) = small(
            "INT +12%,0.50004,1,레전드리,200,모자,BLACK\n\
             INT +9%,0.5,1,레전드리,200,모자,BLACK\n\
             INT +12%,0.3,2,레전드리,200,모자,BLACK\n\
             INT +12%,0.7,3,레전드리,200,모자,BLACK\n\
             INT +9%,0.4,3,레전드리,200,모자,BLACK\n\
             INT +9%,0.4,3,레전드리,200,모자,RED\n",
        )
        .unwrap();
        assert_eq!((r.rows, r.ignored_rows, r.groups), (5, 1, 3));
        assert_eq!((r.normalized, r.incomplete, r.over_one.len()), (1, 1, 1));
        let key = |slot| GroupKey {
            cube_type: CubeType::Black,
            grade: Grade::Legendary,
            level_band: 200,
            part: PartName::parse("모자").unwrap(),
            slot,
        };
        let g1 = t.group(&key(1)).unwrap();
        let total: f64 = g1.entries.iter().map(|e| e.2).sum();
        assert!((total - 1.0).abs() < 1e-15, "{total}");
        assert_eq!(t.group(&key(2)).unwrap().state, GroupSum::Incomplete);
        let part = PartName::parse("모자").unwrap();
        let err = t
            .select(CubeType::Black, Grade::Legendary, &part, 200)
            .err()
            .unwrap();
        assert_eq!(err.0, Unavailable::TableError);
    }

    #[test]
    fn band_selection_and_missing_groups() {
        let mut rows = String::new();
        for band in [100, 160, 200] {
            for slot in 1..=3 {
                rows += &format!("INT +9%,1.0,{slot},에픽,{band},모자,BLACK\n");
            }
        }
        rows += "INT +9%,1.0,1,에픽,120,장갑,BLACK\n";
        let (t, _) = small(&rows).unwrap();
        let hat = PartName::parse("모자").unwrap();
        let sel = |lv| {
            t.select(CubeType::Black, Grade::Epic, &hat, lv)
                .map(|s| s.level_band)
        };
        assert_eq!(sel(250).ok(), Some(200));
        assert_eq!(sel(199).ok(), Some(160));
        assert_eq!(sel(100).ok(), Some(100));
        assert_eq!(sel(99).err().map(|e| e.0), Some(Unavailable::BelowMinLevel));
        let err = t
            .select(CubeType::Black, Grade::Legendary, &hat, 200)
            .err()
            .unwrap();
        assert_eq!(err.0, Unavailable::NoTableGroup);
        let glove = PartName::parse("장갑").unwrap();
        let err = t
            .select(CubeType::Black, Grade::Epic, &glove, 150)
            .err()
            .unwrap();
        assert_eq!(err.0, Unavailable::NoTableGroup);
        let err = t
            .select(CubeType::Additional, Grade::Epic, &hat, 200)
            .err()
            .unwrap();
        assert_eq!(err.0, Unavailable::NoTableGroup);
    }

    #[test]
    fn broken_files_fail_with_a_line_number() {
        let e = small("INT +9%,abc,1,에픽,100,모자,BLACK\n").err().unwrap();
        assert!(
            matches!(e, ExpectationError::TableFormat { line: 2, .. }),
            "{e}"
        );
        let e = small("INT +9%,0.1,4,에픽,100,모자,BLACK\n").err().unwrap();
        assert!(
            matches!(e, ExpectationError::TableFormat { line: 2, .. }),
            "{e}"
        );
        let e = small("INT +9%,0.1,1,전설,100,모자,BLACK\n").err().unwrap();
        assert!(matches!(e, ExpectationError::TableFormat { .. }));
        let e = CubeTables::parse(&b"option,rate\nx,1\n"[..]).err().unwrap();
        assert!(e.to_string().contains("missing column"), "{e}");
        assert!(matches!(
            small("").err().unwrap(),
            ExpectationError::TableEmpty
        ));
        let e = CubeTables::load(Path::new("/nonexistent/cube.csv"))
            .err()
            .unwrap();
        assert!(matches!(e, ExpectationError::TableRead { .. }));
    }

    #[test]
    fn version_is_a_content_hash() {
        let a = small("INT +9%,1.0,1,에픽,100,모자,BLACK\n").unwrap().0;
        let b = small("INT +9%,1.0,1,에픽,100,모자,BLACK\n").unwrap().0;
        let c = small("INT +6%,1.0,1,에픽,100,모자,BLACK\n").unwrap().0;
        assert_eq!(a.version(), b.version());
        assert_ne!(a.version(), c.version());
        // A BOM and reordered columns are tolerated.
        let reordered = "\u{feff}cube_type,slot,option,rate,potential_option_grade,base_equipment_level,item_equipment_slot\n\
                         BLACK,1,INT +9%,1.0,에픽,100,모자\n";
        let (_, r) = CubeTables::parse(reordered.as_bytes()).unwrap();
        assert_eq!(r.rows, 1);
    }
}
