//! Leading, in a real browser: the leader dashboard with its KPIs; a leader composing a
//! dashboard of their own that is still there after the server restarts; a KPI's page with
//! its ranking and what is behind the number; a report made with its progress; the video
//! wall rotating its playlist, switching to a critical alert and back when it is resolved;
//! and the wall left running at a high update rate, its memory (page and server) staying
//! flat, its feed coming back by itself after the server went away — without a reload.

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use ioc_e2e::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
const PASSWORD: &str = "lãnh đạo tỉnh 2026";

async fn call(
    server: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut r = match method {
        "POST" => c.post(server.url(path)),
        "PUT" => c.put(server.url(path)),
        _ => c.get(server.url(path)),
    };
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn sign_in(c: &Client, server: &Server, user: &str) {
    c.goto(&server.url("/")).await.unwrap();
    let u = wait_for("the sign-in form", T, || async {
        c.find(Locator::Id("login-username")).await.ok()
    })
    .await;
    u.send_keys(user).await.unwrap();
    let p = c.find(Locator::Id("login-password")).await.unwrap();
    p.send_keys(PASSWORD).await.unwrap();
    p.send_keys(&Key::Enter.to_string()).await.unwrap();
    wait_for("the console", T, || async {
        c.find(Locator::Id("user-chip")).await.ok()
    })
    .await;
}

async fn key(c: &Client, k: &str) {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(k)
        .await
        .unwrap();
}

async fn click(c: &Client, css: &str) {
    wait_for(&format!("{css} to click"), T, || async {
        let el = c.find(Locator::Css(css)).await.ok()?;
        el.click().await.ok()
    })
    .await;
}

async fn choose(c: &Client, select: &str, value: &str) {
    click(c, &format!("{select} option[value=\"{value}\"]")).await;
}

async fn count(c: &Client, css: &str) -> u64 {
    js(
        c,
        &format!("return document.querySelectorAll('{css}').length"),
    )
    .await
    .as_u64()
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_leader_dashboards_kpis_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let basemap = import_basemap(&data);
    add_user(&data, "thanh", "leader", PASSWORD);
    let config = fast_config(dir.path());
    let port = free_port();
    let server = Server::start("lead-server", &data, &config, port);
    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    sign_in(&c, &server, "thanh").await;

    // The leader dashboard: KPI tiles with their values, the communes coloured, incidents.
    key(&c, "9").await;
    wait_for("KPI tiles with values", T, || async {
        (count(&c, "#dash-grid .kpi-tile[data-value]").await >= 4
            && count(
                &c,
                "#dash-grid .kpi-tile[data-value]:not([data-value=\"\"])",
            )
            .await
                >= 2)
            .then_some(())
    })
    .await;
    if basemap {
        wait_for("the map coloured by commune", T, || async {
            js(&c, "const m = document.querySelector('#dash-grid .small-map'); return m ? Number(m.dataset.colored || -1) : -1;")
                .await
                .as_i64()
                .filter(|n| *n >= 0)
        })
        .await;
    } else {
        // No boundaries to colour (a clone without ../shared/data): the panel says so.
        wait_for("the map saying it has no basemap", T, || async {
            c.find(Locator::Css("#dash-grid .small-map .small-map-note"))
                .await
                .ok()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    screenshot(&c, "leader-dashboard").await;
    // Its communes are drawn (the tiles are behind sign-in like everything else).
    let err = js(
        &c,
        "return document.querySelector('#dash-grid .small-map').dataset.error || null",
    )
    .await;
    assert!(err.is_null(), "the dashboard map: {err}");

    // A dashboard of their own: a KPI tile, a ranking, a note; moved, saved.
    click(&c, "#dash-new").await;
    let name = c.find(Locator::Id("dash-name")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("Bảng của lãnh đạo Thanh").await.unwrap();
    choose(&c, "#panel-kind", "kpi").await;
    choose(&c, "#panel-kpi", "aq-good-share").await;
    click(&c, "#panel-add").await;
    choose(&c, "#panel-kind", "ranking").await;
    choose(&c, "#panel-kpi", "river-below-alarm").await;
    click(&c, "#panel-add").await;
    choose(&c, "#panel-kind", "text").await;
    c.find(Locator::Id("panel-text"))
        .await
        .unwrap()
        .send_keys("Họp giao ban 7:30")
        .await
        .unwrap();
    click(&c, "#panel-add").await;
    wait_for("three panels", T, || async {
        (count(&c, "#dash-grid .panel").await == 3).then_some(())
    })
    .await;
    // New panels fill in beside the others; the tile moves down a row (right of it is taken).
    click(&c, "[data-controls=\"p1\"] .right").await;
    click(&c, "[data-controls=\"p1\"] .down").await;
    click(&c, ".dash-share[data-role=\"supervisor\"]").await;
    click(&c, "#dash-save").await;
    let saved_id = wait_for("the saved dashboard's tab", T, || async {
        js(&c, "const b = [...document.querySelectorAll('#dash-tabs [data-dashboard]')].find(b => b.innerText.includes('Thanh')); return b ? b.dataset.dashboard : null;")
            .await
            .as_str()
            .map(str::to_string)
    })
    .await;
    screenshot(&c, "own-dashboard").await;

    // The KPI screen: a KPI's ranking and what is behind it; a report with its progress.
    key(&c, "0").await;
    click(&c, "#kpi-table tr[data-kpi=\"pm25-mean\"]").await;
    wait_for("what is behind the number", T, || async {
        (count(&c, "#kpi-items tbody tr").await > 0).then_some(())
    })
    .await;
    wait_for("communes ranked", T, || async {
        (count(&c, "#kpi-ranking li").await > 0).then_some(())
    })
    .await;
    click(&c, "#kpi-ranking li").await;
    wait_for("one commune's items", T, || async {
        let n = count(&c, "#kpi-items tbody tr").await;
        (n > 0).then_some(())
    })
    .await;
    choose(&c, "#report-period", "day").await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    js(&c, &format!("const d = document.getElementById('report-date'); d.value = '{today}'; d.dispatchEvent(new Event('change'));")).await;
    click(&c, "#report-start").await;
    wait_for("the report made", T, || async {
        js(&c, "const p = document.getElementById('report-progress'); return p ? p.dataset.state : null;")
            .await
            .as_str()
            .filter(|s| *s == "done")
            .map(|_| ())
    })
    .await;
    screenshot(&c, "kpi-page").await;
    let href = js(&c, "return document.getElementById('report-download').href")
        .await
        .as_str()
        .unwrap()
        .to_string();
    // The link works for the signed-in browser (its session cookie), and for no one else.
    let anonymous = reqwest::get(&href).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let pdf = reqwest::Client::new()
        .get(&href)
        .header("cookie", session_cookie(&c).await)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status().as_u16(), 200);
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    assert!(
        std::fs::read_dir(data.join("reports")).unwrap().count() >= 1,
        "kept in the reports folder"
    );

    // After a restart, the dashboard is still there, as it was.
    drop(c);
    server.stop();
    let server = Server::start("lead-server", &data, &config, port);
    let c = driver.chrome_session().await;
    sign_in(&c, &server, "thanh").await;
    key(&c, "9").await;
    click(&c, &format!("#dash-tabs [data-dashboard=\"{saved_id}\"]")).await;
    wait_for("the own dashboard again", T, || async {
        let n = count(
            &c,
            &format!("#dash-grid[data-dashboard=\"{saved_id}\"] .panel"),
        )
        .await;
        (n == 3).then_some(())
    })
    .await;
    let text = js(&c, "return document.getElementById('dash-grid').innerText").await;
    assert!(text.as_str().unwrap().contains("Họp giao ban 7:30"));
    let login = call(
        &server,
        None,
        "POST",
        "/api/login",
        Some(json!({"username": "thanh", "password": PASSWORD, "token": true})),
    )
    .await
    .1;
    let token = login["token"].as_str().unwrap().to_string();
    let (_, ds) = call(
        &server,
        Some(&token),
        "GET",
        &format!("/api/dashboards/{saved_id}"),
        None,
    )
    .await;
    assert_eq!(ds["owner"], "thanh");
    assert_eq!(ds["shared_roles"], json!(["supervisor"]));
    let p1 = ds["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "p1")
        .unwrap()
        .clone();
    assert_eq!(
        (p1["x"].as_i64(), p1["y"].as_i64()),
        (Some(0), Some(1)),
        "moved down, not into its neighbour: {p1}"
    );
    drop(c);
    server.stop();
}

/// A config with a quiet demo (no episodes) and a rule the test triggers by itself.
fn quiet_config(dir: &std::path::Path, interval: &str, episodes: &str) -> std::path::PathBuf {
    let path = dir.join("wall.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[hub]
frame_interval = "100ms"
heartbeat = "1s"

[kpi_settings]
refresh = "5s"

[reports]
schedule = []

[[source]]
name = "demo"
kind = "simulator"
interval = "{interval}"
scale = 1.0
episode_every = "{episodes}"
episode_length = "6s"
backfill = "30m"

[[rule]]
name = "river-critical"
when = "metric == 'water_level' && value >= 9.0"
severity = "critical"
category = "flood"
message = "Mực nước {{value}} m: nguy hiểm"

[[rule]]
name = "pm25-very-unhealthy"
when = "metric == 'pm25' && value > 150.0"
severity = "major"
category = "air_quality"
message = "PM2.5 {{value}} µg/m³"
"#
        ),
    )
    .unwrap();
    path
}

async fn showing(c: &Client) -> String {
    js(
        c,
        "const w = document.getElementById('wall'); return w ? w.dataset.showing : '';",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_wall_playlist_and_preset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    import_basemap(&data);
    let config = quiet_config(dir.path(), "2s", "100d");
    let server = Server::start("wall-server", &data, &config, 0);
    let wall = json!({"screens": [{"name": "Màn hình 1", "playlist": [
        {"dashboard": "leader", "seconds": 6}, {"dashboard": "city", "seconds": 6}]}],
        "preset_severity": "critical"});
    let (s, v) = call(&server, None, "PUT", "/api/wall", Some(wall)).await;
    assert_eq!(s, 200, "{v}");
    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.goto(&server.url("/wall?screen=1")).await.unwrap();
    wait_for("the wall on the leader dashboard", T, || async {
        (showing(&c).await == "leader").then_some(())
    })
    .await;
    assert_eq!(
        count(&c, ".topbar").await,
        0,
        "no console chrome on the wall"
    );
    wait_for("KPI tiles on the wall", T, || async {
        (count(&c, ".wall-dash.shown .kpi-tile[data-value]").await >= 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    screenshot(&c, "wall-leader").await;
    wait_for(
        "the playlist to move on",
        Duration::from_secs(20),
        || async { (showing(&c).await == "city").then_some(()) },
    )
    .await;
    screenshot(&c, "wall-city").await;
    wait_for("and around", Duration::from_secs(20), || async {
        (showing(&c).await == "leader").then_some(())
    })
    .await;

    // A critical alert takes the wall: its place, its chart, the nearest camera.
    let mapping = "id = \"id\"\nlon = \"lon\"\nlat = \"lat\"\nname = \"name\"\nkind = \"WaterLevelGauge\"\ndomain = \"water\"\nmetrics = { water_level = \"level\" }\n";
    let body = json!({"id": "wall-gauge", "lon": 105.69, "lat": 18.68, "name": "Trạm thủy văn thử Bến Thủy", "level": 9.6});
    let r = reqwest::Client::new()
        .post(server.url(&format!(
            "/api/import?format=json&name=gauge.json&mapping={}",
            urlencode(mapping)
        )))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    wait_for("the wall on the alert", T, || async {
        (showing(&c).await == "preset").then_some(())
    })
    .await;
    wait_for("the map on the alert", T, || async {
        js(&c, "const m = document.getElementById('wall-preset-map'); return m ? m.dataset.focus : null;")
            .await
            .as_str()
            .filter(|f| f.contains("Bến Thủy"))
            .map(|_| ())
    })
    .await;
    // The alert's cameras: the demo's nearest simulated camera, its still on the wall.
    wait_for("the alert's camera on the wall", T, || async {
        js(
            &c,
            "const i = document.querySelector('#wall-cameras .camera-still[data-state=shown] img');
                return i && i.complete && i.naturalWidth > 0 ? true : null;",
        )
        .await
        .as_bool()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    screenshot(&c, "wall-preset").await;
    // Resolved: the wall goes back to its playlist.
    let alert = js(
        &c,
        "return Number(document.getElementById('wall').dataset.alert)",
    )
    .await
    .as_i64()
    .unwrap();
    let (s, v) = call(
        &server,
        None,
        "POST",
        &format!("/api/alerts/{alert}/resolve"),
        Some(json!({"comment": "đã kiểm tra"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_for("the playlist again", T, || async {
        let s = showing(&c).await;
        (s == "leader" || s == "city").then_some(())
    })
    .await;
    drop(c);
    server.stop();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Resident memory of a process, KiB; a process whose memory cannot be read fails the test
/// (a soak that read 0 would find it flat).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| {
        panic!("the server's memory cannot be measured: /proc/{pid}/status: {e}")
    });
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .filter(|kib| *kib > 0)
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status:\n{status}"))
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    heap_mb: f64,
    nodes: f64,
    rss_mb: f64,
}

/// One measurement of the page (its JavaScript heap after a full collection, its DOM nodes)
/// and of the server. The heap is Chromium's `performance.memory` (precise with
/// `--enable-precise-memory-info`), the collection `window.gc` (`--js-flags=--expose-gc`):
/// when either is missing the test fails, rather than comparing zeros and finding them flat.
async fn sample(c: &Client, pid: u32, start: Instant) -> Sample {
    let v = js(
        c,
        "const gc = typeof window.gc === 'function'; if (gc) { window.gc(); } \
         const m = performance.memory; \
         return [gc, m ? m.usedJSHeapSize : null, document.getElementsByTagName('*').length];",
    )
    .await;
    assert_eq!(
        v[0],
        json!(true),
        "window.gc is missing: the browser was not started with --js-flags=--expose-gc, and \
         the heap measured without a collection says nothing about a leak"
    );
    let heap = v[1].as_f64().filter(|h| *h > 0.0).unwrap_or_else(|| {
        panic!(
            "the page's heap cannot be measured: performance.memory.usedJSHeapSize is {} \
             (Chromium has it; without it the soak would compare zeros)",
            v[1]
        )
    });
    let nodes = v[2]
        .as_f64()
        .filter(|n| *n > 0.0)
        .unwrap_or_else(|| panic!("the page's DOM nodes cannot be counted: {}", v[2]));
    Sample {
        at: start.elapsed().as_secs_f64(),
        heap_mb: heap / 1e6,
        nodes,
        rss_mb: rss_kib(pid) as f64 / 1024.0,
    }
}

fn mean(s: &[Sample], f: fn(&Sample) -> f64) -> f64 {
    s.iter().map(f).sum::<f64>() / s.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_wall_soak() {
    let seconds: u64 = std::env::var("IOC_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    import_basemap(&data);
    // Every device every 200 ms, an episode every 2 s: thousands of values a second, alerts
    // coming and going, the wall switching to them and back.
    let config = quiet_config(dir.path(), "200ms", "2s");
    let port = free_port();
    let server = Server::start("soak-server", &data, &config, port);
    let wall = json!({"screens": [{"name": "1", "playlist": [
        {"dashboard": "leader", "seconds": 5}, {"dashboard": "city", "seconds": 5}]}],
        "preset_severity": "major"});
    assert_eq!(
        call(&server, None, "PUT", "/api/wall", Some(wall)).await.0,
        200
    );
    let driver = WebDriver::chromedriver().await;
    let c = driver
        .session(json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                    "--window-size=1600,900", "--remote-debugging-pipe",
                    "--js-flags=--expose-gc", "--enable-precise-memory-info"]
            }
        }))
        .await;
    c.goto(&server.url("/wall")).await.unwrap();
    wait_for("the wall", T, || async {
        (!showing(&c).await.is_empty()).then_some(())
    })
    .await;
    let loaded = js(&c, "return window.__wallLoadedAt")
        .await
        .as_f64()
        .unwrap();
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut shown = std::collections::HashSet::new();
    // A sample every 10 s of wall time, and at least eight of them: on a loaded machine a
    // script round trip to the busy page can take seconds, so the count must not depend on how
    // many round trips fit in the time.
    while start.elapsed() < Duration::from_secs(seconds) || samples.len() < 8 {
        let next = Instant::now() + Duration::from_secs(10);
        while Instant::now() < next {
            shown.insert(showing(&c).await);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let s = sample(&c, server.pid(), start).await;
        eprintln!(
            "soak {:>5.0} s: heap {:.1} MB, {} nodes, server {:.1} MB",
            s.at, s.heap_mb, s.nodes, s.rss_mb
        );
        samples.push(s);
    }
    screenshot(&c, "wall-soak").await;
    assert!(
        shown.contains("preset") && shown.contains("leader") && shown.contains("city"),
        "{shown:?}"
    );
    // Flat: the last samples against those just after warming up.
    let early = &samples[2..4];
    let late = &samples[samples.len() - 2..];
    let (h0, h1) = (mean(early, |s| s.heap_mb), mean(late, |s| s.heap_mb));
    let (n0, n1) = (mean(early, |s| s.nodes), mean(late, |s| s.nodes));
    let (r0, r1) = (mean(early, |s| s.rss_mb), mean(late, |s| s.rss_mb));
    eprintln!(
        "soak: heap {h0:.1} → {h1:.1} MB, nodes {n0:.0} → {n1:.0}, server {r0:.1} → {r1:.1} MB"
    );
    assert!(
        h1 <= h0 * 1.3 + 5.0,
        "the page's heap grows: {h0:.1} → {h1:.1} MB"
    );
    assert!(
        n1 <= n0 * 1.3 + 200.0,
        "the page's nodes grow: {n0:.0} → {n1:.0}"
    );
    assert!(
        r1 <= r0 * 1.3 + 30.0,
        "the server's memory grows: {r0:.1} → {r1:.1} MB"
    );

    // The server goes away: the wall says since when; it comes back: the wall by itself.
    server.stop();
    wait_for("the stale banner", Duration::from_secs(40), || async {
        c.find(Locator::Id("wall-stale")).await.ok()
    })
    .await;
    let banner = js(&c, "return document.getElementById('wall-stale').innerText").await;
    assert!(
        banner.as_str().unwrap().contains("Dữ liệu dừng từ"),
        "{banner}"
    );
    screenshot(&c, "wall-stale").await;
    let server = Server::start("soak-server", &data, &config, port);
    wait_for("the wall live again", Duration::from_secs(60), || async {
        (count(&c, "#wall-stale").await == 0).then_some(())
    })
    .await;
    let again = js(&c, "return window.__wallLoadedAt")
        .await
        .as_f64()
        .unwrap();
    assert_eq!(loaded, again, "no reload");
    drop(c);
    server.stop();
}
