//! The province closes an incident while the commune, cut off, is still working its SOP:
//! whatever the order of arrival, every node folds the same incident, closed, with the
//! commune's work kept on the timeline as not applied and the incident flagged for a person
//! until someone reviews it.

use super::fold_incident;
use crate::operate::incidents::IncidentBook;
use crate::operate::sop::{self, SopTemplate};
use crate::operate::Actor;
use crate::sync::{Change, Gid, Hlc, IncidentAct, IncidentOp, OpRecord};
use chrono::{DateTime, TimeZone, Utc};
use ioc_model::{
    Alert, AlertState, Domain, Incident, IncidentEventKind, IncidentState, Role, Severity,
    StepStatus,
};

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 14, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
}

fn op(origin: &str, seq: u64, minutes: i64, gid: &Gid, op: IncidentOp) -> OpRecord {
    OpRecord {
        origin: origin.into(),
        seq,
        hlc: Hlc((at(minutes).timestamp_millis() as u64) << 16),
        change: Change::Incident {
            incident: gid.clone(),
            op,
            at: Some(at(minutes)),
        },
    }
}

fn acted(act: IncidentAct, actor: &str) -> IncidentOp {
    IncidentOp::Acted {
        act,
        actor: actor.into(),
    }
}

fn alert(id: i64) -> Alert {
    Alert {
        id,
        rule: "water-alarm-2".into(),
        entity: Some("wl-nam-dan".into()),
        entity_name: "Trạm Nam Đàn".into(),
        unit: Some("17935".into()),
        unit_name: Some("Nam Đàn".into()),
        domain: Domain::Water,
        category: "flood".into(),
        severity: Severity::Major,
        state: AlertState::New,
        active: true,
        message: "Mực nước 4.2 m".into(),
        metric: Some("water_level".into()),
        value: Some(4.2),
        raised_at: at(0),
        updated_at: at(0),
        cleared_at: None,
        acked_at: None,
        acked_by: None,
        count: 1,
        external_id: None,
        area: None,
        description: None,
        expires_at: None,
        assignee: None,
        shelved_until: None,
        escalation: 0,
        incident: None,
        silenced: None,
        resolved_at: None,
        events: Vec::new(),
    }
}

/// The incident as the province opened it (its alert is the commune's alert `oc/7`, held
/// at the province as 21), with its opening events.
fn opened() -> Incident {
    let text = sop::seed()
        .into_iter()
        .find(|(n, _)| *n == "flood-warning")
        .unwrap()
        .1;
    let template = SopTemplate {
        config: sop::parse(text).unwrap(),
        version: 3,
        text: text.into(),
        updated_at: at(0),
        updated_by: "admin".into(),
    };
    let thanh = Actor {
        name: "thanh".into(),
        role: Role::Supervisor,
        units: vec![],
    };
    let mut book = IncidentBook::new(vec![], 4);
    let c = book
        .open(&[&alert(21)], Some(&template), None, &thanh, None, at(0))
        .unwrap();
    let mut i = c.incident;
    i.events = c.events;
    i
}

fn history() -> Vec<OpRecord> {
    let gid = Gid::new("ioc", 4);
    let check = |item| IncidentAct::Check {
        step: "verify".into(),
        item,
        done: true,
    };
    vec![
        op(
            "ioc",
            1,
            0,
            &gid,
            IncidentOp::Opened {
                incident: Box::new(opened()),
                alerts: vec![Gid::new("oc", 7)],
            },
        ),
        op("oc", 1, 1, &gid, acted(check(0), "lan")),
        op("oc", 2, 2, &gid, acted(check(1), "lan")),
        op(
            "ioc",
            2,
            3,
            &gid,
            acted(
                IncidentAct::Resolve {
                    comment: Some("Nước đã rút".into()),
                },
                "thanh",
            ),
        ),
        op(
            "ioc",
            3,
            4,
            &gid,
            acted(IncidentAct::Close { comment: None }, "thanh"),
        ),
        // The commune, cut off, goes on with its steps.
        op("oc", 3, 5, &gid, acted(check(2), "lan")),
        op(
            "oc",
            4,
            6,
            &gid,
            acted(
                IncidentAct::StepDone {
                    step: "verify".into(),
                    answer: None,
                    comment: Some("Trạm hạ lưu cũng tăng".into()),
                },
                "lan",
            ),
        ),
        // A claim by the commune to have opened it, or flagged it late, is ignored.
        op("oc", 5, 7, &gid, IncidentOp::Overdue),
        op(
            "oc",
            6,
            -1,
            &gid,
            IncidentOp::Opened {
                incident: Box::new(Incident {
                    title: "Không phải của xã".into(),
                    ..opened()
                }),
                alerts: vec![],
            },
        ),
    ]
}

#[test]
fn closed_at_the_province_while_the_commune_worked_its_steps_is_flagged() {
    let ops = history();
    // At the commune: the alert is its own 7.
    let at_oc = |g: &Gid| (g.node == "oc").then_some(g.id);
    let first = fold_incident(2, "oc", &ops, &at_oc).expect("opened");
    assert_eq!(first.id, 2, "the local id");
    assert_eq!(first.title, opened().title, "only the province opens it");
    assert_eq!(first.alerts, vec![7]);
    assert_eq!(first.state, IncidentState::Closed);
    assert_eq!(first.closed_by.as_deref(), Some("thanh"));
    let verify = first.steps.iter().find(|s| s.id == "verify").unwrap();
    assert_eq!(
        verify.status,
        StepStatus::Ready,
        "the late work is not applied"
    );
    assert_eq!(
        verify.checklist.iter().filter(|c| c.done).count(),
        2,
        "the ticks before the close count"
    );
    assert!(!verify.overdue, "the commune cannot flag it late");
    let not_applied: Vec<(&str, Option<&str>, Option<&str>)> = first
        .events
        .iter()
        .filter(|e| e.kind == IncidentEventKind::NotApplied)
        .map(|e| (e.actor.as_str(), e.node.as_deref(), e.comment.as_deref()))
        .collect();
    assert_eq!(
        not_applied,
        vec![
            (
                "lan",
                Some("oc"),
                Some("check «verify»: the incident was already closed")
            ),
            (
                "lan",
                Some("oc"),
                Some("step_done «verify»: the incident was already closed")
            ),
        ]
    );
    let flag = first.attention.as_deref().expect("flagged for a person");
    assert!(
        flag.contains("check «verify»") && flag.contains("@ oc"),
        "{flag}"
    );
    assert!(flag.ends_with("(+1)"), "{flag}");
    // Every event says where it happened; the opening ones the province.
    assert!(first.events.iter().all(|e| e.node.is_some()));
    assert_eq!(first.events[0].node.as_deref(), Some("ioc"));
    assert_eq!(first.events[1].alert, Some(7), "mapped to the local alert");

    // Every order of arrival, with repeats, folds the same.
    let n = ops.len();
    for rot in 0..n {
        let mut shuffled: Vec<OpRecord> = ops.iter().cycle().skip(rot).take(n).cloned().collect();
        shuffled.reverse();
        shuffled.push(ops[rot].clone());
        assert_eq!(
            fold_incident(2, "oc", &shuffled, &at_oc).as_ref(),
            Some(&first)
        );
    }

    // The province folds the same incident, but for its ids.
    let at_ioc = |g: &Gid| (g == &Gid::new("oc", 7)).then_some(21);
    let mut province = fold_incident(4, "ioc", &ops, &at_ioc).unwrap();
    assert_eq!(province.alerts, vec![21]);
    province.id = 2;
    province.alerts = vec![7];
    for e in &mut province.events {
        e.alert = e.alert.map(|_| 7);
    }
    assert_eq!(province, first);

    // A node that does not hold the alert leaves it out.
    let elsewhere = fold_incident(9, "oc-b", &ops, &|_: &Gid| None).unwrap();
    assert!(elsewhere.alerts.is_empty());
    assert!(elsewhere.events.iter().all(|e| e.alert.is_none()));

    // Reviewed anywhere, the flag goes, with a line on the timeline.
    let mut reviewed = ops.clone();
    reviewed.push(op(
        "ioc",
        4,
        9,
        &Gid::new("ioc", 4),
        IncidentOp::Reviewed {
            actor: "thanh".into(),
            comment: Some("Đã gọi xã xác nhận".into()),
            seen: super::flag_count(first.attention.as_deref().unwrap()),
        },
    ));
    let after = fold_incident(2, "oc", &reviewed, &at_oc).unwrap();
    assert_eq!(after.attention, None);
    assert_eq!(after.state, IncidentState::Closed);
    let last = after.events.last().unwrap();
    assert_eq!(last.kind, IncidentEventKind::Reviewed);
    assert_eq!(last.node.as_deref(), Some("ioc"));

    // Without its opening, nothing yet.
    assert!(fold_incident(2, "oc", &ops[1..8], &at_oc).is_none());
}

#[test]
fn work_done_before_the_close_in_the_merged_order_counts() {
    // The commune's ticks and its step all come before the province resolves: applied, and
    // nothing needs a person.
    let gid = Gid::new("ioc", 4);
    let mut ops: Vec<OpRecord> = history()
        .into_iter()
        .filter(|r| r.origin == "ioc")
        .collect();
    for (n, item) in [0usize, 1, 2].into_iter().enumerate() {
        ops.push(op(
            "oc",
            n as u64 + 1,
            1,
            &gid,
            acted(
                IncidentAct::Check {
                    step: "verify".into(),
                    item,
                    done: true,
                },
                "lan",
            ),
        ));
    }
    // The same minute for the three: the sequence keeps them apart in the hybrid time.
    for (n, r) in ops.iter_mut().filter(|r| r.origin == "oc").enumerate() {
        r.hlc = Hlc(r.hlc.0 + n as u64);
    }
    let i = fold_incident(2, "oc", &ops, &|_: &Gid| Some(7)).unwrap();
    assert_eq!(i.state, IncidentState::Closed);
    assert_eq!(i.attention, None);
    let verify = i.steps.iter().find(|s| s.id == "verify").unwrap();
    assert!(verify.checklist.iter().all(|c| c.done));
    assert!(!i
        .events
        .iter()
        .any(|e| e.kind == IncidentEventKind::NotApplied));
}

#[test]
fn a_review_clears_only_what_its_reviewer_saw() {
    // The reviewer saw one flag; the second comes earlier in the merged order but reached
    // their node only later: it stays.
    let mut ops = history();
    ops.push(op(
        "ioc",
        4,
        9,
        &Gid::new("ioc", 4),
        IncidentOp::Reviewed {
            actor: "thanh".into(),
            comment: None,
            seen: 1,
        },
    ));
    let i = fold_incident(2, "oc", &ops, &|_: &Gid| Some(7)).unwrap();
    let left = i.attention.expect("one flag left");
    assert!(left.starts_with("step_done «verify»"), "{left}");
    assert_eq!(super::flag_count(&left), 1);
    assert_eq!(super::flag_count("a (+2)"), 3);
}

#[test]
fn an_alert_added_twice_folds_the_same_with_or_without_it() {
    // Joined again by hand at the province: refused alike on a node that holds the alert
    // and on one that does not.
    let mut ops = history();
    ops.push(op(
        "ioc",
        4,
        2,
        &Gid::new("ioc", 4),
        IncidentOp::AlertAdded {
            alert: Gid::new("oc", 7),
            snapshot: Box::new(alert(21)),
            actor: "thanh".into(),
        },
    ));
    let with = fold_incident(2, "oc", &ops, &|_: &Gid| Some(7)).unwrap();
    let mut without = fold_incident(2, "oc", &ops, &|_: &Gid| None).unwrap();
    assert_eq!(with.alerts, vec![7]);
    assert!(without.alerts.is_empty());
    without.alerts = vec![7];
    for (e, w) in without.events.iter_mut().zip(&with.events) {
        e.alert = w.alert;
    }
    assert_eq!(without, with);
    assert!(with
        .events
        .iter()
        .any(|e| e.kind == IncidentEventKind::NotApplied
            && e.comment.as_deref() == Some("add_alert: the alert is already in an incident")));
}

#[test]
fn a_remote_incident_loaded_last_leaves_the_group_to_this_nodes_own() {
    let mut own = opened();
    own.id = 1;
    let mut remote = opened();
    remote.id = 2;
    let mut book = IncidentBook::new(vec![own, remote], 3);
    book.set_remote([2]);
    assert_eq!(book.for_group("flood", Some("17935")), Some(1));
}
