//! The province's SOP templates and KPI definitions on a node: what the province's people
//! made on the IOC's screens comes down with the link's answers ([`SharedDefs`]) and is kept
//! here under its own name, by [`PROVINCE`], read-only (changed at the IOC). A node's own
//! template of the same name gives way to the province's (its versions stay in the
//! history); one the province no longer shares is removed here.
//!
//! The link task has no engine of its own to call: it is given this handle on the pieces
//! the engine's own edits go through (the template set, the store, the pipeline, the KPIs).

use super::lead::Lead;
use crate::audit::AuditEntry;
use crate::clock::Clock;
use crate::config::Config;
use crate::kpi::KpiSet;
use crate::operate::sop::{self, SopSet, SopTemplate};
use crate::pipeline::IngestSender;
use crate::store::{Reader, SopRow, WriteBatch, Writer};
use crate::sync::wire::SharedDefs;
use crate::sync::PROVINCE;
use std::collections::HashSet;
use std::sync::Arc;

/// The `meta` key of the version kept.
const VERSION_KEY: &str = "province_defs";

/// See the module's documentation.
pub struct Province {
    pub(super) sops: Arc<tokio::sync::Mutex<SopSet>>,
    pub(super) lead: Arc<Lead>,
    pub(super) writer: Arc<Writer>,
    pub(super) reader: Arc<Reader>,
    pub(super) sender: IngestSender,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: Arc<Config>,
}

impl Province {
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, String> {
        let r = self.reader.clone();
        tokio::task::spawn_blocking(move || f(&r))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// The version of the province's definitions kept here.
    pub async fn version(&self) -> Option<String> {
        self.read(|r| r.meta(VERSION_KEY)).await.ok().flatten()
    }

    /// Keeps the province's current definitions: new and changed ones saved (a new version
    /// of a template), those it no longer shares removed, in one transaction with the
    /// version; then the pipeline works by the templates and the KPIs count at once. A
    /// template or definition that does not read here (an older engine) is left out and
    /// said in the log; the rest is kept.
    pub async fn keep(&self, shared: SharedDefs) -> Result<(), String> {
        let now = self.clock.now();
        let at = now.timestamp_millis();
        let mut set = self.sops.lock().await;
        let mut rows = Vec::new();
        let mut audit = Vec::new();
        let mut next = set.clone();
        let names: HashSet<&str> = shared.sops.iter().map(|(n, _)| n.as_str()).collect();
        for (name, text) in &shared.sops {
            let current = set.get(name);
            if current.is_some_and(|t| t.updated_by == PROVINCE && t.text == *text) {
                continue;
            }
            let config = match sop::parse(text) {
                Ok(c) if c.name == *name => c,
                Ok(c) => {
                    tracing::error!("province SOP {name:?} names itself {:?}: left out", c.name);
                    continue;
                }
                Err(p) => {
                    tracing::error!("province SOP {name:?} does not read here: {p:?}; left out");
                    continue;
                }
            };
            let n = name.clone();
            let version = self
                .read(move |r| r.sop_versions(&n))
                .await?
                .last()
                .map(|v| v.version + 1)
                .unwrap_or(1);
            rows.push(SopRow {
                name: name.clone(),
                version,
                text: text.clone(),
                at,
                by: PROVINCE.into(),
                deleted: false,
            });
            audit.push(AuditEntry {
                at,
                actor: PROVINCE.into(),
                action: "sop.put".into(),
                target: format!("sop:{name}"),
                before: current.map(|t| serde_json::Value::String(t.text.clone())),
                after: Some(serde_json::json!({ "version": version, "text": text })),
            });
            next.insert(
                name.clone(),
                Arc::new(SopTemplate {
                    config,
                    version,
                    text: text.clone(),
                    updated_at: now,
                    updated_by: PROVINCE.into(),
                }),
            );
        }
        for (name, t) in set.iter() {
            if t.updated_by == PROVINCE && !names.contains(name.as_str()) {
                let n = name.clone();
                let version = self
                    .read(move |r| r.sop_versions(&n))
                    .await?
                    .last()
                    .map(|v| v.version + 1)
                    .unwrap_or(1);
                rows.push(SopRow {
                    name: name.clone(),
                    version,
                    text: t.text.clone(),
                    at,
                    by: PROVINCE.into(),
                    deleted: true,
                });
                audit.push(AuditEntry {
                    at,
                    actor: PROVINCE.into(),
                    action: "sop.delete".into(),
                    target: format!("sop:{name}"),
                    before: Some(serde_json::Value::String(t.text.clone())),
                    after: None,
                });
                next.remove(name);
            }
        }
        // KPI definitions, under the lock of the KPI edits (one at a time).
        let mut kpis = self.lead.kpis.write().await;
        let kept = self.read(|r| r.province_kpis()).await?;
        // A definition this node's people made keeps its id: the province's of the same id
        // is left out here (said in the log).
        let ours: HashSet<String> = self
            .read(|r| r.own_kpis())
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let starter: std::collections::HashMap<String, String> =
            crate::kpi::catalogue::starter().into_iter().collect();
        let stored: std::collections::HashMap<String, String> =
            self.read(|r| r.kpi_defs()).await?.into_iter().collect();
        let mut kpi_defs = Vec::new();
        let ids: HashSet<&str> = shared.kpis.iter().map(|(i, _)| i.as_str()).collect();
        for (id, text) in &shared.kpis {
            if kept.contains(id) && stored.get(id) == Some(text) {
                continue;
            }
            if ours.contains(id) {
                tracing::warn!(
                    "province KPI {id:?} has the id of one made here: this node keeps its own"
                );
                continue;
            }
            if let Err(p) = crate::kpi::def::parse(text, "province") {
                tracing::error!("province KPI {id:?} does not read here: {p:?}; left out");
                continue;
            }
            kpi_defs.push((id.clone(), Some(text.clone()), at, PROVINCE.to_string()));
            audit.push(AuditEntry {
                at,
                actor: PROVINCE.into(),
                action: "kpi.put".into(),
                target: format!("kpi:{id}"),
                before: stored.get(id).cloned().map(serde_json::Value::String),
                after: Some(serde_json::Value::String(text.clone())),
            });
        }
        for id in kept.iter().filter(|i| !ids.contains(i.as_str())) {
            // One of the starter catalogue goes back to the seeded definition.
            match starter.get(id) {
                Some(text) => kpi_defs.push((
                    id.clone(),
                    Some(text.clone()),
                    at,
                    crate::alerts::SYSTEM.to_string(),
                )),
                None => kpi_defs.push((id.clone(), None, at, PROVINCE.to_string())),
            }
            audit.push(AuditEntry {
                at,
                actor: PROVINCE.into(),
                action: "kpi.delete".into(),
                target: format!("kpi:{id}"),
                before: stored.get(id).cloned().map(serde_json::Value::String),
                after: None,
            });
        }
        let (n_sops, n_kpis) = (rows.len(), kpi_defs.len());
        self.writer
            .write(WriteBatch {
                sops: rows,
                kpi_defs,
                audit,
                meta: vec![(VERSION_KEY.into(), shared.version.clone())],
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        if n_sops > 0 {
            *set = next.clone();
            super::operations::swap_sops(&self.sender, next)
                .await
                .map_err(|e| e.to_string())?;
        }
        drop(set);
        if n_kpis > 0 {
            let stored = self.read(|r| r.kpi_defs()).await?;
            let province = self.read(|r| r.province_kpis()).await?;
            *kpis = Arc::new(KpiSet::build_with(&self.config.kpis, &stored, &province));
            drop(kpis);
            self.lead.refresh().await;
        }
        tracing::info!(
            "upstream: the province's definitions, version {}: {n_sops} SOP template change(s), \
             {n_kpis} KPI definition change(s)",
            shared.version
        );
        Ok(())
    }
}
