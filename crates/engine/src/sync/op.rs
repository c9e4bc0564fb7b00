//! The operations nodes exchange.

use super::Hlc;
use crate::alerts::AlertAction;
use crate::ingest::ExternalAlert;
use crate::operate::directives::DirectiveAction;
use ioc_model::{Alert, AttachmentInfo, Directive, Incident, Silence};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What something shared is called on every node: the node it was made on and its id there
/// (`oc-dien-chau/17`). Local ids differ from node to node; this does not.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Gid {
    pub node: String,
    pub id: i64,
}

impl Gid {
    pub fn new(node: &str, id: i64) -> Gid {
        Gid {
            node: node.to_string(),
            id,
        }
    }

    /// Reads `node/id`.
    pub fn parse(s: &str) -> Option<Gid> {
        let (node, id) = s.rsplit_once('/')?;
        (!node.is_empty()).then_some(())?;
        Some(Gid::new(node, id.parse().ok()?))
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.node, self.id)
    }
}

/// One operation as logged and sent: where and when it was made, and what it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpRecord {
    /// The node it was made on.
    pub origin: String,
    /// Its number among that node's operations, from 1, without gaps: what a node has of an
    /// origin is "everything up to N", and a repeat is recognised by it.
    pub seq: u64,
    pub hlc: Hlc,
    pub change: Change,
}

impl OpRecord {
    /// The order every node folds operations in.
    pub fn order_key(&self) -> (Hlc, &str, u64) {
        (self.hlc, &self.origin, self.seq)
    }
}

/// What an operation changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum Change {
    Alert {
        alert: Gid,
        op: AlertOp,
        /// When it happened, as the alert's times and timeline record it (the reading's
        /// time for a rule's change, the moment for an act). The hybrid time orders; this
        /// dates. Absent: the hybrid time's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    Directive {
        directive: Gid,
        op: DirectiveOp,
        /// When it happened (absent: the hybrid time's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    Silence {
        silence: Gid,
        op: SilenceOp,
        /// When it happened (absent: the hybrid time's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    Incident {
        incident: Gid,
        op: IncidentOp,
        /// When it happened (absent: the hybrid time's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

impl Change {
    /// What it is about, as the log indexes it (`alert:oc-dien-chau/17`).
    pub fn subject(&self) -> String {
        match self {
            Change::Alert { alert, .. } => format!("alert:{alert}"),
            Change::Directive { directive, .. } => format!("directive:{directive}"),
            Change::Silence { silence, .. } => format!("silence:{silence}"),
            Change::Incident { incident, .. } => format!("incident:{incident}"),
        }
    }
}

/// What happened to an incident, replayed by the fold through the incident book. Its
/// directives' changes are not among them: every node puts those on the timeline itself,
/// from the directives' own operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IncidentOp {
    /// Opened, at its origin: the incident as opened with its opening events, and the
    /// federation ids of its alerts (in the order of `incident.alerts`).
    Opened {
        incident: Box<Incident>,
        alerts: Vec<Gid>,
    },
    /// An alert joined it (the alert as it was then, for its severity and its line on the
    /// timeline).
    AlertAdded {
        alert: Gid,
        snapshot: Box<Alert>,
        actor: String,
    },
    /// Its late steps were flagged overdue (its origin's timer).
    Overdue,
    /// A person worked it, on some node.
    Acted { act: IncidentAct, actor: String },
    /// A person looked at what the merge flagged, on some node: the first `seen` things
    /// flagged (what they were shown; 0: all).
    Reviewed {
        actor: String,
        comment: Option<String>,
        #[serde(default)]
        seen: usize,
    },
}

/// What a person did to an incident (the operations of [`crate::pipeline::Op`] that change
/// one, as made).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "act", rename_all = "snake_case")]
pub enum IncidentAct {
    StepDone {
        step: String,
        answer: Option<String>,
        comment: Option<String>,
    },
    Check {
        step: String,
        item: usize,
        done: bool,
    },
    Skip {
        step: String,
        comment: Option<String>,
    },
    Comment {
        comment: Option<String>,
    },
    /// A file was attached; its bytes stay on the node it was attached on.
    Attached {
        info: Box<AttachmentInfo>,
    },
    Resolve {
        comment: Option<String>,
    },
    Reopen {
        comment: Option<String>,
    },
    Close {
        comment: Option<String>,
    },
}

impl IncidentAct {
    /// Its name, as the timeline says it.
    pub fn name(&self) -> &'static str {
        match self {
            IncidentAct::StepDone { .. } => "step_done",
            IncidentAct::Check { .. } => "check",
            IncidentAct::Skip { .. } => "skip",
            IncidentAct::Comment { .. } => "comment",
            IncidentAct::Attached { .. } => "attachment",
            IncidentAct::Resolve { .. } => "resolve",
            IncidentAct::Reopen { .. } => "reopen",
            IncidentAct::Close { .. } => "close",
        }
    }

    /// Work on the incident's steps (what the "needs a person" flag is about when it could
    /// not be taken in).
    pub fn is_work(&self) -> bool {
        matches!(
            self,
            IncidentAct::StepDone { .. }
                | IncidentAct::Check { .. }
                | IncidentAct::Skip { .. }
                | IncidentAct::Attached { .. }
        )
    }
}

/// What happened to a silence (a maintenance window, a known problem held back).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SilenceOp {
    /// Made, at its origin: the silence as made.
    Put { silence: Box<Silence> },
    /// Ended early by a person, on some node.
    Ended { actor: String },
}

/// What happened to a directive, replayed by the fold through the directive book.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirectiveOp {
    /// Issued, at its origin: the directive as issued (its `incident` is the origin's id).
    Issued { directive: Box<Directive> },
    /// Its deadline passed (its origin's timer).
    Overdue,
    /// A person acknowledged, reported, finished or withdrew it, on some node.
    Acted {
        action: DirectiveAction,
        actor: String,
        text: Option<String>,
    },
}

/// What happened to an alert. Each is one of the alert book's own changes, replayed by the
/// fold through the same code that made it, so the rules of the lifecycle are written once.
/// The time of each is its operation's hybrid time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertOp {
    /// Opened by a rule or received from an issuer, at its origin: the alert as it opened.
    Opened { alert: Box<Alert> },
    /// Its rule's condition held again (at its origin).
    Reactivated { value: f64, message: String },
    /// Its rule's condition stopped holding (at its origin).
    Cleared { auto_resolve: bool },
    /// The issuer sent a new version, or cancelled it.
    Issued { alert: Box<ExternalAlert> },
    /// A received alert's validity ended.
    Expired,
    /// Nobody acknowledged it in time (at its origin).
    Escalated,
    /// It joined an incident.
    Incident { incident: Gid, actor: String },
    /// A silence began holding it back (`Some`), or the one that did ended (`None`).
    Silenced { silence: Option<Gid> },
    /// A person (or the engine's timer, as `system`) acted on it, on some node.
    Acted {
        action: AlertAction,
        actor: String,
        comment: Option<String>,
        /// Its rule resolves it once acknowledged after it cleared.
        auto_resolve: bool,
    },
}
