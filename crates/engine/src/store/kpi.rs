//! What KPIs read: the entities measuring a metric, their hourly and daily rollups, the
//! alerts raised, incidents opened and directives due in a period; and the definitions kept
//! in the store. Each rollup read is an index range on one series.

use super::db::{params, Db, Result as DbResult, Row};
use super::parts::HOURS;
use super::StoreError;
use crate::kpi::eval::{Buckets, Measured, Roll};
use crate::kpi::records::{self, Record};
use ioc_model::{Directive, Domain, Entity, Incident};

/// Writes the KPI definitions, dashboards and settings of a batch (in the writer's
/// transaction).
pub(super) fn write(tx: &Db, b: &super::WriteBatch) -> DbResult<()> {
    for (id, text, at, by) in &b.kpi_defs {
        match text {
            Some(t) => tx
                .prepare_cached(
                    "INSERT INTO kpi_defs (id, text, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET text = excluded.text,
                       updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                )?
                .execute(params![id, t, at, by])?,
            None => tx
                .prepare_cached("DELETE FROM kpi_defs WHERE id = ?1")?
                .execute(params![id])?,
        };
    }
    for (id, owner, doc, at) in &b.dashboards {
        match doc {
            Some(d) => tx
                .prepare_cached(
                    "INSERT INTO dashboards (id, owner, doc, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, doc = excluded.doc,
                       updated_at = excluded.updated_at",
                )?
                .execute(params![id, owner, d, at])?,
            None => tx
                .prepare_cached("DELETE FROM dashboards WHERE id = ?1")?
                .execute(params![id])?,
        };
    }
    for (k, v) in &b.meta {
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![k, v])?;
    }
    Ok(())
}

impl super::Reader {
    /// The entities that measure `metric` (of `entity_type`, if given), with their series.
    pub fn measured(
        &self,
        metric: &str,
        entity_type: Option<&str>,
    ) -> Result<Vec<Measured>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT s.id, e.ext_id, e.type, e.name, e.unit, e.unit_name, e.domain,
                        e.attributes
                 FROM series s JOIN entities e ON e.id = s.entity
                 WHERE s.metric = ?1 AND (CAST(?2 AS TEXT) IS NULL OR e.type = ?2)
                 ORDER BY s.id",
            )?;
            let rows = stmt.query_map(params![metric, entity_type], |r| {
                let domain: String = r.get(6)?;
                let attributes: String = r.get(7)?;
                let mut e = Entity::new(
                    &r.get::<_, String>(1)?,
                    &r.get::<_, String>(2)?,
                    &r.get::<_, String>(3)?,
                    Domain::parse(&domain).unwrap_or(Domain::Other),
                );
                e.unit = r.get(4)?;
                e.unit_name = r.get(5)?;
                e.attributes = serde_json::from_str(&attributes).unwrap_or_default();
                Ok(Measured {
                    series: r.get(0)?,
                    id: e.id.clone(),
                    kind: e.kind.clone(),
                    name: e.name.clone(),
                    unit: e.unit.clone(),
                    unit_name: e.unit_name.clone(),
                    cel: crate::rules::cel_value_of_entity(&e),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Rollup rows of these series with buckets in `[from, to)`.
    pub fn rolls(
        &self,
        series: &[i64],
        buckets: Buckets,
        from: i64,
        to: i64,
    ) -> Result<Vec<Roll>, StoreError> {
        const COLUMNS: &str = "bucket, count, min, max, sum, last, last_ts";
        self.with(|c| {
            let mut out = Vec::new();
            for &s in series {
                let roll = |r: &Row<'_, '_>| {
                    Ok(Roll {
                        series: s,
                        bucket: r.get(0)?,
                        count: r.get(1)?,
                        min: r.get(2)?,
                        max: r.get(3)?,
                        sum: r.get(4)?,
                        last: r.get(5)?,
                        last_ts: r.get(6)?,
                    })
                };
                match buckets {
                    // Daily rollups are keyed by series; hourly ones by part first.
                    Buckets::Day => {
                        let mut stmt = c.prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM rollup_1d
                             WHERE series = ?1 AND bucket >= ?2 AND bucket < ?3"
                        ))?;
                        for row in stmt.query_map(params![s, from, to], roll)? {
                            out.push(row?);
                        }
                    }
                    Buckets::Hour => {
                        out.extend(HOURS.rows(c, COLUMNS, s, (from, to), usize::MAX, roll)?);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Alerts raised in `[from, to)` (ms).
    pub fn alert_records(&self, from: i64, to: i64) -> Result<Vec<Record>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM alerts WHERE raised_at >= ?1 AND raised_at < ?2",
                super::read::ALERT_COLUMNS
            ))?;
            let rows = stmt.query_map(params![from, to], |r| {
                let a = super::read::alert_from_row(r)?;
                Ok(records::alert(&a))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Incidents opened in `[from, to)` (ms).
    pub fn incident_records(&self, from: i64, to: i64) -> Result<Vec<Record>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT doc FROM incidents WHERE opened_at >= ?1 AND opened_at < ?2",
            )?;
            let rows = stmt.query_map(params![from, to], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for doc in rows {
                if let Ok(i) = serde_json::from_str::<Incident>(&doc?) {
                    out.push(records::incident(&i));
                }
            }
            Ok(out)
        })
    }

    /// Directives due in `[from, to)` (ms).
    pub fn directive_records(&self, from: i64, to: i64) -> Result<Vec<Record>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT doc FROM directives WHERE deadline >= ?1 AND deadline < ?2",
            )?;
            let rows = stmt.query_map(params![from, to], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for doc in rows {
                if let Ok(d) = serde_json::from_str::<Directive>(&doc?) {
                    out.push(records::directive(&d));
                }
            }
            Ok(out)
        })
    }

    /// The KPI definitions kept in the store: (id, TOML).
    pub fn kpi_defs(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT id, text FROM kpi_defs ORDER BY rowid")?;
            let rows = stmt
                .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The KPI definitions kept from the province's IOC (see [`crate::sync::PROVINCE`]).
    pub fn province_kpis(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT id FROM kpi_defs WHERE updated_by = ?1")?;
            let rows = stmt
                .query_map([crate::sync::PROVINCE], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The KPI definitions people made here (not seeded, not the province's): what an IOC
    /// shares with its nodes.
    pub fn own_kpis(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, text FROM kpi_defs WHERE updated_by NOT IN (?1, ?2) ORDER BY id",
            )?;
            let rows = stmt
                .query_map([crate::sync::PROVINCE, crate::alerts::SYSTEM], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The dashboards kept in the store, as JSON.
    pub fn dashboards(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT doc FROM dashboards ORDER BY id")?;
            let rows = stmt
                .query_map(params![], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            use super::db::OptionalExtension;
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
    }
}
