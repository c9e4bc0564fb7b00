//! The basemap: the boundaries drawn under the markers. Imported at run time from a GeoJSON
//! file (served whole) or a PMTiles archive (served tile by tile), never bundled and never
//! fetched from the internet. Without one the map shows a plain background.
//!
//! Importing GeoJSON also yields the administrative units (code, name, a point inside each
//! polygon), which the engine stores so that entities and alerts can name their commune.

pub mod simplify;

use geo::{BoundingRect, InteriorPoint};
use ioc_model::{BasemapInfo, BasemapKind, Unit};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BasemapError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the basemap into {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid GeoJSON: {message}")]
    GeoJson { path: PathBuf, message: String },
    #[error("{path} is not a readable PMTiles archive: {message}")]
    Pmtiles { path: PathBuf, message: String },
    #[error("{path} has no polygons to draw")]
    Empty { path: PathBuf },
}

const DIR: &str = "basemap";
const INFO: &str = "basemap.json";

/// Folder of the imported basemap inside the data folder.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

/// The imported basemap file, if any.
pub fn file(data_dir: &Path) -> Option<(BasemapKind, PathBuf)> {
    let info = current(data_dir);
    let name = match info.kind {
        BasemapKind::None => return None,
        BasemapKind::Geojson => "basemap.geojson",
        BasemapKind::Pmtiles => "basemap.pmtiles",
    };
    Some((info.kind, dir(data_dir).join(name)))
}

/// What is imported now (`kind: none` when nothing is).
pub fn current(data_dir: &Path) -> BasemapInfo {
    std::fs::read(dir(data_dir).join(INFO))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(BasemapInfo {
            kind: BasemapKind::None,
            url: None,
            bounds: None,
            layer: None,
            name_field: None,
            features: None,
        })
}

/// Result of an import.
#[derive(Debug)]
pub struct Imported {
    pub info: BasemapInfo,
    /// Units read from the features (GeoJSON only).
    pub units: Vec<Unit>,
}

/// Checks `src` and copies it into the data folder as the basemap.
pub async fn import(data_dir: &Path, src: &Path) -> Result<Imported, BasemapError> {
    let read_err = |source| BasemapError::Read {
        path: src.to_owned(),
        source,
    };
    let mut head = [0u8; 7];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(src).map_err(read_err)?;
        let n = f.read(&mut head).map_err(read_err)?;
        if n < head.len() {
            head = [0; 7];
        }
    }
    let (imported, name) = if &head == b"PMTiles" {
        (import_pmtiles(src).await?, "basemap.pmtiles")
    } else {
        let text = std::fs::read_to_string(src).map_err(read_err)?;
        (read_geojson(src, &text)?, "basemap.geojson")
    };
    let out = dir(data_dir);
    let write_err = |source| BasemapError::Write {
        path: out.clone(),
        source,
    };
    std::fs::create_dir_all(&out).map_err(write_err)?;
    // Copy under a temporary name, then rename: a running server never serves half a file.
    let tmp = out.join(format!("{name}.tmp"));
    std::fs::copy(src, &tmp).map_err(write_err)?;
    std::fs::rename(&tmp, out.join(name)).map_err(write_err)?;
    for other in ["basemap.pmtiles", "basemap.geojson"] {
        if other != name {
            let _ = std::fs::remove_file(out.join(other));
        }
    }
    let info_tmp = out.join("basemap.json.tmp");
    std::fs::write(
        &info_tmp,
        serde_json::to_vec_pretty(&imported.info).expect("serializable"),
    )
    .map_err(write_err)?;
    std::fs::rename(&info_tmp, out.join(INFO)).map_err(write_err)?;
    Ok(imported)
}

async fn import_pmtiles(src: &Path) -> Result<Imported, BasemapError> {
    let err = |message: String| BasemapError::Pmtiles {
        path: src.to_owned(),
        message,
    };
    let reader = pmtiles::AsyncPmTilesReader::new_with_path(src)
        .await
        .map_err(|e| err(e.to_string()))?;
    let h = reader.get_header();
    if h.tile_type != pmtiles::TileType::Mvt {
        return Err(err(format!(
            "tiles are {:?}, not vector tiles",
            h.tile_type
        )));
    }
    let metadata = reader
        .get_metadata()
        .await
        .map_err(|e| err(e.to_string()))?;
    let mut meta: serde_json::Value = serde_json::from_str(&metadata).unwrap_or_default();
    // Archives converted from MBTiles keep the layer list as a JSON string under "json".
    if meta.get("vector_layers").is_none() {
        if let Some(inner) = meta.get("json").and_then(|j| j.as_str()) {
            meta = serde_json::from_str(inner).unwrap_or_default();
        }
    }
    let layer = meta["vector_layers"][0]["id"].as_str().map(str::to_string);
    let fields = &meta["vector_layers"][0]["fields"];
    let name_field = ["name", "fullName", "NAME", "ten"]
        .into_iter()
        .find(|f| fields.get(*f).is_some())
        .map(str::to_string);
    Ok(Imported {
        info: BasemapInfo {
            kind: BasemapKind::Pmtiles,
            url: Some("/api/basemap/tiles/{z}/{x}/{y}".into()),
            bounds: Some([
                h.min_longitude,
                h.min_latitude,
                h.max_longitude,
                h.max_latitude,
            ]),
            layer: Some(layer.ok_or_else(|| err("metadata names no vector layer".into()))?),
            name_field,
            features: None,
        },
        units: Vec::new(),
    })
}

/// Reads a GeoJSON FeatureCollection of (multi)polygons: bounds, units, name property.
pub fn read_geojson(src: &Path, text: &str) -> Result<Imported, BasemapError> {
    let err = |message: String| BasemapError::GeoJson {
        path: src.to_owned(),
        message,
    };
    let gj: geojson::GeoJson = text
        .parse()
        .map_err(|e: geojson::Error| err(e.to_string()))?;
    let features = match gj {
        geojson::GeoJson::FeatureCollection(fc) => fc.features,
        geojson::GeoJson::Feature(f) => vec![f],
        geojson::GeoJson::Geometry(_) => {
            return Err(err("a bare geometry; expected a FeatureCollection".into()))
        }
    };
    let mut bounds: Option<geo::Rect<f64>> = None;
    let mut units = Vec::new();
    let mut polygons = 0;
    let mut name_field = None;
    for f in &features {
        let Some(g) = &f.geometry else { continue };
        let Some(geom) = crate::decode::to_geo(g) else {
            continue;
        };
        if !matches!(
            geom,
            geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_)
        ) {
            continue;
        }
        polygons += 1;
        if let Some(r) = geom.bounding_rect() {
            bounds = Some(match bounds {
                None => r,
                Some(b) => geo::Rect::new(
                    geo::coord! { x: b.min().x.min(r.min().x), y: b.min().y.min(r.min().y) },
                    geo::coord! { x: b.max().x.max(r.max().x), y: b.max().y.max(r.max().y) },
                ),
            });
        }
        let prop = |k: &str| {
            f.properties
                .as_ref()
                .and_then(|p| p.get(k))
                .and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        let id = match &f.id {
            Some(geojson::feature::Id::String(s)) => Some(s.clone()),
            Some(geojson::feature::Id::Number(n)) => Some(n.to_string()),
            None => None,
        };
        let name_key = ["name", "fullName", "NAME", "ten"]
            .into_iter()
            .find(|k| prop(k).is_some());
        if name_field.is_none() {
            name_field = name_key.map(str::to_string);
        }
        let (Some(code), Some(name)) = (prop("code").or(id), name_key.and_then(prop)) else {
            continue;
        };
        let inside = geom.interior_point();
        units.push(Unit {
            code,
            name,
            full_name: prop("fullName"),
            parent: None,
            lon: inside.map(|p| round6(p.x())),
            lat: inside.map(|p| round6(p.y())),
        });
    }
    if polygons == 0 {
        return Err(BasemapError::Empty {
            path: src.to_owned(),
        });
    }
    let b = bounds.expect("at least one polygon");
    Ok(Imported {
        info: BasemapInfo {
            kind: BasemapKind::Geojson,
            url: Some("/api/basemap/file".into()),
            bounds: Some([b.min().x, b.min().y, b.max().x, b.max().y]),
            layer: None,
            name_field,
            features: Some(polygons),
        },
        units,
    })
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// How a test says that the shared data it needs is missing (a failure under CI).
#[cfg(test)]
#[path = "../../tests/common/missing.rs"]
pub(crate) mod missing;

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARES: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","id":"1","properties":{"code":"1","name":"A","fullName":"Xã A"},
       "geometry":{"type":"Polygon","coordinates":[[[105,18],[106,18],[106,19],[105,19],[105,18]]]}},
      {"type":"Feature","properties":{"code":"2","name":"B"},
       "geometry":{"type":"MultiPolygon","coordinates":[[[[104,19],[105,19],[105,20],[104,20],[104,19]]]]}},
      {"type":"Feature","properties":{"note":"a point, ignored"},
       "geometry":{"type":"Point","coordinates":[1,2]}}
    ]}"#;

    #[test]
    fn geojson_gives_bounds_and_units_inside_their_polygons() {
        let imp = read_geojson(Path::new("x.geojson"), SQUARES).unwrap();
        assert_eq!(imp.info.kind, BasemapKind::Geojson);
        assert_eq!(imp.info.bounds, Some([104.0, 18.0, 106.0, 20.0]));
        assert_eq!(imp.info.features, Some(2));
        assert_eq!(imp.info.name_field.as_deref(), Some("name"));
        assert_eq!(imp.units.len(), 2);
        let a = &imp.units[0];
        assert_eq!((a.code.as_str(), a.name.as_str()), ("1", "A"));
        assert_eq!(a.full_name.as_deref(), Some("Xã A"));
        let (lon, lat) = (a.lon.unwrap(), a.lat.unwrap());
        assert!((105.0..=106.0).contains(&lon) && (18.0..=19.0).contains(&lat));
    }

    #[test]
    fn bad_geojson_is_refused_with_a_reason() {
        let e = read_geojson(Path::new("x"), "{\"type\":").unwrap_err();
        assert!(e.to_string().contains("not valid GeoJSON"), "{e}");
        let e = read_geojson(
            Path::new("x"),
            r#"{"type":"FeatureCollection","features":[]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no polygons"), "{e}");
        // A position of one number is skipped (converting it used to panic in geojson).
        let e = read_geojson(
            Path::new("x"),
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},
                "geometry":{"type":"Polygon","coordinates":[[[4]]]}}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no polygons"), "{e}");
    }

    #[tokio::test]
    async fn import_copies_and_current_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(current(dir.path()).kind, BasemapKind::None);
        let src = dir.path().join("in.geojson");
        std::fs::write(&src, SQUARES).unwrap();
        let data = dir.path().join("data");
        import(&data, &src).await.unwrap();
        assert_eq!(current(&data).kind, BasemapKind::Geojson);
        let (_, path) = file(&data).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), SQUARES);
    }

    /// The real Nghệ An files, when the shared reference data is next to the project.
    #[tokio::test]
    async fn real_nghe_an_files_import() {
        let Some(geo) = super::missing::shared_data("geo") else {
            return super::missing::missing(
                "../shared/data/geo not found: the real Nghệ An basemap",
            );
        };
        let data = tempfile::tempdir().unwrap();
        let imp = import(data.path(), &geo.join("nghe-an-communes-2025.geojson"))
            .await
            .unwrap();
        assert_eq!(imp.units.len(), 130);
        assert!(imp.units.iter().any(|u| u.name == "Cửa Lò"));
        let imp = import(data.path(), &geo.join("nghe-an-boundaries.pmtiles"))
            .await
            .unwrap();
        assert_eq!(imp.info.kind, BasemapKind::Pmtiles);
        assert_eq!(imp.info.layer.as_deref(), Some("communes"));
        let [w, s, e, n] = imp.info.bounds.unwrap();
        assert!(w < 104.0 && e > 105.7 && s < 18.6 && n > 19.9);
        assert!(file(data.path()).unwrap().1.ends_with("basemap.pmtiles"));
    }
}
