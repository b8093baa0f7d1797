//! Generated characters: `basic` and `item-equipment` payloads as pure functions of `(seed, ocid)`.
//!
//! Contract:
//! - [`generate_equipment`] and [`generate_basic`] are deterministic: the same `(seed, ocid, date)` gives an
//!   equal value (and, serialised, identical bytes) on every run, build and machine; they never panic and
//!   accept any `ocid` string (the HTTP layer decides which ocids exist). Everything about a character —
//!   class, level, creation date, presets, every item — is drawn from SplitMix64 streams keyed by the seed
//!   and the ocid ([`super::rng`]), never from `rand` or the clock.
//! - The payload has the upstream's shape (the shared model [`ItemEquipment`], serialised like the Evan
//!   sample): `preset_no` 1..=3, three presets of 20–24 items over the real slot names, `item_equipment` =
//!   the equipped preset, every item with all six option objects (string-typed numbers), grades
//!   레어/에픽/유니크/레전드리, star force (some items scroll-starred: `starforce_scroll_flag` = `사용`,
//!   at most 12 stars), flames in `item_add_option` (boss items always 4 flame lines), `title` and
//!   `medal_shape` objects, and `dragon_equipment` / `mechanic_equipment` for 에반 / 메카닉.
//! - Potential and additional potential lines are drawn from the synthetic cube table ([`super::table`]),
//!   line `k` from group `(grade, item level, item_equipment_slot, k)`; nothing else produces option lines.
//! - A `date` before [`first_date`] (2023-12-21) or before the character's creation date yields the
//!   upstream's "did not exist yet" answer: every field empty except `date`. Any other date gives the same
//!   gear (only `date` differs): the simulated world does not change over time.
//!
//! Why: the gateway, its tests and its load tests need many realistic characters without storing any;
//! determinism makes cache and Monte Carlo tests reproducible. Numbers are plausible, not the game's exact
//! formulas: only the potential lines carry probabilistic meaning (they follow the table exactly).

use chrono::NaiveDate;

use super::catalog::{
    CLASSES, Class, Companion, CubeType, Flames, GUILDS, Grade, Kind, MEDAL_SHAPES, SLOTS, SOULS,
    SlotDef, Stat, Stats, TITLES, Template, WEAPON_SHAPES, WORLDS, companion_items, max_stars,
    templates,
};
use super::rng::{SplitMix64, derive, stream};
use super::table::{GroupKey, table};
use crate::expectation::model::{Item, ItemEquipment, ItemOption, StrNum};
use crate::nexon::wire::CharacterBasic;

const ICON_BASE: &str = "https://open.api.nexon.com/static/maplestory/item/icon/";
const LOOK_BASE: &str = "https://open.api.nexon.com/static/maplestory/character/look/";

/// The first date the upstream has data for (2023-12-21).
pub fn first_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 12, 21).expect("valid date")
}

/// Parses a `date` query value (`YYYY-MM-DD`, exactly).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The upstream's spelling of a requested date in a response.
fn wire_date(d: NaiveDate) -> String {
    format!("{}T00:00+09:00", d.format("%Y-%m-%d"))
}

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

/// A stable icon URL for a name: `K` + 7 letters `A`–`P`, like the upstream's.
fn icon(name: &str) -> String {
    let mut h = derive(0, &[b"icon", name.as_bytes()]);
    let mut s = String::from(ICON_BASE);
    s.push('K');
    for _ in 0..7 {
        s.push((b'A' + (h & 15) as u8) as char);
        h >>= 4;
    }
    s
}

fn pick_template(ts: &[Template], tier: f64, used: &[String], r: &mut SplitMix64) -> usize {
    let x = (tier + (r.unit() - 0.5) * 0.6).clamp(0.0, 0.999);
    let want = (x * ts.len() as f64) as usize;
    // Nearest unused template (rings and pendants are not worn twice).
    (0..ts.len())
        .map(|d| [want.saturating_sub(d), (want + d).min(ts.len() - 1)])
        .flat_map(|p| p.into_iter())
        .find(|&i| !used.contains(&ts[i].name))
        .unwrap_or(want)
}

fn roll_slot(
    s: &SlotDef,
    c: &Class,
    tier: f64,
    used: &mut Vec<String>,
    r: &mut SplitMix64,
) -> Item {
    let ts = templates(s, c);
    let i = pick_template(&ts, tier, used, r);
    if matches!(s.kind, Kind::Ring | Kind::Pendant) {
        used.push(ts[i].name.clone());
    }
    roll_item(s, &ts[i], c, tier, r)
}

fn roll_grade(tier: f64, additional: bool, r: &mut SplitMix64) -> Option<Grade> {
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

fn draw_lines(
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

/// Star-force stat bonus above 15 stars, per star, by level.
fn star_stat_step(level: i64) -> i64 {
    match level {
        ..=139 => 7,
        140..=149 => 9,
        150..=159 => 11,
        160..=199 => 13,
        200..=249 => 15,
        _ => 17,
    }
}

fn star_attack_base(level: i64) -> i64 {
    match level {
        ..=149 => 8,
        150..=159 => 9,
        160..=199 => 10,
        200..=249 => 12,
        _ => 14,
    }
}

fn starforce_stats(stars: i64, kind: Kind, c: &Class, base: &Stats, level: i64) -> Stats {
    if stars == 0 {
        return Stats::default();
    }
    let stat = 2 * stars.min(5)
        + 3 * (stars - 5).clamp(0, 10)
        + star_stat_step(level) * (stars - 15).clamp(0, 7);
    let over = (stars - 15).clamp(0, 7);
    let mut atk: i64 = (0..over).map(|k| star_attack_base(level) + k).sum();
    if kind == Kind::Gloves {
        atk += [5, 7, 9, 11, 13, 14, 15]
            .iter()
            .filter(|&&s| s <= stars)
            .count() as i64;
    }
    let mut out = Stats {
        max_hp: 17 * stars.min(15),
        armor: base.armor * 2 * stars.min(22) / 15,
        ..Stats::default().job_stats(c, stat)
    };
    if kind == Kind::Weapon {
        let compound = |b: i64| (b as f64 * (1.02f64.powi(stars.min(15) as i32) - 1.0)) as i64;
        out.attack_power = compound(base.attack_power) + (star_attack_base(level) + 4) * over;
        out.magic_power = compound(base.magic_power) + (star_attack_base(level) + 7) * over;
        if !c.magic() {
            out.magic_power = 0;
        }
        out.max_mp = out.max_hp;
    } else {
        out.attack_power = atk;
        out.magic_power = atk;
    }
    if kind == Kind::Shoes && stars > 15 {
        out.speed = 2 * over + 4;
        out.jump = 2 * over + 4;
    }
    out
}

fn scroll_star_stats(stars: i64, c: &Class, level: i64) -> Stats {
    Stats {
        armor: stars * (level / 10),
        ..Stats::default()
            .all4(stars * (level / 50 + 1))
            .job_attack(c, stars * (level / 40 + 1))
    }
}

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

fn roll_flames(
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

fn scroll_stats(n: i64, kind: Kind, c: &Class, r: &mut SplitMix64) -> Stats {
    let mut s = Stats::default();
    for _ in 0..n {
        match kind {
            Kind::Weapon => {
                *s.stat_mut(c.main) += 4;
                s = s.job_attack(
                    c,
                    if c.magic() {
                        s.magic_power
                    } else {
                        s.attack_power
                    } + 9,
                );
            }
            Kind::Gloves => {
                s = s.job_attack(
                    c,
                    if c.magic() {
                        s.magic_power
                    } else {
                        s.attack_power
                    } + 4,
                )
            }
            Kind::Heart => {
                s = s.all4(s.str + 3);
                s.attack_power += 2;
                s.magic_power += r.range(2, 9);
            }
            k if k.is_accessory() || k == Kind::Belt => {
                *s.stat_mut(c.main) += r.range(2, 4);
                s = s.job_attack(
                    c,
                    if c.magic() {
                        s.magic_power
                    } else {
                        s.attack_power
                    } + r.range(1, 3),
                );
            }
            _ => {
                *s.stat_mut(c.main) += r.range(3, 9);
                s.max_hp += r.range(0, 150);
                s.armor += r.range(1, 15);
            }
        }
    }
    s
}

fn opt_total(s: &Stats) -> ItemOption {
    ItemOption {
        str: Some(StrNum(s.str)),
        dex: Some(StrNum(s.dex)),
        int: Some(StrNum(s.int)),
        luk: Some(StrNum(s.luk)),
        max_hp: Some(StrNum(s.max_hp)),
        max_mp: Some(StrNum(s.max_mp)),
        attack_power: Some(StrNum(s.attack_power)),
        magic_power: Some(StrNum(s.magic_power)),
        armor: Some(StrNum(s.armor)),
        speed: Some(StrNum(s.speed)),
        jump: Some(StrNum(s.jump)),
        boss_damage: Some(StrNum(s.boss_damage)),
        ignore_monster_armor: Some(StrNum(s.ignore_monster_armor)),
        all_stat: Some(StrNum(s.all_stat)),
        damage: Some(StrNum(s.damage)),
        equipment_level_decrease: Some(s.equipment_level_decrease),
        max_hp_rate: Some(StrNum(s.max_hp_rate)),
        max_mp_rate: Some(StrNum(s.max_mp_rate)),
        ..ItemOption::default()
    }
}

fn opt_base(s: &Stats, level: i64) -> ItemOption {
    ItemOption {
        damage: None,
        equipment_level_decrease: None,
        base_equipment_level: Some(level),
        ..opt_total(s)
    }
}

fn opt_exceptional(s: &Stats, upgrades: i64) -> ItemOption {
    ItemOption {
        str: Some(StrNum(s.str)),
        dex: Some(StrNum(s.dex)),
        int: Some(StrNum(s.int)),
        luk: Some(StrNum(s.luk)),
        max_hp: Some(StrNum(s.max_hp)),
        max_mp: Some(StrNum(s.max_mp)),
        attack_power: Some(StrNum(s.attack_power)),
        magic_power: Some(StrNum(s.magic_power)),
        exceptional_upgrade: Some(upgrades),
        ..ItemOption::default()
    }
}

/// The 11-key objects (`item_etc_option`, `item_starforce_option`).
fn opt_small(s: &Stats) -> ItemOption {
    ItemOption {
        armor: Some(StrNum(s.armor)),
        speed: Some(StrNum(s.speed)),
        jump: Some(StrNum(s.jump)),
        exceptional_upgrade: None,
        ..opt_exceptional(s, 0)
    }
}

fn opt_add(s: &Stats) -> ItemOption {
    ItemOption {
        boss_damage: Some(StrNum(s.boss_damage)),
        damage: Some(StrNum(s.damage)),
        all_stat: Some(StrNum(s.all_stat)),
        equipment_level_decrease: Some(s.equipment_level_decrease),
        ..opt_small(s)
    }
}

fn roll_item(s: &SlotDef, tpl: &Template, c: &Class, tier: f64, r: &mut SplitMix64) -> Item {
    let kind = s.kind;
    let level = tpl.level;
    let base = tpl.base;

    let (pot_grade, add_grade) = if tpl.potential {
        (roll_grade(tier, false, r), roll_grade(tier, true, r))
    } else {
        (None, None)
    };
    let [p1, p2, p3] = draw_lines(CubeType::Black, pot_grade, level, s.slot, r);
    let [a1, a2, a3] = draw_lines(CubeType::Additional, add_grade, level, s.slot, r);

    let (stars, scroll_starred) = if !tpl.starforce {
        (0, false)
    } else if tpl.scroll_starrable && level <= 150 && r.chance(0.2) {
        (r.range(5, 12).min(max_stars(level)), true)
    } else {
        const STEPS: [i64; 8] = [10, 12, 15, 17, 18, 20, 21, 22];
        let x = (tier + (r.unit() - 0.5) * 0.4).clamp(0.0, 0.999);
        (
            STEPS[(x * STEPS.len() as f64) as usize].min(max_stars(level)),
            false,
        )
    };
    let star_opt = if scroll_starred {
        scroll_star_stats(stars, c, level)
    } else {
        starforce_stats(stars, kind, c, &base, level)
    };

    let add = roll_flames(tpl.flames, kind, level, c, &base, tier, r);
    let upgrades = if tpl.starforce { r.range(2, 9) } else { 0 };
    let etc = scroll_stats(upgrades, kind, c, r);
    let exceptional = matches!(kind, Kind::Face | Kind::Eye | Kind::Earring)
        && tpl.starforce
        && r.chance(0.1 * tier);
    let exc = if exceptional {
        Stats {
            max_hp: 500,
            max_mp: 500,
            ..Stats::default().all4(15).job_attack(c, 10)
        }
    } else {
        Stats::default()
    };
    let total = base.plus(add).plus(etc).plus(star_opt).plus(exc);

    let (soul_name, soul_option) = if kind == Kind::Weapon && r.chance(0.8) {
        let (n, o) = *r.pick(&SOULS);
        (Some(n.to_string()), Some(o.to_string()))
    } else {
        (None, None)
    };
    let (shape_name, shape_icon) = if kind == Kind::Weapon && r.chance(0.2) {
        let n = *r.pick(&WEAPON_SHAPES);
        (n.to_string(), icon(n))
    } else {
        (tpl.name.clone(), icon(&tpl.name))
    };
    let cuttable = if tpl.flames == Flames::None || !tpl.starforce {
        255
    } else {
        r.range(2, 10)
    };

    Item {
        item_equipment_part: Some(tpl.part.clone()),
        item_equipment_slot: Some(s.slot.to_string()),
        item_name: Some(tpl.name.clone()),
        item_icon: Some(icon(&tpl.name)),
        item_description: tpl.description.map(str::to_string),
        item_shape_name: Some(shape_name),
        item_shape_icon: Some(shape_icon),
        item_gender: None,
        item_total_option: Some(opt_total(&total)),
        item_base_option: Some(opt_base(&base, level)),
        potential_option_grade: pot_grade.map(|g| g.name().to_string()),
        additional_potential_option_grade: add_grade.map(|g| g.name().to_string()),
        potential_option_flag: Some("false".into()),
        potential_option_1: p1,
        potential_option_2: p2,
        potential_option_3: p3,
        additional_potential_option_flag: Some("false".into()),
        additional_potential_option_1: a1,
        additional_potential_option_2: a2,
        additional_potential_option_3: a3,
        equipment_level_increase: Some(0),
        item_exceptional_option: Some(opt_exceptional(&exc, exceptional as i64)),
        item_add_option: Some(opt_add(&add)),
        growth_exp: Some(0),
        growth_level: Some(0),
        scroll_upgrade: Some(upgrades.to_string()),
        cuttable_count: Some(cuttable.to_string()),
        golden_hammer_flag: Some(
            if upgrades > 0 && r.chance(0.3) {
                "적용"
            } else {
                "미적용"
            }
            .to_string(),
        ),
        scroll_resilience_count: Some("0".into()),
        scroll_upgradeable_count: Some("0".into()),
        soul_name,
        soul_option,
        item_etc_option: Some(opt_small(&etc)),
        starforce: Some(stars.to_string()),
        starforce_scroll_flag: Some(
            if scroll_starred {
                "사용"
            } else {
                "미사용"
            }
            .to_string(),
        ),
        item_starforce_option: Some(opt_small(&star_opt)),
        special_ring_level: Some(if tpl.special_ring { r.range(1, 4) } else { 0 }),
        date_expire: None,
        freestyle_flag: Some("0".into()),
    }
}

fn roll_companion(kind: Companion, part: &str, name: &str, r: &mut SplitMix64) -> Item {
    let level = if kind == Companion::Dragon { 125 } else { 100 };
    let base = Stats {
        armor: 40,
        int: 10,
        magic_power: 1,
        ..Stats::default()
    };
    let etc = Stats {
        int: r.range(0, 12),
        magic_power: r.range(10, 30),
        armor: r.range(10, 40),
        ..Stats::default()
    };
    let zero = Stats::default();
    Item {
        item_equipment_part: Some(part.to_string()),
        item_equipment_slot: Some(part.to_string()),
        item_name: Some(name.to_string()),
        item_icon: Some(icon(name)),
        item_description: None,
        item_shape_name: Some(name.to_string()),
        item_shape_icon: Some(icon(name)),
        item_gender: None,
        item_total_option: Some(opt_total(&base.plus(etc))),
        item_base_option: Some(opt_base(&base, level)),
        equipment_level_increase: Some(0),
        item_exceptional_option: Some(opt_exceptional(&zero, 0)),
        item_add_option: Some(opt_add(&zero)),
        growth_exp: Some(r.range(0, 99)),
        growth_level: Some(r.range(1, 4)),
        scroll_upgrade: Some("5".into()),
        cuttable_count: Some("255".into()),
        golden_hammer_flag: Some("미적용".into()),
        scroll_resilience_count: Some("0".into()),
        scroll_upgradeable_count: Some("0".into()),
        item_etc_option: Some(opt_small(&etc)),
        starforce: Some("0".into()),
        starforce_scroll_flag: Some("미사용".into()),
        item_starforce_option: Some(opt_small(&zero)),
        special_ring_level: Some(0),
        freestyle_flag: Some("0".into()),
        ..Item::default()
    }
}
