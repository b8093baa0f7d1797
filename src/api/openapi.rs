//! The OpenAPI 3.1 document of the public API, served at `GET /openapi.json`.
//!
//! Contract: every route the router serves is described here (a black-box test compares them), with its
//! parameters as the handlers validate them (name, date, liker id, preset, discount patterns and ranges),
//! the starforce options of [`starforce::PARAMS`] with their types and ranges, the expectation's
//! body (`starforce_options`, `rules`, per-item `warnings`, `replacement`), every status it can answer with (errors with the error body), and every response header (`x-cache`,
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
use crate::expectation::RuleSet;
use crate::expectation::starforce::{self, MvpGrade};

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

/// A query parameter with its own schema (type and range).
fn query_schema(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// A starforce flag: `true`/`false`/`1`/`0`, an empty value meaning `true`.
fn flag(name: &str, description: &str) -> Value {
    query_schema(
        name,
        &format!("{description}; true/false/1/0 (empty = true), default false"),
        json!({"type": "boolean", "default": false}),
    )
}

fn sale_schema() -> Value {
    // Read to 4 decimals: the largest sale is 0.9999 (a value that rounds to 1 is refused).
    json!({"type": "number", "minimum": 0, "maximum": 0.9999, "default": 0})
}

/// The starforce options, one per name of [`starforce::PARAMS`].
fn starforce_params() -> Vec<Value> {
    let pct = |x: f64| format!("{}", (x * 100.0).round());
    let mvp_discounts = MvpGrade::ALL
        .iter()
        .map(|g| format!("{} {} %", g.as_str(), pct(g.discount())))
        .collect::<Vec<_>>()
        .join(", ");
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
                "Sunday destruction relief: destroy x{} at {}-{} stars",
                starforce::SUNDAY_DESTROY_FACTOR,
                starforce::SUNDAY_STARS.start(),
                starforce::SUNDAY_STARS.end()
            ),
        ),
        flag(
            "prevention",
            &format!(
                "destruction prevention at {}-{} stars: destroy 0, each attempt +{} % of its undiscounted base cost",
                starforce::PREVENTION_STARS.start(),
                starforce::PREVENTION_STARS.end(),
                pct(starforce::PREVENTION_SURCHARGE)
            ),
        ),
        query_schema(
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
        query_schema(
            "event_sale",
            "event sale: fraction off every attempt in [0, 1), after the MVP/PC-room discount; read to 4 decimals \
             (the value priced and echoed)",
            sale_schema(),
        ),
        {
            let mut p = query_schema(
                "discount",
                "deprecated older name of event_sale, priced the same way when event_sale is absent (event_sale \
                 wins when both are given; starforce_options echoes the value priced)",
                sale_schema(),
            );
            p["deprecated"] = json!(true);
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
        query_schema(
            "replacement_cost",
            "meso price of one replacement item for each expected destruction; absent: replacements are \
             reported \"not priced\" (null), never as 0",
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
        ),
    ]
}

fn expectation_params(today: NaiveDate) -> Vec<Value> {
    let mut params = vec![
        name_param(),
        query(
            "force",
            "boolean",
            "bypass the caches and refresh from the upstream",
        ),
        date_param(today),
    ];
    params.extend(starforce_params());
    params
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
        "x-data-source": header("`Data based on NEXON Open API` for Nexon's data; `Simulated data (maple-gateway simulator), not from NEXON Open API` when the in-process simulator (no API key) generated the answer"),
        "x-request-id": header("the client's request id when sane, else a fresh one")
    })
}

fn data_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "headers": data_headers(),
        "content": {"application/json": {"schema": schema}}
    })
}

fn object() -> Value {
    json!({"type": "object"})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A block: the value, or `{"unavailable": reason, "detail"?: text}`.
fn block(value: Value) -> Value {
    json!({"anyOf": [value, schema_ref("Unavailable")]})
}

fn nullable(ty: &str) -> Value {
    json!({"type": [ty, "null"]})
}

/// The response schemas of the expectation routes.
fn expectation_schemas() -> Value {
    let rule_sets = [RuleSet::Kms25Stars, RuleSet::Kms30Stars].map(RuleSet::name);
    json!({
        "Unavailable": {
            "type": "object", "required": ["unavailable"],
            "description": "why a block has no result (reasons: docs/expectation.md)",
            "properties": {"unavailable": {"type": "string", "examples": ["no_table", "no_table_group", "rule_set_not_modelled", "no_cited_source"]},
                           "detail": {"type": "string"}}
        },
        "StarforceOptions": {
            "type": "object",
            "description": "the starforce options priced (echo of the query; the sale as read, to 4 decimals)",
            "properties": {
                "starcatch": {"type": "boolean"}, "sunday": {"type": "boolean"}, "prevention": {"type": "boolean"},
                "mvp": {"type": "string", "enum": MvpGrade::ALL.map(MvpGrade::as_str)},
                "pc_room": {"type": "boolean"},
                "event_sale": sale_schema(),
                "event_5_10_15": {"type": "boolean"}, "event_1plus1": {"type": "boolean"},
                "replacement_cost": {"type": ["integer", "null"], "minimum": 0}
            }
        },
        "Warning": {
            "type": "object", "required": ["warning"],
            "description": "an assumption or data gap behind the figures",
            "oneOf": [
                {"properties": {"warning": {"const": "incomplete_table_group"},
                                "block": {"enum": ["potential", "additional"]},
                                "slot": {"type": "integer", "minimum": 1, "maximum": 3},
                                "missing_mass": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                                 "description": "1 - sum of the group's rates, priced as \"some other line\""}},
                 "required": ["warning", "block", "slot", "missing_mass"]},
                {"properties": {"warning": {"const": "fixed_stars"}, "stars": {"type": "integer"}},
                 "required": ["warning", "stars"]},
                {"properties": {"warning": {"const": "rule_assumed"}, "rule": {"type": "string"}, "detail": {"type": "string"}},
                 "required": ["warning", "rule", "detail"]}
            ]
        },
        "Rules": {
            "type": "object",
            "description": "the game rules the figures assume",
            "required": ["rule_set", "current_rules_from", "table_version", "starforce", "tier_up", "additional_potential", "assumptions"],
            "properties": {
                "rule_set": {"type": "string", "enum": rule_sets,
                             "description": "chosen by the snapshot's date; starforce is priced only under the current one"},
                "current_rules_from": {"type": "string", "format": "date"},
                "table_version": nullable("string"),
                "starforce": {"type": "object", "description": "the starforce constants in force",
                              "properties": {
                                  "star_catch_multiplier": {"type": "number"}, "sunday_destroy_factor": {"type": "number"},
                                  "sunday_max_star": {"type": "integer"},
                                  "prevention_stars": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
                                  "prevention_surcharge_of_base": {"type": "number"}, "low_star_discount_below": {"type": "integer"},
                                  "pc_room_discount": {"type": "number"}, "destroyed_item_returns_at": {"type": "integer"},
                                  "scroll_failure_destroys": {"type": "boolean"}
                              }},
                "tier_up": block(json!({"type": "null"})),
                "additional_potential": block(json!({"type": "null"})),
                "assumptions": {"type": "array", "items": schema_ref("Warning")}
            }
        },
        "Replacement": {
            "type": "object",
            "description": "destroyed items and their replacement: a line of its own, never in the attempts' meso",
            "required": ["expected_items", "unit_cost", "expected_meso", "meso_text"],
            "properties": {
                "expected_items": {"type": "number"},
                "unit_cost": {"type": ["integer", "null"], "description": "replacement_cost as given; null when not given"},
                "expected_meso": {"type": ["integer", "null"], "description": "null: not priced"},
                "meso_text": {"type": "string", "description": "Korean meso text, or \"not priced\""}
            }
        },
        "Starforce": {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": ["meso", "scroll", "fixed"]},
                "stars": {"type": "integer"}, "max_stars": {"type": "integer"}, "level": {"type": "integer"},
                "expected_meso": nullable("integer"), "meso_text": nullable("string"),
                "expected_attempts": nullable("number"), "expected_destroys": nullable("number"),
                "replacement": {"anyOf": [schema_ref("Replacement"), {"type": "null"}]},
                "expected_scrolls": nullable("number")
            }
        },
        "Item": {
            "type": "object",
            "required": ["potential", "additional", "starforce", "flames", "meso", "meso_text", "warnings"],
            "properties": {
                "slot": nullable("string"), "part": nullable("string"), "name": nullable("string"),
                "level": {"type": "integer"},
                "potential": block(object()), "additional": block(object()),
                "starforce": block(schema_ref("Starforce")), "flames": block(object()),
                "meso": {"type": "integer"}, "meso_text": {"type": "string"},
                "warnings": {"type": "array", "items": schema_ref("Warning")}
            }
        },
        "Totals": {
            "type": "object",
            "description": "sums over a preset; replacement_meso is null when any replacement is not priced",
            "properties": {
                "items": {"type": "integer"}, "meso": {"type": "integer"}, "meso_text": {"type": "string"},
                "starforce_meso": {"type": "integer"}, "starforce_destroys": {"type": "number"},
                "replacement_meso": nullable("integer"), "replacement_meso_text": {"type": "string"},
                "unavailable_blocks": {"type": "integer"}
            }
        },
        "Preset": {
            "type": "object",
            "properties": {
                "preset_no": {"type": "integer", "minimum": 1, "maximum": 3},
                "items": {"type": "array", "items": schema_ref("Item")},
                "totals": schema_ref("Totals")
            }
        },
        "Expectation": {
            "type": "object",
            "required": ["character", "data_as_of", "stale", "table_version", "starforce_options", "rules", "presets", "headline"],
            "properties": {
                "character": {"type": "string"},
                "data_source": data_source(),
                "data_as_of": {"type": "string", "format": "date-time"},
                "stale": {"type": "boolean"}, "data_preparing": {"type": "boolean"},
                "table_version": nullable("string"),
                "date": {"type": ["string", "null"], "description": "the snapshot's date as the upstream sent it"},
                "character_class": nullable("string"),
                "starforce_options": schema_ref("StarforceOptions"),
                "rules": schema_ref("Rules"),
                "preset_no": nullable("integer"),
                "presets": {"type": "array", "items": schema_ref("Preset"), "minItems": 3, "maxItems": 3},
                "headline": schema_ref("Totals")
            }
        },
        "PresetExpectation": {
            "type": "object",
            "required": ["character", "starforce_options", "rules", "preset"],
            "properties": {
                "character": {"type": "string"},
                "data_source": data_source(),
                "data_as_of": {"type": "string", "format": "date-time"},
                "stale": {"type": "boolean"},
                "table_version": nullable("string"),
                "date": nullable("string"),
                "starforce_options": schema_ref("StarforceOptions"),
                "rules": schema_ref("Rules"),
                "preset": schema_ref("Preset")
            }
        }
    })
}

/// The `data_source` field of the JSON bodies the gateway builds (see [`crate::nexon::UpstreamMode`]).
fn data_source() -> Value {
    json!({"type": "string", "enum": ["simulator", "nexon"],
           "description": "where the data comes from: `simulator` (generated characters, not game data) or `nexon` (the upstream reached with an API key)"})
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
    op_with(summary, params, ok, object())
}

fn op_with(summary: &str, params: Vec<Value>, ok: &str, schema: Value) -> Value {
    let mut responses = errors();
    responses["200"] = data_response(ok, schema);
    responses["304"] = not_modified();
    let mut params = params;
    params.push(if_none_match_param());
    json!({"summary": summary, "parameters": params, "responses": responses})
}

/// The document on `today` (KST).
pub fn spec(today: NaiveDate) -> Value {
    let recalculate = {
        let mut o = op_with(
            "Refresh from the upstream and recompute (same as force=true)",
            expectation_params(today),
            "the expectation",
            schema_ref("Expectation"),
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
                "get": op_with("Expectation of every preset (headline = equipped preset)", expectation_params(today),
                               "the expectation", schema_ref("Expectation"))
            },
            "/api/v4/characters/{name}/expectation/preset/{n}": {
                "get": op_with("Expectation of one preset", {
                    let mut p = expectation_params(today);
                    p.insert(1, json!({"name": "n", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1, "maximum": 3}}));
                    p
                }, "the preset's expectation", schema_ref("PresetExpectation"))
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
            "schemas": schemas()
        }
    })
}

/// The component schemas: the error shape and the expectation's.
fn schemas() -> Value {
    let mut schemas = expectation_schemas();
    schemas["Error"] = json!({
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message", "request_id"], "properties": {
                        "code": {"type": "string", "examples": ["BAD_REQUEST", "CHARACTER_NOT_FOUND", "RATE_LIMITED", "UPSTREAM_UNAVAILABLE", "OVERLOADED"]},
                        "message": {"type": "string"},
                        "request_id": {"type": "string"}
                    }}}
    });
    schemas
}

pub async fn document(State(s): State<AppState>) -> Json<Value> {
    Json(spec(kst_today(s.characters.now_ms())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectation::Unavailable;

    #[test]
    fn every_starforce_option_is_documented_with_its_type() {
        let doc = spec(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let params = doc["paths"]["/api/v4/characters/{name}/expectation"]["get"]["parameters"]
            .as_array()
            .unwrap();
        for name in starforce::PARAMS {
            let p = params
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("{name} undocumented"));
            assert!(p["schema"]["type"].is_string(), "{name}: {p}");
            assert!(!p["description"].as_str().unwrap().is_empty(), "{name}");
        }
        let sale = params.iter().find(|p| p["name"] == "event_sale").unwrap();
        assert_eq!(sale["schema"]["maximum"], 0.9999);
        let mvp = params.iter().find(|p| p["name"] == "mvp").unwrap();
        assert_eq!(mvp["schema"]["enum"].as_array().unwrap().len(), 6);
        let reasons = [
            Unavailable::NoTable,
            Unavailable::NoTableGroup,
            Unavailable::RuleSetNotModelled,
            Unavailable::NoCitedSource,
        ];
        let examples =
            &doc["components"]["schemas"]["Unavailable"]["properties"]["unavailable"]["examples"];
        for r in reasons {
            assert!(
                examples
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::to_value(r).unwrap()),
                "{r:?}"
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = spec(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.iter().any(|r| r.ends_with("/Rules")));
        for r in all {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} is dangling"
            );
        }
    }

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
