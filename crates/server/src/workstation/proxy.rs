//! Passing the UI's requests on to the IOC, as the person signed in here.
//!
//! - A read is passed on; its answer is kept (per person, the newest few thousand, a bounded
//!   number of bytes) and given back, marked `x-ioc-cached`, while the IOC cannot be
//!   reached, so the screens keep the last picture through a blip.
//! - An action on an alert, incident or directive goes in order: straight to the IOC when
//!   nothing of this person waits, else behind what waits. When the IOC cannot be reached
//!   it is queued on disk ([`super::outbox`]) and answered `202` with `x-ioc-queued`; the
//!   sender sends it when the link returns, with the same `Idempotency-Key` it was first
//!   tried with, so an action that did reach the IOC is not done twice.
//! - Anything else (rules, configuration, imports, reports) needs the IOC there and then:
//!   `503` with the reason.

use super::outbox::Queued;
use super::{session, Gate, Signed};
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use rand::RngCore;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// The largest request passed on (imports and attachments).
pub const MAX_UPLOAD: usize = 64 * 1024 * 1024;
/// The largest answer kept for reading offline.
const MAX_CACHED_ANSWER: usize = 4 * 1024 * 1024;
/// What the kept answers may hold in all.
const CACHE_BYTES: usize = 96 * 1024 * 1024;

/// The newest answer to each read, per person.
#[derive(Default)]
pub struct Cache {
    answers: HashMap<(String, String), Kept>,
    order: VecDeque<(String, String)>,
    bytes: usize,
}

#[derive(Clone)]
struct Kept {
    status: u16,
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: Bytes,
    at: chrono::DateTime<Utc>,
}

impl Cache {
    fn put(&mut self, key: (String, String), kept: Kept) {
        self.bytes += kept.body.len();
        if let Some(old) = self.answers.insert(key.clone(), kept) {
            self.bytes -= old.body.len();
            self.order.retain(|k| k != &key);
        }
        self.order.push_back(key);
        while self.bytes > CACHE_BYTES {
            let Some(k) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.answers.remove(&k) {
                self.bytes -= old.body.len();
            }
        }
    }

    fn get(&self, key: &(String, String)) -> Option<Kept> {
        self.answers.get(key).cloned()
    }

    pub fn clear(&mut self) {
        *self = Cache::default();
    }
}

/// Why a request to the IOC failed, in a few words (no address: the message says which
/// IOC already).
pub fn why(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "no connection".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_request() || e.is_body() {
        "the connection broke".into()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s = format!("{s}: {inner}");
            src = inner.source();
        }
        s
    }
}

/// The IOC's refusal, passed on as it came.
pub fn relay_error(status: reqwest::StatusCode, text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn unreachable(g: &Gate, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "không kết nối được IOC tỉnh / the provincial IOC cannot be reached ({}): {why}",
            g.upstream()
        ),
    )
}

/// Whether an action may wait in the queue: what an operator does to an alert, an incident
/// (not a file upload) or a directive.
pub fn queueable(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match seg.as_slice() {
        ["api", "alerts", _, _] => true,
        ["api", "incidents", _, action] => *action != "attachments",
        ["api", "incidents", _, "steps", _, _] => true,
        ["api", "directives", _, _] => true,
        _ => false,
    }
}

/// Headers of the UI's request that the IOC should see.
const PASS_IN: [header::HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
];
/// Headers of the IOC's answer that the UI should see.
const PASS_OUT: [header::HeaderName; 5] = [
    header::CONTENT_TYPE,
    // Basemap tiles come gzip-compressed as stored: the bytes pass as they are, so the
    // encoding must too.
    header::CONTENT_ENCODING,
    header::CONTENT_DISPOSITION,
    header::CACHE_CONTROL,
    header::ETAG,
];

/// Any `/api/…` route not handled here: passed on to the IOC.
pub async fn forward(State(g): State<Arc<Gate>>, req: Request) -> Response {
    match forward_inner(&g, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn forward_inner(g: &Arc<Gate>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let signed = g.signed(session::sid(&parts.headers).as_deref());
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && signed.is_some() && !same_origin(&parts.headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a request with the session cookie must come from this site's pages",
        ));
    }
    let path_q = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let body = axum::body::to_bytes(body, MAX_UPLOAD)
        .await
        .map_err(|e| ApiError::bad_request(format!("the request's body: {e}")))?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if queueable(&parts.method, parts.uri.path()) {
        let Some(who) = signed else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "sign in first"));
        };
        return act(g, &who, &path_q, body, content_type).await;
    }
    let url = g
        .upstream
        .join(path_q.trim_start_matches('/'))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut rb = g.http.request(parts.method.clone(), url);
    for h in PASS_IN {
        if let Some(v) = parts.headers.get(&h) {
            rb = rb.header(h, v);
        }
    }
    if let Some(s) = &signed {
        rb = rb.bearer_auth(&s.token);
    }
    let key = (
        signed
            .as_ref()
            .map(|s| s.user.username.clone())
            .unwrap_or_default(),
        path_q.clone(),
    );
    let is_read = parts.method == Method::GET;
    match rb.body(body).send().await {
        Ok(resp) => {
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                if let Some(sid) = session::sid(&parts.headers) {
                    g.sessions.lock().unwrap().remove(&sid);
                }
            }
            pass_back(g, resp, is_read.then_some(key)).await
        }
        Err(e) => {
            let reason = why(&e);
            if is_read {
                if let Some(k) = g.cache.lock().unwrap().get(&key) {
                    return Ok(cached(k));
                }
            }
            Err(unreachable(g, &reason))
        }
    }
}

fn same_origin(h: &HeaderMap) -> bool {
    h.contains_key(header::ORIGIN)
        || h.get("sec-fetch-site")
            .is_some_and(|v| v == "same-origin" || v == "none")
}

/// The IOC's answer, passed on (and kept, for a read).
async fn pass_back(
    g: &Gate,
    resp: reqwest::Response,
    keep: Option<(String, String)>,
) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for h in PASS_OUT {
        if let Some(v) = resp.headers().get(h.as_str()) {
            if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                headers.insert(h, v);
            }
        }
    }
    let small = resp
        .content_length()
        .is_some_and(|n| n as usize <= MAX_CACHED_ANSWER);
    let keep = keep.filter(|_| status == StatusCode::OK && small);
    let body = if let Some(keep) = keep {
        let bytes = resp.bytes().await.map_err(|e| unreachable(g, &why(&e)))?;
        let kept = Kept {
            status: status.as_u16(),
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            content_encoding: headers
                .get(header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: bytes.clone(),
            at: Utc::now(),
        };
        g.cache.lock().unwrap().put(keep, kept);
        Body::from(bytes)
    } else {
        Body::from_stream(resp.bytes_stream())
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    Ok(r)
}

fn cached(k: Kept) -> Response {
    let mut r = Response::new(Body::from(k.body));
    *r.status_mut() = StatusCode::from_u16(k.status).unwrap_or(StatusCode::OK);
    if let Some(ct) = k.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Some(ce) = k
        .content_encoding
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        r.headers_mut().insert(header::CONTENT_ENCODING, ce);
    }
    r.headers_mut().insert(
        "x-ioc-cached",
        HeaderValue::from_str(&k.at.to_rfc3339()).expect("a time"),
    );
    r
}

fn new_key() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// An operator's action: straight to the IOC, or queued behind what waits.
async fn act(
    g: &Arc<Gate>,
    who: &Signed,
    path_q: &str,
    body: Bytes,
    content_type: Option<String>,
) -> Result<Response, ApiError> {
    let q = Queued {
        id: 0,
        user: who.user.username.clone(),
        method: "POST".into(),
        path: path_q.to_string(),
        body: body.to_vec(),
        content_type,
        key: new_key(),
        queued_at: Utc::now().timestamp_millis(),
        state: "waiting".into(),
        error: None,
    };
    let behind = g
        .outbox
        .waiting_for(&q.user)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let offline = !g.link.lock().unwrap().up;
    if !behind && !offline {
        match send(g, &who.token, &q).await {
            Sent::Answer(r) => return Ok(r),
            Sent::Retry(reason) => return queue(g, q, &reason),
        }
    }
    let reason = if behind {
        "earlier actions are still waiting".to_string()
    } else {
        "offline".to_string()
    };
    queue(g, q, &reason)
}

fn queue(g: &Arc<Gate>, q: Queued, reason: &str) -> Result<Response, ApiError> {
    let id = g.outbox.push(&q).map_err(|e| {
        tracing::error!("workstation: could not queue an action: {e}");
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("could not keep the action to send later: {e}"),
        )
    })?;
    tracing::info!(
        "workstation: queued {} {} by {} ({reason})",
        q.method,
        q.path,
        q.user
    );
    g.publish_link();
    g.wake.notify_one();
    let waiting = g.outbox.counts().map(|c| c.0).unwrap_or(1);
    let mut r = (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "queued": id,
            "waiting": waiting,
            "reason": reason,
        })),
    )
        .into_response();
    r.headers_mut()
        .insert("x-ioc-queued", HeaderValue::from(waiting));
    Ok(r)
}

/// What came of sending one action.
enum Sent {
    /// The IOC answered (done, or refused for a reason of its own).
    Answer(Response),
    /// Not answered: send again later.
    Retry(String),
}

async fn send(g: &Gate, token: &str, q: &Queued) -> Sent {
    let Ok(url) = g.upstream.join(q.path.trim_start_matches('/')) else {
        return Sent::Answer(ApiError::bad_request("not a path").into_response());
    };
    let mut rb = g
        .http
        .post(url)
        .bearer_auth(token)
        .header(crate::idempotency::HEADER, &q.key)
        .timeout(Duration::from_secs(10))
        .body(q.body.clone());
    if let Some(ct) = &q.content_type {
        rb = rb.header(header::CONTENT_TYPE, ct);
    }
    match rb.send().await {
        Err(e) => Sent::Retry(why(&e)),
        Ok(resp) => {
            let s = resp.status();
            // Still being answered under this key, or the IOC is struggling: again later.
            if s.is_server_error() || s == reqwest::StatusCode::CONFLICT && is_running(&resp) {
                return Sent::Retry(format!("the IOC answered {s}"));
            }
            match pass_back(g, resp, None).await {
                Ok(r) => Sent::Answer(r),
                Err(e) => Sent::Retry(e.message),
            }
        }
    }
}

fn is_running(resp: &reqwest::Response) -> bool {
    // The idempotency layer marks its 409; an action the books refused as a conflict is a
    // real answer.
    resp.headers().get(crate::idempotency::RUNNING).is_some()
}

/// Sends what waits, oldest first, as each action's author (who must be signed in here).
pub async fn drain(g: Arc<Gate>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let next = g.outbox.first();
        let q = match next {
            Ok(Some(q)) => q,
            Ok(None) => {
                g.publish_link();
                g.wake.notified().await;
                continue;
            }
            Err(e) => {
                tracing::error!("workstation: cannot read the queue: {e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let signed = g.current.borrow().clone();
        let token = match signed {
            Some(s) if s.user.username == q.user && g.link.lock().unwrap().up => s.token,
            _ => {
                // Waits for its author to be signed in and the IOC to be there.
                let _ = tokio::time::timeout(Duration::from_secs(2), g.wake.notified()).await;
                continue;
            }
        };
        match send(&g, &token, &q).await {
            Sent::Answer(r) => {
                backoff = Duration::from_millis(500);
                let status = r.status();
                if status.is_success() {
                    tracing::info!(
                        "workstation: sent {} {} (queued by {})",
                        q.method,
                        q.path,
                        q.user
                    );
                    if let Err(e) = g.outbox.done(q.id) {
                        tracing::error!("workstation: cannot update the queue: {e}");
                    }
                } else if status == StatusCode::UNAUTHORIZED {
                    tracing::warn!(
                        "workstation: the IOC no longer takes {}'s session: {} waits for them to sign in again",
                        q.user,
                        q.path
                    );
                    g.become_current(None);
                } else {
                    let text = axum::body::to_bytes(r.into_body(), 64 * 1024)
                        .await
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    tracing::warn!(
                        "workstation: the IOC refused {} {} (queued by {}): {status} {text}",
                        q.method,
                        q.path,
                        q.user
                    );
                    let _ = g.outbox.refused(q.id, &format!("{status} {text}"));
                }
                g.publish_link();
            }
            Sent::Retry(reason) => {
                let _ = g.outbox.failed(q.id, &reason);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// `GET /api/health`: the IOC's health with this workstation's link to it, or, cut off,
/// the link alone.
pub async fn health(State(g): State<Arc<Gate>>, headers: HeaderMap) -> Response {
    let signed = g.signed(session::sid(&headers).as_deref());
    let url = g.upstream.join("api/health").expect("a path");
    let mut rb = g.http.get(url).timeout(Duration::from_secs(5));
    if let Some(s) = &signed {
        rb = rb.bearer_auth(&s.token);
    }
    let mut v = match rb.send().await {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.unwrap_or_default(),
        Ok(r) => {
            serde_json::json!({ "status": "unknown", "error": format!("the IOC answered {}", r.status()) })
        }
        Err(e) => serde_json::json!({ "status": "offline", "error": why(&e) }),
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("workstation".into(), true.into());
        o.insert(
            "upstream".into(),
            serde_json::to_value(g.link()).expect("serializes"),
        );
        o.remove("nodes");
    }
    Json(v).into_response()
}

/// `GET /api/workstation/outbox`: the signed-in person's actions still here (waiting, or
/// refused by the IOC with its reason).
pub async fn outbox_list(State(g): State<Arc<Gate>>, headers: HeaderMap) -> Response {
    let Some(s) = g.signed(session::sid(&headers).as_deref()) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    match g.outbox.list(Some(&s.user.username)) {
        Ok(l) => Json(l).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `DELETE /api/workstation/outbox/{id}`: the person lets go of an action the IOC refused.
pub async fn outbox_discard(
    State(g): State<Arc<Gate>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let Some(s) = g.signed(session::sid(&headers).as_deref()) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    if !same_origin(&headers) {
        return ApiError::new(StatusCode::FORBIDDEN, "from this site's pages only").into_response();
    }
    match g.outbox.discard(id, &s.user.username) {
        Ok(true) => {
            g.publish_link();
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => ApiError::not_found("no refused action of yours with that id").into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_operators_actions_wait_in_the_queue() {
        let post = Method::POST;
        assert!(queueable(&post, "/api/alerts/12/ack"));
        assert!(queueable(&post, "/api/incidents/3/comment"));
        assert!(queueable(&post, "/api/incidents/3/steps/2/done"));
        assert!(queueable(&post, "/api/directives/9/report"));
        assert!(
            !queueable(&post, "/api/incidents/3/attachments"),
            "uploads need the IOC"
        );
        assert!(!queueable(&post, "/api/rules"));
        assert!(
            !queueable(&post, "/api/directives"),
            "issuing needs the IOC"
        );
        assert!(!queueable(&Method::GET, "/api/alerts/12/ack"));
    }
}
