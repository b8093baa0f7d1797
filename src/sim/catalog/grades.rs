//! Potential grades and cube types: with an item's level and slot, they select a group of the cube table.
//!
//! Contract: [`Grade`] orders 레어 < 에픽 < 유니크 < 레전드리 and round-trips through the upstream's Korean
//! names; [`CubeType`] round-trips through the table's `cube_type` spelling (`BLACK`, `ADDITIONAL`). Both
//! `parse` functions return `None` for any other text.
//!
//! Failure modes: none.

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
