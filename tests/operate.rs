//! An operator's shift in a real browser: sign in, then work an alert through its whole
//! lifecycle with the keyboard only — open it, assign it, start work, comment, resolve, close
//! — and find every step on the server with the operator's name.

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use ioc_e2e::*;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const PASSWORD: &str = "ca trực đêm 2026";

/// GETs with the browser's session cookie (`name=value`).
async fn api(server: &Server, cookie: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn panel_state(c: &Client) -> Option<String> {
    js(
        c,
        "const s = document.getElementById('alert-state'); return s ? s.dataset.state : null;",
    )
    .await
    .as_str()
    .map(str::to_string)
}

async fn wait_state(c: &Client, want: &str) {
    wait_for(&format!("the alert panel to show {want}"), T, || async {
        (panel_state(c).await.as_deref() == Some(want)).then_some(())
    })
    .await;
}

/// Types into whatever has the focus (the panel's one-line prompt), then Enter.
async fn answer(c: &Client, text: &str) {
    wait_for("the prompt to take the focus", T, || async {
        js(
            c,
            "return document.activeElement && document.activeElement.id === 'ask-input'",
        )
        .await
        .as_bool()
        .filter(|b| *b)
    })
    .await;
    // A live update can re-render the prompt under us: find it again and retype if so.
    for attempt in 0..3 {
        let input = c.find(Locator::Id("ask-input")).await.unwrap();
        let typed = async {
            input.clear().await?;
            input.send_keys(text).await?;
            input.send_keys(&Key::Enter.to_string()).await
        };
        match typed.await {
            Ok(()) => return,
            Err(e) if attempt < 2 => eprintln!("retyping the answer: {e}"),
            Err(e) => panic!("typing the answer: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_sign_in_and_work_an_alert_by_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(&data, "lan", "operator", PASSWORD);
    let config = fast_config(dir.path());
    let server = Server::start("operate-server", &data, &config, 0);
    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;

    // Without a session the API refuses, and the page asks to sign in.
    let r = reqwest::get(server.url("/api/alerts")).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    c.goto(&server.url("/")).await.unwrap();
    let user = wait_for("the sign-in form", T, || async {
        c.find(Locator::Id("login-username")).await.ok()
    })
    .await;
    screenshot(&c, "operate-sign-in").await;
    user.send_keys("lan").await.unwrap();
    let pass = c.find(Locator::Id("login-password")).await.unwrap();
    pass.send_keys("wrong password").await.unwrap();
    pass.send_keys(&Key::Enter.to_string()).await.unwrap();
    wait_for("the refusal", T, || async {
        c.find(Locator::Css(".form-error")).await.ok()
    })
    .await;
    let pass = c.find(Locator::Id("login-password")).await.unwrap();
    pass.clear().await.unwrap();
    pass.send_keys(PASSWORD).await.unwrap();
    pass.send_keys(&Key::Enter.to_string()).await.unwrap();
    let chip = wait_for("the console, signed in", T, || async {
        c.find(Locator::Id("user-chip")).await.ok()
    })
    .await;
    assert!(chip.text().await.unwrap().contains("lan"));
    // A 1366-px workstation with someone signed in: the whole bar stays on the screen (`?`
    // included), the title whole, the new-alert count on one line, every screen's tab in
    // sight (none scrolled away).
    c.set_window_size(1366, 768).await.unwrap();
    let fit = wait_for("the top bar laid out at 1366 px", T, || async {
        let v = js(
            &c,
            "if (window.innerWidth > 1366) return null;
             const box = (s) => document.querySelector(s).getBoundingClientRect();
             const tabs = [...document.querySelectorAll('.view-tab')];
             const views = box('.views');
             const cut = (s) => { const e = document.querySelector(s); return e.scrollWidth - e.clientWidth; };
             return {width: window.innerWidth, help: box('.help-btn').right,
                     user: box('#user-chip').right, newH: box('.count.new').height,
                     overflow: Math.max(cut('.topbar'), cut('.views'), cut('.title')),
                     tabs: tabs.length,
                     hidden: tabs.filter((t) => { const b = t.getBoundingClientRect();
                       return b.width === 0 || b.right > Math.min(views.right, window.innerWidth) + 0.5
                         || b.left < views.left - 0.5; }).length};",
        )
        .await;
        v.is_object().then_some(v)
    })
    .await;
    let width = fit["width"].as_f64().unwrap();
    assert!(fit["help"].as_f64().unwrap() <= width, "{fit}");
    assert!(fit["user"].as_f64().unwrap() <= width, "{fit}");
    assert!(
        fit["newH"].as_f64().unwrap() < 30.0,
        "the count wrapped: {fit}"
    );
    assert!(fit["overflow"].as_f64().unwrap() <= 1.0, "{fit}");
    assert!(fit["tabs"].as_u64().unwrap() >= 10, "{fit}");
    assert_eq!(fit["hidden"], 0, "{fit}");
    screenshot(&c, "operate-topbar-1366").await;
    c.set_window_size(1600, 900).await.unwrap();
    // The session is in an HttpOnly cookie: no script of the page can read it.
    assert_eq!(
        js(&c, "return localStorage.getItem('ioc.token')").await,
        Value::Null
    );
    let visible = js(&c, "return document.cookie").await;
    assert!(
        !visible.as_str().unwrap_or_default().contains("ioc_session"),
        "{visible}"
    );
    let session = c
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name().starts_with("ioc_session_"))
        .expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    let token = format!("{}={}", session.name(), session.value());

    // An alert arrives; the keyboard takes it from new to closed.
    wait_for("a new alert in the queue", T, || async {
        js(
            &c,
            "return document.querySelector('#alert-list li.alert[data-state=\"new\"]') !== null",
        )
        .await
        .as_bool()
        .filter(|b| *b)
    })
    .await;
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("j").await.unwrap();
    let id = wait_for("the cursor on an alert", T, || async {
        js(&c, "const li = document.querySelector('#alert-list li.alert.focused'); return li ? Number(li.dataset.id) : null;")
            .await
            .as_i64()
    })
    .await;
    body.send_keys(&Key::Enter.to_string()).await.unwrap();
    wait_state(&c, "new").await;

    body.send_keys("g").await.unwrap();
    answer(&c, "Đội môi trường Vinh").await;
    wait_state(&c, "assigned").await;
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("w").await.unwrap();
    wait_state(&c, "in_progress").await;
    body.send_keys("c").await.unwrap();
    answer(&c, "Đã cử đội kiểm tra hiện trường").await;
    wait_for("the comment on the timeline", T, || async {
        js(
            &c,
            "return document.getElementById('alert-timeline').innerText",
        )
        .await
        .as_str()
        .filter(|t| t.contains("Đã cử đội kiểm tra"))
        .map(|_| ())
    })
    .await;
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("r").await.unwrap();
    wait_state(&c, "resolved").await;
    screenshot(&c, "operate-alert-resolved").await;
    body.send_keys("x").await.unwrap();
    wait_state(&c, "closed").await;

    // The server has every step, by this operator.
    let a = api(&server, &token, &format!("/api/alerts/{id}")).await;
    assert_eq!(a["state"], "closed");
    assert_eq!(a["assignee"], "Đội môi trường Vinh");
    let steps: Vec<(String, String)> = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "lan")
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("transition", "assigned"),
        ("transition", "in_progress"),
        ("comment", ""),
        ("transition", "resolved"),
        ("transition", "closed"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(steps, expected);

    // Signing out brings the form back; the old session is refused.
    c.find(Locator::Id("sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the sign-in form again", T, || async {
        c.find(Locator::Id("login-username")).await.ok()
    })
    .await;
    let r = reqwest::Client::new()
        .get(server.url("/api/alerts"))
        .header("cookie", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    drop(c);
    server.stop();
}

async fn rule_check_text(c: &Client) -> String {
    js(
        c,
        "const e = document.getElementById('rule-check'); return e ? e.innerText : '';",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The rules screen as a supervisor uses it: look at a running rule and backtest it over the
/// stored history, write a new one with a mistake the editor points at, fix it, save it, and
/// find it running on the server and in the rules folder.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_queue_filters_and_the_rules_screen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = fast_config(dir.path());
    let server = Server::start("rules-server", &data, &config, 0);
    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.goto(&server.url("/")).await.unwrap();
    wait_for("the console", T, || async {
        c.find(Locator::Css(".topbar")).await.ok()
    })
    .await;
    // The queue's filters: `/` to search, severity and state to narrow it down.
    let count = |c: &Client| {
        let c = c.clone();
        async move {
            js(
                &c,
                "return document.querySelectorAll('#alert-list li.alert').length",
            )
            .await
            .as_u64()
            .unwrap_or(0)
        }
    };
    wait_for("alerts in the queue", T, || async {
        (count(&c).await >= 2).then_some(())
    })
    .await;
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("/").await.unwrap();
    let search = c.active_element().await.unwrap();
    assert_eq!(
        search.attr("id").await.unwrap().as_deref(),
        Some("queue-search")
    );
    search.send_keys("không có gì như thế này").await.unwrap();
    wait_for("nothing to match", T, || async {
        (count(&c).await == 0).then_some(())
    })
    .await;
    c.find(Locator::Id("filter-clear"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the queue back", T, || async {
        (count(&c).await >= 2).then_some(())
    })
    .await;
    c.find(Locator::Css("#filter-severity option[value=\"critical\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("only critical alerts", T, || async {
        js(&c, "const li = [...document.querySelectorAll('#alert-list li.alert')]; return li.every(l => l.classList.contains('sev-critical'));")
            .await
            .as_bool()
            .filter(|b| *b)
    })
    .await;
    screenshot(&c, "queue-filtered").await;
    c.find(Locator::Id("filter-clear"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Some history for the backtest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("4").await.unwrap();
    let row = wait_for("the rules table", T, || async {
        c.find(Locator::Css(
            "#rules-table tr[data-rule=\"pm25-very-unhealthy\"]",
        ))
        .await
        .ok()
    })
    .await;
    row.click().await.unwrap();
    wait_for("the editor, read-only for a config rule", T, || async {
        js(&c, "const t = document.getElementById('rule-text'); return t && t.readOnly && t.value.includes('pm25');")
            .await
            .as_bool()
            .filter(|b| *b)
    })
    .await;
    c.find(Locator::Id("rule-backtest"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let summary = wait_for("the backtest's result", T, || async {
        js(
            &c,
            "const e = document.getElementById('backtest-result'); return e ? e.innerText : null;",
        )
        .await
        .as_str()
        .map(str::to_string)
    })
    .await;
    assert!(summary.contains("quan sát"), "{summary}");
    screenshot(&c, "rules-backtest").await;

    // A new rule: the editor points at the mistake, then saves the fixed rule.
    c.find(Locator::Id("rule-new"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the example rule to validate", T, || async {
        rule_check_text(&c).await.contains("Hợp lệ").then_some(())
    })
    .await;
    let text = c.find(Locator::Id("rule-text")).await.unwrap();
    text.clear().await.unwrap();
    text.send_keys("name = \"bui-min\"\nwhen = \"metric == 'pm25' && valu > 75.0\"\nseverity = \"major\"\nmessage = \"Bụi mịn {value}\"\n")
        .await
        .unwrap();
    let problem = wait_for("the problem with its place", T, || async {
        let t = rule_check_text(&c).await;
        t.contains("Dòng 2").then_some(t)
    })
    .await;
    assert!(problem.contains("valu"), "{problem}");
    assert!(
        js(&c, "return document.getElementById('rule-save').disabled")
            .await
            .as_bool()
            .unwrap(),
        "no saving a broken rule"
    );
    screenshot(&c, "rules-problem").await;
    text.clear().await.unwrap();
    text.send_keys("name = \"bui-min\"\nwhen = \"metric == 'pm25' && value > 75.0\"\nseverity = \"major\"\nmessage = \"Bụi mịn {value}\"\n")
        .await
        .unwrap();
    wait_for("the fixed rule to validate", T, || async {
        rule_check_text(&c).await.contains("Hợp lệ").then_some(())
    })
    .await;
    c.find(Locator::Id("rule-save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the new rule in the table", T, || async {
        c.find(Locator::Css("#rules-table tr[data-rule=\"bui-min\"]"))
            .await
            .ok()
    })
    .await;
    screenshot(&c, "rules-saved").await;
    let rules = get_json(&server.url("/api/rules")).await;
    let saved = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "bui-min")
        .expect("on the server")
        .clone();
    assert_eq!(saved["origin"], "console.toml");
    assert!(
        std::fs::read_to_string(data.join("rules").join("console.toml"))
            .unwrap()
            .contains("bui-min")
    );
    drop(c);
    server.stop();
}
