//! The imported basemap: its description, the GeoJSON file (with Range support) and PMTiles
//! tiles by z/x/y, read from the archive on the server so the browser needs no PMTiles code.

use crate::extract::Path;
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ioc_engine::basemap;
use ioc_model::{BasemapInfo, BasemapKind};
use pmtiles::{AsyncPmTilesReader, MmapBackend, NoCache, TileCoord};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tower::ServiceExt;
use tower_http::services::ServeFile;

type Reader = AsyncPmTilesReader<MmapBackend, NoCache>;

/// The open PMTiles archive, reopened when a new one is imported.
#[derive(Default)]
pub struct TileCache {
    open: Mutex<Option<(PathBuf, SystemTime, Arc<Reader>)>>,
}

impl TileCache {
    async fn reader(&self, path: PathBuf) -> Result<Arc<Reader>, ApiError> {
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| ApiError::not_found(format!("basemap: {e}")))?;
        if let Some((p, t, r)) = &*self.open.lock().unwrap() {
            if *p == path && *t == mtime {
                return Ok(r.clone());
            }
        }
        let reader = Arc::new(
            AsyncPmTilesReader::new_with_path(&path)
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
        );
        *self.open.lock().unwrap() = Some((path, mtime, reader.clone()));
        Ok(reader)
    }
}

pub async fn info(State(st): State<AppState>) -> Json<BasemapInfo> {
    Json(basemap::current(st.engine.data_dir()))
}

pub async fn file(State(st): State<AppState>, req: Request) -> crate::reply::Served {
    crate::reply::Served(file_response(st, req).await)
}

async fn file_response(st: AppState, req: Request) -> Response {
    match basemap::file(st.engine.data_dir()) {
        Some((BasemapKind::Geojson, path)) => {
            match ServeFile::new_with_mime(path, &"application/geo+json".parse().unwrap())
                .oneshot(req)
                .await
            {
                Ok(r) => r.into_response(),
                Err(e) => {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                }
            }
        }
        _ => ApiError::not_found("no GeoJSON basemap is imported").into_response(),
    }
}

/// `{z}/{x}/{y}` of a tile (`y` may end in `.pbf` or `.mvt`).
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct TilePath {
    z: u8,
    x: u32,
    y: String,
}

pub async fn tile(
    State(st): State<AppState>,
    Path(TilePath { z, x, y }): Path<TilePath>,
) -> Result<crate::reply::Served, ApiError> {
    tile_response(st, z, x, y).await.map(crate::reply::Served)
}

async fn tile_response(st: AppState, z: u8, x: u32, y: String) -> Result<Response, ApiError> {
    let y: u32 = y
        .trim_end_matches(".pbf")
        .trim_end_matches(".mvt")
        .parse()
        .map_err(|_| ApiError::bad_request("bad tile y"))?;
    let Some((BasemapKind::Pmtiles, path)) = basemap::file(st.engine.data_dir()) else {
        return Err(ApiError::not_found("no PMTiles basemap is imported"));
    };
    let reader = st.tiles.reader(path).await?;
    let coord = TileCoord::new(z, x, y).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let tile = reader
        .get_tile(coord)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let Some(mut bytes) = tile else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let header = reader.get_header();
    // Lines and polygons at one pixel's detail (`basemap::simplify`), except at the
    // archive's deepest zoom, which the map enlarges past it. A tile that cannot be read
    // so is served as stored, and the log says why.
    let stored = match header.tile_compression {
        pmtiles::Compression::Gzip => Some(basemap::simplify::Stored::Gzip),
        pmtiles::Compression::None => Some(basemap::simplify::Stored::Plain),
        _ => None,
    };
    if let (Some(how), true) = (stored, z < header.max_zoom) {
        let raw = bytes.clone();
        match tokio::task::spawn_blocking(move || basemap::simplify::for_screen(&raw, how)).await {
            Ok(Ok(simple)) => bytes = simple.into(),
            Ok(Err(why)) => tracing::warn!("basemap tile {z}/{x}/{y} served as stored: {why}"),
            Err(e) => tracing::warn!("basemap tile {z}/{x}/{y} served as stored: {e}"),
        }
    }
    let encoding = match header.tile_compression {
        pmtiles::Compression::Gzip => Some("gzip"),
        pmtiles::Compression::Brotli => Some("br"),
        pmtiles::Compression::Zstd => Some("zstd"),
        _ => None,
    };
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/x-protobuf"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        Body::from(bytes),
    )
        .into_response();
    if let Some(enc) = encoding {
        resp.headers_mut()
            .insert(header::CONTENT_ENCODING, enc.parse().unwrap());
    }
    Ok(resp)
}
