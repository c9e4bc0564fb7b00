//! Backtest: replays stored raw observations through one rule, with a fresh [`Evaluator`]
//! and a simulated clock, and says when it would have raised and cleared an alert. The same
//! evaluator as the live pipeline, so "it would have fired here" means exactly that.

use super::{entity_value, Evaluator, Observed, RuleSet, Signal};
use crate::store::{Reader, StoreError};
use chrono::{DateTime, Utc};
use ioc_model::{BacktestFiring, BacktestResponse, Entity};
use std::collections::HashMap;
use std::sync::Arc;

/// At most this many observations are replayed by one backtest.
pub const MAX_OBSERVATIONS: usize = 3_000_000;

/// How often the simulated clock ticks (as the pipeline's tick does).
const TICK_MS: i64 = 60_000;

/// Replays `[from, to)` through `rules` (normally one rule). `entities`: the current
/// entities by external id (their attributes, unit and position are today's).
pub fn run(
    reader: &Reader,
    entities: &HashMap<String, Entity>,
    rules: &RuleSet,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Result<BacktestResponse, StoreError> {
    // Only the metrics the rules can match, unless one of them matches any.
    let mut metrics: Option<Vec<String>> = Some(Vec::new());
    for r in rules.rules() {
        match (&r.metrics, &mut metrics) {
            (Some(ms), Some(all)) => all.extend(ms.iter().cloned()),
            (None, _) => metrics = None,
            _ => {}
        }
    }
    let (rows, series, truncated) = reader.replay(
        metrics.as_deref(),
        from.timestamp_millis(),
        to.timestamp_millis(),
        limit,
    )?;
    // Internal numbers for the entities, as the pipeline has.
    let mut ids: HashMap<&str, i64> = HashMap::new();
    let mut cels = Vec::new();
    let series: Vec<(Option<i64>, Arc<str>)> = series
        .iter()
        .map(|(ext, metric)| {
            let id = entities.get(ext).map(|e| {
                let next = ids.len() as i64;
                *ids.entry(ext.as_str()).or_insert_with(|| {
                    cels.push((e, entity_value(e)));
                    next
                })
            });
            (id, Arc::from(metric.as_str()))
        })
        .collect();

    let mut eval = Evaluator::new(rules);
    let mut open: HashMap<(usize, i64), usize> = HashMap::new();
    let mut firings: Vec<BacktestFiring> = Vec::new();
    let handle = |signals: Vec<Signal>,
                  open: &mut HashMap<(usize, i64), usize>,
                  firings: &mut Vec<BacktestFiring>| {
        for s in signals {
            match s {
                Signal::Raise {
                    rule,
                    entity,
                    metric,
                    value,
                    at,
                } => {
                    let e = cels[entity as usize].0;
                    open.insert((rule, entity), firings.len());
                    firings.push(BacktestFiring {
                        entity: e.id.clone(),
                        entity_name: e.name.clone(),
                        unit: e.unit.clone(),
                        metric: metric.to_string(),
                        raised_at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                        cleared_at: None,
                        severity: rules.get(rule).severity_for(value),
                        value,
                        peak: value,
                    });
                }
                Signal::Clear { rule, entity, at } => {
                    if let Some(i) = open.remove(&(rule, entity)) {
                        firings[i].cleared_at = DateTime::from_timestamp_millis(at);
                    }
                }
            }
        }
    };
    let mut next_tick = from.timestamp_millis() + TICK_MS;
    let mut signals = Vec::new();
    for &(ts, value, s) in &rows {
        while ts >= next_tick {
            let due = eval.tick(rules, next_tick);
            handle(due, &mut open, &mut firings);
            next_tick += TICK_MS;
        }
        let (Some(eid), metric) = &series[s as usize] else {
            continue; // an entity that no longer exists
        };
        let (entity, cel) = &cels[*eid as usize];
        eval.observe(
            rules,
            &Observed {
                entity_id: *eid,
                entity,
                cel,
                metric,
                value,
                time: DateTime::from_timestamp_millis(ts).unwrap_or_default(),
            },
            &mut signals,
            |_, _| {},
        );
        handle(std::mem::take(&mut signals), &mut open, &mut firings);
        // The peak of what is raised for this entity and metric.
        for (&(_, e), &i) in open.iter() {
            if e == *eid && firings[i].metric == **metric && value > firings[i].peak {
                firings[i].peak = value;
            }
        }
    }
    let end = if truncated {
        rows.last().map(|r| r.0).unwrap_or(to.timestamp_millis())
    } else {
        to.timestamp_millis()
    };
    while next_tick <= end {
        let due = eval.tick(rules, next_tick);
        handle(due, &mut open, &mut firings);
        next_tick += TICK_MS;
    }
    Ok(BacktestResponse {
        from,
        to,
        observations: rows.len() as u64,
        truncated,
        firings,
    })
}
