//! The operations API: incidents and their SOP steps, attachments, after-action reports,
//! directives, silences. Every route checks the role here and the unit scope in the engine
//! (where the incident, alert or directive is), so a refusal never depends on the UI.

use crate::auth::need;
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use ioc_engine::auth::{Permission, Principal};
use ioc_engine::operate::directives::DirectiveAction;
use ioc_engine::pipeline::{Op, OpOutcome};
use ioc_model::{
    AttachmentInfo, Directive, DirectiveActionRequest, DirectiveState, Incident,
    IncidentActionRequest, IncidentState, IssueDirectiveRequest, OpenIncidentRequest, Silence,
    SilenceRequest,
};
use serde::Deserialize;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The largest file that may be attached to an incident.
pub const MAX_ATTACHMENT: usize = 20 * 1024 * 1024;

fn incident_of(o: OpOutcome) -> Result<Incident, ApiError> {
    match o {
        OpOutcome::Incident(i) => Ok(*i),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected answer",
        )),
    }
}

fn directive_of(o: OpOutcome) -> Result<Directive, ApiError> {
    match o {
        OpOutcome::Directive(d) => Ok(*d),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected answer",
        )),
    }
}

fn silence_of(o: OpOutcome) -> Result<Silence, ApiError> {
    match o {
        OpOutcome::Silence(s) => Ok(*s),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected answer",
        )),
    }
}

/// `e.g. 2h` or `90m` as a duration.
fn duration(s: &str) -> Result<chrono::Duration, ApiError> {
    humantime::parse_duration(s.trim())
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .ok_or_else(|| ApiError::bad_request(format!("{s:?} is not a duration (e.g. 2h, 90m)")))
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/incidents?state=open` (default: not closed, live), `all`, or a list of states.
pub async fn incidents(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Vec<Incident>> {
    let limit = q.limit.unwrap_or(500).min(10_000);
    let state = q.state.as_deref().unwrap_or("open");
    let mut list = if state == "open" {
        st.engine.hub().incidents()
    } else {
        let states = if state == "all" {
            Vec::new()
        } else {
            state
                .split(',')
                .map(|s| {
                    IncidentState::parse(s.trim()).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "unknown state {s:?} (open, all, resolved, closed)"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        st.engine.incidents(states, limit).await?
    };
    list.retain(|i| p.in_scope(i.unit.as_deref()));
    list.truncate(limit);
    Ok(Json(list))
}

/// `POST /api/incidents`: open an incident from alerts.
pub async fn open_incident(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<OpenIncidentRequest>,
) -> Result<(StatusCode, Json<Incident>), ApiError> {
    need(&p, Permission::WorkAlerts)?;
    let op = Op::OpenIncident {
        alerts: b.alerts,
        sop: b.sop,
        title: b.title,
        comment: b.comment,
    };
    let i = incident_of(st.engine.operate(op, p.as_actor()).await?)?;
    Ok((StatusCode::CREATED, Json(i)))
}

/// `GET /api/incidents/{id}`: with its timeline, directives and files.
pub async fn incident(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Incident> {
    let i = st
        .engine
        .incident(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    if !p.in_scope(i.unit.as_deref()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("incident {id} is outside your units"),
        ));
    }
    Ok(Json(i))
}

/// `GET /api/incidents/{id}/report.pdf` or `report.csv`: the after-action report.
pub async fn report(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let format = match file.as_str() {
        "report.pdf" => "pdf",
        "report.csv" => "csv",
        _ => {
            return Err(ApiError::not_found(format!(
                "no /api/incidents/{id}/{file} (report.pdf, report.csv)"
            )))
        }
    };
    let r = st
        .engine
        .after_action(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    if !p.in_scope(r.incident.unit.as_deref()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("incident {id} is outside your units"),
        ));
    }
    let name = format!("su-co-{id}.{format}");
    let (body, kind) = if format == "pdf" {
        let bytes = tokio::task::spawn_blocking(move || r.pdf())
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        (bytes, "application/pdf")
    } else {
        (r.csv(), "text/csv; charset=utf-8")
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// `POST /api/incidents/{id}/{action}` with `{"comment", "alert"}`: `comment`, `resolve`,
/// `reopen`, `close`, `alerts` (add `alert`).
pub async fn incident_action(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, action)): Path<(i64, String)>,
    body: Option<Json<IncidentActionRequest>>,
) -> ApiResult<Incident> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let op = match action.as_str() {
        "comment" => Op::Comment {
            incident: id,
            comment: b.comment,
        },
        "resolve" => Op::Resolve {
            incident: id,
            comment: b.comment,
        },
        "reopen" => Op::Reopen {
            incident: id,
            comment: b.comment,
        },
        "close" => Op::Close {
            incident: id,
            comment: b.comment,
        },
        "alerts" => Op::AddAlert {
            incident: id,
            alert: b
                .alert
                .ok_or_else(|| ApiError::bad_request("which alert? (`alert`)"))?,
        },
        other => {
            return Err(ApiError::not_found(format!(
                "no incident action {other:?} (comment, resolve, reopen, close, alerts)"
            )))
        }
    };
    need(&p, Permission::WorkAlerts)?;
    if matches!(op, Op::Close { .. }) {
        need(&p, Permission::CloseIncidents)?;
    }
    Ok(Json(incident_of(
        st.engine.operate(op, p.as_actor()).await?,
    )?))
}

/// `POST /api/incidents/{id}/steps/{step}/{action}`: `done` (`answer`, `comment`), `check`
/// (`item`, `done`), `skip` (`comment`).
pub async fn step_action(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, step, action)): Path<(i64, String, String)>,
    body: Option<Json<IncidentActionRequest>>,
) -> ApiResult<Incident> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let op = match action.as_str() {
        "done" => Op::StepDone {
            incident: id,
            step,
            answer: b.answer,
            comment: b.comment,
        },
        "check" => Op::Check {
            incident: id,
            step,
            item: b
                .item
                .ok_or_else(|| ApiError::bad_request("which checklist item? (`item`, from 0)"))?,
            done: b.done.unwrap_or(true),
        },
        "skip" => Op::Skip {
            incident: id,
            step,
            comment: b.comment,
        },
        other => {
            return Err(ApiError::not_found(format!(
                "no step action {other:?} (done, check, skip)"
            )))
        }
    };
    need(&p, Permission::WorkAlerts)?;
    Ok(Json(incident_of(
        st.engine.operate(op, p.as_actor()).await?,
    )?))
}

#[derive(Deserialize)]
pub struct AttachQuery {
    name: String,
    step: Option<String>,
}

/// `POST /api/incidents/{id}/attachments?name=FILE[&step=STEP]` with the file as the body.
pub async fn attach(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<AttachQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<AttachmentInfo>), ApiError> {
    need(&p, Permission::WorkAlerts)?;
    if body.len() > MAX_ATTACHMENT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a file may be at most {} MiB", MAX_ATTACHMENT / 1024 / 1024),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("application/octet-stream")
        .to_string();
    let op = Op::Attach {
        incident: id,
        step: q.step.filter(|s| !s.is_empty()),
        name: q.name,
        content_type,
        data: body.to_vec(),
    };
    match st.engine.operate(op, p.as_actor()).await? {
        OpOutcome::Attachment(a) => Ok((StatusCode::CREATED, Json(*a))),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected answer",
        )),
    }
}

/// `GET /api/attachments/{id}`: the file as it was attached.
pub async fn attachment(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (info, data) = st
        .engine
        .attachment(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no attachment {id}")))?;
    let incident = st.engine.incident(info.incident).await?;
    if !incident.is_some_and(|i| p.in_scope(i.unit.as_deref())) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "outside your units"));
    }
    let safe: String = info
        .name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, info.content_type.clone()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{safe}\""),
            ),
            (
                header::HeaderName::from_static("x-content-sha256"),
                info.sha256.clone(),
            ),
        ],
        data,
    )
        .into_response())
}

/// `GET /api/directives?state=open` (default, live), `all`, or a list of states.
pub async fn directives(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Vec<Directive>> {
    let limit = q.limit.unwrap_or(500).min(10_000);
    let state = q.state.as_deref().unwrap_or("open");
    let mut list = if state == "open" {
        st.engine.hub().directives()
    } else {
        let states = if state == "all" {
            Vec::new()
        } else {
            state
                .split(',')
                .map(|s| {
                    DirectiveState::parse(s.trim()).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "unknown state {s:?} (open, all, issued, acknowledged, \
                             in_progress, done, cancelled)"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        st.engine.directives(states, limit).await?
    };
    list.retain(|d| p.in_scope(Some(&d.unit)));
    list.truncate(limit);
    Ok(Json(list))
}

pub async fn directive(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Directive> {
    let d = st
        .engine
        .directive(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no directive {id}")))?;
    if !p.in_scope(Some(&d.unit)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("directive {id} is outside your units"),
        ));
    }
    Ok(Json(d))
}

/// `POST /api/directives`: issue a directive to a unit.
pub async fn issue(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<IssueDirectiveRequest>,
) -> Result<(StatusCode, Json<Directive>), ApiError> {
    need(&p, Permission::Direct)?;
    let now = st.engine.clock().now();
    let deadline = match (b.deadline, b.within.as_deref()) {
        (Some(d), _) => d,
        (None, Some(w)) => now + duration(w)?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "by when? (`deadline` RFC 3339, or `within`, e.g. 2h)",
            ))
        }
    };
    let op = Op::Issue {
        unit: b.unit,
        title: b.title,
        body: b.body,
        deadline,
        incident: b.incident,
    };
    let d = directive_of(st.engine.operate(op, p.as_actor()).await?)?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// `POST /api/directives/{id}/{action}` with `{"text", "progress"}`: `ack`, `report`,
/// `done` (the unit's people), `cancel` (the IOC).
pub async fn directive_action(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, action)): Path<(i64, String)>,
    body: Option<Json<DirectiveActionRequest>>,
) -> ApiResult<Directive> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let act = match action.as_str() {
        "ack" => DirectiveAction::Ack,
        "report" => DirectiveAction::Report {
            progress: b.progress,
        },
        "done" => DirectiveAction::Done,
        "cancel" => DirectiveAction::Cancel,
        other => {
            return Err(ApiError::not_found(format!(
                "no directive action {other:?} (ack, report, done, cancel)"
            )))
        }
    };
    if act == DirectiveAction::Cancel {
        need(&p, Permission::Direct)?;
    } else {
        need(&p, Permission::AnswerDirectives)?;
    }
    let op = Op::Directive {
        id,
        action: act,
        text: b.text,
    };
    Ok(Json(directive_of(
        st.engine.operate(op, p.as_actor()).await?,
    )?))
}

#[derive(Deserialize)]
pub struct SilencesQuery {
    /// Over ones too, newest first.
    #[serde(default)]
    all: bool,
}

/// `GET /api/silences` (not over; `?all=true`: every one, newest first).
pub async fn silences(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<SilencesQuery>,
) -> ApiResult<Vec<Silence>> {
    let mut list = if q.all {
        st.engine.silences(1000).await?
    } else {
        st.engine.hub().silences()
    };
    if !p.info.units.is_empty() {
        list.retain(|s| p.in_scope(s.matcher.unit.as_deref()));
    }
    Ok(Json(list))
}

/// `POST /api/silences`: a silence from now, or a maintenance window later.
pub async fn silence(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<SilenceRequest>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    need(&p, Permission::EditRules)?;
    let now = st.engine.clock().now();
    let starts_at: DateTime<Utc> = b.starts_at.unwrap_or(now);
    let ends_at = match (b.ends_at, b.duration.as_deref()) {
        (Some(e), _) => e,
        (None, Some(d)) => starts_at + duration(d)?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "until when? (`ends_at` RFC 3339, or `duration`, e.g. 2h)",
            ))
        }
    };
    let op = Op::Silence {
        matcher: b.matcher,
        starts_at,
        ends_at,
        comment: Some(b.comment),
    };
    let s = silence_of(st.engine.operate(op, p.as_actor()).await?)?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// `DELETE /api/silences/{id}`: ends it now.
pub async fn end_silence(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Silence> {
    need(&p, Permission::EditRules)?;
    Ok(Json(silence_of(
        st.engine
            .operate(Op::EndSilence { id }, p.as_actor())
            .await?,
    )?))
}
