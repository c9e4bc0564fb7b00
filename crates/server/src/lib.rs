//! The HTTP + WebSocket face of an engine: the JSON API (`docs/api.md`), the live feed at
//! `/ws`, the basemap, and the built UI. The same server runs inside the desktop app (on a
//! free loopback port) and as `ioc serve` (for a browser, a video wall or a leader's laptop).

mod api;
mod auth;
mod basemap;
mod cameras;
mod error;
mod extract;
mod idempotency;
mod lead;
mod operate;
mod reply;
pub mod routes;
mod rules;
mod security;
mod sops;
pub mod standby;
mod sync;
mod ui;
pub mod workstation;
mod ws;

use axum::http::Method;
use axum::Router;
use ioc_engine::Engine;
use routes::Route;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use reply::safe_file_name;
pub use security::Hosts;

/// What only the desktop app can do (native windows), offered to its own UI through the
/// API, so the UI keeps one way to everything.
pub trait Desktop: Send + Sync {
    /// Opens the video wall, one window per monitor; how many opened.
    fn open_wall(&self) -> Result<usize, String>;
    /// Remembers the server this desktop works with from now on (a provincial IOC's
    /// address, or `None` for its own engine) and starts again on it.
    fn set_upstream(&self, url: Option<String>) -> Result<(), String>;
}

/// The body of `POST /api/desktop/upstream`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct UpstreamChoice {
    /// The provincial IOC's address; absent or empty: this computer's own engine.
    #[serde(default)]
    pub url: Option<String>,
}

/// Checks that `url` is a provincial IOC that answers, before a desktop is pointed at it
/// (a typo must not leave the operator at a sign-in screen that cannot work).
pub async fn check_upstream(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("địa chỉ không hợp lệ / not an address: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("địa chỉ phải bắt đầu bằng http:// hoặc https:// / http(s):// only".into());
    }
    let probe = parsed
        .join("/api/auth/providers")
        .map_err(|e| e.to_string())?;
    let answer = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?
        .get(probe)
        .send()
        .await
        .map_err(|e| format!("không kết nối được / cannot reach {parsed}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!(
            "{parsed} answered {}: not an IOC Console",
            answer.status()
        ));
    }
    answer
        .json::<ioc_model::AuthProviders>()
        .await
        .map_err(|_| format!("{parsed} is not an IOC Console"))?;
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// `POST /api/desktop/upstream`, for the desktop's own pages only (the sign-in screen).
async fn choose_upstream(
    desktop: Option<&Arc<dyn Desktop>>,
    headers: &axum::http::HeaderMap,
    choice: UpstreamChoice,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let d = desktop.ok_or_else(|| ApiError::not_found("not the desktop app"))?;
    let own_page = headers.contains_key(axum::http::header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|v| v == "same-origin");
    if !own_page {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "from the desktop's own pages only",
        ));
    }
    let url = match choice.url.filter(|u| !u.trim().is_empty()) {
        Some(u) => Some(
            check_upstream(&u)
                .await
                .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_GATEWAY, e))?,
        ),
        None => None,
    };
    d.set_upstream(url.clone())
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(axum::Json(serde_json::json!({ "upstream": url })))
}

/// `POST /api/desktop/upstream` of a console with its own engine.
async fn desktop_upstream(
    axum::extract::State(st): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    extract::JsonBody(choice): extract::JsonBody<UpstreamChoice>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    choose_upstream(st.desktop.as_ref(), &headers, choice).await
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    tiles: Arc<basemap::TileCache>,
    ui: Arc<ui::Ui>,
    desktop: Option<Arc<dyn Desktop>>,
    /// Every route's policy, by method and path pattern.
    policies: Arc<HashMap<(Method, &'static str), Route>>,
    hosts: Arc<security::Hosts>,
    /// The OpenAPI document, made once.
    openapi: Arc<String>,
    /// How long a wrong password waits for its answer.
    failed_login_delay_ms: u64,
    /// Encoded feed messages shared between clients.
    feed: Arc<ws::FeedCache>,
    /// Answers kept for `Idempotency-Key`.
    replies: Arc<idempotency::Replies>,
}

impl AppState {
    fn policy(&self, method: &Method, path: &str) -> Option<Route> {
        self.policies.get(&(method.clone(), path)).copied()
    }
}

/// The largest request body a route takes unless it says otherwise (imports and
/// attachments stream theirs with their own limits).
pub const MAX_BODY: usize = 1024 * 1024;

/// The whole application: API, WebSocket, basemap and UI.
pub fn router(engine: Arc<Engine>) -> Router {
    router_with(engine, None)
}

/// The OpenAPI 3.1 document of the whole HTTP API, generated from the route table and the
/// handlers' types.
pub fn openapi() -> aide::openapi::OpenApi {
    build().1
}

fn build() -> (Vec<Route>, aide::openapi::OpenApi, Router<AppState>) {
    aide::generate::infer_responses(true);
    aide::generate::extract_schemas(true);
    aide::generate::on_error(|e| tracing::warn!("OpenAPI: {e}"));
    let routes::Routes { api, table } = routes::build();
    let mut doc = aide::openapi::OpenApi {
        info: aide::openapi::Info {
            title: "IOC Console API".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Some(
                "The HTTP API of an IOC Console engine (the provincial IOC, an OC or a \
                 desktop app). Sign in with `POST /api/login` (session cookie, or `\"token\": \
                 true` for a bearer token). Each operation says who may call it \
                 (`x-ioc-permission`, or `x-ioc-access: public`) and how unit scope applies \
                 (`x-ioc-scope`)."
                    .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    let router = api.finish_api_with(&mut doc, |t| {
        t.security_scheme(
            "session",
            aide::openapi::SecurityScheme::ApiKey {
                location: aide::openapi::ApiKeyLocation::Cookie,
                name: "ioc_session_<port>".into(),
                description: Some("The session cookie set by POST /api/login.".into()),
                extensions: Default::default(),
            },
        )
        .security_scheme(
            "bearer",
            aide::openapi::SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: None,
                description: Some("A session token (POST /api/login with \"token\": true).".into()),
                extensions: Default::default(),
            },
        )
        .security_requirement_multi(["session", "bearer"])
    });
    (table, doc, router)
}

/// The application of the desktop app, with what its windows can do.
pub fn router_with(engine: Arc<Engine>, desktop: Option<Arc<dyn Desktop>>) -> Router {
    let ui = Arc::new(ui::Ui::new(engine.config().server.ui_dir.clone()));
    let (table, doc, router) = build();
    let policies = table.iter().map(|r| ((r.method(), r.path), *r)).collect();
    let hosts = Arc::new(security::Hosts::new(&engine.config().server.hosts));
    let db = engine.store().clone();
    let state = AppState {
        engine,
        tiles: Arc::new(basemap::TileCache::default()),
        ui,
        desktop,
        policies: Arc::new(policies),
        hosts,
        openapi: Arc::new(serde_json::to_string_pretty(&doc).expect("the document serializes")),
        failed_login_delay_ms: 1000,
        feed: Arc::new(ws::FeedCache::default()),
        replies: Arc::new(idempotency::Replies::new(&db)),
    };
    let hosts = state.hosts.clone();
    // The access check runs first, then the idempotency key (which needs the caller).
    let app = router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
        .fallback(ui::serve)
        .with_state(state);
    harden(app, hosts)
}

/// What every response and request of the server goes through, whatever the route (see
/// [`security`]): the body limit, the `Host`/`Origin` check, a panic answered `500` with an
/// error id, and the security headers.
pub fn harden(app: Router, hosts: Arc<Hosts>) -> Router {
    app.layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            security::guard_hosts,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            security::panicked,
        ))
        .layer(axum::middleware::from_fn(security::headers))
}

/// `POST /api/desktop/wall`: the desktop app opens its wall windows; `404` elsewhere (a
/// browser opens `/wall` itself).
async fn open_wall(
    axum::extract::State(st): axum::extract::State<AppState>,
    _c: auth::Caller,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let d = st
        .desktop
        .as_ref()
        .ok_or_else(|| ApiError::not_found("not the desktop app: open /wall in a window"))?;
    let n = d
        .open_wall()
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(axum::Json(serde_json::json!({ "windows": n })))
}

/// Binds `addr`; port 0 picks a free one.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(engine, listener, shutdown, None).await
}

/// Serves the desktop app's UI, with what its windows can do.
pub async fn serve_with(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    desktop: Option<Arc<dyn Desktop>>,
) -> std::io::Result<()> {
    // What the engine does on its own that needs it shared: the rules' evidence clips.
    engine.watch_alert_clips();
    axum::serve(
        listener,
        router_with(engine, desktop).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
