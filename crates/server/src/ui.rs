//! The built UI (`ui/dist`): embedded in release builds, read from the folder in debug builds
//! (so a rebuilt UI shows on reload), or served from `server.ui_dir` when configured. Paths
//! without a file extension (`/`, `/wall`) get `index.html`: the UI routes them itself.
//!
//! `cargo xtask ui` writes a brotli (`.br`) and a gzip (`.gz`) copy beside each text and
//! WebAssembly file; a client that accepts one gets it as is (`Content-Encoding`), so the
//! 6 MB of WebAssembly cross the wire as about one, with nothing compressed per request.

use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
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

pub async fn serve(State(st): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    st.ui.respond(&uri, &headers)
}

/// Whether `accept` (an `Accept-Encoding` value) takes `coding`: named, or `*`, with a
/// quality above zero.
fn accepts(accept: &str, coding: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
    })
}

impl Ui {
    /// The precompressed copy of `path` the client takes, if there is one.
    fn compressed(&self, path: &str, headers: &HeaderMap) -> Option<(&'static str, Vec<u8>)> {
        if path.ends_with(".br") || path.ends_with(".gz") {
            return None;
        }
        let accept = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        [("br", "br"), ("gzip", "gz")]
            .into_iter()
            .filter(|(coding, _)| accepts(&accept, coding))
            .find_map(|(coding, ext)| Some((coding, self.get(&format!("{path}.{ext}"))?)))
    }

    /// The file for `uri`, or the app's page for a screen's address.
    pub fn respond(&self, uri: &Uri, headers: &HeaderMap) -> Response {
        let path = uri.path().trim_start_matches('/');
        let is_file = path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'));
        let path = if is_file { path } else { "index.html" };
        let (encoding, bytes) = match self.compressed(path, headers) {
            Some((coding, bytes)) => (Some(coding), Some(bytes)),
            None => (None, self.get(path)),
        };
        match bytes {
            Some(bytes) => {
                let mime = mime_guess_from(path);
                let cache = if path == "index.html" {
                    "no-cache"
                } else {
                    "public, max-age=300"
                };
                let mut res = (
                    [
                        (header::CONTENT_TYPE, mime),
                        (header::CACHE_CONTROL, cache),
                        (header::VARY, "accept-encoding"),
                    ],
                    Body::from(bytes),
                )
                    .into_response();
                if let Some(coding) = encoding {
                    res.headers_mut()
                        .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
                }
                res
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
        "br" => "application/x-brotli",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_the_client_accepts_is_served_with_its_encoding() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.js"), "raw").unwrap();
        std::fs::write(dir.path().join("app.js.br"), "brotli").unwrap();
        std::fs::write(dir.path().join("app.js.gz"), "gzip").unwrap();
        std::fs::write(dir.path().join("index.html"), "page").unwrap();
        let ui = Ui::new(Some(dir.path().to_owned()));
        let get = |path: &str, accept: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(a) = accept {
                h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(a).unwrap());
            }
            let res = ui.respond(&path.parse().unwrap(), &h);
            let coding = res
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap().to_string());
            let mime = res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_string();
            let body = futures_util::FutureExt::now_or_never(axum::body::to_bytes(
                res.into_body(),
                1 << 20,
            ))
            .unwrap()
            .unwrap();
            (coding, String::from_utf8(body.to_vec()).unwrap(), mime)
        };
        let js = "text/javascript; charset=utf-8".to_string();
        assert_eq!(
            get("/app.js", Some("gzip, deflate, br, zstd")),
            (Some("br".into()), "brotli".into(), js.clone())
        );
        assert_eq!(
            get("/app.js", Some("gzip")),
            (Some("gzip".into()), "gzip".into(), js.clone())
        );
        assert_eq!(
            get("/app.js", Some("br;q=0, gzip;q=0.5")),
            (Some("gzip".into()), "gzip".into(), js.clone())
        );
        assert_eq!(get("/app.js", None), (None, "raw".into(), js.clone()));
        assert_eq!(get("/app.js", Some("identity")), (None, "raw".into(), js));
        // No copy: the file as it is; a screen's address: the page.
        assert_eq!(get("/wall", Some("br")).1, "page");
    }
}
