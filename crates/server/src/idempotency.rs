//! `Idempotency-Key` on the API's actions: a request sent again with the same key by the
//! same caller gets the first answer back instead of being done twice. A workstation sends
//! every queued action with one, so an action whose answer was lost in a network blip is
//! safely sent again when the link returns ("nothing lost, nothing twice").
//!
//! Answers are kept in the engine's database (`replies`), so they outlive a restart of the
//! server; a request still running under the same key is answered `409` (send again
//! later), never run a second time alongside. Answers of `5xx` are not kept: the action
//! did not happen and may be tried again.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ioc_engine::store::db::{params, Db, OptionalExtension};
use std::collections::HashSet;
use std::sync::Mutex;

/// The header a client sends.
pub const HEADER: &str = "idempotency-key";
/// Marks the `409` of a key still being answered (send again later), unlike a conflict
/// the action itself met.
pub const RUNNING: &str = "x-ioc-idempotency-running";
/// How long answers are kept: longer than any outage a workstation queues through.
const KEEP_MS: i64 = 14 * 24 * 3600 * 1000;
/// The largest answer kept (actions answer with one alert, incident or directive).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A kept answer: status, body, content type.
type Kept = (u16, Vec<u8>, Option<String>);

/// The kept answers and the keys being answered now.
pub struct Replies {
    conn: Mutex<Option<Db>>,
    at: ioc_engine::store::Location,
    running: Mutex<HashSet<(String, String)>>,
}

impl Replies {
    pub fn new(db: &ioc_engine::store::Location) -> Replies {
        Replies {
            conn: Mutex::new(None),
            at: db.clone(),
            running: Mutex::new(HashSet::new()),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Db) -> ioc_engine::store::db::Result<T>,
    ) -> Result<T, String> {
        let mut g = self.conn.lock().unwrap();
        if g.is_none() {
            *g = Some(ioc_engine::store::connect_path(&self.at).map_err(|e| e.to_string())?);
        }
        f(g.as_ref().expect("just opened")).map_err(|e| e.to_string())
    }

    fn get(&self, who: &str, key: &str) -> Result<Option<Kept>, String> {
        self.with(|c| {
            c.query_row(
                "SELECT status, body, content_type FROM replies WHERE principal = ?1 AND key = ?2",
                params![who, key],
                |r| Ok((r.get::<_, i64>(0)? as u16, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
    }

    fn put(&self, who: &str, key: &str, status: u16, body: &[u8], ct: Option<&str>, now: i64) {
        let r = self.with(|c| {
            c.execute(
                "INSERT INTO replies (principal, key, status, body, content_type, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (principal, key) DO UPDATE SET status = excluded.status, \
                   body = excluded.body, content_type = excluded.content_type, at = excluded.at",
                params![who, key, status as i64, body, ct, now],
            )?;
            c.execute("DELETE FROM replies WHERE at < ?1", params![now - KEEP_MS])
        });
        if let Err(e) = r {
            tracing::error!("could not keep the answer to an idempotent request: {e}");
        }
    }
}

/// Takes the key off the running set however the request ends.
struct Running<'a>(&'a Replies, (String, String));

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.lock().unwrap().remove(&self.1);
    }
}

/// The middleware (inside the access check, so the caller is known).
pub async fn layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 128 && k.is_ascii() => k.to_string(),
        _ => {
            return ApiError::bad_request("Idempotency-Key: 1 to 128 visible ASCII characters")
                .into_response()
        }
    };
    let Some(who) = req
        .extensions()
        .get::<Caller>()
        .map(|c| c.who.info.username.clone())
    else {
        return next.run(req).await; // a public route: nothing to tie the key to
    };
    let replies = st.replies.clone();
    match replies.get(&who, &key) {
        Ok(Some((status, body, ct))) => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let Some(ct) = ct.and_then(|c| HeaderValue::from_str(&c).ok()) {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return r;
        }
        Ok(None) => {}
        Err(e) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e).into_response();
        }
    }
    let id = (who.clone(), key.clone());
    if !replies.running.lock().unwrap().insert(id.clone()) {
        let mut r = ApiError::new(
            StatusCode::CONFLICT,
            "a request with this Idempotency-Key is still being answered: send it again later",
        )
        .into_response();
        r.headers_mut()
            .insert(RUNNING, HeaderValue::from_static("true"));
        return r;
    }
    let _running = Running(&replies, id);
    let resp = next.run(req).await;
    let (parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    };
    if !parts.status.is_server_error() {
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let now = st.engine.clock().now().timestamp_millis();
        replies.put(&who, &key, parts.status.as_u16(), &bytes, ct, now);
    }
    Response::from_parts(parts, Body::from(bytes))
}
