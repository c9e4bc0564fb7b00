//! The one rule by which an alert's state follows from its operations, the same on every
//! node: the operations in hybrid-time order (then origin), each replayed through the alert
//! book that made it. A node's hybrid times never repeat, so (time, origin) names one
//! operation (also before the store has given it its sequence); a repeat counts once. An
//! act the merged history made impossible (acknowledged at a commune while the province had
//! already closed it) stays on the timeline as not applied, with who, where and why; a change
//! of the engine's own that no longer applies (a clear after the close) leaves no trace.

use super::op::{AlertOp, DirectiveOp, Gid, OpRecord, SilenceOp};
use crate::alerts::{subject, AlertBook};
use ioc_model::{Alert, AlertEvent, AlertEventKind};
use std::collections::BTreeMap;

mod incident;
pub use incident::{flag_count, fold_incident};

/// The alert its operations make, with its whole timeline in `events`; `None` while the
/// operation that opened it has not arrived. `local_id`: its id on this node; `local`: the
/// id on this node of an incident it refers to, `local_silence` of a silence (`None`: not
/// here, and the link is left out). `ops`: the operations of this one alert, in any order,
/// repeats allowed.
pub fn fold_alert<'a>(
    local_id: i64,
    ops: impl IntoIterator<Item = &'a OpRecord>,
    local: &dyn Fn(&Gid) -> Option<i64>,
    local_silence: &dyn Fn(&Gid) -> Option<i64>,
) -> Option<Alert> {
    // In order, each (origin, sequence) once.
    let ordered: BTreeMap<_, (&AlertOp, Option<chrono::DateTime<chrono::Utc>>)> = ops
        .into_iter()
        .filter_map(|r| {
            let super::Change::Alert { alert, op, at } = &r.change else {
                return None;
            };
            // Only the alert's own node opens it and makes its rules' and timers' changes;
            // other nodes act on it (people, and what their incidents and silences do to
            // it). Anything else is ignored, the same way on every node, so no node can
            // rewrite another's alert.
            let own = r.origin == alert.node;
            let act = matches!(
                op,
                AlertOp::Acted { .. } | AlertOp::Incident { .. } | AlertOp::Silenced { .. }
            );
            (own || act).then_some(((r.hlc, r.origin.as_str()), (op, *at)))
        })
        .collect();
    let (opened_key, opened) = ordered.iter().find_map(|(k, (op, _))| match op {
        AlertOp::Opened { alert } => Some((*k, alert)),
        _ => None,
    })?;
    let mut current = Alert::clone(opened);
    current.id = local_id;
    let mut timeline: Vec<AlertEvent> = std::mem::take(&mut current.events)
        .into_iter()
        .map(|e| at_node(e, opened_key.1))
        .collect();
    let mut book = AlertBook::new(vec![current.clone()], local_id + 1);
    for ((hlc, origin), (op, at)) in &ordered {
        let at = at.unwrap_or_else(|| hlc.time());
        let change = match op {
            AlertOp::Opened { .. } => None,
            AlertOp::Reactivated { value, message } => {
                book.reactivate(local_id, *value, message.clone(), at)
            }
            AlertOp::Cleared { auto_resolve } => {
                book.clear(&current.rule, &subject(&current), at, *auto_resolve)
            }
            AlertOp::Issued { alert } => book.external(alert, at),
            AlertOp::Expired => book.expire_one(local_id, at),
            AlertOp::Escalated => book.escalate(local_id, at).ok(),
            AlertOp::Incident { incident, actor } => {
                local(incident).and_then(|i| book.link_incident(local_id, i, actor, at).ok())
            }
            AlertOp::Silenced { silence } => match silence {
                Some(s) => local_silence(s).and_then(|s| book.set_silence(local_id, Some(s), at)),
                None => book.set_silence(local_id, None, at),
            },
            AlertOp::Acted {
                action,
                actor,
                comment,
                auto_resolve,
            } => match book.act(local_id, action, actor, comment.clone(), at, *auto_resolve) {
                Ok(c) => Some(c),
                Err(e) => {
                    // Said without the alert's id, which differs from node to node.
                    use crate::alerts::AlertError;
                    let why = match e {
                        AlertError::NotFound(_) => {
                            format!("the alert was already {}", current.state.as_str())
                        }
                        AlertError::InvalidTransition { from, to, .. } => {
                            format!("the alert was {from}; it cannot become {to}")
                        }
                        AlertError::Invalid(m) => m,
                        AlertError::OutOfScope(_) => "outside the actor's units".into(),
                    };
                    timeline.push(AlertEvent {
                        at,
                        actor: actor.clone(),
                        kind: AlertEventKind::NotApplied,
                        from: Some(current.state),
                        to: None,
                        comment: Some(match comment {
                            Some(c) => format!("{}: {why} ({c})", action.name()),
                            None => format!("{}: {why}", action.name()),
                        }),
                        value: None,
                        node: Some(origin.to_string()),
                    });
                    None
                }
            },
        };
        // A change that made another alert (an issuer's update after the alert was resolved
        // here opens a new one in the book) is not this alert's.
        if let Some(c) = change.filter(|c| c.alert.id == local_id) {
            current = c.alert;
            timeline.extend(c.events.into_iter().map(|e| at_node(e, origin)));
        }
    }
    current.events = timeline;
    Some(current)
}

/// The directive its operations make, by the same rule as alerts: in (hybrid time, origin)
/// order, each replayed through the directive book; only its own node issues it and flags
/// it overdue; an act the merged history made impossible (reported done at the commune
/// while the province had withdrawn it) is kept among its reports as `not_applied`, with
/// who, where and why. `local`: the id here of the origin's incident it belongs to.
pub fn fold_directive<'a>(
    local_id: i64,
    ops: impl IntoIterator<Item = &'a OpRecord>,
    local: &dyn Fn(&Gid) -> Option<i64>,
) -> Option<ioc_model::Directive> {
    use crate::operate::directives::DirectiveBook;
    use crate::operate::{Actor, OpError};
    let ordered: BTreeMap<_, (&DirectiveOp, Option<chrono::DateTime<chrono::Utc>>)> = ops
        .into_iter()
        .filter_map(|r| {
            let super::Change::Directive { directive, op, at } = &r.change else {
                return None;
            };
            let own = r.origin == directive.node;
            let act = matches!(op, DirectiveOp::Acted { .. });
            (own || act).then_some(((r.hlc, r.origin.as_str()), (op, *at)))
        })
        .collect();
    let (issued_key, issued) = ordered.iter().find_map(|(k, (op, _))| match op {
        DirectiveOp::Issued { directive } => Some((*k, directive)),
        _ => None,
    })?;
    let mut current = ioc_model::Directive::clone(issued);
    current.id = local_id;
    current.incident = current
        .incident
        .and_then(|i| local(&Gid::new(issued_key.1, i)));
    for r in &mut current.reports {
        r.node = Some(issued_key.1.to_string());
    }
    let mut book = DirectiveBook::new(vec![current.clone()], local_id + 1);
    for ((hlc, origin), (op, at)) in &ordered {
        let at = at.unwrap_or_else(|| hlc.time());
        let change = match op {
            DirectiveOp::Issued { .. } => None,
            DirectiveOp::Overdue => book.flag_overdue(local_id, at),
            DirectiveOp::Acted {
                action,
                actor,
                text,
            } => {
                // The act's scope was checked where it was made, and the link only carries
                // what the node's units allow: replayed as it was taken.
                let who = Actor {
                    name: actor.clone(),
                    role: ioc_model::Role::Admin,
                    units: vec![],
                };
                match book.act(local_id, action, &who, text.clone(), at) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        let why = match e {
                            OpError::NotFound(_) => {
                                format!("the directive was already {}", current.state.as_str())
                            }
                            OpError::Conflict(_) => {
                                format!("the directive was already {}", current.state.as_str())
                            }
                            OpError::Invalid(m) | OpError::OutOfScope(m) => m,
                            other => other.to_string(),
                        };
                        current.reports.push(ioc_model::DirectiveReport {
                            at,
                            actor: actor.clone(),
                            kind: "not_applied".into(),
                            progress: None,
                            text: Some(match text {
                                Some(t) => format!("{}: {why} ({t})", action.name()),
                                None => format!("{}: {why}", action.name()),
                            }),
                            node: Some(origin.to_string()),
                        });
                        None
                    }
                }
            }
        };
        match change {
            Some(c) => {
                current = c.directive;
                if let Some(last) = current.reports.last_mut() {
                    last.node = Some(origin.to_string());
                }
            }
            None if !matches!(op, DirectiveOp::Acted { .. }) => continue,
            None => {}
        }
        // The book goes on from what is shown (its reports marked with their nodes, the
        // acts not applied among them).
        book.install(current.clone(), false);
    }
    Some(current)
}

/// The silence its operations make: as made at its own node (only that node makes it),
/// ended early by the first person to end it, on any node, while it still held; `None`
/// while its making has not arrived.
pub fn fold_silence<'a>(
    local_id: i64,
    ops: impl IntoIterator<Item = &'a OpRecord>,
) -> Option<ioc_model::Silence> {
    let ordered: BTreeMap<_, (&SilenceOp, Option<chrono::DateTime<chrono::Utc>>)> = ops
        .into_iter()
        .filter_map(|r| {
            let super::Change::Silence { silence, op, at } = &r.change else {
                return None;
            };
            let own = r.origin == silence.node;
            (own || matches!(op, SilenceOp::Ended { .. }))
                .then_some(((r.hlc, r.origin.as_str()), (op, *at)))
        })
        .collect();
    let mut s = ordered.values().find_map(|(op, _)| match op {
        SilenceOp::Put { silence } => Some(ioc_model::Silence::clone(silence)),
        _ => None,
    })?;
    s.id = local_id;
    for ((hlc, _), (op, at)) in &ordered {
        let at = at.unwrap_or_else(|| hlc.time());
        if let SilenceOp::Ended { actor } = op {
            // Ending one that is already over changes nothing.
            if s.ended_by.is_none() && at < s.ends_at {
                s.ends_at = at.max(s.starts_at);
                s.ended_by = Some(actor.clone());
            }
        }
    }
    Some(s)
}

fn at_node(mut e: AlertEvent, node: &str) -> AlertEvent {
    e.node = Some(node.to_string());
    e
}

#[cfg(test)]
mod tests;
