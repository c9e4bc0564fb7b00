//! Checking observations against a [`RuleSet`]: the state every rule keeps between
//! observations (`for` timers, no-data clocks, sliding windows) and the one place that decides,
//! per observation, which rules hold. The live pipeline and the backtest both run this, so a
//! backtest fires exactly when the live rule would have.

use super::nodata::NoData;
use super::window::Windows;
use super::{EntityVal, EvalInput, Rule, RuleSet, Signal, Timers};
use chrono::{DateTime, Utc};
use ioc_model::Entity;
use std::sync::Arc;

/// How long a condition is assumed to still hold without a new observation (for the tick).
pub const STALE_MS: i64 = 10 * 60_000;

/// The rules' state between observations.
#[derive(Default)]
pub struct Evaluator {
    pub timers: Timers,
    pub nodata: NoData,
    pub windows: Windows,
}

/// One observation as the rules see it.
pub struct Observed<'a> {
    pub entity_id: i64,
    pub entity: &'a Entity,
    pub cel: &'a EntityVal,
    pub metric: &'a Arc<str>,
    pub value: f64,
    pub time: DateTime<Utc>,
}

impl Evaluator {
    /// A fresh evaluator for `rules`.
    pub fn new(rules: &RuleSet) -> Evaluator {
        Evaluator {
            windows: rules.windows(),
            ..Default::default()
        }
    }

    /// Checks one observation against the rules that can match it; what changes is pushed to
    /// `signals`. A rule whose evaluation fails is reported to `on_error` and counts as not
    /// holding.
    pub fn observe(
        &mut self,
        rules: &RuleSet,
        o: &Observed<'_>,
        signals: &mut Vec<Signal>,
        mut on_error: impl FnMut(&Rule, String),
    ) {
        let ts = o.time.timestamp_millis();
        let eid = o.entity_id;
        self.windows.record(eid, o.metric, ts, o.value);
        for idx in rules.candidates(o.metric, &o.entity.kind) {
            let rule = rules.get(idx);
            // Outside its area or its hours the condition does not hold.
            let in_force = rule.applies_to(o.entity) && rule.active_at(o.time, rules.tz);
            let window = (rule.window_ms > 0)
                .then(|| self.windows.stats(eid, o.metric, ts, rule.window_ms))
                .flatten();
            let input = EvalInput {
                metric: o.metric,
                value: o.value,
                time: o.time,
                entity: o.cel,
                window,
            };
            // Hysteresis: once raised, only the clear condition ends it.
            let hysteresis = rule.has_clear_condition() && self.timers.is_firing(idx, eid);
            let result = match (in_force, hysteresis) {
                (false, _) => Ok(false),
                (true, false) => rules.holds(idx, &input),
                (true, true) => rules.clears(idx, &input).map(|c| !c),
            };
            let holds = result.unwrap_or_else(|e| {
                on_error(rule, e);
                false
            });
            if rule.no_data_ms > 0 {
                if holds {
                    signals.extend(self.nodata.seen(idx, eid, o.metric, ts));
                }
                continue;
            }
            if let Some(s) =
                self.timers
                    .observe(idx, rule.for_ms, eid, o.metric, holds, o.value, ts)
            {
                signals.push(s);
            }
        }
    }

    /// The time-driven checks at `now` (ms): `for` durations that ended without a new
    /// observation, and silences longer than a no-data rule's span.
    pub fn tick(&mut self, rules: &RuleSet, now: i64) -> Vec<Signal> {
        let mut out = self.timers.tick(now, |idx| rules.get(idx).for_ms, STALE_MS);
        out.extend(self.nodata.tick(now, |idx| {
            let r = rules.get(idx);
            (r.no_data_ms > 0).then_some(r.no_data_ms)
        }));
        out
    }

    /// Carries the state over to a reloaded rule set: timers and no-data clocks follow their
    /// rule by name (a rule that is gone loses them), windows keep their values for the
    /// metrics still watched.
    pub fn reload(&mut self, old: &RuleSet, new: &RuleSet) {
        let map = |idx: usize| new.by_name(old.get(idx).name()).map(|(i, _)| i);
        self.timers.remap(map);
        self.nodata.remap(map);
        let fresh = new.windows();
        self.windows.retarget(fresh);
    }
}
