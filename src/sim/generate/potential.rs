//! Potential grades and option lines.
//!
//! Contract: [`roll_grade`] draws a grade that rises with the gear tier (an additional potential may also
//! be absent); [`draw_lines`] draws lines 1..=3 of a grade from the synthetic cube table, line `k` from
//! group `(cube, grade, level, slot, k)`, and no grade gives no lines; nothing else produces option lines.
//! A group the table lacks is a bug (a debug assertion; release builds fall back to a fixed line rather
//! than panic).

use crate::sim::catalog::{CubeType, Grade};
use crate::sim::rng::SplitMix64;
use crate::sim::table::{GroupKey, table};

pub(super) fn roll_grade(tier: f64, additional: bool, r: &mut SplitMix64) -> Option<Grade> {
    let legendary = if additional {
        0.05 + 0.5 * tier
    } else {
        0.25 + 0.7 * tier
    };
    if additional && r.chance(0.12 * (1.0 - tier)) {
        return None;
    }
    let u = r.unit();
    let rest = 1.0 - legendary;
    Some(if u < legendary {
        Grade::Legendary
    } else if u < legendary + 0.55 * rest {
        Grade::Unique
    } else if u < legendary + 0.85 * rest {
        Grade::Epic
    } else {
        Grade::Rare
    })
}

pub(super) fn draw_lines(
    cube: CubeType,
    grade: Option<Grade>,
    level: i64,
    slot: &str,
    r: &mut SplitMix64,
) -> [Option<String>; 3] {
    let Some(grade) = grade else {
        return [None, None, None];
    };
    [1u8, 2, 3].map(|k| {
        let key = GroupKey {
            cube,
            grade,
            level,
            part: slot.to_string(),
            slot: k,
        };
        let line = table().draw(&key, r);
        debug_assert!(line.is_some(), "synthetic table lacks {key:?}");
        Some(line.unwrap_or("최대 HP +3%").to_string())
    })
}
