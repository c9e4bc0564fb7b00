//! Plausible ranges of metrics. A reading outside its metric's range is not a reading: it is
//! a missing-value marker (AirNow's −999), a unit mix-up or a broken sensor, and averaging it
//! would make rollups, KPIs and rules lie. It is refused with its reason, so it lands in the
//! dead letters (grouped by cause), never in a series.
//!
//! Every metric the engine knows has a default range ([`DEFAULTS`]); `[metrics.<name>]` in
//! the configuration sets `min` and/or `max` of any metric, known or not (a bound not given
//! keeps the default).

use std::collections::{BTreeMap, HashMap};

/// The default ranges: (metric, min, max, unit). Wide enough for the worst real episodes
/// (PM2.5 near 1,000 µg/m³ in Beijing's January 2013, dust storms with PM10 in the
/// thousands), narrow enough to catch markers and signs.
///
/// Particulates may read a little below zero: a monitor's noise around a clean hour
/// (AirNow's Hanoi file has hours of −1 to −4 µg/m³ marked Valid, and EPA's AQS accepts
/// hourly PM2.5 down to −10); such an hour is averaged as it is, as AirNow does, or the
/// averages of clean days would be biased upwards.
pub const DEFAULTS: &[(&str, Option<f64>, Option<f64>, &str)] = &[
    ("pm25", Some(-10.0), Some(2_000.0), "µg/m³"),
    ("pm10", Some(-10.0), Some(10_000.0), "µg/m³"),
    ("pm1", Some(-10.0), Some(2_000.0), "µg/m³"),
    ("no2", Some(0.0), None, ""),
    ("so2", Some(0.0), None, ""),
    ("o3", Some(0.0), None, ""),
    ("co", Some(0.0), None, ""),
    ("pm25_nowcast", Some(-10.0), Some(2_000.0), "µg/m³"),
    ("pm10_nowcast", Some(-10.0), Some(10_000.0), "µg/m³"),
    ("aqi_us", Some(0.0), Some(500.0), ""),
    ("vn_aqi", Some(0.0), Some(500.0), ""),
    ("humidity", Some(0.0), Some(100.0), "%"),
    ("temperature", Some(-60.0), Some(60.0), "°C"),
    ("rain", Some(0.0), None, "mm"),
    ("rainfall", Some(0.0), None, "mm"),
    ("speed", Some(0.0), Some(400.0), "km/h"),
    ("vehiclespeed", Some(0.0), Some(400.0), "km/h"),
    ("vehiclecount", Some(0.0), None, ""),
    ("intensity", Some(0.0), None, ""),
    ("online", Some(0.0), Some(1.0), ""),
];

/// The ranges in force.
#[derive(Debug, Clone)]
pub struct Ranges {
    by_metric: HashMap<String, (Option<f64>, Option<f64>, String)>,
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges::new(&BTreeMap::new())
    }
}

impl Ranges {
    /// The defaults, with `[metrics.<name>]` of the configuration over them.
    pub fn new(configured: &BTreeMap<String, MetricRange>) -> Ranges {
        let mut by_metric: HashMap<String, (Option<f64>, Option<f64>, String)> = DEFAULTS
            .iter()
            .map(|(m, lo, hi, unit)| (m.to_string(), (*lo, *hi, unit.to_string())))
            .collect();
        for (metric, r) in configured {
            let e = by_metric
                .entry(metric.clone())
                .or_insert((None, None, String::new()));
            if r.min.is_some() {
                e.0 = r.min;
            }
            if r.max.is_some() {
                e.1 = r.max;
            }
        }
        Ranges { by_metric }
    }

    /// The range of `metric` in force (min, max), if it has one.
    pub fn bounds(&self, metric: &str) -> Option<(Option<f64>, Option<f64>)> {
        self.by_metric.get(metric).map(|(lo, hi, _)| (*lo, *hi))
    }

    /// Why `value` cannot be a reading of `metric`, if it cannot.
    pub fn check(&self, metric: &str, value: f64) -> Result<(), String> {
        let Some((lo, hi, unit)) = self.by_metric.get(metric) else {
            return Ok(());
        };
        let below = lo.is_some_and(|lo| value < lo);
        let above = hi.is_some_and(|hi| value > hi);
        if !below && !above {
            return Ok(());
        }
        let bound = |b: &Option<f64>| b.map(|b| b.to_string()).unwrap_or_else(|| "…".into());
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        Err(format!(
            "{metric} {value} is outside its plausible range {} to {}{unit} \
             (a missing-value marker or a faulty sensor; [metrics.{metric}] sets the range)",
            bound(lo),
            bound(hi)
        ))
    }
}

/// `[metrics.<name>]`: the plausible range of a metric. A reading outside is refused to the
/// dead letters with the reason; a bound not given keeps the default.
#[derive(serde::Deserialize, Debug, Clone, Copy, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_impossible_values_are_refused_with_the_range() {
        let r = Ranges::default();
        let e = r.check("pm25", -999.0).unwrap_err();
        assert!(
            e.contains("pm25 -999") && e.contains("-10 to 2000 µg/m³"),
            "{e}"
        );
        assert!(
            r.check("pm25", -4.0).is_ok(),
            "a clean hour's noise (AirNow: Valid)"
        );
        assert!(r.check("pm25", -15.0).is_err(), "AirNow: Invalid");
        assert!(r.check("pm25", 0.0).is_ok());
        assert!(r.check("pm25", 886.0).is_ok(), "Beijing, January 2013");
        assert!(r.check("humidity", 100.5).is_err());
        assert!(r.check("humidity", 55.0).is_ok());
        assert!(r.check("temperature", -80.0).is_err());
        assert!(r.check("no2", 1e6).is_ok(), "no upper bound");
        assert!(r.check("water_level", -3.2).is_ok(), "no range: any value");
    }

    #[test]
    fn the_configuration_sets_either_bound_of_any_metric() {
        let mut c = BTreeMap::new();
        c.insert(
            "temperature".to_string(),
            MetricRange {
                min: Some(-90.0),
                max: None,
            },
        );
        c.insert(
            "water_level".to_string(),
            MetricRange {
                min: Some(-5.0),
                max: Some(30.0),
            },
        );
        let r = Ranges::new(&c);
        assert!(r.check("temperature", -80.0).is_ok());
        assert!(
            r.check("temperature", 61.0).is_err(),
            "the default max stays"
        );
        assert!(r.check("water_level", 31.0).is_err());
        assert!(r
            .check("water_level", -6.0)
            .unwrap_err()
            .contains("-5 to 30"));
    }
}
