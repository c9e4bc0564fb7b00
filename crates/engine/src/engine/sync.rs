//! The engine's side of the federation's link (see [`crate::sync`]): what a node account may
//! pull and push, what this node's own `[upstream]` link is doing, and how each node that
//! syncs with this one is doing, for `/api/health`.

use super::{Engine, EngineError};
use crate::auth::Principal;
use crate::sync::serve::Units;
use crate::sync::wire::{DataPush, DataTaken, Held, PullReply, PullRequest, PushRequest};
use chrono::{DateTime, Utc};
use ioc_model::{LinkState, NodeLink, Role};
use std::collections::HashMap;

/// A node counts as connected while it synced this recently.
const NODE_FRESH: chrono::Duration = chrono::Duration::seconds(10);

/// The last contact of a node that syncs with this one.
#[derive(Debug, Clone)]
pub(super) struct NodeSeen {
    at: DateTime<Utc>,
    lag: u64,
}

/// The header a node sends its data folder's incarnation in.
pub const INCARNATION_HEADER: &str = "x-ioc-incarnation";

fn node_of(caller: &Principal) -> Result<&str, EngineError> {
    if caller.info.role != Role::Node {
        return Err(EngineError::Forbidden(
            "only a node account (ioc node add) syncs".into(),
        ));
    }
    Ok(&caller.info.username)
}

impl Engine {
    /// Checks that a node syncs from the data folder first seen for it.
    pub async fn sync_incarnation(
        &self,
        caller: &Principal,
        incarnation: Option<&str>,
    ) -> Result<(), EngineError> {
        let me = node_of(caller)?.to_string();
        let Some(inc) = incarnation.map(str::to_string) else {
            return Err(EngineError::BadInput(format!(
                "node {me:?} sent no {INCARNATION_HEADER} (an older version?)"
            )));
        };
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let conn = crate::store::connect_path(&db).map_err(|e| e.to_string())?;
            crate::store::check_node_incarnation(&conn, &me, &inc)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(|m| EngineError::Op(crate::operate::OpError::Conflict(m)))
    }

    /// `POST /api/sync/pull`: what the node lacks and may have.
    pub async fn sync_pull(
        &self,
        caller: &Principal,
        req: PullRequest,
    ) -> Result<PullReply, EngineError> {
        let me = node_of(caller)?.to_string();
        let (reader, here, scope) = (self.reader.clone(), self.node.clone(), caller.scope());
        let held_of_ours = req.held.get(&*self.node).copied().unwrap_or(0);
        let theirs = req.rules.clone();
        let their_defs = req.defs.clone();
        let mut reply = {
            let me = me.clone();
            tokio::task::spawn_blocking(move || {
                crate::sync::serve::pull(&reader, &here, &me, &scope, &req)
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??
        };
        let ours = self.own_last().await?;
        self.saw_node(&me, ours.saturating_sub(held_of_ours));
        // The rules the province's people made on the rules screen go to every node.
        let path = self
            .config
            .rules_dir()
            .join(crate::rules::files::EDITED_FILE);
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(EngineError::Internal(format!("{}: {e}", path.display())));
            }
        };
        let shared = crate::sync::wire::SharedRules::of(text);
        if theirs.as_deref() != Some(shared.version.as_str()) {
            reply.rules = Some(shared);
        }
        // So do the SOP templates and KPI definitions they made on their screens.
        let defs = self.shared_defs().await?;
        if their_defs.as_deref() != Some(defs.version.as_str()) {
            reply.defs = Some(defs);
        }
        Ok(reply)
    }

    /// The SOP templates and KPI definitions this IOC's people made (not the seeded ones,
    /// nor any kept from further up), as its nodes keep them.
    async fn shared_defs(&self) -> Result<crate::sync::wire::SharedDefs, EngineError> {
        let mine = |by: &str| by != crate::alerts::SYSTEM && by != crate::sync::PROVINCE;
        let sops = self
            .sops
            .lock()
            .await
            .iter()
            .filter(|(_, t)| mine(&t.updated_by))
            .map(|(n, t)| (n.clone(), t.text.clone()))
            .collect();
        let r = self.reader.clone();
        let kpis = tokio::task::spawn_blocking(move || r.own_kpis())
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        Ok(crate::sync::wire::SharedDefs::of(sops, kpis))
    }

    /// `POST /api/sync/push`: the node's own operations; those on alerts outside its units
    /// are left out (counted in `refused`).
    pub async fn sync_push(
        &self,
        caller: &Principal,
        req: PushRequest,
    ) -> Result<Held, EngineError> {
        let me = node_of(caller)?.to_string();
        if let Some(op) = req.ops.iter().find(|o| o.origin != me) {
            return Err(EngineError::BadInput(format!(
                "a node sends its own operations only: {}#{} is not {me:?}'s",
                op.origin, op.seq
            )));
        }
        if req.ops.len() > crate::sync::wire::BATCH {
            return Err(EngineError::TooLarge(format!(
                "at most {} operations a push",
                crate::sync::wire::BATCH
            )));
        }
        let upto = req.ops.iter().map(|o| o.seq).max().unwrap_or(0);
        // A time further ahead than a clock may plausibly drift would order the operation
        // after everything anyone does for as long: refused (counted), like one out of scope.
        let ahead = crate::sync::Hlc::new(
            (self.clock.now() + crate::sync::hlc::MAX_ADOPTED_AHEAD).timestamp_millis(),
            0,
        );
        let (reader, here, scope) = (self.reader.clone(), self.node.clone(), caller.scope());
        let (kept, refused) = tokio::task::spawn_blocking(move || {
            let mut units = Units::new(&reader, &here);
            units.learn(&req.ops);
            let mut kept = Vec::with_capacity(req.ops.len());
            let mut refused = 0;
            for op in req.ops {
                match units.of(&op)? {
                    Some(u) if scope.allows(u.as_deref()) && op.hlc <= ahead => kept.push(op),
                    _ => refused += 1,
                }
            }
            Ok::<_, crate::store::StoreError>((kept, refused))
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        if refused > 0 {
            tracing::warn!("sync: {refused} operations of node {me:?} outside its units left out");
        }
        let report = self
            .merge(kept, HashMap::from([(me.clone(), upto)]))
            .await?;
        self.saw_node(&me, 0);
        Ok(Held {
            held: report.held.get(&me).copied().unwrap_or(0),
            applied: report.applied,
            refused,
        })
    }

    /// `POST /api/sync/data`: devices and readings a node stored (during an outage too: what
    /// is older than `[alerts] history_after` is history, stored and rolled up, never paging
    /// anyone). Those outside its units are left out and counted.
    pub async fn sync_data(
        &self,
        caller: &Principal,
        push: DataPush,
    ) -> Result<DataTaken, EngineError> {
        let me = node_of(caller)?.to_string();
        if push.entities.len() + push.obs.len() > 2 * crate::sync::wire::DATA_BATCH {
            return Err(EngineError::TooLarge(format!(
                "at most {} devices and readings a push",
                2 * crate::sync::wire::DATA_BATCH
            )));
        }
        let scope = caller.scope();
        // A device is the node's if the node registered it (or it is new here): a node never
        // takes over the IOC's devices or another node's, whatever the id and unit it sends.
        let source = format!("{}{me}", crate::sync::NODE_SOURCE);
        let owners = {
            let reader = self.reader.clone();
            let ids: Vec<String> = push
                .entities
                .iter()
                .map(|e| e.id.clone())
                .chain(push.obs.iter().map(|o| o.0.clone()))
                .collect();
            tokio::task::spawn_blocking(move || reader.entity_sources(&ids))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??
        };
        let its_own = |id: &str| match owners.get(id) {
            None => true,
            Some(s) => s.as_deref() == Some(source.as_str()),
        };
        let mut refused = 0;
        let mut allowed = std::collections::HashSet::new();
        let mut items = Vec::with_capacity(push.entities.len() + push.obs.len());
        for e in push.entities {
            if scope.allows(e.unit.as_deref()) && its_own(&e.id) {
                allowed.insert(e.id.clone());
                items.push(crate::ingest::Item::Entity(Box::new(e)));
            } else {
                refused += 1;
            }
        }
        for (entity, metric, ts, value) in push.obs {
            let ok = allowed.contains(&entity)
                || (owners.contains_key(&entity)
                    && its_own(&entity)
                    && self
                        .hub
                        .entity(&entity)
                        .is_some_and(|e| scope.allows(e.unit.as_deref())));
            let Some(time) = DateTime::<Utc>::from_timestamp_millis(ts) else {
                refused += 1;
                continue;
            };
            if !ok {
                refused += 1;
                continue;
            }
            items.push(crate::ingest::Item::Obs(crate::ingest::Obs {
                entity: entity.into(),
                metric: metric.into(),
                time,
                value,
            }));
        }
        if refused > 0 {
            tracing::warn!(
                "sync: {refused} devices or readings of node {me:?} left out (outside its \
                 units, or devices that are not its own)"
            );
        }
        let report = self
            .sender
            .ingest(&source, items)
            .await
            .map_err(|_| EngineError::Closed)?;
        self.saw_node(&me, 0);
        Ok(DataTaken {
            upto: push.upto,
            accepted: report.accepted,
            refused: refused + report.rejected.len(),
        })
    }

    /// `GET /api/sync/held`: what this node holds of the caller's operations.
    pub async fn sync_held(&self, caller: &Principal) -> Result<Held, EngineError> {
        let me = node_of(caller)?.to_string();
        let reader = self.reader.clone();
        let held = tokio::task::spawn_blocking(move || reader.vector())
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??
            .get(&me)
            .copied()
            .unwrap_or(0);
        self.saw_node(&me, 0);
        Ok(Held {
            held,
            ..Default::default()
        })
    }

    /// The last sequence of this node's own operations.
    async fn own_last(&self) -> Result<u64, EngineError> {
        let (reader, node) = (self.reader.clone(), self.node.clone());
        Ok(
            tokio::task::spawn_blocking(move || reader.last_seq_of(&node))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??,
        )
    }

    fn saw_node(&self, node: &str, lag: u64) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let at = self.clock.now();
        let e = nodes
            .entry(node.to_string())
            .or_insert(NodeSeen { at, lag });
        e.at = at;
        // A pull measures the lag; the other calls keep the last measure.
        if lag > 0 || e.lag == 0 {
            e.lag = lag;
        }
    }

    /// The nodes that synced with this one, for `/api/health`.
    pub fn node_links(&self) -> Vec<NodeLink> {
        let now = self.clock.now();
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<NodeLink> = nodes
            .iter()
            .map(|(name, s)| NodeLink {
                node: name.clone(),
                state: if now - s.at <= NODE_FRESH {
                    LinkState::Connected
                } else {
                    LinkState::Offline
                },
                last_seen: s.at,
                lag: s.lag,
            })
            .collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }

    /// This node's link to its IOC, if it has one.
    pub fn upstream_link(&self) -> Option<ioc_model::UpstreamLink> {
        self.link.as_ref().map(|l| l.get())
    }

    /// Starts the `[upstream]` link, if configured.
    pub(super) fn start_upstream(&self) {
        let Some(u) = &self.config.upstream else {
            return;
        };
        let Some(link) = self.link.clone() else {
            return;
        };
        let ctx = crate::sync::upstream::Ctx {
            url: u.url.clone(),
            token_file: u.token_file.clone(),
            node: self.node.clone(),
            incarnation: self.incarnation.clone(),
            reader: self.reader.clone(),
            db: self.db.clone(),
            rules_dir: self.config.rules_dir(),
            province: std::sync::Arc::new(super::province::Province {
                sops: self.sops.clone(),
                lead: self.lead.clone(),
                writer: self.writer.clone(),
                reader: self.reader.clone(),
                sender: self.sender.clone(),
                clock: self.clock.clone(),
                config: self.config.clone(),
            }),
            sender: self.sender.clone(),
            clock: self.clock.clone(),
            link,
            cancel: self.cancel.child_token(),
        };
        self.tasks
            .lock()
            .unwrap()
            .push(tokio::spawn(crate::sync::upstream::run(ctx)));
    }
}
