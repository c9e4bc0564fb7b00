//! A statistical report says what the KPI screen says: over real sockets, the report made by
//! `POST /api/reports` (its CSV, fetched from `/api/reports/{id}/file`) carries, KPI by KPI
//! and commune by commune, exactly the numbers `GET /api/kpis` answers for the same period and
//! unit — for a day, a week, another day and one commune — and both carry the numbers worked
//! out by hand. The data goes through the real pipeline and store on a clock the test moves.

mod common;

use chrono::{DateTime, Duration, Utc};
use ioc_engine::{Config, Engine, Item, ManualClock, Obs};
use ioc_model::{Domain, Entity, KpiValue, Unit};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// 00:00 on 26 Nov 2026 in Nghệ An.
fn day0() -> DateTime<Utc> {
    "2026-11-25T17:00:00Z".parse().unwrap()
}

const CONFIG: &str = r#"
[kpi_settings]
refresh = "1h"

[reports]
schedule = []

[[rule]]
name = "hot"
when = "metric == 'temperature' && value >= 35.0"
severity = "critical"
category = "heat"
message = "Nắng nóng {value}"

[[kpi]]
id = "cool-share"
name = "Tỷ lệ trạm mát"
domain = "environment"
period = "day"
uom = "%"
target = 60.0
green = 60.0
amber = 40.0
[kpi.of]
source = "observations"
metric = "temperature"
entity_type = "WeatherStation"
each = "avg"
measure = "share"
where = "value < 30.0"

[[kpi]]
id = "temp-max"
name = "Nhiệt độ cao nhất"
domain = "environment"
period = "day"
uom = "°C"
target = 35.0
better = "lower"
green = 35.0
amber = 38.0
by_unit = false
[kpi.of]
source = "observations"
metric = "temperature"
each = "max"
measure = "max"
"#;

fn station(id: &str, unit: &str) -> Vec<Item> {
    vec![
        Item::Unit(Unit {
            code: unit.into(),
            name: format!("Xã {unit}"),
            full_name: None,
            parent: None,
            lon: None,
            lat: None,
        }),
        Item::Entity(Box::new(
            Entity::new(
                id,
                "WeatherStation",
                &format!("Trạm {id}"),
                Domain::Environment,
            )
            .at(105.6, 18.7)
            .in_unit(unit, &format!("Xã {unit}")),
        )),
    ]
}

fn obs(entity: &str, minutes: i64, value: f64) -> Item {
    Item::Obs(Obs {
        entity: Arc::from(entity),
        metric: Arc::from("temperature"),
        time: day0() + Duration::minutes(minutes),
        value,
    })
}

async fn feed(engine: &Engine, clock: &ManualClock, items: Vec<Item>) {
    if let Some(Item::Obs(o)) = items.last() {
        clock.set(o.time + Duration::seconds(1));
    }
    let r = engine.sender().ingest("t", items).await.unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
}

/// As in the engine's KPI test, by hand. 26 Nov: a (A) 25, 27 → 26 ✓; b (A) 31, 33 → 32 ✗;
/// c (B) 28 ✓ → 2 of 3 = 66.7 %; A 50 %, B 100 %; the highest 33. 27 Nov: a 36 (a critical
/// alert, acknowledged after 12 minutes), b 29, c 29.5 → 2 of 3; the highest 36.
async fn two_days(engine: &Engine, clock: &ManualClock) {
    let mut items = station("a", "A");
    items.extend(station("b", "A"));
    items.extend(station("c", "B"));
    feed(engine, clock, items).await;
    feed(
        engine,
        clock,
        vec![obs("a", 60, 25.0), obs("b", 61, 31.0), obs("c", 62, 28.0)],
    )
    .await;
    feed(
        engine,
        clock,
        vec![obs("a", 600, 27.0), obs("b", 601, 33.0)],
    )
    .await;
    feed(
        engine,
        clock,
        vec![
            obs("a", 24 * 60 + 60, 36.0),
            obs("b", 24 * 60 + 61, 29.0),
            obs("c", 24 * 60 + 62, 29.5),
        ],
    )
    .await;
    let alert = engine.hub().open_alerts()[0].id;
    clock.set(day0() + Duration::minutes(24 * 60 + 60 + 12));
    engine.acknowledge(alert, "lan", None).await.unwrap();
    clock.set(day0() + Duration::days(2) + Duration::hours(3));
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// A KPI row of a report, or of the API, as the report prints it: value, status, numerator,
/// denominator, previous (only on the KPI's row) and the period.
type Row = (
    Option<f64>,
    String,
    f64,
    f64,
    Option<f64>,
    DateTime<Utc>,
    DateTime<Utc>,
);

/// `(kpi, unit)` → its row; `unit` is empty for the KPI's own row.
type Rows = BTreeMap<(String, String), Row>;

fn from_api(kpis: &[KpiValue]) -> Rows {
    let mut rows = Rows::new();
    for k in kpis {
        let status = |s: ioc_model::KpiStatus| s.as_str().to_string();
        rows.insert(
            (k.id.clone(), String::new()),
            (
                k.value,
                status(k.status),
                k.numerator,
                k.denominator,
                k.previous,
                k.from,
                k.to,
            ),
        );
        for u in &k.by_unit {
            rows.insert(
                (k.id.clone(), u.unit.clone()),
                (
                    u.value,
                    status(u.status),
                    u.numerator,
                    u.denominator,
                    None,
                    k.from,
                    k.to,
                ),
            );
        }
    }
    rows
}

fn from_csv(csv: &str) -> Rows {
    let num = |s: &str| -> Option<f64> {
        (!s.is_empty()).then(|| s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}")))
    };
    let time = |s: &str| -> DateTime<Utc> { s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}")) };
    let mut rows = Rows::new();
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    for row in rd.records() {
        let row = row.unwrap();
        let unit = match &row[0] {
            "kpi" => String::new(),
            "kpi_unit" => row[3].to_string(),
            _ => continue,
        };
        let again = rows.insert(
            (row[1].to_string(), unit),
            (
                num(&row[7]),
                row[9].to_string(),
                num(&row[11]).unwrap(),
                num(&row[12]).unwrap(),
                num(&row[13]),
                time(&row[5]),
                time(&row[6]),
            ),
        );
        assert!(again.is_none(), "{row:?} twice in the report");
    }
    rows
}

/// Asks for a report over HTTP and waits for its CSV.
async fn report(addr: SocketAddr, http: &reqwest::Client, request: Value) -> String {
    let r = http
        .post(format!("http://{addr}/api/reports"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{request}");
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let job = get(addr, &format!("/api/reports/{id}")).await;
        match job["state"].as_str() {
            Some("done") => break,
            Some("running") => {}
            _ => panic!("report {request}: {job}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "report {request} not done in 60 s: {job}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = reqwest::get(format!("http://{addr}/api/reports/{id}/file"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_carries_the_numbers_of_the_kpi_api() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(day0()));
    let mut config = Config::parse(CONFIG).unwrap().without_demo();
    config.paths.data = Some(dir.path().to_owned());
    let engine = Arc::new(
        Engine::start_with_clock(config, clock.clone())
            .await
            .unwrap(),
    );
    two_days(&engine, &clock).await;
    let addr = common::serve(engine.clone()).await;
    let http = reqwest::Client::new();

    // (period, a date in it, one unit or all); the 27th's day has the alert and its
    // acknowledgement, the week both days.
    let cases = [
        ("day", "2026-11-26", None),
        ("day", "2026-11-27", None),
        ("week", "2026-11-27", None),
        ("day", "2026-11-26", Some("A")),
    ];
    let mut seen = BTreeMap::new();
    for (period, date, unit) in cases {
        let mut q = format!("/api/kpis?period={period}&date={date}");
        if let Some(u) = unit {
            q.push_str(&format!("&unit={u}"));
        }
        let kpis: Vec<KpiValue> = serde_json::from_value(get(addr, &q).await).unwrap();
        assert_eq!(kpis.len(), 14, "{q}: every KPI");
        let api = from_api(&kpis);
        let csv = report(
            addr,
            &http,
            json!({"period": period, "date": date, "unit": unit, "format": "csv"}),
        )
        .await;
        let reported = from_csv(&csv);
        assert_eq!(
            reported.keys().collect::<Vec<_>>(),
            api.keys().collect::<Vec<_>>(),
            "{q}: the same KPIs and communes in the report"
        );
        println!("{q}: {} rows of KPIs and communes compared", api.len());
        for (key, row) in &api {
            assert_eq!(
                &reported[key], row,
                "{q}: {key:?} in the report and the API"
            );
        }
        seen.insert((period, date, unit), api);
    }

    // And both say what was worked out by hand.
    let pick = |case: (&'static str, &'static str, Option<&'static str>), kpi: &str, unit: &str| {
        let r = &seen[&case][&(kpi.to_string(), unit.to_string())];
        (r.0.map(|v| (v * 10.0).round() / 10.0), r.1.clone())
    };
    let day26 = ("day", "2026-11-26", None);
    let green = "green".to_string();
    assert_eq!(pick(day26, "cool-share", ""), (Some(66.7), green.clone()));
    assert_eq!(pick(day26, "cool-share", "A").0, Some(50.0));
    assert_eq!(pick(day26, "cool-share", "B").0, Some(100.0));
    assert_eq!(pick(day26, "temp-max", ""), (Some(33.0), green.clone()));
    assert_eq!(
        pick(("day", "2026-11-27", None), "temp-max", ""),
        (Some(36.0), "amber".to_string())
    );
    assert_eq!(
        pick(("day", "2026-11-27", None), "mtta-critical", "").0,
        Some(12.0)
    );
    assert_eq!(
        pick(("week", "2026-11-27", None), "temp-max", "").0,
        Some(36.0)
    );
    assert_eq!(
        pick(("day", "2026-11-26", Some("A")), "cool-share", "").0,
        Some(50.0),
        "one commune: a ✓, b ✗"
    );
    engine.shutdown().await;
}
