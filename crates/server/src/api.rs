//! JSON handlers. Reads of live state come from the hub (memory); history comes from the
//! store on a blocking thread; changes go through the engine's pipeline. Whatever belongs
//! to a unit is read through the caller's [`ioc_engine::View`].

use crate::auth::Caller;
use crate::extract::{self, Id, IdAction, Key, MaybeJson, Name, Path, Query};
use crate::reply::Download;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::NoContent;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use ioc_engine::alerts::AlertAction;
use ioc_engine::auth::Permission;
use ioc_model::{
    Alert, AlertActionRequest, AlertState, DeadLetter, Entity, Health, SeriesResponse,
    SourceStatus, Unit,
};
use schemars::JsonSchema;
use serde::Deserialize;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The largest document `POST /api/import` decodes whole (CAP, NGSI-LD, GeoJSON, JSON): a
/// parser holds it, and what it became, in memory at once.
pub const MAX_IMPORT_DOCUMENT: u64 = 64 * 1024 * 1024;
/// The largest CSV `POST /api/import` takes. It is streamed in bounded memory; the limit only
/// keeps one upload from filling the disk.
pub const MAX_IMPORT_CSV: u64 = 8 * 1024 * 1024 * 1024;

pub async fn health(State(st): State<AppState>) -> Json<Health> {
    Json(st.engine.health())
}

/// Up, ready, store reachable, for load balancers and systemd (`503` when not ready).
pub async fn ready(State(st): State<AppState>) -> crate::reply::Ready {
    crate::reply::Ready(st.engine.readiness().await)
}

pub async fn entities(State(st): State<AppState>, c: Caller) -> Json<Vec<Entity>> {
    Json(c.view(&st).entities())
}

pub async fn entity(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
) -> ApiResult<Entity> {
    Ok(Json(c.view(&st).entity(&id)?))
}

#[derive(Deserialize, JsonSchema)]
pub struct SeriesQuery {
    metric: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// `?metric=pm25[&from=RFC3339][&to=RFC3339]`; default: the last 6 hours.
pub async fn series(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
    Query(q): Query<SeriesQuery>,
) -> ApiResult<SeriesResponse> {
    let to = extract::opt_time("to", q.to)?.unwrap_or_else(|| st.engine.clock().now());
    let from = extract::opt_time("from", q.from)?.unwrap_or(to - Duration::hours(6));
    if from >= to {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    if to - from > Duration::days(400) {
        return Err(ApiError::bad_request("at most 400 days at once"));
    }
    c.view(&st)
        .series(id.clone(), q.metric.clone(), from, to)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no series {}/{}", id, q.metric)))
}

#[derive(Deserialize, JsonSchema)]
pub struct AlertsQuery {
    /// `open` (default; live), `all`, or states separated by commas.
    state: Option<String>,
    limit: Option<usize>,
}

/// `?state=open` (default; live, from the hub), `all`, or a comma-separated list of states.
pub async fn alerts(
    State(st): State<AppState>,
    c: Caller,
    Query(q): Query<AlertsQuery>,
) -> ApiResult<Vec<Alert>> {
    let limit = q.limit.unwrap_or(500).min(10_000);
    let state = q.state.as_deref().unwrap_or("open");
    let view = c.view(&st);
    if state == "open" {
        let mut open = view.open_alerts();
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
    Ok(Json(view.alerts(states, limit).await?))
}

pub async fn alert(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> ApiResult<Alert> {
    Ok(Json(c.view(&st).alert(id).await?))
}

/// The alert as CAP 1.2 XML, to save (XML shown by a browser can carry script).
pub async fn alert_cap(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> Result<Download, ApiError> {
    let xml = c.view(&st).alert_cap(id).await?;
    Ok(Download {
        name: format!("alert-{id}.cap.xml"),
        content_type: "application/cap+xml; charset=utf-8".into(),
        bytes: xml.into_bytes(),
    })
}

/// `POST /api/alerts/{id}/{action}` with an optional body `{"comment", "to", "until"}`:
/// `ack`, `assign` (`to`), `start`, `comment` (`comment`), `resolve`, `close`, `shelve`
/// (`until`, RFC 3339), `unshelve`.
pub async fn alert_action(
    State(st): State<AppState>,
    c: Caller,
    Path(IdAction { id, action }): Path<IdAction>,
    MaybeJson(body): MaybeJson<AlertActionRequest>,
) -> ApiResult<Alert> {
    let b = body.unwrap_or_default();
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
            until: extract::time(
                "until",
                b.until
                    .ok_or_else(|| ApiError::bad_request("shelve until when? (`until`)"))?,
            )?,
        },
        "unshelve" => AlertAction::Unshelve,
        other => {
            return Err(ApiError::not_found(format!(
                "no alert action {other:?} (ack, assign, start, comment, resolve, close, \
                 shelve, unshelve)"
            )))
        }
    };
    if act == AlertAction::Close {
        c.need(Permission::Close)?;
    }
    let alert = st
        .engine
        .alert_act(id, act, &c.actor(), b.comment, c.units())
        .await?;
    Ok(Json(alert))
}

#[derive(Deserialize, JsonSchema)]
pub struct AuditQuery {
    /// Only entries about this, e.g. `alert:42`, `user:lan`.
    target: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/audit?target=alert:42&limit=100`.
pub async fn audit(
    State(st): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Vec<ioc_engine::audit::AuditRow>> {
    Ok(Json(
        st.engine
            .audit(q.target, q.limit.unwrap_or(200).min(5000))
            .await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
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
    Query(q): Query<ImportQuery>,
    body: axum::body::Body,
) -> ApiResult<ioc_model::ImportReport> {
    let mapping = match q.mapping.as_deref() {
        Some(t) => Some(
            toml::from_str::<toml::Value>(t)
                .map_err(|e| ApiError::bad_request(format!("mapping: {}", e.to_string().trim())))?,
        ),
        None => None,
    };
    let source = q.source.as_deref().unwrap_or("import");
    if source.chars().count() > 100 || q.name.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`source` of at most 100 characters, `name` of at most 500",
        ));
    }
    // The body is read as it arrives, on a blocking thread: a CSV row by row (bounded
    // memory whatever its size), any other format whole up to its limit.
    let mut seen: u64 = 0;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len() as u64;
        if seen > MAX_IMPORT_CSV {
            return Err(std::io::Error::other("length limit exceeded"));
        }
        Ok(chunk)
    });
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let report = st
        .engine
        .import_reader(
            source,
            q.format.as_deref().unwrap_or("auto"),
            mapping,
            q.name.clone(),
            reader,
            MAX_IMPORT_DOCUMENT,
        )
        .await?;
    Ok(Json(report))
}

/// `GET /api/sources`: secrets appear as set or unset, never as values.
pub async fn sources(State(st): State<AppState>) -> Json<Vec<SourceStatus>> {
    Json(st.engine.sources())
}

/// Body: the keys of a `[[source]]` table, as TOML. Adds the source, or replaces the one of
/// the admin screen with that name. A secret left out keeps its value; `""` removes it.
pub async fn put_source(
    State(st): State<AppState>,
    c: Caller,
    body: String,
) -> ApiResult<SourceStatus> {
    Ok(Json(st.engine.put_source(&body, &c.actor()).await?))
}

pub async fn delete_source(
    State(st): State<AppState>,
    c: Caller,
    Path(Name { name }): Path<Name>,
) -> Result<NoContent, ApiError> {
    st.engine.delete_source(&name, &c.actor()).await?;
    Ok(NoContent)
}

#[derive(Deserialize, JsonSchema)]
pub struct DeadLettersQuery {
    source: Option<String>,
    q: Option<String>,
    limit: Option<usize>,
    /// `json` (default) or `csv` (a download).
    format: Option<String>,
}

/// What `GET /api/deadletters` answers: JSON, or a CSV file.
pub enum DeadLetters {
    Json(Vec<DeadLetter>),
    Csv(Download),
}

impl axum::response::IntoResponse for DeadLetters {
    fn into_response(self) -> axum::response::Response {
        match self {
            DeadLetters::Json(v) => Json(v).into_response(),
            DeadLetters::Csv(d) => d.into_response(),
        }
    }
}

impl aide::OperationOutput for DeadLetters {
    type Inner = Vec<DeadLetter>;
    fn inferred_responses(
        ctx: &mut aide::generate::GenContext,
        op: &mut aide::openapi::Operation,
    ) -> Vec<(Option<u16>, aide::openapi::Response)> {
        let mut v = Json::<Vec<DeadLetter>>::inferred_responses(ctx, op);
        for (_, r) in v.iter_mut() {
            r.content
                .insert("text/csv".into(), aide::openapi::MediaType::default());
        }
        v
    }
}

/// `?source=NAME&q=TEXT&limit=N&format=json|csv`, newest first.
pub async fn dead_letters(
    State(st): State<AppState>,
    Query(q): Query<DeadLettersQuery>,
) -> Result<DeadLetters, ApiError> {
    let limit = q.limit.unwrap_or(200).min(100_000);
    let text = q.q.filter(|t| !t.trim().is_empty());
    let rows: Vec<DeadLetter> = st.engine.dead_letters(q.source, text, limit).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(DeadLetters::Json(rows)),
        Some("csv") => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record([
                "id",
                "source",
                "received_at",
                "origin",
                "reason",
                "count",
                "samples",
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
                    d.count.to_string(),
                    d.samples.join("\n"),
                    d.size.to_string(),
                    d.payload.clone(),
                ]);
            }
            Ok(DeadLetters::Csv(Download {
                name: "dead-letters.csv".into(),
                content_type: "text/csv; charset=utf-8".into(),
                bytes: w.into_inner().unwrap_or_default(),
            }))
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
