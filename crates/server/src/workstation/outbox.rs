//! The workstation's queue of actions the IOC has not answered yet: kept in SQLite in the
//! workstation's data folder the moment the operator acts (so a crash or a closed window
//! loses nothing), sent oldest first, each with its own `Idempotency-Key` (so an action
//! whose answer was lost is sent again without being done twice at the IOC).
//!
//! An action the IOC refuses (the alert was closed meanwhile, the person lost the right)
//! is not dropped: it stays here as `refused`, with the IOC's reason, shown on the link
//! banner and listed by `GET /api/workstation/outbox`, until someone discards it.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;

/// One queued action.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Queued {
    pub id: i64,
    /// Who did it (it is sent only with that person's session).
    pub user: String,
    pub method: String,
    /// Path and query at the IOC.
    pub path: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    #[serde(skip)]
    pub content_type: Option<String>,
    #[serde(skip)]
    pub key: String,
    /// When the operator did it (ms since the epoch).
    pub queued_at: i64,
    /// `waiting` or `refused`.
    pub state: String,
    /// The IOC's reason, when refused; the last failure, while waiting.
    pub error: Option<String>,
}

pub struct Outbox {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT,
    key TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting',
    error TEXT
);
";

impl Outbox {
    /// Opens (or makes) `workstation.db` in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Outbox> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("workstation.db");
        let conn = Connection::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Outbox {
            conn: Mutex::new(conn),
        })
    }

    /// Keeps an action; committed (and synced to disk) before the operator is told.
    pub fn push(&self, q: &Queued) -> rusqlite::Result<i64> {
        let c = self.conn.lock().unwrap();
        c.execute(
            "INSERT INTO outbox (user, method, path, body, content_type, key, queued_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                q.user,
                q.method,
                q.path,
                q.body,
                q.content_type,
                q.key,
                q.queued_at
            ],
        )?;
        Ok(c.last_insert_rowid())
    }

    /// The oldest action still to send.
    pub fn first(&self) -> rusqlite::Result<Option<Queued>> {
        let c = self.conn.lock().unwrap();
        c.query_row(
            "SELECT id, user, method, path, body, content_type, key, queued_at, state, error \
             FROM outbox WHERE state = 'waiting' ORDER BY id LIMIT 1",
            [],
            row,
        )
        .optional()
    }

    /// How many wait to be sent, and how many the IOC refused.
    pub fn counts(&self) -> rusqlite::Result<(u64, u64)> {
        let c = self.conn.lock().unwrap();
        c.query_row(
            "SELECT COALESCE(SUM(state = 'waiting'), 0), COALESCE(SUM(state = 'refused'), 0) \
             FROM outbox",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
    }

    /// Whether `user` has actions waiting (a new one goes behind them, in order).
    pub fn waiting_for(&self, user: &str) -> rusqlite::Result<bool> {
        let c = self.conn.lock().unwrap();
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'waiting' AND user = ?1)",
            params![user],
            |r| r.get(0),
        )
    }

    /// The IOC took it.
    pub fn done(&self, id: i64) -> rusqlite::Result<()> {
        let c = self.conn.lock().unwrap();
        c.execute("DELETE FROM outbox WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Why the last try failed (it stays waiting).
    pub fn failed(&self, id: i64, error: &str) -> rusqlite::Result<()> {
        let c = self.conn.lock().unwrap();
        c.execute(
            "UPDATE outbox SET error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// The IOC refused it: kept, with the reason, for a person to see.
    pub fn refused(&self, id: i64, error: &str) -> rusqlite::Result<()> {
        let c = self.conn.lock().unwrap();
        c.execute(
            "UPDATE outbox SET state = 'refused', error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Everything still here, oldest first (what `user` did, or everyone's with `None`).
    pub fn list(&self, user: Option<&str>) -> rusqlite::Result<Vec<Queued>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(
            "SELECT id, user, method, path, body, content_type, key, queued_at, state, error \
             FROM outbox WHERE ?1 IS NULL OR user = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![user], row)?;
        rows.collect()
    }

    /// A person discards a refused action of their own.
    pub fn discard(&self, id: i64, user: &str) -> rusqlite::Result<bool> {
        let c = self.conn.lock().unwrap();
        let n = c.execute(
            "DELETE FROM outbox WHERE id = ?1 AND user = ?2 AND state = 'refused'",
            params![id, user],
        )?;
        Ok(n == 1)
    }
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Queued> {
    Ok(Queued {
        id: r.get(0)?,
        user: r.get(1)?,
        method: r.get(2)?,
        path: r.get(3)?,
        body: r.get(4)?,
        content_type: r.get(5)?,
        key: r.get(6)?,
        queued_at: r.get(7)?,
        state: r.get(8)?,
        error: r.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(user: &str, path: &str) -> Queued {
        Queued {
            id: 0,
            user: user.into(),
            method: "POST".into(),
            path: path.into(),
            body: b"{}".to_vec(),
            content_type: Some("application/json".into()),
            key: format!("k-{path}"),
            queued_at: 1,
            state: "waiting".into(),
            error: None,
        }
    }

    #[test]
    fn actions_survive_reopening_and_leave_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let o = Outbox::open(dir.path()).unwrap();
            o.push(&action("an", "/api/alerts/1/ack")).unwrap();
            o.push(&action("an", "/api/alerts/1/comment")).unwrap();
            o.push(&action("binh", "/api/alerts/2/ack")).unwrap();
        }
        let o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.counts().unwrap(), (3, 0));
        assert!(o.waiting_for("an").unwrap());
        let first = o.first().unwrap().unwrap();
        assert_eq!(first.path, "/api/alerts/1/ack");
        o.done(first.id).unwrap();
        let second = o.first().unwrap().unwrap();
        assert_eq!(second.path, "/api/alerts/1/comment");
        o.refused(second.id, "409 closed at the IOC").unwrap();
        assert_eq!(o.counts().unwrap(), (1, 1));
        assert!(!o.waiting_for("an").unwrap());
        let listed = o.list(Some("an")).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, "refused");
        assert!(
            !o.discard(second.id, "binh").unwrap(),
            "only its author discards it"
        );
        assert!(o.discard(second.id, "an").unwrap());
        assert_eq!(o.counts().unwrap(), (1, 0));
    }
}
