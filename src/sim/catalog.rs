//! The simulated world's fixed vocabulary: classes, equipment slots, the item catalog, grades and cube types.
//!
//! Contract: everything here is constant data plus pure functions over it. [`templates`] lists, for one
//! equipment slot and one class, the items a character can wear there, weakest first, each with its base
//! level, base stats and whether it carries potential, stars and flames. [`potential_combos`] is the set of
//! `(item_equipment_slot, base_equipment_level)` pairs of every potential-bearing template for every class:
//! the synthetic cube table is generated from exactly this set, so the generator can never draw from a
//! group the table lacks (a test checks it both ways).
//!
//! Why this shape: item names, parts and levels follow the real game closely enough for a reader of a
//! payload to recognise it (에테르넬 / 아케인셰이드 / 앱솔랩스 sets, 거대한 공포, 몽환의 벨트…), while
//! potential-bearing items use only a handful of levels (100, 120, 140, 150, 160, 200, 250) so that the
//! synthetic table stays small and every level is itself a band of the table (exact-match and
//! floor-to-band lookups agree). Stat numbers are plausible, not the game's exact formulas.
//!
//! Failure modes: none at run time; the tables are checked by tests.

/// A potential grade, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grade {
    Rare,
    Epic,
    Unique,
    Legendary,
}

impl Grade {
    pub const ALL: [Grade; 4] = [Grade::Rare, Grade::Epic, Grade::Unique, Grade::Legendary];

    /// The upstream's Korean name (`레어`, `에픽`, `유니크`, `레전드리`).
    pub fn name(self) -> &'static str {
        match self {
            Grade::Rare => "레어",
            Grade::Epic => "에픽",
            Grade::Unique => "유니크",
            Grade::Legendary => "레전드리",
        }
    }

    pub fn parse(s: &str) -> Option<Grade> {
        Grade::ALL.into_iter().find(|g| g.name() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The grade below (`None` for 레어).
    pub fn lower(self) -> Option<Grade> {
        match self {
            Grade::Rare => None,
            Grade::Epic => Some(Grade::Rare),
            Grade::Unique => Some(Grade::Epic),
            Grade::Legendary => Some(Grade::Unique),
        }
    }
}

/// Which cube's table a row belongs to: potential (`BLACK`) or additional potential (`ADDITIONAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CubeType {
    Black,
    Additional,
}

impl CubeType {
    pub const ALL: [CubeType; 2] = [CubeType::Black, CubeType::Additional];

    pub fn name(self) -> &'static str {
        match self {
            CubeType::Black => "BLACK",
            CubeType::Additional => "ADDITIONAL",
        }
    }

    pub fn parse(s: &str) -> Option<CubeType> {
        CubeType::ALL.into_iter().find(|c| c.name() == s)
    }
}

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
    fn armour_word(self) -> &'static str {
        match self {
            Job::Warrior => "나이트",
            Job::Mage => "메이지",
            Job::Archer => "아처",
            Job::Thief => "시프",
            Job::Pirate => "파이렛",
        }
    }

    fn korean(self) -> &'static str {
        match self {
            Job::Warrior => "전사",
            Job::Mage => "마법사",
            Job::Archer => "궁수",
            Job::Thief => "도적",
            Job::Pirate => "해적",
        }
    }

    /// Index into the per-job name tables below.
    fn i(self) -> usize {
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

/// Flat stats of one option object (all fields; the serialiser picks each object's key set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub str: i64,
    pub dex: i64,
    pub int: i64,
    pub luk: i64,
    pub max_hp: i64,
    pub max_mp: i64,
    pub attack_power: i64,
    pub magic_power: i64,
    pub armor: i64,
    pub speed: i64,
    pub jump: i64,
    pub boss_damage: i64,
    pub ignore_monster_armor: i64,
    pub all_stat: i64,
    pub damage: i64,
    pub equipment_level_decrease: i64,
    pub max_hp_rate: i64,
    pub max_mp_rate: i64,
}

impl Stats {
    pub fn stat_mut(&mut self, s: Stat) -> &mut i64 {
        match s {
            Stat::Str => &mut self.str,
            Stat::Dex => &mut self.dex,
            Stat::Int => &mut self.int,
            Stat::Luk => &mut self.luk,
        }
    }

    /// Sets all four stats.
    pub fn all4(mut self, v: i64) -> Self {
        self.str = v;
        self.dex = v;
        self.int = v;
        self.luk = v;
        self
    }

    /// Sets the class's main and secondary stat.
    pub fn job_stats(mut self, c: &Class, v: i64) -> Self {
        *self.stat_mut(c.main) = v;
        *self.stat_mut(c.sub) = v;
        self
    }

    /// Sets the class's attack (magic attack for mages).
    pub fn job_attack(mut self, c: &Class, v: i64) -> Self {
        if c.magic() {
            self.magic_power = v;
        } else {
            self.attack_power = v;
        }
        self
    }

    /// Field-wise sum.
    pub fn plus(self, o: Stats) -> Stats {
        Stats {
            str: self.str + o.str,
            dex: self.dex + o.dex,
            int: self.int + o.int,
            luk: self.luk + o.luk,
            max_hp: self.max_hp + o.max_hp,
            max_mp: self.max_mp + o.max_mp,
            attack_power: self.attack_power + o.attack_power,
            magic_power: self.magic_power + o.magic_power,
            armor: self.armor + o.armor,
            speed: self.speed + o.speed,
            jump: self.jump + o.jump,
            boss_damage: self.boss_damage + o.boss_damage,
            ignore_monster_armor: self.ignore_monster_armor + o.ignore_monster_armor,
            all_stat: self.all_stat + o.all_stat,
            damage: self.damage + o.damage,
            equipment_level_decrease: self.equipment_level_decrease + o.equipment_level_decrease,
            max_hp_rate: self.max_hp_rate + o.max_hp_rate,
            max_mp_rate: self.max_mp_rate + o.max_mp_rate,
        }
    }
}

/// How an item rolls flames (`item_add_option`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flames {
    /// No flames (rings, shoulders, hearts, emblems, …).
    None,
    /// Boss-drop items: always 4 lines.
    Boss,
    /// Other flame-able items: 1–4 lines.
    Normal,
}

/// An item that can be worn in a slot.
#[derive(Clone, Debug)]
pub struct Template {
    pub name: String,
    /// `item_equipment_part` (e.g. `반지` for `반지1`, the weapon type for `무기`).
    pub part: String,
    pub level: i64,
    pub potential: bool,
    pub starforce: bool,
    pub flames: Flames,
    pub description: Option<&'static str>,
    /// Special skill rings (level 1–4, no potential).
    pub special_ring: bool,
    /// Whether the item may carry scroll-based stars instead of star force (`starforce_scroll_flag` = `사용`).
    pub scroll_starrable: bool,
    pub base: Stats,
}

fn t(name: impl Into<String>, part: &str, level: i64, base: Stats) -> Template {
    Template {
        name: name.into(),
        part: part.to_string(),
        level,
        potential: true,
        starforce: true,
        flames: Flames::Boss,
        description: None,
        special_ring: false,
        scroll_starrable: false,
        base,
    }
}

impl Template {
    fn flames(mut self, f: Flames) -> Self {
        self.flames = f;
        self
    }
    fn no_stars(mut self) -> Self {
        self.starforce = false;
        self
    }
    fn no_potential(mut self) -> Self {
        self.potential = false;
        self
    }
    fn desc(mut self, d: &'static str) -> Self {
        self.description = Some(d);
        self
    }
    fn scroll_ok(mut self) -> Self {
        self.scroll_starrable = true;
        self
    }
    fn special(mut self) -> Self {
        self.special_ring = true;
        self.potential = false;
        self.starforce = false;
        self.flames = Flames::None;
        self
    }
}

/// Armour set strength by level (base stats scale with it).
fn set_power(level: i64) -> i64 {
    match level {
        ..=150 => 10,
        151..=160 => 13,
        161..=200 => 16,
        _ => 20,
    }
}

fn armour(kind: Kind, level: i64, c: &Class) -> Stats {
    let p = set_power(level);
    let s = Stats::default();
    match kind {
        Kind::Hat => Stats {
            armor: 37 * p + 5,
            ignore_monster_armor: if level >= 250 { 15 } else { 10 },
            ..s.job_stats(c, 4 * p).job_attack(c, p / 2)
        },
        Kind::Top | Kind::Bottom => Stats {
            armor: 16 * p + 5,
            ignore_monster_armor: 5,
            ..s.job_stats(c, 25 * p / 10).job_attack(c, 3 * p / 10)
        },
        Kind::Shoes => Stats {
            armor: 12 * p + 10,
            speed: 10,
            jump: 7,
            ..s.job_stats(c, 25 * p / 10).job_attack(c, 9 * p / 16)
        },
        Kind::Gloves => Stats {
            armor: 12 * p + 10,
            ..s.job_stats(c, 25 * p / 10).job_attack(c, 9 * p / 16)
        },
        Kind::Cape => Stats {
            armor: 28 * p + 2,
            attack_power: 6 * p / 16,
            magic_power: 6 * p / 16,
            ..s.all4(35 * p / 16)
        },
        _ => Stats {
            armor: 19 * p - 4,
            attack_power: 20 * p / 16,
            magic_power: 20 * p / 16,
            ..s.all4(35 * p / 16)
        },
    }
}

const TOP_150: [&str; 5] = [
    "워리어아머",
    "던위치로브",
    "레인져후드",
    "어새신셔츠",
    "원더러코트",
];
const BOTTOM_150: [&str; 5] = [
    "워리어팬츠",
    "던위치팬츠",
    "레인져팬츠",
    "어새신팬츠",
    "원더러팬츠",
];
const HAT_160: [&str; 5] = [
    "나이트헬름",
    "메이지크라운",
    "아처후드",
    "시프캡",
    "파이렛페도라",
];
const HAT_250: [&str; 5] = ["나이트헬름", "메이지햇", "아처햇", "시프반다나", "파이렛햇"];
const TOP_250: [&str; 5] = [
    "나이트아머",
    "메이지로브",
    "아처후드",
    "시프셔츠",
    "파이렛코트",
];

fn weapon(level: i64, c: &Class, set: &str) -> Template {
    let (atk, stat, ied) = match level {
        ..=150 => (150, 60, 10),
        151..=160 => (175, 100, 10),
        _ => (250, 150, 20),
    };
    let mut base = Stats {
        boss_damage: 30,
        ignore_monster_armor: ied,
        ..Stats::default().job_stats(c, stat)
    };
    if c.magic() {
        base.attack_power = atk;
        base.magic_power = atk * 162 / 100;
    } else {
        base.attack_power = atk + atk / 5;
    }
    t(format!("{set} {}", c.weapon), c.weapon, level, base)
}

/// The items that fit `slot` for `class`, weakest first. Never empty.
pub fn templates(slot: &SlotDef, c: &Class) -> Vec<Template> {
    let j = c.job;
    let w = j.armour_word();
    let s = Stats::default();
    let part = slot.slot;
    match slot.kind {
        Kind::Hat => vec![
            t(format!("앱솔랩스 {}", HAT_160[j.i()]), part, 160, armour(Kind::Hat, 160, c)),
            t(format!("아케인셰이드 {w}햇"), part, 200, armour(Kind::Hat, 200, c)),
            t(format!("에테르넬 {}", HAT_250[j.i()]), part, 250, armour(Kind::Hat, 250, c)),
        ],
        Kind::Top => vec![
            t(format!("이글아이 {}", TOP_150[j.i()]), part, 150, armour(Kind::Top, 150, c)),
            t(format!("에테르넬 {}", TOP_250[j.i()]), part, 250, armour(Kind::Top, 250, c)),
        ],
        Kind::Bottom => vec![
            t(format!("트릭스터 {}", BOTTOM_150[j.i()]), part, 150, armour(Kind::Bottom, 150, c)),
            t(format!("에테르넬 {w}팬츠"), part, 250, armour(Kind::Bottom, 250, c)),
        ],
        Kind::Shoes | Kind::Gloves | Kind::Cape | Kind::Shoulder => {
            let suffix = match slot.kind {
                Kind::Shoes => "슈즈",
                Kind::Gloves => "글러브",
                Kind::Cape => "케이프",
                _ => "숄더",
            };
            let fl = if slot.kind == Kind::Shoulder {
                Flames::None
            } else {
                Flames::Boss
            };
            vec![
                t(format!("앱솔랩스 {w}{suffix}"), part, 160, armour(slot.kind, 160, c)).flames(fl),
                t(format!("아케인셰이드 {w}{suffix}"), part, 200, armour(slot.kind, 200, c)).flames(fl),
            ]
        }
        Kind::Belt => vec![
            t("분노한 자쿰의 벨트", part, 150, Stats { max_hp: 150, armor: 150, attack_power: 1, magic_power: 1, ..s.all4(18) }),
            t("몽환의 벨트", part, 200, Stats { max_hp: 150, max_mp: 150, armor: 150, attack_power: 6, magic_power: 6, ..s.all4(50) }),
        ],
        Kind::Face => vec![
            t("트와일라이트 마크", part, 140, Stats { armor: 150, attack_power: 5, magic_power: 5, ..s.all4(5) }),
            t("루즈 컨트롤 머신 마크", part, 160, Stats { armor: 200, attack_power: 10, magic_power: 10, ..s.all4(10) }),
        ],
        Kind::Eye => vec![
            t("아쿠아틱 레터 눈장식", part, 100, Stats { armor: 100, attack_power: 1, magic_power: 1, ..s.all4(6) })
                .flames(Flames::Normal)
                .scroll_ok(),
            t("마력이 깃든 안대", part, 160, Stats { armor: 300, attack_power: 3, magic_power: 3, ..s.all4(15) }),
        ],
        Kind::Earring => vec![
            t("에스텔라 이어링", part, 160, Stats { max_hp: 300, armor: 150, attack_power: 3, magic_power: 3, ..s.all4(10) }),
            t("커맨더 포스 이어링", part, 200, Stats { max_hp: 500, max_mp: 500, armor: 100, attack_power: 5, magic_power: 5, ..s.all4(7) }),
        ],
        Kind::Ring => vec![
            t("리스트레인트 링", "반지", 110, Stats { attack_power: 4, magic_power: 4, ..s.all4(4) })
                .desc("리스트레인트 링 착용 시 재사용 대기시간 180초, 지속시간 동안 공격력, 마력을 증가시킨다.")
                .special(),
            t("컨티뉴어스 링", "반지", 110, Stats { attack_power: 4, magic_power: 4, ..s.all4(4) })
                .desc("컨티뉴어스 링 착용 시 120초 동안 준비시간을 가진다. 준비를 마치면 보스몬스터에게 공격 적중 시 일시적으로 보스 몬스터 공격 시 데미지, 공격력, 마력을 증가시킨다.")
                .special(),
            t("SS급 마스터 쥬얼링", "반지", 120, Stats { max_hp: 3000, max_mp: 3000, attack_power: 20, magic_power: 20, ..s.all4(30) })
                .desc("마법의 힘을 간직한 4색의 쥬얼링을 하나로 합쳐 만들어진 반지. 착용자의 모든 능력치를 대폭 증가시킨다.")
                .no_stars()
                .flames(Flames::None),
            t("테네브리스 원정대 반지", "반지", 120, Stats { max_hp: 1000, max_mp: 1000, attack_power: 10, magic_power: 10, ..s.all4(10) })
                .desc("검은 마법사와의 결전을 준비하는 테네브리스 원정대를 위해 연합에서 제작한 특별한 힘을 가진 반지이다.\n테네브리스 원정대 반지 강화 주문서만 사용 가능\n잠재능력 및 에디셔널 잠재능력 부여 가능")
                .no_stars()
                .flames(Flames::None),
            t("코스모스 링", "반지", 120, Stats::default())
                .desc("우주의 질서를 담고 있는 반지. 코스믹 아톰과 반응하면 점점 그 힘이 강력해 진다고 한다.\n잠재능력 및 에디셔널 잠재능력 부여 가능")
                .no_stars()
                .flames(Flames::None),
            t("거대한 공포", "반지", 200, Stats { max_hp: 250, max_mp: 250, attack_power: 4, magic_power: 4, ..s.all4(5) })
                .flames(Flames::None),
        ],
        Kind::Pendant => vec![
            t("도미네이터 펜던트", "펜던트", 140, Stats { armor: 100, attack_power: 3, magic_power: 3, max_hp_rate: 10, max_mp_rate: 10, ..s.all4(20) })
                .scroll_ok(),
            t("데이브레이크 펜던트", "펜던트", 140, Stats { armor: 100, attack_power: 2, magic_power: 2, max_hp_rate: 5, ..s.all4(8) })
                .flames(Flames::Normal)
                .scroll_ok(),
            t("고통의 근원", "펜던트", 160, Stats { armor: 200, attack_power: 3, magic_power: 3, max_hp_rate: 5, ..s.all4(10) }),
        ],
        Kind::Weapon => vec![
            weapon(160, c, "앱솔랩스"),
            weapon(200, c, "아케인셰이드"),
            weapon(200, c, "제네시스"),
        ],
        Kind::Secondary => vec![{
            let (p, n) = c.secondary;
            t(n, p, 100, Stats::default().job_stats(c, 10).job_attack(c, 3))
                .no_stars()
                .flames(Flames::None)
        }],
        Kind::Emblem => vec![
            t("골드 메이플리프 엠블렘", part, 100, Stats::default().job_stats(c, 10).job_attack(c, 2))
                .no_stars()
                .flames(Flames::None),
            t(format!("미트라의 분노 : {}", j.korean()), part, 200, Stats::default().job_stats(c, 40).job_attack(c, 5))
                .no_stars()
                .flames(Flames::None),
        ],
        Kind::Pocket => {
            let color = match c.main {
                Stat::Str => "적",
                Stat::Dex => "녹",
                Stat::Int => "청",
                Stat::Luk => "흑",
            };
            vec![
                t("핑크빛 성배", part, 140, Stats { max_hp: 50, max_mp: 50, attack_power: 5, magic_power: 5, ..s.all4(5) })
                    .desc("포켓 슬롯에만 장착 가능")
                    .no_potential()
                    .no_stars(),
                t(format!("저주받은 {color}의 마도서"), part, 160, Stats { max_hp: 100, max_mp: 100, attack_power: 10, magic_power: 10, ..s.all4(10) }.job_stats(c, 20))
                    .desc("포켓 슬롯에만 장착 가능")
                    .no_potential()
                    .no_stars(),
            ]
        }
        Kind::Heart => vec![
            t("티타늄 하트", part, 100, Stats { max_hp: 100, ..s.all4(3) })
                .no_potential()
                .flames(Flames::None),
            t("블랙 하트", part, 120, Stats { max_hp: 100, attack_power: 77, magic_power: 77, ..s.all4(50) })
                .desc("기계 심장 슬롯에만 장착 가능. 다른 기계 심장을 장착하고 있으면 효과가 적용되지 않는다.")
                .flames(Flames::None),
        ],
        Kind::Badge => vec![
            t("칠요의 뱃지", part, 100, Stats { attack_power: 7, magic_power: 7, ignore_monster_armor: 10, ..s.all4(7) })
                .desc("슈피겔만에 따르면 숨겨진 효과도 없는 심심한 뱃지라고 한다.")
                .no_potential()
                .no_stars()
                .flames(Flames::None),
            t("크리스탈 웬투스 뱃지", part, 130, Stats { attack_power: 10, magic_power: 10, ..s.all4(10) })
                .desc("크리스탈로 만들어진 웬투스 모양의 뱃지. 빛을 받으면 영롱하게 반짝인다.")
                .no_potential()
                .no_stars()
                .flames(Flames::None),
        ],
        Kind::Medal => vec![
            t("칠요의 몬스터파커", part, 100, Stats { attack_power: 7, magic_power: 7, ignore_monster_armor: 10, ..s.all4(7) })
                .desc("이 훈장을 차고 다니면 당신이 7개의 요일 훈장을 모두 수집한 몬스터파크 VIP임을 주위 사람들이 알게 된다.")
                .no_potential()
                .no_stars()
                .flames(Flames::None),
            t("세계여행자", part, 100, Stats { max_hp: 300, attack_power: 3, magic_power: 3, ..s.all4(5) })
                .desc("메이플 월드 곳곳을 여행한 모험가에게 주어지는 훈장이다.")
                .no_potential()
                .no_stars()
                .flames(Flames::None),
        ],
    }
}

/// Every `(item_equipment_slot, base_equipment_level)` a potential-bearing item can have, sorted.
pub fn potential_combos() -> Vec<(&'static str, i64, Kind)> {
    let mut out = Vec::new();
    for slot in &SLOTS {
        for c in &CLASSES {
            for tpl in templates(slot, c) {
                if tpl.potential
                    && !out
                        .iter()
                        .any(|(s, l, _)| *s == slot.slot && *l == tpl.level)
                {
                    out.push((slot.slot, tpl.level, slot.kind));
                }
            }
        }
    }
    out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    out
}

/// The most stars an item of this level can hold (star-force caps by level).
pub fn max_stars(level: i64) -> i64 {
    match level {
        ..=94 => 5,
        95..=107 => 8,
        108..=117 => 10,
        118..=127 => 15,
        128..=137 => 20,
        _ => 25,
    }
}

/// Companion (dragon / mechanic) equipment: `(item_equipment_part, name)`; level 125 for dragons, 100
/// for mechanics, like the game's starter gear.
pub fn companion_items(c: Companion) -> &'static [(&'static str, &'static str)] {
    match c {
        Companion::None => &[],
        Companion::Dragon => &[
            ("드래곤 모자", "어비스 마스크"),
            ("드래곤 펜던트", "어비스 펜던트"),
            ("드래곤 날개장식", "어비스 윙즈"),
            ("드래곤 꼬리장식", "어비스 테일"),
        ],
        Companion::Mechanic => &[
            ("메카닉 엔진", "다이아몬드 엔진"),
            ("메카닉 암", "다이아몬드 암"),
            ("메카닉 레그", "다이아몬드 레그"),
            ("메카닉 프레임", "다이아몬드 프레임"),
            ("메카닉 트랜지스터", "다이아몬드 트랜지스터"),
        ],
    }
}

pub const WORLDS: [&str; 12] = [
    "스카니아",
    "베라",
    "루나",
    "제니스",
    "크로아",
    "유니온",
    "엘리시움",
    "이노시스",
    "레드",
    "오로라",
    "아케인",
    "노바",
];

pub const GUILDS: [&str; 10] = [
    "리더",
    "메이플고수",
    "단풍잎",
    "별빛",
    "새벽",
    "달빛소나타",
    "초보환영",
    "보스원정대",
    "Friends",
    "Heroes",
];

/// Titles: `(name, description)`.
pub const TITLES: [(&str, &str); 6] = [
    (
        "예티X핑크빈",
        "예티와 핑크빈 모두 내 마음 한구석에 남아있네. 예티와 핑크빈을 추억하며.\n올스탯 +20\n최대 HP/최대 MP +1000\n공격력/마력+10\n보스 몬스터 데미지+10%",
    ),
    (
        "핑아일체",
        "핑크빈과 하나가 되었다!\n올스탯 +15\n공격력/마력 +8\n보스 몬스터 데미지 +10%\n몬스터 방어율 무시 +10%",
    ),
    (
        "마스터 오브 보스",
        "보스 몬스터를 모두 물리친 진정한 강자에게 주어지는 칭호.\n올스탯 +10\n공격력/마력 +5\n보스 몬스터 데미지 +5%",
    ),
    (
        "초보 모험가",
        "이제 막 모험을 시작한 모험가에게 주어지는 칭호.\n올스탯 +5",
    ),
    (
        "용사",
        "메이플 월드를 지킨 용사의 증표.\n올스탯 +15\n최대 HP/최대 MP +500\n공격력/마력 +5",
    ),
    (
        "검은 마법사를 물리친 자",
        "검은 마법사를 물리치고 메이플 월드에 평화를 가져온 자.\n올스탯 +20\n공격력/마력 +10\n보스 몬스터 데미지 +10%\n몬스터 방어율 무시 +10%",
    ),
];

/// Medal shapes (cosmetic medals): `(name, description)`.
pub const MEDAL_SHAPES: [(&str, &str); 4] = [
    ("♣메이플 모멘트리♣", "메이플스토리 19주년 기념 훈장이다."),
    ("착한 아이", "착한 아이에게 주어지는 훈장."),
    (
        "데미지 마스터",
        "강력한 한 방을 보여준 모험가에게 주어지는 훈장.",
    ),
    ("여행의 시작", "모든 여행은 첫 걸음부터 시작된다."),
];

/// Cosmetic weapon shapes (`item_shape_name`).
pub const WEAPON_SHAPES: [&str; 5] = [
    "화염여우",
    "황금 망치",
    "핑크빈 지팡이",
    "무지개 우산",
    "별빛 검",
];

/// Souls a weapon can carry: `(soul_name, soul_option)`.
pub const SOULS: [(&str, &str); 4] = [
    ("위대한 시그너스의 소울 적용", "마력 +3%"),
    ("위대한 검은 마법사의 소울 적용", "공격력 +3%"),
    ("위대한 윌의 소울 적용", "보스 몬스터 공격 시 데미지 +7%"),
    ("위대한 진 힐라의 소울 적용", "몬스터 방어율 무시 +7%"),
];

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
