//! A commune OC linked to the provincial IOC over HTTP, through a proxy the test can cut:
//! the OC's alert reaches the IOC, the link state is told truthfully on both sides, acts made
//! while apart are queued and merged when the link returns, and the OC sees only its units.

mod common;

use common::{gauge, level_at, unit, within, Proxy};

use ioc_engine::alerts::AlertAction;
use ioc_engine::{Config, Engine, Item, Obs};
use ioc_model::{Alert, AlertState, Domain, Entity, LinkState};
use std::sync::Arc;
use std::time::Duration;

const RULES: &str = r#"
[[rule]]
name = "water-alarm-3"
when = "metric == 'water_level' && value >= 5.0"
severity = "critical"
category = "flood"
message = "Mực nước {value} m vượt báo động III"
"#;

const NAM_DAN: &str = "17935";
const VINH: &str = "16681";

fn level(id: &str, value: f64) -> Item {
    level_at(id, value, chrono::Utc::now())
}

/// An IOC, and a commune OC (node account for Nam Đàn) linked to it through a proxy.
async fn province() -> (
    Arc<Engine>,
    Arc<Engine>,
    Proxy,
    tempfile::TempDir,
    tempfile::TempDir,
) {
    let (ioc_dir, ioc, ioc_addr) = common::start_with(|c| {
        let mut n = Config::parse(RULES).unwrap().without_demo();
        n.paths = c.paths.clone();
        n.node.name = Some("ioc-nghe-an".into());
        *c = n;
    })
    .await;
    let token = {
        let conn = ioc_engine::store::connect_path(ioc.store()).unwrap();
        ioc_engine::auth::add_node(&conn, "oc-nam-dan", &[NAM_DAN.into()], "test", 0, None).unwrap()
    };
    let proxy = Proxy::to(ioc_addr).await;
    let oc_dir = tempfile::tempdir().unwrap();
    let token_file = oc_dir.path().join("upstream.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let mut config = Config::parse(RULES).unwrap().without_demo();
    config.paths.data = Some(oc_dir.path().join("data"));
    config.node.name = Some("oc-nam-dan".into());
    config.upstream = Some(ioc_engine::config::UpstreamConfig {
        url: format!("http://{}", proxy.addr),
        token_file,
    });
    let oc = Arc::new(Engine::start(config).await.unwrap());
    (ioc, oc, proxy, ioc_dir, oc_dir)
}

fn alerts_of(engine: &Engine) -> Vec<Alert> {
    let rt = tokio::runtime::Handle::current();
    let mut all =
        tokio::task::block_in_place(|| rt.block_on(engine.alerts(AlertState::ALL.to_vec(), 1000)))
            .unwrap();
    all.sort_by_key(|a| a.id);
    // With their timelines.
    all.into_iter()
        .map(|a| {
            tokio::task::block_in_place(|| rt.block_on(engine.alert(a.id)))
                .unwrap()
                .unwrap()
        })
        .collect()
}

fn shared(mut a: Alert) -> Alert {
    a.id = 0;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oc_linked_to_the_ioc_through_a_cut() {
    let (ioc, oc, proxy, _ioc_dir, _oc_dir) = province().await;

    // Connected, nothing to send.
    within(10, "the OC connects", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    assert!(ioc
        .health()
        .nodes
        .iter()
        .any(|n| n.node == "oc-nam-dan" && n.state == LinkState::Connected));
    assert!(ioc.health().upstream.is_none(), "the IOC has no upstream");

    // The OC's gauge crosses level III; the province's own gauges, one in the commune and
    // one in Vinh, do too.
    oc.sender()
        .ingest(
            "t",
            vec![gauge("wl-nam-dan", NAM_DAN), level("wl-nam-dan", 5.4)],
        )
        .await
        .unwrap();
    ioc.sender()
        .ingest(
            "t",
            vec![
                gauge("wl-ioc-nam-dan", NAM_DAN),
                gauge("wl-vinh", VINH),
                level("wl-ioc-nam-dan", 5.2),
                level("wl-vinh", 6.0),
            ],
        )
        .await
        .unwrap();
    let took = within(10, "the OC's alert reaches the IOC", || {
        alerts_of(&ioc).len() == 3
    })
    .await;
    eprintln!("OC alert at the IOC after {took:?}");
    within(10, "the IOC's alert of Nam Đàn reaches the OC", || {
        alerts_of(&oc).len() == 2
    })
    .await;
    let oc_alert = alerts_of(&oc)
        .into_iter()
        .find(|a| a.entity.as_deref() == Some("wl-nam-dan"))
        .unwrap();
    let ioc_copy = alerts_of(&ioc)
        .into_iter()
        .find(|a| a.entity.as_deref() == Some("wl-nam-dan"))
        .unwrap();
    assert_eq!(shared(ioc_copy.clone()), shared(oc_alert.clone()));
    // Vinh is not the OC's: never sent.
    assert!(!alerts_of(&oc)
        .iter()
        .any(|a| a.entity.as_deref() == Some("wl-vinh")));

    // The cable is cut. The OC says so within 5 s.
    proxy.cut();
    let took = within(5, "the OC sees the link down", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Offline)
    })
    .await;
    eprintln!("offline shown after {took:?}");
    // Both act while apart: the OC acknowledges (queued), the IOC resolves and closes.
    oc.alert_act(oc_alert.id, AlertAction::Ack, "nv-xa", None, None)
        .await
        .unwrap();
    within(5, "the OC counts its queued act", || {
        oc.health().upstream.is_some_and(|u| u.backlog >= 1)
    })
    .await;
    for a in [AlertAction::Resolve, AlertAction::Close] {
        ioc.alert_act(ioc_copy.id, a, "lanh-dao", None, None)
            .await
            .unwrap();
    }

    // Back: both converge on one state, with both acts.
    proxy.restore();
    within(10, "the OC reconnects and sends its backlog", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected && u.backlog == 0)
    })
    .await;
    within(10, "both hold the same alert", || {
        let a = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                (
                    ioc.alert(ioc_copy.id).await.unwrap().unwrap(),
                    oc.alert(oc_alert.id).await.unwrap().unwrap(),
                )
            })
        });
        shared(a.0) == shared(a.1)
    })
    .await;
    let a = ioc.alert(ioc_copy.id).await.unwrap().unwrap();
    assert_eq!(a.state, AlertState::Closed);
    for (who, node) in [("nv-xa", "oc-nam-dan"), ("lanh-dao", "ioc-nghe-an")] {
        assert!(
            a.events
                .iter()
                .any(|e| e.actor == who && e.node.as_deref() == Some(node)),
            "{who}@{node} on the timeline: {:?}",
            a.events
        );
    }
    oc.shutdown().await;
}

/// An outage's readings reach the IOC afterwards: its series (and so its rollups and KPIs)
/// for the period equal the OC's; history raises nothing at the IOC; a device outside the
/// node's units is left out, and the OC's outbox still empties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readings_of_an_outage_fill_in_at_the_ioc() {
    let (ioc, oc, proxy, _d1, _d2) = province().await;
    within(10, "the OC connects", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    proxy.cut();
    within(5, "offline", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Offline)
    })
    .await;
    // Three hours of the cut: 40 gauges of the commune and one of Vinh, a reading a minute,
    // dated 5 to 4 hours ago, above alarm level III.
    let start = chrono::Utc::now() - chrono::Duration::hours(5);
    let mut items = vec![gauge("wl-vinh-oc", VINH)];
    for g in 0..40 {
        items.push(gauge(&format!("wl-{g}"), NAM_DAN));
    }
    for m in 0..60 {
        let t = start + chrono::Duration::minutes(m);
        for g in 0..40 {
            items.push(level_at(
                &format!("wl-{g}"),
                5.0 + (g * m % 7) as f64 / 10.0,
                t,
            ));
        }
        items.push(level_at("wl-vinh-oc", 6.0, t));
    }
    let r = oc.sender().ingest("t", items).await.unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.history, 2460);
    within(5, "the OC counts what waits", || {
        oc.health().upstream.is_some_and(|u| u.data_backlog >= 2460)
    })
    .await;

    proxy.restore();
    let took = within(20, "the OC's outbox empties", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected && u.data_backlog == 0)
    })
    .await;
    eprintln!("2,501 devices and readings taken by the IOC {took:?} after the link came back");
    let (from, to) = (start, start + chrono::Duration::hours(1));
    for g in 0..40 {
        let id = format!("wl-{g}");
        let at = |e: &Arc<Engine>| {
            let (e, id) = (e.clone(), id.clone());
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    e.series(id, "water_level".into(), from, to)
                        .await
                        .unwrap()
                        .expect("a series")
                })
            })
        };
        let (i, o) = (at(&ioc), at(&oc));
        assert_eq!(i.points.len(), 60, "{id}");
        assert_eq!(i.points, o.points, "{id}: the IOC's series is the OC's");
    }
    // The day's KPI of the commune is the same at the province as at the commune.
    // Nghệ An keeps UTC+7 all year.
    let day = start
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
        .date_naive();
    let kpi = |e: &Arc<Engine>| {
        let e = e.clone();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async move {
                e.view(ioc_engine::Scope::Province)
                    .kpi_value(
                        "river-below-alarm",
                        Some(ioc_model::Period::Day),
                        Some(day),
                        Some(NAM_DAN.into()),
                    )
                    .await
                    .unwrap()
            })
        })
    };
    let (k_ioc, k_oc) = (kpi(&ioc), kpi(&oc));
    eprintln!(
        "river-below-alarm of the day: IOC {:?} ({}/{}), OC {:?}",
        k_ioc.value, k_ioc.numerator, k_ioc.denominator, k_oc.value
    );
    assert!(
        k_oc.denominator >= 40.0 && k_oc.value.is_some_and(|v| v < 100.0),
        "a KPI with something to say: {k_oc:?}"
    );
    assert_eq!(
        (k_ioc.value, k_ioc.numerator, k_ioc.denominator),
        (k_oc.value, k_oc.numerator, k_oc.denominator),
        "the IOC's KPI of the day is the OC's"
    );
    assert!(
        ioc.hub().entity("wl-vinh-oc").is_none(),
        "Vinh is not the OC's"
    );
    assert!(
        alerts_of(&ioc).is_empty(),
        "history pages no one at the IOC"
    );
    oc.shutdown().await;
}

/// A commune OC that ran on its own before it was linked: its devices go up when the link is
/// first configured, so the readings that follow are taken (not refused as unknown), and a
/// device of the IOC's cannot be taken over by a node that sends the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_from_before_the_link_go_up_and_the_iocs_stay_its_own() {
    let (ioc_dir, ioc, ioc_addr) = common::start_with(|c| {
        let mut n = Config::parse(RULES).unwrap().without_demo();
        n.paths = c.paths.clone();
        n.node.name = Some("ioc-nghe-an".into());
        *c = n;
    })
    .await;
    let _keep = ioc_dir;
    // The IOC's own gauge in the commune.
    ioc.sender()
        .ingest(
            "t",
            vec![gauge("wl-shared-id", NAM_DAN), level("wl-shared-id", 1.0)],
        )
        .await
        .unwrap();
    let token = {
        let conn = ioc_engine::store::connect_path(ioc.store()).unwrap();
        ioc_engine::auth::add_node(&conn, "oc-nam-dan", &[NAM_DAN.into()], "test", 0, None).unwrap()
    };
    // The OC on its own first.
    let oc_dir = tempfile::tempdir().unwrap();
    let base = || {
        let mut c = Config::parse(RULES).unwrap().without_demo();
        c.paths.data = Some(oc_dir.path().join("data"));
        c.node.name = Some("oc-nam-dan".into());
        c
    };
    let alone = Engine::start(base()).await.unwrap();
    alone
        .sender()
        .ingest(
            "t",
            vec![
                gauge("wl-before", NAM_DAN),
                gauge("wl-shared-id", NAM_DAN),
                level("wl-before", 1.0),
            ],
        )
        .await
        .unwrap();
    alone.shutdown().await;
    drop(alone);
    // Then linked.
    let token_file = oc_dir.path().join("upstream.token");
    std::fs::write(&token_file, &token).unwrap();
    let mut config = base();
    config.upstream = Some(ioc_engine::config::UpstreamConfig {
        url: format!("http://{ioc_addr}"),
        token_file,
    });
    let oc = Arc::new(Engine::start(config).await.unwrap());
    within(10, "the OC's devices reach the IOC", || {
        ioc.hub().entity("wl-before").is_some()
    })
    .await;
    let t = chrono::Utc::now();
    oc.sender()
        .ingest(
            "t",
            vec![
                level_at("wl-before", 2.5, t),
                level_at("wl-shared-id", 9.9, t),
            ],
        )
        .await
        .unwrap();
    within(10, "the OC's reading is taken", || {
        ioc.hub()
            .entity("wl-before")
            .and_then(|e| e.latest.get("water_level").map(|r| r.value))
            == Some(2.5)
    })
    .await;
    within(10, "the OC's outbox empties", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected && u.data_backlog == 0)
    })
    .await;
    // The IOC's gauge of the same id is still the IOC's: the node's reading was left out.
    let shared = ioc.hub().entity("wl-shared-id").unwrap();
    assert_eq!(
        shared.latest.get("water_level").map(|r| r.value),
        Some(1.0),
        "{shared:?}"
    );
    oc.shutdown().await;
}

/// A node whose data folder is not the one first seen for it (reinstalled, or restored from
/// a backup, under the same name) is refused with the reason, never merged: its sequence
/// numbers would clash with what the IOC holds and its new operations be taken for repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_from_another_data_folder_is_refused_with_the_reason() {
    let (ioc, oc, _proxy, _d1, oc_dir) = province().await;
    within(10, "the OC connects", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    let config = |data: std::path::PathBuf| {
        let mut c = Config::parse(RULES).unwrap().without_demo();
        c.paths.data = Some(data);
        c.node.name = Some("oc-nam-dan".into());
        c.upstream = oc.config().upstream.clone();
        c
    };
    let fresh = config(oc_dir.path().join("reinstalled"));
    oc.shutdown().await;
    let again = Engine::start(fresh).await.unwrap();
    within(10, "the link refused, with the reason", || {
        again.health().upstream.is_some_and(|u| {
            u.state == LinkState::Offline
                && u.error
                    .as_deref()
                    .is_some_and(|e| e.contains("not the data folder the IOC knows"))
        })
    })
    .await;
    again.shutdown().await;
    drop(again);
    // The original folder is still welcome.
    let back = Engine::start(config(oc_dir.path().join("data")))
        .await
        .unwrap();
    within(10, "the original folder connects again", || {
        back.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    back.shutdown().await;
    let _ = ioc;
}

/// The province's directive to a commune flows down to its OC; the commune acknowledges and
/// reports while cut off, the province withdraws it meanwhile; reconnected, both hold the
/// same directive: withdrawn, the commune's acknowledgement on it, its late report kept as
/// not applied, each by whom and where. A directive to another commune never goes down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directive_flows_down_and_both_sides_converge() {
    use ioc_engine::operate::directives::DirectiveAction;
    use ioc_engine::operate::Actor;
    use ioc_engine::pipeline::{Op, OpOutcome};
    use ioc_model::{DirectiveState, Role};

    let (ioc, oc, proxy, _ioc_dir, _oc_dir) = province().await;
    within(10, "the OC connects", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    // The province's communes (from its basemap, in life).
    ioc.sender()
        .ingest("t", vec![unit(NAM_DAN, "Nam Đàn"), unit(VINH, "Vinh")])
        .await
        .unwrap();
    let leader = Actor {
        name: "lanh-dao".into(),
        role: Role::Leader,
        units: vec![],
    };
    let commune = Actor {
        name: "nv-xa".into(),
        role: Role::OcStaff,
        units: vec![NAM_DAN.into()],
    };
    let issue = |unit: &str, title: &str| Op::Issue {
        unit: unit.into(),
        title: title.into(),
        body: "Báo cáo trước 18:00".into(),
        deadline: chrono::Utc::now() + chrono::Duration::hours(4),
        incident: None,
    };
    let mut ids = Vec::new();
    for (unit, title) in [
        (NAM_DAN, "Sơ tán 40 hộ ven sông Lam"),
        (VINH, "Kiểm tra đê"),
    ] {
        let mut tries = 0;
        let d = loop {
            match ioc.operate(issue(unit, title), leader.clone()).await {
                Ok(OpOutcome::Directive(d)) => break d,
                other if tries < 50 => {
                    tries += 1;
                    let _ = other; // the unit's device may not be committed yet
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("issuing: {other:?}"),
            }
        };
        ids.push(d.id);
    }
    let at_oc = |oc: &Engine| {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(oc.directives(
                    vec![
                        DirectiveState::Issued,
                        DirectiveState::Acknowledged,
                        DirectiveState::InProgress,
                    ],
                    100,
                ))
                .unwrap()
        })
    };
    within(10, "the directive reaches the commune's OC", || {
        at_oc(&oc).len() == 1
    })
    .await;
    let down = at_oc(&oc).remove(0);
    assert_eq!(
        down.title, "Sơ tán 40 hộ ven sông Lam",
        "only its own unit's"
    );
    assert_eq!(down.state, DirectiveState::Issued);

    proxy.cut();
    within(5, "the OC sees the link down", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Offline)
    })
    .await;
    for (action, text) in [
        (DirectiveAction::Ack, None),
        (
            DirectiveAction::Report { progress: Some(60) },
            Some("24/40 hộ".to_string()),
        ),
    ] {
        oc.operate(
            Op::Directive {
                id: down.id,
                action,
                text,
            },
            commune.clone(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        if text_is_ack(&oc, down.id).await {
            // Later than the acknowledgement: within one millisecond, two nodes' acts are
            // concurrent and the merge orders them by node name.
            tokio::time::sleep(Duration::from_millis(20)).await;
            ioc.operate(
                Op::Directive {
                    id: ids[0],
                    action: DirectiveAction::Cancel,
                    text: Some("Đã có phương án khác".into()),
                },
                leader.clone(),
            )
            .await
            .unwrap();
        }
    }
    proxy.restore();
    within(10, "the OC reconnects and sends what waited", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected && u.backlog == 0)
    })
    .await;
    let same = |a: &ioc_model::Directive, b: &ioc_model::Directive| {
        let (mut a, mut b) = (a.clone(), b.clone());
        a.id = 0;
        b.id = 0;
        a.incident = None;
        b.incident = None;
        a == b
    };
    within(10, "both hold the same directive", || {
        let (i, o) = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                (
                    ioc.directive(ids[0]).await.unwrap().unwrap(),
                    oc.directive(down.id).await.unwrap().unwrap(),
                )
            })
        });
        same(&i, &o)
    })
    .await;
    let d = ioc.directive(ids[0]).await.unwrap().unwrap();
    assert_eq!(d.state, DirectiveState::Cancelled);
    assert_eq!(d.acked_by.as_deref(), Some("nv-xa"));
    let kinds: Vec<(&str, &str, Option<&str>)> = d
        .reports
        .iter()
        .map(|r| (r.kind.as_str(), r.actor.as_str(), r.node.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("issued", "lanh-dao", Some("ioc-nghe-an")),
            ("acknowledged", "nv-xa", Some("oc-nam-dan")),
            ("cancelled", "lanh-dao", Some("ioc-nghe-an")),
            ("not_applied", "nv-xa", Some("oc-nam-dan")),
        ],
        "{:?}",
        d.reports
    );
    // The OC's open directives: none left.
    within(
        5,
        "the withdrawn directive leaves the OC's open list",
        || at_oc(&oc).is_empty(),
    )
    .await;
    oc.shutdown().await;
}

/// Whether the OC's copy of directive `id` is acknowledged (the withdrawal comes between the
/// acknowledgement and the report).
async fn text_is_ack(oc: &Engine, id: i64) -> bool {
    oc.directive(id)
        .await
        .unwrap()
        .is_some_and(|d| d.state == ioc_model::DirectiveState::Acknowledged)
}

/// The province's silence of a commune (a maintenance window on its gauges) holds back the
/// commune OC's own alerts too, at both ends; a person at the commune ends it early, and the
/// province's copy ends with it; a silence of another commune never goes down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_flows_down_and_its_end_comes_back() {
    use ioc_engine::operate::Actor;
    use ioc_engine::pipeline::{Op, OpOutcome};
    use ioc_model::{Role, SilenceMatch};

    let (ioc, oc, _proxy, _ioc_dir, _oc_dir) = province().await;
    within(10, "the OC connects", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    let supervisor = Actor {
        name: "giam-sat".into(),
        role: Role::Supervisor,
        units: vec![],
    };
    let now = chrono::Utc::now();
    let mut made = Vec::new();
    for unit in [NAM_DAN, VINH] {
        let OpOutcome::Silence(s) = ioc
            .operate(
                Op::Silence {
                    matcher: SilenceMatch {
                        unit: Some(unit.into()),
                        category: Some("flood".into()),
                        ..Default::default()
                    },
                    starts_at: now,
                    ends_at: now + chrono::Duration::hours(2),
                    comment: Some("Bảo trì trạm đo".into()),
                },
                supervisor.clone(),
            )
            .await
            .unwrap()
        else {
            panic!("a silence")
        };
        made.push(s);
    }
    let current = |e: &Engine| {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(e.silences(100))
                .unwrap()
        })
        .into_iter()
        .filter(|s| s.current_at(chrono::Utc::now()))
        .collect::<Vec<_>>()
    };
    within(10, "the commune's silence at its OC", || {
        current(&oc).len() == 1
    })
    .await;
    let down = current(&oc).remove(0);
    assert_eq!(
        down.matcher.unit.as_deref(),
        Some(NAM_DAN),
        "only its own unit's"
    );
    assert_eq!(down.created_by, "giam-sat");

    // The commune's gauge crosses level III: held back at the OC, and so at the IOC.
    oc.sender()
        .ingest(
            "t",
            vec![gauge("wl-nam-dan", NAM_DAN), level("wl-nam-dan", 5.4)],
        )
        .await
        .unwrap();
    within(10, "the OC's alert, silenced, at the IOC", || {
        let a = alerts_of(&ioc);
        a.len() == 1 && a[0].silenced == Some(made[0].id)
    })
    .await;
    let at_oc = alerts_of(&oc);
    assert_eq!(
        at_oc[0].silenced,
        Some(down.id),
        "by the local copy of the silence"
    );

    // Someone at the commune ends it early: the province's ends too, and the alert is back.
    let commune = Actor {
        name: "nv-xa".into(),
        role: Role::Supervisor,
        units: vec![NAM_DAN.into()],
    };
    oc.operate(Op::EndSilence { id: down.id }, commune)
        .await
        .unwrap();
    within(10, "the province's copy ends", || {
        let s = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(ioc.silences(100))
                .unwrap()
        });
        s.iter()
            .any(|s| s.id == made[0].id && s.ended_by.as_deref() == Some("nv-xa"))
    })
    .await;
    within(10, "the alert is no longer held back at either end", || {
        alerts_of(&ioc)[0].silenced.is_none() && alerts_of(&oc)[0].silenced.is_none()
    })
    .await;
    oc.shutdown().await;
}

/// A rule the province's people make on the IOC's rules screen runs at every linked OC on
/// the OC's own devices (its alert comes up like any of the OC's), is read-only there, and
/// goes when the province removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provinces_rules_run_at_the_oc_too() {
    const RAIN: &str = "name = \"rain-very-heavy\"\nwhen = \"metric == 'rain_1h' && value >= 50.0\"\nseverity = \"major\"\ncategory = \"rain\"\nmessage = \"Mưa rất to: {value} mm/giờ\"\n";
    let (ioc, oc, _proxy, _ioc_dir, _oc_dir) = province().await;
    within(10, "the OC connects", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    let rules_of = |e: &Engine| {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(e.rules())).rules
    };
    assert!(!rules_of(&oc).iter().any(|r| r.name == "rain-very-heavy"));
    let saved = ioc.put_rule(RAIN, None, "quan-tri").await.unwrap();
    assert!(saved.is_ok(), "{saved:?}");
    let took = within(15, "the province's rule at the OC", || {
        rules_of(&oc)
            .iter()
            .any(|r| r.name == "rain-very-heavy" && r.origin == "tinh.toml" && !r.editable)
    })
    .await;
    eprintln!("the province's new rule ran at the OC {took:?} after it was saved");
    // Read-only at the OC.
    let changed = RAIN.replace("50.0", "10.0");
    let r = oc
        .put_rule(&changed, Some("rain-very-heavy"), "nv-xa")
        .await
        .unwrap();
    assert!(r.is_err(), "changed at the IOC only: {r:?}");
    assert!(oc.delete_rule("rain-very-heavy", "nv-xa").await.is_err());
    // It runs on the OC's own rain gauge; the alert goes up like any of the OC's.
    let rain = Item::Entity(Box::new(
        Entity::new(
            "rg-nam-dan",
            "RainGauge",
            "Trạm mưa Nam Đàn",
            Domain::Environment,
        )
        .at(105.49, 18.70)
        .in_unit(NAM_DAN, NAM_DAN),
    ));
    let obs = Item::Obs(Obs {
        entity: Arc::from("rg-nam-dan"),
        metric: Arc::from("rain_1h"),
        time: chrono::Utc::now(),
        value: 80.0,
    });
    oc.sender().ingest("t", vec![rain, obs]).await.unwrap();
    within(10, "the OC's alert by the province's rule, at both", || {
        let by_rule = |e: &Engine| {
            alerts_of(e)
                .iter()
                .filter(|a| a.rule == "rain-very-heavy")
                .count()
        };
        by_rule(&oc) == 1 && by_rule(&ioc) == 1
    })
    .await;
    // Removed at the IOC: gone at the OC.
    ioc.delete_rule("rain-very-heavy", "quan-tri")
        .await
        .unwrap();
    within(15, "the province's rule leaves the OC", || {
        !rules_of(&oc).iter().any(|r| r.name == "rain-very-heavy")
    })
    .await;
    oc.shutdown().await;
}

/// The commune OC opens an incident on its flood alert and works its SOP; cut off, the
/// province resolves and closes it while the commune goes on ticking and finishing steps.
/// Reconnected, both hold the same closed incident, the commune's late work on its timeline
/// as not applied (by whom, where) and the incident flagged for a person; a supervisor at the
/// commune reviews it, and the flag goes at the province too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_closed_at_the_ioc_while_the_oc_worked_it_is_flagged() {
    use ioc_engine::operate::Actor;
    use ioc_engine::pipeline::{Op, OpOutcome};
    use ioc_model::{Incident, IncidentEventKind, IncidentState, Role};

    let (ioc, oc, proxy, _ioc_dir, _oc_dir) = province().await;
    within(10, "the OC connects", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    oc.sender()
        .ingest(
            "t",
            vec![gauge("wl-nam-dan", NAM_DAN), level("wl-nam-dan", 5.3)],
        )
        .await
        .unwrap();
    within(10, "the OC raises its alert", || alerts_of(&oc).len() == 1).await;
    let alert = alerts_of(&oc).remove(0);
    let commune = |name: &str, role: Role| Actor {
        name: name.into(),
        role,
        units: vec![NAM_DAN.into()],
    };
    let lan = commune("lan", Role::Operator);
    let OpOutcome::Incident(opened) = oc
        .operate(
            Op::OpenIncident {
                alerts: vec![alert.id],
                sop: None,
                title: None,
                comment: None,
            },
            lan.clone(),
        )
        .await
        .unwrap()
    else {
        panic!("an incident")
    };
    let verify = opened
        .steps
        .iter()
        .find(|s| s.id == "verify")
        .expect("the flood SOP's first step")
        .clone();
    assert!(verify.checklist.len() >= 2, "{verify:?}");
    let at_ioc = || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(ioc.incidents(vec![], 10))
                .unwrap()
        })
    };
    within(10, "the incident reaches the IOC", || at_ioc().len() == 1).await;
    let up = at_ioc().remove(0);
    assert_eq!(up.title, opened.title);
    within(10, "with its alert, held at the IOC", || {
        at_ioc()[0].alerts.len() == 1
    })
    .await;
    // The first tick, before the cut: both see it.
    let check = |item: usize| Op::Check {
        incident: opened.id,
        step: "verify".into(),
        item,
        done: true,
    };
    oc.operate(check(0), lan.clone()).await.unwrap();

    proxy.cut();
    within(5, "the OC sees the link down", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Offline)
    })
    .await;
    let thanh = Actor {
        name: "thanh".into(),
        role: Role::Supervisor,
        units: vec![],
    };
    ioc.operate(
        Op::Resolve {
            incident: up.id,
            comment: Some("Nước đã rút dưới báo động I".into()),
        },
        thanh.clone(),
    )
    .await
    .unwrap();
    ioc.operate(
        Op::Close {
            incident: up.id,
            comment: None,
        },
        thanh.clone(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The commune, cut off, goes on.
    for item in 1..verify.checklist.len() {
        oc.operate(check(item), lan.clone()).await.unwrap();
    }
    oc.operate(
        Op::StepDone {
            incident: opened.id,
            step: "verify".into(),
            answer: None,
            comment: Some("Trạm hạ lưu cũng tăng".into()),
        },
        lan.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        oc.incident(opened.id).await.unwrap().unwrap().state,
        IncidentState::Open,
        "apart, the commune still works it"
    );
    proxy.restore();
    within(10, "the OC reconnects and sends what waited", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected && u.backlog == 0)
    })
    .await;
    let both = || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                (
                    ioc.incident(up.id).await.unwrap().unwrap(),
                    oc.incident(opened.id).await.unwrap().unwrap(),
                )
            })
        })
    };
    // The same but for the local ids (of the incident and of its alert).
    let shared = |i: &Incident| {
        let mut i = i.clone();
        i.id = 0;
        i.alerts = vec![0; i.alerts.len()];
        for e in &mut i.events {
            e.alert = e.alert.map(|_| 0);
        }
        i.directives.clear();
        i.attachments.clear();
        i
    };
    within(10, "both hold the same incident", || {
        let (i, o) = both();
        shared(&i) == shared(&o)
    })
    .await;
    let (i, _) = both();
    assert_eq!(i.state, IncidentState::Closed);
    assert_eq!(i.closed_by.as_deref(), Some("thanh"));
    assert_eq!(i.alerts.len(), 1);
    let late: Vec<(&str, Option<&str>)> = i
        .events
        .iter()
        .filter(|e| e.kind == IncidentEventKind::NotApplied)
        .map(|e| (e.actor.as_str(), e.node.as_deref()))
        .collect();
    assert_eq!(
        late.len(),
        verify.checklist.len(),
        "every late tick and the step: {:?}",
        i.events
    );
    assert!(late
        .iter()
        .all(|(who, node)| *who == "lan" && *node == Some("oc-nam-dan")));
    let flag = i.attention.clone().expect("flagged for a person");
    assert!(flag.contains("oc-nam-dan"), "{flag}");
    // The tick before the cut counts.
    let v = i.steps.iter().find(|s| s.id == "verify").unwrap();
    assert!(v.checklist[0].done);
    assert!(!v.checklist[1].done);

    // A supervisor at the commune looks at it: the flag goes at both ends.
    oc.operate(
        Op::Review {
            incident: opened.id,
            comment: Some("Đã báo lại tỉnh".into()),
        },
        commune("hung", Role::Supervisor),
    )
    .await
    .unwrap();
    within(10, "the review reaches the IOC", || {
        let (i, o) = both();
        i.attention.is_none() && shared(&i) == shared(&o)
    })
    .await;
    let (i, _) = both();
    let last = i.events.last().unwrap();
    assert_eq!(last.kind, IncidentEventKind::Reviewed);
    assert_eq!(last.node.as_deref(), Some("oc-nam-dan"));
    oc.shutdown().await;
}

/// The SOP templates and KPI definitions the province's people make on the IOC reach the
/// commune's OC, read-only there, and an incident there can be worked by the province's
/// template; a change at the IOC comes down as a new version, a removal removes it; the
/// seeded ones stay each node's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provinces_sops_and_kpis_reach_the_oc() {
    use ioc_engine::operate::Actor;
    use ioc_engine::pipeline::{Op, OpOutcome};
    use ioc_model::Role;

    const SOP: &str = "name = \"ngap-do-thi\"\ntitle = \"Ngập úng đô thị\"\ncategories = []\n\n[[step]]\nid = \"verify\"\ntitle = \"Xác minh điểm ngập bằng camera\"\n\n[[step]]\nid = \"divert\"\ntitle = \"Phân luồng giao thông\"\n";
    const KPI: &str = "id = \"gauges-ok\"\nname = \"Trạm thủy văn dưới báo động III\"\ndomain = \"water\"\nperiod = \"day\"\nuom = \"%\"\ntarget = 100.0\nbetter = \"higher\"\ngreen = 95.0\namber = 80.0\n[of]\nsource = \"observations\"\nmetric = \"water_level\"\neach = \"max\"\nmeasure = \"share\"\nwhere = \"value < 5.0\"\n";
    let (ioc, oc, _proxy, _ioc_dir, _oc_dir) = province().await;
    within(10, "the OC connects", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Connected)
    })
    .await;
    let block = |f: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>>| {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
    };
    let sop_at = |e: &Engine, name: &str| {
        let all: Vec<ioc_model::SopInfo> = block(Box::pin(e.sops())).unwrap();
        all.into_iter().find(|s| s.name == name)
    };
    let kpi_at = |e: &Engine, id: &str| {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(e.kpi_defs()))
            .0
            .into_iter()
            .find(|k| k.id == id)
    };
    // A KPI the commune made itself, whose id the province then uses too: the commune's stays.
    let own = KPI.replace("gauges-ok", "xa-rieng").replace("5.0", "4.5");
    assert!(oc.put_kpi(&own, None, "nv-xa").await.unwrap().is_ok());
    assert!(ioc.put_sop(SOP, None, "lanh-dao").await.unwrap().is_ok());
    assert!(ioc.put_kpi(KPI, None, "lanh-dao").await.unwrap().is_ok());
    assert!(ioc
        .put_kpi(&KPI.replace("gauges-ok", "xa-rieng"), None, "lanh-dao")
        .await
        .unwrap()
        .is_ok());
    within(15, "the province's template and KPI at the OC", || {
        sop_at(&oc, "ngap-do-thi").is_some_and(|s| s.province)
            && kpi_at(&oc, "gauges-ok").is_some_and(|k| k.origin == "province" && !k.editable)
    })
    .await;
    assert_eq!(sop_at(&oc, "ngap-do-thi").unwrap().text, SOP);
    let kept = kpi_at(&oc, "xa-rieng").unwrap();
    assert_eq!(
        (kept.origin.as_str(), kept.text.as_str()),
        ("console", own.as_str()),
        "the commune's own KPI stays its own"
    );
    // The seeded ones are each node's own, and stay editable there.
    assert!(!sop_at(&oc, "flood-warning").unwrap().province);
    assert!(kpi_at(&oc, "river-below-alarm").unwrap().editable);

    // Read-only at the OC.
    let changed = SOP.replace("Ngập úng đô thị", "Ngập (xã sửa)");
    assert!(oc
        .put_sop(&changed, Some("ngap-do-thi"), "nv-xa")
        .await
        .is_err());
    assert!(oc.delete_sop("ngap-do-thi", "nv-xa").await.is_err());
    assert!(oc
        .put_kpi(&KPI.replace("5.0", "4.0"), Some("gauges-ok"), "nv-xa")
        .await
        .is_err());
    assert!(oc.delete_kpi("gauges-ok", "nv-xa").await.is_err());

    // A commune's incident worked by the province's template.
    oc.sender()
        .ingest(
            "t",
            vec![gauge("wl-nam-dan", NAM_DAN), level("wl-nam-dan", 5.4)],
        )
        .await
        .unwrap();
    within(10, "the OC raises its alert", || alerts_of(&oc).len() == 1).await;
    let alert = alerts_of(&oc).remove(0);
    let OpOutcome::Incident(i) = oc
        .operate(
            Op::OpenIncident {
                alerts: vec![alert.id],
                sop: Some("ngap-do-thi".into()),
                title: None,
                comment: None,
            },
            Actor {
                name: "nv-xa".into(),
                role: Role::Operator,
                units: vec![NAM_DAN.into()],
            },
        )
        .await
        .unwrap()
    else {
        panic!("an incident")
    };
    assert_eq!(
        i.steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec!["verify", "divert"]
    );

    // Changed at the IOC: a new version at the OC; removed there: gone at the OC.
    let v2 = SOP.replace("Phân luồng giao thông", "Phân luồng và cắm biển cảnh báo");
    assert!(ioc
        .put_sop(&v2, Some("ngap-do-thi"), "lanh-dao")
        .await
        .unwrap()
        .is_ok());
    within(15, "the new version at the OC", || {
        sop_at(&oc, "ngap-do-thi").is_some_and(|s| s.text == v2 && s.versions.len() == 2)
    })
    .await;
    ioc.delete_sop("ngap-do-thi", "lanh-dao").await.unwrap();
    ioc.delete_kpi("gauges-ok", "lanh-dao").await.unwrap();
    within(15, "removed at the OC too", || {
        sop_at(&oc, "ngap-do-thi").is_none() && kpi_at(&oc, "gauges-ok").is_none()
    })
    .await;
    // The incident keeps the steps it started with.
    let kept = oc.incident(i.id).await.unwrap().unwrap();
    assert_eq!(kept.steps.len(), 2);
    oc.shutdown().await;
}
