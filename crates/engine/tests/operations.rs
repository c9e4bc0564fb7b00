//! Operations through the real pipeline and store, on a clock the test moves: correlation of
//! alerts into incidents, an incident worked through its SOP across a restart (SLA timers
//! included) to a close that closes its alerts, directives on the incident's timeline,
//! silences and maintenance windows, SOP versions, and the after-action report.

#[path = "common/store.rs"]
mod test_store;

#[path = "common/missing.rs"]
mod missing;

use chrono::{DateTime, Duration, Utc};
use ioc_engine::operate::directives::DirectiveAction;
use ioc_engine::operate::{Actor, OpError};
use ioc_engine::pipeline::{Op, OpOutcome};
use ioc_engine::{Config, Engine, EngineError, Item, ManualClock, Obs};
use ioc_model::{
    AlertEventKind, AlertState, Domain, Entity, Incident, IncidentEventKind, IncidentState, Role,
    SilenceMatch, StepStatus, Unit,
};
use std::path::Path;
use std::sync::Arc;

/// Thursday 26 Nov 2026, 03:00 UTC = 10:00 in Nghệ An.
fn t0() -> DateTime<Utc> {
    "2026-11-26T03:00:00Z".parse().unwrap()
}

const RULES: &str = r#"
[alerts]
escalate_after = "15m"

[[rule]]
name = "camera-offline"
when = "metric == 'online' && value < 0.5"
severity = "major"
category = "camera"
message = "Camera mất kết nối"
incident = { alerts = 3, within = "30m" }

[[rule]]
name = "water-alarm-3"
when = "metric == 'water_level' && value >= 5.0"
severity = "critical"
category = "flood"
message = "Mực nước {value} m vượt báo động III"
incident = {}
"#;

fn config(dir: &Path) -> Config {
    let mut c = Config::parse(RULES).unwrap().without_demo();
    c.paths.data = Some(dir.to_owned());
    c.store.url = test_store::url_for(dir);
    c
}

async fn start(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    let e = Engine::start_with_clock(config(dir), clock.clone())
        .await
        .unwrap();
    assert!(
        e.rule_errors().await.is_empty(),
        "{:?}",
        e.rule_errors().await
    );
    e
}

fn units() -> Vec<Item> {
    [("16681", "Phường Thành Vinh"), ("17935", "Xã Nam Đàn")]
        .into_iter()
        .map(|(code, name)| {
            Item::Unit(Unit {
                code: code.into(),
                name: name.into(),
                full_name: None,
                parent: None,
                lon: None,
                lat: None,
            })
        })
        .collect()
}

fn device(id: &str, kind: &str, unit: &str) -> Item {
    let domain = if kind == "Camera" {
        Domain::Safety
    } else {
        Domain::Water
    };
    Item::Entity(Box::new(
        Entity::new(id, kind, &format!("{kind} {id}"), domain)
            .at(105.68, 18.67)
            .in_unit(unit, unit),
    ))
}

fn obs(entity: &str, metric: &str, minute: i64, value: f64) -> Item {
    Item::Obs(Obs {
        entity: Arc::from(entity),
        metric: Arc::from(metric),
        time: t0() + Duration::minutes(minute),
        value,
    })
}

async fn feed(engine: &Engine, clock: &ManualClock, items: Vec<Item>) {
    if let Some(Item::Obs(o)) = items.last() {
        clock.set(clock_max(clock, o.time));
    }
    let r = engine.sender().ingest("t", items).await.unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
}

fn clock_max(clock: &ManualClock, t: DateTime<Utc>) -> DateTime<Utc> {
    use ioc_engine::Clock;
    clock.now().max(t)
}

fn who(name: &str, role: Role, units: &[&str]) -> Actor {
    Actor {
        name: name.into(),
        role,
        units: units.iter().map(|u| u.to_string()).collect(),
    }
}

async fn op(engine: &Engine, actor: &Actor, op: Op) -> Result<OpOutcome, EngineError> {
    engine.operate(op, actor.clone()).await
}

async fn incident_op(engine: &Engine, actor: &Actor, o: Op) -> Incident {
    match op(engine, actor, o).await.unwrap() {
        OpOutcome::Incident(i) => *i,
        other => panic!("{other:?}"),
    }
}

/// The federation's log holds, for every alert, the operations that fold to exactly what the
/// store holds of it (state, fields and timeline): what another node rebuilds from the log is
/// what this one has.
async fn log_folds_to_the_store(engine: &Engine) {
    let ids: Vec<i64> = {
        let c = ioc_engine::store::connect_path(engine.store()).unwrap();
        let ids: Result<Vec<i64>, _> = c
            .prepare("SELECT id FROM alerts ORDER BY id")
            .unwrap()
            .query_map(ioc_engine::store::db::params![], |r| r.get(0))
            .unwrap()
            .collect();
        ids.unwrap()
    };
    assert!(!ids.is_empty(), "alerts to check");
    let node = engine.node().to_string();
    for id in ids {
        let stored = engine.alert(id).await.unwrap().expect("stored");
        let ops = engine
            .reader()
            .ops_of(&format!("alert:{node}/{id}"))
            .unwrap();
        let folded = ioc_engine::sync::fold::fold_alert(
            id,
            &ops,
            &|g| (g.node == node).then_some(g.id),
            &|g| (g.node == node).then_some(g.id),
        )
        .unwrap_or_else(|| panic!("alert {id} has its opening in the log"));
        assert_eq!(
            folded,
            stored,
            "alert {id} folded from {} operations",
            ops.len()
        );
    }
}

fn step(i: &Incident, id: &str) -> StepStatus {
    i.steps.iter().find(|s| s.id == id).unwrap().status
}

#[tokio::test]
async fn three_cameras_down_in_one_commune_make_one_incident() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    let mut items = units();
    for (id, unit) in [
        ("c1", "16681"),
        ("c2", "16681"),
        ("c3", "16681"),
        ("c4", "16681"),
        ("c9", "17935"),
    ] {
        items.push(device(id, "Camera", unit));
    }
    feed(&engine, &clock, items).await;
    feed(
        &engine,
        &clock,
        vec![obs("c1", "online", 0, 0.0), obs("c9", "online", 1, 0.0)],
    )
    .await;
    feed(&engine, &clock, vec![obs("c2", "online", 10, 0.0)]).await;
    assert!(engine.hub().incidents().is_empty(), "two are not enough");
    feed(&engine, &clock, vec![obs("c3", "online", 20, 0.0)]).await;
    let incidents = engine.hub().incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let i = &incidents[0];
    assert_eq!(i.alerts.len(), 3);
    assert_eq!(i.unit.as_deref(), Some("16681"));
    assert_eq!(i.opened_by, "system");
    let sop = i.sop.as_ref().expect("the category's SOP");
    assert_eq!((sop.name.as_str(), sop.version), ("camera-failure", 1));
    assert_eq!(step(i, "check_remote"), StepStatus::Ready);
    // Every alert of the group knows its incident; the other commune's does not.
    for a in engine.hub().open_alerts() {
        let expected = (a.unit.as_deref() == Some("16681")).then_some(i.id);
        assert_eq!(a.incident, expected, "{a:?}");
    }
    // A fourth camera of the commune joins the open incident.
    feed(&engine, &clock, vec![obs("c4", "online", 25, 0.0)]).await;
    let i = engine.hub().incident(i.id).unwrap();
    assert_eq!(i.alerts.len(), 4);
    let full = engine.incident(i.id).await.unwrap().unwrap();
    let added = full
        .events
        .iter()
        .filter(|e| e.kind == IncidentEventKind::AlertAdded)
        .count();
    assert_eq!(added, 4);
    let a4 = engine
        .hub()
        .open_alerts()
        .into_iter()
        .find(|a| a.entity.as_deref() == Some("c4"))
        .unwrap();
    let a4 = engine.alert(a4.id).await.unwrap().unwrap();
    assert!(a4.events.iter().any(|e| e.kind == AlertEventKind::Incident));
    log_folds_to_the_store(&engine).await;
    engine.shutdown().await;
}

/// The window expires: three cameras down in one commune 20 minutes apart are spread over
/// 40 minutes, more than the rule's 30, and open nothing; the fourth, 5 minutes after the
/// third, makes three within 30 minutes, and the incident is theirs (the first has expired).
#[tokio::test]
async fn alerts_spread_over_more_than_the_window_open_no_incident() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    let mut items = units();
    for id in ["c1", "c2", "c3", "c4"] {
        items.push(device(id, "Camera", "16681"));
    }
    feed(&engine, &clock, items).await;
    for (id, minute) in [("c1", 0), ("c2", 20), ("c3", 40)] {
        feed(&engine, &clock, vec![obs(id, "online", minute, 0.0)]).await;
    }
    let open = engine.hub().open_alerts();
    assert_eq!(open.len(), 3, "three alerts raised: {open:?}");
    assert!(
        engine.hub().incidents().is_empty(),
        "3 alerts over 40 minutes are not 3 within 30: {:?}",
        engine.hub().incidents()
    );
    assert!(open.iter().all(|a| a.incident.is_none()), "{open:?}");

    feed(&engine, &clock, vec![obs("c4", "online", 45, 0.0)]).await;
    let incidents = engine.hub().incidents();
    assert_eq!(incidents.len(), 1, "c2, c3, c4 within 25 minutes");
    let id_of = |entity: &str| {
        engine
            .hub()
            .open_alerts()
            .into_iter()
            .find(|a| a.entity.as_deref() == Some(entity))
            .unwrap()
            .id
    };
    assert_eq!(
        incidents[0].alerts,
        vec![id_of("c2"), id_of("c3"), id_of("c4")],
        "the alert of minute 0 had left the window"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn an_incident_worked_through_its_sop_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let op_lan = who("lan", Role::Operator, &[]);
    let sup = who("minh", Role::Supervisor, &[]);
    let engine = start(dir.path(), &clock).await;
    let mut items = units();
    items.push(device("wl-1", "WaterLevelGauge", "17935"));
    // A camera of the demo's kind beside the gauge: the report shows its still.
    let Item::Entity(mut cam) = device("cam-1", "Camera", "17935") else {
        unreachable!()
    };
    cam.attributes.insert("simulated".into(), true.into());
    items.push(Item::Entity(cam));
    feed(&engine, &clock, items).await;
    feed(&engine, &clock, vec![obs("wl-1", "water_level", 0, 5.4)]).await;
    let i = engine
        .hub()
        .incidents()
        .pop()
        .expect("alarm III opens an incident");
    let id = i.id;
    assert_eq!(i.sop.as_ref().unwrap().name, "flood-warning");
    assert_eq!(step(&i, "verify"), StepStatus::Ready);
    let due = i.steps[0].due_at.unwrap();
    assert_eq!(due, t0() + Duration::minutes(15));

    // The checklist, then the step with its comment.
    for item in 0..3 {
        incident_op(
            &engine,
            &op_lan,
            Op::Check {
                incident: id,
                step: "verify".into(),
                item,
                done: true,
            },
        )
        .await;
    }
    let e = op(
        &engine,
        &op_lan,
        Op::StepDone {
            incident: id,
            step: "verify".into(),
            answer: None,
            comment: None,
        },
    )
    .await;
    assert!(
        matches!(e, Err(EngineError::Op(OpError::Invalid(_)))),
        "{e:?}"
    );
    clock.set(t0() + Duration::minutes(5));
    let i = incident_op(
        &engine,
        &op_lan,
        Op::StepDone {
            incident: id,
            step: "verify".into(),
            answer: None,
            comment: Some("Trạm hạ lưu cũng vượt BĐ III".into()),
        },
    )
    .await;
    assert_eq!(step(&i, "verify"), StepStatus::Done);
    assert_eq!(step(&i, "assess"), StepStatus::Ready);

    // Restart: the steps and their SLA timers are where they were.
    engine.shutdown().await;
    drop(engine);
    let engine = start(dir.path(), &clock).await;
    let i = engine.hub().incident(id).expect("resumed");
    assert_eq!(step(&i, "assess"), StepStatus::Ready);
    // The supervisor's question is 15 minutes late at minute 21.
    clock.set(t0() + Duration::minutes(21));
    engine.tick().await.unwrap();
    let i = engine.hub().incident(id).unwrap();
    assert!(i.steps.iter().find(|s| s.id == "assess").unwrap().overdue);
    assert_eq!(i.late_steps(clock_max(&clock, t0())), 1);

    // The operator may not answer the supervisor's question.
    let e = op(
        &engine,
        &op_lan,
        Op::StepDone {
            incident: id,
            step: "assess".into(),
            answer: Some("1".into()),
            comment: Some("x".into()),
        },
    )
    .await;
    assert!(
        matches!(e, Err(EngineError::Op(OpError::Forbidden(_)))),
        "{e:?}"
    );
    let i = incident_op(
        &engine,
        &sup,
        Op::StepDone {
            incident: id,
            step: "assess".into(),
            answer: Some("Sơ tán dân".into()),
            comment: Some("Nước lên nhanh".into()),
        },
    )
    .await;
    assert_eq!(step(&i, "evacuate"), StepStatus::Ready);
    assert_eq!(step(&i, "monitor"), StepStatus::Skipped);
    // The evacuation needs a photo: refused without, accepted once one is attached.
    let e = op(
        &engine,
        &sup,
        Op::StepDone {
            incident: id,
            step: "evacuate".into(),
            answer: None,
            comment: Some("40 hộ".into()),
        },
    )
    .await;
    assert!(e.is_err());
    for item in 0..3 {
        incident_op(
            &engine,
            &sup,
            Op::Check {
                incident: id,
                step: "evacuate".into(),
                item,
                done: true,
            },
        )
        .await;
    }
    let OpOutcome::Attachment(att) = op(
        &engine,
        &sup,
        Op::Attach {
            incident: id,
            step: Some("evacuate".into()),
            name: "diem-so-tan.jpg".into(),
            content_type: "image/jpeg".into(),
            data: vec![0xff, 0xd8, 0xff, 0xe0, 1, 2, 3],
        },
    )
    .await
    .unwrap() else {
        panic!("an attachment")
    };
    let (info, bytes) = engine.attachment(att.id).await.unwrap().unwrap();
    assert_eq!(bytes, vec![0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    assert_eq!(info.sha256.len(), 64);
    incident_op(
        &engine,
        &sup,
        Op::StepDone {
            incident: id,
            step: "evacuate".into(),
            answer: None,
            comment: Some("40 hộ đã sơ tán".into()),
        },
    )
    .await;
    for item in 0..2 {
        incident_op(
            &engine,
            &op_lan,
            Op::Check {
                incident: id,
                step: "notify_commune".into(),
                item,
                done: true,
            },
        )
        .await;
    }
    incident_op(
        &engine,
        &op_lan,
        Op::StepDone {
            incident: id,
            step: "notify_commune".into(),
            answer: None,
            comment: None,
        },
    )
    .await;
    let i = incident_op(
        &engine,
        &sup,
        Op::StepDone {
            incident: id,
            step: "close_out".into(),
            answer: None,
            comment: Some("Không thiệt hại về người".into()),
        },
    )
    .await;
    assert!(i.steps.iter().all(|s| s.status.finished()));

    // Resolving resolves its alerts; closing closes them.
    let i = incident_op(
        &engine,
        &op_lan,
        Op::Resolve {
            incident: id,
            comment: None,
        },
    )
    .await;
    assert_eq!(i.state, IncidentState::Resolved);
    let alert = engine.alert(i.alerts[0]).await.unwrap().unwrap();
    assert_eq!(alert.state, AlertState::Resolved);
    let i = incident_op(
        &engine,
        &sup,
        Op::Close {
            incident: id,
            comment: Some("Kết thúc".into()),
        },
    )
    .await;
    assert_eq!(i.state, IncidentState::Closed);
    assert!(
        engine.hub().incident(id).is_none(),
        "closed incidents leave the live picture"
    );
    let alert = engine.alert(i.alerts[0]).await.unwrap().unwrap();
    assert_eq!(alert.state, AlertState::Closed);
    assert!(engine.hub().open_alerts().is_empty());

    // The after-action report has it all, in order.
    let r = engine.after_action(id).await.unwrap().unwrap();
    let csv = String::from_utf8(r.csv()).unwrap();
    for needle in [
        "opened",
        "step_done",
        "Sơ tán dân",
        "attachment",
        "diem-so-tan.jpg",
        "closed",
        "→ resolved",
        "minh",
        "lan",
    ] {
        assert!(csv.contains(needle), "{needle} not in\n{csv}");
    }
    let times: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "in time order");
    let pdf = r.pdf().unwrap();
    assert!(
        pdf.starts_with(b"%PDF-") && pdf.len() > 5_000,
        "{}",
        pdf.len()
    );
    if let Some(text) = pdf_text(&pdf) {
        for needle in [
            "Báo cáo sau sự cố",
            "flood-warning",
            "Sơ tán dân",
            "Diễn biến",
            "minh",
            "Camera và video bằng chứng",
            "Camera cam-1",
            "ảnh mô phỏng",
        ] {
            assert!(text.contains(needle), "{needle} not in the PDF:\n{text}");
        }
    }
    log_folds_to_the_store(&engine).await;
    engine.shutdown().await;
}

/// The text of a PDF, by poppler's `pdftotext` (installed with the test tools); `None` when
/// it is not installed (a failure under CI).
fn pdf_text(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = missing::run_tool(
        std::process::Command::new("pdftotext")
            .arg("-layout")
            .arg(&path)
            .arg("-"),
        "Debian package poppler-utils",
    )?;
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn directives_go_on_the_incident_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    let mut items = units();
    items.push(device("wl-1", "WaterLevelGauge", "17935"));
    feed(&engine, &clock, items).await;
    feed(&engine, &clock, vec![obs("wl-1", "water_level", 0, 5.4)]).await;
    let id = engine.hub().incidents()[0].id;
    let leader = who("thanh", Role::Leader, &[]);
    let oc = who("oc-namdan", Role::OcStaff, &["17935"]);
    let oc_vinh = who("oc-vinh", Role::OcStaff, &["16681"]);
    let issue = |unit: &str, minutes: i64| Op::Issue {
        unit: unit.into(),
        title: "Sơ tán các hộ ven sông Lam".into(),
        body: "Báo cáo số hộ trước 18:00".into(),
        deadline: t0() + Duration::minutes(minutes),
        incident: Some(id),
    };
    assert!(
        matches!(
            op(&engine, &leader, issue("99999", 60)).await,
            Err(EngineError::Op(OpError::Invalid(_)))
        ),
        "no such unit"
    );
    let OpOutcome::Directive(d) = op(&engine, &leader, issue("17935", 60)).await.unwrap() else {
        panic!()
    };
    assert_eq!(d.unit_name, "Xã Nam Đàn");
    assert_eq!(engine.hub().directives().len(), 1);
    let act = |id, a| Op::Directive {
        id,
        action: a,
        text: Some("Đã nhận".into()),
    };
    assert!(matches!(
        op(&engine, &oc_vinh, act(d.id, DirectiveAction::Ack)).await,
        Err(EngineError::Op(OpError::OutOfScope(_)))
    ));
    op(&engine, &oc, act(d.id, DirectiveAction::Ack))
        .await
        .unwrap();
    op(
        &engine,
        &oc,
        Op::Directive {
            id: d.id,
            action: DirectiveAction::Report { progress: Some(50) },
            text: Some("20/40 hộ".into()),
        },
    )
    .await
    .unwrap();
    clock.set(t0() + Duration::minutes(61));
    engine.tick().await.unwrap();
    let live = engine.hub().directives();
    assert!(live[0].overdue, "past its deadline");
    let OpOutcome::Directive(d) = op(&engine, &oc, act(d.id, DirectiveAction::Done))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(d.on_time(), Some(false));
    assert!(engine.hub().directives().is_empty());
    let i = engine.incident(id).await.unwrap().unwrap();
    let kinds: Vec<IncidentEventKind> = i
        .events
        .iter()
        .filter(|e| e.directive.is_some())
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            IncidentEventKind::DirectiveIssued,
            IncidentEventKind::DirectiveAcknowledged,
            IncidentEventKind::DirectiveReport,
            IncidentEventKind::DirectiveOverdue,
            IncidentEventKind::DirectiveDone,
        ]
    );
    assert_eq!(i.directives.len(), 1);
    assert_eq!(i.directives[0].reports.len(), 5);
    // Recorded in the audit log too.
    let audit = engine
        .audit(Some(format!("directive:{}", d.id)), 50)
        .await
        .unwrap();
    assert_eq!(audit.len(), 5);
    engine.shutdown().await;
}

#[tokio::test]
async fn silences_hold_alerts_back_and_let_them_go() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    let sup = who("minh", Role::Supervisor, &[]);
    let mut items = units();
    for id in ["c1", "c2", "c3"] {
        items.push(device(id, "Camera", "16681"));
    }
    feed(&engine, &clock, items).await;
    // A maintenance window for the commune's cameras from minute 10 to 70.
    let OpOutcome::Silence(s) = op(
        &engine,
        &sup,
        Op::Silence {
            matcher: SilenceMatch {
                unit: Some("16681".into()),
                category: Some("camera".into()),
                ..Default::default()
            },
            starts_at: t0() + Duration::minutes(10),
            ends_at: t0() + Duration::minutes(70),
            comment: Some("Nâng cấp đường truyền".into()),
        },
    )
    .await
    .unwrap() else {
        panic!()
    };
    // Before it starts, an alert is an ordinary alert.
    feed(&engine, &clock, vec![obs("c1", "online", 5, 0.0)]).await;
    let a1 = engine.hub().open_alerts()[0].clone();
    assert_eq!(a1.silenced, None);
    // At the start, the new one is held back; new ones raised inside are too, and they
    // neither escalate nor make an incident (three cameras would otherwise).
    clock.set(t0() + Duration::minutes(10));
    engine.tick().await.unwrap();
    let a1 = engine.alert(a1.id).await.unwrap().unwrap();
    assert_eq!(a1.silenced, Some(s.id));
    feed(
        &engine,
        &clock,
        vec![obs("c2", "online", 12, 0.0), obs("c3", "online", 13, 0.0)],
    )
    .await;
    assert!(engine
        .hub()
        .open_alerts()
        .iter()
        .all(|a| a.silenced == Some(s.id)));
    assert!(engine.hub().incidents().is_empty());
    clock.set(t0() + Duration::minutes(40));
    engine.tick().await.unwrap();
    assert!(
        engine.hub().open_alerts().iter().all(|a| a.escalation == 0),
        "no escalation while silenced"
    );
    // Ended early: they come back into the queue, with an event.
    let OpOutcome::Silence(ended) = op(&engine, &sup, Op::EndSilence { id: s.id })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(ended.ended_by.as_deref(), Some("minh"));
    assert!(engine.hub().silences().is_empty());
    let back = engine.hub().open_alerts();
    assert_eq!(back.len(), 3);
    assert!(back.iter().all(|a| a.silenced.is_none()));
    let a1 = engine.alert(a1.id).await.unwrap().unwrap();
    assert!(a1
        .events
        .iter()
        .any(|e| e.kind == AlertEventKind::Unsilenced));
    // Escalation counts from when they came back, not from when they were raised.
    clock.set(t0() + Duration::minutes(54));
    engine.tick().await.unwrap();
    assert!(engine.hub().open_alerts().iter().all(|a| a.escalation == 0));
    clock.set(t0() + Duration::minutes(56));
    engine.tick().await.unwrap();
    assert!(engine.hub().open_alerts().iter().all(|a| a.escalation == 1));
    // Refused: a silence without a reason, or matching everything.
    assert!(op(
        &engine,
        &sup,
        Op::Silence {
            matcher: SilenceMatch::default(),
            starts_at: clock_max(&clock, t0()),
            ends_at: t0() + Duration::hours(3),
            comment: Some("x".into())
        }
    )
    .await
    .is_err());
    log_folds_to_the_store(&engine).await;
    engine.shutdown().await;
}

#[tokio::test]
async fn a_template_edit_is_a_new_version_and_running_incidents_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = start(dir.path(), &clock).await;
    let sops = engine.sops().await.unwrap();
    let names: Vec<&str> = sops.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "air-pollution",
            "camera-failure",
            "flood-warning",
            "traffic-accident"
        ]
    );
    let mut items = units();
    items.push(device("wl-1", "WaterLevelGauge", "17935"));
    items.push(device("wl-2", "WaterLevelGauge", "16681"));
    feed(&engine, &clock, items).await;
    feed(&engine, &clock, vec![obs("wl-1", "water_level", 0, 5.4)]).await;
    let first = engine.hub().incidents()[0].clone();
    assert_eq!(first.sop.as_ref().unwrap().version, 1);

    let flood = sops.iter().find(|s| s.name == "flood-warning").unwrap();
    let bad = flood.text.replace("sla = \"15m\"", "sla = \"soon\"");
    let c = engine.check_sop(&bad, Some("flood-warning")).await;
    assert!(!c.ok && c.problems[0].line > 1, "{c:?}");
    let short = "name = \"flood-warning\"\ntitle = \"Lũ (rút gọn)\"\ncategories = [\"flood\"]\n\n[[step]]\nid = \"call\"\ntitle = \"Gọi xã\"\n";
    let saved = engine
        .put_sop(short, Some("flood-warning"), "minh")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.version, 2);
    assert_eq!(saved.versions, vec![1, 2]);
    // The running incident keeps version 1 and its six steps; a new one gets version 2.
    let still = engine.hub().incident(first.id).unwrap();
    assert_eq!(still.sop.as_ref().unwrap().version, 1);
    assert_eq!(still.steps.len(), 6);
    clock.set(t0() + Duration::minutes(1));
    feed(&engine, &clock, vec![obs("wl-2", "water_level", 1, 5.6)]).await;
    let second = engine
        .hub()
        .incidents()
        .into_iter()
        .find(|i| i.id != first.id)
        .unwrap();
    assert_eq!(second.sop.as_ref().unwrap().version, 2);
    assert_eq!(second.steps.len(), 1);
    // Version 1 can still be read; a removed template no longer starts incidents.
    assert!(engine
        .sop_version("flood-warning", 1)
        .await
        .unwrap()
        .unwrap()
        .contains("verify"));
    engine.delete_sop("flood-warning", "minh").await.unwrap();
    assert!(engine
        .sops()
        .await
        .unwrap()
        .iter()
        .all(|s| s.name != "flood-warning"));
    let audit = engine
        .audit(Some("sop:flood-warning".into()), 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
    // After a restart the edit is still in force (and the demo templates are not seeded again).
    engine.shutdown().await;
    drop(engine);
    let engine = start(dir.path(), &clock).await;
    let names: Vec<String> = engine
        .sops()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        vec!["air-pollution", "camera-failure", "traffic-accident"]
    );
    engine.shutdown().await;
}
