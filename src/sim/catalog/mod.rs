//! The simulated world's fixed vocabulary: classes, equipment slots, the item catalog, grades and cube types.
//!
//! Contract: everything here is constant data plus pure functions over it, one room per kind of thing:
//! - [`grades`]: potential grades and cube types (the table's keys besides level and slot);
//! - [`slots`]: the 24 equipment slots and the kind of equipment each holds;
//! - [`classes`]: the playable classes, their stats, weapons and companions;
//! - [`stats`]: the flat stat block of one option object;
//! - [`items`]: the items each slot offers each class, the star-force cap, companion equipment, and
//!   [`potential_combos`], the `(slot, level)` pairs the synthetic cube table is generated from (a test
//!   checks both ways that the generator never draws from a group the table lacks);
//! - [`cosmetics`]: worlds, guilds, titles, medal shapes, weapon shapes and souls.
//!
//! Every item is re-exported here, so callers name `catalog::X` whatever room `X` lives in. The generator
//! picks from these tables by index: their order is part of every seeded payload.
//!
//! Failure modes: none at run time; the tables are checked by tests.

pub mod classes;
pub mod cosmetics;
pub mod grades;
pub mod items;
pub mod slots;
pub mod stats;

pub use classes::{CLASSES, Class, Companion, Job, Stat};
pub use cosmetics::{GUILDS, MEDAL_SHAPES, SOULS, TITLES, WEAPON_SHAPES, WORLDS};
pub use grades::{CubeType, Grade};
pub use items::{Flames, Template, companion_items, max_stars, potential_combos, templates};
pub use slots::{Kind, SLOTS, SlotDef};
pub use stats::Stats;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_templates_for_every_class() {
        for s in &SLOTS {
            for c in &CLASSES {
                let ts = templates(s, c);
                assert!(!ts.is_empty(), "{} / {}", s.slot, c.name);
                for t in &ts {
                    assert!(!t.name.is_empty() && !t.part.is_empty());
                    assert!(!(t.special_ring && t.potential));
                }
            }
        }
        // Optional slots leave at least 20 mandatory ones.
        assert_eq!(SLOTS.iter().filter(|s| !s.optional).count(), 19);
        assert_eq!(SLOTS.len(), 24);
    }

    #[test]
    fn potential_levels_are_few_and_grades_round_trip() {
        let combos = potential_combos();
        let levels: std::collections::BTreeSet<i64> = combos.iter().map(|c| c.1).collect();
        assert_eq!(
            levels.into_iter().collect::<Vec<_>>(),
            vec![100, 120, 140, 150, 160, 200, 250]
        );
        for g in Grade::ALL {
            assert_eq!(Grade::parse(g.name()), Some(g));
        }
        for c in CubeType::ALL {
            assert_eq!(CubeType::parse(c.name()), Some(c));
        }
        assert_eq!(max_stars(80), 5);
        assert_eq!(max_stars(200), 25);
    }
}
