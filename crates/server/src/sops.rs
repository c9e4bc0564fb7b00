//! The SOP screen's API: templates in force, validation as you type, save (a new version),
//! remove, and any earlier version's text. A refused template answers 400 with its
//! [`RuleCheck`] (every problem with line and column).

use crate::auth::need;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ioc_engine::auth::{Permission, Principal};
use ioc_model::{RuleCheck, RuleText, SopInfo};
use serde::Deserialize;

pub async fn list(State(st): State<AppState>) -> Result<Json<Vec<SopInfo>>, ApiError> {
    Ok(Json(st.engine.sops().await?))
}

#[derive(Deserialize)]
pub struct ValidateBody {
    text: String,
    /// The template being edited (its name before the edit); absent for a new one.
    #[serde(default)]
    replacing: Option<String>,
}

pub async fn validate(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<ValidateBody>,
) -> Result<Json<RuleCheck>, ApiError> {
    need(&p, Permission::EditRules)?;
    Ok(Json(
        st.engine.check_sop(&b.text, b.replacing.as_deref()).await,
    ))
}

fn saved(r: Result<SopInfo, RuleCheck>, status: StatusCode) -> Response {
    match r {
        Ok(info) => (status, Json(info)).into_response(),
        Err(c) => (StatusCode::BAD_REQUEST, Json(c)).into_response(),
    }
}

pub async fn create(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<RuleText>,
) -> Result<Response, ApiError> {
    need(&p, Permission::EditRules)?;
    Ok(saved(
        st.engine.put_sop(&b.text, None, &p.actor()).await?,
        StatusCode::CREATED,
    ))
}

pub async fn replace(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    Json(b): Json<RuleText>,
) -> Result<Response, ApiError> {
    need(&p, Permission::EditRules)?;
    Ok(saved(
        st.engine.put_sop(&b.text, Some(&name), &p.actor()).await?,
        StatusCode::OK,
    ))
}

pub async fn delete(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&p, Permission::EditRules)?;
    st.engine.delete_sop(&name, &p.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/sops/{name}/versions/{version}`: that version's text.
pub async fn version(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, u32)>,
) -> Result<Response, ApiError> {
    let text = st
        .engine
        .sop_version(&name, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no version {version} of {name:?}")))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
