//! Directives: orders from the IOC to a unit (a commune, a department, a local OC) with a
//! deadline, acknowledged and reported on by the unit's own people.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a directive is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DirectiveState {
    /// Sent; nobody at the unit has acknowledged it yet.
    Issued,
    Acknowledged,
    /// The unit has reported progress.
    InProgress,
    /// The unit reports it carried out.
    Done,
    /// Withdrawn by the IOC.
    Cancelled,
}

impl DirectiveState {
    pub const ALL: [DirectiveState; 5] = [
        DirectiveState::Issued,
        DirectiveState::Acknowledged,
        DirectiveState::InProgress,
        DirectiveState::Done,
        DirectiveState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DirectiveState::Issued => "issued",
            DirectiveState::Acknowledged => "acknowledged",
            DirectiveState::InProgress => "in_progress",
            DirectiveState::Done => "done",
            DirectiveState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<DirectiveState> {
        DirectiveState::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Still to be carried out.
    pub fn is_open(self) -> bool {
        !matches!(self, DirectiveState::Done | DirectiveState::Cancelled)
    }
}

/// A report from the unit, or a note of the IOC.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DirectiveReport {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// What the report did: `acknowledged`, `report`, `done`, `cancelled`, `overdue`, or
    /// `not_applied` (an act the merged history of two nodes made impossible: kept, with
    /// why, in `text`).
    pub kind: String,
    /// Percent done, as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The node (IOC, commune OC) it was made on, in a federation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A directive.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Directive {
    pub id: i64,
    /// The incident it was issued for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
    /// Code of the unit it is addressed to.
    pub unit: String,
    pub unit_name: String,
    pub title: String,
    #[serde(default)]
    pub body: String,
    pub deadline: DateTime<Utc>,
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
    pub state: DirectiveState,
    /// Last reported percent done.
    #[serde(default)]
    pub progress: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Its deadline passed before it was done (it stays marked once done late).
    #[serde(default)]
    pub overdue: bool,
    #[serde(default)]
    pub reports: Vec<DirectiveReport>,
}

impl Directive {
    /// Whether it is past its deadline at `now` and not done.
    pub fn late_at(&self, now: DateTime<Utc>) -> bool {
        self.state.is_open() && self.deadline <= now
    }

    /// Whether it was answered by its deadline: done in time.
    pub fn on_time(&self) -> Option<bool> {
        match self.state {
            DirectiveState::Done => Some(self.done_at.is_some_and(|d| d <= self.deadline)),
            _ => None,
        }
    }

    /// List order: open before finished, then by deadline (soonest first).
    pub fn list_cmp(a: &Directive, b: &Directive) -> std::cmp::Ordering {
        b.state
            .is_open()
            .cmp(&a.state.is_open())
            .then(a.deadline.cmp(&b.deadline))
            .then(a.id.cmp(&b.id))
    }
}

/// `POST /api/directives`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IssueDirectiveRequest {
    pub unit: String,
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// RFC 3339; or give `within`.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// A duration from now, e.g. `2h`.
    #[serde(default)]
    pub within: Option<String>,
    #[serde(default)]
    pub incident: Option<i64>,
}

/// Body of `POST /api/directives/{id}/{ack|report|done|cancel}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DirectiveActionRequest {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub progress: Option<u8>,
}
