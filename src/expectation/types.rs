//! Newtypes of the domain, each built by a `parse` that is the only way in.
//!
//! Contract: a value of [`Grade`], [`Stars`], [`PartName`], [`CubeType`], [`MainStat`] exists only if the text it
//! came from was meaningful; `parse` returns `None` otherwise and never panics. The engine turns a `None` into an
//! `unavailable` reason for the one block that needed the value, so a strange field in one item never spoils the
//! rest of the character ("parse, don't validate").
//!
//! Why: the upstream sends everything as free text (`"레전드리"`, `"22"`, `"반지1"`), and the simulator and the
//! probability tables spell the same things; one place decides what each spelling means.

use serde::Serialize;

/// A potential grade. Ordered from the lowest to the highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Rare,
    Epic,
    Unique,
    Legendary,
}

impl Grade {
    pub const ALL: [Grade; 4] = [Grade::Rare, Grade::Epic, Grade::Unique, Grade::Legendary];

    /// Accepts the Korean names the upstream and the tables use (`레어`, `에픽`, `유니크`, `레전드리`) and the
    /// English names, case-insensitively.
    pub fn parse(text: &str) -> Option<Grade> {
        let t = text.trim();
        match t {
            "레어" => return Some(Grade::Rare),
            "에픽" => return Some(Grade::Epic),
            "유니크" => return Some(Grade::Unique),
            "레전드리" => return Some(Grade::Legendary),
            _ => {}
        }
        match t.to_ascii_lowercase().as_str() {
            "rare" => Some(Grade::Rare),
            "epic" => Some(Grade::Epic),
            "unique" => Some(Grade::Unique),
            "legendary" => Some(Grade::Legendary),
            _ => None,
        }
    }

    /// 0 for rare … 3 for legendary (the column of the price tables).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn korean(self) -> &'static str {
        match self {
            Grade::Rare => "레어",
            Grade::Epic => "에픽",
            Grade::Unique => "유니크",
            Grade::Legendary => "레전드리",
        }
    }
}

/// The item's starforce stars: an integer in `0..=Stars::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Stars(u8);

impl Stars {
    /// The highest star the game knows.
    pub const MAX: u8 = 30;

    /// Parses the upstream's `starforce` string (`"22"`); an empty string reads as 0 stars (items that cannot
    /// be starforced send `"0"` or nothing). Anything else that is not an integer in `0..=30` is `None`.
    pub fn parse(text: &str) -> Option<Stars> {
        let t = text.trim();
        if t.is_empty() {
            return Some(Stars(0));
        }
        match t.parse::<u8>() {
            Ok(n) if n <= Self::MAX => Some(Stars(n)),
            _ => None,
        }
    }

    pub fn new(n: u8) -> Option<Stars> {
        (n <= Self::MAX).then_some(Stars(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// The name of an equipment slot as the upstream's `item_equipment_slot` and the table's `item_equipment_slot`
/// column spell it (`모자`, `반지1`, `펜던트2`, `보조무기`, …): trimmed, never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PartName(String);

impl PartName {
    pub fn parse(text: &str) -> Option<PartName> {
        let t = text.trim();
        (!t.is_empty()).then(|| PartName(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The weapon slot (`무기`).
    pub fn is_weapon(&self) -> bool {
        self.0 == "무기"
    }
}

impl std::fmt::Display for PartName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which potential a cube rerolls: `BLACK` (the potential) or `ADDITIONAL` (the additional potential).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CubeType {
    Black,
    Additional,
}

impl CubeType {
    /// `BLACK` / `ADDITIONAL`, case-insensitively; any other cube type is `None`.
    pub fn parse(text: &str) -> Option<CubeType> {
        match text.trim().to_ascii_uppercase().as_str() {
            "BLACK" => Some(CubeType::Black),
            "ADDITIONAL" => Some(CubeType::Additional),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CubeType::Black => "BLACK",
            CubeType::Additional => "ADDITIONAL",
        }
    }
}

/// One of the four primary stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum MainStat {
    Str,
    Dex,
    Int,
    Luk,
}

impl MainStat {
    pub const ALL: [MainStat; 4] = [MainStat::Str, MainStat::Dex, MainStat::Int, MainStat::Luk];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The secondary stat most jobs of this main stat use: STR→DEX, DEX→STR, INT→LUK, LUK→DEX.
    /// (Xenon and Demon Avenger do not fit this rule; see `docs/expectation.md`.)
    pub fn usual_sub_stat(self) -> MainStat {
        match self {
            MainStat::Str => MainStat::Dex,
            MainStat::Dex => MainStat::Str,
            MainStat::Int => MainStat::Luk,
            MainStat::Luk => MainStat::Dex,
        }
    }
}

/// Whether the character's damage scales with attack (공격력) or magic (마력).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttackType {
    Attack,
    Magic,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_parse_korean_and_english() {
        assert_eq!(Grade::parse(" 레전드리 "), Some(Grade::Legendary));
        assert_eq!(Grade::parse("Epic"), Some(Grade::Epic));
        assert_eq!(Grade::parse("전설"), None);
        assert!(Grade::Rare < Grade::Legendary);
        for g in Grade::ALL {
            assert_eq!(Grade::parse(g.korean()), Some(g));
        }
    }

    #[test]
    fn stars_are_bounded_integers() {
        assert_eq!(Stars::parse("22").map(Stars::get), Some(22));
        assert_eq!(Stars::parse("").map(Stars::get), Some(0));
        assert_eq!(Stars::parse("31"), None);
        assert_eq!(Stars::parse("-1"), None);
        assert_eq!(Stars::parse("2a"), None);
    }

    #[test]
    fn part_names_and_cube_types() {
        assert_eq!(PartName::parse(" 반지1 ").unwrap().as_str(), "반지1");
        assert!(PartName::parse("  ").is_none());
        assert!(PartName::parse("무기").unwrap().is_weapon());
        assert_eq!(CubeType::parse("black"), Some(CubeType::Black));
        assert_eq!(CubeType::parse("RED"), None);
    }
}
