//! The federation's operation log in the store (see [`crate::sync`]): written in the same
//! transaction as the changes it records, read to send to other nodes and to fold a shared
//! thing again when an operation of another node arrives.

use super::StoreError;
use crate::sync::{Gid, Hlc, OpRecord};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;

/// What the engine needs of the log at start.
#[derive(Debug, Default)]
pub struct SyncState {
    /// The latest hybrid time recorded: the clock continues after it.
    pub last_hlc: Hlc,
    /// Alerts made on other nodes: local id → their federation id.
    pub alert_gids: Vec<(i64, Gid)>,
    /// Per origin, the highest sequence held (everything up to it is held).
    pub vector: HashMap<String, u64>,
}

/// This data folder's node name: the one it recorded; else `configured`, or a new random one,
/// recorded now. A configured name different from the recorded one is refused (the folder's
/// operations were logged under the recorded one).
pub fn node_name(conn: &Connection, configured: Option<&str>) -> Result<String, String> {
    let recorded: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'node'", [], |r| {
            r.get(0)
        })
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

/// Appends operations to the log. One made here (`seq` 0) gets its origin's next sequence;
/// one received keeps its own and is ignored if already held.
pub(super) fn write(tx: &Transaction<'_>, ops: &[OpRecord]) -> rusqlite::Result<()> {
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
                "INSERT OR IGNORE INTO oplog (origin, seq, hlc, subject, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
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

fn op_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<OpRecord>> {
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

impl super::Reader {
    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        self.with(|c| {
            let last: Option<i64> = c.query_row("SELECT MAX(hlc) FROM oplog", [], |r| r.get(0))?;
            let mut st = SyncState {
                last_hlc: Hlc(last.unwrap_or(0) as u64),
                ..Default::default()
            };
            let mut stmt = c.prepare("SELECT id, gid FROM alerts WHERE gid IS NOT NULL")?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
                let (id, gid) = row?;
                if let Some(g) = Gid::parse(&gid) {
                    st.alert_gids.push((id, g));
                }
            }
            let mut stmt = c.prepare("SELECT origin, MAX(seq) FROM oplog GROUP BY origin")?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (origin, seq) = row?;
                st.vector.insert(origin, seq as u64);
            }
            // Past operations left out on purpose (outside this node's units), as recorded.
            let mut stmt = c.prepare("SELECT key, value FROM meta WHERE key LIKE 'held:%'")?;
            for row in
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            {
                let (key, value) = row?;
                if let (Some(origin), Ok(seq)) = (key.strip_prefix("held:"), value.parse::<u64>()) {
                    let e = st.vector.entry(origin.to_string()).or_default();
                    *e = (*e).max(seq);
                }
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
