//! What the UI holds: the live picture (from the WebSocket) and the operator's selection.

use chrono::{DateTime, Utc};
use ioc_model::{Alert, Entity, EntityStatus, Severity};
use leptos::prelude::*;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    Connecting,
    Live,
    Lost,
}

/// The live picture, filled by [`crate::feed`].
#[derive(Clone, Copy)]
pub struct Live {
    pub entities: RwSignal<HashMap<String, Entity>>,
    /// Open alerts by id.
    pub alerts: RwSignal<HashMap<i64, Alert>>,
    pub conn: RwSignal<Conn>,
    /// Browser time (ms) of the last message from the server, heartbeats included.
    pub last_message: RwSignal<f64>,
    /// Server time of the last data change seen.
    pub data_time: RwSignal<Option<DateTime<Utc>>>,
    /// Bumped on every applied message, so views of live values can follow.
    pub revision: RwSignal<u64>,
}

impl Live {
    pub fn new() -> Live {
        Live {
            entities: RwSignal::new(HashMap::new()),
            alerts: RwSignal::new(HashMap::new()),
            conn: RwSignal::new(Conn::Connecting),
            last_message: RwSignal::new(0.0),
            data_time: RwSignal::new(None),
            revision: RwSignal::new(0),
        }
    }
}

/// The screens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Operations,
    Sources,
    DeadLetters,
}

/// What the operator is looking at.
#[derive(Clone, Copy)]
pub struct Selection {
    pub view: RwSignal<View>,
    /// Dead letters of this source only (from the sources screen).
    pub dead_source: RwSignal<Option<String>>,
    /// Entity whose details are open.
    pub entity: RwSignal<Option<String>>,
    /// Alert the keyboard cursor is on.
    pub alert: RwSignal<Option<i64>>,
    pub help: RwSignal<bool>,
    /// A short message at the bottom: (text, is_error).
    pub toast: RwSignal<Option<(String, bool)>>,
}

/// Display settings from the server.
#[derive(Clone, Copy)]
pub struct Settings {
    pub timezone: RwSignal<String>,
}

/// The colour class of a marker: offline devices are grey whatever they measured; otherwise
/// the worst active open alert; otherwise normal.
pub fn level(entity: &Entity, alerts: &[&Alert]) -> &'static str {
    match entity.status {
        EntityStatus::Offline => return "offline",
        EntityStatus::Fault => return "fault",
        _ => {}
    }
    let worst = alerts
        .iter()
        .filter(|a| a.active && a.state.is_open())
        .map(|a| a.severity)
        .max();
    match worst {
        Some(Severity::Critical) => "critical",
        Some(Severity::Major) => "major",
        Some(Severity::Warning) => "warning",
        Some(Severity::Info) => "info",
        None if entity.status == EntityStatus::Unknown => "unknown",
        None => "normal",
    }
}

/// Open alerts grouped by entity.
pub fn alerts_by_entity(alerts: &HashMap<i64, Alert>) -> HashMap<&str, Vec<&Alert>> {
    let mut m: HashMap<&str, Vec<&Alert>> = HashMap::new();
    for a in alerts.values() {
        if let Some(e) = &a.entity {
            m.entry(e.as_str()).or_default().push(a);
        }
    }
    m
}
