//! KPI periods in the province's time: an hour, a local day (midnight to midnight in the
//! display time zone), an ISO week (Monday to Monday), a calendar month; and the rollup
//! buckets that cover them (hours since the epoch, local days since 1970-01-01).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use ioc_model::Period;

/// The local day (days since 1970-01-01 in `tz`) a time falls on: the `rollup_1d` bucket.
pub fn local_day(ms: i64, tz: Tz) -> i64 {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let d = t.with_timezone(&tz).date_naive();
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date")).num_days()
}

/// Local midnight of a date, in UTC.
pub fn midnight(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let naive = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&naive)
        .earliest()
        // A zone that skips midnight (a DST change at 00:00): the first hour that exists.
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .expect("a local time near midnight exists")
        .with_timezone(&Utc)
}

/// The date of a local day number.
pub fn day_date(day: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date") + Duration::days(day)
}

/// The period of kind `p` that contains `t`: `[from, to)`.
pub fn containing(p: Period, t: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let local = t.with_timezone(&tz);
    match p {
        Period::Hour => {
            let from = t
                .with_minute(0)
                .and_then(|x| x.with_second(0))
                .and_then(|x| x.with_nanosecond(0))
                .expect("a whole hour");
            (from, from + Duration::hours(1))
        }
        Period::Day => {
            let d = local.date_naive();
            (midnight(d, tz), midnight(d + Duration::days(1), tz))
        }
        Period::Week => {
            let d = local.date_naive();
            let monday = d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
            (
                midnight(monday, tz),
                midnight(monday + Duration::days(7), tz),
            )
        }
        Period::Month => {
            let d = local.date_naive();
            let first = d.with_day(1).expect("the first of the month");
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }
            .expect("the first of next month");
            (midnight(first, tz), midnight(next, tz))
        }
    }
}

/// The period of kind `p` that contains local `date` (its start for an hour period).
pub fn of_date(p: Period, date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    containing(p, midnight(date, tz), tz)
}

/// The period before the one starting at `from`.
pub fn previous(p: Period, from: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    containing(p, from - Duration::seconds(1), tz)
}

/// Every period of kind `p` that overlaps `[from, to)`, in order (at most `max`).
pub fn between(
    p: Period,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
    max: usize,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut cur = containing(p, from, tz);
    while cur.0 < to && out.len() < max {
        out.push(cur);
        cur = containing(p, cur.1, tz);
    }
    out
}

/// Whether `[from, to)` is made of whole local days (so daily rollups cover it exactly).
pub fn whole_days(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> bool {
    let is_midnight = |t: DateTime<Utc>| midnight(t.with_timezone(&tz).date_naive(), tz) == t;
    is_midnight(from) && is_midnight(to)
}

/// A period's label as people read it: `26/11/2026`, `tuần 48/2026`, `11/2026`, `26/11 14:00`.
pub fn label(p: Period, from: DateTime<Utc>, tz: Tz) -> String {
    let l = from.with_timezone(&tz);
    match p {
        Period::Hour => l.format("%d/%m/%Y %H:00").to_string(),
        Period::Day => l.format("%d/%m/%Y").to_string(),
        Period::Week => format!("tuần {}/{}", l.iso_week().week(), l.iso_week().year()),
        Period::Month => l.format("%m/%Y").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VN: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn periods_in_the_provinces_time() {
        // 23:30 on 30 Nov in Nghệ An is 16:30 UTC.
        let t = utc("2026-11-30T16:30:00Z");
        assert_eq!(
            containing(Period::Day, t, VN),
            (utc("2026-11-29T17:00:00Z"), utc("2026-11-30T17:00:00Z"))
        );
        assert_eq!(
            containing(Period::Hour, t, VN),
            (utc("2026-11-30T16:00:00Z"), utc("2026-11-30T17:00:00Z"))
        );
        // Monday 30 Nov 2026 starts the week.
        assert_eq!(
            containing(Period::Week, t, VN),
            (utc("2026-11-29T17:00:00Z"), utc("2026-12-06T17:00:00Z"))
        );
        assert_eq!(
            containing(Period::Month, t, VN),
            (utc("2026-10-31T17:00:00Z"), utc("2026-11-30T17:00:00Z"))
        );
        let dec = containing(Period::Month, utc("2026-12-15T00:00:00Z"), VN);
        assert_eq!(dec.1, utc("2026-12-31T17:00:00Z"));
        assert_eq!(
            previous(Period::Month, dec.0, VN).0,
            utc("2026-10-31T17:00:00Z")
        );
        assert_eq!(
            local_day(t.timestamp_millis(), VN),
            local_day(utc("2026-11-29T17:00:00Z").timestamp_millis(), VN)
        );
        assert_eq!(
            day_date(local_day(t.timestamp_millis(), VN)),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
        );
        assert!(whole_days(dec.0, dec.1, VN));
        assert!(!whole_days(t, dec.1, VN));
        let days = between(Period::Day, dec.0, dec.1, VN, 100);
        assert_eq!(days.len(), 31);
        assert_eq!(label(Period::Week, t, VN), "tuần 49/2026");
    }
}
