//! What the store keeps: raw observations for `raw_retention`, 1-minute rollups for
//! `minute_retention`, hourly ones for `hour_retention`, daily ones for good, and the whole
//! database within `max_size_mb` whatever the ages. Ages alone are no budget: a province
//! reporting 10,000 observations a second writes some 20 GB of raw rows and 144 million
//! 1-minute rollups a day.
//!
//! Those three tables are keyed by a time part first (`parts.rs`), and retention deletes
//! whole parts, oldest first: the left edge of each B-tree, page after page, never a row in
//! the middle of a page still in use. So a tier keeps a little more than its age (up to a
//! part: an hour of raw rows or 1-minute rollups, a day of hourly ones).
//!
//! Over the budget, the oldest detail goes first: raw observations down to the last hour,
//! then 1-minute rollups down to the last two days, then hourly ones down to the last 90
//! days; if that is not enough, the same again down to the last 10 minutes, 6 hours and 7
//! days (at a province's full load two days of 1-minute rollups alone are some 35 GB), each
//! rounded to its part. Daily rollups (what KPIs and year charts read) are never given up
//! for size. A pass over budget cuts a quarter of the span of the finest tier that can give
//! (at least a part), and the next pass follows at once while the database is still over,
//! so it converges in a few passes. A tier cut to its floor in an episode over budget is held
//! there (what ages past it goes) while the next one gives. SQLite reuses the freed pages, so
//! the file stops growing at about the budget.
//!
//! A pass works in slices of about 50 ms between the writer's commits (one transaction of
//! statements each deleting a range of a part's series), so ingestion never waits for a
//! whole pass; routine passes (within budget) come every 5 minutes of the engine's clock but
//! at most once a minute of wall time.

use super::db::{params, Db, Result as DbResult};
use super::parts::{Table, HOURS, MINUTES, RAW};
use super::{time::from_ms, StoreConfig};
use std::time::{Duration, Instant};

/// How often a pass starts when the database is within its budget (engine clock)…
const EVERY_MS: i64 = 5 * 60_000;
/// …and at least this much wall time apart (a sped-up clock, `ioc bench soak`).
const EVERY_WALL: Duration = Duration::from_secs(60);
/// Series of a part deleted per statement (a few tens of thousands of rows at full load).
const SERIES_PER_STATEMENT: i64 = 256;

/// A tier of data, finest first.
struct Tier {
    table: &'static Table,
    /// Cut for size no closer to now than this, first; then no closer than `least_ms`.
    floor_ms: i64,
    least_ms: i64,
    what: &'static str,
}

const TIERS: [Tier; 3] = [
    Tier {
        table: &RAW,
        floor_ms: 3_600_000,
        least_ms: 600_000,
        what: "raw observations",
    },
    Tier {
        table: &MINUTES,
        floor_ms: 2 * 86_400_000,
        least_ms: 6 * 3_600_000,
        what: "1-minute rollups",
    },
    Tier {
        table: &HOURS,
        floor_ms: 90 * 86_400_000,
        least_ms: 7 * 86_400_000,
        what: "hourly rollups",
    },
];

impl Tier {
    /// The part of the time `now - keep`: the parts before it go.
    fn part_before(&self, now: i64, keep: i64) -> i64 {
        let t = self.table;
        t.part(now.saturating_sub(keep).div_euclid(t.unit_ms))
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One pass: per tier, the part before which everything goes; where it got.
struct Pass {
    cutoffs: [Option<i64>; 3],
    /// The tier being worked on, and the part and first series of its next statement.
    tier: usize,
    at: Option<(i64, i64)>,
    deleted: [u64; 3],
    /// The tier cut for size, when the database was over its budget.
    for_size: Option<usize>,
    started: Instant,
}

/// What a finished pass did (for tests and the log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub deleted: [u64; 3],
    pub for_size: Option<usize>,
}

pub(crate) struct Retention {
    ages_ms: [i64; 3],
    max_bytes: u64,
    pass: Option<Pass>,
    /// When the next pass may start (engine clock, ms, and wall time).
    next_at: i64,
    not_before: Option<Instant>,
    last: Option<PassReport>,
    /// Per tier, cut down to its floor (`Some(false)`) or its least (`Some(true)`) in the
    /// episode over budget under way (cleared once within budget).
    at_floor: [Option<bool>; 3],
}

impl Retention {
    pub fn new(cfg: &StoreConfig) -> Retention {
        Retention {
            ages_ms: [
                ms(cfg.raw_retention),
                ms(cfg.minute_retention),
                ms(cfg.hour_retention),
            ],
            max_bytes: cfg.max_size_mb.saturating_mul(1 << 20),
            pass: None,
            next_at: i64::MIN,
            not_before: None,
            last: None,
            at_floor: [None; 3],
        }
    }

    /// True while a pass is under way: the writer gives it slices between commits.
    pub fn busy(&self) -> bool {
        self.pass.is_some()
    }

    /// What the last finished pass did.
    #[cfg(test)]
    pub fn last(&self) -> Option<PassReport> {
        self.last
    }

    /// On PostgreSQL, a pass drops the partitions wholly older than each tier's age (and
    /// deletes the few old rows of the default partition): no row-by-row deletes, no slices.
    /// The size budget is the database server's business there (its own disk and alerts).
    fn drop_partitions(&mut self, conn: &Db, now: i64) -> DbResult<()> {
        let mut report = PassReport::default();
        for (i, t) in TIERS.iter().enumerate() {
            let before = t.part_before(now, self.ages_ms[i]);
            for (name, _) in super::schema_pg::partitions_before(conn, t.table, before)? {
                let rows: i64 =
                    conn.query_row(&format!("SELECT count(*) FROM {name}"), params![], |r| {
                        r.get(0)
                    })?;
                conn.execute_batch(&format!("DROP TABLE {name}"))?;
                report.deleted[i] += rows.max(0) as u64;
            }
            report.deleted[i] += conn.execute(
                &format!("DELETE FROM {}_default WHERE part < ?1", t.table.name),
                params![before],
            )? as u64;
        }
        if report.deleted.iter().any(|&n| n > 0) {
            tracing::info!(
                "store retention: {} raw observations, {} 1-minute and {} hourly rollups \
                 dropped with their partitions",
                report.deleted[0],
                report.deleted[1],
                report.deleted[2]
            );
        }
        self.last = Some(report);
        Ok(())
    }

    /// Starts a pass when one is due at `now` (engine clock, ms).
    pub fn due(&mut self, conn: &Db, now: i64) -> DbResult<()> {
        if self.pass.is_some()
            || now < self.next_at
            || self.not_before.is_some_and(|t| Instant::now() < t)
        {
            return Ok(());
        }
        self.next_at = now.saturating_add(EVERY_MS);
        if conn.dialect() == super::db::Dialect::Postgres {
            return self.drop_partitions(conn, now);
        }
        let mut cutoffs: [Option<i64>; 3] = [None; 3];
        for (i, t) in TIERS.iter().enumerate() {
            cutoffs[i] = Some(t.part_before(now, self.ages_ms[i]));
        }
        let used = used_bytes(conn)?;
        if self.max_bytes == 0 || used <= self.max_bytes {
            self.at_floor = [None; 3];
        }
        let mut for_size = None;
        if self.max_bytes > 0 && used > self.max_bytes {
            let floor_of = |t: &Tier, least: bool| {
                t.part_before(now, if least { t.least_ms } else { t.floor_ms })
            };
            'stages: for least in [false, true] {
                for (i, t) in TIERS.iter().enumerate() {
                    // Cut to its floor already in this episode over budget: what ages past
                    // it is cut below, with the tier that gives now.
                    if self.at_floor[i] >= Some(least) {
                        continue;
                    }
                    let floor = floor_of(t, least);
                    let Some(oldest) = t.table.oldest(conn)? else {
                        continue;
                    };
                    let oldest = oldest.max(cutoffs[i].unwrap_or(i64::MIN));
                    let span = t.table.part(now.div_euclid(t.table.unit_ms)) - oldest + 1;
                    // A tier just at its floor gives only what aged past it since the last
                    // pass (a sliver, while the database keeps growing): the next one gives.
                    if floor - oldest <= span / 8 {
                        continue;
                    }
                    let cut = (oldest + (span / 4).max(1)).min(floor);
                    if cut == floor {
                        self.at_floor[i] = Some(least);
                    }
                    if cutoffs[i].is_none_or(|c| c < cut) {
                        cutoffs[i] = Some(cut);
                    }
                    // The finer tiers stay at their floors meanwhile.
                    for (k, f) in TIERS.iter().enumerate().take(i) {
                        let fl = floor_of(f, self.at_floor[k].unwrap_or(least));
                        if cutoffs[k].is_none_or(|c| c < fl) {
                            cutoffs[k] = Some(fl);
                        }
                    }
                    tracing::warn!(
                        "store over its size budget ({} MB used of {} MB): deleting {} before {}",
                        used >> 20,
                        self.max_bytes >> 20,
                        t.what,
                        from_ms(
                            cut.saturating_mul(t.table.per_part)
                                .saturating_mul(t.table.unit_ms)
                        )
                        .format("%Y-%m-%d %H:%M UTC"),
                    );
                    for_size = Some(i);
                    break 'stages;
                }
            }
            if for_size.is_none() {
                for (k, t) in TIERS.iter().enumerate() {
                    let fl = floor_of(t, true);
                    if cutoffs[k].is_none_or(|c| c < fl) {
                        cutoffs[k] = Some(fl);
                    }
                }
                tracing::error!(
                    "store over its size budget ({} MB used of {} MB) with only the last 10 \
                     minutes of raw observations, 6 hours of 1-minute and 7 days of hourly \
                     rollups left: raise [store] max_size_mb",
                    used >> 20,
                    self.max_bytes >> 20
                );
            }
        }
        // Dead letters: 30 days, and never more than the newest 100 000.
        let n = conn.execute(
            "DELETE FROM dead_letters WHERE received_at < ?1
               OR id <= (SELECT MAX(id) FROM dead_letters) - 100000",
            params![now.saturating_sub(30 * 86_400_000)],
        )?;
        if n > 0 {
            tracing::info!("store retention: deleted {n} dead letters");
        }
        self.pass = Some(Pass {
            cutoffs,
            tier: 0,
            at: None,
            deleted: [0; 3],
            for_size,
            started: Instant::now(),
        });
        Ok(())
    }

    /// Works on the pass for about `budget` (one transaction).
    pub fn slice(&mut self, conn: &Db, now: i64, budget: Duration) -> DbResult<()> {
        let Some(pass) = self.pass.as_mut() else {
            return Ok(());
        };
        let t0 = Instant::now();
        let result = (|| {
            let tx = conn.transaction()?;
            while pass.tier < TIERS.len() && t0.elapsed() < budget {
                let t = TIERS[pass.tier].table;
                let Some(cut) = pass.cutoffs[pass.tier] else {
                    pass.tier += 1;
                    continue;
                };
                let (part, from) = match pass.at {
                    Some(at) => at,
                    None => match t.oldest(&tx)? {
                        Some(p) if p < cut => (p, i64::MIN),
                        _ => {
                            pass.tier += 1;
                            continue;
                        }
                    },
                };
                // The part's first series from `from` on: a range of series goes per
                // statement, so a slice ends within its budget.
                let first: Option<i64> = tx
                    .prepare_cached(&format!(
                        "SELECT min(series) FROM {} WHERE part = ?1 AND series >= ?2",
                        t.name
                    ))?
                    .query_row(params![part, from], |r| r.get(0))?;
                let Some(first) = first else {
                    pass.at = None;
                    continue;
                };
                let to = first.saturating_add(SERIES_PER_STATEMENT);
                pass.deleted[pass.tier] +=
                    tx.prepare_cached(&format!(
                        "DELETE FROM {} WHERE part = ?1 AND series >= ?2 AND series < ?3",
                        t.name
                    ))?
                    .execute(params![part, first, to])? as u64;
                pass.at = Some((part, to));
            }
            tx.commit()
        })();
        if let Err(e) = result {
            // Given up until the next one is due; the data stays, nothing is lost.
            self.pass = None;
            return Err(e);
        }
        if pass.tier < TIERS.len() {
            return Ok(());
        }
        let pass = self.pass.take().expect("a pass");
        for (i, t) in TIERS.iter().enumerate() {
            if pass.deleted[i] > 0 {
                tracing::info!(
                    "store retention: deleted {} {} in {:.1} s",
                    pass.deleted[i],
                    t.what,
                    pass.started.elapsed().as_secs_f64()
                );
            }
        }
        if pass.for_size.is_some() {
            // Look again at once: one quarter may not have been enough.
            self.next_at = now;
            self.not_before = None;
        } else {
            self.not_before = Some(Instant::now() + EVERY_WALL);
        }
        self.last = Some(PassReport {
            deleted: pass.deleted,
            for_size: pass.for_size,
        });
        Ok(())
    }
}

/// Bytes of the database's pages in use (the free ones are reused before the file grows).
pub(crate) fn used_bytes(conn: &Db) -> DbResult<u64> {
    if conn.dialect() == super::db::Dialect::Postgres {
        let size: i64 = conn.query_row(
            "SELECT pg_database_size(current_database())",
            params![],
            |r| r.get(0),
        )?;
        return Ok(size.max(0) as u64);
    }
    let pages: i64 = conn.query_row("PRAGMA page_count", params![], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", params![], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", params![], |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_780_000_000_000;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::open(dir.path()).unwrap();
        let conn = super::super::connect(&path).unwrap();
        (dir, conn)
    }

    fn fill(conn: &Db, series: i64, table: &str, from: i64, to: i64, step: i64) {
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT OR IGNORE INTO series (id, entity, metric) VALUES (?1, ?1, 'm')",
            [series],
        )
        .unwrap();
        {
            let (sql, per_part) = match table {
                "observations" => (
                    "INSERT INTO observations (series, ts, value, part) VALUES (?1, ?2, 1.5, ?3)"
                        .to_string(),
                    RAW.per_part,
                ),
                "rollup_1d" => (
                    "INSERT INTO rollup_1d (series, bucket, count, min, max, sum, last, last_ts)
                     VALUES (?1, ?2, 6, 1, 2, 9, 1.5, ?3 - ?3)"
                        .to_string(),
                    1,
                ),
                _ => (
                    format!(
                        "INSERT INTO {table} (series, bucket, count, min, max, sum, last, last_ts,
                                              part)
                         VALUES (?1, ?2, 6, 1, 2, 9, 1.5, 0, ?3)"
                    ),
                    if table == "rollup_1m" {
                        MINUTES.per_part
                    } else {
                        HOURS.per_part
                    },
                ),
            };
            let mut st = tx.prepare(&sql).unwrap();
            let mut t = from;
            while t < to {
                st.execute(params![series, t, t.div_euclid(per_part)])
                    .unwrap();
                t += step;
            }
        }
        tx.commit().unwrap();
    }

    fn count(conn: &Db, sql: &str) -> i64 {
        conn.query_row(sql, params![], |r| r.get(0)).unwrap()
    }

    /// Runs passes (as the writer would after its commits) until none is due.
    fn settle(r: &mut Retention, conn: &Db, now: i64) -> Vec<PassReport> {
        let mut reports = Vec::new();
        for _ in 0..50 {
            r.due(conn, now).unwrap();
            if !r.busy() {
                return reports;
            }
            while r.busy() {
                r.slice(conn, now, Duration::from_millis(50)).unwrap();
            }
            reports.push(r.last().unwrap());
        }
        panic!("retention does not settle: {reports:?}");
    }

    #[test]
    fn each_tier_is_kept_for_its_age() {
        let (_dir, conn) = db();
        for s in 1..=3 {
            fill(&conn, s, "observations", NOW - 40 * DAY, NOW, 3_600_000);
            let m = NOW / 60_000;
            fill(&conn, s, "rollup_1m", m - 100 * 1440, m, 60);
            let h = NOW / 3_600_000;
            fill(&conn, s, "rollup_1h", h - 6 * 366 * 24, h, 24);
            fill(&conn, s, "rollup_1d", 0, 8000, 1);
        }
        let mut r = Retention::new(&StoreConfig::default());
        let reports = settle(&mut r, &conn, NOW);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].for_size, None);
        let oldest = |sql: &str| count(&conn, sql);
        assert!(oldest("SELECT min(ts) FROM observations") >= NOW - 30 * DAY);
        assert!(oldest("SELECT min(ts) FROM observations") < NOW - 29 * DAY);
        assert!(oldest("SELECT min(bucket) FROM rollup_1m") >= (NOW - 90 * DAY) / 60_000);
        assert!(oldest("SELECT min(bucket) FROM rollup_1m") < (NOW - 89 * DAY) / 60_000);
        assert!(oldest("SELECT min(bucket) FROM rollup_1h") >= (NOW - 5 * 366 * DAY) / 3_600_000);
        assert_eq!(count(&conn, "SELECT count(*) FROM rollup_1d"), 3 * 8000);
        assert_eq!(
            reports[0].deleted[0] as i64,
            3 * 10 * 24,
            "ten days of hourly raw rows on three series"
        );
        // Not due again until five minutes later (of the engine's clock, and a minute of
        // wall time).
        r.due(&conn, NOW + 60_000).unwrap();
        assert!(!r.busy());
        r.due(&conn, NOW + EVERY_MS).unwrap();
        assert!(!r.busy(), "a minute of wall time between routine passes");
        r.not_before = None;
        // A late row past the raw age goes with the next routine pass; 8 hours on, the
        // eight hours of parts that aged past 30 days go.
        fill(
            &conn,
            1,
            "observations",
            NOW - 31 * DAY,
            NOW - 31 * DAY + 1,
            1,
        );
        r.due(&conn, NOW + EVERY_MS).unwrap();
        assert!(r.busy());
        while r.busy() {
            r.slice(&conn, NOW + EVERY_MS, Duration::from_millis(50))
                .unwrap();
        }
        assert_eq!(r.last().unwrap().deleted, [1, 0, 0]);
        r.not_before = None;
        let later = NOW + 8 * 3_600_000;
        r.due(&conn, later).unwrap();
        while r.busy() {
            r.slice(&conn, later, Duration::from_millis(50)).unwrap();
        }
        assert_eq!(r.last().unwrap().deleted[0], 3 * 8);
    }

    #[test]
    fn over_the_budget_the_oldest_raw_rows_go_first() {
        let (_dir, conn) = db();
        // Five days of a reading every 5 s on 8 series: some 20 MB of raw rows.
        for s in 1..=8 {
            fill(&conn, s, "observations", NOW - 5 * DAY, NOW, 5_000);
            let m = NOW / 60_000;
            fill(&conn, s, "rollup_1m", m - 5 * 1440, m, 1);
        }
        let before = used_bytes(&conn).unwrap();
        let minutes = count(&conn, "SELECT count(*) FROM rollup_1m");
        let cfg = StoreConfig {
            max_size_mb: (before >> 20) / 2,
            ..StoreConfig::default()
        };
        assert!(cfg.max_size_mb >= 2, "a budget to test: {before} bytes");
        let mut r = Retention::new(&cfg);
        let reports = settle(&mut r, &conn, NOW);
        let after = used_bytes(&conn).unwrap();
        assert!(
            after <= cfg.max_size_mb << 20,
            "{after} bytes used, budget {} MB ({reports:?})",
            cfg.max_size_mb
        );
        assert!(reports.len() >= 2, "{reports:?}");
        assert!(reports
            .iter()
            .all(|p| p.deleted[1] == 0 && p.deleted[2] == 0));
        assert!(reports.iter().any(|p| p.for_size == Some(0)));
        // The newest data is all there; the oldest went.
        assert_eq!(
            count(
                &conn,
                &format!(
                    "SELECT count(*) FROM observations WHERE ts >= {}",
                    NOW - 3_600_000
                )
            ),
            8 * 720
        );
        assert!(count(&conn, "SELECT min(ts) FROM observations") > NOW - 4 * DAY);
        assert_eq!(count(&conn, "SELECT count(*) FROM rollup_1m"), minutes);
    }

    #[test]
    fn with_only_the_last_hour_of_raw_rows_the_minute_rollups_give() {
        let (_dir, conn) = db();
        for s in 1..=40 {
            fill(&conn, s, "observations", NOW - 1_800_000, NOW, 60_000);
            let m = NOW / 60_000;
            fill(&conn, s, "rollup_1m", m - 20 * 1440, m, 1);
        }
        let raw = count(&conn, "SELECT count(*) FROM observations");
        let before = used_bytes(&conn).unwrap();
        let cfg = StoreConfig {
            max_size_mb: (before >> 20) / 3,
            ..StoreConfig::default()
        };
        assert!(cfg.max_size_mb >= 1, "a budget to test: {before} bytes");
        let mut r = Retention::new(&cfg);
        let reports = settle(&mut r, &conn, NOW);
        assert!(
            used_bytes(&conn).unwrap() <= cfg.max_size_mb << 20,
            "{reports:?}"
        );
        assert!(reports.iter().any(|p| p.for_size == Some(1)), "{reports:?}");
        assert_eq!(count(&conn, "SELECT count(*) FROM observations"), raw);
        // Never closer than two days.
        assert_eq!(
            count(
                &conn,
                &format!(
                    "SELECT count(*) FROM rollup_1m WHERE bucket >= {}",
                    (NOW - 2 * DAY) / 60_000
                )
            ),
            40 * 2 * 1440
        );
    }

    #[test]
    fn when_the_preferred_floors_are_not_enough_less_is_kept() {
        let (_dir, conn) = db();
        for s in 1..=40 {
            fill(&conn, s, "observations", NOW - 1_800_000, NOW, 10_000);
            let m = NOW / 60_000;
            fill(&conn, s, "rollup_1m", m - 40 * 60, m, 1);
        }
        let before = used_bytes(&conn).unwrap();
        let cfg = StoreConfig {
            max_size_mb: (before >> 20) / 3,
            ..StoreConfig::default()
        };
        assert!(cfg.max_size_mb >= 1, "a budget to test: {before} bytes");
        let mut r = Retention::new(&cfg);
        let reports = settle(&mut r, &conn, NOW);
        assert!(
            used_bytes(&conn).unwrap() <= cfg.max_size_mb << 20,
            "{reports:?}"
        );
        assert!(reports.iter().any(|p| p.for_size == Some(1)), "{reports:?}");
        // Never less than the last 10 minutes of raw rows and 6 hours of minutes.
        assert_eq!(
            count(
                &conn,
                &format!(
                    "SELECT count(*) FROM observations WHERE ts >= {}",
                    NOW - 600_000
                )
            ),
            40 * 60
        );
        // (Raw rows go by the hour: what is left starts with the hour of 10 minutes ago.)
        assert!(
            count(&conn, "SELECT min(ts) FROM observations")
                >= RAW.part(NOW - 600_000) * RAW.per_part
        );
        assert_eq!(
            count(
                &conn,
                &format!(
                    "SELECT count(*) FROM rollup_1m WHERE bucket >= {}",
                    (NOW - 6 * 3_600_000) / 60_000
                )
            ),
            40 * 6 * 60
        );
    }

    #[test]
    fn a_tier_at_its_floor_does_not_keep_the_next_from_giving() {
        let (_dir, conn) = db();
        for s in 1..=40 {
            fill(&conn, s, "observations", NOW - 7_200_000, NOW, 10_000);
            let m = NOW / 60_000;
            fill(&conn, s, "rollup_1m", m - 5 * 1440, m, 1);
        }
        let before = used_bytes(&conn).unwrap();
        let cfg = StoreConfig {
            max_size_mb: (before >> 20) / 3,
            ..StoreConfig::default()
        };
        assert!(cfg.max_size_mb >= 1, "a budget to test: {before} bytes");
        let mut r = Retention::new(&cfg);
        // Time goes on between passes, as it does while data keeps coming: the raw rows at
        // their floor always have a few seconds past it.
        let mut reports = Vec::new();
        for k in 0..60 {
            let now = NOW + k * 10_000;
            r.due(&conn, now).unwrap();
            if !r.busy() {
                break;
            }
            while r.busy() {
                r.slice(&conn, now, Duration::from_millis(50)).unwrap();
            }
            reports.push(r.last().unwrap());
        }
        assert!(
            used_bytes(&conn).unwrap() <= cfg.max_size_mb << 20,
            "{reports:?}"
        );
        assert!(reports.iter().any(|p| p.for_size == Some(1)), "{reports:?}");
    }

    /// A sped-up clock (or a slow pass) puts minutes between passes: the raw rows, cut to
    /// their least, always have minutes past it; the 1-minute rollups must still give.
    #[test]
    fn with_minutes_between_passes_the_coarser_tier_still_gives() {
        let (_dir, conn) = db();
        for s in 1..=40 {
            fill(&conn, s, "observations", NOW - 1_800_000, NOW, 10_000);
            let m = NOW / 60_000;
            fill(&conn, s, "rollup_1m", m - 40 * 60, m, 1);
        }
        let before = used_bytes(&conn).unwrap();
        let cfg = StoreConfig {
            max_size_mb: (before >> 20) / 3,
            ..StoreConfig::default()
        };
        assert!(cfg.max_size_mb >= 1, "a budget to test: {before} bytes");
        let mut r = Retention::new(&cfg);
        let mut reports = Vec::new();
        for k in 0..30 {
            let now = NOW + k * 180_000;
            r.due(&conn, now).unwrap();
            if !r.busy() {
                break;
            }
            while r.busy() {
                r.slice(&conn, now, Duration::from_millis(50)).unwrap();
            }
            reports.push(r.last().unwrap());
        }
        assert!(
            used_bytes(&conn).unwrap() <= cfg.max_size_mb << 20,
            "{reports:?}"
        );
        assert!(reports.iter().any(|p| p.for_size == Some(1)), "{reports:?}");
    }
}
