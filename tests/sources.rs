//! The data-source screens in a real browser: live source health, a source added from the
//! form (with a mistake first), refused data searched and exported, and a CAP file imported
//! through the file picker, its area drawn on the map.

#[path = "../crates/engine/tests/common/mosquitto.rs"]
mod mosquitto;

use fantoccini::{Client, Locator};
use ioc_e2e::*;
use mosquitto::Mosquitto;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_browser_sources_dead_letters_and_import() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = fast_config(dir.path());
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[[source]]\nname = \"province-mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\ntopics = [\"ioc/#\"]\ndecoder = \"ngsi-ld\"\nclient_id = \"e2e-sources\"\n",
        broker.url()
    ));
    std::fs::write(&config, toml).unwrap();
    let server = Server::start("sources-server", &data, &config, 0);
    let driver = WebDriver::chromedriver().await;
    let c = driver.chrome_session().await;
    c.goto(&server.url("/")).await.unwrap();
    let body = c.find(Locator::Css("body")).await.unwrap();
    wait_for("the app", T, || async {
        (!text(&c, ".topbar .title").await.is_empty()).then_some(())
    })
    .await;

    // Sources screen (key 2): the simulator and the MQTT source, connected.
    body.send_keys("2").await.unwrap();
    wait_for("the MQTT source connected", T, || async {
        js(&c, "const r = document.querySelector('#sources-table tr[data-source=\"province-mqtt\"]'); return r ? r.dataset.state : null;")
            .await
            .as_str()
            .filter(|s| *s == "connected")
            .map(|_| ())
    })
    .await;

    // A malformed message becomes refused data, counted on the source.
    broker.publish("ioc/bad", b"{\"id\": 42, \"type\": \"X\"}");
    wait_for("the refusal counted", T, || async {
        let n = text(&c, "#sources-table tr[data-source=\"province-mqtt\"] a").await;
        (n == "1").then_some(())
    })
    .await;

    // Adding a source from the form: a mistake is explained, then it saves.
    c.find(Locator::Css("#sources-page .page-actions .btn.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let area = c.find(Locator::Css("#source-toml")).await.unwrap();
    area.clear().await.unwrap();
    area.send_keys("name = \"field\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/x\"\ninterval = \"often\"\ndecoder = \"ngsi-ld\"\n").await.unwrap();
    c.find(Locator::Css("#source-save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = wait_for("the form's error", T, || async {
        let t = text(&c, "#source-error").await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert!(err.contains("interval"), "{err}");
    area.clear().await.unwrap();
    area.send_keys("name = \"field\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/x\"\ninterval = \"5s\"\ndecoder = \"ngsi-ld\"\n").await.unwrap();
    c.find(Locator::Css("#source-save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the new source, failing visibly", T, || async {
        let state = js(&c, "const r = document.querySelector('#sources-table tr[data-source=\"field\"]'); return r ? r.dataset.state : null;").await;
        (state == "error").then_some(())
    })
    .await;
    screenshot(&c, "browser-sources").await;

    // Refused data (from the count): filtered to the source, searchable, exportable.
    c.find(Locator::Css(
        "#sources-table tr[data-source=\"province-mqtt\"] a",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for("the refused message", T, || async {
        let t = text(&c, "#dead-table tbody").await;
        t.contains("entity id must be a string").then_some(())
    })
    .await;
    c.find(Locator::Css("#dead-search"))
        .await
        .unwrap()
        .send_keys("nothing-like-this")
        .await
        .unwrap();
    wait_for("the search to filter", T, || async {
        js(
            &c,
            "return document.querySelectorAll('#dead-table tbody tr').length",
        )
        .await
        .as_u64()
        .filter(|n| *n == 0)
        .map(|_| ())
    })
    .await;
    let href = js(&c, "return document.getElementById('dead-export').href").await;
    let csv = reqwest::get(
        href.as_str()
            .unwrap()
            .replace("nothing-like-this", "string"),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        csv.starts_with("id,source,received_at,origin,reason,count,samples,size,payload"),
        "{csv}"
    );
    assert!(
        csv.contains("province-mqtt") && csv.contains("entity id must be a string"),
        "{csv}"
    );
    c.find(Locator::Css("#dead-search"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    c.find(Locator::Css("#dead-search"))
        .await
        .unwrap()
        .send_keys("string")
        .await
        .unwrap();
    wait_for("the row again", T, || async {
        text(&c, "#dead-table tbody")
            .await
            .contains("entity id must be a string")
            .then_some(())
    })
    .await;
    let shown = js(&c, "const s = document.querySelector('#dead-page select'); return s.options[s.selectedIndex].value").await;
    assert_eq!(
        shown, "province-mqtt",
        "the filter shows the source it came from"
    );

    // A CSV of 3,000 rows for a station nobody registered: one letter, with its count.
    let mut rows = String::from("time,level\n");
    for i in 0..3000 {
        rows.push_str(&format!(
            "2024-05-01T{:02}:{:02}:00Z,{}\n",
            i / 60 % 24,
            i % 60,
            i
        ));
    }
    let r = reqwest::Client::new()
        .post(server.url("/api/import"))
        .query(&[
            ("format", "csv"),
            ("source", "province-mqtt"),
            ("name", "ghost-river.csv"),
            (
                "mapping",
                "entity_id = \"ghost-river\"\ntime = \"time\"\nmetrics = { water_level = \"level\" }\n",
            ),
        ])
        .body(rows)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["refused"], 3000, "{report}");
    let search = c.find(Locator::Css("#dead-search")).await.unwrap();
    search.clear().await.unwrap();
    search.send_keys("ghost-river").await.unwrap();
    let counted = wait_for("one letter for the 3,000 rows", T, || async {
        let rows = js(
            &c,
            "return [...document.querySelectorAll('#dead-table tbody tr')].filter(r => r.innerText.includes('ghost-river')).map(r => { const b = r.querySelector('.count'); return b ? b.dataset.count : null; })",
        )
        .await;
        (rows.as_array().is_some_and(|a| !a.is_empty())).then_some(rows)
    })
    .await;
    assert_eq!(
        counted,
        serde_json::json!(["3000"]),
        "one row, counting 3000"
    );
    screenshot(&c, "browser-dead-letters").await;

    // Importing a CAP file through the picker: its alert and its area appear.
    body.send_keys("2").await.unwrap();
    let cap = dir.path().join("flood.xml");
    let sent = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00");
    let expires =
        (chrono::Utc::now() + chrono::Duration::hours(6)).format("%Y-%m-%dT%H:%M:%S+00:00");
    std::fs::write(
        &cap,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>KTTV-NA-2026-0001</identifier><sender>kttv@nghean.gov.vn</sender>
  <sent>{sent}</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><category>Met</category><event>Lũ trên sông Cả</event><urgency>Immediate</urgency>
    <severity>Extreme</severity><certainty>Observed</certainty><expires>{expires}</expires>
    <headline>Lũ báo động III trên sông Cả tại Nam Đàn</headline>
    <area><areaDesc>Nam Đàn</areaDesc>
      <polygon>18.62,105.42 18.78,105.42 18.78,105.60 18.62,105.60 18.62,105.42</polygon></area>
  </info>
</alert>"#
        ),
    )
    .unwrap();
    c.find(Locator::Css("#import-input"))
        .await
        .unwrap()
        .send_keys(cap.to_str().unwrap())
        .await
        .unwrap();
    wait_for("the import's message", T, || async {
        let t = text(&c, ".toast").await;
        t.contains("1").then_some(())
    })
    .await;
    body.send_keys("1").await.unwrap();
    wait_for("the CAP alert in the queue", T, || async {
        text(&c, "#alert-list")
            .await
            .contains("Lũ báo động III trên sông Cả")
            .then_some(())
    })
    .await;
    wait_for("its area on the map", T, || async {
        js(&c, "return document.getElementById('map').dataset.areas")
            .await
            .as_str()
            .filter(|n| *n == "1")
            .map(|_| ())
    })
    .await;
    let alerts = get_json(&server.url("/api/alerts?state=open")).await;
    let id = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["external_id"] == "KTTV-NA-2026-0001")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let cap_back = reqwest::get(server.url(&format!("/api/alerts/{id}/cap")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        cap_back.contains("KTTV-NA-2026-0001"),
        "exported as received"
    );
    // Click it: the map fits the area.
    c.find(Locator::Css(&format!("#alert-list li[data-id=\"{id}\"]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    screenshot(&c, "browser-cap-area").await;
    c.close().await.unwrap();
    server.stop();
}
