//! KPIs through the real pipeline and store, on a clock the test moves, against values
//! worked out by hand: shares and means of stations from the hourly and daily rollups, by
//! commune; counts and times of alerts; a series over days; what is behind a number; and a
//! statistical report that carries the numbers worked out by hand (that it carries exactly what
//! `GET /api/kpis` answers is checked over HTTP, in crates/server/tests/kpi_report.rs).

#[path = "common/store.rs"]
mod test_store;

#[path = "common/missing.rs"]
mod missing;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ioc_engine::operate::directives::DirectiveAction;
use ioc_engine::operate::Actor;
use ioc_engine::pipeline::{Op, OpOutcome};
use ioc_engine::{Config, Engine, Item, ManualClock, Obs};
use ioc_model::{Domain, Entity, KpiStatus, Period, ReportFormat, ReportRequest, Role, Unit};
use std::path::Path;
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

fn config(dir: &Path) -> Config {
    let mut c = Config::parse(CONFIG).unwrap().without_demo();
    c.paths.data = Some(dir.to_owned());
    c.store.url = test_store::url_for(dir);
    c
}

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

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

/// By hand, 26 Nov: a (A) 25, 27 → 26 ✓; b (A) 31, 33 → 32 ✗; c (B) 28 ✓ → 2 of 3 = 66.7 %
/// (green); A 50 %, B 100 %; the highest 33. 27 Nov: a 36 (a critical alert), b 29, c 29.5 →
/// a ✗, b ✓, c ✓: 66.7 %; the highest 36 (amber).
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
}

#[tokio::test]
async fn kpis_from_rollups_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(day0()));
    let engine = Engine::start_with_clock(config(dir.path()), clock.clone())
        .await
        .unwrap();
    let (defs, problems) = engine.kpi_defs().await;
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        defs.len(),
        14,
        "the starter catalogue and the two of the config"
    );
    two_days(&engine, &clock).await;

    let v = engine
        .kpi_value("cool-share", Some(Period::Day), Some(date(26)), None)
        .await
        .unwrap();
    assert_eq!((v.numerator, v.denominator), (2.0, 3.0));
    assert!((v.value.unwrap() - 200.0 / 3.0).abs() < 1e-9);
    assert_eq!(v.status, KpiStatus::Green);
    assert_eq!(v.from, day0());
    let units: Vec<(String, Option<f64>)> = v
        .by_unit
        .iter()
        .map(|u| (u.unit.clone(), u.value))
        .collect();
    assert_eq!(
        units,
        vec![("A".into(), Some(50.0)), ("B".into(), Some(100.0))],
        "worst first"
    );
    let v = engine
        .kpi_value("temp-max", Some(Period::Day), Some(date(26)), None)
        .await
        .unwrap();
    assert_eq!(v.value, Some(33.0));
    assert!(v.by_unit.is_empty());
    let v27 = engine
        .kpi_value("temp-max", Some(Period::Day), Some(date(27)), None)
        .await
        .unwrap();
    assert_eq!(v27.value, Some(36.0));
    assert_eq!(v27.status, KpiStatus::Amber);
    assert_eq!(v27.previous, Some(33.0));
    // One commune only.
    let a = engine
        .kpi_value(
            "cool-share",
            Some(Period::Day),
            Some(date(27)),
            Some(vec!["A".into()]),
        )
        .await
        .unwrap();
    assert_eq!(a.value, Some(50.0));
    // The two days as one period: a (25, 27, 36) 29.3 ✓, b (31, 33, 29) 31 ✗, c (28, 29.5) ✓.
    let week = engine
        .kpi_value("cool-share", Some(Period::Week), Some(date(26)), None)
        .await
        .unwrap();
    assert_eq!((week.numerator, week.denominator), (2.0, 3.0));

    // A series of days, one point each; an empty day has no value.
    let s = engine
        .kpi_series(
            "temp-max",
            day0() - Duration::days(1),
            day0() + Duration::days(2),
            None,
            None,
        )
        .await
        .unwrap();
    let values: Vec<Option<f64>> = s.points.iter().map(|p| p.value).collect();
    assert_eq!(values, vec![None, Some(33.0), Some(36.0)]);
    // By the hour: the hourly rollups.
    let hours = engine
        .kpi_series(
            "temp-max",
            day0(),
            day0() + Duration::hours(11),
            Some(Period::Hour),
            None,
        )
        .await
        .unwrap();
    assert_eq!(hours.points.len(), 11);
    assert_eq!(hours.points[1].value, Some(31.0));
    assert_eq!(hours.points[10].value, Some(33.0));

    // Behind the number: the stations with their values, the counted ones first.
    let d = engine
        .kpi_detail("cool-share", Some(Period::Day), Some(date(26)), None)
        .await
        .unwrap();
    let got: Vec<(String, Option<f64>, bool)> = d
        .iter()
        .map(|i| (i.id.clone(), i.value, i.counted))
        .collect();
    assert_eq!(
        got,
        vec![
            ("c".into(), Some(28.0), true),
            ("a".into(), Some(26.0), true),
            ("b".into(), Some(32.0), false)
        ]
    );

    // Alerts: one critical, acknowledged after 12 minutes.
    let alert = engine.hub().open_alerts()[0].id;
    clock.set(day0() + Duration::minutes(24 * 60 + 60 + 12));
    engine.acknowledge(alert, "lan", None).await.unwrap();
    let c = engine
        .kpi_value("critical-alerts", Some(Period::Day), Some(date(27)), None)
        .await
        .unwrap();
    assert_eq!(c.value, Some(1.0));
    let m = engine
        .kpi_value("mtta-critical", Some(Period::Day), Some(date(27)), None)
        .await
        .unwrap();
    assert!((m.value.unwrap() - 12.0).abs() < 0.05, "{m:?}");
    assert_eq!(m.status, KpiStatus::Amber);
    let m26 = engine
        .kpi_value("mtta-critical", Some(Period::Day), Some(date(26)), None)
        .await
        .unwrap();
    assert!(m26.no_data);
    assert_eq!(
        m26.value,
        Some(0.0),
        "nothing to acknowledge: the definition's `empty`"
    );

    // Directives due in the week: one on time, one late.
    let leader = Actor {
        name: "thanh".into(),
        role: Role::Leader,
        units: vec![],
    };
    let oc = Actor {
        name: "oc".into(),
        role: Role::OcStaff,
        units: vec!["A".into()],
    };
    let mut ids = Vec::new();
    for h in [2, 3] {
        let OpOutcome::Directive(d) = engine
            .operate(
                Op::Issue {
                    unit: "A".into(),
                    title: "Kiểm tra".into(),
                    body: String::new(),
                    deadline: clock.now_plus(h),
                    incident: None,
                },
                leader.clone(),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        ids.push(d.id);
    }
    engine
        .operate(
            Op::Directive {
                id: ids[0],
                action: DirectiveAction::Done,
                text: None,
            },
            oc.clone(),
        )
        .await
        .unwrap();
    clock.set(clock.now_plus(4));
    engine
        .operate(
            Op::Directive {
                id: ids[1],
                action: DirectiveAction::Done,
                text: None,
            },
            oc,
        )
        .await
        .unwrap();
    let dv = engine
        .kpi_value(
            "directives-on-time",
            Some(Period::Week),
            Some(date(27)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (dv.numerator, dv.denominator, dv.value),
        (1.0, 2.0, Some(50.0))
    );
    assert_eq!(dv.status, KpiStatus::Red);

    // The live values reach the hub.
    engine.refresh_kpis().await;
    assert_eq!(engine.hub().kpis().len(), 14);

    // A report of the 26th: the numbers worked out by hand above, and one row for each KPI of
    // the domain. (That a report and `GET /api/kpis` agree on every KPI is checked over HTTP
    // in crates/server/tests/kpi_report.rs.)
    let req = ReportRequest {
        domain: Some(Domain::Environment),
        period: Period::Day,
        date: date(26),
        unit: None,
        format: ReportFormat::Csv,
    };
    let r =
        ioc_engine::report::offline(engine.config(), &req, clock_now(&clock), &|_, _| {}).unwrap();
    let csv = String::from_utf8(r.csv()).unwrap();
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    let mut rows = std::collections::BTreeMap::new();
    for row in rd.records() {
        let row = row.unwrap();
        if &row[0] != "kpi" {
            continue;
        }
        let value: Option<f64> = (!row[7].is_empty()).then(|| row[7].parse().unwrap());
        let again = rows.insert(row[1].to_string(), (value, row[9].to_string()));
        assert!(again.is_none(), "{} twice", &row[1]);
    }
    let (cool, status) = &rows["cool-share"];
    assert!((cool.unwrap() - 200.0 / 3.0).abs() < 1e-9, "{cool:?}");
    assert_eq!(status, "green");
    assert_eq!(rows["temp-max"], (Some(33.0), "green".to_string()));
    let environment: std::collections::BTreeSet<String> = defs
        .iter()
        .filter(|d| d.domain == Domain::Environment)
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(
        rows.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        environment,
        "one row for each KPI of the domain"
    );
    assert!(
        csv.contains("alerts,heat") || !csv.contains("heat"),
        "alerts of the day"
    );
    let pdf = r.render(ReportFormat::Pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("stat-report-test.pdf"), &pdf);
    if let Some(text) = pdf_text(&pdf) {
        for needle in [
            "Báo cáo thống kê",
            "Tỷ lệ trạm mát",
            "66.7",
            "Nhiệt độ cao nhất",
        ] {
            assert!(text.contains(needle), "{needle} not in the PDF:\n{text}");
        }
    }
    let xlsx = r.render(ReportFormat::Xlsx).unwrap();
    assert!(xlsx.starts_with(b"PK"), "a zip");
    let store = engine.store().clone();
    engine.shutdown().await;
    drop(engine);

    // Rollups made before hourly and daily ones existed are filled in at start.
    let conn = ioc_engine::store::connect_path(&store).unwrap();
    conn.execute_batch("DELETE FROM rollup_1h; DELETE FROM rollup_1d;")
        .unwrap();
    drop(conn);
    let engine = Engine::start_with_clock(config(dir.path()), clock.clone())
        .await
        .unwrap();
    let v = engine
        .kpi_value("cool-share", Some(Period::Day), Some(date(26)), None)
        .await
        .unwrap();
    assert_eq!((v.numerator, v.denominator), (2.0, 3.0));
    let h = engine
        .kpi_series(
            "temp-max",
            day0(),
            day0() + Duration::hours(11),
            Some(Period::Hour),
            None,
        )
        .await
        .unwrap();
    assert_eq!(h.points[10].value, Some(33.0));
    engine.shutdown().await;
}

fn clock_now(c: &ManualClock) -> DateTime<Utc> {
    use ioc_engine::Clock;
    c.now()
}

trait Plus {
    fn now_plus(&self, hours: i64) -> DateTime<Utc>;
}

impl Plus for ManualClock {
    fn now_plus(&self, hours: i64) -> DateTime<Utc> {
        clock_now(self) + Duration::hours(hours)
    }
}

/// The text of a PDF, by poppler's `pdftotext`; `None` when it is not installed (a failure
/// under CI).
fn pdf_text(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = missing::run_tool(
        std::process::Command::new("pdftotext").arg(&path).arg("-"),
        "Debian package poppler-utils",
    )?;
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
