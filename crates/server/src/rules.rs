//! The rules screen's API: list, validate as you type, save, remove, backtest. A refused rule
//! answers 400 with the [`RuleCheck`] (every problem with its line and column), so the editor
//! can mark the place.

use crate::auth::Caller;
use crate::extract::{self, JsonBody, Name, Path};
use crate::reply::Checked;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::NoContent;
use axum::Json;
use chrono::Duration;
use ioc_model::{
    BacktestRequest, BacktestResponse, RuleCheck, RuleText, RulesResponse, ValidateBody,
};

pub async fn list(State(st): State<AppState>) -> Json<RulesResponse> {
    Json(st.engine.rules().await)
}

pub async fn validate(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<ValidateBody>,
) -> Result<Json<RuleCheck>, ApiError> {
    Ok(Json(
        st.engine
            .check_rule(&body.text, body.replacing.as_deref())
            .await,
    ))
}

pub async fn create(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(body): JsonBody<RuleText>,
) -> Result<Checked<RuleCheck>, ApiError> {
    Ok(Checked::new(
        st.engine.put_rule(&body.text, None, &c.actor()).await?,
        StatusCode::CREATED,
    ))
}

pub async fn replace(
    State(st): State<AppState>,
    c: Caller,
    Path(Name { name }): Path<Name>,
    JsonBody(body): JsonBody<RuleText>,
) -> Result<Checked<RuleCheck>, ApiError> {
    Ok(Checked::new(
        st.engine
            .put_rule(&body.text, Some(&name), &c.actor())
            .await?,
        StatusCode::OK,
    ))
}

pub async fn delete(
    State(st): State<AppState>,
    c: Caller,
    Path(Name { name }): Path<Name>,
) -> Result<NoContent, ApiError> {
    st.engine.delete_rule(&name, &c.actor()).await?;
    Ok(NoContent)
}

pub async fn backtest(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<BacktestRequest>,
) -> Result<Checked<BacktestResponse>, ApiError> {
    let to = extract::opt_time("to", body.to)?.unwrap_or_else(|| st.engine.clock().now());
    let from = extract::opt_time("from", body.from)?.unwrap_or(to - Duration::hours(24));
    if to - from > Duration::days(93) {
        return Err(ApiError::bad_request(
            "a backtest covers at most 93 days; choose a shorter period",
        ));
    }
    Ok(Checked::new(
        st.engine.backtest(&body.text, from, to).await?,
        StatusCode::OK,
    ))
}
