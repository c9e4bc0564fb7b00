//! Event rules: a CEL condition over each observation, held for a `for` duration, raises an
//! alert; the condition ceasing clears it (or, with `clear_when`, another condition: a
//! hysteresis). A rule can look at a sliding window of the metric (`window`), watch for
//! silence (`no_data`), be limited to an area (a unit or a drawn polygon), to hours and days,
//! and take its severity from the value (`levels`). Rules are indexed by the metric and entity
//! type their condition names (`metric == 'pm25'`), so an observation is only checked against
//! rules that can match; within that, plain thresholds are found by a binary search and CEL
//! runs only where the condition says more than the index and a comparison can ([`plan`]).

pub mod backtest;
mod cel_env;
mod config;
pub mod eval;
pub mod files;
pub mod manage;
pub mod nodata;
pub mod plan;
mod template;
mod timing;
pub mod window;

pub use cel_env::{entity_map as cel_value_of_entity, entity_value, EntityVal, EvalInput};
pub use eval::{Evaluator, Observed};
pub use template::render_message;
pub use timing::{Signal, Timers};

use chrono::{DateTime, Datelike, Timelike, Utc};
pub use config::{default_rules, AreaConfig, IncidentRuleConfig, LevelConfig, RuleConfig};
use geo::Contains;
use ioc_model::{Entity, Severity};
use std::collections::HashMap;
use std::sync::Arc;

/// A rule that did not compile. The engine keeps running with the others.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rule {rule:?}: `when` does not compile at line {line}, column {column}: {message}")]
pub struct RuleError {
    pub rule: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The key whose CEL failed (`when`, `clear_when`); `None`: the rule as a whole.
    pub key: Option<&'static str>,
}

/// Where a rule applies.
enum Area {
    Unit(String),
    Polygon(geo::Polygon<f64>),
}

/// A compiled rule.
pub struct Rule {
    pub config: RuleConfig,
    pub category: String,
    pub for_ms: i64,
    program: cel::Program,
    clear_program: Option<cel::Program>,
    /// `program` taken apart, without what the index guarantees.
    plan: plan::Plan,
    clear_plan: Option<plan::Plan>,
    /// A plain `value` comparison and nothing else (no area, hours, window, no-data or clear
    /// condition): kept in the sorted tables of its [`Group`]s.
    threshold: Option<(plan::Cmp, f64)>,
    /// The metrics the condition can match, when it names them; `None`: any metric.
    pub metrics: Option<Vec<String>>,
    /// The entity types the condition can match, when it names them; `None`: any type.
    pub types: Option<Vec<String>>,
    /// Sliding window span, ms (0: none).
    pub window_ms: i64,
    /// No-data span, ms (0: an ordinary rule).
    pub no_data_ms: i64,
    area: Option<(Area, bool)>,
    /// Local minutes of the day [start, end) (wrapping past midnight when start > end).
    hours: Option<(u32, u32)>,
    /// Bit per weekday, Monday = bit 0.
    days: Option<u8>,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn has_clear_condition(&self) -> bool {
        self.clear_program.is_some()
    }

    /// Whether the index offers this rule observations of `metric` by an entity of `kind`.
    pub fn is_candidate(&self, metric: &str, kind: &str) -> bool {
        self.metrics
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m == metric))
            && self
                .types
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| t == kind))
    }

    /// For a threshold rule: whether `value` reaches it.
    pub fn threshold_reached(&self, value: f64) -> Option<bool> {
        self.threshold.map(|(cmp, limit)| cmp.holds(value, limit))
    }

    /// Whether the rule concerns this entity (its area).
    pub fn applies_to(&self, e: &Entity) -> bool {
        let Some((area, outside)) = &self.area else {
            return true;
        };
        let inside = match area {
            Area::Unit(code) => e.unit.as_deref() == Some(code.as_str()),
            Area::Polygon(p) => e
                .position()
                .is_some_and(|(lon, lat)| p.contains(&geo::Point::new(lon, lat))),
        };
        inside != *outside
    }

    /// Whether the rule is in force at `t` (its hours and days, in `tz`).
    pub fn active_at(&self, t: DateTime<Utc>, tz: chrono_tz::Tz) -> bool {
        if self.hours.is_none() && self.days.is_none() {
            return true;
        }
        let local = t.with_timezone(&tz);
        if let Some(days) = self.days {
            if days & (1 << local.weekday().num_days_from_monday()) == 0 {
                return false;
            }
        }
        if let Some((start, end)) = self.hours {
            let m = local.hour() * 60 + local.minute();
            let inside = if start <= end {
                m >= start && m < end
            } else {
                m >= start || m < end
            };
            if !inside {
                return false;
            }
        }
        true
    }

    /// The severity for a value: the last level it reaches, else the rule's.
    pub fn severity_for(&self, value: f64) -> Severity {
        let mut sev = self.config.severity;
        for l in &self.config.levels {
            let reached =
                l.above.is_some_and(|a| value >= a) || l.below.is_some_and(|b| value <= b);
            if reached {
                sev = l.severity;
            }
        }
        sev
    }
}

/// The rules an observation of one metric (or none named) by one entity type (or any) can
/// match: the threshold rules sorted by their limit, so the ones a value reaches are a prefix
/// found by binary search, and the others, checked one by one.
#[derive(Default)]
pub struct Group {
    /// Rules decided one by one (through their [`plan::Plan`], CEL if needed).
    each: Vec<usize>,
    /// `value > t` / `value >= t` by `t` ascending, `>=` first among equal `t`.
    above: Vec<(f64, bool, usize)>,
    /// `value < t` / `value <= t` by `t` descending, `<=` first among equal `t`.
    below: Vec<(f64, bool, usize)>,
}

impl Group {
    fn add(&mut self, idx: usize, rule: &Rule) {
        use plan::Cmp;
        if self.iter().any(|i| i == idx) {
            return; // named twice (`metric in ['a', 'a']`)
        }
        match rule.threshold {
            Some((Cmp::Gt, t)) => self.above.push((t, false, idx)),
            Some((Cmp::Ge, t)) => self.above.push((t, true, idx)),
            Some((Cmp::Lt, t)) => self.below.push((t, false, idx)),
            Some((Cmp::Le, t)) => self.below.push((t, true, idx)),
            None => self.each.push(idx),
        }
    }

    fn sort(&mut self) {
        self.above
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        self.below
            .sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    }

    /// Rules decided one by one.
    pub fn each(&self) -> &[usize] {
        &self.each
    }

    /// The threshold rules a (non-NaN) `value` reaches.
    pub fn reached(&self, value: f64) -> impl Iterator<Item = usize> + '_ {
        let a = self
            .above
            .partition_point(|&(t, incl, _)| t < value || (incl && t == value));
        let b = self
            .below
            .partition_point(|&(t, incl, _)| t > value || (incl && t == value));
        self.above[..a]
            .iter()
            .chain(&self.below[..b])
            .map(|&(_, _, i)| i)
    }

    /// The threshold rules, all of them.
    pub fn thresholds(&self) -> impl Iterator<Item = usize> + '_ {
        self.above.iter().chain(&self.below).map(|&(_, _, i)| i)
    }

    /// Every rule of the group.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.each.iter().copied().chain(self.thresholds())
    }
}

/// The groups of the rules that name a metric.
#[derive(Default)]
struct MetricRules {
    /// … and entity types, by type.
    by_type: HashMap<String, Group>,
    /// … and no type.
    any_type: Group,
}

/// All loaded rules with their metric and type index.
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Rules that name their metrics, by metric.
    by_metric: HashMap<String, MetricRules>,
    /// Rules that name entity types but no metric, by type.
    by_type: HashMap<String, Group>,
    /// Rules that name neither.
    any_metric: Group,
    env: Arc<cel::Env>,
    by_name: HashMap<String, usize>,
    /// For `active_hours`/`active_days`.
    pub tz: chrono_tz::Tz,
}

impl RuleSet {
    /// Compiles every rule; the ones that fail are returned as errors and left out.
    pub fn compile(configs: &[RuleConfig]) -> (RuleSet, Vec<RuleError>) {
        let env = Arc::new(cel::Env::stdlib());
        let mut set = RuleSet {
            rules: Vec::new(),
            by_metric: HashMap::new(),
            by_type: HashMap::new(),
            any_metric: Group::default(),
            env: env.clone(),
            by_name: HashMap::new(),
            tz: chrono_tz::Asia::Ho_Chi_Minh,
        };
        let mut errors = Vec::new();
        for cfg in configs.iter().filter(|c| c.enabled) {
            if set.by_name.contains_key(&cfg.name) {
                errors.push(RuleError {
                    rule: cfg.name.clone(),
                    line: 1,
                    column: 1,
                    message: "another rule has this name".into(),
                    key: None,
                });
                continue;
            }
            match compile_one(&env, cfg) {
                Ok(rule) => {
                    let idx = set.rules.len();
                    match (&rule.metrics, &rule.types) {
                        (Some(ms), types) => {
                            for m in ms {
                                let g = set.by_metric.entry(m.clone()).or_default();
                                match types {
                                    Some(ts) => ts.iter().for_each(|t| {
                                        g.by_type.entry(t.clone()).or_default().add(idx, &rule)
                                    }),
                                    None => g.any_type.add(idx, &rule),
                                }
                            }
                        }
                        (None, Some(ts)) => {
                            for t in ts {
                                set.by_type.entry(t.clone()).or_default().add(idx, &rule);
                            }
                        }
                        (None, None) => set.any_metric.add(idx, &rule),
                    }
                    set.by_name.insert(rule.config.name.clone(), idx);
                    set.rules.push(rule);
                }
                Err(e) => errors.push(e),
            }
        }
        for m in set.by_metric.values_mut() {
            m.any_type.sort();
            m.by_type.values_mut().for_each(Group::sort);
        }
        set.by_type.values_mut().for_each(Group::sort);
        set.any_metric.sort();
        (set, errors)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, idx: usize) -> &Rule {
        &self.rules[idx]
    }

    pub fn by_name(&self, name: &str) -> Option<(usize, &Rule)> {
        self.by_name.get(name).map(|&i| (i, &self.rules[i]))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The groups of rules an observation of `metric` by an entity of `entity_type` can match:
    /// found through the metric and type indexes, so a rule that names another metric or
    /// type costs nothing.
    pub fn groups<'a>(
        &'a self,
        metric: &str,
        entity_type: &str,
    ) -> impl Iterator<Item = &'a Group> {
        let m = self.by_metric.get(metric);
        m.and_then(|m| m.by_type.get(entity_type))
            .into_iter()
            .chain(m.map(|m| &m.any_type))
            .chain(self.by_type.get(entity_type))
            .chain(std::iter::once(&self.any_metric))
    }

    /// Indices of the rules that can match an observation of `metric` by an entity of
    /// `entity_type` (each once).
    pub fn candidates<'a>(
        &'a self,
        metric: &str,
        entity_type: &str,
    ) -> impl Iterator<Item = usize> + 'a {
        self.groups(metric, entity_type).flat_map(Group::iter)
    }

    /// Whether rule `idx` holds for this input, by CEL alone (the reference the faster
    /// [`RuleSet::decide`] is tested against). An evaluation error (a missing attribute, a
    /// type mismatch) is returned so the caller can report it; it counts as "does not hold".
    pub fn holds(&self, idx: usize, input: &EvalInput<'_>) -> Result<bool, String> {
        cel_env::evaluate(&self.env, &self.rules[idx].program, input)
    }

    /// Whether the clear condition of rule `idx` holds, by CEL alone.
    pub fn clears(&self, idx: usize, input: &EvalInput<'_>) -> Result<bool, String> {
        match &self.rules[idx].clear_program {
            Some(p) => cel_env::evaluate(&self.env, p, input),
            None => Ok(false),
        }
    }

    /// [`RuleSet::holds`] for a rule the index offered this input: its tests decide where
    /// they can, CEL runs where something is left. An error is only met (and reported) when
    /// the tests pass, that is for observations the rule is about.
    pub fn decide(&self, idx: usize, input: &EvalInput<'_>) -> Result<bool, String> {
        let r = &self.rules[idx];
        match r.plan.decide(&input.seen()) {
            Some(b) => Ok(b),
            None => cel_env::evaluate(&self.env, &r.program, input),
        }
    }

    /// [`RuleSet::clears`] for a rule the index offered this input.
    pub fn decide_clear(&self, idx: usize, input: &EvalInput<'_>) -> Result<bool, String> {
        let r = &self.rules[idx];
        match (&r.clear_program, &r.clear_plan) {
            (Some(p), Some(plan)) => match plan.decide(&input.seen()) {
                Some(b) => Ok(b),
                None => cel_env::evaluate(&self.env, p, input),
            },
            _ => Ok(false),
        }
    }

    /// The windows the rules need, for [`window::Windows`].
    pub fn windows(&self) -> window::Windows {
        let mut w = window::Windows::default();
        for r in self.rules.iter().filter(|r| r.window_ms > 0) {
            match &r.metrics {
                Some(ms) => ms.iter().for_each(|m| w.need(Some(m), r.window_ms)),
                None => w.need(None, r.window_ms),
            }
        }
        w
    }
}

fn compile_cel(
    env: &cel::Env,
    cfg: &RuleConfig,
    key: &'static str,
    text: &str,
) -> Result<cel::Program, RuleError> {
    let err = |line: usize, column: usize, message: String| RuleError {
        rule: cfg.name.clone(),
        line,
        column,
        message: if key == "when" {
            message
        } else {
            format!("{key}: {message}")
        },
        key: Some(key),
    };
    let program = env.compile(text).map_err(|errs| {
        let first = errs.errors.first();
        err(
            first.map(|e| e.pos.0.max(1) as usize).unwrap_or(1),
            first.map(|e| e.pos.1.max(0) as usize + 1).unwrap_or(1),
            first
                .map(|e| e.msg.clone())
                .unwrap_or_else(|| errs.to_string()),
        )
    })?;
    let refs = program.references();
    for var in refs.variables() {
        let known = matches!(var, "metric" | "value" | "time" | "entity")
            || (var == "window" && cfg.window.is_some());
        if !known {
            let hint = if var == "window" {
                " (`window` needs `window = \"10m\"` on the rule)".to_string()
            } else {
                " (known: metric, value, time, entity, window)".to_string()
            };
            return Err(err(
                1,
                text.find(var).map(|i| i + 1).unwrap_or(1),
                format!("unknown variable {var:?}{hint}"),
            ));
        }
    }
    Ok(program)
}

fn invalid(cfg: &RuleConfig, message: String) -> RuleError {
    RuleError {
        rule: cfg.name.clone(),
        line: 1,
        column: 1,
        message,
        key: None,
    }
}

/// `"HH:MM-HH:MM"` as minutes of the day.
fn parse_hours(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let m = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    Some((m(a)?, m(b)?))
}

fn compile_one(env: &cel::Env, cfg: &RuleConfig) -> Result<Rule, RuleError> {
    let program = compile_cel(env, cfg, "when", &cfg.when)?;
    let clear_program = match &cfg.clear_when {
        Some(c) => Some(compile_cel(env, cfg, "clear_when", c)?),
        None => None,
    };
    if cfg.no_data.is_some() && (cfg.clear_when.is_some() || cfg.window.is_some()) {
        return Err(invalid(
            cfg,
            "a no_data rule has no clear_when or window".into(),
        ));
    }
    let mut metrics = cel_env::metrics_named(program.expression());
    if let (Some(ms), Some(c)) = (&mut metrics, &clear_program) {
        // Observations that can clear must reach the rule too.
        match cel_env::metrics_named(c.expression()) {
            Some(more) => more.into_iter().for_each(|m| {
                if !ms.contains(&m) {
                    ms.push(m)
                }
            }),
            None => metrics = None,
        }
    }
    let mut types = cel_env::types_named(program.expression());
    if let (Some(ts), Some(c)) = (&mut types, &clear_program) {
        match cel_env::types_named(c.expression()) {
            Some(more) => more.into_iter().for_each(|t| {
                if !ts.contains(&t) {
                    ts.push(t)
                }
            }),
            None => types = None,
        }
    }
    let area = match &cfg.area {
        None => None,
        Some(a) => {
            let shape = match (&a.unit, &a.polygon) {
                (Some(u), None) => Area::Unit(u.clone()),
                (None, Some(pts)) => {
                    if pts.len() < 3
                        || pts
                            .iter()
                            .any(|p| !(p[0].abs() <= 180.0 && p[1].abs() <= 90.0))
                    {
                        return Err(invalid(
                            cfg,
                            "area.polygon: at least 3 [lon, lat] points on Earth".into(),
                        ));
                    }
                    let ring: Vec<(f64, f64)> = pts.iter().map(|p| (p[0], p[1])).collect();
                    Area::Polygon(geo::Polygon::new(geo::LineString::from(ring), vec![]))
                }
                _ => return Err(invalid(cfg, "area: give `unit` or `polygon`".into())),
            };
            Some((shape, a.outside))
        }
    };
    let hours = match &cfg.active_hours {
        None => None,
        Some(h) => Some(parse_hours(h).ok_or_else(|| {
            invalid(cfg, format!("active_hours {h:?}: expected \"HH:MM-HH:MM\""))
        })?),
    };
    let days = match &cfg.active_days {
        None => None,
        Some(ds) => {
            let mut mask = 0u8;
            for d in ds {
                let i = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case(d.trim()))
                    .ok_or_else(|| invalid(cfg, format!("active_days: {d:?} is not mon … sun")))?;
                mask |= 1 << i;
            }
            Some(mask)
        }
    };
    for l in &cfg.levels {
        if l.above.is_none() == l.below.is_none() {
            return Err(invalid(cfg, "levels: each needs `above` or `below`".into()));
        }
    }
    let ms = |d: Option<std::time::Duration>| {
        d.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    };
    let planned = |p: &cel::Program| {
        plan::Plan::of(p.expression()).without_guaranteed(metrics.as_deref(), types.as_deref())
    };
    let when_plan = planned(&program);
    let clear_plan = clear_program.as_ref().map(planned);
    let plain = clear_program.is_none()
        && area.is_none()
        && hours.is_none()
        && days.is_none()
        && cfg.window.is_none()
        && cfg.no_data.is_none();
    let threshold = when_plan.threshold().filter(|_| plain);
    Ok(Rule {
        category: cfg.category.clone().unwrap_or_else(|| cfg.name.clone()),
        for_ms: i64::try_from(cfg.for_.as_millis()).unwrap_or(i64::MAX),
        config: cfg.clone(),
        program,
        clear_program,
        plan: when_plan,
        clear_plan,
        threshold,
        metrics,
        types,
        window_ms: ms(cfg.window),
        no_data_ms: ms(cfg.no_data),
        area,
        hours,
        days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::Severity;
    use std::time::Duration;

    pub(crate) fn rule(name: &str, when: &str, for_secs: u64) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            when: when.into(),
            for_: Duration::from_secs(for_secs),
            severity: Severity::Major,
            message: "{entity.name}: {value}".into(),
            category: None,
            domain: None,
            auto_resolve: true,
            escalate_after: None,
            enabled: true,
            ..Default::default()
        }
    }

    #[test]
    fn bad_rule_is_refused_with_position_and_others_kept() {
        let (set, errors) = RuleSet::compile(&[
            rule("ok", "metric == 'pm25' && value > 150.0", 0),
            rule("broken", "metric == 'pm25' &&\n value >", 0),
            rule("unknown-var", "speed > 3.0", 0),
        ]);
        assert_eq!(set.len(), 1);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].rule, "broken");
        assert_eq!(errors[0].line, 2, "{}", errors[0]);
        assert!(errors[0].column > 1, "{}", errors[0]);
        assert!(errors[1].message.contains("speed"), "{}", errors[1]);
    }

    #[test]
    fn rules_are_indexed_by_metric() {
        let (set, errors) = RuleSet::compile(&[
            rule("a", "metric == 'pm25' && value > 150.0", 0),
            rule("b", "value > 1.0 && metric == 'pm10'", 0),
            rule("c", "metric in ['rain_1h', 'rain_24h'] && value > 50.0", 0),
            rule("d", "value > 1000.0", 0),
            rule("e", "metric == 'pm25' || value > 3.0", 0),
            rule("f", "entity.type == 'AirQualityStation' && value > 3.0", 0),
            rule(
                "g",
                "entity.type in ['Camera'] && metric == 'online' && value < 0.5",
                0,
            ),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let names = |m: &str, kind: &str| -> Vec<&str> {
            let mut v = set
                .candidates(m, kind)
                .map(|i| set.get(i).name())
                .collect::<Vec<_>>();
            v.sort();
            v
        };
        let aq = |m: &str| names(m, "AirQualityStation");
        assert_eq!(aq("pm25"), ["a", "d", "e", "f"]);
        assert_eq!(aq("pm10"), ["b", "d", "e", "f"]);
        assert_eq!(aq("rain_24h"), ["c", "d", "e", "f"]);
        assert_eq!(aq("speed"), ["d", "e", "f"]);
        assert_eq!(names("pm25", "Camera"), ["a", "d", "e"]);
        assert_eq!(names("online", "Camera"), ["d", "e", "g"]);
        // Plain thresholds are kept sorted; the rest is decided one by one.
        let thresholds: Vec<&str> = ["a", "b", "c", "d", "e", "f", "g"]
            .into_iter()
            .filter(|n| set.by_name(n).unwrap().1.threshold.is_some())
            .collect();
        assert_eq!(thresholds, ["a", "b", "c", "d", "f", "g"], "all but the ||");
    }
}
