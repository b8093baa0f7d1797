//! Like routes: `POST /api/v2/characters/{name}/like` and `GET /api/v2/characters/{name}/like?liker=ID`.
//!
//! Contract: the name is validated ([`CharacterName::parse`]) and the liker id (header `x-liker-id` for
//! the POST, query `liker` for the GET; 1–64 characters, no control characters) before any I/O: a missing
//! or invalid one is 400 `BAD_REQUEST`. The POST is idempotent per (liker, character) and answers
//! `{"liked":true,"like_count":N}`; the GET answers `{"liked":bool,"like_count":N}` (`liked` only when a
//! liker is given). 503 `LIKES_UNAVAILABLE` (with `Retry-After`) when the like could not be accepted
//! safely — never a 200 for a like that may be lost. The work runs through the pipeline (`likes`/`like`,
//! `likes`/`status`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;

use super::AppState;
use super::error::ApiError;
use crate::ids::{CharacterName, LikerId};
use crate::likes::{LikeAnswer, LikeError, LikeStatus};
use crate::pipeline::{TaskContext, TaskError};

/// The header carrying the liker's id.
pub const LIKER_HEADER: &str = "x-liker-id";

fn name(raw: &str) -> Result<CharacterName, ApiError> {
    CharacterName::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn liker(raw: &str, from: &str) -> Result<LikerId, ApiError> {
    LikerId::parse(raw).map_err(|e| ApiError::bad_request(format!("{from}: {e}")))
}

fn task_error(e: &TaskError) -> ApiError {
    match e.downcast_ref::<LikeError>() {
        Some(le) => ApiError::from_classified(le),
        None => ApiError::from_classified(e),
    }
}

fn no_params_but(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {k:?}; allowed: {}",
            if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            }
        )));
    }
    Ok(())
}

/// `POST /api/v2/characters/{name}/like`
#[utoipa::path(
    post,
    tag = "likes",
    path = "/api/v2/characters/{name}/like",
    summary = "Like a character (idempotent per liker and character)",
    params(super::openapi::NamePath, super::openapi::LikerHeader),
    responses(super::openapi::LikeResponses)
)]
pub async fn like(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<LikeAnswer>, ApiError> {
    no_params_but(&q, &[])?;
    let n = name(&raw)?;
    let raw_liker = headers
        .get(LIKER_HEADER)
        .ok_or_else(|| ApiError::bad_request(format!("missing {LIKER_HEADER} header")))?;
    let raw_liker = std::str::from_utf8(raw_liker.as_bytes())
        .map_err(|_| ApiError::bad_request(format!("{LIKER_HEADER}: must be UTF-8")))?;
    let l = liker(raw_liker, LIKER_HEADER)?;
    let svc = s.likes.clone();
    let ctx = TaskContext::new("likes", "like").with_key(n.as_str());
    let answer = s
        .pipeline
        .execute(ctx, async move { svc.like(&n, &l).await })
        .await
        .map_err(|e| task_error(&e))?;
    Ok(Json(answer))
}

/// `GET /api/v2/characters/{name}/like?liker=ID`
#[utoipa::path(
    get,
    tag = "likes",
    path = "/api/v2/characters/{name}/like",
    summary = "Whether a liker liked a character, and the count",
    params(super::openapi::NamePath, super::openapi::LikerQuery),
    responses(super::openapi::LikeStatusResponses)
)]
pub async fn status(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<LikeStatus>, ApiError> {
    no_params_but(&q, &["liker"])?;
    let n = name(&raw)?;
    let l = q.get("liker").map(|v| liker(v, "liker")).transpose()?;
    let svc = s.likes.clone();
    let ctx = TaskContext::new("likes", "status").with_key(n.as_str());
    let answer = s
        .pipeline
        .execute(ctx, async move { svc.status(&n, l.as_ref()).await })
        .await
        .map_err(|e| task_error(&e))?;
    Ok(Json(answer))
}
