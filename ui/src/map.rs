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
}

#[derive(Serialize)]
struct Marker<'a> {
    id: &'a str,
    name: &'a str,
    kind: &'a str,
    lon: f64,
    lat: f64,
    level: &'static str,
}

#[derive(Serialize)]
struct LevelChange<'a> {
    id: &'a str,
    level: &'static str,
}

/// Draws every entity.
pub fn set_all(entities: &HashMap<String, Entity>, alerts: &HashMap<i64, Alert>) {
    let by_entity = alerts_by_entity(alerts);
    let markers: Vec<Marker> = entities
        .values()
        .map(|e| Marker {
            id: &e.id,
            name: &e.name,
            kind: &e.kind,
            lon: e.lon,
            lat: e.lat,
            level: level(
                e,
                by_entity
                    .get(e.id.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            ),
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
        .map(|e| LevelChange {
            id: &e.id,
            level: level(
                e,
                by_entity
                    .get(e.id.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            ),
        })
        .collect();
    map_update(&serde_json::to_string(&changes).unwrap_or_default());
}
