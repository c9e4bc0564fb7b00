//! Rule management through a real engine: the demo rules seeded into the rules folder, a
//! rule added from the rules screen taking effect at once, a file edited on disk picked up by
//! the hot reload (and a broken file leaving the other rules running), removal clearing the
//! rule's alerts, every change in the audit log, and a backtest that fires exactly when the
//! live rule did.

#[path = "common/store.rs"]
mod test_store;

use chrono::{DateTime, Duration, Utc};
use ioc_engine::{Config, Engine, Item, ManualClock, Obs};
use ioc_model::{Alert, Domain, Entity};
use std::path::Path;
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    "2026-11-26T03:00:00Z".parse().unwrap()
}

fn station(id: &str) -> Item {
    let e = Entity::new(id, "WaterLevelGauge", &format!("Trạm {id}"), Domain::Water)
        .at(105.68, 18.67)
        .in_unit("16681", "Vinh");
    Item::Entity(Box::new(e))
}

fn obs(entity: &str, minute: i64, value: f64) -> Item {
    Item::Obs(Obs {
        entity: Arc::from(entity),
        metric: Arc::from("water_level"),
        time: t0() + Duration::minutes(minute),
        value,
    })
}

async fn feed(engine: &Engine, clock: &ManualClock, items: Vec<Item>) {
    if let Some(Item::Obs(o)) = items.last() {
        clock.set(o.time);
    }
    engine.sender().ingest("t", items).await.unwrap();
}

fn alert(engine: &Engine, rule: &str, entity: &str) -> Option<Alert> {
    engine
        .hub()
        .open_alerts()
        .into_iter()
        .find(|a| a.rule == rule && a.entity.as_deref() == Some(entity))
}

async fn start(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    let mut c = Config::parse("").unwrap().without_demo();
    c.paths.data = Some(dir.to_owned());
    c.store.url = test_store::url_for(dir);
    Engine::start_with_clock(c, clock.clone()).await.unwrap()
}

const RULE: &str = r#"
name = "river-high"
when = "metric == 'water_level' && value > 5.0"
for = "10m"
severity = "major"
message = "Mực nước {value} m"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_seeded_edited_reloaded_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    let list = engine.rules().await;
    assert!(list.rules.len() >= 3, "demo rules are seeded");
    assert!(list
        .rules
        .iter()
        .all(|r| r.editable && r.origin == "nghe-an.toml"));
    assert!(list.problems.is_empty(), "{:?}", list.problems);

    // A rule added from the screen runs at once.
    let saved = engine.put_rule(RULE, None, "admin").await.unwrap().unwrap();
    assert!(saved.ok);
    feed(&engine, &clock, vec![station("g")]).await;
    feed(&engine, &clock, vec![obs("g", 0, 6.0)]).await;
    feed(&engine, &clock, vec![obs("g", 11, 6.5)]).await;
    let a = alert(&engine, "river-high", "g").expect("raised after 10 minutes");
    assert!(a.active);

    // The same name again is refused with where; a broken CEL too.
    let refused = engine
        .put_rule(RULE, None, "admin")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.problems[0].line, 2, "{:?}", refused.problems);
    let broken = RULE.replace("value > 5.0", "value >");
    let refused = engine
        .put_rule(&broken, Some("river-high"), "admin")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.problems[0].line, 3, "{:?}", refused.problems);

    // Edited on disk: the hot reload raises the threshold, and the next value clears it.
    let file = dir.path().join("rules").join("console.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("value > 5.0", "value > 50.0")).unwrap();
    let mut reloaded = false;
    for _ in 0..50 {
        let list = engine.rules().await;
        if list
            .rules
            .iter()
            .any(|r| r.name == "river-high" && r.when.contains("50.0"))
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(reloaded, "the file change is picked up");
    feed(&engine, &clock, vec![obs("g", 12, 7.0)]).await;
    assert!(
        !alert(&engine, "river-high", "g").unwrap().active,
        "cleared"
    );

    // A broken file: reported, and its last good rules keep running.
    std::fs::write(&file, "[[rule]]\nname = \"river-high\"\nwhen = \n").unwrap();
    let mut reported = None;
    for _ in 0..50 {
        let list = engine.rules().await;
        if let Some(p) = list.problems.iter().find(|p| p.origin == "console.toml") {
            reported = Some((p.clone(), list.rules.len()));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (problem, _) = reported.expect("the broken file is reported");
    assert_eq!(problem.line, 3, "{problem:?}");
    assert!(engine
        .rules()
        .await
        .rules
        .iter()
        .any(|r| r.name == "river-high"));

    // Fixed and raised again; then removed: its active alert clears.
    std::fs::write(&file, format!("[[rule]]{RULE}")).unwrap();
    engine
        .put_rule(RULE, Some("river-high"), "admin")
        .await
        .unwrap()
        .unwrap();
    feed(&engine, &clock, vec![obs("g", 30, 6.0)]).await;
    feed(&engine, &clock, vec![obs("g", 41, 6.0)]).await;
    assert!(alert(&engine, "river-high", "g").unwrap().active);
    engine.delete_rule("river-high", "admin").await.unwrap();
    assert!(!alert(&engine, "river-high", "g").unwrap().active);
    assert!(!engine
        .rules()
        .await
        .rules
        .iter()
        .any(|r| r.name == "river-high"));

    let audit = engine.audit(None, 100).await.unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .filter(|a| a.entry.target == "rule:river-high")
        .map(|a| a.entry.action.as_str())
        .collect();
    assert_eq!(
        actions,
        ["rule.delete", "rule.put", "rule.put"],
        "newest first"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_fires_when_the_live_rule_did() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    engine.put_rule(RULE, None, "admin").await.unwrap().unwrap();
    feed(&engine, &clock, vec![station("g"), station("h")]).await;
    // g: above 5 from minute 10 to 40 (raised at 20, cleared at 40); h never.
    for m in 0..60 {
        let g = if (10..40).contains(&m) { 6.0 } else { 4.0 };
        feed(&engine, &clock, vec![obs("g", m, g), obs("h", m, 1.0)]).await;
    }
    let live = alert(&engine, "river-high", "g").unwrap();
    assert!(!live.active);
    let r = engine
        .backtest(RULE, t0(), t0() + Duration::minutes(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.observations, 120);
    assert!(!r.truncated);
    assert_eq!(r.firings.len(), 1, "{:?}", r.firings);
    let f = &r.firings[0];
    assert_eq!(f.entity, "g");
    assert_eq!(f.raised_at, live.raised_at, "the same moment as live");
    assert_eq!(f.raised_at, t0() + Duration::minutes(20));
    assert_eq!(f.cleared_at, Some(t0() + Duration::minutes(40)));
    assert_eq!(f.peak, 6.0);

    // A lower threshold over the same history: both stations, and an unfinished firing.
    let lower = RULE
        .replace("value > 5.0", "value > 0.5")
        .replace("10m", "0s");
    let r = engine
        .backtest(&lower, t0(), t0() + Duration::minutes(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.firings.len(), 2);
    assert!(r.firings.iter().all(|f| f.cleared_at.is_none()));
    // A rule that does not compile says where.
    let bad = engine
        .backtest(
            "name = \"x\"\nwhen = \"value >\"\nseverity = \"major\"\nmessage = \"m\"\n",
            t0(),
            t0() + Duration::minutes(60),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(bad.problems[0].line, 2);
    engine.shutdown().await;
}

/// A `for` that ends between two sparse values. The live pipeline, its clock moving minute by
/// minute with a tick each minute as the real one does: `g10` (a value every 10 minutes, above
/// the threshold from minute 0) has held for 15 minutes at minute 15, while its last value (of
/// minute 10) is still fresh, so it is raised then, between its values; `g20` (every 20
/// minutes) has no fresh value at minute 15 (its last is older than the evaluator's 10 stale
/// minutes), so it is raised by its value of minute 20, having held for 20. Both clear with the
/// value under the threshold at minute 60. The backtest of the same stored values must say
/// exactly the same, station by station.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_for_ending_between_sparse_values_fires_in_the_backtest_as_it_did_live() {
    const SPARSE: &str = r#"
name = "river-high-15"
when = "metric == 'water_level' && value > 5.0"
for = "15m"
severity = "major"
message = "Mực nước {value} m"
"#;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    engine
        .put_rule(SPARSE, None, "admin")
        .await
        .unwrap()
        .unwrap();
    engine
        .sender()
        .ingest("t", vec![station("g10"), station("g20")])
        .await
        .unwrap();
    for m in 0..=80 {
        clock.set(t0() + Duration::minutes(m));
        let level = if m < 60 { 6.0 } else { 4.0 };
        let mut items = Vec::new();
        if m % 10 == 0 {
            items.push(obs("g10", m, level));
        }
        if m % 20 == 0 {
            items.push(obs("g20", m, level));
        }
        if !items.is_empty() {
            let r = engine.sender().ingest("t", items).await.unwrap();
            assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        }
        engine.tick().await.unwrap();
    }
    let live = |entity: &str| {
        let a = alert(&engine, "river-high-15", entity)
            .unwrap_or_else(|| panic!("{entity}: raised live"));
        (a.raised_at, a.cleared_at)
    };
    let minute = |m: i64| t0() + Duration::minutes(m);
    assert_eq!(
        live("g10"),
        (minute(15), Some(minute(60))),
        "live, every 10 min: raised when the 15 minutes ended"
    );
    assert_eq!(
        live("g20"),
        (minute(20), Some(minute(60))),
        "live, every 20 min: raised by the value of minute 20"
    );

    let r = engine
        .backtest(SPARSE, t0(), t0() + Duration::minutes(81))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.observations, 9 + 5, "{r:?}");
    let mut back: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> = r
        .firings
        .iter()
        .map(|f| (f.entity.clone(), f.raised_at, f.cleared_at))
        .collect();
    back.sort();
    let (g10, g20) = (live("g10"), live("g20"));
    assert_eq!(
        back,
        vec![
            ("g10".to_string(), g10.0, g10.1),
            ("g20".to_string(), g20.0, g20.1)
        ],
        "the backtest against what the live pipeline did"
    );
    engine.shutdown().await;
}
