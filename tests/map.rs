//! The operations map at a province's scale, in a real browser: a generated province (devices
//! at real places of Nghệ An, spread over its 130 communes inside their official boundaries)
//! drawn as clusters; a critical device inside a cluster turns that cluster red, on the page's
//! pixels, not only in its data; a click on a cluster opens it; the alert queue takes the map
//! to the device, past the clusters.

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use ioc_e2e::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const DEVICES: usize = 2600;
/// `COLORS.critical` in `ui/js/devices.js`.
const RED: [u8; 3] = [0xff, 0x45, 0x3a];

/// The cluster holding device `id` at the current view, as drawn: its cell, worst rank, size,
/// critical count and place on the page (CSS pixels); null while the map moves or before the
/// map has drawn that cluster as it is.
async fn cluster_of(c: &Client, id: &str) -> Value {
    js(
        c,
        &format!(
            "const m = window.__iocMap, d = window.__iocDevices;
             if (!m || !d || m.isMoving()) return null;
             const f = d.holding('{id}');
             if (!f) return null;
             const drawn = m.queryRenderedFeatures({{layers: ['clusters']}}).some((r) =>
               r.properties.cell === f.properties.cell && r.properties.rank === f.properties.rank
               && r.properties.count === f.properties.count);
             if (!drawn) return null;
             const p = m.project(f.geometry.coordinates);
             const r = m.getCanvas().getBoundingClientRect();
             return {{cluster: f.properties.cell, rank: f.properties.rank, count: f.properties.count,
                      critical: f.properties.critical, x: r.left + p.x, y: r.top + p.y}};"
        ),
    )
    .await
}

/// Whether the page's pixels around (x, y) are the critical red (the cluster's number is
/// drawn in its middle, so above and below it).
fn red_at(png: &[u8], x: f64, y: f64) -> bool {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let px = |x: i64, y: i64| -> [u8; 3] {
        let i = (y as usize * info.width as usize + x as usize) * channels;
        [buf[i], buf[i + 1], buf[i + 2]]
    };
    let near = |p: [u8; 3]| (0..3).all(|k| (p[k] as i32 - RED[k] as i32).abs() <= 24);
    [(0, -8), (0, 8), (-9, -4), (9, 4)]
        .iter()
        .filter(|(dx, dy)| near(px(x.round() as i64 + dx, y.round() as i64 + dy)))
        .count()
        >= 2
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_critical_device_colours_its_cluster() {
    let Some(shared) = shared_data() else {
        return missing::missing("../shared/data (the communes' boundaries) not found");
    };
    let communes = std::fs::read_to_string(shared.join("geo/nghe-an-communes-2025.geojson"))
        .expect("the communes' boundaries");
    let province = ioc_engine::demo::province::devices(&communes, DEVICES, 14).unwrap();
    // A water gauge in Vinh: the one that will flood.
    let gauge = province["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["properties"]["type"] == "WaterLevelGauge" && f["properties"]["unit"] == "16681"
        })
        .expect("a gauge in Thành Vinh")
        .clone();
    let id = gauge["properties"]["id"].as_str().unwrap().to_string();
    let [lon, lat] = [0, 1].map(|i| gauge["geometry"]["coordinates"][i].as_f64().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import_basemap(&data);
    let config = dir.path().join("province.toml");
    std::fs::write(
        &config,
        "[hub]\nframe_interval = \"100ms\"\nheartbeat = \"1s\"\n\n[[rule]]\nname = \"flood\"\n\
         when = \"metric == 'water_level' && value >= 5.0\"\nseverity = \"critical\"\n\
         category = \"flood\"\nmessage = \"Mực nước {value} m\"\n",
    )
    .unwrap();
    let server = Server::start_with("map-server", &data, &config, 0, &["--no-demo"]);
    import(
        &server,
        "geojson",
        "province.geojson",
        None,
        province.to_string(),
    )
    .await;

    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.set_window_size(1600, 1000).await.unwrap();
    c.goto(&server.url("/")).await.unwrap();
    wait_for("every device on the map", T, || async {
        let n = js(&c, "const m = document.getElementById('map'); return m ? Number(m.dataset.markers || 0) : 0;").await;
        (n.as_u64() == Some(DEVICES as u64)).then_some(())
    })
    .await;
    // The province's view: the gauge is inside a cluster, and nothing there is critical yet.
    let before = wait_for("the gauge's cluster", T, || async {
        Some(cluster_of(&c, &id).await).filter(|v| v["rank"].is_number())
    })
    .await;
    assert!(before["count"].as_u64().unwrap() > 1, "{before}");
    assert!(before["rank"].as_u64().unwrap() < 7, "{before}");
    let png = c.screenshot().await.unwrap();
    let (x, y) = (before["x"].as_f64().unwrap(), before["y"].as_f64().unwrap());
    assert!(!red_at(&png, x, y), "red before any alert: {before}");
    screenshot(&c, "map-province-clusters").await;

    // The gauge floods: its cluster turns red, in its data and on the screen.
    let mapping =
        "id = \"id\"\nlon = \"lon\"\nlat = \"lat\"\nname = \"name\"\nkind = \"WaterLevelGauge\"\n\
                   domain = \"water\"\nmetrics = { water_level = \"level\" }\n";
    let body = json!({"id": id, "lon": lon, "lat": lat, "name": gauge["properties"]["name"], "level": 6.2});
    import(
        &server,
        "json",
        "gauge.json",
        Some(mapping),
        body.to_string(),
    )
    .await;
    let after = wait_for("the cluster turned critical", T, || async {
        Some(cluster_of(&c, &id).await).filter(|v| v["rank"] == 7)
    })
    .await;
    assert_eq!(after["critical"], 1, "{after}");
    assert_eq!(after["count"], before["count"], "the same cluster: {after}");
    let (x, y) = (after["x"].as_f64().unwrap(), after["y"].as_f64().unwrap());
    let red = wait_for("the red cluster on the screen", T, || async {
        let png = c.screenshot().await.unwrap();
        red_at(&png, x, y).then_some(png)
    })
    .await;
    std::fs::write(artifacts().join("map-critical-cluster.png"), red).unwrap();

    // A click on the cluster opens it: the map zooms in.
    let zoom = js(&c, "return window.__iocMap.getZoom();")
        .await
        .as_f64()
        .unwrap();
    js(
        &c,
        &format!(
            "const el = window.__iocMap.getCanvas();
             const at = {{clientX: {x}, clientY: {y}, bubbles: true, button: 0}};
             el.dispatchEvent(new MouseEvent('mousedown', at));
             el.dispatchEvent(new MouseEvent('mouseup', at));
             el.dispatchEvent(new MouseEvent('click', at));
             return true;"
        ),
    )
    .await;
    wait_for("the map zoomed into the cluster", T, || async {
        let z = js(
            &c,
            "return window.__iocMap.isMoving() ? null : window.__iocMap.getZoom();",
        )
        .await;
        z.as_f64().filter(|z| *z > zoom + 0.5)
    })
    .await;

    // The queue and the map in step: the alert, opened from the keyboard, takes the map to
    // the gauge itself, a marker of its own past the clusters.
    let body_el = c.find(Locator::Css("body")).await.unwrap();
    wait_for("the alert in the queue", T, || async {
        js(
            &c,
            "return document.querySelector('#alert-list li.alert') !== null",
        )
        .await
        .as_bool()
        .filter(|b| *b)
    })
    .await;
    body_el.send_keys("j").await.unwrap();
    body_el.send_keys(&Key::Enter.to_string()).await.unwrap();
    wait_for("the gauge as a marker of its own", T, || async {
        js(
            &c,
            &format!(
                "const m = window.__iocMap; if (m.isMoving()) return false;
                 const level = m.getFeatureState({{source: 'entities', id: '{id}'}}).level;
                 return level === 'critical' && m.queryRenderedFeatures({{layers: ['markers']}})
                   .some((f) => f.properties.id === '{id}');"
            ),
        )
        .await
        .as_bool()
        .filter(|b| *b)
    })
    .await;
    screenshot(&c, "map-alert-device").await;
    drop(c);
    server.stop();
}
