//! What of a condition can be decided without running CEL.
//!
//! A province's catalogue is mostly rules of one shape: `entity.type == 'T' && metric == 'm'
//! && value > 120.0`. The metric index already picks the rules an observation can match; running
//! CEL for each of them (a context, a tree walk, a boxed value per variable) is what made 10,000
//! rules cost 90 % of the pipeline. So, as rule engines do, a condition is taken apart once when
//! it is compiled:
//!
//! - its top-level `&&` terms that name the metric, the entity type or compare `value` with a
//!   number become plain tests, checked natively;
//! - a test the index already guarantees (the rule is only ever offered observations of the
//!   metrics and types it names) is dropped;
//! - a rule left with a single `value` comparison and nothing else to decide is a threshold: the
//!   rule set keeps those sorted per metric and type, so finding the ones a value reaches is a
//!   binary search, not a loop ([`super::Group`]);
//! - whatever else the condition says is left to CEL, which then runs the whole condition as
//!   written, so its result (and its error, if it has one) is the one the rule always had.
//!
//! Why this is exact: CEL's `&&` is false as soon as any of its terms is false, whatever the
//! others give (an error included), so a failing test decides "does not hold" on its own; and a
//! condition made only of tests that pass holds. The one value CEL compares differently is NaN
//! (an error, where Rust says false), so a NaN always goes to CEL. The property test in
//! `eval.rs` runs random rules and observations through both paths.

use cel::common::ast::{operators, Expr, IdedExpr, LiteralValue};

/// A comparison of `value` with a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn of(op: &str) -> Option<Cmp> {
        Some(match op {
            operators::LESS => Cmp::Lt,
            operators::LESS_EQUALS => Cmp::Le,
            operators::GREATER => Cmp::Gt,
            operators::GREATER_EQUALS => Cmp::Ge,
            _ => return None,
        })
    }

    /// The same comparison seen from the other side (`5 < value` is `value > 5`).
    fn flipped(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
        }
    }

    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Cmp::Lt => value < limit,
            Cmp::Le => value <= limit,
            Cmp::Gt => value > limit,
            Cmp::Ge => value >= limit,
        }
    }
}

/// One term of a condition decided natively.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `metric == '…'` or `metric in […]`.
    Metric(Vec<String>),
    /// `entity.type == '…'` or `entity.type in […]`.
    Type(Vec<String>),
    /// `value <op> number`.
    Value(Cmp, f64),
    /// `value <op> entity.attributes.name` (a device's own alarm levels): decided when the
    /// device has that attribute as a number; otherwise CEL says what it makes of it.
    Attr(Cmp, String),
}

/// What the tests look at in one observation.
pub struct Seen<'a> {
    pub metric: &'a str,
    pub kind: &'a str,
    pub value: f64,
    /// The entity's attributes that are numbers.
    pub numbers: &'a [(String, f64)],
}

impl Test {
    /// `None`: not decided here (an attribute missing or not a number).
    fn passes(&self, o: &Seen<'_>) -> Option<bool> {
        Some(match self {
            Test::Metric(ms) => ms.iter().any(|m| m == o.metric),
            Test::Type(ts) => ts.iter().any(|t| t == o.kind),
            Test::Value(cmp, limit) => cmp.holds(o.value, *limit),
            Test::Attr(cmp, name) => {
                let (_, limit) = o.numbers.iter().find(|(k, _)| k == name)?;
                cmp.holds(o.value, *limit)
            }
        })
    }
}

/// A condition taken apart: the tests all its observations must pass, and whether anything is
/// left for CEL once they do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub tests: Vec<Test>,
    /// Some term is not a test: CEL runs the condition when the tests pass.
    pub residual: bool,
}

impl Plan {
    /// Takes `e` apart along its top-level `&&`.
    pub fn of(e: &IdedExpr) -> Plan {
        let mut plan = Plan {
            tests: Vec::new(),
            residual: false,
        };
        plan.add(e);
        plan
    }

    fn add(&mut self, e: &IdedExpr) {
        if let Expr::Call(call) = &e.expr {
            if call.func_name == operators::LOGICAL_AND && call.args.len() == 2 {
                self.add(&call.args[0]);
                self.add(&call.args[1]);
                return;
            }
        }
        match test_of(e) {
            Some(t) => self.tests.push(t),
            None => self.residual = true,
        }
    }

    /// Drops the tests the index guarantees: a rule indexed by `metrics` (and `types`) is only
    /// ever offered observations of those.
    pub fn without_guaranteed(
        mut self,
        metrics: Option<&[String]>,
        types: Option<&[String]>,
    ) -> Plan {
        let covers = |set: &[String], by: Option<&[String]>| {
            by.is_some_and(|by| by.iter().all(|x| set.contains(x)))
        };
        self.tests.retain(|t| match t {
            Test::Metric(ms) => !covers(ms, metrics),
            Test::Type(ts) => !covers(ts, types),
            Test::Value(..) | Test::Attr(..) => true,
        });
        self
    }

    /// `Some(result)` when the tests decide; `None`: CEL must run the condition.
    pub fn decide(&self, o: &Seen<'_>) -> Option<bool> {
        if o.value.is_nan() {
            return None; // CEL calls NaN incomparable (an error); let it say so
        }
        let mut undecided = self.residual;
        for t in &self.tests {
            match t.passes(o) {
                Some(false) => return Some(false),
                Some(true) => {}
                None => undecided = true,
            }
        }
        (!undecided).then_some(true)
    }

    /// The single comparison this plan is, when it is nothing else.
    pub fn threshold(&self) -> Option<(Cmp, f64)> {
        match (self.residual, self.tests.as_slice()) {
            (false, [Test::Value(cmp, limit)]) if limit.is_finite() => Some((*cmp, *limit)),
            _ => None,
        }
    }
}

fn strings(e: &IdedExpr) -> Option<Vec<String>> {
    let one = |e: &IdedExpr| match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_string()),
        _ => None,
    };
    match &e.expr {
        Expr::List(list) if list.optional_indices.is_empty() => {
            list.elements.iter().map(one).collect()
        }
        _ => one(e).map(|s| vec![s]),
    }
}

fn number(e: &IdedExpr) -> Option<f64> {
    match &e.expr {
        Expr::Literal(LiteralValue::Double(d)) => Some(*d.inner()),
        // CEL compares a double with an int or uint as doubles, as Rust's `as` does.
        Expr::Literal(LiteralValue::Int(i)) => Some(*i.inner() as f64),
        Expr::Literal(LiteralValue::UInt(u)) => Some(*u.inner() as f64),
        _ => None,
    }
}

fn ident(e: &IdedExpr, name: &str) -> bool {
    matches!(&e.expr, Expr::Ident(n) if n == name)
}

/// `entity.attributes.name`: the name.
fn attribute(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Select(sel) if !sel.test => match &sel.operand.expr {
            Expr::Select(inner)
                if !inner.test
                    && inner.field == "attributes"
                    && ident(&inner.operand, "entity") =>
            {
                Some(sel.field.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

fn is_entity_type(e: &IdedExpr) -> bool {
    matches!(&e.expr, Expr::Select(sel) if sel.field == "type" && !sel.test
        && ident(&sel.operand, "entity"))
}

/// The test one term is, if it is one.
fn test_of(e: &IdedExpr) -> Option<Test> {
    let Expr::Call(call) = &e.expr else {
        return None;
    };
    let [a, b] = call.args.as_slice() else {
        return None;
    };
    let op = call.func_name.as_str();
    let names = |subject: fn(&IdedExpr) -> bool, wrap: fn(Vec<String>) -> Test| -> Option<Test> {
        match op {
            operators::EQUALS if subject(a) => single(b).map(wrap),
            operators::EQUALS if subject(b) => single(a).map(wrap),
            operators::IN if subject(a) && matches!(b.expr, Expr::List(_)) => strings(b).map(wrap),
            _ => None,
        }
    };
    if let Some(t) = names(|e| ident(e, "metric"), Test::Metric) {
        return Some(t);
    }
    if let Some(t) = names(is_entity_type, Test::Type) {
        return Some(t);
    }
    let cmp = Cmp::of(op)?;
    let limit = |other: &IdedExpr, cmp: Cmp| match number(other) {
        Some(n) => Some(Test::Value(cmp, n)),
        None => attribute(other).map(|name| Test::Attr(cmp, name)),
    };
    if ident(a, "value") {
        limit(b, cmp)
    } else if ident(b, "value") {
        limit(a, cmp.flipped())
    } else {
        None
    }
}

fn single(e: &IdedExpr) -> Option<Vec<String>> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(_)) => strings(e),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(src: &str) -> Plan {
        let env = cel::Env::stdlib();
        Plan::of(env.compile(src).expect("compiles").expression())
    }

    #[test]
    fn terms_become_tests_and_the_rest_is_left_to_cel() {
        let p = plan("entity.type == 'Gauge' && metric == 'level' && value > 3.5");
        assert_eq!(
            p.tests,
            vec![
                Test::Type(vec!["Gauge".into()]),
                Test::Metric(vec!["level".into()]),
                Test::Value(Cmp::Gt, 3.5)
            ]
        );
        assert!(!p.residual);
        let p = plan("metric in ['a', 'b'] && 10 <= value && value < 20u");
        assert_eq!(
            p.tests,
            vec![
                Test::Metric(vec!["a".into(), "b".into()]),
                Test::Value(Cmp::Ge, 10.0),
                Test::Value(Cmp::Lt, 20.0)
            ]
        );
        let p = plan("metric == 'pm25' && entity.attributes.limit < value");
        assert_eq!(
            p.tests,
            vec![
                Test::Metric(vec!["pm25".into()]),
                Test::Attr(Cmp::Gt, "limit".into())
            ]
        );
        assert!(!p.residual);
        let p = plan("metric == 'pm25' && value > entity.attributes.limit * 2.0");
        assert_eq!(p.tests, vec![Test::Metric(vec!["pm25".into()])]);
        assert!(p.residual);
        let p = plan("metric == 'a' || value > 3.0");
        assert!(p.tests.is_empty() && p.residual);
    }

    #[test]
    fn the_index_makes_its_own_tests_needless() {
        let p = plan("entity.type == 'Gauge' && metric == 'level' && value >= 3.0");
        let m = ["level".to_string()];
        let t = ["Gauge".to_string()];
        let kept = p.clone().without_guaranteed(Some(&m), Some(&t));
        assert_eq!(kept.threshold(), Some((Cmp::Ge, 3.0)));
        // Indexed under another metric as well (its clear condition names it): kept.
        let both = ["level".to_string(), "flow".to_string()];
        let kept = p.without_guaranteed(Some(&both), Some(&t));
        assert_eq!(kept.tests.len(), 2);
        assert_eq!(kept.threshold(), None);
    }

    #[test]
    fn a_failing_test_decides_and_nan_goes_to_cel() {
        let seen = |metric, value, numbers| Seen {
            metric,
            kind: "T",
            value,
            numbers,
        };
        let x = [("x".to_string(), 3.0)];
        let p = plan("metric == 'a' && value > entity.attributes.x");
        assert_eq!(p.decide(&seen("b", 1.0, &[])), Some(false));
        assert_eq!(p.decide(&seen("a", 1.0, &[])), None, "no x: CEL's error");
        assert_eq!(p.decide(&seen("a", 4.0, &x)), Some(true));
        assert_eq!(p.decide(&seen("a", 2.0, &x)), Some(false));
        let p = plan("value > 1.0");
        assert_eq!(p.decide(&seen("a", 2.0, &[])), Some(true));
        assert_eq!(p.decide(&seen("a", f64::NAN, &[])), None);
        let p = plan("value > 1.0 && entity.name == 'x'");
        assert_eq!(p.decide(&seen("a", 0.0, &[])), Some(false));
        assert_eq!(p.decide(&seen("a", 2.0, &[])), None);
    }
}
