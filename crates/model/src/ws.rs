//! WebSocket messages (server → client). A client connects to `/ws`; it gets a snapshot (or,
//! when it says what it has seen and that is still in the server's buffer, only what it
//! missed), then deltas.
//! Every message carries the sequence number of the last change it includes; a reconnecting
//! client sends `/ws?epoch=E&since=SEQ` with the epoch of its last snapshot.

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
    Heartbeat { seq: u64, time: DateTime<Utc> },
}

impl ServerMsg {
    pub fn seq(&self) -> u64 {
        match self {
            ServerMsg::Snapshot { seq, .. }
            | ServerMsg::Delta { seq, .. }
            | ServerMsg::Heartbeat { seq, .. } => *seq,
        }
    }
}
