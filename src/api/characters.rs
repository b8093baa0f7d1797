//! Character routes: expectation (all presets, one preset, recalculate), raw equipment, basic info.
//!
//! Contract: names, presets, dates and options are validated here, before any I/O (400 `BAD_REQUEST` with
//! the problem named: an unknown parameter, or a starforce option with its name, value and range). The
//! expectation routes take `force`, `date` and every starforce option of [`starforce::PARAMS`], read once into
//! [`StarforceSettings`] (the settings the cache key names and the engine computes with, echoed in the body as
//! `starforce_options`). Data responses carry `x-cache` (`HIT`/`MISS`/`STALE`), `x-cache-tier` on hits, `age`,
//! `etag`, `cache-control`, `cache-status` and `x-data-source`, and answer a matching `If-None-Match` with
//! 304 (see `http_cache`). A forced refresh (`force=true`, `recalculate`) is admitted once per character and
//! route per minute; a refused one is answered as a normal read with `x-force-refresh: throttled`. A client
//! that accepts gzip gets the stored gzip bytes as they are (no per-request
//! compression); others get them inflated. All work runs through the execution-policy pipeline.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::ApiError;
use super::http_cache;
use super::{AppState, CACHE_HEADER, CACHE_TIER_HEADER, DATA_SOURCE_HEADER};
use crate::cache::CacheStatus;
use crate::characters::{Answer, CharacterError, DataDate};
use crate::codec;
use crate::error::Code;
use crate::expectation::StarforceSettings;
use crate::expectation::starforce;
use crate::ids::CharacterName;
use crate::pipeline::TaskContext;

type Params = Query<HashMap<String, String>>;

fn name(raw: &str) -> Result<CharacterName, ApiError> {
    CharacterName::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn check_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {k:?}; allowed: {}",
            allowed.join(", ")
        )));
    }
    Ok(())
}

fn flag(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(|s| s.as_str()) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{key} must be true or false, got {other:?}"
        ))),
    }
}

fn date(q: &HashMap<String, String>, now_ms: i64) -> Result<DataDate, ApiError> {
    match q.get("date") {
        None => Ok(DataDate::LATEST),
        Some(d) => DataDate::parse(d, now_ms).map_err(|e| ApiError::bad_request(e.to_string())),
    }
}

/// The starforce settings of the query (parameters [`starforce::PARAMS`]; `discount` is the event sale's older
/// name), each bad value a 400 naming the parameter, its value and its range.
fn options(q: &HashMap<String, String>) -> Result<StarforceSettings, ApiError> {
    StarforceSettings::from_params(|k| q.get(k).map(String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The query parameters of the expectation routes: `force`, `date` and every starforce option.
static EXPECTATION_PARAMS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| [&["force", "date"][..], starforce::PARAMS].concat());

/// What a data response is negotiated by, read from the request head without copying its headers (the
/// `HeaderMap` extractor clones the whole map on every request): whether the client accepts gzip, and its
/// `If-None-Match` values on a GET or HEAD (ignored on other methods).
pub struct ClientHead {
    pub gzip: bool,
    pub if_none_match: Vec<HeaderValue>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientHead {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let conditional = matches!(parts.method, Method::GET | Method::HEAD);
        let if_none_match = if conditional {
            parts
                .headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Ok(ClientHead {
            gzip: accepts_gzip(&parts.headers),
            if_none_match,
        })
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    super::middleware::accepts_gzip(
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Set on a response whose forced refresh was not admitted (answered as a normal read).
pub const FORCE_REFRESH_HEADER: &str = "x-force-refresh";

/// Whether a requested force goes ahead: `(force, throttled)`.
async fn admit_force(
    s: &AppState,
    name: &CharacterName,
    route: &str,
    requested: bool,
) -> (bool, bool) {
    if !requested {
        return (false, false);
    }
    let admitted = s.characters.admit_force(name, route).await;
    (admitted, !admitted)
}

fn map_err(e: &CharacterError) -> ApiError {
    ApiError::from_classified(e)
}

/// Headers of a data response: content-encoding, content-type, vary, x-data-source, x-cache, x-cache-tier,
/// age, etag, cache-control, cache-status, x-request-id.
const DATA_RESPONSE_HEADERS: usize = 11;

/// Builds a data response from a stored gzip body: 200 with the body, or 304 without it when the client's
/// `If-None-Match` matches (see `http_cache`). `forced` when the client asked for a refresh.
fn data_response(
    s: &AppState,
    answer: Answer,
    head: &ClientHead,
    now_ms: i64,
    forced: bool,
) -> Result<Response, ApiError> {
    let gzip_ok = head.gzip;
    let etag = http_cache::etag_header(answer.etag, gzip_ok);
    let not_modified =
        !head.if_none_match.is_empty() && http_cache::none_match(&head.if_none_match, &etag);
    let body = if not_modified {
        Body::empty()
    } else if gzip_ok {
        Body::from(answer.body_gz.clone())
    } else {
        let raw = codec::decompress(&answer.body_gz).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                "internal error",
            )
        })?;
        Body::from(raw)
    };
    let mut resp = Response::new(body);
    if not_modified {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
    }
    // Sized for every header of a data response (the request id is added by the inbound layer): a map
    // grown from the default size would be reallocated and rehashed on every response.
    let h = resp.headers_mut();
    h.reserve(DATA_RESPONSE_HEADERS);
    if !not_modified {
        if gzip_ok {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        DATA_SOURCE_HEADER,
        HeaderValue::from_static(s.upstream_mode.data_source()),
    );
    h.insert(
        CACHE_HEADER,
        HeaderValue::from_static(answer.status.header()),
    );
    if let CacheStatus::Hit(tier) = answer.status {
        h.insert(CACHE_TIER_HEADER, HeaderValue::from_static(tier.as_str()));
    }
    if answer.force_throttled {
        h.insert(FORCE_REFRESH_HEADER, HeaderValue::from_static("throttled"));
    }
    h.insert(header::AGE, http_cache::age(&answer, now_ms));
    h.insert(header::ETAG, etag);
    h.insert(
        header::CACHE_CONTROL,
        http_cache::cache_control(&answer, s.characters.cache().swr_grace()),
    );
    h.insert(
        http_cache::CACHE_STATUS_HEADER,
        http_cache::cache_status(&answer, now_ms, forced),
    );
    Ok(resp)
}

async fn expectation_answer(
    s: &AppState,
    raw_name: &str,
    q: &HashMap<String, String>,
    force_override: bool,
    operation: &'static str,
) -> Result<(Answer, i64, bool), ApiError> {
    check_params(q, &EXPECTATION_PARAMS)?;
    let n = name(raw_name)?;
    let now = s.characters.now_ms();
    let d = date(q, now)?;
    let opts = options(q)?;
    // Validated also when the route forces anyway (a malformed value is a client error everywhere).
    let (force, throttled) =
        admit_force(s, &n, operation, flag(q, "force")? || force_override).await;
    let svc = &s.characters;
    let ctx = TaskContext::new("characters", operation).with_key(n.as_str());
    let answer = s
        .pipeline
        .execute(ctx, async {
            let answer = svc.expectation(&n, d, opts, force).await?;
            if force && answer.status == CacheStatus::Miss {
                svc.announce_refresh(&n).await;
            }
            Ok::<_, CharacterError>(answer)
        })
        .await
        .map_err(|e| task_error(&e))?;
    Ok((
        crate::characters::Answer {
            force_throttled: throttled,
            ..answer
        },
        now,
        force,
    ))
}

fn task_error(e: &crate::pipeline::TaskError) -> ApiError {
    match e.downcast_ref::<CharacterError>() {
        Some(ce) => map_err(ce),
        None => ApiError::from_classified(e),
    }
}

/// `GET /api/v4/characters/{name}/expectation`
pub async fn expectation(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Params,
    head: ClientHead,
) -> Result<Response, ApiError> {
    let (answer, now, forced) = expectation_answer(&s, &raw, &q, false, "expectation").await?;
    data_response(&s, answer, &head, now, forced)
}

/// `POST /api/v4/characters/{name}/expectation/recalculate` — the same as `force=true`.
pub async fn recalculate(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Params,
    head: ClientHead,
) -> Result<Response, ApiError> {
    let (answer, now, forced) = expectation_answer(&s, &raw, &q, true, "recalculate").await?;
    data_response(&s, answer, &head, now, forced)
}

/// `GET /api/v4/characters/{name}/expectation/preset/{n}`
pub async fn expectation_preset(
    State(s): State<AppState>,
    Path((raw, preset)): Path<(String, String)>,
    Query(q): Params,
    head: ClientHead,
) -> Result<Response, ApiError> {
    let n: usize = match preset.parse::<usize>() {
        Ok(n @ 1..=3) => n,
        _ => {
            return Err(ApiError::bad_request(format!(
                "preset must be 1, 2 or 3, got {preset:?}"
            )));
        }
    };
    let (answer, now, forced) =
        expectation_answer(&s, &raw, &q, false, "expectation_preset").await?;
    let internal = || {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            "internal error",
        )
    };
    let full: serde_json::Value =
        serde_json::from_slice(&codec::decompress(&answer.body_gz).map_err(|_| internal())?)
            .map_err(|_| internal())?;
    let mut out = serde_json::Map::new();
    for k in [
        "character",
        "data_source",
        "date",
        "data_as_of",
        "stale",
        "table_version",
        "character_class",
        "main_stat",
        "attack_type",
        "starforce_options",
        "rules",
    ] {
        if let Some(v) = full.get(k) {
            out.insert(k.to_string(), v.clone());
        }
    }
    out.insert("preset".into(), full["presets"][n - 1].clone());
    let body = serde_json::to_vec(&out).map_err(|_| internal())?;
    let part = format!("preset={n}");
    let preset_answer = answer.with_body(Bytes::from(codec::compress(&body)), part.as_bytes());
    data_response(&s, preset_answer, &head, now, forced)
}

/// `GET /api/v4/characters/{name}/equipment`
pub async fn equipment(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Params,
    head: ClientHead,
) -> Result<Response, ApiError> {
    check_params(&q, &["date", "force"])?;
    let n = name(&raw)?;
    let now = s.characters.now_ms();
    let d = date(&q, now)?;
    let (force, throttled) = admit_force(&s, &n, "equipment", flag(&q, "force")?).await;
    let svc = s.characters.clone();
    let ctx = TaskContext::new("characters", "equipment").with_key(n.as_str());
    let mut answer = s
        .pipeline
        .execute(ctx, async move { svc.equipment(&n, d, force).await })
        .await
        .map_err(|e| task_error(&e))?;
    answer.force_throttled = throttled;
    data_response(&s, answer, &head, now, force)
}

/// `GET /api/v1/characters/{name}`
pub async fn basic(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Params,
    head: ClientHead,
) -> Result<Response, ApiError> {
    check_params(&q, &[])?;
    let n = name(&raw)?;
    let now = s.characters.now_ms();
    let svc = s.characters.clone();
    let ctx = TaskContext::new("characters", "basic").with_key(n.as_str());
    let answer = s
        .pipeline
        .execute(ctx, async move { svc.basic(&n).await })
        .await
        .map_err(|e| task_error(&e))?;
    data_response(&s, answer, &head, now, false)
}

impl IntoResponse for crate::characters::CharacterError {
    fn into_response(self) -> Response {
        ApiError::from_classified(&self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn options_are_validated_with_named_problems() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(options(&q(&[])).is_ok());
        assert!(options(&q(&[("starcatch", "true"), ("discount", "0.3")])).is_ok());
        let e = options(&q(&[("discount", "1.5")])).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = options(&q(&[("sunday", "maybe")])).unwrap_err();
        assert!(e.message.contains("sunday"), "{}", e.message);
        let e = check_params(&q(&[("forse", "true")]), &EXPECTATION_PARAMS).unwrap_err();
        assert!(e.message.contains("forse"));
        // Every option the engine reads is a parameter of the route, each checked with its name and range.
        for p in starforce::PARAMS {
            assert!(
                check_params(&q(&[(p, "1")]), &EXPECTATION_PARAMS).is_ok(),
                "{p}"
            );
        }
        for (p, bad, range) in [
            ("mvp", "platinum", "diamond"),
            ("pc_room", "maybe", "true or false"),
            ("event_sale", "1", "[0, 1)"),
            ("event_5_10_15", "yes", "true or false"),
            ("event_1plus1", "2", "true or false"),
            ("replacement_cost", "-1", "non-negative integer"),
            ("starcatch", "on", "true or false"),
            ("prevention", "x", "true or false"),
            ("discount", "abc", "[0, 1)"),
        ] {
            let e = options(&q(&[(p, bad)])).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{p}");
            assert!(
                e.message.contains(p) && e.message.contains(range),
                "{p}: {}",
                e.message
            );
        }
        let o = options(&q(&[
            ("mvp", "gold"),
            ("pc_room", "true"),
            ("event_sale", "0.3"),
            ("event_5_10_15", "1"),
            ("event_1plus1", "true"),
            ("replacement_cost", "1500000000"),
        ]))
        .unwrap();
        assert_eq!(o.mvp, crate::expectation::MvpGrade::Gold);
        assert!(o.pc_room && o.event_5_10_15 && o.event_1plus1);
        assert_eq!(o.replacement_cost, Some(1_500_000_000));
    }

    #[test]
    fn a_sale_is_read_once_so_the_key_and_the_figures_agree() {
        let q = |v: &str| {
            [("discount".to_string(), v.to_string())]
                .into_iter()
                .collect()
        };
        let fine = options(&q("0.30004")).unwrap();
        let plain = options(&q("0.3")).unwrap();
        assert_eq!(fine.key_fragment(), plain.key_fragment());
        let sample = std::fs::read("../shared/data/nexon/item-equipment-evan.json").unwrap();
        let body = |o: &StarforceSettings| {
            serde_json::to_string(&crate::expectation::compute_json(&sample, None, o).unwrap())
                .unwrap()
        };
        assert_eq!(body(&fine), body(&plain));
    }

    #[test]
    fn client_codes_map_to_documented_statuses() {
        use crate::error::Classify;
        use crate::nexon::NexonError;
        let cases = [
            (NexonError::NotFound, 404),
            (NexonError::Bug("x"), 502),
            (NexonError::BadResponse("x".into()), 502),
            (NexonError::TooLarge, 502),
            (NexonError::Auth("x"), 503),
            (NexonError::Maintenance("x"), 503),
            (NexonError::RateLimited { retry_after: None }, 429),
            (NexonError::Timeout, 503),
        ];
        for (e, want) in cases {
            assert_eq!(e.code().status().as_u16(), want, "{e:?}");
        }
    }
}
