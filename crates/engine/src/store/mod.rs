//! The local cache: SQLite in WAL mode, one writer thread that batches everything the pipeline
//! commits into transactions, and readers on their own connections.
//!
//! Observations are stored raw (`observations`) and as 1-minute, hourly and daily rollups
//! (`rollup_1m`/`_1h`/`_1d`: count/min/max/sum/last) that charts, KPIs and restarts read
//! instead of raw rows; `retention` keeps each tier for its age and the whole file within its
//! size budget.
//! Series (entity × metric) get small integer ids so raw rows stay narrow.

mod config;
pub mod db;
mod kpi;
pub mod lease;
mod operate;
mod parts;
mod read;
mod retention;
mod schema;
mod schema_pg;
mod sync;
pub mod testing;
mod time;
mod write;

pub use config::StoreConfig;
pub use operate::{AttachmentRow, LoadedOperations, SopRow};
pub use read::{event_kind_str as event_kind_name, ClipFilter, LoadedState, Reader};
pub use sync::{
    check_node_incarnation, incarnation, node_name, outbox_trim, seed_outbox, OutboxBatch,
    SyncState,
};
pub use time::{from_ms, to_ms};
pub use write::{
    backfill_rollups, DeadLetterRow, EntityRow, ObsRow, WriteBatch, WriteOutcome, Writer,
    WriterStatus, DEAD_LETTER_PAYLOAD, DEAD_LETTER_SAMPLES,
};

use db::Db;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} was written by a newer IOC Console (schema version {found}; this \
         version knows up to {known}). Run the newer version on it, or restore a backup made \
         by this one into another folder; it was left untouched"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error("database {path}: schema migration failed: {message}")]
    Migration { path: PathBuf, message: String },
    #[error("database: {0}")]
    Query(#[from] db::DbError),
    #[error("the store writer has stopped")]
    WriterGone,
    #[error("database {location}: {source}")]
    Database {
        location: String,
        source: db::DbError,
    },
    #[error("{0}")]
    BadLocation(String),
}

/// Where the store's database is: a file in the data folder (SQLite, the default), or a
/// PostgreSQL database (`ioc serve --store postgres://USER@HOST:PORT/DB`) that several
/// IOC nodes share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// Its URL, without a password (that comes from `PGPASSWORD`).
    Postgres(String),
}

impl Location {
    /// A new connection with our settings.
    pub fn connect(&self) -> Result<Db, StoreError> {
        match self {
            Location::Sqlite(path) => connect_sqlite(path).map(Db::from),
            Location::Postgres(url) => Db::postgres(url).map_err(|source| StoreError::Database {
                location: url.clone(),
                source,
            }),
        }
    }

    /// The database file, on SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// `postgres://…` checked: a PostgreSQL URL without a password in it (a URL is logged
    /// and shown; the password is not).
    pub fn postgres(url: &str) -> Result<Location, StoreError> {
        let bad = |why: &str| StoreError::BadLocation(format!("store {url:?}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(bad("a PostgreSQL store is postgres://USER@HOST:PORT/DB"));
        }
        if parsed.password().is_some() {
            return Err(StoreError::BadLocation(
                "the store's URL has a password in it: give it in the environment as PGPASSWORD \
                 instead (a URL ends up in logs)"
                    .into(),
            ));
        }
        if parsed.path().trim_matches('/').is_empty() {
            return Err(bad("name the database: postgres://USER@HOST:PORT/DB"));
        }
        Ok(Location::Postgres(url.to_string()))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(u) => f.write_str(u),
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::Sqlite(p.to_owned())
    }
}
impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::Sqlite(p.clone())
    }
}
impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Sqlite(p)
    }
}
impl From<&Location> for Location {
    fn from(l: &Location) -> Location {
        l.clone()
    }
}

/// Opens the store `[store]` names: PostgreSQL at its `url`, or SQLite in `data_dir`; its
/// schema brought up to date. Blocking.
pub fn open_configured(store: &StoreConfig, data_dir: &Path) -> Result<Location, StoreError> {
    match &store.url {
        Some(url) => {
            let at = Location::postgres(url)?;
            open_postgres(&at)?;
            Ok(at)
        }
        None => open(data_dir).map(Location::Sqlite),
    }
}

/// Opens the PostgreSQL store at `at` and brings its schema up to date (a newer one is
/// refused, as on SQLite).
pub fn open_postgres(at: &Location) -> Result<(), StoreError> {
    let Location::Postgres(url) = at else {
        return Err(StoreError::BadLocation(format!(
            "{at} is not a PostgreSQL store"
        )));
    };
    let db = at.connect()?;
    let wrap = |source| StoreError::Database {
        location: url.clone(),
        source,
    };
    let found = schema_pg::version(&db).map_err(wrap)?;
    if found > schema_pg::VERSION {
        return Err(StoreError::TooNew {
            path: PathBuf::from(url),
            found,
            known: schema_pg::VERSION,
        });
    }
    schema_pg::migrate(&db).map_err(wrap)?;
    Ok(())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Query(db::DbError::Sqlite(e))
    }
}

pub use schema::{version as schema_version, VERSION as SCHEMA_VERSION};

/// Name of the database file inside the data folder.
pub const DB_FILE: &str = "ioc.db";

/// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
/// Returns the path of the database file.
pub fn open(data_dir: &Path) -> Result<PathBuf, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let path = data_dir.join(DB_FILE);
    owner_only(data_dir, true);
    let mut conn = connect_sqlite(&path)?;
    // Before the first write creates the WAL: SQLite gives the -wal and -shm files the
    // database file's own permissions.
    for f in [DB_FILE, "ioc.db-wal", "ioc.db-shm"] {
        owner_only(&data_dir.join(f), false);
    }
    // An older schema is brought up to date below; a newer one is another version's data,
    // which this one must not write to (it does not know what the new columns mean).
    let found = schema::version(&conn).map_err(|source| StoreError::Sqlite {
        path: path.clone(),
        source,
    })?;
    if found > schema::VERSION {
        return Err(StoreError::TooNew {
            path,
            found,
            known: schema::VERSION,
        });
    }
    if found > 0 && found < schema::VERSION {
        tracing::info!(
            "{}: schema version {found} brought up to {}",
            path.display(),
            schema::VERSION
        );
    }
    schema::migrate(&mut conn).map_err(|e| StoreError::Migration {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}

/// The data folder holds secrets (the sources' passwords and tokens, sessions, the audit
/// key): readable by its owner only. A file that does not exist yet is left alone; a
/// failure is logged, not fatal (some file systems have no modes).
pub fn owner_only(path: &Path, dir: bool) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if dir { 0o700 } else { 0o600 };
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o777 != mode => {
                if let Err(e) =
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                {
                    tracing::warn!(
                        "cannot make {} readable by its owner only: {e}",
                        path.display()
                    );
                }
            }
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = (path, dir);
}

/// A connection with the pragmas every connection of ours uses.
pub(crate) fn connect(at: impl Into<Location>) -> Result<Db, StoreError> {
    at.into().connect()
}

fn connect_sqlite(path: &Path) -> Result<Connection, StoreError> {
    let wrap = |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(wrap)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(wrap)?;
    // FULL: a committed batch survives power loss too, not only a crash of the process. With
    // one commit per batch this costs one fsync per batch, not per observation.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(wrap)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(wrap)?;
    // A long read (a report, a backup) holds checkpoints back and the WAL grows meanwhile;
    // once a checkpoint gets through, the file is cut back to this instead of staying large.
    conn.pragma_update(None, "journal_size_limit", 32 * 1024 * 1024)
        .map_err(wrap)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(wrap)?;
    Ok(conn)
}

/// Creates the schema on an open connection (used by the ingest benchmark's baseline so that
/// both sides write the very same table).
pub fn migrate_connection(conn: &mut Db) -> Result<(), String> {
    match conn.sqlite_mut() {
        Some(c) => schema::migrate(c).map_err(|e| e.to_string()),
        None => schema_pg::migrate(conn)
            .map(drop)
            .map_err(|e| e.to_string()),
    }
}

/// A connection to a database file with our pragmas, for tools working on it directly
/// (`ioc user`, `ioc audit`).
pub fn connect_path(at: impl Into<Location>) -> Result<Db, StoreError> {
    connect(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_at(dir: &Path, version: usize) -> Connection {
        std::fs::create_dir_all(dir).unwrap();
        let mut c = Connection::open(dir.join(DB_FILE)).unwrap();
        schema::migrations().to_version(&mut c, version).unwrap();
        c
    }

    /// A folder made by the previous version opens: its schema is brought up to date and
    /// what it held is still there.
    #[test]
    fn a_folder_of_the_previous_version_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let c = db_at(dir.path(), schema::VERSION - 1);
        c.execute(
            "INSERT INTO observations (series, ts, value) VALUES (7, 3600000, 42.5)",
            [],
        )
        .unwrap();
        drop(c);
        let path = open(dir.path()).unwrap();
        let c = Connection::open(path).unwrap();
        assert_eq!(schema::version(&c).unwrap(), schema::VERSION);
        let row: (i64, i64, f64) = c
            .query_row("SELECT series, ts, value FROM observations", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(row, (7, 3600000, 42.5));
    }

    /// A folder a newer version wrote is refused with a message that says so and what to
    /// do, and is left as it was.
    #[test]
    fn a_folder_of_a_newer_version_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let c = db_at(dir.path(), schema::VERSION);
        c.pragma_update(None, "user_version", (schema::VERSION + 1) as i64)
            .unwrap();
        let tables = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .unwrap()
        };
        let before = tables(&c);
        drop(c);
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found, known, .. }
                if found == schema::VERSION + 1 && known == schema::VERSION),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("newer IOC Console"), "{msg}");
        assert!(
            msg.contains(&format!("schema version {}", schema::VERSION + 1)),
            "{msg}"
        );
        let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
        assert_eq!(schema::version(&c).unwrap(), schema::VERSION + 1);
        assert_eq!(tables(&c), before);
    }
}
