//! Every rule feature through the real pipeline, on a clock the test moves: hysteresis,
//! sliding windows, no-data, geofences (unit and polygon), hours and days, severity from the
//! value, escalation and shelving timers across a restart. Time-driven checks are run with
//! `Engine::tick`, not by sleeping.

#[path = "common/store.rs"]
mod test_store;

use chrono::{DateTime, Duration, Utc};
use ioc_engine::alerts::AlertAction;
use ioc_engine::{Config, Engine, Item, ManualClock, Obs};
use ioc_model::{Alert, AlertEventKind, AlertState, Domain, Entity, Severity};
use std::path::Path;
use std::sync::Arc;

/// Thursday 26 Nov 2026, 03:00 UTC = 10:00 in Nghệ An.
fn t0() -> DateTime<Utc> {
    "2026-11-26T03:00:00Z".parse().unwrap()
}

fn config(dir: &Path, rules: &str) -> Config {
    let mut c = Config::parse(rules).unwrap().without_demo();
    c.paths.data = Some(dir.to_owned());
    c.store.url = test_store::url_for(dir);
    c
}

fn station(id: &str, unit: &str, lon: f64, lat: f64) -> Item {
    let e = Entity::new(
        id,
        "AirQualityStation",
        &format!("Trạm {id}"),
        Domain::Environment,
    )
    .at(lon, lat)
    .in_unit(unit, unit);
    Item::Entity(Box::new(e))
}

fn obs(entity: &str, metric: &str, minute: i64, value: f64) -> Item {
    Item::Obs(Obs {
        entity: Arc::from(entity),
        metric: Arc::from(metric),
        time: t0() + Duration::minutes(minute),
        value,
    })
}

async fn start(dir: &Path, clock: &Arc<ManualClock>, rules: &str) -> Engine {
    let e = Engine::start_with_clock(config(dir, rules), clock.clone())
        .await
        .unwrap();
    assert!(
        e.rule_errors().await.is_empty(),
        "{:?}",
        e.rule_errors().await
    );
    e
}

fn open(engine: &Engine, entity: &str) -> Option<Alert> {
    engine
        .hub()
        .open_alerts()
        .into_iter()
        .find(|a| a.entity.as_deref() == Some(entity))
}

async fn feed(engine: &Engine, clock: &ManualClock, items: Vec<Item>) {
    if let Some(Item::Obs(o)) = items.last() {
        clock.set(o.time);
    }
    engine.sender().ingest("t", items).await.unwrap();
}

#[tokio::test]
async fn hysteresis_raises_at_one_level_and_clears_at_another() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(
        dir.path(),
        &clock,
        r#"
        [[rule]]
        name = "pm25"
        when = "metric == 'pm25' && value > 150.0"
        clear_when = "metric == 'pm25' && value < 100.0"
        severity = "major"
        message = "PM2.5 {value}"
        "#,
    )
    .await;
    feed(&engine, &clock, vec![station("a", "16681", 105.68, 18.67)]).await;
    feed(&engine, &clock, vec![obs("a", "pm25", 0, 160.0)]).await;
    assert!(open(&engine, "a").unwrap().active);
    // Below the raise level but above the clear level: still active.
    feed(&engine, &clock, vec![obs("a", "pm25", 1, 120.0)]).await;
    assert!(open(&engine, "a").unwrap().active);
    feed(&engine, &clock, vec![obs("a", "pm25", 2, 90.0)]).await;
    assert!(!open(&engine, "a").unwrap().active, "cleared under 100");
    // And a new crossing of 150 raises it again (counted as a repeat).
    feed(&engine, &clock, vec![obs("a", "pm25", 3, 155.0)]).await;
    let a = open(&engine, "a").unwrap();
    assert!(a.active);
    assert_eq!(a.count, 2);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_sliding_window_sums_the_last_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(
        dir.path(),
        &clock,
        r#"
        [[rule]]
        name = "rain-3h"
        when = "metric == 'rain_1h' && window.sum >= 100.0"
        window = "30m"
        severity = "warning"
        message = "Mưa tích lũy {value}"
        "#,
    )
    .await;
    feed(&engine, &clock, vec![station("r", "16681", 105.6, 18.7)]).await;
    // 40 + 40 spread over 40 minutes: never 100 within 30.
    feed(&engine, &clock, vec![obs("r", "rain_1h", 0, 40.0)]).await;
    feed(&engine, &clock, vec![obs("r", "rain_1h", 40, 40.0)]).await;
    assert!(open(&engine, "r").is_none());
    // Then 30 + 35 within the window of the second 40: 105.
    feed(&engine, &clock, vec![obs("r", "rain_1h", 50, 30.0)]).await;
    assert!(open(&engine, "r").is_none());
    feed(&engine, &clock, vec![obs("r", "rain_1h", 60, 35.0)]).await;
    assert!(
        open(&engine, "r").is_some(),
        "40 + 30 + 35 within 30 minutes"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn silence_raises_a_no_data_alert_and_the_next_value_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let rules = r#"
        [[rule]]
        name = "aq-silent"
        when = "metric == 'pm25' && entity.type == 'AirQualityStation'"
        no_data = "30m"
        severity = "warning"
        message = "Không có số liệu PM2.5 {value} phút"
        "#;
    let engine = start(dir.path(), &clock, rules).await;
    feed(&engine, &clock, vec![station("s", "16681", 105.6, 18.7)]).await;
    feed(&engine, &clock, vec![obs("s", "pm25", 0, 20.0)]).await;
    clock.set(t0() + Duration::minutes(29));
    engine.tick().await.unwrap();
    assert!(open(&engine, "s").is_none());
    clock.set(t0() + Duration::minutes(31));
    engine.tick().await.unwrap();
    let a = open(&engine, "s").expect("raised after 30 minutes of silence");
    assert_eq!(a.value, Some(31.0));
    engine.shutdown().await;

    // Still raised after a restart; the next value clears it.
    let engine = start(dir.path(), &clock, rules).await;
    assert!(open(&engine, "s").unwrap().active);
    feed(&engine, &clock, vec![obs("s", "pm25", 32, 21.0)]).await;
    assert!(!open(&engine, "s").unwrap().active);
    engine.shutdown().await;
}

#[tokio::test]
async fn geofences_hours_and_levels() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(
        dir.path(),
        &clock,
        r#"
        [[rule]]
        name = "vinh-only"
        when = "metric == 'pm25' && value > 100.0"
        area = { unit = "16681" }
        severity = "warning"
        message = "Vinh"
        levels = [{ above = 150.0, severity = "major" }, { above = 250.0, severity = "critical" }]

        [[rule]]
        name = "outside-coast"
        when = "metric == 'noise' && value > 70.0"
        area = { polygon = [[105.70, 18.78], [105.76, 18.78], [105.76, 18.84], [105.70, 18.84]], outside = true }
        severity = "warning"
        message = "Ồn ngoài vùng biển"

        [[rule]]
        name = "night-traffic"
        when = "metric == 'speed' && value > 80.0"
        active_hours = "22:00-05:00"
        severity = "major"
        message = "Quá tốc độ ban đêm"

        [[rule]]
        name = "weekend"
        when = "metric == 'visitors' && value > 1000.0"
        active_days = ["sat", "sun"]
        severity = "info"
        message = "Đông khách"
        "#,
    )
    .await;
    feed(
        &engine,
        &clock,
        vec![
            station("vinh", "16681", 105.68, 18.67),
            station("cua-lo", "16684", 105.72, 18.80),
        ],
    )
    .await;
    feed(
        &engine,
        &clock,
        vec![
            obs("vinh", "pm25", 0, 260.0),
            obs("cua-lo", "pm25", 0, 260.0),
        ],
    )
    .await;
    let a = open(&engine, "vinh").unwrap();
    assert_eq!(a.severity, Severity::Critical, "severity from the value");
    assert!(open(&engine, "cua-lo").is_none(), "outside the rule's unit");

    // Inside the coastal polygon: not alerted; Vinh is outside it: alerted.
    feed(
        &engine,
        &clock,
        vec![
            obs("cua-lo", "noise", 1, 90.0),
            obs("vinh", "noise", 1, 90.0),
        ],
    )
    .await;
    let noisy: Vec<String> = engine
        .hub()
        .open_alerts()
        .into_iter()
        .filter(|a| a.rule == "outside-coast")
        .filter_map(|a| a.entity)
        .collect();
    assert_eq!(noisy, ["vinh"]);

    // 10:00 local on a Thursday: neither the night rule nor the weekend rule is in force.
    feed(
        &engine,
        &clock,
        vec![
            obs("cua-lo", "speed", 2, 95.0),
            obs("cua-lo", "visitors", 2, 5000.0),
        ],
    )
    .await;
    assert!(engine
        .hub()
        .open_alerts()
        .iter()
        .all(|a| a.rule != "night-traffic" && a.rule != "weekend"));
    // 23:00 local (16:00 UTC): the night rule is.
    feed(&engine, &clock, vec![obs("cua-lo", "speed", 13 * 60, 95.0)]).await;
    assert!(engine
        .hub()
        .open_alerts()
        .iter()
        .any(|a| a.rule == "night-traffic"));
    // Saturday 28 Nov, 10:00 local: the weekend rule is.
    feed(
        &engine,
        &clock,
        vec![obs("cua-lo", "visitors", 2 * 24 * 60, 5000.0)],
    )
    .await;
    assert!(engine
        .hub()
        .open_alerts()
        .iter()
        .any(|a| a.rule == "weekend"));
    engine.shutdown().await;
}

#[tokio::test]
async fn unacknowledged_alerts_escalate_and_shelved_ones_return_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let rules = r#"
        [alerts]
        escalate_after = "10m"
        escalate_max = 2

        [[rule]]
        name = "pm25"
        when = "metric == 'pm25' && value > 150.0"
        severity = "warning"
        message = "PM2.5 {value}"
        "#;
    let engine = start(dir.path(), &clock, rules).await;
    feed(
        &engine,
        &clock,
        vec![
            station("a", "16681", 105.68, 18.67),
            station("b", "16681", 105.69, 18.68),
            obs("a", "pm25", 0, 160.0),
            obs("b", "pm25", 0, 160.0),
        ],
    )
    .await;
    let b = open(&engine, "b").unwrap().id;
    engine
        .alert_act(
            b,
            AlertAction::Shelve {
                until: t0() + Duration::minutes(30),
            },
            "lan",
            Some("chờ đội kỹ thuật".into()),
            None,
        )
        .await
        .unwrap();
    clock.set(t0() + Duration::minutes(10));
    engine.tick().await.unwrap();
    let a = open(&engine, "a").unwrap();
    assert_eq!((a.severity, a.escalation), (Severity::Major, 1));
    assert_eq!(open(&engine, "b").unwrap().state, AlertState::Shelved);
    engine.shutdown().await;

    // The timers are in the store: after a restart they carry on.
    clock.set(t0() + Duration::minutes(31));
    let engine = start(dir.path(), &clock, rules).await;
    engine.tick().await.unwrap();
    let a = open(&engine, "a").unwrap();
    assert_eq!((a.severity, a.escalation), (Severity::Critical, 2));
    let b = open(&engine, "b").unwrap();
    assert_eq!(b.state, AlertState::New, "back from the shelf");
    let timeline = engine.alert(a.id).await.unwrap().unwrap().events;
    let escalations = timeline
        .iter()
        .filter(|e| e.kind == AlertEventKind::Escalated)
        .count();
    assert_eq!(escalations, 2);
    // An escalation never goes past its maximum.
    clock.set(t0() + Duration::hours(5));
    engine.tick().await.unwrap();
    assert_eq!(open(&engine, "a").unwrap().escalation, 2);
    engine.shutdown().await;
}

#[tokio::test]
async fn bad_rules_are_refused_with_their_place_and_the_rest_run() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = Engine::start_with_clock(
        config(
            dir.path(),
            r#"
            [[rule]]
            name = "bad-cel"
            when = "metric == 'pm25' &&\n value >"
            severity = "major"
            message = "x"

            [[rule]]
            name = "window-without-window"
            when = "window.avg > 1.0"
            severity = "major"
            message = "x"

            [[rule]]
            name = "bad-hours"
            when = "value > 1.0"
            active_hours = "late"
            severity = "major"
            message = "x"

            [[rule]]
            name = "good"
            when = "metric == 'pm25' && value > 1.0"
            severity = "major"
            message = "x"
            "#,
        ),
        clock.clone(),
    )
    .await
    .unwrap();
    let errors = engine.rule_errors().await;
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!((errors[0].rule.as_str(), errors[0].line), ("bad-cel", 2));
    assert!(
        errors[1].message.contains("`window` needs"),
        "{:?}",
        errors[1]
    );
    assert!(
        errors[2].message.contains("active_hours"),
        "{:?}",
        errors[2]
    );
    feed(&engine, &clock, vec![station("a", "16681", 105.6, 18.7)]).await;
    feed(&engine, &clock, vec![obs("a", "pm25", 0, 5.0)]).await;
    assert!(open(&engine, "a").is_some(), "the good rule runs");
    engine.shutdown().await;
}
