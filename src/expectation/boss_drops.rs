//! Which items are boss drops for flames (they roll exactly four flame lines at higher stages).
//!
//! Contract: [`is_boss_drop`] is true when the item name contains one of [`BOSS_DROP_SETS`] (armor sets whose
//! every piece is a boss drop) or equals one of [`BOSS_DROP_ITEMS`] (single accessories and pockets). The lists are
//! data: adding a boss item after a game patch is a one-line change here plus a line in `docs/expectation.md`.
//! Only slots that can carry flames matter (rings, shoulders, emblems, badges and hearts never do), so the lists
//! leave those out.
//!
//! Why names: the upstream payload carries no boss-drop flag and no item id, only the display name. A name the
//! lists do not know is treated as a non-boss item (1–4 lines at lower stages), which makes its expected flames
//! smaller than the truth rather than impossible to reach; the response says which model was used (`boss_drop`).

/// Armor sets every piece of which is a boss drop, matched as a substring of the item name.
pub const BOSS_DROP_SETS: &[&str] = &[
    // Root Abyss / Chaos Root Abyss (hats, tops, bottoms)
    "하이네스",
    "이글아이",
    "트릭스터",
    // AbsoLab, Arcane Umbra, Eternal (all armor pieces)
    "앱솔랩스",
    "아케인셰이드",
    "에테르넬",
];

/// Single boss-drop items that can carry flames (face, eye, earring, pendant, belt, pocket), exact names.
pub const BOSS_DROP_ITEMS: &[&str] = &[
    // Boss accessory set
    "응축된 힘의 결정석",
    "아쿠아틱 레터 눈장식",
    "블랙빈 마크",
    "파풀라투스 마크",
    "골든 클로버 벨트",
    "분노한 자쿰의 벨트",
    "혼테일의 목걸이",
    "카오스 혼테일의 목걸이",
    "매커네이터 펜던트",
    "도미네이터 펜던트",
    "데아 시두스 이어링",
    "핑크빛 성배",
    // Pitched boss set
    "루즈 컨트롤 머신 마크",
    "마력이 깃든 안대",
    "몽환의 벨트",
    "고통의 근원",
    "커맨더 포스 이어링",
    "저주받은 적의 마도서",
    "저주받은 청의 마도서",
    "저주받은 녹의 마도서",
    "저주받은 황의 마도서",
    // Dawn boss set
    "트와일라이트 마크",
    "에스텔라 이어링",
    "데이브레이크 펜던트",
];

/// True when the item name marks a boss drop (see the module contract).
pub fn is_boss_drop(item_name: &str) -> bool {
    let name = item_name.trim();
    BOSS_DROP_SETS.iter().any(|s| name.contains(s)) || BOSS_DROP_ITEMS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_boss_drop("에테르넬 메이지햇"));
        assert!(is_boss_drop("아케인셰이드 메이지슈즈"));
        assert!(is_boss_drop(" 몽환의 벨트 "));
        assert!(is_boss_drop("도미네이터 펜던트"));
        assert!(!is_boss_drop("그리드 펜던트"));
        assert!(!is_boss_drop("레드 매지션 마이스터 심볼"));
        assert!(!is_boss_drop(""));
    }
}
