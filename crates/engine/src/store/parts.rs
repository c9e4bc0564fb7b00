//! The tables of readings that retention trims (raw observations, 1-minute and hourly
//! rollups) are keyed by a time *part* first: `(part, series, time)`, a part being an hour
//! of raw rows or of 1-minute rollups and a UTC day of hourly ones.
//!
//! Why: retention deletes the oldest rows. Keyed by series first, the old rows of 300,000
//! series lie on every page of the table, so each pass rewrote nearly all of it (a statement
//! per series per tier, and ingestion fell to a third meanwhile). Keyed by part first, they
//! are the left edge of the B-tree: whole pages go to the free list and are reused, and the
//! pages being written are only the current part's. Reading one series costs one seek per
//! part instead (a day of raw rows is 24), over the parts the table holds.
//!
//! Daily rollups, kept for good, stay keyed by series.

use super::db::{params, Db, Dialect, Result as DbResult, Row};
use std::ops::RangeInclusive;

/// No parts (an empty range).
#[allow(clippy::reversed_empty_ranges)]
const NONE: RangeInclusive<i64> = 1..=0;

/// A table of readings keyed `(part, series, column)`.
pub(crate) struct Table {
    pub name: &'static str,
    /// The time column: `ts` (ms) or `bucket` (minutes or hours since the epoch).
    pub column: &'static str,
    /// Milliseconds per unit of `column`.
    pub unit_ms: i64,
    /// Units of `column` per part.
    pub per_part: i64,
}

/// Raw observations, in parts of an hour.
pub(crate) const RAW: Table = Table {
    name: "observations",
    column: "ts",
    unit_ms: 1,
    per_part: 3_600_000,
};

/// 1-minute rollups, in parts of an hour.
pub(crate) const MINUTES: Table = Table {
    name: "rollup_1m",
    column: "bucket",
    unit_ms: 60_000,
    per_part: 60,
};

/// Hourly rollups, in parts of a (UTC) day.
pub(crate) const HOURS: Table = Table {
    name: "rollup_1h",
    column: "bucket",
    unit_ms: 3_600_000,
    per_part: 24,
};

impl Table {
    /// The part holding `v` (in the table's units).
    pub fn part(&self, v: i64) -> i64 {
        v.div_euclid(self.per_part)
    }

    /// The oldest part the table holds (one seek).
    pub fn oldest(&self, c: &Db) -> DbResult<Option<i64>> {
        c.prepare_cached(&format!("SELECT min(part) FROM {}", self.name))?
            .query_row(params![], |r| r.get(0))
    }

    /// The parts that may hold values in `[from, to)`, within those the table holds (so a
    /// range from the epoch costs no more than the data there is).
    pub fn parts(&self, c: &Db, from: i64, to: i64) -> DbResult<RangeInclusive<i64>> {
        if from >= to {
            return Ok(NONE);
        }
        let (lo, hi): (Option<i64>, Option<i64>) = c
            .prepare_cached(&format!(
                "SELECT (SELECT min(part) FROM {t}), (SELECT max(part) FROM {t})",
                t = self.name
            ))?
            .query_row(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(match (lo, hi) {
            (Some(lo), Some(hi)) => self.part(from).max(lo)..=self.part(to - 1).min(hi),
            _ => NONE,
        })
    }

    /// Up to `limit` rows of one series with `column` in `[from, to)`, oldest first: `cols`
    /// of each, mapped by `f`. One index range per part.
    pub fn rows<T>(
        &self,
        c: &Db,
        cols: &str,
        series: i64,
        (from, to): (i64, i64),
        limit: usize,
        mut f: impl FnMut(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        if c.dialect() == Dialect::Postgres {
            return self.rows_at_once(c, cols, series, (from, to), limit, f);
        }
        let mut out = Vec::new();
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {cols} FROM {t} WHERE part = ?1 AND series = ?2 AND {k} >= ?3 AND {k} < ?4
             ORDER BY {k} LIMIT ?5",
            t = self.name,
            k = self.column
        ))?;
        for p in self.parts(c, from, to)? {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let left = i64::try_from(left).unwrap_or(i64::MAX);
            for r in stmt.query_map(params![p, series, from, to, left], &mut f)? {
                out.push(r?);
            }
        }
        Ok(out)
    }

    /// [`Table::rows`] on PostgreSQL: one statement for all the parts (`part = ANY(…)`, an
    /// index seek per part inside the server), since there each statement is a round trip
    /// to the server. A short range names its parts without asking which the table holds
    /// (partition pruning and the index make an absent part cost nothing); a long one asks.
    fn rows_at_once<T>(
        &self,
        c: &Db,
        cols: &str,
        series: i64,
        (from, to): (i64, i64),
        limit: usize,
        mut f: impl FnMut(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        /// Up to this many parts are named as they are (two days of hours).
        const SHORT: i64 = 48;
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let (first, last) = (self.part(from), self.part(to - 1));
        let parts: Vec<i64> = if last - first < SHORT {
            (first..=last).collect()
        } else {
            self.parts(c, from, to)?.collect()
        };
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {cols} FROM {t} WHERE part = ANY(?1::bigint[]) AND series = ?2
               AND {k} >= ?3 AND {k} < ?4
             ORDER BY part, {k} LIMIT ?5",
            t = self.name,
            k = self.column
        ))?;
        let rows = stmt.query_map(params![parts, series, from, to, limit], &mut f)?;
        rows.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_floor_and_reads_cross_them_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::open(dir.path()).unwrap();
        let conn = super::super::connect(&path).unwrap();
        assert_eq!(RAW.part(-1), -1);
        assert_eq!(RAW.part(3_599_999), 0);
        assert_eq!(MINUTES.part(60), 1);
        assert!(RAW.parts(&conn, 0, 10_000_000).unwrap().is_empty());
        let mut ins = conn
            .prepare("INSERT INTO observations (part, series, ts, value) VALUES (?1, ?2, ?3, ?4)")
            .unwrap();
        // Series 1 and 2, a value every 20 minutes over five hours.
        for s in [1, 2] {
            for k in 0..15 {
                let ts = 1_000_000 + k * 1_200_000;
                ins.execute(params![RAW.part(ts), s, ts, (s * 100 + k) as f64])
                    .unwrap();
            }
        }
        let read = |from, to, limit| {
            RAW.rows(&conn, "ts, value", 2, (from, to), limit, |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
            })
            .unwrap()
        };
        let all = read(0, i64::MAX, usize::MAX);
        assert_eq!(all.len(), 15);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(all.iter().all(|&(_, v)| v >= 200.0));
        // A range inside the data, ends excluded at `to`; and a limit across parts.
        let mid = read(1_000_000 + 1_200_000, 1_000_000 + 6 * 1_200_000, usize::MAX);
        assert_eq!(mid.len(), 5);
        assert_eq!(mid[0].1, 201.0);
        assert_eq!(read(0, i64::MAX, 7).len(), 7);
        assert_eq!(RAW.oldest(&conn).unwrap(), Some(0));
        // The range is clamped to the parts held: from the epoch costs what there is.
        assert_eq!(RAW.parts(&conn, i64::MIN, i64::MAX).unwrap(), 0..=4);
    }
}
