//! Two control-room workstations (`ioc workstation --upstream`) on one provincial IOC
//! (`ioc serve`), each in its own headless Chromium, workstation 1's link through a proxy
//! the test cuts: an ack on one shows on the other's queue within a second; the cut shows
//! on workstation 1's banner within 5 s and an ack made then is kept ("chờ gửi"); the link
//! back, it lands on the IOC and on workstation 2.

use fantoccini::{Client, Locator};
use ioc_e2e::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
const PASSWORD: &str = "mật khẩu đủ dài";

async fn sign_in(c: &Client, url: &str, user: &str) {
    c.goto(url).await.unwrap();
    let u = wait_for("the sign-in form", T, || async {
        c.find(Locator::Id("login-username")).await.ok()
    })
    .await;
    let at = js(
        c,
        "const e = document.getElementById('login-upstream'); return e ? e.textContent : '';",
    )
    .await;
    assert!(
        at.as_str().unwrap_or("").contains("IOC tỉnh"),
        "the form says where one signs in: {at}"
    );
    u.send_keys(user).await.unwrap();
    let p = c.find(Locator::Id("login-password")).await.unwrap();
    p.send_keys(PASSWORD).await.unwrap();
    p.send_keys(&fantoccini::key::Key::Enter.to_string())
        .await
        .unwrap();
    wait_for("the console", T, || async {
        c.find(Locator::Id("user-chip")).await.ok()
    })
    .await;
}

/// The state of alert `id` in the page's queue (`""` when not there).
async fn row_state(c: &Client, id: i64) -> String {
    js(
        c,
        &format!("const r = document.querySelector('#alert-list li.alert[data-id=\"{id}\"]'); return r ? r.dataset.state : '';"),
    )
    .await
    .as_str()
    .unwrap_or("")
    .to_string()
}

/// A new alert in the page's queue, not one of `not`.
async fn a_new_alert(c: &Client, not: &[i64]) -> i64 {
    wait_for("a new alert in the queue", T, || async {
        let ids = js(
            c,
            "return [...document.querySelectorAll('#alert-list li.alert[data-state=\"new\"]')].map(r => Number(r.dataset.id));",
        )
        .await;
        ids.as_array()?
            .iter()
            .filter_map(|v| v.as_i64())
            .find(|id| !not.contains(id))
    })
    .await
}

/// Selects alert `id` in the queue and acknowledges it from the keyboard.
async fn ack_by_key(c: &Client, id: i64) {
    js(
        c,
        &format!(
            "document.querySelector('#alert-list li.alert[data-id=\"{id}\"]').click(); return 1;"
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("a").await.unwrap();
}

async fn banner(c: &Client) -> (String, String) {
    let v = js(
        c,
        "const b = document.getElementById('link-banner'); return b ? [b.dataset.state, b.textContent] : ['', ''];",
    )
    .await;
    (
        v[0].as_str().unwrap_or("").to_string(),
        v[1].as_str().unwrap_or("").to_string(),
    )
}

/// The alert as the IOC has it.
async fn at_ioc(ioc: &Server, token: &str, id: i64) -> serde_json::Value {
    reqwest::Client::new()
        .get(ioc.url(&format!("/api/alerts/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_two_workstations_on_one_ioc() {
    let dir = tempfile::tempdir().unwrap();
    let ioc_data = dir.path().join("ioc");
    let config = fast_config(dir.path());
    let basemap = import_basemap(&ioc_data);
    add_user(&ioc_data, "lan", "operator", PASSWORD);
    add_user(&ioc_data, "binh", "operator", PASSWORD);
    add_user(&ioc_data, "quan-tri", "admin", PASSWORD);
    let ioc = Server::start("workstation-ioc", &ioc_data, &config, 0);
    let admin: serde_json::Value = reqwest::Client::new()
        .post(ioc.url("/api/login"))
        .json(&serde_json::json!({"username": "quan-tri", "password": PASSWORD, "token": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["token"].as_str().unwrap().to_string();
    let link_1 = Proxy::to(ioc.addr).await;
    let ws1 = Workstation::start(
        "workstation-1",
        &dir.path().join("ws1"),
        &format!("http://{}", link_1.addr),
    );
    let ws2 = Workstation::start("workstation-2", &dir.path().join("ws2"), &ioc.url(""));

    let driver = WebDriver::chromedriver().await;
    let c1 = driver.chrome_session().await;
    let c2 = driver.chrome_session().await;
    sign_in(&c1, &ws1.url("/"), "lan").await;
    sign_in(&c2, &ws2.url("/"), "binh").await;
    wait_for("workstation 1 says connected", T, || async {
        (banner(&c1).await.0 == "connected").then_some(())
    })
    .await;
    wait_for("the IOC's devices on workstation 1's map", T, || async {
        js(&c1, "const m = document.getElementById('map'); return m ? Number(m.dataset.markers || 0) : 0;")
            .await
            .as_u64()
            .filter(|n| *n > 50)
    })
    .await;
    screenshot(&c1, "workstation-1-connected").await;
    if basemap {
        // The IOC's basemap tiles (stored gzip-compressed) reach the workstation's map as
        // tiles, not as compressed bytes the browser cannot read.
        let got = js(
            &c1,
            "return (async () => { const out = []; \
             for (const [z, x, y] of [[5, 25, 14], [6, 50, 28], [7, 101, 57], [8, 203, 114]]) { \
               const r = await fetch(`/api/basemap/tiles/${z}/${x}/${y}`); \
               const b = new Uint8Array(await r.arrayBuffer()); \
               out.push([r.status, b.length, b[0] ?? 0, b[1] ?? 0]); \
             } \
             return out; })();",
        )
        .await;
        let tiles: Vec<Vec<u64>> = serde_json::from_value(got.clone()).unwrap();
        let good: Vec<&Vec<u64>> = tiles.iter().filter(|t| t[0] == 200 && t[1] > 0).collect();
        assert!(!good.is_empty(), "tiles through the workstation: {got}");
        assert!(
            good.iter().all(|t| !(t[2] == 0x1f && t[3] == 0x8b)),
            "decoded by the browser, not gzip bytes: {got}"
        );
    }

    // lan acknowledges on workstation 1; binh's queue on workstation 2 shows it.
    let first = a_new_alert(&c1, &[]).await;
    wait_for("the alert on workstation 2 too", T, || async {
        (row_state(&c2, first).await == "new").then_some(())
    })
    .await;
    ack_by_key(&c1, first).await;
    let acked = Instant::now();
    wait_for(
        "workstation 2 sees the ack",
        Duration::from_secs(5),
        || async {
            let s = row_state(&c2, first).await;
            (s == "acknowledged" || s.is_empty()).then_some(())
        },
    )
    .await;
    let took = acked.elapsed();
    eprintln!("an ack on workstation 1 reached workstation 2's queue in {took:?}");
    screenshot(&c2, "workstation-2-sees-ack").await;

    // The cable of workstation 1 is cut.
    link_1.cut();
    let cut = Instant::now();
    let (_, text) = wait_for(
        "workstation 1 says offline",
        Duration::from_secs(5),
        || async {
            let b = banner(&c1).await;
            (b.0 == "offline").then_some(b)
        },
    )
    .await;
    eprintln!("the cut showed on workstation 1 in {:?}", cut.elapsed());
    assert!(text.contains("Mất kết nối với IOC tỉnh từ"), "{text}");
    let second = a_new_alert(&c1, &[first]).await;
    ack_by_key(&c1, second).await;
    let toast = wait_for("the toast says it is kept", T, || async {
        let t = js(
            &c1,
            "const t = document.querySelector('.toast'); return t ? t.textContent : '';",
        )
        .await;
        let t = t.as_str().unwrap_or("").to_string();
        t.contains("sẽ tự gửi").then_some(t)
    })
    .await;
    assert!(toast.contains("1 thao tác chờ gửi"), "{toast}");
    let (_, text) = wait_for("the banner counts it", T, || async {
        let b = banner(&c1).await;
        b.1.contains("— 1 thao tác chờ gửi").then_some(b)
    })
    .await;
    screenshot(&c1, "workstation-1-offline-queued").await;
    assert!(text.contains("Mất kết nối"), "{text}");
    let a = at_ioc(&ioc, &admin, second).await;
    assert_eq!(
        a["state"], "new",
        "nothing reached the IOC through the cut: {a}"
    );

    // Back: the ack lands on the IOC, as lan, and on workstation 2.
    link_1.restore();
    wait_for("workstation 2 sees the queued ack", T, || async {
        let s = row_state(&c2, second).await;
        (s == "acknowledged" || s.is_empty()).then_some(())
    })
    .await;
    let a = at_ioc(&ioc, &admin, second).await;
    let acks: Vec<_> = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"] == "acknowledged")
        .collect();
    assert_eq!(acks.len(), 1, "once: {a}");
    assert_eq!(acks[0]["actor"], "lan");
    wait_for("workstation 1 connected again", T, || async {
        (banner(&c1).await.0 == "connected").then_some(())
    })
    .await;
    screenshot(&c1, "workstation-1-back").await;
    c1.close().await.unwrap();
    c2.close().await.unwrap();
    ws1.stop();
    ws2.stop();
    ioc.stop();
}
