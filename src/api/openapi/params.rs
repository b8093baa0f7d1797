//! The request side of the OpenAPI document: every parameter as the handlers validate it. The name pattern
//! is computed from the predicate [`crate::ids::CharacterName::parse`] uses, the date pattern from
//! [`FIRST_DATE`] and today (KST), the starforce options from [`starforce::PARAMS`] and the engine's
//! constants, the liker id patterns from the likes' validation; nothing is copied by hand.

use super::*;
/// The code point ranges of the characters [`crate::ids::CharacterName::parse`] accepts (Rust's
/// `char::is_alphanumeric`: Unicode `Alphabetic` or a number), ascending.
pub(super) fn alphanumeric_ranges() -> Vec<(u32, u32)> {
    let mut ranges = Vec::new();
    let mut start = None;
    for cp in 0..=0x11_0000u32 {
        let ok = char::from_u32(cp).is_some_and(char::is_alphanumeric);
        match (ok, start) {
            (true, None) => start = Some(cp),
            (false, Some(s)) => {
                ranges.push((s, cp - 1));
                start = None;
            }
            _ => {}
        }
    }
    ranges
}

/// What [`crate::ids::CharacterName::parse`] accepts: 1–12 letters or digits of any script, spelled as
/// explicit code point ranges (`\x{…}`) derived from the same predicate, so the pattern and the handler agree
/// on every character (regex engines disagree on what `\p{L}` covers).
pub(super) fn name_pattern() -> &'static str {
    static PATTERN: LazyLock<String> = LazyLock::new(|| {
        use std::fmt::Write;
        let mut out = String::from("^[");
        for (lo, hi) in alphanumeric_ranges() {
            let _ = if lo == hi {
                write!(out, "\\x{{{lo:X}}}")
            } else {
                write!(out, "\\x{{{lo:X}}}-\\x{{{hi:X}}}")
            };
        }
        out.push_str("]{1,12}$");
        out
    });
    &PATTERN
}

/// The dates [`crate::characters::DataDate::parse`] accepts on `today` (KST): every date from
/// [`FIRST_DATE`] to `today`, as an exact regular expression.
pub(super) fn date_pattern(today: NaiveDate) -> String {
    let days = |lo: u32, hi: u32| -> String {
        match (lo, hi) {
            (1, 28) => "(0[1-9]|1[0-9]|2[0-8])".into(),
            (1, 29) => "(0[1-9]|[12][0-9])".into(),
            (1, 30) => "(0[1-9]|[12][0-9]|30)".into(),
            (1, 31) => "(0[1-9]|[12][0-9]|3[01])".into(),
            _ => format!(
                "({})",
                (lo..=hi)
                    .map(|d| format!("{d:02}"))
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        }
    };
    let mut alternatives = Vec::new();
    let mut month = FIRST_DATE.with_day(1).expect("day 1");
    while month <= today {
        let next = month.checked_add_months(Months::new(1)).expect("in range");
        let last = next.pred_opt().expect("in range");
        let lo = if month < FIRST_DATE {
            FIRST_DATE.day()
        } else {
            1
        };
        let hi = if last > today {
            today.day()
        } else {
            last.day()
        };
        alternatives.push(format!(
            "{}-{:02}-{}",
            month.year(),
            month.month(),
            days(lo, hi)
        ));
        month = next;
    }
    format!("^({})$", alternatives.join("|"))
}

/// What [`crate::ids::LikerId::parse`] accepts in a query: 1–64 characters without control characters.
pub(super) const LIKER_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]{1,64}$";
/// The same in the `x-liker-id` header: visible ASCII and inner spaces (a header value is ASCII and loses
/// its outer spaces on the way).
pub(super) const LIKER_HEADER_PATTERN: &str = r"^[!-~]([ -~]{0,62}[!-~])?$";

pub(super) fn param(v: Value) -> Parameter {
    from_json(v)
}

/// A query parameter with its own schema (type and range).
pub(super) fn query(name: &str, description: &str, schema: Value) -> Parameter {
    param(
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema}),
    )
}

/// The values a flag takes (the handlers' `flag` and the engine's `parse_flag`): `true`/`1`, `false`/`0`, and
/// an empty value (`?starcatch=`) meaning `true`. A string enum says exactly that; a boolean schema would
/// leave the empty value out.
pub(super) fn flag_schema() -> Value {
    json!({"type": "string", "enum": ["true", "false", "1", "0", ""], "default": "false"})
}

/// A flag parameter (see [`flag_schema`]).
pub(super) fn flag(name: &str, description: &str) -> Parameter {
    query(
        name,
        &format!("{description}; true/false/1/0 (empty = true), default false"),
        flag_schema(),
    )
}

pub(super) fn sale_schema() -> Value {
    json!({"type": "number", "minimum": 0, "maximum": starforce::MAX_SALE, "default": 0})
}

/// The `date` parameter. Its pattern names today's date, so the document leaves it open and [`with_dates`]
/// sets it at serve time.
pub(super) fn date_param() -> Parameter {
    query(
        "date",
        &format!("historical snapshot YYYY-MM-DD (KST), from {FIRST_DATE} to today"),
        json!({"type": "string", "format": "date"}),
    )
}

pub(super) fn force_param(description: &str) -> Parameter {
    flag("force", description)
}

/// The starforce options: one per name of [`starforce::PARAMS`], in its order. A name without a
/// description here, or a description of a name the handler does not read, fails the document's generation
/// (and so every test of it).
pub(super) fn starforce_params() -> Vec<Parameter> {
    let documented = starforce_descriptions();
    for p in &documented {
        assert!(
            starforce::PARAMS.contains(&p.name.as_str()),
            "{} is documented but not a starforce option",
            p.name
        );
    }
    starforce::PARAMS
        .iter()
        .map(|name| {
            documented
                .iter()
                .find(|p| p.name == *name)
                .cloned()
                .unwrap_or_else(|| panic!("starforce option {name} is not documented"))
        })
        .collect()
}

/// The description, type and range of each starforce option, from the engine's constants.
pub(super) fn starforce_descriptions() -> Vec<Parameter> {
    let pct = |x: f64| format!("{}", (x * 100.0).round());
    let mvp_discounts = MvpGrade::ALL
        .iter()
        .map(|g| format!("{} {} %", g.as_str(), pct(g.discount())))
        .collect::<Vec<_>>()
        .join(", ");
    let max_sale = starforce::MAX_SALE;
    vec![
        flag(
            "starcatch",
            &format!(
                "star catch: success x{} (capped at 1)",
                starforce::STAR_CATCH_MULTIPLIER
            ),
        ),
        flag(
            "sunday",
            &format!(
                "Sunday destruction relief: destroy x{} at {}-{} stars (not in the 25-star rules before {}: not \
                 priced there, and each item says so)",
                starforce::SUNDAY_DESTROY_FACTOR,
                starforce::SUNDAY_STARS.start(),
                starforce::SUNDAY_STARS.end(),
                crate::expectation::rules::STARFORCE_30_FROM
            ),
        ),
        flag(
            "prevention",
            &format!(
                "destruction prevention at {}-{} stars: destroy 0, each attempt +{} % of its undiscounted base cost \
                 (25-star rules before {}: {}-{} stars, +{} %)",
                starforce::PREVENTION_STARS.start(),
                starforce::PREVENTION_STARS.end(),
                pct(starforce::PREVENTION_SURCHARGE),
                crate::expectation::rules::STARFORCE_30_FROM,
                starforce::PREVENTION_STARS_25.start(),
                starforce::PREVENTION_STARS_25.end(),
                pct(starforce::PREVENTION_SURCHARGE_25)
            ),
        ),
        query(
            "mvp",
            &format!(
                "MVP grade, case-insensitive; its discount applies to attempts below {} stars ({mvp_discounts})",
                starforce::LOW_STAR_DISCOUNT_BELOW
            ),
            json!({"type": "string", "enum": MvpGrade::ALL.map(MvpGrade::as_str), "default": "none"}),
        ),
        flag(
            "pc_room",
            &format!(
                "PC-room discount: {} % off attempts below {} stars, added to the MVP discount",
                pct(starforce::PC_ROOM_DISCOUNT),
                starforce::LOW_STAR_DISCOUNT_BELOW
            ),
        ),
        query(
            "event_sale",
            &format!(
                "event sale: fraction off every attempt in [0, 1), after the MVP/PC-room discount; read to \
                 1/{} (the value priced and echoed), so at most {max_sale}",
                starforce::SALE_STEPS
            ),
            sale_schema(),
        ),
        {
            let mut p = query(
                "discount",
                "deprecated older name of event_sale, priced the same way when event_sale is absent (event_sale \
                 wins when both are given; starforce_options echoes the value priced)",
                sale_schema(),
            );
            p.deprecated = Some(utoipa::openapi::Deprecated::True);
            p
        },
        flag(
            "event_5_10_15",
            &format!(
                "5/10/15 event: attempts at {} stars succeed surely",
                starforce::SURE_SUCCESS_STARS
                    .map(|s| s.to_string())
                    .join(", ")
            ),
        ),
        flag(
            "event_1plus1",
            &format!(
                "1+1 event: a success at {} stars or below adds two stars",
                starforce::ONE_PLUS_ONE_MAX_STAR
            ),
        ),
        query(
            "replacement_cost",
            "meso price of one replacement item for each expected destruction; absent: replacements are \
             reported \"not priced\" (null), never as 0",
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
        ),
    ]
}

/// `{name}`: a character name.
pub struct NamePath;

impl IntoParams for NamePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![param(json!({
            "name": "name", "in": "path", "required": true,
            "description": "character name: 1-12 letters or digits (any script)",
            "schema": {"type": "string", "minLength": 1, "maxLength": 12, "pattern": name_pattern()}
        }))]
    }
}

/// `{n}`: a preset number.
pub struct PresetPath;

impl IntoParams for PresetPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![param(json!({
            "name": "n", "in": "path", "required": true, "description": "preset number",
            "schema": {"type": "integer", "minimum": 1, "maximum": 3}
        }))]
    }
}

/// The query of the expectation routes: `force`, `date` and every starforce option.
pub struct ExpectationQuery;

impl IntoParams for ExpectationQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = vec![
            force_param(
                "bypass the caches and refresh from the upstream (throttled per character)",
            ),
            date_param(),
        ];
        params.extend(starforce_params());
        params
    }
}

/// The query of the equipment route: `date`, `force`.
pub struct EquipmentQuery;

impl IntoParams for EquipmentQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            date_param(),
            force_param("bypass the caches (throttled per character)"),
        ]
    }
}

/// `If-None-Match` on the conditional (GET) data routes.
pub struct IfNoneMatch;

impl IntoParams for IfNoneMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![param(json!({
            "name": "If-None-Match", "in": "header", "required": false,
            "description": "entity tags of representations the client holds (`*`, a list, weak tags compared weakly): a match is answered 304",
            "schema": {"type": "string"}
        }))]
    }
}

/// `x-liker-id` on the like POST.
pub struct LikerHeader;

impl IntoParams for LikerHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![param(json!({
            "name": crate::api::likes::LIKER_HEADER, "in": "header", "required": true,
            "description": "opaque liker id, 1-64 visible ASCII characters (inner spaces allowed)",
            "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": LIKER_HEADER_PATTERN}
        }))]
    }
}

/// `liker` on the like status GET.
pub struct LikerQuery;

impl IntoParams for LikerQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![query(
            "liker",
            "the liker id to check: 1-64 characters without control characters",
            json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": LIKER_PATTERN}),
        )]
    }
}
