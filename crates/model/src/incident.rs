//! Incidents: one or more alerts worked together through a standard operating procedure
//! (SOP). The steps are copied from the SOP template when the incident opens, so editing the
//! template later never changes an incident already running.

use crate::directive::Directive;
use crate::entity::Domain;
use crate::user::Role;
use crate::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an incident is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Being worked.
    Open,
    /// The work is done; waiting for a supervisor to close it (or to reopen it).
    Resolved,
    /// Finished: its alerts are closed and its after-action report is final.
    Closed,
}

impl IncidentState {
    pub const ALL: [IncidentState; 3] = [
        IncidentState::Open,
        IncidentState::Resolved,
        IncidentState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Resolved => "resolved",
            IncidentState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentState> {
        IncidentState::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: IncidentState) -> bool {
        use IncidentState::*;
        matches!(
            (self, to),
            (Open, Resolved) | (Resolved, Open) | (Resolved, Closed)
        )
    }
}

/// Where a step of an incident's SOP is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// A step it comes after is not finished yet.
    Waiting,
    /// Can be worked now; its SLA timer runs.
    Ready,
    Done,
    /// Its condition did not hold (a branch not taken), or a supervisor skipped it.
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Waiting => "waiting",
            StepStatus::Ready => "ready",
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
        }
    }

    /// Done or skipped: nothing more to do.
    pub fn finished(self) -> bool {
        matches!(self, StepStatus::Done | StepStatus::Skipped)
    }
}

/// One item of a step's checklist.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChecklistItem {
    pub text: String,
    #[serde(default)]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// One step of an incident's SOP, with its progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Step {
    /// Unique within the SOP, e.g. `verify`.
    pub id: String,
    pub title: String,
    /// Who works it (a supervisor or an admin may work any step).
    pub role: Role,
    /// Steps that must be finished first. Steps with the same predecessors run in parallel.
    #[serde(default)]
    pub after: Vec<String>,
    /// How long it may take once ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist: Vec<ChecklistItem>,
    /// Finishing it needs a comment.
    #[serde(default)]
    pub require_comment: bool,
    /// Finishing it needs a file (a photo, a signed record) attached to it.
    #[serde(default)]
    pub require_attachment: bool,
    /// A question: finishing it means choosing one of these answers; later steps branch on
    /// it through their `condition`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
    /// A CEL condition over `answers` (step id → answer) and `incident` (`severity`,
    /// `category`, `unit`, `domain`): when it is false once the step could start, the step
    /// is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// `ready_at` plus the SLA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Ids of the files attached to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<i64>,
    /// It went past its SLA (it stays marked once finished late).
    #[serde(default)]
    pub overdue: bool,
}

impl Step {
    /// Whether it is past its SLA at `now` and not finished.
    pub fn late_at(&self, now: DateTime<Utc>) -> bool {
        self.status == StepStatus::Ready && self.due_at.is_some_and(|d| d <= now)
    }
}

/// The SOP template (and its version) an incident was started with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SopRef {
    pub name: String,
    pub version: u32,
    pub title: String,
}

/// What happened in an incident.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum IncidentEventKind {
    Opened,
    AlertAdded,
    StepReady,
    StepDone,
    StepSkipped,
    StepOverdue,
    Checked,
    Comment,
    Attachment,
    Resolved,
    Reopened,
    Closed,
    DirectiveIssued,
    DirectiveAcknowledged,
    DirectiveReport,
    DirectiveDone,
    DirectiveCancelled,
    DirectiveOverdue,
    /// An act made on another node that the merged history made impossible (a step done at
    /// a commune after the province had closed the incident): kept, with who, where and why.
    NotApplied,
    /// A person looked at what the merge flagged (see [`Incident::attention`]).
    Reviewed,
}

impl IncidentEventKind {
    pub const ALL: [IncidentEventKind; 20] = [
        IncidentEventKind::Opened,
        IncidentEventKind::AlertAdded,
        IncidentEventKind::StepReady,
        IncidentEventKind::StepDone,
        IncidentEventKind::StepSkipped,
        IncidentEventKind::StepOverdue,
        IncidentEventKind::Checked,
        IncidentEventKind::Comment,
        IncidentEventKind::Attachment,
        IncidentEventKind::Resolved,
        IncidentEventKind::Reopened,
        IncidentEventKind::Closed,
        IncidentEventKind::DirectiveIssued,
        IncidentEventKind::DirectiveAcknowledged,
        IncidentEventKind::DirectiveReport,
        IncidentEventKind::DirectiveDone,
        IncidentEventKind::DirectiveCancelled,
        IncidentEventKind::DirectiveOverdue,
        IncidentEventKind::NotApplied,
        IncidentEventKind::Reviewed,
    ];

    pub fn as_str(self) -> &'static str {
        use IncidentEventKind::*;
        match self {
            Opened => "opened",
            AlertAdded => "alert_added",
            StepReady => "step_ready",
            StepDone => "step_done",
            StepSkipped => "step_skipped",
            StepOverdue => "step_overdue",
            Checked => "checked",
            Comment => "comment",
            Attachment => "attachment",
            Resolved => "resolved",
            Reopened => "reopened",
            Closed => "closed",
            DirectiveIssued => "directive_issued",
            DirectiveAcknowledged => "directive_acknowledged",
            DirectiveReport => "directive_report",
            DirectiveDone => "directive_done",
            DirectiveCancelled => "directive_cancelled",
            DirectiveOverdue => "directive_overdue",
            NotApplied => "not_applied",
            Reviewed => "reviewed",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentEventKind> {
        IncidentEventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry of an incident's timeline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IncidentEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: IncidentEventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directive: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The node it happened on, in a federation (`oc-dien-chau`); absent on a single node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A file attached to an incident (`GET /api/attachments/{id}` returns its bytes).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AttachmentInfo {
    pub id: i64,
    pub incident: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    pub at: DateTime<Utc>,
    pub actor: String,
}

/// An incident.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Incident {
    pub id: i64,
    pub title: String,
    /// Kind of event, as its alerts' (`flood`, `air_quality`…).
    pub category: String,
    /// The worst of its alerts when they joined.
    pub severity: Severity,
    pub state: IncidentState,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub unit_name: Option<String>,
    pub domain: Domain,
    /// Its alerts' ids, in the order they joined.
    pub alerts: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sop: Option<SopRef>,
    #[serde(default)]
    pub steps: Vec<Step>,
    pub opened_at: DateTime<Utc>,
    pub opened_by: String,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// What needs a person since the nodes merged: work done on one node that the other's
    /// acts made impossible (steps done at a commune while the province closed the
    /// incident). Cleared by a person reviewing it; never cleared by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
    /// The timeline; only filled by `GET /api/incidents/{id}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<IncidentEvent>,
    /// Directives issued for it; only filled by `GET /api/incidents/{id}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directives: Vec<Directive>,
    /// Files attached to it; only filled by `GET /api/incidents/{id}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentInfo>,
}

impl Incident {
    /// Whether the live picture shows it: while it is worked, and closed while something
    /// on it needs a person (see `attention`).
    pub fn in_view(&self) -> bool {
        self.state != IncidentState::Closed || self.attention.is_some()
    }

    /// Steps finished (done or skipped) and all steps.
    pub fn progress(&self) -> (usize, usize) {
        let done = self.steps.iter().filter(|s| s.status.finished()).count();
        (done, self.steps.len())
    }

    /// Steps past their SLA at `now` (none once the incident is no longer open).
    pub fn late_steps(&self, now: DateTime<Utc>) -> usize {
        // Only an open incident's steps are being worked.
        if self.state != IncidentState::Open {
            return 0;
        }
        self.steps.iter().filter(|s| s.late_at(now)).count()
    }

    /// List order: open before resolved, then most severe, then newest.
    pub fn list_cmp(a: &Incident, b: &Incident) -> std::cmp::Ordering {
        let rank = |s: IncidentState| match s {
            IncidentState::Open => 0,
            IncidentState::Resolved => 1,
            IncidentState::Closed => 2,
        };
        rank(a.state)
            .cmp(&rank(b.state))
            .then(b.severity.cmp(&a.severity))
            .then(b.opened_at.cmp(&a.opened_at))
            .then(b.id.cmp(&a.id))
    }
}

/// `POST /api/incidents`: open an incident from alerts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OpenIncidentRequest {
    /// The alerts it starts with (at least one).
    pub alerts: Vec<i64>,
    /// SOP template; default: the one for the first alert's category, if any.
    #[serde(default)]
    pub sop: Option<String>,
    /// Default: from the first alert.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Body of the incident and step actions (`/api/incidents/{id}/…`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IncidentActionRequest {
    #[serde(default)]
    pub comment: Option<String>,
    /// The chosen answer of a step that asks a question.
    #[serde(default)]
    pub answer: Option<String>,
    /// A checklist item's position (from 0), for `check`.
    #[serde(default)]
    pub item: Option<usize>,
    /// For `check`: tick (default) or untick.
    #[serde(default)]
    pub done: Option<bool>,
    /// An alert to add, for `alerts`.
    #[serde(default)]
    pub alert: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        use IncidentState::*;
        assert!(Open.can_become(Resolved));
        assert!(Resolved.can_become(Closed));
        assert!(Resolved.can_become(Open));
        assert!(!Open.can_become(Closed));
        for s in IncidentState::ALL {
            assert!(!Closed.can_become(s));
            assert_eq!(IncidentState::parse(s.as_str()), Some(s));
        }
        for k in IncidentEventKind::ALL {
            assert_eq!(IncidentEventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
