//! Who is calling, and whether they may: one middleware for every route, driven by the
//! route's policy in [`crate::routes`].
//!
//! Credentials, in this order:
//! - `Authorization: Bearer …`: the engine's admin key (from this machine's loopback only,
//!   not through a proxy that says so with `X-Forwarded-For` as a standby node does:
//!   `ioc import` into a running engine), or a session token (API clients that signed in
//!   with `"token": true`).
//! - The session cookie (the UI in a browser or the desktop window). It is `HttpOnly` (a
//!   script, even an injected one, cannot read it) and `SameSite=Strict`; a request that
//!   changes something with it must also come from this origin (`Origin`, or
//!   `Sec-Fetch-Site: same-origin`), and the WebSocket upgrade must carry our `Origin`.
//! - Nothing: the open console while no account exists (a fresh install, the demo).
//!
//! Then the route's role, and for routes of the whole province, the unit scope. Handlers
//! get a [`Caller`], whose [`Caller::view`] is the only way they read scoped things.

use crate::error::ApiError;
use crate::extract::{JsonBody, Query};
use crate::routes::{Access, Route, Scoping};
use crate::AppState;
use aide::OperationInput;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use ioc_engine::auth::{AuthError, NewUser, Permission, Principal};
use ioc_engine::View;
use ioc_model::{AuthProviders, LoginRequest, LoginResponse, Me, Role, SsoInfo, UserInfo};
use schemars::JsonSchema;
use serde::Deserialize;
use std::net::SocketAddr;

/// Whoever a request is from, as the access check let it through.
#[derive(Clone, Debug)]
pub struct Caller {
    pub who: Principal,
}

impl Caller {
    /// The engine as this caller may read it.
    pub fn view<'a>(&self, st: &'a AppState) -> View<'a> {
        st.engine.view(self.who.scope())
    }

    /// `403` unless the role allows it (for what a route allows only some of its callers:
    /// closing an alert, cancelling a directive).
    pub fn need(&self, perm: Permission) -> Result<(), ApiError> {
        need(&self.who, perm)
    }

    pub fn actor(&self) -> String {
        self.who.actor()
    }

    /// The units of the caller, `None` for the whole province.
    pub fn units(&self) -> Option<Vec<String>> {
        (!self.who.info.units.is_empty()).then(|| self.who.info.units.clone())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this route has no access policy",
            )
        })
    }
}

impl OperationInput for Caller {}

/// `403` unless the role allows it.
pub fn need(p: &Principal, perm: Permission) -> Result<(), ApiError> {
    if p.may(perm) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("a {} may not do this", p.info.role.as_str()),
        ))
    }
}

/// The session cookie's name: one per port, since cookies do not tell ports apart and the
/// desktop app and `ioc serve` may both run on 127.0.0.1.
pub fn cookie_name(headers: &HeaderMap) -> String {
    let port = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(80);
    format!("ioc_session_{port}")
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(headers);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a session (or, with `None`, its removal).
fn set_cookie(st: &AppState, headers: &HeaderMap, token: Option<&str>) -> HeaderValue {
    let name = cookie_name(headers);
    let secure = if st.engine.config().server.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let v = match token {
        Some(t) => format!(
            "{name}={t}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            u64::from(st.engine.config().auth.session_hours.max(1)) * 3600
        ),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&v).expect("a cookie of hex digits")
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

fn peer(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

/// How a request proved who it is.
enum Proof {
    Cookie,
    Other,
}

/// Whether a bearer token is a JWT (three dot-separated parts), not one of our sessions.
fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// The person behind a request's credentials.
async fn authenticate(
    st: &AppState,
    headers: &HeaderMap,
    from: Option<SocketAddr>,
) -> Result<(Principal, Proof), ApiError> {
    let auth = st.engine.auth();
    let now = st.engine.clock().now().timestamp_millis();
    if let Some(token) = bearer(headers) {
        if let Some(p) = auth.admin(&token) {
            // A request a proxy forwarded (a standby node) is not from here, even when the
            // proxy is.
            let forwarded = headers.contains_key("x-forwarded-for");
            return if from.is_some_and(|a| a.ip().is_loopback()) && !forwarded {
                Ok((p, Proof::Other))
            } else {
                Err(unauthorized(
                    "the admin key is taken from this machine only",
                ))
            };
        }
        if let (Some(oidc), true) = (auth.oidc(), is_jwt(&token)) {
            return oidc
                .bearer(&token)
                .await
                .map(|p| (p, Proof::Other))
                .map_err(|e| unauthorized(e.to_string()));
        }
        return auth
            .session(&token, now)
            .map(|p| (p, Proof::Other))
            .map_err(|e| unauthorized(e.to_string()));
    }
    if let Some(token) = cookie(headers) {
        match auth.session(&token, now) {
            Ok(p) => return Ok((p, Proof::Cookie)),
            Err(e) if auth.sign_in_required() => return Err(unauthorized(e.to_string())),
            // A stale cookie of another run while the console is open: ignore it.
            Err(_) => {}
        }
    }
    if !auth.sign_in_required() {
        return Ok((Principal::open_console(), Proof::Other));
    }
    Err(unauthorized("sign in first"))
}

/// A request sent with the cookie must come from this origin to change anything (or to
/// open the feed): the browser attaches cookies to requests other sites make.
fn same_origin(req: &Request) -> bool {
    let h = req.headers();
    // The host guard has already refused any foreign Origin.
    h.contains_key(header::ORIGIN)
        || h.get("sec-fetch-site")
            .is_some_and(|v| v == "same-origin" || v == "none")
}

/// The access check of every route: credentials, role, province-only routes. Puts the
/// [`Caller`] in the request.
pub async fn require(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string());
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let Some(route) = path.and_then(|p| st.policy(&method, &p)) else {
        return ApiError::new(StatusCode::FORBIDDEN, "this route has no access policy")
            .into_response();
    };
    match check(&st, &route, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn check(st: &AppState, route: &Route, req: &mut Request) -> Result<(), ApiError> {
    let Access::Role(perm) = route.access else {
        return Ok(());
    };
    let headers = req.headers().clone();
    let (who, proof) = authenticate(st, &headers, peer(req)).await?;
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let upgrade = req.headers().contains_key(header::UPGRADE);
    if matches!(proof, Proof::Cookie) && (unsafe_method || upgrade) && !same_origin(req) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a request with the session cookie must come from this site's pages",
        ));
    }
    need(&who, perm)?;
    if let Scoping::Province(what) = route.scoping {
        if !who.info.units.is_empty() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{what}: for the province's people only"),
            ));
        }
    }
    req.extensions_mut().insert(Caller { who });
    Ok(())
}

/// The body of `POST /api/login`.
#[derive(Deserialize, JsonSchema)]
pub struct LoginBody {
    #[serde(flatten)]
    pub login: LoginRequest,
    /// Also give the session token in the answer, for a program that sends it as
    /// `Authorization: Bearer` (the UI never asks: it keeps the cookie).
    #[serde(default)]
    pub token: bool,
}

/// `POST /api/login`: sets the session cookie.
pub async fn login(
    State(st): State<AppState>,
    ConnectInfoOpt(from): ConnectInfoOpt,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    if body.login.username.chars().count() > 64 || body.login.password.len() > 1024 {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    }
    let auth = st.engine.auth().clone();
    let now = st.engine.clock().now().timestamp_millis();
    let address = from.map(|a| a.ip());
    // argon2 takes tens of milliseconds on purpose: off the async threads.
    let LoginRequest { username, password } = body.login;
    let result =
        tokio::task::spawn_blocking(move || auth.login(&username, &password, now, address))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match result {
        Ok((token, user)) => {
            let mut r = Json(LoginResponse {
                token: body.token.then(|| token.clone()),
                user,
            })
            .into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&st, &headers, Some(&token)));
            Ok(r)
        }
        Err(AuthError::BadCredentials) => {
            // A failure costs the guesser a second more (the account or address count
            // locks it out for longer after a few).
            tokio::time::sleep(std::time::Duration::from_millis(st.failed_login_delay_ms)).await;
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong user name or password",
            ))
        }
        Err(e @ AuthError::Locked { .. }) => {
            Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}

/// The peer address when the server was started with it (tests may call the router
/// directly, without one).
pub struct ConnectInfoOpt(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ConnectInfoOpt {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ConnectInfoOpt(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

impl OperationInput for ConnectInfoOpt {}

/// `POST /api/logout`: ends the session and removes the cookie.
pub async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    for t in [bearer(&headers), cookie(&headers)].into_iter().flatten() {
        st.engine
            .auth()
            .logout(&t)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&st, &headers, None));
    Ok(r)
}

#[derive(Deserialize, JsonSchema)]
pub struct TicketQuery {
    ticket: String,
    /// Where to go next: a path of this site (`/`, `/wall?screen=2`).
    #[serde(default)]
    next: Option<String>,
}

/// `GET /api/session/desktop?ticket=…&next=/…`: the desktop app opens its windows here; the
/// ticket (one use, one minute) becomes a session in a cookie, and the window goes on.
pub async fn desktop_session(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TicketQuery>,
) -> Result<Response, ApiError> {
    let now = st.engine.clock().now().timestamp_millis();
    let token = st
        .engine
        .auth()
        .redeem_ticket(&q.ticket, now)
        .ok_or_else(|| unauthorized("this sign-in link is used or too old"))?;
    let mut r = Redirect::to(&local_path(q.next)).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&st, &headers, Some(&token)));
    Ok(r)
}

/// `GET /api/auth/providers`.
pub async fn providers(State(st): State<AppState>) -> Json<AuthProviders> {
    let auth = st.engine.auth();
    Json(AuthProviders {
        local: true,
        sign_in_required: auth.sign_in_required(),
        sso: auth.oidc().map(|o| SsoInfo {
            label: o.config().label.clone(),
            login: "/api/auth/oidc/login".into(),
        }),
        upstream: None,
        desktop: st.desktop.is_some(),
    })
}

/// A local path to go back to after signing in (never another site).
fn local_path(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".into())
}

#[derive(Deserialize, JsonSchema)]
pub struct SsoLogin {
    /// Where to go after signing in: a path of this site.
    #[serde(default)]
    next: Option<String>,
}

/// `GET /api/auth/oidc/login`: off to the province's sign-in page.
pub async fn sso_login(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SsoLogin>,
) -> Result<Redirect, ApiError> {
    let oidc = st
        .engine
        .auth()
        .oidc()
        .cloned()
        .ok_or_else(|| ApiError::not_found("single sign-on is not configured here"))?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("no Host"))?;
    let scheme = if st.engine.config().server.secure_cookies {
        "https"
    } else {
        "http"
    };
    let callback = format!("{scheme}://{host}/api/auth/oidc/callback");
    let url = oidc
        .begin(&callback, &local_path(q.next))
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(Redirect::to(&url))
}

#[derive(Deserialize, JsonSchema)]
pub struct SsoCallback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    /// The provider's refusal (`access_denied`, …).
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// `GET /api/auth/oidc/callback`: back from the province's sign-in page; the session cookie
/// is set and the person goes where they were going. A refusal goes back to the sign-in
/// screen with the reason (`/?sso_error=…`).
pub async fn sso_callback(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SsoCallback>,
) -> Result<Response, ApiError> {
    let oidc = st
        .engine
        .auth()
        .oidc()
        .cloned()
        .ok_or_else(|| ApiError::not_found("single sign-on is not configured here"))?;
    let back = |why: &str| {
        let why: String = form_urlencoded::byte_serialize(why.as_bytes()).collect();
        Redirect::to(&format!("/?sso_error={why}")).into_response()
    };
    if let Some(e) = q.error {
        let why = q.error_description.unwrap_or(e);
        tracing::info!("the sign-in provider refused: {why}");
        return Ok(back(&why));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Ok(back("the sign-in provider sent no code"));
    };
    match oidc.finish(&state, &code).await {
        Ok(signed) => {
            let now = st.engine.clock().now().timestamp_millis();
            let token = st.engine.auth().sso_session(&signed, now);
            tracing::info!(
                "{} signed in through the provider as {} of {:?}",
                signed.principal.info.username,
                signed.principal.info.role.as_str(),
                signed.principal.info.units
            );
            let mut r = Redirect::to(&local_path(Some(signed.next))).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&st, &headers, Some(&token)));
            Ok(r)
        }
        Err(e) => {
            tracing::warn!("a sign-in through the provider failed: {e}");
            Ok(back(&e.to_string()))
        }
    }
}

/// `GET /api/me`.
pub async fn me(State(st): State<AppState>, c: Caller) -> Json<Me> {
    Json(Me {
        user: c.who.info,
        sign_in_required: st.engine.auth().sign_in_required(),
    })
}

/// `GET /api/users`.
pub async fn users(
    State(st): State<AppState>,
    _c: Caller,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    st.engine
        .auth()
        .users()
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[derive(Deserialize, JsonSchema)]
pub struct AddUser {
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    role: Role,
    #[serde(default)]
    units: Vec<String>,
    password: String,
}

/// `POST /api/users`.
pub async fn add_user(
    State(st): State<AppState>,
    c: Caller,
    JsonBody(b): JsonBody<AddUser>,
) -> Result<crate::reply::Created<UserInfo>, ApiError> {
    let auth = st.engine.auth().clone();
    let now = st.engine.clock().now().timestamp_millis();
    let actor = c.actor();
    if b.display_name
        .as_ref()
        .is_some_and(|d| d.chars().count() > 200)
        || b.units.len() > 500
        || b.password.len() > 1024
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a display name of at most 200 characters, at most 500 units, a password of at \
             most 1024 bytes",
        ));
    }
    let u = NewUser {
        username: b.username,
        display_name: b.display_name,
        role: b.role,
        units: b.units,
        password: b.password,
    };
    let r = tokio::task::spawn_blocking(move || auth.add_user(&u, &actor, now))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match r {
        Ok(info) => Ok(crate::reply::Created(info)),
        Err(AuthError::Invalid(m)) => Err(ApiError::bad_request(m)),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}
