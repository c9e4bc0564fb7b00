//! No-data rules (`no_data = "30m"`): for every (rule, entity) whose observations match the
//! rule's `when`, the time of the last one; silence longer than the rule's span raises the
//! alert (checked on the pipeline's tick), the next matching observation clears it.

use super::timing::Signal;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
struct Last {
    at: i64,
    metric: Arc<str>,
    firing: bool,
}

#[derive(Debug, Default)]
pub struct NoData {
    last: HashMap<(usize, i64), Last>,
}

impl NoData {
    /// A matching observation: remembered; clears the alert if it was raised.
    pub fn seen(&mut self, rule: usize, entity: i64, metric: &Arc<str>, at: i64) -> Option<Signal> {
        let e = self.last.entry((rule, entity)).or_insert_with(|| Last {
            at,
            metric: metric.clone(),
            firing: false,
        });
        e.at = e.at.max(at);
        e.metric = metric.clone();
        if e.firing {
            e.firing = false;
            return Some(Signal::Clear { rule, entity, at });
        }
        None
    }

    /// Marks a pair as raised (its alert was still active when the engine stopped).
    pub fn resume_firing(&mut self, rule: usize, entity: i64, metric: Arc<str>, at: i64) {
        self.last.insert(
            (rule, entity),
            Last {
                at,
                metric,
                firing: true,
            },
        );
    }

    /// Raises every pair silent for longer than its rule's span (`span(rule)`, ms).
    pub fn tick(&mut self, now: i64, span: impl Fn(usize) -> Option<i64>) -> Vec<Signal> {
        let mut out = Vec::new();
        for (&(rule, entity), l) in self.last.iter_mut() {
            let Some(span) = span(rule) else { continue };
            if !l.firing && now - l.at >= span {
                l.firing = true;
                out.push(Signal::Raise {
                    rule,
                    entity,
                    metric: l.metric.clone(),
                    value: ((now - l.at) / 60_000) as f64,
                    at: now,
                });
            }
        }
        out
    }

    /// Keeps only the pairs of rules that still exist, renumbered (after a reload).
    pub fn remap(&mut self, map: impl Fn(usize) -> Option<usize>) {
        let old = std::mem::take(&mut self.last);
        for ((rule, entity), l) in old {
            if let Some(r) = map(rule) {
                self.last.insert((r, entity), l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_raises_and_the_next_value_clears() {
        let mut n = NoData::default();
        let m: Arc<str> = Arc::from("pm25");
        assert_eq!(n.seen(0, 7, &m, 0), None);
        let span = |_| Some(30 * 60_000);
        assert!(n.tick(29 * 60_000, span).is_empty());
        let s = n.tick(31 * 60_000, span);
        assert!(
            matches!(s[..], [Signal::Raise { rule: 0, entity: 7, value, .. }] if value == 31.0)
        );
        assert!(n.tick(40 * 60_000, span).is_empty(), "raised once");
        assert!(matches!(
            n.seen(0, 7, &m, 41 * 60_000),
            Some(Signal::Clear { .. })
        ));
        assert!(n.tick(42 * 60_000, span).is_empty());
    }
}
