//! What the UI holds: the live picture (from the WebSocket) and the operator's selection.

use chrono::{DateTime, Utc};
use ioc_model::{Alert, Directive, Entity, EntityStatus, Incident, KpiValue, Severity, Silence};
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
    /// Incidents not closed, by id.
    pub incidents: RwSignal<HashMap<i64, Incident>>,
    /// Open directives, by id.
    pub directives: RwSignal<HashMap<i64, Directive>>,
    /// Silences not over, by id.
    pub silences: RwSignal<HashMap<i64, Silence>>,
    /// Every KPI's current value.
    pub kpis: RwSignal<Vec<KpiValue>>,
    /// The link to the provincial IOC, on a node that has one.
    pub link: RwSignal<Option<ioc_model::UpstreamLink>>,
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
            incidents: RwSignal::new(HashMap::new()),
            directives: RwSignal::new(HashMap::new()),
            silences: RwSignal::new(HashMap::new()),
            kpis: RwSignal::new(Vec::new()),
            link: RwSignal::new(None),
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
    Rules,
    Incidents,
    Directives,
    Sops,
    Silences,
    Dashboards,
    Kpis,
    Cameras,
}

impl View {
    /// Every screen with its label key and its digit.
    pub const ALL: [(View, &'static str, &'static str); 11] = [
        (View::Operations, "view-ops", "1"),
        (View::Sources, "view-sources", "2"),
        (View::DeadLetters, "view-dead", "3"),
        (View::Rules, "view-rules", "4"),
        (View::Incidents, "view-incidents", "5"),
        (View::Directives, "view-directives", "6"),
        (View::Sops, "view-sops", "7"),
        (View::Silences, "view-silences", "8"),
        (View::Dashboards, "view-dashboards", "9"),
        (View::Kpis, "view-kpis", "0"),
        (View::Cameras, "view-cameras", "-"),
    ];
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
    /// Incident open on the incidents screen.
    pub incident: RwSignal<Option<i64>>,
    /// Directive the directives screen's cursor is on.
    pub directive: RwSignal<Option<i64>>,
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

/// The queue's filters (severity at least, state, domain, unit, free text); the keyboard
/// cursor moves through what they let through.
#[derive(Clone, Copy)]
pub struct QueueFilter {
    /// `None`: every severity; else this one and above.
    pub min_severity: RwSignal<Option<Severity>>,
    /// `""`: every state; `new`; `working` (acknowledged, assigned, in progress); `cleared`;
    /// `silenced` (held back by a silence: shown only when asked for).
    pub state: RwSignal<String>,
    /// `""` or a domain's name.
    pub domain: RwSignal<String>,
    /// `""` or a unit's name.
    pub unit: RwSignal<String>,
    pub text: RwSignal<String>,
}

impl QueueFilter {
    pub fn new() -> QueueFilter {
        QueueFilter {
            min_severity: RwSignal::new(None),
            state: RwSignal::new(String::new()),
            domain: RwSignal::new(String::new()),
            unit: RwSignal::new(String::new()),
            text: RwSignal::new(String::new()),
        }
    }

    /// Whether any filter is set.
    pub fn active(&self) -> bool {
        self.min_severity.get().is_some()
            || !self.state.get().is_empty()
            || !self.domain.get().is_empty()
            || !self.unit.get().is_empty()
            || !self.text.get().is_empty()
    }

    pub fn clear(&self) {
        self.min_severity.set(None);
        self.state.set(String::new());
        self.domain.set(String::new());
        self.unit.set(String::new());
        self.text.set(String::new());
    }

    /// Whether `a` passes (reactive: reads the filters).
    pub fn passes(&self, a: &Alert) -> bool {
        use ioc_model::AlertState as S;
        if self.min_severity.get().is_some_and(|m| a.severity < m) {
            return false;
        }
        let state = self.state.get();
        if (state == "silenced") != a.silenced.is_some() {
            return false;
        }
        let ok_state = match state.as_str() {
            "new" => a.state == S::New,
            "working" => matches!(a.state, S::Acknowledged | S::Assigned | S::InProgress),
            "cleared" => !a.active,
            _ => true,
        };
        if !ok_state {
            return false;
        }
        let domain = self.domain.get();
        if !domain.is_empty() && a.domain.as_str() != domain {
            return false;
        }
        let unit = self.unit.get();
        if !unit.is_empty() && a.unit_name.as_deref() != Some(unit.as_str()) {
            return false;
        }
        let text = self.text.get().to_lowercase();
        text.is_empty()
            || [
                a.entity_name.as_str(),
                a.message.as_str(),
                a.category.as_str(),
                a.rule.as_str(),
                a.unit_name.as_deref().unwrap_or(""),
            ]
            .iter()
            .any(|f| f.to_lowercase().contains(&text))
    }
}
