//! The SOP screen's API: templates in force, validation as you type, save (a new version),
//! remove, and any earlier version's text. A refused template answers 400 with its
//! [`RuleCheck`] (every problem with line and column).

use crate::auth::Caller;
use crate::extract::{JsonBody, Name, Path};
use crate::reply::{Checked, Text};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::NoContent;
use axum::Json;
use ioc_model::{RuleCheck, RuleText, SopInfo, ValidateBody};
use schemars::JsonSchema;
use serde::Deserialize;

pub async fn list(State(st): State<AppState>) -> Result<Json<Vec<SopInfo>>, ApiError> {
    Ok(Json(st.engine.sops().await?))
}

pub async fn validate(
    State(st): State<AppState>,
    JsonBody(b): JsonBody<ValidateBody>,
) -> Result<Json<RuleCheck>, ApiError> {
    Ok(Json(
        st.engine.check_sop(&b.text, b.replacing.as_deref()).await,
    ))
}

pub async fn create(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<RuleText>,
) -> Result<Checked<SopInfo>, ApiError> {
    Ok(Checked::new(
        st.engine.put_sop(&b.text, None, &c.actor()).await?,
        StatusCode::CREATED,
    ))
}

pub async fn replace(
    State(st): State<AppState>,
    c: Caller,
    Path(Name { name }): Path<Name>,
    JsonBody(b): JsonBody<RuleText>,
) -> Result<Checked<SopInfo>, ApiError> {
    Ok(Checked::new(
        st.engine.put_sop(&b.text, Some(&name), &c.actor()).await?,
        StatusCode::OK,
    ))
}

pub async fn delete(
    State(st): State<AppState>,
    c: Caller,
    Path(Name { name }): Path<Name>,
) -> Result<NoContent, ApiError> {
    st.engine.delete_sop(&name, &c.actor()).await?;
    Ok(NoContent)
}

/// `{name}/versions/{version}` in a route.
#[derive(Deserialize, JsonSchema)]
pub struct VersionPath {
    name: String,
    version: u32,
}

/// `GET /api/sops/{name}/versions/{version}`: that version's text.
pub async fn version(
    State(st): State<AppState>,
    Path(VersionPath { name, version }): Path<VersionPath>,
) -> Result<Text, ApiError> {
    st.engine
        .sop_version(&name, version)
        .await?
        .map(Text)
        .ok_or_else(|| ApiError::not_found(format!("no version {version} of {name:?}")))
}
