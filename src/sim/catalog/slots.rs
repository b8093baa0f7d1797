//! Equipment slots: every `item_equipment_slot` a preset can fill, and the [`Kind`] of equipment each holds.
//!
//! Contract: [`SLOTS`] lists the 24 slots in the order a preset lists its items; 19 are mandatory, and the
//! optional ones let presets hold 20–24 items like real ones. A slot's kind decides which option lines,
//! flames and stars its items get.
//!
//! Failure modes: none.

/// What kind of equipment a slot holds; decides option lines, flames and stars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Hat,
    Top,
    Bottom,
    Shoes,
    Gloves,
    Cape,
    Belt,
    Shoulder,
    Face,
    Eye,
    Earring,
    Ring,
    Pendant,
    Weapon,
    Secondary,
    Emblem,
    Pocket,
    Heart,
    Badge,
    Medal,
}

impl Kind {
    /// Weapon-like parts roll attack/boss/ignore-defence lines instead of armour lines.
    pub fn is_weapon_like(self) -> bool {
        matches!(self, Kind::Weapon | Kind::Secondary | Kind::Emblem)
    }

    pub fn is_accessory(self) -> bool {
        matches!(
            self,
            Kind::Face | Kind::Eye | Kind::Earring | Kind::Ring | Kind::Pendant
        )
    }
}

/// One equipment slot (`item_equipment_slot`).
#[derive(Clone, Copy, Debug)]
pub struct SlotDef {
    pub slot: &'static str,
    pub kind: Kind,
    /// Slots a preset may leave empty (which keeps presets at 20–24 items, like real ones).
    pub optional: bool,
}

const fn slot(slot: &'static str, kind: Kind, optional: bool) -> SlotDef {
    SlotDef {
        slot,
        kind,
        optional,
    }
}

/// Every slot a preset can fill, in the order items are listed.
pub const SLOTS: [SlotDef; 24] = [
    slot("모자", Kind::Hat, false),
    slot("얼굴장식", Kind::Face, false),
    slot("눈장식", Kind::Eye, false),
    slot("귀고리", Kind::Earring, false),
    slot("상의", Kind::Top, false),
    slot("하의", Kind::Bottom, false),
    slot("신발", Kind::Shoes, false),
    slot("장갑", Kind::Gloves, false),
    slot("망토", Kind::Cape, false),
    slot("보조무기", Kind::Secondary, false),
    slot("무기", Kind::Weapon, false),
    slot("반지1", Kind::Ring, false),
    slot("반지2", Kind::Ring, false),
    slot("반지3", Kind::Ring, false),
    slot("반지4", Kind::Ring, true),
    slot("펜던트", Kind::Pendant, false),
    slot("훈장", Kind::Medal, true),
    slot("벨트", Kind::Belt, false),
    slot("어깨장식", Kind::Shoulder, false),
    slot("포켓 아이템", Kind::Pocket, true),
    slot("기계 심장", Kind::Heart, true),
    slot("뱃지", Kind::Badge, true),
    slot("엠블렘", Kind::Emblem, false),
    slot("펜던트2", Kind::Pendant, false),
];
