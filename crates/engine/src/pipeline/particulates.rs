//! The NowCast, US AQI and VN_AQI of every hour a station has particulate data for, whatever
//! the size of the message that brought it: one reading at a time from a live sensor, a day
//! newest first from a polled server, a month of history in one import.
//!
//! Each station keeps, per pollutant, an [`HourlyWindow`]: the readings of its recent hours.
//! An hour the window does not know is read from the store before a value is added to it or
//! a NowCast looks at it, so a NowCast never leans on part of an hour, whether the rest was
//! forgotten, written by an earlier import or before a restart. A reading the hour already
//! holds (the same time) counts once, as the store keeps it once. Only hours whose batch is
//! committed are forgotten, so what the store does not have yet is still in memory.
//!
//! When a message is in, the derived values are given for every hour whose 12-hour window it
//! changed, up to the station's newest hour, and for an hour whose reading is missing but
//! where two of the last three hours hold, as AirNow does, after a silence of up to
//! [`LONGEST_GAP`] (after a restart, when memory holds no earlier reading, up to
//! [`LOOKBACK`]).
//! Past hours are stamped at their newest reading (the hour's start when it has none): a
//! value computed again for the same hour and time replaces the one stored. The newest hour
//! is stamped at its newest reading, at most once a minute unless a late value changed it.

use crate::aqi::{self, Pollutant, UsTable};
use std::collections::{BTreeMap, BTreeSet};

const HOUR_MS: i64 = 3_600_000;
/// Hours a NowCast looks at.
const SPAN: i64 = 12;
/// How far back the store is asked for a station's last reading when memory holds none
/// before a new one (after a restart).
const LOOKBACK: i64 = 48;
/// The longest silence after which the hour following the last reading is still given: the
/// hours between are read to be sure none holds a reading.
const LONGEST_GAP: i64 = 31 * 24;
/// Hours kept in memory below the newest hour, and below the end of the last backfill (so
/// that its next piece finds them at hand).
const KEEP: i64 = 24;

/// What the store holds for one hour of one pollutant.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StoredHour {
    /// Its raw readings (time ms, value), oldest first.
    pub readings: Vec<(i64, f64)>,
    /// What its rollup counts beyond them, once raw retention removed them: (sum, count, time
    /// of the newest in ms).
    pub rolled: Option<(f64, u32, i64)>,
}

/// Reads what the store holds of a pollutant in the hours `from..=to` (hours since the
/// epoch); `None` when the store cannot be read (those hours stay unknown).
pub(crate) type Load<'a> = dyn FnMut(Pollutant, i64, i64) -> Option<BTreeMap<i64, StoredHour>> + 'a;

/// One known hour of one pollutant (no readings: none that hour, as far as the store and the
/// messages since know).
#[derive(Clone, Debug, Default, PartialEq)]
struct Hour {
    /// Readings (time ms, value), by time, one per time.
    readings: Vec<(i64, f64)>,
    rolled: Option<(f64, u32, i64)>,
    /// The batch that last changed it: kept in memory until that batch is committed (0: it
    /// came from the store).
    batch: u64,
    /// The store could not be read for it: what it holds is only part of the hour.
    partial: bool,
}

impl Hour {
    fn from_store(s: StoredHour) -> Hour {
        Hour {
            readings: s.readings,
            rolled: s.rolled,
            ..Default::default()
        }
    }

    /// Adds a reading; false when the hour holds one at that time already (the store keeps
    /// the first, so does the window).
    fn add(&mut self, t_ms: i64, value: f64, batch: u64) -> bool {
        match self.readings.binary_search_by_key(&t_ms, |r| r.0) {
            Ok(_) => false,
            Err(at) => {
                self.readings.insert(at, (t_ms, value));
                self.batch = batch;
                true
            }
        }
    }

    fn has_data(&self) -> bool {
        !self.readings.is_empty() || self.rolled.is_some()
    }

    fn average(&self) -> Option<f64> {
        let (sum, count) = self.rolled.map_or((0.0, 0), |(s, c, _)| (s, c));
        let sum = sum + self.readings.iter().map(|r| r.1).sum::<f64>();
        let count = count + self.readings.len() as u32;
        (count > 0).then(|| sum / f64::from(count))
    }

    /// Time of the newest reading.
    fn last_ms(&self) -> Option<i64> {
        let raw = self.readings.last().map(|r| r.0);
        let rolled = self.rolled.map(|r| r.2);
        raw.max(rolled)
    }
}

/// The recent hours of one pollutant at one station; an hour not in it is not known (it may
/// be in the store).
#[derive(Debug, Default, Clone)]
pub(crate) struct HourlyWindow {
    hours: BTreeMap<i64, Hour>,
    /// Hours (first, last) forgotten while known to hold no reading: still known. A station
    /// whose readings all lie in the last day (a new one, or back after two days) looks back
    /// [`LOOKBACK`] hours for the reading before each new one, further than the window keeps;
    /// without this it read those empty hours from the store again at every message. No hour
    /// in `hours` is in it: an hour that gets an entry (a late reading) is cut out of it, so
    /// once forgotten it is read from the store again.
    empty: Option<(i64, i64)>,
}

impl HourlyWindow {
    fn known(&self, h: i64) -> bool {
        match self.hours.get(&h) {
            Some(x) => !x.partial,
            None => self.in_empty(h),
        }
    }

    /// Whether `h` is one of the forgotten hours known to be empty.
    fn in_empty(&self, h: i64) -> bool {
        self.empty.is_some_and(|(a, b)| a <= h && h <= b)
    }

    /// Takes `h` out of the forgotten empty hours (it is getting an entry): what is left is
    /// the longer side of it.
    fn cut(&mut self, h: i64) {
        if let Some((a, b)) = self.empty.filter(|_| self.in_empty(h)) {
            let (below, above) = ((a, h - 1), (h + 1, b));
            let longer = if h - a >= b - h { below } else { above };
            self.empty = (longer.0 <= longer.1).then_some(longer);
        }
    }

    /// The first and last hour of `from..=to` not known, if any.
    fn unknown(&self, from: i64, to: i64) -> Option<(i64, i64)> {
        let first = (from..=to).find(|h| !self.known(*h))?;
        let last = (first..=to)
            .rev()
            .find(|h| !self.known(*h))
            .unwrap_or(first);
        Some((first, last))
    }

    /// Learns what the store holds for `from..=to`. An hour known already is newer than the
    /// store and stays; one known only in part gets the stored readings it lacked.
    fn learn(&mut self, from: i64, to: i64, mut stored: BTreeMap<i64, StoredHour>) {
        for h in from..=to {
            let s = stored.remove(&h).unwrap_or_default();
            match self.hours.get_mut(&h) {
                None => {
                    self.hours.insert(h, Hour::from_store(s));
                    self.cut(h);
                }
                Some(x) if x.partial => {
                    // At a time both hold, the store's value stands: it kept the first.
                    for (t, v) in s.readings {
                        match x.readings.binary_search_by_key(&t, |r| r.0) {
                            Ok(k) => x.readings[k].1 = v,
                            Err(k) => x.readings.insert(k, (t, v)),
                        }
                    }
                    x.rolled = x.rolled.or(s.rolled);
                    x.partial = false;
                }
                Some(_) => {}
            }
        }
    }

    fn average(&self, hour: i64) -> Option<f64> {
        self.hours.get(&hour)?.average()
    }

    /// Time of the newest reading of an hour.
    fn reading_time(&self, hour: i64) -> Option<i64> {
        self.hours.get(&hour)?.last_ms()
    }

    /// The newest hour with a reading, at or before `hour`.
    fn newest_reading_upto(&self, hour: i64) -> Option<i64> {
        self.hours
            .range(..=hour)
            .rev()
            .find(|(_, x)| x.has_data())
            .map(|(h, _)| *h)
    }

    fn newest_reading(&self) -> Option<i64> {
        self.newest_reading_upto(i64::MAX)
    }

    /// NowCast of the twelve hours ending with `hour`; none while one of them is unknown.
    fn nowcast_at(&self, hour: i64, p: Pollutant) -> Option<f64> {
        if self.unknown(hour - SPAN + 1, hour).is_some() {
            return None;
        }
        let hours: Vec<Option<f64>> = (0..SPAN).map(|i| self.average(hour - i)).collect();
        aqi::nowcast(&hours, p)
    }

    /// Forgets the hours `keep` does not want, except those changed by a batch after
    /// `committed` (the store does not have them yet).
    fn forget(&mut self, keep: impl Fn(i64) -> bool, committed: u64) {
        let stays = |h: i64, x: &Hour| keep(h) || x.batch > committed;
        // The highest of the hours that go, down to the first that held something (or was
        // known only in part, or is not next to the one above): known to be empty.
        let mut stretch: Option<(i64, i64)> = None;
        for (&h, x) in self.hours.iter().rev().filter(|(h, x)| !stays(**h, x)) {
            if x.partial || x.has_data() || stretch.is_some_and(|(lo, _)| lo != h + 1) {
                break;
            }
            stretch = Some((h, stretch.map_or(h, |(_, hi)| hi)));
        }
        if let Some((lo, hi)) = stretch {
            self.empty = match self.empty {
                Some((a, b)) if a <= hi + 1 && lo <= b + 1 => Some((a.min(lo), b.max(hi))),
                _ => Some((lo, hi)),
            };
        }
        self.hours.retain(|&h, x| stays(h, x));
    }
}

/// One derived value: (time ms, metric, value).
pub(crate) type Derived = (i64, &'static str, f64);

/// A station's particulate windows and what the message being handled changed.
#[derive(Debug)]
pub(crate) struct Particulates {
    windows: [HourlyWindow; 2],
    /// Minute the newest hour's values were last given, per pollutant.
    last_minute: [i64; 2],
    /// The message being handled, per pollutant: the hours it brought new readings for, and
    /// whether one came older than the newest reading.
    touched: [BTreeSet<i64>; 2],
    late: [bool; 2],
    /// The newest hour of the last backfill that ended below the newest hours.
    tail: [Option<i64>; 2],
}

impl Default for Particulates {
    fn default() -> Self {
        Particulates {
            windows: Default::default(),
            last_minute: [i64::MIN; 2],
            touched: Default::default(),
            late: [false; 2],
            tail: [None; 2],
        }
    }
}

fn slot(p: Pollutant) -> usize {
    match p {
        Pollutant::Pm25 => 0,
        Pollutant::Pm10 => 1,
    }
}

const POLLUTANTS: [Pollutant; 2] = [Pollutant::Pm25, Pollutant::Pm10];

impl Particulates {
    /// Makes sure the window of `p` knows `from..=to` (as far as the store can be read).
    fn know(&mut self, p: Pollutant, from: i64, to: i64, load: &mut Load<'_>) {
        let w = &mut self.windows[slot(p)];
        if let Some((first, last)) = w.unknown(from, to) {
            if let Some(stored) = load(p, first, last) {
                w.learn(first, last, stored);
            }
        }
    }

    /// Whether nothing of this station changed in the message being handled.
    pub(crate) fn unchanged(&self) -> bool {
        self.touched.iter().all(BTreeSet::is_empty)
    }

    /// Adds a reading of `p` at `t_ms` in batch `batch`.
    pub(crate) fn push(
        &mut self,
        p: Pollutant,
        t_ms: i64,
        value: f64,
        batch: u64,
        load: &mut Load<'_>,
    ) {
        let i = slot(p);
        let h = t_ms.div_euclid(HOUR_MS);
        self.know(p, h - SPAN, h + SPAN, load);
        let w = &mut self.windows[i];
        let newest_ms = w.newest_reading().and_then(|n| w.reading_time(n));
        // Not known: the store could not be read, so this is only part of the hour (unless
        // it is one of the forgotten hours known to be empty).
        let known_empty = w.in_empty(h);
        w.cut(h);
        let hour = w.hours.entry(h).or_insert_with(|| Hour {
            partial: !known_empty,
            ..Default::default()
        });
        if hour.add(t_ms, value, batch) {
            self.late[i] |= newest_ms.is_some_and(|n| t_ms < n);
            self.touched[i].insert(h);
        }
    }

    /// The hour after the station's last reading before hour `t`, when that hour has none
    /// (the reading in `t` shows it is not merely late), within [`LONGEST_GAP`].
    fn missing_before(&mut self, p: Pollutant, t: i64, load: &mut Load<'_>) -> Option<i64> {
        let i = slot(p);
        if self.windows[i].newest_reading_upto(t - 1).is_none() {
            self.know(p, t - LOOKBACK, t - 1, load);
        }
        let b = self.windows[i].newest_reading_upto(t - 1)?;
        if b + 1 >= t || t - b > LONGEST_GAP {
            return None;
        }
        // A stored reading between them would be the last one before `t`.
        self.know(p, b + 1, t - 1, load);
        let w = &self.windows[i];
        let b = w.newest_reading_upto(t - 1)?;
        (b + 1 < t && w.known(b + 1)).then_some(b + 1)
    }

    /// The derived values of the hours the message changed (see the module's comment);
    /// `committed`: the newest batch the store has.
    pub(crate) fn derive(&mut self, committed: u64, load: &mut Load<'_>) -> Vec<Derived> {
        let mut out = Vec::new();
        let mut lasts = [None; 2];
        for p in POLLUTANTS {
            let i = slot(p);
            let touched = std::mem::take(&mut self.touched[i]);
            let late = std::mem::take(&mut self.late[i]);
            let (Some(newest), Some(&last)) = (self.windows[i].newest_reading(), touched.last())
            else {
                continue;
            };
            lasts[i] = Some(last);
            // Every hour whose twelve the message changed, up to the newest; and the hour
            // after the readings before one of its own, if that one has none.
            let mut hours = BTreeSet::new();
            for &t in &touched {
                hours.extend(t..=(t + SPAN - 1).min(newest));
                if let Some(m) = self.missing_before(p, t, load) {
                    hours.insert(m);
                }
            }
            let other = match p {
                Pollutant::Pm25 => Pollutant::Pm10,
                Pollutant::Pm10 => Pollutant::Pm25,
            };
            for h in hours {
                self.know(p, h - SPAN + 1, h, load);
                self.know(other, h - SPAN - 1, h, load);
                let w = &self.windows[i];
                let reading = w.reading_time(h);
                // An hour without a reading is known to have none only once a later one
                // came in this message: the hour after it may still be on its way.
                if reading.is_none() && h > last {
                    continue;
                }
                let Some(nc) = w.nowcast_at(h, p) else {
                    continue;
                };
                let time = match reading {
                    Some(ts) if h == newest => {
                        let minute = ts.div_euclid(60_000);
                        if minute <= self.last_minute[i] && !late {
                            continue;
                        }
                        self.last_minute[i] = self.last_minute[i].max(minute);
                        ts
                    }
                    Some(ts) => ts,
                    None => h * HOUR_MS,
                };
                match p {
                    Pollutant::Pm25 => {
                        out.push((time, "pm25_nowcast", nc));
                        // Beyond the index: the top of the scale, never the last lower value.
                        if let Some(a) = aqi::aqi_us(nc, p, UsTable::Epa2024) {
                            out.push((time, "aqi_us", f64::from(a.value)));
                        }
                    }
                    Pollutant::Pm10 => out.push((time, "pm10_nowcast", nc)),
                }
                // VN_AQI is the worse of the two particulates' indices that hour.
                let vn = [Some((p, nc)), self.companion(other, h)]
                    .into_iter()
                    .flatten()
                    .filter_map(|(p, c)| aqi::vn_aqi(c, p))
                    .max();
                if let Some(vn) = vn {
                    out.push((time, "vn_aqi", f64::from(vn)));
                }
            }
        }
        // Both, even one the message did not bring: the other's hours were read for VN_AQI.
        for p in POLLUTANTS {
            self.settle(p, lasts[slot(p)], committed);
        }
        out
    }

    /// The other pollutant's NowCast for hour `h`: of that hour when it has a reading there,
    /// else its latest of up to two hours before (a sensor a little behind the other).
    fn companion(&self, p: Pollutant, h: i64) -> Option<(Pollutant, f64)> {
        let w = &self.windows[slot(p)];
        let n = (h - 2..=h).rev().find(|n| w.reading_time(*n).is_some())?;
        w.nowcast_at(n, p).map(|c| (p, c))
    }

    /// Ends the message for `p` (`last`: the newest hour it brought, if any): forgets what
    /// no NowCast will need soon.
    ///
    /// What is kept is measured from the newest hour the window knows (a live station's
    /// newest reading and the hours ahead read with it), not from its newest reading: a
    /// sensor silent for days while its companion reports must not keep every hour since.
    fn settle(&mut self, p: Pollutant, last: Option<i64>, committed: u64) {
        let i = slot(p);
        let w = &mut self.windows[i];
        let Some(&top) = w.hours.keys().next_back() else {
            return;
        };
        if let (Some(last), Some(newest)) = (last, w.newest_reading()) {
            if last <= newest - KEEP {
                self.tail[i] = Some(last);
            }
        }
        let tail = self.tail[i];
        w.forget(
            |h| h > top - SPAN - KEEP || tail.is_some_and(|t| h <= t && h > t - KEEP),
            committed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;

    fn no_store() -> impl FnMut(Pollutant, i64, i64) -> Option<BTreeMap<i64, StoredHour>> {
        |_, _, _| Some(BTreeMap::new())
    }

    /// A store holding hours 0–12 at 30 µg/m³ (one reading each, at the hour) that cannot be
    /// read while `fail` is set.
    fn flaky_store(
        fail: &std::cell::Cell<bool>,
    ) -> impl FnMut(Pollutant, i64, i64) -> Option<BTreeMap<i64, StoredHour>> + '_ {
        move |_, from, to| {
            if fail.get() {
                return None;
            }
            let hour = |h| {
                let readings = vec![(h * H, 30.0)];
                (
                    h,
                    StoredHour {
                        readings,
                        rolled: None,
                    },
                )
            };
            Some((from.max(0)..=to.min(12)).map(hour).collect())
        }
    }

    fn at(out: &[Derived], metric: &str) -> Vec<(i64, f64)> {
        out.iter()
            .filter(|d| d.1 == metric)
            .map(|d| (d.0 / H, d.2))
            .collect()
    }

    #[test]
    fn every_hour_of_a_message_gets_its_nowcast_and_a_missing_hour_where_two_of_three_hold() {
        let mut pm = Particulates::default();
        let mut load = no_store();
        // Hours 0–9 at 10, hour 10 missing, 11–12 at 40; all in one message, newest first.
        for h in (0..13).rev().filter(|h| *h != 10) {
            let v = if h < 10 { 10.0 } else { 40.0 };
            pm.push(Pollutant::Pm25, h * H, v, 1, &mut load);
        }
        let out = pm.derive(0, &mut load);
        let nc = at(&out, "pm25_nowcast");
        let hours: Vec<i64> = nc.iter().map(|(h, _)| *h).collect();
        // Hour 0 alone is not enough; hour 10 has no reading but hours 9 and 8 do.
        assert_eq!(hours, (1..13).collect::<Vec<_>>());
        assert_eq!(nc[9], (10, 10.0));
        assert_eq!(at(&out, "aqi_us").len(), 12);
        assert_eq!(at(&out, "vn_aqi").len(), 12);
        // Hour 11: 40 after a missing hour and 10s: w = 0.25 → 0.5.
        let mut window = vec![Some(40.0), None];
        window.extend([Some(10.0); 10]);
        let expected = aqi::nowcast(&window, Pollutant::Pm25);
        assert_eq!(Some(nc[10].1), expected);
    }

    #[test]
    fn a_live_station_gives_the_newest_hour_once_a_minute_and_the_hour_it_skipped() {
        let mut pm = Particulates::default();
        let mut load = no_store();
        let mut give = |pm: &mut Particulates, t: i64, v: f64, batch: u64| {
            pm.push(Pollutant::Pm25, t, v, batch, &mut load);
            pm.derive(batch - 1, &mut load)
        };
        assert!(
            give(&mut pm, 0, 10.0, 1).is_empty(),
            "one hour is not enough"
        );
        let out = give(&mut pm, H, 10.0, 2);
        assert_eq!(at(&out, "pm25_nowcast"), vec![(1, 10.0)]);
        assert!(
            give(&mut pm, H + 1_000, 10.0, 3).is_empty(),
            "the same minute"
        );
        assert_eq!(give(&mut pm, H + 60_000, 10.0, 4).len(), 3);
        // Hour 2 never comes; hour 3 does: hour 2 is given (two of three hold), then 3.
        let out = give(&mut pm, 3 * H, 20.0, 5);
        assert_eq!(
            at(&out, "pm25_nowcast")
                .iter()
                .map(|x| x.0)
                .collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn hours_it_does_not_know_are_read_from_the_store_and_forgotten_once_committed() {
        let mut pm = Particulates::default();
        let asked = std::cell::RefCell::new(Vec::new());
        // The store has hours 0–11 at 30 (two readings each, the newest at :30).
        let mut load = |_: Pollutant, from: i64, to: i64| {
            asked.borrow_mut().push((from, to));
            Some(
                (from.max(0)..=to.min(11))
                    .map(|h| {
                        let readings = vec![(h * H + H / 4, 30.0), (h * H + H / 2, 30.0)];
                        let rolled = None;
                        (h, StoredHour { readings, rolled })
                    })
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        pm.push(Pollutant::Pm25, 12 * H, 30.0, 7, &mut load);
        let out = pm.derive(6, &mut load);
        assert_eq!(at(&out, "pm25_nowcast"), vec![(12, 30.0)]);
        assert_eq!(
            asked.borrow()[0],
            (0, 24),
            "the hour and its neighbours, once"
        );
        // Batch 7 not committed: hour 12 stays even when far behind.
        for (b, h) in (8..).zip(40..70) {
            pm.push(Pollutant::Pm25, h * H, 30.0, b, &mut load);
            pm.derive(6, &mut load);
        }
        assert!(pm.windows[0].hours.contains_key(&12));
        pm.push(Pollutant::Pm25, 70 * H, 30.0, 100, &mut load);
        pm.derive(99, &mut load);
        assert!(
            !pm.windows[0].hours.contains_key(&12),
            "committed: forgotten"
        );
        // The last day, and the hours ahead learnt empty.
        assert!(pm.windows[0].hours.len() <= (KEEP + SPAN + 1) as usize);
    }

    #[test]
    fn a_backfill_in_pieces_keeps_its_end_for_the_next_piece() {
        // Nothing in the store: the second piece can only use what the first left in memory.
        let mut load = no_store();
        let mut pm = Particulates::default();
        // A live station far ahead of the history that comes in two pieces.
        pm.push(Pollutant::Pm25, 1000 * H, 5.0, 1, &mut load);
        pm.derive(1, &mut load);
        // Hour 50 has no reading: given once the second piece shows it is missing, not
        // after the first, where it could have been the next piece's first hour.
        let mut pieces = Vec::new();
        for (batch, hours) in [(2, 0..50), (3, 51..100)] {
            for h in hours {
                pm.push(Pollutant::Pm25, h * H, h as f64, batch, &mut load);
            }
            // Committed at once: nothing is held back for that.
            pieces.extend(pm.derive(batch, &mut load));
        }
        let mut whole = Particulates::default();
        for h in (0..100).filter(|h| *h != 50) {
            whole.push(Pollutant::Pm25, h * H, h as f64, 1, &mut load);
        }
        let whole = whole.derive(1, &mut load);
        assert_eq!(at(&whole, "pm25_nowcast").len(), 99);
        assert_eq!(at(&pieces, "pm25_nowcast"), at(&whole, "pm25_nowcast"));
    }
    #[test]
    fn a_reading_sent_twice_counts_once_here_as_in_the_store() {
        let mut load = no_store();
        let mut once = Particulates::default();
        let mut twice = Particulates::default();
        for (h, v) in [(0, 10.0), (1, 10.0), (2, 50.0)] {
            once.push(Pollutant::Pm25, h * H, v, 1, &mut load);
            twice.push(Pollutant::Pm25, h * H, v, 1, &mut load);
        }
        for pm in [&mut once, &mut twice] {
            pm.push(Pollutant::Pm25, 2 * H + H / 2, 10.0, 1, &mut load);
        }
        // Hour 2's first reading again (a resend: the same time).
        twice.push(Pollutant::Pm25, 2 * H, 50.0, 1, &mut load);
        let once = at(&once.derive(0, &mut load), "pm25_nowcast");
        assert_eq!(at(&twice.derive(0, &mut load), "pm25_nowcast"), once);
        assert!(!once.is_empty());
    }

    #[test]
    fn the_hour_after_a_long_silence_is_given_however_long() {
        let mut load = no_store();
        let mut pm = Particulates::default();
        // Hours 0–11, then nothing for 146 hours (the AirNow Hanoi file, June 2016).
        for h in 0..12 {
            pm.push(Pollutant::Pm25, h * H, 20.0, 1, &mut load);
        }
        pm.derive(1, &mut load);
        pm.push(Pollutant::Pm25, 158 * H, 20.0, 2, &mut load);
        let hours: Vec<i64> = at(&pm.derive(2, &mut load), "pm25_nowcast")
            .iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(
            hours,
            vec![12],
            "hour 12 (two of three hold); 158 alone is not enough"
        );
    }

    #[test]
    fn an_hour_the_store_could_not_give_gets_no_value_until_it_can() {
        let fail = std::cell::Cell::new(true);
        let mut load = flaky_store(&fail);
        let mut pm = Particulates::default();
        pm.push(Pollutant::Pm25, 12 * H + 1_000, 90.0, 1, &mut load);
        assert!(
            pm.derive(0, &mut load).is_empty(),
            "not from part of the data"
        );
        fail.set(false);
        pm.push(Pollutant::Pm25, 12 * H + 60_000, 90.0, 2, &mut load);
        // Hour 12 holds the stored reading and both new ones.
        let mut window = vec![Some(70.0)];
        window.extend([Some(30.0); 11]);
        let expected = aqi::nowcast(&window, Pollutant::Pm25).unwrap();
        assert_eq!(
            at(&pm.derive(1, &mut load), "pm25_nowcast"),
            vec![(12, expected)]
        );
    }

    #[test]
    fn a_new_station_asks_the_store_for_its_past_once_not_at_every_reading() {
        let asked = std::cell::Cell::new(0);
        let mut load = |_: Pollutant, _: i64, _: i64| {
            asked.set(asked.get() + 1);
            Some(BTreeMap::new())
        };
        let mut pm = Particulates::default();
        let t0 = 1_000 * H;
        for (b, m) in (1..).zip(0..600) {
            let t = t0 + m * 60_000;
            pm.push(Pollutant::Pm25, t, 20.0, b, &mut load);
            pm.push(Pollutant::Pm10, t, 30.0, b, &mut load);
            pm.derive(b - 1, &mut load);
        }
        // Ten hours of readings: the first message, and the hours each new hour brings
        // into view; not 600 times the day before it (which holds nothing).
        let n = asked.get();
        assert!(n > 0 && n < 60, "{n} reads of the store");
        // What it knows of that empty day is still right: a late reading there counts.
        pm.push(Pollutant::Pm25, t0 - 5 * H, 80.0, 700, &mut load);
        pm.derive(699, &mut load);
        assert_eq!(pm.windows[0].average(t0 / H - 5), Some(80.0));
        assert!(pm.windows[0].known(t0 / H - 6));
        // Once committed and forgotten, that hour is not taken for empty: it is read again.
        for (b, m) in (701..).zip(600..1200) {
            pm.push(Pollutant::Pm25, t0 + m * 60_000, 20.0, b, &mut load);
            pm.derive(b, &mut load);
        }
        let w = &pm.windows[0];
        assert!(!w.hours.contains_key(&(t0 / H - 5)), "forgotten");
        assert!(!w.known(t0 / H - 5), "{:?}", w.empty);
    }

    #[test]
    fn a_late_reading_in_an_hour_known_empty_is_not_forgotten_as_empty() {
        let mut pm = Particulates::default();
        pm.windows[0].empty = Some((0, 100));
        let mut load = |_: Pollutant, from: i64, to: i64| -> Option<BTreeMap<i64, StoredHour>> {
            panic!("hours {from}..={to} are known")
        };
        pm.push(Pollutant::Pm25, 50 * H + 60_000, 42.0, 1, &mut load);
        let w = &mut pm.windows[0];
        assert_eq!(w.average(50), Some(42.0));
        assert!(w.known(50), "known: empty but for this reading");
        assert_eq!(w.empty, Some((0, 49)), "the longer side stays");
        // Forgotten once committed: then it is read from the store, not taken for empty.
        w.hours.remove(&50);
        assert!(!w.known(50));
        assert!(w.known(49) && !w.known(51));
    }

    #[test]
    fn a_station_without_pm10_keeps_no_pm10_hours() {
        let mut load = no_store();
        let mut pm = Particulates::default();
        for h in 0..500 {
            pm.push(Pollutant::Pm25, h * H, 20.0, h as u64 + 1, &mut load);
            pm.derive(h as u64 + 1, &mut load);
        }
        assert!(pm.windows[1].hours.len() <= (KEEP + SPAN + 1) as usize);
        assert!(pm.windows[0].hours.len() <= (KEEP + SPAN + 1) as usize);
    }

    #[test]
    fn a_silent_pm10_sensor_keeps_no_more_than_a_day_and_a_half() {
        let mut load = no_store();
        let mut pm = Particulates::default();
        for h in 0..6 {
            pm.push(Pollutant::Pm10, h * H, 40.0, 1, &mut load);
        }
        pm.derive(1, &mut load);
        // PM10 falls silent for three weeks; PM2.5 goes on.
        for h in 6..500 {
            pm.push(Pollutant::Pm25, h * H, 20.0, h as u64, &mut load);
            pm.derive(h as u64, &mut load);
        }
        let n = pm.windows[1].hours.len();
        assert!(n <= (KEEP + SPAN + 1) as usize, "{n} PM10 hours kept");
    }

    #[test]
    fn where_the_store_and_a_resend_disagree_the_store_stands() {
        let fail = std::cell::Cell::new(true);
        let mut load = flaky_store(&fail);
        let mut pm = Particulates::default();
        // The store kept (12:00, 30); a resend of 12:00 with another value comes while it
        // cannot be read.
        pm.push(Pollutant::Pm25, 12 * H, 90.0, 1, &mut load);
        pm.derive(0, &mut load);
        fail.set(false);
        pm.push(Pollutant::Pm25, 12 * H + 60_000, 30.0, 2, &mut load);
        assert_eq!(
            at(&pm.derive(1, &mut load), "pm25_nowcast"),
            vec![(12, 30.0)]
        );
    }
}
