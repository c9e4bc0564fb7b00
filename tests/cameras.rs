//! Cameras in a real browser: a camera fed by a real RTSP server (GStreamer's test pattern)
//! plays in the entity panel (its frames advance, checked from the page), and a camera that
//! loses power turns its marker and its picture to "stalled", raises the offline alert (which
//! opens with the camera's picture and the still of a camera up the street), and comes back by
//! itself when the power does. Hovering over a camera with a still shows its picture; `v` on
//! the alert saves an evidence clip, listed with the alert and downloaded as an MP4.

#[path = "../crates/engine/tests/common/missing.rs"]
mod missing;

use fantoccini::Locator;
use ioc_e2e::*;
use ioc_engine::video::test_server::{self, Options, TestServer};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const CAM: &str = "cam-e2e-quang-trung";
const LON: f64 = 105.6813;
const LAT: f64 = 18.6734;
/// A camera with a still only, 150 m up the street.
const STILL: &str = "cam-e2e-still";
const STILL_LAT: f64 = 18.6748;

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_camera_plays_stalls_and_comes_back() {
    if let Err(e) = test_server::available() {
        return missing::missing(&e);
    }
    let ports = (free_port(), free_port());
    let opts = Options {
        port: ports.0,
        auth_port: ports.1,
        ..Options::default()
    };
    let mut rtsp = TestServer::start(&opts).expect("RTSP test server");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = fast_config(dir.path());
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("\n[video]\nstall = \"2s\"\nretry_max = \"1s\"\nclip_before = \"3s\"\nclip_after = \"2s\"\n");
    std::fs::write(&config, toml).unwrap();
    let server = Server::start("cameras-server", &data, &config, 0);
    let still = match camera::StillServer::start(dir.path()).await {
        Ok(s) => s,
        Err(e) => return missing::missing(&e),
    };

    // The camera comes in as GeoJSON, as a province's camera list would.
    let fc = camera::camera_geojson(
        CAM,
        "Camera ngã tư Quang Trung",
        LON,
        LAT,
        &rtsp.url("cam0"),
    );
    import(&server, "geojson", "cameras.geojson", None, fc.to_string()).await;
    // A second camera with a still only (an HTTP snapshot address), as many are.
    let fc = serde_json::json!({"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [LON, STILL_LAT]},
        "properties": {"id": STILL, "type": "Camera", "name": "Camera dốc Quang Trung",
                       "snapshot_url": still.url()}
    }]});
    import(&server, "geojson", "still.geojson", None, fc.to_string()).await;

    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.set_window_size(1600, 1000).await.unwrap();
    c.goto(&server.url("/")).await.unwrap();
    let supported = js(&c, "return window.MediaSource ? MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42C01E\"') : false").await;
    assert_eq!(
        supported, true,
        "this Chromium cannot play H.264 through Media Source Extensions"
    );

    // Hovering over the still camera shows its picture on the card (the camera's own JPEG).
    let tip = camera::hover_still(&c, STILL, LON, STILL_LAT).await;
    assert_eq!(tip["width"], 640, "{tip}");
    assert!(
        tip["text"]
            .as_str()
            .unwrap_or_default()
            .contains("dốc Quang Trung"),
        "{tip}"
    );
    screenshot(&c, "camera-hover-still").await;
    assert!(still.hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // The operator clicks the camera on the map: its panel plays it.
    camera::open_panel(&c, CAM, LON, LAT).await;
    let live = camera::advances(&c, CAM, "the picture playing").await;
    eprintln!("playing in Chromium: {live}");
    assert!(
        live["latency"].as_str().is_some_and(|l| !l.is_empty()),
        "camera-to-page latency shown: {live}"
    );
    screenshot(&c, "camera-live").await;
    assert_eq!(
        camera::marker(&c, CAM).await,
        "normal",
        "an online camera's marker"
    );

    // Power cut: the picture says so, the marker turns, the offline alert comes.
    rtsp.kill();
    wait_for("the picture stalled", T, || async {
        (camera::playing(&c, CAM).await["state"] == "stalled").then_some(())
    })
    .await;
    let badge = c
        .find(Locator::Css(".camera-live .camera-badge"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(badge.contains("Mất tín hiệu"), "{badge}");
    wait_for("the marker offline", T, || async {
        (camera::marker(&c, CAM).await == "offline").then_some(())
    })
    .await;
    wait_for("the camera-offline alert", T, || async {
        js(&c, "return [...document.querySelectorAll('.queue li')].some(li => li.textContent.includes('Camera mất kết nối') && li.textContent.includes('Quang Trung'))")
            .await
            .as_bool()
            .filter(|b| *b)
    })
    .await;
    screenshot(&c, "camera-stalled").await;
    // The alert opens with its camera (the camera itself here), stalled too.
    c.find(Locator::XPath(
        "//*[contains(@class,'queue')]//li[contains(., 'Camera mất kết nối') and contains(., 'Quang Trung')]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let in_alert = format!("#alert-cameras .camera-live[data-camera=\"{CAM}\"]");
    // …and with the still camera up the street, its picture shown.
    wait_for("the alert's still camera", T, || async {
        js(&c, &format!("const d = document.querySelector('#alert-cameras .camera-still[data-camera=\"{STILL}\"]');
                          const i = d && d.querySelector('img');
                          return d && d.dataset.state === 'shown' && i && i.complete && i.naturalWidth === 640 ? true : null;"))
            .await
            .as_bool()
    })
    .await;
    wait_for("the alert's camera", T, || async {
        js(&c, &format!("const d = document.querySelector('{in_alert}'); return d ? d.dataset.state : null;"))
            .await
            .as_str()
            .filter(|s| *s == "stalled")
            .map(|_| ())
    })
    .await;

    // Power back: it plays again by itself, and the marker is back.
    let _rtsp = TestServer::start(&opts).expect("RTSP test server again");
    let again = camera::advances(&c, CAM, "the picture playing again").await;
    eprintln!("playing again: {again}");
    // The alert's own picture plays again too.
    let frames = || async {
        js(&c, &format!("const d = document.querySelector('{in_alert}'); return d ? [d.dataset.state, Number(d.dataset.frames)] : null;")).await
    };
    wait_for("the alert's camera live again", T, || async {
        let a = frames().await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let b = frames().await;
        (b[0] == "live" && b[1].as_f64() > a[1].as_f64()).then_some(())
    })
    .await;
    screenshot(&c, "camera-alert").await;

    // Evidence: `v` saves a clip of the alert's camera with a stream; it is listed with the
    // alert once saved, downloads as an MP4 and is noted on the timeline.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("v")
        .await
        .unwrap();
    let saved = wait_for("the clip saved", T, || async {
        let v = js(&c, "const li = document.querySelector('#alert-clips li.clip');
                        if (!li) return null;
                        const a = li.querySelector('a');
                        return {state: li.dataset.state, href: a && a.href, name: a && a.getAttribute('download'), text: li.textContent};")
            .await;
        eprintln!("clip: {v}");
        (v["state"] == "saved").then_some(v)
    })
    .await;
    assert!(
        saved["name"].as_str().unwrap_or_default().starts_with(CAM),
        "{saved}"
    );
    let got = js(
        &c,
        &format!(
            "return fetch({:?}).then(async r => {{ const b = new Uint8Array(await r.arrayBuffer());
               return {{status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'),
                        size: b.length, box: String.fromCharCode(b[4], b[5], b[6], b[7])}}; }});",
            saved["href"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["type"], "video/mp4", "{got}");
    assert!(
        got["disposition"]
            .as_str()
            .unwrap_or_default()
            .starts_with("attachment"),
        "{got}"
    );
    assert_eq!(got["box"], "ftyp", "an MP4 file: {got}");
    assert!(got["size"].as_u64().unwrap_or(0) > 10_000, "{got}");
    wait_for("the clip on the alert's timeline", T, || async {
        js(&c, "return [...document.querySelectorAll('#alert-timeline .comment')].some(e => e.textContent.includes('Video #')) || null")
            .await
            .as_bool()
    })
    .await;
    screenshot(&c, "camera-clip").await;

    // The cameras screen (`-`): a grid of four, the camera with a stream first, playing;
    // `g` makes it nine, Enter shows the focused camera alone, Enter again goes back.
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("\u{E00C}").await.unwrap(); // Escape: close the alert panel first
    body.send_keys("-").await.unwrap();
    let grid = |c: &fantoccini::Client| {
        let c = c.clone();
        async move {
            js(&c, "const g = document.getElementById('camera-grid'); if (!g) return null;
                    const cells = [...g.querySelectorAll('.grid-cell')];
                    return {layout: g.dataset.layout, cells: cells.map(x => x.dataset.camera || null),
                            focused: cells.findIndex(x => x.dataset.focused === 'true')};")
                .await
        }
    };
    let g = wait_for("the grid of four", T, || async {
        let g = grid(&c).await;
        (g["layout"] == "4" && g["cells"][0] == CAM).then_some(g)
    })
    .await;
    assert_eq!(g["cells"].as_array().map(Vec::len), Some(4), "{g}");
    let ids: std::collections::HashSet<&str> = g["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    assert_eq!(ids.len(), 4, "four different cameras: {g}");
    let in_grid = camera::advances(&c, CAM, "the grid's camera playing").await;
    eprintln!("grid: {in_grid}");
    screenshot(&c, "camera-grid").await;
    body.send_keys("g").await.unwrap();
    wait_for("the grid of nine", T, || async {
        let g = grid(&c).await;
        (g["layout"] == "9" && g["cells"].as_array().map(Vec::len) == Some(9)).then_some(())
    })
    .await;
    body.send_keys("\u{E014}").await.unwrap(); // ArrowRight: the second cell
    body.send_keys("\u{E007}").await.unwrap(); // Enter: alone
    let alone = wait_for("one camera alone", T, || async {
        let g = grid(&c).await;
        (g["layout"] == "1").then_some(g)
    })
    .await;
    assert_eq!(alone["cells"].as_array().map(Vec::len), Some(1), "{alone}");
    assert_ne!(
        alone["cells"][0], CAM,
        "the focused (second) camera: {alone}"
    );
    body.send_keys("\u{E007}").await.unwrap();
    wait_for("back to nine", T, || async {
        (grid(&c).await["layout"] == "9").then_some(())
    })
    .await;
    body.send_keys("1").await.unwrap();
    wait_for("the marker back", T, || async {
        (camera::marker(&c, CAM).await != "offline").then_some(())
    })
    .await;
    c.close().await.unwrap();
    server.stop();
}
