//! Sign-in on the server: every `/api/*` route but `/api/login`, and `/ws`, need a session
//! once any account exists (`Authorization: Bearer TOKEN`, or `?token=` where a header
//! cannot be sent: the WebSocket, download links). Handlers get the [`Principal`] and check
//! its role ([`need`]) and unit scope; a refusal is `401` without a valid session and `403`
//! outside the role or scope.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use ioc_engine::auth::{AuthError, NewUser, Permission, Principal};
use ioc_model::{LoginRequest, LoginResponse, Me, Role, UserInfo};
use serde::Deserialize;

/// The token of a request: the bearer header, else a `token` query parameter.
fn token(req: &Request) -> Option<String> {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    header.or_else(|| {
        form_urlencoded::parse(req.uri().query()?.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    })
}

/// Puts the request's [`Principal`] in its extensions, or answers `401`.
pub async fn require(
    State(st): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let auth = st.engine.auth().clone();
    let principal = if !auth.sign_in_required() {
        Principal::open_console()
    } else {
        let token = token(&req).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "sign in first (Authorization: Bearer …)",
            )
        })?;
        let now = st.engine.clock().now().timestamp_millis();
        auth.session(&token, now)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?
    };
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

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

/// The units someone may act in: `None` for the whole province.
pub fn scope(p: &Principal) -> Option<Vec<String>> {
    (!p.info.units.is_empty()).then(|| p.info.units.clone())
}

/// `POST /api/login`.
pub async fn login(
    State(st): State<AppState>,
    Json(body): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let auth = st.engine.auth().clone();
    let now = st.engine.clock().now().timestamp_millis();
    // argon2 takes tens of milliseconds on purpose: off the async threads.
    let result =
        tokio::task::spawn_blocking(move || auth.login(&body.username, &body.password, now))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match result {
        Ok((token, user)) => Ok(Json(LoginResponse { token, user })),
        Err(AuthError::BadCredentials) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}

/// `POST /api/logout`.
pub async fn logout(State(st): State<AppState>, req: Request) -> Result<StatusCode, ApiError> {
    if let Some(t) = token(&req) {
        st.engine
            .auth()
            .logout(&t)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/me`.
pub async fn me(
    State(st): State<AppState>,
    axum::Extension(p): axum::Extension<Principal>,
) -> Json<Me> {
    Json(Me {
        user: p.info,
        sign_in_required: st.engine.auth().sign_in_required(),
    })
}

/// `GET /api/users`.
pub async fn users(
    State(st): State<AppState>,
    axum::Extension(p): axum::Extension<Principal>,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    need(&p, Permission::ManageUsers)?;
    st.engine
        .auth()
        .users()
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[derive(Deserialize)]
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
    axum::Extension(p): axum::Extension<Principal>,
    Json(b): Json<AddUser>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    need(&p, Permission::ManageUsers)?;
    let auth = st.engine.auth().clone();
    let now = st.engine.clock().now().timestamp_millis();
    let actor = p.actor();
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
        Ok(info) => Ok((StatusCode::CREATED, Json(info))),
        Err(AuthError::Invalid(m)) => Err(ApiError::bad_request(m)),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}
