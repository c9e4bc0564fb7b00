//! Decoders: bytes from a source become [`Item`]s (entities, observations, alerts) or a
//! reason why not. A decoder never panics on input and never drops part of a payload
//! silently: a payload is either decoded whole or refused with the reason, which goes to the
//! dead-letter table with the bytes.

pub mod cap;
pub mod csv;
pub mod geojson;
pub mod json;
pub mod ngsi_ld;
pub mod sensorthings;

use crate::ingest::Item;
use chrono::{DateTime, Utc};

/// Payloads larger than this are refused before parsing (files larger than this are
/// imported row by row by `ioc import csv`).
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// Where a payload came from.
#[derive(Clone, Debug)]
pub struct DecodeCtx<'a> {
    pub source: &'a str,
    /// MQTT topic, HTTP URL, file name…
    pub origin: Option<&'a str>,
    /// When it arrived: the time of observations that carry none.
    pub received_at: DateTime<Utc>,
}

/// A decoder by its configured name.
pub trait Decoder: Send + Sync {
    fn decode(&self, payload: &[u8], ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String>;
}

/// The decoders that can be named in `[[source]] decoder = "…"`.
pub const DECODERS: &[&str] = &["ngsi-ld", "sensorthings", "cap", "json", "geojson", "csv"];

/// The decoder for a file, from its name and first bytes: `.xml`/`.cap` CAP, `.geojson`
/// GeoJSON entities, `.csv` CSV, other JSON NGSI-LD.
pub fn detect(name: Option<&str>, payload: &[u8]) -> &'static str {
    let ext = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("xml" | "cap") => "cap",
        Some("geojson") => "geojson",
        Some("csv") => "csv",
        Some("json" | "jsonld") => "ngsi-ld",
        _ => {
            let first = payload.iter().find(|b| !b.is_ascii_whitespace());
            if first == Some(&b'<') {
                "cap"
            } else {
                "ngsi-ld"
            }
        }
    }
}

/// A decoder's configuration: its name and, for `json`, `geojson` and `csv`, the mapping
/// (a TOML table, `[source.mapping]`).
pub fn build(
    name: &str,
    mapping: Option<&toml::Value>,
) -> Result<std::sync::Arc<dyn Decoder>, String> {
    use std::sync::Arc;
    let parse = |what: &str| -> Result<toml::Value, String> {
        mapping
            .cloned()
            .ok_or_else(|| format!("decoder {what:?} needs a [source.mapping] table"))
    };
    Ok(match name {
        "ngsi-ld" | "ngsi" => Arc::new(ngsi_ld::NgsiLd),
        "cap" => Arc::new(cap::Cap),
        "json" => {
            let m: json::JsonMapping = parse(name)?
                .try_into()
                .map_err(|e: toml::de::Error| format!("mapping: {}", e.to_string().trim()))?;
            Arc::new(json::JsonDecoder::new(m)?)
        }
        "csv" => {
            let m: self::csv::CsvMapping = parse(name)?
                .try_into()
                .map_err(|e: toml::de::Error| format!("mapping: {}", e.to_string().trim()))?;
            Arc::new(self::csv::CsvDecoder::new(m)?)
        }
        "geojson" => {
            let m: geojson::GeoJsonMapping = match mapping {
                Some(v) => v
                    .clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| format!("mapping: {}", e.to_string().trim()))?,
                None => Default::default(),
            };
            Arc::new(geojson::GeoJsonDecoder { mapping: m })
        }
        "sensorthings" => {
            let m: sensorthings::SensorThingsMapping = match mapping {
                Some(v) => v
                    .clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| format!("mapping: {}", e.to_string().trim()))?,
                None => Default::default(),
            };
            Arc::new(sensorthings::SensorThingsDecoder { mapping: m })
        }
        other => {
            return Err(format!(
                "unknown decoder {other:?} (one of {})",
                DECODERS.join(", ")
            ))
        }
    })
}

/// Parses a payload as UTF-8 JSON with the common checks (size, encoding).
pub fn json(payload: &[u8]) -> Result<serde_json::Value, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "payload of {} bytes is larger than the {} byte limit",
            payload.len(),
            MAX_PAYLOAD
        ));
    }
    let text = std::str::from_utf8(payload)
        .map_err(|e| format!("payload is not UTF-8 (byte {}): {e}", e.valid_up_to()))?;
    serde_json::from_str(text).map_err(|e| format!("payload is not valid JSON: {e}"))
}

/// Reads a time as sent by the many systems out there: RFC 3339, or ISO 8601 without an
/// offset (taken as UTC), with optional fractional seconds; `a/b` intervals give `b`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let s = s.rsplit_once('/').map(|(_, end)| end).unwrap_or(s);
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Whether `f` holds for every position of a GeoJSON geometry (of its members, for a
/// collection).
fn every_position(v: &::geojson::GeometryValue, f: &dyn Fn(&::geojson::Position) -> bool) -> bool {
    use ::geojson::GeometryValue as V;
    match v {
        V::Point { coordinates } => f(coordinates),
        V::MultiPoint { coordinates } | V::LineString { coordinates } => coordinates.iter().all(f),
        V::MultiLineString { coordinates } | V::Polygon { coordinates } => {
            coordinates.iter().flatten().all(f)
        }
        V::MultiPolygon { coordinates } => coordinates.iter().flatten().flatten().all(f),
        V::GeometryCollection { geometries } => {
            geometries.iter().all(|g| every_position(&g.value, f))
        }
    }
}

/// A GeoJSON geometry as a `geo` one, or `None` when a position has fewer than two numbers:
/// the geojson crate reads `[4]` as a position and then panics converting it (found by
/// fuzzing: `tests/fuzz_regressions/decode_geojson/`).
pub fn to_geo(g: &::geojson::Geometry) -> Option<geo::Geometry<f64>> {
    if !every_position(&g.value, &|p| p.len() >= 2) {
        return None;
    }
    geo::Geometry::try_from(g).ok()
}

/// Whether `g` is a GeoJSON geometry whose every position is a longitude and latitude on
/// Earth (what the map, geofences and the CAP export can draw an alert's area from).
pub fn geometry_on_earth(g: &serde_json::Value) -> bool {
    let Ok(gj) = serde_json::from_value::<::geojson::Geometry>(g.clone()) else {
        return false;
    };
    every_position(&gj.value, &|p| {
        p.len() >= 2 && p[0].abs() <= 180.0 && p[1].abs() <= 90.0
    })
}

/// A representative point of a GeoJSON geometry: the point itself, or a point inside a
/// polygon, or the centroid of anything else.
pub fn geometry_point(g: &serde_json::Value) -> Option<(f64, f64)> {
    use geo::{Centroid, InteriorPoint};
    let gj: ::geojson::Geometry = serde_json::from_value(g.clone()).ok()?;
    let geom = to_geo(&gj)?;
    let p = match &geom {
        geo::Geometry::Point(p) => Some(*p),
        geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_) => geom.interior_point(),
        _ => geom.centroid(),
    }?;
    (p.x().is_finite() && p.y().is_finite()).then_some((p.x(), p.y()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_forms_seen_in_the_wild() {
        let t = |s| parse_time(s).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2016-03-15T11:00:00Z").unwrap(),
            "2016-03-15T11:00:00+00:00"
        );
        assert_eq!(
            t("2020-09-16T13:30:00+05:30").unwrap(),
            "2020-09-16T08:00:00+00:00"
        );
        assert_eq!(
            t("2016-03-15T11:00:00").unwrap(),
            "2016-03-15T11:00:00+00:00"
        );
        assert_eq!(
            t("2016-11-30T07:00:00.00Z").unwrap(),
            "2016-11-30T07:00:00+00:00"
        );
        assert_eq!(
            t("2016-12-07T11:10:00/2016-12-07T11:15:00").unwrap(),
            "2016-12-07T11:15:00+00:00"
        );
        assert_eq!(t("2016-07-31").unwrap(), "2016-07-31T00:00:00+00:00");
        assert!(t("yesterday").is_none());
    }

    #[test]
    fn junk_is_refused_with_a_reason() {
        assert!(json(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
        assert!(json(b"{\"a\":").unwrap_err().contains("not valid JSON"));
        assert!(json(&vec![b' '; MAX_PAYLOAD + 1])
            .unwrap_err()
            .contains("limit"));
    }

    #[test]
    fn geometry_points() {
        let p = serde_json::json!({"type": "Point", "coordinates": [105.7, 18.7]});
        assert_eq!(geometry_point(&p), Some((105.7, 18.7)));
        let poly = serde_json::json!({"type": "Polygon", "coordinates": [[[105.0, 18.0], [106.0, 18.0], [106.0, 19.0], [105.0, 19.0], [105.0, 18.0]]]});
        let (x, y) = geometry_point(&poly).unwrap();
        assert!((105.0..106.0).contains(&x) && (18.0..19.0).contains(&y));
        assert_eq!(geometry_point(&serde_json::json!({"type": "Point"})), None);
        // Fewer than two numbers in a position: no point (the conversion used to panic).
        let short = serde_json::json!({"type": "Point", "coordinates": [105.7]});
        assert_eq!(geometry_point(&short), None);
        let short = serde_json::json!({"type": "Polygon", "coordinates": [[[4]]]});
        assert_eq!(geometry_point(&short), None);
        assert!(geometry_on_earth(&poly));
        assert!(!geometry_on_earth(&short));
        let off = serde_json::json!({"type": "Polygon", "coordinates": [[[255, 9]]]});
        assert!(!geometry_on_earth(&off));
    }
}
