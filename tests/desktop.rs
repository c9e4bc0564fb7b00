//! The real desktop window (Tauri + WebKitGTK) driven by tauri-driver under Xvfb: the app
//! starts its own engine and server, the map and alert queue render with live data, and new
//! alerts pop up as native desktop notifications (received by a notification server on a
//! private session bus); the console opens the video wall in windows of its own, and
//! `--wall` starts the app as a wall only; a camera plays in the window.

#[path = "../crates/engine/tests/common/missing.rs"]
mod missing;

use fantoccini::Locator;
use ioc_e2e::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn e2e_desktop_window() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = fast_config(dir.path());
    import_basemap(&data);
    let bus = NotificationBus::start();
    let driver = WebDriver::tauri_driver_with(&[("DBUS_SESSION_BUS_ADDRESS", &bus.address)]).await;
    let app = bin("ioc-desktop");
    let c = driver
        .session(serde_json::json!({
            "browserName": "wry",
            "tauri:options": {
                "application": app,
                "args": ["--data", data, "--config", config],
            }
        }))
        .await;

    let title = wait_for("the console page", T, || async {
        let t = c.title().await.ok()?;
        t.contains("IOC").then_some(t)
    })
    .await;
    eprintln!("window page: {title}");
    wait_for("markers on the map", T, || async {
        js(&c, "const m = document.getElementById('map'); return m ? Number(m.dataset.markers || 0) : 0;")
            .await
            .as_u64()
            .filter(|n| *n > 50)
    })
    .await;
    wait_for("alerts in the queue", T, || async {
        let n = c
            .find_all(Locator::Css("#alert-list li.alert"))
            .await
            .ok()?
            .len();
        (n > 0).then_some(())
    })
    .await;
    wait_for("live data", T, || async {
        js(
            &c,
            "return !document.getElementById('feed-status').classList.contains('stale')",
        )
        .await
        .as_bool()
        .filter(|b| *b)
    })
    .await;
    // New major and critical alerts reach the desktop as native notifications.
    let n = wait_for("a desktop notification", T, || async {
        bus.notifications()
            .into_iter()
            .find(|n| n["app"] == "IOC Console")
    })
    .await;
    eprintln!("desktop notification: {n}");
    let summary = n["summary"].as_str().unwrap_or_default();
    assert!(
        ["NGHIÊM TRỌNG:", "Cao:"]
            .iter()
            .any(|s| summary.starts_with(s)),
        "{n}"
    );
    assert!(
        n["body"].as_str().unwrap_or_default().starts_with('#'),
        "{n}"
    );
    let critical = summary.starts_with("NGHIÊM TRỌNG");
    assert_eq!(
        n["urgency"].as_i64(),
        Some(if critical { 2 } else { 1 }),
        "{n}"
    );
    // Let the map settle, then keep a picture of the window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    screenshot(&c, "desktop-window").await;
    let _ = std::process::Command::new("import")
        .args(["-window", "root"])
        .arg(artifacts().join("desktop-screen.png"))
        .status();

    // The dashboards' "open the wall" button: a full-screen wall window per monitor (one
    // under Xvfb) beside the console, signed in like it.
    let console = c.window().await.unwrap();
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("9")
        .await
        .unwrap();
    wait_for("the wall button", T, || async {
        c.find(Locator::Id("wall-open"))
            .await
            .ok()?
            .click()
            .await
            .ok()
    })
    .await;
    let wall = wait_for("a wall window", T, || async {
        let ws = c.windows().await.ok()?;
        (ws.len() == 2).then(|| ws.into_iter().find(|w| *w != console))?
    })
    .await;
    c.switch_to_window(wall).await.unwrap();
    check_wall(&c, "desktop-wall-from-console").await;
    c.close().await.unwrap();
}

/// The window shows the wall's first screen, full screen, with live KPI tiles.
async fn check_wall(c: &fantoccini::Client, shot: &str) {
    wait_for("the wall with KPI values", T, || async {
        js(
            c,
            "const w = document.getElementById('wall'); \
             return w && w.dataset.screen === '1' && location.pathname === '/wall' \
               && document.querySelectorAll('#wall .kpi-tile[data-value]:not([data-value=\"\"])').length > 0;",
        )
        .await
        .as_bool()
        .filter(|b| *b)
    })
    .await;
    let size = js(
        c,
        "return [innerWidth, innerHeight, screen.width, screen.height]",
    )
    .await;
    eprintln!("wall window {size}");
    assert_eq!(
        size[0], size[2],
        "the wall fills the screen's width: {size}"
    );
    assert_eq!(
        size[1], size[3],
        "the wall fills the screen's height: {size}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    screenshot(c, shot).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_desktop_wall_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = fast_config(dir.path());
    import_basemap(&data);
    let driver = WebDriver::tauri_driver().await;
    let c = driver
        .session(serde_json::json!({
            "browserName": "wry",
            "tauri:options": {
                "application": bin("ioc-desktop"),
                "args": ["--wall", "--data", data, "--config", config],
            }
        }))
        .await;
    check_wall(&c, "desktop-wall").await;
    // A wall PC shows the wall and nothing else: no console window.
    assert_eq!(c.windows().await.unwrap().len(), 1);
    c.close().await.unwrap();
}

/// The desktop app as a control-room workstation of a provincial IOC (`--upstream`): the
/// operator signs in with the IOC's account in the window, which then shows the IOC's
/// picture and the link; the choice is remembered for the next start.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_desktop_workstation() {
    const PASSWORD: &str = "mật khẩu đủ dài";
    let dir = tempfile::tempdir().unwrap();
    let ioc_data = dir.path().join("ioc");
    let config = fast_config(dir.path());
    add_user(&ioc_data, "lan", "operator", PASSWORD);
    let ioc = Server::start("desktop-workstation-ioc", &ioc_data, &config, 0);
    let desk = dir.path().join("desk");
    let driver = WebDriver::tauri_driver().await;
    let c = driver
        .session(serde_json::json!({
            "browserName": "wry",
            "tauri:options": {
                "application": bin("ioc-desktop"),
                "args": ["--upstream", ioc.url(""), "--data", desk],
            }
        }))
        .await;
    let u = wait_for("the sign-in form", T, || async {
        c.find(Locator::Id("login-username")).await.ok()
    })
    .await;
    // The line naming the IOC comes with the sign-in options (`/api/auth/providers`), a
    // moment after the form.
    let at = wait_page(
        &c,
        "desktop-workstation",
        "the form to say which IOC",
        T,
        || async {
            let s = js(
            &c,
            "const e = document.getElementById('login-upstream'); return e ? e.textContent : '';",
        )
        .await;
            s.as_str().filter(|s| !s.is_empty()).map(str::to_string)
        },
    )
    .await;
    assert!(at.contains(&ioc.url("")), "the form says which IOC: {at}");
    screenshot(&c, "desktop-workstation-sign-in").await;
    u.send_keys("lan").await.unwrap();
    let p = c.find(Locator::Id("login-password")).await.unwrap();
    p.send_keys(PASSWORD).await.unwrap();
    p.send_keys(&fantoccini::key::Key::Enter.to_string())
        .await
        .unwrap();
    // Signed in (the page reloads without the form), or the form says why not.
    let signed_in = wait_page(
        &c,
        "desktop-workstation",
        "the sign-in to end",
        T,
        || async {
            let v = c
                .execute(
                    "const e = document.querySelector('.login .form-error');
                 if (e) return 'refused: ' + e.textContent;
                 return document.querySelector('.login') ? '' : 'in';",
                    vec![],
                )
                .await
                .ok()?;
            match v.as_str()? {
                "" => None,
                s => Some(s.to_string()),
            }
        },
    )
    .await;
    assert_eq!(signed_in, "in", "the window's sign-in");
    wait_page(
        &c,
        "desktop-workstation",
        "the IOC's alerts in the window",
        T,
        || async {
            let n = c
                .find_all(Locator::Css("#alert-list li.alert"))
                .await
                .ok()?
                .len();
            (n > 0).then_some(())
        },
    )
    .await;
    wait_page(
        &c,
        "desktop-workstation",
        "the link banner says connected",
        T,
        || async {
            let s = js(
            &c,
            "const b = document.getElementById('link-banner'); return b ? b.dataset.state : '';",
        )
        .await;
            (s == "connected").then_some(())
        },
    )
    .await;
    wait_page(&c, "desktop-workstation", "the IOC's devices on the window's map", T, || async {
        js(&c, "const m = document.getElementById('map'); return m ? Number(m.dataset.markers || 0) : 0;")
            .await
            .as_u64()
            .filter(|n| *n > 50)
    })
    .await;
    screenshot(&c, "desktop-workstation").await;
    let remembered = std::fs::read_to_string(desk.join("desktop.json")).unwrap();
    assert!(remembered.contains(&ioc.url("")), "{remembered}");
    c.close().await.unwrap();
    ioc.stop();
}

/// A camera plays in the desktop window too: WebKitGTK's Media Source Extensions decode it
/// through GStreamer.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_desktop_camera_plays() {
    use ioc_engine::video::test_server::{self, Options, TestServer};
    if let Err(e) = test_server::available() {
        return missing::missing(&e);
    }
    let rtsp = TestServer::start(&Options::default()).expect("RTSP test server");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = fast_config(dir.path());
    // The camera arrives through a drop folder, as another system's export would.
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let (cam, lon, lat) = ("cam-desktop-cua-lo", 105.7238, 18.8162);
    let fc = camera::camera_geojson(cam, "Camera bãi biển Cửa Lò", lon, lat, &rtsp.url("cam0"));
    std::fs::write(drop.join("cameras.geojson"), fc.to_string()).unwrap();
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[video]\nstall = \"2s\"\nclip_before = \"2s\"\nclip_after = \"2s\"\n\n[[source]]\nname = \"camera-list\"\nkind = \"file\"\npath = {:?}\ninterval = \"1s\"\nsettle = \"0s\"\n",
        drop.display().to_string()
    ));
    std::fs::write(&config, toml).unwrap();
    let driver = WebDriver::tauri_driver().await;
    let c = driver
        .session(serde_json::json!({
            "browserName": "wry",
            "tauri:options": {
                "application": bin("ioc-desktop"),
                "args": ["--data", data, "--config", config],
            }
        }))
        .await;
    let supported = wait_for("the console page", T, || async {
        js(&c, "return window.MediaSource ? MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42C01E\"') : null").await.as_bool()
    })
    .await;
    assert!(supported, "WebKitGTK cannot play H.264 through Media Source Extensions (GStreamer's gstreamer1.0-libav missing?)");
    camera::open_panel(&c, cam, lon, lat).await;
    let live = camera::advances(&c, cam, "the picture playing in the window").await;
    eprintln!("playing in the desktop window: {live}");
    screenshot(&c, "desktop-camera-live").await;

    // The cameras screen, then `v` on the camera: an evidence clip is saved, and the window
    // downloads it (with its session) as an MP4.
    let body = c.find(fantoccini::Locator::Css("body")).await.unwrap();
    body.send_keys("\u{E00C}").await.unwrap();
    body.send_keys("-").await.unwrap();
    wait_for("the camera first in the grid", T, || async {
        js(&c, &format!("const d = document.querySelector('#camera-grid .grid-cell[data-focused=\"true\"]'); return d && d.dataset.camera === '{cam}' ? true : null;"))
            .await
            .as_bool()
    })
    .await;
    body.send_keys("v").await.unwrap();
    let clip = wait_for("the clip saved", T, || async {
        let v = js(
            &c,
            &format!("return fetch('/api/clips?camera={cam}').then(r => r.json())"),
        )
        .await;
        v.as_array()
            .and_then(|a| a.iter().find(|c| c["state"] == "saved").cloned())
    })
    .await;
    let got = js(
        &c,
        &format!(
            "return fetch('/api/clips/{}/file').then(async r => {{ const b = new Uint8Array(await r.arrayBuffer());
               return {{status: r.status, type: r.headers.get('content-type'), size: b.length, box: String.fromCharCode(b[4], b[5], b[6], b[7])}}; }});",
            clip["id"]
        ),
    )
    .await;
    eprintln!("clip in the desktop window: {clip} {got}");
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["type"], "video/mp4", "{got}");
    assert_eq!(got["box"], "ftyp", "{got}");
    assert_eq!(got["size"].as_u64(), clip["size"].as_u64(), "{got}");
    screenshot(&c, "desktop-camera-grid").await;
    c.close().await.unwrap();
}
