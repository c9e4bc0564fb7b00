//! The alert book: every alert not yet closed, with the rules of its lifecycle. One open
//! alert per (rule, entity): a condition that fires again while its alert is open
//! re-activates it and counts the repeat instead of opening a second one. A resolved alert
//! stays in the book until somebody closes it, but a new occurrence opens a new alert. Every
//! change produces the events to append to the alert's timeline; the caller persists and
//! publishes them together.

use crate::ingest::ExternalAlert;
use chrono::{DateTime, Utc};
use ioc_model::{Alert, AlertEvent, AlertEventKind, AlertState, Domain, Entity, Severity};
use std::collections::HashMap;

/// The actor name used for changes the engine makes by itself.
pub const SYSTEM: &str = "system";

/// The comment of a shelved alert coming back by itself.
pub const UNSHELVED: &str = "shelving time is up";

/// A changed alert and the events that changed it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    pub alert: Alert,
    pub events: Vec<AlertEvent>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertError {
    #[error("no alert {0} that is still open or waiting to be closed")]
    NotFound(i64),
    #[error("alert {id} is {from}; it cannot become {to}")]
    InvalidTransition {
        id: i64,
        from: &'static str,
        to: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("alert {0} is outside your units")]
    OutOfScope(i64),
}

/// What a person (or the engine) does to an alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "act", rename_all = "snake_case")]
pub enum AlertAction {
    Ack,
    /// To a user or a team; also re-assigns an assigned alert.
    Assign {
        to: String,
    },
    /// Work has started.
    Start,
    /// A note on the timeline (the comment is required).
    Comment,
    Resolve,
    /// A resolved alert is done with.
    Close,
    /// Out of the queue until a time (at most a week ahead).
    Shelve {
        until: DateTime<Utc>,
    },
    Unshelve,
}

impl AlertAction {
    /// The name used in routes and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            AlertAction::Ack => "ack",
            AlertAction::Assign { .. } => "assign",
            AlertAction::Start => "start",
            AlertAction::Comment => "comment",
            AlertAction::Resolve => "resolve",
            AlertAction::Close => "close",
            AlertAction::Shelve { .. } => "shelve",
            AlertAction::Unshelve => "unshelve",
        }
    }
}

/// When unacknowledged alerts escalate.
#[derive(Debug, Clone, Copy)]
pub struct Escalation {
    /// After this long without an acknowledgement, and again after as long once more.
    pub after: chrono::Duration,
    /// At most this many times.
    pub max: u8,
}

/// The role told at each escalation level.
pub fn escalation_role(level: u8) -> &'static str {
    match level {
        0 | 1 => "supervisor",
        _ => "leader",
    }
}

/// What a rule contributes to the alert it raises.
pub struct RaiseSpec<'a> {
    pub rule: &'a str,
    pub category: &'a str,
    pub severity: Severity,
    pub domain: Option<Domain>,
    pub message: String,
    pub metric: &'a str,
    pub value: f64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct AlertBook {
    by_key: HashMap<(String, String), i64>,
    open: HashMap<i64, Alert>,
    next_id: i64,
    /// Alerts made on other nodes: their own node's rules raise, clear, escalate and expire
    /// them, so this node's rules and timers leave them alone (people here still act on them).
    foreign: std::collections::HashSet<i64>,
}

fn event(at: DateTime<Utc>, actor: &str, kind: AlertEventKind) -> AlertEvent {
    AlertEvent {
        at,
        actor: actor.to_string(),
        kind,
        from: None,
        to: None,
        comment: None,
        value: None,
        node: None,
    }
}

/// What an open alert is unique by, with its rule: the entity for a rule's alert, the
/// issuer's id for a received one.
pub(crate) fn subject(a: &Alert) -> String {
    a.external_id
        .clone()
        .or_else(|| a.entity.clone())
        .unwrap_or_default()
}

impl AlertBook {
    /// Starts from the open alerts found in the store.
    pub fn new(open_alerts: Vec<Alert>, next_id: i64) -> AlertBook {
        let mut book = AlertBook {
            next_id: next_id.max(1),
            ..Default::default()
        };
        for a in open_alerts {
            if a.state.is_open() {
                book.by_key.insert((a.rule.clone(), subject(&a)), a.id);
            }
            book.next_id = book.next_id.max(a.id + 1);
            book.open.insert(a.id, a);
        }
        book
    }

    /// Marks alerts of the book as made on other nodes (see [`AlertBook::install`]).
    pub fn set_foreign(&mut self, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            self.foreign.insert(id);
            if let Some(a) = self.open.get(&id) {
                let key = (a.rule.clone(), subject(a));
                if self.by_key.get(&key) == Some(&id) {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    /// The id [`AlertBook::allocate_id`] would give next.
    pub fn peek_id(&self) -> i64 {
        self.next_id
    }

    /// A new id for an alert made on another node.
    pub fn allocate_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Puts in an alert as its operations fold ([`crate::sync::fold`]), replacing what the book
    /// had of it. `foreign`: made on another node.
    pub fn install(&mut self, alert: Alert, foreign: bool) {
        let id = alert.id;
        self.next_id = self.next_id.max(id + 1);
        let key = (alert.rule.clone(), subject(&alert));
        if self.by_key.get(&key) == Some(&id) {
            self.by_key.remove(&key);
        }
        if foreign {
            self.foreign.insert(id);
        } else if alert.state.is_open() {
            self.by_key.insert(key, id);
        }
        if alert.state == AlertState::Closed {
            self.open.remove(&id);
        } else {
            let mut a = alert;
            a.events.clear();
            self.open.insert(id, a);
        }
    }

    /// Whether the alert was made on another node.
    pub fn is_foreign(&self, id: i64) -> bool {
        self.foreign.contains(&id)
    }

    /// Open alerts (not resolved, not closed).
    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.open.values().filter(|a| a.state.is_open())
    }

    pub fn get(&self, id: i64) -> Option<&Alert> {
        self.open.get(&id)
    }

    pub fn find(&self, rule: &str, entity: &str) -> Option<&Alert> {
        self.by_key
            .get(&(rule.to_string(), entity.to_string()))
            .and_then(|id| self.open.get(id))
    }

    /// A rule's condition has held for its duration.
    pub fn raise(&mut self, entity: &Entity, spec: RaiseSpec<'_>) -> Option<AlertChange> {
        let key = (spec.rule.to_string(), entity.id.clone());
        if let Some(&id) = self.by_key.get(&key) {
            return self.reactivate(id, spec.value, spec.message, spec.at);
        }
        let id = self.next_id;
        self.next_id += 1;
        let alert = Alert {
            id,
            rule: spec.rule.to_string(),
            entity: Some(entity.id.clone()),
            entity_name: entity.name.clone(),
            unit: entity.unit.clone(),
            unit_name: entity.unit_name.clone(),
            domain: spec.domain.unwrap_or(entity.domain),
            category: spec.category.to_string(),
            severity: spec.severity,
            state: AlertState::New,
            active: true,
            message: spec.message,
            metric: Some(spec.metric.to_string()),
            value: Some(spec.value),
            raised_at: spec.at,
            updated_at: spec.at,
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
        };
        let mut ev = event(spec.at, SYSTEM, AlertEventKind::Raised);
        ev.to = Some(AlertState::New);
        ev.value = Some(spec.value);
        self.by_key.insert(key, id);
        self.open.insert(id, alert.clone());
        Some(AlertChange {
            alert,
            events: vec![ev],
        })
    }

    /// An alert received from outside (CAP, NGSI): a new one opens an alert; a new version
    /// of one already open updates it; a cancellation resolves it. Returns `None` when there
    /// is nothing to do (a cancellation of an alert that is not open, an unchanged repeat).
    pub fn external(&mut self, ext: &ExternalAlert, now: DateTime<Utc>) -> Option<AlertChange> {
        let actor = format!("source:{}", ext.source);
        let active = !ext.cancelled && ext.expires.is_none_or(|e| e > now);
        let key = (ext.source.clone(), ext.key.clone());
        if let Some(&id) = self.by_key.get(&key) {
            return self
                .apply(id, |a, events| {
                    let before = a.clone();
                    a.severity = ext.severity;
                    a.category = ext.category.clone();
                    a.message = ext.headline.clone();
                    a.description = ext.description.clone();
                    a.area = ext.area.clone();
                    a.expires_at = ext.expires;
                    a.active = active;
                    if let Some(n) = &ext.area_desc {
                        a.entity_name = n.clone();
                    }
                    if ext.cancelled {
                        a.cleared_at = Some(ext.sent);
                        let mut ev = event(ext.sent, &actor, AlertEventKind::Cleared);
                        ev.comment = Some("cancelled by the issuer".into());
                        events.push(ev);
                        events.push(transition(a, AlertState::Resolved, &actor, None, ext.sent)?);
                    } else if *a != before {
                        a.updated_at = ext.sent.max(a.updated_at);
                        events.push(event(ext.sent, &actor, AlertEventKind::Updated));
                    }
                    Ok(())
                })
                .ok()
                .filter(|c| !c.events.is_empty());
        }
        if ext.cancelled {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let alert = Alert {
            id,
            rule: ext.source.clone(),
            entity: ext.entity.clone(),
            entity_name: ext
                .area_desc
                .clone()
                .unwrap_or_else(|| ext.headline.clone()),
            unit: None,
            unit_name: ext.area_desc.clone(),
            domain: ext.domain,
            category: ext.category.clone(),
            severity: ext.severity,
            state: AlertState::New,
            active,
            message: ext.headline.clone(),
            metric: None,
            value: None,
            raised_at: ext.sent,
            updated_at: ext.sent,
            cleared_at: (!active).then_some(now),
            acked_at: None,
            acked_by: None,
            count: 1,
            external_id: Some(ext.key.clone()),
            area: ext.area.clone(),
            description: ext.description.clone(),
            expires_at: ext.expires,
            assignee: None,
            shelved_until: None,
            escalation: 0,
            incident: None,
            silenced: None,
            resolved_at: None,
            events: Vec::new(),
        };
        let mut ev = event(ext.sent, &actor, AlertEventKind::Raised);
        ev.to = Some(AlertState::New);
        self.by_key.insert(key, id);
        self.open.insert(id, alert.clone());
        Some(AlertChange {
            alert,
            events: vec![ev],
        })
    }

    /// The condition of an open alert that had cleared holds again: it counts the repeat
    /// instead of opening a second alert.
    pub fn reactivate(
        &mut self,
        id: i64,
        value: f64,
        message: String,
        at: DateTime<Utc>,
    ) -> Option<AlertChange> {
        let a = self.open.get_mut(&id)?;
        if a.active || !a.state.is_open() {
            return None;
        }
        a.active = true;
        a.count += 1;
        a.value = Some(value);
        a.message = message;
        a.cleared_at = None;
        a.updated_at = at;
        let mut ev = event(at, SYSTEM, AlertEventKind::Reactivated);
        ev.value = Some(value);
        Some(AlertChange {
            alert: a.clone(),
            events: vec![ev],
        })
    }

    /// Received alerts whose validity ended by `now` stop being active.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<AlertChange> {
        let due: Vec<i64> = self
            .open
            .values()
            .filter(|a| a.active && a.expires_at.is_some_and(|e| e <= now))
            .filter(|a| !self.foreign.contains(&a.id))
            .map(|a| a.id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.expire_one(id, now))
            .collect()
    }

    /// A received alert's validity ended.
    pub fn expire_one(&mut self, id: i64, now: DateTime<Utc>) -> Option<AlertChange> {
        if !self.open.get(&id)?.active {
            return None;
        }
        self.apply(id, |a, events| {
            a.active = false;
            a.cleared_at = Some(now);
            a.updated_at = now;
            let mut ev = event(now, SYSTEM, AlertEventKind::Cleared);
            ev.comment = Some("expired".into());
            events.push(ev);
            Ok(())
        })
        .ok()
    }

    /// A rule's condition stopped holding. An alert an operator has already taken in hand is
    /// resolved by itself when `auto_resolve`; a new one stays in the queue, marked cleared,
    /// until somebody acknowledges it (so nothing that happened goes unseen).
    pub fn clear(
        &mut self,
        rule: &str,
        entity: &str,
        at: DateTime<Utc>,
        auto_resolve: bool,
    ) -> Option<AlertChange> {
        let id = *self.by_key.get(&(rule.to_string(), entity.to_string()))?;
        if !self.open.get(&id)?.active {
            return None;
        }
        self.apply(id, |a, events| {
            a.active = false;
            a.cleared_at = Some(at);
            a.updated_at = at;
            events.push(event(at, SYSTEM, AlertEventKind::Cleared));
            let taken_in_hand = !matches!(a.state, AlertState::New | AlertState::Shelved);
            if auto_resolve && taken_in_hand {
                events.push(transition(a, AlertState::Resolved, SYSTEM, None, at)?);
            }
            Ok(())
        })
        .ok()
    }

    /// An operator acknowledges an alert. If its condition has already cleared and the rule
    /// resolves by itself, it is resolved right after.
    pub fn acknowledge(
        &mut self,
        id: i64,
        actor: &str,
        comment: Option<String>,
        at: DateTime<Utc>,
        auto_resolve: bool,
    ) -> Result<AlertChange, AlertError> {
        self.apply(id, |a, events| {
            events.push(transition(a, AlertState::Acknowledged, actor, comment, at)?);
            a.acked_at = Some(at);
            a.acked_by = Some(actor.to_string());
            if !a.active && auto_resolve {
                events.push(transition(a, AlertState::Resolved, SYSTEM, None, at)?);
            }
            Ok(())
        })
    }

    /// What a person does to an alert. `auto_resolve`: whether its rule resolves it once
    /// acknowledged after its condition cleared.
    pub fn act(
        &mut self,
        id: i64,
        action: &AlertAction,
        actor: &str,
        comment: Option<String>,
        at: DateTime<Utc>,
        auto_resolve: bool,
    ) -> Result<AlertChange, AlertError> {
        let comment = comment.filter(|c| !c.trim().is_empty());
        match action {
            AlertAction::Ack => return self.acknowledge(id, actor, comment, at, auto_resolve),
            AlertAction::Comment if comment.is_none() => {
                return Err(AlertError::Invalid("a comment needs some text".into()))
            }
            AlertAction::Assign { to } if to.trim().is_empty() => {
                return Err(AlertError::Invalid("assign to whom?".into()))
            }
            AlertAction::Shelve { until } if *until <= at => {
                return Err(AlertError::Invalid(
                    "shelve until a time in the future".into(),
                ))
            }
            AlertAction::Shelve { until } if *until > at + chrono::Duration::days(7) => {
                return Err(AlertError::Invalid("shelve for at most a week".into()))
            }
            _ => {}
        }
        self.apply(id, |a, events| {
            match action {
                AlertAction::Ack => unreachable!("handled above"),
                AlertAction::Comment => {
                    let mut ev = event(at, actor, AlertEventKind::Comment);
                    ev.comment = comment;
                    events.push(ev);
                    a.updated_at = at;
                }
                AlertAction::Assign { to } => {
                    let to = to.trim().to_string();
                    let note = match &comment {
                        Some(c) => format!("→ {to}: {c}"),
                        None => format!("→ {to}"),
                    };
                    if a.state == AlertState::Assigned {
                        // Re-assignment: same state, new assignee.
                        let mut ev = event(at, actor, AlertEventKind::Transition);
                        ev.from = Some(a.state);
                        ev.to = Some(a.state);
                        ev.comment = Some(note);
                        events.push(ev);
                        a.updated_at = at;
                    } else {
                        events.push(transition(a, AlertState::Assigned, actor, Some(note), at)?);
                    }
                    if a.acked_at.is_none() {
                        a.acked_at = Some(at);
                        a.acked_by = Some(actor.to_string());
                    }
                    a.assignee = Some(to);
                }
                AlertAction::Start => {
                    events.push(transition(a, AlertState::InProgress, actor, comment, at)?);
                    if a.acked_at.is_none() {
                        a.acked_at = Some(at);
                        a.acked_by = Some(actor.to_string());
                    }
                }
                AlertAction::Resolve => {
                    events.push(transition(a, AlertState::Resolved, actor, comment, at)?);
                }
                AlertAction::Close => {
                    events.push(transition(a, AlertState::Closed, actor, comment, at)?);
                }
                AlertAction::Shelve { until } => {
                    events.push(transition(a, AlertState::Shelved, actor, comment, at)?);
                    a.shelved_until = Some(*until);
                }
                AlertAction::Unshelve => {
                    events.push(transition(a, AlertState::New, actor, comment, at)?);
                    // Kept: the time it came back, from which escalation counts again.
                    a.shelved_until = Some(at);
                }
            }
            Ok(())
        })
    }

    /// Time-driven changes due by `now`: shelved alerts whose time is up come back; alerts
    /// nobody acknowledged escalate (their severity goes up and the next role is told).
    /// Derived from stored fields only, so a restart continues where it was.
    pub fn due(
        &mut self,
        now: DateTime<Utc>,
        escalation: &dyn Fn(&Alert) -> Option<Escalation>,
    ) -> Vec<AlertChange> {
        let mut out = Vec::new();
        let unshelve: Vec<i64> = self
            .open
            .values()
            .filter(|a| a.state == AlertState::Shelved && a.shelved_until.is_some_and(|u| u <= now))
            .filter(|a| !self.foreign.contains(&a.id))
            .map(|a| a.id)
            .collect();
        for id in unshelve {
            if let Ok(c) = self.act(
                id,
                &AlertAction::Unshelve,
                SYSTEM,
                Some(UNSHELVED.into()),
                now,
                false,
            ) {
                out.push(c);
            }
        }
        let escalate: Vec<(i64, Escalation)> = self
            .open
            .values()
            .filter(|a| a.state == AlertState::New && a.silenced.is_none())
            .filter(|a| !self.foreign.contains(&a.id))
            .filter_map(|a| {
                let e = escalation(a)?;
                // From when it was raised, or came back from being shelved.
                let since = a.shelved_until.map_or(a.raised_at, |b| b.max(a.raised_at));
                let due = since + e.after * (i32::from(a.escalation) + 1);
                (a.escalation < e.max && due <= now).then_some((a.id, e))
            })
            .collect();
        for (id, _) in escalate {
            if let Ok(c) = self.escalate(id, now) {
                out.push(c);
            }
        }
        out
    }

    /// Nobody acknowledged the alert in time: its severity goes up one step and the next role
    /// is told. Only a new alert escalates (one acknowledged meanwhile elsewhere does not).
    pub fn escalate(&mut self, id: i64, now: DateTime<Utc>) -> Result<AlertChange, AlertError> {
        self.apply(id, |a, events| {
            if a.state != AlertState::New {
                return Err(AlertError::InvalidTransition {
                    id,
                    from: a.state.as_str(),
                    to: "escalated",
                });
            }
            a.escalation += 1;
            let from = a.severity;
            a.severity = match a.severity {
                Severity::Info => Severity::Warning,
                Severity::Warning => Severity::Major,
                _ => Severity::Critical,
            };
            a.updated_at = now;
            let mut ev = event(now, SYSTEM, AlertEventKind::Escalated);
            ev.comment = Some(format!(
                "not acknowledged: {} → {}, {} notified",
                from.as_str(),
                a.severity.as_str(),
                escalation_role(a.escalation)
            ));
            ev.value = Some(f64::from(a.escalation));
            events.push(ev);
            Ok(())
        })
    }

    /// The alert joined an incident.
    pub fn link_incident(
        &mut self,
        id: i64,
        incident: i64,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<AlertChange, AlertError> {
        self.apply(id, |a, events| {
            if a.incident == Some(incident) {
                return Err(AlertError::Invalid(format!(
                    "alert {id} is already in incident {incident}"
                )));
            }
            a.incident = Some(incident);
            a.updated_at = at;
            let mut ev = event(at, actor, AlertEventKind::Incident);
            ev.value = Some(incident as f64);
            events.push(ev);
            Ok(())
        })
    }

    /// A silence matched the alert (`Some`), or the one that did has ended (`None`).
    pub fn set_silence(
        &mut self,
        id: i64,
        silence: Option<i64>,
        at: DateTime<Utc>,
    ) -> Option<AlertChange> {
        if self.open.get(&id)?.silenced == silence {
            return None;
        }
        self.apply(id, |a, events| {
            let mut ev = match silence {
                Some(s) => {
                    let mut ev = event(at, SYSTEM, AlertEventKind::Silenced);
                    ev.value = Some(s as f64);
                    ev
                }
                None => event(at, SYSTEM, AlertEventKind::Unsilenced),
            };
            if silence.is_none() {
                // Escalation counts from when it came back into the queue.
                ev.value = a.silenced.map(|s| s as f64);
                if a.state == AlertState::New {
                    a.shelved_until = Some(at);
                }
            }
            a.silenced = silence;
            a.updated_at = at;
            events.push(ev);
            Ok(())
        })
        .ok()
    }

    /// Closes an alert with its incident: resolved first if it was still open.
    pub fn close_with_incident(
        &mut self,
        id: i64,
        incident: i64,
        actor: &str,
        at: DateTime<Utc>,
        close: bool,
    ) -> Option<AlertChange> {
        let note = format!("incident #{incident}");
        self.apply(id, |a, events| {
            if a.state == AlertState::Shelved || a.state.is_open() {
                events.push(transition(
                    a,
                    AlertState::Resolved,
                    actor,
                    Some(note.clone()),
                    at,
                )?);
            }
            if close && a.state == AlertState::Resolved {
                events.push(transition(a, AlertState::Closed, actor, Some(note), at)?);
            }
            Ok(())
        })
        .ok()
        .filter(|c| !c.events.is_empty())
    }

    /// Changes a copy of an open alert; keeps the change only if `f` succeeds. An alert that
    /// is no longer open leaves the book (it stays in the store).
    fn apply(
        &mut self,
        id: i64,
        f: impl FnOnce(&mut Alert, &mut Vec<AlertEvent>) -> Result<(), AlertError>,
    ) -> Result<AlertChange, AlertError> {
        let mut a = self
            .open
            .get(&id)
            .cloned()
            .ok_or(AlertError::NotFound(id))?;
        let mut events = Vec::new();
        f(&mut a, &mut events)?;
        if !a.state.is_open() {
            let key = (a.rule.clone(), subject(&a));
            if self.by_key.get(&key) == Some(&id) {
                self.by_key.remove(&key);
            }
        }
        if a.state == AlertState::Closed {
            self.open.remove(&id);
        } else {
            self.open.insert(id, a.clone());
        }
        Ok(AlertChange { alert: a, events })
    }
}

fn transition(
    a: &mut Alert,
    to: AlertState,
    actor: &str,
    comment: Option<String>,
    at: DateTime<Utc>,
) -> Result<AlertEvent, AlertError> {
    if !a.state.can_become(to) {
        return Err(AlertError::InvalidTransition {
            id: a.id,
            from: a.state.as_str(),
            to: to.as_str(),
        });
    }
    let mut ev = event(at, actor, AlertEventKind::Transition);
    ev.from = Some(a.state);
    ev.to = Some(to);
    ev.comment = comment;
    a.state = to;
    a.updated_at = at;
    if to == AlertState::Resolved {
        a.resolved_at = Some(at);
    }
    Ok(ev)
}

/// `[alerts]`: the lifecycle's timers.
#[derive(serde::Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// An alert nobody acknowledged for this long escalates: its severity goes up one step and
    /// the next role up is notified (supervisor, then leader); again after as long once more.
    #[serde(with = "humantime_serde")]
    pub escalate_after: std::time::Duration,
    /// How many times at most (0: never).
    pub escalate_max: u8,
    /// The desktop app shows a native notification for new alerts this severe and above
    /// (`off`: none).
    pub notify: NotifyLevel,
    /// A value dated more than this before now is history (an import, a backfill, an OC
    /// catching up after its link came back): stored, rolled up and shown, but not evaluated
    /// by the live rules, so it never pages anyone as if it were happening now. What the rules
    /// would have raised on it is what the rules screen's backtest shows for that period.
    #[serde(with = "humantime_serde")]
    pub history_after: std::time::Duration,
}

/// `[alerts] notify`: a severity, or `off`.
#[derive(serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    Off,
    Info,
    Warning,
    Major,
    Critical,
}

impl NotifyLevel {
    /// The least severity notified, if any.
    pub fn min(self) -> Option<Severity> {
        match self {
            NotifyLevel::Off => None,
            NotifyLevel::Info => Some(Severity::Info),
            NotifyLevel::Warning => Some(Severity::Warning),
            NotifyLevel::Major => Some(Severity::Major),
            NotifyLevel::Critical => Some(Severity::Critical),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            escalate_after: std::time::Duration::from_secs(15 * 60),
            escalate_max: 2,
            notify: NotifyLevel::Major,
            history_after: std::time::Duration::from_secs(2 * 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entity(id: &str) -> Entity {
        Entity::new(
            id,
            "AirQualityStation",
            &format!("Trạm {id}"),
            Domain::Environment,
        )
        .in_unit("16681", "Thành Vinh")
    }

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000 + min * 60, 0).unwrap()
    }

    fn spec(at: DateTime<Utc>, value: f64) -> RaiseSpec<'static> {
        RaiseSpec {
            rule: "pm25",
            category: "air_quality",
            severity: Severity::Major,
            domain: None,
            message: format!("PM2.5 {value}"),
            metric: "pm25",
            value,
            at,
        }
    }

    #[test]
    fn one_open_alert_per_rule_and_entity() {
        let mut book = AlertBook::new(vec![], 1);
        let e = entity("aq-1");
        let first = book.raise(&e, spec(t(0), 160.0)).unwrap();
        assert_eq!(first.alert.id, 1);
        assert_eq!(first.alert.state, AlertState::New);
        assert!(
            book.raise(&e, spec(t(1), 170.0)).is_none(),
            "still active: no second alert"
        );
        let cleared = book.clear("pm25", "aq-1", t(2), true).unwrap();
        assert!(!cleared.alert.active);
        assert_eq!(
            cleared.alert.state,
            AlertState::New,
            "unacknowledged stays queued"
        );
        let again = book.raise(&e, spec(t(3), 180.0)).unwrap();
        assert_eq!(again.alert.id, 1, "re-activated, not duplicated");
        assert_eq!(again.alert.count, 2);
        assert_eq!(again.events[0].kind, AlertEventKind::Reactivated);
        let other = book.raise(&entity("aq-2"), spec(t(3), 180.0)).unwrap();
        assert_eq!(other.alert.id, 2);
    }

    #[test]
    fn acknowledged_alert_resolves_when_cleared() {
        let mut book = AlertBook::new(vec![], 1);
        let e = entity("aq-1");
        book.raise(&e, spec(t(0), 160.0)).unwrap();
        let acked = book
            .acknowledge(1, "op1", Some("seen".into()), t(1), true)
            .unwrap();
        assert_eq!(acked.alert.state, AlertState::Acknowledged);
        assert_eq!(acked.alert.acked_by.as_deref(), Some("op1"));
        assert_eq!(acked.events[0].comment.as_deref(), Some("seen"));
        let cleared = book.clear("pm25", "aq-1", t(2), true).unwrap();
        assert_eq!(cleared.alert.state, AlertState::Resolved);
        assert_eq!(cleared.events.len(), 2);
        // Resolved: out of the open alerts, still in the book until somebody closes it.
        assert_eq!(book.open_alerts().count(), 0);
        assert_eq!(book.get(1).unwrap().state, AlertState::Resolved);
        // After resolution the next episode is a new alert.
        assert_eq!(book.raise(&e, spec(t(5), 160.0)).unwrap().alert.id, 2);
    }

    #[test]
    fn acknowledging_a_cleared_alert_resolves_it() {
        let mut book = AlertBook::new(vec![], 10);
        book.raise(&entity("aq-1"), spec(t(0), 160.0)).unwrap();
        book.clear("pm25", "aq-1", t(1), true).unwrap();
        let acked = book.acknowledge(10, "op1", None, t(2), true).unwrap();
        assert_eq!(acked.alert.state, AlertState::Resolved);
        assert!(matches!(
            book.acknowledge(10, "op1", None, t(3), true),
            Err(AlertError::InvalidTransition { .. })
        ));
        let closed = book
            .act(10, &AlertAction::Close, "sup", None, t(4), true)
            .unwrap();
        assert_eq!(closed.alert.state, AlertState::Closed);
        assert_eq!(book.get(10), None, "closed alerts leave the book");
        assert_eq!(
            book.act(10, &AlertAction::Close, "sup", None, t(5), true),
            Err(AlertError::NotFound(10))
        );
    }

    #[test]
    fn assign_start_comment_resolve_close() {
        let mut book = AlertBook::new(vec![], 1);
        book.raise(&entity("aq-1"), spec(t(0), 160.0)).unwrap();
        let act = |book: &mut AlertBook, a: AlertAction, c: Option<&str>, m| {
            book.act(1, &a, "lan", c.map(str::to_string), t(m), true)
        };
        assert_eq!(
            act(&mut book, AlertAction::Comment, None, 1),
            Err(AlertError::Invalid("a comment needs some text".into()))
        );
        let c = act(
            &mut book,
            AlertAction::Assign {
                to: "doi-moi-truong".into(),
            },
            None,
            1,
        )
        .unwrap();
        assert_eq!(c.alert.state, AlertState::Assigned);
        assert_eq!(c.alert.assignee.as_deref(), Some("doi-moi-truong"));
        assert_eq!(
            c.alert.acked_by.as_deref(),
            Some("lan"),
            "assigning is taking it in hand"
        );
        let c = act(
            &mut book,
            AlertAction::Assign { to: "minh".into() },
            Some("ca đêm"),
            2,
        )
        .unwrap();
        assert_eq!(c.alert.assignee.as_deref(), Some("minh"));
        assert_eq!(c.events[0].comment.as_deref(), Some("→ minh: ca đêm"));
        assert_eq!(
            act(&mut book, AlertAction::Start, None, 3)
                .unwrap()
                .alert
                .state,
            AlertState::InProgress
        );
        let c = act(
            &mut book,
            AlertAction::Comment,
            Some("đã cử đội kiểm tra"),
            4,
        )
        .unwrap();
        assert_eq!(c.events[0].kind, AlertEventKind::Comment);
        assert!(
            act(&mut book, AlertAction::Close, None, 5).is_err(),
            "not resolved yet"
        );
        assert_eq!(
            act(&mut book, AlertAction::Resolve, Some("xong"), 6)
                .unwrap()
                .alert
                .state,
            AlertState::Resolved
        );
        assert_eq!(
            act(&mut book, AlertAction::Close, None, 7)
                .unwrap()
                .alert
                .state,
            AlertState::Closed
        );
    }

    #[test]
    fn shelved_alerts_come_back_and_unacknowledged_ones_escalate() {
        let mut book = AlertBook::new(vec![], 1);
        book.raise(&entity("aq-1"), spec(t(0), 160.0)).unwrap();
        book.raise(&entity("aq-2"), spec(t(0), 160.0)).unwrap();
        assert!(book
            .act(
                1,
                &AlertAction::Shelve { until: t(0) },
                "lan",
                None,
                t(1),
                true
            )
            .is_err());
        assert!(book
            .act(
                1,
                &AlertAction::Shelve {
                    until: t(60 * 24 * 8)
                },
                "lan",
                None,
                t(1),
                true
            )
            .is_err());
        book.act(
            1,
            &AlertAction::Shelve { until: t(30) },
            "lan",
            None,
            t(1),
            true,
        )
        .unwrap();
        let esc = |_: &Alert| {
            Some(Escalation {
                after: chrono::Duration::minutes(15),
                max: 2,
            })
        };
        // Minute 15: alert 2 (new, unacknowledged) escalates; alert 1 is shelved, does not.
        let c = book.due(t(15), &esc);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].alert.id, 2);
        assert_eq!(c[0].alert.severity, Severity::Critical);
        assert_eq!(c[0].alert.escalation, 1);
        assert_eq!(c[0].events[0].kind, AlertEventKind::Escalated);
        assert!(c[0].events[0]
            .comment
            .as_deref()
            .unwrap()
            .contains("supervisor"));
        assert!(
            book.due(t(16), &esc).is_empty(),
            "not again before another 15 minutes"
        );
        // Minute 30: alert 1 comes back (and escalates only 15 minutes later); alert 2
        // escalates a second time (leader), then stops.
        let c = book.due(t(30), &esc);
        assert_eq!(c.len(), 2);
        let back = c.iter().find(|c| c.alert.id == 1).unwrap();
        assert_eq!(back.alert.state, AlertState::New);
        assert_eq!(back.alert.escalation, 0);
        let again = c.iter().find(|c| c.alert.id == 2).unwrap();
        assert!(again.events[0]
            .comment
            .as_deref()
            .unwrap()
            .contains("leader"));
        assert!(
            book.due(t(200), &esc).iter().all(|c| c.alert.id != 2),
            "at most twice"
        );
        // An acknowledged alert does not escalate; after a restart the count carries on.
        let reloaded = AlertBook::new(book.open_alerts().cloned().collect(), 3);
        assert_eq!(reloaded.get(2).unwrap().escalation, 2);
    }

    #[test]
    fn double_acknowledge_is_refused() {
        let mut book = AlertBook::new(vec![], 1);
        book.raise(&entity("aq-1"), spec(t(0), 160.0)).unwrap();
        book.acknowledge(1, "op1", None, t(1), true).unwrap();
        assert!(matches!(
            book.acknowledge(1, "op2", None, t(2), true),
            Err(AlertError::InvalidTransition { .. })
        ));
    }

    #[test]
    fn reloaded_book_keeps_deduplicating() {
        let mut book = AlertBook::new(vec![], 1);
        let a = book
            .raise(&entity("aq-1"), spec(t(0), 160.0))
            .unwrap()
            .alert;
        let mut reloaded = AlertBook::new(vec![a], 2);
        assert!(reloaded.raise(&entity("aq-1"), spec(t(1), 170.0)).is_none());
        assert_eq!(
            reloaded
                .raise(&entity("aq-2"), spec(t(1), 170.0))
                .unwrap()
                .alert
                .id,
            2
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Raise(u8),
        Clear(u8),
        Ack(u8),
        Act(u8, u8),
        Tick(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3).prop_map(Op::Raise),
            (0u8..3).prop_map(Op::Clear),
            (0u8..6).prop_map(Op::Ack),
            ((0u8..6), (0u8..8)).prop_map(|(a, k)| Op::Act(a, k)),
            (0u8..40).prop_map(Op::Tick),
        ]
    }

    fn action(k: u8, minute: i64) -> AlertAction {
        match k {
            0 => AlertAction::Ack,
            1 => AlertAction::Assign { to: "team".into() },
            2 => AlertAction::Start,
            3 => AlertAction::Comment,
            4 => AlertAction::Resolve,
            5 => AlertAction::Close,
            6 => AlertAction::Shelve {
                until: t(minute + 10),
            },
            _ => AlertAction::Unshelve,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever operators and rules do, the book never holds two open alerts for one
        /// (rule, entity), never holds a closed alert, and every transition it records is one
        /// the lifecycle allows.
        #[test]
        fn the_book_never_reaches_an_invalid_state(ops in proptest::collection::vec(op(), 1..60)) {
            let mut book = AlertBook::new(vec![], 1);
            let mut minute = 0;
            for o in ops {
                minute += 1;
                let changes = match o {
                    Op::Raise(e) => book.raise(&entity(&format!("e{e}")), spec(t(minute), 1.0)).into_iter().collect::<Vec<_>>(),
                    Op::Clear(e) => book.clear("pm25", &format!("e{e}"), t(minute), true).into_iter().collect(),
                    Op::Ack(id) => book.acknowledge(id as i64, "op", None, t(minute), true).into_iter().collect(),
                    Op::Act(id, k) => book.act(id as i64, &action(k, minute), "op", Some("c".into()), t(minute), true).into_iter().collect(),
                    Op::Tick(m) => {
                        minute += i64::from(m);
                        book.due(t(minute), &|_| Some(Escalation { after: chrono::Duration::minutes(15), max: 2 }))
                    }
                };
                for c in changes {
                    for ev in &c.events {
                        if let (Some(from), Some(to)) = (ev.from, ev.to) {
                            // Re-assignment stays assigned; every other move is a real one.
                            let reassign = from == AlertState::Assigned && to == from;
                            prop_assert!(reassign || from.can_become(to), "{from:?} -> {to:?}");
                        }
                    }
                }
                let mut keys = std::collections::HashSet::new();
                for a in book.open.values() {
                    prop_assert!(a.state != AlertState::Closed, "closed alerts leave the book");
                    prop_assert!(a.escalation <= 2);
                    prop_assert!(a.state != AlertState::Shelved || a.shelved_until.is_some());
                }
                for a in book.open_alerts() {
                    prop_assert!(a.state.is_open());
                    prop_assert!(keys.insert((a.rule.clone(), a.entity.clone())));
                    let entity = a.entity.clone().unwrap();
                    prop_assert_eq!(book.find(&a.rule, &entity).map(|x| x.id), Some(a.id));
                }
            }
        }
    }
}
