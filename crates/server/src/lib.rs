//! The HTTP + WebSocket face of an engine: the JSON API (`docs/api.md`), the live feed at
//! `/ws`, the basemap, and the built UI. The same server runs inside the desktop app (on a
//! free loopback port) and as `ioc serve` (for a browser, a video wall or a leader's laptop).

mod api;
mod auth;
mod basemap;
mod error;
mod lead;
mod operate;
mod rules;
mod sops;
mod ui;
mod ws;

use axum::routing::{get, post};
use axum::Router;
use ioc_engine::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use error::ApiError;

/// What only the desktop app can do (native windows), offered to its own UI through the
/// API, so the UI keeps one way to everything.
pub trait Desktop: Send + Sync {
    /// Opens the video wall, one window per monitor; how many opened.
    fn open_wall(&self) -> Result<usize, String>;
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    tiles: Arc<basemap::TileCache>,
    ui: Arc<ui::Ui>,
    desktop: Option<Arc<dyn Desktop>>,
}

/// The whole application: API, WebSocket, basemap and UI.
pub fn router(engine: Arc<Engine>) -> Router {
    router_with(engine, None)
}

/// The application of the desktop app, with what its windows can do.
pub fn router_with(engine: Arc<Engine>, desktop: Option<Arc<dyn Desktop>>) -> Router {
    let ui = Arc::new(ui::Ui::new(engine.config().server.ui_dir.clone()));
    let state = AppState {
        engine,
        tiles: Arc::new(basemap::TileCache::default()),
        ui,
        desktop,
    };
    let protected = Router::new()
        .route("/api/health", get(api::health))
        .route("/api/entities", get(api::entities))
        .route("/api/entities/{id}", get(api::entity))
        .route("/api/entities/{id}/series", get(api::series))
        .route("/api/alerts", get(api::alerts))
        .route("/api/alerts/{id}", get(api::alert))
        .route("/api/alerts/{id}/cap", get(api::alert_cap))
        .route("/api/alerts/{id}/{action}", post(api::alert_action))
        .route("/api/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .route("/api/users", get(auth::users).post(auth::add_user))
        .route("/api/audit", get(api::audit))
        .route("/api/units", get(api::units))
        .route("/api/sources", get(api::sources).post(api::put_source))
        .route(
            "/api/sources/{name}",
            axum::routing::delete(api::delete_source),
        )
        .route("/api/deadletters", get(api::dead_letters))
        .route("/api/import", post(api::import))
        .route("/api/rules", get(rules::list).post(rules::create))
        .route("/api/rules/validate", post(rules::validate))
        .route("/api/rules/backtest", post(rules::backtest))
        .route(
            "/api/rules/{name}",
            axum::routing::put(rules::replace).delete(rules::delete),
        )
        .route(
            "/api/incidents",
            get(operate::incidents).post(operate::open_incident),
        )
        .route("/api/incidents/{id}", get(operate::incident))
        .route(
            "/api/incidents/{id}/attachments",
            post(operate::attach).layer(axum::extract::DefaultBodyLimit::max(
                operate::MAX_ATTACHMENT + 1,
            )),
        )
        .route(
            "/api/incidents/{id}/{action}",
            get(operate::report).post(operate::incident_action),
        )
        .route(
            "/api/incidents/{id}/steps/{step}/{action}",
            post(operate::step_action),
        )
        .route("/api/attachments/{id}", get(operate::attachment))
        .route(
            "/api/directives",
            get(operate::directives).post(operate::issue),
        )
        .route("/api/directives/{id}", get(operate::directive))
        .route(
            "/api/directives/{id}/{action}",
            post(operate::directive_action),
        )
        .route(
            "/api/silences",
            get(operate::silences).post(operate::silence),
        )
        .route(
            "/api/silences/{id}",
            axum::routing::delete(operate::end_silence),
        )
        .route("/api/sops", get(sops::list).post(sops::create))
        .route("/api/sops/validate", post(sops::validate))
        .route(
            "/api/sops/{name}",
            axum::routing::put(sops::replace).delete(sops::delete),
        )
        .route("/api/sops/{name}/versions/{version}", get(sops::version))
        .route("/api/kpis", get(lead::kpis))
        .route("/api/kpis/{id}", get(lead::kpi))
        .route("/api/kpis/{id}/series", get(lead::series))
        .route("/api/kpis/{id}/detail", get(lead::detail))
        .route("/api/kpi-defs", get(lead::defs).post(lead::create_def))
        .route("/api/kpi-defs/validate", post(lead::validate_def))
        .route(
            "/api/kpi-defs/{id}",
            axum::routing::put(lead::replace_def).delete(lead::delete_def),
        )
        .route(
            "/api/dashboards",
            get(lead::dashboards).post(lead::create_dashboard),
        )
        .route(
            "/api/dashboards/{id}",
            get(lead::dashboard)
                .put(lead::replace_dashboard)
                .delete(lead::delete_dashboard),
        )
        .route("/api/wall", get(lead::wall).put(lead::put_wall))
        .route("/api/desktop/wall", post(open_wall))
        .route("/api/reports", get(lead::reports).post(lead::start_report))
        .route("/api/reports/files/{name}", get(lead::folder_file))
        .route("/api/reports/{id}", get(lead::report))
        .route("/api/reports/{id}/file", get(lead::report_file))
        .route("/api/basemap", get(basemap::info))
        .route("/api/basemap/file", get(basemap::file))
        .route("/api/basemap/tiles/{z}/{x}/{y}", get(basemap::tile))
        .route("/api/{*rest}", get(api::not_found).post(api::not_found))
        .route("/ws", get(ws::upgrade))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ));
    Router::new()
        .route("/api/login", post(auth::login))
        .merge(protected)
        .fallback(ui::serve)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state)
}

/// `POST /api/desktop/wall`: the desktop app opens its wall windows; `404` elsewhere (a
/// browser opens `/wall` itself).
async fn open_wall(
    axum::extract::State(st): axum::extract::State<AppState>,
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
    axum::serve(listener, router_with(engine, desktop))
        .with_graceful_shutdown(shutdown)
        .await
}
