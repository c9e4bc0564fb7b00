//! IOC Console on the desktop: the engine and its HTTP/WebSocket server run in this process
//! on a free loopback port, and a native window shows the same UI a browser would get from
//! `ioc serve`. The window loads the UI from that server, so the UI has one way to data in
//! every setting (no Tauri IPC for data).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod choice;
mod notify;
mod render;
mod wall;

use clap::Parser;
use ioc_engine::{Config, Engine};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tauri::{WebviewUrl, WebviewWindowBuilder};

#[derive(Parser, Debug)]
#[command(name = "ioc-desktop", version, about = "IOC Console desktop app")]
struct Args {
    /// Data folder (database, imported basemap). Default: the user's data folder.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Configuration file (TOML). Default: built-in defaults (the Nghệ An demo).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run without the built-in Nghệ An simulator.
    #[arg(long)]
    no_demo: bool,
    /// Show the video wall only: a full-screen window on every monitor, no console.
    #[arg(long)]
    wall: bool,
    /// Work as a control-room workstation of this provincial IOC (remembered; the sign-in
    /// screen can change it): its picture and actions, through network blips.
    #[arg(long, value_name = "URL", conflicts_with = "local")]
    upstream: Option<String>,
    /// Work with this computer's own engine again (forgets a remembered IOC).
    #[arg(long)]
    local: bool,
    /// Close by itself after this many seconds (smoke tests).
    #[arg(long, value_name = "SECONDS")]
    exit_after: Option<u64>,
}

fn config(args: &Args) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(d) = &args.data {
        config.paths.data = Some(d.clone());
    }
    if args.no_demo {
        config = config.without_demo();
    }
    Ok(config)
}

/// Starts the engine and serves it on a free loopback port, with what the windows can do.
async fn start(
    config: Config,
    hooks: Arc<wall::Hooks>,
) -> anyhow::Result<(Arc<Engine>, SocketAddr)> {
    let listener = ioc_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let engine = Arc::new(Engine::start(config).await?);
    hooks.walls.serve_at(Some(engine.clone()), addr);
    let served = engine.clone();
    let desktop: Arc<dyn ioc_server::Desktop> = hooks;
    tokio::spawn(async move {
        let stop = std::future::pending();
        if let Err(e) = ioc_server::serve_with(served, listener, stop, Some(desktop)).await {
            tracing::error!("the in-process server stopped: {e}");
        }
    });
    Ok((engine, addr))
}

/// Starts a workstation's gateway to the IOC at `upstream` on a free loopback port.
async fn start_workstation(
    config: &Config,
    upstream: String,
    hooks: Arc<wall::Hooks>,
) -> anyhow::Result<SocketAddr> {
    let listener = ioc_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let opts = ioc_server::workstation::Options {
        upstream,
        data: config.data_dir().join("workstation"),
        ui_dir: config.server.ui_dir.clone(),
        hosts: vec![],
    };
    hooks.walls.serve_at(None, addr);
    let desktop: Arc<dyn ioc_server::Desktop> = hooks;
    let gate = ioc_server::workstation::Gate::start(opts, Some(desktop))?;
    tokio::spawn(async move {
        let stop = std::future::pending();
        if let Err(e) = ioc_server::workstation::serve_gate(gate, listener, stop).await {
            tracing::error!("the workstation's server stopped: {e}");
        }
    });
    Ok(addr)
}

/// The windows are the person at this computer: once accounts exist, a window first opens
/// `/api/session/desktop` with a one-time ticket, which the server turns into a session in
/// an `HttpOnly` cookie (in memory only, gone with the app) before going on to `path`. No
/// token ever sits where the page's scripts could read it.
///
/// Where the province's single sign-on is configured, the window is not signed in by
/// itself: the person signs in through the provider in the window.
pub fn with_session(engine: &Engine, addr: SocketAddr, path: &str) -> String {
    if engine.auth().sign_in_required() && engine.auth().oidc().is_none() {
        let who = std::env::var("USER").unwrap_or_else(|_| "desktop".into());
        let now = engine.clock().now().timestamp_millis();
        let ticket = engine.auth().desktop_ticket(&who, now);
        let mut u = tauri::Url::parse(&format!("http://{addr}/api/session/desktop"))
            .expect("a loopback address");
        u.query_pairs_mut()
            .append_pair("ticket", &ticket)
            .append_pair("next", path);
        u.to_string()
    } else {
        format!("http://{addr}{path}")
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    render::choose();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    tauri::async_runtime::set(runtime.handle().clone());
    let walls = Arc::new(wall::Walls::default());
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("IOC Console cannot start: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let choice = Arc::new(choice::Choice::new(&config.data_dir()));
    if args.local || args.upstream.is_some() {
        if let Err(e) = choice.remember(args.upstream.as_deref()) {
            eprintln!("IOC Console cannot remember the choice of server: {e}");
        }
    }
    let hooks = Arc::new(wall::Hooks {
        walls: walls.clone(),
        choice: choice.clone(),
    });
    let upstream = choice.upstream();
    let started = match upstream.clone() {
        Some(url) => runtime
            .block_on(start_workstation(&config, url, hooks))
            .map(|addr| (None, addr)),
        None => runtime
            .block_on(start(config, hooks))
            .map(|(e, addr)| (Some(e), addr)),
    };
    let (engine, addr) = match started {
        Ok(x) => x,
        Err(e) => {
            eprintln!("IOC Console cannot start: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let url = match &engine {
        Some(engine) => {
            engine.announce(&format!("http://{addr}"));
            if let Some(min) = engine.config().alerts.notify.min() {
                let _in_runtime = runtime.enter();
                notify::spawn(engine.clone(), min);
            }
            tracing::info!(
                "console UI at http://{addr}/ (data in {})",
                engine.data_dir().display()
            );
            with_session(engine, addr, "/")
        }
        None => {
            tracing::info!(
                "workstation of the IOC at {} — console UI at http://{addr}/",
                upstream.as_deref().unwrap_or_default()
            );
            format!("http://{addr}/")
        }
    };

    let title = match &upstream {
        Some(u) => format!("IOC Console — trạm làm việc của IOC tỉnh ({u})"),
        None => "IOC Console — Nghệ An".to_string(),
    };
    let exit_after = args.exit_after;
    let wall_only = args.wall;
    let app = tauri::Builder::default()
        .setup(move |app| {
            walls.attach(app.handle().clone());
            if wall_only {
                let n = wall::Walls::open(&walls)?;
                tracing::info!("video wall: {n} screen(s)");
            } else {
                // Maximized where a window manager does it; without one (a kiosk session,
                // Xvfb) nothing maximizes, so the first size never exceeds the screen.
                let (width, height) = app
                    .primary_monitor()
                    .ok()
                    .flatten()
                    .map(|m| {
                        let s = m.size().to_logical::<f64>(m.scale_factor());
                        (s.width.min(1600.0), s.height.min(900.0))
                    })
                    .unwrap_or((1600.0, 900.0));
                WebviewWindowBuilder::new(app, "console", WebviewUrl::External(url.parse()?))
                    .title(title)
                    .inner_size(width, height)
                    .min_inner_size(1024.0, 640.0)
                    .maximized(true)
                    .build()?;
            }
            if let Some(secs) = exit_after {
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                    handle.exit(0);
                });
            }
            Ok(())
        })
        .build(tauri::tauri_build_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("IOC Console cannot open its window: {e}");
            if let Some(engine) = &engine {
                runtime.block_on(engine.shutdown());
            }
            return std::process::ExitCode::FAILURE;
        }
    };
    let handle = runtime.handle().clone();
    app.run(move |_app, event| {
        if let tauri::RunEvent::Exit = event {
            if let Some(engine) = &engine {
                tracing::info!("closing: committing what was accepted");
                handle.block_on(engine.shutdown());
            }
            choice.relaunch_if_asked();
        }
    });
    std::process::ExitCode::SUCCESS
}
