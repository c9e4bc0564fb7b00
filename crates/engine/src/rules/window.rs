//! Sliding windows for rules with `window = "…"`: the recent values of each (entity, metric)
//! that such a rule watches, kept as long as the longest window on that metric, and their
//! statistics over any shorter span.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Statistics of the values in a window (the current one included).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStats {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: f64,
    /// Values per minute over the window's span.
    pub rate: f64,
    /// Last value minus the first.
    pub delta: f64,
}

/// (time ms, value), oldest first.
type Recent = VecDeque<(i64, f64)>;

/// Recent values per (entity, metric).
#[derive(Debug, Default)]
pub struct Windows {
    values: HashMap<(i64, Arc<str>), Recent>,
    /// Longest window per metric (`None` key: rules that name no metric).
    longest: HashMap<Option<Arc<str>>, i64>,
}

impl Windows {
    /// Registers that some rule needs `span_ms` of `metric` (`None`: any metric).
    pub fn need(&mut self, metric: Option<&str>, span_ms: i64) {
        let e = self.longest.entry(metric.map(Arc::from)).or_insert(0);
        *e = (*e).max(span_ms);
    }

    fn keep_for(&self, metric: &Arc<str>) -> Option<i64> {
        let a = self.longest.get(&Some(metric.clone())).copied();
        let b = self.longest.get(&None).copied();
        a.max(b)
    }

    /// Records an observation, if any rule watches its metric. Late values are inserted in
    /// time order; a value at a time already held replaces it, as the store keeps one row per
    /// (series, time): a message a broker delivers again is not counted twice.
    pub fn record(&mut self, entity: i64, metric: &Arc<str>, at: i64, value: f64) {
        let Some(keep) = self.keep_for(metric) else {
            return;
        };
        let q = self.values.entry((entity, metric.clone())).or_default();
        let pos = q.partition_point(|&(t, _)| t < at);
        match q.get_mut(pos) {
            Some(same) if same.0 == at => same.1 = value,
            _ => q.insert(pos, (at, value)),
        }
        let newest = q.back().map(|&(t, _)| t).unwrap_or(at);
        while q.front().is_some_and(|&(t, _)| t < newest - keep) {
            q.pop_front();
        }
    }

    /// The statistics of the last `span_ms` up to `at`.
    pub fn stats(
        &self,
        entity: i64,
        metric: &Arc<str>,
        at: i64,
        span_ms: i64,
    ) -> Option<WindowStats> {
        let q = self.values.get(&(entity, metric.clone()))?;
        let mut it = q.iter().filter(|&&(t, _)| t > at - span_ms && t <= at);
        let &(_, first) = it.clone().next()?;
        let (mut sum, mut count, mut min, mut max, mut last) =
            (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, first);
        for &(_, v) in &mut it {
            sum += v;
            count += 1.0;
            min = min.min(v);
            max = max.max(v);
            last = v;
        }
        Some(WindowStats {
            avg: sum / count,
            min,
            max,
            sum,
            count,
            rate: count / (span_ms as f64 / 60_000.0),
            delta: last - first,
        })
    }

    /// Takes the needs of a reloaded rule set (`fresh`, with no values) and keeps the values
    /// of the metrics it still watches.
    pub fn retarget(&mut self, fresh: Windows) {
        self.longest = fresh.longest;
        let values = std::mem::take(&mut self.values);
        for ((entity, metric), q) in values {
            if self.keep_for(&metric).is_some() {
                self.values.insert((entity, metric), q);
            }
        }
    }

    /// How many series are kept.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_delivered_again_counts_once() {
        let mut w = Windows::default();
        let m: Arc<str> = Arc::from("flow");
        w.need(Some("flow"), 10 * 60_000);
        for at in [0, 60_000, 60_000, 120_000, 60_000] {
            w.record(1, &m, at, 2.0);
        }
        let s = w.stats(1, &m, 120_000, 10 * 60_000).unwrap();
        assert_eq!((s.count, s.sum), (3.0, 6.0));
    }

    #[test]
    fn statistics_over_a_span() {
        let mut w = Windows::default();
        let m: Arc<str> = Arc::from("rain_1h");
        let other: Arc<str> = Arc::from("pm25");
        w.need(Some("rain_1h"), 10 * 60_000);
        for (i, v) in [1.0, 2.0, 3.0, 10.0].iter().enumerate() {
            w.record(1, &m, i as i64 * 60_000, *v);
        }
        w.record(1, &other, 0, 99.0);
        assert_eq!(w.len(), 1, "only watched metrics are kept");
        let s = w.stats(1, &m, 3 * 60_000, 10 * 60_000).unwrap();
        assert_eq!(
            (s.count, s.sum, s.min, s.max, s.delta),
            (4.0, 16.0, 1.0, 10.0, 9.0)
        );
        assert_eq!(s.avg, 4.0);
        assert!((s.rate - 0.4).abs() < 1e-9);
        // The last two minutes only.
        let s = w.stats(1, &m, 3 * 60_000, 2 * 60_000).unwrap();
        assert_eq!((s.count, s.avg), (2.0, 6.5));
        // Old values fall out of the longest window.
        w.record(1, &m, 30 * 60_000, 0.0);
        assert_eq!(w.stats(1, &m, 30 * 60_000, 60 * 60_000).unwrap().count, 1.0);
        // A late value lands in order.
        w.record(1, &m, 25 * 60_000, 5.0);
        let s = w.stats(1, &m, 30 * 60_000, 10 * 60_000).unwrap();
        assert_eq!((s.count, s.delta), (2.0, -5.0));
    }
}
