//! Versioned schema migrations (`PRAGMA user_version`). Append new migrations; never edit one
//! that has shipped.

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

const V1: &str = r#"
CREATE TABLE units (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    full_name TEXT,
    parent TEXT,
    lon REAL,
    lat REAL
);

CREATE TABLE entities (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    lon REAL,
    lat REAL,
    unit TEXT,
    unit_name TEXT,
    domain TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'unknown',
    source TEXT,
    updated_at INTEGER NOT NULL
);

-- One row per (entity, metric): raw rows and rollups refer to it by a small integer.
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    entity INTEGER NOT NULL,
    metric TEXT NOT NULL,
    UNIQUE (entity, metric)
);

-- Raw observations. The key also removes duplicates (same series, same time).
CREATE TABLE observations (
    series INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;

CREATE TABLE rollup_1m (
    series INTEGER NOT NULL,
    bucket INTEGER NOT NULL,  -- minutes since the epoch
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (series, bucket)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    entity TEXT,
    entity_name TEXT NOT NULL,
    unit TEXT,
    unit_name TEXT,
    domain TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    active INTEGER NOT NULL,
    message TEXT NOT NULL,
    metric TEXT,
    value REAL,
    raised_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cleared_at INTEGER,
    acked_at INTEGER,
    acked_by TEXT,
    count INTEGER NOT NULL,
    external_id TEXT,
    area TEXT,            -- GeoJSON geometry
    description TEXT,
    expires_at INTEGER
);
CREATE INDEX alerts_by_state ON alerts (state, raised_at);

-- Append-only timeline of every alert.
CREATE TABLE alert_events (
    id INTEGER PRIMARY KEY,
    alert INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    comment TEXT,
    value REAL
);
CREATE INDEX alert_events_by_alert ON alert_events (alert, id);

-- The message a received alert came as (CAP XML), for export as received.
CREATE TABLE alert_raw (
    alert INTEGER PRIMARY KEY,
    format TEXT NOT NULL,
    body TEXT NOT NULL
);

-- Refused inputs, with the reason and the start of the payload.
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    origin TEXT,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX dead_letters_by_source ON dead_letters (source, id);

-- Sources added from the admin screen (the config file's stay in the file).
CREATE TABLE managed_sources (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Operating: the alert lifecycle's fields, users and sessions, the audit log.
const V2: &str = r#"
ALTER TABLE alerts ADD COLUMN assignee TEXT;
ALTER TABLE alerts ADD COLUMN shelved_until INTEGER;
ALTER TABLE alerts ADD COLUMN escalation INTEGER NOT NULL DEFAULT 0;

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    units TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);

-- Sign-in sessions by the SHA-256 of their token (the token itself is never stored).
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Append-only, hash-chained: hash = SHA-256 of the previous hash and this row's fields.
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"#;

/// Incidents worked through SOPs, directives, SOP templates, silences, attachments.
const V3: &str = r#"
ALTER TABLE alerts ADD COLUMN incident INTEGER;
ALTER TABLE alerts ADD COLUMN silenced INTEGER;
CREATE INDEX alerts_by_incident ON alerts (incident) WHERE incident IS NOT NULL;

-- The incident as JSON (steps, alerts, SOP reference) in `doc`, without its timeline; the
-- other columns are what lists and KPIs query.
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    unit TEXT,
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    resolved_at INTEGER,
    closed_at INTEGER,
    doc TEXT NOT NULL
);
CREATE INDEX incidents_by_state ON incidents (state, opened_at);

-- Append-only timeline of every incident.
CREATE TABLE incident_events (
    id INTEGER PRIMARY KEY,
    incident INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    alert INTEGER,
    directive INTEGER,
    comment TEXT
);
CREATE INDEX incident_events_by_incident ON incident_events (incident, id);

CREATE TABLE directives (
    id INTEGER PRIMARY KEY,
    incident INTEGER,
    unit TEXT NOT NULL,
    state TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    done_at INTEGER,
    doc TEXT NOT NULL
);
CREATE INDEX directives_by_state ON directives (state, deadline);
CREATE INDEX directives_by_incident ON directives (incident) WHERE incident IS NOT NULL;

-- Every saved version of every SOP template; the newest not deleted one is in force.
CREATE TABLE sop_templates (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);

CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX silences_by_end ON silences (ends_at);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    incident INTEGER NOT NULL,
    step TEXT,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX attachments_by_incident ON attachments (incident, id);
"#;

/// KPIs and dashboards: hourly and daily rollups (kept up to date by the writer; filled
/// from the 1-minute rollups at start), when alerts were resolved, the indexes KPIs read by,
/// KPI definitions and dashboards kept in the store.
const V4: &str = r#"
ALTER TABLE alerts ADD COLUMN resolved_at INTEGER;
CREATE INDEX alerts_by_raised ON alerts (raised_at);
CREATE INDEX incidents_by_opened ON incidents (opened_at);
CREATE INDEX directives_by_deadline ON directives (deadline);

-- Hours since the epoch.
CREATE TABLE rollup_1h (
    series INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (series, bucket)
) WITHOUT ROWID;

-- Local days (display time zone) since 1970-01-01.
CREATE TABLE rollup_1d (
    series INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (series, bucket)
) WITHOUT ROWID;

CREATE TABLE kpi_defs (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE dashboards (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    doc TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

/// The audit chain can be keyed: each row says how it was hashed.
const V5: &str = r#"
ALTER TABLE audit ADD COLUMN alg TEXT NOT NULL DEFAULT 'sha256';
"#;

/// Refusals of one cause are one dead letter with a count and a few samples (a 600,000-row
/// import for an unknown entity is one row, not 600,000); `grouping` is the import and cause
/// they are gathered under, so the next chunk of the same import adds to the same row.
const V6: &str = r#"
ALTER TABLE dead_letters ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE dead_letters ADD COLUMN samples TEXT;
ALTER TABLE dead_letters ADD COLUMN grouping TEXT;
CREATE INDEX dead_letters_by_grouping ON dead_letters (grouping) WHERE grouping IS NOT NULL;
"#;

/// Federation: where each alert event happened; the id an alert made on another node has
/// there; the operation log nodes exchange (see `crate::sync`), written in the same
/// transaction as the change it records.
const V7: &str = r#"
ALTER TABLE alert_events ADD COLUMN node TEXT;
ALTER TABLE alerts ADD COLUMN gid TEXT;
CREATE UNIQUE INDEX alerts_by_gid ON alerts (gid) WHERE gid IS NOT NULL;
CREATE TABLE oplog (
    origin TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hlc INTEGER NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (origin, seq)
) WITHOUT ROWID;
CREATE INDEX oplog_by_subject ON oplog (subject, hlc);
"#;

/// Federation: what a node with an `[upstream]` stored of devices (`entity`) and source
/// readings (`series`, `ts`) that its IOC has not taken yet, in commit order; sent, then
/// deleted once the IOC has committed it.
const V8: &str = r#"
CREATE TABLE upstream_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entity INTEGER,
    series INTEGER,
    ts INTEGER
);
"#;

/// Answers to requests sent with an `Idempotency-Key` (a workstation's queued actions), so
/// that a request sent again after its answer was lost is answered, not done twice.
const V9: &str = r#"
CREATE TABLE replies (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (principal, key)
) WITHOUT ROWID;
CREATE INDEX replies_at ON replies(at);
"#;

/// Federation: a directive issued on another node is kept here under a local id, with its
/// federation id (`ioc-nghe-an/12`).
const V10: &str = r#"
ALTER TABLE directives ADD COLUMN gid TEXT;
CREATE UNIQUE INDEX directives_by_gid ON directives (gid) WHERE gid IS NOT NULL;
"#;

/// Federation: a silence made on another node, kept here under a local id.
const V11: &str = r#"
ALTER TABLE silences ADD COLUMN gid TEXT;
CREATE UNIQUE INDEX silences_by_gid ON silences (gid) WHERE gid IS NOT NULL;
"#;

/// Federation: an incident opened on another node, kept here under a local id; the node each
/// entry of a timeline happened on.
const V12: &str = r#"
ALTER TABLE incidents ADD COLUMN gid TEXT;
CREATE UNIQUE INDEX incidents_by_gid ON incidents (gid) WHERE gid IS NOT NULL;
ALTER TABLE incident_events ADD COLUMN node TEXT;
"#;

/// Cameras' credentials, kept apart from their entities (whose attributes anyone who sees
/// the camera reads): written through the API, never read back through it.
const V13: &str = r#"
CREATE TABLE camera_credentials (
    camera TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

/// Evidence clips: their files are on disk (`clips/` in the data folder), their records
/// here, kept after retention removes a file (with its fingerprint).
const V14: &str = r#"
CREATE TABLE clips (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    camera_name TEXT NOT NULL,
    unit TEXT,
    alert INTEGER,
    incident INTEGER,
    at INTEGER NOT NULL,
    before_s INTEGER NOT NULL,
    after_s INTEGER NOT NULL,
    from_ms INTEGER,
    to_ms INTEGER,
    state TEXT NOT NULL,
    error TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT,
    file_name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX clips_by_alert ON clips (alert) WHERE alert IS NOT NULL;
CREATE INDEX clips_by_incident ON clips (incident) WHERE incident IS NOT NULL;
"#;

/// Raw observations, 1-minute and hourly rollups keyed by a time part first (an hour, an
/// hour, a UTC day), so retention deletes whole pages at the left edge of each table instead
/// of rewriting every page (see `parts.rs`). SQLite's `/` truncates toward zero; the part is
/// the floor.
const V15: &str = r#"
CREATE TABLE observations_by_part (
    part INTEGER NOT NULL,
    series INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (part, series, ts)
) WITHOUT ROWID;
INSERT INTO observations_by_part (part, series, ts, value)
    SELECT ts / 3600000 - (ts % 3600000 < 0), series, ts, value FROM observations
    ORDER BY 1, 2, 3;
DROP TABLE observations;
ALTER TABLE observations_by_part RENAME TO observations;

CREATE TABLE rollup_1m_by_part (
    part INTEGER NOT NULL,
    series INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (part, series, bucket)
) WITHOUT ROWID;
INSERT INTO rollup_1m_by_part (part, series, bucket, count, min, max, sum, last, last_ts)
    SELECT bucket / 60 - (bucket % 60 < 0), series, bucket, count, min, max, sum, last, last_ts
    FROM rollup_1m ORDER BY 1, 2, 3;
DROP TABLE rollup_1m;
ALTER TABLE rollup_1m_by_part RENAME TO rollup_1m;

CREATE TABLE rollup_1h_by_part (
    part INTEGER NOT NULL,
    series INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (part, series, bucket)
) WITHOUT ROWID;
INSERT INTO rollup_1h_by_part (part, series, bucket, count, min, max, sum, last, last_ts)
    SELECT bucket / 24 - (bucket % 24 < 0), series, bucket, count, min, max, sum, last, last_ts
    FROM rollup_1h ORDER BY 1, 2, 3;
DROP TABLE rollup_1h;
ALTER TABLE rollup_1h_by_part RENAME TO rollup_1h;
"#;

/// Every migration in order; the schema version is how many have run.
const STEPS: [&str; 15] = [
    V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15,
];

pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(STEPS.iter().map(|sql| M::up(sql)).collect())
}

/// The schema version this build writes (`PRAGMA user_version` once migrated).
pub const VERSION: usize = STEPS.len();

/// The database's schema version (0: empty, never migrated).
pub fn version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("PRAGMA user_version", [], |r| {
        r.get::<_, i64>(0).map(|v| v.max(0) as usize)
    })
}

pub fn migrate(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    migrations().to_latest(conn)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }

    /// VERSION is what the migrations end on: a migration added without it would make this
    /// build refuse its own databases.
    #[test]
    fn version_is_the_last_migration() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        assert_eq!(super::version(&c).unwrap(), 0);
        super::migrate(&mut c).unwrap();
        assert_eq!(super::version(&c).unwrap(), super::VERSION);
    }

    /// A store from before readings were keyed by part keeps every row, each in its part
    /// (the floor of its time, before 1970 too).
    #[test]
    fn readings_move_to_their_parts() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        super::migrations().to_version(&mut c, 14).unwrap();
        c.execute_batch(
            "INSERT INTO observations (series, ts, value) VALUES
                 (1, 7200000, 1.0), (1, 7199999, 2.0), (2, -1, 3.0);
             INSERT INTO rollup_1m (series, bucket, count, min, max, sum, last, last_ts)
                 VALUES (1, 61, 1, 1, 1, 1, 1, 0), (1, -61, 1, 1, 1, 1, 1, 0);
             INSERT INTO rollup_1h (series, bucket, count, min, max, sum, last, last_ts)
                 VALUES (1, 24, 1, 1, 1, 1, 1, 0), (3, 23, 2, 1, 1, 2, 1, 0);",
        )
        .unwrap();
        super::migrate(&mut c).unwrap();
        let parts = |sql: &str| -> Vec<(i64, i64, i64)> {
            let mut st = c.prepare(sql).unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(
            parts("SELECT part, series, ts FROM observations"),
            [(-1, 2, -1), (1, 1, 7199999), (2, 1, 7200000)]
        );
        assert_eq!(
            parts("SELECT part, series, bucket FROM rollup_1m"),
            [(-2, 1, -61), (1, 1, 61)]
        );
        assert_eq!(
            parts("SELECT part, series, bucket FROM rollup_1h"),
            [(0, 3, 23), (1, 1, 24)]
        );
    }
}
