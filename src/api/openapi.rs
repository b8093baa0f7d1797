//! The OpenAPI 3.1 document of the public API, served at `GET /openapi.json`, generated from the code by
//! `utoipa` (ADR 0014).
//!
//! Contract: every route the router serves is an operation here (a black-box test compares them); the
//! operator routes (`/admin/*`, bearer scheme `bearer`) are in the document only when they are served (an
//! admin token is configured). The
//! operations come from the `#[utoipa::path]` attribute on each handler; the response bodies are the schemas
//! `utoipa::ToSchema` derives from the types the handlers serialise (the engine's [`crate::expectation::Expectation`]
//! in its envelope, the preset view, basic info, like answers, the error body), so a field added to one of
//! those types is in the document without an edit here. What the derive cannot see is computed here from the
//! validators' own code and constants, never copied:
//! - the name pattern: the exact code point ranges [`crate::ids::CharacterName::parse`] admits
//!   (`char::is_alphanumeric`), 1–12 of them;
//! - the starforce options of [`starforce::PARAMS`] with their types, enums and ranges ([`MvpGrade::ALL`],
//!   [`starforce::SALE_STEPS`], the rule constants in the descriptions), the liker id patterns, the preset range;
//! - every status a route answers with, the error body ([`super::error::ErrorBody`], its `code` one of
//!   [`Code::ALL`]), and every response header (`x-cache`, `x-cache-tier`, `Cache-Status`, `ETag`, `Age`,
//!   `Cache-Control`, `Vary`, `x-data-source`, `x-request-id`, `x-force-refresh`; `Retry-After` on errors).
//!
//! One value is only known at run time: the dates a `date` parameter admits run from [`FIRST_DATE`] to today
//! (KST). The document is generated once; on each new KST day the serve-time patch ([`with_dates`]) sets the
//! `date` parameters' pattern and description, and the serialised bytes are kept until the day changes.
//! `scripts/schemathesis.sh` checks the running gateway against the document.

use std::sync::{LazyLock, Mutex};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{Datelike, Months, NaiveDate};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::{RefOr, Response as ApiResponse};
use utoipa::{IntoParams, IntoResponses, OpenApi, ToSchema};

use super::AppState;
use crate::cache::freshness::kst_today;
use crate::characters::FIRST_DATE;
use crate::error::Code;
use crate::expectation::starforce::{self, MvpGrade};

/// The generated document (see the module contract).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "maple-gateway",
        description = "Equipment expectations (cubes, starforce, flames) of MapleStory characters. Data based on NEXON Open API."
    ),
    paths(
        super::characters::expectation,
        super::characters::expectation_preset,
        super::characters::recalculate,
        super::characters::equipment,
        super::characters::basic,
        super::likes::like,
        super::likes::status,
        super::health::live,
        super::health::ready,
        super::health::metrics,
        document,
    ),
    components(schemas(
        crate::characters::ExpectationEnvelope,
        super::characters::PresetBody,
        crate::characters::BasicInfo,
        crate::likes::LikeAnswer,
        crate::likes::LikeStatus,
        super::error::ErrorBody,
        super::health::Live,
    ))
)]
pub struct ApiDoc;

/// The operator routes, in the document only when they are served (an admin token is configured).
#[derive(OpenApi)]
#[openapi(
    paths(
        super::admin::status,
        super::admin::invalidate,
        super::admin::redis_failover,
        super::admin::upstream_outage,
        super::admin::breaker,
    ),
    components(schemas(
        crate::redis::sentinel::FailoverReport,
        super::admin::OutageReport,
        super::admin::Invalidated,
        super::error::ErrorBody,
    ))
)]
pub struct AdminDoc;

/// Builds a utoipa value from its JSON form (the OpenAPI objects are plain JSON; this keeps the hand-made
/// parts, which carry computed values, as readable as the document they produce).
fn from_json<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a well-formed OpenAPI object")
}

mod params;
use params::*;
pub use params::{
    EquipmentQuery, ExpectationQuery, IfNoneMatch, LikerHeader, LikerQuery, NamePath, PresetPath,
};

fn header(description: &str) -> Value {
    json!({"description": description, "schema": {"type": "string"}})
}

/// The headers of every data answer (200 and 304).
fn data_headers() -> Value {
    json!({
        super::CACHE_HEADER.as_str(): {"description": "whether the cache answered", "schema": {"type": "string", "enum": ["HIT", "MISS", "STALE"]}},
        super::CACHE_TIER_HEADER.as_str(): {"description": "the tier that answered a hit", "schema": {"type": "string", "enum": ["L1", "L2"]}},
        super::http_cache::CACHE_STATUS_HEADER.as_str(): header("RFC 9211: `maple-gateway; hit; ttl=<s>`, `maple-gateway; fwd=miss; fwd-status=200; stored`, `maple-gateway; fwd=stale; fwd-status=<status of the failed load>`"),
        "ETag": header("strong entity tag of the stored body: `\"<32 hex>\"` (identity) or `\"<32 hex>-gz\"` (gzip)"),
        "Cache-Control": header("`max-age=<freshness lifetime s>, stale-while-revalidate=<s>, stale-if-error=<s>`: max-age minus Age is the freshness left"),
        "Age": {"description": "seconds since the data was fetched from the upstream", "schema": {"type": "integer", "minimum": 0}},
        "Vary": header("accept-encoding"),
        super::DATA_SOURCE_HEADER.as_str(): {"description": "who produced the data: Nexon's attribution, or the in-process simulator's notice (no API key configured)",
                            "schema": {"type": "string", "enum": [super::DATA_SOURCE_VALUE, super::DATA_SOURCE_SIMULATED]}},
        super::characters::FORCE_REFRESH_HEADER: {"description": "a forced refresh that was not admitted (answered as a normal read)",
                                                  "schema": {"type": "string", "enum": ["throttled"]}},
        "x-request-id": header("the client's request id when sane, else a fresh one")
    })
}

fn schema_ref<T: ToSchema>() -> Value {
    json!({"$ref": format!("#/components/schemas/{}", T::name())})
}

fn error(description: &str) -> Value {
    json!({"description": description,
           "headers": {
               "Retry-After": {"description": "seconds to wait (429, and 503 when known)", "schema": {"type": "integer", "minimum": 0}},
               "x-request-id": header("the request id, also in the body")
           },
           "content": {"application/json": {"schema": schema_ref::<super::error::ErrorBody>()}}})
}

/// The errors every data route can answer with.
fn data_errors() -> Value {
    json!({
        "400": error(&format!("malformed name, parameter or date (dates run from {FIRST_DATE} to today, KST); unknown query parameter")),
        "404": error("character not found"),
        "413": error("request body over 64 KiB"),
        "429": error("client or upstream rate limit (Retry-After)"),
        "500": error("internal error"),
        "502": error("the upstream answered something unusable"),
        "503": error("upstream unavailable with no stale copy, overloaded, or timed out (Retry-After)")
    })
}

fn responses(v: Value) -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
    from_json(v)
}

/// A data route's answers: 200 with `body` and the data headers, 304 when `conditional`, the data errors.
fn data_responses(description: &str, body: Value, conditional: bool) -> Value {
    let mut r = data_errors();
    r["200"] = json!({
        "description": description,
        "headers": data_headers(),
        "content": {"application/json": {"schema": body}}
    });
    if conditional {
        r["304"] = json!({
            "description": "the client's If-None-Match matches: no body, the same validator and caching headers",
            "headers": data_headers()
        });
    }
    r
}

/// The errors of the like routes (no upstream behind them).
fn like_responses(description: &str, body: Value, bad_request: &str) -> Value {
    let errors = data_errors();
    json!({
        "200": {"description": description,
                "headers": {"Cache-Control": header("private, no-store"), "x-request-id": header("the request id")},
                "content": {"application/json": {"schema": body}}},
        "400": error(bad_request),
        "413": errors["413"], "429": errors["429"], "500": errors["500"], "503": errors["503"]
    })
}

/// The answers of `GET …/expectation`.
pub struct ExpectationResponses;
impl IntoResponses for ExpectationResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        responses(data_responses(
            "the expectation of every preset",
            schema_ref::<crate::characters::ExpectationEnvelope>(),
            true,
        ))
    }
}

/// The answers of `POST …/expectation/recalculate` (a POST is never answered 304).
pub struct RecalculateResponses;
impl IntoResponses for RecalculateResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        responses(data_responses(
            "the recomputed expectation",
            schema_ref::<crate::characters::ExpectationEnvelope>(),
            false,
        ))
    }
}

/// The answers of `GET …/expectation/preset/{n}`.
pub struct PresetResponses;
impl IntoResponses for PresetResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        responses(data_responses(
            "the preset's expectation",
            schema_ref::<super::characters::PresetBody>(),
            true,
        ))
    }
}

/// The answers of `GET …/equipment`.
pub struct EquipmentResponses;
impl IntoResponses for EquipmentResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        responses(data_responses(
            "the upstream's item-equipment payload as it was sent (`stale`/`data_preparing` added on a stale copy)",
            json!({"type": "object"}),
            true,
        ))
    }
}

/// The answers of `GET /api/v1/characters/{name}`.
pub struct BasicResponses;
impl IntoResponses for BasicResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        responses(data_responses(
            "basic info and the like count",
            schema_ref::<crate::characters::BasicInfo>(),
            true,
        ))
    }
}

/// The answers of `POST …/like`.
pub struct LikeResponses;
impl IntoResponses for LikeResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        responses(like_responses(
            "the like is accepted (idempotent); the count may lag by one sync interval",
            schema_ref::<crate::likes::LikeAnswer>(),
            "malformed name or liker id, missing x-liker-id, unknown query parameter",
        ))
    }
}

/// The answers of `GET …/like`.
pub struct LikeStatusResponses;
impl IntoResponses for LikeStatusResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        responses(like_responses(
            "whether the liker liked the character (when asked), and the count",
            schema_ref::<crate::likes::LikeStatus>(),
            "malformed name or liker id, unknown query parameter",
        ))
    }
}

/// The answers of `GET /openapi.json`.
pub struct DocumentResponses;
impl IntoResponses for DocumentResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        responses(json!({"200": {"description": "the OpenAPI 3.1 document",
                                 "content": {"application/json": {"schema": {"type": "object"}}}}}))
    }
}

/// `?seconds=N` of the breaker and outage routes: 1..=3600.
fn seconds_param(default: u64) -> Parameter {
    query(
        "seconds",
        &format!("how long, 1-3600 s (default {default})"),
        json!({"type": "integer", "minimum": 1, "maximum": 3600, "default": default}),
    )
}

/// `{action}` and `?seconds` of `POST /admin/breakers/nexon/{action}`.
pub struct BreakerParams;
impl IntoParams for BreakerParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            param(json!({"name": "action", "in": "path", "required": true,
                         "description": "open (for ?seconds), close, or reset (automatic again)",
                         "schema": {"type": "string", "enum": ["open", "close", "reset"]}})),
            seconds_param(60),
        ]
    }
}

/// `?seconds` of the outage drill.
pub struct OutageParams;
impl IntoParams for OutageParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![seconds_param(10)]
    }
}

/// An operator route's answers: 200 with `body`, 401/403 for the token, and `errors` (status, description).
fn admin_responses(
    description: &str,
    body: Value,
    errors: &[(&str, &str)],
) -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
    let mut r = json!({
        "200": {"description": description,
                "headers": {"Cache-Control": header("private, no-store"), "x-request-id": header("the request id")},
                "content": {"application/json": {"schema": body}}},
        "401": error("no bearer token"),
        "403": error("wrong bearer token"),
        "500": error("internal error"),
    });
    for (status, description) in errors {
        r[*status] = error(description);
    }
    responses(r)
}

/// The answers of `GET /admin/status`.
pub struct AdminStatusResponses;
impl IntoResponses for AdminStatusResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        admin_responses(
            "instance, Redis, database, cache, upstream, likes and lock state",
            json!({"type": "object"}),
            &[],
        )
    }
}

/// The answers of `POST /admin/breakers/nexon/{action}`.
pub struct BreakerResponses;
impl IntoResponses for BreakerResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        admin_responses(
            "the breaker's status after the command",
            json!({"type": "object", "required": ["breaker"], "properties": {"breaker": {"type": "object"}}}),
            &[("400", "unknown action or seconds out of range")],
        )
    }
}

/// The answers of `POST /admin/drills/upstream-outage`.
pub struct OutageResponses;
impl IntoResponses for OutageResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        admin_responses(
            "the drill's report",
            schema_ref::<super::admin::OutageReport>(),
            &[
                ("400", "seconds out of range"),
                ("503", "the drill was abandoned by its request"),
            ],
        )
    }
}

/// The answers of `POST /admin/cache/invalidate/{name}`.
pub struct InvalidateResponses;
impl IntoResponses for InvalidateResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        admin_responses(
            "the character's keys are dropped on every instance",
            schema_ref::<super::admin::Invalidated>(),
            &[("400", "malformed name")],
        )
    }
}

/// The answers of `POST /admin/drills/redis-failover`.
pub struct FailoverResponses;
impl IntoResponses for FailoverResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<ApiResponse>> {
        admin_responses(
            "the drill's report",
            schema_ref::<crate::redis::sentinel::FailoverReport>(),
            &[
                ("409", "Redis is not configured, or not in Sentinel mode"),
                (
                    "503",
                    "Redis or the Sentinels did not answer, or the drill was abandoned",
                ),
            ],
        )
    }
}

/// The `code` of the error body: one of [`Code::ALL`].
pub fn code_schema() -> utoipa::openapi::schema::Schema {
    from_json(json!({"type": "string", "enum": Code::ALL.map(Code::as_str)}))
}

/// The generated document as JSON, before the serve-time patch.
static BASE: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(ApiDoc::openapi()).expect("document serialises"));

/// The same with the operator routes and their bearer scheme.
static WITH_ADMIN: LazyLock<Value> = LazyLock::new(|| {
    let mut doc = ApiDoc::openapi();
    doc.merge(AdminDoc::openapi());
    let mut doc = serde_json::to_value(doc).expect("document serialises");
    doc["components"]["securitySchemes"] = json!({"bearer": {
        "type": "http", "scheme": "bearer", "description": "MAPLE_ADMIN_TOKEN"
    }});
    doc
});

/// The document on `today` (KST): the generated one (with the operator routes when `admin`) and the `date`
/// parameters admitting exactly [`FIRST_DATE`]..=`today` (the one value the generator cannot know).
pub fn with_dates(today: NaiveDate, admin: bool) -> Value {
    let mut doc = if admin { &*WITH_ADMIN } else { &*BASE }.clone();
    let pattern = date_pattern(today);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in op.values_mut() {
                let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                for p in params.iter_mut().filter(|p| p["name"] == "date") {
                    p["schema"]["pattern"] = pattern.clone().into();
                    p["description"] = format!(
                        "historical snapshot YYYY-MM-DD (KST), from {FIRST_DATE} to today ({today})"
                    )
                    .into();
                }
            }
        }
    }
    doc
}

/// The serialised document of one KST day.
static SERVED: Mutex<Option<(NaiveDate, bool, Bytes)>> = Mutex::new(None);

/// `GET /openapi.json`
#[utoipa::path(
    get,
    tag = "operations",
    path = "/openapi.json",
    summary = "This document",
    responses(DocumentResponses)
)]
pub async fn document(State(s): State<AppState>) -> Response {
    let today = kst_today(s.characters.now_ms());
    let admin = s.admin_token.is_some();
    let body = {
        let mut served = SERVED.lock().unwrap_or_else(|e| e.into_inner());
        match &*served {
            Some((day, was_admin, bytes)) if *day == today && *was_admin == admin => bytes.clone(),
            _ => {
                let bytes = Bytes::from(
                    serde_json::to_vec(&with_dates(today, admin)).expect("json serialises"),
                );
                *served = Some((today, admin, bytes.clone()));
                bytes
            }
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectation::Unavailable;

    fn doc() -> Value {
        with_dates(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), false)
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        assert_eq!(doc()["openapi"], "3.1.0");
        assert_eq!(doc()["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_starforce_option_is_documented_with_its_type() {
        let doc = doc();
        for route in [
            "/api/v4/characters/{name}/expectation",
            "/api/v4/characters/{name}/expectation/preset/{n}",
        ] {
            let params = doc["paths"][route]["get"]["parameters"].as_array().unwrap();
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
            let discount = params.iter().find(|p| p["name"] == "discount").unwrap();
            assert_eq!(discount["deprecated"], true);
        }
    }

    #[test]
    fn every_unavailable_reason_is_in_the_derived_schema() {
        let doc = doc();
        let reasons = doc["components"]["schemas"]["Unavailable"]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", doc["components"]["schemas"]["Unavailable"]));
        for r in [
            Unavailable::NoTable,
            Unavailable::NoTableGroup,
            Unavailable::StarsAboveMax,
            Unavailable::NoCitedSource,
            Unavailable::OutOfRange,
        ] {
            assert!(reasons.contains(&serde_json::to_value(r).unwrap()), "{r:?}");
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
        for admin in [false, true] {
            let doc = with_dates(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), admin);
            let mut all = Vec::new();
            refs(&doc, &mut all);
            assert!(all.iter().any(|r| r.ends_with("/Rules")));
            assert_eq!(all.iter().any(|r| r.ends_with("/FailoverReport")), admin);
            for r in all {
                let name = r.trim_start_matches("#/components/schemas/");
                assert!(
                    doc["components"]["schemas"][name].is_object(),
                    "{r} is dangling"
                );
            }
        }
    }

    #[test]
    fn every_data_route_documents_its_statuses_and_headers() {
        let doc = doc();
        for (path, method, conditional) in [
            ("/api/v4/characters/{name}/expectation", "get", true),
            (
                "/api/v4/characters/{name}/expectation/preset/{n}",
                "get",
                true,
            ),
            (
                "/api/v4/characters/{name}/expectation/recalculate",
                "post",
                false,
            ),
            ("/api/v4/characters/{name}/equipment", "get", true),
            ("/api/v1/characters/{name}", "get", true),
        ] {
            let op = &doc["paths"][path][method];
            let r = &op["responses"];
            for status in ["200", "400", "404", "413", "429", "500", "502", "503"] {
                assert!(r[status].is_object(), "{method} {path} {status}");
            }
            assert_eq!(r["304"].is_object(), conditional, "{method} {path} 304");
            let headers: Vec<String> = r["200"]["headers"]
                .as_object()
                .unwrap()
                .keys()
                .map(|h| h.to_ascii_lowercase())
                .collect();
            for h in [
                "x-cache",
                "x-cache-tier",
                "cache-status",
                "etag",
                "age",
                "cache-control",
                "x-data-source",
            ] {
                assert!(headers.contains(&h.to_string()), "{path}: {h}");
            }
            assert!(r["503"]["headers"]["Retry-After"].is_object());
            let conditional_param = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "If-None-Match");
            assert_eq!(conditional_param, conditional, "{method} {path}");
        }
        let codes = &doc["components"]["schemas"]["ErrorBody"];
        assert!(codes.is_object(), "{}", doc["components"]["schemas"]);
    }

    #[test]
    fn the_response_schemas_are_the_serialised_types() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let props = |name: &str| -> Vec<String> {
            let s = &schemas[name];
            let mut out: Vec<String> = s["properties"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for part in s["allOf"]
                .as_array()
                .into_iter()
                .chain(s["oneOf"].as_array())
                .flatten()
            {
                if let Some(m) = part["properties"].as_object() {
                    out.extend(m.keys().cloned());
                }
            }
            out
        };
        // The fields the engine serialises are the schema's, and nothing else (the derive reads the types).
        let sample = std::fs::read("../shared/data/nexon/item-equipment-evan.json").unwrap();
        let exp = crate::expectation::compute_json(
            &sample,
            None,
            &crate::expectation::StarforceSettings::default(),
        )
        .unwrap();
        let exp = serde_json::to_value(exp).unwrap();
        let mut want: Vec<String> = exp.as_object().unwrap().keys().cloned().collect();
        let mut have = props("Expectation");
        want.sort();
        have.sort();
        assert_eq!(have, want);
        for (schema, field) in [
            ("ItemExpectation", "warnings"),
            ("Block_StarforceResult", "replacement"),
            ("Block_StarforceResult", "unavailable"),
            ("Rules", "rule_set"),
            ("ExpectationEnvelope", "character"),
            ("ExpectationEnvelope", "stale"),
            ("ExpectationEnvelope", "data_source"),
            ("PresetBody", "data_source"),
            ("BasicInfo", "data_source"),
            ("PresetBody", "preset"),
            ("BasicInfo", "like_count"),
            ("LikeStatus", "like_count"),
        ] {
            assert!(
                props(schema).contains(&field.to_string()),
                "{schema}.{field}: {}",
                schemas[schema]
            );
        }
    }

    #[test]
    fn the_operator_routes_are_documented_only_when_served() {
        let public = doc();
        assert!(
            !public["paths"]
                .as_object()
                .unwrap()
                .keys()
                .any(|p| p.starts_with("/admin"))
        );
        let admin = with_dates(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), true);
        for (path, method) in [
            ("/admin/status", "get"),
            ("/admin/cache/invalidate/{name}", "post"),
            ("/admin/drills/redis-failover", "post"),
            ("/admin/drills/upstream-outage", "post"),
            ("/admin/breakers/nexon/{action}", "post"),
        ] {
            let op = &admin["paths"][path][method];
            assert_eq!(op["security"][0]["bearer"], json!([]), "{path}");
            for status in ["200", "401", "403"] {
                assert!(op["responses"][status].is_object(), "{path} {status}");
            }
        }
        assert_eq!(
            admin["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        // The drill reports are their serialised types.
        let failover = &admin["components"]["schemas"]["FailoverReport"]["properties"];
        for field in [
            "old_master",
            "new_master",
            "acknowledged_writes",
            "lost_writes",
            "lost_disposable_writes",
            "note",
        ] {
            assert!(failover[field].is_object(), "{field}: {failover}");
        }
        let outage = &admin["components"]["schemas"]["OutageReport"]["properties"];
        assert!(outage["breaker_after"].is_object(), "{outage}");
        // The public part is the same document.
        assert_eq!(
            admin["paths"]["/api/v1/characters/{name}"],
            public["paths"]["/api/v1/characters/{name}"]
        );
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
        let doc = doc();
        let name = doc["paths"]["/api/v1/characters/{name}"]["get"]["parameters"][0].clone();
        assert_eq!(name["name"], "name");
        assert_eq!(name["schema"]["pattern"], p);
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
        // The serve-time patch puts that pattern on every `date` parameter.
        let doc = with_dates(today, false);
        let mut seen = 0;
        for path in doc["paths"].as_object().unwrap().values() {
            for op in path.as_object().unwrap().values() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["name"] == "date" {
                        assert_eq!(p["schema"]["pattern"], date_pattern(today));
                        seen += 1;
                    }
                }
            }
        }
        assert_eq!(seen, 4, "expectation, preset, recalculate, equipment");
    }
}
