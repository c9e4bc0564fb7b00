//! WebSocket messages (server → client). A client connects to `/ws`; it gets a snapshot (or,
//! when it says what it has seen and that is still in the server's buffer, only what it
//! missed), then deltas.
//! Every message carries the sequence number of the last change it includes; a reconnecting
//! client sends `/ws?epoch=E&since=SEQ` with the epoch of its last snapshot.
//!
//! A screen that shows the values of only a few devices (the console: the one selected)
//! connects with `/ws?values=watched` and says which ones with [`ClientMsg::Watch`]: its
//! snapshot and deltas then carry devices without their values, and the values of the
//! watched devices come as [`ServerMsg::Values`]. A province's 10,000 readings a second then
//! cost such a client nothing but the few it looks at.

use crate::alert::Alert;
use crate::directive::Directive;
use crate::entity::Entity;
use crate::incident::Incident;
use crate::kpi::KpiValue;
use crate::silence::Silence;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One new value of one metric of one entity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ValueUpdate {
    pub entity: String,
    pub metric: String,
    pub time: DateTime<Utc>,
    pub value: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The whole current state: every entity with its latest values, every open alert, every
    /// incident not yet closed, every open directive and every current silence. Replaces
    /// whatever the client held.
    Snapshot {
        /// Identifies this run of the server; a client reconnecting with another epoch's
        /// sequence number gets a snapshot, never a delta against the wrong history.
        epoch: String,
        seq: u64,
        time: DateTime<Utc>,
        entities: Vec<Entity>,
        alerts: Vec<Alert>,
        #[serde(default)]
        incidents: Vec<Incident>,
        #[serde(default)]
        directives: Vec<Directive>,
        #[serde(default)]
        silences: Vec<Silence>,
        /// Every KPI's current value.
        #[serde(default)]
        kpis: Vec<KpiValue>,
        /// The link to the provincial IOC, on a node that has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<crate::UpstreamLink>,
    },
    /// Changes after sequence number `from - 1` up to and including `seq`, coalesced: only the
    /// newest value per entity and metric, only the newest version of each alert, entity,
    /// incident, directive or silence. A closed incident, a finished directive or a silence
    /// that is over comes once more, so the client can drop it.
    Delta {
        from: u64,
        seq: u64,
        time: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        entities: Vec<Entity>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<ValueUpdate>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alerts: Vec<Alert>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        incidents: Vec<Incident>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        directives: Vec<Directive>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        silences: Vec<Silence>,
        /// When present: every KPI's current value, replacing what the client held.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        kpis: Vec<KpiValue>,
        /// When present: the link to the provincial IOC changed (state or what waits).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<crate::UpstreamLink>,
    },
    /// Sent when nothing changed for a while, so a client can tell a quiet feed from a dead one.
    /// `seq` is the number the connection is at: everything up to it that this client takes
    /// has been sent (a client on `values=watched` may have been sent nothing for changes
    /// that were only values).
    Heartbeat { seq: u64, time: DateTime<Utc> },
    /// On `values=watched`: the newest values of the devices the client watches, those that
    /// changed since it was last sent them (every metric of a device it has just begun to
    /// watch). `seq` is the number the connection is at, as in a heartbeat: the values
    /// themselves are not resumed from (a client watches anew when it reconnects and gets
    /// them all again).
    Values {
        seq: u64,
        time: DateTime<Utc>,
        values: Vec<ValueUpdate>,
    },
}

impl ServerMsg {
    /// The sequence number a client is at after this message.
    pub fn seq(&self) -> u64 {
        match self {
            ServerMsg::Snapshot { seq, .. }
            | ServerMsg::Delta { seq, .. }
            | ServerMsg::Heartbeat { seq, .. }
            | ServerMsg::Values { seq, .. } => *seq,
        }
    }
}

/// Which values a feed carries (`/ws?values=…`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeedValues {
    /// Every value of every device in the caller's units (the default; what a relay or an
    /// archive wants).
    #[default]
    All,
    /// Only those of the devices named by the client's last [`ClientMsg::Watch`].
    Watched,
}

/// The most devices one client may watch at once.
pub const MAX_WATCHED: usize = 256;

/// Client → server messages on `/ws` (text frames of JSON).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The devices whose values this client shows now, replacing the last list (at most
    /// [`MAX_WATCHED`]; more are ignored). Devices outside the caller's units are ignored.
    Watch { entities: Vec<String> },
}

/// What a client holds after applying the feed: the same picture a snapshot gives, kept up
/// to date delta by delta. A workstation keeps one so its screens still show the IOC's last
/// picture through a network blip, and can hand a reconnecting window a snapshot of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Picture {
    pub epoch: String,
    pub seq: u64,
    pub time: Option<DateTime<Utc>>,
    pub entities: std::collections::BTreeMap<String, Entity>,
    pub alerts: std::collections::BTreeMap<i64, Alert>,
    pub incidents: std::collections::BTreeMap<i64, Incident>,
    pub directives: std::collections::BTreeMap<i64, Directive>,
    pub silences: std::collections::BTreeMap<i64, Silence>,
    pub kpis: Vec<KpiValue>,
    pub link: Option<crate::UpstreamLink>,
}

impl Picture {
    /// Whether a snapshot has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.epoch.is_empty()
    }

    /// Applies one message the way the console does: a snapshot replaces everything; a
    /// delta replaces the newest version of what it names and drops what is over (a closed
    /// alert or incident, a finished directive, a silence no longer current).
    pub fn apply(&mut self, msg: &ServerMsg) {
        match msg {
            ServerMsg::Snapshot {
                epoch,
                seq,
                time,
                entities,
                alerts,
                incidents,
                directives,
                silences,
                kpis,
                link,
            } => {
                *self = Picture {
                    epoch: epoch.clone(),
                    seq: *seq,
                    time: Some(*time),
                    entities: entities.iter().map(|e| (e.id.clone(), e.clone())).collect(),
                    alerts: std::collections::BTreeMap::new(),
                    incidents: std::collections::BTreeMap::new(),
                    directives: std::collections::BTreeMap::new(),
                    silences: std::collections::BTreeMap::new(),
                    kpis: kpis.clone(),
                    link: link.clone(),
                };
                self.merge(*time, alerts, incidents, directives, silences);
            }
            ServerMsg::Delta {
                seq,
                time,
                entities,
                values,
                alerts,
                incidents,
                directives,
                silences,
                kpis,
                link,
                ..
            } => {
                self.seq = *seq;
                self.time = Some(*time);
                if link.is_some() {
                    self.link = link.clone();
                }
                if !kpis.is_empty() {
                    self.kpis = kpis.clone();
                }
                for e in entities {
                    let mut e = e.clone();
                    if let Some(old) = self.entities.remove(&e.id) {
                        e.keep_values_of(old);
                    }
                    self.entities.insert(e.id.clone(), e);
                }
                self.apply_values(values);
                self.merge(*time, alerts, incidents, directives, silences);
            }
            ServerMsg::Heartbeat { seq, time } => {
                self.seq = self.seq.max(*seq);
                self.time = Some(*time);
            }
            ServerMsg::Values { seq, values, .. } => {
                self.seq = self.seq.max(*seq);
                self.apply_values(values);
            }
        }
    }

    fn apply_values(&mut self, values: &[ValueUpdate]) {
        for v in values {
            if let Some(e) = self.entities.get_mut(&v.entity) {
                e.set_value(&v.metric, v.value, v.time);
            }
        }
    }

    fn merge(
        &mut self,
        now: DateTime<Utc>,
        alerts: &[Alert],
        incidents: &[Incident],
        directives: &[Directive],
        silences: &[Silence],
    ) {
        for a in alerts {
            if a.state.is_open() {
                self.alerts.insert(a.id, a.clone());
            } else {
                self.alerts.remove(&a.id);
            }
        }
        for i in incidents {
            if i.in_view() {
                self.incidents.insert(i.id, i.clone());
            } else {
                self.incidents.remove(&i.id);
            }
        }
        for d in directives {
            if d.state.is_open() {
                self.directives.insert(d.id, d.clone());
            } else {
                self.directives.remove(&d.id);
            }
        }
        for s in silences {
            if s.current_at(now) {
                self.silences.insert(s.id, s.clone());
            } else {
                self.silences.remove(&s.id);
            }
        }
    }

    /// The whole picture as one snapshot message (`None` before the first snapshot).
    pub fn snapshot(&self) -> Option<ServerMsg> {
        if self.is_empty() {
            return None;
        }
        Some(ServerMsg::Snapshot {
            epoch: self.epoch.clone(),
            seq: self.seq,
            time: self.time.unwrap_or_default(),
            entities: self.entities.values().cloned().collect(),
            alerts: self.alerts.values().cloned().collect(),
            incidents: self.incidents.values().cloned().collect(),
            directives: self.directives.values().cloned().collect(),
            silences: self.silences.values().cloned().collect(),
            kpis: self.kpis.clone(),
            link: self.link.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Domain, EntityStatus};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap()
    }

    fn value(entity: &str, metric: &str, t: i64, value: f64) -> ValueUpdate {
        ValueUpdate {
            entity: entity.into(),
            metric: metric.into(),
            time: at(t),
            value,
        }
    }

    /// On a feed without values, a device that changes keeps the values the client was
    /// sent for it, and `values` messages bring newer ones but never older.
    #[test]
    fn a_picture_keeps_watched_values_through_lean_changes() {
        let mut p = Picture::default();
        let gauge = Entity::new("wl-1", "WaterLevelGauge", "Trạm 1", Domain::Water);
        p.apply(&ServerMsg::Snapshot {
            epoch: "e".into(),
            seq: 4,
            time: at(0),
            entities: vec![gauge.clone()],
            alerts: vec![],
            incidents: vec![],
            directives: vec![],
            silences: vec![],
            kpis: vec![],
            link: None,
        });
        p.apply(&ServerMsg::Values {
            seq: 4,
            time: at(10),
            values: vec![
                value("wl-1", "water_level", 10, 3.5),
                value("nope", "x", 1, 1.0),
            ],
        });
        assert_eq!(p.seq, 4);
        assert_eq!(p.entities["wl-1"].latest["water_level"].value, 3.5);
        let mut offline = gauge.clone();
        offline.status = EntityStatus::Offline;
        p.apply(&ServerMsg::Delta {
            from: 5,
            seq: 5,
            time: at(11),
            entities: vec![offline],
            values: vec![],
            alerts: vec![],
            incidents: vec![],
            directives: vec![],
            silences: vec![],
            kpis: vec![],
            link: None,
        });
        let e = &p.entities["wl-1"];
        assert_eq!(e.status, EntityStatus::Offline);
        assert_eq!(
            e.latest["water_level"].value, 3.5,
            "kept through the change"
        );
        assert_eq!(e.last_seen, Some(at(10)));
        p.apply(&ServerMsg::Values {
            seq: 5,
            time: at(12),
            values: vec![value("wl-1", "water_level", 9, 1.0)],
        });
        assert_eq!(
            p.entities["wl-1"].latest["water_level"].value, 3.5,
            "an older value does not replace a newer one"
        );
        assert_eq!(p.entities.len(), 1, "unknown devices are not made up");
    }
}
