//! The metrics the console knows how to label, with their units of measure. Metrics outside
//! this list still flow through the system; they are shown by their raw name.

/// Known metric: id, unit of measure, decimals to show.
pub struct MetricInfo {
    pub id: &'static str,
    pub uom: &'static str,
    pub decimals: usize,
}

const fn m(id: &'static str, uom: &'static str, decimals: usize) -> MetricInfo {
    MetricInfo { id, uom, decimals }
}

/// In the order the entity panel lists them.
pub const METRICS: &[MetricInfo] = &[
    m("pm25", "µg/m³", 1),
    m("pm10", "µg/m³", 1),
    m("vn_aqi", "", 0),
    m("aqi_us", "", 0),
    m("pm25_nowcast", "µg/m³", 1),
    m("pm10_nowcast", "µg/m³", 0),
    m("temperature", "°C", 1),
    m("humidity", "%", 0),
    m("water_level", "m", 2),
    m("rain_1h", "mm", 1),
    m("intensity", "xe/h", 0),
    m("speed", "km/h", 0),
    m("online", "", 0),
];

pub fn info(metric: &str) -> Option<&'static MetricInfo> {
    METRICS.iter().find(|m| m.id == metric)
}

/// The VN_AQI band (1 Tốt … 6 Nguy hại) of an index value, as Decision 1459/QĐ-TCMT defines
/// them: 0–50, 51–100, 101–150, 151–200, 201–300, above 300.
pub fn vn_aqi_band(aqi: f64) -> u8 {
    match aqi.round() as i64 {
        i64::MIN..=50 => 1,
        51..=100 => 2,
        101..=150 => 3,
        151..=200 => 4,
        201..=300 => 5,
        _ => 6,
    }
}

/// Unit of measure of a metric, or "" when unknown.
pub fn uom(metric: &str) -> &'static str {
    info(metric).map(|m| m.uom).unwrap_or("")
}

/// A value formatted with the metric's usual number of decimals.
pub fn format_value(metric: &str, value: f64) -> String {
    let decimals = info(metric).map(|m| m.decimals).unwrap_or(2);
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_known_decimals() {
        assert_eq!(format_value("pm25", 151.26), "151.3");
        assert_eq!(format_value("water_level", 3.1), "3.10");
        assert_eq!(format_value("something_else", 1.0), "1.00");
        assert_eq!(uom("pm10"), "µg/m³");
        assert_eq!(uom("nope"), "");
    }
}
