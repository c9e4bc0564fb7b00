//! Correlation: N alerts of one kind (category) in one unit within a time window become one
//! incident. A rule says so with `incident = { alerts = 3, within = "30m", sop = "…" }`;
//! `alerts = 1` (the default) opens an incident for every alert of the rule. While that
//! incident is open, later alerts of its kind in its unit join it instead.
//!
//! The windows live in memory: after a restart a group starts counting again, which at worst
//! delays an incident by one window, never opens a second one for the same group.

use std::collections::{HashMap, VecDeque};

/// (category, unit).
pub type Key = (String, Option<String>);

#[derive(Debug, Default)]
pub struct Correlator {
    /// Alerts seen per group: (time ms, alert id), oldest first.
    windows: HashMap<Key, VecDeque<(i64, i64)>>,
}

impl Correlator {
    /// Counts an alert; when the group reaches `count` within `within_ms`, returns the ids
    /// of the alerts that make it up (and forgets them).
    pub fn observe(
        &mut self,
        key: Key,
        at_ms: i64,
        alert: i64,
        count: u32,
        within_ms: i64,
    ) -> Option<Vec<i64>> {
        let w = self.windows.entry(key.clone()).or_default();
        while w.front().is_some_and(|(t, _)| *t <= at_ms - within_ms) {
            w.pop_front();
        }
        if !w.iter().any(|(_, id)| *id == alert) {
            w.push_back((at_ms, alert));
        }
        if w.len() >= count.max(1) as usize {
            let ids = w.drain(..).map(|(_, id)| id).collect();
            self.windows.remove(&key);
            Some(ids)
        } else {
            None
        }
    }

    /// Forgets an alert (it joined an incident another way, or was closed).
    pub fn forget(&mut self, alert: i64) {
        self.windows.retain(|_, w| {
            w.retain(|(_, id)| *id != alert);
            !w.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(unit: &str) -> Key {
        ("camera".into(), Some(unit.into()))
    }

    #[test]
    fn three_in_half_an_hour_in_one_unit() {
        let mut c = Correlator::default();
        let min = 60_000;
        assert_eq!(c.observe(key("16681"), 0, 1, 3, 30 * min), None);
        assert_eq!(
            c.observe(key("17935"), min, 2, 3, 30 * min),
            None,
            "another unit"
        );
        assert_eq!(c.observe(key("16681"), 10 * min, 3, 3, 30 * min), None);
        // Alert 1 is out of the window by minute 31.
        assert_eq!(c.observe(key("16681"), 31 * min, 4, 3, 30 * min), None);
        assert_eq!(
            c.observe(key("16681"), 35 * min, 5, 3, 30 * min),
            Some(vec![3, 4, 5])
        );
        assert_eq!(
            c.observe(key("16681"), 36 * min, 6, 3, 30 * min),
            None,
            "counting anew"
        );
        c.forget(6);
        assert_eq!(c.observe(key("16681"), 37 * min, 7, 2, 30 * min), None);
        assert_eq!(
            c.observe(key("16681"), 38 * min, 7, 2, 30 * min),
            None,
            "same alert twice"
        );
        // A rule for which one alert is enough takes the waiting ones of its kind along.
        assert_eq!(
            c.observe(key("16681"), 39 * min, 8, 1, 30 * min),
            Some(vec![7, 8])
        );
    }
}
