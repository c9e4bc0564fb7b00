//! The rule by which an incident follows from its operations, as for alerts: in (hybrid
//! time, origin) order, each replayed through the incident book that made it; only its own
//! node opens it and flags its steps late. Work that the merged history made impossible (a
//! step done at a commune while the province had already closed the incident) is kept on
//! the timeline as not applied, and the incident is flagged for a person
//! ([`ioc_model::Incident::attention`]) until someone reviews it: never dropped in silence.

use crate::operate::incidents::{IncidentBook, IncidentChange};
use crate::operate::{Actor, OpError};
use crate::sync::op::{Gid, IncidentAct, IncidentOp, OpRecord};
use chrono::{DateTime, Utc};
use ioc_model::{Incident, IncidentEvent, IncidentEventKind, IncidentState};
use std::collections::{BTreeMap, HashMap};

/// The incident its operations make, with its whole timeline in `events` (without the
/// entries its directives put there: the caller keeps those); `None` while the operation
/// that opened it has not arrived. `local_id`: its id on this node; `here`: this node's
/// name; `local_alert`: the id on this node of an alert (`None`: not here, and it is left
/// out of the incident's list).
pub fn fold_incident<'a>(
    local_id: i64,
    here: &str,
    ops: impl IntoIterator<Item = &'a OpRecord>,
    local_alert: &dyn Fn(&Gid) -> Option<i64>,
) -> Option<Incident> {
    let ordered: BTreeMap<_, (&IncidentOp, Option<DateTime<Utc>>)> = ops
        .into_iter()
        .filter_map(|r| {
            let crate::sync::Change::Incident { incident, op, at } = &r.change else {
                return None;
            };
            let own = r.origin == incident.node;
            let anyone = !matches!(op, IncidentOp::Opened { .. } | IncidentOp::Overdue);
            (own || anyone).then_some(((r.hlc, r.origin.as_str()), (op, *at)))
        })
        .collect();
    let (opened_key, (opened, gids)) = ordered.iter().find_map(|(k, (op, _))| match op {
        IncidentOp::Opened { incident, alerts } => Some((*k, (incident, alerts))),
        _ => None,
    })?;
    // Alerts this node does not hold stand in the fold under ids of their own (below zero,
    // one per alert), so every node replays the same list, and are left out at the end.
    let mut stand_ins: HashMap<Gid, i64> = HashMap::new();
    let mut alert_id = |g: &Gid| {
        local_alert(g).unwrap_or_else(|| {
            let next = -(stand_ins.len() as i64) - 1;
            *stand_ins.entry(g.clone()).or_insert(next)
        })
    };
    let at_origin: HashMap<i64, i64> = opened
        .alerts
        .iter()
        .zip(gids.iter())
        .map(|(origin_id, g)| (*origin_id, alert_id(g)))
        .collect();
    let mut current = Incident::clone(opened);
    current.id = local_id;
    current.alerts = current
        .alerts
        .iter()
        .filter_map(|a| at_origin.get(a).copied())
        .collect();
    let mut timeline: Vec<IncidentEvent> = std::mem::take(&mut current.events)
        .into_iter()
        .map(|mut e| {
            e.alert = e.alert.and_then(|a| at_origin.get(&a).copied());
            e.node = Some(opened_key.1.to_string());
            e
        })
        .collect();
    current.directives.clear();
    current.attachments.clear();
    let mut flags: Vec<String> = current.attention.take().into_iter().collect();
    let mut book = IncidentBook::new(vec![current.clone()], local_id + 1);
    // The act's permission and scope were checked where it was made, and the link only
    // carries what the node's units allow: replayed as it was taken.
    let anyone = |name: &str| Actor {
        name: name.to_string(),
        role: ioc_model::Role::Admin,
        units: vec![],
    };
    let mut files = 0;
    for ((hlc, origin), (op, at)) in &ordered {
        let at = at.unwrap_or_else(|| hlc.time());
        let result: Result<Option<IncidentChange>, (String, String, OpError)> = match op {
            IncidentOp::Opened { .. } => Ok(None),
            IncidentOp::Overdue => Ok(book.due(at).into_iter().next()),
            IncidentOp::AlertAdded {
                alert,
                snapshot,
                actor,
            } => {
                let mut a = ioc_model::Alert::clone(snapshot);
                a.id = alert_id(alert);
                a.incident = None;
                a.events.clear();
                book.add_alert(local_id, &a, &anyone(actor), at)
                    .map(Some)
                    .map_err(|e| ("add_alert".to_string(), actor.clone(), e))
            }
            IncidentOp::Reviewed {
                actor,
                comment,
                seen,
            } => {
                // What the reviewer saw: flags that come earlier in the merged order but
                // reached their node only later stay.
                let n = if *seen == 0 {
                    flags.len()
                } else {
                    (*seen).min(flags.len())
                };
                flags.drain(..n);
                current.attention = summary(&flags);
                let mut e = event(at, actor, IncidentEventKind::Reviewed, origin);
                e.comment = comment.clone();
                timeline.push(e);
                current.updated_at = current.updated_at.max(at);
                book.install(current.clone(), false);
                continue;
            }
            IncidentOp::Acted { act, actor } => {
                let who = anyone(actor);
                let done = match act {
                    IncidentAct::StepDone {
                        step,
                        answer,
                        comment,
                    } => book.step_done(local_id, step, &who, answer.clone(), comment.clone(), at),
                    IncidentAct::Check { step, item, done } => {
                        book.check(local_id, step, *item, *done, &who, at)
                    }
                    IncidentAct::Skip { step, comment } => {
                        book.skip(local_id, step, &who, comment.clone(), at)
                    }
                    IncidentAct::Comment { comment } => {
                        book.comment(local_id, &who, comment.clone(), at)
                    }
                    IncidentAct::Attached { info } => {
                        let mut info = ioc_model::AttachmentInfo::clone(info);
                        // The bytes stay where they were attached: elsewhere the step
                        // counts the file under a stand-in id, left out at the end.
                        if *origin != here {
                            files -= 1;
                            info.id = files;
                        }
                        info.incident = local_id;
                        book.attach(local_id, &info, &who, at)
                    }
                    IncidentAct::Resolve { comment } => {
                        book.resolve(local_id, &who, comment.clone(), at)
                    }
                    IncidentAct::Reopen { comment } => {
                        book.reopen(local_id, &who, comment.clone(), at)
                    }
                    IncidentAct::Close { comment } => {
                        book.close(local_id, &who, comment.clone(), at)
                    }
                };
                done.map(Some)
                    .map_err(|e| (act.name().to_string(), actor.clone(), e))
            }
        };
        match result {
            Ok(Some(c)) => {
                current = c.incident;
                timeline.extend(c.events.into_iter().map(|mut e| {
                    e.node = Some(origin.to_string());
                    e
                }));
            }
            Ok(None) => {}
            Err((name, actor, e)) => {
                // Said without the incident's or its alerts' ids, which differ from node to
                // node.
                let why = if current.state != IncidentState::Open {
                    format!("the incident was already {}", current.state.as_str())
                } else if name == "add_alert" {
                    "the alert is already in an incident".to_string()
                } else {
                    match e {
                        OpError::NotFound(_) => "no such step".to_string(),
                        OpError::Invalid(m)
                        | OpError::Conflict(m)
                        | OpError::Forbidden(m)
                        | OpError::OutOfScope(m) => {
                            m.replace(&format!("incident {local_id}"), "the incident")
                        }
                    }
                };
                let what = match op {
                    IncidentOp::Acted {
                        act:
                            IncidentAct::StepDone { step, .. }
                            | IncidentAct::Check { step, .. }
                            | IncidentAct::Skip { step, .. },
                        ..
                    } => format!("{name} «{step}»"),
                    _ => name,
                };
                let mut e = event(at, &actor, IncidentEventKind::NotApplied, origin);
                e.comment = Some(format!("{what}: {why}"));
                timeline.push(e);
                // Work that could not be taken in because the incident was no longer being
                // worked needs a person: it is flagged, never dropped.
                let work = matches!(
                    op,
                    IncidentOp::Acted { act, .. }
                        if act.is_work() || matches!(act, IncidentAct::Comment { .. })
                );
                // So does a resolution or a close refused while it is still open (its node
                // has already closed the alerts).
                let finish = matches!(
                    op,
                    IncidentOp::Acted {
                        act: IncidentAct::Resolve { .. } | IncidentAct::Close { .. },
                        ..
                    }
                );
                let open = current.state == IncidentState::Open;
                if (work && !open) || (finish && open) {
                    flags.push(format!("{what} — {actor} @ {origin}: {why}"));
                    current.updated_at = current.updated_at.max(at);
                }
            }
        }
        current.attention = summary(&flags);
        if current.state != IncidentState::Closed {
            // The book goes on from what is shown (the flag included).
            book.install(current.clone(), false);
        }
    }
    current.alerts.retain(|a| *a > 0);
    for s in &mut current.steps {
        s.attachments.retain(|f| *f > 0);
    }
    for e in &mut timeline {
        e.alert = e.alert.filter(|a| *a > 0);
    }
    current.attention = summary(&flags);
    current.events = timeline;
    Some(current)
}

/// How many things a flag's text stands for (see [`summary`]).
pub fn flag_count(summary: &str) -> usize {
    summary
        .strip_suffix(')')
        .and_then(|s| s.rsplit_once(" (+"))
        .and_then(|(_, n)| n.parse::<usize>().ok())
        .map_or(1, |n| n + 1)
}

/// What the flag says: the first thing that needs a person, and how many more.
fn summary(flags: &[String]) -> Option<String> {
    let first = flags.first()?;
    Some(match flags.len() {
        1 => first.clone(),
        n => format!("{first} (+{})", n - 1),
    })
}

fn event(at: DateTime<Utc>, actor: &str, kind: IncidentEventKind, node: &str) -> IncidentEvent {
    IncidentEvent {
        at,
        actor: actor.to_string(),
        kind,
        step: None,
        alert: None,
        directive: None,
        comment: None,
        node: Some(node.to_string()),
    }
}

#[cfg(test)]
mod tests;
