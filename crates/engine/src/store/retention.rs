//! What the store keeps: raw observations for `raw_retention`, 1-minute rollups for
//! `minute_retention`, hourly ones for `hour_retention`, daily ones for good, and the whole
//! database within `max_size_mb` whatever the ages. Ages alone are no budget: a province
//! reporting 10,000 observations a second writes some 20 GB of raw rows and 144 million
//! 1-minute rollups a day.
//!
//! Over the budget, the oldest detail goes first: raw observations down to the last hour,
//! then 1-minute rollups down to the last two days, then hourly ones down to the last 90
//! days; if that is not enough, the same again down to the last 10 minutes, 6 hours and 7
//! days (at a province's full load two days of 1-minute rollups alone are some 35 GB). Daily
//! rollups (what KPIs and year charts read) are never given up for size. A pass over budget
//! cuts a quarter of the span of the finest tier that can give, and the next pass follows at
//! once while the database is still over, so it converges in a few passes (a tier already at
//! its floor, with less than an eighth of its span past it, counts as unable to give). SQLite
//! reuses the freed pages, so the file stops growing at about the budget.
//!
//! A pass works in slices of about 50 ms between the writer's commits (one transaction of a
//! few hundred series each), so ingestion never waits for a whole pass to finish; routine
//! passes (within budget) come every 5 minutes of the engine's clock but at most once a
//! minute of wall time, as a pass over 300,000 series costs the writer a few seconds.

use super::{time::from_ms, StoreConfig};
use rusqlite::{params, Connection, OptionalExtension};
use std::time::{Duration, Instant};

/// How often a pass starts when the database is within its budget (engine clock)…
const EVERY_MS: i64 = 5 * 60_000;
/// …and at least this much wall time apart (a sped-up clock, `ioc bench soak`).
const EVERY_WALL: Duration = Duration::from_secs(60);

/// A tier of data, finest first.
struct Tier {
    table: &'static str,
    column: &'static str,
    /// Milliseconds per unit of `column`.
    unit_ms: i64,
    /// Cut for size no closer to now than this, first; then no closer than `least_ms`.
    floor_ms: i64,
    least_ms: i64,
    what: &'static str,
}

const TIERS: [Tier; 3] = [
    Tier {
        table: "observations",
        column: "ts",
        unit_ms: 1,
        floor_ms: 3_600_000,
        least_ms: 600_000,
        what: "raw observations",
    },
    Tier {
        table: "rollup_1m",
        column: "bucket",
        unit_ms: 60_000,
        floor_ms: 2 * 86_400_000,
        least_ms: 6 * 3_600_000,
        what: "1-minute rollups",
    },
    Tier {
        table: "rollup_1h",
        column: "bucket",
        unit_ms: 3_600_000,
        floor_ms: 90 * 86_400_000,
        least_ms: 7 * 86_400_000,
        what: "hourly rollups",
    },
];

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One pass: what to delete in each tier (rows before the cutoff, in the tier's units) and
/// how far through the series it got.
struct Pass {
    cutoffs: [Option<i64>; 3],
    series: Vec<i64>,
    next: usize,
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
    /// Per tier, a time no row is older than (the last cut made for size), so the next pass
    /// over budget need not look for the oldest row again (one seek per series).
    known_oldest: [Option<i64>; 3],
    /// Per tier, cut down to its floor (`Some(false)`) or its least (`Some(true)`) in the
    /// episode over budget under way (cleared once within budget).
    at_floor: [Option<bool>; 3],
    /// Per tier, the cutoff of its last sweep.
    swept: [Option<i64>; 3],
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
            known_oldest: [None; 3],
            at_floor: [None; 3],
            swept: [None; 3],
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

    /// Starts a pass when one is due at `now` (engine clock, ms).
    pub fn due(&mut self, conn: &Connection, now: i64) -> rusqlite::Result<()> {
        if self.pass.is_some()
            || now < self.next_at
            || self.not_before.is_some_and(|t| Instant::now() < t)
        {
            return Ok(());
        }
        self.next_at = now.saturating_add(EVERY_MS);
        let mut cutoffs: [Option<i64>; 3] = [None; 3];
        for (i, t) in TIERS.iter().enumerate() {
            cutoffs[i] = Some(now.saturating_sub(self.ages_ms[i]).div_euclid(t.unit_ms));
        }
        // A tier whose age cutoff moved less than a hundredth of its age since it was last
        // swept has (almost) nothing to give: not swept again yet (a pass is a statement per
        // series per tier).
        for (i, c) in cutoffs.iter_mut().enumerate() {
            let step = (self.ages_ms[i] / 100).div_euclid(TIERS[i].unit_ms);
            if let (Some(cut), Some(prev)) = (*c, self.swept[i]) {
                if cut.saturating_sub(prev) < step {
                    *c = None;
                }
            }
        }
        let series: Vec<i64> = {
            let mut stmt = conn.prepare("SELECT id FROM series ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let used = used_bytes(conn)?;
        if self.max_bytes == 0 || used <= self.max_bytes {
            self.at_floor = [None; 3];
        }
        let mut for_size = None;
        if self.max_bytes > 0 && used > self.max_bytes {
            let floor_of = |t: &Tier, least: bool| {
                let keep = if least { t.least_ms } else { t.floor_ms };
                now.saturating_sub(keep).div_euclid(t.unit_ms)
            };
            'stages: for least in [false, true] {
                for (i, t) in TIERS.iter().enumerate() {
                    // Cut to its floor already in this episode over budget: what ages past
                    // it is cut below, with the tier that gives now.
                    if self.at_floor[i] >= Some(least) {
                        continue;
                    }
                    let floor = floor_of(t, least);
                    let oldest = match self.known_oldest[i] {
                        Some(o) => Some(o.max(cutoffs[i].unwrap_or(i64::MIN))),
                        None => oldest(conn, t, &series)?,
                    };
                    let Some(oldest) = oldest else {
                        continue;
                    };
                    let span = now.div_euclid(t.unit_ms) - oldest;
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
                        from_ms(cut.saturating_mul(t.unit_ms)).format("%Y-%m-%d %H:%M UTC"),
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
            series,
            next: 0,
            deleted: [0; 3],
            for_size,
            started: Instant::now(),
        });
        Ok(())
    }

    /// Works on the pass for about `budget` (one transaction).
    pub fn slice(
        &mut self,
        conn: &mut Connection,
        now: i64,
        budget: Duration,
    ) -> rusqlite::Result<()> {
        let Some(pass) = self.pass.as_mut() else {
            return Ok(());
        };
        let t0 = Instant::now();
        let result = (|| {
            let tx = conn.transaction()?;
            while pass.next < pass.series.len() && t0.elapsed() < budget {
                let s = pass.series[pass.next];
                for (i, t) in TIERS.iter().enumerate() {
                    if let Some(c) = pass.cutoffs[i] {
                        pass.deleted[i] +=
                            tx.prepare_cached(&format!(
                                "DELETE FROM {} WHERE series = ?1 AND {} < ?2",
                                t.table, t.column
                            ))?
                            .execute(params![s, c])? as u64;
                    }
                }
                pass.next += 1;
            }
            tx.commit()
        })();
        if let Err(e) = result {
            // Given up until the next one is due; the data stays, nothing is lost.
            self.pass = None;
            return Err(e);
        }
        if pass.next < pass.series.len() {
            return Ok(());
        }
        let pass = self.pass.take().expect("a pass");
        for (i, c) in pass.cutoffs.iter().enumerate() {
            if let Some(c) = *c {
                self.swept[i] = Some(self.swept[i].map_or(c, |k| k.max(c)));
            }
        }
        if let Some(i) = pass.for_size {
            // (Only a cut for size: the ages' cutoffs may lie long before the oldest row.)
            if let Some(c) = pass.cutoffs[i] {
                self.known_oldest[i] = Some(self.known_oldest[i].map_or(c, |k| k.max(c)));
            }
        }
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
pub(crate) fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// The oldest row of a tier: one seek per series on its key (a `min` over the whole table
/// would read all of it).
fn oldest(conn: &Connection, t: &Tier, series: &[i64]) -> rusqlite::Result<Option<i64>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {c} FROM {t} WHERE series = ?1 ORDER BY {c} LIMIT 1",
        c = t.column,
        t = t.table
    ))?;
    let mut min: Option<i64> = None;
    for s in series {
        if let Some(v) = stmt.query_row([s], |r| r.get::<_, i64>(0)).optional()? {
            min = Some(min.map_or(v, |m| m.min(v)));
        }
    }
    Ok(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_780_000_000_000;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::open(dir.path()).unwrap();
        let conn = super::super::connect(&path).unwrap();
        (dir, conn)
    }

    fn fill(conn: &mut Connection, series: i64, table: &str, from: i64, to: i64, step: i64) {
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT OR IGNORE INTO series (id, entity, metric) VALUES (?1, ?1, 'm')",
            [series],
        )
        .unwrap();
        {
            let sql = if table == "observations" {
                "INSERT INTO observations (series, ts, value) VALUES (?1, ?2, 1.5)".to_string()
            } else {
                format!(
                    "INSERT INTO {table} (series, bucket, count, min, max, sum, last, last_ts)
                     VALUES (?1, ?2, 6, 1, 2, 9, 1.5, 0)"
                )
            };
            let mut st = tx.prepare(&sql).unwrap();
            let mut t = from;
            while t < to {
                st.execute(params![series, t]).unwrap();
                t += step;
            }
        }
        tx.commit().unwrap();
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Runs passes (as the writer would after its commits) until none is due.
    fn settle(r: &mut Retention, conn: &mut Connection, now: i64) -> Vec<PassReport> {
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
        let (_dir, mut conn) = db();
        for s in 1..=3 {
            fill(&mut conn, s, "observations", NOW - 40 * DAY, NOW, 3_600_000);
            let m = NOW / 60_000;
            fill(&mut conn, s, "rollup_1m", m - 100 * 1440, m, 60);
            let h = NOW / 3_600_000;
            fill(&mut conn, s, "rollup_1h", h - 6 * 366 * 24, h, 24);
            fill(&mut conn, s, "rollup_1d", 0, 8000, 1);
        }
        let mut r = Retention::new(&StoreConfig::default());
        let reports = settle(&mut r, &mut conn, NOW);
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
        // A late row past the raw age: a sweep five minutes on leaves it (the cutoff moved
        // less than a hundredth of 30 days), one 8 hours on takes it.
        fill(
            &mut conn,
            1,
            "observations",
            NOW - 31 * DAY,
            NOW - 31 * DAY + 1,
            1,
        );
        r.due(&conn, NOW + EVERY_MS).unwrap();
        assert!(r.busy());
        while r.busy() {
            r.slice(&mut conn, NOW + EVERY_MS, Duration::from_millis(50))
                .unwrap();
        }
        assert_eq!(r.last().unwrap().deleted, [0, 0, 0]);
        r.not_before = None;
        let later = NOW + 8 * 3_600_000;
        r.due(&conn, later).unwrap();
        while r.busy() {
            r.slice(&mut conn, later, Duration::from_millis(50))
                .unwrap();
        }
        assert_eq!(r.last().unwrap().deleted[0], 1 + 3 * 8);
    }

    #[test]
    fn over_the_budget_the_oldest_raw_rows_go_first() {
        let (_dir, mut conn) = db();
        // Five days of a reading every 5 s on 8 series: some 20 MB of raw rows.
        for s in 1..=8 {
            fill(&mut conn, s, "observations", NOW - 5 * DAY, NOW, 5_000);
            let m = NOW / 60_000;
            fill(&mut conn, s, "rollup_1m", m - 5 * 1440, m, 1);
        }
        let before = used_bytes(&conn).unwrap();
        let minutes = count(&conn, "SELECT count(*) FROM rollup_1m");
        let cfg = StoreConfig {
            max_size_mb: (before >> 20) / 2,
            ..StoreConfig::default()
        };
        assert!(cfg.max_size_mb >= 2, "a budget to test: {before} bytes");
        let mut r = Retention::new(&cfg);
        let reports = settle(&mut r, &mut conn, NOW);
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
        let (_dir, mut conn) = db();
        for s in 1..=40 {
            fill(&mut conn, s, "observations", NOW - 1_800_000, NOW, 60_000);
            let m = NOW / 60_000;
            fill(&mut conn, s, "rollup_1m", m - 20 * 1440, m, 1);
        }
        let raw = count(&conn, "SELECT count(*) FROM observations");
        let before = used_bytes(&conn).unwrap();
        let cfg = StoreConfig {
            max_size_mb: (before >> 20) / 3,
            ..StoreConfig::default()
        };
        assert!(cfg.max_size_mb >= 1, "a budget to test: {before} bytes");
        let mut r = Retention::new(&cfg);
        let reports = settle(&mut r, &mut conn, NOW);
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
        let (_dir, mut conn) = db();
        for s in 1..=40 {
            fill(&mut conn, s, "observations", NOW - 1_800_000, NOW, 10_000);
            let m = NOW / 60_000;
            fill(&mut conn, s, "rollup_1m", m - 40 * 60, m, 1);
        }
        let before = used_bytes(&conn).unwrap();
        let cfg = StoreConfig {
            max_size_mb: (before >> 20) / 3,
            ..StoreConfig::default()
        };
        assert!(cfg.max_size_mb >= 1, "a budget to test: {before} bytes");
        let mut r = Retention::new(&cfg);
        let reports = settle(&mut r, &mut conn, NOW);
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
        assert!(count(&conn, "SELECT min(ts) FROM observations") >= NOW - 600_000 - 600_000);
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
        let (_dir, mut conn) = db();
        for s in 1..=40 {
            fill(&mut conn, s, "observations", NOW - 7_200_000, NOW, 10_000);
            let m = NOW / 60_000;
            fill(&mut conn, s, "rollup_1m", m - 5 * 1440, m, 1);
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
                r.slice(&mut conn, now, Duration::from_millis(50)).unwrap();
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
        let (_dir, mut conn) = db();
        for s in 1..=40 {
            fill(&mut conn, s, "observations", NOW - 1_800_000, NOW, 10_000);
            let m = NOW / 60_000;
            fill(&mut conn, s, "rollup_1m", m - 40 * 60, m, 1);
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
                r.slice(&mut conn, now, Duration::from_millis(50)).unwrap();
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
