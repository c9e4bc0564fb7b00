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

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1), M::up(V2)])
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
}
