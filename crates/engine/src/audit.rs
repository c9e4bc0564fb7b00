//! The audit log: every change people or the engine make (alert transitions, users, sources,
//! rules, incidents, directives, refused sign-ins), who made it, when, and the state before
//! and after.
//!
//! Rows are only ever appended, each in the same transaction as the change it records, and
//! chained: a row's `hash` covers the previous row's hash and this row's fields, and the
//! newest `seq`/`hash` is also kept in `meta` (the head). Altering a row breaks its hash;
//! removing one breaks the chain at the next row; removing the oldest ones leaves a chain
//! that does not start at 1; removing the newest disagrees with the head.
//!
//! Whoever can write the database could still rewrite the whole chain with plain SHA-256.
//! Two things stop that, and [`verify_with`] (`ioc audit verify --key --witness`) reads both:
//! - **A key** kept outside the database (`[audit] key_file`): rows are then chained with
//!   HMAC-SHA256, which nobody without the key can recompute, and the head carries a MAC.
//!   Once a row is keyed, every later row must be (a chain cannot be downgraded).
//! - **A witness**: the head exported elsewhere (`ioc audit head`), e.g. printed daily to
//!   another machine. A chain that no longer contains that row with that hash was rewritten
//!   or cut short.
//!
//! The head is read inside each appending transaction, so any writer (the engine, the
//! `ioc user` command) extends the same chain.

use crate::store::db::{params, Db, OptionalExtension, Result as DbResult};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The algorithm of an unkeyed row.
pub const PLAIN: &str = "sha256";

/// A change to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `user:NAME`, `system`, `source:NAME`, `desktop:NAME`, `address:IP`.
    pub actor: String,
    /// What was done, e.g. `alert.ack`, `user.add`, `source.put`, `login.failed`.
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

/// The key of a keyed chain, kept outside the database.
pub struct AuditKey {
    key: Vec<u8>,
    id: String,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.id)
    }
}

/// Lower-case hexadecimal of `b` (MACs, digests).
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl AuditKey {
    /// A key from its bytes (at least 32).
    pub fn from_bytes(key: Vec<u8>) -> Result<AuditKey, String> {
        if key.len() < 32 {
            return Err("an audit key needs at least 32 bytes".into());
        }
        let id = hex(&Sha256::digest(&key)[..8]);
        Ok(AuditKey { key, id })
    }

    /// Reads a key file (64 or more hex digits), or makes one there (owner-only) if there is
    /// none yet.
    pub fn load_or_create(path: &Path) -> Result<AuditKey, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let t = text.trim();
                let bytes = (0..t.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(t.get(i..i + 2).unwrap_or("zz"), 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|_| format!("{}: not a key of hex digits", path.display()))?;
                AuditKey::from_bytes(bytes).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use rand::RngCore;
                let mut key = vec![0u8; 32];
                rand::rng().fill_bytes(&mut key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                let mut o = std::fs::OpenOptions::new();
                o.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
                use std::io::Write;
                o.open(path)
                    .and_then(|mut f| f.write_all(format!("{}\n", hex(&key)).as_bytes()))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                tracing::warn!(
                    "made a new audit key at {}: keep a copy away from this machine",
                    path.display()
                );
                AuditKey::from_bytes(key)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Names the key without telling it (the first bytes of its SHA-256).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The algorithm recorded on the rows it chains.
    pub fn alg(&self) -> String {
        format!("hmac-sha256:{}", self.id)
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// The MAC of a head (`seq`, `hash`).
    fn head_mac(&self, seq: i64, hash: &str) -> String {
        let mut m = self.mac();
        m.update(format!("ioc-audit-head\0{seq}\0{hash}").as_bytes());
        hex(&m.finalize().into_bytes())
    }
}

fn text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

/// The fields of a row, as they are hashed: length-prefixed so that no two rows hash the
/// same text. (One argument per stored column, so that the verifier reads exactly what is
/// stored.)
#[allow(clippy::too_many_arguments)]
fn feed(
    h: &mut impl FnMut(&[u8]),
    prev: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<&str>,
    after: Option<&str>,
) {
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
                h(&(p.len() as u64).to_le_bytes());
                h(p.as_bytes());
            }
            None => h(&u64::MAX.to_le_bytes()),
        }
    }
}

/// The plain hash of a row (SHA-256).
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
    feed(
        &mut |b| h.update(b),
        prev,
        seq,
        at,
        actor,
        action,
        target,
        before,
        after,
    );
    hex(&h.finalize())
}

/// The keyed hash of a row (HMAC-SHA256, its algorithm included).
#[allow(clippy::too_many_arguments)]
fn keyed_hash(
    key: &AuditKey,
    prev: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> String {
    let mut m = key.mac();
    let alg = key.alg();
    m.update(&(alg.len() as u64).to_le_bytes());
    m.update(alg.as_bytes());
    feed(
        &mut |b| m.update(b),
        prev,
        seq,
        at,
        actor,
        action,
        target,
        before,
        after,
    );
    hex(&m.finalize().into_bytes())
}

const HEAD_KEY: &str = "audit_head";

/// Appends entries inside `tx` (which must hold the write lock: begin it IMMEDIATE or write
/// before calling), continuing the chain from its stored head; keyed when `key` is given.
pub fn append(tx: &Db, entries: &[AuditEntry], key: Option<&AuditKey>) -> DbResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev): (i64, String) = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS.to_string()));
    let alg = key.map(AuditKey::alg).unwrap_or_else(|| PLAIN.to_string());
    let mut ins = tx.prepare_cached(
        "INSERT INTO audit (seq, at, actor, action, target, before, after, prev_hash, hash, alg)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for e in entries {
        seq += 1;
        let (before, after) = (text(&e.before), text(&e.after));
        let args = (
            &prev[..],
            seq,
            e.at,
            &e.actor[..],
            &e.action[..],
            &e.target[..],
            before.as_deref(),
            after.as_deref(),
        );
        let h = match key {
            Some(k) => keyed_hash(
                k, args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7,
            ),
            None => hash(
                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7,
            ),
        };
        ins.execute(params![
            seq, e.at, e.actor, e.action, e.target, before, after, prev, h, alg
        ])?;
        prev = h;
    }
    let head = match key {
        Some(k) => format!("{seq} {prev} {}", k.head_mac(seq, &prev)),
        None => format!("{seq} {prev}"),
    };
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![HEAD_KEY, head],
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
    #[error("the audit log's head record is missing or altered (the log reaches entry {0})")]
    Head(i64),
    #[error("audit entry {0} is keyed ({1}): verify it with the audit key")]
    NeedKey(i64, String),
    #[error("audit entry {0} was chained with another key ({1})")]
    WrongKey(i64, String),
    #[error("audit entry {0} is not keyed although an earlier one is (the chain was rewritten)")]
    Downgraded(i64),
    #[error("the witness's entry {0} is not in the log as it was witnessed (the log was rewritten or cut short)")]
    Witness(i64),
    #[error("database: {0}")]
    Db(String),
}

/// The head of the chain, to keep somewhere else (`ioc audit head`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Witness {
    pub seq: i64,
    pub hash: String,
    /// When it was taken (milliseconds since the epoch).
    pub at: i64,
    /// The head's MAC, when the chain is keyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// The current head, as a witness.
pub fn head(conn: &Db, now_ms: i64) -> Result<Witness, AuditError> {
    let db = |e: crate::store::db::DbError| AuditError::Db(e.to_string());
    let (seq, hash) = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            params![],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()
        .map_err(db)?
        .unwrap_or((0, GENESIS.to_string()));
    let mac = read_head(conn)
        .map_err(db)?
        .and_then(|(s, h, m)| (s == seq && h == hash).then_some(m).flatten());
    Ok(Witness {
        seq,
        hash,
        at: now_ms,
        mac,
    })
}

fn read_head(conn: &Db) -> DbResult<Option<(i64, String, Option<String>)>> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [HEAD_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(v.map(|v| {
        let mut parts = v.split(' ');
        let seq = parts.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
        let hash = parts.next().unwrap_or("").to_string();
        let mac = parts.next().map(str::to_string);
        (seq, hash, mac)
    }))
}

/// Walks the whole chain without a key or a witness; the number of entries when intact.
pub fn verify(conn: &Db) -> Result<u64, AuditError> {
    verify_with(conn, None, None)
}

/// Walks the whole chain, checking keyed rows and the head with `key`, and that the chain
/// still holds what `witness` saw; the number of entries when intact.
pub fn verify_with(
    conn: &Db,
    key: Option<&AuditKey>,
    witness: Option<&Witness>,
) -> Result<u64, AuditError> {
    let db = |e: crate::store::db::DbError| AuditError::Db(e.to_string());
    let mut stmt = conn
        .prepare(
            "SELECT seq, at, actor, action, target, before, after, prev_hash, hash, alg
             FROM audit ORDER BY seq",
        )
        .map_err(db)?;
    let mut rows = stmt.query(params![]).map_err(db)?;
    let (mut last_seq, mut last_hash) = (0i64, GENESIS.to_string());
    let mut n = 0u64;
    let mut keyed_seen = false;
    let mut witnessed = witness.is_none_or(|w| w.seq == 0 && w.hash == GENESIS);
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
        let alg: String = r.get(9).map_err(db)?;
        if seq != last_seq + 1 {
            return Err(AuditError::Missing(last_seq + 1, seq));
        }
        let computed = if alg == PLAIN {
            if keyed_seen {
                return Err(AuditError::Downgraded(seq));
            }
            hash(
                &prev,
                seq,
                at,
                &actor,
                &action,
                &target,
                before.as_deref(),
                after.as_deref(),
            )
        } else {
            keyed_seen = true;
            let k = key.ok_or_else(|| AuditError::NeedKey(seq, alg.clone()))?;
            if alg != k.alg() {
                return Err(AuditError::WrongKey(seq, alg));
            }
            keyed_hash(
                k,
                &prev,
                seq,
                at,
                &actor,
                &action,
                &target,
                before.as_deref(),
                after.as_deref(),
            )
        };
        if computed != stored {
            return Err(AuditError::Altered(seq));
        }
        if prev != last_hash {
            return Err(AuditError::Broken(seq, last_seq));
        }
        if let Some(w) = witness {
            if w.seq == seq {
                if w.hash != stored {
                    return Err(AuditError::Witness(w.seq));
                }
                witnessed = true;
            }
        }
        last_seq = seq;
        last_hash = stored;
        n += 1;
    }
    if !witnessed {
        return Err(AuditError::Witness(witness.map(|w| w.seq).unwrap_or(0)));
    }
    match read_head(conn).map_err(db)? {
        None if last_seq == 0 => {}
        None => return Err(AuditError::Head(last_seq)),
        Some((seq, h, mac)) => {
            if seq > last_seq {
                return Err(AuditError::Truncated(last_seq, seq));
            }
            if seq != last_seq || h != last_hash {
                return Err(AuditError::Head(last_seq));
            }
            // A keyed chain's head carries the key's MAC: cutting the newest rows and
            // writing a new head needs the key.
            if keyed_seen {
                let k = key.ok_or_else(|| AuditError::NeedKey(seq, "head".into()))?;
                if mac.as_deref() != Some(k.head_mac(seq, &h).as_str()) {
                    return Err(AuditError::Head(last_seq));
                }
            }
        }
    }
    Ok(n)
}

/// The newest entries, newest first, optionally about one target.
pub fn recent(conn: &Db, target: Option<&str>, limit: usize) -> DbResult<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, actor, action, target, before, after, prev_hash, hash FROM audit
         WHERE (CAST(?1 AS TEXT) IS NULL OR target = ?1) ORDER BY seq DESC LIMIT ?2",
    )?;
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());

    stmt.query_map(params![target, limit as i64], |r| {
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
    .collect()
}

/// `[audit]`: the audit log's chain.
#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// A key file kept outside the database (and best outside the data folder, e.g.
    /// `/etc/ioc/audit.key`): the chain is then keyed with HMAC-SHA256, so rewriting it
    /// needs the key. Made (owner-only) at the first start if it does not exist.
    pub key_file: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
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

    fn fill(conn: &Db, n: i64) {
        fill_with(conn, n, None)
    }

    fn fill_with(conn: &Db, n: i64, key: Option<&AuditKey>) {
        let start: i64 = conn
            .query_row("SELECT count(*) FROM audit", params![], |r| r.get(0))
            .unwrap();
        for i in start..start + n {
            let tx = conn.transaction().unwrap();
            append(&tx, &[entry(i)], key).unwrap();
            tx.commit().unwrap();
        }
    }

    fn key(byte: u8) -> AuditKey {
        AuditKey::from_bytes(vec![byte; 32]).unwrap()
    }

    #[test]
    fn removing_the_oldest_entries_or_the_head_record_is_found() {
        let (_d, conn) = db();
        fill(&conn, 5);
        conn.execute("DELETE FROM audit WHERE seq <= 2", params![])
            .unwrap();
        assert_eq!(verify(&conn), Err(AuditError::Missing(1, 3)));

        let (_d, conn) = db();
        fill(&conn, 5);
        conn.execute("DELETE FROM meta WHERE key = 'audit_head'", params![])
            .unwrap();
        assert_eq!(verify(&conn), Err(AuditError::Head(5)));
        // The newest removed together with the head: only a witness can tell.
        let (_d, conn) = db();
        fill(&conn, 5);
        let w = head(&conn, 0).unwrap();
        assert_eq!(w.seq, 5);
        conn.execute("DELETE FROM audit WHERE seq >= 4", params![])
            .unwrap();
        let last: String = conn
            .query_row("SELECT hash FROM audit WHERE seq = 3", params![], |r| {
                r.get(0)
            })
            .unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'audit_head'",
            [format!("3 {last}")],
        )
        .unwrap();
        assert_eq!(verify(&conn), Ok(3), "without a witness this looks whole");
        assert_eq!(
            verify_with(&conn, None, Some(&w)),
            Err(AuditError::Witness(5))
        );
    }

    #[test]
    fn a_keyed_chain_cannot_be_rewritten_without_the_key() {
        let (_d, conn) = db();
        fill(&conn, 3);
        let k = key(7);
        fill_with(&conn, 3, Some(&k));
        assert_eq!(verify_with(&conn, Some(&k), None), Ok(6));
        assert!(matches!(verify(&conn), Err(AuditError::NeedKey(4, _))));
        assert!(matches!(
            verify_with(&conn, Some(&key(8)), None),
            Err(AuditError::WrongKey(4, _))
        ));
        // Altering a keyed row and recomputing a plain hash for it: a downgrade.
        let (_d2, c2) = db();
        fill_with(&c2, 3, Some(&k));
        let prev: String = c2
            .query_row(
                "SELECT prev_hash FROM audit WHERE seq = 3",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        let e = entry(99);
        let forged = hash(&prev, 3, e.at, &e.actor, &e.action, &e.target, None, None);
        c2.execute(
            "UPDATE audit SET at = ?1, target = ?2, before = NULL, after = NULL, hash = ?3,
             alg = 'sha256' WHERE seq = 3",
            params![e.at, e.target, forged],
        )
        .unwrap();
        c2.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'audit_head'",
            [format!("3 {forged}")],
        )
        .unwrap();
        assert_eq!(
            verify_with(&c2, Some(&k), None),
            Err(AuditError::Downgraded(3))
        );
        // The newest keyed rows cut and the head rewritten: the head's MAC needs the key.
        let (_d3, c3) = db();
        fill_with(&c3, 4, Some(&k));
        c3.execute("DELETE FROM audit WHERE seq = 4", params![])
            .unwrap();
        let h3: String = c3
            .query_row("SELECT hash FROM audit WHERE seq = 3", params![], |r| {
                r.get(0)
            })
            .unwrap();
        c3.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'audit_head'",
            [format!("3 {h3} 00")],
        )
        .unwrap();
        assert_eq!(verify_with(&c3, Some(&k), None), Err(AuditError::Head(3)));
        // A keyed row's contents altered.
        let (_d4, c4) = db();
        fill_with(&c4, 3, Some(&k));
        c4.execute(
            "UPDATE audit SET actor = 'user:mallory' WHERE seq = 2",
            params![],
        )
        .unwrap();
        assert_eq!(
            verify_with(&c4, Some(&k), None),
            Err(AuditError::Altered(2))
        );
    }

    #[test]
    fn a_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys/audit.key");
        let a = AuditKey::load_or_create(&p).unwrap();
        let b = AuditKey::load_or_create(&p).unwrap();
        assert_eq!(a.id(), b.id());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&p, "short").unwrap();
        assert!(AuditKey::load_or_create(&p).is_err());
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (_d, conn) = db();
        assert_eq!(verify(&conn), Ok(0));
        fill(&conn, 5);
        assert_eq!(verify(&conn), Ok(5));
        assert_eq!(recent(&conn, Some("alert:3"), 10).unwrap().len(), 1);
    }

    #[test]
    fn altering_or_removing_any_row_is_found() {
        let (_d, conn) = db();
        fill(&conn, 5);
        conn.execute(
            "UPDATE audit SET actor = 'user:mallory' WHERE seq = 3",
            params![],
        )
        .unwrap();
        assert_eq!(verify(&conn), Err(AuditError::Altered(3)));

        let (_d, conn) = db();
        fill(&conn, 5);
        conn.execute("DELETE FROM audit WHERE seq = 2", params![])
            .unwrap();
        assert_eq!(verify(&conn), Err(AuditError::Missing(2, 3)));

        // Removed and renumbered, hash recomputed for the row itself: the chain breaks.
        let (_d, conn) = db();
        fill(&conn, 5);
        conn.execute("DELETE FROM audit WHERE seq = 5", params![])
            .unwrap();
        assert_eq!(verify(&conn), Err(AuditError::Truncated(4, 5)));

        let (_d, conn) = db();
        fill(&conn, 3);
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
