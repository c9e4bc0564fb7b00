//! The operations screen in a real browser (headless Chromium over WebDriver) against a real
//! `ioc serve`: markers appear and change status, alerts arrive live, the operator
//! acknowledges with the keyboard and with the mouse, and all of it survives a server restart
//! that the page rides through by reconnecting on its own.

use fantoccini::{Client, Locator};
use ioc_e2e::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn levels(c: &Client) -> Option<serde_json::Map<String, Value>> {
    let v = js(c, "const m = document.getElementById('map'); return m && m.dataset.levels ? m.dataset.levels : null;").await;
    serde_json::from_str(v.as_str()?).ok()
}

async fn marker_count(c: &Client) -> u64 {
    js(
        c,
        "const m = document.getElementById('map'); return m ? Number(m.dataset.markers || 0) : 0;",
    )
    .await
    .as_u64()
    .unwrap_or(0)
}

/// Ids and states of the alerts in the queue, in order.
async fn queue(c: &Client) -> Vec<(i64, String)> {
    let v = js(
        c,
        "return [...document.querySelectorAll('#alert-list li.alert')].map(li => [Number(li.dataset.id), li.dataset.state]);",
    )
    .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x[0].as_i64()?, x[1].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the server's record of alert `id` shows the operator's acknowledgement.
async fn acknowledged_on_server(server: &Server, id: i64) -> Value {
    let url = server.url(&format!("/api/alerts/{id}"));
    wait_for(&format!("alert {id} acknowledged on the server"), T, || {
        let url = url.clone();
        async move {
            let a = get_json(&url).await;
            let acked = a["events"].as_array()?.iter().any(|e| {
                e["to"] == "acknowledged" && e["actor"] == "operator" && e["kind"] == "transition"
            });
            (acked && matches!(a["state"].as_str(), Some("acknowledged" | "resolved"))).then_some(a)
        }
    })
    .await
}

/// The row of alert `id` shows it acknowledged, or is gone because it was resolved.
async fn acknowledged_in_page(c: &Client, id: i64) {
    wait_for(
        &format!("alert {id} acknowledged in the page"),
        T,
        || async move {
            let q = queue(c).await;
            match q.iter().find(|(i, _)| *i == id) {
                None => Some(()),
                Some((_, s)) if s == "acknowledged" => Some(()),
                _ => None,
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_operations_screen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = fast_config(dir.path());
    let basemap = import_basemap(&data);
    let server = Server::start("browser-server", &data, &config, 0);
    let port = server.addr.port();
    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.goto(&server.url("/")).await.unwrap();

    // The page is Vietnamese by default.
    let title = wait_for("the top bar", Duration::from_secs(60), || async {
        c.find(Locator::Css(".topbar .title")).await.ok()
    })
    .await
    .text()
    .await
    .unwrap();
    let lang = js(&c, "return document.documentElement.lang").await;
    assert_eq!(lang, "vi");
    assert!(title.contains("Nghệ An"), "{title}");

    // Every entity is a marker.
    let entities = get_json(&server.url("/api/entities")).await;
    let n = entities.as_array().unwrap().len() as u64;
    assert!(n > 50, "{n} entities");
    wait_for("every entity drawn on the map", T, || async {
        (marker_count(&c).await == n).then_some(())
    })
    .await;

    // Markers change status: colours other than normal appear and the mix changes over time.
    let mut seen = BTreeSet::new();
    let mut mixes = BTreeSet::new();
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(l) = levels(&c).await {
            mixes.insert(serde_json::to_string(&l).unwrap());
            seen.extend(l.keys().cloned());
        }
        let alerting = seen.iter().any(|k| k != "normal" && k != "unknown");
        if alerting && mixes.len() >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "markers did not change status: levels seen {seen:?}, {} mixes",
            mixes.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("marker levels seen: {seen:?}");

    // Alerts arrive live.
    wait_for("two new alerts in the queue", T, || async {
        (queue(&c).await.iter().filter(|(_, s)| s == "new").count() >= 2).then_some(())
    })
    .await;
    if basemap {
        wait_for("the basemap drawn", T, || async {
            js(&c, "return !!(window.__iocMap && window.__iocMap.getLayer('units-fill') && window.__iocMap.isSourceLoaded('basemap'))")
                .await
                .as_bool()
                .filter(|b| *b)
                .map(|_| ())
        })
        .await;
    }
    screenshot(&c, "browser-operations").await;

    // Keyboard only: j moves to the first alert (a new one: they sort first), a acknowledges.
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("j").await.unwrap();
    let focused = wait_for("a focused alert", T, || async {
        js(&c, "const li = document.querySelector('#alert-list li.alert.focused'); return li ? Number(li.dataset.id) : null;")
            .await
            .as_i64()
    })
    .await;
    let state = js(
        &c,
        &format!(
            "return document.querySelector('#alert-list li[data-id=\"{focused}\"]').dataset.state"
        ),
    )
    .await;
    assert_eq!(state, "new", "the cursor starts on a new alert");
    body.send_keys("a").await.unwrap();
    acknowledged_in_page(&c, focused).await;
    let by_keyboard = acknowledged_on_server(&server, focused).await;
    eprintln!(
        "acknowledged by keyboard: alert {focused} now {}",
        by_keyboard["state"]
    );

    // Mouse: the button on another new alert.
    let other = wait_for("another new alert", T, || async {
        queue(&c)
            .await
            .into_iter()
            .find(|(i, s)| s == "new" && *i != focused)
            .map(|(i, _)| i)
    })
    .await;
    c.find(Locator::Css(&format!(
        "#alert-list li[data-id=\"{other}\"] button.ack"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    acknowledged_in_page(&c, other).await;
    acknowledged_on_server(&server, other).await;

    // Clicking an alert opens its entity with a chart.
    c.find(Locator::Css(&format!(
        "#alert-list li[data-id=\"{other}\"], #alert-list li.alert"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for("the detail panel with a chart", T, || async {
        js(&c, "const s = document.querySelector('#detail #chart svg'); return s ? s.querySelectorAll('polyline, path').length : 0;")
            .await
            .as_u64()
            .filter(|n| *n > 0)
    })
    .await;
    // Its values came on the feed for it alone: as many as the server holds.
    let id = js(
        &c,
        "return document.querySelector('#detail .detail-id').textContent",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string();
    let mut url = reqwest::Url::parse(&server.url("/api/entities")).unwrap();
    url.path_segments_mut().unwrap().push(&id);
    let held = get_json(url.as_str()).await["latest"]
        .as_object()
        .map_or(0, |m| m.len());
    assert!(held > 0, "entity {id:?} has values on the server");
    wait_for("the detail panel's values", T, || async {
        let shown = js(&c, "return [...document.querySelectorAll('#detail .metric-value')].filter((v) => v.textContent.trim() !== '').length").await;
        (shown.as_u64() == Some(held as u64)).then_some(())
    })
    .await;
    screenshot(&c, "browser-detail").await;

    // English on request, Vietnamese back.
    body.send_keys("l").await.unwrap();
    wait_for("English labels", T, || async {
        let t = c
            .find(Locator::Css(".queue-title"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.starts_with("Alerts").then_some(())
    })
    .await;
    body.send_keys("l").await.unwrap();

    // Restart the server on the same port and data: the page reconnects by itself and the
    // acknowledgements are still there.
    let open_before: BTreeSet<i64> = get_json(&server.url("/api/alerts?state=open"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    server.stop();
    wait_for("the page to notice the server is gone", T, || async {
        js(
            &c,
            "return document.getElementById('feed-status').classList.contains('stale')",
        )
        .await
        .as_bool()
        .filter(|b| *b)
    })
    .await;
    screenshot(&c, "browser-disconnected").await;
    let server = Server::start("browser-server", &data, &config, port);
    wait_for("the page to reconnect", T, || async {
        js(
            &c,
            "return !document.getElementById('feed-status').classList.contains('stale')",
        )
        .await
        .as_bool()
        .filter(|b| *b)
    })
    .await;
    for id in [focused, other] {
        let a = acknowledged_on_server(&server, id).await;
        if a["state"] == "acknowledged" {
            acknowledged_in_page(&c, id).await;
        }
    }
    let open_after: BTreeSet<i64> = get_json(&server.url("/api/alerts?state=open"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    let kept = open_before.intersection(&open_after).count();
    assert!(
        kept > 0,
        "open alerts survive the restart: {open_before:?} → {open_after:?}"
    );
    assert_eq!(marker_count(&c).await, n, "same entities after the restart");
    screenshot(&c, "browser-after-restart").await;
    c.close().await.unwrap();
    server.stop();
}
