//! The option-line parser: one Korean potential line (`INT +12%`) → [`OptionLine`] `{stat, value, unit, raw}`.
//!
//! Contract: [`OptionLine::parse`] is total — it accepts any string, never panics, and returns a line whose
//! `stat` is [`Stat::Other`] (value 0, unit [`Unit::None`], the text kept in `raw`) whenever the text is not one of
//! the recognised shapes. A recognised line carries exactly one value: the single signed integer token that ends
//! the line, optionally followed by `%` or `초`. Digits elsewhere in the line are never read as the value, so
//! `캐릭터 기준 9레벨 당 INT +2` is `+2 INT per 9 levels` (not 92) and `공격 시 20% 확률로 110의 MP 회복` is `Other`.
//! [`LineValue::in_range`] says whether the value is one the game can roll ([`MAX_PERCENT`], [`MAX_SECONDS`],
//! [`MAX_FLAT`]); the parser itself still reads any value of up to nine digits.
//! HTML entities (`&lt;`, `&gt;`, `&amp;`, `&quot;`, `&#39;`, numeric forms) are decoded before matching, because
//! some published tables carry them.
//!
//! Why: lines arrive as display text from two sources (the upstream payload and the probability tables); one
//! strict parser for both means a table line and an item line that mean the same thing compare equal.

use std::borrow::Cow;

use serde::Serialize;

use super::types::MainStat;

/// Largest magnitude of a `%` line the engine computes with. The game's largest potential lines are 40 %
/// (boss damage and ignore defence on legendary weapons, secondaries and emblems); 100 is generous, and keeps
/// every cube target (one cell per point, three lines per slot) a few KB.
pub const MAX_PERCENT: i64 = 100;
/// Largest magnitude of a seconds line: the game's largest is the legendary hat's `-2초`.
pub const MAX_SECONDS: i64 = 10;
/// Largest magnitude of a flat or per-level line: the game's flat potential lines are at most a few hundred
/// (`최대 HP +…`), its per-level lines single digits; 100,000 is generous.
pub const MAX_FLAT: i64 = 100_000;

/// What a line improves. `Other` is every line the engine does not interpret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    Str,
    Dex,
    Int,
    Luk,
    AllStat,
    MaxHp,
    MaxMp,
    Attack,
    Magic,
    Damage,
    BossDamage,
    IgnoreDefence,
    CritDamage,
    CritRate,
    Cooldown,
    ItemDrop,
    MesoGain,
    Defence,
    Speed,
    Jump,
    Other,
}

impl Stat {
    /// The primary stat this line names, if it names one.
    pub fn main_stat(self) -> Option<MainStat> {
        match self {
            Stat::Str => Some(MainStat::Str),
            Stat::Dex => Some(MainStat::Dex),
            Stat::Int => Some(MainStat::Int),
            Stat::Luk => Some(MainStat::Luk),
            _ => None,
        }
    }
}

/// How the value is meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// `+12%`
    Percent,
    /// `+12`
    Flat,
    /// `-2초`
    Seconds,
    /// `캐릭터 기준 9레벨 당 INT +2`: `value` per this many character levels.
    PerLevels(u16),
    /// An `Other` line.
    None,
}

/// One parsed option line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OptionLine {
    pub stat: Stat,
    /// The signed value as written (`-2` for `스킬 재사용 대기시간 -2초`); 0 for `Other`.
    pub value: i64,
    pub unit: Unit,
    /// The text as received (entities not decoded).
    pub raw: String,
}

/// How a line counts for cube targets, independent of the character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineKind {
    StatPct(MainStat),
    AllStatPct,
    AttackPct,
    MagicPct,
    BossPct,
    IedPct,
    CritDmgPct,
    /// Cooldown reduction in seconds.
    CooldownS,
    DropPct,
    MesoPct,
    Other,
}

/// The interpreted part of a line, without the text (cheap to copy; what the engine computes with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineValue {
    pub stat: Stat,
    pub value: i64,
    pub unit: Unit,
}

impl LineValue {
    const OTHER: LineValue = LineValue {
        stat: Stat::Other,
        value: 0,
        unit: Unit::None,
    };

    /// Interprets one line without copying it; [`OptionLine::parse`] is this plus the raw text.
    pub fn read(raw: &str) -> LineValue {
        let decoded = decode_entities(raw);
        let text = decoded.trim();

        if let Some(rest) = text.strip_prefix("캐릭터 기준") {
            return parse_per_level(rest.trim_start())
                .map(|(stat, value, levels)| LineValue {
                    stat,
                    value,
                    unit: Unit::PerLevels(levels),
                })
                .unwrap_or(Self::OTHER);
        }
        let Some((name, value, suffix)) = split_value(text) else {
            return Self::OTHER;
        };
        let unit = match suffix {
            Suffix::Percent => Unit::Percent,
            Suffix::Seconds => Unit::Seconds,
            Suffix::None => Unit::Flat,
        };
        let Some(stat) = stat_from_name(name) else {
            return Self::OTHER;
        };
        // Seconds only make sense for the cooldown line and the cooldown line only in seconds.
        if (stat == Stat::Cooldown) != (unit == Unit::Seconds) {
            return Self::OTHER;
        }
        LineValue { stat, value, unit }
    }

    /// The cube-target class of this line and its non-negative amount (the cooldown line's amount is the
    /// number of seconds it removes).
    /// Whether the value is one the game can roll for its unit: magnitude at most [`MAX_PERCENT`],
    /// [`MAX_SECONDS`] or [`MAX_FLAT`]. An `Other` line always is (its value is not read). The engine leaves an
    /// item with a line outside these bounds out of the computation rather than size a table by it.
    pub fn in_range(&self) -> bool {
        let max = match self.unit {
            Unit::Percent => MAX_PERCENT,
            Unit::Seconds => MAX_SECONDS,
            Unit::Flat | Unit::PerLevels(_) => MAX_FLAT,
            Unit::None => return true,
        };
        self.value.unsigned_abs() <= max as u64
    }

    pub fn kind_and_amount(&self) -> (LineKind, u32) {
        let amount = |v: i64| v.clamp(0, u32::MAX as i64) as u32;
        match (self.stat, self.unit) {
            (Stat::Cooldown, Unit::Seconds) => (LineKind::CooldownS, amount(-self.value)),
            (_, Unit::Percent) => {
                let kind = match self.stat {
                    Stat::Str => LineKind::StatPct(MainStat::Str),
                    Stat::Dex => LineKind::StatPct(MainStat::Dex),
                    Stat::Int => LineKind::StatPct(MainStat::Int),
                    Stat::Luk => LineKind::StatPct(MainStat::Luk),
                    Stat::AllStat => LineKind::AllStatPct,
                    Stat::Attack => LineKind::AttackPct,
                    Stat::Magic => LineKind::MagicPct,
                    Stat::BossDamage => LineKind::BossPct,
                    Stat::IgnoreDefence => LineKind::IedPct,
                    Stat::CritDamage => LineKind::CritDmgPct,
                    Stat::ItemDrop => LineKind::DropPct,
                    Stat::MesoGain => LineKind::MesoPct,
                    _ => LineKind::Other,
                };
                if kind == LineKind::Other {
                    (kind, 0)
                } else {
                    (kind, amount(self.value))
                }
            }
            _ => (LineKind::Other, 0),
        }
    }
}

impl OptionLine {
    /// Parses one line; see the module contract.
    pub fn parse(raw: &str) -> OptionLine {
        let LineValue { stat, value, unit } = LineValue::read(raw);
        OptionLine {
            stat,
            value,
            unit,
            raw: raw.to_owned(),
        }
    }

    pub fn is_other(&self) -> bool {
        self.stat == Stat::Other
    }

    /// The interpreted part of the line.
    pub fn value(&self) -> LineValue {
        LineValue {
            stat: self.stat,
            value: self.value,
            unit: self.unit,
        }
    }

    /// See [`LineValue::kind_and_amount`].
    pub fn kind_and_amount(&self) -> (LineKind, u32) {
        self.value().kind_and_amount()
    }
}

/// `9레벨 당 INT +2` (after the `캐릭터 기준` prefix) → (INT, 2, 9).
fn parse_per_level(rest: &str) -> Option<(Stat, i64, u16)> {
    let (levels, tail) = rest
        .split_once("레벨 당")
        .or_else(|| rest.split_once("레벨당"))?;
    let levels = levels.trim();
    if levels.is_empty() || !levels.bytes().all(|b| b.is_ascii_digit()) || levels.len() > 4 {
        return None;
    }
    let levels: u16 = levels.parse().ok().filter(|n| *n > 0)?;
    let (name, value, suffix) = split_value(tail.trim())?;
    if suffix != Suffix::None {
        return None;
    }
    let stat = stat_from_name(name)?;
    matches!(
        stat,
        Stat::Str | Stat::Dex | Stat::Int | Stat::Luk | Stat::AllStat | Stat::Attack | Stat::Magic
    )
    .then_some((stat, value, levels))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Suffix {
    Percent,
    Seconds,
    None,
}

/// Splits `NAME ±N[%|초]` into its parts. The value token is the last whitespace-separated token: an optional
/// sign and 1..=9 ASCII digits, nothing else. `None` if the text does not end that way or has no name.
fn split_value(text: &str) -> Option<(&str, i64, Suffix)> {
    let (body, suffix) = if let Some(b) = text.strip_suffix('%') {
        (b, Suffix::Percent)
    } else if let Some(b) = text.strip_suffix('초') {
        (b, Suffix::Seconds)
    } else {
        (text, Suffix::None)
    };
    let (name, token) = body.rsplit_once(char::is_whitespace)?;
    let name = name.trim().trim_end_matches(':').trim_end();
    if name.is_empty() {
        return None;
    }
    let (negative, digits) = match token.as_bytes().first()? {
        b'+' => (false, &token[1..]),
        b'-' => (true, &token[1..]),
        _ => (false, token),
    };
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude: i64 = digits.parse().ok()?;
    Some((name, if negative { -magnitude } else { magnitude }, suffix))
}

fn stat_from_name(name: &str) -> Option<Stat> {
    // Compare without the spaces, in a stack buffer: no allocation per line.
    let mut buf = [0u8; 64];
    let mut len = 0;
    for c in name.chars().filter(|c| !c.is_whitespace()) {
        let n = c.len_utf8();
        if len + n > buf.len() {
            return None;
        }
        c.encode_utf8(&mut buf[len..len + n]);
        len += n;
    }
    let compact = std::str::from_utf8(&buf[..len]).ok()?;
    let stat = match compact {
        "올스탯" => Stat::AllStat,
        "최대HP" => Stat::MaxHp,
        "최대MP" => Stat::MaxMp,
        "공격력" => Stat::Attack,
        "마력" => Stat::Magic,
        "데미지" => Stat::Damage,
        "보스몬스터데미지" | "보스몬스터공격시데미지" => Stat::BossDamage,
        "몬스터방어율무시" => Stat::IgnoreDefence,
        "크리티컬데미지" => Stat::CritDamage,
        "크리티컬확률" => Stat::CritRate,
        "스킬재사용대기시간" | "모든스킬의재사용대기시간" => Stat::Cooldown,
        "아이템드롭률" => Stat::ItemDrop,
        "메소획득량" => Stat::MesoGain,
        "방어력" => Stat::Defence,
        "이동속도" => Stat::Speed,
        "점프력" => Stat::Jump,
        s if s.eq_ignore_ascii_case("STR") => Stat::Str,
        s if s.eq_ignore_ascii_case("DEX") => Stat::Dex,
        s if s.eq_ignore_ascii_case("INT") => Stat::Int,
        s if s.eq_ignore_ascii_case("LUK") => Stat::Luk,
        s if s.eq_ignore_ascii_case("최대hp") => Stat::MaxHp,
        s if s.eq_ignore_ascii_case("최대mp") => Stat::MaxMp,
        _ => return None,
    };
    Some(stat)
}

/// Decodes the HTML entities published tables carry. Unknown or malformed entities are kept as they are.
pub fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        // An entity is at most a handful of ASCII characters up to ';'.
        let end = after.bytes().take(12).position(|b| b == b';');
        let decoded = end.and_then(|end| {
            let name = &after[1..end];
            let ch = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse::<u32>().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &after[len..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> (Stat, i64, Unit) {
        let l = OptionLine::parse(s);
        (l.stat, l.value, l.unit)
    }

    #[test]
    fn values_beyond_the_game_maxima_are_out_of_range() {
        let r = |s: &str| LineValue::read(s).in_range();
        assert!(r("INT +12%") && r("보스 몬스터 데미지 +100%") && r("스킬 재사용 대기시간 -2초"));
        assert!(
            r("최대 HP +100000") && r("캐릭터 기준 9레벨 당 INT +2") && r("아무 말 +999999999")
        );
        assert!(!r("INT +999999999%"));
        assert!(!r("INT +101%"));
        assert!(!r("INT -101%"));
        assert!(!r("스킬 재사용 대기시간 -11초"));
        assert!(!r("최대 HP +100001"));
        assert!(!r("캐릭터 기준 9레벨 당 INT +999999999"));
        // The amount a cube target is sized by never exceeds the bound of an in-range line.
        let (_, amount) = LineValue::read("INT +100%").kind_and_amount();
        assert_eq!(amount, MAX_PERCENT as u32);
    }

    #[test]
    fn reads_the_one_value_of_each_documented_shape() {
        assert_eq!(p("INT +12%"), (Stat::Int, 12, Unit::Percent));
        assert_eq!(p("올스탯 +6%"), (Stat::AllStat, 6, Unit::Percent));
        assert_eq!(
            p("보스 몬스터 데미지 +35%"),
            (Stat::BossDamage, 35, Unit::Percent)
        );
        assert_eq!(
            p("몬스터 방어율 무시 +40%"),
            (Stat::IgnoreDefence, 40, Unit::Percent)
        );
        assert_eq!(p("공격력 +12%"), (Stat::Attack, 12, Unit::Percent));
        assert_eq!(p("마력 +12%"), (Stat::Magic, 12, Unit::Percent));
        assert_eq!(p("마력 +14"), (Stat::Magic, 14, Unit::Flat));
        assert_eq!(
            p("크리티컬 데미지 +8%"),
            (Stat::CritDamage, 8, Unit::Percent)
        );
        assert_eq!(
            p("스킬 재사용 대기시간 -2초"),
            (Stat::Cooldown, -2, Unit::Seconds)
        );
        assert_eq!(
            p("캐릭터 기준 9레벨 당 INT +2"),
            (Stat::Int, 2, Unit::PerLevels(9))
        );
        assert_eq!(
            p("캐릭터 기준 10레벨 당 마력 +1"),
            (Stat::Magic, 1, Unit::PerLevels(10))
        );
        assert_eq!(p("메소 획득량 +20%"), (Stat::MesoGain, 20, Unit::Percent));
        assert_eq!(p("아이템 드롭률 +20%"), (Stat::ItemDrop, 20, Unit::Percent));
        assert_eq!(p("최대 HP +9%"), (Stat::MaxHp, 9, Unit::Percent));
    }

    #[test]
    fn lines_with_other_numbers_are_other() {
        for s in [
            "공격 시 20% 확률로 110의 MP 회복",
            "피격 시 5% 확률로 데미지의 40% 무시",
            "&lt;쓸만한 헤이스트&gt; 스킬 사용 가능",
            "30% 확률로 받은 피해의 50%를 반사",
            "피격 후 무적시간 +1초",
            "모든 스킬의 MP 소모 -15%",
            "캐릭터 기준 9레벨 당 INT +2%",
            "INT +1.5%",
            "+12%",
            "",
            "INT",
            "INT +",
            "INT 12 +3x",
        ] {
            let l = OptionLine::parse(s);
            assert!(l.is_other(), "{s} parsed as {l:?}");
            assert_eq!(l.raw, s);
            assert_eq!(l.kind_and_amount(), (LineKind::Other, 0));
        }
    }

    #[test]
    fn cooldown_amount_is_the_seconds_removed() {
        let l = OptionLine::parse("스킬 재사용 대기시간 -2초");
        assert_eq!(l.kind_and_amount(), (LineKind::CooldownS, 2));
        assert_eq!(
            OptionLine::parse("INT +9%").kind_and_amount(),
            (LineKind::StatPct(MainStat::Int), 9)
        );
        // Flat lines never count toward a percentage target.
        assert_eq!(
            OptionLine::parse("INT +18").kind_and_amount(),
            (LineKind::Other, 0)
        );
    }

    #[test]
    fn decodes_entities() {
        assert_eq!(decode_entities("&lt;a&gt; &amp; &#39;b&#x27;"), "<a> & 'b'");
        assert_eq!(
            decode_entities("a & b &unknown; &#xZZ; &"),
            "a & b &unknown; &#xZZ; &"
        );
        assert_eq!(
            OptionLine::parse("보스 몬스터 데미지&#32;+35%").stat,
            Stat::BossDamage
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(s in "\\PC{0,40}") {
            let l = OptionLine::parse(&s);
            prop_assert_eq!(&l.raw, &s);
            if l.is_other() { prop_assert_eq!(l.value, 0); }
        }

        #[test]
        fn never_panics_on_entity_soup(s in "[&#;a-z0-9xX<> +%초레벨당-]{0,30}") {
            let _ = OptionLine::parse(&s);
            let _ = decode_entities(&s);
        }

        #[test]
        fn reads_back_generated_lines(
            name in prop::sample::select(vec!["STR", "DEX", "INT", "LUK", "올스탯", "공격력", "마력",
                "보스 몬스터 데미지", "몬스터 방어율 무시", "크리티컬 데미지"]),
            v in 0i64..1_000_000,
            neg in any::<bool>(),
            pct in any::<bool>(),
            levels in 1u16..100,
        ) {
            let sign = if neg { '-' } else { '+' };
            let sfx = if pct { "%" } else { "" };
            let l = OptionLine::parse(&format!("{name} {sign}{v}{sfx}"));
            prop_assert!(!l.is_other());
            prop_assert_eq!(l.value, if neg { -v } else { v });
            prop_assert_eq!(l.unit, if pct { Unit::Percent } else { Unit::Flat });
            if ["STR", "DEX", "INT", "LUK"].contains(&name) {
                let l = OptionLine::parse(&format!("캐릭터 기준 {levels}레벨 당 {name} +{v}"));
                prop_assert_eq!(l.value, v);
                prop_assert_eq!(l.unit, Unit::PerLevels(levels));
            }
        }
    }
}
