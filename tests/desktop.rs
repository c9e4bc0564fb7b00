//! The real desktop window (Tauri + WebKitGTK) driven by tauri-driver under Xvfb: the app
//! starts its own engine and server, and the map and alert queue render with live data.

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
    let driver = WebDriver::tauri_driver().await;
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
    // Let the map settle, then keep a picture of the window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    screenshot(&c, "desktop-window").await;
    let _ = std::process::Command::new("import")
        .args(["-window", "root"])
        .arg(artifacts().join("desktop-screen.png"))
        .status();
    c.close().await.unwrap();
}
