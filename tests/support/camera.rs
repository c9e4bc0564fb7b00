//! Cameras on screen, for the browser and desktop tests: what the player shows, the
//! camera's marker, and opening a camera's panel from the map.

use crate::{js, wait_for};
use fantoccini::{Client, Locator};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// What the page's player says: (state, frames decoded by the video element, its time).
pub async fn playing(c: &Client, cam: &str) -> Value {
    js(
        c,
        &format!(
            "const d = document.querySelector('.camera-live[data-camera=\"{cam}\"]');
             if (!d) return null;
             const v = d.querySelector('video');
             const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : null;
             return {{ state: d.dataset.state, appended: Number(d.dataset.frames), decoded: q,
                      time: v.currentTime, latency: d.dataset.latency, width: v.videoWidth, err: v.error && v.error.message, rs: v.readyState, src: v.src, buf: v.buffered.length ? [v.buffered.start(0), v.buffered.end(v.buffered.length-1)] : null }};"
        ),
    )
    .await
}

/// The camera's marker colour level on the map: its feature-state after a change, else the
/// level its feature was drawn with.
pub async fn marker(c: &Client, cam: &str) -> Value {
    js(
        c,
        &format!(
            "try {{ const m = window.__iocMap; if (!m) return null;
               return m.getFeatureState({{source: 'entities', id: '{cam}'}}).level
                 || window.__iocLevel('{cam}'); }}
             catch (e) {{ return null; }}"
        ),
    )
    .await
}

/// Waits until the picture advances: decoded frames and time both move within a second.
pub async fn advances(c: &Client, cam: &str, what: &str) -> Value {
    wait_for(what, T, || async {
        let a = playing(c, cam).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let b = playing(c, cam).await;
        eprintln!("{what}: {b}");
        let moved = |k: &str| b[k].as_f64().unwrap_or(0.0) > a[k].as_f64().unwrap_or(0.0);
        (b["state"] == "live" && moved("time") && moved("decoded") && b["width"] == 320)
            .then_some(b)
    })
    .await
}

/// Clicks the camera's marker on the map (centred on it first) until its panel shows.
pub async fn open_panel(c: &Client, cam: &str, lon: f64, lat: f64) {
    wait_for("the camera on the map", T, || async {
        marker(c, cam).await.as_str().map(|_| ())
    })
    .await;
    js(
        c,
        &format!("window.__iocMap.jumpTo({{center: [{lon}, {lat}], zoom: 15}}); return true;"),
    )
    .await;
    wait_for("the camera's panel", T, || async {
        js(
            c,
            &format!(
                "const m = window.__iocMap; const p = m.project([{lon}, {lat}]);
                 const r = m.getCanvas().getBoundingClientRect();
                 const at = {{clientX: r.left + p.x, clientY: r.top + p.y, bubbles: true, button: 0}};
                 const el = m.getCanvas();
                 el.dispatchEvent(new MouseEvent('mousedown', at));
                 el.dispatchEvent(new MouseEvent('mouseup', at));
                 el.dispatchEvent(new MouseEvent('click', at));
                 return true;"
            ),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.find(Locator::Css(&format!(".camera-live[data-camera=\"{cam}\"]"))).await.ok().map(|_| ())
    })
    .await;
}

/// A GeoJSON FeatureCollection of one camera.
pub fn camera_geojson(cam: &str, name: &str, lon: f64, lat: f64, rtsp_url: &str) -> Value {
    serde_json::json!({"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"id": cam, "type": "Camera", "name": name, "rtsp_url": rtsp_url}
    }]})
}

/// A camera's HTTP still as the test serves it: a real JPEG (ffmpeg's test card, made once)
/// at `http://ADDR/snap.jpg`, counting the requests.
pub struct StillServer {
    pub addr: std::net::SocketAddr,
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StillServer {
    /// Needs ffmpeg (Debian's package, installed by `cargo xtask setup --test`).
    pub async fn start(dir: &std::path::Path) -> Result<StillServer, String> {
        let jpeg = dir.join("still.jpg");
        let out = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc=size=640x360:rate=1")
            .args(["-frames:v", "1"])
            .arg(&jpeg)
            .output()
            .map_err(|e| format!("ffmpeg (apt install ffmpeg): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ffmpeg: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let body = std::fs::read(&jpeg).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let body = body.clone();
                let h = h.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                });
            }
        });
        Ok(StillServer { addr, hits })
    }

    pub fn url(&self) -> String {
        format!("http://{}/snap.jpg", self.addr)
    }
}

/// Moves the mouse over a marker (the map centred there first) until its hover card shows
/// a loaded still; what the card's picture is.
pub async fn hover_still(c: &Client, cam: &str, lon: f64, lat: f64) -> Value {
    wait_for("the camera on the map", T, || async {
        marker(c, cam).await.as_str().map(|_| ())
    })
    .await;
    js(
        c,
        &format!("window.__iocMap.jumpTo({{center: [{lon}, {lat}], zoom: 15}}); return true;"),
    )
    .await;
    wait_for("the hover card's still", T, || async {
        let v = js(
            c,
            &format!(
                "const m = window.__iocMap; const p = m.project([{lon}, {lat}]);
                 const r = m.getCanvas().getBoundingClientRect();
                 m.getCanvas().dispatchEvent(new MouseEvent('mousemove', {{clientX: r.left + p.x, clientY: r.top + p.y, bubbles: true}}));
                 const i = document.querySelector('.map-tip img.tip-still[data-camera=\"{cam}\"]');
                 return i && i.complete && i.naturalWidth > 0 ? {{width: i.naturalWidth, src: i.src, text: i.parentElement.textContent}} : null;"
            ),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        (!v.is_null()).then_some(v)
    })
    .await
}
