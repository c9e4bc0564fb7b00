//! The alert book: every open alert, with the rules of its lifecycle. One open alert per
//! (rule, entity): a condition that fires again while its alert is open re-activates it and
//! counts the repeat instead of opening a second one. Every change produces the events to
//! append to the alert's timeline; the caller persists and publishes them together.

use crate::pipeline::ExternalAlert;
use chrono::{DateTime, Utc};
use ioc_model::{Alert, AlertEvent, AlertEventKind, AlertState, Domain, Entity, Severity};
use std::collections::HashMap;

/// The actor name used for changes the engine makes by itself.
pub const SYSTEM: &str = "system";

/// A changed alert and the events that changed it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    pub alert: Alert,
    pub events: Vec<AlertEvent>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertError {
    #[error("no open alert with id {0}")]
    NotFound(i64),
    #[error("alert {id} is {from}; it cannot become {to}")]
    InvalidTransition {
        id: i64,
        from: &'static str,
        to: &'static str,
    },
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
    }
}

/// What an open alert is unique by, with its rule: the entity for a rule's alert, the
/// issuer's id for a received one.
fn subject(a: &Alert) -> String {
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
            book.by_key.insert((a.rule.clone(), subject(&a)), a.id);
            book.next_id = book.next_id.max(a.id + 1);
            book.open.insert(a.id, a);
        }
        book
    }

    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.open.values()
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
        if let Some(id) = self.by_key.get(&key) {
            let a = self.open.get_mut(id).expect("index and book agree");
            if a.active {
                return None;
            }
            a.active = true;
            a.count += 1;
            a.value = Some(spec.value);
            a.message = spec.message;
            a.cleared_at = None;
            a.updated_at = spec.at;
            let mut ev = event(spec.at, SYSTEM, AlertEventKind::Reactivated);
            ev.value = Some(spec.value);
            return Some(AlertChange {
                alert: a.clone(),
                events: vec![ev],
            });
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

    /// Received alerts whose validity ended by `now` stop being active.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<AlertChange> {
        let due: Vec<i64> = self
            .open
            .values()
            .filter(|a| a.active && a.expires_at.is_some_and(|e| e <= now))
            .map(|a| a.id)
            .collect();
        due.into_iter()
            .filter_map(|id| {
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
            })
            .collect()
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

    /// Moves an open alert to another state, if its lifecycle allows it.
    pub fn transition(
        &mut self,
        id: i64,
        to: AlertState,
        actor: &str,
        comment: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<AlertChange, AlertError> {
        self.apply(id, |a, events| {
            events.push(transition(a, to, actor, comment, at)?);
            Ok(())
        })
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
        if a.state.is_open() {
            self.open.insert(id, a.clone());
        } else {
            self.open.remove(&id);
            self.by_key.remove(&(a.rule.clone(), subject(&a)));
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
    Ok(ev)
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
        assert!(book.get(1).is_none());
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
        assert_eq!(
            book.acknowledge(10, "op1", None, t(3), true),
            Err(AlertError::NotFound(10))
        );
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
        Move(u8, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3).prop_map(Op::Raise),
            (0u8..3).prop_map(Op::Clear),
            (0u8..6).prop_map(Op::Ack),
            ((0u8..6), (0usize..AlertState::ALL.len())).prop_map(|(a, s)| Op::Move(a, s)),
        ]
    }

    proptest! {
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
                    Op::Move(id, s) => book.transition(id as i64, AlertState::ALL[s], "op", None, t(minute)).into_iter().collect(),
                };
                for c in changes {
                    for ev in &c.events {
                        if let (Some(from), Some(to)) = (ev.from, ev.to) {
                            prop_assert!(from.can_become(to), "{from:?} -> {to:?}");
                        }
                    }
                }
                let mut keys = std::collections::HashSet::new();
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
