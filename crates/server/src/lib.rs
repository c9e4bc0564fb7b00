//! The HTTP + WebSocket face of an engine: the JSON API (`docs/api.md`), the live feed at
//! `/ws`, the basemap, and the built UI. The same server runs inside the desktop app (on a
//! free loopback port) and as `ioc serve` (for a browser, a video wall or a leader's laptop).

mod api;
mod auth;
mod basemap;
mod error;
mod rules;
mod ui;
mod ws;

use axum::routing::{get, post};
use axum::Router;
use ioc_engine::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use error::ApiError;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    tiles: Arc<basemap::TileCache>,
    ui: Arc<ui::Ui>,
}

/// The whole application: API, WebSocket, basemap and UI.
pub fn router(engine: Arc<Engine>) -> Router {
    let ui = Arc::new(ui::Ui::new(engine.config().server.ui_dir.clone()));
    let state = AppState {
        engine,
        tiles: Arc::new(basemap::TileCache::default()),
        ui,
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
    axum::serve(listener, router(engine))
        .with_graceful_shutdown(shutdown)
        .await
}
