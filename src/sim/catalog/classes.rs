//! Playable classes: job branch, main and secondary stat, weapon and secondary weapon, companion equipment.
//!
//! Contract: [`CLASSES`] holds the 16 classes characters are drawn from; the generator picks by index, so
//! their order is part of every seeded payload. [`Job`]'s naming helpers give the per-job words the item
//! catalog builds armour names from.
//!
//! Failure modes: none.

/// A character stat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    Str,
    Dex,
    Int,
    Luk,
}

impl Stat {
    pub const ALL: [Stat; 4] = [Stat::Str, Stat::Dex, Stat::Int, Stat::Luk];

    /// The option-line spelling (`STR`, `DEX`, `INT`, `LUK`).
    pub fn label(self) -> &'static str {
        match self {
            Stat::Str => "STR",
            Stat::Dex => "DEX",
            Stat::Int => "INT",
            Stat::Luk => "LUK",
        }
    }
}

/// The five job branches; armour names depend on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Warrior,
    Mage,
    Archer,
    Thief,
    Pirate,
}

impl Job {
    pub(super) fn armour_word(self) -> &'static str {
        match self {
            Job::Warrior => "나이트",
            Job::Mage => "메이지",
            Job::Archer => "아처",
            Job::Thief => "시프",
            Job::Pirate => "파이렛",
        }
    }

    pub(super) fn korean(self) -> &'static str {
        match self {
            Job::Warrior => "전사",
            Job::Mage => "마법사",
            Job::Archer => "궁수",
            Job::Thief => "도적",
            Job::Pirate => "해적",
        }
    }

    /// Index into the per-job name tables below.
    pub(super) fn i(self) -> usize {
        self as usize
    }
}

/// Companion equipment some classes carry besides their presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Companion {
    None,
    Dragon,
    Mechanic,
}

/// A playable class.
#[derive(Clone, Copy, Debug)]
pub struct Class {
    pub name: &'static str,
    pub job: Job,
    pub main: Stat,
    pub sub: Stat,
    /// `item_equipment_part` of the weapon (the weapon type).
    pub weapon: &'static str,
    /// `item_equipment_part` and name of the secondary weapon.
    pub secondary: (&'static str, &'static str),
    pub companion: Companion,
}

impl Class {
    /// Mages scale with magic attack, everyone else with weapon attack.
    pub fn magic(&self) -> bool {
        self.job == Job::Mage
    }
}

const fn class(
    name: &'static str,
    job: Job,
    main: Stat,
    sub: Stat,
    weapon: &'static str,
    secondary: (&'static str, &'static str),
    companion: Companion,
) -> Class {
    Class {
        name,
        job,
        main,
        sub,
        weapon,
        secondary,
        companion,
    }
}

/// The classes characters are drawn from.
pub const CLASSES: [Class; 16] = [
    class(
        "에반",
        Job::Mage,
        Stat::Int,
        Stat::Luk,
        "스태프",
        ("문서", "드래곤마스터의 유산"),
        Companion::Dragon,
    ),
    class(
        "아크메이지(불,독)",
        Job::Mage,
        Stat::Int,
        Stat::Luk,
        "스태프",
        ("마법서", "세이지의 마법서"),
        Companion::None,
    ),
    class(
        "비숍",
        Job::Mage,
        Stat::Int,
        Stat::Luk,
        "완드",
        ("마법서", "성스러운 기도의 마법서"),
        Companion::None,
    ),
    class(
        "히어로",
        Job::Warrior,
        Stat::Str,
        Stat::Dex,
        "두손검",
        ("메달", "용사의 메달"),
        Companion::None,
    ),
    class(
        "다크나이트",
        Job::Warrior,
        Stat::Str,
        Stat::Dex,
        "창",
        ("로자리오", "어둠의 로자리오"),
        Companion::None,
    ),
    class(
        "아델",
        Job::Warrior,
        Stat::Str,
        Stat::Dex,
        "튜너",
        ("브레이슬릿", "에테르 브레이슬릿"),
        Companion::None,
    ),
    class(
        "아란",
        Job::Warrior,
        Stat::Str,
        Stat::Dex,
        "폴암",
        ("무게추", "얼음 무게추"),
        Companion::None,
    ),
    class(
        "보우마스터",
        Job::Archer,
        Stat::Dex,
        Stat::Str,
        "활",
        ("화살깃", "바람의 화살깃"),
        Companion::None,
    ),
    class(
        "신궁",
        Job::Archer,
        Stat::Dex,
        Stat::Str,
        "석궁",
        ("화살촉", "강철 화살촉"),
        Companion::None,
    ),
    class(
        "메르세데스",
        Job::Archer,
        Stat::Dex,
        Stat::Str,
        "듀얼보우건",
        ("마법화살", "엘프의 마법화살"),
        Companion::None,
    ),
    class(
        "나이트로드",
        Job::Thief,
        Stat::Luk,
        Stat::Dex,
        "아대",
        ("부적", "어둠의 부적"),
        Companion::None,
    ),
    class(
        "섀도어",
        Job::Thief,
        Stat::Luk,
        Stat::Dex,
        "단검",
        ("단도", "그림자 단도"),
        Companion::None,
    ),
    class(
        "듀얼블레이더",
        Job::Thief,
        Stat::Luk,
        Stat::Dex,
        "단검",
        ("블레이드", "쌍둥이 블레이드"),
        Companion::None,
    ),
    class(
        "바이퍼",
        Job::Pirate,
        Stat::Str,
        Stat::Dex,
        "너클",
        ("리스트밴드", "파도의 리스트밴드"),
        Companion::None,
    ),
    class(
        "캡틴",
        Job::Pirate,
        Stat::Dex,
        Stat::Str,
        "건",
        ("불릿", "해적의 불릿"),
        Companion::None,
    ),
    class(
        "메카닉",
        Job::Pirate,
        Stat::Dex,
        Stat::Str,
        "건",
        ("매거진", "거대한 매거진"),
        Companion::Mechanic,
    ),
];
