//! Computing a KPI: which entities or records take part in each period, what each one's
//! value is, and how they make one number (and one per unit). Pure: the rollups and records
//! come in, numbers come out — the store reads are in `store/kpi.rs`.

use super::def::{Aggregate, Each, Kpi};
use super::period::local_day;
use super::records::Record;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ioc_model::{KpiItem, UnitValue};
use std::collections::{BTreeMap, HashMap};

/// An entity that measures the KPI's metric.
#[derive(Debug, Clone)]
pub struct Measured {
    pub series: i64,
    pub id: String,
    /// Its type (`AirQualityStation`).
    pub kind: String,
    pub name: String,
    pub unit: Option<String>,
    pub unit_name: Option<String>,
    /// What CEL sees as `entity`.
    pub cel: cel::Value,
}

/// One rollup row of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roll {
    pub series: i64,
    pub bucket: i64,
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub last: f64,
    pub last_ts: i64,
}

/// What the bucket numbers of the rollups are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buckets {
    /// Local days since 1970-01-01 (`rollup_1d`).
    Day,
    /// Hours since the epoch (`rollup_1h`).
    Hour,
}

/// One entity or record taking part in a KPI over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub unit: Option<String>,
    pub unit_name: Option<String>,
    /// Its number (the entity's value, the record's `value`), when it has one.
    pub value: Option<f64>,
    /// It meets `where` (all do when there is no `where`).
    pub counted: bool,
}

impl Item {
    pub fn to_api(&self) -> KpiItem {
        KpiItem {
            kind: self.kind.to_string(),
            id: self.id.clone(),
            name: self.name.clone(),
            unit: self.unit.clone(),
            unit_name: self.unit_name.clone(),
            value: self.value,
            counted: self.counted,
        }
    }
}

/// A KPI's number over a set of items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub value: Option<f64>,
    pub numerator: f64,
    pub denominator: f64,
    /// Nothing took part: `value` is the definition's `empty`, if any.
    pub no_data: bool,
}

fn number(v: &cel::Value) -> Option<f64> {
    match v {
        cel::Value::Float(f) => Some(*f).filter(|f| f.is_finite()),
        cel::Value::Int(i) => Some(*i as f64),
        cel::Value::UInt(u) => Some(*u as f64),
        cel::Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn run(program: &cel::Program, vars: &[(&str, cel::Value)]) -> Option<cel::Value> {
    let mut ctx = cel::Context::default();
    for (k, v) in vars {
        ctx.add_variable_from_value(*k, v.clone());
    }
    program.execute(&ctx).ok()
}

fn truth(program: &Option<cel::Program>, vars: &[(&str, cel::Value)]) -> bool {
    match program {
        None => true,
        Some(p) => matches!(run(p, vars), Some(cel::Value::Bool(true))),
    }
}

/// The periods' indexes of bucket ranges: `[start, end)` bucket numbers of each period.
fn bucket_ranges(
    periods: &[(DateTime<Utc>, DateTime<Utc>)],
    buckets: Buckets,
    tz: Tz,
) -> Vec<(i64, i64)> {
    periods
        .iter()
        .map(|(f, t)| match buckets {
            Buckets::Day => (
                local_day(f.timestamp_millis(), tz),
                local_day(t.timestamp_millis(), tz),
            ),
            Buckets::Hour => (
                f.timestamp_millis().div_euclid(3_600_000),
                t.timestamp_millis().div_euclid(3_600_000),
            ),
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Agg {
    count: i64,
    min: f64,
    max: f64,
    sum: f64,
    last: f64,
    last_ts: i64,
}

impl Agg {
    fn of(r: &Roll) -> Agg {
        Agg {
            count: r.count,
            min: r.min,
            max: r.max,
            sum: r.sum,
            last: r.last,
            last_ts: r.last_ts,
        }
    }

    fn merge(&mut self, r: &Roll) {
        self.count += r.count;
        self.min = self.min.min(r.min);
        self.max = self.max.max(r.max);
        self.sum += r.sum;
        if r.last_ts >= self.last_ts {
            self.last = r.last;
            self.last_ts = r.last_ts;
        }
    }

    fn each(&self, e: Each) -> f64 {
        match e {
            Each::Avg => self.sum / self.count.max(1) as f64,
            Each::Min => self.min,
            Each::Max => self.max,
            Each::Sum => self.sum,
            Each::Last => self.last,
            Each::Count => self.count as f64,
        }
    }
}

/// The items of each period from the rollups of the entities that measure the metric (an
/// entity with no data in a period does not take part in it).
pub fn observation_items(
    kpi: &Kpi,
    periods: &[(DateTime<Utc>, DateTime<Utc>)],
    entities: &[Measured],
    rolls: &[Roll],
    buckets: Buckets,
    tz: Tz,
) -> Vec<Vec<Item>> {
    let ranges = bucket_ranges(periods, buckets, tz);
    let taking_part: HashMap<i64, &Measured> = entities
        .iter()
        .filter(|m| {
            kpi.config
                .of
                .entity_type
                .as_deref()
                .is_none_or(|t| t == m.kind)
        })
        .filter(|m| truth(&kpi.filter, &[("entity", m.cel.clone())]))
        .map(|m| (m.series, m))
        .collect();
    // (period, series) → aggregate.
    let mut aggs: BTreeMap<(usize, i64), Agg> = BTreeMap::new();
    for r in rolls {
        if !taking_part.contains_key(&r.series) {
            continue;
        }
        let p = ranges.partition_point(|(_, end)| *end <= r.bucket);
        if p >= ranges.len() || r.bucket < ranges[p].0 {
            continue;
        }
        aggs.entry((p, r.series))
            .and_modify(|a| a.merge(r))
            .or_insert_with(|| Agg::of(r));
    }
    let each = kpi.config.of.each.unwrap_or_default();
    let mut out: Vec<Vec<Item>> = vec![Vec::new(); periods.len()];
    for ((p, series), agg) in aggs {
        let m = taking_part[&series];
        let raw = agg.each(each);
        let vars = [("value", cel::Value::Float(raw)), ("entity", m.cel.clone())];
        let value = match &kpi.value {
            Some(prog) => run(prog, &vars).as_ref().and_then(number),
            None => Some(raw),
        };
        let counted = truth(
            &kpi.where_,
            &[
                ("value", cel::Value::Float(value.unwrap_or(raw))),
                vars[1].clone(),
            ],
        );
        out[p].push(Item {
            kind: "entity",
            id: m.id.clone(),
            name: m.name.clone(),
            unit: m.unit.clone(),
            unit_name: m.unit_name.clone(),
            value,
            counted,
        });
    }
    out
}

/// The items of each period from records (each in the period its time falls in).
pub fn record_items(
    kpi: &Kpi,
    periods: &[(DateTime<Utc>, DateTime<Utc>)],
    records: &[Record],
) -> Vec<Vec<Item>> {
    let bounds: Vec<(i64, i64)> = periods
        .iter()
        .map(|(f, t)| (f.timestamp_millis(), t.timestamp_millis()))
        .collect();
    let mut out: Vec<Vec<Item>> = vec![Vec::new(); periods.len()];
    for r in records {
        let p = bounds.partition_point(|(_, end)| *end <= r.at);
        if p >= bounds.len() || r.at < bounds[p].0 {
            continue;
        }
        let vars: Vec<(&str, cel::Value)> = r.fields.clone();
        if !truth(&kpi.filter, &vars) {
            continue;
        }
        let value = kpi
            .value
            .as_ref()
            .and_then(|prog| run(prog, &vars))
            .as_ref()
            .and_then(number);
        out[p].push(Item {
            kind: r.kind,
            id: r.id.clone(),
            name: r.name.clone(),
            unit: r.unit.clone(),
            unit_name: r.unit_name.clone(),
            value,
            counted: truth(&kpi.where_, &vars),
        });
    }
    out
}

/// The number items make.
pub fn outcome(kpi: &Kpi, items: &[Item]) -> Outcome {
    let empty = || Outcome {
        value: kpi.config.empty,
        numerator: 0.0,
        denominator: 0.0,
        no_data: true,
    };
    let counted = items.iter().filter(|i| i.counted).count() as f64;
    let all = items.len() as f64;
    let values: Vec<f64> = items
        .iter()
        .filter(|i| i.counted || kpi.where_.is_none())
        .filter_map(|i| i.value)
        .collect();
    match kpi.config.of.measure {
        Aggregate::Count => Outcome {
            value: Some(counted),
            numerator: counted,
            denominator: all,
            no_data: false,
        },
        Aggregate::Share if all == 0.0 => empty(),
        Aggregate::Share => Outcome {
            value: Some(100.0 * counted / all),
            numerator: counted,
            denominator: all,
            no_data: false,
        },
        _ if values.is_empty() => empty(),
        m => {
            let n = values.len() as f64;
            let sum: f64 = values.iter().sum();
            let v = match m {
                Aggregate::Avg => sum / n,
                Aggregate::Sum => sum,
                Aggregate::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
                _ => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            };
            Outcome {
                value: Some(v),
                numerator: sum,
                denominator: n,
                no_data: false,
            }
        }
    }
}

/// The number per unit, worst first (items without a unit are left out).
pub fn by_unit(kpi: &Kpi, items: &[Item]) -> Vec<UnitValue> {
    let mut groups: BTreeMap<String, (String, Vec<Item>)> = BTreeMap::new();
    for i in items {
        if let Some(u) = &i.unit {
            groups
                .entry(u.clone())
                .or_insert_with(|| (i.unit_name.clone().unwrap_or_else(|| u.clone()), Vec::new()))
                .1
                .push(i.clone());
        }
    }
    let mut out: Vec<UnitValue> = groups
        .into_iter()
        .map(|(unit, (unit_name, items))| {
            let o = outcome(kpi, &items);
            UnitValue {
                unit,
                unit_name,
                value: o.value,
                status: kpi.status(o.value),
                numerator: o.numerator,
                denominator: o.denominator,
            }
        })
        .collect();
    let higher = kpi.config.better == ioc_model::Better::Higher;
    out.sort_by(|a, b| {
        let (x, y) = (a.value.unwrap_or(f64::NAN), b.value.unwrap_or(f64::NAN));
        let ord = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
        (if higher { ord } else { ord.reverse() }).then(a.unit_name.cmp(&b.unit_name))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::def::parse;
    use crate::kpi::period::{between, midnight};
    use chrono::NaiveDate;

    const VN: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn kpi(id: &str) -> Kpi {
        let (_, text) = crate::kpi::catalogue::starter()
            .into_iter()
            .find(|(i, _)| i == id)
            .unwrap();
        parse(&text, "console").unwrap()
    }

    fn entity(series: i64, kind: &str, unit: &str, attrs: serde_json::Value) -> Measured {
        let e = ioc_model::Entity::new(
            &format!("e{series}"),
            kind,
            &format!("Trạm {series}"),
            ioc_model::Domain::Environment,
        )
        .in_unit(unit, &format!("Xã {unit}"));
        let mut e = e;
        if let serde_json::Value::Object(m) = attrs {
            e.attributes = m;
        }
        Measured {
            series,
            id: e.id.clone(),
            kind: e.kind.clone(),
            name: e.name.clone(),
            unit: e.unit.clone(),
            unit_name: e.unit_name.clone(),
            cel: crate::rules::cel_value_of_entity(&e),
        }
    }

    fn day(d: u32) -> i64 {
        local_day(
            midnight(NaiveDate::from_ymd_opt(2026, 11, d).unwrap(), VN).timestamp_millis(),
            VN,
        )
    }

    fn roll(series: i64, bucket: i64, values: &[f64]) -> Roll {
        Roll {
            series,
            bucket,
            count: values.len() as i64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            sum: values.iter().sum(),
            last: *values.last().unwrap(),
            last_ts: bucket,
        }
    }

    /// Hand-computed: four stations over two days.
    /// Day 25: s1 avg 80 (≤100), s2 avg 120, s3 avg 100 (≤100) → 2 of 3 = 66.67 %.
    /// Day 26: s1 avg 90, s2 avg 95, s3 and s4 no data / s4 avg 150 → 2 of 3 = 66.67 %;
    /// commune A (s1, s2): day 26 100 %; commune B (s4): 0 %.
    #[test]
    fn a_share_of_stations_by_hand() {
        let k = kpi("aq-good-share");
        let st = [
            entity(1, "AirQualityStation", "A", serde_json::json!({})),
            entity(2, "AirQualityStation", "A", serde_json::json!({})),
            entity(3, "AirQualityStation", "B", serde_json::json!({})),
            entity(4, "AirQualityStation", "B", serde_json::json!({})),
            entity(9, "Camera", "B", serde_json::json!({})),
        ];
        let rolls = [
            roll(1, day(25), &[70.0, 90.0]),
            roll(2, day(25), &[120.0]),
            roll(3, day(25), &[100.0]),
            roll(1, day(26), &[90.0]),
            roll(2, day(26), &[90.0, 100.0]),
            roll(4, day(26), &[150.0]),
            roll(9, day(26), &[1.0]),
        ];
        let from = midnight(NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(), VN);
        let to = midnight(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(), VN);
        let days = between(ioc_model::Period::Day, from, to, VN, 10);
        let items = observation_items(&k, &days, &st, &rolls, Buckets::Day, VN);
        let o25 = outcome(&k, &items[0]);
        assert_eq!((o25.numerator, o25.denominator), (2.0, 3.0));
        assert!((o25.value.unwrap() - 66.666_666).abs() < 1e-3);
        let o26 = outcome(&k, &items[1]);
        assert_eq!(
            (o26.numerator, o26.denominator),
            (2.0, 3.0),
            "the camera does not take part"
        );
        let units = by_unit(&k, &items[1]);
        assert_eq!(units.len(), 2);
        assert_eq!(
            (units[0].unit.as_str(), units[0].value),
            ("B", Some(0.0)),
            "worst first"
        );
        assert_eq!(units[1].value, Some(100.0));
        // The two days together: each station's mean over both days.
        let both = observation_items(&k, &[(from, to)], &st, &rolls, Buckets::Day, VN);
        // s1 (70+90+90)/3 = 83.3 ✓, s2 (120+90+100)/3 = 103.3 ✗, s3 100 ✓, s4 150 ✗.
        let o = outcome(&k, &both[0]);
        assert_eq!((o.numerator, o.denominator), (2.0, 4.0));
        assert_eq!(o.value, Some(50.0));
    }

    #[test]
    fn attributes_and_value_expressions() {
        let k = kpi("river-below-alarm");
        let st = [
            entity(
                1,
                "WaterLevelGauge",
                "A",
                serde_json::json!({"alarm_1": 3.0}),
            ),
            entity(
                2,
                "WaterLevelGauge",
                "A",
                serde_json::json!({"alarm_1": 5.0}),
            ),
        ];
        let rolls = [roll(1, day(26), &[2.0, 3.2]), roll(2, day(26), &[4.9, 1.0])];
        let d = crate::kpi::period::of_date(
            ioc_model::Period::Day,
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            VN,
        );
        let items = observation_items(&k, &[d], &st, &rolls, Buckets::Day, VN);
        // Gauge 1's highest (3.2) reached its alarm I (3.0); gauge 2's (4.9) did not (5.0).
        assert_eq!(outcome(&k, &items[0]).value, Some(50.0));
        let cam = kpi("camera-availability");
        let cams = [
            entity(5, "Camera", "A", serde_json::json!({})),
            entity(6, "Camera", "A", serde_json::json!({})),
        ];
        let rolls = [
            roll(5, day(26), &[1.0, 1.0, 1.0, 0.0]),
            roll(6, day(26), &[1.0]),
        ];
        let items = observation_items(&cam, &[d], &cams, &rolls, Buckets::Day, VN);
        // (75 % + 100 %) / 2.
        assert_eq!(outcome(&cam, &items[0]).value, Some(87.5));
    }

    #[test]
    fn records_by_hand() {
        let k = kpi("mtta-critical");
        let d = crate::kpi::period::of_date(
            ioc_model::Period::Day,
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            VN,
        );
        let t = |m: i64| d.0 + chrono::Duration::minutes(m);
        let mk = |id: i64, sev: &str, raised: i64, acked: Option<i64>| {
            let mut a: ioc_model::Alert = serde_json::from_value(serde_json::json!({
                "id": id, "rule": "r", "entity_name": "x", "unit": "A", "unit_name": "Xã A",
                "domain": "water", "category": "flood", "severity": sev, "state": "new",
                "active": true, "message": "m", "raised_at": t(raised), "updated_at": t(raised),
                "count": 1
            }))
            .unwrap();
            a.acked_at = acked.map(t);
            crate::kpi::records::alert(&a)
        };
        // Critical alerts acknowledged after 4 and 10 minutes; one never; a major after 1.
        let recs = vec![
            mk(1, "critical", 0, Some(4)),
            mk(2, "critical", 60, Some(70)),
            mk(3, "critical", 120, None),
            mk(4, "major", 0, Some(1)),
            mk(5, "critical", 60 * 25, Some(60 * 25 + 1)), // the next day
        ];
        let items = record_items(&k, &[d], &recs);
        let o = outcome(&k, &items[0]);
        assert_eq!(o.value, Some(7.0));
        assert_eq!(k.status(o.value), ioc_model::KpiStatus::Amber);
        let share = kpi("alerts-acked-15m");
        let items = record_items(&share, &[d], &recs);
        // 3 of the 4 on that day acknowledged within 15 minutes.
        assert_eq!(outcome(&share, &items[0]).value, Some(75.0));
        // A day with nothing to acknowledge: the definition's `empty`.
        let none = record_items(&k, &[(t(-2000), t(-1500))], &recs);
        let o = outcome(&k, &none[0]);
        assert!(o.no_data);
        assert_eq!(o.value, Some(0.0));
    }
}
