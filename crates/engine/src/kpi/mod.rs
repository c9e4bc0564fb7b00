//! KPI management: definitions ([`def`]: TOML in the config file, or kept in the store and
//! edited on the KPI screen; the starter [`catalogue`] for Nghệ An), periods in the
//! province's time ([`period`]) and their computation ([`eval`]) from the rollups (hourly and
//! daily, kept up to date by the store writer with every commit) and from the alert,
//! incident and directive tables — never by rescanning raw observations, so a year of a KPI
//! is a few thousand rollup rows.

pub mod catalogue;
pub mod def;
pub mod eval;
pub mod period;
pub mod records;
mod settings;

use crate::store::{Reader, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use def::{Kpi, KpiConfig, Source};
use eval::{Buckets, Item};
use ioc_model::{KpiDef, KpiPoint, KpiSeries, KpiValue, Period, RuleProblem};
pub use settings::KpiSettings;
use std::sync::Arc;

/// The most periods one series holds (a year and a bit of days; six weeks of hours).
pub const MAX_POINTS: usize = 1100;

/// The KPIs in force.
#[derive(Default)]
pub struct KpiSet {
    pub kpis: Vec<Arc<Kpi>>,
    /// Definitions that do not compile (left out).
    pub problems: Vec<RuleProblem>,
}

impl KpiSet {
    /// The config file's definitions (read-only) and the store's, by id; a stored one with
    /// the id of a config one is left out.
    pub fn build(config: &[KpiConfig], stored: &[(String, String)]) -> KpiSet {
        KpiSet::build_with(config, stored, &Default::default())
    }

    /// As [`KpiSet::build`], the stored definitions named in `province` being the
    /// province's (kept from the IOC, read-only here).
    pub fn build_with(
        config: &[KpiConfig],
        stored: &[(String, String)],
        province: &std::collections::HashSet<String>,
    ) -> KpiSet {
        let mut set = KpiSet::default();
        for c in config {
            let text = def::text_of(c);
            match def::from_config(c.clone(), &text, "config") {
                Ok(k) => set.kpis.push(Arc::new(k)),
                Err(p) => set.problems.extend(p.into_iter().map(|mut p| {
                    p.rule = Some(c.id.clone());
                    p.origin = "config".into();
                    p
                })),
            }
        }
        for (id, text) in stored {
            if set.get(id).is_some() {
                continue;
            }
            let origin = if province.contains(id) {
                "province"
            } else {
                "console"
            };
            match def::parse(text, origin) {
                Ok(k) => set.kpis.push(Arc::new(k)),
                Err(p) => set.problems.extend(p.into_iter().map(|mut p| {
                    p.rule = Some(id.clone());
                    p.origin = origin.into();
                    p
                })),
            }
        }
        set
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Kpi>> {
        self.kpis.iter().find(|k| k.config.id == id)
    }

    pub fn defs(&self) -> Vec<KpiDef> {
        self.kpis
            .iter()
            .map(|k| KpiDef {
                id: k.config.id.clone(),
                name: k.config.name.clone(),
                domain: k.config.domain,
                period: k.config.period,
                text: k.text.clone(),
                origin: k.origin.to_string(),
                editable: k.origin == "console",
            })
            .collect()
    }
}

/// The items of each period (blocking: reads the store).
pub fn items(
    reader: &Reader,
    kpi: &Kpi,
    periods: &[(DateTime<Utc>, DateTime<Utc>)],
    tz: Tz,
) -> Result<Vec<Vec<Item>>, StoreError> {
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return Ok(Vec::new());
    };
    let (from, to) = (first.0, last.1);
    let m = &kpi.config.of;
    Ok(match m.source {
        Source::Observations => {
            let metric = m.metric.as_deref().unwrap_or_default();
            let measured = reader.measured(metric, m.entity_type.as_deref())?;
            let buckets = if periods.iter().all(|(f, t)| period::whole_days(*f, *t, tz)) {
                Buckets::Day
            } else {
                Buckets::Hour
            };
            let (b0, b1) = match buckets {
                Buckets::Day => (
                    period::local_day(from.timestamp_millis(), tz),
                    period::local_day(to.timestamp_millis(), tz),
                ),
                Buckets::Hour => (
                    from.timestamp_millis().div_euclid(3_600_000),
                    to.timestamp_millis().div_euclid(3_600_000),
                ),
            };
            let series: Vec<i64> = measured.iter().map(|e| e.series).collect();
            let rolls = reader.rolls(&series, buckets, b0, b1)?;
            eval::observation_items(kpi, periods, &measured, &rolls, buckets, tz)
        }
        Source::Alerts => {
            let recs = reader.alert_records(from.timestamp_millis(), to.timestamp_millis())?;
            eval::record_items(kpi, periods, &recs)
        }
        Source::Incidents => {
            let recs = reader.incident_records(from.timestamp_millis(), to.timestamp_millis())?;
            eval::record_items(kpi, periods, &recs)
        }
        Source::Directives => {
            let recs = reader.directive_records(from.timestamp_millis(), to.timestamp_millis())?;
            eval::record_items(kpi, periods, &recs)
        }
    })
}

/// The items of one period, only those of `units` if given (a unit's page, or the unit
/// scope of whoever asks: a commune's staff count their communes, not the province).
fn in_unit(items: Vec<Item>, units: Option<&[String]>) -> Vec<Item> {
    match units {
        None => items,
        Some(us) => items
            .into_iter()
            .filter(|i| i.unit.as_deref().is_some_and(|u| us.iter().any(|x| x == u)))
            .collect(),
    }
}

/// A KPI over `[from, to)` (of some units, if given) with its previous period and its
/// breakdown by unit.
pub fn value(
    reader: &Reader,
    kpi: &Kpi,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    period: Period,
    unit: Option<&[String]>,
    tz: Tz,
) -> Result<KpiValue, StoreError> {
    let prev = period::previous(period, from, tz);
    let mut all = items(reader, kpi, &[prev, (from, to)], tz)?;
    let now = in_unit(all.pop().unwrap_or_default(), unit);
    let before = in_unit(all.pop().unwrap_or_default(), unit);
    let o = eval::outcome(kpi, &now);
    let p = eval::outcome(kpi, &before);
    let c = &kpi.config;
    Ok(KpiValue {
        id: c.id.clone(),
        name: c.name.clone(),
        name_en: c.name_en.clone(),
        domain: c.domain,
        period,
        value: o.value,
        target: c.target,
        status: if o.no_data {
            ioc_model::KpiStatus::Amber
        } else {
            kpi.status(o.value)
        },
        no_data: o.no_data,
        uom: c.uom.clone(),
        better: c.better,
        green: c.green,
        amber: c.amber,
        owner: c.owner.clone(),
        from,
        to,
        numerator: o.numerator,
        denominator: o.denominator,
        previous: p.value.filter(|_| !p.no_data),
        by_unit: if c.by_unit {
            eval::by_unit(kpi, &now)
        } else {
            Vec::new()
        },
    })
}

/// The period a KPI is shown for: of kind `period` (default its own) containing `date`
/// (default: now).
pub fn range_of(
    kpi: &Kpi,
    period: Option<Period>,
    date: Option<NaiveDate>,
    now: DateTime<Utc>,
    tz: Tz,
) -> (Period, (DateTime<Utc>, DateTime<Utc>)) {
    let p = period.unwrap_or(kpi.config.period);
    let r = match date {
        Some(d) => period::of_date(p, d, tz),
        None => period::containing(p, now, tz),
    };
    (p, r)
}

/// A KPI's series over `[from, to)`, one point per period of its kind (or `period`).
pub fn series(
    reader: &Reader,
    kpi: &Kpi,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    period: Option<Period>,
    unit: Option<&[String]>,
    tz: Tz,
) -> Result<KpiSeries, StoreError> {
    let p = period.unwrap_or(kpi.config.period);
    let periods = period::between(p, from, to, tz, MAX_POINTS);
    let all = items(reader, kpi, &periods, tz)?;
    let points = periods
        .iter()
        .zip(all)
        .map(|((f, t), items)| {
            let o = eval::outcome(kpi, &in_unit(items, unit));
            KpiPoint {
                from: *f,
                to: *t,
                value: o.value,
                status: kpi.status(o.value),
                numerator: o.numerator,
                denominator: o.denominator,
            }
        })
        .collect();
    Ok(KpiSeries {
        id: kpi.config.id.clone(),
        period: p,
        uom: kpi.config.uom.clone(),
        target: kpi.config.target,
        unit: unit.filter(|u| u.len() == 1).map(|u| u[0].clone()),
        points,
    })
}

/// What is behind a KPI's number in one period (of one unit): the entities or records and
/// each one's value, counted ones first.
pub fn detail(
    reader: &Reader,
    kpi: &Kpi,
    range: (DateTime<Utc>, DateTime<Utc>),
    unit: Option<&[String]>,
    tz: Tz,
) -> Result<Vec<ioc_model::KpiItem>, StoreError> {
    let mut all = items(reader, kpi, &[range], tz)?;
    let mut v = in_unit(all.pop().unwrap_or_default(), unit);
    v.sort_by(|a, b| {
        b.counted
            .cmp(&a.counted)
            .then(
                b.value
                    .partial_cmp(&a.value)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(a.name.cmp(&b.name))
    });
    Ok(v.iter().map(Item::to_api).collect())
}
