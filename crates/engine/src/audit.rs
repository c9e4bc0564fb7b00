//! The audit log: every change people or the engine make (alert transitions, users, sources,
//! rules, incidents, directives), who made it, when, and the state before and after.
//!
//! Rows are only ever appended, each in the same transaction as the change it records, and
//! chained: a row's `hash` is the SHA-256 of the previous row's hash and this row's fields,
//! and the newest `seq`/`hash` is also kept in `meta`. Altering a row breaks its hash;
//! removing one breaks the chain at the next row (or, for the newest rows, disagrees with
//! `meta`). [`verify`] (`ioc audit verify`) walks the chain and names the first bad entry.
//! The head is read inside each appending transaction, so any writer (the engine, the
//! `ioc user` command) extends the same chain.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A change to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `user:NAME`, `system`, `source:NAME`, `desktop:NAME`.
    pub actor: String,
    /// What was done, e.g. `alert.ack`, `user.add`, `source.put`.
    pub action: String,
    /// What it was done to, e.g. `alert:42`, `user:lan`.
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditRow {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

fn text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

/// The hash of a row: fields length-prefixed so that no two rows hash the same text.
/// (One argument per stored column, so that the verifier reads exactly what is stored.)
#[allow(clippy::too_many_arguments)]
pub fn hash(
    prev: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    for part in [
        Some(prev),
        Some(&*seq.to_string()),
        Some(&*at.to_string()),
        Some(actor),
        Some(action),
        Some(target),
        before,
        after,
    ] {
        match part {
            Some(p) => {
                h.update((p.len() as u64).to_le_bytes());
                h.update(p.as_bytes());
            }
            None => h.update(u64::MAX.to_le_bytes()),
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

const HEAD_KEY: &str = "audit_head";

/// Appends entries inside `tx` (which must hold the write lock: begin it IMMEDIATE or write
/// before calling), continuing the chain from its stored head.
pub fn append(tx: &Transaction<'_>, entries: &[AuditEntry]) -> rusqlite::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev): (i64, String) = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS.to_string()));
    let mut ins = tx.prepare_cached(
        "INSERT INTO audit (seq, at, actor, action, target, before, after, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for e in entries {
        seq += 1;
        let (before, after) = (text(&e.before), text(&e.after));
        let h = hash(
            &prev,
            seq,
            e.at,
            &e.actor,
            &e.action,
            &e.target,
            before.as_deref(),
            after.as_deref(),
        );
        ins.execute(params![
            seq, e.at, e.actor, e.action, e.target, before, after, prev, h
        ])?;
        prev = h;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![HEAD_KEY, format!("{seq} {prev}")],
    )?;
    Ok(())
}

/// What [`verify`] found wrong first.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuditError {
    #[error("audit entry {0} was altered (its hash does not match its contents)")]
    Altered(i64),
    #[error("audit entry {0} is missing (removed): the next entry is {1}")]
    Missing(i64, i64),
    #[error("audit entry {0} does not follow entry {1} (the chain is broken there)")]
    Broken(i64, i64),
    #[error("the newest audit entries were removed: the log ends at {0}, it reached {1}")]
    Truncated(i64, i64),
    #[error("database: {0}")]
    Db(String),
}

/// Walks the whole chain; the number of entries when intact.
pub fn verify(conn: &rusqlite::Connection) -> Result<u64, AuditError> {
    let db = |e: rusqlite::Error| AuditError::Db(e.to_string());
    let mut stmt = conn
        .prepare(
            "SELECT seq, at, actor, action, target, before, after, prev_hash, hash
             FROM audit ORDER BY seq",
        )
        .map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    let (mut last_seq, mut last_hash) = (0i64, GENESIS.to_string());
    let mut n = 0u64;
    while let Some(r) = rows.next().map_err(db)? {
        let seq: i64 = r.get(0).map_err(db)?;
        let at: i64 = r.get(1).map_err(db)?;
        let actor: String = r.get(2).map_err(db)?;
        let action: String = r.get(3).map_err(db)?;
        let target: String = r.get(4).map_err(db)?;
        let before: Option<String> = r.get(5).map_err(db)?;
        let after: Option<String> = r.get(6).map_err(db)?;
        let prev: String = r.get(7).map_err(db)?;
        let stored: String = r.get(8).map_err(db)?;
        if seq != last_seq + 1 {
            return Err(AuditError::Missing(last_seq + 1, seq));
        }
        let computed = hash(
            &prev,
            seq,
            at,
            &actor,
            &action,
            &target,
            before.as_deref(),
            after.as_deref(),
        );
        if computed != stored {
            return Err(AuditError::Altered(seq));
        }
        if prev != last_hash {
            return Err(AuditError::Broken(seq, last_seq));
        }
        last_seq = seq;
        last_hash = stored;
        n += 1;
    }
    let head: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [HEAD_KEY], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db)?;
    if let Some(head) = head {
        let (seq, h) = head.split_once(' ').unwrap_or(("0", ""));
        let seq: i64 = seq.parse().unwrap_or(0);
        if seq > last_seq {
            return Err(AuditError::Truncated(last_seq, seq));
        }
        if seq == last_seq && h != last_hash {
            return Err(AuditError::Altered(seq));
        }
    }
    Ok(n)
}

/// The newest entries, newest first, optionally about one target.
pub fn recent(
    conn: &rusqlite::Connection,
    target: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, actor, action, target, before, after, prev_hash, hash FROM audit
         WHERE (?1 IS NULL OR target = ?1) ORDER BY seq DESC LIMIT ?2",
    )?;
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    let rows = stmt
        .query_map(params![target, limit as i64], |r| {
            Ok(AuditRow {
                seq: r.get(0)?,
                entry: AuditEntry {
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    before: parse(r.get(5)?),
                    after: parse(r.get(6)?),
                },
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
            })
        })?
        .collect();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::store::open(dir.path()).unwrap();
        let conn = crate::store::connect(&path).unwrap();
        (dir, conn)
    }

    fn entry(i: i64) -> AuditEntry {
        AuditEntry {
            at: 1_800_000_000_000 + i,
            actor: "user:lan".into(),
            action: "alert.ack".into(),
            target: format!("alert:{i}"),
            before: Some(serde_json::json!({"state": "new"})),
            after: Some(serde_json::json!({"state": "acknowledged"})),
        }
    }

    fn fill(conn: &mut rusqlite::Connection, n: i64) {
        for i in 0..n {
            let tx = conn.transaction().unwrap();
            append(&tx, &[entry(i)]).unwrap();
            tx.commit().unwrap();
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (_d, mut conn) = db();
        assert_eq!(verify(&conn), Ok(0));
        fill(&mut conn, 5);
        assert_eq!(verify(&conn), Ok(5));
        assert_eq!(recent(&conn, Some("alert:3"), 10).unwrap().len(), 1);
    }

    #[test]
    fn altering_or_removing_any_row_is_found() {
        let (_d, mut conn) = db();
        fill(&mut conn, 5);
        conn.execute("UPDATE audit SET actor = 'user:mallory' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(verify(&conn), Err(AuditError::Altered(3)));

        let (_d, mut conn) = db();
        fill(&mut conn, 5);
        conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
        assert_eq!(verify(&conn), Err(AuditError::Missing(2, 3)));

        // Removed and renumbered, hash recomputed for the row itself: the chain breaks.
        let (_d, mut conn) = db();
        fill(&mut conn, 5);
        conn.execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
        assert_eq!(verify(&conn), Err(AuditError::Truncated(4, 5)));

        let (_d, mut conn) = db();
        fill(&mut conn, 3);
        let rows = recent(&conn, None, 10).unwrap();
        let r2 = rows.iter().find(|r| r.seq == 2).unwrap();
        let forged = hash(GENESIS, 2, 0, "x", "y", "z", None, None);
        conn.execute(
            "UPDATE audit SET prev_hash = ?1, hash = ?2, at = 0, actor = 'x', action = 'y',
             target = 'z', before = NULL, after = NULL WHERE seq = 2",
            params![GENESIS, forged],
        )
        .unwrap();
        let _ = r2;
        assert_eq!(verify(&conn), Err(AuditError::Broken(2, 1)));
    }
}
