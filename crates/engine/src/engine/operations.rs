//! The engine's operations API: incidents, directives, silences and SOP templates. Changes go
//! through the pipeline (one task owns the books); reads of history come from the store.

use super::{Engine, EngineError};
use crate::audit::AuditEntry;
use crate::clock::Clock;
use crate::operate::report::AfterAction;
use crate::operate::sop::{self, SopSet, SopTemplate};
use crate::operate::Actor;
use crate::pipeline::{Command, Op, OpOutcome};
use crate::store::{from_ms, SopRow, WriteBatch, Writer};
use ioc_model::{Alert, Entity};
use ioc_model::{
    AttachmentInfo, Directive, DirectiveState, Incident, IncidentState, RuleCheck, Silence, SopInfo,
};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Compiles the stored templates; on a store that never had any, writes the demo ones first.
pub(super) async fn seed_and_compile(
    writer: &Writer,
    rows: &[SopRow],
    heads: &[(String, u32, bool)],
    clock: &Arc<dyn Clock>,
) -> Result<SopSet, EngineError> {
    let mut rows = rows.to_vec();
    if heads.is_empty() {
        let at = clock.now().timestamp_millis();
        let seeded: Vec<SopRow> = sop::seed()
            .into_iter()
            .map(|(name, text)| SopRow {
                name: name.into(),
                version: 1,
                text: text.into(),
                at,
                by: crate::alerts::SYSTEM.into(),
                deleted: false,
            })
            .collect();
        writer
            .write(WriteBatch {
                sops: seeded.clone(),
                ..Default::default()
            })
            .await?;
        rows = seeded;
    }
    let mut set = SopSet::new();
    for r in rows {
        match sop::parse(&r.text) {
            Ok(config) => {
                set.insert(
                    r.name.clone(),
                    Arc::new(SopTemplate {
                        config,
                        version: r.version,
                        text: r.text,
                        updated_at: from_ms(r.at),
                        updated_by: r.by,
                    }),
                );
            }
            Err(p) => tracing::error!(
                "SOP template {:?} v{} no longer parses ({}): left out",
                r.name,
                r.version,
                p.first().map(|p| p.message.as_str()).unwrap_or("?")
            ),
        }
    }
    Ok(set)
}

fn refused(problems: Vec<ioc_model::RuleProblem>) -> RuleCheck {
    RuleCheck {
        ok: false,
        name: None,
        problems,
    }
}

impl Engine {
    /// Carries out an incident, directive or silence operation; answers once it is
    /// committed and published.
    pub async fn operate(&self, op: Op, actor: Actor) -> Result<OpOutcome, EngineError> {
        op.check_sizes()?;
        let (reply, rx) = oneshot::channel();
        self.sender
            .tx
            .send(Command::Operate { op, actor, reply })
            .await
            .map_err(|_| EngineError::Closed)?;
        Ok(rx.await.map_err(|_| EngineError::Closed)??)
    }

    /// One incident with its timeline, directives and files (closed or not).
    pub async fn incident(&self, id: i64) -> Result<Option<Incident>, EngineError> {
        self.blocking(move |r| r.incident(id)).await
    }

    /// Incidents in these states (all when empty), newest first, without timelines.
    pub async fn incidents(
        &self,
        states: Vec<IncidentState>,
        limit: usize,
    ) -> Result<Vec<Incident>, EngineError> {
        self.blocking(move |r| r.incidents(&states, limit)).await
    }

    pub async fn directive(&self, id: i64) -> Result<Option<Directive>, EngineError> {
        self.blocking(move |r| r.directive(id)).await
    }

    /// Directives in these states (all when empty), newest first.
    pub async fn directives(
        &self,
        states: Vec<DirectiveState>,
        limit: usize,
    ) -> Result<Vec<Directive>, EngineError> {
        self.blocking(move |r| r.directives(&states, limit)).await
    }

    /// Silences, newest first, over or not.
    pub async fn silences(&self, limit: usize) -> Result<Vec<Silence>, EngineError> {
        self.blocking(move |r| r.silences(limit)).await
    }

    pub async fn attachment(
        &self,
        id: i64,
    ) -> Result<Option<(AttachmentInfo, Vec<u8>)>, EngineError> {
        self.blocking(move |r| r.attachment(id)).await
    }

    /// The after-action report of an incident: its timeline with its alerts' and
    /// directives'.
    pub async fn after_action(&self, id: i64) -> Result<Option<AfterAction>, EngineError> {
        let Some(incident) = self.incident(id).await? else {
            return Ok(None);
        };
        let ids = incident.alerts.clone();
        let alerts = self
            .blocking(move |r| {
                let mut out = Vec::new();
                for id in ids {
                    if let Some(a) = r.alert(id)? {
                        out.push(a);
                    }
                }
                Ok(out)
            })
            .await?;
        let clips = self.incident_clips(&incident)?;
        let stills = self.incident_stills(&incident, &alerts).await;
        let mut report = AfterAction::new(
            incident,
            alerts,
            self.config.organisation.name.clone(),
            self.config
                .display
                .timezone
                .parse()
                .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh),
            self.clock.now(),
        );
        report.clips = clips;
        report.stills = stills;
        Ok(Some(report))
    }

    /// An incident's evidence clips: its own and those saved for its alerts, oldest first.
    fn incident_clips(&self, incident: &Incident) -> Result<Vec<ioc_model::ClipInfo>, EngineError> {
        use crate::store::ClipFilter;
        let mut v = self.clips(ClipFilter {
            incident: Some(incident.id),
            ..Default::default()
        })?;
        for a in &incident.alerts {
            v.extend(self.clips(ClipFilter {
                alert: Some(*a),
                ..Default::default()
            })?);
        }
        v.sort_by_key(|c| c.id);
        v.dedup_by_key(|c| c.id);
        Ok(v)
    }

    /// Stills of the incident's cameras, as its alerts showed them (named by their rules,
    /// its SOP and their devices, then the nearest), at most four.
    async fn incident_stills(
        &self,
        incident: &Incident,
        alerts: &[Alert],
    ) -> Vec<crate::operate::report::CameraStill> {
        const MAX: usize = 4;
        let by_rule: HashMap<String, Vec<String>> = self
            .rules
            .lock()
            .await
            .list()
            .rules
            .into_iter()
            .map(|r| (r.name, r.cameras))
            .collect();
        let sop_cameras = match &incident.sop {
            Some(s) => self
                .sops
                .lock()
                .await
                .get(&s.name)
                .map(|t| t.config.cameras.clone())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let entities: HashMap<String, Entity> = self
            .hub
            .entities()
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
        let mut cameras: Vec<String> = Vec::new();
        for a in alerts {
            let mut named = by_rule.get(&a.rule).cloned().unwrap_or_default();
            named.extend(sop_cameras.iter().cloned());
            if let Some(e) = a.entity.as_ref().and_then(|id| entities.get(id)) {
                named.extend(ioc_model::camera::named_by(e));
            }
            for (c, _) in ioc_model::camera::related_cameras(
                &entities,
                a.entity.as_deref(),
                &named,
                2,
                3000.0,
            ) {
                if !cameras.contains(&c) {
                    cameras.push(c);
                }
            }
        }
        cameras.truncate(MAX);
        let mut out = Vec::new();
        for id in cameras {
            let name = entities
                .get(&id)
                .map(|e| e.name.clone())
                .unwrap_or_else(|| id.clone());
            let still = self.camera_still(&id).await.map_err(|e| e.to_string());
            out.push(crate::operate::report::CameraStill {
                camera: id,
                name,
                still,
            });
        }
        out
    }

    /// The SOP templates in force, by name, each with the versions it has had.
    pub async fn sops(&self) -> Result<Vec<SopInfo>, EngineError> {
        let set = self.sops.lock().await.clone();
        let mut names: Vec<String> = set.keys().cloned().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let n = name.clone();
            let versions = self
                .blocking(move |r| r.sop_versions(&n))
                .await?
                .into_iter()
                .filter(|v| !v.deleted)
                .map(|v| v.version)
                .collect();
            out.push(set[&name].info(versions));
        }
        Ok(out)
    }

    /// The text of one version of a template (removed ones included).
    pub async fn sop_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<String>, EngineError> {
        let n = name.to_string();
        Ok(self
            .blocking(move |r| r.sop_versions(&n))
            .await?
            .into_iter()
            .find(|v| v.version == version && !v.deleted)
            .map(|v| v.text))
    }

    /// Checks a template's text as it would be saved in place of `replacing` (`None`: new).
    pub async fn check_sop(&self, text: &str, replacing: Option<&str>) -> RuleCheck {
        let set = self.sops.lock().await;
        check(&set, text, replacing)
    }

    /// Saves a template as a new version (in place of `replacing`, or new). Running
    /// incidents keep the version they started with. `Ok(Err(check))`: refused, with where.
    pub async fn put_sop(
        &self,
        text: &str,
        replacing: Option<&str>,
        actor: &str,
    ) -> Result<Result<SopInfo, RuleCheck>, EngineError> {
        let mut set = self.sops.lock().await;
        let c = check(&set, text, replacing);
        if !c.ok {
            return Ok(Err(c));
        }
        let config = sop::parse(text).map_err(|p| EngineError::BadInput(format!("{p:?}")))?;
        let name = config.name.clone();
        not_the_provinces(&set, &name)?;
        if let Some(old) = replacing {
            not_the_provinces(&set, old)?;
        }
        let n = name.clone();
        let history = self.blocking(move |r| r.sop_versions(&n)).await?;
        let version = history.last().map(|v| v.version + 1).unwrap_or(1);
        let before = set.get(&name).map(|t| t.text.clone());
        let now = self.clock.now();
        let mut rows = vec![SopRow {
            name: name.clone(),
            version,
            text: text.to_string(),
            at: now.timestamp_millis(),
            by: actor.to_string(),
            deleted: false,
        }];
        let mut audit = vec![AuditEntry {
            at: now.timestamp_millis(),
            actor: actor.to_string(),
            action: "sop.put".into(),
            target: format!("sop:{name}"),
            before: before.map(serde_json::Value::String),
            after: Some(serde_json::json!({ "version": version, "text": text })),
        }];
        // A rename retires the old name.
        let renamed = replacing.filter(|old| *old != name).map(str::to_string);
        if let Some(old) = &renamed {
            if let Some(t) = set.get(old) {
                let o = old.clone();
                let v = self
                    .blocking(move |r| r.sop_versions(&o))
                    .await?
                    .last()
                    .map(|v| v.version + 1)
                    .unwrap_or(1);
                rows.push(SopRow {
                    name: old.clone(),
                    version: v,
                    text: t.text.clone(),
                    at: now.timestamp_millis(),
                    by: actor.to_string(),
                    deleted: true,
                });
                audit.push(AuditEntry {
                    at: now.timestamp_millis(),
                    actor: actor.to_string(),
                    action: "sop.delete".into(),
                    target: format!("sop:{old}"),
                    before: Some(serde_json::Value::String(t.text.clone())),
                    after: Some(serde_json::json!({ "renamed_to": name })),
                });
            }
        }
        self.writer
            .write(WriteBatch {
                sops: rows,
                audit,
                ..Default::default()
            })
            .await?;
        let template = Arc::new(SopTemplate {
            config,
            version,
            text: text.to_string(),
            updated_at: now,
            updated_by: actor.to_string(),
        });
        if let Some(old) = renamed {
            set.remove(&old);
        }
        set.insert(name.clone(), template.clone());
        self.swap_sops(set.clone()).await?;
        let mut versions: Vec<u32> = history
            .iter()
            .filter(|v| !v.deleted)
            .map(|v| v.version)
            .collect();
        versions.push(version);
        Ok(Ok(template.info(versions)))
    }

    /// Removes a template (its versions stay in the store; incidents keep their copy).
    pub async fn delete_sop(&self, name: &str, actor: &str) -> Result<(), EngineError> {
        let mut set = self.sops.lock().await;
        let Some(t) = set.get(name).cloned() else {
            return Err(EngineError::NotFound(format!("no SOP template {name:?}")));
        };
        not_the_provinces(&set, name)?;
        let n = name.to_string();
        let version = self
            .blocking(move |r| r.sop_versions(&n))
            .await?
            .last()
            .map(|v| v.version + 1)
            .unwrap_or(1);
        let now = self.clock.now().timestamp_millis();
        self.writer
            .write(WriteBatch {
                sops: vec![SopRow {
                    name: name.to_string(),
                    version,
                    text: t.text.clone(),
                    at: now,
                    by: actor.to_string(),
                    deleted: true,
                }],
                audit: vec![AuditEntry {
                    at: now,
                    actor: actor.to_string(),
                    action: "sop.delete".into(),
                    target: format!("sop:{name}"),
                    before: Some(serde_json::Value::String(t.text.clone())),
                    after: None,
                }],
                ..Default::default()
            })
            .await?;
        set.remove(name);
        self.swap_sops(set.clone()).await
    }

    async fn swap_sops(&self, sops: SopSet) -> Result<(), EngineError> {
        swap_sops(&self.sender, sops).await
    }
}

/// Hands the pipeline a new set of templates (new incidents follow them).
pub(super) async fn swap_sops(
    sender: &crate::pipeline::IngestSender,
    sops: SopSet,
) -> Result<(), EngineError> {
    let (done, rx) = oneshot::channel();
    sender
        .tx
        .send(Command::SetSops { sops, done })
        .await
        .map_err(|_| EngineError::Closed)?;
    rx.await.map_err(|_| EngineError::Closed)
}

/// Refuses to change a template kept from the province (it is changed at the IOC).
fn not_the_provinces(set: &SopSet, name: &str) -> Result<(), EngineError> {
    match set.get(name) {
        Some(t) if t.updated_by == crate::sync::PROVINCE => Err(EngineError::BadInput(format!(
            "SOP {name:?} is the province's: it is changed at the provincial IOC"
        ))),
        _ => Ok(()),
    }
}

/// A template's text checked as it would be saved in place of `replacing`.
fn check(set: &SopSet, text: &str, replacing: Option<&str>) -> RuleCheck {
    match sop::parse(text) {
        Err(p) => refused(p),
        Ok(c) => {
            let clash = set.contains_key(&c.name) && replacing != Some(c.name.as_str());
            if clash {
                let (line, column) = text
                    .find("name")
                    .map(|i| crate::rules::files::line_col(text, i))
                    .unwrap_or((1, 1));
                return refused(vec![ioc_model::RuleProblem {
                    rule: Some(c.name.clone()),
                    origin: "text".into(),
                    line,
                    column,
                    message: format!("another template is called {:?}", c.name),
                }]);
            }
            RuleCheck {
                ok: true,
                name: Some(c.name),
                problems: Vec::new(),
            }
        }
    }
}
