//! The pipeline's lease on a PostgreSQL store. Of the `ioc serve` nodes on one database,
//! the one holding it runs the engine (sources, rules, the writer); the others stand by,
//! forward what they are asked to it, and take the lease when its holder goes.
//!
//! The lease is a session advisory lock held by the connection the writer then writes on,
//! not a row with an expiry: PostgreSQL releases a session's lock the moment the session
//! ends, so a node killed outright (SIGKILL, power cut) frees it at once, with no clock to
//! trust and no expiry to wait out; and the lease and the writes share a fate — a node
//! whose connection is gone can neither write nor keep the lease ([`Db::is_closed`] tells
//! the writer, which reports it so the node stops).
//!
//! The holder also writes where it answers into `ioc_lease`, for the standbys to forward to.
//! SQLite has no lease: its data folder's lock already keeps a second engine out.

use super::db::{params, Db, OptionalExtension};
use super::{Location, StoreError};

/// The lease's table, made with the schema (not versioned: it holds no data of the IOC's).
pub(crate) const TABLE: &str = "CREATE TABLE IF NOT EXISTS ioc_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    url TEXT,
    since BIGINT NOT NULL
)";

/// An arbitrary constant of ours for `pg_try_advisory_lock`: the pipeline's lease (the
/// schema's migrations use another). Its upper half is the schema's (see [`key`]).
pub const KEY: i64 = 0x10C_1EA5E;

/// The lease's key in the database `db` is connected to: [`KEY`] in the lower 32 bits, a
/// hash of the current schema in the upper ones, since advisory locks are per database
/// while an IOC's tables are per schema (`ioc bench ingest --store` runs an engine in
/// scratch schemas of a database that may hold a province's store).
fn key(db: &Db) -> Result<i64, StoreError> {
    let schema: String = db.query_row("SELECT current_schema()", params![], |r| r.get(0))?;
    // FNV-1a: stable across versions and machines (every node must compute the same key).
    let hash = schema.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    Ok((i64::from(hash & 0x7fff_ffff) << 32) | KEY)
}

/// The lease, held for as long as this value (or the writer it was handed to) keeps its
/// connection.
pub struct Lease {
    db: Db,
}

/// Who holds the lease, as its holder wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Where the holder answers (`http://HOST:PORT`), when it said.
    pub url: Option<String>,
    /// Since when it holds it (ms since 1970).
    pub since_ms: i64,
}

impl Lease {
    /// Takes the lease on the PostgreSQL store `at` if nobody holds it (`None` if somebody
    /// does). `url`: where this node answers, written for the standbys. Blocking.
    pub fn try_take(at: &Location, url: Option<&str>) -> Result<Option<Lease>, StoreError> {
        if !matches!(at, Location::Postgres(_)) {
            return Err(StoreError::BadLocation(format!(
                "{at}: only a PostgreSQL store has a lease"
            )));
        }
        let db = at.connect()?;
        let key = key(&db)?;
        let got: bool = db.query_row("SELECT pg_try_advisory_lock(?1)", params![key], |r| {
            r.get(0)
        })?;
        if !got {
            return Ok(None);
        }
        let now = chrono::Utc::now().timestamp_millis();
        db.execute(
            "INSERT INTO ioc_lease (id, url, since) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, since = excluded.since",
            params![url, now],
        )?;
        Ok(Some(Lease { db }))
    }

    /// [`Lease::try_take`] again until `within` has passed: a node that just stopped (an
    /// engine restarted in the same process) lets its lease go as its server notices the
    /// connection closed, a moment later.
    pub fn take_within(
        at: &Location,
        within: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(lease) = Lease::try_take(at, None)? {
                return Ok(Some(lease));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Who holds the lease now, as far as `db` can tell: `None` when nobody does (the lock is
    /// free) or nobody ever did.
    pub fn holder(db: &Db) -> Result<Option<Holder>, StoreError> {
        // The lock is the truth (a row outlives its node); the row says where it answers.
        let held: bool = db.query_row(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND ((classid::bigint << 32) | objid::bigint) = ?1)",
            params![key(db)?],
            |r| r.get(0),
        )?;
        if !held {
            return Ok(None);
        }
        Ok(db
            .query_row(
                "SELECT url, since FROM ioc_lease WHERE id = 1",
                params![],
                |r| {
                    Ok(Holder {
                        url: r.get(0)?,
                        since_ms: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// The connection that holds the lease, for the writer to write on (the lease lasts as
    /// long as it).
    pub fn into_db(self) -> Db {
        self.db
    }

    /// Whether the lease is lost (its connection gone), to ask while the writer has it.
    pub fn lost_probe(&self) -> std::sync::Arc<dyn Fn() -> bool + Send + Sync> {
        self.db.closed_probe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_next_takes_over_when_it_goes() {
        let Some(url) = crate::store::testing::database("lease") else {
            return;
        };
        let at = Location::postgres(&url).unwrap();
        crate::store::open_postgres(&at).unwrap();
        let probe = at.connect().unwrap();
        assert_eq!(Lease::holder(&probe).unwrap(), None, "nobody yet");

        let first = Lease::try_take(&at, Some("http://10.0.0.1:8080"))
            .unwrap()
            .expect("a free lease is taken");
        let holder = Lease::holder(&probe).unwrap().expect("held");
        assert_eq!(holder.url.as_deref(), Some("http://10.0.0.1:8080"));
        assert!(
            Lease::try_take(&at, Some("http://10.0.0.2:8080"))
                .unwrap()
                .is_none(),
            "a second node does not get it while the first holds it"
        );
        // Its connection ends (as when the node is killed): the lease is free at once.
        drop(first);
        let mut second = None;
        for _ in 0..50 {
            second = Lease::try_take(&at, Some("http://10.0.0.2:8080")).unwrap();
            if second.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(second.is_some(), "the lease is taken over");
        let holder = Lease::holder(&probe).unwrap().expect("held");
        assert_eq!(holder.url.as_deref(), Some("http://10.0.0.2:8080"));
        assert!(!second.unwrap().into_db().is_closed());
    }
}
