//! A supervisor's incident in a real browser, by keyboard only: an alert becomes an incident
//! worked through an SOP — a checklist, a required comment, a question whose answer takes
//! one branch and skips the other, a directive to the commune — then resolved and closed,
//! with its alert closed too and every step on the server under the supervisor's name, and
//! the after-action report downloadable.

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use ioc_e2e::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const PASSWORD: &str = "trưởng ca trực 2026";

const DRILL: &str = r#"name = "e2e-drill"
title = "Diễn tập xử lý sự cố"
categories = []

[[step]]
id = "verify"
title = "Xác minh tại chỗ"
checklist = ["Gọi trạm", "Xem camera khu vực"]
require = ["comment"]
sla = "10m"

[[step]]
id = "assess"
title = "Đánh giá mức độ"
role = "supervisor"
answers = ["Cử đội", "Theo dõi"]

[[step]]
id = "dispatch"
title = "Cử đội xử lý"
if = "answers.assess == 'Cử đội'"

[[step]]
id = "watch"
title = "Theo dõi thêm một giờ"
after = ["assess"]
if = "answers.assess == 'Theo dõi'"

[[step]]
id = "report"
title = "Báo cáo kết quả"
after = ["dispatch", "watch"]
require = ["comment"]
"#;

async fn api(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut r = match method {
        "POST" => c.post(server.url(path)),
        _ => c.get(server.url(path)),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn active_id(c: &Client) -> String {
    js(
        c,
        "return document.activeElement ? document.activeElement.id : ''",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Waits until the element `id` has the focus, then types `text` (and Enter) into it; a
/// live update that re-renders the form under us is answered by typing again.
async fn type_into(c: &Client, id: &str, text: &str, enter: bool) {
    wait_for(&format!("#{id} to take the focus"), T, || async {
        (active_id(c).await == id).then_some(())
    })
    .await;
    for attempt in 0..3 {
        let typed = async {
            let el = c.find(Locator::Id(id)).await?;
            if !text.is_empty() {
                el.clear().await?;
                el.send_keys(text).await?;
            }
            if enter {
                el.send_keys(&Key::Enter.to_string()).await?;
            }
            Ok::<_, fantoccini::error::CmdError>(())
        };
        match typed.await {
            Ok(()) => return,
            Err(e) if attempt < 2 => eprintln!("typing into #{id} again: {e}"),
            Err(e) => panic!("typing into #{id}: {e}"),
        }
    }
}

async fn key(c: &Client, k: &str) {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(k)
        .await
        .unwrap();
}

async fn step_status(c: &Client, step: &str) -> String {
    js(
        c,
        &format!("const s = document.querySelector('.step[data-step=\"{step}\"]'); return s ? s.dataset.status : '';"),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

async fn wait_step(c: &Client, step: &str, status: &str) {
    wait_for(&format!("step {step} to be {status}"), T, || async {
        (step_status(c, step).await == status).then_some(())
    })
    .await;
}

async fn cursor_step(c: &Client) -> String {
    js(c, "const s = document.querySelector('.steps.focused .step.cursor'); return s ? s.dataset.step : '';")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_alert_through_an_sop_to_a_closed_incident_by_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(&data, "minh", "supervisor", PASSWORD);
    let config = fast_config(dir.path());
    let server = Server::start("incidents-server", &data, &config, 0);
    let (s, login) = api(
        &server,
        "",
        "POST",
        "/api/login",
        Some(json!({"username": "minh", "password": PASSWORD, "token": true})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_string();
    let (s, v) = api(
        &server,
        &token,
        "POST",
        "/api/sops",
        Some(json!({"text": DRILL})),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.goto(&server.url("/")).await.unwrap();
    let user = wait_for("the sign-in form", T, || async {
        c.find(Locator::Id("login-username")).await.ok()
    })
    .await;
    user.send_keys("minh").await.unwrap();
    user.send_keys(&Key::Tab.to_string()).await.unwrap();
    type_into(&c, "login-password", PASSWORD, true).await;
    wait_for("the console, signed in", T, || async {
        c.find(Locator::Id("user-chip")).await.ok()
    })
    .await;

    // An alert: onto it, open it, open an incident with the drill SOP.
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
    key(&c, "j").await;
    let alert_id = wait_for("the cursor on an alert", T, || async {
        js(&c, "const li = document.querySelector('#alert-list li.alert.focused'); return li ? Number(li.dataset.id) : null;")
            .await
            .as_i64()
    })
    .await;
    key(&c, &Key::Enter.to_string()).await;
    wait_for("the alert panel", T, || async {
        c.find(Locator::Id("alert-panel")).await.ok()
    })
    .await;
    key(&c, "i").await;
    type_into(&c, "ask-input", "e2e-drill", true).await;

    // The incidents screen, the cursor in the steps, on the first one.
    let incident_id = wait_for("the incident", T, || async {
        js(&c, "const d = document.getElementById('incident-detail'); return d && d.dataset.state === 'open' ? Number(d.dataset.id) : null;")
            .await
            .as_i64()
    })
    .await;
    wait_step(&c, "verify", "ready").await;
    wait_for("the cursor on the first step", T, || async {
        (cursor_step(&c).await == "verify").then_some(())
    })
    .await;
    screenshot(&c, "incident-opened").await;

    // Tick the checklist, then finish the step with its required comment.
    for n in 1..=2 {
        key(&c, "t").await;
        wait_for(&format!("{n} item(s) ticked"), T, || async {
            let done = js(&c, "return document.querySelectorAll('.step[data-step=\"verify\"] .checklist li.done').length")
                .await
                .as_u64()?;
            (done == n).then_some(())
        })
        .await;
    }
    key(&c, "d").await;
    type_into(&c, "step-comment", "Đã gọi trạm, camera xác nhận", true).await;
    wait_step(&c, "verify", "done").await;
    wait_step(&c, "assess", "ready").await;

    // The question: the second answer, chosen in the list by typing, then a comment.
    wait_for("the cursor on the question", T, || async {
        (cursor_step(&c).await == "assess").then_some(())
    })
    .await;
    key(&c, "d").await;
    wait_for("the answer list to take the focus", T, || async {
        (active_id(&c).await == "step-answer").then_some(())
    })
    .await;
    c.find(Locator::Id("step-answer"))
        .await
        .unwrap()
        .send_keys("Theo")
        .await
        .unwrap();
    wait_for("the answer chosen", T, || async {
        js(&c, "return document.getElementById('step-answer').value")
            .await
            .as_str()
            .filter(|v| *v == "Theo dõi")
            .map(|_| ())
    })
    .await;
    c.find(Locator::Id("step-answer"))
        .await
        .unwrap()
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    type_into(&c, "step-comment", "Mưa đã ngớt", true).await;
    wait_step(&c, "assess", "done").await;
    wait_step(&c, "dispatch", "skipped").await;
    wait_step(&c, "watch", "ready").await;
    screenshot(&c, "incident-branch").await;

    // The branch taken, then the report with its comment.
    wait_for("the cursor on the branch", T, || async {
        (cursor_step(&c).await == "watch").then_some(())
    })
    .await;
    key(&c, "d").await;
    type_into(&c, "step-comment", "", true).await;
    wait_step(&c, "watch", "done").await;
    wait_step(&c, "report", "ready").await;
    key(&c, "d").await;
    type_into(&c, "step-comment", "Không có thiệt hại", true).await;
    wait_step(&c, "report", "done").await;

    // A directive to the commune, from the incident.
    key(&c, "n").await;
    type_into(&c, "dir-title", "Cử cán bộ kiểm tra hiện trường", true).await;
    wait_for("the directive on the incident", T, || async {
        c.find(Locator::Css(".incident-directives .directive-row"))
            .await
            .ok()
    })
    .await;

    // Resolve, then close.
    key(&c, "r").await;
    type_into(&c, "inc-ask-input", "", true).await;
    wait_for("the incident resolved", T, || async {
        js(&c, "const d = document.getElementById('incident-detail'); return d ? d.dataset.state : null;")
            .await
            .as_str()
            .filter(|s| *s == "resolved")
            .map(|_| ())
    })
    .await;
    key(&c, "x").await;
    type_into(&c, "inc-ask-input", "Kết thúc diễn tập", true).await;
    wait_for("the incident closed", T, || async {
        js(&c, "const d = document.getElementById('incident-detail'); return d ? d.dataset.state : null;")
            .await
            .as_str()
            .filter(|s| *s == "closed")
            .map(|_| ())
    })
    .await;
    screenshot(&c, "incident-closed").await;

    // The server has it all, by the supervisor.
    let (_, i) = api(
        &server,
        &token,
        "GET",
        &format!("/api/incidents/{incident_id}"),
        None,
    )
    .await;
    assert_eq!(i["state"], "closed");
    assert_eq!(i["sop"]["name"], "e2e-drill");
    assert_eq!(i["closed_by"], "minh");
    assert_eq!(i["alerts"][0], alert_id);
    let steps: Vec<(String, String, String)> = i["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
                s["done_by"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("verify", "done", "minh"),
        ("assess", "done", "minh"),
        ("dispatch", "skipped", ""),
        ("watch", "done", "minh"),
        ("report", "done", "minh"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(steps, expected);
    assert_eq!(i["steps"][1]["answer"], "Theo dõi");
    let kinds: Vec<&str> = i["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "opened",
        "checked",
        "step_done",
        "step_skipped",
        "directive_issued",
        "resolved",
        "closed",
    ] {
        assert!(kinds.contains(&k), "{k} not in {kinds:?}");
    }
    let (_, a) = api(
        &server,
        &token,
        "GET",
        &format!("/api/alerts/{alert_id}"),
        None,
    )
    .await;
    assert_eq!(a["state"], "closed", "the incident closed its alert");
    let pdf = reqwest::Client::new()
        .get(server.url(&format!("/api/incidents/{incident_id}/report.pdf")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status().as_u16(), 200);
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    std::fs::write(artifacts().join("incident-report.pdf"), &bytes).unwrap();
    drop(c);
    server.stop();
}
