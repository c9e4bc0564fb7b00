//! Every FIWARE Smart Data Models example in `../shared/data/ngsi-ld` through the NGSI-LD
//! decoder: the well-formed ones decode (the ten types the IOC needs are checked in detail),
//! the malformed ones are refused with the reason.

#[path = "common/missing.rs"]
mod missing;

use ioc_engine::decode::{ngsi_ld::NgsiLd, DecodeCtx, Decoder};
use ioc_engine::{Item, Obs};
use ioc_model::{EntityStatus, Severity};
use missing::{missing, shared_data};
use std::path::{Path, PathBuf};

fn examples() -> Option<PathBuf> {
    shared_data("ngsi-ld").filter(|p| p.is_dir())
}

fn decode(path: &Path) -> Result<Vec<Item>, String> {
    let ctx = DecodeCtx {
        source: "examples",
        origin: path.to_str(),
        received_at: "2026-11-26T00:00:00Z".parse().unwrap(),
    };
    NgsiLd.decode(&std::fs::read(path).unwrap(), &ctx)
}

/// The examples that are malformed, and what the refusal must say.
const MALFORMED: &[(&str, &str)] = &[
    (
        "ElectricVehicleMobility/example-normalized.json",
        "mixes NGSI-LD and NGSIv2",
    ),
    (
        "FloodMonitoring/example-normalized.jsonld",
        "type \"string\"",
    ),
    (
        "NightSkyQuality/example-normalized.jsonld",
        "type \"DateTime\"",
    ),
    (
        "PhreaticObserved/example-geojsonfeature.json",
        "is not a time",
    ),
    (
        "PhreaticObserved/example-normalized.jsonld",
        "is not a time",
    ),
    (
        "RainFallRadarObserved/example-geojsonfeature.json",
        "not a GeoJSON geometry",
    ),
    (
        "RestrictedTrafficArea/example-geojsonfeature.json",
        "type \"array\"",
    ),
    (
        "RestrictionException/example-normalized.jsonld",
        "type \"array\"",
    ),
    (
        "SpecialRestriction/example-normalized.jsonld",
        "type \"string\"",
    ),
    (
        "TransportStation/example-normalized.jsonld",
        "type \"DateTime\"",
    ),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn every_example_decodes_or_is_refused_with_its_reason() {
    let Some(dir) = examples() else {
        return missing("../shared/data/ngsi-ld not found: the Smart Data Models examples");
    };
    let (mut ok, mut refused) = (0, 0);
    for path in files(&dir) {
        let rel = path
            .strip_prefix(&dir)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        match (decode(&path), MALFORMED.iter().find(|(f, _)| *f == rel)) {
            (Ok(items), None) => {
                assert!(!items.is_empty(), "{rel}");
                ok += 1;
            }
            (Err(reason), Some((_, expect))) => {
                assert!(reason.contains(expect), "{rel}: {reason}");
                refused += 1;
            }
            (Ok(_), Some(_)) => panic!("{rel} is malformed but was accepted"),
            (Err(reason), None) => panic!("{rel} was refused: {reason}"),
        }
    }
    println!("NGSI examples: {ok} decoded, {refused} malformed ones refused");
    assert_eq!(refused, MALFORMED.len());
    assert!(ok > 200);
}

fn obs<'a>(items: &'a [Item], metric: &str) -> Option<&'a Obs> {
    items.iter().find_map(|i| match i {
        Item::Obs(o) if &*o.metric == metric => Some(o),
        _ => None,
    })
}

fn entity(items: &[Item]) -> &ioc_model::Entity {
    match &items[0] {
        Item::Entity(e) => e,
        other => panic!("expected an entity first, got {other:?}"),
    }
}

#[test]
fn the_types_an_ioc_needs_keep_their_meaning() {
    let Some(dir) = examples() else {
        return missing("../shared/data/ngsi-ld not found: the Smart Data Models examples");
    };
    let get = |f: &str| decode(&dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));

    for form in [
        "example.json",
        "example-normalized.json",
        "example-normalized.jsonld",
        "example.jsonld",
    ] {
        let items = get(&format!("AirQualityObserved/{form}"));
        let e = entity(&items);
        assert!(
            e.id.contains("Madrid-AmbientObserved-28079004"),
            "{form}: {}",
            e.id
        );
        assert_eq!(e.kind, "AirQualityObserved");
        assert!(e.position().is_some(), "{form}");
        assert_eq!(obs(&items, "so2").unwrap().value, 11.0, "{form}");
        assert_eq!(
            obs(&items, "so2").unwrap().time.to_rfc3339(),
            "2016-03-15T11:00:00+00:00"
        );
    }
    let items = get("AirQualityObserved/example-normalized.jsonld");
    assert_eq!(
        entity(&items).id,
        "urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00"
    );

    let items = get("WeatherObserved/example.json");
    assert_eq!(obs(&items, "temperature").unwrap().value, 3.3);
    let items = get("WaterObserved/example.json");
    assert_eq!(obs(&items, "waterLevel").unwrap().value, 2.4);
    let items = get("FloodMonitoring/example.json");
    assert_eq!(obs(&items, "currentLevel").unwrap().value, 0.98);
    assert_eq!(
        entity(&items).attr_f64("dangerLevel"),
        Some(25.0),
        "thresholds kept for rules"
    );
    assert_eq!(
        obs(&items, "currentLevel").unwrap().time.to_rfc3339(),
        "2020-09-16T08:00:00+00:00",
        "offsets honoured"
    );
    let items = get("TrafficFlowObserved/example.json");
    assert_eq!(obs(&items, "intensity").unwrap().value, 197.0);
    assert_eq!(obs(&items, "averageVehicleSpeed").unwrap().value, 52.6);
    let items = get("RoadAccident/example.json");
    assert!(entity(&items).position().is_some());
    assert_eq!(obs(&items, "totalInjured").unwrap().value, 2.0);
    let items = get("Device/example.json");
    assert_eq!(
        entity(&items).status,
        EntityStatus::Online,
        "deviceState ok"
    );
    assert_eq!(obs(&items, "batteryLevel").unwrap().value, 0.75);
    let items = get("Camera/example.json");
    assert_eq!(entity(&items).status, EntityStatus::Online, "on: true");
    assert_eq!(entity(&items).name, "Cam2");
    let items = get("KeyPerformanceIndicator/example.json");
    assert_eq!(obs(&items, "kpiValue").unwrap().value, 20.0);
    assert!(entity(&items).position().is_none());
    let items = get("Alert/example.json");
    let Item::Alert(a) = &items[0] else {
        panic!("an alert")
    };
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.category, "traffic/trafficJam");
    assert_eq!(a.headline, "The road is completely blocked for 3kms");
    assert!(a.area.is_some());
}
