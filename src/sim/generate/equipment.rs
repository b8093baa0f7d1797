//! The `item-equipment` payload: the main loadout, three presets built from it, companion equipment, title
//! and medal shape.
//!
//! Contract: [`generate_equipment`] draws everything from the stream `(seed, "gear", ocid)` in one fixed
//! order (loadout slot by slot, then each preset's re-rolled and kept slots, then companions, title, medal
//! shape), so the same inputs give the same payload. Every preset is the loadout with some optional slots
//! left empty (20–24 items kept); presets 2 and 3 also re-roll 1–5 slots at 60% of the gear tier.
//! `item_equipment` is the preset named by `preset_no`. A date the character did not exist on gives every
//! field empty except `date`.

use chrono::NaiveDate;

use super::basic::character;
use super::item::{icon, roll_companion, roll_slot};
use super::wire_date;
use crate::expectation::model::{Item, ItemEquipment};
use crate::sim::catalog::{Companion, MEDAL_SHAPES, SLOTS, TITLES, companion_items};
use crate::sim::rng::stream;

/// `GET /maplestory/v1/character/item-equipment` for `(seed, ocid)`; see the module contract.
pub fn generate_equipment(seed: u64, ocid: &str, date: Option<NaiveDate>) -> ItemEquipment {
    let ch = character(seed, ocid);
    if ch.absent_on(date) {
        return ItemEquipment {
            date: date.map(wire_date),
            ..ItemEquipment::default()
        };
    }
    let mut r = stream(seed, &[b"gear", ocid.as_bytes()]);
    let c = ch.class;

    // The character's main loadout: one item per slot; rings and pendants are distinct items.
    let mut used: Vec<String> = Vec::new();
    let main: Vec<Item> = SLOTS
        .iter()
        .map(|s| roll_slot(s, c, ch.tier, &mut used, &mut r))
        .collect();

    // Presets: variations of the loadout (swapped accessories for a drop/meso preset, optional slots left
    // empty), 20–24 items each.
    let mut presets: Vec<Vec<Item>> = Vec::with_capacity(3);
    for p in 0..3 {
        let mut items = main.clone();
        let swaps = if p == 0 { 0 } else { r.range(1, 5) };
        let mut alt_used = used.clone();
        for _ in 0..swaps {
            let i = r.below(SLOTS.len() as u64) as usize;
            items[i] = roll_slot(&SLOTS[i], c, ch.tier * 0.6, &mut alt_used, &mut r);
        }
        let mut keep: Vec<bool> = SLOTS
            .iter()
            .map(|s| !s.optional || r.chance(0.75))
            .collect();
        for (i, s) in SLOTS.iter().enumerate() {
            if keep.iter().filter(|k| **k).count() >= 20 {
                break;
            }
            if s.optional {
                keep[i] = true;
            }
        }
        presets.push(
            items
                .into_iter()
                .zip(keep)
                .filter_map(|(it, k)| k.then_some(it))
                .collect(),
        );
    }

    let companions = companion_items(c.companion)
        .iter()
        .map(|(part, name)| roll_companion(c.companion, part, name, &mut r))
        .collect::<Vec<_>>();
    let (dragon, mechanic) = match c.companion {
        Companion::Dragon => (companions, Vec::new()),
        Companion::Mechanic => (Vec::new(), companions),
        Companion::None => (Vec::new(), Vec::new()),
    };

    let title = {
        let (name, desc) = *r.pick(&TITLES);
        serde_json::json!({
            "title_name": name,
            "title_icon": icon(name),
            "title_description": desc,
            "date_expire": null,
            "date_option_expire": null,
            "title_shape_name": null,
            "title_shape_icon": null,
            "title_shape_description": null,
        })
    };
    let medal_shape = if r.chance(0.5) {
        let (name, desc) = *r.pick(&MEDAL_SHAPES);
        let (cname, cdesc) = *r.pick(&MEDAL_SHAPES);
        Some(serde_json::json!({
            "medal_shape_name": name,
            "medal_shape_icon": icon(name),
            "medal_shape_description": desc,
            "medal_shape_changed_name": cname,
            "medal_shape_changed_icon": icon(cname),
            "medal_shape_changed_description": cdesc,
        }))
    } else {
        None
    };

    let equipped = presets[(ch.preset_no - 1) as usize].clone();
    let mut presets = presets.into_iter();
    ItemEquipment {
        date: date.map(wire_date),
        character_gender: Some(ch.gender.to_string()),
        character_class: Some(c.name.to_string()),
        preset_no: Some(ch.preset_no),
        item_equipment: equipped,
        item_equipment_preset_1: presets.next().unwrap_or_default(),
        item_equipment_preset_2: presets.next().unwrap_or_default(),
        item_equipment_preset_3: presets.next().unwrap_or_default(),
        title: Some(title),
        medal_shape,
        dragon_equipment: dragon,
        mechanic_equipment: mechanic,
    }
}
