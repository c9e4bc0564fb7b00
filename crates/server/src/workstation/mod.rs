//! Workstation mode: a control-room desktop that shows the provincial IOC's picture and
//! acts as the IOC (`ioc-desktop --upstream URL`, `ioc workstation --upstream URL`).
//!
//! It runs no engine of its own. It serves the UI from this computer and stands between the
//! UI and the IOC's API: the UI keeps its one way to data (HTTP + `/ws` on its own origin),
//! and this gateway
//! - signs the operator in *at the IOC* (the IOC's accounts, roles and units) and keeps the
//!   IOC's token here, never in the page ([`session`]);
//! - passes every request on, keeping the last answer of each read so a network blip still
//!   shows the last picture ([`proxy`]);
//! - keeps one feed from the IOC, applied to a [`Picture`], and relays it to every window
//!   of this computer, so six workstations on one IOC see each other's actions as fast as
//!   the IOC's feed brings them; cut off, the windows keep the picture and are told so by
//!   the link banner ([`feed`]);
//! - queues the operator's actions (ack, assign, comment, SOP steps, directive reports)
//!   when the IOC cannot be reached, on disk, and sends them when it can, once each
//!   ([`outbox`]).
//!
//! What is deliberately absent: rules, sources, a store of the city. Everything shown is
//! the IOC's; what this computer keeps is a cache and a queue.

mod feed;
pub mod outbox;
mod proxy;
mod session;

use crate::ui::Ui;
use axum::routing::{any, get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use ioc_model::{LinkState, Picture, UpstreamLink, UserInfo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch, Notify};

/// What a workstation needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    /// The IOC's address (`https://ioc.nghean.gov.vn`, `http://10.0.0.5:8080`).
    pub upstream: String,
    /// Where the queue of actions is kept.
    pub data: PathBuf,
    /// The built UI (`None`: the one built into the binary).
    pub ui_dir: Option<PathBuf>,
    /// Names this computer's server answers to besides loopback.
    pub hosts: Vec<String>,
}

/// The person signed in at the IOC through this workstation.
#[derive(Clone, Debug)]
pub(crate) struct Signed {
    pub token: String,
    pub user: UserInfo,
}

/// How the link to the IOC is, as this workstation sees it.
struct LinkNow {
    /// The IOC's feed is open and talking.
    up: bool,
    since: DateTime<Utc>,
    error: Option<String>,
    last_sync: Option<DateTime<Utc>>,
}

/// Everything the gateway shares between its handlers and tasks.
pub struct Gate {
    upstream: reqwest::Url,
    hosts: Vec<String>,
    http: reqwest::Client,
    ui: Ui,
    /// Local session id (the cookie) → the person at the IOC.
    sessions: Mutex<HashMap<String, Signed>>,
    /// Whom the feed and the queue work for: the last person who signed in here.
    current: watch::Sender<Option<Signed>>,
    cache: Mutex<proxy::Cache>,
    outbox: outbox::Outbox,
    link: Mutex<LinkNow>,
    picture: Mutex<Picture>,
    /// Encoded feed messages for the windows.
    news: broadcast::Sender<Arc<str>>,
    /// Bumped when the picture is someone else's now: every window starts over.
    reset: watch::Sender<u64>,
    /// Something was queued, or someone signed in: try sending.
    wake: Notify,
    /// What the desktop app's windows can do, when this runs in it.
    desktop: Option<Arc<dyn crate::Desktop>>,
}

impl Gate {
    /// Opens the queue and starts the feed and the sender.
    pub fn start(
        opts: Options,
        desktop: Option<Arc<dyn crate::Desktop>>,
    ) -> anyhow::Result<Arc<Gate>> {
        let mut upstream = reqwest::Url::parse(opts.upstream.trim())
            .map_err(|e| anyhow::anyhow!("the IOC's address {:?}: {e}", opts.upstream))?;
        if !matches!(upstream.scheme(), "http" | "https") || upstream.host().is_none() {
            anyhow::bail!(
                "the IOC's address {:?} must be http:// or https:// with a host",
                opts.upstream
            );
        }
        upstream.set_path("/");
        upstream.set_query(None);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()?;
        let outbox = outbox::Outbox::open(&opts.data)?;
        let gate = Arc::new(Gate {
            upstream,
            hosts: opts.hosts.clone(),
            http,
            ui: Ui::new(opts.ui_dir.clone()),
            sessions: Mutex::new(HashMap::new()),
            current: watch::channel(None).0,
            cache: Mutex::new(proxy::Cache::default()),
            outbox,
            link: Mutex::new(LinkNow {
                up: false,
                since: Utc::now(),
                error: Some("not signed in yet".into()),
                last_sync: None,
            }),
            picture: Mutex::new(Picture::default()),
            news: broadcast::channel(256).0,
            reset: watch::channel(0).0,
            wake: Notify::new(),
            desktop,
        });
        tokio::spawn(feed::run(gate.clone()));
        tokio::spawn(proxy::drain(gate.clone()));
        Ok(gate)
    }

    /// The IOC's address.
    pub fn upstream(&self) -> &str {
        self.upstream.as_str().trim_end_matches('/')
    }

    /// The link as the windows and `/api/health` show it.
    pub fn link(&self) -> UpstreamLink {
        let (waiting, refused) = self.outbox.counts().unwrap_or((0, 0));
        let l = self.link.lock().unwrap();
        let state = if !l.up {
            LinkState::Offline
        } else if waiting > 0 {
            LinkState::CatchingUp
        } else {
            LinkState::Connected
        };
        let error = if refused > 0 {
            Some(format!(
                "{refused} thao tác bị IOC từ chối / refused by the IOC (GET /api/workstation/outbox)"
            ))
        } else if !l.up {
            l.error.clone()
        } else {
            None
        };
        UpstreamLink {
            state,
            backlog: waiting,
            data_backlog: 0,
            since: l.since,
            url: self.upstream().to_string(),
            error,
            last_sync: l.last_sync,
        }
    }

    /// The feed to the IOC is up (or down, with why); the windows hear of it at once.
    fn set_up(&self, up: bool, error: Option<String>) {
        {
            let mut l = self.link.lock().unwrap();
            if l.up != up {
                l.since = Utc::now();
                if up {
                    tracing::info!("workstation: connected to the IOC at {}", self.upstream());
                } else {
                    tracing::warn!(
                        "workstation: lost the IOC at {}: {}",
                        self.upstream(),
                        error.as_deref().unwrap_or("no reason given")
                    );
                }
            }
            l.up = up;
            if up {
                l.last_sync = Some(Utc::now());
            }
            l.error = error;
        }
        self.publish_link();
    }

    /// Tells the windows the link's state when it changed (state, backlog, reason).
    fn publish_link(&self) {
        let link = self.link();
        let msg = {
            let mut p = self.picture.lock().unwrap();
            if p.is_empty() || p.link.as_ref() == Some(&link) {
                None
            } else {
                p.link = Some(link.clone());
                Some(ioc_model::ServerMsg::Delta {
                    from: p.seq + 1,
                    seq: p.seq,
                    time: Utc::now(),
                    entities: vec![],
                    values: vec![],
                    alerts: vec![],
                    incidents: vec![],
                    directives: vec![],
                    silences: vec![],
                    kpis: vec![],
                    link: Some(link),
                })
            }
        };
        if let Some(m) = msg {
            let text: Arc<str> = serde_json::to_string(&m)
                .expect("messages serialize")
                .into();
            let _ = self.news.send(text);
        }
    }

    fn signed(&self, sid: Option<&str>) -> Option<Signed> {
        let sid = sid?;
        self.sessions.lock().unwrap().get(sid).cloned()
    }
}

/// The workstation's whole server: its UI, the gateway to the IOC's API, the relayed feed.
pub fn router(gate: Arc<Gate>) -> Router {
    let hosts = Arc::new(crate::security::Hosts::new(&gate.hosts));
    let app = Router::new()
        .route("/api/login", post(session::login))
        .route("/api/logout", post(session::logout))
        .route("/api/session/desktop", get(session::no_ticket))
        .route("/api/auth/providers", get(session::providers))
        .route("/api/me", get(session::me))
        .route("/api/desktop/upstream", post(session::choose_upstream))
        .route("/api/desktop/wall", post(session::open_wall))
        .route("/api/health", get(proxy::health))
        .route("/api/workstation/outbox", get(proxy::outbox_list))
        .route(
            "/api/workstation/outbox/{id}",
            axum::routing::delete(proxy::outbox_discard),
        )
        .route("/ws", get(feed::window))
        .route("/api/{*rest}", any(proxy::forward))
        .fallback(
            |axum::extract::State(g): axum::extract::State<Arc<Gate>>,
             uri: axum::http::Uri,
             headers: axum::http::HeaderMap| async move { g.ui.respond(&uri, &headers) },
        )
        .with_state(gate);
    crate::harden(app, hosts)
}

/// Starts a workstation and serves it until `stop` resolves.
pub async fn serve(
    opts: Options,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    desktop: Option<Arc<dyn crate::Desktop>>,
) -> anyhow::Result<()> {
    serve_gate(Gate::start(opts, desktop)?, listener, stop).await
}

/// Serves a started workstation until `stop` resolves.
pub async fn serve_gate(
    gate: Arc<Gate>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        router(gate).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await?;
    Ok(())
}
