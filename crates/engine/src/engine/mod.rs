//! Assembling an engine: open the store, load what it holds, compile the rules, start the
//! writer, the pipeline and the sources. [`Engine::shutdown`] stops them in the reverse order
//! so that everything accepted is committed before the process exits.

mod clips;
mod import;
mod lead;
mod operations;
pub mod province;
mod sync;

pub use lead::Job;
pub use sync::INCARNATION_HEADER;

use crate::alerts::AlertAction;
use crate::alerts::AlertError;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, SourceConfig};
use crate::hub::Hub;
use crate::pipeline::{Command, IngestSender, Pipeline, PipelineStats};
use crate::rules::manage::{Edit, RuleManager};
use crate::rules::{RuleError, RuleSet};
use crate::sources::health::{SourceHealth, SourceRegistry};
use crate::sources::{self, SourceCtx};
use crate::store::{self, Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use ioc_model::{
    Alert, AlertState, BacktestResponse, DeadLetter, Entity, Health, Readiness, Reading, RuleCheck,
    RulesResponse, SeriesResponse, SourceStatus, Unit,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The file in the data folder an engine holds locked while it runs.
pub const LOCK_FILE: &str = "engine.lock";

/// How often the rules folder is looked at for changed files.
const RULES_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// Written next to it by whoever serves the engine over HTTP: `{"url": …}`.
pub const SERVER_FILE: &str = "server.json";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "another IOC engine is already using {0} (the desktop app or `ioc serve`); \
         stop it first, or send data to it through its API"
    )]
    Busy(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the engine has stopped")]
    Closed,
    #[error(transparent)]
    Alert(#[from] AlertError),
    #[error(transparent)]
    Op(#[from] crate::operate::OpError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// A field or a body over its limit (the API answers 422).
    #[error("{0}")]
    TooLarge(String),
    /// The thing exists but is not in a state for this (a clip with no file; 409).
    #[error("{0}")]
    Conflict(String),
    /// A device the engine asked on the caller's behalf (a camera) did not give what was
    /// asked (the API answers 502).
    #[error("{0}")]
    Unavailable(String),
}

pub struct Engine {
    /// This node's name in the federation (see [`crate::sync`]).
    node: Arc<str>,
    hlc: Arc<crate::sync::HlcClock>,
    /// The link to the IOC (`[upstream]`), if any.
    link: Option<Arc<crate::sync::upstream::Link>>,
    /// This data folder's incarnation (see [`crate::store::incarnation`]).
    incarnation: Arc<str>,
    /// Nodes that synced with this one.
    nodes: Mutex<HashMap<String, sync::NodeSeen>>,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    hub: Arc<Hub>,
    reader: Arc<Reader>,
    writer: Arc<Writer>,
    sender: IngestSender,
    stats: Arc<PipelineStats>,
    sources: Arc<SourceRegistry>,
    data_dir: PathBuf,
    /// The store's database: SQLite in the data folder, or PostgreSQL.
    db: store::Location,
    /// On PostgreSQL: whether the pipeline's lease is lost (see [`store::lease`]).
    lease_lost: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    started_at: DateTime<Utc>,
    /// The rules: config, files, edits; the one lock that serializes rule changes.
    rules: Arc<tokio::sync::Mutex<RuleManager>>,
    /// KPIs, dashboards, reports.
    lead: Arc<lead::Lead>,
    /// The SOP templates in force; the lock serializes their edits.
    sops: Arc<tokio::sync::Mutex<crate::operate::sop::SopSet>>,
    /// Stops the sources.
    cancel: CancellationToken,
    /// Stops the pipeline once it has taken what is queued.
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Running sources by name: their own stop token and task.
    running: Mutex<HashMap<String, (CancellationToken, JoinHandle<()>)>>,
    pipeline: Mutex<Option<JoinHandle<()>>>,
    /// Held until shutdown: one engine per data folder.
    lock: Mutex<Option<std::fs::File>>,
    auth: Arc<crate::auth::Auth>,
    /// Cameras' live video.
    video: Arc<crate::video::Video>,
    /// The last evidence clip's id.
    clip_ids: std::sync::atomic::AtomicI64,
    /// Whether the rules' clips are being saved (see [`Engine::watch_alert_clips`]).
    clip_watch: std::sync::atomic::AtomicBool,
}

/// Locks the data folder for this engine.
fn lock(data_dir: &Path) -> Result<std::fs::File, EngineError> {
    std::fs::create_dir_all(data_dir).map_err(|source| {
        EngineError::Store(StoreError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })
    })?;
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| EngineError::Internal(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::Busy(data_dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(EngineError::Internal(format!("{}: {e}", path.display())))
        }
    }
}

/// The URL of the server running the engine that holds `data_dir`, if one does.
pub fn running_server(data_dir: &Path) -> Option<RunningServer> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(data_dir.join(LOCK_FILE))
        .ok()?;
    if f.try_lock().is_ok() {
        return None; // nobody holds it
    }
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_dir.join(SERVER_FILE)).ok()?).ok()?;
    Some(RunningServer {
        url: info["url"].as_str()?.to_string(),
        admin_key: info["admin_key"].as_str().map(str::to_string),
    })
}

/// An engine running on a data folder, as its `server.json` tells.
#[derive(Debug, Clone)]
pub struct RunningServer {
    pub url: String,
    /// The key a tool on this machine acts as administrator with (`Authorization: Bearer`;
    /// the server takes it from loopback only).
    pub admin_key: Option<String>,
}

impl Engine {
    /// Starts an engine on the wall clock.
    pub async fn start(config: Config) -> Result<Engine, EngineError> {
        Engine::start_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, EngineError> {
        Engine::start_leased(config, clock, None).await
    }

    /// Starts the engine; on a PostgreSQL store, with the pipeline's `lease` when the caller
    /// waited for it (`ioc serve` standing by), or taking it now (refused when another node
    /// holds it: one pipeline per store). Ignored on SQLite.
    pub async fn start_leased(
        config: Config,
        clock: Arc<dyn Clock>,
        lease: Option<store::lease::Lease>,
    ) -> Result<Engine, EngineError> {
        let data_dir = config.data_dir();
        let lock = lock(&data_dir)?;
        let tz = config.tz();
        let configured_node = config.node.name.clone();
        let upstream = config.upstream.is_some();
        let store_config = config.store.clone();
        let (
            db_path,
            reader,
            loaded,
            managed,
            loaded_ops,
            sop_heads,
            (node, incarnation),
            sync_state,
            lease,
        ) = {
            let data_dir = data_dir.clone();
            let now_ms = clock.now().timestamp_millis();
            tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
                let db = store::open_configured(&store_config, &data_dir)?;
                // The lease before anything is written: one node's engine per store.
                let lease = match (&db, lease) {
                    (store::Location::Sqlite(_), _) => None,
                    (_, Some(lease)) => Some(lease),
                    (_, None) => Some(
                        store::lease::Lease::take_within(&db, std::time::Duration::from_secs(5))?
                            .ok_or_else(|| {
                            EngineError::BadInput(format!(
                                "another node runs the pipeline on {db} (it holds the store's \
                             lease); `ioc serve` stands by until it is free"
                            ))
                        })?,
                    ),
                };
                let node = store::node_name(&store::connect_path(&db)?, configured_node.as_deref())
                    .map_err(EngineError::BadInput)?;
                let incarnation = store::incarnation(&store::connect_path(&db)?)
                    .map_err(EngineError::Internal)?;
                if upstream {
                    let n = store::seed_outbox(&store::connect_path(&db)?)?;
                    if n > 0 {
                        tracing::info!("upstream: {n} devices of this node to send to the IOC");
                    }
                }
                let filled = store::backfill_rollups(&store::connect_path(&db)?, tz)
                    .map_err(StoreError::from)?;
                if filled > 0 {
                    tracing::info!(
                        "store: {filled} hourly and daily rollups filled from the minute ones"
                    );
                }
                let reader = Reader::new(&db);
                let loaded = reader.load_state(now_ms)?;
                let managed = reader.managed_sources()?;
                let ops = reader.load_operations(now_ms)?;
                let heads = reader.sop_heads()?;
                let sync_state = reader.sync_state()?;
                Ok((
                    db,
                    reader,
                    loaded,
                    managed,
                    ops,
                    heads,
                    (node, incarnation),
                    sync_state,
                    lease,
                ))
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??
        };
        let node: Arc<str> = Arc::from(node);
        // After every time this node gave (never twice the same), and after every time it
        // received, unless that one is implausibly far ahead (then as far as is adopted).
        let own_last = reader.last_hlc_of(&node)?;
        let adoptable = crate::sync::Hlc::new(
            (clock.now() + crate::sync::hlc::MAX_ADOPTED_AHEAD).timestamp_millis(),
            0,
        );
        let hlc = Arc::new(crate::sync::HlcClock::new(
            clock.clone(),
            own_last.max(sync_state.last_hlc.min(adoptable)),
        ));

        let (manager, rules) = {
            let (dir, configured) = (config.rules_dir(), config.rules.clone());
            tokio::task::spawn_blocking(move || RuleManager::open(dir, configured.as_deref(), tz))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?
        };

        let audit_key = match &config.audit.key_file {
            Some(p) => Some(Arc::new(
                crate::audit::AuditKey::load_or_create(p).map_err(EngineError::BadInput)?,
            )),
            None => None,
        };
        let lease_lost = lease.as_ref().map(|l| l.lost_probe());
        let writer = Arc::new(match lease {
            Some(lease) => {
                Writer::spawn_leased(lease, &config.store, clock.clone(), tz, audit_key.clone())?
            }
            None => Writer::spawn(
                &db_path,
                &config.store,
                clock.clone(),
                tz,
                audit_key.clone(),
            )?,
        });

        let sops =
            operations::seed_and_compile(&writer, &loaded_ops.sops, &sop_heads, &clock).await?;
        let hub = Arc::new(Hub::new(config.hub.clone(), clock.clone()));
        hub.load(hub_entities(&loaded), loaded.open_alerts.clone());
        hub.load_operations(
            loaded_ops.incidents.clone(),
            loaded_ops.directives.clone(),
            loaded_ops.silences.clone(),
        );
        let ops = crate::pipeline::Operations::new(loaded_ops, sops.clone(), clock.now());
        tracing::info!(
            "store {}: {} entities, {} open alerts",
            db_path,
            loaded.entities.len(),
            loaded.open_alerts.len()
        );

        let stats = Arc::new(PipelineStats::default());
        let source_registry = Arc::new(SourceRegistry::default());
        let (tx, rx) = mpsc::channel(256);
        let stop = CancellationToken::new();
        let pipeline = Pipeline::new(
            rx,
            writer.clone(),
            Arc::new(Reader::new(&db_path)),
            hub.clone(),
            clock.clone(),
            rules,
            loaded,
            stats.clone(),
            source_registry.clone(),
            config.alerts.clone(),
            crate::pipeline::Federation {
                node: node.clone(),
                hlc: hlc.clone(),
                gids: sync_state.alert_gids.into_iter().collect(),
                directive_gids: sync_state.directive_gids.into_iter().collect(),
                silence_gids: sync_state.silence_gids.into_iter().collect(),
                incident_gids: sync_state.incident_gids.into_iter().collect(),
                held: sync_state.vector,
                outbox: config.upstream.is_some(),
                foreign_entities: sync_state.foreign_entities,
            },
            crate::pipeline::plausible::Ranges::new(&config.metrics),
            ops,
            config.store.batch_max,
            stop.clone(),
        );
        let pipeline = tokio::spawn(pipeline.run());
        let sender = IngestSender { tx };
        let cancel = CancellationToken::new();

        let mut auth =
            crate::auth::Auth::open_keyed(&db_path, config.auth.session_hours, audit_key)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        if let Some(o) = &config.auth.oidc {
            auth = auth.with_oidc(Arc::new(crate::auth::oidc::Oidc::new(o.clone(), &data_dir)));
        }
        let reader = Arc::new(reader);
        let config = Arc::new(config);
        let stored_kpis = lead::seed_kpis(&writer, &reader, clock.now()).await?;
        let province_kpis = {
            let r = reader.clone();
            tokio::task::spawn_blocking(move || r.province_kpis())
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??
        };
        let kpi_set = crate::kpi::KpiSet::build_with(&config.kpis, &stored_kpis, &province_kpis);
        for p in &kpi_set.problems {
            tracing::error!(
                "KPI {:?} ({} {}:{}): {}; left out",
                p.rule.as_deref().unwrap_or("?"),
                p.origin,
                p.line,
                p.column,
                p.message
            );
        }
        let lead = Arc::new(lead::Lead::new(
            kpi_set,
            reader.clone(),
            clock.clone(),
            config.clone(),
            hub.clone(),
        ));
        let link = config.upstream.as_ref().map(|u| {
            Arc::new(crate::sync::upstream::Link::new(
                &u.url,
                clock.now(),
                hub.clone(),
            ))
        });
        let video = crate::video::Video::new(
            config.video.clone(),
            source_registry.clone(),
            Some(sender.clone()),
            clock.clone(),
            cancel.child_token(),
        );
        {
            let r = reader.clone();
            let creds = tokio::task::spawn_blocking(move || r.camera_credentials())
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??;
            video.load_credentials(creds);
            let r = reader.clone();
            video.reload_credentials_with(Box::new(move || {
                r.camera_credentials().unwrap_or_else(|e| {
                    tracing::error!("cameras' credentials: {e}");
                    HashMap::new()
                })
            }));
        }
        let clip_ids = {
            let r = reader.clone();
            tokio::task::spawn_blocking(move || r.max_clip_id())
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??
        };
        let engine = Engine {
            video,
            clip_ids: std::sync::atomic::AtomicI64::new(clip_ids),
            clip_watch: std::sync::atomic::AtomicBool::new(false),
            node,
            hlc,
            link,
            incarnation: Arc::from(incarnation),
            nodes: Mutex::new(HashMap::new()),
            auth: Arc::new(auth),
            config,
            clock,
            hub,
            lead,
            reader,
            writer,
            sender,
            stats,
            sources: source_registry,
            data_dir,
            db: db_path,
            lease_lost,
            started_at: Utc::now(),
            rules: Arc::new(tokio::sync::Mutex::new(manager)),
            sops: Arc::new(tokio::sync::Mutex::new(sops)),
            cancel,
            stop,
            tasks: Mutex::new(Vec::new()),
            running: Mutex::new(HashMap::new()),
            pipeline: Mutex::new(Some(pipeline)),
            lock: Mutex::new(Some(lock)),
        };
        for source in engine.config.effective_sources() {
            engine.start_source(&source, None);
        }
        engine.start_upstream();
        engine.fail_interrupted_clips().await?;
        let follow = engine.video.follow(engine.hub.clone());
        engine.tasks.lock().unwrap().push(follow);
        for (name, text) in managed {
            match SourceConfig::parse(&text) {
                Ok(c) if engine.sources.get(c.name()).is_none() => {
                    engine.start_source(&c, Some(text));
                }
                Ok(_) => tracing::warn!(
                    "source {name:?} of the admin screen has the name of a configured one; \
                     the configured one runs"
                ),
                Err(e) => tracing::error!("source {name:?} of the admin screen: {e}"),
            }
        }
        // Rules files are read again when one changes.
        let (manager, tx, cancel) = (
            engine.rules.clone(),
            engine.sender.tx.clone(),
            engine.cancel.child_token(),
        );
        engine.tasks.lock().unwrap().push(tokio::spawn(async move {
            let mut every = tokio::time::interval(RULES_POLL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = every.tick() => {
                        let mut m = manager.lock().await;
                        // Small files: read in place rather than on a blocking thread.
                        let changed = m.changed().then(|| m.reload());
                        if let Some(rules) = changed {
                            tracing::info!("rules files changed: {} rules run", rules.len());
                            let (done, rx) = oneshot::channel();
                            let cmd = Command::SetRules { rules: Box::new(rules), done };
                            if tx.send(cmd).await.is_err() {
                                break;
                            }
                            let _ = rx.await;
                        }
                    }
                }
            }
        }));
        // The KPIs' current values, for every screen; the reports the schedule asks for.
        let (lead, cancel, every) = (
            engine.lead.clone(),
            engine.cancel.child_token(),
            engine
                .config
                .kpi
                .refresh
                .max(std::time::Duration::from_secs(1)),
        );
        engine.tasks.lock().unwrap().push(tokio::spawn(async move {
            // The first values come two seconds in, once the sources have
            // had a moment to deliver, rather than a whole period later.
            let first = tokio::time::Instant::now() + every.min(std::time::Duration::from_secs(2));
            let mut refresh = tokio::time::interval_at(first, every);
            refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut schedule = tokio::time::interval(std::time::Duration::from_secs(60));
            schedule.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = refresh.tick() => lead.refresh().await,
                    _ = schedule.tick() => lead.run_schedule(),
                }
            }
        }));
        // People signed in through the provider: their claims read again at each refresh.
        if let Some(oidc) = engine.auth.oidc().cloned() {
            let (auth, clock) = (engine.auth.clone(), engine.clock.clone());
            let cancel = engine.cancel.child_token();
            engine.tasks.lock().unwrap().push(tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = every.tick() => refresh_sso(&auth, &oidc, clock.as_ref()).await,
                    }
                }
            }));
        }
        // Message rates for /api/sources.
        let registry = engine.sources.clone();
        let cancel = engine.cancel.child_token();
        engine.tasks.lock().unwrap().push(tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(2));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = every.tick() => registry.sample(2.0),
                }
            }
        }));
        Ok(engine)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// This node's name in the federation.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// This node's hybrid clock.
    pub fn hlc(&self) -> &Arc<crate::sync::HlcClock> {
        &self.hlc
    }

    pub fn reader(&self) -> &Arc<Reader> {
        &self.reader
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Where sources (and tests) send data.
    pub fn sender(&self) -> IngestSender {
        self.sender.clone()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the store's database is.
    pub fn store(&self) -> &store::Location {
        &self.db
    }

    /// Starts one source; `managed` is its TOML when it comes from the admin screen.
    fn start_source(&self, source: &SourceConfig, managed: Option<String>) {
        let mut health = SourceHealth::new(source.name(), source.kind(), source.detail());
        if let Some(text) = managed {
            health = health.managed(text);
        }
        let health = Arc::new(health);
        self.sources.add(health.clone());
        let cancel = self.cancel.child_token();
        let ctx = SourceCtx {
            name: Arc::from(source.name()),
            sender: self.sender.clone(),
            hub: self.hub.clone(),
            clock: self.clock.clone(),
            cancel: cancel.clone(),
            health,
            max_age: source
                .max_age()
                .and_then(|a| chrono::Duration::from_std(a).ok()),
        };
        tracing::info!("source {:?} ({}) starting", source.name(), source.kind());
        let task = source.spawn(ctx);
        self.running
            .lock()
            .unwrap()
            .insert(source.name().to_string(), (cancel, task));
    }

    /// Adds (or replaces) a source from the admin screen: checked, kept in the store, started.
    /// A source of the config file cannot be replaced from here.
    pub async fn put_source(&self, text: &str, actor: &str) -> Result<SourceStatus, EngineError> {
        // The name first, to find the secrets an edit leaves out.
        let named = SourceConfig::parse(text).map_err(EngineError::BadInput);
        let name = match &named {
            Ok(c) => c.name().to_string(),
            Err(_) => toml::from_str::<toml::Table>(text)
                .ok()
                .and_then(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .unwrap_or_default(),
        };
        let existing = self.sources.get(&name);
        if let Some(h) = &existing {
            if !h.status().managed {
                return Err(EngineError::BadInput(format!(
                    "{name:?} is a source of the configuration file; change it there"
                )));
            }
        }
        let old = existing
            .as_ref()
            .and_then(|h| h.managed_text().map(str::to_string));
        let full = sources::secrets::merge(text, old.as_deref()).map_err(EngineError::BadInput)?;
        let text = full.as_str();
        let config = SourceConfig::parse(text).map_err(EngineError::BadInput)?;
        let before = old
            .as_deref()
            .map(|o| serde_json::Value::String(sources::secrets::redact(o).0));
        if existing.is_some() {
            self.stop_source(&name).await;
        }
        let now = self.clock.now().timestamp_millis();
        self.writer
            .write(crate::store::WriteBatch {
                managed_sources: vec![(name.clone(), Some(text.to_string()), now)],
                audit: vec![crate::audit::AuditEntry {
                    at: now,
                    actor: actor.to_string(),
                    action: "source.put".into(),
                    target: format!("source:{name}"),
                    before,
                    // What changed, never the secrets' values.
                    after: Some(serde_json::Value::String(sources::secrets::redact(text).0)),
                }],
                ..Default::default()
            })
            .await?;
        self.start_source(&config, Some(text.to_string()));
        Ok(self
            .sources
            .get(&name)
            .map(|h| h.status())
            .expect("just started"))
    }

    /// Cameras' live video.
    pub fn video(&self) -> &Arc<crate::video::Video> {
        &self.video
    }

    /// Sets (or, with an empty password, removes) a camera's credentials: kept in the store,
    /// never shown again; the audit log records that they changed, not to what.
    pub async fn set_camera_credentials(
        &self,
        camera: &str,
        creds: ioc_model::CameraCredentials,
        actor: &str,
    ) -> Result<Option<ioc_model::CameraStream>, EngineError> {
        let Some(entity) = self.hub.entity(camera) else {
            return Err(EngineError::NotFound(format!("no camera {camera:?}")));
        };
        if !crate::video::ADDRESSES
            .iter()
            .any(|k| entity.attributes.contains_key(*k))
        {
            return Err(EngineError::BadInput(format!(
                "{camera:?} has no rtsp_url, snapshot_url or onvif_url: set where the camera is first"
            )));
        }
        let value = (!creds.password.is_empty())
            .then(|| (creds.username.trim().to_string(), creds.password));
        if value.as_ref().is_some_and(|(u, _)| u.is_empty()) {
            return Err(EngineError::BadInput(
                "a user name is needed with a password".into(),
            ));
        }
        let now = self.clock.now().timestamp_millis();
        let had = self.video.has_credentials(camera);
        self.writer
            .write(crate::store::WriteBatch {
                camera_credentials: vec![(camera.to_string(), value.clone(), now)],
                audit: vec![crate::audit::AuditEntry {
                    at: now,
                    actor: actor.to_string(),
                    action: if value.is_some() { "camera.credentials.set" } else { "camera.credentials.remove" }.into(),
                    target: format!("entity:{camera}"),
                    before: Some(serde_json::json!({ "credentials": had })),
                    after: Some(serde_json::json!({ "credentials": value.is_some(), "username": value.as_ref().map(|v| v.0.clone()) })),
                }],
                ..Default::default()
            })
            .await?;
        self.video.set_credentials(camera, value);
        self.video.refresh(&self.hub);
        Ok(self.video.stream(camera))
    }

    /// A recent still of a camera (see [`crate::video::snapshot`]): from the camera itself,
    /// at most once per `[video] snapshot_every`, or drawn for the demo's simulated ones.
    pub async fn camera_still(
        &self,
        camera: &str,
    ) -> Result<crate::video::snapshot::Still, EngineError> {
        let Some(entity) = self.hub.entity(camera) else {
            return Err(EngineError::NotFound(format!("no camera {camera:?}")));
        };
        use crate::video::snapshot::SnapshotError;
        self.video
            .still(&entity, self.config.tz())
            .await
            .map_err(|e| match e {
                SnapshotError::NoSource(why) => EngineError::NotFound(why),
                SnapshotError::Failed(why) => EngineError::Unavailable(why),
            })
    }

    /// Stops and forgets a source added from the admin screen.
    pub async fn delete_source(&self, name: &str, actor: &str) -> Result<(), EngineError> {
        let before = match self.sources.get(name) {
            None => return Err(EngineError::NotFound(format!("no source {name:?}"))),
            Some(h) if !h.status().managed => {
                return Err(EngineError::BadInput(format!(
                    "{name:?} is a source of the configuration file; remove it there"
                )))
            }
            // Without its secrets (`config` is shown redacted).
            Some(h) => h.status().config.map(serde_json::Value::String),
        };
        self.stop_source(name).await;
        self.sources.remove(name);
        let now = self.clock.now().timestamp_millis();
        self.writer
            .write(crate::store::WriteBatch {
                managed_sources: vec![(name.to_string(), None, now)],
                audit: vec![crate::audit::AuditEntry {
                    at: now,
                    actor: actor.to_string(),
                    action: "source.delete".into(),
                    target: format!("source:{name}"),
                    before,
                    after: None,
                }],
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn stop_source(&self, name: &str) {
        let running = self.running.lock().unwrap().remove(name);
        if let Some((cancel, task)) = running {
            cancel.cancel();
            let _ = task.await;
        }
    }

    /// Every source's health, in configuration order.
    pub fn sources(&self) -> Vec<SourceStatus> {
        self.sources.statuses()
    }

    /// The health of a source (registering one for an ad-hoc source such as an import).
    pub fn source_health(&self, name: &str, kind: &str) -> Arc<SourceHealth> {
        self.sources.get_or_add(name, kind)
    }

    /// Refused inputs, newest first.
    pub async fn dead_letters(
        &self,
        source: Option<String>,
        text: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, EngineError> {
        self.blocking(move |r| r.dead_letters(source.as_deref(), text.as_deref(), limit))
            .await
    }

    /// Rules that do not compile (they are left out; the others run).
    pub async fn rule_errors(&self) -> Vec<RuleError> {
        self.rules.lock().await.errors().to_vec()
    }

    /// Every rule with its origin, text and problems, for the rules screen.
    pub async fn rules(&self) -> RulesResponse {
        self.rules.lock().await.list()
    }

    /// Checks a rule's text as it would be saved in place of `replacing` (`None`: new).
    pub async fn check_rule(&self, text: &str, replacing: Option<&str>) -> RuleCheck {
        match self.rules.lock().await.check(text, replacing) {
            Ok(r) => RuleCheck {
                ok: true,
                name: Some(r.name),
                problems: Vec::new(),
            },
            Err(c) => c,
        }
    }

    async fn swap_rules(&self, rules: RuleSet) -> Result<(), EngineError> {
        let (done, rx) = oneshot::channel();
        self.sender
            .tx
            .send(Command::SetRules {
                rules: Box::new(rules),
                done,
            })
            .await
            .map_err(|_| EngineError::Closed)?;
        rx.await.map_err(|_| EngineError::Closed)
    }

    async fn audit_rule(&self, actor: &str, action: &str, edit: &Edit) -> Result<(), EngineError> {
        let now = self.clock.now().timestamp_millis();
        self.writer
            .write(crate::store::WriteBatch {
                audit: vec![crate::audit::AuditEntry {
                    at: now,
                    actor: actor.to_string(),
                    action: action.into(),
                    target: format!("rule:{}", edit.name),
                    before: edit.before.clone().map(serde_json::Value::String),
                    after: edit.after.clone().map(serde_json::Value::String),
                }],
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Saves a rule from the rules screen (in place of `replacing`, or new) into its rules
    /// file and runs it at once. `Ok(Err(check))`: refused, with where and why.
    pub async fn put_rule(
        &self,
        text: &str,
        replacing: Option<&str>,
        actor: &str,
    ) -> Result<Result<RuleCheck, RuleCheck>, EngineError> {
        let mut m = self.rules.lock().await;
        let edit = match m.put(text, replacing) {
            Ok(e) => e,
            Err(c) => return Ok(Err(c)),
        };
        self.audit_rule(actor, "rule.put", &edit).await?;
        let name = edit.name.clone();
        self.swap_rules(edit.rules).await?;
        Ok(Ok(RuleCheck {
            ok: true,
            name: Some(name),
            problems: Vec::new(),
        }))
    }

    /// Removes a rule of a rules file; its active alerts clear.
    pub async fn delete_rule(&self, name: &str, actor: &str) -> Result<(), EngineError> {
        let mut m = self.rules.lock().await;
        let edit = m.delete(name).map_err(|e| {
            if e.starts_with("no rule") {
                EngineError::NotFound(e)
            } else {
                EngineError::BadInput(e)
            }
        })?;
        self.audit_rule(actor, "rule.delete", &edit).await?;
        self.swap_rules(edit.rules).await
    }

    /// Replays stored observations of `[from, to)` through one rule: when it would have
    /// raised and cleared alerts. `Ok(Err(check))`: the rule does not compile.
    pub async fn backtest(
        &self,
        text: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Result<BacktestResponse, RuleCheck>, EngineError> {
        if to <= from {
            return Err(EngineError::BadInput("`from` must be before `to`".into()));
        }
        let set = match self.rules.lock().await.compile_one(text) {
            Ok(s) => s,
            Err(c) => return Ok(Err(c)),
        };
        let entities: HashMap<String, ioc_model::Entity> = self
            .hub
            .entities()
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
        let r = self
            .blocking(move |r| {
                crate::rules::backtest::run(
                    r,
                    &entities,
                    &set,
                    from,
                    to,
                    crate::rules::backtest::MAX_OBSERVATIONS,
                )
            })
            .await?;
        Ok(Ok(r))
    }

    /// Up, ready, store reachable: the store answers a query within two seconds and its
    /// writer reports no error; not ready while stopping, so a balancer drains the node.
    /// On PostgreSQL: the connection that held the pipeline's lease is gone, so another node
    /// may run the pipeline now; this one must stop (`ioc serve` exits for its service
    /// manager to start it again, as a standby). Always false on SQLite.
    pub fn lease_lost(&self) -> bool {
        self.lease_lost.as_ref().is_some_and(|lost| lost())
    }

    pub async fn readiness(&self) -> Readiness {
        let writer_ok = self.writer.status().error.lock().unwrap().is_none() && !self.lease_lost();
        let read = self.blocking(|r| {
            r.with(|c| Ok(c.query_row("SELECT 1", crate::store::db::params![], |_| Ok(()))?))
        });
        let store = writer_ok
            && matches!(
                tokio::time::timeout(std::time::Duration::from_secs(2), read).await,
                Ok(Ok(()))
            );
        Readiness {
            up: true,
            ready: store && !self.cancel.is_cancelled(),
            store,
        }
    }

    pub fn health(&self) -> Health {
        let store_error = self.writer.status().error.lock().unwrap().clone();
        let (entities, open_alerts) = self.hub.counts();
        Health {
            status: if store_error.is_some() {
                "degraded"
            } else {
                "ok"
            }
            .into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.started_at,
            seq: self.hub.seq(),
            entities,
            open_alerts,
            observations: self.writer.status().observations.load(Ordering::Relaxed),
            rejected: self.stats.rejected.load(Ordering::Relaxed),
            store_error,
            timezone: self.config.display.timezone.clone(),
            language: self.config.display.language.clone(),
            node: self.node.to_string(),
            upstream: self.upstream_link(),
            nodes: self.node_links(),
        }
    }

    /// Acknowledges an open alert; answers once the change is committed and published.
    pub async fn acknowledge(
        &self,
        id: i64,
        actor: &str,
        comment: Option<String>,
    ) -> Result<Alert, EngineError> {
        self.alert_act(id, AlertAction::Ack, actor, comment, None)
            .await
    }

    /// Somebody acts on an alert (`scope`: the units they may act in, `None` for all);
    /// answers once the change is committed and published.
    pub async fn alert_act(
        &self,
        id: i64,
        action: AlertAction,
        actor: &str,
        comment: Option<String>,
        scope: Option<Vec<String>>,
    ) -> Result<Alert, EngineError> {
        use crate::operate::limits::{check, check_opt, LINE, TEXT};
        check_opt("comment", &comment, TEXT)?;
        if let AlertAction::Assign { to } = &action {
            check("to", to, LINE)?;
        }
        let (reply, rx) = oneshot::channel();
        self.sender
            .tx
            .send(Command::AlertAct {
                id,
                action,
                actor: actor.to_string(),
                comment,
                scope,
                reply,
            })
            .await
            .map_err(|_| EngineError::Closed)?;
        Ok(rx.await.map_err(|_| EngineError::Closed)??)
    }

    /// Takes in operations of other nodes (see [`crate::sync`]) and waits until they are
    /// committed. `upto`: per origin, the sender vouches every operation this node may have
    /// up to that sequence is in `ops`.
    pub async fn merge(
        &self,
        ops: Vec<crate::sync::OpRecord>,
        upto: HashMap<String, u64>,
    ) -> Result<crate::pipeline::MergeReport, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.sender
            .tx
            .send(Command::Merge { ops, upto, reply })
            .await
            .map_err(|_| EngineError::Closed)?;
        rx.await.map_err(|_| EngineError::Closed)
    }

    /// Runs the time-driven checks (rule durations, no-data, escalation, shelving, expiry)
    /// now rather than at the next second, and waits until their result is committed. For a
    /// clock that jumps (tests, replays).
    pub async fn tick(&self) -> Result<(), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.sender
            .tx
            .send(Command::Tick(tx))
            .await
            .map_err(|_| EngineError::Closed)?;
        rx.await.map_err(|_| EngineError::Closed)
    }

    /// Accounts and sessions.
    pub fn auth(&self) -> &Arc<crate::auth::Auth> {
        &self.auth
    }

    /// The newest audit entries, optionally about one target (`alert:42`).
    pub async fn audit(
        &self,
        target: Option<String>,
        limit: usize,
    ) -> Result<Vec<crate::audit::AuditRow>, EngineError> {
        let mut rows = self
            .blocking(move |r| {
                r.with(|c| crate::audit::recent(c, target.as_deref(), limit).map_err(Into::into))
            })
            .await?;
        // Entries written before secrets were kept out of the log are shown without them
        // (the stored rows stay as they are: the chain covers them).
        for row in &mut rows {
            if row.entry.action.starts_with("source.") {
                for v in [&mut row.entry.before, &mut row.entry.after]
                    .into_iter()
                    .flatten()
                {
                    if let serde_json::Value::String(s) = v {
                        *s = sources::secrets::redact(s).0;
                    }
                }
            }
        }
        Ok(rows)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || f(&reader))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(EngineError::from)
    }

    /// One alert with its timeline (open or not).
    pub async fn alert(&self, id: i64) -> Result<Option<Alert>, EngineError> {
        self.blocking(move |r| r.alert(id)).await
    }

    /// Alerts in the given states, newest first, from the store.
    pub async fn alerts(
        &self,
        states: Vec<AlertState>,
        limit: usize,
    ) -> Result<Vec<Alert>, EngineError> {
        self.blocking(move |r| r.alerts(&states, limit)).await
    }

    /// Any alert as CAP 1.2 XML; a received CAP alert as it was received. `None`: no alert.
    pub async fn alert_cap(&self, id: i64) -> Result<Option<String>, EngineError> {
        let Some(alert) = self.alert(id).await? else {
            return Ok(None);
        };
        let raw = self.blocking(move |r| r.alert_raw(id)).await?;
        let position = alert
            .entity
            .as_deref()
            .and_then(|e| self.hub.entity(e))
            .and_then(|e| e.position());
        let org = &self.config.organisation;
        let issuer = crate::decode::cap::Issuer {
            sender: &org.cap_sender,
            name: &org.name,
        };
        let raw = raw.filter(|(f, _)| f == "cap").map(|(_, body)| body);
        Ok(Some(crate::decode::cap::to_cap(
            &alert,
            position,
            &issuer,
            raw.as_deref(),
        )))
    }

    pub async fn units(&self) -> Result<Vec<Unit>, EngineError> {
        self.blocking(|r| r.units()).await
    }

    /// A chart's worth of one metric of one entity, from the 1-minute rollups.
    pub async fn series(
        &self,
        entity: String,
        metric: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<SeriesResponse>, EngineError> {
        // At most ~720 points, in whole minutes; in whole hours past an hour (the hourly
        // rollups then carry it).
        let span_s = (to - from).num_seconds().max(60) as u64;
        let mut step_s = (span_s / 720).div_ceil(60).max(1) * 60;
        if step_s > 3600 {
            step_s = step_s.div_ceil(3600) * 3600;
        }
        let (e, m) = (entity.clone(), metric.clone());
        let points = self
            .blocking(move |r| {
                r.series(
                    &e,
                    &m,
                    from.timestamp_millis(),
                    to.timestamp_millis(),
                    step_s,
                )
            })
            .await?;
        Ok(points.map(|points| SeriesResponse {
            uom: ioc_model::metric::uom(&metric).to_string(),
            entity,
            metric,
            step_seconds: step_s,
            points,
        }))
    }

    /// Records where this engine is served, for `ioc import` and other tools on this
    /// machine, with the key they act as administrator with (so the file is the owner's
    /// only, like the database next to it).
    pub fn announce(&self, url: &str) {
        let body = serde_json::json!({
            "url": url,
            "pid": std::process::id(),
            "admin_key": self.auth.admin_key(),
        });
        let path = self.data_dir.join(SERVER_FILE);
        let written = {
            use std::io::Write;
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(&path)
                .and_then(|mut f| f.write_all(body.to_string().as_bytes()))
        };
        crate::store::owner_only(&path, false);
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }

    /// Stops the sources, lets the pipeline commit everything already queued, stops the
    /// writer. Safe to call more than once.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let mut tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap());
        tasks.extend(self.running.lock().unwrap().drain().map(|(_, (_, t))| t));
        for t in tasks {
            let _ = t.await;
        }
        self.stop.cancel();
        let pipeline = self.pipeline.lock().unwrap().take();
        if let Some(p) = pipeline {
            let _ = p.await;
        }
        let writer = self.writer.clone();
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
        let _ = std::fs::remove_file(self.data_dir.join(SERVER_FILE));
        drop(self.lock.lock().unwrap().take());
    }
}

/// Refreshes the provider sessions that are due: the new claims replace the old (a role
/// taken away is gone), a refusal ends the session, an unreachable provider is tried again
/// a little later (a commune cut off keeps working until the session ends).
async fn refresh_sso(auth: &crate::auth::Auth, oidc: &crate::auth::oidc::Oidc, clock: &dyn Clock) {
    use crate::auth::oidc::OidcError;
    for (token, refresh) in auth.sso_due(clock.now().timestamp_millis()) {
        let now = clock.now().timestamp_millis();
        let Some(refresh) = refresh else {
            // Nothing to refresh with: the session lasts as the provider's token did.
            auth.sso_retry_later(&token, now + 3_600_000);
            continue;
        };
        match oidc.refresh(&refresh).await {
            Ok(s) => {
                tracing::info!(
                    "signed-in {} is now {} of {:?}",
                    s.principal.info.username,
                    s.principal.info.role.as_str(),
                    s.principal.info.units
                );
                auth.sso_refreshed(&token, Some(&s), now)
            }
            Err(OidcError::Unreachable(e)) => {
                tracing::warn!("cannot refresh a sign-in (the provider is unreachable): {e}");
                auth.sso_retry_later(&token, now);
            }
            Err(e) => {
                tracing::info!("a sign-in ended at its refresh: {e}");
                auth.sso_refreshed(&token, None, now);
            }
        }
    }
}

/// Entities with their latest values, as the hub starts from.
fn hub_entities(loaded: &store::LoadedState) -> Vec<Entity> {
    let mut by_id: HashMap<i64, Entity> = loaded
        .entities
        .iter()
        .map(|(id, e)| (*id, e.clone()))
        .collect();
    for (sid, eid, metric) in &loaded.series {
        let (Some(e), Some(&(ts, value))) = (by_id.get_mut(eid), loaded.latest.get(sid)) else {
            continue;
        };
        let time = store::from_ms(ts);
        e.latest.insert(metric.clone(), Reading { value, time });
        if e.last_seen.is_none_or(|t| t < time) {
            e.last_seen = Some(time);
        }
    }
    by_id.into_values().collect()
}
