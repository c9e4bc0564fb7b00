//! Operating the city beyond single alerts: incidents worked through SOP templates
//! ([`incidents`], [`sop`]), alerts correlated into incidents ([`correlate`]), directives to
//! units ([`directives`]), silences and maintenance windows ([`silences`]) and the
//! after-action report ([`report`]).
//!
//! Like the alert book, each book here is plain state with the rules of its lifecycle and no
//! I/O: the pipeline task owns them, so every change is made by one task, persisted in the
//! same transaction as the alerts it touches, and published after the commit.

pub mod correlate;
pub mod directives;
pub mod incidents;
pub mod limits;
pub mod report;
pub mod silences;
pub mod sop;

use ioc_model::Role;

/// The actor name used for changes the engine makes by itself.
pub use crate::alerts::SYSTEM;

/// Who is acting, as the server authenticated them.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    /// Units they work in; empty: the whole province.
    pub units: Vec<String>,
}

impl Actor {
    /// The engine itself (correlation, timers).
    pub fn system() -> Actor {
        Actor {
            name: SYSTEM.into(),
            role: Role::Admin,
            units: Vec::new(),
        }
    }

    /// Whether something in `unit` is within their units.
    pub fn in_scope(&self, unit: Option<&str>) -> bool {
        self.units.is_empty() || unit.is_some_and(|u| self.units.iter().any(|x| x == u))
    }

    /// Whether they may work a step meant for `role`: their own role's steps; a supervisor
    /// or an admin any step.
    pub fn may_work(&self, role: Role) -> bool {
        self.role == role || matches!(self.role, Role::Supervisor | Role::Admin)
    }

    /// Supervisors and admins may override (skip a step, resolve with steps left).
    pub fn may_override(&self) -> bool {
        matches!(self.role, Role::Supervisor | Role::Admin)
    }
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (a missing comment, an unknown answer).
    #[error("{0}")]
    Invalid(String),
    /// Not now: the thing is in a state that does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// The role may not do it.
    #[error("{0}")]
    Forbidden(String),
    /// Outside the actor's units.
    #[error("{0}")]
    OutOfScope(String),
}

/// A comment with something in it.
pub(crate) fn text(c: Option<String>) -> Option<String> {
    c.map(|c| c.trim().to_string()).filter(|c| !c.is_empty())
}
