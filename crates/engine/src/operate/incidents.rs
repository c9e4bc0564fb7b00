//! The incident book: every incident not yet closed, with the rules of its lifecycle and of
//! its SOP steps. One open incident per (category, unit): an alert of that kind in that unit
//! joins it rather than opening another. Every change returns the events for the timeline;
//! the caller persists and publishes them.

use super::sop::{self, ConditionCtx, SopTemplate};
use super::{text, Actor, OpError};
use chrono::{DateTime, Utc};
use ioc_model::{
    Alert, AttachmentInfo, Incident, IncidentEvent, IncidentEventKind, IncidentState, SopRef,
    StepStatus,
};
use std::collections::HashMap;

/// A changed incident and the events that changed it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentChange {
    pub incident: Incident,
    pub events: Vec<IncidentEvent>,
}

/// What incidents are grouped by: the alerts' category and unit.
pub type GroupKey = (String, Option<String>);

#[derive(Debug, Default)]
pub struct IncidentBook {
    open: HashMap<i64, Incident>,
    /// Open (not resolved) incidents by group.
    by_group: HashMap<GroupKey, i64>,
    next_id: i64,
    /// Incidents opened on other nodes: their own node's timer flags their steps late, and
    /// this node's alerts do not join them by themselves.
    remote: std::collections::HashSet<i64>,
}

fn ev(at: DateTime<Utc>, actor: &str, kind: IncidentEventKind) -> IncidentEvent {
    IncidentEvent {
        at,
        actor: actor.to_string(),
        kind,
        step: None,
        alert: None,
        directive: None,
        comment: None,
        node: None,
    }
}

/// An alert's line on an incident's timeline. One of another unit than the incident's is
/// named by its kind and severity only: the incident goes to the nodes of its own unit.
fn alert_line(a: &Alert, unit: Option<&str>) -> String {
    if a.unit.as_deref() == unit {
        format!("{} — {}", a.entity_name, a.message)
    } else {
        format!("{} · {}", a.category, a.severity.as_str())
    }
}

fn group_of(i: &Incident) -> GroupKey {
    (i.category.clone(), i.unit.clone())
}

/// Moves the incident's waiting steps on (see [`sop::advance`]).
fn advance(i: &mut Incident, now: DateTime<Utc>, actor: &str) -> Vec<IncidentEvent> {
    let severity = i.severity.as_str();
    let domain = i.domain.as_str();
    let ctx = ConditionCtx {
        severity,
        category: &i.category,
        unit: i.unit.as_deref(),
        domain,
    };
    let mut steps = std::mem::take(&mut i.steps);
    let events = sop::advance(&mut steps, &ctx, now, actor);
    i.steps = steps;
    events
}

impl IncidentBook {
    /// Starts from the incidents the store holds that are not closed.
    pub fn new(incidents: Vec<Incident>, next_id: i64) -> IncidentBook {
        let mut book = IncidentBook {
            next_id: next_id.max(1),
            ..Default::default()
        };
        for i in incidents {
            book.next_id = book.next_id.max(i.id + 1);
            if i.state == IncidentState::Closed {
                continue;
            }
            if i.state == IncidentState::Open {
                book.by_group.insert(group_of(&i), i.id);
            }
            book.open.insert(i.id, i);
        }
        book
    }

    pub fn get(&self, id: i64) -> Option<&Incident> {
        self.open.get(&id)
    }

    /// The id the next incident will get.
    pub fn peek_id(&self) -> i64 {
        self.next_id
    }

    /// Takes the next id (for an incident of another node).
    pub fn allocate_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Marks incidents as opened on another node.
    pub fn set_remote(&mut self, ids: impl IntoIterator<Item = i64>) {
        self.remote.extend(ids);
        // The group index names this node's own open incidents only (the latest of each
        // group), whatever order they were loaded in.
        let mut own: Vec<(GroupKey, i64)> = self
            .open
            .values()
            .filter(|i| i.state == IncidentState::Open && !self.remote.contains(&i.id))
            .map(|i| (group_of(i), i.id))
            .collect();
        own.sort_by_key(|(_, id)| *id);
        self.by_group = own.into_iter().collect();
    }

    /// Whether an incident was opened on another node.
    pub fn is_remote(&self, id: i64) -> bool {
        self.remote.contains(&id)
    }

    /// Puts an incident as the federation's fold made it (closed: dropped).
    pub fn install(&mut self, mut i: Incident, remote: bool) {
        if remote {
            self.remote.insert(i.id);
        }
        self.next_id = self.next_id.max(i.id + 1);
        i.events.clear();
        i.directives.clear();
        i.attachments.clear();
        let key = group_of(&i);
        if self.by_group.get(&key) == Some(&i.id) && i.state != IncidentState::Open {
            self.by_group.remove(&key);
        }
        // A group's incident is this node's own when it has one open.
        if i.state == IncidentState::Open && !remote && !self.by_group.contains_key(&key) {
            self.by_group.insert(key, i.id);
        }
        if i.state == IncidentState::Closed {
            self.open.remove(&i.id);
        } else {
            self.open.insert(i.id, i);
        }
    }

    /// Incidents not closed.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.open.values()
    }

    /// The open incident alerts of this category in this unit join.
    pub fn for_group(&self, category: &str, unit: Option<&str>) -> Option<i64> {
        self.by_group
            .get(&(category.to_string(), unit.map(str::to_string)))
            .copied()
    }

    /// Opens an incident with these alerts (at least one), worked through `template` if
    /// given. Alerts already in an incident are refused.
    pub fn open(
        &mut self,
        alerts: &[&Alert],
        template: Option<&SopTemplate>,
        title: Option<String>,
        actor: &Actor,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        let first = alerts
            .first()
            .ok_or_else(|| OpError::Invalid("an incident needs at least one alert".into()))?;
        // Scope first: someone of another unit learns nothing of these alerts.
        if let Some(a) = alerts.iter().find(|a| !actor.in_scope(a.unit.as_deref())) {
            return Err(OpError::OutOfScope(format!(
                "alert {} is outside your units",
                a.id
            )));
        }
        if let Some(a) = alerts.iter().find(|a| a.incident.is_some()) {
            return Err(OpError::Conflict(format!(
                "alert {} is already in incident {}",
                a.id,
                a.incident.unwrap_or_default()
            )));
        }
        let severity = alerts.iter().map(|a| a.severity).max().unwrap_or_default();
        let title = text(title).unwrap_or_else(|| {
            let place = first
                .unit_name
                .clone()
                .unwrap_or_else(|| first.entity_name.clone());
            if alerts.len() > 1 {
                format!("{} cảnh báo {} — {place}", alerts.len(), first.category)
            } else {
                format!("{} — {place}", first.message)
            }
        });
        let id = self.next_id;
        self.next_id += 1;
        let mut incident = Incident {
            id,
            title,
            category: first.category.clone(),
            severity,
            state: IncidentState::Open,
            unit: first.unit.clone(),
            unit_name: first.unit_name.clone(),
            domain: first.domain,
            alerts: alerts.iter().map(|a| a.id).collect(),
            sop: template.map(|t| SopRef {
                name: t.config.name.clone(),
                version: t.version,
                title: t.config.title.clone(),
            }),
            steps: template.map(SopTemplate::instantiate).unwrap_or_default(),
            opened_at: now,
            opened_by: actor.name.clone(),
            updated_at: now,
            resolved_at: None,
            closed_at: None,
            closed_by: None,
            attention: None,
            events: Vec::new(),
            directives: Vec::new(),
            attachments: Vec::new(),
        };
        let mut events = Vec::new();
        let mut opened = ev(now, &actor.name, IncidentEventKind::Opened);
        opened.comment = text(comment).or_else(|| {
            incident
                .sop
                .as_ref()
                .map(|s| format!("SOP {} v{}", s.name, s.version))
        });
        events.push(opened);
        for a in alerts {
            let mut e = ev(now, &actor.name, IncidentEventKind::AlertAdded);
            e.alert = Some(a.id);
            e.comment = Some(alert_line(a, incident.unit.as_deref()));
            events.push(e);
        }
        events.extend(advance(&mut incident, now, super::SYSTEM));
        self.by_group.insert(group_of(&incident), id);
        self.open.insert(id, incident.clone());
        Ok(IncidentChange { incident, events })
    }

    /// Changes a copy of an incident not yet closed; keeps it only if `f` succeeds.
    fn apply(
        &mut self,
        id: i64,
        f: impl FnOnce(&mut Incident, &mut Vec<IncidentEvent>) -> Result<(), OpError>,
    ) -> Result<IncidentChange, OpError> {
        let mut i = self
            .open
            .get(&id)
            .cloned()
            .ok_or_else(|| OpError::NotFound(format!("no incident {id} that is not closed")))?;
        let mut events = Vec::new();
        f(&mut i, &mut events)?;
        if let Some(last) = events.last() {
            i.updated_at = i.updated_at.max(last.at);
        }
        let key = group_of(&i);
        if i.state == IncidentState::Open {
            if !self.remote.contains(&id) {
                self.by_group.insert(key, id);
            }
        } else if self.by_group.get(&key) == Some(&id) {
            self.by_group.remove(&key);
        }
        if i.state == IncidentState::Closed {
            self.open.remove(&id);
        } else {
            self.open.insert(id, i.clone());
        }
        Ok(IncidentChange {
            incident: i,
            events,
        })
    }

    fn in_scope(i: &Incident, actor: &Actor) -> Result<(), OpError> {
        if actor.in_scope(i.unit.as_deref()) {
            Ok(())
        } else {
            Err(OpError::OutOfScope(format!(
                "incident {} is outside your units",
                i.id
            )))
        }
    }

    fn open_only(i: &Incident) -> Result<(), OpError> {
        if i.state == IncidentState::Open {
            Ok(())
        } else {
            Err(OpError::Conflict(format!(
                "incident {} is {}",
                i.id,
                i.state.as_str()
            )))
        }
    }

    /// An alert joins an open incident.
    pub fn add_alert(
        &mut self,
        id: i64,
        alert: &Alert,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        if let Some(other) = alert.incident {
            return Err(OpError::Conflict(format!(
                "alert {} is already in incident {other}",
                alert.id
            )));
        }
        if !actor.in_scope(alert.unit.as_deref()) {
            return Err(OpError::OutOfScope(format!(
                "alert {} is outside your units",
                alert.id
            )));
        }
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            Self::open_only(i)?;
            if i.alerts.contains(&alert.id) {
                return Err(OpError::Conflict(format!(
                    "alert {} is already in incident {id}",
                    alert.id
                )));
            }
            i.alerts.push(alert.id);
            i.severity = i.severity.max(alert.severity);
            let mut e = ev(now, &actor.name, IncidentEventKind::AlertAdded);
            e.alert = Some(alert.id);
            e.comment = Some(alert_line(alert, i.unit.as_deref()));
            events.push(e);
            Ok(())
        })
    }

    /// Finishes a ready step: its checklist ticked, its required comment and file given, its
    /// question answered. The steps after it may start (or be skipped, by their condition).
    pub fn step_done(
        &mut self,
        id: i64,
        step: &str,
        actor: &Actor,
        answer: Option<String>,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        let comment = text(comment);
        let answer = text(answer);
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            Self::open_only(i)?;
            let s =
                i.steps.iter_mut().find(|s| s.id == step).ok_or_else(|| {
                    OpError::NotFound(format!("incident {id} has no step {step:?}"))
                })?;
            if !actor.may_work(s.role) {
                return Err(OpError::Forbidden(format!(
                    "step {step:?} is for a {}",
                    s.role.as_str()
                )));
            }
            match s.status {
                StepStatus::Ready => {}
                StepStatus::Waiting => {
                    return Err(OpError::Conflict(format!(
                        "step {step:?} waits for {}",
                        s.after.join(", ")
                    )))
                }
                StepStatus::Done | StepStatus::Skipped => {
                    return Err(OpError::Conflict(format!(
                        "step {step:?} is already {}",
                        s.status.as_str()
                    )))
                }
            }
            let open_items: Vec<usize> = s
                .checklist
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.done)
                .map(|(n, _)| n + 1)
                .collect();
            if !open_items.is_empty() {
                return Err(OpError::Invalid(format!(
                    "step {step:?}: tick every checklist item first (left: {open_items:?})"
                )));
            }
            if s.require_comment && comment.is_none() {
                return Err(OpError::Invalid(format!("step {step:?} needs a comment")));
            }
            if s.require_attachment && s.attachments.is_empty() {
                return Err(OpError::Invalid(format!(
                    "step {step:?} needs a file attached (a photo, a record)"
                )));
            }
            if s.answers.is_empty() {
                if answer.is_some() {
                    return Err(OpError::Invalid(format!("step {step:?} asks no question")));
                }
            } else {
                // The answer as written, or its number (1, 2, …) in the list.
                let chosen = answer.as_deref().and_then(|a| {
                    s.answers
                        .iter()
                        .find(|x| x.as_str() == a)
                        .cloned()
                        .or_else(|| {
                            a.parse::<usize>()
                                .ok()
                                .and_then(|n| n.checked_sub(1))
                                .and_then(|n| s.answers.get(n).cloned())
                        })
                });
                match chosen {
                    Some(c) => s.answer = Some(c),
                    None => {
                        return Err(OpError::Invalid(format!(
                            "step {step:?} asks for one of: {}",
                            s.answers.join(" | ")
                        )))
                    }
                }
            }
            s.status = StepStatus::Done;
            s.done_at = Some(now);
            s.done_by = Some(actor.name.clone());
            s.comment = comment.clone();
            if s.due_at.is_some_and(|d| d < now) {
                s.overdue = true;
            }
            let mut e = ev(now, &actor.name, IncidentEventKind::StepDone);
            e.step = Some(step.to_string());
            e.comment = match (&s.answer, &comment) {
                (Some(a), Some(c)) => Some(format!("{a}: {c}")),
                (Some(a), None) => Some(a.clone()),
                (None, c) => c.clone(),
            };
            events.push(e);
            events.extend(advance(i, now, super::SYSTEM));
            Ok(())
        })
    }

    /// Ticks (or unticks) an item of a ready step's checklist.
    pub fn check(
        &mut self,
        id: i64,
        step: &str,
        item: usize,
        done: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            Self::open_only(i)?;
            let s =
                i.steps.iter_mut().find(|s| s.id == step).ok_or_else(|| {
                    OpError::NotFound(format!("incident {id} has no step {step:?}"))
                })?;
            if !actor.may_work(s.role) {
                return Err(OpError::Forbidden(format!(
                    "step {step:?} is for a {}",
                    s.role.as_str()
                )));
            }
            if s.status != StepStatus::Ready {
                return Err(OpError::Conflict(format!(
                    "step {step:?} is {}",
                    s.status.as_str()
                )));
            }
            let n = s.checklist.len();
            let c = s.checklist.get_mut(item).ok_or_else(|| {
                OpError::Invalid(format!("step {step:?} has {n} checklist items"))
            })?;
            if c.done == done {
                return Err(OpError::Conflict(format!(
                    "item {} is already {}",
                    item + 1,
                    if done { "ticked" } else { "unticked" }
                )));
            }
            c.done = done;
            c.by = done.then(|| actor.name.clone());
            c.at = done.then_some(now);
            let mut e = ev(now, &actor.name, IncidentEventKind::Checked);
            e.step = Some(step.to_string());
            e.comment = Some(format!("{} {}", if done { "☑" } else { "☐" }, c.text));
            events.push(e);
            Ok(())
        })
    }

    /// A supervisor skips a step that is waiting or ready, with a reason.
    pub fn skip(
        &mut self,
        id: i64,
        step: &str,
        actor: &Actor,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        let comment =
            text(comment).ok_or_else(|| OpError::Invalid("say why the step is skipped".into()))?;
        if !actor.may_override() {
            return Err(OpError::Forbidden(
                "only a supervisor may skip a step".into(),
            ));
        }
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            Self::open_only(i)?;
            let s =
                i.steps.iter_mut().find(|s| s.id == step).ok_or_else(|| {
                    OpError::NotFound(format!("incident {id} has no step {step:?}"))
                })?;
            if s.status.finished() {
                return Err(OpError::Conflict(format!(
                    "step {step:?} is already {}",
                    s.status.as_str()
                )));
            }
            s.status = StepStatus::Skipped;
            s.done_at = Some(now);
            s.done_by = Some(actor.name.clone());
            s.comment = Some(comment.clone());
            let mut e = ev(now, &actor.name, IncidentEventKind::StepSkipped);
            e.step = Some(step.to_string());
            e.comment = Some(comment);
            events.push(e);
            events.extend(advance(i, now, super::SYSTEM));
            Ok(())
        })
    }

    /// A note on the timeline.
    pub fn comment(
        &mut self,
        id: i64,
        actor: &Actor,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        let comment =
            text(comment).ok_or_else(|| OpError::Invalid("a comment needs some text".into()))?;
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            let mut e = ev(now, &actor.name, IncidentEventKind::Comment);
            e.comment = Some(comment);
            events.push(e);
            Ok(())
        })
    }

    /// A file was attached (to a step, or to the incident as a whole).
    pub fn attach(
        &mut self,
        id: i64,
        info: &AttachmentInfo,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            if let Some(step) = &info.step {
                let s = i.steps.iter_mut().find(|s| &s.id == step).ok_or_else(|| {
                    OpError::NotFound(format!("incident {id} has no step {step:?}"))
                })?;
                if s.status.finished() {
                    return Err(OpError::Conflict(format!(
                        "step {step:?} is already {}",
                        s.status.as_str()
                    )));
                }
                s.attachments.push(info.id);
            }
            let mut e = ev(now, &actor.name, IncidentEventKind::Attachment);
            e.step = info.step.clone();
            e.comment = Some(format!("{} ({} B)", info.name, info.size));
            events.push(e);
            Ok(())
        })
    }

    /// The work is done. With steps left, only a supervisor may resolve, saying why.
    pub fn resolve(
        &mut self,
        id: i64,
        actor: &Actor,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        let comment = text(comment);
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            Self::open_only(i)?;
            let left: Vec<&str> = i
                .steps
                .iter()
                .filter(|s| !s.status.finished())
                .map(|s| s.id.as_str())
                .collect();
            if !left.is_empty() {
                if !actor.may_override() {
                    return Err(OpError::Conflict(format!(
                        "steps not finished: {}",
                        left.join(", ")
                    )));
                }
                if comment.is_none() {
                    return Err(OpError::Invalid(format!(
                        "steps not finished ({}): say why it is resolved anyway",
                        left.join(", ")
                    )));
                }
            }
            i.state = IncidentState::Resolved;
            i.resolved_at = Some(now);
            let mut e = ev(now, &actor.name, IncidentEventKind::Resolved);
            e.comment = comment;
            events.push(e);
            Ok(())
        })
    }

    /// Work again on a resolved incident.
    pub fn reopen(
        &mut self,
        id: i64,
        actor: &Actor,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        let comment =
            text(comment).ok_or_else(|| OpError::Invalid("say why it is reopened".into()))?;
        if let Some(i) = self.open.get(&id) {
            let key = group_of(i);
            if let Some(other) = self.by_group.get(&key).filter(|&&o| o != id) {
                return Err(OpError::Conflict(format!(
                    "incident {other} is open for the same kind of event in the same unit"
                )));
            }
        }
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            if !i.state.can_become(IncidentState::Open) {
                return Err(OpError::Conflict(format!(
                    "incident {id} is {}",
                    i.state.as_str()
                )));
            }
            i.state = IncidentState::Open;
            i.resolved_at = None;
            let mut e = ev(now, &actor.name, IncidentEventKind::Reopened);
            e.comment = Some(comment);
            events.push(e);
            Ok(())
        })
    }

    /// Done with: the after-action report is final; it leaves the book.
    pub fn close(
        &mut self,
        id: i64,
        actor: &Actor,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IncidentChange, OpError> {
        self.apply(id, |i, events| {
            Self::in_scope(i, actor)?;
            if !i.state.can_become(IncidentState::Closed) {
                return Err(OpError::Conflict(format!(
                    "incident {id} is {}; resolve it first",
                    i.state.as_str()
                )));
            }
            i.state = IncidentState::Closed;
            i.closed_at = Some(now);
            i.closed_by = Some(actor.name.clone());
            let mut e = ev(now, &actor.name, IncidentEventKind::Closed);
            e.comment = text(comment);
            events.push(e);
            Ok(())
        })
    }

    /// Something happened to one of its directives.
    pub fn directive_event(
        &mut self,
        id: i64,
        directive: i64,
        kind: IncidentEventKind,
        actor: &str,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Option<IncidentChange> {
        self.apply(id, |_, events| {
            let mut e = ev(now, actor, kind);
            e.directive = Some(directive);
            e.comment = comment;
            events.push(e);
            Ok(())
        })
        .ok()
    }

    /// Steps that went past their SLA by `now` are marked overdue, once.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<IncidentChange> {
        let late: Vec<i64> = self
            .open
            .values()
            .filter(|i| i.state == IncidentState::Open && !self.remote.contains(&i.id))
            .filter(|i| i.steps.iter().any(|s| s.late_at(now) && !s.overdue))
            .map(|i| i.id)
            .collect();
        late.into_iter()
            .filter_map(|id| {
                self.apply(id, |i, events| {
                    for s in i.steps.iter_mut().filter(|s| s.late_at(now) && !s.overdue) {
                        s.overdue = true;
                        let mut e = ev(now, super::SYSTEM, IncidentEventKind::StepOverdue);
                        e.step = Some(s.id.clone());
                        e.comment = s.due_at.map(|d| format!("due {}", d.to_rfc3339()));
                        events.push(e);
                    }
                    Ok(())
                })
                .ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::{AlertState, Domain, Role, Severity};

    fn alert(id: i64, unit: &str, severity: Severity) -> Alert {
        Alert {
            id,
            rule: "water-alarm-2".into(),
            entity: Some(format!("wl-{id}")),
            entity_name: format!("Trạm {id}"),
            unit: Some(unit.into()),
            unit_name: Some("Nam Đàn".into()),
            domain: Domain::Water,
            category: "flood".into(),
            severity,
            state: AlertState::New,
            active: true,
            message: "Mực nước vượt báo động II".into(),
            metric: Some("water_level".into()),
            value: Some(4.2),
            raised_at: t(0),
            updated_at: t(0),
            cleared_at: None,
            acked_at: None,
            acked_by: None,
            count: 1,
            external_id: None,
            area: None,
            description: None,
            expires_at: None,
            assignee: None,
            shelved_until: None,
            escalation: 0,
            incident: None,
            silenced: None,
            resolved_at: None,
            events: Vec::new(),
        }
    }

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000 + min * 60, 0).unwrap()
    }

    fn who(role: Role, units: &[&str]) -> Actor {
        Actor {
            name: format!("{}-1", role.as_str()),
            role,
            units: units.iter().map(|u| u.to_string()).collect(),
        }
    }

    fn flood() -> SopTemplate {
        let text = sop::seed()
            .into_iter()
            .find(|(n, _)| *n == "flood-warning")
            .unwrap()
            .1;
        SopTemplate {
            config: sop::parse(text).unwrap(),
            version: 3,
            text: text.into(),
            updated_at: t(0),
            updated_by: "admin".into(),
        }
    }

    fn tick_all(book: &mut IncidentBook, id: i64, step: &str, actor: &Actor, at: i64) {
        let n = book
            .get(id)
            .unwrap()
            .steps
            .iter()
            .find(|s| s.id == step)
            .unwrap()
            .checklist
            .len();
        for item in 0..n {
            book.check(id, step, item, true, actor, t(at)).unwrap();
        }
    }

    #[test]
    fn an_incident_worked_through_its_sop_branch_by_branch() {
        let mut book = IncidentBook::new(vec![], 1);
        let op = who(Role::Operator, &[]);
        let sup = who(Role::Supervisor, &[]);
        let a = alert(7, "17935", Severity::Major);
        let c = book
            .open(&[&a], Some(&flood()), None, &op, None, t(0))
            .unwrap();
        let id = c.incident.id;
        assert_eq!(c.incident.sop.as_ref().unwrap().version, 3);
        assert_eq!(c.incident.alerts, vec![7]);
        assert_eq!(
            c.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![
                IncidentEventKind::Opened,
                IncidentEventKind::AlertAdded,
                IncidentEventKind::StepReady
            ]
        );
        assert_eq!(book.for_group("flood", Some("17935")), Some(id));

        // The checklist first, then the comment the step requires.
        let err = book.step_done(id, "verify", &op, None, Some("ok".into()), t(1));
        assert!(matches!(err, Err(OpError::Invalid(m)) if m.contains("checklist")));
        tick_all(&mut book, id, "verify", &op, 2);
        assert!(matches!(
            book.step_done(id, "verify", &op, None, None, t(3)),
            Err(OpError::Invalid(m)) if m.contains("comment")
        ));
        book.step_done(
            id,
            "verify",
            &op,
            None,
            Some("Trạm hạ lưu cũng tăng".into()),
            t(3),
        )
        .unwrap();
        // The question is for a supervisor; an operator may not answer it.
        assert!(matches!(
            book.step_done(
                id,
                "assess",
                &op,
                Some("Sơ tán dân".into()),
                Some("x".into()),
                t(4)
            ),
            Err(OpError::Forbidden(_))
        ));
        assert!(matches!(
            book.step_done(id, "assess", &sup, Some("Bỏ chạy".into()), Some("x".into()), t(4)),
            Err(OpError::Invalid(m)) if m.contains("one of")
        ));
        // Answer 2 (by number): "Theo dõi tăng cường".
        let c = book
            .step_done(
                id,
                "assess",
                &sup,
                Some("2".into()),
                Some("Mưa đã ngớt".into()),
                t(5),
            )
            .unwrap();
        let st = |c: &IncidentChange, s: &str| {
            c.incident.steps.iter().find(|x| x.id == s).unwrap().status
        };
        assert_eq!(st(&c, "evacuate"), StepStatus::Skipped);
        assert_eq!(st(&c, "monitor"), StepStatus::Ready);
        assert_eq!(
            st(&c, "notify_commune"),
            StepStatus::Ready,
            "parallel with monitor"
        );
        assert_eq!(st(&c, "close_out"), StepStatus::Waiting);
        // Nothing can be resolved with steps left, except by a supervisor who says why.
        assert!(matches!(
            book.resolve(id, &op, None, t(6)),
            Err(OpError::Conflict(_))
        ));
        tick_all(&mut book, id, "notify_commune", &op, 6);
        book.step_done(id, "notify_commune", &op, None, None, t(7))
            .unwrap();
        book.step_done(
            id,
            "monitor",
            &op,
            None,
            Some("Dưới BĐ I lúc 18:00".into()),
            t(8),
        )
        .unwrap();
        book.step_done(
            id,
            "close_out",
            &sup,
            None,
            Some("Không thiệt hại".into()),
            t(9),
        )
        .unwrap();
        assert!(matches!(
            book.close(id, &sup, None, t(10)),
            Err(OpError::Conflict(_))
        ));
        let c = book.resolve(id, &op, None, t(10)).unwrap();
        assert_eq!(c.incident.state, IncidentState::Resolved);
        assert_eq!(
            book.for_group("flood", Some("17935")),
            None,
            "resolved: new alerts open a new one"
        );
        let c = book
            .close(id, &sup, Some("Kết thúc".into()), t(11))
            .unwrap();
        assert_eq!(c.incident.state, IncidentState::Closed);
        assert!(book.get(id).is_none(), "closed incidents leave the book");
    }

    #[test]
    fn steps_past_their_sla_are_marked_once() {
        let mut book = IncidentBook::new(vec![], 1);
        let op = who(Role::Operator, &[]);
        let id = book
            .open(
                &[&alert(1, "17935", Severity::Major)],
                Some(&flood()),
                None,
                &op,
                None,
                t(0),
            )
            .unwrap()
            .incident
            .id;
        assert!(book.due(t(14)).is_empty());
        let c = book.due(t(15));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].events[0].kind, IncidentEventKind::StepOverdue);
        assert!(c[0].incident.steps[0].overdue);
        assert!(book.due(t(20)).is_empty(), "once");
        // Reloaded from the store: still overdue, not announced again.
        let mut book = IncidentBook::new(vec![c[0].incident.clone()], 2);
        assert!(book.due(t(30)).is_empty());
        assert_eq!(book.get(id).unwrap().late_steps(t(30)), 1);
    }

    #[test]
    fn scope_roles_and_grouping() {
        let mut book = IncidentBook::new(vec![], 1);
        let oc = who(Role::OcStaff, &["16681"]);
        let a = alert(1, "17935", Severity::Major);
        assert!(matches!(
            book.open(&[&a], None, None, &oc, None, t(0)),
            Err(OpError::OutOfScope(_))
        ));
        let op = who(Role::Operator, &[]);
        let c = book.open(&[&a], None, None, &op, None, t(0)).unwrap();
        assert!(c.incident.steps.is_empty(), "no SOP: free-form");
        let id = c.incident.id;
        let b = alert(2, "17935", Severity::Critical);
        let c = book.add_alert(id, &b, &op, t(1)).unwrap();
        assert_eq!(c.incident.alerts, vec![1, 2]);
        assert_eq!(c.incident.severity, Severity::Critical, "the worst alert");
        let mut in_it = b.clone();
        in_it.incident = Some(id);
        assert!(matches!(
            book.add_alert(id, &in_it, &op, t(2)),
            Err(OpError::Conflict(_))
        ));
        assert!(matches!(
            book.comment(id, &oc, Some("x".into()), t(2)),
            Err(OpError::OutOfScope(_))
        ));
        // Without steps it can be resolved at once.
        book.resolve(id, &op, None, t(3)).unwrap();
        book.reopen(id, &op, Some("Mưa lại".into()), t(4)).unwrap();
        assert_eq!(book.for_group("flood", Some("17935")), Some(id));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            Open(u8, u8),
            Done(u8, u8, u8),
            Check(u8, u8, u8),
            Skip(u8, u8),
            Resolve(u8, bool),
            Reopen(u8),
            Close(u8),
            Due(u16),
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (0u8..3, 0u8..2).prop_map(|(u, a)| Step::Open(u, a)),
                (1u8..5, 0u8..6, 0u8..3).prop_map(|(i, s, a)| Step::Done(i, s, a)),
                (1u8..5, 0u8..6, 0u8..3).prop_map(|(i, s, n)| Step::Check(i, s, n)),
                (1u8..5, 0u8..6).prop_map(|(i, s)| Step::Skip(i, s)),
                (1u8..5, any::<bool>()).prop_map(|(i, f)| Step::Resolve(i, f)),
                (1u8..5).prop_map(Step::Reopen),
                (1u8..5).prop_map(Step::Close),
                (0u16..90).prop_map(Step::Due),
            ]
        }

        const IDS: [&str; 6] = [
            "verify",
            "assess",
            "notify_commune",
            "evacuate",
            "monitor",
            "close_out",
        ];

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

            /// Whatever people do, in whatever order: closed incidents leave the book, one
            /// open incident per (category, unit), a step never starts before the steps it
            /// comes after are finished, a finished step never comes back, and a finished
            /// step says who finished it and when.
            #[test]
            fn the_book_never_reaches_an_invalid_state(ops in proptest::collection::vec(step(), 1..80)) {
                let mut book = IncidentBook::new(vec![], 1);
                let sup = who(Role::Supervisor, &[]);
                let op = who(Role::Operator, &[]);
                let template = flood();
                let mut minute = 0i64;
                let mut next_alert = 1;
                let mut finished: std::collections::HashSet<(i64, String)> = Default::default();
                for o in ops {
                    minute += 1;
                    let now = t(minute);
                    let actor = if minute % 2 == 0 { &sup } else { &op };
                    let _ = match o {
                        Step::Open(u, a) => {
                            let unit = ["17935", "16681", "16684"][u as usize];
                            let al = alert(next_alert, unit, Severity::Major);
                            next_alert += 1;
                            match book.for_group("flood", Some(unit)) {
                                Some(id) => book.add_alert(id, &al, actor, now).map(|_| ()),
                                None => book.open(&[&al], (a == 0).then_some(&template), None, actor, None, now).map(|_| ()),
                            }
                        }
                        Step::Done(i, s, a) => book
                            .step_done(i as i64, IDS[s as usize], actor, Some(["1", "2", "x"][a as usize].into()), Some("ok".into()), now)
                            .or_else(|_| book.step_done(i as i64, IDS[s as usize], actor, None, Some("ok".into()), now))
                            .map(|_| ()),
                        Step::Check(i, s, n) => book.check(i as i64, IDS[s as usize], n as usize, true, actor, now).map(|_| ()),
                        Step::Skip(i, s) => book.skip(i as i64, IDS[s as usize], actor, Some("bỏ".into()), now).map(|_| ()),
                        Step::Resolve(i, f) => book.resolve(i as i64, actor, f.then(|| "xong".into()), now).map(|_| ()),
                        Step::Reopen(i) => book.reopen(i as i64, actor, Some("lại".into()), now).map(|_| ()),
                        Step::Close(i) => book.close(i as i64, actor, None, now).map(|_| ()),
                        Step::Due(m) => {
                            minute += i64::from(m);
                            book.due(t(minute));
                            Ok(())
                        }
                    };
                    let mut groups = std::collections::HashSet::new();
                    for i in book.incidents() {
                        prop_assert!(i.state != IncidentState::Closed, "closed incidents leave the book");
                        if i.state == IncidentState::Open {
                            prop_assert!(groups.insert(group_of(i)), "two open incidents for one group");
                            prop_assert_eq!(book.for_group(&i.category, i.unit.as_deref()), Some(i.id));
                        }
                        let status: HashMap<&str, StepStatus> = i.steps.iter().map(|s| (s.id.as_str(), s.status)).collect();
                        for s in &i.steps {
                            if matches!(s.status, StepStatus::Ready | StepStatus::Done) {
                                for a in &s.after {
                                    prop_assert!(status[a.as_str()].finished(), "{} started before {}", s.id, a);
                                }
                            }
                            let key = (i.id, s.id.clone());
                            if s.status.finished() {
                                prop_assert!(s.done_at.is_some());
                                if s.status == StepStatus::Done {
                                    prop_assert!(s.done_by.is_some());
                                    prop_assert!(s.answers.is_empty() || s.answer.as_ref().is_some_and(|a| s.answers.contains(a)));
                                }
                                finished.insert(key);
                            } else {
                                prop_assert!(!finished.contains(&key), "step {} of {} came back", s.id, i.id);
                            }
                        }
                    }
                }
            }
        }
    }
}
