//! The equipment model: the upstream `item-equipment` payload as typed data.
//!
//! Contract: [`ItemEquipment::from_json`] accepts every payload the upstream is known to send — numbers as
//! strings or as JSON numbers, `null` for absent lists and options, unknown fields (ignored), and the empty
//! "before the character existed" response (every list empty, only `date` set). It never panics; a payload
//! that is not a JSON object of this shape is a [`ModelError`]. Serialising the model produces the upstream's
//! wire shape (numbers inside option objects as strings), which is what the simulator sends, so the gateway
//! and the simulator share one schema.
//!
//! [`ItemEquipment::from_json_for_engine`] is what the gateway uses: the same tolerance, but only the fields
//! the engine reads are built (the rest must still be well-formed JSON and is skipped); its model is for
//! computing, never for serialising back as a payload.
//!
//! This is data only: interpretation (grades, option lines, stars) happens in the engine's newtypes. The one
//! judgement made here is [`Item::out_of_range`]: the game's maxima ([`MAX_ITEM_LEVEL`], [`MAX_STARS`],
//! [`MAX_FLAME_STAT`], the line bounds of [`LineValue::in_range`]), checked before the engine uses any value,
//! so that no upstream number can size a table.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::option_line::LineValue;

/// Highest item level the engine computes with. The game's highest is 250 (Eternal and Genesis gear); 300 leaves
/// room for a new tier. Starforce, cube and flame tables are sized by the level.
pub const MAX_ITEM_LEVEL: i64 = 300;
/// Highest starforce the engine computes with: 30, the game's cap since the 30-star update ([`Stars::MAX`]).
///
/// [`Stars::MAX`]: super::types::Stars::MAX
pub const MAX_STARS: i64 = super::types::Stars::MAX as i64;
/// Largest flame (bonus) stat field the engine computes with (`item_add_option`: STR/DEX/INT/LUK, attack,
/// magic, all stat %). A level-250 armour's best flames stay below 300 in any field; 10,000 is generous and
/// keeps every flame score far from overflowing.
pub const MAX_FLAME_STAT: i64 = 10_000;

/// The first field of an item outside the bounds above (or an option line outside
/// [`LineValue::in_range`]): such an item is reported and left out of the computation, never computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OutOfRange {
    /// The payload field, e.g. `base_equipment_level`, `potential_option_2`, `item_add_option.int`.
    pub field: &'static str,
    /// Its value as read (for a line: the line's number).
    pub value: i64,
}

/// Why a payload could not be read as an item-equipment response.
#[derive(Debug, thiserror::Error)]
#[error("item-equipment payload is malformed: {0}")]
pub struct ModelError(#[from] pub serde_json::Error);

/// A whole `GET /maplestory/v1/character/item-equipment` response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemEquipment {
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub character_gender: Option<String>,
    #[serde(default)]
    pub character_class: Option<String>,
    /// The equipped preset (1..=3); absent for characters that never used presets.
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub preset_no: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_equipment: Vec<Item>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_equipment_preset_1: Vec<Item>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_equipment_preset_2: Vec<Item>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub item_equipment_preset_3: Vec<Item>,
    #[serde(default)]
    pub title: Option<serde_json::Value>,
    #[serde(default)]
    pub medal_shape: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub dragon_equipment: Vec<Item>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mechanic_equipment: Vec<Item>,
}

impl ItemEquipment {
    /// Parses a payload; see the module contract for what is tolerated.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        Ok(serde_json::from_str(utf8(bytes)?)?)
    }

    /// Parses only what the expectation engine reads: the character's class, date and equipped preset, and
    /// per item its part, slot, name, base and flame options, potential grades and lines, and stars. Every
    /// other field — icons, descriptions, flags, the total / exceptional / etc / starforce option objects,
    /// dragon and mechanic equipment, title, medal — is skipped by the parser (checked as JSON, never
    /// allocated) and stays `None` / empty. The gateway parses every fetched payload this way: the full parse
    /// allocates ~1,500 strings per payload the engine never reads. Such a model is for computing, never
    /// for serialising as the upstream's payload.
    pub fn from_json_for_engine(bytes: &[u8]) -> Result<Self, ModelError> {
        let view: EngineView = serde_json::from_str(utf8(bytes)?)?;
        Ok(view.into())
    }

    /// The items of preset `n` (1..=3); `None` for any other `n`.
    pub fn preset(&self, n: u8) -> Option<&[Item]> {
        match n {
            1 => Some(&self.item_equipment_preset_1),
            2 => Some(&self.item_equipment_preset_2),
            3 => Some(&self.item_equipment_preset_3),
            _ => None,
        }
    }

    /// True for the upstream's answer for a date before the character existed: every list empty.
    pub fn is_empty(&self) -> bool {
        self.item_equipment.is_empty()
            && self.item_equipment_preset_1.is_empty()
            && self.item_equipment_preset_2.is_empty()
            && self.item_equipment_preset_3.is_empty()
    }
}

/// One UTF-8 check of the whole payload, so the parse can trust it: `from_slice` would check every string and
/// key on its own (~20,000 of them per payload), which costs more than the single pass. SIMD-checked
/// (`simdutf8`): the payload's Korean text keeps `std`'s check off its ASCII fast path.
fn utf8(bytes: &[u8]) -> Result<&str, ModelError> {
    simdutf8::compat::from_utf8(bytes).map_err(|e| {
        ModelError(<serde_json::Error as serde::de::Error>::custom(format!(
            "invalid UTF-8 at byte {}",
            e.valid_up_to()
        )))
    })
}

/// The fields of a payload [`ItemEquipment::from_json_for_engine`] reads; serde skips the rest.
#[derive(Deserialize)]
struct EngineView {
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    character_class: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    preset_no: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    item_equipment: Vec<EngineItem>,
    #[serde(default, deserialize_with = "null_as_default")]
    item_equipment_preset_1: Vec<EngineItem>,
    #[serde(default, deserialize_with = "null_as_default")]
    item_equipment_preset_2: Vec<EngineItem>,
    #[serde(default, deserialize_with = "null_as_default")]
    item_equipment_preset_3: Vec<EngineItem>,
}

/// The fields of an item the engine reads (absent and `null` read as `None`).
#[derive(Default, Deserialize)]
#[serde(default)]
struct EngineItem {
    item_equipment_part: Option<String>,
    item_equipment_slot: Option<String>,
    item_name: Option<String>,
    item_base_option: Option<ItemOption>,
    item_add_option: Option<ItemOption>,
    potential_option_grade: Option<String>,
    additional_potential_option_grade: Option<String>,
    potential_option_1: Option<String>,
    potential_option_2: Option<String>,
    potential_option_3: Option<String>,
    additional_potential_option_1: Option<String>,
    additional_potential_option_2: Option<String>,
    additional_potential_option_3: Option<String>,
    starforce: Option<String>,
    starforce_scroll_flag: Option<String>,
}

impl From<EngineView> for ItemEquipment {
    fn from(v: EngineView) -> Self {
        let items = |list: Vec<EngineItem>| list.into_iter().map(Item::from).collect();
        ItemEquipment {
            date: v.date,
            character_class: v.character_class,
            preset_no: v.preset_no,
            item_equipment: items(v.item_equipment),
            item_equipment_preset_1: items(v.item_equipment_preset_1),
            item_equipment_preset_2: items(v.item_equipment_preset_2),
            item_equipment_preset_3: items(v.item_equipment_preset_3),
            ..ItemEquipment::default()
        }
    }
}

impl From<EngineItem> for Item {
    fn from(i: EngineItem) -> Self {
        Item {
            item_equipment_part: i.item_equipment_part,
            item_equipment_slot: i.item_equipment_slot,
            item_name: i.item_name,
            item_base_option: i.item_base_option,
            item_add_option: i.item_add_option,
            potential_option_grade: i.potential_option_grade,
            additional_potential_option_grade: i.additional_potential_option_grade,
            potential_option_1: i.potential_option_1,
            potential_option_2: i.potential_option_2,
            potential_option_3: i.potential_option_3,
            additional_potential_option_1: i.additional_potential_option_1,
            additional_potential_option_2: i.additional_potential_option_2,
            additional_potential_option_3: i.additional_potential_option_3,
            starforce: i.starforce,
            starforce_scroll_flag: i.starforce_scroll_flag,
            ..Item::default()
        }
    }
}

/// One equipped item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    #[serde(default)]
    pub item_equipment_part: Option<String>,
    #[serde(default)]
    pub item_equipment_slot: Option<String>,
    #[serde(default)]
    pub item_name: Option<String>,
    #[serde(default)]
    pub item_icon: Option<String>,
    #[serde(default)]
    pub item_description: Option<String>,
    #[serde(default)]
    pub item_shape_name: Option<String>,
    #[serde(default)]
    pub item_shape_icon: Option<String>,
    #[serde(default)]
    pub item_gender: Option<String>,
    #[serde(default)]
    pub item_total_option: Option<ItemOption>,
    #[serde(default)]
    pub item_base_option: Option<ItemOption>,
    #[serde(default)]
    pub potential_option_grade: Option<String>,
    #[serde(default)]
    pub additional_potential_option_grade: Option<String>,
    #[serde(default)]
    pub potential_option_flag: Option<String>,
    #[serde(default)]
    pub potential_option_1: Option<String>,
    #[serde(default)]
    pub potential_option_2: Option<String>,
    #[serde(default)]
    pub potential_option_3: Option<String>,
    #[serde(default)]
    pub additional_potential_option_flag: Option<String>,
    #[serde(default)]
    pub additional_potential_option_1: Option<String>,
    #[serde(default)]
    pub additional_potential_option_2: Option<String>,
    #[serde(default)]
    pub additional_potential_option_3: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub equipment_level_increase: Option<i64>,
    #[serde(default)]
    pub item_exceptional_option: Option<ItemOption>,
    /// Flame (bonus) stats.
    #[serde(default)]
    pub item_add_option: Option<ItemOption>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub growth_exp: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub growth_level: Option<i64>,
    #[serde(default)]
    pub scroll_upgrade: Option<String>,
    #[serde(default)]
    pub cuttable_count: Option<String>,
    #[serde(default)]
    pub golden_hammer_flag: Option<String>,
    #[serde(default)]
    pub scroll_resilience_count: Option<String>,
    #[serde(default)]
    pub scroll_upgradeable_count: Option<String>,
    #[serde(default)]
    pub soul_name: Option<String>,
    #[serde(default)]
    pub soul_option: Option<String>,
    #[serde(default)]
    pub item_etc_option: Option<ItemOption>,
    /// Current stars, as a string.
    #[serde(default)]
    pub starforce: Option<String>,
    /// `사용` for scroll-starred ("noljang") items, `미사용` otherwise.
    #[serde(default)]
    pub starforce_scroll_flag: Option<String>,
    #[serde(default)]
    pub item_starforce_option: Option<ItemOption>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub special_ring_level: Option<i64>,
    #[serde(default)]
    pub date_expire: Option<String>,
    #[serde(default)]
    pub freestyle_flag: Option<String>,
}

impl Item {
    /// The item's base equipment level (0 when unknown).
    pub fn base_level(&self) -> i64 {
        self.item_base_option
            .as_ref()
            .and_then(|o| o.base_equipment_level)
            .unwrap_or(0)
    }

    /// The first value the engine would compute with that lies outside the game's maxima: the base level
    /// (0..=[`MAX_ITEM_LEVEL`]), the stars when they are an integer (0..=[`MAX_STARS`]; a non-integer is the
    /// starforce block's own `invalid_stars`), every potential and additional line ([`LineValue::in_range`]) and
    /// the flame stats (|v| ≤ [`MAX_FLAME_STAT`]). `None` when the item is fit to compute.
    pub fn out_of_range(&self) -> Option<OutOfRange> {
        let bad = |field, value| Some(OutOfRange { field, value });
        let level = self.base_level();
        if !(0..=MAX_ITEM_LEVEL).contains(&level) {
            return bad("base_equipment_level", level);
        }
        if let Some(stars) = self
            .starforce
            .as_deref()
            .and_then(|s| s.trim().parse::<i64>().ok())
            && !(0..=MAX_STARS).contains(&stars)
        {
            return bad("starforce", stars);
        }
        const LINES: [&str; 6] = [
            "potential_option_1",
            "potential_option_2",
            "potential_option_3",
            "additional_potential_option_1",
            "additional_potential_option_2",
            "additional_potential_option_3",
        ];
        let lines = self
            .potential_lines()
            .into_iter()
            .chain(self.additional_lines());
        for (field, line) in LINES.into_iter().zip(lines) {
            let v = line.map(LineValue::read);
            if let Some(v) = v
                && !v.in_range()
            {
                return bad(field, v.value);
            }
        }
        if let Some(add) = &self.item_add_option {
            let fields = [
                ("item_add_option.str", add.str),
                ("item_add_option.dex", add.dex),
                ("item_add_option.int", add.int),
                ("item_add_option.luk", add.luk),
                ("item_add_option.attack_power", add.attack_power),
                ("item_add_option.magic_power", add.magic_power),
                ("item_add_option.all_stat", add.all_stat),
            ];
            for (field, v) in fields {
                let v = ItemOption::get(&v);
                if v.unsigned_abs() > MAX_FLAME_STAT as u64 {
                    return bad(field, v);
                }
            }
        }
        None
    }

    /// The three potential lines (absent lines are `None`).
    pub fn potential_lines(&self) -> [Option<&str>; 3] {
        [
            self.potential_option_1.as_deref(),
            self.potential_option_2.as_deref(),
            self.potential_option_3.as_deref(),
        ]
    }

    /// The three additional potential lines (absent lines are `None`).
    pub fn additional_lines(&self) -> [Option<&str>; 3] {
        [
            self.additional_potential_option_1.as_deref(),
            self.additional_potential_option_2.as_deref(),
            self.additional_potential_option_3.as_deref(),
        ]
    }
}

/// One of the item's option objects (total, base, flame, starforce, etc, exceptional). Fields that a given
/// object does not carry stay `None` and are not serialised. Stat values travel as strings ([`StrNum`]); the
/// few fields the upstream sends as JSON numbers stay numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemOption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub str: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dex: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luk: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hp: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mp: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack_power: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub magic_power: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub armor: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boss_damage: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_monster_armor: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_stat: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<StrNum>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_i64"
    )]
    pub equipment_level_decrease: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hp_rate: Option<StrNum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mp_rate: Option<StrNum>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_i64"
    )]
    pub base_equipment_level: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_i64"
    )]
    pub exceptional_upgrade: Option<i64>,
}

impl ItemOption {
    /// The value of a stat field, 0 when absent or unparsable.
    pub fn get(v: &Option<StrNum>) -> i64 {
        v.map(|n| n.0).unwrap_or(0)
    }
}

/// An integer the upstream sends as a JSON string (`"163"`). Deserialises from a string or a number;
/// a string that is not an integer (e.g. `""`) reads as 0 rather than failing the whole payload.
/// Serialises as a string, like the upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StrNum(pub i64);

impl Serialize for StrNum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Formatted on the stack: `collect_str` goes through `fmt` machinery, which was a sixth of the cost
        // of serialising a whole payload (the simulator writes ~10,000 of these per answer).
        s.serialize_str(itoa::Buffer::new().format(self.0))
    }
}

impl<'de> Deserialize<'de> for StrNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientI64).map(StrNum)
    }
}

/// Reads an integer the lenient way (see [`StrNum`]) straight from the parser's tokens: no intermediate
/// `serde_json::Value` and no allocation per number (a payload carries ~10,000 of them). Strings are trimmed
/// and parsed (unparsable → 0), floats truncate, integers beyond `i64` saturate, booleans are 0/1, and
/// null, arrays and objects read as 0 (their contents are skipped).
struct LenientI64;

impl<'de> serde::de::Visitor<'de> for LenientI64 {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an integer or a string holding one")
    }
    fn visit_i64<E>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E>(self, v: u64) -> Result<i64, E> {
        Ok(i64::try_from(v).unwrap_or(i64::MAX))
    }
    fn visit_f64<E>(self, v: f64) -> Result<i64, E> {
        Ok(v as i64)
    }
    fn visit_bool<E>(self, v: bool) -> Result<i64, E> {
        Ok(v as i64)
    }
    fn visit_str<E>(self, v: &str) -> Result<i64, E> {
        Ok(v.trim().parse().unwrap_or(0))
    }
    fn visit_unit<E>(self) -> Result<i64, E> {
        Ok(0)
    }
    fn visit_none<E>(self) -> Result<i64, E> {
        Ok(0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<i64, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(0)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<i64, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(0)
    }
}

/// As [`LenientI64`], with null (or an absent field, through `#[serde(default)]`) as `None`.
struct LenientOptI64;

impl<'de> serde::de::Visitor<'de> for LenientOptI64 {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("null, an integer or a string holding one")
    }
    fn visit_unit<E>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(LenientI64).map(Some)
    }
}

fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_option(LenientOptI64)
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "../shared/data/nexon/item-equipment-evan.json";

    #[test]
    fn every_real_item_is_within_the_game_maxima() {
        let eq = ItemEquipment::from_json(&std::fs::read(SAMPLE).unwrap()).unwrap();
        for list in [
            &eq.item_equipment,
            &eq.item_equipment_preset_1,
            &eq.item_equipment_preset_2,
            &eq.item_equipment_preset_3,
        ] {
            for item in list {
                assert_eq!(item.out_of_range(), None, "{:?}", item.item_name);
            }
        }
    }

    #[test]
    fn the_first_value_beyond_the_game_maxima_is_named() {
        let item = |json: &str| {
            let eq = ItemEquipment::from_json_for_engine(
                format!(r#"{{"item_equipment_preset_1":[{json}]}}"#).as_bytes(),
            )
            .unwrap();
            eq.item_equipment_preset_1[0].out_of_range()
        };
        let oor = |field, value| Some(OutOfRange { field, value });
        assert_eq!(item("{}"), None);
        assert_eq!(
            item(r#"{"item_base_option":{"base_equipment_level":300},"starforce":"30"}"#),
            None
        );
        assert_eq!(
            item(r#"{"item_base_option":{"base_equipment_level":10000000}}"#),
            oor("base_equipment_level", 10_000_000)
        );
        assert_eq!(
            item(r#"{"item_base_option":{"base_equipment_level":-1}}"#),
            oor("base_equipment_level", -1)
        );
        assert_eq!(item(r#"{"starforce":"31"}"#), oor("starforce", 31));
        assert_eq!(
            item(r#"{"starforce":"x"}"#),
            None,
            "the starforce block's own invalid_stars"
        );
        assert_eq!(
            item(r#"{"potential_option_2":"INT +999999999%"}"#),
            oor("potential_option_2", 999_999_999)
        );
        assert_eq!(
            item(r#"{"additional_potential_option_3":"스킬 재사용 대기시간 -60초"}"#),
            oor("additional_potential_option_3", -60)
        );
        assert_eq!(
            item(r#"{"item_add_option":{"luk":"9223372036854775807"}}"#),
            oor("item_add_option.luk", i64::MAX)
        );
        assert_eq!(
            item(r#"{"item_add_option":{"all_stat":1e30}}"#),
            oor("item_add_option.all_stat", i64::MAX)
        );
    }

    #[test]
    fn parses_the_real_sample_with_its_item_counts() {
        let bytes = std::fs::read(SAMPLE).expect("reference sample beside the project");
        let eq = ItemEquipment::from_json(&bytes).unwrap();
        assert_eq!(eq.character_class.as_deref(), Some("에반"));
        assert_eq!(eq.preset_no, Some(2));
        assert_eq!(eq.item_equipment.len(), 24);
        assert_eq!(eq.item_equipment_preset_1.len(), 23);
        assert_eq!(eq.item_equipment_preset_2.len(), 24);
        assert_eq!(eq.item_equipment_preset_3.len(), 23);
        assert_eq!(eq.dragon_equipment.len(), 4);
        let hat = &eq.item_equipment[0];
        assert_eq!(hat.base_level(), 250);
        assert_eq!(hat.starforce.as_deref(), Some("22"));
        assert_eq!(
            ItemOption::get(&hat.item_add_option.as_ref().unwrap().int),
            130
        );
    }

    #[test]
    fn numbers_serialise_as_the_upstream_strings() {
        for (n, text) in [
            (0, "\"0\""),
            (163, "\"163\""),
            (-7, "\"-7\""),
            (i64::MIN, "\"-9223372036854775808\""),
            (i64::MAX, "\"9223372036854775807\""),
        ] {
            assert_eq!(serde_json::to_string(&StrNum(n)).unwrap(), text);
            assert_eq!(serde_json::from_str::<StrNum>(text).unwrap(), StrNum(n));
        }
    }

    #[test]
    fn round_trips_the_wire_shape() {
        let bytes = std::fs::read(SAMPLE).unwrap();
        let eq = ItemEquipment::from_json(&bytes).unwrap();
        let out = serde_json::to_vec(&eq).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        // Numbers inside option objects stay strings, level fields stay numbers.
        let hat = &v["item_equipment"][0];
        assert_eq!(hat["item_total_option"]["int"], "398");
        assert_eq!(hat["item_base_option"]["base_equipment_level"], 250);
        assert_eq!(ItemEquipment::from_json(&out).unwrap(), eq);
    }

    #[test]
    fn tolerates_empty_nulls_and_unknown_fields() {
        let empty = br#"{"date":"2023-12-21","character_class":null,"preset_no":null,
            "item_equipment":[],"item_equipment_preset_1":null,"dragon_equipment":null,"new_field":{"x":1}}"#;
        let eq = ItemEquipment::from_json(empty).unwrap();
        assert!(eq.is_empty());
        assert_eq!(eq.preset(1), Some(&[][..]));
        assert_eq!(eq.preset(4), None);
        let odd = br#"{"item_equipment":[{"item_base_option":{"base_equipment_level":"200"},
            "item_add_option":{"str":12,"dex":"","int":null},"starforce":null}]}"#;
        let eq = ItemEquipment::from_json(odd).unwrap();
        let it = &eq.item_equipment[0];
        assert_eq!(it.base_level(), 200);
        let add = it.item_add_option.as_ref().unwrap();
        assert_eq!(ItemOption::get(&add.str), 12);
        assert_eq!(ItemOption::get(&add.dex), 0);
        assert_eq!(ItemOption::get(&add.int), 0);
    }

    #[test]
    fn reads_numbers_leniently_without_failing_the_payload() {
        let odd = br#"{"preset_no":" 2 ","item_equipment":[{"item_base_option":{"base_equipment_level":200.9},
            "item_add_option":{"str":" 7 ","dex":99999999999999999999,"int":true,"luk":[1,2],"max_hp":{"a":1},
            "max_mp":"-3","attack_power":"x1"},"special_ring_level":null,"growth_level":"4"}]}"#;
        let eq = ItemEquipment::from_json(odd).unwrap();
        assert_eq!(eq.preset_no, Some(2));
        let it = &eq.item_equipment[0];
        assert_eq!(it.base_level(), 200);
        assert_eq!(it.special_ring_level, None);
        assert_eq!(it.growth_level, Some(4));
        let add = it.item_add_option.as_ref().unwrap();
        let got: Vec<i64> = [
            &add.str,
            &add.dex,
            &add.int,
            &add.luk,
            &add.max_hp,
            &add.max_mp,
        ]
        .into_iter()
        .map(ItemOption::get)
        .collect();
        assert_eq!(got, vec![7, i64::MAX, 1, 0, 0, -3]);
        assert_eq!(ItemOption::get(&add.attack_power), 0);
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        for parse in [
            ItemEquipment::from_json,
            ItemEquipment::from_json_for_engine,
        ] {
            assert!(parse(b"[1,2]").is_err());
            assert!(parse(b"{\"item_equipment\":{").is_err());
            assert!(parse(b"{\"item_equipment\":3}").is_err());
            // A skipped field must still be well-formed JSON.
            assert!(parse(b"{\"item_equipment\":[{\"item_icon\":tru}]}").is_err());
            let e = parse(b"{\"date\":\"\xff\"}").unwrap_err();
            assert!(e.to_string().contains("UTF-8"), "{e}");
        }
        // In a skipped field, past a long run of Korean text (the SIMD check's blocks), at its exact byte.
        let mut body = format!("{{\"item_description\":\"{}", "에반".repeat(100)).into_bytes();
        let at = body.len();
        body.extend_from_slice(b"\xed\xa0\x80\"}");
        let e = ItemEquipment::from_json_for_engine(&body).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("invalid UTF-8 at byte {at}")),
            "{e}"
        );
    }
}
