//! Reads: the state the engine starts from, and the queries behind the HTTP API. Each reader
//! connection is separate from the writer's, so reads never wait for a commit (WAL).

use super::db::{params, Db, OptionalExtension, Result as DbResult, Row};
use super::parts::{HOURS, MINUTES, RAW};
use super::{connect, time::from_ms, StoreError};
use ioc_model::{
    Alert, AlertEvent, AlertEventKind, AlertState, DeadLetter, Domain, Entity, EntityStatus,
    SeriesPoint, Severity, Unit,
};
use std::collections::HashMap;

use std::sync::Mutex;

/// What the engine needs in memory to resume after a restart.
#[derive(Debug, Default)]
pub struct LoadedState {
    pub units: Vec<Unit>,
    /// (internal id, entity) — `latest` is not filled here.
    pub entities: Vec<(i64, Entity)>,
    /// (series id, entity id, metric).
    pub series: Vec<(i64, i64, String)>,
    /// Newest (time ms, value) per series.
    pub latest: HashMap<i64, (i64, f64)>,
    pub open_alerts: Vec<Alert>,
    pub next_alert_id: i64,
}

/// Which clips [`Reader::clips`] gives.
#[derive(Debug, Clone, Default)]
pub struct ClipFilter {
    pub id: Option<i64>,
    pub alert: Option<i64>,
    pub incident: Option<i64>,
    pub camera: Option<String>,
    pub state: Option<ioc_model::ClipState>,
    pub limit: Option<usize>,
}

fn clip_row(r: &Row) -> DbResult<ioc_model::ClipInfo> {
    let state: String = r.get(11)?;
    Ok(ioc_model::ClipInfo {
        id: r.get(0)?,
        camera: r.get(1)?,
        camera_name: r.get(2)?,
        unit: r.get(3)?,
        alert: r.get(4)?,
        incident: r.get(5)?,
        at: from_ms(r.get(6)?),
        before_s: r.get(7)?,
        after_s: r.get(8)?,
        from: r.get::<_, Option<i64>>(9)?.map(from_ms),
        to: r.get::<_, Option<i64>>(10)?.map(from_ms),
        state: ioc_model::ClipState::parse(&state).unwrap_or(ioc_model::ClipState::Failed),
        error: r.get(12)?,
        size: r.get::<_, i64>(13)?.max(0) as u64,
        sha256: r.get(14)?,
        file_name: r.get(15)?,
        created_by: r.get(16)?,
        created_at: from_ms(r.get(17)?),
    })
}

/// A small pool of read-only connections.
pub struct Reader {
    at: super::Location,
    pool: Mutex<Vec<Db>>,
}

/// (internal id, entity) from `SELECT id, ext_id, type, name, lon, lat, unit, unit_name,
/// domain, attributes, status FROM entities` (its `latest` is not filled).
pub(super) fn entity_from_row(r: &Row<'_, '_>) -> DbResult<(i64, Entity)> {
    let domain: String = r.get(8)?;
    let attributes: String = r.get(9)?;
    let status: String = r.get(10)?;
    Ok((
        r.get::<_, i64>(0)?,
        Entity {
            id: r.get(1)?,
            kind: r.get(2)?,
            name: r.get(3)?,
            lon: r.get::<_, Option<f64>>(4)?,
            lat: r.get::<_, Option<f64>>(5)?,
            unit: r.get(6)?,
            unit_name: r.get(7)?,
            domain: Domain::parse(&domain).unwrap_or(Domain::Other),
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
            status: EntityStatus::parse(&status).unwrap_or_default(),
            last_seen: None,
            latest: Default::default(),
        },
    ))
}

pub fn event_kind_str(k: AlertEventKind) -> &'static str {
    match k {
        AlertEventKind::Raised => "raised",
        AlertEventKind::Cleared => "cleared",
        AlertEventKind::Reactivated => "reactivated",
        AlertEventKind::Transition => "transition",
        AlertEventKind::Comment => "comment",
        AlertEventKind::Updated => "updated",
        AlertEventKind::Escalated => "escalated",
        AlertEventKind::Incident => "incident",
        AlertEventKind::Silenced => "silenced",
        AlertEventKind::Unsilenced => "unsilenced",
        AlertEventKind::NotApplied => "not_applied",
    }
}

fn parse_event_kind(s: &str) -> AlertEventKind {
    match s {
        "raised" => AlertEventKind::Raised,
        "cleared" => AlertEventKind::Cleared,
        "reactivated" => AlertEventKind::Reactivated,
        "comment" => AlertEventKind::Comment,
        "updated" => AlertEventKind::Updated,
        "escalated" => AlertEventKind::Escalated,
        "incident" => AlertEventKind::Incident,
        "silenced" => AlertEventKind::Silenced,
        "unsilenced" => AlertEventKind::Unsilenced,
        "not_applied" => AlertEventKind::NotApplied,
        _ => AlertEventKind::Transition,
    }
}

pub(super) const ALERT_COLUMNS: &str =
    "id, rule, entity, entity_name, unit, unit_name, domain, category,
    severity, state, active, message, metric, value, raised_at, updated_at, cleared_at,
    acked_at, acked_by, count, external_id, area, description, expires_at, assignee,
    shelved_until, escalation, incident, silenced, resolved_at";

pub(super) fn alert_from_row(r: &Row<'_, '_>) -> DbResult<Alert> {
    let domain: String = r.get(6)?;
    let severity: String = r.get(8)?;
    let state: String = r.get(9)?;
    Ok(Alert {
        id: r.get(0)?,
        rule: r.get(1)?,
        entity: r.get(2)?,
        entity_name: r.get(3)?,
        unit: r.get(4)?,
        unit_name: r.get(5)?,
        domain: Domain::parse(&domain).unwrap_or(Domain::Other),
        category: r.get(7)?,
        severity: Severity::parse(&severity).unwrap_or(Severity::Warning),
        state: AlertState::parse(&state).unwrap_or(AlertState::New),
        active: r.get(10)?,
        message: r.get(11)?,
        metric: r.get(12)?,
        value: r.get(13)?,
        raised_at: from_ms(r.get(14)?),
        updated_at: from_ms(r.get(15)?),
        cleared_at: r.get::<_, Option<i64>>(16)?.map(from_ms),
        acked_at: r.get::<_, Option<i64>>(17)?.map(from_ms),
        acked_by: r.get(18)?,
        count: r.get(19)?,
        external_id: r.get(20)?,
        area: r
            .get::<_, Option<String>>(21)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        description: r.get(22)?,
        expires_at: r.get::<_, Option<i64>>(23)?.map(from_ms),
        assignee: r.get(24)?,
        shelved_until: r.get::<_, Option<i64>>(25)?.map(from_ms),
        escalation: r.get(26)?,
        incident: r.get(27)?,
        silenced: r.get(28)?,
        resolved_at: r.get::<_, Option<i64>>(29)?.map(from_ms),
        events: Vec::new(),
    })
}

impl Reader {
    pub fn new(at: impl Into<super::Location>) -> Reader {
        Reader {
            at: at.into(),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a pooled connection. Blocking: call from `spawn_blocking` in async code.
    pub fn with<T>(&self, f: impl FnOnce(&Db) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = match self.pool.lock().unwrap().pop() {
            Some(c) => c,
            None => {
                let c = connect(&self.at)?;
                if let Some(lite) = c.sqlite() {
                    lite.pragma_update(None, "query_only", true)?;
                }
                c
            }
        };
        let result = f(&conn);
        let mut pool = self.pool.lock().unwrap();
        if pool.len() < 4 {
            pool.push(conn);
        }
        result
    }

    /// Everything the engine keeps in memory, as of `now_ms`.
    pub fn load_state(&self, now_ms: i64) -> Result<LoadedState, StoreError> {
        self.with(|c| {
            let mut st = LoadedState {
                units: units(c)?,
                ..Default::default()
            };
            let mut stmt = c.prepare(
                "SELECT id, ext_id, type, name, lon, lat, unit, unit_name, domain, attributes,
                        status FROM entities ORDER BY id",
            )?;
            let rows = stmt.query_map(params![], entity_from_row)?;
            st.entities = rows.collect::<Result<_, _>>()?;

            let mut stmt = c.prepare("SELECT id, entity, metric FROM series ORDER BY id")?;
            let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            st.series = rows.collect::<Result<_, _>>()?;

            // One index seek per series: cheap however long the history is. (The daily
            // rollups are written with the 1-minute ones and hold the same latest value.)
            let mut last = c.prepare(
                "SELECT last_ts, last FROM rollup_1d WHERE series = ?1
                 ORDER BY bucket DESC LIMIT 1",
            )?;
            for (id, _, _) in &st.series {
                if let Some(v) = last
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                {
                    st.latest.insert(*id, v);
                }
            }

            let mut stmt = c.prepare(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts
                 WHERE state != 'closed' AND (state != 'resolved' OR updated_at > ?1) ORDER BY id"
            ))?;
            // Resolved alerts wait to be closed; those older than 30 days are left closed in
            // all but name.
            st.open_alerts = stmt
                .query_map([now_ms - 30 * 86_400_000], alert_from_row)?
                .collect::<Result<_, _>>()?;
            st.next_alert_id = c.query_row(
                "SELECT COALESCE(MAX(id), 0) + 1 FROM alerts",
                params![],
                |r| r.get(0),
            )?;
            Ok(st)
        })
    }

    pub fn units(&self) -> Result<Vec<Unit>, StoreError> {
        self.with(units)
    }

    /// One alert with its whole timeline.
    pub fn alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        self.with(|c| {
            let Some(mut alert) = c
                .query_row(
                    &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                    [id],
                    alert_from_row,
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut stmt = c.prepare(
                "SELECT at, actor, kind, from_state, to_state, comment, value, node
                 FROM alert_events WHERE alert = ?1 ORDER BY id",
            )?;
            alert.events = stmt
                .query_map([id], |r| {
                    let kind: String = r.get(2)?;
                    let from: Option<String> = r.get(3)?;
                    let to: Option<String> = r.get(4)?;
                    Ok(AlertEvent {
                        at: from_ms(r.get(0)?),
                        actor: r.get(1)?,
                        kind: parse_event_kind(&kind),
                        from: from.as_deref().and_then(AlertState::parse),
                        to: to.as_deref().and_then(AlertState::parse),
                        comment: r.get(5)?,
                        value: r.get(6)?,
                        node: r.get(7)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(Some(alert))
        })
    }

    /// Sources added from the admin screen: (name, TOML).
    pub fn managed_sources(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT name, config FROM managed_sources ORDER BY name")?;
            let rows = stmt
                .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Evidence clips, newest first: all, or those of an alert, an incident or a camera.
    pub fn clips(&self, f: &ClipFilter) -> Result<Vec<ioc_model::ClipInfo>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, camera, camera_name, unit, alert, incident, at, before_s, after_s,
                   from_ms, to_ms, state, error, size, sha256, file_name, created_by, created_at
                 FROM clips
                 WHERE (CAST(?1 AS BIGINT) IS NULL OR alert = ?1) AND (CAST(?2 AS BIGINT) IS NULL OR incident = ?2)
                   AND (CAST(?3 AS TEXT) IS NULL OR camera = ?3) AND (CAST(?4 AS BIGINT) IS NULL OR id = ?4)
                   AND (CAST(?5 AS TEXT) IS NULL OR state = ?5)
                 ORDER BY id DESC LIMIT ?6",
            )?;
            let rows = stmt
                .query_map(
                    params![
                        f.alert,
                        f.incident,
                        f.camera,
                        f.id,
                        f.state.map(|s| s.as_str()),
                        f.limit.unwrap_or(1000) as i64
                    ],
                    clip_row,
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The largest clip id (0 when none).
    pub fn max_clip_id(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            Ok(
                c.query_row("SELECT COALESCE(MAX(id), 0) FROM clips", params![], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    /// Cameras' credentials: camera → (user, password).
    pub fn camera_credentials(
        &self,
    ) -> Result<std::collections::HashMap<String, (String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT camera, username, password FROM camera_credentials")?;
            let rows = stmt
                .query_map(params![], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The message a received alert came as: (format, body).
    pub fn alert_raw(&self, id: i64) -> Result<Option<(String, String)>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT format, body FROM alert_raw WHERE alert = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    /// Alerts in the given states (all states when empty), newest first.
    pub fn alerts(&self, states: &[AlertState], limit: usize) -> Result<Vec<Alert>, StoreError> {
        self.with(|c| {
            let filter = if states.is_empty() {
                String::new()
            } else {
                let list: Vec<String> =
                    states.iter().map(|s| format!("'{}'", s.as_str())).collect();
                format!("WHERE state IN ({})", list.join(","))
            };
            let mut stmt = c.prepare(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts {filter} ORDER BY raised_at DESC, id DESC
                 LIMIT ?1"
            ))?;
            let rows = stmt
                .query_map([limit as i64], alert_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// What the store holds of a series in the hours `from..=to` (hours since the epoch), read
    /// in one snapshot: its raw values (time ms, value, oldest first), and its hourly rollups
    /// (hour, sum, count, time of the newest value in ms), which still count the values that
    /// raw retention removed. The particulate windows read what they do not hold from here.
    #[allow(clippy::type_complexity)]
    pub fn hours_of(
        &self,
        series: i64,
        from: i64,
        to: i64,
    ) -> Result<(Vec<(i64, f64)>, Vec<(i64, f64, u32, i64)>), StoreError> {
        const HOUR_MS: i64 = 3_600_000;
        self.with(|c| {
            let tx = c.read_transaction()?;
            let raw = RAW.rows(
                &tx,
                "ts, value",
                series,
                (
                    from.saturating_mul(HOUR_MS),
                    to.saturating_add(1).saturating_mul(HOUR_MS),
                ),
                usize::MAX,
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let hours = HOURS.rows(
                &tx,
                "bucket, sum, count, last_ts",
                series,
                (from, to.saturating_add(1)),
                usize::MAX,
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            Ok((raw, hours))
        })
    }

    /// Buckets of `step_s` seconds (a multiple of 60) over `[from, to)`, built from the
    /// 1-minute rollups. `None` when the entity or metric is unknown.
    pub fn series(
        &self,
        entity: &str,
        metric: &str,
        from: i64,
        to: i64,
        step_s: u64,
    ) -> Result<Option<Vec<SeriesPoint>>, StoreError> {
        // Steps of whole hours read the hourly rollups: a year is 8 760 rows, not 525 600.
        let hourly = step_s >= 3600 && step_s.is_multiple_of(3600);
        let table = if hourly { &HOURS } else { &MINUTES };
        let unit_ms = table.unit_ms;
        let step_units = (step_s as i64 * 1000 / unit_ms).max(1);
        self.with(|c| {
            let Some(series) = series_id(c, entity, metric)? else {
                return Ok(None);
            };
            let rows = table.rows(
                c,
                "bucket, count, min, max, sum, last",
                series,
                (from.div_euclid(unit_ms), to.div_euclid(unit_ms) + 1),
                usize::MAX,
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, f64>(2)?,
                        r.get::<_, f64>(3)?,
                        r.get::<_, f64>(4)?,
                        r.get::<_, f64>(5)?,
                    ))
                },
            )?;
            let mut out: Vec<(i64, SeriesPoint, f64)> = Vec::new();
            for (bucket, count, min, max, sum, last) in rows {
                let b = bucket.div_euclid(step_units) * step_units;
                match out.last_mut() {
                    Some((ob, p, s)) if *ob == b => {
                        p.count += count as u64;
                        p.min = p.min.min(min);
                        p.max = p.max.max(max);
                        *s += sum;
                        p.last = last;
                    }
                    _ => out.push((
                        b,
                        SeriesPoint {
                            t: from_ms(b * unit_ms),
                            min,
                            max,
                            avg: 0.0,
                            last,
                            count: count as u64,
                        },
                        sum,
                    )),
                }
            }
            Ok(Some(
                out.into_iter()
                    .map(|(_, mut p, sum)| {
                        p.avg = sum / p.count.max(1) as f64;
                        p
                    })
                    .collect(),
            ))
        })
    }

    /// Raw observations of one series in `[from, to)`, oldest first.
    pub fn raw(
        &self,
        entity: &str,
        metric: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        self.with(|c| {
            let Some(series) = series_id(c, entity, metric)? else {
                return Ok(Vec::new());
            };
            Ok(
                RAW.rows(c, "ts, value", series, (from_ms, to_ms), limit, |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
    }

    /// Raw observations of `metrics` (`None`: every metric) in `[from, to)`, oldest first
    /// across series, at most `limit`: `(time ms, value, index into the series list)`, the
    /// series as `(entity external id, metric)`, and whether the limit cut the period short.
    /// For backtests.
    #[allow(clippy::type_complexity)]
    pub fn replay(
        &self,
        metrics: Option<&[String]>,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<(Vec<(i64, f64, u32)>, Vec<(String, String)>, bool), StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT s.id, e.ext_id, s.metric FROM series s JOIN entities e ON e.id = s.entity
                 ORDER BY s.id",
            )?;
            let all: Vec<(i64, String, String)> = stmt
                .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let chosen: Vec<(i64, String, String)> = all
                .into_iter()
                .filter(|(_, _, m)| metrics.is_none_or(|ms| ms.contains(m)))
                .collect();
            let mut rows = Vec::new();
            let mut truncated = false;
            for (i, (sid, _, _)) in chosen.iter().enumerate() {
                let before = rows.len();
                for (ts, v) in RAW.rows(
                    c,
                    "ts, value",
                    *sid,
                    (from_ms, to_ms),
                    limit.saturating_add(1),
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)),
                )? {
                    rows.push((ts, v, i as u32));
                }
                if rows.len() - before > limit {
                    truncated = true;
                }
            }
            rows.sort_unstable_by_key(|&(ts, _, i)| (ts, i));
            if rows.len() > limit {
                truncated = true;
                rows.truncate(limit);
            }
            let series = chosen.into_iter().map(|(_, e, m)| (e, m)).collect();
            Ok((rows, series, truncated))
        })
    }

    /// Dead letters, newest first: of one source, and/or whose reason, origin or payload
    /// contains `text` (case-insensitive).
    pub fn dead_letters(
        &self,
        source: Option<&str>,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.with(|c| {
            let like = text.map(|t| format!("%{}%", t.replace('%', "\\%").replace('_', "\\_")));
            // SQLite's LIKE ignores the case of ASCII letters; PostgreSQL's ILIKE of all.
            let mut stmt = c.prepare_cached(match c.dialect() {
                super::db::Dialect::Sqlite => {
                    "SELECT id, source, received_at, origin, reason, payload, size, count, samples
                     FROM dead_letters
                     WHERE (CAST(?1 AS TEXT) IS NULL OR source = ?1)
                       AND (CAST(?2 AS TEXT) IS NULL OR reason LIKE ?2 ESCAPE '\\'
                            OR origin LIKE ?2 ESCAPE '\\'
                            OR CAST(payload AS TEXT) LIKE ?2 ESCAPE '\\')
                     ORDER BY id DESC LIMIT ?3"
                }
                super::db::Dialect::Postgres => {
                    "SELECT id, source, received_at, origin, reason, payload, size, count, samples
                     FROM dead_letters
                     WHERE (CAST(?1 AS TEXT) IS NULL OR source = ?1)
                       AND (CAST(?2 AS TEXT) IS NULL OR reason ILIKE ?2 ESCAPE '\\'
                            OR origin ILIKE ?2 ESCAPE '\\'
                            OR encode(payload, 'escape') ILIKE ?2 ESCAPE '\\')
                     ORDER BY id DESC LIMIT ?3"
                }
            })?;
            let rows = stmt
                .query_map(params![source, like, limit as i64], |r| {
                    let payload: Vec<u8> = r.get(5)?;
                    Ok(DeadLetter {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        received_at: from_ms(r.get(2)?),
                        origin: r.get(3)?,
                        reason: r.get(4)?,
                        payload: String::from_utf8_lossy(&payload).into_owned(),
                        size: r.get::<_, i64>(6)? as usize,
                        count: r.get::<_, i64>(7)?.max(1) as u64,
                        samples: r
                            .get::<_, Option<String>>(8)?
                            .and_then(|t| serde_json::from_str(&t).ok())
                            .unwrap_or_default(),
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Number of raw observations stored.
    pub fn count_observations(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 =
                c.query_row("SELECT COUNT(*) FROM observations", params![], |r| r.get(0))?;
            Ok(n as u64)
        })
    }
}

fn series_id(c: &Db, entity: &str, metric: &str) -> Result<Option<i64>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT s.id FROM series s JOIN entities e ON e.id = s.entity
         WHERE e.ext_id = ?1 AND s.metric = ?2",
    )?
    .query_row(params![entity, metric], |r| r.get(0))
    .optional()?)
}

fn units(c: &Db) -> Result<Vec<Unit>, StoreError> {
    let mut stmt =
        c.prepare("SELECT code, name, full_name, parent, lon, lat FROM units ORDER BY code")?;
    let rows = stmt
        .query_map(params![], |r| {
            Ok(Unit {
                code: r.get(0)?,
                name: r.get(1)?,
                full_name: r.get(2)?,
                parent: r.get(3)?,
                lon: r.get(4)?,
                lat: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
