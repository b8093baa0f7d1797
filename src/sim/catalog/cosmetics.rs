//! Names that dress a payload without entering any computation: worlds, guilds, titles, medal shapes,
//! weapon shapes and weapon souls.
//!
//! Contract: constant tables; the generator picks from them by index, so their order is part of every
//! seeded payload.
//!
//! Failure modes: none.

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
