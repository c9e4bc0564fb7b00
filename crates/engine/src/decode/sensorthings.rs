//! OGC SensorThings API 1.1 (`decoder = "sensorthings"`): a response of a SensorThings
//! server becomes entities and observations.
//!
//! - A **Thing** (with its `Locations` and `Datastreams` expanded, as the `sensorthings`
//!   source asks for them) becomes an entity placed at its first location; its kind follows
//!   from what its Datastreams observe (PM2.5 → `AirQualityStation`, water level →
//!   `WaterLevelGauge`, …).
//! - An **Observation** with its `Datastream` expanded, and within it the `Thing` and
//!   `ObservedProperty`, becomes an observation of that Thing's entity; a Datastream with
//!   its `Thing` and `Observations` expanded works too. The metric is named after the
//!   ObservedProperty (`PM2.5` → `pm25`, `Water level` → `water_level`, else a snake_case
//!   form of its name), so rules written for other sources apply.
//!
//! Entity ids are `<source>:<@iot.id>` (ids are only unique within one server), or
//! `<id_prefix><@iot.id>` with a mapping. A response is a collection (`{"value": […]}`)
//! or a single entity; an element that is none of the above, or an observation without a
//! numeric result, is refused on its own with the reason, and the rest is kept.
//!
//! ```toml
//! [source.mapping]                      # all optional
//! id_prefix = "sta-"
//! kind = "AirQualityStation"            # for every Thing
//! metrics = { "PM2.5 Vinh" = "pm25" }   # Datastream or ObservedProperty name → metric
//! ```

use super::{geometry_point, json, parse_time, DecodeCtx, Decoder};
use crate::decode::ngsi_ld::domain_of;
use crate::ingest::{Item, Obs};
use ioc_model::Entity;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SensorThingsMapping {
    #[serde(default)]
    pub id_prefix: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct SensorThingsDecoder {
    pub mapping: SensorThingsMapping,
}

/// The metric our rules know for an observed property's name, else its snake_case form.
pub fn metric_name(name: &str) -> String {
    // Vietnamese names too: "Mực nước" → "muc nuoc".
    let name = deunicode::deunicode(name);
    let squashed: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let known = match squashed.as_str() {
        "pm25" | "pm2" | "particulatematter25" | "pm25concentration" | "finedust" => "pm25",
        "pm10" | "particulatematter10" | "pm10concentration" => "pm10",
        "temperature" | "airtemperature" | "temp" => "temperature",
        "humidity" | "relativehumidity" | "rh" => "humidity",
        "waterlevel" | "gageheight" | "gaugeheight" | "stage" | "riverlevel" | "mucnuoc" => {
            "water_level"
        }
        "rain" | "rainfall" | "precipitation" | "luongmua" | "rain1h" => "rain_1h",
        "nhietdo" => "temperature",
        "doam" => "humidity",
        "speed" | "averagespeed" | "vehiclespeed" => "speed",
        "intensity" | "trafficintensity" | "vehiclecount" | "trafficflow" => "intensity",
        _ => "",
    };
    if !known.is_empty() {
        return known.into();
    }
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// What a Thing is, from the metrics of its Datastreams.
fn kind_of(metrics: &[String]) -> &'static str {
    let has = |m: &str| metrics.iter().any(|x| x == m);
    if has("pm25") || has("pm10") {
        "AirQualityStation"
    } else if has("water_level") {
        "WaterLevelGauge"
    } else if has("rain_1h") {
        "RainGauge"
    } else if has("intensity") || has("speed") {
        "TrafficCounter"
    } else if has("temperature") || has("humidity") {
        "WeatherStation"
    } else {
        "Thing"
    }
}

fn iot_id(v: &Value) -> Option<String> {
    match v.get("@iot.id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl SensorThingsDecoder {
    fn entity_id(&self, ctx: &DecodeCtx<'_>, thing: &str) -> String {
        match &self.mapping.id_prefix {
            Some(p) => format!("{p}{thing}"),
            None => format!("{}:{thing}", ctx.source),
        }
    }

    /// The metric of a Datastream: as mapped, else from its ObservedProperty, else its name.
    fn metric(&self, ds: &Value) -> Option<String> {
        let op = ds.get("ObservedProperty");
        let names = [
            text(ds, "name"),
            op.and_then(|o| text(o, "name")),
            op.and_then(|o| text(o, "definition")),
        ];
        if let Some(m) = names
            .iter()
            .flatten()
            .find_map(|n| self.mapping.metrics.get(*n))
        {
            return Some(m.clone());
        }
        let from = op
            .and_then(|o| text(o, "name"))
            .or_else(|| {
                op.and_then(|o| text(o, "definition"))
                    .and_then(|d| d.rsplit(['/', '#']).find(|s| !s.is_empty()))
            })
            .or_else(|| text(ds, "name"))?;
        Some(metric_name(from)).filter(|m| !m.is_empty())
    }

    fn thing(&self, t: &Value, ctx: &DecodeCtx<'_>, out: &mut Vec<Item>) -> Result<(), String> {
        let id = iot_id(t).ok_or("a Thing without @iot.id")?;
        let eid = self.entity_id(ctx, &id);
        let datastreams = t.get("Datastreams").and_then(Value::as_array);
        let mut described = Vec::new();
        let mut metrics = Vec::new();
        for ds in datastreams.into_iter().flatten() {
            let Some(metric) = self.metric(ds) else {
                continue;
            };
            let unit = ds
                .get("unitOfMeasurement")
                .and_then(|u| text(u, "symbol").or_else(|| text(u, "name")));
            described.push(serde_json::json!({
                "id": iot_id(ds),
                "name": text(ds, "name"),
                "metric": metric,
                "unit": unit,
            }));
            metrics.push(metric);
        }
        let kind = self
            .mapping
            .kind
            .clone()
            .unwrap_or_else(|| kind_of(&metrics).to_string());
        let name = text(t, "name").unwrap_or(&eid).to_string();
        let mut e = Entity::new(&eid, &kind, &name, domain_of(&kind));
        let place = t
            .get("Locations")
            .and_then(Value::as_array)
            .and_then(|ls| ls.iter().find_map(|l| l.get("location")));
        if let Some(g) = place {
            // A Location's `location` is GeoJSON: a bare geometry or a Feature.
            let g = g.get("geometry").unwrap_or(g);
            let (lon, lat) = geometry_point(g)
                .ok_or_else(|| format!("Thing {id}: its Location is not valid GeoJSON"))?;
            e = e.at(lon, lat);
        }
        if let Some(d) = text(t, "description") {
            e.attributes.insert("description".into(), d.into());
        }
        if let Some(Value::Object(p)) = t.get("properties") {
            for (k, v) in p {
                if !v.is_null() {
                    e.attributes.insert(k.clone(), v.clone());
                }
            }
        }
        e.attributes.insert("sensorthings_id".into(), id.into());
        if !described.is_empty() {
            e.attributes
                .insert("datastreams".into(), Value::Array(described));
        }
        out.push(Item::Entity(Box::new(e)));
        // Datastreams that came with their Observations.
        for ds in datastreams.into_iter().flatten() {
            if let Some(obs) = ds.get("Observations").and_then(Value::as_array) {
                for o in obs {
                    out.push(self.observation(o, ds, &eid).unwrap_or_else(Item::Rejected));
                }
            }
        }
        Ok(())
    }

    fn observation(&self, o: &Value, ds: &Value, entity: &str) -> Result<Item, String> {
        let oid = iot_id(o).unwrap_or_else(|| "?".into());
        let at = |e: String| format!("Observation {oid}: {e}");
        let metric = self
            .metric(ds)
            .ok_or_else(|| at("its Datastream has no name or ObservedProperty".into()))?;
        let time = ["phenomenonTime", "resultTime"]
            .iter()
            .find_map(|k| text(o, k))
            .ok_or_else(|| at("no phenomenonTime or resultTime".into()))?;
        let time = parse_time(time).ok_or_else(|| at(format!("time {time:?} is not ISO 8601")))?;
        let value = match o.get("result") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            at(format!(
                "result {} is not a number",
                o.get("result").unwrap_or(&Value::Null)
            ))
        })?;
        Ok(Item::Obs(Obs {
            entity: Arc::from(entity),
            metric: Arc::from(metric.as_str()),
            time,
            value,
        }))
    }

    fn element(&self, v: &Value, ctx: &DecodeCtx<'_>, out: &mut Vec<Item>) -> Result<(), String> {
        if !v.is_object() {
            return Err(format!("{v} is not a SensorThings entity"));
        }
        if let Some(ds) = v.get("Datastream").filter(|d| d.is_object()) {
            let thing = ds
                .get("Thing")
                .and_then(iot_id)
                .ok_or("an Observation whose Datastream comes without its Thing ($expand=Datastream($expand=Thing))")?;
            out.push(self.observation(v, ds, &self.entity_id(ctx, &thing))?);
            return Ok(());
        }
        if let (Some(thing), Some(obs)) = (
            v.get("Thing").and_then(iot_id),
            v.get("Observations").and_then(Value::as_array),
        ) {
            let eid = self.entity_id(ctx, &thing);
            for o in obs {
                out.push(self.observation(o, v, &eid).unwrap_or_else(Item::Rejected));
            }
            return Ok(());
        }
        let self_link = text(v, "@iot.selfLink").unwrap_or("");
        if v.get("Datastreams").is_some()
            || v.get("Locations").is_some()
            || self_link.contains("/Things(")
        {
            return self.thing(v, ctx, out);
        }
        if v.get("result").is_some() {
            return Err(
                "an Observation without its Datastream ($expand=Datastream($expand=Thing,ObservedProperty))"
                    .into(),
            );
        }
        Err("neither a Thing nor an Observation with its Datastream".into())
    }
}

impl Decoder for SensorThingsDecoder {
    fn decode(&self, payload: &[u8], ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String> {
        let v = json(payload)?;
        let elements = match v.get("value") {
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err("`value` is not an array".into()),
            None if v.is_object() => vec![v],
            None => return Err("not a SensorThings response: expected an object".into()),
        };
        let mut out = Vec::new();
        for (i, e) in elements.iter().enumerate() {
            if let Err(reason) = self.element(e, ctx, &mut out) {
                out.push(Item::Rejected(format!("element #{}: {reason}", i + 1)));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> DecodeCtx<'static> {
        DecodeCtx {
            source: "sta",
            origin: None,
            received_at: "2026-11-26T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn property_names_become_our_metrics() {
        assert_eq!(metric_name("PM2.5"), "pm25");
        assert_eq!(metric_name("Particulate Matter 2.5"), "pm25");
        assert_eq!(metric_name("Water level"), "water_level");
        assert_eq!(metric_name("Mực nước"), "water_level");
        assert_eq!(metric_name("Relative Humidity"), "humidity");
        assert_eq!(
            metric_name("Nitrogen dioxide (NO2)"),
            "nitrogen_dioxide_no2"
        );
        assert_eq!(metric_name("Nhiệt độ"), "temperature");
        assert_eq!(metric_name("Độ đục"), "do_duc");
        assert_eq!(metric_name("  "), "");
    }

    #[test]
    fn things_and_observations() {
        let things = include_str!("../../tests/sensorthings_seed.json");
        let items = SensorThingsDecoder::default()
            .decode(things.as_bytes(), &ctx())
            .unwrap();
        let Item::Entity(e) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(e.id, "sta:1");
        assert_eq!(e.kind, "AirQualityStation");
        assert_eq!(e.position(), Some((105.68, 18.67)));
        assert_eq!(e.attributes["datastreams"][0]["unit"], "µg/m³");
        let Item::Obs(o) = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!((&*o.entity, &*o.metric, o.value), ("sta:1", "pm25", 41.5));
        assert_eq!(o.time.to_rfc3339(), "2026-11-26T01:00:00+00:00");
        let Item::Rejected(r) = &items[2] else {
            panic!("{items:?}")
        };
        assert!(r.contains("not a number"), "{r}");
        let Item::Rejected(r) = &items[3] else {
            panic!("{items:?}")
        };
        assert!(r.contains("without its Datastream"), "{r}");
        assert_eq!(items.len(), 4);
    }

    #[test]
    fn a_mapping_renames() {
        let d = SensorThingsDecoder {
            mapping: SensorThingsMapping {
                id_prefix: Some("vn-".into()),
                kind: None,
                metrics: [("PM2.5".to_string(), "bui_min".to_string())].into(),
            },
        };
        let items = d
            .decode(
                br#"{"result": 3, "phenomenonTime": "2026-11-26T00:00:00Z",
                     "Datastream": {"name": "x", "Thing": {"@iot.id": 7},
                                    "ObservedProperty": {"name": "PM2.5"}}}"#,
                &ctx(),
            )
            .unwrap();
        let Item::Obs(o) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!((&*o.entity, &*o.metric), ("vn-7", "bui_min"));
    }
}
