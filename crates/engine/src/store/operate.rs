//! Storage of the operations: incidents and their timelines, directives, SOP template
//! versions, silences and attached files. Written by the writer thread in the same
//! transaction as the alerts they touch; read by the engine at start and by the API.

use super::db::{params, Db, OptionalExtension, Result as DbResult, Row};
use super::time::{from_ms, to_ms};
use super::StoreError;
use ioc_model::{
    AttachmentInfo, Directive, DirectiveState, Incident, IncidentEvent, IncidentEventKind,
    IncidentState, Silence,
};

/// One saved version of an SOP template.
#[derive(Debug, Clone, PartialEq)]
pub struct SopRow {
    pub name: String,
    pub version: u32,
    pub text: String,
    pub at: i64,
    pub by: String,
    /// The template was removed (this row records who and when; its text is the last one).
    pub deleted: bool,
}

/// A file attached to an incident, with its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRow {
    pub info: AttachmentInfo,
    pub data: Vec<u8>,
}

/// What the engine resumes its operations from.
#[derive(Debug, Default)]
pub struct LoadedOperations {
    /// Incidents not closed.
    pub incidents: Vec<Incident>,
    pub next_incident: i64,
    /// Open directives.
    pub directives: Vec<Directive>,
    pub next_directive: i64,
    /// Silences not over.
    pub silences: Vec<Silence>,
    pub next_silence: i64,
    pub next_attachment: i64,
    /// The newest version of every template not removed.
    pub sops: Vec<SopRow>,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("operations serialize")
}

fn doc<T: serde::de::DeserializeOwned>(text: &str) -> DbResult<T> {
    serde_json::from_str(text).map_err(|e| super::db::DbError::Column {
        column: 0,
        message: format!("a stored document does not read: {e}"),
    })
}

/// Writes the operations of a batch inside the writer's transaction.
pub(super) fn write(tx: &Db, b: &super::WriteBatch) -> DbResult<()> {
    for i in &b.incidents {
        let mut stored = i.clone();
        stored.events.clear();
        stored.directives.clear();
        stored.attachments.clear();
        tx.prepare_cached(
            "INSERT INTO incidents (id, state, category, severity, unit, opened_at, updated_at,
                                    resolved_at, closed_at, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
               severity = excluded.severity, updated_at = excluded.updated_at,
               resolved_at = excluded.resolved_at, closed_at = excluded.closed_at,
               doc = excluded.doc",
        )?
        .execute(params![
            i.id,
            i.state.as_str(),
            i.category,
            i.severity.as_str(),
            i.unit,
            to_ms(i.opened_at),
            to_ms(i.updated_at),
            i.resolved_at.map(to_ms),
            i.closed_at.map(to_ms),
            json(&stored),
        ])?;
    }
    // A timeline the federation's fold made again replaces the one stored, but for the
    // lines its directives put there (every node makes those itself; never rewritten).
    for id in &b.incident_timelines {
        tx.prepare_cached(
            "DELETE FROM incident_events WHERE incident = ?1
               AND kind NOT IN ('directive_issued', 'directive_acknowledged', 'directive_report',
                                'directive_done', 'directive_cancelled', 'directive_overdue')",
        )?
        .execute([id])?;
    }
    for (incident, e) in &b.incident_events {
        tx.prepare_cached(
            "INSERT INTO incident_events (incident, at, actor, kind, step, alert, directive, comment,
                                          node)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            incident,
            to_ms(e.at),
            e.actor,
            e.kind.as_str(),
            e.step,
            e.alert,
            e.directive,
            e.comment,
            e.node,
        ])?;
    }
    for (id, gid) in &b.incident_gids {
        tx.prepare_cached("UPDATE incidents SET gid = ?2 WHERE id = ?1")?
            .execute(params![id, gid])?;
    }
    for d in &b.directives {
        tx.prepare_cached(
            "INSERT INTO directives (id, incident, unit, state, deadline, issued_at, updated_at,
                                     done_at, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
               updated_at = excluded.updated_at, done_at = excluded.done_at, doc = excluded.doc",
        )?
        .execute(params![
            d.id,
            d.incident,
            d.unit,
            d.state.as_str(),
            to_ms(d.deadline),
            to_ms(d.issued_at),
            to_ms(d.updated_at),
            d.done_at.map(to_ms),
            json(d),
        ])?;
    }
    for s in &b.silences {
        tx.prepare_cached(
            "INSERT INTO silences (id, starts_at, ends_at, doc) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET starts_at = excluded.starts_at,
               ends_at = excluded.ends_at, doc = excluded.doc",
        )?
        .execute(params![s.id, to_ms(s.starts_at), to_ms(s.ends_at), json(s)])?;
    }
    for s in &b.sops {
        tx.prepare_cached(
            "INSERT INTO sop_templates (name, version, text, created_at, created_by, deleted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![s.name, s.version, s.text, s.at, s.by, s.deleted])?;
    }
    for a in &b.attachments {
        let i = &a.info;
        tx.prepare_cached(
            "INSERT INTO attachments (id, incident, step, name, content_type, size, sha256, at,
                                      actor, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            i.id,
            i.incident,
            i.step,
            i.name,
            i.content_type,
            i.size as i64,
            i.sha256,
            to_ms(i.at),
            i.actor,
            a.data,
        ])?;
    }
    Ok(())
}

fn next_id(c: &Db, table: &str) -> DbResult<i64> {
    c.query_row(
        &format!("SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"),
        params![],
        |r| r.get(0),
    )
}

/// The newest version of every template not removed.
pub(super) fn latest_sops(c: &Db) -> DbResult<Vec<SopRow>> {
    let mut stmt = c.prepare(
        "SELECT t.name, t.version, t.text, t.created_at, t.created_by, t.deleted
         FROM sop_templates t
         JOIN (SELECT name, MAX(version) AS v FROM sop_templates GROUP BY name) m
           ON m.name = t.name AND m.v = t.version
         WHERE t.deleted = 0 ORDER BY t.name",
    )?;
    let rows = stmt.query_map(params![], sop_row)?;
    rows.collect()
}

fn sop_row(r: &Row<'_, '_>) -> DbResult<SopRow> {
    Ok(SopRow {
        name: r.get(0)?,
        version: r.get(1)?,
        text: r.get(2)?,
        at: r.get(3)?,
        by: r.get(4)?,
        deleted: r.get(5)?,
    })
}

pub(super) fn load(c: &Db, now_ms: i64) -> DbResult<LoadedOperations> {
    let mut ops = LoadedOperations {
        next_incident: next_id(c, "incidents")?,
        next_directive: next_id(c, "directives")?,
        next_silence: next_id(c, "silences")?,
        next_attachment: next_id(c, "attachments")?,
        sops: latest_sops(c)?,
        ..Default::default()
    };
    // Closed ones too while something on them needs a person (they stay in view).
    let mut stmt = c.prepare(match c.dialect() {
        super::db::Dialect::Sqlite => {
            "SELECT doc FROM incidents
             WHERE state != 'closed' OR json_extract(doc, '$.attention') IS NOT NULL ORDER BY id"
        }
        super::db::Dialect::Postgres => {
            "SELECT doc FROM incidents
             WHERE state != 'closed' OR (doc::jsonb ->> 'attention') IS NOT NULL ORDER BY id"
        }
    })?;
    ops.incidents = stmt
        .query_map(params![], |r| doc(&r.get::<_, String>(0)?))?
        .collect::<Result<_, _>>()?;
    let mut stmt = c.prepare(
        "SELECT doc FROM directives WHERE state NOT IN ('done', 'cancelled') ORDER BY id",
    )?;
    ops.directives = stmt
        .query_map(params![], |r| doc(&r.get::<_, String>(0)?))?
        .collect::<Result<_, _>>()?;
    let mut stmt = c.prepare("SELECT doc FROM silences WHERE ends_at > ?1 ORDER BY id")?;
    ops.silences = stmt
        .query_map([now_ms], |r| doc(&r.get::<_, String>(0)?))?
        .collect::<Result<_, _>>()?;
    Ok(ops)
}

fn attachment_info(r: &Row<'_, '_>) -> DbResult<AttachmentInfo> {
    Ok(AttachmentInfo {
        id: r.get(0)?,
        incident: r.get(1)?,
        step: r.get(2)?,
        name: r.get(3)?,
        content_type: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
        sha256: r.get(6)?,
        at: from_ms(r.get(7)?),
        actor: r.get(8)?,
    })
}

impl super::Reader {
    /// The operations the engine resumes from.
    pub fn load_operations(&self, now_ms: i64) -> Result<LoadedOperations, StoreError> {
        self.with(|c| Ok(load(c, now_ms)?))
    }

    /// One incident with its timeline, its directives and its files (closed or not).
    pub fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.with(|c| {
            let Some(text) = c
                .query_row("SELECT doc FROM incidents WHERE id = ?1", [id], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
            else {
                return Ok(None);
            };
            let mut i: Incident = doc(&text)?;
            let mut stmt = c.prepare(
                "SELECT at, actor, kind, step, alert, directive, comment, node
                 FROM incident_events WHERE incident = ?1 ORDER BY at, id",
            )?;
            i.events = stmt
                .query_map([id], |r| {
                    let kind: String = r.get(2)?;
                    Ok(IncidentEvent {
                        at: from_ms(r.get(0)?),
                        actor: r.get(1)?,
                        kind: IncidentEventKind::parse(&kind).unwrap_or(IncidentEventKind::Comment),
                        step: r.get(3)?,
                        alert: r.get(4)?,
                        directive: r.get(5)?,
                        comment: r.get(6)?,
                        node: r.get(7)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut stmt =
                c.prepare("SELECT doc FROM directives WHERE incident = ?1 ORDER BY id")?;
            i.directives = stmt
                .query_map([id], |r| doc(&r.get::<_, String>(0)?))?
                .collect::<Result<_, _>>()?;
            let mut stmt = c.prepare(
                "SELECT id, incident, step, name, content_type, size, sha256, at, actor
                 FROM attachments WHERE incident = ?1 ORDER BY id",
            )?;
            i.attachments = stmt
                .query_map([id], attachment_info)?
                .collect::<Result<_, _>>()?;
            Ok(Some(i))
        })
    }

    /// Incidents in the given states (all when empty), newest first, without timelines.
    pub fn incidents(
        &self,
        states: &[IncidentState],
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        self.with(|c| {
            let filter = if states.is_empty() {
                String::new()
            } else {
                let list: Vec<String> =
                    states.iter().map(|s| format!("'{}'", s.as_str())).collect();
                format!("WHERE state IN ({})", list.join(","))
            };
            let mut stmt = c.prepare(&format!(
                "SELECT doc FROM incidents {filter} ORDER BY opened_at DESC, id DESC LIMIT ?1"
            ))?;
            let rows = stmt
                .query_map([limit as i64], |r| doc(&r.get::<_, String>(0)?))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Directives in the given states (all when empty), by deadline.
    pub fn directives(
        &self,
        states: &[DirectiveState],
        limit: usize,
    ) -> Result<Vec<Directive>, StoreError> {
        self.with(|c| {
            let filter = if states.is_empty() {
                String::new()
            } else {
                let list: Vec<String> =
                    states.iter().map(|s| format!("'{}'", s.as_str())).collect();
                format!("WHERE state IN ({})", list.join(","))
            };
            let mut stmt = c.prepare(&format!(
                "SELECT doc FROM directives {filter} ORDER BY issued_at DESC, id DESC LIMIT ?1"
            ))?;
            let rows = stmt
                .query_map([limit as i64], |r| doc(&r.get::<_, String>(0)?))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// A directive (open or not).
    pub fn directive(&self, id: i64) -> Result<Option<Directive>, StoreError> {
        self.with(|c| {
            let text = c
                .query_row("SELECT doc FROM directives WHERE id = ?1", [id], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?;
            Ok(text.map(|t| doc(&t)).transpose()?)
        })
    }

    /// Silences, newest first (over or not).
    pub fn silences(&self, limit: usize) -> Result<Vec<Silence>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT doc FROM silences ORDER BY id DESC LIMIT ?1")?;
            let rows = stmt
                .query_map([limit as i64], |r| doc(&r.get::<_, String>(0)?))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// A file's description and bytes.
    pub fn attachment(&self, id: i64) -> Result<Option<(AttachmentInfo, Vec<u8>)>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT id, incident, step, name, content_type, size, sha256, at, actor, data
                 FROM attachments WHERE id = ?1",
                [id],
                |r| Ok((attachment_info(r)?, r.get(9)?)),
            )
            .optional()?)
        })
    }

    /// Every version of a template, oldest first.
    pub fn sop_versions(&self, name: &str) -> Result<Vec<SopRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT name, version, text, created_at, created_by, deleted
                 FROM sop_templates WHERE name = ?1 ORDER BY version",
            )?;
            let rows = stmt.query_map([name], sop_row)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The newest version number of every template, removed ones included.
    pub fn sop_heads(&self) -> Result<Vec<(String, u32, bool)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT t.name, t.version, t.deleted FROM sop_templates t
                 JOIN (SELECT name, MAX(version) AS v FROM sop_templates GROUP BY name) m
                   ON m.name = t.name AND m.v = t.version ORDER BY t.name",
            )?;
            let rows = stmt
                .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}
