//! Alerts and their lifecycle. The state machine lives here so that the server enforces it and
//! the UI offers only the actions the server will accept.

use crate::entity::Domain;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How bad it is. Ordered: `Info < Warning < Major < Critical`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Major,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::Major,
        Severity::Warning,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Where an alert is in its lifecycle.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    New,
    Acknowledged,
    Assigned,
    InProgress,
    Shelved,
    Resolved,
    Closed,
}

impl AlertState {
    pub const ALL: [AlertState; 7] = [
        AlertState::New,
        AlertState::Acknowledged,
        AlertState::Assigned,
        AlertState::InProgress,
        AlertState::Shelved,
        AlertState::Resolved,
        AlertState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::New => "new",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Assigned => "assigned",
            AlertState::InProgress => "in_progress",
            AlertState::Shelved => "shelved",
            AlertState::Resolved => "resolved",
            AlertState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        AlertState::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Open alerts are the ones an operator still has to deal with.
    pub fn is_open(self) -> bool {
        !matches!(self, AlertState::Resolved | AlertState::Closed)
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: AlertState) -> bool {
        use AlertState::*;
        matches!(
            (self, to),
            (New, Acknowledged | Assigned | Shelved | Resolved)
                | (Acknowledged, Assigned | InProgress | Shelved | Resolved)
                | (Assigned, Acknowledged | InProgress | Shelved | Resolved)
                | (InProgress, Assigned | Resolved)
                | (Shelved, New | Acknowledged | Resolved)
                | (Resolved, Closed)
        )
    }
}

/// What happened to an alert; every transition and every notable change is one event.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertEventKind {
    /// A rule's condition held long enough, or an alert was received.
    Raised,
    /// The condition stopped holding.
    Cleared,
    /// The condition held again while the alert was still open.
    Reactivated,
    /// An operator or the system moved the alert to another state.
    Transition,
    Comment,
    /// The issuer sent a new version (an updated CAP message, a changed NGSI alert).
    Updated,
    /// Nobody acknowledged it in time: its severity went up and the next role was told.
    Escalated,
    /// It joined an incident (`value`: the incident's id).
    Incident,
    /// A silence or maintenance window matched it (`value`: the silence's id).
    Silenced,
    /// The silence that matched it ended while it was still open.
    Unsilenced,
    /// An act made on another console while the two were apart, which the merged history
    /// made impossible (acknowledged at a commune while the province closed it): kept on the
    /// timeline with who, where and why, but without effect.
    NotApplied,
}

/// One entry of an alert's timeline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AlertEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: AlertEventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<AlertState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<AlertState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The console (federation node) where it happened, when it was not this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// An alert, raised by a rule or received from outside (CAP, an NGSI `Alert`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Alert {
    pub id: i64,
    /// Name of the rule that raised it; for a received alert, the source it came from.
    pub rule: String,
    /// External id of the entity it is about, if it is about one.
    #[serde(default)]
    pub entity: Option<String>,
    /// What it is about, for people: the entity's name, or the area of a received alert.
    pub entity_name: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub unit_name: Option<String>,
    pub domain: Domain,
    /// Kind of event, e.g. `air_quality`, `flood`, `camera`, `rain`, `traffic`.
    pub category: String,
    pub severity: Severity,
    pub state: AlertState,
    /// Whether the rule's condition holds right now.
    pub active: bool,
    pub message: String,
    #[serde(default)]
    pub metric: Option<String>,
    /// Value that raised it, updated while the condition holds.
    #[serde(default)]
    pub value: Option<f64>,
    pub raised_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub cleared_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub acked_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub acked_by: Option<String>,
    /// How many times the condition was raised while this alert stayed open.
    pub count: u32,
    /// For a received alert: its id at the issuer (CAP `identifier`, NGSI id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The area it concerns, as a GeoJSON geometry (CAP `polygon`/`circle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the issuer says it stops being valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Who it is assigned to (a user name or a unit's team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// A shelved alert comes back to the queue at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shelved_until: Option<DateTime<Utc>>,
    /// How many times it was escalated for lack of an acknowledgement (0, 1, 2).
    #[serde(default)]
    pub escalation: u8,
    /// The incident it is worked in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
    /// The silence (or maintenance window) it fell under: raised and recorded, but not
    /// announced, escalated or queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced: Option<i64>,
    /// When it was resolved (by someone, by itself or with its incident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// The timeline; only filled by `GET /api/alerts/{id}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<AlertEvent>,
}

impl Alert {
    /// Queue order: open before closed, then most severe, then newest.
    pub fn queue_cmp(a: &Alert, b: &Alert) -> std::cmp::Ordering {
        b.state
            .is_open()
            .cmp(&a.state.is_open())
            .then((a.state != AlertState::New).cmp(&(b.state != AlertState::New)))
            .then(b.severity.cmp(&a.severity))
            .then(b.raised_at.cmp(&a.raised_at))
            .then(b.id.cmp(&a.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_is_forward_only_and_closed_is_final() {
        use AlertState::*;
        assert!(New.can_become(Acknowledged));
        assert!(Acknowledged.can_become(Resolved));
        assert!(Resolved.can_become(Closed));
        assert!(!Acknowledged.can_become(New));
        assert!(!New.can_become(Closed));
        for s in AlertState::ALL {
            assert!(!Closed.can_become(s));
            assert!(!s.can_become(s), "{s:?} to itself");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in AlertState::ALL {
            assert_eq!(AlertState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert!(Severity::Critical > Severity::Major && Severity::Warning > Severity::Info);
    }
}
