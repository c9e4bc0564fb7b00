//! A generated province for scale tests and `ioc bench map`: `n` devices at real places of
//! Nghệ An, spread evenly over its 130 communes, each at a random point inside its commune's
//! official boundary (the boundaries file is the real one, read from wherever it is: the
//! tests and the benchmark take it from `../shared/data/geo/`). The same seed gives the same
//! province.

use anyhow::Context;
use geo::{BoundingRect, Contains, InteriorPoint, MultiPolygon, Point};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const KINDS: [(&str, &str); 5] = [
    ("AirQualityStation", "Trạm không khí"),
    ("WaterLevelGauge", "Trạm mực nước"),
    ("RainGauge", "Trạm đo mưa"),
    ("TrafficCounter", "Đếm xe"),
    ("Camera", "Camera"),
];

/// A commune: code, name and boundary.
struct Commune {
    code: String,
    name: String,
    shape: MultiPolygon<f64>,
}

fn communes(geojson_text: &str) -> anyhow::Result<Vec<Commune>> {
    let fc: geojson::FeatureCollection = geojson_text.parse().context("communes: not GeoJSON")?;
    let mut out = Vec::new();
    for f in fc.features {
        let prop = |k: &str| {
            f.properties
                .as_ref()
                .and_then(|p| p.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (Some(code), Some(name), Some(g)) = (prop("code"), prop("name"), f.geometry.clone())
        else {
            continue;
        };
        let shape: MultiPolygon<f64> = match geo::Geometry::<f64>::try_from(g.value)? {
            geo::Geometry::MultiPolygon(m) => m,
            geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
            _ => continue,
        };
        out.push(Commune { code, name, shape });
    }
    anyhow::ensure!(
        !out.is_empty(),
        "communes: no commune with code, name and area"
    );
    Ok(out)
}

/// `n` devices as a GeoJSON FeatureCollection (what `POST /api/import?format=geojson`
/// takes): id, type, name, unit; each commune's devices of each kind in turn (air, water
/// level, rain, traffic, camera).
pub fn devices(communes_geojson: &str, n: usize, seed: u64) -> anyhow::Result<Value> {
    let communes = communes(communes_geojson)?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut features = Vec::with_capacity(n);
    for i in 0..n {
        let c = &communes[i % communes.len()];
        let k = i / communes.len();
        let (kind, label) = KINDS[k % KINDS.len()];
        let p = point_in(&c.shape, &mut rng);
        features.push(json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round6(p.x()), round6(p.y())]},
            "properties": {
                "id": format!("p{}-{k:05}", c.code),
                "type": kind,
                "name": format!("{label} {} {}", c.name, k + 1),
                "unit": c.code,
                "unit_name": c.name,
            }
        }));
    }
    Ok(json!({"type": "FeatureCollection", "features": features}))
}

/// A random point inside `shape` (tries inside its bounding box, else its interior point).
fn point_in(shape: &MultiPolygon<f64>, rng: &mut SmallRng) -> Point<f64> {
    if let Some(r) = shape.bounding_rect() {
        for _ in 0..64 {
            let p = Point::new(
                rng.random_range(r.min().x..=r.max().x),
                rng.random_range(r.min().y..=r.max().y),
            );
            if shape.contains(&p) {
                return p;
            }
        }
    }
    shape.interior_point().unwrap_or(Point::new(105.68, 18.67))
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_stand_inside_their_commune() {
        use crate::basemap::missing;
        let Some(path) = missing::shared_data("geo/nghe-an-communes-2025.geojson") else {
            return missing::missing("../shared/data/geo/nghe-an-communes-2025.geojson not found");
        };
        let text = std::fs::read_to_string(path).unwrap();
        let fc = devices(&text, 1300, 7).unwrap();
        let features = fc["features"].as_array().unwrap();
        assert_eq!(features.len(), 1300);
        let communes = communes(&text).unwrap();
        assert_eq!(communes.len(), 130, "Nghệ An's communes since July 2025");
        let mut per_commune = std::collections::HashMap::new();
        for f in features {
            let code = f["properties"]["unit"].as_str().unwrap();
            *per_commune.entry(code.to_string()).or_insert(0) += 1;
            let c = communes.iter().find(|c| c.code == code).unwrap();
            let xy = &f["geometry"]["coordinates"];
            let p = Point::new(xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap());
            assert!(
                c.shape.contains(&p) || c.shape.interior_point() == Some(p),
                "{f}"
            );
        }
        assert_eq!(per_commune.len(), 130);
        assert!(per_commune.values().all(|&n| n == 10), "{per_commune:?}");
        assert_eq!(
            devices(&text, 1300, 7).unwrap(),
            fc,
            "same seed, same province"
        );
    }
}
