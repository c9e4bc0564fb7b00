//! Two engines exchanging their operation logs by hand (what the sync link carries): a
//! commune OC's alert reaches the province, both sides act on it while apart, and after the
//! exchange both hold the same alert — the state one rule gives, both acts on its timeline
//! with who and where — across a restart, without the province's timers touching it.

#[path = "common/store.rs"]
mod test_store;

use chrono::{DateTime, Duration, Utc};
use ioc_engine::alerts::AlertAction;
use ioc_engine::sync::OpRecord;
use ioc_engine::{Config, Engine, Item, ManualClock, Obs};
use ioc_model::{Alert, AlertEventKind, AlertState, Domain, Entity};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    "2026-11-26T03:00:00Z".parse().unwrap()
}

const RULES: &str = r#"
[alerts]
escalate_after = "15m"

[[rule]]
name = "water-alarm-3"
when = "metric == 'water_level' && value >= 5.0"
severity = "critical"
category = "flood"
message = "Mực nước {value} m vượt báo động III"
"#;

async fn start(dir: &Path, node: &str, clock: &Arc<ManualClock>) -> Engine {
    let mut c = Config::parse(RULES).unwrap().without_demo();
    c.paths.data = Some(dir.to_owned());
    c.store.url = test_store::url_for(dir);
    c.node.name = Some(node.into());
    Engine::start_with_clock(c, clock.clone()).await.unwrap()
}

/// What `from` holds that `to` lacks (by `to`'s own log), as the link would carry it.
async fn exchange(from: &Engine, to: &Engine) -> usize {
    let held = to.reader().sync_state().unwrap().vector;
    let origins = from.reader().sync_state().unwrap().vector;
    let mut ops: Vec<OpRecord> = Vec::new();
    for origin in origins.keys() {
        let after = if origin == to.node() {
            u64::MAX
        } else {
            held.get(origin).copied().unwrap_or(0)
        };
        if after < u64::MAX {
            ops.extend(from.reader().ops_after(origin, after, 10_000).unwrap());
        }
    }
    let n = ops.len();
    to.merge(ops, HashMap::new()).await.unwrap();
    n
}

fn alerts_of(engine: &Engine) -> Vec<Alert> {
    let c = ioc_engine::store::connect_path(engine.store()).unwrap();
    let mut stmt = c.prepare("SELECT id FROM alerts ORDER BY id").unwrap();
    let ids: Vec<i64> = stmt
        .query_map(ioc_engine::store::db::params![], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let rt = tokio::runtime::Handle::current();
    ids.into_iter()
        .map(|id| {
            tokio::task::block_in_place(|| rt.block_on(engine.alert(id)))
                .unwrap()
                .unwrap()
        })
        .collect()
}

/// The alert without its local id: what must be equal on every node.
fn shared(mut a: Alert) -> Alert {
    a.id = 0;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_acknowledged_at_the_oc_and_closed_at_the_ioc_ends_closed_on_both() {
    let (dir_ioc, dir_oc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock_ioc = Arc::new(ManualClock::new(t0()));
    // The commune's clock is ten minutes fast.
    let clock_oc = Arc::new(ManualClock::new(t0() + Duration::minutes(10)));
    let ioc = start(dir_ioc.path(), "ioc-nghe-an", &clock_ioc).await;
    let oc = start(dir_oc.path(), "oc-nam-dan", &clock_oc).await;

    // The OC's gauge crosses alarm level III: the OC's rule raises an alert.
    let gauge = Entity::new(
        "wl-nam-dan",
        "WaterLevelGauge",
        "Trạm Nam Đàn",
        Domain::Water,
    )
    .at(105.49, 18.70)
    .in_unit("17935", "Xã Nam Đàn");
    let r = oc
        .sender()
        .ingest(
            "t",
            vec![
                Item::Entity(Box::new(gauge)),
                Item::Obs(Obs {
                    entity: Arc::from("wl-nam-dan"),
                    metric: Arc::from("water_level"),
                    time: t0() + Duration::minutes(9),
                    value: 5.4,
                }),
            ],
        )
        .await
        .unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let at_oc = alerts_of(&oc);
    assert_eq!(at_oc.len(), 1, "the OC raised one alert");
    let oc_id = at_oc[0].id;

    // The link carries it up: the IOC holds it as the OC's.
    assert!(exchange(&oc, &ioc).await >= 1);
    let at_ioc = alerts_of(&ioc);
    assert_eq!(at_ioc.len(), 1);
    let ioc_id = at_ioc[0].id;
    assert_eq!(shared(at_ioc[0].clone()), shared(at_oc[0].clone()));
    assert_eq!(exchange(&oc, &ioc).await, 0, "nothing new the second time");

    // The link is cut. The IOC's escalation timer passes first: an alert of the OC's is the
    // OC's to escalate. Then the IOC resolves and closes it; the OC acknowledges it.
    clock_ioc.advance(Duration::minutes(30));
    ioc.tick().await.unwrap();
    assert_eq!(ioc.alert(ioc_id).await.unwrap().unwrap().escalation, 0);
    for action in [AlertAction::Resolve, AlertAction::Close] {
        ioc.alert_act(ioc_id, action, "lanh-dao", None, None)
            .await
            .unwrap();
    }
    clock_oc.advance(Duration::minutes(1));
    oc.alert_act(
        oc_id,
        AlertAction::Ack,
        "nv-xa",
        Some("đã cử người".into()),
        None,
    )
    .await
    .unwrap();

    // The link is back: both ways, each twice (a lost answer sends again).
    for _ in 0..2 {
        exchange(&ioc, &oc).await;
        exchange(&oc, &ioc).await;
    }
    let (a_ioc, a_oc) = (
        ioc.alert(ioc_id).await.unwrap().unwrap(),
        oc.alert(oc_id).await.unwrap().unwrap(),
    );
    assert_eq!(
        shared(a_ioc.clone()),
        shared(a_oc.clone()),
        "one state on both"
    );
    assert_eq!(a_ioc.state, AlertState::Closed);
    assert_eq!(
        a_ioc.escalation, 0,
        "the IOC did not escalate the OC's alert"
    );
    let acts: Vec<(&str, AlertEventKind, Option<&str>)> = a_ioc
        .events
        .iter()
        .filter(|e| e.actor != "system")
        .map(|e| (e.actor.as_str(), e.kind, e.node.as_deref()))
        .collect();
    // Hybrid time keeps what each node had seen, not what its clock said: the OC's
    // acknowledgement (its clock 10 minutes fast) still comes after it was raised, and the
    // acts each side made apart both stand on the timeline, once, with where.
    assert_eq!(
        acts.iter().filter(|a| a.0 == "lanh-dao").count(),
        2,
        "{acts:?}"
    );
    assert_eq!(
        acts.iter().filter(|a| a.0 == "nv-xa").count(),
        1,
        "{acts:?}"
    );
    assert!(acts.contains(&("lanh-dao", AlertEventKind::Transition, Some("ioc-nghe-an"))));
    assert!(acts
        .iter()
        .any(|a| a.0 == "nv-xa" && a.2 == Some("oc-nam-dan")));

    // Both restart: the same, and the province still leaves the OC's alert to the OC.
    ioc.shutdown().await;
    oc.shutdown().await;
    let ioc = start(dir_ioc.path(), "ioc-nghe-an", &clock_ioc).await;
    let oc = start(dir_oc.path(), "oc-nam-dan", &clock_oc).await;
    assert_eq!(
        shared(ioc.alert(ioc_id).await.unwrap().unwrap()),
        shared(a_oc)
    );
    assert_eq!(exchange(&oc, &ioc).await, 0);
    assert_eq!(exchange(&ioc, &oc).await, 0);
    ioc.shutdown().await;
    oc.shutdown().await;
}

#[tokio::test]
async fn a_data_folder_keeps_its_node_name() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let e = start(dir.path(), "oc-nam-dan", &clock).await;
    e.shutdown().await;
    let mut c = Config::parse(RULES).unwrap().without_demo();
    c.paths.data = Some(dir.path().to_owned());
    c.store.url = test_store::url_for(dir.path());
    c.node.name = Some("oc-khac".into());
    let err = Engine::start_with_clock(c, clock.clone())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("belongs to node \"oc-nam-dan\""),
        "{err}"
    );
}
