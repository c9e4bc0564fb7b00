//! The rules screen's API: list, validate as you type, save, remove, backtest. A refused rule
//! answers 400 with the [`RuleCheck`] (every problem with its line and column), so the editor
//! can mark the place.

use crate::auth::need;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{Duration, Utc};
use ioc_engine::auth::{Permission, Principal};
use ioc_model::{BacktestRequest, RuleCheck, RuleText, RulesResponse};
use serde::Deserialize;

pub async fn list(State(st): State<AppState>) -> Json<RulesResponse> {
    Json(st.engine.rules().await)
}

#[derive(Deserialize)]
pub struct ValidateBody {
    text: String,
    /// The rule being edited (its name before the edit); absent for a new rule.
    #[serde(default)]
    replacing: Option<String>,
}

pub async fn validate(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<ValidateBody>,
) -> Result<Json<RuleCheck>, ApiError> {
    need(&p, Permission::EditRules)?;
    Ok(Json(
        st.engine
            .check_rule(&body.text, body.replacing.as_deref())
            .await,
    ))
}

fn refused(check: RuleCheck) -> Response {
    (StatusCode::BAD_REQUEST, Json(check)).into_response()
}

pub async fn create(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<RuleText>,
) -> Result<Response, ApiError> {
    need(&p, Permission::EditRules)?;
    Ok(
        match st.engine.put_rule(&body.text, None, &p.actor()).await? {
            Ok(c) => (StatusCode::CREATED, Json(c)).into_response(),
            Err(c) => refused(c),
        },
    )
}

pub async fn replace(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    Json(body): Json<RuleText>,
) -> Result<Response, ApiError> {
    need(&p, Permission::EditRules)?;
    Ok(
        match st
            .engine
            .put_rule(&body.text, Some(&name), &p.actor())
            .await?
        {
            Ok(c) => Json(c).into_response(),
            Err(c) => refused(c),
        },
    )
}

pub async fn delete(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&p, Permission::EditRules)?;
    st.engine.delete_rule(&name, &p.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn backtest(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<BacktestRequest>,
) -> Result<Response, ApiError> {
    need(&p, Permission::EditRules)?;
    let to = body.to.unwrap_or_else(Utc::now);
    let from = body.from.unwrap_or(to - Duration::hours(24));
    if to - from > Duration::days(93) {
        return Err(ApiError::bad_request(
            "a backtest covers at most 93 days; choose a shorter period",
        ));
    }
    Ok(match st.engine.backtest(&body.text, from, to).await? {
        Ok(r) => Json(r).into_response(),
        Err(c) => refused(c),
    })
}
