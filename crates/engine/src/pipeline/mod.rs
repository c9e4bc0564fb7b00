//! The ingest pipeline: one task that owns the entity registry, the rule timers and the alert
//! book. It takes what sources send, normalizes and checks it, runs the rules, hands the
//! result to the store writer as one batch and, once that batch is committed, publishes it to
//! the hub and answers whoever is waiting. Up to [`MAX_IN_FLIGHT`] batches are being committed
//! while the next is prepared, so rules and decoding overlap with SQLite.

mod merge;
mod operate;
mod particulates;
pub mod plausible;

pub use merge::MergeReport;
pub(crate) use operate::Operations;
pub use operate::{Op, OpOutcome};

use crate::alerts::{AlertAction, AlertBook, AlertError, RaiseSpec};
use crate::aqi::Pollutant;
use crate::clock::Clock;
use crate::hub::{Hub, Publish};
use crate::ingest::{refusals, ExternalAlert, Ingest, IngestReport, Item, Obs, Rejection};
use crate::rules::{entity_value, render_message, EntityVal, Evaluator, Observed, RuleSet, Signal};
use crate::sources::health::SourceRegistry;
use crate::store::{
    from_ms, to_ms, DeadLetterRow, EntityRow, LoadedState, ObsRow, Reader, WriteBatch,
    WriteOutcome, Writer,
};
use crate::sync::{AlertOp, Change, Gid, HlcClock, OpRecord};
use chrono::{DateTime, Utc};
use futures_util::stream::{FuturesOrdered, StreamExt};
use ioc_model::{Alert, Domain, Entity, EntityStatus, Unit};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Batches being committed while the next one is prepared.
pub const MAX_IN_FLIGHT: usize = 4;

/// What the store holds of one particulate series in the hours `from..=to` (hours since the
/// epoch); nothing for a series not created yet; `None` when the store cannot be read, which
/// leaves those hours without derived values rather than with values computed from part of
/// the data.
fn stored_hours(
    reader: &Reader,
    series: Option<i64>,
    from: i64,
    to: i64,
) -> Option<std::collections::BTreeMap<i64, particulates::StoredHour>> {
    let mut out = std::collections::BTreeMap::<i64, particulates::StoredHour>::new();
    let Some(series) = series else {
        return Some(out);
    };
    let (raw, hours) = reader
        .hours_of(series, from, to)
        .map_err(|e| tracing::warn!("reading the stored PM hours: {e}"))
        .ok()?;
    for (ts, value) in raw {
        let hour = ts.div_euclid(3_600_000);
        out.entry(hour).or_default().readings.push((ts, value));
    }
    // What raw retention removed is still counted by the hour's rollup.
    for (hour, sum, count, last_ts) in hours {
        let h = out.entry(hour).or_default();
        let n = h.readings.len() as u32;
        if count > n {
            let raw: f64 = h.readings.iter().map(|r| r.1).sum();
            h.rolled = Some((sum - raw, count - n, last_ts));
        }
    }
    Some(out)
}

/// Observations further in the future than this are refused (a clock or unit error upstream).
const MAX_FUTURE: chrono::Duration = chrono::Duration::minutes(5);

/// Sends a whole file's items through the pipeline in chunks (one huge message would hold
/// the pipeline up) and waits until every chunk is committed; its refusals are grouped by
/// cause across the chunks (see [`refusals`]).
pub async fn ingest_file(
    sender: &IngestSender,
    source: &str,
    origin: Option<&str>,
    items: Vec<Item>,
    payload: Arc<[u8]>,
) -> Result<FileReport, EngineClosed> {
    let mut chunks = Chunks::new(sender.clone(), Arc::from(source), origin.map(Arc::from));
    chunks.payload = Some(payload);
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(CHUNK));
        chunks.send(std::mem::replace(&mut rest, tail)).await?;
    }
    chunks.finish().await
}

/// Items per message of an import.
pub const CHUNK: usize = 5000;
/// Messages of one import in the pipeline at once: enough to keep it busy, few enough that an
/// import of any size holds a bounded amount in memory.
const IN_FLIGHT: usize = 4;

/// What an import did: items taken in, and the refusals grouped by cause.
#[derive(Debug, Default)]
pub struct FileReport {
    pub accepted: usize,
    /// Observations taken as history (see [`IngestReport::history`]).
    pub history: usize,
    pub refused: refusals::Grouped,
}

/// An import sent in chunks, each its own message, a few in flight at a time; the refusals
/// of one cause add up into one dead letter across them.
pub struct Chunks {
    sender: IngestSender,
    source: Arc<str>,
    origin: Option<Arc<str>>,
    /// Kept with the dead letters of every chunk.
    pub payload: Option<Arc<[u8]>>,
    grouping: Arc<str>,
    waits: std::collections::VecDeque<oneshot::Receiver<IngestReport>>,
    report: FileReport,
}

impl Chunks {
    pub fn new(sender: IngestSender, source: Arc<str>, origin: Option<Arc<str>>) -> Chunks {
        Chunks {
            sender,
            source,
            origin,
            payload: None,
            grouping: Arc::from(format!("import-{:016x}", rand::random::<u64>())),
            waits: Default::default(),
            report: FileReport::default(),
        }
    }

    /// Sends one chunk; waits first while [`IN_FLIGHT`] are not committed yet.
    pub async fn send(&mut self, items: Vec<Item>) -> Result<(), EngineClosed> {
        while self.waits.len() >= IN_FLIGHT {
            self.take_one().await?;
        }
        let (done, rx) = oneshot::channel();
        let mut ingest = Ingest::new(self.source.clone(), items);
        ingest.done = Some(done);
        ingest.payload = self.payload.clone();
        ingest.origin = self.origin.clone();
        ingest.grouping = Some(self.grouping.clone());
        self.sender.send(ingest).await?;
        self.waits.push_back(rx);
        Ok(())
    }

    async fn take_one(&mut self) -> Result<(), EngineClosed> {
        if let Some(rx) = self.waits.pop_front() {
            let r = rx.await.map_err(|_| EngineClosed)?;
            self.report.accepted += r.accepted;
            self.report.history += r.history;
            for x in &r.rejected {
                self.report.refused.add(&x.reason);
            }
        }
        Ok(())
    }

    /// Waits until every chunk is committed.
    pub async fn finish(mut self) -> Result<FileReport, EngineClosed> {
        while !self.waits.is_empty() {
            self.take_one().await?;
        }
        Ok(self.report)
    }
}

pub(crate) enum Command {
    Ingest(Ingest),
    /// Run the time-driven checks now (they also run every second); answered after commit.
    Tick(oneshot::Sender<()>),
    /// Swap in a reloaded rule set; answered after the alerts it clears are committed.
    SetRules {
        rules: Box<RuleSet>,
        done: oneshot::Sender<()>,
    },
    /// Somebody acts on an alert; `scope`: the units they may act in (`None`: all).
    AlertAct {
        id: i64,
        action: crate::alerts::AlertAction,
        actor: String,
        comment: Option<String>,
        scope: Option<Vec<String>>,
        reply: oneshot::Sender<Result<Alert, AlertError>>,
    },
    /// An incident, directive or silence operation; answered after the commit.
    Operate {
        op: Op,
        actor: crate::operate::Actor,
        reply: oneshot::Sender<Result<OpOutcome, crate::operate::OpError>>,
    },
    /// Operations from other nodes (see [`crate::sync`]); answered after the commit.
    Merge {
        ops: Vec<OpRecord>,
        upto: HashMap<String, u64>,
        reply: oneshot::Sender<MergeReport>,
    },
    /// Swap in the SOP templates (a template was saved or removed).
    SetSops {
        sops: crate::operate::sop::SopSet,
        done: oneshot::Sender<()>,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("the engine has stopped")]
pub struct EngineClosed;

/// The way into the pipeline. Cheap to clone; the pipeline stops when every clone is gone.
#[derive(Clone)]
pub struct IngestSender {
    pub(crate) tx: mpsc::Sender<Command>,
}

impl IngestSender {
    /// Queues items; waits while the pipeline is saturated (back-pressure).
    pub async fn send(&self, ingest: Ingest) -> Result<(), EngineClosed> {
        self.tx
            .send(Command::Ingest(ingest))
            .await
            .map_err(|_| EngineClosed)
    }

    /// Takes in operations of other nodes (see [`crate::sync`]); waits until committed.
    pub async fn merge(
        &self,
        ops: Vec<OpRecord>,
        upto: HashMap<String, u64>,
    ) -> Result<MergeReport, EngineClosed> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Merge { ops, upto, reply })
            .await
            .map_err(|_| EngineClosed)?;
        rx.await.map_err(|_| EngineClosed)
    }

    /// Sends items and waits until they are committed and published.
    pub async fn ingest(
        &self,
        source: &str,
        items: Vec<Item>,
    ) -> Result<IngestReport, EngineClosed> {
        let (done, rx) = oneshot::channel();
        let mut ingest = Ingest::new(Arc::from(source), items);
        ingest.done = Some(done);
        self.send(ingest).await?;
        rx.await.map_err(|_| EngineClosed)
    }
}

/// This node in the federation, as the pipeline needs it.
pub(crate) struct Federation {
    pub node: Arc<str>,
    pub hlc: Arc<HlcClock>,
    /// Alerts made on other nodes: local id → federation id.
    pub gids: HashMap<i64, Gid>,
    /// Directives issued on other nodes: local id → federation id.
    pub directive_gids: HashMap<i64, Gid>,
    /// Silences made on other nodes: local id → federation id.
    pub silence_gids: HashMap<i64, Gid>,
    /// Incidents opened on other nodes: local id → federation id.
    pub incident_gids: HashMap<i64, Gid>,
    /// Per origin, the highest sequence held.
    pub held: HashMap<String, u64>,
    /// Keep devices and readings for the upstream IOC (a node with an `[upstream]`).
    pub outbox: bool,
    /// Devices of other nodes (see `EntityRec::foreign`).
    pub foreign_entities: std::collections::HashSet<i64>,
}

/// The acts a change made by a person's other operation consists of (an incident resolved
/// or closed resolves and closes its alerts), as the fold replays them.
fn acts_of(change: &crate::alerts::AlertChange) -> Vec<AlertOp> {
    change
        .events
        .iter()
        .filter_map(|e| {
            let action = match e.to? {
                ioc_model::AlertState::Resolved => AlertAction::Resolve,
                ioc_model::AlertState::Closed => AlertAction::Close,
                _ => return None,
            };
            Some(AlertOp::Acted {
                action,
                actor: e.actor.clone(),
                comment: e.comment.clone(),
                auto_resolve: false,
            })
        })
        .collect()
}

/// Counters shown in `/api/health`.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub rule_errors: AtomicU64,
    /// Rules whose evaluation failed, with the last error (shown once in the log).
    pub rule_error_messages: Mutex<HashMap<String, String>>,
}

struct EntityRec {
    ext: Arc<str>,
    entity: Entity,
    cel: EntityVal,
    series: HashMap<Arc<str>, i64>,
    /// PM2.5 and PM10 hourly windows for the NowCast, and what a message changed in them.
    particulates: Option<Box<particulates::Particulates>>,
    /// A device of another node (registered through the federation's link): its readings
    /// are stored, rolled up and shown here, but its own node's rules evaluate them (their
    /// alerts come through the link), so this node's rules do not page twice for one event.
    foreign: bool,
}

#[derive(Default)]
struct Registry {
    by_ext: HashMap<Arc<str>, i64>,
    recs: HashMap<i64, EntityRec>,
    units: HashMap<String, String>,
    next_entity: i64,
    next_series: i64,
}

enum Reply {
    Ingest(oneshot::Sender<IngestReport>, IngestReport),
    Ack(oneshot::Sender<Result<Alert, AlertError>>, Box<Alert>),
    Op(
        oneshot::Sender<Result<OpOutcome, crate::operate::OpError>>,
        OpOutcome,
    ),
    Done(oneshot::Sender<()>),
    Merged(oneshot::Sender<MergeReport>, MergeReport),
}

/// A source may send only part of what we know about an entity (an NGSI partial update, a
/// JSON feed that names the station by id only): what it leaves out is kept, what it says
/// wins. Attributes are merged key by key.
fn merge_known(incoming: &mut Entity, known: &Entity) {
    if incoming.position().is_none() {
        incoming.lon = known.lon;
        incoming.lat = known.lat;
    }
    if incoming.unit.is_none() {
        incoming.unit = known.unit.clone();
        incoming.unit_name = known.unit_name.clone();
    }
    if incoming.name == incoming.id {
        incoming.name = known.name.clone();
    }
    if incoming.domain == Domain::Other {
        incoming.domain = known.domain;
    }
    // The status is the engine's to keep unless the source says something.
    if incoming.status == EntityStatus::Unknown {
        incoming.status = known.status;
    }
    for (k, v) in &known.attributes {
        incoming
            .attributes
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
}

/// A prepared batch: what to write, what to publish after, whom to answer.
#[derive(Default)]
struct Prepared {
    /// Its number, counted from 1 in the order batches are prepared (and committed).
    batch: u64,
    write: WriteBatch,
    publish: Publish,
    replies: Vec<Reply>,
    accepted: u64,
}

pub(crate) struct Pipeline {
    rx: mpsc::Receiver<Command>,
    writer: Arc<Writer>,
    /// Reads the hourly rollups the particulate windows do not hold.
    reader: Arc<Reader>,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
    rules: RuleSet,
    eval: Evaluator,
    alerts: AlertBook,
    /// Incidents, directives, silences, SOP templates.
    ops: Operations,
    reg: Registry,
    stats: Arc<PipelineStats>,
    sources: Arc<SourceRegistry>,
    escalation: crate::alerts::AlertsConfig,
    /// This node's name and hybrid clock: every change of an alert is an operation in the
    /// federation's log (see [`crate::sync`]), written with the change.
    node: Arc<str>,
    hlc: Arc<HlcClock>,
    /// Alerts made on other nodes: local id → federation id, and back.
    gids: HashMap<i64, Gid>,
    locals: HashMap<Gid, i64>,
    /// Directives issued on other nodes: local id → federation id, and back.
    directive_gids: HashMap<i64, Gid>,
    directive_locals: HashMap<Gid, i64>,
    /// Silences made on other nodes: local id → federation id, and back.
    silence_gids: HashMap<i64, Gid>,
    silence_locals: HashMap<Gid, i64>,
    /// Incidents opened on other nodes: local id → federation id, and back.
    incident_gids: HashMap<i64, Gid>,
    incident_locals: HashMap<Gid, i64>,
    /// Incidents of other nodes folded before one of their alerts arrived, by that alert:
    /// folded again when it does.
    incomplete: HashMap<Gid, std::collections::BTreeSet<(String, Gid)>>,
    /// Per origin, the operations held: everything up to this sequence.
    held: HashMap<String, u64>,
    /// See [`Federation::outbox`].
    outbox: bool,
    /// Operations in batches not committed yet (by batch number): a fold reads the store
    /// and these.
    uncommitted: std::collections::VecDeque<(u64, OpRecord)>,
    /// Plausible ranges of metrics: a reading outside is refused.
    ranges: plausible::Ranges,
    /// Entities whose particulate windows changed in the message being handled.
    aq_changed: Vec<i64>,
    /// The last batch prepared, and the last one committed.
    batches: u64,
    committed: u64,
    batch_max: usize,
    tick: Duration,
    stop: tokio_util::sync::CancellationToken,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        rx: mpsc::Receiver<Command>,
        writer: Arc<Writer>,
        reader: Arc<Reader>,
        hub: Arc<Hub>,
        clock: Arc<dyn Clock>,
        rules: RuleSet,
        loaded: LoadedState,
        stats: Arc<PipelineStats>,
        sources: Arc<SourceRegistry>,
        escalation: crate::alerts::AlertsConfig,
        federation: Federation,
        ranges: plausible::Ranges,
        ops: Operations,
        batch_max: usize,
        stop: tokio_util::sync::CancellationToken,
    ) -> Pipeline {
        let mut reg = Registry {
            next_entity: 1,
            next_series: 1,
            ..Default::default()
        };
        for u in &loaded.units {
            reg.units.insert(u.code.clone(), u.name.clone());
        }
        for (id, e) in loaded.entities {
            let ext: Arc<str> = Arc::from(e.id.as_str());
            reg.next_entity = reg.next_entity.max(id + 1);
            reg.by_ext.insert(ext.clone(), id);
            reg.recs.insert(
                id,
                EntityRec {
                    ext,
                    cel: entity_value(&e),
                    entity: e,
                    series: HashMap::new(),
                    particulates: None,
                    foreign: federation.foreign_entities.contains(&id),
                },
            );
        }
        for (sid, eid, metric) in loaded.series {
            reg.next_series = reg.next_series.max(sid + 1);
            if let Some(rec) = reg.recs.get_mut(&eid) {
                rec.series.insert(Arc::from(metric.as_str()), sid);
            }
        }
        let mut eval = Evaluator::new(&rules);
        for a in loaded.open_alerts.iter().filter(|a| a.active) {
            let (Some((idx, rule)), Some(&eid)) = (
                rules.by_name(&a.rule),
                a.entity.as_deref().and_then(|e| reg.by_ext.get(e)),
            ) else {
                continue;
            };
            let metric: Arc<str> = Arc::from(a.metric.as_deref().unwrap_or(""));
            if rule.no_data_ms > 0 {
                eval.nodata
                    .resume_firing(idx, eid, metric, to_ms(a.raised_at));
            } else {
                eval.timers
                    .resume_firing(idx, eid, metric, to_ms(a.raised_at));
            }
        }
        let mut alerts = AlertBook::new(loaded.open_alerts, loaded.next_alert_id);
        alerts.set_foreign(federation.gids.keys().copied());
        let mut ops = ops;
        ops.directives
            .set_remote(federation.directive_gids.keys().copied());
        ops.incidents
            .set_remote(federation.incident_gids.keys().copied());
        Pipeline {
            rx,
            writer,
            reader,
            hub,
            clock,
            rules,
            eval,
            alerts,
            ops,
            reg,
            stats,
            sources,
            escalation,
            node: federation.node,
            hlc: federation.hlc,
            locals: federation
                .gids
                .iter()
                .map(|(id, g)| (g.clone(), *id))
                .collect(),
            gids: federation.gids,
            directive_locals: federation
                .directive_gids
                .iter()
                .map(|(id, g)| (g.clone(), *id))
                .collect(),
            directive_gids: federation.directive_gids,
            silence_locals: federation
                .silence_gids
                .iter()
                .map(|(id, g)| (g.clone(), *id))
                .collect(),
            silence_gids: federation.silence_gids,
            incident_locals: federation
                .incident_gids
                .iter()
                .map(|(id, g)| (g.clone(), *id))
                .collect(),
            incident_gids: federation.incident_gids,
            incomplete: HashMap::new(),
            held: federation.held,
            outbox: federation.outbox,
            uncommitted: Default::default(),
            ranges,
            aq_changed: Vec::new(),
            batches: 0,
            committed: 0,
            batch_max,
            tick: Duration::from_secs(1),
            stop,
        }
    }

    pub(crate) async fn run(mut self) {
        type Done = (Result<WriteOutcome, oneshot::error::RecvError>, Prepared);
        let mut in_flight: FuturesOrdered<
            std::pin::Pin<Box<dyn std::future::Future<Output = Done> + Send>>,
        > = FuturesOrdered::new();
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        let mut stopping = false;
        while open || !in_flight.is_empty() {
            let prepared = tokio::select! {
                biased;
                Some((outcome, prepared)) = in_flight.next(), if !in_flight.is_empty() => {
                    self.complete(outcome, prepared);
                    continue;
                }
                cmd = self.rx.recv(), if open && in_flight.len() < MAX_IN_FLIGHT => {
                    match cmd {
                        Some(cmd) => self.prepare(cmd),
                        None => { open = false; continue; }
                    }
                }
                _ = tick.tick(), if open => self.on_tick(),
                _ = self.stop.cancelled(), if open && !stopping => {
                    // Take no more, but process what is already queued.
                    self.rx.close();
                    stopping = true;
                    continue;
                }
            };
            if prepared.write.is_empty() && prepared.publish.is_empty() {
                // Nothing to store (e.g. everything was rejected, or a tick with nothing
                // due): answer at once, but never ahead of a batch still being written, or
                // the caller would read a hub that lacks what it sent before.
                if in_flight.is_empty() {
                    self.complete(Ok(WriteOutcome::default()), prepared);
                } else {
                    in_flight.push_back(Box::pin(std::future::ready((
                        Ok(WriteOutcome::default()),
                        prepared,
                    ))));
                }
                continue;
            }
            let mut prepared = prepared;
            let write = std::mem::take(&mut prepared.write);
            match self.writer.submit(write).await {
                Ok(rx) => in_flight.push_back(Box::pin(async move { (rx.await, prepared) })),
                Err(e) => {
                    tracing::error!("pipeline: {e}; stopping");
                    break;
                }
            }
        }
        tracing::debug!("pipeline stopped");
    }

    /// Values dated before this are history (`[alerts] history_after` ago).
    fn history_before(&self) -> DateTime<Utc> {
        chrono::Duration::from_std(self.escalation.history_after)
            .ok()
            .and_then(|d| self.clock.now().checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn complete(
        &mut self,
        outcome: Result<WriteOutcome, oneshot::error::RecvError>,
        prepared: Prepared,
    ) {
        if outcome.is_err() {
            tracing::error!("store writer went away before committing a batch");
            return; // nobody is answered: the sources will retry or resend
        }
        // Batches complete in the order they were prepared.
        self.committed = self.committed.max(prepared.batch);
        while self
            .uncommitted
            .front()
            .is_some_and(|(b, _)| *b <= self.committed)
        {
            self.uncommitted.pop_front();
        }
        self.stats
            .accepted
            .fetch_add(prepared.accepted, Ordering::Relaxed);
        self.hub.publish(prepared.publish);
        for r in prepared.replies {
            match r {
                Reply::Ingest(tx, report) => {
                    let _ = tx.send(report);
                }
                Reply::Ack(tx, alert) => {
                    let _ = tx.send(Ok(*alert));
                }
                Reply::Op(tx, outcome) => {
                    let _ = tx.send(Ok(outcome));
                }
                Reply::Done(tx) => {
                    let _ = tx.send(());
                }
                Reply::Merged(tx, report) => {
                    let _ = tx.send(report);
                }
            }
        }
    }

    /// An empty batch with the next number.
    fn next_batch(&mut self) -> Prepared {
        self.batches += 1;
        let mut p = Prepared {
            batch: self.batches,
            ..Default::default()
        };
        p.write.outbox = self.outbox;
        p
    }

    /// Takes `first` and whatever else is already queued, up to `batch_max` items.
    fn prepare(&mut self, first: Command) -> Prepared {
        let mut p = self.next_batch();
        let mut count = self.handle(first, &mut p);
        while count < self.batch_max {
            match self.rx.try_recv() {
                Ok(cmd) => count += self.handle(cmd, &mut p),
                Err(_) => break,
            }
        }
        p
    }

    fn handle(&mut self, cmd: Command, p: &mut Prepared) -> usize {
        match cmd {
            Command::Tick(done) => {
                self.tick_into(p);
                p.replies.push(Reply::Done(done));
                1
            }
            Command::Merge { ops, upto, reply } => {
                let n = ops.len().max(1);
                let report = self.merge(ops, upto, p);
                p.replies.push(Reply::Merged(reply, report));
                n
            }
            Command::SetRules { rules, done } => {
                self.set_rules(*rules, p);
                p.replies.push(Reply::Done(done));
                1
            }
            Command::SetSops { sops, done } => {
                self.ops.sops = sops;
                p.replies.push(Reply::Done(done));
                1
            }
            Command::Operate { op, actor, reply } => {
                match self.operate(op, &actor, p) {
                    Ok(outcome) => p.replies.push(Reply::Op(reply, outcome)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
                1
            }
            Command::Ingest(ingest) => {
                let n = ingest.items.len();
                let mut report = IngestReport::default();
                let mut refused = refusals::Grouped::default();
                let mut signals = Vec::new();
                let history_before = self.history_before();
                for (index, item) in ingest.items.into_iter().enumerate() {
                    let history = matches!(&item, Item::Obs(o) if o.time < history_before);
                    let result = match item {
                        Item::Obs(o) => match ingest.max_age {
                            Some(age) if o.time < self.clock.now() - age => Err(format!(
                                "{}/{}: time {} is older than the source's max_age ({})",
                                o.entity,
                                o.metric,
                                o.time,
                                humantime::format_duration(age.to_std().unwrap_or_default())
                            )),
                            _ => self.observation(o, false, p, &mut signals),
                        },
                        Item::Entity(e) => self.entity(*e, &ingest.source, p),
                        Item::Unit(u) => self.unit(u, p),
                        Item::Alert(a) => self.external_alert(*a, p),
                        Item::Rejected(reason) => Err(reason),
                    };
                    match result {
                        Ok(()) => {
                            report.accepted += 1;
                            report.history += usize::from(history);
                        }
                        Err(reason) => {
                            let total = self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                            if total < 20 || total.is_multiple_of(1000) {
                                tracing::warn!(
                                    "rejected from source {:?}: {reason} ({} rejected so far)",
                                    ingest.source,
                                    total + 1
                                );
                            }
                            refused.add(&reason);
                            report.rejected.push(Rejection { index, reason });
                        }
                    }
                }
                for g in refused.into_groups() {
                    let mut row = DeadLetterRow::new(
                        &ingest.source,
                        to_ms(self.clock.now()),
                        ingest.origin.as_deref(),
                        &g.reason,
                        ingest.payload.as_deref(),
                    );
                    row.count = g.count as u64;
                    row.grouping = ingest
                        .grouping
                        .as_ref()
                        .map(|id| format!("{id}\u{1f}{}", g.cause));
                    row.samples = g.samples;
                    p.write.dead_letters.push(row);
                }
                if !report.rejected.is_empty() {
                    self.sources
                        .get_or_add(&ingest.source, "unknown")
                        .rejected(report.rejected.len() as u64);
                }
                self.flush_air_quality(p, &mut signals);
                for s in signals {
                    self.signal(s, p);
                }
                p.accepted += report.accepted as u64;
                if let Some(done) = ingest.done {
                    p.replies.push(Reply::Ingest(done, report));
                }
                n
            }
            Command::AlertAct {
                id,
                action,
                actor,
                comment,
                scope,
                reply,
            } => {
                if let (Some(units), Some(a)) = (&scope, self.alerts.get(id)) {
                    if !a.unit.as_ref().is_some_and(|u| units.contains(u)) {
                        let _ = reply.send(Err(AlertError::OutOfScope(id)));
                        return 1;
                    }
                }
                let auto_resolve = self.auto_resolve_of(id);
                let op = AlertOp::Acted {
                    action: action.clone(),
                    actor: actor.clone(),
                    comment: comment.clone(),
                    auto_resolve,
                };
                match self
                    .alerts
                    .act(id, &action, &actor, comment, self.clock.now(), auto_resolve)
                {
                    Ok(change) => {
                        let alert = change.alert.clone();
                        self.record(change, vec![op], p);
                        p.replies.push(Reply::Ack(reply, Box::new(alert)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
                1
            }
        }
    }

    /// Takes a reloaded rule set. Timers follow their rule by name; the active alerts of a
    /// rule that is gone (removed, disabled or no longer compiling) are cleared, since
    /// nothing would ever clear them otherwise.
    fn set_rules(&mut self, mut rules: RuleSet, p: &mut Prepared) {
        rules.tz = self.rules.tz;
        self.eval.reload(&self.rules, &rules);
        let gone: Vec<(String, String, bool)> = self
            .alerts
            .open_alerts()
            .filter(|a| a.active && a.external_id.is_none())
            .filter(|a| rules.by_name(&a.rule).is_none())
            .filter_map(|a| {
                let auto = self
                    .rules
                    .by_name(&a.rule)
                    .map(|(_, r)| r.config.auto_resolve)?;
                Some((a.rule.clone(), a.entity.clone()?, auto))
            })
            .collect();
        self.rules = rules;
        let now = self.clock.now();
        for (rule, entity, auto) in gone {
            if let Some(change) = self.alerts.clear(&rule, &entity, now, auto) {
                self.record(change, vec![AlertOp::Cleared { auto_resolve: auto }], p);
            }
        }
    }

    /// Whether acknowledging an alert whose condition has cleared resolves it: as its rule
    /// says; always for a received alert that expired or was withdrawn.
    fn auto_resolve_of(&self, alert_id: i64) -> bool {
        let Some(a) = self.alerts.get(alert_id) else {
            return false;
        };
        if a.external_id.is_some() {
            return true;
        }
        self.rules
            .by_name(&a.rule)
            .map(|(_, r)| r.config.auto_resolve)
            .unwrap_or(false)
    }

    fn unit(&mut self, u: Unit, p: &mut Prepared) -> Result<(), String> {
        if u.code.trim().is_empty() || u.name.trim().is_empty() {
            return Err("a unit needs a code and a name".into());
        }
        if self.reg.units.get(&u.code) != Some(&u.name) {
            self.reg.units.insert(u.code.clone(), u.name.clone());
        }
        p.write.units.push(u);
        Ok(())
    }

    fn entity(&mut self, mut e: Entity, source: &Arc<str>, p: &mut Prepared) -> Result<(), String> {
        if e.id.trim().is_empty() {
            return Err("entity without an id".into());
        }
        match (e.lon, e.lat) {
            (None, None) => {}
            (Some(lon), Some(lat))
                if lon.is_finite()
                    && lat.is_finite()
                    && lon.abs() <= 180.0
                    && lat.abs() <= 90.0 => {}
            (lon, lat) => {
                return Err(format!(
                    "entity {:?}: location {lon:?}, {lat:?} is not on Earth",
                    e.id
                ))
            }
        }
        if e.name.trim().is_empty() {
            e.name = e.id.clone();
        }
        if e.unit_name.is_none() {
            e.unit_name = e.unit.as_ref().and_then(|u| self.reg.units.get(u).cloned());
        }
        e.latest.clear();
        e.last_seen = None;
        // A camera's credentials written into its addresses are kept apart, write-only:
        // anyone who may see the camera reads its attributes.
        if let Some(creds) = crate::video::take_credentials(&mut e.attributes) {
            let now = self.clock.now().timestamp_millis();
            p.write
                .camera_credentials
                .push((e.id.clone(), Some(creds), now));
        }
        let foreign = source.starts_with(crate::sync::NODE_SOURCE);
        let id = match self.reg.by_ext.get(e.id.as_str()) {
            Some(&id) => {
                let rec = self.reg.recs.get_mut(&id).expect("registry consistent");
                merge_known(&mut e, &rec.entity);
                rec.foreign |= foreign;
                if rec.entity == e {
                    return Ok(()); // nothing new
                }
                rec.cel = entity_value(&e);
                rec.entity = e.clone();
                id
            }
            None => {
                let id = self.reg.next_entity;
                self.reg.next_entity += 1;
                let ext: Arc<str> = Arc::from(e.id.as_str());
                self.reg.by_ext.insert(ext.clone(), id);
                self.reg.recs.insert(
                    id,
                    EntityRec {
                        ext,
                        cel: entity_value(&e),
                        entity: e.clone(),
                        series: HashMap::new(),
                        particulates: None,
                        foreign,
                    },
                );
                id
            }
        };
        p.write.entities.push(EntityRow {
            id,
            entity: e.clone(),
            source: Some(source.to_string()),
            updated_at: to_ms(self.clock.now()),
        });
        p.publish.entities.push(e);
        Ok(())
    }

    /// `derived`: a value the engine computed (see [`ObsRow::restates`]).
    fn observation(
        &mut self,
        o: Obs,
        derived: bool,
        p: &mut Prepared,
        signals: &mut Vec<Signal>,
    ) -> Result<(), String> {
        if !o.value.is_finite() {
            return Err(format!(
                "{}/{}: value is not a finite number",
                o.entity, o.metric
            ));
        }
        if o.metric.is_empty() {
            return Err(format!("{}: observation without a metric", o.entity));
        }
        if let Err(why) = self.ranges.check(&o.metric, o.value) {
            return Err(format!("{}: {why}", o.entity));
        }
        if o.time > self.clock.now() + MAX_FUTURE {
            return Err(format!(
                "{}/{}: time {} is in the future",
                o.entity, o.metric, o.time
            ));
        }
        let Some(&eid) = self.reg.by_ext.get(&*o.entity) else {
            return Err(format!("unknown entity {:?}", o.entity));
        };
        // History (an import, a backfill, an OC catching up) is stored and shown but not
        // evaluated by the live rules: it must not page anyone as if it were happening now,
        // nor move the live rules' windows and timers back in time.
        let live = o.time >= self.history_before();
        let rec = self.reg.recs.get_mut(&eid).expect("registry consistent");
        let series = match rec.series.get(&*o.metric) {
            Some(&s) => s,
            None => {
                let s = self.reg.next_series;
                self.reg.next_series += 1;
                rec.series.insert(o.metric.clone(), s);
                p.write.series.push((s, eid, o.metric.to_string()));
                s
            }
        };
        let ts = to_ms(o.time);
        p.write.observations.push(ObsRow {
            series,
            ts,
            value: o.value,
            restates: derived,
        });
        p.publish
            .values
            .push((rec.ext.clone(), o.metric.clone(), o.time, o.value));

        // Device status: cameras and devices report `online`; anything reporting is alive.
        // History says nothing of now: a month-old `online = 0` leaves the status as it is.
        let status = if !live {
            rec.entity.status
        } else if &*o.metric == "online" {
            if o.value >= 0.5 {
                EntityStatus::Online
            } else {
                EntityStatus::Offline
            }
        } else if rec.entity.status == EntityStatus::Unknown {
            EntityStatus::Online
        } else {
            rec.entity.status
        };
        if status != rec.entity.status {
            rec.entity.status = status;
            rec.cel = entity_value(&rec.entity);
            p.write.entities.push(EntityRow {
                id: eid,
                entity: rec.entity.clone(),
                source: None,
                updated_at: ts,
            });
            p.publish.entities.push(rec.entity.clone());
        }

        let stats = &self.stats;
        if live && !rec.foreign {
            self.eval.observe(
                &self.rules,
                &Observed {
                    entity_id: eid,
                    entity: &rec.entity,
                    cel: &rec.cel,
                    metric: &o.metric,
                    value: o.value,
                    time: o.time,
                },
                signals,
                |rule, e| {
                    stats.rule_errors.fetch_add(1, Ordering::Relaxed);
                    let name = rule.name().to_string();
                    let mut msgs = stats.rule_error_messages.lock().unwrap();
                    if !msgs.contains_key(&name) {
                        tracing::warn!("rule {name:?} failed on {}: {e}", o.entity);
                    }
                    msgs.insert(name, format!("{}: {e}", o.entity));
                },
            );
        }
        let pollutant = match &*o.metric {
            "pm25" => Some(Pollutant::Pm25),
            "pm10" => Some(Pollutant::Pm10),
            _ => None,
        };
        if let Some(pollutant) = pollutant {
            let series = [rec.series.get("pm25"), rec.series.get("pm10")].map(|s| s.copied());
            let reader = &self.reader;
            let mut load = |p: Pollutant, from: i64, to: i64| {
                stored_hours(reader, series[p as usize], from, to)
            };
            let pm = rec.particulates.get_or_insert_with(Default::default);
            if pm.unchanged() {
                self.aq_changed.push(eid);
            }
            pm.push(pollutant, ts, o.value, p.batch, &mut load);
        }
        Ok(())
    }

    /// Derived air-quality values (NowCast, US AQI, VN_AQI) of the stations whose
    /// particulates changed in a message, for every hour it changed, computed once the whole
    /// message is in (a backfill may come newest first).
    fn flush_air_quality(&mut self, p: &mut Prepared, signals: &mut Vec<Signal>) {
        for eid in std::mem::take(&mut self.aq_changed) {
            let Some(rec) = self.reg.recs.get_mut(&eid) else {
                continue;
            };
            let Some(pm) = rec.particulates.as_mut() else {
                continue;
            };
            let series = [rec.series.get("pm25"), rec.series.get("pm10")].map(|s| s.copied());
            let reader = &self.reader;
            let mut load = |p: Pollutant, from: i64, to: i64| {
                stored_hours(reader, series[p as usize], from, to)
            };
            let derived = pm.derive(self.committed, &mut load);
            let entity = rec.ext.clone();
            for (ts, metric, value) in derived {
                let o = Obs {
                    entity: entity.clone(),
                    metric: Arc::from(metric),
                    time: from_ms(ts),
                    value,
                };
                if let Err(e) = self.observation(o, true, p, signals) {
                    tracing::warn!("a derived air-quality value was refused: {e}");
                }
            }
        }
    }

    fn external_alert(&mut self, a: ExternalAlert, p: &mut Prepared) -> Result<(), String> {
        if a.key.trim().is_empty() {
            return Err("an alert without an identifier".into());
        }
        if a.sent > self.clock.now() + MAX_FUTURE {
            return Err(format!(
                "alert {:?}: sent {} is in the future",
                a.key, a.sent
            ));
        }
        if let Some(change) = self.alerts.external(&a, self.clock.now()) {
            if let Some(raw) = &a.raw {
                p.write
                    .alert_raw
                    .push((change.alert.id, "cap", raw.clone()));
            }
            let new = operate::is_new_alert(&change.events).then_some(change.alert.id);
            let op = match new {
                Some(_) => AlertOp::Opened {
                    alert: Box::new(change.alert.clone()),
                },
                None => AlertOp::Issued {
                    alert: Box::new(a.clone()),
                },
            };
            self.record(change, vec![op], p);
            if let Some(id) = new {
                self.after_raise(id, None, p);
            }
        }
        Ok(())
    }

    /// The federation id of an alert of the book.
    fn gid_of(&self, id: i64) -> Gid {
        self.gids
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Gid::new(&self.node, id))
    }

    /// Writes a change of an alert, with the operations that made it (for the federation's
    /// log), and publishes it after the commit. Its events are marked with this node.
    fn record(
        &mut self,
        mut change: crate::alerts::AlertChange,
        ops: Vec<AlertOp>,
        p: &mut Prepared,
    ) {
        let id = change.alert.id;
        for ev in &mut change.events {
            ev.node = Some(self.node.to_string());
        }
        let gid = self.gid_of(id);
        // The time the book applied the change at, so that every node dates it the same.
        let at = change.events.first().map(|e| e.at);
        for op in ops {
            let op = match op {
                // The alert as it opened, with the events that opened it.
                AlertOp::Opened { .. } => {
                    let mut a = change.alert.clone();
                    a.events = change.events.clone();
                    AlertOp::Opened { alert: Box::new(a) }
                }
                op => op,
            };
            let r = OpRecord {
                origin: self.node.to_string(),
                seq: 0,
                hlc: self.hlc.now(),
                change: Change::Alert {
                    alert: gid.clone(),
                    op,
                    at,
                },
            };
            self.uncommitted.push_back((p.batch, r.clone()));
            p.write.oplog.push(r);
        }
        for ev in change.events {
            // Every change of an alert is in the audit log too, chained.
            let kind = crate::store::event_kind_name(ev.kind);
            p.write.audit.push(crate::audit::AuditEntry {
                at: to_ms(ev.at),
                actor: ev.actor.clone(),
                action: format!("alert.{kind}"),
                target: format!("alert:{id}"),
                before: ev.from.map(|s| serde_json::json!({ "state": s.as_str() })),
                after: Some(serde_json::json!({
                    "state": ev.to.unwrap_or(change.alert.state).as_str(),
                    "severity": change.alert.severity.as_str(),
                    "assignee": change.alert.assignee,
                    "comment": ev.comment,
                    "value": ev.value,
                })),
            });
            p.write.alert_events.push((id, ev));
        }
        p.write.alerts.push(change.alert.clone());
        p.publish.alerts.push(change.alert);
    }

    fn on_tick(&mut self) -> Prepared {
        let mut p = self.next_batch();
        self.tick_into(&mut p);
        p
    }

    /// The time-driven work: expiries, escalations, shelving, `for` durations, no-data.
    fn tick_into(&mut self, p: &mut Prepared) {
        let now = self.clock.now();
        for change in self.alerts.expire(now) {
            self.record(change, vec![AlertOp::Expired], p);
        }
        let (rules, cfg) = (&self.rules, &self.escalation);
        let escalation = |a: &Alert| {
            let after = rules
                .by_name(&a.rule)
                .and_then(|(_, r)| r.config.escalate_after)
                .unwrap_or(cfg.escalate_after);
            (cfg.escalate_max > 0 && !after.is_zero()).then(|| crate::alerts::Escalation {
                after: chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX),
                max: cfg.escalate_max,
            })
        };
        for change in self.alerts.due(now, &escalation) {
            let op = match change.events.first().map(|e| e.kind) {
                Some(ioc_model::AlertEventKind::Escalated) => AlertOp::Escalated,
                _ => AlertOp::Acted {
                    action: AlertAction::Unshelve,
                    actor: crate::alerts::SYSTEM.into(),
                    comment: Some(crate::alerts::UNSHELVED.into()),
                    auto_resolve: false,
                },
            };
            self.record(change, vec![op], p);
        }
        for s in self.eval.tick(&self.rules, to_ms(now)) {
            self.signal(s, p);
        }
        self.tick_operations(now, p);
    }

    fn signal(&mut self, s: Signal, p: &mut Prepared) {
        let raised_by = match &s {
            Signal::Raise { rule, .. } => Some(*rule),
            Signal::Clear { .. } => None,
        };
        let mut cleared = None;
        let change = match s {
            Signal::Raise {
                rule,
                entity,
                metric,
                value,
                at,
            } => {
                let Some(rec) = self.reg.recs.get(&entity) else {
                    return;
                };
                let r = self.rules.get(rule);
                self.alerts.raise(
                    &rec.entity,
                    RaiseSpec {
                        rule: r.name(),
                        category: &r.category,
                        severity: r.severity_for(value),
                        domain: r.config.domain,
                        message: render_message(&r.config.message, &rec.entity, &metric, value),
                        metric: &metric,
                        value,
                        at: from_ms(at),
                    },
                )
            }
            Signal::Clear { rule, entity, at } => {
                let Some(rec) = self.reg.recs.get(&entity) else {
                    return;
                };
                let r = self.rules.get(rule);
                cleared = Some(r.config.auto_resolve);
                self.alerts
                    .clear(r.name(), &rec.entity.id, from_ms(at), r.config.auto_resolve)
            }
        };
        if let Some(change) = change {
            let new = operate::is_new_alert(&change.events).then_some(change.alert.id);
            let op = match (new, cleared) {
                (Some(_), _) => AlertOp::Opened {
                    alert: Box::new(change.alert.clone()),
                },
                (None, Some(auto_resolve)) => AlertOp::Cleared { auto_resolve },
                (None, None) => AlertOp::Reactivated {
                    value: change.alert.value.unwrap_or_default(),
                    message: change.alert.message.clone(),
                },
            };
            self.record(change, vec![op], p);
            if let (Some(id), Some(rule)) = (new, raised_by) {
                self.after_raise(id, Some(rule), p);
            }
        }
    }
}
