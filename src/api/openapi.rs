//! The OpenAPI 3.1 document of the public API, served at `GET /openapi.json`.
//!
//! Contract: every route the router serves is described here (a black-box test compares them), with its
//! parameters, its success body and the error shape. Written by hand, next to the routes, so that it changes
//! in the same commit as they do.

use axum::Json;
use serde_json::{Value, json};

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true,
           "description": "character name: 1-12 letters or digits (any script)",
           "schema": {"type": "string", "minLength": 1, "maxLength": 12}})
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": ty}})
}

fn expectation_params() -> Vec<Value> {
    vec![
        name_param(),
        query(
            "force",
            "boolean",
            "bypass the caches and refresh from the upstream",
        ),
        query(
            "date",
            "string",
            "historical snapshot YYYY-MM-DD (KST), from 2023-12-21 to today",
        ),
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
        query("discount", "number", "cost discount fraction in [0, 1)"),
    ]
}

fn data_response(description: &str) -> Value {
    json!({
        "description": description,
        "headers": {
            "x-cache": {"description": "HIT, MISS or STALE", "schema": {"type": "string"}},
            "x-cache-tier": {"description": "L1 or L2, on hits", "schema": {"type": "string"}},
            "age": {"description": "seconds since the data was fetched from the upstream", "schema": {"type": "integer"}},
            "x-data-source": {"description": "Data based on NEXON Open API", "schema": {"type": "string"}}
        },
        "content": {"application/json": {"schema": {"type": "object"}}}
    })
}

fn errors() -> Value {
    let e = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "400": e, "404": e, "429": e, "502": e, "503": e
    })
}

fn op(summary: &str, params: Vec<Value>, ok: &str) -> Value {
    let mut responses = errors();
    responses["200"] = data_response(ok);
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
                "get": op("Expectation of every preset (headline = equipped preset)", expectation_params(), "the expectation")
            },
            "/api/v4/characters/{name}/expectation/preset/{n}": {
                "get": op("Expectation of one preset", {
                    let mut p = expectation_params();
                    p.insert(1, json!({"name": "n", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1, "maximum": 3}}));
                    p
                }, "the preset's expectation")
            },
            "/api/v4/characters/{name}/expectation/recalculate": {
                "post": op("Refresh from the upstream and recompute (same as force=true)", expectation_params(), "the expectation")
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

pub async fn document() -> Json<Value> {
    Json(spec())
}
