//! The engine end to end on a temporary folder: observations go in, alerts come out after
//! their `for` duration (once), acknowledgements are kept, and a restart on the same folder
//! resumes exactly where it stopped.

#[path = "common/store.rs"]
mod test_store;

use chrono::{DateTime, Duration, Utc};
use ioc_engine::config::RuleConfig;
use ioc_engine::ingest::Ingest;
use ioc_engine::{Config, Engine, Item, ManualClock, Obs};
use ioc_model::{AlertEventKind, AlertState, Domain, Entity, EntityStatus, Severity};
use std::path::Path;
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    "2026-11-26T03:00:00Z".parse().unwrap()
}

fn config(dir: &Path) -> Config {
    let mut c = Config::default().without_demo();
    c.paths.data = Some(dir.to_owned());
    c.store.url = test_store::url_for(dir);
    c.rules = Some(vec![
        RuleConfig {
            name: "pm25-high".into(),
            when: "metric == 'pm25' && value > 150.0".into(),
            for_: std::time::Duration::from_secs(600),
            severity: Severity::Major,
            message: "PM2.5 {value} at {entity.name}".into(),
            category: Some("air_quality".into()),
            domain: None,
            auto_resolve: true,
            escalate_after: None,
            enabled: true,
            ..Default::default()
        },
        RuleConfig {
            name: "level".into(),
            when: "metric == 'water_level' && value >= entity.attributes.alarm_1".into(),
            for_: std::time::Duration::ZERO,
            severity: Severity::Warning,
            message: "level {value}".into(),
            category: Some("flood".into()),
            domain: None,
            auto_resolve: true,
            escalate_after: None,
            enabled: true,
            ..Default::default()
        },
        RuleConfig {
            name: "broken".into(),
            when: "metric == ".into(),
            for_: std::time::Duration::ZERO,
            severity: Severity::Info,
            message: "never".into(),
            category: None,
            domain: None,
            auto_resolve: true,
            escalate_after: None,
            enabled: true,
            ..Default::default()
        },
    ]);
    c
}

fn station(id: &str) -> Item {
    let e = Entity::new(
        id,
        "AirQualityStation",
        &format!("Trạm {id}"),
        Domain::Environment,
    );
    Item::Entity(Box::new(e.at(105.68, 18.67).in_unit("16681", "Thành Vinh")))
}

fn gauge(id: &str) -> Item {
    let e = Entity::new(id, "WaterLevelGauge", &format!("Gauge {id}"), Domain::Water);
    Item::Entity(Box::new(e.at(105.5, 18.7).with_attr("alarm_1", 3.0)))
}

fn obs(entity: &str, metric: &str, minute: i64, value: f64) -> Item {
    Item::Obs(Obs {
        entity: Arc::from(entity),
        metric: Arc::from(metric),
        time: t0() + Duration::minutes(minute),
        value,
    })
}

async fn start(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::start_with_clock(config(dir), clock.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn alert_after_for_duration_once_then_acknowledged_and_kept_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(1)));
    let engine = start(dir.path(), &clock).await;
    assert_eq!(
        engine.rule_errors().await.len(),
        1,
        "the broken rule is refused"
    );
    assert_eq!(engine.rule_errors().await[0].rule, "broken");
    let tx = engine.sender();
    tx.ingest("test", vec![station("aq-1"), station("aq-2")])
        .await
        .unwrap();

    // PM2.5 above 150 from minute 0; the alert comes at minute 10, not before.
    for m in 0..10 {
        let r = tx
            .ingest("test", vec![obs("aq-1", "pm25", m, 160.0 + m as f64)])
            .await
            .unwrap();
        assert_eq!(r.accepted, 1);
        assert!(
            engine.hub().open_alerts().is_empty(),
            "no alert at minute {m}"
        );
    }
    tx.ingest("test", vec![obs("aq-1", "pm25", 10, 175.0)])
        .await
        .unwrap();
    let open = engine.hub().open_alerts();
    assert_eq!(open.len(), 1);
    let alert = &open[0];
    assert_eq!(
        (alert.rule.as_str(), alert.entity.as_deref().unwrap()),
        ("pm25-high", "aq-1")
    );
    assert_eq!(alert.state, AlertState::New);
    assert_eq!(alert.raised_at, t0() + Duration::minutes(10));
    assert_eq!(alert.message, "PM2.5 175.0 at Trạm aq-1");
    assert_eq!(alert.unit_name.as_deref(), Some("Thành Vinh"));
    // Still high: no second alert. Another station is independent.
    for m in 11..20 {
        tx.ingest(
            "test",
            vec![obs("aq-1", "pm25", m, 180.0), obs("aq-2", "pm25", m, 20.0)],
        )
        .await
        .unwrap();
    }
    assert_eq!(engine.hub().open_alerts().len(), 1);

    let id = alert.id;
    let acked = engine
        .acknowledge(id, "op-vinh", Some("đã thấy".into()))
        .await
        .unwrap();
    assert_eq!(acked.state, AlertState::Acknowledged);
    assert_eq!(acked.acked_by.as_deref(), Some("op-vinh"));
    let again = engine.acknowledge(id, "op-vinh", None).await;
    assert!(again.is_err(), "acknowledging twice is refused");
    let latest_before = engine.hub().entity("aq-1").unwrap().latest["pm25"].clone();
    engine.shutdown().await;

    // Restart on the same folder.
    let engine = start(dir.path(), &clock).await;
    let open = engine.hub().open_alerts();
    assert_eq!(open.len(), 1, "the open alert is still open");
    assert_eq!(open[0].id, id);
    assert_eq!(open[0].state, AlertState::Acknowledged);
    let aq1 = engine.hub().entity("aq-1").unwrap();
    assert_eq!(aq1.latest["pm25"], latest_before, "latest values survive");
    assert_eq!(aq1.status, EntityStatus::Online);
    assert_eq!(engine.hub().entities().len(), 2);
    let full = engine.alert(id).await.unwrap().unwrap();
    let kinds: Vec<_> = full
        .events
        .iter()
        .map(|e| (e.kind, e.to, e.actor.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (AlertEventKind::Raised, Some(AlertState::New), "system"),
            (
                AlertEventKind::Transition,
                Some(AlertState::Acknowledged),
                "op-vinh"
            ),
        ]
    );
    assert_eq!(full.events[1].comment.as_deref(), Some("đã thấy"));

    // Still above the threshold after the restart: no duplicate. Then it clears and the
    // acknowledged alert resolves by itself.
    let tx = engine.sender();
    tx.ingest("test", vec![obs("aq-1", "pm25", 40, 190.0)])
        .await
        .unwrap();
    assert_eq!(engine.hub().open_alerts().len(), 1);
    tx.ingest("test", vec![obs("aq-1", "pm25", 41, 40.0)])
        .await
        .unwrap();
    assert!(engine.hub().open_alerts().is_empty());
    let resolved = engine.alert(id).await.unwrap().unwrap();
    assert_eq!(resolved.state, AlertState::Resolved);
    assert!(!resolved.active);
    engine.shutdown().await;
}

#[tokio::test]
async fn cleared_unacknowledged_alert_waits_for_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(1)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![gauge("wl-1")]).await.unwrap();
    tx.ingest("test", vec![obs("wl-1", "water_level", 0, 3.2)])
        .await
        .unwrap();
    tx.ingest("test", vec![obs("wl-1", "water_level", 1, 2.1)])
        .await
        .unwrap();
    let open = engine.hub().open_alerts();
    assert_eq!(open.len(), 1);
    assert!(!open[0].active, "cleared");
    assert_eq!(
        open[0].state,
        AlertState::New,
        "but still waiting for an operator"
    );
    // Rises again: the same alert, counted twice.
    tx.ingest("test", vec![obs("wl-1", "water_level", 2, 3.5)])
        .await
        .unwrap();
    let open = engine.hub().open_alerts();
    assert_eq!(open.len(), 1);
    assert!(open[0].active);
    assert_eq!(open[0].count, 2);
    tx.ingest("test", vec![obs("wl-1", "water_level", 3, 1.0)])
        .await
        .unwrap();
    let acked = engine.acknowledge(open[0].id, "op", None).await.unwrap();
    assert_eq!(
        acked.state,
        AlertState::Resolved,
        "acknowledging a cleared alert resolves it"
    );
    assert!(engine.hub().open_alerts().is_empty());
    engine.shutdown().await;
}

#[tokio::test]
async fn store_keeps_raw_rows_and_rollups_and_skips_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(1)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![station("aq-1")]).await.unwrap();
    // Two per minute for 3 minutes, then the same rows again (an at-least-once source).
    let rows: Vec<Item> = (0..6)
        .map(|i| {
            Item::Obs(Obs {
                entity: Arc::from("aq-1"),
                metric: Arc::from("pm10"),
                time: t0() + Duration::seconds(30 * i),
                value: 10.0 * (i + 1) as f64,
            })
        })
        .collect();
    tx.ingest("test", rows.clone()).await.unwrap();
    tx.ingest("test", rows).await.unwrap();
    let reader = engine.reader().clone();
    let raw = reader.raw("aq-1", "pm10", 0, i64::MAX, 100).unwrap();
    assert_eq!(raw.len(), 6, "duplicates are stored once");
    let series = engine
        .series(
            "aq-1".into(),
            "pm10".into(),
            t0(),
            t0() + Duration::minutes(3),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(series.step_seconds, 60);
    let got: Vec<(u64, f64, f64, f64, f64)> = series
        .points
        .iter()
        .map(|p| (p.count, p.min, p.max, p.avg, p.last))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, 10.0, 20.0, 15.0, 20.0),
            (2, 30.0, 40.0, 35.0, 40.0),
            (2, 50.0, 60.0, 55.0, 60.0)
        ],
        "1-minute rollups, not double-counted"
    );
    assert!(engine
        .series(
            "aq-1".into(),
            "nope".into(),
            t0(),
            t0() + Duration::minutes(3)
        )
        .await
        .unwrap()
        .is_none());
    engine.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_a_reason_and_the_rest_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(1)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    let mut bad_place = station("nowhere");
    if let Item::Entity(e) = &mut bad_place {
        e.lat = Some(123.0);
    }
    let r = tx
        .ingest(
            "test",
            vec![
                station("aq-1"),
                bad_place,
                obs("aq-1", "pm25", 0, 12.0),
                obs("ghost", "pm25", 0, 12.0),
                obs("aq-1", "pm25", 1, f64::NAN),
                obs("aq-1", "pm25", 24 * 60, 12.0),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.accepted, 2);
    let reasons: Vec<(usize, &str)> = r
        .rejected
        .iter()
        .map(|x| (x.index, x.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].1.contains("not on Earth"), "{reasons:?}");
    assert!(reasons[1].1.contains("unknown entity"), "{reasons:?}");
    assert!(reasons[2].1.contains("finite"), "{reasons:?}");
    assert!(reasons[3].1.contains("future"), "{reasons:?}");
    assert_eq!(engine.health().rejected, 4);
    assert_eq!(engine.health().status, "ok");
    engine.shutdown().await;
}

#[tokio::test]
async fn a_backfill_newest_first_gets_the_nowcast_of_the_whole_window() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(13)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![station("aq-1")]).await.unwrap();
    // Twelve hours, newest first (as many servers page), the newest hour at 60, others 40.
    let items: Vec<Item> = (0..12)
        .rev()
        .map(|h| obs("aq-1", "pm25", h * 60, if h == 11 { 60.0 } else { 40.0 }))
        .collect();
    tx.ingest("test", items).await.unwrap();
    let e = engine.hub().entity("aq-1").unwrap();
    let nc = &e.latest["pm25_nowcast"];
    assert_eq!(nc.time, t0() + Duration::hours(11));
    // w = 40/60; (60 + 40·Σ_{i=1..11} w^i) / Σ_{i=0..11} w^i = 46.7
    assert!((nc.value - 46.7).abs() < 0.05, "{}", nc.value);
    // A late value for an hour already counted changes the window: given again at once.
    tx.ingest("test", vec![obs("aq-1", "pm25", 10 * 60 + 30, 400.0)])
        .await
        .unwrap();
    let e = engine.hub().entity("aq-1").unwrap();
    assert!(
        e.latest["pm25_nowcast"].value > 60.0,
        "{:?}",
        e.latest["pm25_nowcast"]
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_live_source_refuses_observations_older_than_its_max_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::days(8)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![station("aq-1")]).await.unwrap();
    let (done, rx) = tokio::sync::oneshot::channel();
    let mut ingest = Ingest::new(
        Arc::from("gateway"),
        vec![
            obs("aq-1", "pm25", 0, 12.0),
            obs("aq-1", "pm25", 2 * 24 * 60, 13.0),
        ],
    );
    ingest.max_age = Some(Duration::days(7));
    ingest.done = Some(done);
    tx.send(ingest).await.unwrap();
    let r = rx.await.unwrap();
    assert_eq!(r.accepted, 1);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].index, 0);
    assert!(
        r.rejected[0]
            .reason
            .contains("older than the source's max_age (7days)"),
        "{:?}",
        r.rejected
    );
    // An import (no max_age) takes history of any age.
    let r = tx
        .ingest("import", vec![obs("aq-1", "pm25", 0, 12.0)])
        .await
        .unwrap();
    assert_eq!(r.accepted, 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn pm25_stations_carry_nowcast_us_aqi_and_vn_aqi() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(13)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![station("aq-1")]).await.unwrap();
    // Twelve hours at 40 µg/m³ PM2.5 and 100 µg/m³ PM10, one value every 10 minutes.
    let mut items = Vec::new();
    for i in 0..72 {
        items.push(obs("aq-1", "pm25", i * 10, 40.0));
        items.push(obs("aq-1", "pm10", i * 10, 100.0));
    }
    tx.ingest("test", items).await.unwrap();
    let e = engine.hub().entity("aq-1").unwrap();
    assert_eq!(e.latest["pm25_nowcast"].value, 40.0);
    assert_eq!(e.latest["pm10_nowcast"].value, 100.0);
    // US AQI (2024) of 40.0 µg/m³: 101 + (150-101)/(55.4-35.5)·(40.0-35.5) = 112.
    assert_eq!(e.latest["aqi_us"].value, 112.0);
    // VN_AQI: PM2.5 40 → 80, PM10 100 → 75; the worse one.
    assert_eq!(e.latest["vn_aqi"].value, 80.0);
    engine.shutdown().await;

    // After a restart the windows resume from the store: one more value keeps the NowCast.
    let engine = start(dir.path(), &clock).await;
    engine
        .sender()
        .ingest("test", vec![obs("aq-1", "pm25", 12 * 60 + 5, 40.0)])
        .await
        .unwrap();
    let e = engine.hub().entity("aq-1").unwrap();
    assert_eq!(e.latest["pm25_nowcast"].value, 40.0);
    assert_eq!(
        e.latest["pm25_nowcast"].time,
        t0() + Duration::minutes(12 * 60 + 5)
    );
    engine.shutdown().await;
}

/// An answer never overtakes a batch that is still being written: when `tick` (or any
/// command with nothing to store) returns, everything sent before it is committed and
/// visible. CI once read the hub between an automatic tick's write and its publish.
#[tokio::test]
async fn an_answer_waits_for_the_batches_sent_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    engine
        .sender()
        .ingest("t", vec![station("aq-1")])
        .await
        .unwrap();
    for i in 0..200 {
        let value = f64::from(i);
        clock.set(t0() + Duration::minutes(i64::from(i)));
        let o = obs("aq-1", "pm25", i64::from(i), value);
        // Sent without waiting, so the pipeline takes it alone and starts writing it ...
        engine
            .sender()
            .send(Ingest::new(Arc::from("t"), vec![o]))
            .await
            .unwrap();
        tokio::task::yield_now().await;
        // ... and the tick that follows finds nothing of its own to store.
        engine.tick().await.unwrap();
        let e = engine.hub().entity("aq-1").unwrap();
        assert_eq!(e.latest["pm25"].value, value, "round {i}");
    }
    engine.shutdown().await;
}

/// The worst hour on the US Embassy Beijing record: the NowCast goes far above the top of the
/// US AQI scale, and the station's AQI follows to the top of the scale (500, "Beyond the AQI"
/// in AirNow's words, Hazardous) at the newest hour, instead of staying on the last, lower
/// value the index still covered.
#[tokio::test]
async fn beyond_the_index_the_aqi_is_the_top_of_the_scale_at_the_newest_hour() {
    // Hourly PM2.5 (µg/m³), 2013-01-12 05:00–20:00 Beijing time (UTC+8), 09:00 missing: the
    // UCI Machine Learning Repository's "Beijing PM2.5 Data" (US Embassy monitor; Liang et
    // al., 2015), file PRSA_data_2010.1.1-2014.12.31.csv, rows `No` 26574–26589, as published
    // in github.com/naogelzc/PM2.5-Data-Mining-in-Beijing (commit 060bbffd).
    const HOURS: [(i64, Option<f64>); 16] = [
        (5, Some(287.0)),
        (6, Some(275.0)),
        (7, Some(174.0)),
        (8, Some(278.0)),
        (9, None),
        (10, Some(319.0)),
        (11, Some(383.0)),
        (12, Some(472.0)),
        (13, Some(458.0)),
        (14, Some(529.0)),
        (15, Some(802.0)),
        (16, Some(845.0)),
        (17, Some(810.0)),
        (18, Some(776.0)),
        (19, Some(824.0)),
        (20, Some(886.0)),
    ];
    let at = |hour: i64| -> DateTime<Utc> {
        "2013-01-12T00:00:00+08:00"
            .parse::<DateTime<Utc>>()
            .unwrap()
            + Duration::hours(hour)
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(5)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![station("bj")]).await.unwrap();
    for (hour, value) in HOURS {
        clock.set(at(hour) + Duration::minutes(30));
        let Some(value) = value else { continue };
        let o = Item::Obs(Obs {
            entity: Arc::from("bj"),
            metric: Arc::from("pm25"),
            time: at(hour),
            value,
        });
        tx.ingest("test", vec![o]).await.unwrap();
    }
    let e = engine.hub().entity("bj").unwrap();
    let nowcast = &e.latest["pm25_nowcast"];
    assert_eq!((nowcast.time, nowcast.value), (at(20), 843.3));
    let aqi = &e.latest["aqi_us"];
    assert_eq!(
        (aqi.time, aqi.value),
        (at(20), 500.0),
        "the AQI of the newest hour, at the top of the scale"
    );
    engine.shutdown().await;
}

/// AirNow's missing marker (−999), a humidity over 100 % and a sign flipped by a unit
/// mix-up are not readings: refused to the dead letters with the range, and no rollup, KPI
/// or rule ever sees them.
#[tokio::test]
async fn impossible_values_go_to_the_dead_letters_never_into_a_series() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(1)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![station("aq-1")]).await.unwrap();
    let r = tx
        .ingest(
            "airnow",
            vec![
                obs("aq-1", "pm25", 0, -999.0),
                obs("aq-1", "pm25", 1, 42.0),
                obs("aq-1", "humidity", 1, 140.0),
                obs("aq-1", "temperature", 1, -273.0),
                obs("aq-1", "pm25", 2, -999.0),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.accepted, 1, "{r:?}");
    let reasons: Vec<&str> = r.rejected.iter().map(|x| x.reason.as_str()).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].contains("pm25 -999 is outside its plausible range -10 to 2000 µg/m³"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("humidity 140"), "{reasons:?}");
    assert!(reasons[2].contains("temperature -273"), "{reasons:?}");
    let raw = engine
        .reader()
        .raw("aq-1", "pm25", i64::MIN, i64::MAX, 100)
        .unwrap();
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(raw[0].1, 42.0);
    assert!(engine
        .reader()
        .raw("aq-1", "humidity", i64::MIN, i64::MAX, 100)
        .unwrap()
        .is_empty());
    // One dead letter per cause: the two markers are one.
    let letters = engine
        .dead_letters(Some("airnow".into()), None, 100)
        .await
        .unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    let markers = letters
        .iter()
        .find(|l| l.reason.contains("pm25 -999"))
        .expect("the markers' dead letter");
    assert_eq!(markers.count, 2);
    engine.shutdown().await;
}

/// A range set in the configuration replaces the default's bound (a gauge whose datum puts
/// low water below zero; a cold-room thermometer).
#[tokio::test]
async fn the_configuration_sets_plausible_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(1)));
    let mut c = config(dir.path());
    let parsed = Config::parse(
        "[metrics.water_level]\nmin = -2.0\nmax = 12.0\n[metrics.temperature]\nmin = -90.0\n",
    )
    .unwrap();
    c.metrics = parsed.metrics;
    let engine = Engine::start_with_clock(c, clock.clone()).await.unwrap();
    let tx = engine.sender();
    let r = tx
        .ingest(
            "test",
            vec![
                gauge("g-1"),
                obs("g-1", "water_level", 0, -1.5),
                obs("g-1", "water_level", 1, 99.0),
                obs("g-1", "temperature", 1, -80.0),
                obs("g-1", "temperature", 2, 61.0),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.accepted, 3, "{r:?}");
    assert_eq!(r.rejected.len(), 2, "{r:?}");
    assert!(r.rejected[0].reason.contains("-2 to 12"), "{r:?}");
    assert!(r.rejected[1].reason.contains("-90 to 60"), "{r:?}");
    assert!(Config::parse("[metrics.pm25]\nmin = 5.0\nmax = 1.0\n").is_err());
    // A min alone above the default max (2000 µg/m³) leaves no range.
    let e = Config::parse("[metrics.pm25]\nmin = 3000.0\n").unwrap_err();
    assert!(e.to_string().contains("min 3000, max 2000"), "{e}");
    assert!(Config::parse("[metrics.pm25]\nmin = 3000.0\nmax = 5000.0\n").is_ok());
    assert!(Config::parse("[metrics.pm25]\nlow = 5.0\n").is_err());
    engine.shutdown().await;
}

/// History (here a gauge's month-old flood, imported) is stored and shown, but pages no
/// one: no alert opens for it, and it leaves the live rules as they were; the same reading
/// now opens one at once.
#[tokio::test]
async fn history_is_stored_but_pages_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(1)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![gauge("g-1"), station("aq-1")])
        .await
        .unwrap();
    let month = 30 * 24 * 60;
    let mut items: Vec<Item> = (0..200)
        .map(|m| obs("g-1", "water_level", m - month, 4.5))
        .collect();
    // PM2.5 above the rule's threshold for hours, three hours ago.
    items.extend((0..120).map(|m| obs("aq-1", "pm25", m - 180 - 120, 400.0)));
    let n = items.len();
    let r = tx.ingest("import", items).await.unwrap();
    assert_eq!((r.accepted, r.history), (n, n), "{r:?}");
    assert!(
        engine.hub().open_alerts().is_empty(),
        "history pages no one"
    );
    // Nor does it say the device is online now.
    let status = |id: &str| engine.hub().entity(id).unwrap().status;
    assert_eq!(status("g-1"), ioc_model::EntityStatus::Unknown);
    let stored = engine
        .reader()
        .raw("g-1", "water_level", i64::MIN, i64::MAX, 1000)
        .unwrap();
    assert_eq!(stored.len(), 200, "history is stored");
    // The tick goes on: a rule's `for` does not complete on history.
    clock.advance(Duration::minutes(15));
    engine.tick().await.unwrap();
    assert!(engine.hub().open_alerts().is_empty());

    // An hour ago is live (under [alerts] history_after, 2 h by default): it pages.
    let r = tx
        .ingest("test", vec![obs("g-1", "water_level", 0, 4.5)])
        .await
        .unwrap();
    assert_eq!((r.accepted, r.history), (1, 0));
    assert_eq!(status("g-1"), ioc_model::EntityStatus::Online);
    let open = engine.hub().open_alerts();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].rule, "level");
    engine.shutdown().await;
}

/// A reading that comes late into an hour already given changes that hour's NowCast: the
/// value stored at the same time is replaced, not kept stale beside a dropped newer one, and
/// the hour's and day's rollups count it once, with the new value.
#[tokio::test]
async fn a_late_reading_restates_the_hour_and_its_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(14)));
    let engine = start(dir.path(), &clock).await;
    let tx = engine.sender();
    tx.ingest("test", vec![station("aq-1")]).await.unwrap();
    // Hours 0–12 at 20 µg/m³, read at half past.
    let items = (0..13)
        .map(|h| obs("aq-1", "pm25", h * 60 + 30, 20.0))
        .collect();
    tx.ingest("test", items).await.unwrap();
    let at = (t0() + Duration::minutes(12 * 60 + 30)).timestamp_millis();
    let nowcast = |engine: &Engine| {
        engine
            .reader()
            .raw("aq-1", "pm25_nowcast", at, at + 1, 10)
            .unwrap()
    };
    assert_eq!(nowcast(&engine), vec![(at, 20.0)]);
    // A reading of 80 at 12:10 arrives late: hour 12 averages 50.
    let r = tx
        .ingest("test", vec![obs("aq-1", "pm25", 12 * 60 + 10, 80.0)])
        .await
        .unwrap();
    assert_eq!(r.accepted, 1, "{r:?}");
    let mut window = vec![Some(50.0)];
    window.extend([Some(20.0); 11]);
    let expected = ioc_engine::aqi::nowcast(&window, ioc_engine::aqi::Pollutant::Pm25).unwrap();
    assert!(expected > 30.0, "{expected}");
    assert_eq!(nowcast(&engine), vec![(at, expected)]);
    let from = (t0() + Duration::hours(12)).timestamp_millis();
    for step in [60, 3600, 86_400] {
        let points = engine
            .reader()
            .series("aq-1", "pm25_nowcast", from, from + 3_600_000, step)
            .unwrap()
            .unwrap();
        let p = points.iter().find(|p| p.count > 0).expect("a bucket");
        assert_eq!(
            p.count,
            points.iter().map(|p| p.count).sum::<u64>(),
            "{points:?}"
        );
        if step < 86_400 {
            assert_eq!(
                (p.count, p.max, p.last),
                (1, expected, expected),
                "step {step}"
            );
        } else {
            assert_eq!(p.last, expected, "{points:?}");
        }
    }
    // The hourly and daily rollups, rebuilt from the minutes, hold what the raw values
    // hold: every NowCast once, the replaced one with its new value.
    let db = ioc_engine::store::connect_path(engine.store()).unwrap();
    let totals = |table: &str, count: &str, sum: &str| -> (i64, f64) {
        db.query_row(
            &format!(
                "SELECT CAST({count} AS BIGINT), {sum} FROM {table} t
                 JOIN series s ON s.id = t.series WHERE s.metric = 'pm25_nowcast'"
            ),
            ioc_engine::store::db::params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let raw = totals("observations", "count(*)", "sum(value)");
    assert!(raw.0 >= 2, "{raw:?}");
    for table in ["rollup_1m", "rollup_1h", "rollup_1d"] {
        let rolled = totals(table, "sum(count)", "sum(sum)");
        assert_eq!(rolled.0, raw.0, "{table}");
        assert!(
            (rolled.1 - raw.1).abs() < 1e-9,
            "{table}: {rolled:?} {raw:?}"
        );
    }
    engine.shutdown().await;
}
