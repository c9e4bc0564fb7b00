//! The pipeline's half of the operations: it owns the incident, directive and silence books
//! next to the alert book, so an alert that joins an incident, an incident that closes its
//! alerts, a directive on an incident's timeline are each one change in one transaction.
//!
//! New alerts go through [`Pipeline::after_raise`]: a silence that matches marks them; an
//! open incident of their kind in their unit takes them; a rule with `incident = …` counts
//! them towards a new incident (see [`crate::operate::correlate`]).

use super::{Pipeline, Prepared};
use crate::audit::AuditEntry;
use crate::operate::correlate::Correlator;
use crate::operate::directives::{DirectiveAction, DirectiveBook, DirectiveChange, NewDirective};
use crate::operate::incidents::{IncidentBook, IncidentChange};
use crate::operate::silences::SilenceBook;
use crate::operate::sop::{self, SopSet};
use crate::operate::{Actor, OpError, SYSTEM};
use crate::store::{to_ms, AttachmentRow, LoadedOperations};
use crate::sync::{AlertOp, DirectiveOp, Gid, IncidentAct, IncidentOp, SilenceOp};
use chrono::{DateTime, Utc};
use ioc_model::{
    AlertEventKind, AttachmentInfo, Directive, Incident, IncidentEventKind, Silence, SilenceMatch,
};
use sha2::{Digest, Sha256};

/// The books the pipeline keeps besides the alert book.
pub(crate) struct Operations {
    pub incidents: IncidentBook,
    pub directives: DirectiveBook,
    pub silences: SilenceBook,
    pub correlator: Correlator,
    pub sops: SopSet,
    pub next_attachment: i64,
    /// When the silences were last looked at (windows that started since then apply).
    pub silence_tick: DateTime<Utc>,
}

impl Operations {
    pub fn new(loaded: LoadedOperations, sops: SopSet, now: DateTime<Utc>) -> Operations {
        Operations {
            incidents: IncidentBook::new(loaded.incidents, loaded.next_incident),
            directives: DirectiveBook::new(loaded.directives, loaded.next_directive),
            silences: SilenceBook::new(loaded.silences, loaded.next_silence, now),
            correlator: Correlator::default(),
            sops,
            next_attachment: loaded.next_attachment.max(1),
            // Every window in force at start applies at the first tick.
            silence_tick: DateTime::<Utc>::MIN_UTC,
        }
    }
}

/// An operation someone asks for.
#[derive(Debug, Clone)]
pub enum Op {
    OpenIncident {
        alerts: Vec<i64>,
        sop: Option<String>,
        title: Option<String>,
        comment: Option<String>,
    },
    AddAlert {
        incident: i64,
        alert: i64,
    },
    StepDone {
        incident: i64,
        step: String,
        answer: Option<String>,
        comment: Option<String>,
    },
    Check {
        incident: i64,
        step: String,
        item: usize,
        done: bool,
    },
    Skip {
        incident: i64,
        step: String,
        comment: Option<String>,
    },
    Comment {
        incident: i64,
        comment: Option<String>,
    },
    Attach {
        incident: i64,
        step: Option<String>,
        name: String,
        content_type: String,
        data: Vec<u8>,
    },
    Resolve {
        incident: i64,
        comment: Option<String>,
    },
    Reopen {
        incident: i64,
        comment: Option<String>,
    },
    Close {
        incident: i64,
        comment: Option<String>,
    },
    Issue {
        unit: String,
        title: String,
        body: String,
        deadline: DateTime<Utc>,
        incident: Option<i64>,
    },
    Directive {
        id: i64,
        action: DirectiveAction,
        text: Option<String>,
    },
    Silence {
        matcher: SilenceMatch,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        comment: Option<String>,
    },
    EndSilence {
        id: i64,
    },
    /// A person has looked at what the federation's merge flagged on an incident (see
    /// [`ioc_model::Incident::attention`]); closed incidents too.
    Review {
        incident: i64,
        comment: Option<String>,
    },
}

/// What an operation produced.
#[derive(Debug, Clone)]
pub enum OpOutcome {
    Incident(Box<Incident>),
    Directive(Box<Directive>),
    Silence(Box<Silence>),
    Attachment(Box<AttachmentInfo>),
}

impl Op {
    /// Refuses text fields over their limits (see [`crate::operate::limits`]).
    pub fn check_sizes(&self) -> Result<(), crate::engine::EngineError> {
        use crate::operate::limits::{check, check_opt, ALERTS, BODY, LINE, TEXT};
        match self {
            Op::OpenIncident {
                alerts,
                sop,
                title,
                comment,
            } => {
                if alerts.len() > ALERTS {
                    return Err(crate::engine::EngineError::TooLarge(format!(
                        "at most {ALERTS} alerts at once"
                    )));
                }
                check_opt("sop", sop, LINE)?;
                check_opt("title", title, LINE)?;
                check_opt("comment", comment, TEXT)
            }
            Op::AddAlert { .. } | Op::EndSilence { .. } => Ok(()),
            Op::StepDone {
                step,
                answer,
                comment,
                ..
            } => {
                check("step", step, LINE)?;
                check_opt("answer", answer, TEXT)?;
                check_opt("comment", comment, TEXT)
            }
            Op::Check { step, .. } => check("step", step, LINE),
            Op::Skip { step, comment, .. } => {
                check("step", step, LINE)?;
                check_opt("comment", comment, TEXT)
            }
            Op::Comment { comment, .. }
            | Op::Resolve { comment, .. }
            | Op::Reopen { comment, .. }
            | Op::Close { comment, .. }
            | Op::Review { comment, .. } => check_opt("comment", comment, TEXT),
            Op::Attach {
                step,
                name,
                content_type,
                ..
            } => {
                check_opt("step", step, LINE)?;
                check("name", name, LINE)?;
                check("content type", content_type, LINE)
            }
            Op::Issue {
                unit, title, body, ..
            } => {
                check("unit", unit, LINE)?;
                check("title", title, LINE)?;
                check("body", body, BODY)
            }
            Op::Directive { text, .. } => check_opt("text", text, TEXT),
            Op::Silence {
                matcher, comment, ..
            } => {
                check_opt("rule", &matcher.rule, LINE)?;
                check_opt("entity", &matcher.entity, LINE)?;
                check_opt("unit", &matcher.unit, LINE)?;
                check_opt("category", &matcher.category, LINE)?;
                check_opt("comment", comment, TEXT)
            }
        }
    }
}

impl Pipeline {
    /// Carries out an operation; what it changed goes into `p`.
    pub(super) fn operate(
        &mut self,
        op: Op,
        actor: &Actor,
        p: &mut Prepared,
    ) -> Result<OpOutcome, OpError> {
        let now = self.clock.now();
        match op {
            Op::OpenIncident {
                alerts,
                sop,
                title,
                comment,
            } => {
                let mut found = Vec::new();
                for id in &alerts {
                    let a = self
                        .alerts
                        .get(*id)
                        .filter(|a| a.state.is_open())
                        .ok_or_else(|| OpError::NotFound(format!("no open alert {id}")))?;
                    found.push(a.clone());
                }
                let template =
                    match &sop {
                        Some(name) => Some(self.ops.sops.get(name).cloned().ok_or_else(|| {
                            OpError::Invalid(format!("no SOP template {name:?}"))
                        })?),
                        None => found
                            .first()
                            .and_then(|a| sop::for_category(&self.ops.sops, &a.category).cloned()),
                    };
                let refs: Vec<&ioc_model::Alert> = found.iter().collect();
                let change = self.ops.incidents.open(
                    &refs,
                    template.as_deref(),
                    title,
                    actor,
                    comment,
                    now,
                )?;
                Ok(self.opened(change, &actor.name, p))
            }
            Op::AddAlert { incident, alert } => {
                let a = self
                    .alerts
                    .get(alert)
                    .filter(|a| a.state.is_open())
                    .cloned()
                    .ok_or_else(|| OpError::NotFound(format!("no open alert {alert}")))?;
                let change = self.ops.incidents.add_alert(incident, &a, actor, now)?;
                let op = self.alert_added(&a, &actor.name, change.incident.unit.as_deref());
                let out = self.incident_done(change, Some(op), p);
                self.link(incident, &[alert], &actor.name, p);
                Ok(out)
            }
            Op::StepDone {
                incident,
                step,
                answer,
                comment,
            } => {
                let c = self.ops.incidents.step_done(
                    incident,
                    &step,
                    actor,
                    answer.clone(),
                    comment.clone(),
                    now,
                )?;
                let act = IncidentAct::StepDone {
                    step,
                    answer,
                    comment,
                };
                Ok(self.incident_done(c, Some(acted(act, actor)), p))
            }
            Op::Check {
                incident,
                step,
                item,
                done,
            } => {
                let c = self
                    .ops
                    .incidents
                    .check(incident, &step, item, done, actor, now)?;
                let act = IncidentAct::Check { step, item, done };
                Ok(self.incident_done(c, Some(acted(act, actor)), p))
            }
            Op::Skip {
                incident,
                step,
                comment,
            } => {
                let c = self
                    .ops
                    .incidents
                    .skip(incident, &step, actor, comment.clone(), now)?;
                let act = IncidentAct::Skip { step, comment };
                Ok(self.incident_done(c, Some(acted(act, actor)), p))
            }
            Op::Comment { incident, comment } => {
                let c = self
                    .ops
                    .incidents
                    .comment(incident, actor, comment.clone(), now)?;
                let act = IncidentAct::Comment { comment };
                Ok(self.incident_done(c, Some(acted(act, actor)), p))
            }
            Op::Attach {
                incident,
                step,
                name,
                content_type,
                data,
            } => {
                let name = name.trim().to_string();
                if name.is_empty() || data.is_empty() {
                    return Err(OpError::Invalid(
                        "an attachment needs a name and some bytes".into(),
                    ));
                }
                let info = AttachmentInfo {
                    id: self.ops.next_attachment,
                    incident,
                    step,
                    name,
                    content_type,
                    size: data.len() as u64,
                    sha256: Sha256::digest(&data)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                    at: now,
                    actor: actor.name.clone(),
                };
                let c = self.ops.incidents.attach(incident, &info, actor, now)?;
                self.ops.next_attachment += 1;
                p.write.attachments.push(AttachmentRow {
                    info: info.clone(),
                    data,
                });
                let act = IncidentAct::Attached {
                    info: Box::new(info.clone()),
                };
                self.record_incident(c, Some(acted(act, actor)), p);
                Ok(OpOutcome::Attachment(Box::new(info)))
            }
            Op::Resolve { incident, comment } => {
                let c = self
                    .ops
                    .incidents
                    .resolve(incident, actor, comment.clone(), now)?;
                let alerts = c.incident.alerts.clone();
                for id in alerts {
                    if let Some(ch) =
                        self.alerts
                            .close_with_incident(id, incident, &actor.name, now, false)
                    {
                        let ops = super::acts_of(&ch);
                        self.record(ch, ops, p);
                    }
                }
                let act = IncidentAct::Resolve { comment };
                Ok(self.incident_done(c, Some(acted(act, actor)), p))
            }
            Op::Reopen { incident, comment } => {
                let c = self
                    .ops
                    .incidents
                    .reopen(incident, actor, comment.clone(), now)?;
                let act = IncidentAct::Reopen { comment };
                Ok(self.incident_done(c, Some(acted(act, actor)), p))
            }
            Op::Close { incident, comment } => {
                let c = self
                    .ops
                    .incidents
                    .close(incident, actor, comment.clone(), now)?;
                let alerts = c.incident.alerts.clone();
                for id in alerts {
                    if let Some(ch) =
                        self.alerts
                            .close_with_incident(id, incident, &actor.name, now, true)
                    {
                        let ops = super::acts_of(&ch);
                        self.record(ch, ops, p);
                    }
                }
                let act = IncidentAct::Close { comment };
                Ok(self.incident_done(c, Some(acted(act, actor)), p))
            }
            Op::Issue {
                unit,
                title,
                body,
                deadline,
                incident,
            } => {
                let unit_name = self
                    .reg
                    .units
                    .get(&unit)
                    .cloned()
                    .ok_or_else(|| OpError::Invalid(format!("no unit {unit:?}")))?;
                if !actor.in_scope(Some(&unit)) {
                    return Err(OpError::OutOfScope(format!(
                        "unit {unit:?} is outside your units"
                    )));
                }
                if let Some(i) = incident {
                    let inc = self.ops.incidents.get(i).ok_or_else(|| {
                        OpError::NotFound(format!("no incident {i} that is not closed"))
                    })?;
                    if !actor.in_scope(inc.unit.as_deref()) {
                        return Err(OpError::OutOfScope(format!(
                            "incident {i} is outside your units"
                        )));
                    }
                }
                let c = self.ops.directives.issue(
                    NewDirective {
                        unit,
                        unit_name,
                        title,
                        body,
                        deadline,
                        incident,
                    },
                    actor,
                    now,
                )?;
                let op = DirectiveOp::Issued {
                    directive: Box::new(c.directive.clone()),
                };
                Ok(OpOutcome::Directive(Box::new(
                    self.record_directive(c, op, p),
                )))
            }
            Op::Directive { id, action, text } => {
                let c = self
                    .ops
                    .directives
                    .act(id, &action, actor, text.clone(), now)?;
                let op = DirectiveOp::Acted {
                    action,
                    actor: actor.name.clone(),
                    text: c.report.text.clone(),
                };
                Ok(OpOutcome::Directive(Box::new(
                    self.record_directive(c, op, p),
                )))
            }
            Op::Silence {
                matcher,
                starts_at,
                ends_at,
                comment,
            } => {
                let s = self
                    .ops
                    .silences
                    .put(matcher, starts_at, ends_at, comment, actor, now)?;
                self.record_silence(&s, "silence.put", &actor.name, p);
                self.log_silence(
                    s.id,
                    SilenceOp::Put {
                        silence: Box::new(s.clone()),
                    },
                    now,
                    p,
                );
                if s.active_at(now) {
                    self.apply_silence(&s, now, p);
                }
                Ok(OpOutcome::Silence(Box::new(s)))
            }
            Op::EndSilence { id } => {
                let s = self.ops.silences.end(id, actor, now)?;
                self.record_silence(&s, "silence.end", &actor.name, p);
                self.log_silence(
                    s.id,
                    SilenceOp::Ended {
                        actor: actor.name.clone(),
                    },
                    now,
                    p,
                );
                self.lift_silence(s.id, now, p);
                Ok(OpOutcome::Silence(Box::new(s)))
            }
            Op::Review { incident, comment } => self.review(incident, actor, comment, now, p),
        }
    }

    /// Clears what the federation's merge flagged on an incident, with a line on its
    /// timeline (closed incidents are read from the store: they have left the book).
    fn review(
        &mut self,
        id: i64,
        actor: &Actor,
        comment: Option<String>,
        now: DateTime<Utc>,
        p: &mut Prepared,
    ) -> Result<OpOutcome, OpError> {
        let in_book = self.ops.incidents.get(id).cloned();
        let from_book = in_book.is_some();
        let mut i = match in_book {
            Some(i) => i,
            None => {
                let stored = self
                    .reader
                    .incident(id)
                    .map_err(|e| OpError::Invalid(format!("cannot read incident {id}: {e}")))?
                    .ok_or_else(|| OpError::NotFound(format!("no incident {id}")))?;
                // Not in the book and not closed in the store: its close is being written.
                if stored.state != ioc_model::IncidentState::Closed {
                    return Err(OpError::Conflict(format!(
                        "incident {id} is changing; try again"
                    )));
                }
                stored
            }
        };
        if !actor.in_scope(i.unit.as_deref()) {
            return Err(OpError::OutOfScope(format!(
                "incident {id} is outside your units"
            )));
        }
        if i.attention.is_none() {
            return Err(OpError::Conflict(format!(
                "incident {id} has nothing flagged to review"
            )));
        }
        let comment = crate::operate::text(comment);
        let seen = i
            .attention
            .as_deref()
            .map_or(0, crate::sync::fold::flag_count);
        i.events.clear();
        i.directives.clear();
        i.attachments.clear();
        i.attention = None;
        i.updated_at = i.updated_at.max(now);
        if from_book {
            let remote = self.ops.incidents.is_remote(id);
            self.ops.incidents.install(i.clone(), remote);
        }
        let e = ioc_model::IncidentEvent {
            at: now,
            actor: actor.name.clone(),
            kind: IncidentEventKind::Reviewed,
            step: None,
            alert: None,
            directive: None,
            comment: comment.clone(),
            node: None,
        };
        let op = IncidentOp::Reviewed {
            actor: actor.name.clone(),
            comment,
            seen,
        };
        Ok(self.incident_done(
            IncidentChange {
                incident: i,
                events: vec![e],
            },
            Some(op),
            p,
        ))
    }

    /// The operation of an alert joining an incident. The incident goes to the nodes of its
    /// unit: of an alert of another unit they learn only its kind and severity.
    fn alert_added(&self, a: &ioc_model::Alert, actor: &str, unit: Option<&str>) -> IncidentOp {
        let mut snapshot = a.clone();
        snapshot.events.clear();
        if a.unit.as_deref() != unit {
            redact(&mut snapshot);
        }
        IncidentOp::AlertAdded {
            alert: self.gid_of(a.id),
            snapshot: Box::new(snapshot),
            actor: actor.to_string(),
        }
    }

    /// The federation id of an incident of the book.
    pub(super) fn incident_gid_of(&self, id: i64) -> Gid {
        self.incident_gids
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Gid::new(&self.node, id))
    }

    /// The operation of a silence starting or ending to hold an alert back.
    fn silenced(&self, silence: Option<i64>) -> AlertOp {
        AlertOp::Silenced {
            silence: silence.map(|s| self.silence_gid_of(s)),
        }
    }

    /// The federation id of a silence of the book.
    pub(super) fn silence_gid_of(&self, id: i64) -> Gid {
        self.silence_gids
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Gid::new(&self.node, id))
    }

    /// Logs the operation of a silence made or ended here (for the federation).
    fn log_silence(&mut self, id: i64, op: SilenceOp, at: DateTime<Utc>, p: &mut Prepared) {
        let r = crate::sync::OpRecord {
            origin: self.node.to_string(),
            seq: 0,
            hlc: self.hlc.now(),
            change: crate::sync::Change::Silence {
                silence: self.silence_gid_of(id),
                op,
                at: Some(at),
            },
        };
        self.uncommitted.push_back((p.batch, r.clone()));
        p.write.oplog.push(r);
    }

    /// A silence as the federation's fold made it: kept, stored, shown, and put to work on
    /// this node's own alerts (those it now holds back, those it no longer does).
    pub(super) fn install_silence(&mut self, s: ioc_model::Silence, p: &mut Prepared) {
        let now = self.clock.now();
        let before = self.ops.silences.install(s.clone(), now);
        self.record_silence(&s, "silence.sync", crate::operate::SYSTEM, p);
        let was_active = before.is_some_and(|b| b.active_at(now));
        if s.active_at(now) && !was_active {
            self.apply_silence(&s, now, p);
        } else if !s.active_at(now) && was_active {
            self.lift_silence(s.id, now, p);
        }
    }

    /// Records a new incident and puts its alerts in it.
    fn opened(&mut self, change: IncidentChange, actor: &str, p: &mut Prepared) -> OpOutcome {
        let id = change.incident.id;
        let alerts = change.incident.alerts.clone();
        let mut opened = change.incident.clone();
        opened.events = change.events.clone();

        let op = IncidentOp::Opened {
            alerts: alerts.iter().map(|a| self.gid_of(*a)).collect(),
            incident: Box::new(opened),
        };
        let outcome = self.incident_done(change, Some(op), p);
        self.link(id, &alerts, actor, p);
        outcome
    }

    fn link(&mut self, incident: i64, alerts: &[i64], actor: &str, p: &mut Prepared) {
        let now = self.clock.now();
        for &a in alerts {
            self.ops.correlator.forget(a);
            if let Ok(ch) = self.alerts.link_incident(a, incident, actor, now) {
                let op = AlertOp::Incident {
                    incident: self.incident_gid_of(incident),
                    actor: actor.to_string(),
                };
                self.record(ch, vec![op], p);
            }
        }
    }

    fn incident_done(
        &mut self,
        change: IncidentChange,
        op: Option<IncidentOp>,
        p: &mut Prepared,
    ) -> OpOutcome {
        let i = change.incident.clone();
        self.record_incident(change, op, p);
        OpOutcome::Incident(Box::new(i))
    }

    /// Writes and publishes a change of an incident made here, and logs the operation that
    /// made it for the federation (`None`: a change every node makes itself, as a
    /// directive's line on the timeline).
    fn record_incident(
        &mut self,
        mut change: IncidentChange,
        op: Option<IncidentOp>,
        p: &mut Prepared,
    ) {
        let id = change.incident.id;
        for e in &mut change.events {
            e.node = Some(self.node.to_string());
        }
        if let Some(op) = op {
            let r = crate::sync::OpRecord {
                origin: self.node.to_string(),
                seq: 0,
                hlc: self.hlc.now(),
                change: crate::sync::Change::Incident {
                    incident: self.incident_gid_of(id),
                    op,
                    // The time the book applied the change at, so every node dates it alike.
                    at: Some(
                        change
                            .events
                            .first()
                            .map_or(change.incident.updated_at, |e| e.at),
                    ),
                },
            };
            self.uncommitted.push_back((p.batch, r.clone()));
            p.write.oplog.push(r);
        }
        for e in &change.events {
            p.write.audit.push(AuditEntry {
                at: to_ms(e.at),
                actor: e.actor.clone(),
                action: format!("incident.{}", e.kind.as_str()),
                target: format!("incident:{id}"),
                before: None,
                after: Some(serde_json::json!({
                    "state": change.incident.state.as_str(),
                    "step": e.step,
                    "alert": e.alert,
                    "directive": e.directive,
                    "comment": e.comment,
                })),
            });
            p.write.incident_events.push((id, e.clone()));
        }
        p.write.incidents.push(change.incident.clone());
        p.publish.incidents.push(change.incident);
    }

    /// The federation id of a directive of the book.
    pub(super) fn directive_gid_of(&self, id: i64) -> Gid {
        self.directive_gids
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Gid::new(&self.node, id))
    }

    /// Writes a change of a directive made here, logs the operation that made it (for the
    /// federation) and publishes it; the directive as it now is.
    fn record_directive(
        &mut self,
        mut change: DirectiveChange,
        op: DirectiveOp,
        p: &mut Prepared,
    ) -> ioc_model::Directive {
        change.report.node = Some(self.node.to_string());
        if let Some(last) = change.directive.reports.last_mut() {
            last.node = Some(self.node.to_string());
        }
        // The book's copy carries the node too (the next change starts from it).
        self.ops.directives.install(change.directive.clone(), false);
        let op = match op {
            DirectiveOp::Issued { .. } => DirectiveOp::Issued {
                directive: Box::new(change.directive.clone()),
            },
            op => op,
        };
        let r = crate::sync::OpRecord {
            origin: self.node.to_string(),
            seq: 0,
            hlc: self.hlc.now(),
            change: crate::sync::Change::Directive {
                directive: self.directive_gid_of(change.directive.id),
                op,
                at: Some(change.report.at),
            },
        };
        self.uncommitted.push_back((p.batch, r.clone()));
        p.write.oplog.push(r);
        let out = change.directive.clone();
        self.write_directive(change, p);
        out
    }

    /// Writes and publishes a directive's change (also one the federation's fold made).
    pub(super) fn write_directive(&mut self, change: DirectiveChange, p: &mut Prepared) {
        let d = &change.directive;
        let r = &change.report;
        p.write.audit.push(AuditEntry {
            at: to_ms(r.at),
            actor: r.actor.clone(),
            action: format!("directive.{}", r.kind),
            target: format!("directive:{}", d.id),
            before: None,
            after: Some(serde_json::json!({
                "state": d.state.as_str(),
                "unit": d.unit,
                "deadline": d.deadline,
                "progress": r.progress,
                "text": r.text,
            })),
        });
        if let Some(incident) = d.incident {
            let kind = match r.kind.as_str() {
                "issued" => IncidentEventKind::DirectiveIssued,
                "acknowledged" => IncidentEventKind::DirectiveAcknowledged,
                "done" => IncidentEventKind::DirectiveDone,
                "cancelled" => IncidentEventKind::DirectiveCancelled,
                "overdue" => IncidentEventKind::DirectiveOverdue,
                _ => IncidentEventKind::DirectiveReport,
            };
            let words = match (r.progress, &r.text) {
                (Some(p), Some(t)) if r.kind == "report" => Some(format!("{p} %: {t}")),
                (Some(p), None) if r.kind == "report" => Some(format!("{p} %")),
                (_, t) => t.clone(),
            };
            let comment = Some(match words {
                Some(w) => format!("{} → {}: {w}", d.title, d.unit_name),
                None => format!("{} → {}", d.title, d.unit_name),
            });
            if let Some(c) = self
                .ops
                .incidents
                .directive_event(incident, d.id, kind, &r.actor, comment, r.at)
            {
                self.record_incident(c, None, p);
            }
        }
        p.write.directives.push(change.directive.clone());
        p.publish.directives.push(change.directive);
    }

    pub(super) fn record_silence(
        &mut self,
        s: &Silence,
        action: &str,
        actor: &str,
        p: &mut Prepared,
    ) {
        p.write.audit.push(AuditEntry {
            at: to_ms(self.clock.now()),
            actor: actor.to_string(),
            action: action.into(),
            target: format!("silence:{}", s.id),
            before: None,
            after: serde_json::to_value(s).ok(),
        });
        p.write.silences.push(s.clone());
        p.publish.silences.push(s.clone());
    }

    /// Open alerts nobody has taken in hand yet that a silence now in force matches are
    /// silenced.
    pub(super) fn apply_silence(&mut self, s: &Silence, now: DateTime<Utc>, p: &mut Prepared) {
        let hit: Vec<i64> = self
            .alerts
            .open_alerts()
            .filter(|a| a.state == ioc_model::AlertState::New && a.silenced.is_none())
            .filter(|a| {
                s.matcher
                    .matches(&a.rule, a.entity.as_deref(), a.unit.as_deref(), &a.category)
            })
            .map(|a| a.id)
            .collect();
        for id in hit {
            if let Some(ch) = self.alerts.set_silence(id, Some(s.id), now) {
                let op = self.silenced(Some(s.id));
                self.record(ch, vec![op], p);
            }
        }
    }

    /// The alerts a silence that ended was holding back come back (or fall under another
    /// silence still in force).
    pub(super) fn lift_silence(&mut self, silence: i64, now: DateTime<Utc>, p: &mut Prepared) {
        let held: Vec<ioc_model::Alert> = self
            .alerts
            .open_alerts()
            .filter(|a| a.silenced == Some(silence))
            .cloned()
            .collect();
        for a in held {
            let other = self.ops.silences.matching(&a, now);
            if let Some(ch) = self.alerts.set_silence(a.id, other, now) {
                let op = self.silenced(other);
                self.record(ch, vec![op], p);
            }
        }
    }

    /// What happens to a newly raised alert: silenced, joined to its incident, or counted
    /// towards one. `rule`: the rule that raised it (`None` for a received alert).
    pub(super) fn after_raise(&mut self, alert_id: i64, rule: Option<usize>, p: &mut Prepared) {
        let now = self.clock.now();
        let Some(a) = self.alerts.get(alert_id).cloned() else {
            return;
        };
        if a.incident.is_some() || !a.state.is_open() {
            return;
        }
        if let Some(s) = self.ops.silences.matching(&a, now) {
            if let Some(ch) = self.alerts.set_silence(a.id, Some(s), now) {
                let op = self.silenced(Some(s));
                self.record(ch, vec![op], p);
            }
            return;
        }
        if let Some(incident) = self.ops.incidents.for_group(&a.category, a.unit.as_deref()) {
            if let Ok(c) = self
                .ops
                .incidents
                .add_alert(incident, &a, &Actor::system(), now)
            {
                let op = self.alert_added(&a, SYSTEM, a.unit.as_deref());
                self.record_incident(c, Some(op), p);
                self.link(incident, &[a.id], SYSTEM, p);
            }
            return;
        }
        let Some(spec) = rule.and_then(|r| self.rules.get(r).config.incident.clone()) else {
            return;
        };
        let within = i64::try_from(spec.within.as_millis()).unwrap_or(i64::MAX);
        let Some(ids) = self.ops.correlator.observe(
            (a.category.clone(), a.unit.clone()),
            to_ms(a.raised_at),
            a.id,
            spec.alerts,
            within,
        ) else {
            return;
        };
        // Those still open and free, oldest first.
        let group: Vec<ioc_model::Alert> = ids
            .iter()
            .filter_map(|id| self.alerts.get(*id))
            .filter(|x| x.state.is_open() && x.incident.is_none() && x.silenced.is_none())
            .cloned()
            .collect();
        if group.is_empty() {
            return;
        }
        let mut note = None;
        let template = match &spec.sop {
            Some(name) => match self.ops.sops.get(name) {
                Some(t) => Some(t.clone()),
                None => {
                    tracing::warn!("rule {:?} names SOP {name:?}, which does not exist", a.rule);
                    note = Some(format!("SOP {name:?} not found: worked without one"));
                    None
                }
            },
            None => sop::for_category(&self.ops.sops, &a.category).cloned(),
        };
        let comment = note.or_else(|| {
            (group.len() > 1).then(|| {
                format!(
                    "{} alerts of {} within {}",
                    group.len(),
                    a.category,
                    humantime::format_duration(spec.within)
                )
            })
        });
        let refs: Vec<&ioc_model::Alert> = group.iter().collect();
        match self.ops.incidents.open(
            &refs,
            template.as_deref(),
            None,
            &Actor::system(),
            comment,
            now,
        ) {
            Ok(change) => {
                tracing::info!(
                    "incident {} opened for {} alert(s) of {} in {:?}",
                    change.incident.id,
                    group.len(),
                    a.category,
                    a.unit_name
                );
                self.opened(change, SYSTEM, p);
            }
            Err(e) => tracing::warn!("could not open an incident for alert {}: {e}", a.id),
        }
    }

    /// The time-driven work of the operations: overdue steps and directives, maintenance
    /// windows that start and silences that end.
    pub(super) fn tick_operations(&mut self, now: DateTime<Utc>, p: &mut Prepared) {
        for c in self.ops.incidents.due(now) {
            self.record_incident(c, Some(IncidentOp::Overdue), p);
        }
        for c in self.ops.directives.due(now) {
            self.record_directive(c, DirectiveOp::Overdue, p);
        }
        let last = std::mem::replace(&mut self.ops.silence_tick, now);
        let tick = self.ops.silences.due(last, now);
        for s in &tick.started {
            self.apply_silence(s, now, p);
        }
        for s in tick.ended {
            self.lift_silence(s.id, now, p);
            // Over: the clients drop it (nothing to store, it ended when it said it would).
            p.publish.silences.push(s);
        }
    }
}

/// What an alert of another unit shows of itself on an incident's timeline elsewhere.
fn redact(a: &mut ioc_model::Alert) {
    a.entity = None;
    a.entity_name = String::new();
    a.message = String::new();
    a.value = None;
    a.area = None;
    a.description = None;
    a.assignee = None;
}

/// The operation of a person's act on an incident.
fn acted(act: IncidentAct, actor: &Actor) -> IncidentOp {
    IncidentOp::Acted {
        act,
        actor: actor.name.clone(),
    }
}

/// The kinds of alert event that mean "a new alert".
pub(super) fn is_new_alert(events: &[ioc_model::AlertEvent]) -> bool {
    events.iter().any(|e| e.kind == AlertEventKind::Raised)
}
