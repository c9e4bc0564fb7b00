//! The leaders' API: KPI values, series and what is behind them; KPI definitions;
//! dashboards; the wall's profile; statistical reports with their progress.

use crate::auth::Caller;
use crate::extract::{self, Id, JsonBody, Key, Name, Path, Query};
use crate::reply::{Accepted, Checked, Created, Download};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::NoContent;
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ioc_model::{
    Dashboard, KpiDef, KpiDefs, KpiItem, KpiSeries, KpiValue, Period, ReportFile, ReportJob,
    ReportRequest, Reports, RuleCheck, RuleText, ValidateBody, WallProfile,
};
use schemars::JsonSchema;
use serde::Deserialize;

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize, JsonSchema)]
pub struct PeriodQuery {
    /// `hour`, `day`, `week` or `month` (default: the KPI's own).
    period: Option<String>,
    /// A day in the period (default: now).
    date: Option<NaiveDate>,
    /// One unit (default: all the caller may see).
    unit: Option<String>,
}

impl PeriodQuery {
    fn date(&self) -> Result<Option<NaiveDate>, ApiError> {
        self.date.map(|d| extract::date("date", d)).transpose()
    }
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
    c: Caller,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Vec<KpiValue>> {
    let p = period(&q.period)?;
    let date = q.date()?;
    let view = c.view(&st);
    if let Some(u) = q.unit {
        // Every KPI of one unit.
        let mut out = Vec::new();
        for k in view.kpi_values(p, date).await? {
            out.push(view.kpi_value(&k.id, p, date, Some(u.clone())).await?);
        }
        return Ok(Json(out));
    }
    Ok(Json(view.kpi_values(p, date).await?))
}

/// `GET /api/kpis/{id}[?period&date&unit]`.
pub async fn kpi(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<KpiValue> {
    let date = q.date()?;
    Ok(Json(
        c.view(&st)
            .kpi_value(&id, period(&q.period)?, date, q.unit)
            .await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
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
    c: Caller,
    Path(Key { id }): Path<Key>,
    Query(q): Query<SeriesQuery>,
) -> ApiResult<KpiSeries> {
    let to = extract::opt_time("to", q.to)?.unwrap_or_else(|| st.engine.clock().now());
    let from = extract::opt_time("from", q.from)?.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    if to - from > Duration::days(800) {
        return Err(ApiError::bad_request("at most 800 days at once"));
    }
    Ok(Json(
        c.view(&st)
            .kpi_series(&id, from, to, period(&q.period)?, q.unit)
            .await?,
    ))
}

/// `GET /api/kpis/{id}/detail[?period&date&unit]`: the entities, alerts, incidents or
/// directives behind the number.
pub async fn detail(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Vec<KpiItem>> {
    let date = q.date()?;
    Ok(Json(
        c.view(&st)
            .kpi_detail(&id, period(&q.period)?, date, q.unit)
            .await?,
    ))
}

pub async fn defs(State(st): State<AppState>) -> Json<KpiDefs> {
    let (defs, problems) = st.engine.kpi_defs().await;
    Json(KpiDefs { defs, problems })
}

pub async fn validate_def(
    State(st): State<AppState>,
    JsonBody(b): JsonBody<ValidateBody>,
) -> Result<Json<RuleCheck>, ApiError> {
    Ok(Json(
        st.engine.check_kpi(&b.text, b.replacing.as_deref()).await,
    ))
}

pub async fn create_def(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<RuleText>,
) -> Result<Checked<KpiDef>, ApiError> {
    Ok(Checked::new(
        st.engine.put_kpi(&b.text, None, &c.actor()).await?,
        StatusCode::CREATED,
    ))
}

pub async fn replace_def(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
    JsonBody(b): JsonBody<RuleText>,
) -> Result<Checked<KpiDef>, ApiError> {
    Ok(Checked::new(
        st.engine.put_kpi(&b.text, Some(&id), &c.actor()).await?,
        StatusCode::OK,
    ))
}

pub async fn delete_def(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
) -> Result<NoContent, ApiError> {
    st.engine.delete_kpi(&id, &c.actor()).await?;
    Ok(NoContent)
}

/// `GET /api/dashboards`: the built-in ones, the user's, those shared with their role.
pub async fn dashboards(State(st): State<AppState>, c: Caller) -> ApiResult<Vec<Dashboard>> {
    Ok(Json(
        st.engine.dashboards(&c.actor(), c.who.info.role).await?,
    ))
}

pub async fn dashboard(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
) -> ApiResult<Dashboard> {
    st.engine
        .dashboards(&c.actor(), c.who.info.role)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no dashboard {id:?}")))
}

/// `POST /api/dashboards`: a new dashboard (its `id` is given by the server).
pub async fn create_dashboard(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(mut d): JsonBody<Dashboard>,
) -> Result<Created<Dashboard>, ApiError> {
    d.id = String::new();
    let d = st
        .engine
        .put_dashboard(d, &c.actor(), c.who.info.role)
        .await?;
    Ok(Created(d))
}

pub async fn replace_dashboard(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
    JsonBody(mut d): JsonBody<Dashboard>,
) -> ApiResult<Dashboard> {
    d.id = id;
    Ok(Json(
        st.engine
            .put_dashboard(d, &c.actor(), c.who.info.role)
            .await?,
    ))
}

pub async fn delete_dashboard(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
) -> Result<NoContent, ApiError> {
    st.engine
        .delete_dashboard(&id, &c.actor(), c.who.info.role)
        .await?;
    Ok(NoContent)
}

pub async fn wall(State(st): State<AppState>) -> ApiResult<WallProfile> {
    Ok(Json(st.engine.wall().await?))
}

pub async fn put_wall(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(w): JsonBody<WallProfile>,
) -> ApiResult<WallProfile> {
    Ok(Json(st.engine.put_wall(w, &c.actor()).await?))
}

/// `GET /api/reports`: reports being made and made since start, and the folder's files
/// (of the caller's units).
pub async fn reports(State(st): State<AppState>, c: Caller) -> Json<Reports> {
    let view = c.view(&st);
    Json(Reports {
        jobs: view.report_jobs(),
        files: view
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
    c: Caller,
    JsonBody(mut r): JsonBody<ReportRequest>,
) -> Result<Accepted<ReportJob>, ApiError> {
    r.date = extract::date("date", r.date)?;
    let scope = c.who.scope();
    if r.unit.is_none() {
        // A commune's staff report on their commune (or must say which of theirs).
        match scope.units() {
            Some([only]) => r.unit = Some(only.clone()),
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "a report of your units only (`unit`)",
                ))
            }
            None => {}
        }
    }
    if !scope.allows(r.unit.as_deref()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a report of your units only (`unit`)",
        ));
    }
    Ok(Accepted(st.engine.start_report(r, &c.actor())))
}

pub async fn report(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> ApiResult<ReportJob> {
    Ok(Json(c.view(&st).report_job(id)?))
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

fn file(name: String, bytes: Vec<u8>) -> Download {
    Download {
        content_type: content_type(&name).into(),
        name,
        bytes,
    }
}

/// `GET /api/reports/{id}/file`.
pub async fn report_file(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> Result<Download, ApiError> {
    let (name, bytes) = c.view(&st).report_file(id).await?;
    Ok(file(name, bytes))
}

/// `GET /api/reports/files/{name}`: a file of the reports folder.
pub async fn folder_file(
    State(st): State<AppState>,
    c: Caller,
    Path(Name { name }): Path<Name>,
) -> Result<Download, ApiError> {
    let bytes = c.view(&st).report_folder_file(&name).await?;
    Ok(file(name, bytes))
}
