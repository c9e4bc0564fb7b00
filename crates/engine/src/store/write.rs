//! The single writer. The pipeline hands it [`WriteBatch`]es; it drains whatever is queued into
//! one transaction (observations, their 1-minute rollups, entities, alerts and alert events
//! together, so an alert is never stored without the data that raised it), commits, and only
//! then answers each batch. A failed commit (disk full, I/O error) is retried until it works:
//! nothing is acknowledged that is not on disk, and the error is visible in `/api/health`.

use super::db::{params, Db, OptionalExtension, Result as DbResult};
use super::parts::{Table, HOURS, MINUTES, RAW};
use super::{connect, time::to_ms, StoreError};
use crate::clock::Clock;
use ioc_model::{Alert, AlertEvent, Entity, Unit};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// An entity to insert or update, with its internal id.
#[derive(Clone, Debug)]
pub struct EntityRow {
    pub id: i64,
    pub entity: Entity,
    pub source: Option<String>,
    /// When this version was accepted (ms since the epoch).
    pub updated_at: i64,
}

/// One raw observation of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObsRow {
    pub series: i64,
    pub ts: i64,
    pub value: f64,
    /// A value computed by the engine (a NowCast, an AQI) that replaces one stored at the
    /// same time when its inputs changed (a late reading); a reading of a source never
    /// replaces: the first one stored is kept.
    pub restates: bool,
}

/// Most bytes of a refused payload kept in the dead letters.
pub const DEAD_LETTER_PAYLOAD: usize = 4096;

/// A refused input, with (the start of) its payload: one refusal, or every refusal of one
/// cause in a message (`count`, the first's reason, a few more as `samples`).
#[derive(Clone, Debug)]
pub struct DeadLetterRow {
    pub source: String,
    pub received_at: i64,
    pub origin: Option<String>,
    pub reason: String,
    pub payload: Vec<u8>,
    pub size: usize,
    /// Refusals this row stands for.
    pub count: u64,
    /// Reasons of a few more of them (at most [`DEAD_LETTER_SAMPLES`] in all with `reason`).
    pub samples: Vec<String>,
    /// Rows of the same grouping (an import and a cause) add up into one.
    pub grouping: Option<String>,
}

/// Reasons a grouped dead letter keeps, its own included.
pub const DEAD_LETTER_SAMPLES: usize = 5;

impl DeadLetterRow {
    pub fn new(
        source: &str,
        received_at: i64,
        origin: Option<&str>,
        reason: &str,
        payload: Option<&[u8]>,
    ) -> DeadLetterRow {
        let payload = payload.unwrap_or_default();
        DeadLetterRow {
            source: source.into(),
            received_at,
            origin: origin.map(str::to_string),
            reason: reason.into(),
            payload: payload[..payload.len().min(DEAD_LETTER_PAYLOAD)].to_vec(),
            size: payload.len(),
            count: 1,
            samples: Vec::new(),
            grouping: None,
        }
    }
}

/// Adds a grouped dead letter to the row of its grouping, or inserts it.
fn write_dead_letter(tx: &Db, d: &DeadLetterRow) -> DbResult<()> {
    let samples =
        |v: &[String]| (!v.is_empty()).then(|| serde_json::to_string(v).unwrap_or_default());
    if let Some(g) = &d.grouping {
        let found: Option<(i64, String, Option<String>)> = tx
            .prepare_cached("SELECT id, reason, samples FROM dead_letters WHERE grouping = ?1")?
            .query_row(params![g], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((id, first, old)) = found {
            let mut kept: Vec<String> = old
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            for s in std::iter::once(&d.reason).chain(&d.samples) {
                if kept.len() >= DEAD_LETTER_SAMPLES - 1 {
                    break;
                }
                if *s != first && !kept.contains(s) {
                    kept.push(s.clone());
                }
            }
            tx.prepare_cached(
                "UPDATE dead_letters SET count = count + ?2, samples = ?3 WHERE id = ?1",
            )?
            .execute(params![id, d.count as i64, samples(&kept)])?;
            return Ok(());
        }
    }
    tx.prepare_cached(
        "INSERT INTO dead_letters
           (source, received_at, origin, reason, payload, size, count, samples, grouping)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        d.source,
        d.received_at,
        d.origin,
        d.reason,
        d.payload,
        d.size as i64,
        d.count as i64,
        samples(&d.samples),
        d.grouping
    ])?;
    Ok(())
}

/// A camera's credentials: (camera, (user, password) or `None` to remove them, at).
pub type CameraCredentialsRow = (String, Option<(String, String)>, i64);

/// Everything one pipeline batch changes, written atomically.
#[derive(Default, Debug)]
pub struct WriteBatch {
    pub units: Vec<Unit>,
    pub entities: Vec<EntityRow>,
    /// New series: (series id, entity id, metric).
    pub series: Vec<(i64, i64, String)>,
    pub observations: Vec<ObsRow>,
    /// Alerts to insert or update (without their events).
    pub alerts: Vec<Alert>,
    pub alert_events: Vec<(i64, AlertEvent)>,
    /// The message a received alert came as (format, body), kept for export.
    pub alert_raw: Vec<(i64, &'static str, String)>,
    pub dead_letters: Vec<DeadLetterRow>,
    /// Sources of the admin screen: (name, its TOML, or `None` to delete it).
    pub managed_sources: Vec<(String, Option<String>, i64)>,
    /// Cameras' credentials: (camera, (user, password) or `None` to remove them, at).
    pub camera_credentials: Vec<CameraCredentialsRow>,
    /// Evidence clips to insert or update.
    pub clips: Vec<ioc_model::ClipInfo>,
    /// Changes to record in the audit log, in this same transaction.
    pub audit: Vec<crate::audit::AuditEntry>,
    /// Incidents to insert or update (without their timelines).
    pub incidents: Vec<ioc_model::Incident>,
    pub incident_events: Vec<(i64, ioc_model::IncidentEvent)>,
    pub directives: Vec<ioc_model::Directive>,
    pub silences: Vec<ioc_model::Silence>,
    /// New versions of SOP templates.
    pub sops: Vec<super::operate::SopRow>,
    pub attachments: Vec<super::operate::AttachmentRow>,
    /// KPI definitions kept in the store: (id, TOML or `None` to remove, at, by).
    pub kpi_defs: Vec<(String, Option<String>, i64, String)>,
    /// Dashboards: (id, owner, JSON or `None` to remove, at).
    pub dashboards: Vec<(String, String, Option<String>, i64)>,
    /// Settings (the `meta` table): key, value.
    pub meta: Vec<(String, String)>,
    /// Operations for the federation's log (see [`super::sync::write`]).
    pub oplog: Vec<crate::sync::OpRecord>,
    /// Alerts made on other nodes: (local id, federation id), recorded with the alert.
    pub alert_gids: Vec<(i64, String)>,
    /// Directives of other nodes (after their rows are written): local id, federation id.
    pub directive_gids: Vec<(i64, String)>,
    /// Silences of other nodes (after their rows are written): local id, federation id.
    pub silence_gids: Vec<(i64, String)>,
    /// Keep what this batch stores of devices and readings for the upstream IOC
    /// (`upstream_outbox`): set on a node with an `[upstream]`.
    pub outbox: bool,
    /// Alerts whose whole timeline is written again (folded after another node's operation
    /// arrived): their stored events are replaced by the ones in `alert_events`.
    pub alert_timelines: Vec<i64>,
    /// Incidents of other nodes (after their rows are written): local id, federation id.
    pub incident_gids: Vec<(i64, String)>,
    /// Incidents whose whole timeline is written again (folded after another node's
    /// operation arrived): their stored events are replaced by the ones in `incident_events`.
    pub incident_timelines: Vec<i64>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
            && self.entities.is_empty()
            && self.series.is_empty()
            && self.observations.is_empty()
            && self.alerts.is_empty()
            && self.alert_events.is_empty()
            && self.dead_letters.is_empty()
            && self.alert_raw.is_empty()
            && self.managed_sources.is_empty()
            && self.camera_credentials.is_empty()
            && self.clips.is_empty()
            && self.audit.is_empty()
            && self.incidents.is_empty()
            && self.incident_events.is_empty()
            && self.directives.is_empty()
            && self.silences.is_empty()
            && self.sops.is_empty()
            && self.attachments.is_empty()
            && self.kpi_defs.is_empty()
            && self.dashboards.is_empty()
            && self.meta.is_empty()
            && self.oplog.is_empty()
    }

    fn weight(&self) -> usize {
        self.observations.len()
            + self.entities.len()
            + self.alerts.len()
            + self.dead_letters.len()
            + self.incidents.len()
            + self
                .attachments
                .iter()
                .map(|a| a.data.len() / 65_536)
                .sum::<usize>()
            + 1
    }
}

/// What a committed batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Observations stored.
    pub inserted: usize,
    /// Observations already stored (same series and time), skipped.
    pub duplicates: usize,
}

/// Shared, readable state of the writer.
#[derive(Debug, Default)]
pub struct WriterStatus {
    /// The last commit error, cleared by the next successful commit.
    pub error: Mutex<Option<String>>,
    pub observations: AtomicU64,
    pub duplicates: AtomicU64,
    pub commits: AtomicU64,
}

/// What the writer writes on: a connection it makes, or one it is handed.
enum Conn {
    At(super::Location),
    Open(super::db::Db),
}

enum Job {
    Write(WriteBatch, oneshot::Sender<WriteOutcome>),
}

/// Handle to the writer thread. [`Writer::close`] (or dropping the handle) stops the thread
/// after it has committed what was queued.
pub struct Writer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    status: Arc<WriterStatus>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on the database at `at` (already migrated by `store::open`
    /// or `store::open_postgres`). `tz`: the display time zone, whose days the daily rollups
    /// follow.
    pub fn spawn(
        at: impl Into<super::Location>,
        store: &super::StoreConfig,
        clock: Arc<dyn Clock>,
        tz: chrono_tz::Tz,
        audit_key: Option<Arc<crate::audit::AuditKey>>,
    ) -> Result<Writer, StoreError> {
        Writer::start(Conn::At(at.into()), store, clock, tz, audit_key)
    }

    /// Starts the writer thread on the connection that holds the pipeline's lease (see
    /// [`super::lease`]), so that the lease ends with the connection the writes go through.
    pub fn spawn_leased(
        lease: super::lease::Lease,
        store: &super::StoreConfig,
        clock: Arc<dyn Clock>,
        tz: chrono_tz::Tz,
        audit_key: Option<Arc<crate::audit::AuditKey>>,
    ) -> Result<Writer, StoreError> {
        Writer::start(Conn::Open(lease.into_db()), store, clock, tz, audit_key)
    }

    fn start(
        conn: Conn,
        store: &super::StoreConfig,
        clock: Arc<dyn Clock>,
        tz: chrono_tz::Tz,
        audit_key: Option<Arc<crate::audit::AuditKey>>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel(8);
        // The connection is made on the writer's own thread: PostgreSQL's client runs a
        // runtime of its own, which cannot start on a thread of the engine's.
        let (opened, open_result) = std::sync::mpsc::sync_channel(1);
        let status = Arc::new(WriterStatus::default());
        let thread_status = status.clone();
        let batch_max = store.batch_max;
        let retention = super::retention::Retention::new(store);
        let thread = std::thread::Builder::new()
            .name("ioc-store-writer".into())
            .spawn(move || {
                let conn = match conn {
                    Conn::Open(db) => Ok(db),
                    Conn::At(at) => connect(&at),
                };
                let conn = match conn {
                    Ok(c) => {
                        let _ = opened.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                WriterThread {
                    conn,
                    rx,
                    status: thread_status,
                    batch_max,
                    retention,
                    last_slice: std::time::Instant::now(),
                    clock,
                    tz,
                    audit_key,
                    partitions: Default::default(),
                }
                .run()
            })
            .expect("spawn store writer thread");
        open_result.recv().map_err(|_| StoreError::WriterGone)??;
        Ok(Writer {
            tx: Mutex::new(Some(tx)),
            status,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a batch; the returned receiver answers once it is committed. Waits while the
    /// writer's queue is full (back-pressure up to the sources).
    pub async fn submit(
        &self,
        batch: WriteBatch,
    ) -> Result<oneshot::Receiver<WriteOutcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let tx = self
            .tx
            .lock()
            .unwrap()
            .clone()
            .ok_or(StoreError::WriterGone)?;
        tx.send(Job::Write(batch, reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        Ok(rx)
    }

    /// Writes a batch and waits for the commit.
    pub async fn write(&self, batch: WriteBatch) -> Result<WriteOutcome, StoreError> {
        self.submit(batch)
            .await?
            .await
            .map_err(|_| StoreError::WriterGone)
    }

    pub fn status(&self) -> &Arc<WriterStatus> {
        &self.status
    }

    /// Stops accepting batches, commits what is queued and waits for the thread to end.
    /// Blocking: call from `spawn_blocking` in async code.
    pub fn close(&self) {
        drop(self.tx.lock().unwrap().take());
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

struct WriterThread {
    conn: Db,
    rx: mpsc::Receiver<Job>,
    status: Arc<WriterStatus>,
    batch_max: usize,
    retention: super::retention::Retention,
    last_slice: std::time::Instant,
    clock: Arc<dyn Clock>,
    tz: chrono_tz::Tz,
    audit_key: Option<Arc<crate::audit::AuditKey>>,
    /// Partitions known to exist (PostgreSQL).
    partitions: std::collections::HashSet<String>,
}

#[derive(Clone, Copy)]
pub(crate) struct Agg {
    count: i64,
    min: f64,
    max: f64,
    sum: f64,
    last: f64,
    last_ts: i64,
}

impl WriterThread {
    fn run(mut self) {
        use tokio::sync::mpsc::error::TryRecvError;
        loop {
            // While a retention pass is under way it works whenever no batch waits.
            let first = if self.retention.busy() {
                match self.rx.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty) => {
                        self.retention_slice();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match self.rx.blocking_recv() {
                    Some(job) => job,
                    None => break,
                }
            };
            let mut jobs = vec![first];
            let mut weight = job_weight(&jobs[0]);
            while weight < self.batch_max {
                match self.rx.try_recv() {
                    Ok(job) => {
                        weight += job_weight(&job);
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let outcomes = self.commit_until_done(&jobs);
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let Job::Write(_, reply) = job;
                let _ = reply.send(outcome);
            }
            if let Err(e) = self.retention.due(&self.conn, to_ms(self.clock.now())) {
                tracing::warn!("store retention failed: {e}");
            }
            // Under load the writer is never idle: a slice after a commit now and then (at
            // most a fifth of its time), so retention gets on without holding up ingestion.
            if self.retention.busy() && self.last_slice.elapsed() >= Duration::from_millis(200) {
                self.retention_slice();
            }
        }
        tracing::debug!("store writer stopped");
    }

    /// About 50 ms of the retention pass under way.
    fn retention_slice(&mut self) {
        self.last_slice = std::time::Instant::now();
        let now = to_ms(self.clock.now());
        if let Err(e) = self
            .retention
            .slice(&self.conn, now, Duration::from_millis(50))
        {
            tracing::warn!("store retention failed: {e}");
        }
    }

    /// On PostgreSQL, the partitions the batch's readings go to (made before the batch's
    /// transaction, so it never waits on a table lock of its own making).
    fn partitions(&mut self, jobs: &[Job]) -> DbResult<()> {
        if self.conn.dialect() != super::db::Dialect::Postgres {
            return Ok(());
        }
        let mut raw = std::collections::BTreeSet::new();
        let mut minutes = std::collections::BTreeSet::new();
        let mut hours = std::collections::BTreeSet::new();
        for Job::Write(b, _) in jobs {
            for o in &b.observations {
                raw.insert(RAW.part(o.ts));
                minutes.insert(MINUTES.part(o.ts.div_euclid(MINUTES.unit_ms)));
                hours.insert(HOURS.part(o.ts.div_euclid(HOURS.unit_ms)));
            }
        }
        let now = to_ms(self.clock.now());
        for (t, parts) in [(&RAW, raw), (&MINUTES, minutes), (&HOURS, hours)] {
            super::schema_pg::ensure_partitions(&self.conn, t, parts, now, &mut self.partitions)?;
        }
        Ok(())
    }

    /// Commits, retrying with back-off until the disk takes it.
    fn commit_until_done(&mut self, jobs: &[Job]) -> Vec<WriteOutcome> {
        let mut delay = Duration::from_millis(100);
        loop {
            let written = self
                .partitions(jobs)
                .and_then(|()| write_jobs(&self.conn, jobs, self.tz, self.audit_key.as_deref()));
            match written {
                Ok(outcomes) => {
                    let mut err = self.status.error.lock().unwrap();
                    if err.take().is_some() {
                        tracing::info!("store writes again");
                    }
                    drop(err);
                    let (ins, dup) = outcomes
                        .iter()
                        .fold((0, 0), |(i, d), o| (i + o.inserted, d + o.duplicates));
                    self.status
                        .observations
                        .fetch_add(ins as u64, Ordering::Relaxed);
                    self.status
                        .duplicates
                        .fetch_add(dup as u64, Ordering::Relaxed);
                    self.status.commits.fetch_add(1, Ordering::Relaxed);
                    return outcomes;
                }
                Err(e) => {
                    tracing::error!("store commit failed, retrying in {delay:?}: {e}");
                    *self.status.error.lock().unwrap() = Some(e.to_string());
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

fn job_weight(job: &Job) -> usize {
    match job {
        Job::Write(b, _) => b.weight(),
    }
}

impl Agg {
    fn merge(&mut self, o: &Agg) {
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        if o.last_ts >= self.last_ts {
            self.last = o.last;
            self.last_ts = o.last_ts;
        }
    }
}

/// Aggregates by (series, bucket).
type Buckets = HashMap<(i64, i64), Agg>;

/// The hourly and daily aggregates of minute aggregates (a minute never straddles a local
/// day: every zone's offset is whole minutes).
fn coarser(minutes: &HashMap<(i64, i64), Agg>, tz: chrono_tz::Tz) -> (Buckets, Buckets) {
    let mut hours: HashMap<(i64, i64), Agg> = HashMap::new();
    let mut days: HashMap<(i64, i64), Agg> = HashMap::new();
    let mut day_of: HashMap<i64, i64> = HashMap::new();
    for (&(series, minute), a) in minutes {
        hours
            .entry((series, minute.div_euclid(60)))
            .and_modify(|h| h.merge(a))
            .or_insert(*a);
        let day = *day_of
            .entry(minute)
            .or_insert_with(|| crate::kpi::period::local_day(minute * 60_000, tz));
        days.entry((series, day))
            .and_modify(|d| d.merge(a))
            .or_insert(*a);
    }
    (hours, days)
}

/// Rebuilds the rollups of the minutes where a stored value was replaced (a sum can take a
/// value back out, a minimum cannot): each minute from its raw values, then its hour and its
/// local day from their minutes.
fn restate_rollups(
    tx: &Db,
    minutes: &std::collections::BTreeSet<(i64, i64)>,
    tz: chrono_tz::Tz,
) -> DbResult<()> {
    use crate::kpi::period::{day_date, local_day, midnight};
    use chrono::Datelike;
    // The aggregate of a series's raw values, or of its 1-minute rollups, over a range.
    let raw = |series: i64, from: i64, to: i64| -> DbResult<Option<Agg>> {
        let values = RAW.rows(tx, "ts, value", series, (from, to), usize::MAX, |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
        })?;
        Ok(values.into_iter().fold(None, |acc: Option<Agg>, (ts, v)| {
            let one = Agg {
                count: 1,
                min: v,
                max: v,
                sum: v,
                last: v,
                last_ts: ts,
            };
            Some(match acc {
                Some(mut a) => {
                    a.merge(&one);
                    a
                }
                None => one,
            })
        }))
    };
    let rolled = |series: i64, from: i64, to: i64| -> DbResult<Option<Agg>> {
        let rows = MINUTES.rows(
            tx,
            "count, min, max, sum, last, last_ts",
            series,
            (from, to),
            usize::MAX,
            |r| {
                Ok(Agg {
                    count: r.get(0)?,
                    min: r.get(1)?,
                    max: r.get(2)?,
                    sum: r.get(3)?,
                    last: r.get(4)?,
                    last_ts: r.get(5)?,
                })
            },
        )?;
        Ok(rows.into_iter().reduce(|mut a, b| {
            a.merge(&b);
            a
        }))
    };
    let put = |parts: Option<&Table>, series: i64, bucket: i64, agg: Option<Agg>| {
        let Some(a) = agg else {
            return Ok(());
        };
        let (table, part, value) = rollup_table(parts);
        let mut stmt = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({part}series, bucket, count, min, max, sum, last, last_ts)
             VALUES ({value}?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT ({part}series, bucket) DO UPDATE SET count = excluded.count,
               min = excluded.min, max = excluded.max, sum = excluded.sum,
               last = excluded.last, last_ts = excluded.last_ts"
        ))?;
        put_rollup(&mut stmt, parts, series, bucket, &a).map(drop)
    };
    let mut hours = std::collections::BTreeSet::new();
    let mut days = std::collections::BTreeSet::new();
    for &(series, minute) in minutes {
        let from = minute * 60_000;
        put(
            Some(&MINUTES),
            series,
            minute,
            raw(series, from, from + 60_000)?,
        )?;
        hours.insert((series, minute.div_euclid(60)));
        days.insert((series, local_day(from, tz)));
    }
    for (series, hour) in hours {
        put(
            Some(&HOURS),
            series,
            hour,
            rolled(series, hour * 60, (hour + 1) * 60)?,
        )?;
    }
    for (series, day) in days {
        // A day at the edge of the calendar's range (a value dated in year −262143) has no
        // midnight to compute: its day rollup is left as it was, the writer does not panic.
        let minute = |d: i64| {
            let date = day_date(0).checked_add_signed(chrono::Duration::try_days(d)?)?;
            (date.year().abs() < 262_000)
                .then(|| midnight(date, tz).timestamp_millis().div_euclid(60_000))
        };
        if let (Some(from), Some(to)) = (minute(day), minute(day + 1)) {
            put(None, series, day, rolled(series, from, to)?)?;
        }
    }
    Ok(())
}

/// The hourly table (`Some(&HOURS)`, keyed by part first) or the daily one (`None`, keyed by
/// series): its name, and the part's column and parameter (`?9`) where it has one.
fn rollup_table(parts: Option<&Table>) -> (&'static str, &'static str, &'static str) {
    match parts {
        Some(t) => (t.name, "part, ", "?9, "),
        None => ("rollup_1d", "", ""),
    }
}

/// Runs a statement of `rollup_table`'s shape for one bucket.
fn put_rollup(
    stmt: &mut super::db::Stmt<'_>,
    parts: Option<&Table>,
    series: i64,
    bucket: i64,
    a: &Agg,
) -> DbResult<usize> {
    let (count, min, max, sum, last, last_ts) = (a.count, a.min, a.max, a.sum, a.last, a.last_ts);
    match parts {
        Some(t) => stmt.execute(params![
            series,
            bucket,
            count,
            min,
            max,
            sum,
            last,
            last_ts,
            t.part(bucket)
        ]),
        None => stmt.execute(params![series, bucket, count, min, max, sum, last, last_ts]),
    }
}

/// Adds these rollups to the hourly table (`Some(&HOURS)`) or the daily one (`None`).
fn upsert_rollups(tx: &Db, parts: Option<&Table>, rows: &HashMap<(i64, i64), Agg>) -> DbResult<()> {
    let (table, part, value) = rollup_table(parts);
    let mut up = tx.prepare_cached(&format!(
        "INSERT INTO {table} ({part}series, bucket, count, min, max, sum, last, last_ts)
         VALUES ({value}?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT ({part}series, bucket) DO UPDATE SET
           count = {table}.count + excluded.count,
           min = CASE WHEN excluded.min < {table}.min THEN excluded.min ELSE {table}.min END,
           max = CASE WHEN excluded.max > {table}.max THEN excluded.max ELSE {table}.max END,
           sum = {table}.sum + excluded.sum,
           last = CASE WHEN excluded.last_ts >= {table}.last_ts
                       THEN excluded.last ELSE {table}.last END,
           last_ts = CASE WHEN excluded.last_ts > {table}.last_ts
                          THEN excluded.last_ts ELSE {table}.last_ts END"
    ))?;
    for ((series, bucket), a) in rows {
        put_rollup(&mut up, parts, *series, *bucket, a)?;
    }
    Ok(())
}

/// Fills the hourly and daily rollups from the minute ones, once, for a store that had
/// minute rollups before hourly and daily ones existed. Returns the rows written.
pub fn backfill_rollups(conn: &Db, tz: chrono_tz::Tz) -> DbResult<usize> {
    let empty: bool = conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM rollup_1h) AND EXISTS (SELECT 1 FROM rollup_1m)",
        params![],
        |r| r.get(0),
    )?;
    if !empty {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    let mut written = 0;
    {
        let mut stmt = tx
            .prepare("SELECT series, bucket, count, min, max, sum, last, last_ts FROM rollup_1m")?;
        let mut rows = stmt.query(params![])?;
        let mut chunk: HashMap<(i64, i64), Agg> = HashMap::new();
        while let Some(r) = rows.next()? {
            chunk.insert(
                (r.get(0)?, r.get(1)?),
                Agg {
                    count: r.get(2)?,
                    min: r.get(3)?,
                    max: r.get(4)?,
                    sum: r.get(5)?,
                    last: r.get(6)?,
                    last_ts: r.get(7)?,
                },
            );
            if chunk.len() >= 100_000 {
                let (h, d) = coarser(&chunk, tz);
                written += h.len() + d.len();
                upsert_rollups(&tx, Some(&HOURS), &h)?;
                upsert_rollups(&tx, None, &d)?;
                chunk.clear();
            }
        }
        let (h, d) = coarser(&chunk, tz);
        written += h.len() + d.len();
        upsert_rollups(&tx, Some(&HOURS), &h)?;
        upsert_rollups(&tx, None, &d)?;
    }
    tx.commit()?;
    Ok(written)
}

/// The batch's readings in one `INSERT … SELECT unnest(…)` (PostgreSQL): the (series, time,
/// value bits) of those stored; one of two readings of the same series and time in the
/// batch is stored, the other is a duplicate, as on SQLite.
fn insert_observations_at_once(
    tx: &Db,
    b: &WriteBatch,
) -> DbResult<std::collections::HashSet<(i64, i64, u64)>> {
    let n = b.observations.len();
    let mut out = std::collections::HashSet::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let (mut part, mut series, mut ts, mut value) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for o in &b.observations {
        part.push(RAW.part(o.ts));
        series.push(o.series);
        ts.push(o.ts);
        value.push(o.value);
    }
    tx.prepare_cached(
        "INSERT INTO observations (part, series, ts, value)
         SELECT * FROM unnest(?1::bigint[], ?2::bigint[], ?3::bigint[], ?4::float8[])
         ON CONFLICT DO NOTHING RETURNING series, ts, value",
    )?
    .each(params![part, series, ts, value], |r| {
        let v: f64 = r.get(2)?;
        out.insert((r.get(0)?, r.get(1)?, v.to_bits()));
        Ok(())
    })?;
    Ok(out)
}

/// Adds a batch's rollups to the 1-minute (`Some(&MINUTES)`), hourly (`Some(&HOURS)`) or
/// daily (`None`) table in one statement (PostgreSQL).
fn upsert_at_once(tx: &Db, parts: Option<&Table>, rows: &HashMap<(i64, i64), Agg>) -> DbResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut ints: [Vec<i64>; 5] = Default::default();
    let mut reals: [Vec<f64>; 4] = Default::default();
    for (&(series, bucket), a) in rows {
        ints[0].push(parts.map_or(0, |t| t.part(bucket)));
        ints[1].push(series);
        ints[2].push(bucket);
        ints[3].push(a.count);
        ints[4].push(a.last_ts);
        reals[0].push(a.min);
        reals[1].push(a.max);
        reals[2].push(a.sum);
        reals[3].push(a.last);
    }
    let (table, part, value) = match parts {
        Some(t) => (t.name, "part, ", "p, "),
        None => ("rollup_1d", "", ""),
    };
    tx.prepare_cached(&format!(
        "INSERT INTO {table} ({part}series, bucket, count, min, max, sum, last, last_ts)
         SELECT {value}s, b, c, mn, mx, sm, l, lt
         FROM unnest(?1::bigint[], ?2::bigint[], ?3::bigint[], ?4::bigint[], ?5::bigint[],
                     ?6::float8[], ?7::float8[], ?8::float8[], ?9::float8[])
              AS r(p, s, b, c, lt, mn, mx, sm, l)
         ON CONFLICT ({part}series, bucket) DO UPDATE SET
           count = {table}.count + excluded.count,
           min = LEAST({table}.min, excluded.min),
           max = GREATEST({table}.max, excluded.max),
           sum = {table}.sum + excluded.sum,
           last = CASE WHEN excluded.last_ts >= {table}.last_ts
                       THEN excluded.last ELSE {table}.last END,
           last_ts = GREATEST({table}.last_ts, excluded.last_ts)"
    ))?
    .execute(params![
        ints[0], ints[1], ints[2], ints[3], ints[4], reals[0], reals[1], reals[2], reals[3]
    ])?;
    Ok(())
}

fn write_jobs(
    conn: &Db,
    jobs: &[Job],
    tz: chrono_tz::Tz,
    audit_key: Option<&crate::audit::AuditKey>,
) -> DbResult<Vec<WriteOutcome>> {
    // IMMEDIATE: the audit chain's head is read in here; no other writer may slip in between.
    let tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    {
        let mut rollups: HashMap<(i64, i64), Agg> = HashMap::new();
        // Minutes (series, minute) where a stored value was replaced.
        let mut restated: std::collections::BTreeSet<(i64, i64)> = Default::default();
        let mut ins_unit = tx.prepare_cached(
            "INSERT INTO units (code, name, full_name, parent, lon, lat)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name,
               full_name = excluded.full_name, parent = excluded.parent,
               lon = excluded.lon, lat = excluded.lat",
        )?;
        let mut ins_entity = tx.prepare_cached(
            "INSERT INTO entities (id, ext_id, type, name, lon, lat, unit, unit_name, domain,
                                   attributes, status, source, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (id) DO UPDATE SET type = excluded.type, name = excluded.name,
               lon = excluded.lon, lat = excluded.lat, unit = excluded.unit,
               unit_name = excluded.unit_name, domain = excluded.domain,
               attributes = excluded.attributes, status = excluded.status,
               source = COALESCE(excluded.source, entities.source),
               updated_at = excluded.updated_at",
        )?;
        let mut ins_series =
            tx.prepare_cached("INSERT INTO series (id, entity, metric) VALUES (?1, ?2, ?3)")?;
        let mut ins_obs = tx.prepare_cached(
            "INSERT INTO observations (part, series, ts, value)
             VALUES (?4, ?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?;
        let mut ins_alert = tx.prepare_cached(
            "INSERT INTO alerts (id, rule, entity, entity_name, unit, unit_name, domain, category,
                                 severity, state, active, message, metric, value, raised_at,
                                 updated_at, cleared_at, acked_at, acked_by, count, external_id,
                                 area, description, expires_at, assignee, shelved_until, escalation,
                                 incident, silenced, resolved_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)
             ON CONFLICT (id) DO UPDATE SET severity = excluded.severity,
               entity_name = excluded.entity_name, category = excluded.category,
               state = excluded.state, active = excluded.active, message = excluded.message,
               value = excluded.value, updated_at = excluded.updated_at,
               cleared_at = excluded.cleared_at, acked_at = excluded.acked_at,
               acked_by = excluded.acked_by, count = excluded.count, area = excluded.area,
               description = excluded.description, expires_at = excluded.expires_at,
               assignee = excluded.assignee, shelved_until = excluded.shelved_until,
               escalation = excluded.escalation, incident = excluded.incident,
               silenced = excluded.silenced, resolved_at = excluded.resolved_at",
        )?;
        let mut ins_event = tx.prepare_cached(
            "INSERT INTO alert_events
                 (alert, at, actor, kind, from_state, to_state, comment, value, node)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;

        for job in jobs {
            let Job::Write(b, _) = job;
            for u in &b.units {
                ins_unit.execute(params![u.code, u.name, u.full_name, u.parent, u.lon, u.lat])?;
            }
            for e in &b.entities {
                let en = &e.entity;
                ins_entity.execute(params![
                    e.id,
                    en.id,
                    en.kind,
                    en.name,
                    en.lon,
                    en.lat,
                    en.unit,
                    en.unit_name,
                    en.domain.as_str(),
                    serde_json::Value::Object(en.attributes.clone()).to_string(),
                    en.status.as_str(),
                    e.source,
                    e.updated_at,
                ])?;
                if b.outbox {
                    tx.prepare_cached("INSERT INTO upstream_outbox (entity) VALUES (?1)")?
                        .execute(params![e.id])?;
                }
            }
            for (id, entity, metric) in &b.series {
                ins_series.execute(params![id, entity, metric])?;
            }
            let mut outcome = WriteOutcome::default();
            // PostgreSQL: the batch's readings in one statement, which answers with those it
            // stored (a statement per row is a round trip per row there).
            let mut stored = match tx.dialect() {
                super::db::Dialect::Postgres => Some(insert_observations_at_once(&tx, b)?),
                super::db::Dialect::Sqlite => None,
            };
            for o in &b.observations {
                let inserted = match &mut stored {
                    Some(stored) => stored.remove(&(o.series, o.ts, o.value.to_bits())),
                    None => ins_obs.execute(params![o.series, o.ts, o.value, RAW.part(o.ts)])? == 1,
                };
                if inserted {
                    outcome.inserted += 1;
                    // A source's reading goes up; derived values the IOC derives itself.
                    if b.outbox && !o.restates {
                        tx.prepare_cached(
                            "INSERT INTO upstream_outbox (series, ts) VALUES (?1, ?2)",
                        )?
                        .execute(params![o.series, o.ts])?;
                    }
                    let bucket = o.ts.div_euclid(60_000);
                    rollups
                        .entry((o.series, bucket))
                        .and_modify(|a| {
                            a.count += 1;
                            a.min = a.min.min(o.value);
                            a.max = a.max.max(o.value);
                            a.sum += o.value;
                            if o.ts >= a.last_ts {
                                a.last = o.value;
                                a.last_ts = o.ts;
                            }
                        })
                        .or_insert(Agg {
                            count: 1,
                            min: o.value,
                            max: o.value,
                            sum: o.value,
                            last: o.value,
                            last_ts: o.ts,
                        });
                } else if o.restates
                    && tx
                        .prepare_cached(
                            "UPDATE observations SET value = ?3
                             WHERE part = ?4 AND series = ?1 AND ts = ?2
                               AND value IS DISTINCT FROM ?3",
                        )?
                        .execute(params![o.series, o.ts, o.value, RAW.part(o.ts)])?
                        == 1
                {
                    restated.insert((o.series, o.ts.div_euclid(60_000)));
                } else {
                    outcome.duplicates += 1;
                }
            }
            for a in &b.alerts {
                ins_alert.execute(params![
                    a.id,
                    a.rule,
                    a.entity,
                    a.entity_name,
                    a.unit,
                    a.unit_name,
                    a.domain.as_str(),
                    a.category,
                    a.severity.as_str(),
                    a.state.as_str(),
                    a.active,
                    a.message,
                    a.metric,
                    a.value,
                    to_ms(a.raised_at),
                    to_ms(a.updated_at),
                    a.cleared_at.map(to_ms),
                    a.acked_at.map(to_ms),
                    a.acked_by,
                    a.count,
                    a.external_id,
                    a.area.as_ref().map(|g| g.to_string()),
                    a.description,
                    a.expires_at.map(to_ms),
                    a.assignee,
                    a.shelved_until.map(to_ms),
                    a.escalation,
                    a.incident,
                    a.silenced,
                    a.resolved_at.map(to_ms),
                ])?;
            }
            for (id, gid) in &b.alert_gids {
                tx.prepare_cached("UPDATE alerts SET gid = ?2 WHERE id = ?1")?
                    .execute(params![id, gid])?;
            }
            for id in &b.alert_timelines {
                tx.prepare_cached("DELETE FROM alert_events WHERE alert = ?1")?
                    .execute(params![id])?;
            }
            for (alert, ev) in &b.alert_events {
                ins_event.execute(params![
                    alert,
                    to_ms(ev.at),
                    ev.actor,
                    super::read::event_kind_str(ev.kind),
                    ev.from.map(|s| s.as_str()),
                    ev.to.map(|s| s.as_str()),
                    ev.comment,
                    ev.value,
                    ev.node,
                ])?;
            }
            for (alert, format, body) in &b.alert_raw {
                tx.prepare_cached(
                    "INSERT INTO alert_raw (alert, format, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (alert) DO UPDATE SET format = excluded.format,
                       body = excluded.body",
                )?
                .execute(params![alert, format, body])?;
            }
            for (name, config, at) in &b.managed_sources {
                match config {
                    Some(c) => tx
                        .prepare_cached(
                            "INSERT INTO managed_sources (name, config, updated_at)
                             VALUES (?1, ?2, ?3)
                             ON CONFLICT (name) DO UPDATE SET config = excluded.config,
                               updated_at = excluded.updated_at",
                        )?
                        .execute(params![name, c, at])?,
                    None => tx
                        .prepare_cached("DELETE FROM managed_sources WHERE name = ?1")?
                        .execute(params![name])?,
                };
            }
            for (camera, creds, at) in &b.camera_credentials {
                match creds {
                    Some((user, password)) => tx
                        .prepare_cached(
                            "INSERT INTO camera_credentials (camera, username, password, updated_at)
                             VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (camera) DO UPDATE SET username = excluded.username,
                               password = excluded.password, updated_at = excluded.updated_at",
                        )?
                        .execute(params![camera, user, password, at])?,
                    None => tx
                        .prepare_cached("DELETE FROM camera_credentials WHERE camera = ?1")?
                        .execute(params![camera])?,
                };
            }
            for c in &b.clips {
                tx.prepare_cached(
                    "INSERT INTO clips (id, camera, camera_name, unit, alert, incident, at, before_s,
                       after_s, from_ms, to_ms, state, error, size, sha256, file_name, created_by,
                       created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                       ?17, ?18)
                     ON CONFLICT (id) DO UPDATE SET from_ms = excluded.from_ms,
                       to_ms = excluded.to_ms, state = excluded.state, error = excluded.error,
                       size = excluded.size, sha256 = excluded.sha256",
                )?
                .execute(params![
                    c.id,
                    c.camera,
                    c.camera_name,
                    c.unit,
                    c.alert,
                    c.incident,
                    c.at.timestamp_millis(),
                    c.before_s,
                    c.after_s,
                    c.from.map(|t| t.timestamp_millis()),
                    c.to.map(|t| t.timestamp_millis()),
                    c.state.as_str(),
                    c.error,
                    c.size as i64,
                    c.sha256,
                    c.file_name,
                    c.created_by,
                    c.created_at.timestamp_millis(),
                ])?;
            }
            for d in &b.dead_letters {
                write_dead_letter(&tx, d)?;
            }
            super::operate::write(&tx, b)?;
            for (id, gid) in &b.directive_gids {
                tx.prepare_cached("UPDATE directives SET gid = ?2 WHERE id = ?1")?
                    .execute(params![id, gid])?;
            }
            for (id, gid) in &b.silence_gids {
                tx.prepare_cached("UPDATE silences SET gid = ?2 WHERE id = ?1")?
                    .execute(params![id, gid])?;
            }
            super::kpi::write(&tx, b)?;
            super::sync::write(&tx, &b.oplog)?;
            outcomes.push(outcome);
        }

        let (hours, days) = coarser(&rollups, tz);
        match tx.dialect() {
            // A statement per table for the whole batch (a statement per row is a round
            // trip per row there).
            super::db::Dialect::Postgres => {
                upsert_at_once(&tx, Some(&MINUTES), &rollups)?;
                upsert_at_once(&tx, Some(&HOURS), &hours)?;
                upsert_at_once(&tx, None, &days)?;
            }
            super::db::Dialect::Sqlite => {
                let mut up_rollup = tx.prepare_cached(
                "INSERT INTO rollup_1m (part, series, bucket, count, min, max, sum, last, last_ts)
                 VALUES (?9, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (part, series, bucket) DO UPDATE SET
                   count = rollup_1m.count + excluded.count,
                   min = CASE WHEN excluded.min < rollup_1m.min
                              THEN excluded.min ELSE rollup_1m.min END,
                   max = CASE WHEN excluded.max > rollup_1m.max
                              THEN excluded.max ELSE rollup_1m.max END,
                   sum = rollup_1m.sum + excluded.sum,
                   last = CASE WHEN excluded.last_ts >= rollup_1m.last_ts
                               THEN excluded.last ELSE rollup_1m.last END,
                   last_ts = CASE WHEN excluded.last_ts > rollup_1m.last_ts
                                  THEN excluded.last_ts ELSE rollup_1m.last_ts END",
            )?;
                for ((series, bucket), a) in &rollups {
                    up_rollup.execute(params![
                        series,
                        bucket,
                        a.count,
                        a.min,
                        a.max,
                        a.sum,
                        a.last,
                        a.last_ts,
                        MINUTES.part(*bucket)
                    ])?;
                }
                upsert_rollups(&tx, Some(&HOURS), &hours)?;
                upsert_rollups(&tx, None, &days)?;
            }
        }
        restate_rollups(&tx, &restated, tz)?;
    }
    let audit: Vec<crate::audit::AuditEntry> = jobs
        .iter()
        .flat_map(|Job::Write(b, _)| b.audit.iter().cloned())
        .collect();
    crate::audit::append(&tx, &audit, audit_key)?;
    tx.commit()?;
    Ok(outcomes)
}
