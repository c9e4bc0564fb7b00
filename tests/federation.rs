//! A commune OC linked to the provincial IOC, both real `ioc serve` processes, the link
//! through a proxy the test cuts, the OC's console open in headless Chromium: the banner says
//! the link is up, turns to "mất kết nối với IOC tỉnh từ …" within 5 s of the cut, and back
//! when the cable is in again.

use fantoccini::Locator;
use ioc_e2e::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
const PASSWORD: &str = "mật khẩu đủ dài";

/// A config without the demo (a disabled drop folder stands for "no sources").
fn config(dir: &std::path::Path, name: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[node]
name = "{name}"

[hub]
frame_interval = "100ms"
heartbeat = "1s"

[[source]]
name = "none"
kind = "file"
path = "{}"
enabled = false
{extra}
"#,
            dir.join("drop").display()
        ),
    )
    .unwrap();
    path
}

/// The IOC (`ioc serve` on `dir/ioc`, its log `NAME.log`) with a node account for `node`
/// of `units` (none: the whole province), made by the README's command, and its
/// administrator `quan-tri` (accounts exist, so people sign in); the file with the node's
/// token.
fn ioc_with_node(
    dir: &std::path::Path,
    name: &str,
    node: &str,
    units: &str,
) -> (Server, std::path::PathBuf) {
    let ioc_data = dir.join("ioc");
    let ioc_config = config(dir, "ioc-nghe-an", "");
    let out = std::process::Command::new(bin("ioc"))
        .args(["node", "add", node, "--units", units, "--data"])
        .arg(&ioc_data)
        .arg("--config")
        .arg(&ioc_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_file = dir.join("upstream.token");
    std::fs::write(&token_file, &out.stdout).unwrap();
    add_user(&ioc_data, "quan-tri", "admin", PASSWORD);
    (Server::start(name, &ioc_data, &ioc_config, 0), token_file)
}

async fn banner(c: &fantoccini::Client) -> (String, String) {
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

#[tokio::test(flavor = "multi_thread")]
async fn e2e_federation_link_banner() {
    let dir = tempfile::tempdir().unwrap();
    let oc_data = dir.path().join("oc");
    let (ioc, token_file) = ioc_with_node(dir.path(), "federation-ioc", "oc-nam-dan", "17935");
    let proxy = Proxy::to(ioc.addr).await;
    let oc_config = config(
        dir.path(),
        "oc-nam-dan",
        &format!(
            "\n[upstream]\nurl = \"http://{}\"\ntoken_file = \"{}\"\n",
            proxy.addr,
            token_file.display()
        ),
    );
    let oc = Server::start("federation-oc", &oc_data, &oc_config, 0);

    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.goto(&oc.url("/")).await.unwrap();
    wait_for("the console", T, || async {
        c.find(Locator::Css(".topbar .title")).await.ok()
    })
    .await;
    let (_, text) = wait_for("the banner says connected", T, || async {
        let b = banner(&c).await;
        (b.0 == "connected").then_some(b)
    })
    .await;
    assert!(text.contains("Đã kết nối với IOC tỉnh"), "{text}");
    let health = get_json(&oc.url("/api/health")).await;
    assert_eq!(health["upstream"]["state"], "connected", "{health}");

    // At the IOC, its administrator sees the commune's console linked, on the sources screen.
    c.goto(&ioc.url("/")).await.unwrap();
    let u = wait_for("the IOC's sign-in form", T, || async {
        c.find(Locator::Id("login-username")).await.ok()
    })
    .await;
    u.send_keys("quan-tri").await.unwrap();
    let p = c.find(Locator::Id("login-password")).await.unwrap();
    p.send_keys(PASSWORD).await.unwrap();
    p.send_keys(&fantoccini::key::Key::Enter.to_string())
        .await
        .unwrap();
    wait_for("the IOC's console", T, || async {
        c.find(Locator::Id("user-chip")).await.ok()
    })
    .await;
    js(
        &c,
        "[...document.querySelectorAll('.view-tab')].find(b => b.textContent.includes('Nguồn')).click(); return 1;",
    )
    .await;
    wait_for("the OC in the IOC's list of linked consoles", T, || async {
        let v = js(
            &c,
            "const r = document.querySelector('#nodes-table tr.node[data-node=\"oc-nam-dan\"]'); return r ? r.dataset.state : '';",
        )
        .await;
        (v == "connected").then_some(())
    })
    .await;
    screenshot(&c, "federation-ioc-nodes").await;
    c.goto(&oc.url("/")).await.unwrap();
    wait_for("the OC's banner again", T, || async {
        (banner(&c).await.0 == "connected").then_some(())
    })
    .await;

    // The cable is cut.
    proxy.cut();
    let cut = Instant::now();
    let (_, text) = wait_for(
        "the banner says offline",
        Duration::from_secs(5),
        || async {
            let b = banner(&c).await;
            (b.0 == "offline").then_some(b)
        },
    )
    .await;
    let took = cut.elapsed();
    eprintln!("offline shown in the page {took:?} after the cut");
    assert!(took <= Duration::from_secs(5));
    assert!(
        text.contains("Mất kết nối với IOC tỉnh từ") && text.contains("thao tác chờ gửi"),
        "{text}"
    );
    screenshot(&c, "federation-link-offline").await;
    let health = get_json(&oc.url("/api/health")).await;
    assert_eq!(health["upstream"]["state"], "offline", "{health}");

    // Back.
    proxy.restore();
    wait_for("the banner says connected again", T, || async {
        (banner(&c).await.0 == "connected").then_some(())
    })
    .await;
    screenshot(&c, "federation-link-connected").await;
    c.close().await.unwrap();
    oc.stop();
    ioc.stop();
}

/// JSON from an IOC Console's API, as `token`'s holder (an empty token: none).
async fn call(
    base: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let c = reqwest::Client::new();
    let mut r = match method {
        "POST" => c.post(base.url(path)),
        _ => c.get(base.url(path)),
    };
    if !token.is_empty() {
        r = r.bearer_auth(token);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// A commune OC (the demo's stations, its node account the whole province) opens an incident
/// that goes up; cut off, the province resolves and closes it while the commune comments on
/// it. Back together, the commune's console keeps the closed incident in its list, marked
/// "Cần xem xét", with the comment that could not be applied; its supervisor marks it
/// reviewed by keyboard (`v`, a note, Enter) and the flag goes at the province too.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_federation_incident_flagged_and_reviewed() {
    use fantoccini::key::Key;
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let oc_data = dir.path().join("oc");
    let (ioc, token_file) = ioc_with_node(dir.path(), "incident-flag-ioc", "oc-demo", "");
    let proxy = Proxy::to(ioc.addr).await;
    // The OC: the fast demo, linked.
    let oc_config = dir.path().join("oc.toml");
    std::fs::write(
        &oc_config,
        format!(
            "[node]\nname = \"oc-demo\"\n\n[upstream]\nurl = \"http://{}\"\ntoken_file = \"{}\"\n{}",
            proxy.addr,
            token_file.display(),
            std::fs::read_to_string(fast_config(dir.path())).unwrap()
        ),
    )
    .unwrap();
    let oc = Server::start("incident-flag-oc", &oc_data, &oc_config, 0);
    let (s, login) = call(
        &ioc,
        "",
        "POST",
        "/api/login",
        Some(json!({"username": "quan-tri", "password": PASSWORD, "token": true})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let admin = login["token"].as_str().unwrap().to_string();

    // An alert of the commune's with an SOP; an incident on it, up at the province.
    let alert = wait_for("an open alert at the OC", T, || async {
        let (_, v) = call(&oc, "", "GET", "/api/alerts?state=new", None).await;
        v.as_array().and_then(|a| {
            a.iter()
                .find(|a| {
                    ["flood", "air_quality", "camera"]
                        .contains(&a["category"].as_str().unwrap_or_default())
                })
                .and_then(|a| a["id"].as_i64())
        })
    })
    .await;
    let (s, incident) = call(
        &oc,
        "",
        "POST",
        "/api/incidents",
        Some(json!({"alerts": [alert], "title": "Sự cố diễn tập liên thông"})),
    )
    .await;
    assert_eq!(s, 201, "{incident}");
    let oc_id = incident["id"].as_i64().unwrap();
    let ioc_id = wait_for("the incident at the IOC", T, || async {
        let (_, v) = call(&ioc, &admin, "GET", "/api/incidents", None).await;
        v.as_array().and_then(|a| {
            a.iter()
                .find(|i| i["title"] == "Sự cố diễn tập liên thông")
                .and_then(|i| i["id"].as_i64())
        })
    })
    .await;

    // Apart: the province finishes it, the commune goes on.
    proxy.cut();
    wait_for("the OC offline", Duration::from_secs(10), || async {
        let h = get_json(&oc.url("/api/health")).await;
        (h["upstream"]["state"] == "offline").then_some(())
    })
    .await;
    for (action, comment) in [
        ("resolve", Some("Đã xác minh bằng camera")),
        ("close", None),
    ] {
        let (s, v) = call(
            &ioc,
            &admin,
            "POST",
            &format!("/api/incidents/{ioc_id}/{action}"),
            Some(json!({ "comment": comment })),
        )
        .await;
        assert_eq!(s, 200, "{action}: {v}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (s, v) = call(
        &oc,
        "",
        "POST",
        &format!("/api/incidents/{oc_id}/comment"),
        Some(json!({"comment": "Xã đã cử người tới hiện trường"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    proxy.restore();
    let flag = wait_for("the incident flagged at the OC", T, || async {
        let (_, i) = call(&oc, "", "GET", &format!("/api/incidents/{oc_id}"), None).await;
        (i["state"] == "closed")
            .then(|| i["attention"].as_str().map(str::to_string))
            .flatten()
    })
    .await;
    assert!(flag.contains("oc-demo"), "{flag}");

    // The commune's console: the closed incident is still in the list, marked.
    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.goto(&oc.url("/")).await.unwrap();
    wait_for("the console", T, || async {
        c.find(Locator::Css(".topbar .title")).await.ok()
    })
    .await;
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("5")
        .await
        .unwrap();
    let row = wait_for("the flagged incident in the list", T, || async {
        c.find(Locator::Css(&format!(
            "li.incident-row[data-id=\"{oc_id}\"] .attention-badge"
        )))
        .await
        .ok()
    })
    .await;
    assert!(row.text().await.unwrap().contains("Cần xem xét"));
    c.find(Locator::Css(&format!(
        "li.incident-row[data-id=\"{oc_id}\"]"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let why = wait_for("what needs a person, on the incident", T, || async {
        c.find(Locator::Id("incident-attention")).await.ok()
    })
    .await;
    let text = why.text().await.unwrap();
    assert!(
        text.contains("Cần người xem xét") && text.contains("@ oc-demo"),
        "{text}"
    );
    wait_for(
        "the late comment on the timeline, not applied",
        T,
        || async {
            let t = js(
                &c,
                "return document.getElementById('incident-timeline').textContent",
            )
            .await;
            t.as_str()
                .is_some_and(|t| t.contains("Không áp dụng") && t.contains("@oc-demo"))
                .then_some(())
        },
    )
    .await;
    screenshot(&c, "federation-incident-attention").await;
    // Reviewed, by keyboard.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("v")
        .await
        .unwrap();
    let input = wait_for("the review prompt", T, || async {
        c.find(Locator::Id("inc-ask-input")).await.ok()
    })
    .await;
    input
        .send_keys("Đã gọi xã, ghi vào biên bản")
        .await
        .unwrap();
    input.send_keys(&Key::Enter.to_string()).await.unwrap();
    wait_for("the flag gone from the OC's console", T, || async {
        c.find(Locator::Id("incident-attention"))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    wait_for("the flag gone at the IOC too", T, || async {
        let (_, i) = call(
            &ioc,
            &admin,
            "GET",
            &format!("/api/incidents/{ioc_id}"),
            None,
        )
        .await;
        let last = i["events"].as_array()?.last()?.clone();
        (i["attention"].is_null() && last["kind"] == "reviewed").then_some(())
    })
    .await;
    screenshot(&c, "federation-incident-reviewed").await;

    // A template the province's people make on the IOC comes down, read-only at the OC.
    let (s, v) = call(
        &ioc,
        &admin,
        "POST",
        "/api/sops",
        Some(json!({"text": "name = \"ngap-do-thi\"\ntitle = \"Ngập úng đô thị\"\ncategories = []\n\n[[step]]\nid = \"verify\"\ntitle = \"Xác minh điểm ngập bằng camera\"\n"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    wait_for("the province's template at the OC", T, || async {
        let (_, v) = call(&oc, "", "GET", "/api/sops", None).await;
        v.as_array()?
            .iter()
            .any(|s| s["name"] == "ngap-do-thi" && s["province"] == true)
            .then_some(())
    })
    .await;
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("7")
        .await
        .unwrap();
    let row = wait_for("the template in the OC's list", T, || async {
        c.find(Locator::Css("tr[data-sop=\"ngap-do-thi\"]"))
            .await
            .ok()
    })
    .await;
    assert!(row.text().await.unwrap().contains("Của tỉnh"));
    row.click().await.unwrap();
    wait_for("read-only, changed at the IOC", T, || async {
        c.find(Locator::Id("sop-province")).await.ok()
    })
    .await;
    assert!(
        c.find(Locator::Id("sop-save")).await.is_err(),
        "no saving the province's template here"
    );
    screenshot(&c, "federation-province-sop").await;
    c.close().await.unwrap();
    oc.stop();
    ioc.stop();
}
