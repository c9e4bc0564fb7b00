//! JSON handlers. Reads of live state come from the hub (memory); history comes from the
//! store on a blocking thread; changes go through the engine's pipeline.

use crate::auth::{need, scope};
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use ioc_engine::alerts::AlertAction;
use ioc_engine::auth::{Permission, Principal};
use ioc_model::{
    Alert, AlertActionRequest, AlertState, DeadLetter, Entity, Health, SeriesResponse,
    SourceStatus, Unit,
};
use serde::Deserialize;

type ApiResult<T> = Result<Json<T>, ApiError>;

pub async fn health(State(st): State<AppState>) -> Json<Health> {
    Json(st.engine.health())
}

pub async fn entities(State(st): State<AppState>) -> Json<Vec<Entity>> {
    Json(st.engine.hub().entities())
}

pub async fn entity(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Entity> {
    st.engine
        .hub()
        .entity(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no entity {id:?}")))
}

#[derive(Deserialize)]
pub struct SeriesQuery {
    metric: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// `?metric=pm25[&from=RFC3339][&to=RFC3339]`; default: the last 6 hours.
pub async fn series(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SeriesQuery>,
) -> ApiResult<SeriesResponse> {
    let to = q.to.unwrap_or_else(|| st.engine.clock().now());
    let from = q.from.unwrap_or(to - Duration::hours(6));
    if from >= to {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    if to - from > Duration::days(400) {
        return Err(ApiError::bad_request("at most 400 days at once"));
    }
    st.engine
        .series(id.clone(), q.metric.clone(), from, to)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no series {}/{}", id, q.metric)))
}

#[derive(Deserialize)]
pub struct AlertsQuery {
    state: Option<String>,
    limit: Option<usize>,
}

/// `?state=open` (default; live, from the hub), `all`, or a comma-separated list of states.
pub async fn alerts(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AlertsQuery>,
) -> ApiResult<Vec<Alert>> {
    let limit = q.limit.unwrap_or(500).min(10_000);
    let state = q.state.as_deref().unwrap_or("open");
    if state == "open" {
        let mut open = st.engine.hub().open_alerts();
        open.retain(|a| p.in_scope(a.unit.as_deref()));
        open.truncate(limit);
        return Ok(Json(open));
    }
    let states = if state == "all" {
        Vec::new()
    } else {
        state
            .split(',')
            .map(|s| {
                AlertState::parse(s.trim()).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unknown state {s:?} (open, all, new, acknowledged, assigned, \
                         in_progress, shelved, resolved, closed)"
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let mut list = st.engine.alerts(states, limit).await?;
    list.retain(|a| p.in_scope(a.unit.as_deref()));
    Ok(Json(list))
}

pub async fn alert(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Alert> {
    let a = st
        .engine
        .alert(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    if !p.in_scope(a.unit.as_deref()) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            format!("alert {id} is outside your units"),
        ));
    }
    Ok(Json(a))
}

/// The alert as CAP 1.2 XML.
pub async fn alert_cap(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let xml = st
        .engine
        .alert_cap(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/cap+xml; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                &format!("inline; filename=\"alert-{id}.cap.xml\"") as &str,
            ),
        ],
        xml,
    )
        .into_response())
}

/// `POST /api/alerts/{id}/{action}` with an optional body `{"comment", "to", "until"}`:
/// `ack`, `assign` (`to`), `start`, `comment` (`comment`), `resolve`, `close`, `shelve`
/// (`until`, RFC 3339), `unshelve`.
pub async fn alert_action(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, action)): Path<(i64, String)>,
    body: Option<Json<AlertActionRequest>>,
) -> ApiResult<Alert> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let act = match action.as_str() {
        "ack" => AlertAction::Ack,
        "assign" => AlertAction::Assign {
            to: b.to.clone().unwrap_or_default(),
        },
        "start" => AlertAction::Start,
        "comment" => AlertAction::Comment,
        "resolve" => AlertAction::Resolve,
        "close" => AlertAction::Close,
        "shelve" => AlertAction::Shelve {
            until: b
                .until
                .ok_or_else(|| ApiError::bad_request("shelve until when? (`until`)"))?,
        },
        "unshelve" => AlertAction::Unshelve,
        other => {
            return Err(ApiError::not_found(format!(
                "no alert action {other:?} (ack, assign, start, comment, resolve, close, \
                 shelve, unshelve)"
            )))
        }
    };
    need(&p, Permission::WorkAlerts)?;
    if act == AlertAction::Close {
        need(&p, Permission::Close)?;
    }
    let alert = st
        .engine
        .alert_act(id, act, &p.actor(), b.comment, scope(&p))
        .await?;
    Ok(Json(alert))
}

/// `GET /api/audit?target=alert:42&limit=100`.
pub async fn audit(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Vec<ioc_engine::audit::AuditRow>> {
    need(&p, Permission::Audit)?;
    Ok(Json(
        st.engine
            .audit(q.target, q.limit.unwrap_or(200).min(5000))
            .await?,
    ))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    target: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub struct ImportQuery {
    /// `auto` (default), `cap`, `ngsi-ld`, `geojson`, `json`, `csv`.
    format: Option<String>,
    /// File name (for the dead letters, and for `auto`).
    name: Option<String>,
    /// The mapping of `json`/`csv`/`geojson`, as TOML.
    mapping: Option<String>,
    /// Source name to record it under (default `import`).
    source: Option<String>,
}

/// `POST /api/import?format=…&name=…` with the file as the body.
pub async fn import(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ImportQuery>,
    body: axum::body::Bytes,
) -> ApiResult<ioc_model::ImportReport> {
    need(&p, Permission::Import)?;
    let mapping = match q.mapping.as_deref() {
        Some(t) => Some(
            toml::from_str::<toml::Value>(t)
                .map_err(|e| ApiError::bad_request(format!("mapping: {}", e.to_string().trim())))?,
        ),
        None => None,
    };
    let report = st
        .engine
        .import(
            q.source.as_deref().unwrap_or("import"),
            q.format.as_deref().unwrap_or("auto"),
            mapping.as_ref(),
            q.name.as_deref(),
            body.to_vec(),
        )
        .await?;
    Ok(Json(report))
}

pub async fn sources(State(st): State<AppState>) -> Json<Vec<SourceStatus>> {
    Json(st.engine.sources())
}

/// Body: the keys of a `[[source]]` table, as TOML. Adds the source, or replaces the one of
/// the admin screen with that name.
pub async fn put_source(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    body: String,
) -> ApiResult<SourceStatus> {
    need(&p, Permission::EditSources)?;
    Ok(Json(st.engine.put_source(&body, &p.actor()).await?))
}

pub async fn delete_source(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    need(&p, Permission::EditSources)?;
    st.engine.delete_source(&name, &p.actor()).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct DeadLettersQuery {
    source: Option<String>,
    q: Option<String>,
    limit: Option<usize>,
    format: Option<String>,
}

/// `?source=NAME&q=TEXT&limit=N&format=json|csv`, newest first.
pub async fn dead_letters(
    State(st): State<AppState>,
    Query(q): Query<DeadLettersQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(200).min(100_000);
    let text = q.q.filter(|t| !t.trim().is_empty());
    let rows: Vec<DeadLetter> = st.engine.dead_letters(q.source, text, limit).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(rows).into_response()),
        Some("csv") => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record([
                "id",
                "source",
                "received_at",
                "origin",
                "reason",
                "size",
                "payload",
            ]);
            for d in &rows {
                let _ = w.write_record([
                    d.id.to_string(),
                    d.source.clone(),
                    d.received_at.to_rfc3339(),
                    d.origin.clone().unwrap_or_default(),
                    d.reason.clone(),
                    d.size.to_string(),
                    d.payload.clone(),
                ]);
            }
            let body = w.into_inner().unwrap_or_default();
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"dead-letters.csv\"",
                    ),
                ],
                body,
            )
                .into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "format {other:?}: json or csv"
        ))),
    }
}

pub async fn units(State(st): State<AppState>) -> ApiResult<Vec<Unit>> {
    Ok(Json(st.engine.units().await?))
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such API route: {}", uri.path()))
}
