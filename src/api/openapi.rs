//! The OpenAPI 3.1 document of the public API, served at `GET /openapi.json`.
//!
//! Contract: every route the router serves is described here (a black-box test compares them), with its
//! parameters (each starforce option of [`starforce::PARAMS`] with its type and range), its success body (the
//! expectation's `starforce_options`, `rules`, per-item `warnings` and `replacement` lines spelled out) and the
//! error shape. Written by hand, next to the routes, so that it changes in the same commit as they do; the
//! enumerations (MVP grades, rule sets) and the option constants are read from the engine.

use axum::Json;
use serde_json::{Value, json};

use crate::expectation::RuleSet;
use crate::expectation::starforce::{self, MvpGrade};

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true,
           "description": "character name: 1-12 letters or digits (any script)",
           "schema": {"type": "string", "minLength": 1, "maxLength": 12}})
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": ty}})
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
    json!({"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0})
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
        query_schema(
            "discount",
            "older name of event_sale, priced the same way; given together, both must name the same value",
            sale_schema(),
        ),
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

fn expectation_params() -> Vec<Value> {
    let mut params = vec![
        name_param(),
        query(
            "force",
            "boolean",
            "bypass the caches and refresh from the upstream",
        ),
        query_schema(
            "date",
            "historical snapshot YYYY-MM-DD (KST), from 2023-12-21 to today; its rule set prices the snapshot",
            json!({"type": "string", "format": "date"}),
        ),
    ];
    params.extend(starforce_params());
    params
}

fn data_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "headers": {
            "x-cache": {"description": "HIT, MISS or STALE", "schema": {"type": "string"}},
            "x-cache-tier": {"description": "L1 or L2, on hits", "schema": {"type": "string"}},
            "age": {"description": "seconds since the data was fetched from the upstream", "schema": {"type": "integer"}},
            "x-data-source": {"description": "`Data based on NEXON Open API` for Nexon's data; `Simulated data (maple-gateway simulator), not from NEXON Open API` when the in-process simulator (no API key) generated the answer", "schema": {"type": "string"}}
        },
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
    json!({"oneOf": [value, schema_ref("Unavailable")]})
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
                "replacement": {"oneOf": [schema_ref("Replacement"), {"type": "null"}]},
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

fn errors() -> Value {
    let e = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "400": e, "404": e, "429": e, "502": e, "503": e
    })
}

fn op(summary: &str, params: Vec<Value>, ok: &str) -> Value {
    op_with(summary, params, ok, object())
}

fn op_with(summary: &str, params: Vec<Value>, ok: &str, schema: Value) -> Value {
    let mut responses = errors();
    responses["200"] = data_response(ok, schema);
    json!({"summary": summary, "parameters": params, "responses": responses})
}

/// The document.
pub fn spec() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "maple-gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Equipment expectations (cubes, starforce, flames) of MapleStory characters. Data based on NEXON Open API."
        },
        "paths": {
            "/api/v4/characters/{name}/expectation": {
                "get": op_with("Expectation of every preset (headline = equipped preset)", expectation_params(),
                               "the expectation", schema_ref("Expectation"))
            },
            "/api/v4/characters/{name}/expectation/preset/{n}": {
                "get": op_with("Expectation of one preset", {
                    let mut p = expectation_params();
                    p.insert(1, json!({"name": "n", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1, "maximum": 3}}));
                    p
                }, "the preset's expectation", schema_ref("PresetExpectation"))
            },
            "/api/v4/characters/{name}/expectation/recalculate": {
                "post": op_with("Refresh from the upstream and recompute (same as force=true)", expectation_params(),
                                "the expectation", schema_ref("Expectation"))
            },
            "/api/v4/characters/{name}/equipment": {
                "get": op("The upstream item-equipment JSON, cached", vec![
                    name_param(),
                    query("date", "string", "historical snapshot YYYY-MM-DD"),
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
                        "description": "opaque liker id, 1-64 characters", "schema": {"type": "string", "minLength": 1, "maxLength": 64}}],
                    "responses": {
                        "200": {"description": "{\"liked\": true, \"like_count\": N}; the count may lag by one sync interval",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        "400": errors()["400"], "503": errors()["503"]
                    }
                },
                "get": {
                    "summary": "Whether a liker liked a character, and the count",
                    "parameters": [name_param(), query("liker", "string", "the liker id to check")],
                    "responses": {"200": {"description": "status and count", "content": {"application/json": {"schema": {"type": "object"}}}},
                                  "400": errors()["400"]}
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

pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectation::Unavailable;

    #[test]
    fn every_starforce_option_is_documented_with_its_type() {
        let doc = spec();
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
        assert_eq!(sale["schema"]["exclusiveMaximum"], 1);
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
        let doc = spec();
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
}
