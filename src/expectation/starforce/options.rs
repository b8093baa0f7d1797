//! Starforce options as players have them: the query parameters ([`PARAMS`]), their parsing and ranges
//! ([`StarforceSettings::from_params`]), the MVP grade, and the first API version's options.
//!
//! Contract: every option is read from its raw query value or refused with an [`ExpectationError`] naming the
//! parameter and what it accepts; the event sale is checked against `0..=`[`MAX_SALE`] as written and then read
//! to the basis point ([`quantise_sale`]), the unit the cache key names. What the options do to rates and costs
//! is the parent module's ([`super::System`]).

use super::*;
/// The MVP grade (membership tier); its starforce discount applies below [`LOW_STAR_DISCOUNT_BELOW`]★.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    utoipa::ToSchema,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[schema(
    description = "The MVP grade (membership tier); its discount and its star range are in the `mvp` parameter."
)]
pub enum MvpGrade {
    #[default]
    None,
    Bronze,
    Silver,
    Gold,
    Diamond,
    Red,
}

impl MvpGrade {
    pub const ALL: [MvpGrade; 6] = [
        MvpGrade::None,
        MvpGrade::Bronze,
        MvpGrade::Silver,
        MvpGrade::Gold,
        MvpGrade::Diamond,
        MvpGrade::Red,
    ];

    /// Parses the wire name (`none`, `bronze`, `silver`, `gold`, `diamond`, `red`; case-insensitive).
    pub fn parse(s: &str) -> Option<MvpGrade> {
        let s = s.trim().to_ascii_lowercase();
        MvpGrade::ALL.into_iter().find(|g| g.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MvpGrade::None => "none",
            MvpGrade::Bronze => "bronze",
            MvpGrade::Silver => "silver",
            MvpGrade::Gold => "gold",
            MvpGrade::Diamond => "diamond",
            MvpGrade::Red => "red",
        }
    }

    /// The grade's starforce discount: bronze none, silver 3 %, gold 5 %, diamond and red 10 %.
    pub fn discount(self) -> f64 {
        match self {
            MvpGrade::None | MvpGrade::Bronze => 0.0,
            MvpGrade::Silver => 0.03,
            MvpGrade::Gold => 0.05,
            MvpGrade::Diamond | MvpGrade::Red => 0.10,
        }
    }
}

/// The four query options of the first API version. Kept for its callers; converts into [`StarforceSettings`]
/// with `discount` as the event sale (a sale multiplies every star's cost, which is what `discount` did).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StarforceOptions {
    pub starcatch: bool,
    pub sunday: bool,
    pub prevention: bool,
    /// Fraction off every attempt's cost, in `[0, 1)` (the event sale).
    pub discount: f64,
}

impl StarforceOptions {
    /// Builds validated options.
    pub fn new(
        starcatch: bool,
        sunday: bool,
        prevention: bool,
        discount: f64,
    ) -> Result<StarforceOptions, ExpectationError> {
        let o = StarforceOptions {
            starcatch,
            sunday,
            prevention,
            discount,
        };
        o.validate()?;
        Ok(o)
    }

    /// `discount` must be a number in `[0, 1)`; anything else is a client error (`BAD_REQUEST`).
    pub fn validate(&self) -> Result<(), ExpectationError> {
        if (0.0..1.0).contains(&self.discount) {
            Ok(())
        } else {
            Err(ExpectationError::InvalidDiscount(self.discount))
        }
    }
}

/// Starforce options as players have them. Build with [`StarforceSettings::from_params`] (raw query values) or
/// [`StarforceSettings::validate`] a literal; `Default` is all off. Serialises as the echo of what was priced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(
    description = "The starforce options priced: the echo of the query, the sale as read (to 4 decimals)."
)]
pub struct StarforceSettings {
    /// Star catch on every attempt.
    pub starcatch: bool,
    /// Sunday destruction relief (−30 % destroy at 21★ and below).
    pub sunday: bool,
    /// Destruction prevention bought at 15–17★.
    pub prevention: bool,
    /// MVP grade (discount below 17★).
    pub mvp: MvpGrade,
    /// PC-room discount (5 %, below 17★, added to the MVP discount).
    pub pc_room: bool,
    /// Event sale: fraction off every attempt, in `[0, 1)` (e.g. 0.3 for "30 % off").
    pub event_sale: f64,
    /// 5/10/15 event: sure success at 5, 10 and 15★.
    pub event_5_10_15: bool,
    /// 1+1 event: a success at 10★ or below adds two stars.
    pub event_1plus1: bool,
    /// Meso price of one replacement item (`None`: destroyed items are reported as not priced).
    pub replacement_cost: Option<u64>,
}

/// The query parameter names [`StarforceSettings::from_params`] reads.
pub const PARAMS: &[&str] = &[
    "starcatch",
    "sunday",
    "prevention",
    "mvp",
    "pc_room",
    "event_sale",
    "discount",
    "event_5_10_15",
    "event_1plus1",
    "replacement_cost",
];

fn invalid(name: &'static str, value: &str, expected: &'static str) -> ExpectationError {
    ExpectationError::InvalidStarforceOption {
        name,
        value: value.to_owned(),
        expected,
    }
}

/// A flag takes exactly `true`/`1`/empty or `false`/`0`, the values the API publishes (no trimming: ` true`
/// is refused, as `force` refuses it).
fn parse_flag(name: &'static str, v: Option<&str>) -> Result<bool, ExpectationError> {
    match v {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(invalid(name, other, "true or false")),
    }
}

/// The event sale is read in steps of 1/`SALE_STEPS` (basis points): the key names the sale in them, and the
/// settings compute with the value the key names.
pub const SALE_STEPS: f64 = 10_000.0;

/// `sale` rounded to the nearest basis point.
pub fn quantise_sale(sale: f64) -> f64 {
    (sale * SALE_STEPS).round() / SALE_STEPS
}

/// The largest sale a query may give: the last step below 1 (0.9999). A value is checked against
/// `0..=MAX_SALE` as written, before rounding, so that what the API publishes and what it accepts agree (a
/// negative value never rounds to a sale of 0, 0.99994 is not read as 0.9999).
pub const MAX_SALE: f64 = 1.0 - 1.0 / SALE_STEPS;

fn parse_fraction(name: &'static str, v: &str) -> Result<f64, ExpectationError> {
    match v.trim().parse::<f64>() {
        // `+ 0.0` reads `-0` as 0 (it is in range, and the echo and the key should not say -0).
        Ok(raw) if (0.0..=MAX_SALE).contains(&raw) => Ok(quantise_sale(raw) + 0.0),
        _ => Err(invalid(
            name,
            v,
            "a fraction in [0, 1), at most 0.9999 (read to 4 decimals)",
        )),
    }
}

impl StarforceSettings {
    /// Builds validated settings from raw query values: `get(name)` returns the value of parameter `name` (see
    /// [`PARAMS`]) or `None` when absent. Flags take `true`/`false`/`1`/`0` (an empty value is `true`); `mvp` one of
    /// `none|bronze|silver|gold|diamond|red`; `event_sale` (alias `discount`, the first API's name; both given must
    /// agree) a fraction in `[0, 1)`, rounded to the basis point ([`quantise_sale`]) before it is checked, so the
    /// settings compute with the sale [`StarforceSettings::key_fragment`] names; `replacement_cost` a non-negative
    /// integer meso amount.
    pub fn from_params<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<StarforceSettings, ExpectationError> {
        let mvp = match get("mvp") {
            None => MvpGrade::None,
            Some(v) => MvpGrade::parse(v).ok_or_else(|| {
                invalid("mvp", v, "one of none, bronze, silver, gold, diamond, red")
            })?,
        };
        let sale = get("event_sale")
            .map(|v| parse_fraction("event_sale", v))
            .transpose()?;
        let discount = get("discount")
            .map(|v| parse_fraction("discount", v))
            .transpose()?;
        // `discount` is the sale's older name: it prices the sale only when `event_sale` is absent (the
        // newer name wins; the echoed `starforce_options` shows which value was priced).
        let event_sale = sale.or(discount).unwrap_or(0.0);
        let replacement_cost = match get("replacement_cost") {
            None => None,
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                invalid("replacement_cost", v, "a non-negative integer meso amount")
            })?),
        };
        let s = StarforceSettings {
            starcatch: parse_flag("starcatch", get("starcatch"))?,
            sunday: parse_flag("sunday", get("sunday"))?,
            prevention: parse_flag("prevention", get("prevention"))?,
            mvp,
            pc_room: parse_flag("pc_room", get("pc_room"))?,
            event_sale,
            event_5_10_15: parse_flag("event_5_10_15", get("event_5_10_15"))?,
            event_1plus1: parse_flag("event_1plus1", get("event_1plus1"))?,
            replacement_cost,
        };
        s.validate()?;
        Ok(s)
    }

    /// `event_sale` must be a number in `[0, 1)`; everything else is valid by type.
    pub fn validate(&self) -> Result<(), ExpectationError> {
        if (0.0..1.0).contains(&self.event_sale) {
            Ok(())
        } else {
            Err(invalid(
                "event_sale",
                &self.event_sale.to_string(),
                "a fraction in [0, 1), e.g. 0.3",
            ))
        }
    }

    /// A stable cache-key fragment naming every option (the sale in basis points; settings built by
    /// [`StarforceSettings::from_params`] hold a sale already rounded to them, so equal fragments compute equally):
    /// `sc0su0pr0mvnonepc0es0e0o0rc-` (`rc-` = not priced, else `rc<meso>`).
    pub fn key_fragment(&self) -> String {
        let b = |x: bool| x as u8;
        let rc = self
            .replacement_cost
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        format!(
            "sc{}su{}pr{}mv{}pc{}es{}e{}o{}rc{}",
            b(self.starcatch),
            b(self.sunday),
            b(self.prevention),
            self.mvp.as_str(),
            b(self.pc_room),
            (self.event_sale * SALE_STEPS).round() as i64,
            b(self.event_5_10_15),
            b(self.event_1plus1),
            rc
        )
    }

    /// The discount on an attempt at `star` before the event sale (MVP + PC room below 17★).
    pub fn low_star_discount(&self, star: u8) -> f64 {
        if star < LOW_STAR_DISCOUNT_BELOW {
            self.mvp.discount() + if self.pc_room { PC_ROOM_DISCOUNT } else { 0.0 }
        } else {
            0.0
        }
    }
}

impl From<StarforceOptions> for StarforceSettings {
    fn from(o: StarforceOptions) -> StarforceSettings {
        StarforceSettings {
            starcatch: o.starcatch,
            sunday: o.sunday,
            prevention: o.prevention,
            event_sale: o.discount,
            ..StarforceSettings::default()
        }
    }
}

/// What [`super::compute()`] accepts as starforce options: the settings, or the first API's options.
pub trait ToSettings {
    fn to_settings(&self) -> StarforceSettings;
}

impl ToSettings for StarforceSettings {
    fn to_settings(&self) -> StarforceSettings {
        *self
    }
}

impl ToSettings for StarforceOptions {
    fn to_settings(&self) -> StarforceSettings {
        (*self).into()
    }
}

impl From<&StarforceOptions> for StarforceSettings {
    fn from(o: &StarforceOptions) -> StarforceSettings {
        (*o).into()
    }
}
