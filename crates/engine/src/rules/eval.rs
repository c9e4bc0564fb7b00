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
    ///
    /// Per group of candidates: the rules decided one by one are checked; of the plain
    /// thresholds only those the value reaches are visited (a binary search finds them), and
    /// afterwards those that held for this entity and are no longer reached; a threshold that
    /// neither holds nor held has nothing to do.
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
        // CEL calls NaN incomparable: every rule goes through it then, to report that.
        let comparable = !o.value.is_nan();
        for group in rules.groups(o.metric, &o.entity.kind) {
            for &idx in group.each() {
                self.check(rules, idx, o, signals, &mut on_error);
            }
            if !comparable {
                for idx in group.thresholds() {
                    self.check(rules, idx, o, signals, &mut on_error);
                }
                continue;
            }
            for idx in group.reached(o.value) {
                let r = rules.get(idx);
                signals.extend(
                    self.timers
                        .observe(idx, r.for_ms, eid, o.metric, true, o.value, ts),
                );
            }
        }
        if comparable && !self.timers.held_by(eid).is_empty() {
            let left: Vec<usize> = self
                .timers
                .held_by(eid)
                .iter()
                .copied()
                .filter(|&idx| {
                    let r = rules.get(idx);
                    r.threshold_reached(o.value) == Some(false)
                        && r.is_candidate(o.metric, &o.entity.kind)
                })
                .collect();
            for idx in left {
                let r = rules.get(idx);
                signals.extend(
                    self.timers
                        .observe(idx, r.for_ms, eid, o.metric, false, o.value, ts),
                );
            }
        }
    }

    /// One rule on one observation, through its plan (and CEL where that leaves something).
    fn check(
        &mut self,
        rules: &RuleSet,
        idx: usize,
        o: &Observed<'_>,
        signals: &mut Vec<Signal>,
        on_error: &mut impl FnMut(&Rule, String),
    ) {
        let ts = o.time.timestamp_millis();
        let eid = o.entity_id;
        let rule = rules.get(idx);
        // Outside its area or its hours the condition does not hold.
        let in_force = rule.applies_to(o.entity) && rule.active_at(o.time, rules.tz);
        let result = if in_force {
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
            if rule.has_clear_condition() && self.timers.is_firing(idx, eid) {
                rules.decide_clear(idx, &input).map(|c| !c)
            } else {
                rules.decide(idx, &input)
            }
        } else {
            Ok(false)
        };
        let holds = result.unwrap_or_else(|e| {
            on_error(rule, e);
            false
        });
        if rule.no_data_ms > 0 {
            if holds {
                signals.extend(self.nodata.seen(idx, eid, o.metric, ts));
            }
            return;
        }
        signals.extend(
            self.timers
                .observe(idx, rule.for_ms, eid, o.metric, holds, o.value, ts),
        );
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

#[cfg(test)]
mod tests {
    use super::super::{entity_value, RuleConfig};
    use super::*;
    use ioc_model::{Domain, Severity};
    use proptest::prelude::*;

    /// Today's evaluator before plans and tables: every candidate through CEL. The reference
    /// the fast path must agree with.
    fn reference(ev: &mut Evaluator, rules: &RuleSet, o: &Observed<'_>, signals: &mut Vec<Signal>) {
        let ts = o.time.timestamp_millis();
        let eid = o.entity_id;
        ev.windows.record(eid, o.metric, ts, o.value);
        for idx in rules.candidates(o.metric, &o.entity.kind) {
            let rule = rules.get(idx);
            let in_force = rule.applies_to(o.entity) && rule.active_at(o.time, rules.tz);
            let window = (rule.window_ms > 0)
                .then(|| ev.windows.stats(eid, o.metric, ts, rule.window_ms))
                .flatten();
            let input = EvalInput {
                metric: o.metric,
                value: o.value,
                time: o.time,
                entity: o.cel,
                window,
            };
            let hysteresis = rule.has_clear_condition() && ev.timers.is_firing(idx, eid);
            let holds = match (in_force, hysteresis) {
                (false, _) => Ok(false),
                (true, false) => rules.holds(idx, &input),
                (true, true) => rules.clears(idx, &input).map(|c| !c),
            }
            .unwrap_or(false);
            if rule.no_data_ms > 0 {
                if holds {
                    signals.extend(ev.nodata.seen(idx, eid, o.metric, ts));
                }
                continue;
            }
            signals.extend(
                ev.timers
                    .observe(idx, rule.for_ms, eid, o.metric, holds, o.value, ts),
            );
        }
    }

    fn key(s: &Signal) -> (usize, i64, i64, bool) {
        match s {
            Signal::Raise {
                rule, entity, at, ..
            } => (*rule, *entity, *at, true),
            Signal::Clear { rule, entity, at } => (*rule, *entity, *at, false),
        }
    }

    /// Signals in a comparable form (a NaN value equals itself), sorted.
    fn norm(mut v: Vec<Signal>) -> Vec<(usize, i64, i64, bool, String, u64)> {
        v.sort_by_key(key);
        v.iter()
            .map(|s| {
                let (rule, entity, at, raise) = key(s);
                match s {
                    Signal::Raise { metric, value, .. } => {
                        (rule, entity, at, raise, metric.to_string(), value.to_bits())
                    }
                    Signal::Clear { .. } => (rule, entity, at, raise, String::new(), 0),
                }
            })
            .collect()
    }

    const ATOMS: &[&str] = &[
        "metric == 'm0'",
        "'m1' == metric",
        "metric in ['m0', 'm2']",
        "entity.type == 'T0'",
        "entity.type in ['T1', 'T2']",
        "value > 2.5",
        "value >= 2.0",
        "value < 1",
        "value <= 3u",
        "2.0 < value",
        "5 >= value",
        "value > -1.5",
        "value >= 10.0",
        // Left to CEL: attributes (one entity lacks `level`, one has it as text: errors),
        // arithmetic, `||`, `!=`.
        "value >= entity.attributes.level",
        "entity.attributes.level < value",
        "entity.attributes.level > 1.0",
        "value * 2.0 >= 5.0",
        "(metric == 'm0' || value < 1.0)",
        "metric != 'm1'",
        "entity.name == 'Trạm 1'",
    ];

    fn condition() -> impl Strategy<Value = String> {
        prop::collection::vec(0..ATOMS.len(), 1..5).prop_map(|ix| {
            ix.iter()
                .map(|&i| ATOMS[i])
                .collect::<Vec<_>>()
                .join(" && ")
        })
    }

    fn rule_config() -> impl Strategy<Value = (String, Option<String>, u64)> {
        (
            condition(),
            prop::option::weighted(0.25, condition()),
            prop::sample::select(vec![0u64, 60]),
        )
    }

    const VALUES: &[f64] = &[
        -2.0,
        -1.5,
        0.0,
        1.0,
        2.0,
        2.5,
        3.0,
        5.0,
        10.0,
        12.0,
        f64::NAN,
    ];

    type Case = (
        Vec<(String, Option<String>, u64)>,
        Vec<(usize, usize, usize, i64)>,
    );

    /// Random rules over random observations (late ones, NaN, values on the limits, an
    /// entity without the attribute a condition reads): the same signals, observation by
    /// observation and tick by tick, from the fast path and from CEL alone.
    #[test]
    fn plans_and_tables_decide_as_cel_does() {
        let strategy = (
            prop::collection::vec(rule_config(), 1..24),
            prop::collection::vec((0usize..5, 0usize..4, 0..VALUES.len(), -10i64..40), 1..120),
        );
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
        let signals = std::cell::Cell::new(0usize);
        let thresholds = std::cell::Cell::new(0usize);
        runner
            .run(&strategy, |case| {
                let (n, t) = same_signals(case)?;
                signals.set(signals.get() + n);
                thresholds.set(thresholds.get() + t);
                Ok(())
            })
            .unwrap();
        assert!(
            signals.get() > 1000,
            "only {} signals compared",
            signals.get()
        );
        assert!(
            thresholds.get() > 100,
            "only {} threshold rules",
            thresholds.get()
        );
    }

    fn same_signals((configs, obs): Case) -> Result<(usize, usize), TestCaseError> {
        {
            let configs: Vec<RuleConfig> = configs
                .into_iter()
                .enumerate()
                .map(|(i, (when, clear_when, for_s))| RuleConfig {
                    name: format!("r{i}"),
                    when,
                    clear_when,
                    for_: std::time::Duration::from_secs(for_s),
                    severity: Severity::Major,
                    message: "x".into(),
                    ..Default::default()
                })
                .collect();
            let (rules, errors) = RuleSet::compile(&configs);
            prop_assert!(errors.is_empty(), "{errors:?}");
            let entities: Vec<Entity> = (0..5)
                .map(|i| {
                    let e = Entity::new(
                        &format!("e{i}"),
                        &format!("T{}", i % 3),
                        &format!("Trạm {i}"),
                        Domain::Environment,
                    );
                    match i {
                        4 => e,
                        3 => e.with_attr("level", "high"),
                        _ => e.with_attr("level", i as f64),
                    }
                })
                .collect();
            let cels: Vec<EntityVal> = entities.iter().map(entity_value).collect();
            let metrics: Vec<Arc<str>> = (0..4).map(|m| Arc::from(format!("m{m}"))).collect();
            let (mut fast, mut slow) = (Evaluator::new(&rules), Evaluator::new(&rules));
            let mut t = 1_700_000_000_000i64;
            let mut decided = 0;
            for (e, m, v, step) in obs {
                t += step * 1000;
                let o = Observed {
                    entity_id: e as i64,
                    entity: &entities[e],
                    cel: &cels[e],
                    metric: &metrics[m],
                    value: VALUES[v],
                    time: DateTime::from_timestamp_millis(t).unwrap(),
                };
                let (mut a, mut b) = (Vec::new(), Vec::new());
                fast.observe(&rules, &o, &mut a, |_, _| {});
                reference(&mut slow, &rules, &o, &mut b);
                let (a, b) = (norm(a), norm(b));
                prop_assert_eq!(&a, &b, "observation {:?} {} {}", e, metrics[m], VALUES[v]);
                decided += a.len();
                let ta = norm(fast.tick(&rules, t + 30_000));
                let tb = norm(slow.tick(&rules, t + 30_000));
                decided += ta.len();
                prop_assert_eq!(ta, tb);
            }
            let thresholds = rules
                .rules()
                .iter()
                .filter(|r| r.threshold.is_some())
                .count();
            Ok((decided, thresholds))
        }
    }

    /// The property test above must see rules firing, or it would compare nothing but
    /// silence: a fixed case where thresholds and CEL rules raise and clear.
    #[test]
    fn thresholds_raise_and_clear_like_cel_rules() {
        let cfg = |name: &str, when: &str| RuleConfig {
            name: name.into(),
            when: when.into(),
            severity: Severity::Major,
            message: "x".into(),
            ..Default::default()
        };
        let (rules, errors) = RuleSet::compile(&[
            cfg(
                "table",
                "entity.type == 'T0' && metric == 'm0' && value > 2.0",
            ),
            cfg("cel", "metric == 'm0' && value > entity.attributes.level"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(rules.by_name("table").unwrap().1.threshold.is_some());
        assert!(rules.by_name("cel").unwrap().1.threshold.is_none());
        let e = Entity::new("e0", "T0", "Trạm", Domain::Environment).with_attr("level", 2.0);
        let cel = entity_value(&e);
        let m: Arc<str> = Arc::from("m0");
        let mut ev = Evaluator::new(&rules);
        let mut run = |value: f64, s: i64| {
            let mut out = Vec::new();
            ev.observe(
                &rules,
                &Observed {
                    entity_id: 1,
                    entity: &e,
                    cel: &cel,
                    metric: &m,
                    value,
                    time: DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap(),
                },
                &mut out,
                |_, _| {},
            );
            out.sort_by_key(key);
            out.iter()
                .map(|s| match s {
                    Signal::Raise { rule, .. } => format!("+{}", rules.get(*rule).name()),
                    Signal::Clear { rule, .. } => format!("-{}", rules.get(*rule).name()),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1.0, 0), Vec::<String>::new());
        assert_eq!(run(3.0, 1), ["+table", "+cel"]);
        assert_eq!(run(3.0, 2), Vec::<String>::new());
        assert_eq!(run(2.0, 3), ["-table", "-cel"]);
    }
}
