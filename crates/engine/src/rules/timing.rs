//! When a condition has held long enough. Per (rule, entity) it remembers since when the
//! condition holds; the alert is raised once it has held for the rule's `for` duration, and
//! cleared on the first observation where it no longer holds. Times are the observations' own,
//! so a burst of old data replays the same way live data would; a periodic [`Timers::tick`]
//! raises conditions whose `for` ends while no new observation arrives.

use std::collections::HashMap;
use std::sync::Arc;

/// What a timer decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Raise (or re-activate) the alert of `rule` for `entity`.
    Raise {
        rule: usize,
        entity: i64,
        metric: Arc<str>,
        value: f64,
        at: i64,
    },
    /// The condition stopped holding.
    Clear { rule: usize, entity: i64, at: i64 },
}

#[derive(Debug, Clone)]
struct Holding {
    since: i64,
    last: i64,
    last_value: f64,
    metric: Arc<str>,
    firing: bool,
}

/// Condition timers of every (rule, entity) pair whose condition currently holds.
#[derive(Debug, Default)]
pub struct Timers {
    holding: HashMap<(usize, i64), Holding>,
    /// The rules holding per entity: what a threshold rule needs to know when a value no
    /// longer reaches it (it is not visited otherwise).
    by_entity: HashMap<i64, Vec<usize>>,
}

impl Timers {
    /// Marks a pair as already firing, e.g. for an alert still active when the engine restarts,
    /// so that the condition ceasing clears it.
    pub fn resume_firing(&mut self, rule: usize, entity: i64, metric: Arc<str>, since: i64) {
        let old = self.holding.insert(
            (rule, entity),
            Holding {
                since,
                last: since,
                last_value: f64::NAN,
                metric,
                firing: true,
            },
        );
        if old.is_none() {
            self.by_entity.entry(entity).or_default().push(rule);
        }
    }

    /// The rules whose condition holds (or whose alert is raised) for `entity`.
    pub fn held_by(&self, entity: i64) -> &[usize] {
        self.by_entity.get(&entity).map_or(&[], Vec::as_slice)
    }

    fn reindex(&mut self) {
        self.by_entity.clear();
        for &(rule, entity) in self.holding.keys() {
            self.by_entity.entry(entity).or_default().push(rule);
        }
    }

    /// Records one evaluation of `rule` for `entity` on an observation of `metric` at time
    /// `at` (ms).
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        rule: usize,
        for_ms: i64,
        entity: i64,
        metric: &Arc<str>,
        holds: bool,
        value: f64,
        at: i64,
    ) -> Option<Signal> {
        let key = (rule, entity);
        if holds {
            let h = match self.holding.entry(key) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    self.by_entity.entry(entity).or_default().push(rule);
                    v.insert(Holding {
                        since: at,
                        last: at,
                        last_value: value,
                        metric: metric.clone(),
                        firing: false,
                    })
                }
            };
            if at < h.last {
                return None; // late data does not move the timer backwards
            }
            h.last = at;
            h.last_value = value;
            if !Arc::ptr_eq(&h.metric, metric) {
                h.metric = metric.clone();
            }
            if !h.firing && at - h.since >= for_ms {
                h.firing = true;
                return Some(Signal::Raise {
                    rule,
                    entity,
                    metric: metric.clone(),
                    value,
                    at,
                });
            }
            None
        } else {
            match self.holding.get(&key) {
                Some(h) if at < h.last => None,
                Some(h) => {
                    let firing = h.firing;
                    self.holding.remove(&key);
                    if let Some(rules) = self.by_entity.get_mut(&entity) {
                        rules.retain(|&r| r != rule);
                        if rules.is_empty() {
                            self.by_entity.remove(&entity);
                        }
                    }
                    firing.then_some(Signal::Clear { rule, entity, at })
                }
                None => None,
            }
        }
    }

    /// Raises pairs whose `for` has elapsed by `now` without a new observation. A pair whose
    /// last observation is older than `stale_ms` is not assumed to still hold.
    pub fn tick(&mut self, now: i64, for_ms: impl Fn(usize) -> i64, stale_ms: i64) -> Vec<Signal> {
        let mut out = Vec::new();
        for (&(rule, entity), h) in self.holding.iter_mut() {
            if h.firing || now - h.last > stale_ms {
                continue;
            }
            let f = for_ms(rule);
            if now - h.since >= f {
                h.firing = true;
                out.push(Signal::Raise {
                    rule,
                    entity,
                    metric: h.metric.clone(),
                    value: h.last_value,
                    at: h.since + f,
                });
            }
        }
        out.sort_by_key(|s| match s {
            Signal::Raise { rule, entity, .. } | Signal::Clear { rule, entity, .. } => {
                (*rule, *entity)
            }
        });
        out
    }

    /// Forgets everything about a rule (it was removed or changed).
    pub fn forget_rule(&mut self, rule: usize) {
        self.holding.retain(|&(r, _), _| r != rule);
        self.reindex();
    }

    /// Whether the alert of `rule` for `entity` is raised (for hysteresis).
    pub fn is_firing(&self, rule: usize, entity: i64) -> bool {
        self.holding.get(&(rule, entity)).is_some_and(|h| h.firing)
    }

    /// Keeps the timers of rules that still exist, renumbered (after a reload).
    pub fn remap(&mut self, map: impl Fn(usize) -> Option<usize>) {
        let old = std::mem::take(&mut self.holding);
        for ((rule, entity), h) in old {
            if let Some(r) = map(rule) {
                self.holding.insert((r, entity), h);
            }
        }
        self.reindex();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Arc<str> {
        Arc::from("pm25")
    }

    const MIN: i64 = 60_000;

    #[test]
    fn raises_only_after_the_for_duration_and_only_once() {
        let mut t = Timers::default();
        let f = 10 * MIN;
        assert_eq!(t.observe(0, f, 7, &m(), true, 160.0, 0), None);
        assert_eq!(t.observe(0, f, 7, &m(), true, 170.0, 9 * MIN), None);
        assert_eq!(
            t.observe(0, f, 7, &m(), true, 180.0, 10 * MIN),
            Some(Signal::Raise {
                rule: 0,
                entity: 7,
                metric: m(),
                value: 180.0,
                at: 10 * MIN
            })
        );
        for i in 11..30 {
            assert_eq!(
                t.observe(0, f, 7, &m(), true, 190.0, i * MIN),
                None,
                "no double alert"
            );
        }
        assert_eq!(
            t.observe(0, f, 7, &m(), false, 20.0, 31 * MIN),
            Some(Signal::Clear {
                rule: 0,
                entity: 7,
                at: 31 * MIN
            })
        );
        assert_eq!(t.observe(0, f, 7, &m(), false, 20.0, 32 * MIN), None);
    }

    #[test]
    fn a_dip_restarts_the_duration() {
        let mut t = Timers::default();
        let f = 10 * MIN;
        t.observe(0, f, 1, &m(), true, 160.0, 0);
        assert_eq!(
            t.observe(0, f, 1, &m(), false, 100.0, 5 * MIN),
            None,
            "never fired"
        );
        assert_eq!(t.observe(0, f, 1, &m(), true, 160.0, 6 * MIN), None);
        assert_eq!(t.observe(0, f, 1, &m(), true, 160.0, 15 * MIN), None);
        assert!(t.observe(0, f, 1, &m(), true, 160.0, 16 * MIN).is_some());
    }

    #[test]
    fn zero_duration_raises_at_once_and_pairs_are_independent() {
        let mut t = Timers::default();
        assert!(t.observe(0, 0, 1, &m(), true, 1.0, 0).is_some());
        assert!(t.observe(0, 0, 2, &m(), true, 1.0, 0).is_some());
        assert!(t.observe(1, 0, 1, &m(), true, 1.0, 0).is_some());
        assert_eq!(t.observe(0, 0, 1, &m(), true, 1.0, 1), None);
    }

    #[test]
    fn late_data_does_not_clear_or_rewind() {
        let mut t = Timers::default();
        t.observe(0, 0, 1, &m(), true, 1.0, 10 * MIN);
        assert_eq!(t.observe(0, 0, 1, &m(), false, 0.0, 5 * MIN), None);
        assert!(matches!(
            t.observe(0, 0, 1, &m(), false, 0.0, 11 * MIN),
            Some(Signal::Clear { .. })
        ));
    }

    #[test]
    fn tick_raises_when_data_stops_while_holding() {
        let mut t = Timers::default();
        let f = 5 * MIN;
        t.observe(3, f, 1, &m(), true, 0.0, 0);
        assert!(t.tick(4 * MIN, |_| f, 10 * MIN).is_empty());
        let s = t.tick(5 * MIN, |_| f, 10 * MIN);
        assert_eq!(
            s,
            vec![Signal::Raise {
                rule: 3,
                entity: 1,
                metric: m(),
                value: 0.0,
                at: 5 * MIN
            }]
        );
        assert!(t.tick(6 * MIN, |_| f, 10 * MIN).is_empty(), "once");
        // Stale: the last observation is too old to assume the condition still holds.
        let mut t = Timers::default();
        t.observe(3, f, 1, &m(), true, 0.0, 0);
        assert!(t.tick(60 * MIN, |_| f, 10 * MIN).is_empty());
    }

    #[test]
    fn resumed_alerts_clear() {
        let mut t = Timers::default();
        t.resume_firing(2, 9, m(), 0);
        assert_eq!(
            t.observe(2, MIN, 9, &m(), true, 1.0, MIN),
            None,
            "still firing, no new raise"
        );
        assert!(matches!(
            t.observe(2, MIN, 9, &m(), false, 0.0, 2 * MIN),
            Some(Signal::Clear { .. })
        ));
    }
}
