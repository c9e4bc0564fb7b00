//! `ioc bench map`: the operations screen in headless Chromium (software WebGL, as on this
//! machine) against a generated province of 10,000, 50,000 and 100,000 devices, next to the
//! same page with 1,000 devices measured in the same run.
//!
//! For each size, a real `ioc serve` with the devices imported (at real places of Nghệ An,
//! spread over its communes inside their official boundaries), then in the page:
//! - first complete render: from navigation to the map idle with every device in its source;
//! - pan: frames the map drew per second while panning across the province for two seconds;
//! - 2,000 changes: 2,000 devices reported offline in one request, until the page has all of
//!   them and the map has drawn the frame with the clusters they changed; printed with the
//!   time the page had them (the rest is the map's).

use crate::bench_api::serve;
use anyhow::Context;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct MapBench {
    pub communes: std::path::PathBuf,
    pub sizes: Vec<usize>,
    pub changes: usize,
}

#[derive(Debug, Clone)]
pub struct MapCase {
    pub devices: usize,
    pub first_render_ms: f64,
    /// The page's marks until then (ms after navigation started).
    pub first_render_steps: String,
    pub pan_fps: f64,
    pub changes_ms: f64,
    /// Of which: until the page had every change (the rest is the map's redrawing).
    pub changes_seen_ms: f64,
    /// The wall (`/wall`): its first screen drawn with data, and the page's load event, ms
    /// after navigation started.
    pub wall_painted_ms: f64,
    pub wall_loaded_ms: f64,
}

struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn chromium() -> anyhow::Result<(Driver, fantoccini::Client)> {
    let port = free_port()?;
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("chromedriver (Debian's chromium-driver) is needed for `ioc bench map`")?;
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--window-size=1600,900",
                "--remote-debugging-pipe",
            ]
        }
    });
    let caps: serde_json::Map<String, Value> = caps.as_object().expect("an object").clone();
    let t0 = Instant::now();
    loop {
        match fantoccini::ClientBuilder::rustls()?
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return Ok((driver, c)),
            Err(e) if t0.elapsed() > Duration::from_secs(30) => {
                anyhow::bail!("a Chromium session: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn js(c: &fantoccini::Client, script: &str) -> anyhow::Result<Value> {
    Ok(c.execute(script, vec![]).await?)
}

async fn js_async(c: &fantoccini::Client, body: &str) -> anyhow::Result<Value> {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         (async () => {{ {body} }})().then(done, (e) => done({{error: String(e)}}));"
    );
    let v = c.execute_async(&script, vec![]).await?;
    if let Some(e) = v.get("error") {
        anyhow::bail!("in the page: {e}");
    }
    Ok(v)
}

async fn poll(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    while !f().await? {
        anyhow::ensure!(t0.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Fresh loads of the page whose first render is measured (the median is printed).
const FIRST_RENDER_RUNS: usize = 3;

/// Opens the operations screen afresh: the time to its first complete render (every one of
/// the `n` devices in the map's source and the map idle) and the page's marks until then.
async fn first_render(
    c: &fantoccini::Client,
    url: &str,
    n: usize,
) -> anyhow::Result<(f64, String)> {
    c.goto(&format!("{url}/")).await?;
    // First complete render: every device in the map's source and the map idle.
    poll("the devices on the map", Duration::from_secs(120), async || {
        let v = js(c, "const m = document.getElementById('map'); return m ? Number(m.dataset.markers || 0) : 0;").await?;
        Ok(v.as_u64() == Some(n as u64))
    })
    .await?;
    let first = js_async(
        c,
        "const m = window.__iocMap;
         await new Promise((r) => { if (m.loaded() && m.areTilesLoaded()) r(); else m.once('idle', r); });
         return performance.now();",
    )
    .await?;
    let first_render_ms = first.as_f64().unwrap_or(f64::NAN);
    // Where it went: the page's own marks (the UI marks the snapshot's steps).
    let marks = js(
        c,
        "const m = {};
         for (const e of performance.getEntriesByType('mark')) if (!(e.name in m)) m[e.name] = e.startTime;
         const nav = performance.getEntriesByType('navigation')[0];
         if (nav) m['page-loaded'] = nav.loadEventEnd;
         return m;",
    )
    .await?;
    let mut steps: Vec<(String, f64)> = marks
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    steps.sort_by(|a, b| a.1.total_cmp(&b.1));
    let steps = steps
        .iter()
        .map(|(k, v)| format!("{k} {v:.0}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((first_render_ms, steps))
}

async fn case(communes: &str, n: usize, changes: usize) -> anyhow::Result<MapCase> {
    let dir = tempfile::tempdir()?;
    let server = serve(
        dir.path(),
        "[hub]\nframe_interval = \"100ms\"\nheartbeat = \"1s\"\n",
    )?;
    let province = ioc_engine::demo::province::devices(communes, n, 14)?;
    let features = province["features"].as_array().cloned().unwrap_or_default();
    let http = reqwest::Client::new();
    crate::bench_api::import_devices(&http, &server.url, &features).await?;
    let (_driver, c) = chromium().await?;
    // The first render, on fresh loads of the page: the median of FIRST_RENDER_RUNS (one
    // load is at the mercy of the machine's other work; the import is done once).
    let mut runs: Vec<(f64, String)> = Vec::new();
    for _ in 0..FIRST_RENDER_RUNS {
        runs.push(first_render(&c, &server.url, n).await?);
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (first_render_ms, first_render_steps) = runs[runs.len() / 2].clone();

    // Panning across the province for two seconds: frames drawn per second.
    let pan = js_async(
        &c,
        "const m = window.__iocMap;
         let frames = 0; const count = () => { frames += 1; };
         m.on('render', count);
         const t0 = performance.now();
         m.panBy([600, 0], {duration: 1000, easing: (t) => t});
         await new Promise((r) => m.once('moveend', r));
         m.panBy([-600, 0], {duration: 1000, easing: (t) => t});
         await new Promise((r) => m.once('moveend', r));
         m.off('render', count);
         return frames * 1000 / (performance.now() - t0);",
    )
    .await?;
    let pan_fps = pan.as_f64().unwrap_or(f64::NAN);

    // 2,000 devices go offline in one request: until the page has them all and has drawn.
    let ids: Vec<String> = features
        .iter()
        .take(changes)
        .filter_map(|f| f["properties"]["id"].as_str().map(str::to_string))
        .collect();
    js(
        &c,
        &format!(
            "window.__benchIds = {}; window.__benchT0 = null; window.__benchMs = null; window.__benchSeen = null;
             return true;",
            serde_json::to_string(&ids)?
        ),
    )
    .await?;
    // The watch starts in the page before the request leaves, on the page's clock.
    js(
        &c,
        "window.__benchT0 = performance.now();
         const m = window.__iocMap;
         const check = () => {
           const all = window.__benchIds.every((id) => window.__iocLevel(id) === 'offline');
           if (all && window.__benchSeen === null) window.__benchSeen = performance.now() - window.__benchT0;
           const d = window.__iocDevices;
           if (all && !d.dirty && d.level !== -1 && m.isSourceLoaded('entities-clusters') && m.areTilesLoaded()) {
             m.once('render', () => { window.__benchMs = performance.now() - window.__benchT0; });
             m.triggerRepaint();
           } else requestAnimationFrame(check);
         };
         requestAnimationFrame(check);
         return true;",
    )
    .await?;
    let now = chrono::Utc::now().to_rfc3339();
    let obs: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "online": 0, "dateObserved": now}))
        .collect();
    let mapping = "id = \"id\"\ntime = \"dateObserved\"\nmetrics = { online = \"online\" }\n";
    let r = http
        .post(format!("{}/api/import", server.url))
        .query(&[
            ("format", "json"),
            ("name", "offline.json"),
            ("mapping", mapping),
        ])
        .body(Value::Array(obs).to_string())
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "observations: {}", r.text().await?);
    let mut changes_ms = f64::NAN;
    let mut seen_ms = f64::NAN;
    poll(
        "the 2,000 changes on the map",
        Duration::from_secs(120),
        async || {
            let v = js(&c, "return [window.__benchMs, window.__benchSeen];").await?;
            if let (Some(ms), Some(seen)) = (v[0].as_f64(), v[1].as_f64()) {
                changes_ms = ms;
                seen_ms = seen;
            }
            Ok(v[0].is_number())
        },
    )
    .await?;
    // The wall of the same province, opened afresh: its first screen drawn with data.
    c.goto(&format!("{}/wall", server.url)).await?;
    let mut wall = (f64::NAN, f64::NAN);
    poll(
        "the wall's first screen",
        Duration::from_secs(60),
        async || {
            let v = js(
                &c,
                "const m = performance.getEntriesByName('ioc-wall-painted')[0];
             const nav = performance.getEntriesByType('navigation')[0];
             return m ? [m.startTime, nav ? nav.loadEventEnd : 0] : null;",
            )
            .await?;
            if let (Some(p), Some(l)) = (v[0].as_f64(), v[1].as_f64()) {
                wall = (p, l);
                return Ok(true);
            }
            Ok(false)
        },
    )
    .await?;
    let _ = c.close().await;
    drop(server);
    Ok(MapCase {
        wall_painted_ms: wall.0,
        wall_loaded_ms: wall.1,
        devices: n,
        first_render_ms,
        first_render_steps,
        pan_fps,
        changes_ms,
        changes_seen_ms: seen_ms,
    })
}

/// Runs the benchmark: the baseline (the first size) and then each size.
pub async fn run(b: MapBench) -> anyhow::Result<Vec<MapCase>> {
    let communes = std::fs::read_to_string(&b.communes).with_context(|| {
        format!(
            "{}: the communes' boundaries (../shared/data/geo/nghe-an-communes-2025.geojson)",
            b.communes.display()
        )
    })?;
    let mut out = Vec::new();
    for &n in &b.sizes {
        let c = case(&communes, n, b.changes.min(n)).await?;
        println!(
            "{:>6} devices: first render {:.0} ms (median of {FIRST_RENDER_RUNS} loads), pan {:.1} fps, {} changes {:.0} ms \
             (in the page after {:.0} ms); first render: {}",
            c.devices,
            c.first_render_ms,
            c.pan_fps,
            b.changes.min(n),
            c.changes_ms,
            c.changes_seen_ms,
            c.first_render_steps
        );
        println!(
            "{:>6} devices: the wall's first screen drawn {:.0} ms after navigation ({:.0} ms after the page loaded)",
            c.devices,
            c.wall_painted_ms,
            c.wall_painted_ms - c.wall_loaded_ms
        );
        out.push(c);
    }
    Ok(out)
}
