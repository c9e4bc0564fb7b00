//! Event rules: a CEL condition over each observation, held for a `for` duration, raises an
//! alert; the condition ceasing clears it. Rules are indexed by the metric their condition
//! names (`metric == 'pm25'`), so an observation is only checked against rules that can match.

mod cel_env;
mod template;
mod timing;

pub use cel_env::{entity_value, EntityVal, EvalInput};
pub use template::render_message;
pub use timing::{Signal, Timers};

use crate::config::RuleConfig;
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
}

/// A compiled rule.
pub struct Rule {
    pub config: RuleConfig,
    pub category: String,
    pub for_ms: i64,
    program: cel::Program,
    /// The metrics the condition can match, when it names them; `None`: any metric.
    pub metrics: Option<Vec<String>>,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// All loaded rules with their metric index.
pub struct RuleSet {
    rules: Vec<Rule>,
    by_metric: HashMap<String, Vec<usize>>,
    any_metric: Vec<usize>,
    env: Arc<cel::Env>,
    by_name: HashMap<String, usize>,
}

impl RuleSet {
    /// Compiles every rule; the ones that fail are returned as errors and left out.
    pub fn compile(configs: &[RuleConfig]) -> (RuleSet, Vec<RuleError>) {
        let env = Arc::new(cel::Env::stdlib());
        let mut set = RuleSet {
            rules: Vec::new(),
            by_metric: HashMap::new(),
            any_metric: Vec::new(),
            env: env.clone(),
            by_name: HashMap::new(),
        };
        let mut errors = Vec::new();
        for cfg in configs {
            match compile_one(&env, cfg) {
                Ok(rule) => {
                    let idx = set.rules.len();
                    match &rule.metrics {
                        Some(ms) => {
                            for m in ms {
                                set.by_metric.entry(m.clone()).or_default().push(idx);
                            }
                        }
                        None => set.any_metric.push(idx),
                    }
                    set.by_name.insert(rule.config.name.clone(), idx);
                    set.rules.push(rule);
                }
                Err(e) => errors.push(e),
            }
        }
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

    /// Indices of the rules that can match an observation of `metric`.
    pub fn candidates<'a>(&'a self, metric: &str) -> impl Iterator<Item = usize> + 'a {
        self.by_metric
            .get(metric)
            .into_iter()
            .flatten()
            .chain(self.any_metric.iter())
            .copied()
    }

    /// Whether rule `idx` holds for this input. An evaluation error (a missing attribute, a
    /// type mismatch) is returned so the caller can report it; it counts as "does not hold".
    pub fn holds(&self, idx: usize, input: &EvalInput<'_>) -> Result<bool, String> {
        cel_env::evaluate(&self.env, &self.rules[idx].program, input)
    }
}

fn compile_one(env: &cel::Env, cfg: &RuleConfig) -> Result<Rule, RuleError> {
    let program = env.compile(&cfg.when).map_err(|errs| {
        let first = errs.errors.first();
        RuleError {
            rule: cfg.name.clone(),
            line: first.map(|e| e.pos.0.max(1) as usize).unwrap_or(1),
            column: first.map(|e| e.pos.1.max(0) as usize + 1).unwrap_or(1),
            message: first
                .map(|e| e.msg.clone())
                .unwrap_or_else(|| errs.to_string()),
        }
    })?;
    let refs = program.references();
    for var in refs.variables() {
        if !matches!(var, "metric" | "value" | "time" | "entity") {
            return Err(RuleError {
                rule: cfg.name.clone(),
                line: 1,
                column: cfg.when.find(var).map(|i| i + 1).unwrap_or(1),
                message: format!("unknown variable {var:?} (known: metric, value, time, entity)"),
            });
        }
    }
    let metrics = cel_env::metrics_named(program.expression());
    Ok(Rule {
        category: cfg.category.clone().unwrap_or_else(|| cfg.name.clone()),
        for_ms: i64::try_from(cfg.for_.as_millis()).unwrap_or(i64::MAX),
        config: cfg.clone(),
        program,
        metrics,
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
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let names = |m: &str| -> Vec<&str> {
            set.candidates(m)
                .map(|i| set.get(i).name())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("pm25"), ["a", "d", "e"]);
        assert_eq!(names("pm10"), ["b", "d", "e"]);
        assert_eq!(names("rain_24h"), ["c", "d", "e"]);
        assert_eq!(names("speed"), ["d", "e"]);
    }
}
