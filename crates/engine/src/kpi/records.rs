//! Alerts, incidents and directives as the records a KPI counts, each a set of CEL
//! variables (see [`super::def`] for the names) with the time that puts it in a period.

use cel::Value;
use ioc_model::{Alert, AlertState, Directive, DirectiveState, Incident, IncidentState};
use std::sync::Arc;

/// One thing a KPI may count.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub unit: Option<String>,
    pub unit_name: Option<String>,
    /// What puts it in a period (ms): an alert's raising, an incident's opening, a
    /// directive's deadline.
    pub at: i64,
    pub fields: Vec<(&'static str, Value)>,
}

fn s(v: &str) -> Value {
    Value::String(Arc::new(v.to_string()))
}

fn opt_s(v: &Option<String>) -> Value {
    v.as_deref().map(s).unwrap_or(Value::Null)
}

fn minutes(ms: Option<i64>) -> Value {
    ms.map(|m| Value::Float(m as f64 / 60_000.0))
        .unwrap_or(Value::Null)
}

/// An alert.
pub fn alert(a: &Alert) -> Record {
    let resolved_at = a.resolved_at.map(|t| t.timestamp_millis());
    let raised = a.raised_at.timestamp_millis();
    let acked = a.acked_at.map(|t| t.timestamp_millis() - raised);
    let resolved = matches!(a.state, AlertState::Resolved | AlertState::Closed);
    Record {
        kind: "alert",
        id: a.id.to_string(),
        name: format!("{} — {}", a.entity_name, a.message),
        unit: a.unit.clone(),
        unit_name: a.unit_name.clone(),
        at: raised,
        fields: vec![
            ("severity", s(a.severity.as_str())),
            ("category", s(&a.category)),
            ("domain", s(a.domain.as_str())),
            ("rule", s(&a.rule)),
            ("unit", opt_s(&a.unit)),
            ("state", s(a.state.as_str())),
            ("acked", Value::Bool(acked.is_some())),
            ("ack_minutes", minutes(acked)),
            ("resolved", Value::Bool(resolved)),
            (
                "resolve_minutes",
                minutes(resolved_at.filter(|_| resolved).map(|t| t - raised)),
            ),
            ("escalated", Value::Bool(a.escalation > 0)),
            ("silenced", Value::Bool(a.silenced.is_some())),
            ("in_incident", Value::Bool(a.incident.is_some())),
        ],
    }
}

/// An incident: on time when it is resolved (or closed) with no step late.
pub fn incident(i: &Incident) -> Record {
    let opened = i.opened_at.timestamp_millis();
    let resolved = matches!(i.state, IncidentState::Resolved | IncidentState::Closed);
    let late = i.steps.iter().filter(|s| s.overdue).count();
    Record {
        kind: "incident",
        id: i.id.to_string(),
        name: i.title.clone(),
        unit: i.unit.clone(),
        unit_name: i.unit_name.clone(),
        at: opened,
        fields: vec![
            ("severity", s(i.severity.as_str())),
            ("category", s(&i.category)),
            ("domain", s(i.domain.as_str())),
            ("unit", opt_s(&i.unit)),
            ("state", s(i.state.as_str())),
            ("alerts", Value::Int(i.alerts.len() as i64)),
            ("steps", Value::Int(i.steps.len() as i64)),
            ("late_steps", Value::Int(late as i64)),
            ("resolved", Value::Bool(resolved)),
            (
                "resolve_minutes",
                minutes(
                    i.resolved_at
                        .filter(|_| resolved)
                        .map(|t| t.timestamp_millis() - opened),
                ),
            ),
            ("on_time", Value::Bool(resolved && late == 0)),
        ],
    }
}

/// A directive, in the period of its deadline.
pub fn directive(d: &Directive) -> Record {
    let issued = d.issued_at.timestamp_millis();
    Record {
        kind: "directive",
        id: d.id.to_string(),
        name: format!("{} → {}", d.title, d.unit_name),
        unit: Some(d.unit.clone()),
        unit_name: Some(d.unit_name.clone()),
        at: d.deadline.timestamp_millis(),
        fields: vec![
            ("unit", s(&d.unit)),
            ("state", s(d.state.as_str())),
            ("done", Value::Bool(d.state == DirectiveState::Done)),
            ("on_time", Value::Bool(d.on_time() == Some(true))),
            ("overdue", Value::Bool(d.overdue)),
            (
                "ack_minutes",
                minutes(d.acked_at.map(|t| t.timestamp_millis() - issued)),
            ),
            (
                "answer_minutes",
                minutes(
                    d.done_at
                        .filter(|_| d.state == DirectiveState::Done)
                        .map(|t| t.timestamp_millis() - issued),
                ),
            ),
        ],
    }
}
