//! Operations from other nodes, taken into this one (see [`crate::sync`]): each new one is
//! logged as it came, and every alert it touches is folded again from all its operations,
//! the ones not committed yet included, and replaces what the book and the store had.

use super::{Pipeline, Prepared};
use crate::sync::fold::{fold_alert, fold_directive, fold_incident, fold_silence};
use crate::sync::{Change, Gid, OpRecord};
use std::collections::{BTreeMap, HashMap};

/// What became of a batch of operations from another node.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MergeReport {
    /// New operations taken in.
    pub applied: usize,
    /// Operations already held (sent again after a lost answer, or by two ways).
    pub repeats: usize,
    /// Alerts folded again.
    pub alerts: usize,
    /// Directives folded again.
    #[serde(default)]
    pub directives: usize,
    /// Silences folded again.
    #[serde(default)]
    pub silences: usize,
    /// Incidents folded again.
    #[serde(default)]
    pub incidents: usize,
    /// Operations whose alert has not arrived yet (kept; folded when it does).
    pub waiting: usize,
    /// Per origin, everything up to this sequence is now held (or was left out on purpose).
    pub held: HashMap<String, u64>,
}

impl Pipeline {
    /// Takes in operations of other nodes. `upto`: per origin, the sender vouches that every
    /// operation up to that sequence this node may have is among `ops` (what it left out is
    /// outside this node's units).
    pub(super) fn merge(
        &mut self,
        mut ops: Vec<OpRecord>,
        upto: HashMap<String, u64>,
        p: &mut Prepared,
    ) -> MergeReport {
        let mut report = MergeReport::default();
        ops.sort_by(|a, b| (&a.origin, a.seq).cmp(&(&b.origin, b.seq)));
        let mut touched: BTreeMap<String, Gid> = BTreeMap::new();
        let mut directives: BTreeMap<String, Gid> = BTreeMap::new();
        let mut silences: BTreeMap<String, Gid> = BTreeMap::new();
        let mut incidents: BTreeMap<String, Gid> = BTreeMap::new();
        for op in ops {
            // Ours come back through relays: we have every one of them.
            if *op.origin == *self.node {
                report.repeats += 1;
                continue;
            }
            let held = self.held.entry(op.origin.clone()).or_default();
            if op.seq <= *held {
                report.repeats += 1;
                continue;
            }
            *held = op.seq;
            self.hlc.observe(op.hlc);
            match &op.change {
                Change::Alert { alert, .. } => {
                    touched.insert(op.change.subject(), alert.clone());
                }
                Change::Directive { directive, .. } => {
                    directives.insert(op.change.subject(), directive.clone());
                }
                Change::Silence { silence, .. } => {
                    silences.insert(op.change.subject(), silence.clone());
                }
                Change::Incident { incident, .. } => {
                    incidents.insert(op.change.subject(), incident.clone());
                }
            }
            self.uncommitted.push_back((p.batch, op.clone()));
            p.write.oplog.push(op);
            report.applied += 1;
        }
        for (origin, seq) in upto {
            if origin != *self.node {
                let held = self.held.entry(origin.clone()).or_default();
                if seq > *held {
                    *held = seq;
                    // Operations left out on purpose are not in the log: what is held of
                    // the origin is recorded, so a restart does not ask for them again.
                    p.write
                        .meta
                        .push((format!("held:{origin}"), seq.to_string()));
                }
            }
        }
        // Silences first: an alert folded below may name one.
        for (subject, gid) in silences {
            if self.refold_silence(&subject, &gid, p) {
                report.silences += 1;
            } else {
                report.waiting += 1;
            }
        }
        // Incidents before alerts (an alert names its incident), and again once an alert
        // they name arrives (an incident names its alerts), in this batch or a later one.
        for (subject, gid) in incidents {
            match self.refold_incident(&subject, &gid, p) {
                Some(_) => report.incidents += 1,
                None => report.waiting += 1,
            }
        }
        let mut arrived = Vec::new();
        for (subject, gid) in touched {
            if self.refold(&subject, &gid, p) {
                report.alerts += 1;
                arrived.push(gid);
            } else {
                report.waiting += 1;
            }
        }
        let again: std::collections::BTreeSet<(String, Gid)> = arrived
            .iter()
            .filter_map(|g| self.incomplete.remove(g))
            .flatten()
            .collect();
        for (subject, gid) in again {
            self.refold_incident(&subject, &gid, p);
        }
        for (subject, gid) in directives {
            if self.refold_directive(&subject, &gid, p) {
                report.directives += 1;
            } else {
                report.waiting += 1;
            }
        }
        report.held = self.held.clone();
        report
    }

    /// Every operation of one subject: those stored and those of batches not committed yet
    /// (`is_it` picks the latter by their ids, without making a subject for each). `None`
    /// when the store cannot be read (said in the log).
    fn ops_for(&self, subject: &str, is_it: impl Fn(&Change) -> bool) -> Option<Vec<OpRecord>> {
        let mut ops = match self.reader.ops_of(subject) {
            Ok(ops) => ops,
            Err(e) => {
                tracing::error!("sync: cannot read the operations of {subject}: {e}");
                return None;
            }
        };
        ops.extend(
            self.uncommitted
                .iter()
                .filter(|(_, r)| is_it(&r.change))
                .map(|(_, r)| r.clone()),
        );
        Some(ops)
    }

    /// Folds one silence again from its operations and puts it to work here. False while
    /// its making has not arrived.
    fn refold_silence(&mut self, subject: &str, gid: &Gid, p: &mut Prepared) -> bool {
        let is_it = |c: &Change| matches!(c, Change::Silence { silence, .. } if silence == gid);
        let Some(ops) = self.ops_for(subject, is_it) else {
            return false;
        };
        let ours = gid.node == *self.node;
        let known = if ours {
            Some(gid.id)
        } else {
            self.silence_locals.get(gid).copied()
        };
        let local_id = known.unwrap_or_else(|| self.ops.silences.peek_id());
        let Some(s) = fold_silence(local_id, &ops) else {
            return false;
        };
        if known.is_none() {
            self.ops.silences.allocate_id();
            self.silence_gids.insert(local_id, gid.clone());
            self.silence_locals.insert(gid.clone(), local_id);
            p.write.silence_gids.push((local_id, gid.to_string()));
        }
        self.install_silence(s, p);
        true
    }

    /// Folds one directive again from its operations and puts the result in the book, the
    /// store and the feed. False while its issuing has not arrived.
    fn refold_directive(&mut self, subject: &str, gid: &Gid, p: &mut Prepared) -> bool {
        let Some(ops) = self.ops_for(
            subject,
            |c| matches!(c, Change::Directive { directive, .. } if directive == gid),
        ) else {
            return false;
        };
        let ours = gid.node == *self.node;
        let known = if ours {
            Some(gid.id)
        } else {
            self.directive_locals.get(gid).copied()
        };
        let local_id = known.unwrap_or_else(|| self.ops.directives.peek_id());
        let node = self.node.clone();
        let incidents = &self.incident_locals;
        let Some(d) = fold_directive(local_id, &ops, &|g: &Gid| {
            if g.node == *node {
                Some(g.id)
            } else {
                incidents.get(g).copied()
            }
        }) else {
            return false;
        };
        if known.is_none() {
            self.ops.directives.allocate_id();
            self.directive_gids.insert(local_id, gid.clone());
            self.directive_locals.insert(gid.clone(), local_id);
            p.write.directive_gids.push((local_id, gid.to_string()));
        }
        self.ops.directives.install(d.clone(), !ours);
        let report = d
            .reports
            .last()
            .cloned()
            .unwrap_or(ioc_model::DirectiveReport {
                at: d.updated_at,
                actor: d.issued_by.clone(),
                kind: "issued".into(),
                progress: None,
                text: None,
                node: Some(gid.node.clone()),
            });
        self.write_directive(
            crate::operate::directives::DirectiveChange {
                directive: d,
                report,
            },
            p,
        );
        true
    }

    /// Folds one incident again from its operations and puts the result in the book, the
    /// store (its whole timeline, with the lines its directives put there) and the feed.
    /// `None` while its opening has not arrived; else whether every alert it names is here.
    fn refold_incident(&mut self, subject: &str, gid: &Gid, p: &mut Prepared) -> Option<bool> {
        let ops = self.ops_for(
            subject,
            |c| matches!(c, Change::Incident { incident, .. } if incident == gid),
        )?;
        let ours = gid.node == *self.node;
        let known = if ours {
            Some(gid.id)
        } else {
            self.incident_locals.get(gid).copied()
        };
        let local_id = known.unwrap_or_else(|| self.ops.incidents.peek_id());
        let node = self.node.clone();
        let alerts = &self.locals;
        let missing = std::cell::RefCell::new(Vec::new());
        let mut incident = fold_incident(local_id, &node, &ops, &|g: &Gid| {
            let id = if g.node == *node {
                Some(g.id)
            } else {
                alerts.get(g).copied()
            };
            if id.is_none() {
                missing.borrow_mut().push(g.clone());
            }
            id
        })?;
        let missing = missing.into_inner();
        for g in &missing {
            self.incomplete
                .entry(g.clone())
                .or_default()
                .insert((subject.to_string(), gid.clone()));
        }
        if known.is_none() {
            self.ops.incidents.allocate_id();
            self.incident_gids.insert(local_id, gid.clone());
            self.incident_locals.insert(gid.clone(), local_id);
            p.write.incident_gids.push((local_id, gid.to_string()));
        }
        // The lines its directives put on the timeline stay as they are (every node makes
        // those itself); the rest of the timeline is the fold's.
        let events = std::mem::take(&mut incident.events);
        self.ops.incidents.install(incident.clone(), !ours);
        p.write.incidents.push(incident.clone());
        if !p.write.incident_timelines.contains(&local_id) {
            p.write.incident_timelines.push(local_id);
        }
        p.write
            .incident_events
            .retain(|(i, e)| *i != local_id || is_directive_line(e.kind));
        p.write
            .incident_events
            .extend(events.into_iter().map(|e| (local_id, e)));
        p.publish.incidents.push(incident);
        Some(missing.is_empty())
    }

    /// Folds one alert again from its operations and puts the result in the book, the store
    /// and the feed. False while its opening has not arrived.
    fn refold(&mut self, subject: &str, gid: &Gid, p: &mut Prepared) -> bool {
        let Some(ops) = self.ops_for(
            subject,
            |c| matches!(c, Change::Alert { alert, .. } if alert == gid),
        ) else {
            return false;
        };
        let ours = gid.node == *self.node;
        let known = if ours {
            Some(gid.id)
        } else {
            self.locals.get(gid).copied()
        };
        let local_id = known.unwrap_or_else(|| self.alerts.peek_id());
        let node = self.node.clone();
        let silences = &self.silence_locals;
        let incidents = &self.incident_locals;
        let Some(alert) = fold_alert(
            local_id,
            &ops,
            &|g: &Gid| {
                if g.node == *node {
                    Some(g.id)
                } else {
                    incidents.get(g).copied()
                }
            },
            &|g: &Gid| {
                if g.node == *node {
                    Some(g.id)
                } else {
                    silences.get(g).copied()
                }
            },
        ) else {
            return false;
        };
        if known.is_none() {
            self.alerts.allocate_id();
            self.gids.insert(local_id, gid.clone());
            self.locals.insert(gid.clone(), local_id);
            p.write.alert_gids.push((local_id, gid.to_string()));
        }
        self.alerts.install(alert.clone(), !ours);
        let mut row = alert.clone();
        let events = std::mem::take(&mut row.events);
        p.write.alerts.push(row);
        p.write.alert_timelines.push(local_id);
        // The whole timeline is written again: not also the events recorded for it in this
        // batch (they are in the fold).
        p.write.alert_events.retain(|(a, _)| *a != local_id);
        p.write
            .alert_events
            .extend(events.into_iter().map(|e| (local_id, e)));
        p.publish.alerts.push(alert);
        true
    }
}

/// A line an incident's directive put on its timeline (not one of the incident's own
/// operations: kept when the incident is folded again).
pub(crate) fn is_directive_line(kind: ioc_model::IncidentEventKind) -> bool {
    use ioc_model::IncidentEventKind::*;
    matches!(
        kind,
        DirectiveIssued
            | DirectiveAcknowledged
            | DirectiveReport
            | DirectiveDone
            | DirectiveCancelled
            | DirectiveOverdue
    )
}
