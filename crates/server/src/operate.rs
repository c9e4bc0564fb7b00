//! The operations API: incidents and their SOP steps, attachments, after-action reports,
//! directives, silences. Every route checks the role here and the unit scope in the engine
//! (where the incident, alert or directive is), so a refusal never depends on the UI.

use crate::auth::Caller;
use crate::extract::{self, Id, IdAction, JsonBody, MaybeJson, Path, Query};
use crate::reply::{Created, Download};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use ioc_engine::auth::Permission;
use ioc_engine::operate::directives::DirectiveAction;
use ioc_engine::pipeline::{Op, OpOutcome};
use ioc_model::{
    AttachmentInfo, Directive, DirectiveActionRequest, DirectiveState, Incident,
    IncidentActionRequest, IncidentState, IssueDirectiveRequest, OpenIncidentRequest, Silence,
    SilenceRequest,
};
use schemars::JsonSchema;
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

/// `e.g. 2h` or `90m` as a duration, of at most a year.
fn duration(s: &str) -> Result<chrono::Duration, ApiError> {
    let d = humantime::parse_duration(s.trim())
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .ok_or_else(|| ApiError::bad_request(format!("{s:?} is not a duration (e.g. 2h, 90m)")))?;
    if d > chrono::Duration::days(366) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{s:?}: at most a year"),
        ));
    }
    Ok(d)
}

#[derive(Deserialize, JsonSchema)]
pub struct ListQuery {
    /// `open` (default; live), `all`, or states separated by commas.
    state: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/incidents?state=open` (default, live: not closed, or closed with something
/// flagged for a person), `all`, or a list of states.
pub async fn incidents(
    State(st): State<AppState>,
    c: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Vec<Incident>> {
    let limit = q.limit.unwrap_or(500).min(10_000);
    let state = q.state.as_deref().unwrap_or("open");
    let view = c.view(&st);
    let mut list = if state == "open" {
        view.open_incidents()
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
        view.incidents(states, limit).await?
    };
    list.truncate(limit);
    Ok(Json(list))
}

/// `POST /api/incidents`: open an incident from alerts.
pub async fn open_incident(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<OpenIncidentRequest>,
) -> Result<Created<Incident>, ApiError> {
    let op = Op::OpenIncident {
        alerts: b.alerts,
        sop: b.sop,
        title: b.title,
        comment: b.comment,
    };
    let i = incident_of(st.engine.operate(op, c.who.as_actor()).await?)?;
    Ok(Created(i))
}

/// `GET /api/incidents/{id}`: with its timeline, directives and files.
pub async fn incident(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> ApiResult<Incident> {
    Ok(Json(c.view(&st).incident(id).await?))
}

/// `GET /api/incidents/{id}/report.pdf` or `report.csv`: the after-action report.
pub async fn report(
    State(st): State<AppState>,
    c: Caller,
    Path(IdAction { id, action: file }): Path<IdAction>,
) -> Result<Download, ApiError> {
    let format = match file.as_str() {
        "report.pdf" => "pdf",
        "report.csv" => "csv",
        _ => {
            return Err(ApiError::not_found(format!(
                "no /api/incidents/{id}/{file} (report.pdf, report.csv)"
            )))
        }
    };
    let r = c.view(&st).after_action(id).await?;
    let name = format!("su-co-{id}.{format}");
    let (bytes, kind) = if format == "pdf" {
        let bytes = tokio::task::spawn_blocking(move || r.pdf())
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        (bytes, "application/pdf")
    } else {
        (r.csv(), "text/csv; charset=utf-8")
    };
    Ok(Download {
        name,
        content_type: kind.into(),
        bytes,
    })
}

/// `POST /api/incidents/{id}/{action}` with `{"comment", "alert"}`: `comment`, `resolve`,
/// `reopen`, `close`, `alerts` (add `alert`), `review` (clear what the federation's merge
/// flagged).
pub async fn incident_action(
    State(st): State<AppState>,
    c: Caller,
    Path(IdAction { id, action }): Path<IdAction>,
    MaybeJson(body): MaybeJson<IncidentActionRequest>,
) -> ApiResult<Incident> {
    let b = body.unwrap_or_default();
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
        "review" => Op::Review {
            incident: id,
            comment: b.comment,
        },
        other => {
            return Err(ApiError::not_found(format!(
                "no incident action {other:?} (comment, resolve, reopen, close, alerts, review)"
            )))
        }
    };
    if matches!(op, Op::Close { .. } | Op::Review { .. }) {
        c.need(Permission::CloseIncidents)?;
    }
    Ok(Json(incident_of(
        st.engine.operate(op, c.who.as_actor()).await?,
    )?))
}

/// `POST /api/incidents/{id}/steps/{step}/{action}`: `done` (`answer`, `comment`), `check`
/// (`item`, `done`), `skip` (`comment`).
/// `{id}/steps/{step}/{action}` in a route.
#[derive(Deserialize, JsonSchema)]
pub struct StepPath {
    id: i64,
    step: String,
    action: String,
}

pub async fn step_action(
    State(st): State<AppState>,
    c: Caller,
    Path(StepPath { id, step, action }): Path<StepPath>,
    MaybeJson(body): MaybeJson<IncidentActionRequest>,
) -> ApiResult<Incident> {
    let b = body.unwrap_or_default();
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
    Ok(Json(incident_of(
        st.engine.operate(op, c.who.as_actor()).await?,
    )?))
}

#[derive(Deserialize, JsonSchema)]
pub struct AttachQuery {
    /// The file's name (only its last part is kept, made safe).
    name: String,
    step: Option<String>,
}

/// `POST /api/incidents/{id}/attachments?name=FILE[&step=STEP]` with the file as the body.
pub async fn attach(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
    Query(q): Query<AttachQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Created<AttachmentInfo>, ApiError> {
    // Scope first: nothing is read from someone who may not touch the incident.
    c.view(&st).incident(id).await?;
    let body = extract::body_bytes(body, MAX_ATTACHMENT).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .unwrap_or("application/octet-stream")
        .to_string();
    let op = Op::Attach {
        incident: id,
        step: q.step.filter(|s| !s.is_empty()),
        name: crate::reply::safe_file_name(&q.name),
        content_type,
        data: body.to_vec(),
    };
    match st.engine.operate(op, c.who.as_actor()).await? {
        OpOutcome::Attachment(a) => Ok(Created(*a)),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected answer",
        )),
    }
}

/// What an attached file really is, by its first bytes: the few kinds a browser may show
/// on the console's own origin. Anything else (HTML, SVG, scripts, whatever the uploader
/// claimed) is only ever a download.
pub fn showable(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() > 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else if data.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// An attachment as served.
pub struct AttachmentFile {
    info: AttachmentInfo,
    data: Vec<u8>,
}

impl IntoResponse for AttachmentFile {
    fn into_response(self) -> Response {
        let shown = showable(&self.data);
        let mut r = self.data.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(shown.unwrap_or("application/octet-stream")),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            crate::reply::content_disposition(
                if shown.is_some() {
                    "inline"
                } else {
                    "attachment"
                },
                &self.info.name,
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&self.info.sha256) {
            h.insert(header::HeaderName::from_static("x-content-sha256"), v);
        }
        // Even a shown picture or PDF may run nothing and load nothing.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox"),
        );
        r
    }
}

impl aide::OperationOutput for AttachmentFile {
    type Inner = ();
    fn inferred_responses(
        ctx: &mut aide::generate::GenContext,
        op: &mut aide::openapi::Operation,
    ) -> Vec<(Option<u16>, aide::openapi::Response)> {
        Download::inferred_responses(ctx, op)
    }
}

/// `GET /api/attachments/{id}`: pictures and PDFs (by their content) inline, everything
/// else as a download.
pub async fn attachment(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> Result<AttachmentFile, ApiError> {
    let (info, data) = c.view(&st).attachment(id).await?;
    Ok(AttachmentFile { info, data })
}

/// `GET /api/directives?state=open` (default, live), `all`, or a list of states.
pub async fn directives(
    State(st): State<AppState>,
    c: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Vec<Directive>> {
    let limit = q.limit.unwrap_or(500).min(10_000);
    let state = q.state.as_deref().unwrap_or("open");
    let view = c.view(&st);
    let mut list = if state == "open" {
        view.open_directives()
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
        view.directives(states, limit).await?
    };
    list.truncate(limit);
    Ok(Json(list))
}

pub async fn directive(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> ApiResult<Directive> {
    Ok(Json(c.view(&st).directive(id).await?))
}

/// `POST /api/directives`: issue a directive to a unit.
pub async fn issue(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<IssueDirectiveRequest>,
) -> Result<Created<Directive>, ApiError> {
    let now = st.engine.clock().now();
    let deadline = match (b.deadline, b.within.as_deref()) {
        (Some(d), _) => extract::time("deadline", d)?,
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
    let d = directive_of(st.engine.operate(op, c.who.as_actor()).await?)?;
    Ok(Created(d))
}

/// `POST /api/directives/{id}/{action}` with `{"text", "progress"}`: `ack`, `report`,
/// `done` (the unit's people), `cancel` (the IOC).
pub async fn directive_action(
    State(st): State<AppState>,
    c: Caller,
    Path(IdAction { id, action }): Path<IdAction>,
    MaybeJson(body): MaybeJson<DirectiveActionRequest>,
) -> ApiResult<Directive> {
    let b = body.unwrap_or_default();
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
        c.need(Permission::Direct)?;
    } else {
        c.need(Permission::AnswerDirectives)?;
    }
    let op = Op::Directive {
        id,
        action: act,
        text: b.text,
    };
    Ok(Json(directive_of(
        st.engine.operate(op, c.who.as_actor()).await?,
    )?))
}

#[derive(Deserialize, JsonSchema)]
pub struct SilencesQuery {
    /// Over ones too, newest first.
    #[serde(default)]
    all: bool,
}

/// `GET /api/silences` (not over; `?all=true`: every one, newest first).
pub async fn silences(
    State(st): State<AppState>,
    c: Caller,
    Query(q): Query<SilencesQuery>,
) -> ApiResult<Vec<Silence>> {
    let view = c.view(&st);
    Ok(Json(if q.all {
        view.silences(1000).await?
    } else {
        view.current_silences()
    }))
}

/// `POST /api/silences`: a silence from now, or a maintenance window later.
pub async fn silence(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<SilenceRequest>,
) -> Result<Created<Silence>, ApiError> {
    let now = st.engine.clock().now();
    let starts_at: DateTime<Utc> = extract::opt_time("starts_at", b.starts_at)?.unwrap_or(now);
    let ends_at = match (b.ends_at, b.duration.as_deref()) {
        (Some(e), _) => extract::time("ends_at", e)?,
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
    let s = silence_of(st.engine.operate(op, c.who.as_actor()).await?)?;
    Ok(Created(s))
}

/// `DELETE /api/silences/{id}`: ends it now.
pub async fn end_silence(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> ApiResult<Silence> {
    Ok(Json(silence_of(
        st.engine
            .operate(Op::EndSilence { id }, c.who.as_actor())
            .await?,
    )?))
}
