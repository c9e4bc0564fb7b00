//! The built UI (`ui/dist`): embedded in release builds, read from the folder in debug builds
//! (so a rebuilt UI shows on reload), or served from `server.ui_dir` when configured. Paths
//! without a file extension (`/`, `/wall`) get `index.html`: the UI routes them itself.

use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use std::path::PathBuf;

#[derive(RustEmbed)]
#[folder = "../../ui/dist"]
#[allow_missing = true]
struct Dist;

pub struct Ui {
    dir: Option<PathBuf>,
}

impl Ui {
    pub fn new(dir: Option<PathBuf>) -> Ui {
        Ui { dir }
    }

    fn get(&self, path: &str) -> Option<Vec<u8>> {
        match &self.dir {
            Some(dir) => {
                if path.split('/').any(|seg| seg == "..") {
                    return None;
                }
                std::fs::read(dir.join(path)).ok()
            }
            None => Dist::get(path).map(|f| f.data.into_owned()),
        }
    }
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>IOC Console</title>\
<body style=\"font-family:sans-serif;background:#10151c;color:#e6edf3;padding:2em\">\
<h1>Giao diện chưa được build / The UI is not built</h1>\
<p>Chạy / run: <code>cargo xtask ui</code> — the API is up at <a href=/api/health style=color:#58a6ff>/api/health</a>.</p>";

pub async fn serve(State(st): State<AppState>, uri: Uri) -> Response {
    st.ui.respond(&uri)
}

impl Ui {
    /// The file for `uri`, or the app's page for a screen's address.
    pub fn respond(&self, uri: &Uri) -> Response {
        let path = uri.path().trim_start_matches('/');
        let is_file = path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'));
        let path = if is_file { path } else { "index.html" };
        match self.get(path) {
            Some(bytes) => {
                let mime = mime_guess_from(path);
                let cache = if path == "index.html" {
                    "no-cache"
                } else {
                    "public, max-age=300"
                };
                (
                    [(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, cache)],
                    Body::from(bytes),
                )
                    .into_response()
            }
            None if path == "index.html" => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                NOT_BUILT,
            )
                .into_response(),
            None => (StatusCode::NOT_FOUND, "not found").into_response(),
        }
    }
}

fn mime_guess_from(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "pbf" => "application/x-protobuf",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}
