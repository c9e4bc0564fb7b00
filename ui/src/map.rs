//! Bindings to `js/map.js` (MapLibre GL JS). Markers are pushed from the feed, not rebuilt
//! from reactive state, so a delta touching five entities costs five feature-state changes.

use crate::state::{alerts_by_entity, level};
use ioc_model::{Alert, Entity};
use serde::Serialize;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/map.js")]
extern "C" {
    #[wasm_bindgen(js_name = mapInit)]
    pub fn map_init(container: &web_sys::HtmlElement, on_select: &Closure<dyn Fn(String)>);
    #[wasm_bindgen(js_name = mapSetBasemap)]
    pub fn map_set_basemap(info_json: &str);
    #[wasm_bindgen(js_name = mapSetEntities)]
    fn map_set_entities(json: &str);
    #[wasm_bindgen(js_name = mapUpdate)]
    fn map_update(json: &str);
    #[wasm_bindgen(js_name = mapSelect)]
    pub fn map_select(id: &str, lon: f64, lat: f64, fly: bool);
    #[wasm_bindgen(js_name = mapHome)]
    pub fn map_home();
    #[wasm_bindgen(js_name = mapSetAreas)]
    fn map_set_areas(json: &str);
    #[wasm_bindgen(js_name = mapFitGeometry)]
    pub fn map_fit_geometry(json: &str);
}

/// `/api/basemap`'s answer as the map scripts take it (their tile and file requests are
/// same-origin: the session cookie goes with them).
pub fn basemap_json(info: &ioc_model::BasemapInfo) -> String {
    serde_json::to_value(info).unwrap_or_default().to_string()
}

/// Draws the areas of open alerts that have one (CAP polygons and circles), coloured by
/// severity; cleared ones fade.
pub fn set_areas(alerts: &HashMap<i64, Alert>) {
    let features: Vec<serde_json::Value> = alerts
        .values()
        .filter_map(|a| {
            let g = a.area.as_ref()?;
            Some(serde_json::json!({
                "type": "Feature",
                "geometry": g,
                "properties": {
                    "id": a.id,
                    "severity": a.severity.as_str(),
                    "active": a.active,
                    "name": a.message,
                }
            }))
        })
        .collect();
    let fc = serde_json::json!({"type": "FeatureCollection", "features": features});
    map_set_areas(&fc.to_string());
}

#[derive(Serialize)]
struct Marker<'a> {
    id: &'a str,
    name: &'a str,
    kind: &'a str,
    lon: f64,
    lat: f64,
    level: &'static str,
    /// A camera with a still: the hover card shows it.
    still: bool,
}

#[derive(Serialize)]
struct LevelChange<'a> {
    id: &'a str,
    level: &'static str,
}

fn level_of(e: &Entity, by_entity: &HashMap<&str, Vec<&Alert>>) -> &'static str {
    level(
        e,
        by_entity
            .get(e.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]),
    )
}

/// Draws every entity that has a position.
pub fn set_all(entities: &HashMap<String, Entity>, alerts: &HashMap<i64, Alert>) {
    let by_entity = alerts_by_entity(alerts);
    let markers: Vec<Marker> = entities
        .values()
        .filter_map(|e| {
            let (lon, lat) = e.position()?;
            Some(Marker {
                id: &e.id,
                name: &e.name,
                kind: &e.kind,
                lon,
                lat,
                level: level_of(e, &by_entity),
                still: ioc_model::camera::has_still(e),
            })
        })
        .collect();
    map_set_entities(&serde_json::to_string(&markers).unwrap_or_default());
}

/// Recolours the given entities.
pub fn update<'a>(
    ids: impl Iterator<Item = &'a str>,
    entities: &HashMap<String, Entity>,
    alerts: &HashMap<i64, Alert>,
) {
    let by_entity = alerts_by_entity(alerts);
    let changes: Vec<LevelChange> = ids
        .filter_map(|id| entities.get(id))
        .filter(|e| e.position().is_some())
        .map(|e| LevelChange {
            id: &e.id,
            level: level_of(e, &by_entity),
        })
        .collect();
    map_update(&serde_json::to_string(&changes).unwrap_or_default());
}

/// The small maps of dashboards and the wall (`js/kpimap.js`).
pub mod small {
    use super::*;

    #[wasm_bindgen(module = "/js/kpimap.js")]
    extern "C" {
        #[wasm_bindgen(js_name = kpiMapInit)]
        fn init_map(key: &str, container: &web_sys::HtmlElement, basemap_json: &str, large: bool);
        #[wasm_bindgen(js_name = kpiMapColor)]
        fn color(key: &str, json: &str);
        #[wasm_bindgen(js_name = kpiMapDevices)]
        fn devices(key: &str, json: &str);
        #[wasm_bindgen(js_name = kpiMapLevels)]
        fn levels(key: &str, n: u32, json: &str) -> bool;
        #[wasm_bindgen(js_name = kpiMapFocus)]
        pub fn focus(key: &str, lon: f64, lat: f64, name: &str);
    }

    /// Colours communes by a KPI's status per unit.
    pub fn color_units(key: &str, by_unit: &[ioc_model::UnitValue]) {
        let colors: serde_json::Map<String, serde_json::Value> = by_unit
            .iter()
            .map(|u| {
                let c = match u.status {
                    ioc_model::KpiStatus::Green => "#1f7a3a",
                    ioc_model::KpiStatus::Amber => "#9a6a00",
                    ioc_model::KpiStatus::Red => "#a3241d",
                };
                (u.unit.clone(), serde_json::Value::String(c.into()))
            })
            .collect();
        color(key, &serde_json::Value::Object(colors).to_string());
    }

    /// Makes the small map `key` in `container` (again: it then gets every device anew).
    pub fn init(key: &str, container: &web_sys::HtmlElement, basemap_json: &str, large: bool) {
        SENT.with(|s| s.borrow_mut().remove(key));
        init_map(key, container, basemap_json, large);
    }

    thread_local! {
        /// Per small map: the level each device was last sent with.
        static SENT: std::cell::RefCell<HashMap<String, HashMap<String, &'static str>>> =
            Default::default();
    }

    /// Shows every device with a position as a dot of its level. Called on every change of
    /// the live picture: when the map already holds these devices only the levels that
    /// changed go to it, not a province's 100,000 devices ten times a second.
    pub fn show_devices(
        key: &str,
        entities: &HashMap<String, Entity>,
        alerts: &HashMap<i64, Alert>,
    ) {
        let by_entity = alerts_by_entity(alerts);
        SENT.with(|sent| {
            let mut sent = sent.borrow_mut();
            let last = sent.entry(key.to_string()).or_default();
            let mut changes: Vec<LevelChange> = Vec::new();
            let mut n = 0usize;
            let mut same = true;
            for e in entities.values() {
                if e.position().is_none() {
                    continue;
                }
                n += 1;
                let l = level_of(e, &by_entity);
                match last.get(e.id.as_str()) {
                    Some(&old) if old == l => {}
                    Some(_) => changes.push(LevelChange {
                        id: &e.id,
                        level: l,
                    }),
                    None => same = false,
                }
            }
            if same && n == last.len() {
                if changes.is_empty() {
                    return;
                }
                if levels(
                    key,
                    n as u32,
                    &serde_json::to_string(&changes).unwrap_or_default(),
                ) {
                    for c in changes {
                        last.insert(c.id.to_string(), c.level);
                    }
                    return;
                }
            }
            // The map does not hold these devices yet (new, or made again): all of them.
            last.clear();
            let dots: Vec<serde_json::Value> = entities
                .values()
                .filter_map(|e| {
                    let (lon, lat) = e.position()?;
                    let l = level_of(e, &by_entity);
                    last.insert(e.id.clone(), l);
                    Some(serde_json::json!({"id": e.id, "lon": lon, "lat": lat, "level": l}))
                })
                .collect();
            devices(key, &serde_json::Value::Array(dots).to_string());
        });
    }
}
