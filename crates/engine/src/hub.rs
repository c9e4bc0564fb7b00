//! The hub: the current state every screen shows (entities with their latest values, open
//! alerts), a sequence number, and a bounded log of what changed at each number. A client that
//! reconnects with the last number it saw gets only what changed since, coalesced; one that
//! fell too far behind (or saw another run of the server) gets a fresh snapshot.

use crate::clock::Clock;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ioc_model::{
    Alert, Directive, Entity, Incident, KpiValue, Reading, ServerMsg, Silence, ValueUpdate,
};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A new value: entity id, metric, time, value.
pub type Value = (Arc<str>, Arc<str>, DateTime<Utc>, f64);

/// What the pipeline hands the hub after a commit.
#[derive(Default, Debug)]
pub struct Publish {
    /// Entities added or changed (their `latest` is ignored: the hub keeps its own).
    pub entities: Vec<Entity>,
    pub values: Vec<Value>,
    pub alerts: Vec<Alert>,
    pub incidents: Vec<Incident>,
    pub directives: Vec<Directive>,
    pub silences: Vec<Silence>,
}

impl Publish {
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
            && self.values.is_empty()
            && self.alerts.is_empty()
            && self.incidents.is_empty()
            && self.directives.is_empty()
            && self.silences.is_empty()
    }
}

#[derive(Debug, Clone)]
enum Change {
    Entity(Arc<str>),
    Value(Arc<str>, Arc<str>),
    Alert(Arc<Alert>),
    Incident(Arc<Incident>),
    Directive(Arc<Directive>),
    Silence(Arc<Silence>),
    Kpis,
    Link,
}

struct State {
    seq: u64,
    entities: HashMap<Arc<str>, Entity>,
    alerts: HashMap<i64, Alert>,
    /// Not closed.
    incidents: HashMap<i64, Incident>,
    /// Open.
    directives: HashMap<i64, Directive>,
    /// Not over.
    silences: HashMap<i64, Silence>,
    /// Current values, as last computed.
    kpis: Arc<Vec<KpiValue>>,
    /// The link to the provincial IOC, on a node that has one.
    link: Option<Arc<ioc_model::UpstreamLink>>,
    log: VecDeque<(u64, Change)>,
    /// Every entity as a snapshot without values carries it, by id (see [`LeanEntity`]):
    /// made when an entity changes, so a console's snapshot of a province is a copy of
    /// these, not 100,000 entities cloned and serialized while the page waits.
    lean: BTreeMap<Arc<str>, (Option<Arc<str>>, Bytes)>,
}

/// One entity of a snapshot without values: its JSON without `latest`, `last_seen` and the
/// closing brace (made when the entity changes), its unit, and its `last_seen` now (the one
/// thing of it that its values change).
#[derive(Clone, Debug)]
pub struct LeanEntity {
    pub unit: Option<Arc<str>>,
    json: Bytes,
    pub last_seen: Option<DateTime<Utc>>,
}

/// A snapshot without values: the message with no entities, and the entities in id order.
#[derive(Debug)]
pub struct LeanSnapshot {
    pub msg: ServerMsg,
    pub entities: Vec<LeanEntity>,
}

impl LeanSnapshot {
    /// The snapshot's JSON, with the entities `keep` keeps (by unit), as
    /// [`ServerMsg::Snapshot`] with every entity's `latest` empty would be.
    pub fn encode(&self, keep: impl Fn(Option<&str>) -> bool) -> Vec<u8> {
        let head = serde_json::to_vec(&self.msg).expect("messages serialize");
        const EMPTY: &[u8] = br#""entities":[]"#;
        let at = head
            .windows(EMPTY.len())
            .position(|w| w == EMPTY)
            .expect("a snapshot names its entities")
            + EMPTY.len()
            - 1;
        let size: usize = self.entities.iter().map(|e| e.json.len() + 48).sum();
        let mut out = Vec::with_capacity(head.len() + size);
        out.extend_from_slice(&head[..at]);
        let mut first = true;
        for e in self.entities.iter().filter(|e| keep(e.unit.as_deref())) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&e.json);
            if let Some(t) = e.last_seen {
                out.extend_from_slice(br#","last_seen":"#);
                serde_json::to_writer(&mut out, &t).expect("times serialize");
            }
            out.push(b'}');
        }
        out.extend_from_slice(&head[at..]);
        out
    }
}

/// `e` as a [`LeanEntity`] holds it (its values are set aside while it is serialized, not
/// copied: this runs for every device at start-up).
fn lean_json(e: &mut Entity) -> (Option<Arc<str>>, Bytes) {
    let latest = std::mem::take(&mut e.latest);
    let last_seen = e.last_seen.take();
    let mut json = serde_json::to_vec(&*e).expect("entities serialize");
    e.latest = latest;
    e.last_seen = last_seen;
    assert_eq!(json.pop(), Some(b'}'), "an entity is a JSON object");
    (e.unit.as_deref().map(Arc::from), Bytes::from(json))
}

/// Result of [`Hub::since`].
#[derive(Debug)]
pub enum Catchup {
    UpToDate,
    Delta(ServerMsg),
    Snapshot(ServerMsg),
    LeanSnapshot(LeanSnapshot),
}

pub struct Hub {
    state: Mutex<State>,
    seq_tx: watch::Sender<u64>,
    config: HubConfig,
    clock: Arc<dyn Clock>,
    epoch: String,
}

impl Hub {
    pub fn new(config: HubConfig, clock: Arc<dyn Clock>) -> Hub {
        let epoch = format!(
            "{:x}-{:x}",
            clock.now().timestamp_millis(),
            rand::random::<u32>()
        );
        Hub {
            state: Mutex::new(State {
                seq: 0,
                entities: HashMap::new(),
                alerts: HashMap::new(),
                incidents: HashMap::new(),
                directives: HashMap::new(),
                silences: HashMap::new(),
                kpis: Arc::new(Vec::new()),
                link: None,
                log: VecDeque::new(),
                lean: BTreeMap::new(),
            }),
            seq_tx: watch::channel(0).0,
            config,
            clock,
            epoch,
        }
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Sets the state the engine starts from (no log entries: clients get a snapshot anyway).
    pub fn load(&self, entities: Vec<Entity>, alerts: Vec<Alert>) {
        let mut st = self.state.lock().unwrap();
        for mut e in entities {
            let id: Arc<str> = Arc::from(e.id.as_str());
            st.lean.insert(id.clone(), lean_json(&mut e));
            st.entities.insert(id, e);
        }
        for a in alerts.into_iter().filter(|a| a.state.is_open()) {
            st.alerts.insert(a.id, a);
        }
    }

    /// Sets the operations the engine starts from: incidents in view, open directives,
    /// silences not over.
    pub fn load_operations(
        &self,
        incidents: Vec<Incident>,
        directives: Vec<Directive>,
        silences: Vec<Silence>,
    ) {
        let mut st = self.state.lock().unwrap();
        let now = self.clock.now();
        for i in incidents.into_iter().filter(Incident::in_view) {
            st.incidents.insert(i.id, i);
        }
        for d in directives.into_iter().filter(|d| d.state.is_open()) {
            st.directives.insert(d.id, d);
        }
        for s in silences.into_iter().filter(|s| s.current_at(now)) {
            st.silences.insert(s.id, s);
        }
    }

    /// Applies what a committed batch changed and wakes the clients.
    pub fn publish(&self, p: Publish) {
        if p.is_empty() {
            return;
        }
        let seq = {
            let mut st = self.state.lock().unwrap();
            let st = &mut *st;
            for mut e in p.entities {
                let id: Arc<str> = Arc::from(e.id.as_str());
                if let Some(old) = st.entities.remove(&id) {
                    e.latest = old.latest;
                    e.last_seen = old.last_seen.max(e.last_seen);
                }
                st.lean.insert(id.clone(), lean_json(&mut e));
                st.entities.insert(id.clone(), e);
                st.seq += 1;
                st.log.push_back((st.seq, Change::Entity(id)));
            }
            for (entity, metric, time, value) in p.values {
                let Some(e) = st.entities.get_mut(&entity) else {
                    continue;
                };
                if e.last_seen.is_none_or(|t| t < time) {
                    e.last_seen = Some(time);
                }
                match e.latest.get_mut(&*metric) {
                    Some(r) if r.time > time => continue, // late data: history only
                    Some(r) => *r = Reading { value, time },
                    None => {
                        e.latest.insert(metric.to_string(), Reading { value, time });
                    }
                }
                st.seq += 1;
                st.log.push_back((st.seq, Change::Value(entity, metric)));
            }
            for a in p.alerts {
                if a.state.is_open() {
                    st.alerts.insert(a.id, a.clone());
                } else {
                    st.alerts.remove(&a.id);
                }
                st.seq += 1;
                st.log.push_back((st.seq, Change::Alert(Arc::new(a))));
            }
            for i in p.incidents {
                if i.in_view() {
                    st.incidents.insert(i.id, i.clone());
                } else {
                    st.incidents.remove(&i.id);
                }
                st.seq += 1;
                st.log.push_back((st.seq, Change::Incident(Arc::new(i))));
            }
            for d in p.directives {
                if d.state.is_open() {
                    st.directives.insert(d.id, d.clone());
                } else {
                    st.directives.remove(&d.id);
                }
                st.seq += 1;
                st.log.push_back((st.seq, Change::Directive(Arc::new(d))));
            }
            let now = self.clock.now();
            for s in p.silences {
                if s.current_at(now) {
                    st.silences.insert(s.id, s.clone());
                } else {
                    st.silences.remove(&s.id);
                }
                st.seq += 1;
                st.log.push_back((st.seq, Change::Silence(Arc::new(s))));
            }
            while st.log.len() > self.config.log_capacity {
                st.log.pop_front();
            }
            st.seq
        };
        self.seq_tx.send_replace(seq);
    }

    /// Replaces the current KPI values (computed again every `[kpi_settings] refresh`) and
    /// wakes the clients.
    pub fn publish_kpis(&self, kpis: Vec<KpiValue>) {
        let seq = {
            let mut st = self.state.lock().unwrap();
            if *st.kpis == kpis {
                return;
            }
            st.kpis = Arc::new(kpis);
            st.seq += 1;
            let seq = st.seq;
            st.log.push_back((seq, Change::Kpis));
            while st.log.len() > self.config.log_capacity {
                st.log.pop_front();
            }
            seq
        };
        self.seq_tx.send_replace(seq);
    }

    /// The link to the IOC changed: every screen is told at once.
    pub fn publish_link(&self, link: ioc_model::UpstreamLink) {
        let seq = {
            let mut st = self.state.lock().unwrap();
            st.link = Some(Arc::new(link));
            st.seq += 1;
            let seq = st.seq;
            st.log.push_back((seq, Change::Link));
            while st.log.len() > self.config.log_capacity {
                st.log.pop_front();
            }
            seq
        };
        self.seq_tx.send_replace(seq);
    }

    fn link(&self) -> Option<ioc_model::UpstreamLink> {
        self.state.lock().unwrap().link.as_deref().cloned()
    }

    /// The current KPI values.
    pub fn kpis(&self) -> Vec<KpiValue> {
        self.state.lock().unwrap().kpis.as_ref().clone()
    }

    /// Notified with the new sequence number after every publish.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.seq_tx.subscribe()
    }

    pub fn seq(&self) -> u64 {
        self.state.lock().unwrap().seq
    }

    /// Everything, for a client that has nothing.
    pub fn snapshot(&self) -> ServerMsg {
        let st = self.state.lock().unwrap();
        let mut entities: Vec<Entity> = st.entities.values().cloned().collect();
        let mut msg = self.snapshot_without_entities(st);
        entities.sort_by(|a, b| a.id.cmp(&b.id));
        if let ServerMsg::Snapshot { entities: e, .. } = &mut msg {
            *e = entities;
        }
        msg
    }

    /// Everything but the entities' values, for a client that has nothing and takes no
    /// values (a console).
    pub fn lean_snapshot(&self) -> LeanSnapshot {
        let st = self.state.lock().unwrap();
        let entities: Vec<LeanEntity> = st
            .lean
            .iter()
            .map(|(id, (unit, json))| LeanEntity {
                unit: unit.clone(),
                json: json.clone(),
                last_seen: st.entities.get(id).and_then(|e| e.last_seen),
            })
            .collect();
        LeanSnapshot {
            msg: self.snapshot_without_entities(st),
            entities,
        }
    }

    /// A snapshot with no entities (the lock is let go before sorting).
    fn snapshot_without_entities(&self, st: std::sync::MutexGuard<'_, State>) -> ServerMsg {
        let mut alerts: Vec<Alert> = st.alerts.values().cloned().collect();
        let mut incidents: Vec<Incident> = st.incidents.values().cloned().collect();
        let mut directives: Vec<Directive> = st.directives.values().cloned().collect();
        let mut silences: Vec<Silence> = st.silences.values().cloned().collect();
        let seq = st.seq;
        drop(st);
        alerts.sort_by(Alert::queue_cmp);
        incidents.sort_by(Incident::list_cmp);
        directives.sort_by(Directive::list_cmp);
        silences.sort_by_key(|s| s.id);
        let kpis = self.kpis();
        ServerMsg::Snapshot {
            epoch: self.epoch.clone(),
            seq,
            time: self.clock.now(),
            entities: Vec::new(),
            alerts,
            incidents,
            directives,
            silences,
            kpis,
            link: self.link(),
        }
    }

    /// What a client that has seen everything up to `seq` of run `epoch` needs next.
    pub fn since(&self, epoch: Option<&str>, seq: u64) -> Catchup {
        self.since_with(epoch, seq, false)
    }

    /// [`Hub::since`]; a client that takes no values (`lean`) gets a [`LeanSnapshot`] when it
    /// needs a snapshot.
    pub fn since_with(&self, epoch: Option<&str>, seq: u64, lean: bool) -> Catchup {
        let snapshot = || {
            if lean {
                Catchup::LeanSnapshot(self.lean_snapshot())
            } else {
                Catchup::Snapshot(self.snapshot())
            }
        };
        if epoch != Some(self.epoch.as_str()) {
            return snapshot();
        }
        let st = self.state.lock().unwrap();
        if seq == st.seq {
            return Catchup::UpToDate;
        }
        let oldest = st.log.front().map(|(s, _)| *s).unwrap_or(st.seq + 1);
        if seq > st.seq || seq + 1 < oldest {
            drop(st);
            return snapshot();
        }
        let start = st.log.partition_point(|(s, _)| *s <= seq);
        let mut entity_ids: Vec<Arc<str>> = Vec::new();
        let mut seen_entities = HashSet::new();
        let mut values: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        let mut seen_values = HashSet::new();
        let mut alerts: HashMap<i64, Arc<Alert>> = HashMap::new();
        let mut incidents: HashMap<i64, Arc<Incident>> = HashMap::new();
        let mut directives: HashMap<i64, Arc<Directive>> = HashMap::new();
        let mut silences: HashMap<i64, Arc<Silence>> = HashMap::new();
        let mut kpis_changed = false;
        let mut link_changed = false;
        for (_, change) in st.log.range(start..) {
            match change {
                Change::Entity(id) => {
                    if seen_entities.insert(id.clone()) {
                        entity_ids.push(id.clone());
                    }
                }
                Change::Value(e, m) => {
                    if seen_values.insert((e.clone(), m.clone())) {
                        values.push((e.clone(), m.clone()));
                    }
                }
                Change::Alert(a) => {
                    alerts.insert(a.id, a.clone());
                }
                Change::Incident(i) => {
                    incidents.insert(i.id, i.clone());
                }
                Change::Directive(d) => {
                    directives.insert(d.id, d.clone());
                }
                Change::Silence(s) => {
                    silences.insert(s.id, s.clone());
                }
                Change::Kpis => kpis_changed = true,
                Change::Link => link_changed = true,
            }
        }
        let entities: Vec<Entity> = entity_ids
            .iter()
            .filter_map(|id| st.entities.get(id).cloned())
            .collect();
        let values: Vec<ValueUpdate> = values
            .into_iter()
            .filter(|(e, _)| !seen_entities.contains(e))
            .filter_map(|(e, m)| {
                let r = st.entities.get(&e)?.latest.get(&*m)?;
                Some(ValueUpdate {
                    entity: e.to_string(),
                    metric: m.to_string(),
                    time: r.time,
                    value: r.value,
                })
            })
            .collect();
        let last = st.seq;
        let kpis = if kpis_changed {
            st.kpis.as_ref().clone()
        } else {
            Vec::new()
        };
        let link = st.link.as_deref().filter(|_| link_changed).cloned();
        drop(st);
        let mut alerts: Vec<Alert> = alerts.into_values().map(Arc::unwrap_or_clone).collect();
        alerts.sort_by_key(|a| a.id);
        fn sorted<T: Clone>(m: HashMap<i64, Arc<T>>) -> Vec<T> {
            let mut v: Vec<(i64, Arc<T>)> = m.into_iter().collect();
            v.sort_by_key(|(id, _)| *id);
            v.into_iter()
                .map(|(_, x)| Arc::unwrap_or_clone(x))
                .collect()
        }
        Catchup::Delta(ServerMsg::Delta {
            from: seq + 1,
            seq: last,
            time: self.clock.now(),
            entities,
            values,
            alerts,
            incidents: sorted(incidents),
            directives: sorted(directives),
            silences: sorted(silences),
            kpis,
            link,
        })
    }

    pub fn entities(&self) -> Vec<Entity> {
        let mut v: Vec<Entity> = self
            .state
            .lock()
            .unwrap()
            .entities
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The entities that have attribute `key` (the cameras with a stream, say).
    pub fn entities_with(&self, key: &str) -> Vec<Entity> {
        let st = self.state.lock().unwrap();
        st.entities
            .values()
            .filter(|e| e.attributes.contains_key(key))
            .cloned()
            .collect()
    }

    pub fn entity(&self, id: &str) -> Option<Entity> {
        self.state.lock().unwrap().entities.get(id).cloned()
    }

    /// Calls `f` with each of `ids` the hub knows, under its lock (so without copying a
    /// device): how a feed reads the few devices a client watches, every frame.
    pub fn with_entities<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
        mut f: impl FnMut(&Entity),
    ) {
        let st = self.state.lock().unwrap();
        for id in ids {
            if let Some(e) = st.entities.get(id) {
                f(e);
            }
        }
    }

    /// The unit of a known entity (`Some(None)`: it has none), without copying it.
    pub fn entity_unit(&self, id: &str) -> Option<Option<String>> {
        self.state
            .lock()
            .unwrap()
            .entities
            .get(id)
            .map(|e| e.unit.clone())
    }

    /// Open alerts in queue order.
    pub fn open_alerts(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self
            .state
            .lock()
            .unwrap()
            .alerts
            .values()
            .cloned()
            .collect();
        v.sort_by(Alert::queue_cmp);
        v
    }

    /// Incidents not closed, in list order.
    pub fn incidents(&self) -> Vec<Incident> {
        let mut v: Vec<Incident> = self
            .state
            .lock()
            .unwrap()
            .incidents
            .values()
            .cloned()
            .collect();
        v.sort_by(Incident::list_cmp);
        v
    }

    pub fn incident(&self, id: i64) -> Option<Incident> {
        self.state.lock().unwrap().incidents.get(&id).cloned()
    }

    /// Open directives, soonest deadline first.
    pub fn directives(&self) -> Vec<Directive> {
        let mut v: Vec<Directive> = self
            .state
            .lock()
            .unwrap()
            .directives
            .values()
            .cloned()
            .collect();
        v.sort_by(Directive::list_cmp);
        v
    }

    /// Silences not over, oldest first.
    pub fn silences(&self) -> Vec<Silence> {
        let mut v: Vec<Silence> = self
            .state
            .lock()
            .unwrap()
            .silences
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|s| s.id);
        v
    }

    pub fn counts(&self) -> (usize, usize) {
        let st = self.state.lock().unwrap();
        (st.entities.len(), st.alerts.len())
    }
}

/// `[hub]`: what the live feed keeps and how often it sends.
#[derive(serde::Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// Changes kept for clients that reconnect; older ones get a snapshot instead.
    pub log_capacity: usize,
    /// Shortest time between two frames to one client (coalescing window).
    #[serde(with = "humantime_serde")]
    pub frame_interval: std::time::Duration,
    /// A heartbeat is sent after this long without changes.
    #[serde(with = "humantime_serde")]
    pub heartbeat: std::time::Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            log_capacity: 200_000,
            frame_interval: std::time::Duration::from_millis(100),
            heartbeat: std::time::Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use ioc_model::{AlertState, Domain, Severity};

    /// The link to the IOC is in the snapshot, and in a delta only when it changed in it.
    #[test]
    fn the_link_goes_to_every_screen_when_it_changes() {
        let h = hub(100);
        let link = |state| ioc_model::UpstreamLink {
            state,
            backlog: 3,
            data_backlog: 0,
            since: chrono::Utc::now(),
            url: "http://ioc".into(),
            error: None,
            last_sync: None,
        };
        let ServerMsg::Snapshot { link: none, .. } = h.snapshot() else {
            panic!("a snapshot")
        };
        assert_eq!(none, None, "no upstream: no link");
        let before = h.seq();
        h.publish_link(link(ioc_model::LinkState::Offline));
        let Catchup::Delta(ServerMsg::Delta { link: Some(l), .. }) =
            h.since(Some(&h.epoch), before)
        else {
            panic!("a delta with the link")
        };
        assert_eq!(l.state, ioc_model::LinkState::Offline);
        let after = h.seq();
        h.publish_kpis(Vec::new());
        h.publish_kpis(vec![]);
        let ServerMsg::Snapshot { link: Some(l), .. } = h.snapshot() else {
            panic!("a snapshot with the link")
        };
        assert_eq!(l.backlog, 3);
        assert!(matches!(h.since(Some(&h.epoch), after), Catchup::UpToDate));
    }

    /// A console's snapshot, made from each entity's JSON kept in the hub, is the full
    /// snapshot without values: same entities in the same order, same fields, `last_seen`
    /// as it is now (not as it was when the entity last changed), scoped by unit.
    #[test]
    fn a_lean_snapshot_is_the_snapshot_without_values() {
        let h = hub(100);
        let t = Utc::now() - chrono::Duration::minutes(1);
        h.load(
            vec![
                entity("b")
                    .in_unit("u1", "Phường Một")
                    .with_attr("alarm_1", 5.3),
                entity("a"),
            ],
            vec![alert(1, AlertState::New)],
        );
        h.publish(Publish {
            entities: vec![entity("c\"quoted\"").in_unit("u2", "Xã Hai")],
            values: vec![
                (Arc::from("b"), Arc::from("rain"), t, 2.5),
                (Arc::from("c\"quoted\""), Arc::from("rain"), t, 1.0),
            ],
            ..Default::default()
        });
        let mut offline = entity("a");
        offline.status = ioc_model::EntityStatus::Offline;
        h.publish(Publish {
            entities: vec![offline],
            ..Default::default()
        });
        let full = h.snapshot();
        let Catchup::LeanSnapshot(lean) = h.since_with(None, 0, true) else {
            panic!("a lean snapshot for a client with nothing")
        };
        let decoded: ServerMsg = serde_json::from_slice(&lean.encode(|_| true)).unwrap();
        let ServerMsg::Snapshot { mut entities, .. } = full.clone() else {
            panic!("a snapshot")
        };
        assert_eq!(entities.len(), 3);
        assert!(entities
            .iter()
            .any(|e| e.latest.is_empty() && e.last_seen.is_none()));
        for e in &mut entities {
            e.latest.clear();
        }
        let ServerMsg::Snapshot {
            entities: got,
            alerts,
            seq,
            ..
        } = decoded.clone()
        else {
            panic!("a snapshot")
        };
        assert_eq!(got, entities);
        assert_eq!(got[2].last_seen, Some(t), "the value's time");
        assert_eq!(
            got[0].status,
            ioc_model::EntityStatus::Offline,
            "the change"
        );
        assert_eq!((alerts.len(), seq), (1, full.seq()));
        // Scoped: only the unit's devices.
        let ServerMsg::Snapshot { entities: u1, .. } =
            serde_json::from_slice(&lean.encode(|u| u == Some("u1"))).unwrap()
        else {
            panic!("a snapshot")
        };
        assert_eq!(u1.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["b"]);
    }

    fn hub(cap: usize) -> Hub {
        Hub::new(
            HubConfig {
                log_capacity: cap,
                ..Default::default()
            },
            Arc::new(SystemClock),
        )
    }

    fn entity(id: &str) -> Entity {
        Entity::new(id, "RainGauge", id, Domain::Water).at(105.0, 19.0)
    }

    fn alert(id: i64, state: AlertState) -> Alert {
        let t = Utc::now();
        Alert {
            id,
            rule: "r".into(),
            entity: Some("e1".into()),
            entity_name: "e1".into(),
            unit: None,
            unit_name: None,
            domain: Domain::Water,
            category: "rain".into(),
            severity: Severity::Major,
            state,
            active: true,
            message: "m".into(),
            metric: None,
            value: None,
            raised_at: t,
            updated_at: t,
            cleared_at: None,
            acked_at: None,
            acked_by: None,
            count: 1,
            external_id: None,
            area: None,
            description: None,
            expires_at: None,
            assignee: None,
            shelved_until: None,
            escalation: 0,
            incident: None,
            silenced: None,
            resolved_at: None,
            events: vec![],
        }
    }

    fn value(e: &str, m: &str, secs: i64, v: f64) -> Value {
        (
            Arc::from(e),
            Arc::from(m),
            DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap(),
            v,
        )
    }

    #[test]
    fn reconnecting_client_gets_only_what_it_missed_coalesced() {
        let hub = hub(1000);
        hub.publish(Publish {
            entities: vec![entity("e1"), entity("e2")],
            ..Default::default()
        });
        let ServerMsg::Snapshot { epoch, seq, .. } = hub.snapshot() else {
            panic!()
        };
        assert_eq!(seq, 2);
        // While the client is away: three values for e1, one for e2, an alert twice.
        hub.publish(Publish {
            values: vec![
                value("e1", "rain_1h", 1, 1.0),
                value("e1", "rain_1h", 2, 2.0),
                value("e2", "rain_1h", 2, 7.0),
                value("e1", "rain_1h", 3, 3.0),
            ],
            alerts: vec![alert(1, AlertState::New)],
            ..Default::default()
        });
        hub.publish(Publish {
            alerts: vec![alert(1, AlertState::Acknowledged)],
            ..Default::default()
        });
        let Catchup::Delta(ServerMsg::Delta {
            from,
            seq: last,
            values,
            alerts,
            entities,
            ..
        }) = hub.since(Some(&epoch), seq)
        else {
            panic!("expected a delta")
        };
        assert_eq!(from, 3);
        assert_eq!(last, hub.seq());
        assert!(entities.is_empty());
        assert_eq!(values.len(), 2, "one per entity and metric");
        let e1 = values.iter().find(|v| v.entity == "e1").unwrap();
        assert_eq!(e1.value, 3.0, "the newest value");
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].state, AlertState::Acknowledged);
        assert!(matches!(hub.since(Some(&epoch), last), Catchup::UpToDate));
        assert_eq!(hub.open_alerts().len(), 1);
    }

    #[test]
    fn too_far_behind_or_other_epoch_gets_a_snapshot() {
        let hub = hub(3);
        hub.publish(Publish {
            entities: vec![entity("e1")],
            ..Default::default()
        });
        let epoch = hub.epoch().to_string();
        for i in 0..10 {
            hub.publish(Publish {
                values: vec![value("e1", "rain_1h", i, i as f64)],
                ..Default::default()
            });
        }
        assert!(matches!(hub.since(Some(&epoch), 1), Catchup::Snapshot(_)));
        assert!(matches!(hub.since(Some(&epoch), 8), Catchup::Delta(_)));
        assert!(matches!(
            hub.since(Some("other-run"), 8),
            Catchup::Snapshot(_)
        ));
        assert!(matches!(hub.since(None, 8), Catchup::Snapshot(_)));
        assert!(matches!(hub.since(Some(&epoch), 999), Catchup::Snapshot(_)));
    }

    #[test]
    fn late_values_do_not_replace_newer_ones() {
        let hub = hub(100);
        hub.publish(Publish {
            entities: vec![entity("e1")],
            ..Default::default()
        });
        hub.publish(Publish {
            values: vec![
                value("e1", "rain_1h", 10, 5.0),
                value("e1", "rain_1h", 5, 1.0),
            ],
            ..Default::default()
        });
        assert_eq!(hub.entity("e1").unwrap().latest["rain_1h"].value, 5.0);
    }

    #[test]
    fn resolved_alerts_leave_the_open_set() {
        let hub = hub(100);
        hub.publish(Publish {
            alerts: vec![alert(1, AlertState::New), alert(2, AlertState::New)],
            ..Default::default()
        });
        hub.publish(Publish {
            alerts: vec![alert(1, AlertState::Resolved)],
            ..Default::default()
        });
        assert_eq!(
            hub.open_alerts().iter().map(|a| a.id).collect::<Vec<_>>(),
            [2]
        );
    }
}
