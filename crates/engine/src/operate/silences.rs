//! The silence book: silences and maintenance windows that are not over yet. An alert raised
//! while one matches is recorded as usual but marked silenced; when the silence ends, the
//! silenced alerts still open come back into the queue.

use super::{text, Actor, OpError};
use chrono::{DateTime, Utc};
use ioc_model::{Alert, Silence, SilenceMatch};
use std::collections::HashMap;

/// The longest silence: a maintenance window is not a way to switch a rule off.
pub const MAX_SILENCE: chrono::Duration = chrono::Duration::days(31);

#[derive(Debug, Default)]
pub struct SilenceBook {
    current: HashMap<i64, Silence>,
    next_id: i64,
}

/// What became of the silences at a tick.
#[derive(Debug, Default)]
pub struct SilenceTick {
    /// Maintenance windows that started.
    pub started: Vec<Silence>,
    /// Silences that ended (they leave the book).
    pub ended: Vec<Silence>,
}

impl SilenceBook {
    /// Starts from the stored silences not over at `now`.
    pub fn new(current: Vec<Silence>, next_id: i64, now: DateTime<Utc>) -> SilenceBook {
        let mut book = SilenceBook {
            next_id: next_id.max(1),
            ..Default::default()
        };
        for s in current {
            book.next_id = book.next_id.max(s.id + 1);
            if s.current_at(now) {
                book.current.insert(s.id, s);
            }
        }
        book
    }

    pub fn get(&self, id: i64) -> Option<&Silence> {
        self.current.get(&id)
    }

    pub fn silences(&self) -> impl Iterator<Item = &Silence> {
        self.current.values()
    }

    /// The id the next silence made here gets.
    pub fn peek_id(&self) -> i64 {
        self.next_id
    }

    /// Takes the next id for a silence of another node.
    pub fn allocate_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Puts a silence as the federation's fold made it: kept while not over at `now`;
    /// whether it was held before.
    pub fn install(&mut self, s: Silence, now: DateTime<Utc>) -> Option<Silence> {
        self.next_id = self.next_id.max(s.id + 1);
        if s.current_at(now) {
            self.current.insert(s.id, s)
        } else {
            self.current.remove(&s.id)
        }
    }

    /// Adds a silence (or a maintenance window, when it starts later).
    pub fn put(
        &mut self,
        matcher: SilenceMatch,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        comment: Option<String>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Silence, OpError> {
        if matcher.is_empty() {
            return Err(OpError::Invalid(
                "a silence needs a rule, an entity, a unit or a category".into(),
            ));
        }
        let comment = text(comment)
            .ok_or_else(|| OpError::Invalid("say why (maintenance, a known fault…)".into()))?;
        if ends_at <= starts_at || ends_at <= now {
            return Err(OpError::Invalid(
                "a silence must end after it starts, in the future".into(),
            ));
        }
        if ends_at - starts_at > MAX_SILENCE {
            return Err(OpError::Invalid(format!(
                "a silence lasts at most {} days",
                MAX_SILENCE.num_days()
            )));
        }
        if !actor.units.is_empty() {
            // Someone working some communes silences only within them.
            match &matcher.unit {
                Some(u) if actor.in_scope(Some(u)) => {}
                _ => {
                    return Err(OpError::OutOfScope(
                        "a silence of yours must name one of your units".into(),
                    ))
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let s = Silence {
            id,
            matcher,
            // A start in the past means now: the history of what was raised stays as it was.
            starts_at: starts_at.max(now),
            ends_at,
            comment,
            created_by: actor.name.clone(),
            created_at: now,
            ended_by: None,
        };
        self.current.insert(id, s.clone());
        Ok(s)
    }

    /// Ends a silence now (or cancels a maintenance window still to come).
    pub fn end(&mut self, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<Silence, OpError> {
        let mut s = self
            .current
            .remove(&id)
            .ok_or_else(|| OpError::NotFound(format!("no silence {id} that is not over")))?;
        if !actor.units.is_empty() && !actor.in_scope(s.matcher.unit.as_deref()) {
            self.current.insert(id, s);
            return Err(OpError::OutOfScope(format!(
                "silence {id} is outside your units"
            )));
        }
        s.ends_at = now.max(s.starts_at);
        s.ended_by = Some(actor.name.clone());
        Ok(s)
    }

    /// The silence an alert raised at `now` falls under, if any (the one ending last).
    pub fn matching(&self, a: &Alert, now: DateTime<Utc>) -> Option<i64> {
        self.current
            .values()
            .filter(|s| s.active_at(now))
            .filter(|s| {
                s.matcher
                    .matches(&a.rule, a.entity.as_deref(), a.unit.as_deref(), &a.category)
            })
            .max_by_key(|s| (s.ends_at, s.id))
            .map(|s| s.id)
    }

    /// Windows that started since `last` and silences over by `now`.
    pub fn due(&mut self, last: DateTime<Utc>, now: DateTime<Utc>) -> SilenceTick {
        let mut tick = SilenceTick::default();
        for s in self.current.values() {
            if s.starts_at > last && s.starts_at <= now && s.active_at(now) {
                tick.started.push(s.clone());
            }
        }
        let over: Vec<i64> = self
            .current
            .values()
            .filter(|s| !s.current_at(now))
            .map(|s| s.id)
            .collect();
        for id in over {
            if let Some(s) = self.current.remove(&id) {
                tick.ended.push(s);
            }
        }
        tick.started.sort_by_key(|s| s.id);
        tick.ended.sort_by_key(|s| s.id);
        tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::Role;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000 + min * 60, 0).unwrap()
    }

    fn camera_alert(entity: &str) -> Alert {
        serde_json::from_value(serde_json::json!({
            "id": 1, "rule": "camera-offline", "entity": entity, "entity_name": "Camera",
            "unit": "16681", "domain": "safety", "category": "camera", "severity": "major",
            "state": "new", "active": true, "message": "offline",
            "raised_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
            "count": 1
        }))
        .unwrap()
    }

    #[test]
    fn a_maintenance_window_silences_while_it_lasts() {
        let admin = Actor::system();
        let mut book = SilenceBook::new(vec![], 1, t(0));
        let m = SilenceMatch {
            entity: Some("cam-7".into()),
            ..Default::default()
        };
        assert!(
            book.put(m.clone(), t(10), t(70), None, &admin, t(0))
                .is_err(),
            "needs a reason"
        );
        let s = book
            .put(m, t(10), t(70), Some("Thay camera".into()), &admin, t(0))
            .unwrap();
        assert_eq!(
            book.matching(&camera_alert("cam-7"), t(5)),
            None,
            "not started yet"
        );
        let tick = book.due(t(0), t(10));
        assert_eq!(tick.started.len(), 1);
        assert_eq!(book.matching(&camera_alert("cam-7"), t(11)), Some(s.id));
        assert_eq!(book.matching(&camera_alert("cam-8"), t(11)), None);
        assert!(book.due(t(10), t(69)).ended.is_empty());
        let tick = book.due(t(69), t(70));
        assert_eq!(tick.ended.len(), 1);
        assert_eq!(book.matching(&camera_alert("cam-7"), t(71)), None);
    }

    #[test]
    fn limits_and_scope() {
        let oc = Actor {
            name: "oc".into(),
            role: Role::Supervisor,
            units: vec!["16681".into()],
        };
        let mut book = SilenceBook::new(vec![], 1, t(0));
        let any = SilenceMatch {
            category: Some("camera".into()),
            ..Default::default()
        };
        assert!(matches!(
            book.put(any.clone(), t(0), t(60), Some("x".into()), &oc, t(0)),
            Err(OpError::OutOfScope(_))
        ));
        let mine = SilenceMatch {
            unit: Some("16681".into()),
            ..any
        };
        assert!(
            book.put(
                mine.clone(),
                t(0),
                t(60 * 24 * 40),
                Some("x".into()),
                &oc,
                t(0)
            )
            .is_err(),
            "too long"
        );
        let s = book
            .put(mine, t(0), t(60), Some("x".into()), &oc, t(0))
            .unwrap();
        let ended = book.end(s.id, &oc, t(5)).unwrap();
        assert_eq!(ended.ends_at, t(5));
        assert!(book.get(s.id).is_none());
    }
}
