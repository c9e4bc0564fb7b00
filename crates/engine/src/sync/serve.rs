//! The IOC's side of the link: what a node may pull, and which of what it pushes is within
//! its units. A node sees and sends only what its account's units allow, by the same scope
//! as people: an alert belongs to its unit.

use super::wire::{PullReply, PullRequest};
use super::{AlertOp, Change, DirectiveOp, Gid, IncidentOp, OpRecord, SilenceOp};
use crate::scope::Scope;
use crate::store::{Reader, StoreError};
use std::collections::HashMap;

/// The units of shared things, read once per request.
pub struct Units<'a> {
    reader: &'a Reader,
    /// This node's name: a gid of this node names a local alert by its id.
    here: &'a str,
    known: HashMap<Gid, Option<Option<String>>>,
    directives: HashMap<Gid, Option<String>>,
    silences: HashMap<Gid, Option<Option<String>>>,
    incidents: HashMap<Gid, Option<Option<String>>>,
}

impl<'a> Units<'a> {
    pub fn new(reader: &'a Reader, here: &'a str) -> Units<'a> {
        Units {
            reader,
            here,
            known: HashMap::new(),
            directives: HashMap::new(),
            silences: HashMap::new(),
            incidents: HashMap::new(),
        }
    }

    /// Learns the units of alerts opened in `ops` by their own node (a push that opens an
    /// alert and acts on it).
    pub fn learn(&mut self, ops: &[OpRecord]) {
        for op in ops {
            match &op.change {
                Change::Alert { alert, op: a, .. } => {
                    if let AlertOp::Opened { alert: opened } = a {
                        if op.origin == alert.node {
                            self.known.insert(alert.clone(), Some(opened.unit.clone()));
                        }
                    }
                }
                Change::Directive {
                    directive, op: d, ..
                } => {
                    if let DirectiveOp::Issued { directive: issued } = d {
                        if op.origin == directive.node {
                            self.directives
                                .insert(directive.clone(), Some(issued.unit.clone()));
                        }
                    }
                }
                Change::Silence { silence, op: s, .. } => {
                    if let SilenceOp::Put { silence: made } = s {
                        if op.origin == silence.node {
                            self.silences
                                .insert(silence.clone(), Some(made.matcher.unit.clone()));
                        }
                    }
                }
                Change::Incident {
                    incident, op: i, ..
                } => {
                    if let IncidentOp::Opened {
                        incident: opened, ..
                    } = i
                    {
                        if op.origin == incident.node {
                            self.incidents
                                .insert(incident.clone(), Some(opened.unit.clone()));
                        }
                    }
                }
            }
        }
    }

    /// The unit of the thing an operation is about: `None` when it is not known here, or
    /// when the operation claims for another node's alert what only that node may do (open
    /// it, or make its rules' and timers' changes).
    pub fn of(&mut self, op: &OpRecord) -> Result<Option<Option<String>>, StoreError> {
        let (alert, a) = match &op.change {
            Change::Alert { alert, op: a, .. } => (alert, a),
            Change::Incident {
                incident, op: i, ..
            } => {
                // An incident is its unit's: only its own node opens it and flags it late;
                // people anywhere work it.
                let own_only = matches!(i, IncidentOp::Opened { .. } | IncidentOp::Overdue);
                if op.origin != incident.node && own_only {
                    return Ok(None);
                }
                if let IncidentOp::Opened {
                    incident: opened, ..
                } = i
                {
                    return Ok(Some(opened.unit.clone()));
                }
                if let Some(u) = self.incidents.get(incident) {
                    return Ok(u.clone());
                }
                let u = self.reader.incident_unit(incident, self.here)?;
                self.incidents.insert(incident.clone(), u.clone());
                return Ok(u);
            }
            Change::Silence { silence, op: s, .. } => {
                // A silence is its unit's (or the province's, when it names none): only its
                // own node makes it; anyone may end it early.
                if op.origin != silence.node && !matches!(s, SilenceOp::Ended { .. }) {
                    return Ok(None);
                }
                if let SilenceOp::Put { silence: made } = s {
                    return Ok(Some(made.matcher.unit.clone()));
                }
                if let Some(u) = self.silences.get(silence) {
                    return Ok(u.clone());
                }
                let u = self.reader.silence_unit(silence, self.here)?;
                self.silences.insert(silence.clone(), u.clone());
                return Ok(u);
            }
            Change::Directive {
                directive, op: d, ..
            } => {
                // A directive is its unit's: only its own node issues it and flags it late.
                if op.origin != directive.node && !matches!(d, DirectiveOp::Acted { .. }) {
                    return Ok(None);
                }
                if let DirectiveOp::Issued { directive: issued } = d {
                    return Ok(Some(Some(issued.unit.clone())));
                }
                if let Some(u) = self.directives.get(directive) {
                    return Ok(u.clone().map(Some));
                }
                let u = self.reader.directive_unit(directive, self.here)?;
                self.directives.insert(directive.clone(), u.clone());
                return Ok(u.map(Some));
            }
        };
        let act = matches!(
            a,
            AlertOp::Acted { .. } | AlertOp::Incident { .. } | AlertOp::Silenced { .. }
        );
        if op.origin != alert.node && !act {
            return Ok(None);
        }
        if let AlertOp::Opened { alert: opened } = a {
            return Ok(Some(opened.unit.clone()));
        }
        if let Some(u) = self.known.get(alert) {
            return Ok(u.clone());
        }
        let u = self.reader.alert_unit(alert, self.here)?;
        self.known.insert(alert.clone(), u.clone());
        Ok(u)
    }
}

/// What a node lacks and may have, oldest first per origin, at most `limit` in all. The
/// node's own operations are never sent back.
pub fn pull(
    reader: &Reader,
    here: &str,
    caller: &str,
    scope: &Scope,
    req: &PullRequest,
) -> Result<PullReply, StoreError> {
    let limit = req.limit.clamp(1, super::wire::BATCH);
    let mut reply = PullReply::default();
    let mut units = Units::new(reader, here);
    let mut origins: Vec<(String, u64)> = reader.vector()?.into_iter().collect();
    origins.sort();
    for (origin, last) in origins {
        if origin == caller {
            continue;
        }
        let from = req.held.get(&origin).copied().unwrap_or(0);
        if from >= last {
            continue;
        }
        let room = limit.saturating_sub(reply.ops.len());
        if room == 0 {
            reply.more = true;
            break;
        }
        let ops = reader.ops_after(&origin, from, room)?;
        // All there is was read: what is held of the origin past its last stored operation
        // (left out on purpose elsewhere) is vouched for too, or the caller would ask forever.
        let all = ops.len() < room;
        let mut upto = from;
        for op in ops {
            upto = op.seq;
            // Unknown here: not sent (it cannot be judged); it is what the scope allows
            // that matters, and an alert's opening always comes first.
            if let Some(unit) = units.of(&op)? {
                if scope.allows(unit.as_deref()) {
                    reply.ops.push(op);
                }
            }
        }
        if all {
            upto = last;
        } else if upto < last {
            reply.more = true;
        }
        reply.upto.insert(origin, upto);
    }
    Ok(reply)
}
