//! The directive book: orders from the IOC to units, open until the unit reports them done
//! (or the IOC withdraws them). The unit's own people acknowledge and report progress; a
//! directive past its deadline is flagged once, on its reports and its incident's timeline.

use super::{text, Actor, OpError};
use chrono::{DateTime, Utc};
use ioc_model::{Directive, DirectiveReport, DirectiveState};
use std::collections::HashMap;

/// A changed directive and the report that records the change.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectiveChange {
    pub directive: Directive,
    pub report: DirectiveReport,
}

/// What someone does to a directive.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirectiveAction {
    /// The unit has received it.
    Ack,
    /// Progress in percent, with words.
    Report { progress: Option<u8> },
    /// Carried out.
    Done,
    /// Withdrawn by the IOC.
    Cancel,
}

impl DirectiveAction {
    pub fn name(&self) -> &'static str {
        match self {
            DirectiveAction::Ack => "ack",
            DirectiveAction::Report { .. } => "report",
            DirectiveAction::Done => "done",
            DirectiveAction::Cancel => "cancel",
        }
    }
}

/// A new directive.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDirective {
    pub unit: String,
    pub unit_name: String,
    pub title: String,
    pub body: String,
    pub deadline: DateTime<Utc>,
    pub incident: Option<i64>,
}

#[derive(Debug, Default)]
pub struct DirectiveBook {
    open: HashMap<i64, Directive>,
    next_id: i64,
    /// Directives issued on another node (their deadlines are that node's to watch).
    remote: std::collections::HashSet<i64>,
}

fn report(at: DateTime<Utc>, actor: &str, kind: &str) -> DirectiveReport {
    DirectiveReport {
        at,
        actor: actor.to_string(),
        kind: kind.to_string(),
        progress: None,
        text: None,
        node: None,
    }
}

impl DirectiveBook {
    pub fn new(open: Vec<Directive>, next_id: i64) -> DirectiveBook {
        let mut book = DirectiveBook {
            next_id: next_id.max(1),
            ..Default::default()
        };
        for d in open {
            book.next_id = book.next_id.max(d.id + 1);
            if d.state.is_open() {
                book.open.insert(d.id, d);
            }
        }
        book
    }

    pub fn get(&self, id: i64) -> Option<&Directive> {
        self.open.get(&id)
    }

    /// The id the next directive made here gets.
    pub fn peek_id(&self) -> i64 {
        self.next_id
    }

    /// Takes the next id for a directive of another node.
    pub fn allocate_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Marks directives as made on another node.
    pub fn set_remote(&mut self, ids: impl IntoIterator<Item = i64>) {
        self.remote.extend(ids);
    }

    /// Puts a directive as the federation's fold made it (open: kept; finished: dropped).
    pub fn install(&mut self, d: Directive, remote: bool) {
        if remote {
            self.remote.insert(d.id);
        }
        self.next_id = self.next_id.max(d.id + 1);
        if d.state.is_open() {
            self.open.insert(d.id, d);
        } else {
            self.open.remove(&d.id);
        }
    }

    /// Flags one directive overdue (its own node's timer did, replayed by the fold).
    pub fn flag_overdue(&mut self, id: i64, now: DateTime<Utc>) -> Option<DirectiveChange> {
        let d = self.open.get_mut(&id)?;
        if d.overdue {
            return None;
        }
        d.overdue = true;
        d.updated_at = now;
        let mut r = report(now, super::SYSTEM, "overdue");
        r.text = Some(format!("deadline {}", d.deadline.to_rfc3339()));
        d.reports.push(r.clone());
        Some(DirectiveChange {
            directive: d.clone(),
            report: r,
        })
    }

    pub fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.open.values()
    }

    /// Issues a directive (the caller has checked the role and that the unit exists).
    pub fn issue(
        &mut self,
        d: NewDirective,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<DirectiveChange, OpError> {
        let title = d.title.trim().to_string();
        if title.is_empty() {
            return Err(OpError::Invalid("a directive needs a title".into()));
        }
        if d.deadline <= now {
            return Err(OpError::Invalid(
                "the deadline must be in the future".into(),
            ));
        }
        if d.deadline > now + chrono::Duration::days(366) {
            return Err(OpError::Invalid(
                "the deadline is more than a year away".into(),
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut r = report(now, &actor.name, "issued");
        r.text = Some(title.clone());
        let directive = Directive {
            id,
            incident: d.incident,
            unit: d.unit,
            unit_name: d.unit_name,
            title,
            body: d.body.trim().to_string(),
            deadline: d.deadline,
            issued_by: actor.name.clone(),
            issued_at: now,
            state: DirectiveState::Issued,
            progress: 0,
            acked_at: None,
            acked_by: None,
            done_at: None,
            updated_at: now,
            overdue: false,
            reports: vec![r.clone()],
        };
        self.open.insert(id, directive.clone());
        Ok(DirectiveChange {
            directive,
            report: r,
        })
    }

    /// Acts on an open directive. The unit's people (within their units) acknowledge,
    /// report and finish it; cancelling is the IOC's (the caller checks that role).
    pub fn act(
        &mut self,
        id: i64,
        action: &DirectiveAction,
        actor: &Actor,
        words: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<DirectiveChange, OpError> {
        let words = text(words);
        let mut d = self
            .open
            .get(&id)
            .cloned()
            .ok_or_else(|| OpError::NotFound(format!("no open directive {id}")))?;
        // Cancelling too: a commune's people do not cancel another commune's orders.
        if !actor.in_scope(Some(&d.unit)) {
            return Err(OpError::OutOfScope(format!(
                "directive {id} is addressed to {}, outside your units",
                d.unit_name
            )));
        }
        let mut r = report(now, &actor.name, action.name());
        r.text = words.clone();
        match action {
            DirectiveAction::Ack => {
                if d.state != DirectiveState::Issued {
                    return Err(OpError::Conflict(format!(
                        "directive {id} is already {}",
                        d.state.as_str()
                    )));
                }
                d.state = DirectiveState::Acknowledged;
                d.acked_at = Some(now);
                d.acked_by = Some(actor.name.clone());
                r.kind = "acknowledged".into();
            }
            DirectiveAction::Report { progress } => {
                if words.is_none() && progress.is_none() {
                    return Err(OpError::Invalid(
                        "report some progress or some words".into(),
                    ));
                }
                if let Some(p) = progress {
                    if *p > 100 {
                        return Err(OpError::Invalid(
                            "progress is a percentage, 0 to 100".into(),
                        ));
                    }
                    if *p == 100 {
                        return Err(OpError::Invalid("100 %: report it done instead".into()));
                    }
                    d.progress = *p;
                }
                if d.acked_at.is_none() {
                    d.acked_at = Some(now);
                    d.acked_by = Some(actor.name.clone());
                }
                d.state = DirectiveState::InProgress;
                r.progress = *progress;
            }
            DirectiveAction::Done => {
                if d.acked_at.is_none() {
                    d.acked_at = Some(now);
                    d.acked_by = Some(actor.name.clone());
                }
                d.state = DirectiveState::Done;
                d.progress = 100;
                d.done_at = Some(now);
                if d.deadline < now {
                    d.overdue = true;
                }
                r.progress = Some(100);
            }
            DirectiveAction::Cancel => {
                if words.is_none() {
                    return Err(OpError::Invalid("say why it is withdrawn".into()));
                }
                d.state = DirectiveState::Cancelled;
                d.done_at = Some(now);
                r.kind = "cancelled".into();
            }
        }
        d.updated_at = now;
        d.reports.push(r.clone());
        if d.state.is_open() {
            self.open.insert(id, d.clone());
        } else {
            self.open.remove(&id);
        }
        Ok(DirectiveChange {
            directive: d,
            report: r,
        })
    }

    /// Directives whose deadline passed by `now` are flagged, once.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<DirectiveChange> {
        let mut out = Vec::new();
        let late: Vec<i64> = self
            .open
            .values()
            .filter(|d| !d.overdue && d.late_at(now) && !self.remote.contains(&d.id))
            .map(|d| d.id)
            .collect();
        for id in late {
            out.extend(self.flag_overdue(id, now));
        }
        out.sort_by_key(|c| c.directive.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::Role;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000 + min * 60, 0).unwrap()
    }

    fn who(name: &str, role: Role, units: &[&str]) -> Actor {
        Actor {
            name: name.into(),
            role,
            units: units.iter().map(|u| u.to_string()).collect(),
        }
    }

    fn new(deadline: DateTime<Utc>) -> NewDirective {
        NewDirective {
            unit: "17935".into(),
            unit_name: "Nam Đàn".into(),
            title: "Sơ tán 40 hộ ven sông Lam".into(),
            body: "Báo cáo số hộ đã sơ tán trước 18:00".into(),
            deadline,
            incident: Some(3),
        }
    }

    #[test]
    fn issued_acknowledged_reported_done() {
        let mut book = DirectiveBook::new(vec![], 1);
        let leader = who("thanh", Role::Leader, &[]);
        let oc = who("oc-namdan", Role::OcStaff, &["17935"]);
        let other = who("oc-vinh", Role::OcStaff, &["16681"]);
        assert!(
            book.issue(new(t(0)), &leader, t(0)).is_err(),
            "deadline in the past"
        );
        let d = book.issue(new(t(120)), &leader, t(0)).unwrap().directive;
        assert_eq!(d.state, DirectiveState::Issued);
        assert!(matches!(
            book.act(d.id, &DirectiveAction::Ack, &other, None, t(1)),
            Err(OpError::OutOfScope(_))
        ));
        let c = book
            .act(d.id, &DirectiveAction::Ack, &oc, None, t(5))
            .unwrap();
        assert_eq!(c.directive.acked_by.as_deref(), Some("oc-namdan"));
        assert!(book
            .act(d.id, &DirectiveAction::Ack, &oc, None, t(6))
            .is_err());
        let c = book
            .act(
                d.id,
                &DirectiveAction::Report { progress: Some(60) },
                &oc,
                Some("24/40 hộ".into()),
                t(30),
            )
            .unwrap();
        assert_eq!(c.directive.state, DirectiveState::InProgress);
        assert_eq!(c.directive.progress, 60);
        let c = book
            .act(
                d.id,
                &DirectiveAction::Done,
                &oc,
                Some("40/40 hộ".into()),
                t(100),
            )
            .unwrap();
        assert_eq!(c.directive.on_time(), Some(true));
        assert_eq!(c.directive.reports.len(), 4);
        assert!(
            book.get(d.id).is_none(),
            "finished directives leave the book"
        );
    }

    #[test]
    fn overdue_once_and_cancelled_with_a_reason() {
        let mut book = DirectiveBook::new(vec![], 1);
        let sup = who("minh", Role::Supervisor, &[]);
        let d = book.issue(new(t(60)), &sup, t(0)).unwrap().directive;
        assert!(book.due(t(59)).is_empty());
        let c = book.due(t(60));
        assert_eq!(c.len(), 1);
        assert!(c[0].directive.overdue);
        assert_eq!(c[0].report.kind, "overdue");
        assert!(book.due(t(90)).is_empty(), "once");
        assert!(book
            .act(d.id, &DirectiveAction::Cancel, &sup, None, t(91))
            .is_err());
        let c = book
            .act(
                d.id,
                &DirectiveAction::Cancel,
                &sup,
                Some("Đã có phương án khác".into()),
                t(91),
            )
            .unwrap();
        assert_eq!(c.directive.state, DirectiveState::Cancelled);
        assert_eq!(c.directive.on_time(), None);
    }
}
