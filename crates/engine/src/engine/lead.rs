//! The engine's API for leading: KPI definitions and values, dashboards, the wall's
//! profile, statistical reports (on demand, with progress, and on a schedule). KPIs are
//! computed on blocking threads from the rollups; the current values go to the hub every
//! `[kpi_settings] refresh`, so every screen has them live.

use super::{Engine, EngineError};
use crate::audit::AuditEntry;
use crate::dashboards;
use crate::kpi::{self, def, KpiSet};
use crate::report::{self, schedule};
use crate::store::{Reader, WriteBatch, Writer};
use chrono::{DateTime, NaiveDate, Utc};
use ioc_model::{
    Dashboard, KpiDef, KpiItem, KpiSeries, KpiValue, Period, ReportJob, ReportRequest, ReportState,
    Role, RuleCheck, RuleProblem, WallProfile,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Reports made or being made, newest last (at most this many kept in memory; their files
/// stay in the folder).
const JOBS: usize = 200;

/// A report being made, and where its file is once made.
#[derive(Debug, Clone)]
pub struct Job {
    pub job: ReportJob,
    pub path: Option<PathBuf>,
}

/// What the leading half of the engine keeps; shared with its background tasks (the KPI
/// refresh, the report schedule).
pub struct Lead {
    pub kpis: tokio::sync::RwLock<Arc<KpiSet>>,
    pub jobs: Mutex<Vec<Job>>,
    next_job: Mutex<i64>,
    reader: Arc<Reader>,
    clock: Arc<dyn crate::clock::Clock>,
    config: Arc<crate::config::Config>,
    hub: Arc<crate::hub::Hub>,
}

/// The store's KPI definitions: on a store that never had any, the starter catalogue is
/// written first.
pub(super) async fn seed_kpis(
    writer: &Writer,
    reader: &Arc<Reader>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String)>, EngineError> {
    let r = reader.clone();
    let seeded = tokio::task::spawn_blocking(move || r.meta("kpis_seeded"))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
    if seeded.is_none() {
        let at = now.timestamp_millis();
        writer
            .write(WriteBatch {
                kpi_defs: kpi::catalogue::starter()
                    .into_iter()
                    .map(|(id, text)| (id, Some(text), at, crate::alerts::SYSTEM.to_string()))
                    .collect(),
                meta: vec![("kpis_seeded".into(), "1".into())],
                ..Default::default()
            })
            .await?;
    }
    let r = reader.clone();
    Ok(tokio::task::spawn_blocking(move || r.kpi_defs())
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??)
}

impl Lead {
    pub(super) fn new(
        set: KpiSet,
        reader: Arc<Reader>,
        clock: Arc<dyn crate::clock::Clock>,
        config: Arc<crate::config::Config>,
        hub: Arc<crate::hub::Hub>,
    ) -> Lead {
        Lead {
            kpis: tokio::sync::RwLock::new(Arc::new(set)),
            jobs: Mutex::new(Vec::new()),
            next_job: Mutex::new(1),
            reader,
            clock,
            config,
            hub,
        }
    }

    async fn kpi_set(&self) -> Arc<KpiSet> {
        self.kpis.read().await.clone()
    }

    /// Every KPI over its own current period.
    pub async fn current(&self) -> Result<Vec<KpiValue>, EngineError> {
        let set = self.kpi_set().await;
        let (now, tz) = (self.clock.now(), self.config.tz());
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            set.kpis
                .iter()
                .map(|k| {
                    let (p, range) = kpi::range_of(k, None, None, now, tz);
                    kpi::value(&reader, k, range, p, None, tz)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(EngineError::from)
    }

    /// Computes the current values again and sends them to every screen.
    pub async fn refresh(&self) {
        match self.current().await {
            Ok(v) => self.hub.publish_kpis(v),
            Err(e) => tracing::warn!("KPIs not computed: {e}"),
        }
    }

    /// Starts making a report; its progress is in the jobs.
    pub fn start_report(self: &Arc<Self>, mut request: ReportRequest, by: &str) -> ReportJob {
        // Named by the period's first day, however it was asked for.
        let tz = self.config.tz();
        let (from, _) = kpi::period::of_date(request.period, request.date, tz);
        request.date = from.with_timezone(&tz).date_naive();
        let id = {
            let mut n = self.next_job.lock().unwrap();
            let id = *n;
            *n += 1;
            id
        };
        let job = ReportJob {
            id,
            request: request.clone(),
            state: ReportState::Running,
            progress: 0,
            stage: "start".into(),
            file_name: None,
            size: None,
            error: None,
            started_at: self.clock.now(),
            finished_at: None,
            by: by.to_string(),
        };
        {
            let mut jobs = self.jobs.lock().unwrap();
            jobs.push(Job {
                job: job.clone(),
                path: None,
            });
            let n = jobs.len();
            if n > JOBS {
                jobs.drain(..n - JOBS);
            }
        }
        let lead = self.clone();
        tokio::spawn(async move { lead.make_report(id, request).await });
        job
    }

    fn update_job(&self, id: i64, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self
            .jobs
            .lock()
            .unwrap()
            .iter_mut()
            .find(|j| j.job.id == id)
        {
            f(j)
        }
    }

    async fn make_report(self: Arc<Self>, id: i64, request: ReportRequest) {
        let set = self.kpi_set().await;
        let reader = self.reader.clone();
        let org = self.config.organisation.name.clone();
        let (tz, now) = (self.config.tz(), self.clock.now());
        let folder = self.config.reports_dir();
        let me = self.clone();
        let result =
            tokio::task::spawn_blocking(move || -> Result<(String, PathBuf, u64), String> {
                let progress = |p: u8, stage: &str| {
                    me.update_job(id, |j| {
                        j.job.progress = p;
                        j.job.stage = stage.to_string();
                    })
                };
                let r = report::build(&reader, &set, &request, &org, tz, now, &progress)
                    .map_err(|e| e.to_string())?;
                progress(92, "render");
                let bytes = r.render(request.format)?;
                progress(97, "save");
                let name = r.file_name();
                let path = schedule::save(&folder, &name, &bytes)
                    .map_err(|e| format!("{}: {e}", folder.display()))?;
                Ok((name, path, bytes.len() as u64))
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        let done = self.clock.now();
        match result {
            Ok((name, path, size)) => {
                tracing::info!("report {} written ({size} B)", path.display());
                self.update_job(id, |j| {
                    j.job.state = ReportState::Done;
                    j.job.progress = 100;
                    j.job.stage = "done".into();
                    j.job.file_name = Some(name);
                    j.job.size = Some(size);
                    j.job.finished_at = Some(done);
                    j.path = Some(path);
                });
            }
            Err(e) => {
                tracing::error!("report {id} failed: {e}");
                self.update_job(id, |j| {
                    j.job.state = ReportState::Failed;
                    j.job.error = Some(e);
                    j.job.finished_at = Some(done);
                });
            }
        }
    }

    /// Starts the reports the schedule says are due (and not already being made, or failed
    /// less than ten minutes ago).
    pub fn run_schedule(self: &Arc<Self>) {
        let (now, tz) = (self.clock.now(), self.config.tz());
        let folder = self.config.reports_dir();
        let due = schedule::due(
            &self.config.reports.schedule,
            now,
            tz,
            &folder,
            report::file_name,
        );
        for req in due {
            let busy = self.jobs.lock().unwrap().iter().any(|j| {
                j.job.request == req
                    && (j.job.state == ReportState::Running
                        || j.job
                            .finished_at
                            .is_some_and(|t| now - t < chrono::Duration::minutes(10)))
            });
            if !busy {
                self.start_report(req, "schedule");
            }
        }
    }
}

fn refused(problems: Vec<RuleProblem>) -> RuleCheck {
    RuleCheck {
        ok: false,
        name: None,
        problems,
    }
}

impl Engine {
    async fn kpi_set(&self) -> Arc<KpiSet> {
        self.lead.kpi_set().await
    }

    async fn on_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, EngineError> {
        self.blocking(f).await
    }

    /// The KPIs as the configuration and the store define them.
    async fn stored_kpis(&self) -> Result<KpiSet, EngineError> {
        let stored = self.on_reader(|r| r.kpi_defs()).await?;
        let province = self.on_reader(|r| r.province_kpis()).await?;
        Ok(KpiSet::build_with(&self.config.kpis, &stored, &province))
    }

    /// Every KPI definition, and the problems of those that do not compile.
    pub async fn kpi_defs(&self) -> (Vec<KpiDef>, Vec<RuleProblem>) {
        let set = self.kpi_set().await;
        (set.defs(), set.problems.clone())
    }

    /// Checks a definition's text as it would be saved in place of `replacing`.
    pub async fn check_kpi(&self, text: &str, replacing: Option<&str>) -> RuleCheck {
        let set = self.kpi_set().await;
        check_kpi_text(&set, text, replacing)
    }

    /// Saves a definition (new, or in place of `replacing`); it counts at once.
    pub async fn put_kpi(
        &self,
        text: &str,
        replacing: Option<&str>,
        actor: &str,
    ) -> Result<Result<KpiDef, RuleCheck>, EngineError> {
        let mut guard = self.lead.kpis.write().await;
        let c = check_kpi_text(&guard, text, replacing);
        if !c.ok {
            return Ok(Err(c));
        }
        let k = def::parse(text, "console").map_err(|p| EngineError::BadInput(format!("{p:?}")))?;
        let id = k.config.id.clone();
        for it in std::iter::once(id.as_str()).chain(replacing) {
            if guard.get(it).is_some_and(|k| k.origin == "province") {
                return Err(EngineError::BadInput(format!(
                    "KPI {it:?} is the province's: it is changed at the provincial IOC"
                )));
            }
        }
        let now = self.clock.now().timestamp_millis();
        let mut defs = vec![(id.clone(), Some(text.to_string()), now, actor.to_string())];
        let before = guard.get(replacing.unwrap_or(&id)).map(|k| k.text.clone());
        if let Some(old) = replacing.filter(|o| *o != id) {
            defs.push((old.to_string(), None, now, actor.to_string()));
        }
        self.writer
            .write(WriteBatch {
                kpi_defs: defs,
                audit: vec![AuditEntry {
                    at: now,
                    actor: actor.to_string(),
                    action: "kpi.put".into(),
                    target: format!("kpi:{id}"),
                    before: before.map(serde_json::Value::String),
                    after: Some(serde_json::Value::String(text.to_string())),
                }],
                ..Default::default()
            })
            .await?;
        *guard = Arc::new(self.stored_kpis().await?);
        let d = guard
            .defs()
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| EngineError::Internal("a saved KPI is missing".into()))?;
        drop(guard);
        self.refresh_kpis().await;
        Ok(Ok(d))
    }

    /// Removes a definition kept in the store.
    pub async fn delete_kpi(&self, id: &str, actor: &str) -> Result<(), EngineError> {
        let mut guard = self.lead.kpis.write().await;
        let Some(k) = guard.get(id).cloned() else {
            return Err(EngineError::NotFound(format!("no KPI {id:?}")));
        };
        if k.origin == "province" {
            return Err(EngineError::BadInput(format!(
                "KPI {id:?} is the province's: it is changed at the provincial IOC"
            )));
        }
        if k.origin != "console" {
            return Err(EngineError::BadInput(format!(
                "{id:?} is a KPI of the configuration file; remove it there"
            )));
        }
        let now = self.clock.now().timestamp_millis();
        self.writer
            .write(WriteBatch {
                kpi_defs: vec![(id.to_string(), None, now, actor.to_string())],
                audit: vec![AuditEntry {
                    at: now,
                    actor: actor.to_string(),
                    action: "kpi.delete".into(),
                    target: format!("kpi:{id}"),
                    before: Some(serde_json::Value::String(k.text.clone())),
                    after: None,
                }],
                ..Default::default()
            })
            .await?;
        *guard = Arc::new(self.stored_kpis().await?);
        drop(guard);
        self.refresh_kpis().await;
        Ok(())
    }

    /// Every KPI over a period of kind `period` containing `date` (defaults: each KPI's
    /// own period, now).
    pub async fn kpi_values(
        &self,
        period: Option<Period>,
        date: Option<NaiveDate>,
        units: Option<Vec<String>>,
    ) -> Result<Vec<KpiValue>, EngineError> {
        let set = self.kpi_set().await;
        let (now, tz) = (self.clock.now(), self.config.tz());
        self.on_reader(move |r| {
            set.kpis
                .iter()
                .map(|k| {
                    let (p, range) = kpi::range_of(k, period, date, now, tz);
                    kpi::value(r, k, range, p, units.as_deref(), tz)
                })
                .collect()
        })
        .await
    }

    /// One KPI over a period (of some units; `None`: all).
    pub async fn kpi_value(
        &self,
        id: &str,
        period: Option<Period>,
        date: Option<NaiveDate>,
        unit: Option<Vec<String>>,
    ) -> Result<KpiValue, EngineError> {
        let set = self.kpi_set().await;
        let k = set
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("no KPI {id:?}")))?;
        let (now, tz) = (self.clock.now(), self.config.tz());
        self.on_reader(move |r| {
            let (p, range) = kpi::range_of(&k, period, date, now, tz);
            kpi::value(r, &k, range, p, unit.as_deref(), tz)
        })
        .await
    }

    /// A KPI's series over `[from, to)`.
    pub async fn kpi_series(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        period: Option<Period>,
        unit: Option<Vec<String>>,
    ) -> Result<KpiSeries, EngineError> {
        let set = self.kpi_set().await;
        let k = set
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("no KPI {id:?}")))?;
        let tz = self.config.tz();
        self.on_reader(move |r| kpi::series(r, &k, from, to, period, unit.as_deref(), tz))
            .await
    }

    /// The entities or records behind a KPI's number in a period (of some units).
    pub async fn kpi_detail(
        &self,
        id: &str,
        period: Option<Period>,
        date: Option<NaiveDate>,
        unit: Option<Vec<String>>,
    ) -> Result<Vec<KpiItem>, EngineError> {
        let set = self.kpi_set().await;
        let k = set
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("no KPI {id:?}")))?;
        let (now, tz) = (self.clock.now(), self.config.tz());
        self.on_reader(move |r| {
            let (_, range) = kpi::range_of(&k, period, date, now, tz);
            kpi::detail(r, &k, range, unit.as_deref(), tz)
        })
        .await
    }

    /// Computes the current values again and sends them to every screen.
    pub async fn refresh_kpis(&self) {
        self.lead.refresh().await
    }

    /// Every dashboard someone may see: the built-in ones, theirs, those shared with their
    /// role.
    pub async fn dashboards(&self, user: &str, role: Role) -> Result<Vec<Dashboard>, EngineError> {
        let mut all = dashboards::builtin(self.started_at);
        for doc in self.on_reader(|r| r.dashboards()).await? {
            match serde_json::from_str::<Dashboard>(&doc) {
                Ok(d) => all.push(d),
                Err(e) => tracing::error!("a stored dashboard does not read: {e}"),
            }
        }
        all.retain(|d| dashboards::visible(d, user, role));
        Ok(all)
    }

    /// Saves a dashboard (new when its id is empty). A built-in one cannot be changed, and
    /// only its owner (or an admin) changes someone's.
    pub async fn put_dashboard(
        &self,
        mut d: Dashboard,
        user: &str,
        role: Role,
    ) -> Result<Dashboard, EngineError> {
        let kpi_ids: Vec<String> = self
            .kpi_set()
            .await
            .defs()
            .into_iter()
            .map(|k| k.id)
            .collect();
        if dashboards::builtin(self.started_at)
            .iter()
            .any(|b| b.id == d.id)
        {
            return Err(EngineError::BadInput(
                "a built-in dashboard cannot be changed; save a copy".into(),
            ));
        }
        let existing = self
            .dashboards(user, Role::Admin)
            .await?
            .into_iter()
            .find(|x| x.id == d.id && !d.id.is_empty());
        match &existing {
            Some(x) if x.owner != user && role != Role::Admin => {
                return Err(EngineError::Forbidden(format!(
                    "dashboard {:?} is {}'s",
                    d.name, x.owner
                )))
            }
            Some(x) => d.owner = x.owner.clone(),
            None => {
                d.owner = user.to_string();
                if d.id.is_empty() {
                    d.id = format!(
                        "d{}-{:x}",
                        self.clock.now().timestamp_millis(),
                        rand::random::<u16>()
                    );
                }
            }
        }
        d.builtin = false;
        d.updated_at = self.clock.now();
        dashboards::check(&d, &kpi_ids).map_err(EngineError::BadInput)?;
        let doc = serde_json::to_string(&d).map_err(|e| EngineError::Internal(e.to_string()))?;
        let at = d.updated_at.timestamp_millis();
        self.writer
            .write(WriteBatch {
                dashboards: vec![(d.id.clone(), d.owner.clone(), Some(doc.clone()), at)],
                audit: vec![AuditEntry {
                    at,
                    actor: user.to_string(),
                    action: "dashboard.put".into(),
                    target: format!("dashboard:{}", d.id),
                    before: existing.and_then(|x| serde_json::to_value(x).ok()),
                    after: serde_json::from_str(&doc).ok(),
                }],
                ..Default::default()
            })
            .await?;
        Ok(d)
    }

    pub async fn delete_dashboard(
        &self,
        id: &str,
        user: &str,
        role: Role,
    ) -> Result<(), EngineError> {
        let d = self
            .dashboards(user, Role::Admin)
            .await?
            .into_iter()
            .find(|x| x.id == id)
            .ok_or_else(|| EngineError::NotFound(format!("no dashboard {id:?}")))?;
        if d.builtin {
            return Err(EngineError::BadInput("a built-in dashboard stays".into()));
        }
        if d.owner != user && role != Role::Admin {
            return Err(EngineError::Forbidden(format!(
                "dashboard {:?} is {}'s",
                d.name, d.owner
            )));
        }
        let at = self.clock.now().timestamp_millis();
        self.writer
            .write(WriteBatch {
                dashboards: vec![(id.to_string(), d.owner.clone(), None, at)],
                audit: vec![AuditEntry {
                    at,
                    actor: user.to_string(),
                    action: "dashboard.delete".into(),
                    target: format!("dashboard:{id}"),
                    before: serde_json::to_value(&d).ok(),
                    after: None,
                }],
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// The wall's profile (the default one until someone saves one).
    pub async fn wall(&self) -> Result<WallProfile, EngineError> {
        let stored = self.on_reader(|r| r.meta("wall")).await?;
        Ok(stored
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_else(dashboards::default_wall))
    }

    pub async fn put_wall(&self, w: WallProfile, actor: &str) -> Result<WallProfile, EngineError> {
        let names: Vec<String> = self
            .dashboards(actor, Role::Admin)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        dashboards::check_wall(&w, &names).map_err(EngineError::BadInput)?;
        let before = self.wall().await?;
        let text = serde_json::to_string(&w).map_err(|e| EngineError::Internal(e.to_string()))?;
        let at = self.clock.now().timestamp_millis();
        self.writer
            .write(WriteBatch {
                meta: vec![("wall".into(), text.clone())],
                audit: vec![AuditEntry {
                    at,
                    actor: actor.to_string(),
                    action: "wall.put".into(),
                    target: "wall".into(),
                    before: serde_json::to_value(before).ok(),
                    after: serde_json::from_str(&text).ok(),
                }],
                ..Default::default()
            })
            .await?;
        Ok(w)
    }

    /// Starts making a report; its progress is in [`Engine::report_jobs`].
    pub fn start_report(&self, request: ReportRequest, by: &str) -> ReportJob {
        self.lead.start_report(request, by)
    }

    /// Reports made or being made since start, newest first.
    pub fn report_jobs(&self) -> Vec<ReportJob> {
        let mut v: Vec<ReportJob> = self
            .lead
            .jobs
            .lock()
            .unwrap()
            .iter()
            .map(|j| j.job.clone())
            .collect();
        v.reverse();
        v
    }

    pub fn report_job(&self, id: i64) -> Option<ReportJob> {
        self.lead
            .jobs
            .lock()
            .unwrap()
            .iter()
            .find(|j| j.job.id == id)
            .map(|j| j.job.clone())
    }

    /// A made report's name and bytes.
    pub async fn report_file(&self, id: i64) -> Result<Option<(String, Vec<u8>)>, EngineError> {
        let path = self
            .lead
            .jobs
            .lock()
            .unwrap()
            .iter()
            .find(|j| j.job.id == id)
            .and_then(|j| Some((j.job.file_name.clone()?, j.path.clone()?)));
        let Some((name, path)) = path else {
            return Ok(None);
        };
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| EngineError::Internal(format!("{}: {e}", path.display())))?;
        Ok(Some((name, bytes)))
    }

    /// The reports in the folder (scheduled ones included): name, size, when written.
    pub async fn report_folder(&self) -> Vec<(String, u64, DateTime<Utc>)> {
        let dir = self.config.reports_dir();
        let mut out = Vec::new();
        if let Ok(mut rd) = tokio::fs::read_dir(&dir).await {
            while let Ok(Some(e)) = rd.next_entry().await {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !name.starts_with("bao-cao-") {
                    continue;
                }
                if let Ok(m) = e.metadata().await {
                    let at = m.modified().map(DateTime::<Utc>::from).unwrap_or_default();
                    out.push((name, m.len(), at));
                }
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.2));
        out
    }

    /// A report file of the folder by name.
    pub async fn report_folder_file(&self, name: &str) -> Result<Option<Vec<u8>>, EngineError> {
        if !name.starts_with("bao-cao-") || name.contains('/') || name.contains("..") {
            return Ok(None);
        }
        match tokio::fs::read(self.config.reports_dir().join(name)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::Internal(e.to_string())),
        }
    }
}

/// A definition's text checked as it would be saved in place of `replacing`.
fn check_kpi_text(set: &KpiSet, text: &str, replacing: Option<&str>) -> RuleCheck {
    match def::parse(text, "console") {
        Err(p) => refused(p),
        Ok(k) => {
            let id = k.config.id;
            if let Some(existing) = set.get(&id) {
                if existing.origin == "config" {
                    return refused(vec![RuleProblem {
                        rule: Some(id.clone()),
                        origin: "text".into(),
                        line: 1,
                        column: 1,
                        message: format!("{id:?} is a KPI of the configuration file"),
                    }]);
                }
                if replacing != Some(id.as_str()) {
                    return refused(vec![RuleProblem {
                        rule: Some(id.clone()),
                        origin: "text".into(),
                        line: 1,
                        column: 1,
                        message: format!("another KPI has the id {id:?}"),
                    }]);
                }
            }
            RuleCheck {
                ok: true,
                name: Some(id),
                problems: Vec::new(),
            }
        }
    }
}
