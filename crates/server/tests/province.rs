//! A province on loopback: the IOC, two commune OCs (Nam Đàn, Vinh) and a control-room
//! workstation, every link through a proxy the test cuts. While apart, both sides work the
//! same alerts (about a thousand acts each), the workstation queues acts of its own, the
//! Vinh OC answers the province's directive that the province withdraws meanwhile, and
//! the Nam Đàn OC records two hours of readings of 100 gauges and works the incidents it
//! opened while the province comments on them. Reconnected: every node holds the same
//! alerts, incidents and directives, every act is on its alert or incident once, and the
//! IOC's KPI of the outage equals the OC's.

mod common;

use common::{alerts_by_entity, block, gauge, level_at, unit, within, Proxy};
use ioc_engine::alerts::AlertAction;
use ioc_engine::operate::directives::DirectiveAction;
use ioc_engine::operate::Actor;
use ioc_engine::pipeline::{Op, OpOutcome};
use ioc_engine::{Config, Engine};
use ioc_model::{Alert, AlertState, DirectiveState, Incident, IncidentEventKind, LinkState, Role};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
const PASSWORD: &str = "mật khẩu ca trực";
/// Gauges of the Nam Đàn OC, each with an alert.
const GAUGES: usize = 100;
/// Acts on each alert on each side while apart.
const ACTS: usize = 10;
/// Incidents the Nam Đàn OC opens (one per alert of its first gauges).
const INCIDENTS: usize = 10;

async fn oc(
    name: &str,
    units: &str,
    ioc: &Engine,
    ioc_addr: SocketAddr,
) -> (Arc<Engine>, Proxy, tempfile::TempDir) {
    let token = {
        let conn = ioc_engine::store::connect_path(ioc.store()).unwrap();
        ioc_engine::auth::add_node(&conn, name, &[units.into()], "test", 0, None).unwrap()
    };
    let proxy = Proxy::to(ioc_addr).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("upstream.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let mut config = Config::parse(RULES).unwrap().without_demo();
    config.paths.data = Some(dir.path().join("data"));
    config.node.name = Some(name.into());
    config.upstream = Some(ioc_engine::config::UpstreamConfig {
        url: format!("http://{}", proxy.addr),
        token_file,
    });
    (Arc::new(Engine::start(config).await.unwrap()), proxy, dir)
}

/// Every incident with its timeline, keyed by its title (ids differ from node to node).
fn incidents_by_title(e: &Engine) -> std::collections::BTreeMap<String, Incident> {
    block(e.incidents(vec![], 1_000))
        .unwrap()
        .into_iter()
        .map(|i| {
            let mut full = block(e.incident(i.id)).unwrap().unwrap();
            full.id = 0;
            full.alerts = vec![0; full.alerts.len()];
            for ev in &mut full.events {
                ev.alert = ev.alert.map(|_| 0);
            }
            (full.title.clone(), full)
        })
        .collect()
}

fn linked(e: &Engine) -> bool {
    e.health()
        .upstream
        .is_some_and(|u| u.state == LinkState::Connected && u.backlog == 0 && u.data_backlog == 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_works_apart_and_converges() {
    let (_ioc_dir, ioc, ioc_addr) = common::start_with(|c| {
        let mut n = Config::parse(RULES).unwrap().without_demo();
        n.paths = c.paths.clone();
        n.node.name = Some("ioc-nghe-an".into());
        *c = n;
    })
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    ioc.auth()
        .add_user(
            &ioc_engine::auth::NewUser {
                username: "lan".into(),
                display_name: None,
                role: Role::Operator,
                units: vec![],
                password: PASSWORD.into(),
            },
            "test",
            now,
        )
        .unwrap();
    ioc.sender()
        .ingest("t", vec![unit(NAM_DAN, "Nam Đàn"), unit(VINH, "Vinh")])
        .await
        .unwrap();
    let (nam_dan, link_nd, _d1) = oc("oc-nam-dan", NAM_DAN, &ioc, ioc_addr).await;
    let (vinh, link_v, _d2) = oc("oc-vinh", VINH, &ioc, ioc_addr).await;
    // The workstation, through its own cable.
    let link_ws = Proxy::to(ioc_addr).await;
    let ws_dir = tempfile::tempdir().unwrap();
    let listener = ioc_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ws_addr = listener.local_addr().unwrap();
    tokio::spawn(ioc_server::workstation::serve(
        ioc_server::workstation::Options {
            upstream: format!("http://{}", link_ws.addr),
            data: ws_dir.path().to_path_buf(),
            ui_dir: None,
            hosts: vec![],
        },
        listener,
        std::future::pending(),
        None,
    ));
    let http = reqwest::Client::new();
    let origin = format!("http://{ws_addr}");
    let r = http
        .post(format!("{origin}/api/login"))
        .header("origin", &origin)
        .json(&json!({"username": "lan", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let ws_health = || {
        let (http, origin, cookie) = (http.clone(), origin.clone(), cookie.clone());
        block(async move {
            http.get(format!("{origin}/api/health"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    within(15, "every node linked", || {
        linked(&nam_dan) && linked(&vinh)
    })
    .await;

    // A flood in Nam Đàn: GAUGES alerts at the commune, up at the province.
    let mut items = Vec::new();
    for g in 0..GAUGES {
        items.push(gauge(&format!("wl-{g}"), NAM_DAN));
        items.push(level_at(&format!("wl-{g}"), 5.5, chrono::Utc::now()));
    }
    nam_dan.sender().ingest("t", items).await.unwrap();
    within(30, "the commune's alerts at the province", || {
        block(ioc.alerts(vec![AlertState::New], 10_000))
            .unwrap()
            .len()
            == GAUGES
    })
    .await;
    // The commune opens an incident on each alert of its first gauges; they go up.
    let chief = Actor {
        name: "to-truong".into(),
        role: Role::Supervisor,
        units: vec![NAM_DAN.into()],
    };
    let mut incidents = Vec::new();
    for a in block(nam_dan.alerts(vec![AlertState::New], 10_000)).unwrap() {
        let entity = a.entity.clone().unwrap_or_default();
        let g: usize = entity.trim_start_matches("wl-").parse().unwrap();
        if g >= INCIDENTS {
            continue;
        }
        let OpOutcome::Incident(i) = nam_dan
            .operate(
                Op::OpenIncident {
                    alerts: vec![a.id],
                    sop: None,
                    title: Some(format!("Ngập tại {entity}")),
                    comment: None,
                },
                chief.clone(),
            )
            .await
            .unwrap()
        else {
            panic!("an incident")
        };
        incidents.push(i.id);
    }
    assert_eq!(incidents.len(), INCIDENTS);
    within(15, "the commune's incidents at the province", || {
        block(ioc.incidents(vec![], 1_000)).unwrap().len() == INCIDENTS
    })
    .await;
    // The workstation's window follows the feed: it has the picture once the link says so.
    within(15, "the workstation linked", || {
        ws_health()["upstream"]["state"] == "connected"
    })
    .await;
    // The province's directive to Vinh reaches the Vinh OC only.
    let leader = Actor {
        name: "lanh-dao".into(),
        role: Role::Leader,
        units: vec![],
    };
    let OpOutcome::Directive(d) = ioc
        .operate(
            Op::Issue {
                unit: VINH.into(),
                title: "Kiểm tra đê tả Lam".into(),
                body: String::new(),
                deadline: chrono::Utc::now() + chrono::Duration::hours(6),
                incident: None,
            },
            leader.clone(),
        )
        .await
        .unwrap()
    else {
        panic!("a directive")
    };
    let open = vec![
        DirectiveState::Issued,
        DirectiveState::Acknowledged,
        DirectiveState::InProgress,
    ];
    within(10, "the directive at the Vinh OC", || {
        block(vinh.directives(open.clone(), 10)).unwrap().len() == 1
    })
    .await;
    assert!(block(nam_dan.directives(open.clone(), 10))
        .unwrap()
        .is_empty());
    let vinh_d = block(vinh.directives(open.clone(), 10)).unwrap().remove(0);

    // Every cable is cut.
    link_nd.cut();
    link_v.cut();
    link_ws.cut();
    within(5, "the OCs know", || {
        [&nam_dan, &vinh].iter().all(|e| {
            e.health()
                .upstream
                .is_some_and(|u| u.state == LinkState::Offline)
        })
    })
    .await;
    within(5, "the workstation knows", || {
        ws_health()["upstream"]["state"] == "offline"
    })
    .await;

    // Apart, both sides work the same alerts.
    let at_oc: Vec<Alert> = block(nam_dan.alerts(vec![AlertState::New], 10_000)).unwrap();
    let at_ioc: Vec<Alert> = block(ioc.alerts(vec![AlertState::New], 10_000)).unwrap();
    assert_eq!((at_oc.len(), at_ioc.len()), (GAUGES, GAUGES));
    let started = Instant::now();
    for a in &at_oc {
        nam_dan
            .alert_act(a.id, AlertAction::Ack, "nv-xa", None, None)
            .await
            .unwrap();
        for k in 1..ACTS {
            nam_dan
                .alert_act(
                    a.id,
                    AlertAction::Comment,
                    "nv-xa",
                    Some(format!("xã {k}")),
                    None,
                )
                .await
                .unwrap();
        }
    }
    for a in &at_ioc {
        for k in 1..ACTS {
            ioc.alert_act(
                a.id,
                AlertAction::Comment,
                "truc-ban",
                Some(format!("tỉnh {k}")),
                None,
            )
            .await
            .unwrap();
        }
        // Half of them the province resolves while the commune acknowledges them.
        if a.id % 2 == 0 {
            ioc.alert_act(a.id, AlertAction::Resolve, "truc-ban", None, None)
                .await
                .unwrap();
        } else {
            ioc.alert_act(
                a.id,
                AlertAction::Comment,
                "truc-ban",
                Some("tỉnh 10".into()),
                None,
            )
            .await
            .unwrap();
        }
    }
    eprintln!(
        "{} acts on each side in {:?}",
        GAUGES * ACTS,
        started.elapsed()
    );
    // The workstation's operator assigns five alerts: kept on the workstation.
    let ws_acts: Vec<i64> = at_ioc
        .iter()
        .filter(|a| a.id % 2 == 1)
        .take(5)
        .map(|a| a.id)
        .collect();
    for id in &ws_acts {
        let r = http
            .post(format!("{origin}/api/alerts/{id}/comment"))
            .header("origin", &origin)
            .header("cookie", &cookie)
            .json(&json!({"comment": "trạm làm việc"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "queued on the workstation");
    }
    // The Vinh OC acknowledges the directive; the province withdraws it meanwhile.
    let commune = Actor {
        name: "nv-vinh".into(),
        role: Role::OcStaff,
        units: vec![VINH.into()],
    };
    vinh.operate(
        Op::Directive {
            id: vinh_d.id,
            action: DirectiveAction::Ack,
            text: None,
        },
        commune.clone(),
    )
    .await
    .unwrap();
    // Later than the acknowledgement (within the same millisecond two nodes' acts are
    // concurrent, and the merge orders them by node name).
    tokio::time::sleep(Duration::from_millis(20)).await;
    ioc.operate(
        Op::Directive {
            id: d.id,
            action: DirectiveAction::Cancel,
            text: Some("Đã kiểm tra bằng camera".into()),
        },
        leader,
    )
    .await
    .unwrap();
    // The commune works its incidents' first step; the province comments on each.
    for id in &incidents {
        nam_dan
            .operate(
                Op::Check {
                    incident: *id,
                    step: "verify".into(),
                    item: 0,
                    done: true,
                },
                chief.clone(),
            )
            .await
            .unwrap();
    }
    let watch = Actor {
        name: "thanh".into(),
        role: Role::Supervisor,
        units: vec![],
    };
    for i in block(ioc.incidents(vec![], 1_000)).unwrap() {
        ioc.operate(
            Op::Comment {
                incident: i.id,
                comment: Some("Tỉnh đang theo dõi camera".into()),
            },
            watch.clone(),
        )
        .await
        .unwrap();
    }
    // Two hours of readings of the commune's gauges, 4 hours ago, a reading a minute.
    let start = chrono::Utc::now() - chrono::Duration::hours(4);
    let mut items = Vec::new();
    for m in 0..120 {
        for g in 0..GAUGES {
            items.push(level_at(
                &format!("wl-{g}"),
                4.0 + ((g * 7 + m as usize) % 20) as f64 / 10.0,
                start + chrono::Duration::minutes(m),
            ));
        }
    }
    let r = nam_dan.sender().ingest("t", items).await.unwrap();
    assert_eq!(r.history as usize, 120 * GAUGES);

    // The cables are in again.
    link_nd.restore();
    link_v.restore();
    link_ws.restore();
    let took = within(60, "every node linked, nothing waiting", || {
        linked(&nam_dan) && linked(&vinh) && ws_health()["upstream"]["state"] == "connected"
    })
    .await;
    eprintln!("converged {took:?} after the cables were back");

    // The same alerts at the province and the commune, each act once.
    within(20, "the commune's alerts equal at both", || {
        let (p, c) = (alerts_by_entity(&ioc), alerts_by_entity(&nam_dan));
        p.len() == GAUGES && p == c
    })
    .await;
    let alerts = alerts_by_entity(&ioc);
    let mut resolved = 0;
    for (entity, a) in &alerts {
        let by = |who: &str| a.events.iter().filter(|e| e.actor == who).count();
        let ws = by("lan");
        let province = by("truc-ban");
        assert_eq!(
            by("nv-xa"),
            ACTS,
            "{entity}: the commune's acts once each: {:?}",
            a.events
        );
        assert_eq!(province, ACTS, "{entity}: the province's acts once each");
        assert!(ws <= 1, "{entity}: the workstation's comment at most once");
        assert!(a
            .events
            .iter()
            .filter(|e| e.actor == "nv-xa")
            .all(|e| e.node.as_deref() == Some("oc-nam-dan")));
        if a.state == AlertState::Resolved {
            resolved += 1;
        }
    }
    assert_eq!(resolved, GAUGES / 2, "the province's resolutions stand");
    let ws_total: usize = alerts
        .values()
        .map(|a| a.events.iter().filter(|e| e.actor == "lan").count())
        .sum();
    assert_eq!(
        ws_total,
        ws_acts.len(),
        "each of the workstation's acts landed once"
    );

    // The incidents: the same at both, each act once, from where it was made.
    within(20, "the commune's incidents equal at both", || {
        let (p, c) = (incidents_by_title(&ioc), incidents_by_title(&nam_dan));
        p.len() == INCIDENTS && p == c
    })
    .await;
    for (title, i) in incidents_by_title(&ioc) {
        let of = |who: &str, kind: IncidentEventKind| {
            i.events
                .iter()
                .filter(|e| e.actor == who && e.kind == kind)
                .map(|e| e.node.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of("to-truong", IncidentEventKind::Checked),
            vec!["oc-nam-dan"],
            "{title}: the commune's tick once: {:?}",
            i.events
        );
        assert_eq!(
            of("thanh", IncidentEventKind::Comment),
            vec!["ioc-nghe-an"],
            "{title}: the province's comment once"
        );
        assert_eq!(i.alerts.len(), 1, "{title}: its alert is at the province");
        assert!(i.attention.is_none());
    }
    let joined = |e: &Engine| {
        block(e.alerts(AlertState::ALL.to_vec(), 10_000))
            .unwrap()
            .iter()
            .filter(|a| a.incident.is_some())
            .count()
    };
    assert_eq!(
        (joined(&ioc), joined(&nam_dan)),
        (INCIDENTS, INCIDENTS),
        "each incident's alert is in it at both"
    );

    // The directive: withdrawn at both, the commune's acknowledgement on it.
    within(10, "the directive equal at both", || {
        let p = block(ioc.directive(d.id)).unwrap().unwrap();
        let c = block(vinh.directive(vinh_d.id)).unwrap().unwrap();
        p.state == DirectiveState::Cancelled && p.reports == c.reports && p.state == c.state
    })
    .await;
    let p = block(ioc.directive(d.id)).unwrap().unwrap();
    assert_eq!(p.acked_by.as_deref(), Some("nv-vinh"), "{:?}", p.reports);

    // The outage's KPI of the commune: the province's equals the commune's.
    let day = start
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
        .date_naive();
    common::same_kpi_of_day(&ioc, &nam_dan, day, NAM_DAN, GAUGES);
    nam_dan.shutdown().await;
    vinh.shutdown().await;
}
