//! The OpenAPI 3.1 document of the public API, served at `GET /openapi.json`.
//!
//! Contract: every route the router serves is described here (a black-box test compares them), with its
//! parameters as the handlers validate them (name, date, liker id, preset, discount patterns and ranges),
//! every status it can answer with (errors with the error body), and every response header (`x-cache`,
//! `Cache-Status`, `ETag`, `Age`, `Cache-Control`, `Retry-After`). `scripts/schemathesis.sh` checks the
//! running gateway against it. Written by hand, next to the routes, so that it changes
//! in the same commit as they do.

use axum::Json;
use axum::extract::State;
use chrono::{Datelike, Months, NaiveDate};
use serde_json::{Value, json};

use super::AppState;
use crate::cache::freshness::kst_today;
use crate::characters::FIRST_DATE;

/// The code point ranges of the characters [`crate::ids::CharacterName::parse`] accepts (Rust's
/// `char::is_alphanumeric`: Unicode `Alphabetic` or a number), ascending.
fn alphanumeric_ranges() -> Vec<(u32, u32)> {
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
fn name_pattern() -> &'static str {
    static PATTERN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
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
    })
}

/// The dates [`crate::characters::DataDate::parse`] accepts on `today` (KST): every date from
/// [`FIRST_DATE`] to `today`, as an exact regular expression (the document is built per request, so the
/// pattern follows the calendar).
fn date_pattern(today: NaiveDate) -> String {
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
const LIKER_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]{1,64}$";
/// The same in the `x-liker-id` header: visible ASCII and inner spaces (a header value is ASCII and loses
/// its outer spaces on the way).
const LIKER_HEADER_PATTERN: &str = r"^[!-~]([ -~]{0,62}[!-~])?$";

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true,
           "description": "character name: 1-12 letters or digits (any script)",
           "schema": {"type": "string", "minLength": 1, "maxLength": 12, "pattern": name_pattern()}})
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": ty}})
}

fn date_param(today: NaiveDate) -> Value {
    json!({"name": "date", "in": "query", "required": false,
           "description": format!("historical snapshot YYYY-MM-DD (KST), from {FIRST_DATE} to today ({today})"),
           "schema": {"type": "string", "format": "date", "pattern": date_pattern(today)}})
}

fn if_none_match_param() -> Value {
    json!({"name": "If-None-Match", "in": "header", "required": false,
           "description": "entity tags of representations the client holds (`*`, a list, weak tags compared weakly): a match is answered 304",
           "schema": {"type": "string"}})
}

fn expectation_params(today: NaiveDate) -> Vec<Value> {
    vec![
        name_param(),
        query(
            "force",
            "boolean",
            "bypass the caches and refresh from the upstream",
        ),
        date_param(today),
        query("starcatch", "boolean", "star catch (success x1.05)"),
        query(
            "sunday",
            "boolean",
            "Sunday event (destroy x0.7 for 15-21 stars)",
        ),
        query(
            "prevention",
            "boolean",
            "destroy prevention at 15-17 stars (cost x3)",
        ),
        json!({"name": "discount", "in": "query", "required": false, "description": "cost discount fraction in [0, 1)",
               "schema": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}}),
    ]
}

fn header(description: &str) -> Value {
    json!({"description": description, "schema": {"type": "string"}})
}

/// The headers of every data answer (200 and 304).
fn data_headers() -> Value {
    json!({
        "x-cache": header("HIT, MISS or STALE"),
        "x-cache-tier": header("L1 or L2, on hits"),
        "Cache-Status": header("RFC 9211: `maple-gateway; hit; ttl=<s>`, `maple-gateway; fwd=miss; fwd-status=200; stored`, `maple-gateway; fwd=stale; fwd-status=<status of the failed load>`"),
        "ETag": header("strong entity tag of the stored body: `\"<32 hex>\"` (identity) or `\"<32 hex>-gz\"` (gzip)"),
        "Cache-Control": header("`max-age=<freshness lifetime s>, stale-while-revalidate=<s>, stale-if-error=<s>`: max-age minus Age is the freshness left"),
        "Age": {"description": "seconds since the data was fetched from the upstream", "schema": {"type": "integer", "minimum": 0}},
        "Vary": header("accept-encoding"),
        "x-data-source": header("Data based on NEXON Open API"),
        "x-request-id": header("the client's request id when sane, else a fresh one")
    })
}

fn data_response(description: &str) -> Value {
    json!({
        "description": description,
        "headers": data_headers(),
        "content": {"application/json": {"schema": {"type": "object"}}}
    })
}

fn not_modified() -> Value {
    json!({"description": "the client's If-None-Match matches: no body, the same validator and caching headers",
           "headers": data_headers()})
}

fn error(description: &str) -> Value {
    json!({"description": description,
           "headers": {
               "Retry-After": {"description": "seconds to wait (429, and 503 when known)", "schema": {"type": "integer", "minimum": 0}},
               "x-request-id": header("the request id, also in the body")
           },
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The errors every data route can answer with.
fn errors() -> Value {
    json!({
        "400": error("malformed name, parameter or date (dates run from 2023-12-21 to today, KST); unknown query parameter"),
        "404": error("character not found"),
        "413": error("request body over 64 KiB"),
        "429": error("client or upstream rate limit (Retry-After)"),
        "500": error("internal error"),
        "502": error("the upstream answered something unusable"),
        "503": error("upstream unavailable with no stale copy, overloaded, or timed out (Retry-After)")
    })
}

fn op(summary: &str, params: Vec<Value>, ok: &str) -> Value {
    let mut responses = errors();
    responses["200"] = data_response(ok);
    responses["304"] = not_modified();
    let mut params = params;
    params.push(if_none_match_param());
    json!({"summary": summary, "parameters": params, "responses": responses})
}

/// The document on `today` (KST).
pub fn spec(today: NaiveDate) -> Value {
    let recalculate = {
        let mut o = op(
            "Refresh from the upstream and recompute (same as force=true)",
            expectation_params(today),
            "the expectation",
        );
        // A POST is never answered 304: If-None-Match is not evaluated.
        o["responses"]
            .as_object_mut()
            .expect("object")
            .remove("304");
        o["parameters"]
            .as_array_mut()
            .expect("array")
            .retain(|p| p["name"] != "If-None-Match");
        o
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "maple-gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Equipment expectations (cubes, starforce, flames) of MapleStory characters. Data based on NEXON Open API."
        },
        "paths": {
            "/api/v4/characters/{name}/expectation": {
                "get": op("Expectation of every preset (headline = equipped preset)", expectation_params(today), "the expectation")
            },
            "/api/v4/characters/{name}/expectation/preset/{n}": {
                "get": op("Expectation of one preset", {
                    let mut p = expectation_params(today);
                    p.insert(1, json!({"name": "n", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1, "maximum": 3}}));
                    p
                }, "the preset's expectation")
            },
            "/api/v4/characters/{name}/expectation/recalculate": {
                "post": recalculate
            },
            "/api/v4/characters/{name}/equipment": {
                "get": op("The upstream item-equipment JSON, cached", vec![
                    name_param(),
                    date_param(today),
                    query("force", "boolean", "bypass the caches"),
                ], "the item-equipment payload as the upstream sent it")
            },
            "/api/v1/characters/{name}": {
                "get": op("Basic info (world, class, level, image) and like count", vec![name_param()], "basic info")
            },
            "/api/v2/characters/{name}/like": {
                "post": {
                    "summary": "Like a character (idempotent per liker and character)",
                    "parameters": [name_param(), {"name": "x-liker-id", "in": "header", "required": true,
                        "description": "opaque liker id, 1-64 visible ASCII characters (inner spaces allowed)",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": LIKER_HEADER_PATTERN}}],
                    "responses": {
                        "200": {"description": "{\"liked\": true, \"like_count\": N}; the count may lag by one sync interval",
                                "headers": {"Cache-Control": header("private, no-store")},
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        "400": error("malformed name or liker id, missing x-liker-id, unknown query parameter"),
                        "413": errors()["413"], "429": errors()["429"], "500": errors()["500"], "503": errors()["503"]
                    }
                },
                "get": {
                    "summary": "Whether a liker liked a character, and the count",
                    "parameters": [name_param(), {"name": "liker", "in": "query", "required": false,
                        "description": "the liker id to check: 1-64 characters without control characters",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": LIKER_PATTERN}}],
                    "responses": {"200": {"description": "status and count", "headers": {"Cache-Control": header("private, no-store")},
                                          "content": {"application/json": {"schema": {"type": "object"}}}},
                                  "400": error("malformed name or liker id, unknown query parameter"),
                                  "413": errors()["413"], "429": errors()["429"], "500": errors()["500"], "503": errors()["503"]}
                }
            },
            "/health/live": {"get": {"summary": "Liveness", "responses": {"200": {"description": "the process runs"}}}},
            "/health/ready": {"get": {"summary": "Readiness with each dependency up/down/disabled",
                "responses": {"200": {"description": "ready"}, "503": {"description": "starting or shutting down"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message", "request_id"], "properties": {
                        "code": {"type": "string", "examples": ["BAD_REQUEST", "CHARACTER_NOT_FOUND", "RATE_LIMITED", "UPSTREAM_UNAVAILABLE", "OVERLOADED"]},
                        "message": {"type": "string"},
                        "request_id": {"type": "string"}
                    }}}
                }
            }
        }
    })
}

pub async fn document(State(s): State<AppState>) -> Json<Value> {
    Json(spec(kst_today(s.characters.now_ms())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, s: &str) -> bool {
        regex_lite_match(pattern, s)
    }

    /// The pattern is an alternation of `YYYY-MM-(DD|DD…)` groups: checks `s` against it without a regex
    /// engine (none is a dependency).
    fn regex_lite_match(pattern: &str, s: &str) -> bool {
        let body = &pattern[2..pattern.len() - 2];
        let (date, day) = s.rsplit_once('-').expect("YYYY-MM-DD");
        split_top(body).iter().any(|alt| {
            let (prefix, days) = alt.split_at(8);
            prefix == format!("{date}-") && day_class(days).contains(&day.to_string())
        })
    }

    fn split_top(s: &str) -> Vec<&str> {
        let (mut depth, mut start, mut out) = (0, 0, Vec::new());
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                '|' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out
    }

    fn day_class(days: &str) -> Vec<String> {
        let all = |n: u32| (1..=n).map(|d| format!("{d:02}")).collect::<Vec<_>>();
        match days {
            "(0[1-9]|1[0-9]|2[0-8])" => all(28),
            "(0[1-9]|[12][0-9])" => all(29),
            "(0[1-9]|[12][0-9]|30)" => all(30),
            "(0[1-9]|[12][0-9]|3[01])" => all(31),
            list => list
                .trim_matches(|c| c == '(' || c == ')')
                .split('|')
                .map(str::to_string)
                .collect(),
        }
    }

    #[test]
    fn the_name_pattern_lists_exactly_the_characters_names_may_contain() {
        let ranges = alphanumeric_ranges();
        let admitted = |c: char| {
            ranges
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&(c as u32)))
        };
        for c in ['a', 'Z', '0', '9', '아', '趲', 'é', '٣', 'Ⅻ'] {
            assert!(admitted(c), "{c}");
            assert!(crate::ids::CharacterName::parse(&c.to_string()).is_ok());
        }
        for c in ['-', ' ', '/', '%', '.', '\u{0}', '😀', '\u{300}'] {
            assert!(!admitted(c), "{c:?}");
        }
        assert!(
            ranges.windows(2).all(|w| w[0].1 + 1 < w[1].0),
            "ascending, disjoint, merged"
        );
        let p = name_pattern();
        assert!(
            p.starts_with("^[\\x{30}-\\x{39}\\x{41}-\\x{5A}"),
            "{}",
            &p[..40]
        );
        assert!(p.ends_with("]{1,12}$"));
    }

    #[test]
    fn the_date_pattern_admits_exactly_the_dates_the_handler_accepts() {
        let today = NaiveDate::from_ymd_opt(2025, 3, 5).unwrap();
        let p = date_pattern(today);
        for ok in [
            "2023-12-21",
            "2023-12-31",
            "2024-02-29",
            "2025-02-28",
            "2025-03-05",
        ] {
            assert!(matches(&p, ok), "{ok} in {p}");
        }
        for bad in [
            "2023-12-20",
            "2023-11-30",
            "2025-02-29",
            "2025-03-06",
            "2025-04-01",
            "2024-04-31",
        ] {
            assert!(!matches(&p, bad), "{bad} in {p}");
        }
    }
}
