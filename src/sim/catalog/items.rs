//! The item catalog: what a character can wear in each slot, the star-force cap by level, and companion
//! (dragon / mechanic) equipment.
//!
//! Contract: [`templates`] lists, for one equipment slot and one class, the items a character can wear
//! there, weakest first and never empty, each with its base level, base stats and whether it carries
//! potential, stars and flames. [`potential_combos`] is the set of `(item_equipment_slot,
//! base_equipment_level)` pairs of every potential-bearing template for every class: the synthetic cube
//! table is generated from exactly this set, so the generator can never draw from a group the table lacks.
//!
//! Why this shape: item names, parts and levels follow the real game closely enough for a reader of a
//! payload to recognise it (에테르넬 / 아케인셰이드 / 앱솔랩스 sets, 거대한 공포, 몽환의 벨트…), while
//! potential-bearing items use only a handful of levels (100, 120, 140, 150, 160, 200, 250) so that the
//! synthetic table stays small and every level is itself a band of the table (exact-match and
//! floor-to-band lookups agree). Stat numbers are plausible, not the game's exact formulas.
//!
//! Failure modes: none at run time; the tables are checked by tests.

use super::classes::{CLASSES, Class, Companion, Stat};
use super::slots::{Kind, SLOTS, SlotDef};
use super::stats::Stats;

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
