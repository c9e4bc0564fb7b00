//! The leaders' API: KPI values, series and what is behind them; KPI definitions;
//! dashboards; the wall's profile; statistical reports with their progress.

use crate::auth::need;
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ioc_engine::auth::{Permission, Principal};
use ioc_model::{
    Dashboard, KpiDef, KpiItem, KpiSeries, KpiValue, Period, ReportJob, ReportRequest, RuleCheck,
    RuleProblem, RuleText, WallProfile,
};
use serde::{Deserialize, Serialize};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize)]
pub struct PeriodQuery {
    period: Option<String>,
    date: Option<NaiveDate>,
    unit: Option<String>,
}

fn period(p: &Option<String>) -> Result<Option<Period>, ApiError> {
    match p.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => Period::parse(s).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!("period {s:?}: hour, day, week or month"))
        }),
    }
}

/// `GET /api/kpis[?period=day|week|month|hour&date=YYYY-MM-DD]`: every KPI over its own
/// current period (live), or over the period of that kind containing that date.
pub async fn kpis(
    State(st): State<AppState>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Vec<KpiValue>> {
    let p = period(&q.period)?;
    if p.is_none() && q.date.is_none() {
        let live = st.engine.hub().kpis();
        if !live.is_empty() {
            return Ok(Json(live));
        }
    }
    Ok(Json(st.engine.kpi_values(p, q.date).await?))
}

/// `GET /api/kpis/{id}[?period&date&unit]`.
pub async fn kpi(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<KpiValue> {
    Ok(Json(
        st.engine
            .kpi_value(&id, period(&q.period)?, q.date, q.unit)
            .await?,
    ))
}

#[derive(Deserialize)]
pub struct SeriesQuery {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    period: Option<String>,
    unit: Option<String>,
}

/// `GET /api/kpis/{id}/series?from=…&to=…[&period][&unit]`: one point per period (default:
/// the KPI's own) over `[from, to)` (default: the last 30 days).
pub async fn series(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SeriesQuery>,
) -> ApiResult<KpiSeries> {
    let to = q.to.unwrap_or_else(|| st.engine.clock().now());
    let from = q.from.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    if to - from > Duration::days(800) {
        return Err(ApiError::bad_request("at most 800 days at once"));
    }
    Ok(Json(
        st.engine
            .kpi_series(&id, from, to, period(&q.period)?, q.unit)
            .await?,
    ))
}

/// `GET /api/kpis/{id}/detail[?period&date&unit]`: the entities, alerts, incidents or
/// directives behind the number.
pub async fn detail(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Vec<KpiItem>> {
    Ok(Json(
        st.engine
            .kpi_detail(&id, period(&q.period)?, q.date, q.unit)
            .await?,
    ))
}

#[derive(Serialize)]
pub struct Defs {
    defs: Vec<KpiDef>,
    problems: Vec<RuleProblem>,
}

pub async fn defs(State(st): State<AppState>) -> Json<Defs> {
    let (defs, problems) = st.engine.kpi_defs().await;
    Json(Defs { defs, problems })
}

#[derive(Deserialize)]
pub struct ValidateBody {
    text: String,
    #[serde(default)]
    replacing: Option<String>,
}

pub async fn validate_def(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<ValidateBody>,
) -> Result<Json<RuleCheck>, ApiError> {
    need(&p, Permission::EditKpis)?;
    Ok(Json(
        st.engine.check_kpi(&b.text, b.replacing.as_deref()).await,
    ))
}

fn saved(r: Result<KpiDef, RuleCheck>, status: StatusCode) -> Response {
    match r {
        Ok(d) => (status, Json(d)).into_response(),
        Err(c) => (StatusCode::BAD_REQUEST, Json(c)).into_response(),
    }
}

pub async fn create_def(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<RuleText>,
) -> Result<Response, ApiError> {
    need(&p, Permission::EditKpis)?;
    Ok(saved(
        st.engine.put_kpi(&b.text, None, &p.actor()).await?,
        StatusCode::CREATED,
    ))
}

pub async fn replace_def(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Json(b): Json<RuleText>,
) -> Result<Response, ApiError> {
    need(&p, Permission::EditKpis)?;
    Ok(saved(
        st.engine.put_kpi(&b.text, Some(&id), &p.actor()).await?,
        StatusCode::OK,
    ))
}

pub async fn delete_def(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&p, Permission::EditKpis)?;
    st.engine.delete_kpi(&id, &p.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/dashboards`: the built-in ones, the user's, those shared with their role.
pub async fn dashboards(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Vec<Dashboard>> {
    Ok(Json(st.engine.dashboards(&p.actor(), p.info.role).await?))
}

pub async fn dashboard(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Dashboard> {
    st.engine
        .dashboards(&p.actor(), p.info.role)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no dashboard {id:?}")))
}

/// `POST /api/dashboards`: a new dashboard (its `id` is given by the server).
pub async fn create_dashboard(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(mut d): Json<Dashboard>,
) -> Result<(StatusCode, Json<Dashboard>), ApiError> {
    need(&p, Permission::View)?;
    d.id = String::new();
    let d = st.engine.put_dashboard(d, &p.actor(), p.info.role).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

pub async fn replace_dashboard(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Json(mut d): Json<Dashboard>,
) -> ApiResult<Dashboard> {
    d.id = id;
    Ok(Json(
        st.engine.put_dashboard(d, &p.actor(), p.info.role).await?,
    ))
}

pub async fn delete_dashboard(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.engine
        .delete_dashboard(&id, &p.actor(), p.info.role)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn wall(State(st): State<AppState>) -> ApiResult<WallProfile> {
    Ok(Json(st.engine.wall().await?))
}

pub async fn put_wall(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(w): Json<WallProfile>,
) -> ApiResult<WallProfile> {
    need(&p, Permission::EditRules)?;
    Ok(Json(st.engine.put_wall(w, &p.actor()).await?))
}

/// A report in the reports folder.
#[derive(Serialize)]
pub struct ReportFile {
    name: String,
    size: u64,
    at: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct Reports {
    jobs: Vec<ReportJob>,
    files: Vec<ReportFile>,
}

/// `GET /api/reports`: reports being made and made since start, and the folder's files.
pub async fn reports(State(st): State<AppState>) -> Json<Reports> {
    Json(Reports {
        jobs: st.engine.report_jobs(),
        files: st
            .engine
            .report_folder()
            .await
            .into_iter()
            .map(|(name, size, at)| ReportFile { name, size, at })
            .collect(),
    })
}

/// `POST /api/reports`: starts one; `GET /api/reports/{id}` tells how far it is.
pub async fn start_report(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(r): Json<ReportRequest>,
) -> Result<(StatusCode, Json<ReportJob>), ApiError> {
    need(&p, Permission::View)?;
    if r.unit.as_deref().is_some_and(|u| !p.in_scope(Some(u)))
        || (r.unit.is_none() && !p.info.units.is_empty())
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a report of your units only (`unit`)",
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(st.engine.start_report(r, &p.actor())),
    ))
}

pub async fn report(State(st): State<AppState>, Path(id): Path<i64>) -> ApiResult<ReportJob> {
    st.engine
        .report_job(id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no report {id}")))
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".pdf") {
        "application/pdf"
    } else if name.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    }
}

fn file(name: String, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type(&name).to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /api/reports/{id}/file`.
pub async fn report_file(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (name, bytes) = st
        .engine
        .report_file(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("report {id} has no file (yet)")))?;
    Ok(file(name, bytes))
}

/// `GET /api/reports/files/{name}`: a file of the reports folder.
pub async fn folder_file(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = st
        .engine
        .report_folder_file(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no report file {name:?}")))?;
    Ok(file(name, bytes))
}
