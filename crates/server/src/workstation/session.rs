//! Signing in at the IOC through the workstation. The person types the IOC's user name and
//! password here; the gateway signs in at the IOC for a token, keeps that token in memory
//! only, and gives the page an `HttpOnly` cookie of its own that stands for it. No script
//! of the page ever sees the IOC's token, and closing the app forgets it.

use super::{Gate, Signed};
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ioc_model::{AuthProviders, LoginRequest, LoginResponse};
use rand::RngCore;
use std::sync::Arc;

/// The cookie that stands for the IOC's session on this computer, named by the port as
/// the engine's own is (cookies do not tell ports apart: two consoles on one computer must
/// not overwrite each other's).
pub fn cookie_name(headers: &HeaderMap) -> String {
    crate::auth::cookie_name(headers).replace("ioc_session_", "ioc_workstation_")
}

/// The local session id in the request's cookie.
pub fn sid(headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(headers);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn cookie(headers: &HeaderMap, value: Option<&str>) -> HeaderValue {
    let name = cookie_name(headers);
    let v = match value {
        Some(v) => format!("{name}={v}; Path=/; HttpOnly; SameSite=Strict"),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    HeaderValue::from_str(&v).expect("a cookie of hex digits")
}

/// `POST /api/login`: signs in at the IOC.
pub async fn login(
    State(g): State<Arc<Gate>>,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let url = g.upstream.join("api/login").expect("a path");
    let sent = g
        .http
        .post(url)
        .json(&serde_json::json!({
            "username": body.username,
            "password": body.password,
            "token": true,
        }))
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "không kết nối được IOC tỉnh / the provincial IOC cannot be reached ({}): {}",
                    g.upstream(),
                    super::proxy::why(&e)
                ),
            )
        })?;
    let status = sent.status();
    let text = sent.text().await.unwrap_or_default();
    if !status.is_success() {
        return Ok(super::proxy::relay_error(status, text));
    }
    let answer: LoginResponse = serde_json::from_str(&text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the IOC's answer to signing in: {e}"),
        )
    })?;
    let Some(token) = answer.token else {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the IOC gave no session token",
        ));
    };
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let sid: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let signed = Signed {
        token,
        user: answer.user.clone(),
    };
    g.sessions
        .lock()
        .unwrap()
        .insert(sid.clone(), signed.clone());
    tracing::info!("workstation: {} signed in at the IOC", signed.user.username);
    g.become_current(Some(signed));
    let mut r = Json(LoginResponse {
        token: None,
        user: answer.user,
    })
    .into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&headers, Some(&sid)));
    Ok(r)
}

/// `POST /api/logout`: signs out here and at the IOC.
pub async fn logout(State(g): State<Arc<Gate>>, headers: HeaderMap) -> Response {
    let gone = sid(&headers).and_then(|s| g.sessions.lock().unwrap().remove(&s));
    if let Some(s) = gone {
        let url = g.upstream.join("api/logout").expect("a path");
        if let Err(e) = g.http.post(url).bearer_auth(&s.token).send().await {
            tracing::warn!(
                "workstation: signing out at the IOC failed: {}",
                super::proxy::why(&e)
            );
        }
        let was_current = g
            .current
            .borrow()
            .as_ref()
            .is_some_and(|c| c.token == s.token);
        if was_current {
            g.become_current(None);
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&headers, None));
    r
}

/// `GET /api/session/desktop`: the desktop's one-time ticket signs nobody in at the IOC.
pub async fn no_ticket() -> ApiError {
    ApiError::not_found("a workstation signs in at the IOC: open / and sign in")
}

/// `GET /api/auth/providers`: a workstation signs in with the IOC's accounts (the province's
/// single sign-on goes through the IOC's own pages, not through a workstation yet).
pub async fn providers(State(g): State<Arc<Gate>>) -> Json<AuthProviders> {
    Json(AuthProviders {
        local: true,
        sign_in_required: true,
        sso: None,
        upstream: Some(g.upstream().to_string()),
        desktop: g.desktop.is_some(),
    })
}

/// `GET /api/me`: who is signed in at the IOC through this workstation (a workstation is
/// never open without signing in, whatever the IOC allows on its own loopback).
pub async fn me(State(g): State<Arc<Gate>>, headers: HeaderMap) -> Response {
    match g.signed(sid(&headers).as_deref()) {
        Some(s) => Json(ioc_model::Me {
            user: s.user,
            sign_in_required: true,
        })
        .into_response(),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "sign in at the IOC").into_response(),
    }
}

/// `POST /api/desktop/upstream`: the sign-in screen chooses another server.
pub async fn choose_upstream(
    State(g): State<Arc<Gate>>,
    headers: HeaderMap,
    Json(choice): Json<crate::UpstreamChoice>,
) -> Result<Json<serde_json::Value>, ApiError> {
    crate::choose_upstream(g.desktop.as_ref(), &headers, choice).await
}

/// `POST /api/desktop/wall`: the wall's windows, for the person signed in here.
pub async fn open_wall(
    State(g): State<Arc<Gate>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    if g.signed(sid(&headers).as_deref()).is_none() {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "sign in first"));
    }
    let d = g
        .desktop
        .as_ref()
        .ok_or_else(|| ApiError::not_found("not the desktop app: open /wall in a window"))?;
    let n = d
        .open_wall()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(serde_json::json!({ "windows": n })))
}

impl Gate {
    /// The feed and the queue now work for `who` (or nobody): a picture of someone else's
    /// units is dropped and every window starts over.
    pub(crate) fn become_current(&self, who: Option<Signed>) {
        let same_scope = {
            let cur = self.current.borrow();
            match (cur.as_ref(), who.as_ref()) {
                (Some(a), Some(b)) => a.user.units == b.user.units && a.user.role == b.user.role,
                _ => false,
            }
        };
        self.current.send_replace(who);
        if !same_scope {
            *self.picture.lock().unwrap() = ioc_model::Picture::default();
            self.cache.lock().unwrap().clear();
            self.reset.send_modify(|n| *n += 1);
        }
        self.wake.notify_one();
    }
}
