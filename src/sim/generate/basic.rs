//! The character behind an ocid and its `basic` payload.
//!
//! Contract: [`character`] derives everything about a character but its name — class, level, creation date,
//! gear tier, world, guild, equipped preset — from the stream `(seed, "character", ocid)`; [`generate_basic`]
//! adds the name and a look URL drawn from its own stream, and answers a date the character did not exist
//! on with every field empty except `date`. Both accept any ocid and never panic.

use chrono::NaiveDate;

use super::{first_date, wire_date};
use crate::nexon::wire::CharacterBasic;
use crate::sim::catalog::{CLASSES, Class, GUILDS, WORLDS};
use crate::sim::rng::stream;

const LOOK_BASE: &str = "https://open.api.nexon.com/static/maplestory/character/look/";

/// The character behind an ocid (everything but the name, which only `basic` needs).
#[derive(Clone, Debug)]
pub struct Character {
    pub class: &'static Class,
    pub gender: &'static str,
    pub level: i64,
    pub exp: i64,
    pub exp_rate: String,
    /// Creation date (KST).
    pub created: NaiveDate,
    /// Gear strength in `[0, 1]`: drives item choice, grades, stars and flames.
    pub tier: f64,
    pub world: &'static str,
    pub guild: Option<&'static str>,
    pub preset_no: i64,
    pub liberation: i64,
}

impl Character {
    /// Whether a request for `date` predates the character's data (see the module contract).
    pub fn absent_on(&self, date: Option<NaiveDate>) -> bool {
        date.is_some_and(|d| d < first_date() || d < self.created)
    }
}

/// Derives the character for `(seed, ocid)`.
pub fn character(seed: u64, ocid: &str) -> Character {
    let mut r = stream(seed, &[b"character", ocid.as_bytes()]);
    let class = r.pick(&CLASSES);
    let gender = if r.chance(0.5) { "남" } else { "여" };
    // Levels cluster in 240–285 like an active player base.
    let level = 200 + (r.range(0, 95) + r.range(0, 95) + r.range(0, 95)) / 3;
    let exp = r.range(1_000_000_000, 900_000_000_000_000);
    let exp_rate = format!("{}.{:03}", r.range(0, 99), r.range(0, 999));
    // About one character in ten is created after 2023-12-21, so the "did not exist yet" rule shows up.
    let start = NaiveDate::from_ymd_opt(2011, 1, 1).expect("valid date");
    let created = if r.chance(0.1) {
        first_date() + chrono::Days::new(r.range(1, 300) as u64)
    } else {
        start + chrono::Days::new(r.range(0, (first_date() - start).num_days() - 1) as u64)
    };
    let tier = (0.7 * (level - 200) as f64 / 95.0 + 0.3 * r.unit()).clamp(0.0, 1.0);
    let world = *r.pick(&WORLDS);
    let guild = if r.chance(0.8) {
        Some(*r.pick(&GUILDS))
    } else {
        None
    };
    let preset_no = r.range(1, 3);
    let liberation = r.range(0, 2);
    Character {
        class,
        gender,
        level,
        exp,
        exp_rate,
        created,
        tier,
        world,
        guild,
        preset_no,
        liberation,
    }
}

/// `GET /maplestory/v1/character/basic` for `(seed, ocid)`, named `name`.
pub fn generate_basic(
    seed: u64,
    ocid: &str,
    name: &str,
    date: Option<NaiveDate>,
) -> CharacterBasic {
    let ch = character(seed, ocid);
    if ch.absent_on(date) {
        return CharacterBasic {
            date: date.map(wire_date),
            ..CharacterBasic::default()
        };
    }
    let mut r = stream(seed, &[b"look", ocid.as_bytes()]);
    let look: String = (0..560)
        .map(|_| (b'A' + r.below(16) as u8) as char)
        .collect();
    CharacterBasic {
        date: date.map(wire_date),
        character_name: Some(name.to_string()),
        world_name: Some(ch.world.to_string()),
        character_gender: Some(ch.gender.to_string()),
        character_class: Some(ch.class.name.to_string()),
        character_class_level: Some("6".to_string()),
        character_level: Some(ch.level),
        character_exp: Some(ch.exp),
        character_exp_rate: Some(ch.exp_rate.clone()),
        character_guild_name: ch.guild.map(str::to_string),
        character_image: Some(format!("{LOOK_BASE}{look}")),
        character_date_create: Some(wire_date(ch.created)),
        access_flag: Some("true".to_string()),
        liberation_quest_clear: Some(ch.liberation.to_string()),
    }
}
