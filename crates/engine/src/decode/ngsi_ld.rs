//! NGSI-LD and FIWARE Smart Data Models, in every form they travel in: NGSI-LD normalized
//! (`Property`/`GeoProperty`/`Relationship`, per-attribute `observedAt`), key-values,
//! NGSIv2 normalized (`{"type": "Number", "value": …}`), GeoJSON features, arrays, and
//! NGSI-LD / NGSIv2 notifications (`{"data": […]}`).
//!
//! Each entity becomes an [`Item::Entity`] (id kept as sent, e.g.
//! `urn:ngsi-ld:AirQualityObserved:…`; type; name; location; the non-numeric properties as
//! attributes) followed by one [`Item::Obs`] per numeric or boolean property, named as the
//! attribute (`pm25`, `waterLevel`, `intensity`…). An `Alert` entity becomes an alert.
//! Thresholds that describe the station rather than measure anything (`alertLevel`,
//! `dangerLevel` of FloodMonitoring…) are kept as attributes too, so rules can compare with
//! them.
//!
//! Refused, with the reason: a payload that is not JSON, an entity without `id` or `type`, an
//! NGSI-LD entity whose attribute `type` is not an NGSI-LD attribute type (e.g. `"string"`), a
//! `location` that is not a GeoJSON geometry, an unreadable time.

use super::{geometry_on_earth, geometry_point, json, parse_time, DecodeCtx, Decoder};
use crate::ingest::{ExternalAlert, Item, Obs};
use chrono::{DateTime, Utc};
use ioc_model::{Domain, Entity, EntityStatus, Severity};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Attribute types of NGSI-LD (ETSI GS CIM 009).
const LD_TYPES: &[&str] = &[
    "Property",
    "GeoProperty",
    "Relationship",
    "LanguageProperty",
    "VocabularyProperty",
    "ListProperty",
    "ListRelationship",
    "JsonProperty",
];

/// Entity-level times, most specific first.
const TIME_ATTRS: &[&str] = &[
    "dateObserved",
    "observationDateTime",
    "dateObservedTo",
    "dateIssued",
    "accidentDate",
    "endDateTime",
    "dateModified",
    "dateCreated",
];

/// Numeric attributes that describe the entity (thresholds, sizes) rather than measure:
/// kept as attributes as well as observations.
const STATIC_NUMBERS: &[&str] = &[
    "alertLevel",
    "dangerLevel",
    "referenceLevel",
    "warningLevel",
    "maximumAllowedSpeed",
    "laneId",
    "cameraNum",
];

/// Attributes never turned into observations.
const NOT_MEASURES: &[&str] = &["id", "type", "@context", "location", "seeAlso"];

#[derive(Default, Clone, Copy, Debug)]
pub struct NgsiLd;

impl Decoder for NgsiLd {
    fn decode(&self, payload: &[u8], ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String> {
        let v = json(payload)?;
        let mut items = Vec::new();
        for (i, e) in entities_of(v)?.into_iter().enumerate() {
            let decoded = decode_entity(e, ctx).map_err(|reason| {
                if i == 0 {
                    reason
                } else {
                    format!("entity #{}: {reason}", i + 1)
                }
            })?;
            items.extend(decoded);
        }
        if items.is_empty() {
            return Err("no entity in the payload".into());
        }
        Ok(items)
    }
}

/// The entity objects of a payload, in whatever envelope it came.
fn entities_of(v: Value) -> Result<Vec<Map<String, Value>>, String> {
    let list = match v {
        Value::Array(a) => a,
        Value::Object(mut o) => {
            if let Some(Value::Array(data)) = o.remove("data") {
                data // NGSI-LD or NGSIv2 notification
            } else if o.get("type").and_then(Value::as_str) == Some("FeatureCollection") {
                match o.remove("features") {
                    Some(Value::Array(f)) => f,
                    _ => return Err("a FeatureCollection without features".into()),
                }
            } else {
                vec![Value::Object(o)]
            }
        }
        other => {
            return Err(format!(
                "expected an entity object or an array, not {}",
                kind(&other)
            ))
        }
    };
    list.into_iter()
        .map(|e| match e {
            Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Feature") => {
                feature_to_entity(o)
            }
            Value::Object(o) => Ok(o),
            other => Err(format!("expected an entity object, not {}", kind(&other))),
        })
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A GeoJSON feature as Smart Data Models publish them: properties plus geometry.
fn feature_to_entity(mut f: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut props = match f.remove("properties") {
        Some(Value::Object(p)) => p,
        _ => return Err("a GeoJSON feature without properties".into()),
    };
    if let Some(id) = f.remove("id") {
        props.entry("id").or_insert(id);
    }
    if let Some(g) = f.remove("geometry") {
        props.entry("location").or_insert(g);
    }
    Ok(props)
}

/// One attribute, whatever form it came in.
struct Attr {
    name: String,
    value: Value,
    observed_at: Option<DateTime<Utc>>,
    is_relationship: bool,
}

fn attributes(e: &Map<String, Value>, id: &str) -> Result<(Vec<Attr>, bool), String> {
    let ld = e.contains_key("@context")
        || e.values().any(|v| {
            v.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| LD_TYPES.contains(&t))
                && (v.get("value").is_some() || v.get("object").is_some())
        });
    let mut out = Vec::new();
    for (name, v) in e {
        // An attribute without a name (`"": {…}`) names nothing to measure or keep.
        if matches!(name.as_str(), "id" | "type" | "@context") || name.trim().is_empty() {
            continue;
        }
        let normalized = v.as_object().filter(|o| {
            o.contains_key("type")
                && [
                    "value",
                    "object",
                    "languageMap",
                    "vocab",
                    "valueList",
                    "json",
                ]
                .iter()
                .any(|k| o.contains_key(*k))
        });
        let Some(o) = normalized else {
            out.push(Attr {
                name: name.clone(),
                value: v.clone(),
                observed_at: None,
                is_relationship: false,
            });
            continue;
        };
        let t = o.get("type").and_then(Value::as_str).unwrap_or("");
        if ld && !LD_TYPES.contains(&t) {
            let mixed = (!e.contains_key("@context"))
                .then(|| {
                    e.iter().find(|(_, v)| {
                        v.get("type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| LD_TYPES.contains(&t))
                    })
                })
                .flatten();
            return Err(match mixed {
                Some((ld_name, _)) => format!(
                    "entity {id:?} mixes NGSI-LD and NGSIv2 attributes: {ld_name:?} is an \
                     NGSI-LD attribute, {name:?} has the NGSIv2 type {t:?}"
                ),
                None => format!(
                    "entity {id:?}: attribute {name:?} has type {t:?}, which is not an \
                     NGSI-LD attribute type ({})",
                    LD_TYPES.join(", ")
                ),
            });
        }
        let observed_at = match o.get("observedAt") {
            Some(Value::String(s)) => Some(parse_time(s).ok_or_else(|| {
                format!("entity {id:?}: attribute {name:?}: observedAt {s:?} is not a time")
            })?),
            _ => None,
        };
        let is_relationship = t == "Relationship" || t == "ListRelationship";
        let value = if is_relationship {
            o.get("object").cloned().unwrap_or(Value::Null)
        } else {
            o.get("value")
                .or_else(|| o.get("languageMap"))
                .or_else(|| o.get("vocab"))
                .or_else(|| o.get("valueList"))
                .or_else(|| o.get("json"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        // JSON-LD typed literal: {"@type": "DateTime", "@value": "…"}
        let value = match value {
            Value::Object(mut lit) if lit.contains_key("@value") => {
                lit.remove("@value").unwrap_or(Value::Null)
            }
            v => v,
        };
        out.push(Attr {
            name: name.clone(),
            value,
            observed_at,
            is_relationship,
        });
    }
    Ok((out, ld))
}

/// The domain an entity type belongs to.
pub fn domain_of(kind: &str) -> Domain {
    match kind {
        "AirQualityObserved"
        | "AirQualityStation"
        | "AirQualityForecast"
        | "AirQualityMonitoring"
        | "WeatherObserved"
        | "WeatherForecast"
        | "WeatherAlert"
        | "EnvironmentObserved"
        | "NoiseLevelObserved"
        | "NoisePollution"
        | "NoisePollutionForecast"
        | "IndoorEnvironmentObserved"
        | "AeroAllergenObserved"
        | "ElectroMagneticObserved"
        | "CarbonFootprint"
        | "NightSkyQuality"
        | "TrafficEnvironmentImpact"
        | "TrafficEnvironmentImpactForecast" => Domain::Environment,
        "WaterObserved"
        | "WaterLevelGauge"
        | "RainGauge"
        | "FloodMonitoring"
        | "RainFallRadarObserved"
        | "PhreaticObserved"
        | "SeaConditions" => Domain::Water,
        "TrafficFlowObserved"
        | "TrafficCounter"
        | "RoadAccident"
        | "RoadSegment"
        | "Road"
        | "Vehicle"
        | "VehicleModel"
        | "VehicleFault"
        | "FleetVehicle"
        | "FleetVehicleOperation"
        | "FleetVehicleStatus"
        | "TrafficViolation"
        | "AnprFlowObserved"
        | "BikeLane"
        | "BikeHireDockingStation"
        | "RestrictedTrafficArea"
        | "RestrictionException"
        | "SpecialRestriction"
        | "TransportStation"
        | "EVChargingStation"
        | "ElectricVehicleMobility"
        | "OriginDestinationFlow"
        | "FareCollectionSystem"
        | "ItemFlowObserved" => Domain::Traffic,
        "Camera" | "CrowdFlowObserved" | "Anomaly" => Domain::Safety,
        "MosquitoDensity" => Domain::Health,
        "CityWork" => Domain::Planning,
        _ => Domain::Other,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn decode_entity(e: Map<String, Value>, ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String> {
    let id = match e.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(other) if !other.is_null() => {
            return Err(format!("entity id must be a string, not {}", kind(other)))
        }
        _ => return Err("entity without an id".into()),
    };
    let kind_name = match e.get("type") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(format!("entity {id:?} has no type")),
    };
    let (attrs, _ld) = attributes(&e, &id)?;
    let find = |n: &str| attrs.iter().find(|a| a.name == n);

    // Location: a GeoJSON geometry, or nothing.
    let position = match find("location").map(|a| &a.value) {
        None | Some(Value::Null) => None,
        Some(g) => Some(
            geometry_point(g)
                .ok_or_else(|| format!("entity {id:?}: location is not a GeoJSON geometry: {g}"))?,
        ),
    };

    // When: per attribute (observedAt), else the entity's own date, else arrival.
    let mut entity_time = None;
    for name in TIME_ATTRS {
        if let Some(a) = find(name) {
            if let Some(s) = a.value.as_str() {
                entity_time = Some(
                    parse_time(s)
                        .ok_or_else(|| format!("entity {id:?}: {name} {s:?} is not a time"))?,
                );
                break;
            }
        }
    }
    let time = entity_time.unwrap_or(ctx.received_at);

    let name = [
        "name",
        "cameraName",
        "stationName",
        "stationID",
        "alternateName",
    ]
    .iter()
    .find_map(|n| find(n).and_then(|a| as_text(&a.value)))
    .unwrap_or_else(|| id.rsplit(':').next().unwrap_or(&id).to_string());

    if kind_name == "Alert" {
        return alert(&id, &attrs, position, time, ctx).map(|a| vec![Item::Alert(Box::new(a))]);
    }

    let mut entity = Entity::new(&id, &kind_name, &name, domain_of(&kind_name));
    if let Some((lon, lat)) = position {
        entity = entity.at(lon, lat);
    }
    entity.status = match (kind_name.as_str(), find("on"), find("deviceState")) {
        ("Camera", Some(a), _) => match a.value.as_bool() {
            Some(true) => EntityStatus::Online,
            Some(false) => EntityStatus::Offline,
            None => EntityStatus::Unknown,
        },
        (_, _, Some(a)) => match a.value.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("ok" | "on" | "online" | "active") => EntityStatus::Online,
            Some("off" | "offline" | "disconnected") => EntityStatus::Offline,
            Some(_) => EntityStatus::Fault,
            None => EntityStatus::Unknown,
        },
        _ => EntityStatus::Unknown,
    };

    let entity_id: Arc<str> = Arc::from(id.as_str());
    let mut observations = Vec::new();
    for a in &attrs {
        if NOT_MEASURES.contains(&a.name.as_str()) || TIME_ATTRS.contains(&a.name.as_str()) {
            continue;
        }
        let number = match &a.value {
            Value::Number(n) if !a.is_relationship => n.as_f64(),
            Value::Bool(b) if !a.is_relationship => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        };
        match number {
            Some(v) => {
                if STATIC_NUMBERS.contains(&a.name.as_str()) {
                    entity.attributes.insert(a.name.clone(), a.value.clone());
                }
                observations.push(Item::Obs(Obs {
                    entity: entity_id.clone(),
                    metric: Arc::from(a.name.as_str()),
                    time: a.observed_at.unwrap_or(time),
                    value: v,
                }));
            }
            None if !a.value.is_null() => {
                entity.attributes.insert(a.name.clone(), a.value.clone());
            }
            None => {}
        }
    }
    let mut items = vec![Item::Entity(Box::new(entity))];
    items.extend(observations);
    Ok(items)
}

/// FIWARE `Alert` (dataModel.Alert): category, subCategory, severity, description, validity.
fn alert(
    id: &str,
    attrs: &[Attr],
    position: Option<(f64, f64)>,
    time: DateTime<Utc>,
    ctx: &DecodeCtx<'_>,
) -> Result<ExternalAlert, String> {
    let text = |n: &str| {
        attrs
            .iter()
            .find(|a| a.name == n)
            .and_then(|a| as_text(&a.value))
    };
    let severity = match text("severity").as_deref() {
        Some("informational") => Severity::Info,
        Some("low") => Severity::Warning,
        Some("medium") => Severity::Major,
        Some("high" | "critical") => Severity::Critical,
        Some(other) => {
            return Err(format!(
                "alert {id:?}: severity {other:?} is not one of informational, low, medium, \
                 high, critical"
            ))
        }
        None => Severity::Warning,
    };
    let category = text("category").unwrap_or_else(|| "alert".into());
    let sub = text("subCategory");
    let expires = match text("validTo") {
        Some(s) => Some(
            parse_time(&s).ok_or_else(|| format!("alert {id:?}: validTo {s:?} is not a time"))?,
        ),
        None => None,
    };
    let area = attrs
        .iter()
        .find(|a| a.name == "location")
        .map(|a| a.value.clone())
        .filter(|_| position.is_some());
    // The area is drawn and matched against places: off Earth it is refused, as CAP's is
    // (found by fuzzing: `tests/fuzz_regressions/decode_ngsi_ld/`).
    if let Some(g) = area.as_ref().filter(|g| !geometry_on_earth(g)) {
        return Err(format!("alert {id:?}: location {g} is not on Earth"));
    }
    let entity = attrs
        .iter()
        .find(|a| a.name == "refDevice" || a.name == "alertSource")
        .and_then(|a| a.value.as_str())
        .filter(|s| !s.starts_with("http"))
        .map(str::to_string);
    Ok(ExternalAlert {
        key: id.to_string(),
        source: ctx.source.to_string(),
        category: match &sub {
            Some(s) => format!("{category}/{s}"),
            None => category.clone(),
        },
        domain: match category.as_str() {
            "traffic" => Domain::Traffic,
            "weather" | "environment" => Domain::Environment,
            "health" => Domain::Health,
            "security" => Domain::Safety,
            "agriculture" => Domain::Agriculture,
            "water" => Domain::Water,
            _ => Domain::Other,
        },
        severity,
        headline: text("description")
            .or(sub)
            .unwrap_or_else(|| category.clone()),
        description: text("description"),
        area_desc: text("address").or_else(|| text("areaServed")),
        area,
        entity,
        sent: time,
        expires,
        cancelled: false,
        raw: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> DecodeCtx<'static> {
        DecodeCtx {
            source: "test",
            origin: None,
            received_at: "2026-11-26T00:00:00Z".parse().unwrap(),
        }
    }

    fn decode(v: Value) -> Result<Vec<Item>, String> {
        NgsiLd.decode(v.to_string().as_bytes(), &ctx())
    }

    fn obs(items: &[Item]) -> Vec<(String, f64)> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Obs(o) => Some((o.metric.to_string(), o.value)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn normalized_ld_with_observed_at() {
        let items = decode(serde_json::json!({
            "id": "urn:ngsi-ld:AirQualityObserved:vinh-1",
            "type": "AirQualityObserved",
            "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
            "pm25": {"type": "Property", "value": 151.2, "observedAt": "2026-11-25T10:00:00Z", "unitCode": "GQ"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [105.68, 18.67]}},
            "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:1"}
        }))
        .unwrap();
        let Item::Entity(e) = &items[0] else { panic!() };
        assert_eq!(e.id, "urn:ngsi-ld:AirQualityObserved:vinh-1");
        assert_eq!(e.position(), Some((105.68, 18.67)));
        assert_eq!(e.domain, Domain::Environment);
        assert_eq!(e.attributes["refDevice"], "urn:ngsi-ld:Device:1");
        let Item::Obs(o) = &items[1] else { panic!() };
        assert_eq!((&*o.metric, o.value), ("pm25", 151.2));
        assert_eq!(o.time.to_rfc3339(), "2026-11-25T10:00:00+00:00");
    }

    #[test]
    fn key_values_and_arrays_and_notifications() {
        let kv = serde_json::json!({"id": "wl-1", "type": "WaterObserved", "waterLevel": 2.4,
            "dateObserved": "2026-11-25T08:45:00Z",
            "location": {"type": "Point", "coordinates": [105.5, 18.7]}});
        let items = decode(kv.clone()).unwrap();
        assert_eq!(obs(&items), vec![("waterLevel".into(), 2.4)]);
        assert_eq!(
            decode(serde_json::json!([kv.clone(), kv.clone()]))
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            decode(serde_json::json!({"id": "n1", "type": "Notification", "data": [kv]}))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn bad_entities_are_refused_with_the_reason() {
        let e = decode(serde_json::json!({"type": "WaterObserved"})).unwrap_err();
        assert!(e.contains("without an id"), "{e}");
        let e = decode(serde_json::json!({"id": "x"})).unwrap_err();
        assert!(e.contains("no type"), "{e}");
        let e = decode(serde_json::json!({"id": "x", "type": "T", "@context": [],
            "level": {"type": "string", "value": "Normal"}}))
        .unwrap_err();
        assert!(e.contains("not an NGSI-LD attribute type"), "{e}");
        let e = decode(serde_json::json!({"id": "x", "type": "T",
            "location": {"type": "Point", "coordinates": "here"}}))
        .unwrap_err();
        assert!(e.contains("not a GeoJSON geometry"), "{e}");
        let e = decode(serde_json::json!({"id": "x", "type": "T", "dateObserved": "soon"}))
            .unwrap_err();
        assert!(e.contains("not a time"), "{e}");
        let e = decode(serde_json::json!(42)).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let e = decode(serde_json::json!([{"id": "a", "type": "T"}, {"id": "b"}])).unwrap_err();
        assert!(e.starts_with("entity #2"), "{e}");
    }

    #[test]
    fn no_location_is_allowed() {
        let items = decode(
            serde_json::json!({"id": "kpi-1", "type": "KeyPerformanceIndicator",
            "kpiValue": 20}),
        )
        .unwrap();
        let Item::Entity(e) = &items[0] else { panic!() };
        assert_eq!(e.position(), None);
        assert_eq!(obs(&items), vec![("kpiValue".into(), 20.0)]);
    }
}
