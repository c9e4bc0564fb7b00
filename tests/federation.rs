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
    let (ioc_data, oc_data) = (dir.path().join("ioc"), dir.path().join("oc"));
    let ioc_config = config(dir.path(), "ioc-nghe-an", "");
    // The IOC's node account for the commune, by the README's command.
    let out = std::process::Command::new(bin("ioc"))
        .args(["node", "add", "oc-nam-dan", "--units", "17935", "--data"])
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
    let token_file = dir.path().join("upstream.token");
    std::fs::write(&token_file, &out.stdout).unwrap();
    // Accounts exist now, so people sign in to the IOC: its administrator.
    add_user(&ioc_data, "quan-tri", "admin", PASSWORD);
    let ioc = Server::start("federation-ioc", &ioc_data, &ioc_config, 0);
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
