//! GeoJSON entities: each feature of a FeatureCollection becomes an entity (assets, stations,
//! cameras), placed at its geometry (a point inside a polygon).
//!
//! ```toml
//! [source.mapping]
//! id = "code"            # property holding the id (default: the feature id, then "id")
//! name = "name"          # property holding the name (default "name")
//! kind = "Camera"        # entity type for all features (default: property "type", else "Asset")
//! domain = "safety"
//! id_prefix = "cam-"
//! ```

use super::{geometry_point, json, DecodeCtx, Decoder};
use crate::decode::ngsi_ld::domain_of;
use crate::ingest::Item;
use ioc_model::{Domain, Entity};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeoJsonMapping {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub domain: Option<Domain>,
    #[serde(default)]
    pub id_prefix: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GeoJsonDecoder {
    pub mapping: GeoJsonMapping,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Decoder for GeoJsonDecoder {
    fn decode(&self, payload: &[u8], _ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String> {
        let v = json(payload)?;
        let features = match v.get("type").and_then(Value::as_str) {
            Some("FeatureCollection") => v["features"]
                .as_array()
                .cloned()
                .ok_or("a FeatureCollection without features")?,
            Some("Feature") => vec![v],
            _ => return Err("not GeoJSON: expected a FeatureCollection or a Feature".into()),
        };
        let m = &self.mapping;
        let mut items = Vec::new();
        for (i, f) in features.iter().enumerate() {
            let at = |e: &str| format!("feature #{}: {e}", i + 1);
            let props = f.get("properties").cloned().unwrap_or(Value::Null);
            let id = match &m.id {
                Some(p) => text(props.get(p)),
                None => text(f.get("id")).or_else(|| text(props.get("id"))),
            }
            .ok_or_else(|| at("no id"))?;
            let id = format!("{}{id}", m.id_prefix.as_deref().unwrap_or(""));
            let name =
                text(props.get(m.name.as_deref().unwrap_or("name"))).unwrap_or_else(|| id.clone());
            let kind = m
                .kind
                .clone()
                .or_else(|| text(props.get("type")))
                .unwrap_or_else(|| "Asset".into());
            let domain = m.domain.unwrap_or_else(|| domain_of(&kind));
            let mut e = Entity::new(&id, &kind, &name, domain);
            match f.get("geometry") {
                None | Some(Value::Null) => {}
                Some(g) => {
                    let (lon, lat) =
                        geometry_point(g).ok_or_else(|| at("geometry is not valid GeoJSON"))?;
                    e = e.at(lon, lat);
                }
            }
            let name_key = m.name.as_deref().unwrap_or("name");
            if let Value::Object(p) = props {
                for (k, v) in p {
                    // The id, type and name are the entity's own, not attributes.
                    if !v.is_null() && !matches!(k.as_str(), "id" | "type") && k != name_key {
                        e.attributes.insert(k, v);
                    }
                }
            }
            items.push(Item::Entity(Box::new(e)));
        }
        if items.is_empty() {
            return Err("no features".into());
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_become_entities() {
        let d = GeoJsonDecoder {
            mapping: GeoJsonMapping {
                kind: Some("Camera".into()),
                id_prefix: Some("cam-".into()),
                ..Default::default()
            },
        };
        let fc = serde_json::json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": 7, "properties": {"name": "Ngã tư Quang Trung", "ptz": true},
             "geometry": {"type": "Point", "coordinates": [105.68, 18.67]}},
            {"type": "Feature", "properties": {"id": "x"}, "geometry": null}
        ]});
        let ctx = DecodeCtx {
            source: "t",
            origin: None,
            received_at: chrono::Utc::now(),
        };
        let items = d.decode(fc.to_string().as_bytes(), &ctx).unwrap();
        let Item::Entity(e) = &items[0] else { panic!() };
        assert_eq!(
            (e.id.as_str(), e.name.as_str(), e.kind.as_str()),
            ("cam-7", "Ngã tư Quang Trung", "Camera")
        );
        assert_eq!(e.domain, Domain::Safety);
        assert_eq!(e.position(), Some((105.68, 18.67)));
        assert_eq!(e.attributes["ptz"], true);
        let Item::Entity(e) = &items[1] else { panic!() };
        assert_eq!(e.position(), None);
        let e = d
            .decode(b"{\"type\":\"Point\",\"coordinates\":[1,2]}", &ctx)
            .unwrap_err();
        assert!(e.contains("not GeoJSON"), "{e}");
    }
}
