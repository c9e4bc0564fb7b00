//! The CEL environment rules run in: `metric` (string), `value` (double), `time` (timestamp)
//! and `entity` (map: `id`, `type`, `name`, `unit`, `unit_name`, `domain`, `status`, `lon`,
//! `lat`, `attributes`). Numbers in attributes are doubles, so `value > entity.attributes.x`
//! compares like with like.
//!
//! The entity map is converted to a CEL value once per entity version and borrowed by every
//! evaluation, so checking a rule costs no allocation for the entity.

use cel::common::ast::{operators, Expr, IdedExpr, LiteralValue};
use cel::common::types::{CelDouble, CelString, CelTimestamp};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use chrono::{DateTime, Utc};
use ioc_model::Entity;
use std::collections::HashMap;
use std::sync::Arc;

/// An entity as a CEL map, built once per entity version, with its type for the tests that
/// run without CEL ([`super::plan`]).
#[derive(Debug)]
pub struct EntityVal {
    val: Box<dyn Val + 'static>,
    pub(super) kind: String,
    /// Its attributes that are numbers (as CEL sees them: doubles).
    pub(super) numbers: Vec<(String, f64)>,
}

/// What one evaluation sees.
pub struct EvalInput<'a> {
    pub metric: &'a str,
    pub value: f64,
    pub time: DateTime<Utc>,
    pub entity: &'a EntityVal,
    /// For rules with a `window`: its statistics.
    pub window: Option<super::window::WindowStats>,
}

impl EvalInput<'_> {
    /// What the natively decided tests look at.
    pub(super) fn seen(&self) -> super::plan::Seen<'_> {
        super::plan::Seen {
            metric: self.metric,
            kind: &self.entity.kind,
            value: self.value,
            numbers: &self.entity.numbers,
        }
    }
}

fn window_value(w: &super::window::WindowStats) -> Option<Box<dyn Val>> {
    let map: HashMap<String, cel::Value> = [
        ("avg", w.avg),
        ("min", w.min),
        ("max", w.max),
        ("sum", w.sum),
        ("count", w.count),
        ("rate", w.rate),
        ("delta", w.delta),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), cel::Value::Float(v)))
    .collect();
    cel::Value::from(map).try_into().ok()
}

fn json_to_cel(v: &serde_json::Value) -> cel::Value {
    match v {
        serde_json::Value::Null => cel::Value::Null,
        serde_json::Value::Bool(b) => cel::Value::Bool(*b),
        serde_json::Value::Number(n) => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(a) => {
            cel::Value::List(Arc::new(a.iter().map(json_to_cel).collect()))
        }
        serde_json::Value::Object(o) => {
            let map: HashMap<String, cel::Value> =
                o.iter().map(|(k, v)| (k.clone(), json_to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

/// Builds the CEL view of an entity.
pub fn entity_value(e: &Entity) -> EntityVal {
    EntityVal {
        val: entity_map(e)
            .try_into()
            .expect("a map of plain values converts to a CEL value"),
        kind: e.kind.clone(),
        numbers: e
            .attributes
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
            .collect(),
    }
}

/// The CEL map of an entity (what `entity` is in rules and KPI conditions).
pub fn entity_map(e: &Entity) -> cel::Value {
    let opt = |s: &Option<String>| match s {
        Some(s) => cel::Value::String(Arc::new(s.clone())),
        None => cel::Value::Null,
    };
    let mut map: HashMap<String, cel::Value> = HashMap::new();
    map.insert("id".into(), cel::Value::String(Arc::new(e.id.clone())));
    map.insert("type".into(), cel::Value::String(Arc::new(e.kind.clone())));
    map.insert("name".into(), cel::Value::String(Arc::new(e.name.clone())));
    map.insert("unit".into(), opt(&e.unit));
    map.insert("unit_name".into(), opt(&e.unit_name));
    map.insert(
        "domain".into(),
        cel::Value::String(Arc::new(e.domain.as_str().into())),
    );
    map.insert(
        "status".into(),
        cel::Value::String(Arc::new(e.status.as_str().into())),
    );
    let num = |v: Option<f64>| v.map(cel::Value::Float).unwrap_or(cel::Value::Null);
    map.insert("lon".into(), num(e.lon));
    map.insert("lat".into(), num(e.lat));
    map.insert(
        "attributes".into(),
        json_to_cel(&serde_json::Value::Object(e.attributes.clone())),
    );
    cel::Value::from(map)
}

struct Vars<'a, 'i>(&'a EvalInput<'i>);

impl VariableResolver for Vars<'_, '_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "metric" => Some(CowVal::owned(CelString::from(self.0.metric))),
            "value" => Some(CowVal::owned(CelDouble::from(self.0.value))),
            "time" => Some(CowVal::owned(CelTimestamp::from(
                self.0.time.fixed_offset(),
            ))),
            "entity" => Some(CowVal::Borrowed(&*self.0.entity.val)),
            "window" => self
                .0
                .window
                .as_ref()
                .and_then(window_value)
                .map(CowVal::Owned),
            _ => None,
        }
    }
}

pub(super) fn evaluate(
    env: &Arc<cel::Env>,
    program: &cel::Program,
    input: &EvalInput<'_>,
) -> Result<bool, String> {
    let vars = Vars(input);
    let mut ctx = cel::Context::with_env(env.clone());
    ctx.set_variable_resolver(&vars);
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("the condition gave {other:?}, not true or false")),
        Err(e) => Err(e.to_string()),
    }
}

fn string_literal(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_string()),
        _ => None,
    }
}

fn is_metric(e: &IdedExpr) -> bool {
    matches!(&e.expr, Expr::Ident(name) if name == "metric")
}

fn is_entity_type(e: &IdedExpr) -> bool {
    matches!(&e.expr, Expr::Select(sel) if sel.field == "type" && !sel.test
        && matches!(&sel.operand.expr, Expr::Ident(name) if name == "entity"))
}

/// The metrics an expression can only be true for, read from `metric == '…'` and
/// `metric in ['…', …]` terms combined by `&&` / `||`. `None` when it could match any metric.
pub(super) fn metrics_named(e: &IdedExpr) -> Option<Vec<String>> {
    literals_of(e, is_metric)
}

/// The entity types an expression can only be true for (`entity.type == '…'`, `in`), like
/// [`metrics_named`].
pub(super) fn types_named(e: &IdedExpr) -> Option<Vec<String>> {
    literals_of(e, is_entity_type)
}

/// The string literals `subject` must equal for `e` to be true, when `e` says so through
/// `==`, `in [...]`, `&&` and `||`; `None` when it could be true for any.
fn literals_of(e: &IdedExpr, subject: fn(&IdedExpr) -> bool) -> Option<Vec<String>> {
    let Expr::Call(call) = &e.expr else {
        return None;
    };
    match (call.func_name.as_str(), call.args.as_slice()) {
        (operators::EQUALS, [a, b]) => {
            if subject(a) {
                string_literal(b).map(|m| vec![m])
            } else if subject(b) {
                string_literal(a).map(|m| vec![m])
            } else {
                None
            }
        }
        (operators::IN, [a, b]) if subject(a) => match &b.expr {
            Expr::List(list) => list.elements.iter().map(string_literal).collect(),
            _ => None,
        },
        (operators::LOGICAL_AND, [a, b]) => {
            match (literals_of(a, subject), literals_of(b, subject)) {
                (Some(x), Some(y)) => Some(x.into_iter().filter(|m| y.contains(m)).collect()),
                (Some(x), None) | (None, Some(x)) => Some(x),
                (None, None) => None,
            }
        }
        (operators::LOGICAL_OR, [a, b]) => {
            let mut x = literals_of(a, subject)?;
            for m in literals_of(b, subject)? {
                if !x.contains(&m) {
                    x.push(m);
                }
            }
            Some(x)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{tests::rule, RuleSet};
    use super::*;
    use ioc_model::Domain;

    fn gauge() -> Entity {
        Entity::new("wl-1", "WaterLevelGauge", "Nam Đàn", Domain::Water)
            .at(105.5, 18.7)
            .in_unit("17935", "Nam Đàn")
            .with_attr("alarm_1", 3)
            .with_attr("river", "Cả")
    }

    #[test]
    fn conditions_see_metric_value_time_and_entity() {
        let (set, errors) = RuleSet::compile(&[
            rule(
                "a",
                "metric == 'water_level' && value >= entity.attributes.alarm_1",
                0,
            ),
            rule(
                "b",
                "entity.type == 'WaterLevelGauge' && entity.attributes.river == 'Cả'",
                0,
            ),
            rule(
                "c",
                "time > timestamp('2026-01-01T00:00:00Z') && entity.unit == '17935'",
                0,
            ),
            rule(
                "d",
                "metric == 'water_level' && value > entity.attributes.missing",
                0,
            ),
            rule("e", "value + 1.0", 0),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let ev = entity_value(&gauge());
        let input = |value| EvalInput {
            metric: "water_level",
            value,
            time: "2026-11-26T10:00:00Z".parse().unwrap(),
            entity: &ev,
            window: None,
        };
        assert_eq!(set.holds(0, &input(3.2)), Ok(true));
        assert_eq!(set.holds(0, &input(2.9)), Ok(false));
        assert_eq!(set.holds(1, &input(0.0)), Ok(true));
        assert_eq!(set.holds(2, &input(0.0)), Ok(true));
        assert!(set.holds(3, &input(1.0)).unwrap_err().contains("missing"));
        assert!(set.holds(4, &input(1.0)).is_err());
    }
}
