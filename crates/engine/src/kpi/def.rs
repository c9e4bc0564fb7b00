//! KPI definitions, as TOML (a `[[kpi]]` table of the config file, or one kept in the store
//! and edited on the KPI screen):
//!
//! ```toml
//! id = "aq-good-share"
//! name = "Tỷ lệ trạm quan trắc có VN_AQI ≤ 100"
//! domain = "environment"
//! period = "day"            # hour | day | week | month (in the display time zone)
//! uom = "%"
//! target = 90.0
//! better = "higher"         # or "lower"
//! green = 90.0              # higher: green at or above `green`, amber at or above `amber`
//! amber = 75.0
//! owner = "Sở Nông nghiệp và Môi trường"
//! empty = 100.0             # the value when there is nothing to measure (default: none)
//!
//! [of]
//! source = "observations"   # observations | alerts | incidents | directives
//! metric = "vn_aqi"         # observations: each entity's value over the period …
//! each = "avg"              # … from the rollups: avg | min | max | sum | last | count
//! entity_type = "AirQualityStation"
//! measure = "share"         # across entities or records: avg | min | max | sum | count | share
//! where = "value <= 100.0"  # CEL: what a share counts (and what a count counts)
//! # filter = "…"            # CEL: which entities or records take part
//! # value = "…"             # CEL: the number of each (default `value` for observations)
//! ```
//!
//! For alerts (raised in the period) a record has `severity`, `category`, `domain`, `rule`,
//! `unit`, `state`, `acked`, `ack_minutes`, `resolved`, `resolve_minutes`, `escalated`,
//! `silenced`, `in_incident`; for incidents (opened in the period) `severity`, `category`,
//! `domain`, `unit`, `state`, `alerts`, `steps`, `late_steps`, `resolved`,
//! `resolve_minutes`, `on_time`; for directives (due in the period) `unit`, `state`, `done`,
//! `on_time`, `overdue`, `ack_minutes`, `answer_minutes`. Minutes are `null` until the thing
//! happened. For observations: `value` and `entity` (`id`, `type`, `name`, `unit`, `domain`,
//! `attributes`).

use crate::rules::files::line_col;
use ioc_model::{Better, Domain, KpiStatus, Period, RuleProblem};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Observations,
    Alerts,
    Incidents,
    Directives,
}

/// How one entity's value over a period comes out of its rollups.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Each {
    #[default]
    Avg,
    Min,
    Max,
    Sum,
    Last,
    Count,
}

/// How the values of entities or records make one number.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    /// Percentage of those taking part that meet `where`.
    Share,
}

/// What a KPI is computed from.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<Each>,
    pub measure: Aggregate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
}

fn higher() -> Better {
    Better::Higher
}

fn yes() -> bool {
    true
}

/// One KPI definition.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KpiConfig {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    pub domain: Domain,
    pub period: Period,
    #[serde(default)]
    pub uom: String,
    pub target: f64,
    #[serde(default = "higher")]
    pub better: Better,
    pub green: f64,
    pub amber: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Broken down by unit (commune).
    #[serde(default = "yes")]
    pub by_unit: bool,
    /// The value when there is nothing to measure (no critical alert to acknowledge, no
    /// directive due); without it such a period has no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<f64>,
    pub of: Measure,
}

/// A compiled definition.
#[derive(Debug)]
pub struct Kpi {
    pub config: KpiConfig,
    /// Where it comes from: `config` or `console`.
    pub origin: &'static str,
    pub text: String,
    pub filter: Option<cel::Program>,
    pub value: Option<cel::Program>,
    pub where_: Option<cel::Program>,
}

impl Kpi {
    /// The status of a value.
    pub fn status(&self, value: Option<f64>) -> KpiStatus {
        let c = &self.config;
        let Some(v) = value else {
            return KpiStatus::Amber;
        };
        let (green, amber) = match c.better {
            Better::Higher => (v >= c.green, v >= c.amber),
            Better::Lower => (v <= c.green, v <= c.amber),
        };
        if green {
            KpiStatus::Green
        } else if amber {
            KpiStatus::Amber
        } else {
            KpiStatus::Red
        }
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
}

fn problem(text: &str, at: usize, message: String) -> RuleProblem {
    let (line, column) = line_col(text, at);
    RuleProblem {
        rule: None,
        origin: "text".into(),
        line,
        column,
        message,
    }
}

/// Where a key of the KPI (or of its `[of]`) starts in `text`.
fn key_at(text: &str, of: bool, key: &str) -> usize {
    let Ok(doc) = toml_edit::Document::parse(text.to_string()) else {
        return 0;
    };
    let table = if of {
        doc.get("of").and_then(|t| t.as_table())
    } else {
        Some(doc.as_table())
    };
    table
        .and_then(|t| t.get(key))
        .and_then(|i| i.span())
        .map(|s| s.start)
        .unwrap_or(0)
}

fn compile(
    text: &str,
    key: &str,
    cel_text: &Option<String>,
    known: &[&str],
) -> Result<Option<cel::Program>, RuleProblem> {
    let Some(src) = cel_text else { return Ok(None) };
    let program = cel::Program::compile(src).map_err(|errs| {
        let m = errs
            .errors
            .first()
            .map(|e| format!("{key}: {} (column {})", e.msg, e.pos.1.max(0) + 1))
            .unwrap_or_else(|| format!("{key}: {errs}"));
        problem(text, key_at(text, true, key), m)
    })?;
    for var in program.references().variables() {
        if !known.contains(&var) {
            return Err(problem(
                text,
                key_at(text, true, key),
                format!(
                    "{key}: unknown variable {var:?} (known: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(Some(program))
}

/// The variables a record of `source` has in CEL.
pub fn fields(source: Source) -> &'static [&'static str] {
    match source {
        Source::Observations => &["value", "entity"],
        Source::Alerts => &[
            "severity",
            "category",
            "domain",
            "rule",
            "unit",
            "state",
            "acked",
            "ack_minutes",
            "resolved",
            "resolve_minutes",
            "escalated",
            "silenced",
            "in_incident",
        ],
        Source::Incidents => &[
            "severity",
            "category",
            "domain",
            "unit",
            "state",
            "alerts",
            "steps",
            "late_steps",
            "resolved",
            "resolve_minutes",
            "on_time",
        ],
        Source::Directives => &[
            "unit",
            "state",
            "done",
            "on_time",
            "overdue",
            "ack_minutes",
            "answer_minutes",
        ],
    }
}

/// Parses and checks one definition's text; problems carry line and column.
pub fn parse(text: &str, origin: &'static str) -> Result<Kpi, Vec<RuleProblem>> {
    let config: KpiConfig = toml::from_str(text).map_err(|e| {
        vec![problem(
            text,
            e.span().map(|s| s.start).unwrap_or(0),
            e.message().trim().to_string(),
        )]
    })?;
    from_config(config, text, origin)
}

/// Checks a parsed definition and compiles its CEL.
pub fn from_config(
    config: KpiConfig,
    text: &str,
    origin: &'static str,
) -> Result<Kpi, Vec<RuleProblem>> {
    let mut problems = Vec::new();
    let top = |k: &str| key_at(text, false, k);
    if !valid_id(&config.id) {
        problems.push(problem(
            text,
            top("id"),
            format!(
                "id {:?}: lower-case letters, digits, '-' and '_'",
                config.id
            ),
        ));
    }
    if config.name.trim().is_empty() {
        problems.push(problem(text, top("name"), "a KPI needs a name".into()));
    }
    let ordered = match config.better {
        Better::Higher => config.green >= config.amber,
        Better::Lower => config.green <= config.amber,
    };
    if !ordered {
        problems.push(problem(
            text,
            top("amber"),
            format!(
                "with better = \"{}\", green must be {} amber",
                if config.better == Better::Higher {
                    "higher"
                } else {
                    "lower"
                },
                if config.better == Better::Higher {
                    "at or above"
                } else {
                    "at or below"
                }
            ),
        ));
    }
    let m = &config.of;
    let of = |k: &str| key_at(text, true, k);
    if m.source == Source::Observations {
        if m.metric.as_deref().is_none_or(|x| x.trim().is_empty()) {
            problems.push(problem(
                text,
                of("source"),
                "observations: which `metric`?".into(),
            ));
        }
    } else {
        for (k, v) in [("metric", &m.metric), ("entity_type", &m.entity_type)] {
            if v.is_some() {
                problems.push(problem(text, of(k), format!("`{k}` is for observations")));
            }
        }
        if m.each.is_some() {
            problems.push(problem(
                text,
                of("each"),
                "`each` is for observations".into(),
            ));
        }
        let needs_value = matches!(
            m.measure,
            Aggregate::Avg | Aggregate::Min | Aggregate::Max | Aggregate::Sum
        );
        if needs_value && m.value.is_none() {
            problems.push(problem(
                text,
                of("measure"),
                "avg, min, max and sum of records need a `value` (e.g. \"ack_minutes\")".into(),
            ));
        }
    }
    if m.measure == Aggregate::Share && m.where_.is_none() {
        problems.push(problem(
            text,
            of("measure"),
            "a share needs a `where`".into(),
        ));
    }
    let known = fields(m.source);
    let compiled = (
        compile(
            text,
            "filter",
            &m.filter,
            if m.source == Source::Observations {
                &["entity"]
            } else {
                known
            },
        ),
        compile(text, "value", &m.value, known),
        compile(text, "where", &m.where_, known),
    );
    let (filter, value, where_) = match compiled {
        (Ok(f), Ok(v), Ok(w)) => (f, v, w),
        (f, v, w) => {
            problems.extend([f.err(), v.err(), w.err()].into_iter().flatten());
            (None, None, None)
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Kpi {
        config,
        origin,
        text: text.to_string(),
        filter,
        value,
        where_,
    })
}

/// A definition as the editor shows it.
pub fn text_of(c: &KpiConfig) -> String {
    toml::to_string(c).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses() {
        for (id, text) in super::super::catalogue::starter() {
            let k = parse(&text, "console").unwrap_or_else(|p| panic!("{id}: {p:?}"));
            assert_eq!(k.config.id, id);
        }
    }

    #[test]
    fn mistakes_are_refused_with_their_place() {
        let base = "id = \"x\"\nname = \"X\"\ndomain = \"environment\"\nperiod = \"day\"\ntarget = 1.0\ngreen = 1.0\namber = 0.5\n";
        let p = parse(
            &format!("{base}[of]\nsource = \"observations\"\nmeasure = \"share\"\n"),
            "console",
        )
        .unwrap_err();
        let msgs: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert!(msgs.iter().any(|m| m.contains("metric")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("where")), "{msgs:?}");
        let p = parse(
            &format!(
                "{base}[of]\nsource = \"alerts\"\nmeasure = \"avg\"\nvalue = \"ack_minutess\"\n"
            ),
            "console",
        )
        .unwrap_err();
        assert!(p[0].message.contains("unknown variable"), "{p:?}");
        assert_eq!(p[0].line, 11, "{p:?}");
        let p = parse(
            &base
                .replace("amber = 0.5", "amber = 2.0")
                .replace("period = \"day\"", "period = \"day\"\nbetter = \"higher\"")
                .to_string(),
            "console",
        );
        assert!(p.is_err());
        let p = parse("id = \"x\"\nperiod = \"fortnight\"\n", "console").unwrap_err();
        assert_eq!(p[0].line, 2, "{p:?}");
    }

    #[test]
    fn status_follows_the_thresholds() {
        let k = parse(&super::super::catalogue::starter()[0].1, "console").unwrap();
        assert_eq!(k.config.better, Better::Higher);
        assert_eq!(k.status(Some(95.0)), KpiStatus::Green);
        assert_eq!(k.status(Some(80.0)), KpiStatus::Amber);
        assert_eq!(k.status(Some(10.0)), KpiStatus::Red);
        assert_eq!(k.status(None), KpiStatus::Amber);
    }
}
