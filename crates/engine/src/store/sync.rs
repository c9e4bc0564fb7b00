//! The federation's operation log in the store (see [`crate::sync`]): written in the same
//! transaction as the changes it records, read to send to other nodes and to fold a shared
//! thing again when an operation of another node arrives.

use super::db::{params, Db, OptionalExtension, Result as DbResult, Row};
use super::parts::RAW;
use super::StoreError;
use crate::sync::{Gid, Hlc, OpRecord};
use std::collections::HashMap;

/// What the engine needs of the log at start.
#[derive(Debug, Default)]
pub struct SyncState {
    /// The latest hybrid time recorded: the clock continues after it.
    pub last_hlc: Hlc,
    /// Alerts made on other nodes: local id → their federation id.
    pub alert_gids: Vec<(i64, Gid)>,
    /// Directives issued on other nodes: local id → federation id.
    pub directive_gids: Vec<(i64, Gid)>,
    /// Silences made on other nodes: local id → federation id.
    pub silence_gids: Vec<(i64, Gid)>,
    /// Incidents opened on other nodes: local id → federation id.
    pub incident_gids: Vec<(i64, Gid)>,
    /// Per origin, the highest sequence held (everything up to it is held).
    pub vector: HashMap<String, u64>,
    /// Devices registered by other nodes (their source is `node:…`).
    pub foreign_entities: std::collections::HashSet<i64>,
}

/// This data folder's node name: the one it recorded; else `configured`, or a new random one,
/// recorded now. A configured name different from the recorded one is refused (the folder's
/// operations were logged under the recorded one).
pub fn node_name(conn: &Db, configured: Option<&str>) -> Result<String, String> {
    let recorded: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'node'",
            params![],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    match (recorded, configured) {
        (Some(r), Some(c)) if r != c => Err(format!(
            "this data folder belongs to node {r:?}; [node] name says {c:?} \
             (a node keeps its name: its operations are logged under it)"
        )),
        (Some(r), _) => Ok(r),
        (None, c) => {
            let name = c
                .map(str::to_string)
                .unwrap_or_else(|| format!("node-{:06x}", rand::random::<u32>() & 0xff_ffff));
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('node', ?1)",
                params![name],
            )
            .map_err(|e| e.to_string())?;
            Ok(name)
        }
    }
}

/// This data folder's incarnation: a random id made at its first start. Two folders of the
/// same node name (a reinstall, a restored backup) have different ones, so the IOC can tell
/// that their sequence numbers would clash instead of silently dropping the new operations.
pub fn incarnation(conn: &Db) -> Result<String, String> {
    let recorded: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'incarnation'",
            params![],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    if let Some(i) = recorded {
        return Ok(i);
    }
    let i = format!("{:016x}", rand::random::<u64>());
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('incarnation', ?1)",
        params![i],
    )
    .map_err(|e| e.to_string())?;
    Ok(i)
}

/// Checks the incarnation a node syncs from against the one first seen for it (recorded
/// then). `Err`: the explanation for the node's operator.
pub fn check_node_incarnation(conn: &Db, node: &str, incarnation: &str) -> Result<(), String> {
    let key = format!("incarnation:{node}");
    let known: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| e.to_string())?;
    match known {
        Some(k) if k == incarnation => Ok(()),
        Some(_) => Err(format!(
            "node {node:?}: this is not the data folder the IOC knows for it (a reinstall, or \
             a backup restored, under the same name): its operations would clash with those \
             the IOC already holds. Give it a new name and a new account (ioc node add)."
        )),
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![key, incarnation],
            )
            .map_err(|e| e.to_string())?;
            Ok(())
        }
    }
}

/// The first time a data folder runs with an `[upstream]`: every device of its own goes into
/// the outbox, so that the IOC knows the devices whose readings follow (devices registered
/// before the link existed would otherwise never be sent). Returns how many.
pub fn seed_outbox(conn: &Db) -> Result<usize, StoreError> {
    let done: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'outbox:seeded'",
            params![],
            |r| r.get(0),
        )
        .optional()?;
    if done.is_some() {
        return Ok(0);
    }
    let n = conn.execute(
        "INSERT INTO upstream_outbox (entity)
         SELECT id FROM entities WHERE source IS NULL OR source NOT LIKE 'node:%' ORDER BY id",
        params![],
    )?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('outbox:seeded', '1')",
        params![],
    )?;
    Ok(n)
}

/// Drops what the IOC has committed from the outbox.
pub fn outbox_trim(conn: &Db, upto: i64) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM upstream_outbox WHERE seq <= ?1", [upto])?)
}

/// Appends operations to the log. One made here (`seq` 0) gets its origin's next sequence;
/// one received keeps its own and is ignored if already held.
pub(super) fn write(tx: &Db, ops: &[OpRecord]) -> DbResult<()> {
    for op in ops {
        let body = serde_json::to_string(&op.change).expect("operations serialize");
        if op.seq == 0 {
            tx.prepare_cached(
                "INSERT INTO oplog (origin, seq, hlc, subject, body)
                 VALUES (?1, COALESCE((SELECT MAX(seq) FROM oplog WHERE origin = ?1), 0) + 1,
                         ?2, ?3, ?4)",
            )?
            .execute(params![
                op.origin,
                op.hlc.0 as i64,
                op.change.subject(),
                body
            ])?;
        } else {
            tx.prepare_cached(
                "INSERT INTO oplog (origin, seq, hlc, subject, body)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                op.origin,
                op.seq as i64,
                op.hlc.0 as i64,
                op.change.subject(),
                body
            ])?;
        }
    }
    Ok(())
}

fn op_from_row(r: &Row<'_, '_>) -> DbResult<Option<OpRecord>> {
    let body: String = r.get(3)?;
    let origin: String = r.get(0)?;
    let seq: i64 = r.get(1)?;
    match serde_json::from_str(&body) {
        Ok(change) => Ok(Some(OpRecord {
            origin,
            seq: seq as u64,
            hlc: Hlc(r.get::<_, i64>(2)? as u64),
            change,
        })),
        Err(e) => {
            // Written by a newer version, or damaged: left out of folds, said once per read.
            tracing::error!("operation {origin}#{seq} cannot be read: {e}");
            Ok(None)
        }
    }
}

/// (seq, entity, series, ts) of `upstream_outbox`.
type OutboxRow = (i64, Option<i64>, Option<i64>, Option<i64>);

/// A batch of what a node keeps for its IOC (see `upstream_outbox`).
#[derive(Debug, Default)]
pub struct OutboxBatch {
    /// Devices registered or changed, in their newest version.
    pub entities: Vec<ioc_model::Entity>,
    /// Source readings: (device's id, metric, time in ms, value).
    pub obs: Vec<(String, String, i64, f64)>,
    /// The last outbox row read; `None`: the outbox is empty.
    pub upto: Option<i64>,
}

/// Per origin, the highest sequence held: the log's, or past it what was left out on purpose
/// (outside this node's units) as recorded. One index seek per origin.
fn vector_of(c: &Db) -> Result<HashMap<String, u64>, StoreError> {
    let mut vector = HashMap::new();
    // Each origin's last sequence by a seek on the primary key (origin, seq), not a scan of
    // the whole log: the log only grows.
    let mut stmt = c.prepare_cached(
        "WITH RECURSIVE o(origin) AS (
             SELECT MIN(origin) FROM oplog
             UNION ALL
             SELECT (SELECT MIN(origin) FROM oplog WHERE origin > o.origin) FROM o
             WHERE o.origin IS NOT NULL)
         SELECT origin, (SELECT MAX(seq) FROM oplog WHERE oplog.origin = o.origin)
         FROM o WHERE origin IS NOT NULL",
    )?;
    for row in stmt.query_map(params![], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (origin, seq) = row?;
        vector.insert(origin, seq as u64);
    }
    let mut stmt = c.prepare_cached("SELECT key, value FROM meta WHERE key LIKE 'held:%'")?;
    for row in stmt.query_map(params![], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (key, value) = row?;
        if let (Some(origin), Ok(seq)) = (key.strip_prefix("held:"), value.parse::<u64>()) {
            let e = vector.entry(origin.to_string()).or_default();
            *e = (*e).max(seq);
        }
    }
    Ok(vector)
}

impl super::Reader {
    /// What this node holds, per origin (see [`SyncState::vector`]); cheap, for every
    /// exchange.
    pub fn vector(&self) -> Result<HashMap<String, u64>, StoreError> {
        self.with(vector_of)
    }

    /// Up to `limit` rows of the outbox, oldest first. A reading raw retention removed
    /// meanwhile is left out.
    pub fn outbox(&self, limit: usize) -> Result<OutboxBatch, StoreError> {
        self.with(|c| {
            let mut out = OutboxBatch::default();
            let mut rows = c.prepare_cached(
                "SELECT seq, entity, series, ts FROM upstream_outbox ORDER BY seq LIMIT ?1",
            )?;
            let rows: Vec<OutboxRow> = rows
                .query_map([limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut entity = c.prepare_cached(
                "SELECT id, ext_id, type, name, lon, lat, unit, unit_name, domain, attributes,
                        status FROM entities WHERE id = ?1",
            )?;
            let mut reading = c.prepare_cached(
                "SELECT e.ext_id, s.metric, o.value FROM series s
                 JOIN entities e ON e.id = s.entity
                 JOIN observations o ON o.part = ?3 AND o.series = s.id AND o.ts = ?2
                 WHERE s.id = ?1",
            )?;
            let mut seen = std::collections::HashSet::new();
            for (seq, e, series, ts) in rows {
                out.upto = Some(seq);
                match (e, series, ts) {
                    (Some(id), _, _) if seen.insert(id) => {
                        if let Some((_, en)) = entity
                            .query_row([id], super::read::entity_from_row)
                            .optional()?
                        {
                            out.entities.push(en);
                        }
                    }
                    (None, Some(series), Some(ts)) => {
                        if let Some((ext, metric, value)) = reading
                            .query_row(params![series, ts, RAW.part(ts)], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            })
                            .optional()?
                        {
                            out.obs.push((ext, metric, ts, value));
                        }
                    }
                    _ => {}
                }
            }
            Ok(out)
        })
    }

    /// The source of each device of `ids` known here (`None` inside: known, of no source).
    pub fn entity_sources(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT source FROM entities WHERE ext_id = ?1")?;
            let mut out = HashMap::new();
            for id in ids {
                if out.contains_key(id) {
                    continue;
                }
                if let Some(s) = stmt
                    .query_row([id], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                {
                    out.insert(id.clone(), s);
                }
            }
            Ok(out)
        })
    }

    /// The last sequence of `origin`'s operations in the log (0: none).
    pub fn last_seq_of(&self, origin: &str) -> Result<u64, StoreError> {
        self.with(|c| {
            let last: Option<i64> = c
                .prepare_cached("SELECT MAX(seq) FROM oplog WHERE origin = ?1")?
                .query_row([origin], |r| r.get(0))?;
            Ok(last.unwrap_or(0) as u64)
        })
    }

    /// The latest hybrid time of `origin`'s own operations.
    pub fn last_hlc_of(&self, origin: &str) -> Result<Hlc, StoreError> {
        self.with(|c| {
            let last: Option<i64> = c.query_row(
                "SELECT MAX(hlc) FROM oplog WHERE origin = ?1",
                [origin],
                |r| r.get(0),
            )?;
            Ok(Hlc(last.unwrap_or(0) as u64))
        })
    }

    /// Rows waiting in the outbox.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            Ok(
                c.query_row("SELECT COUNT(*) FROM upstream_outbox", params![], |r| {
                    r.get::<_, i64>(0)
                })? as u64,
            )
        })
    }

    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        self.with(|c| {
            let last: Option<i64> =
                c.query_row("SELECT MAX(hlc) FROM oplog", params![], |r| r.get(0))?;
            let mut st = SyncState {
                last_hlc: Hlc(last.unwrap_or(0) as u64),
                ..Default::default()
            };
            let mut stmt = c.prepare("SELECT id, gid FROM alerts WHERE gid IS NOT NULL")?;
            for row in stmt.query_map(params![], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })? {
                let (id, gid) = row?;
                if let Some(g) = Gid::parse(&gid) {
                    st.alert_gids.push((id, g));
                }
            }
            let mut stmt = c.prepare("SELECT id, gid FROM directives WHERE gid IS NOT NULL")?;
            for row in stmt.query_map(params![], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })? {
                let (id, gid) = row?;
                if let Some(g) = Gid::parse(&gid) {
                    st.directive_gids.push((id, g));
                }
            }
            let mut stmt = c.prepare("SELECT id, gid FROM silences WHERE gid IS NOT NULL")?;
            for row in stmt.query_map(params![], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })? {
                let (id, gid) = row?;
                if let Some(g) = Gid::parse(&gid) {
                    st.silence_gids.push((id, g));
                }
            }
            let mut stmt = c.prepare("SELECT id, gid FROM incidents WHERE gid IS NOT NULL")?;
            for row in stmt.query_map(params![], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })? {
                let (id, gid) = row?;
                if let Some(g) = Gid::parse(&gid) {
                    st.incident_gids.push((id, g));
                }
            }
            st.vector = vector_of(c)?;
            let mut stmt = c.prepare("SELECT id FROM entities WHERE source LIKE 'node:%'")?;
            for row in stmt.query_map(params![], |r| r.get::<_, i64>(0))? {
                st.foreign_entities.insert(row?);
            }
            Ok(st)
        })
    }

    /// The unit of an alert by its federation id (`here`: this node's name); `None` when
    /// there is no such alert here.
    pub fn alert_unit(&self, gid: &Gid, here: &str) -> Result<Option<Option<String>>, StoreError> {
        self.with(|c| {
            let r = if gid.node == here {
                c.prepare_cached("SELECT unit FROM alerts WHERE id = ?1 AND gid IS NULL")?
                    .query_row([gid.id], |r| r.get(0))
                    .optional()?
            } else {
                c.prepare_cached("SELECT unit FROM alerts WHERE gid = ?1")?
                    .query_row([gid.to_string()], |r| r.get(0))
                    .optional()?
            };
            Ok(r)
        })
    }

    /// The unit of a directive by its federation id; `None` when there is no such directive
    /// here.
    pub fn directive_unit(&self, gid: &Gid, here: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            let r = if gid.node == here {
                c.prepare_cached("SELECT unit FROM directives WHERE id = ?1 AND gid IS NULL")?
                    .query_row([gid.id], |r| r.get(0))
                    .optional()?
            } else {
                c.prepare_cached("SELECT unit FROM directives WHERE gid = ?1")?
                    .query_row([gid.to_string()], |r| r.get(0))
                    .optional()?
            };
            Ok(r)
        })
    }

    /// The unit of an incident by its federation id (`Some(None)`: it has none); `None`
    /// when there is no such incident here.
    pub fn incident_unit(
        &self,
        gid: &Gid,
        here: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        self.with(|c| {
            let r = if gid.node == here {
                c.prepare_cached("SELECT unit FROM incidents WHERE id = ?1 AND gid IS NULL")?
                    .query_row([gid.id], |r| r.get(0))
                    .optional()?
            } else {
                c.prepare_cached("SELECT unit FROM incidents WHERE gid = ?1")?
                    .query_row([gid.to_string()], |r| r.get(0))
                    .optional()?
            };
            Ok(r)
        })
    }

    /// The unit a silence is limited to (`Some(None)`: the whole province) by its federation
    /// id; `None` when there is no such silence here.
    pub fn silence_unit(
        &self,
        gid: &Gid,
        here: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        self.with(|c| {
            let doc: Option<String> = if gid.node == here {
                c.prepare_cached("SELECT doc FROM silences WHERE id = ?1 AND gid IS NULL")?
                    .query_row([gid.id], |r| r.get(0))
                    .optional()?
            } else {
                c.prepare_cached("SELECT doc FROM silences WHERE gid = ?1")?
                    .query_row([gid.to_string()], |r| r.get(0))
                    .optional()?
            };
            Ok(doc
                .and_then(|d| serde_json::from_str::<ioc_model::Silence>(&d).ok())
                .map(|s| s.matcher.unit))
        })
    }

    /// Every operation on one subject (`alert:oc-a/17`), in hybrid-time order.
    pub fn ops_of(&self, subject: &str) -> Result<Vec<OpRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT origin, seq, hlc, body FROM oplog WHERE subject = ?1
                 ORDER BY hlc, origin, seq",
            )?;
            let rows = stmt.query_map([subject], op_from_row)?;
            let mut out = Vec::new();
            for r in rows {
                out.extend(r?);
            }
            Ok(out)
        })
    }

    /// An origin's operations after sequence `after`, at most `limit`, in sequence order.
    pub fn ops_after(
        &self,
        origin: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT origin, seq, hlc, body FROM oplog WHERE origin = ?1 AND seq > ?2
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![origin, after as i64, limit as i64], op_from_row)?;
            let mut out = Vec::new();
            for r in rows {
                out.extend(r?);
            }
            Ok(out)
        })
    }
}
