//! Three nodes, random operations, random partitions, reordered and repeated deliveries:
//! afterwards every node folds every alert to the same state, and every act is on its
//! timeline exactly once.

use super::fold_alert;
use crate::alerts::{AlertAction, AlertBook};
use crate::clock::{Clock, ManualClock};
use crate::sync::{AlertOp, Change, Gid, Hlc, HlcClock, OpRecord};
use chrono::{TimeZone, Utc};
use ioc_model::{Alert, AlertEvent, AlertEventKind, AlertState, Domain, Severity};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

struct Node {
    name: String,
    wall: Arc<ManualClock>,
    hlc: HlcClock,
    log: Vec<OpRecord>,
    seen: HashSet<(String, u64)>,
    next_seq: u64,
    next_alert: i64,
    /// The local id every alert gets on this node: different on each node, as in life.
    local_id: i64,
}

impl Node {
    /// `offset`: how far this node's clock is off, in minutes.
    fn new(name: &str, offset: i64) -> Node {
        let wall = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 5, 14, 0, 0).unwrap()
                + chrono::Duration::minutes(offset),
        ));
        Node {
            name: name.into(),
            hlc: HlcClock::new(wall.clone(), Hlc::default()),
            wall,
            log: Vec::new(),
            seen: HashSet::new(),
            next_seq: 1,
            next_alert: 1,
            local_id: 7 + 10 * offset.abs(),
        }
    }

    fn record(&mut self, alert: &Gid, op: AlertOp) {
        let r = OpRecord {
            origin: self.name.clone(),
            seq: self.next_seq,
            hlc: self.hlc.now(),
            change: Change::Alert {
                alert: alert.clone(),
                op,
                at: None,
            },
        };
        self.next_seq += 1;
        self.seen.insert((r.origin.clone(), r.seq));
        self.log.push(r);
    }

    /// Takes in an operation from elsewhere; a repeat is recognised and dropped.
    fn receive(&mut self, r: &OpRecord) {
        if self.seen.insert((r.origin.clone(), r.seq)) {
            self.hlc.observe(r.hlc);
            self.log.push(r.clone());
        }
    }

    fn ops_of(&self, gid: &Gid) -> Vec<&OpRecord> {
        self.log
            .iter()
            .filter(|r| matches!(&r.change, Change::Alert { alert, .. } if alert == gid))
            .collect()
    }

    fn view(&self, gid: &Gid) -> Option<Alert> {
        fold_alert(self.local_id, self.ops_of(gid), &|_| None, &|_| None)
    }

    /// The alert as every node must hold it (its local id aside).
    fn shared(&self, gid: &Gid) -> Option<Alert> {
        self.view(gid).map(|mut a| {
            a.id = 0;
            a
        })
    }

    fn open(&mut self) -> Gid {
        let gid = Gid::new(&self.name, self.next_alert);
        self.next_alert += 1;
        let at = self.wall.now();
        let alert = Alert {
            id: gid.id,
            rule: "pm25-high".into(),
            entity: Some(format!("st-{}", gid)),
            entity_name: "Trạm Vinh".into(),
            unit: Some("VINH".into()),
            unit_name: None,
            domain: Domain::Environment,
            category: "air_quality".into(),
            severity: Severity::Major,
            state: AlertState::New,
            active: true,
            message: "PM2.5 180".into(),
            metric: Some("pm25".into()),
            value: Some(180.0),
            raised_at: at,
            updated_at: at,
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
            events: vec![AlertEvent {
                at,
                actor: "system".into(),
                kind: AlertEventKind::Raised,
                from: None,
                to: Some(AlertState::New),
                comment: None,
                value: Some(180.0),
                node: None,
            }],
        };
        self.record(
            &gid,
            AlertOp::Opened {
                alert: Box::new(alert),
            },
        );
        gid
    }

    /// A person here acts on what this node shows: the act is made only if it is possible
    /// on this node's picture, as the console would allow it.
    fn act(&mut self, gid: &Gid, action: AlertAction, actor: String) -> bool {
        let Some(view) = self.view(gid) else {
            return false;
        };
        let at = self.hlc.last().time().max(self.wall.now());
        let id = view.id;
        let mut book = AlertBook::new(vec![view], id + 1);
        if book.act(id, &action, &actor, None, at, true).is_err() {
            return false;
        }
        self.record(
            gid,
            AlertOp::Acted {
                action,
                actor,
                comment: None,
                auto_resolve: true,
            },
        );
        true
    }
}

#[derive(Debug, Clone)]
enum Step {
    Open(usize),
    Act {
        node: usize,
        alert: usize,
        action: u8,
    },
    System {
        alert: usize,
        kind: u8,
    },
    Deliver {
        from: usize,
        to: usize,
        take: usize,
        reverse: bool,
        repeat: bool,
    },
    Cut(usize, usize),
    Heal(usize, usize),
    Tick {
        node: usize,
        secs: u16,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..3usize).prop_map(Step::Open),
        6 => (0..3usize, 0..8usize, 0..8u8).prop_map(|(node, alert, action)| Step::Act { node, alert, action }),
        2 => (0..8usize, 0..3u8).prop_map(|(alert, kind)| Step::System { alert, kind }),
        4 => (0..3usize, 0..3usize, 1..20usize, any::<bool>(), any::<bool>())
            .prop_map(|(from, to, take, reverse, repeat)| Step::Deliver { from, to, take, reverse, repeat }),
        1 => (0..3usize, 0..3usize).prop_map(|(a, b)| Step::Cut(a, b)),
        1 => (0..3usize, 0..3usize).prop_map(|(a, b)| Step::Heal(a, b)),
        2 => (0..3usize, 1..900u16).prop_map(|(node, secs)| Step::Tick { node, secs }),
    ]
}

fn action(k: u8, minute: i64, now: chrono::DateTime<Utc>) -> AlertAction {
    match k {
        0 => AlertAction::Ack,
        1 => AlertAction::Assign {
            to: "doi-moi-truong".into(),
        },
        2 => AlertAction::Start,
        3 => AlertAction::Comment,
        4 => AlertAction::Resolve,
        5 => AlertAction::Close,
        6 => AlertAction::Shelve {
            until: now + chrono::Duration::minutes(30 + minute),
        },
        _ => AlertAction::Unshelve,
    }
}

/// Delivers what `from` has that `to` lacks, the last `take` of it, possibly backwards and
/// twice.
fn deliver(nodes: &mut [Node], from: usize, to: usize, take: usize, reverse: bool, repeat: bool) {
    if from == to {
        return;
    }
    let missing: Vec<OpRecord> = nodes[from]
        .log
        .iter()
        .filter(|r| !nodes[to].seen.contains(&(r.origin.clone(), r.seq)))
        .cloned()
        .collect();
    let mut batch: Vec<OpRecord> = missing.into_iter().rev().take(take).collect();
    if !reverse {
        batch.reverse();
    }
    for r in &batch {
        nodes[to].receive(r);
        if repeat {
            nodes[to].receive(r);
        }
    }
}

fn run(steps: &[Step]) -> (Vec<Node>, Vec<Gid>, Vec<(usize, String)>) {
    let mut nodes = vec![
        Node::new("ioc", 0),
        Node::new("oc-a", 10),
        Node::new("oc-b", -3),
    ];
    let mut alerts: Vec<Gid> = Vec::new();
    let mut cut: HashSet<(usize, usize)> = HashSet::new();
    let mut acts: Vec<(usize, String)> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Open(n) => alerts.push(nodes[*n].open()),
            Step::Act {
                node,
                alert,
                action: k,
            } => {
                let Some(gid) = alerts.get(*alert).cloned() else {
                    continue;
                };
                let now = nodes[*node].wall.now();
                let actor = format!("nv{i}");
                // Comments need text: the console asks for it.
                let act = action(*k, i as i64, now);
                let made = if act == AlertAction::Comment {
                    nodes[*node].view(&gid).is_some() && {
                        let n = &mut nodes[*node];
                        n.record(
                            &gid,
                            AlertOp::Acted {
                                action: act,
                                actor: actor.clone(),
                                comment: Some("đã cử người".into()),
                                auto_resolve: true,
                            },
                        );
                        true
                    }
                } else {
                    nodes[*node].act(&gid, act, actor.clone())
                };
                if made {
                    acts.push((*node, actor));
                }
            }
            Step::System { alert, kind } => {
                // The engine's own changes happen at the alert's origin only.
                let Some(gid) = alerts.get(*alert).cloned() else {
                    continue;
                };
                let origin = nodes.iter().position(|n| n.name == gid.node).unwrap();
                let Some(view) = nodes[origin].view(&gid) else {
                    continue;
                };
                let op = match kind {
                    0 if view.active && view.state.is_open() => {
                        AlertOp::Cleared { auto_resolve: true }
                    }
                    1 if !view.active && view.state.is_open() => AlertOp::Reactivated {
                        value: 200.0,
                        message: "PM2.5 200".into(),
                    },
                    2 if view.state == AlertState::New => AlertOp::Escalated,
                    _ => continue,
                };
                nodes[origin].record(&gid, op);
            }
            Step::Deliver {
                from,
                to,
                take,
                reverse,
                repeat,
            } => {
                let link = ((*from).min(*to), (*from).max(*to));
                if !cut.contains(&link) {
                    deliver(&mut nodes, *from, *to, *take, *reverse, *repeat);
                }
            }
            Step::Cut(a, b) => {
                cut.insert(((*a).min(*b), (*a).max(*b)));
            }
            Step::Heal(a, b) => {
                cut.remove(&((*a).min(*b), (*a).max(*b)));
            }
            Step::Tick { node, secs } => nodes[*node]
                .wall
                .advance(chrono::Duration::seconds(i64::from(*secs))),
        }
    }
    // The links come back: everyone exchanges everything (twice round, any order).
    for _ in 0..2 {
        for from in [2, 0, 1] {
            for to in 0..3 {
                deliver(&mut nodes, from, to, usize::MAX, true, false);
            }
        }
    }
    (nodes, alerts, acts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn every_node_ends_in_the_same_state(
        steps in proptest::collection::vec(step(), 1..120)
            .prop_map(|mut v| { v.insert(0, Step::Open(1)); v })
    ) {
        let (nodes, alerts, acts) = run(&steps);
        prop_assert!(!alerts.is_empty());
        for n in &nodes {
            prop_assert_eq!(n.log.len(), nodes[0].log.len(), "{} has every operation once", &n.name);
            let distinct: HashSet<_> = n.log.iter().map(|r| (&r.origin, r.seq)).collect();
            prop_assert_eq!(distinct.len(), n.log.len());
        }
        let mut timelines: BTreeMap<String, usize> = BTreeMap::new();
        for gid in &alerts {
            let first = nodes[0].shared(gid).expect("opened");
            for n in &nodes[1..] {
                prop_assert_eq!(&n.shared(gid).expect("opened"), &first, "{} folds {} the same", &n.name, gid);
            }
            for e in &first.events {
                *timelines.entry(e.actor.clone()).or_default() += 1;
            }
        }
        // Every act is on its alert's timeline exactly once (applied or not), with its node.
        for (node, actor) in &acts {
            prop_assert_eq!(timelines.get(actor).copied(), Some(1), "act of {} at {}", actor, &nodes[*node].name);
        }
    }
}

/// The case: acknowledged at the commune, resolved and closed at the province while
/// the link was down. It ends closed, with both acts on its timeline, by whom and where.
#[test]
fn acknowledged_at_the_oc_and_closed_at_the_ioc_during_an_outage_ends_closed() {
    let mut nodes = vec![Node::new("ioc", 0), Node::new("oc-a", 10)];
    let gid = nodes[1].open();
    deliver(&mut nodes, 1, 0, usize::MAX, false, false);
    // The link is cut. Both sides act.
    nodes[0].wall.advance(chrono::Duration::minutes(20));
    assert!(nodes[0].act(&gid, AlertAction::Resolve, "lanh-dao".into()));
    assert!(nodes[0].act(&gid, AlertAction::Close, "lanh-dao".into()));
    nodes[1].wall.advance(chrono::Duration::minutes(2));
    assert!(nodes[1].act(&gid, AlertAction::Ack, "nv-xa".into()));
    // Back: both ways, in either order.
    deliver(&mut nodes, 0, 1, usize::MAX, true, true);
    deliver(&mut nodes, 1, 0, usize::MAX, false, false);
    let ioc = nodes[0].view(&gid).unwrap();
    assert_eq!(nodes[0].shared(&gid), nodes[1].shared(&gid));
    assert_eq!(ioc.state, AlertState::Closed);
    let by = |actor: &str| {
        ioc.events
            .iter()
            .filter(|e| e.actor == actor)
            .map(|e| (e.kind, e.node.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by("lanh-dao"),
        [
            (AlertEventKind::Transition, "ioc".to_string()),
            (AlertEventKind::Transition, "ioc".to_string())
        ]
    );
    // The OC's clock is ten minutes ahead: its acknowledgement (at OC 14:12) is ordered
    // before the IOC's acts (14:20) only if the clocks are believed; the hybrid times keep
    // what each node saw, so the ack came first, and the close after it still holds.
    let ack = by("nv-xa");
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].1, "oc-a");
    assert!(matches!(
        ack[0].0,
        AlertEventKind::Transition | AlertEventKind::NotApplied
    ));
}

/// An act the merged order made impossible is kept, marked, with the reason.
#[test]
fn an_act_after_the_close_is_kept_as_not_applied() {
    let mut nodes = vec![Node::new("ioc", 0), Node::new("oc-a", 0)];
    let gid = nodes[1].open();
    deliver(&mut nodes, 1, 0, usize::MAX, false, false);
    nodes[0].wall.advance(chrono::Duration::minutes(1));
    nodes[0].act(&gid, AlertAction::Resolve, "lanh-dao".into());
    nodes[0].act(&gid, AlertAction::Close, "lanh-dao".into());
    // The OC acknowledges later by the clock, without having heard of the close.
    nodes[1].wall.advance(chrono::Duration::minutes(5));
    assert!(nodes[1].act(&gid, AlertAction::Ack, "nv-xa".into()));
    deliver(&mut nodes, 0, 1, usize::MAX, false, false);
    deliver(&mut nodes, 1, 0, usize::MAX, false, false);
    let a = nodes[0].view(&gid).unwrap();
    assert_eq!(nodes[0].shared(&gid), nodes[1].shared(&gid));
    assert_eq!(a.state, AlertState::Closed);
    let last = a.events.last().unwrap();
    assert_eq!(
        (last.kind, last.actor.as_str(), last.node.as_deref()),
        (AlertEventKind::NotApplied, "nv-xa", Some("oc-a"))
    );
    assert_eq!(
        last.comment.as_deref(),
        Some("ack: the alert was already closed")
    );
    assert_eq!(a.acked_by, None, "an act without effect changes nothing");
}

/// A node cannot rewrite another node's alert: an opening or an engine's change it claims
/// for an alert that is not its own is ignored, on every node alike; its acts count.
#[test]
fn only_an_alerts_own_node_opens_and_changes_it() {
    let mut nodes = vec![Node::new("ioc", 0), Node::new("oc-a", 0)];
    let gid = nodes[0].open();
    deliver(&mut nodes, 0, 1, usize::MAX, false, false);
    let honest = nodes[1].shared(&gid);
    // The OC forges an earlier opening with another message, and a clear.
    let mut forged = match &nodes[0].log[0].change {
        Change::Alert {
            op: AlertOp::Opened { alert },
            ..
        } => alert.clone(),
        _ => panic!("an opening"),
    };
    forged.message = "giả mạo".into();
    let n = &mut nodes[1];
    for op in [
        AlertOp::Opened { alert: forged },
        AlertOp::Cleared { auto_resolve: true },
    ] {
        n.log.push(OpRecord {
            origin: "oc-a".into(),
            seq: n.next_seq,
            hlc: Hlc(1),
            change: Change::Alert {
                alert: gid.clone(),
                op,
                at: None,
            },
        });
        n.next_seq += 1;
    }
    assert_eq!(nodes[1].shared(&gid), honest, "ignored");
    assert!(
        nodes[1].act(&gid, AlertAction::Ack, "nv-xa".into()),
        "acts count"
    );
    assert_eq!(nodes[1].view(&gid).unwrap().state, AlertState::Acknowledged);
}

mod directives {
    //! Directives by the same rule: the province issues, the commune acknowledges and
    //! reports while cut off, the province withdraws meanwhile; every order of arrival folds
    //! to the same directive, the commune's late report kept as not applied, by whom and
    //! where.

    use super::super::fold_directive;
    use crate::operate::directives::DirectiveAction;
    use crate::sync::{Change, DirectiveOp, Gid, Hlc, OpRecord};
    use chrono::{TimeZone, Utc};
    use ioc_model::{Directive, DirectiveReport, DirectiveState};

    fn op(origin: &str, seq: u64, hlc: u64, gid: &Gid, op: DirectiveOp) -> OpRecord {
        OpRecord {
            origin: origin.into(),
            seq,
            hlc: Hlc(hlc),
            change: Change::Directive {
                directive: gid.clone(),
                op,
                at: None,
            },
        }
    }

    fn issued() -> Directive {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 14, 0, 0).unwrap();
        Directive {
            id: 12,
            incident: Some(4),
            unit: "17935".into(),
            unit_name: "Nam Đàn".into(),
            title: "Sơ tán 40 hộ ven sông Lam".into(),
            body: String::new(),
            deadline: at + chrono::Duration::hours(4),
            issued_by: "thanh".into(),
            issued_at: at,
            state: DirectiveState::Issued,
            progress: 0,
            acked_at: None,
            acked_by: None,
            done_at: None,
            updated_at: at,
            overdue: false,
            reports: vec![DirectiveReport {
                at,
                actor: "thanh".into(),
                kind: "issued".into(),
                progress: None,
                text: Some("Sơ tán 40 hộ ven sông Lam".into()),
                node: None,
            }],
        }
    }

    fn hlc_at(minutes: i64) -> u64 {
        let t = Utc.with_ymd_and_hms(2026, 12, 5, 14, 0, 0).unwrap()
            + chrono::Duration::minutes(minutes);
        (t.timestamp_millis() as u64) << 16
    }

    #[test]
    fn any_order_folds_to_the_same_directive() {
        let gid = Gid::new("ioc", 12);
        let acted = |action: DirectiveAction, actor: &str, text: Option<&str>| DirectiveOp::Acted {
            action,
            actor: actor.into(),
            text: text.map(str::to_string),
        };
        let ops = vec![
            op(
                "ioc",
                1,
                hlc_at(0),
                &gid,
                DirectiveOp::Issued {
                    directive: Box::new(issued()),
                },
            ),
            op(
                "oc-nam-dan",
                1,
                hlc_at(5),
                &gid,
                acted(DirectiveAction::Ack, "oc-lan", None),
            ),
            op(
                "ioc",
                2,
                hlc_at(20),
                &gid,
                acted(
                    DirectiveAction::Cancel,
                    "thanh",
                    Some("Đã có phương án khác"),
                ),
            ),
            op(
                "oc-nam-dan",
                2,
                hlc_at(30),
                &gid,
                acted(
                    DirectiveAction::Report { progress: Some(60) },
                    "oc-lan",
                    Some("24/40 hộ"),
                ),
            ),
            // A claim by the commune to have issued or flagged it is ignored.
            op("oc-nam-dan", 3, hlc_at(10), &gid, DirectiveOp::Overdue),
        ];
        let here = |_: &Gid| None;
        let first = fold_directive(3, &ops, &here).expect("issued");
        assert_eq!(first.id, 3, "the local id");
        assert_eq!(first.incident, None, "the province's incident is not here");
        assert_eq!(first.state, DirectiveState::Cancelled);
        assert!(!first.overdue);
        assert_eq!(first.acked_by.as_deref(), Some("oc-lan"));
        let kinds: Vec<(&str, Option<&str>)> = first
            .reports
            .iter()
            .map(|r| (r.kind.as_str(), r.node.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("issued", Some("ioc")),
                ("acknowledged", Some("oc-nam-dan")),
                ("cancelled", Some("ioc")),
                ("not_applied", Some("oc-nam-dan")),
            ]
        );
        assert!(first.reports[3]
            .text
            .as_deref()
            .is_some_and(|t| t.contains("cancelled") && t.contains("24/40 hộ")));
        // Every order, with repeats, folds the same.
        let n = ops.len();
        for rot in 0..n {
            let mut shuffled: Vec<OpRecord> =
                ops.iter().cycle().skip(rot).take(n).cloned().collect();
            shuffled.reverse();
            shuffled.push(ops[rot].clone());
            assert_eq!(fold_directive(3, &shuffled, &here).as_ref(), Some(&first));
        }
        // The province's own view maps its incident.
        let at_ioc =
            fold_directive(12, &ops, &|g: &Gid| (g.node == "ioc").then_some(g.id)).unwrap();
        assert_eq!(at_ioc.incident, Some(4));
        // Without its issuing, nothing yet.
        assert!(fold_directive(3, &ops[1..], &here).is_none());
    }
}

mod silences {
    //! A silence made at the province, ended early at two places at once: whatever the order
    //! of arrival, the first end in the merged order is the one, and an end after it was
    //! over changes nothing.

    use super::super::fold_silence;
    use crate::sync::{Change, Gid, Hlc, OpRecord, SilenceOp};
    use chrono::{TimeZone, Utc};
    use ioc_model::{Silence, SilenceMatch};

    fn at(minutes: i64) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 14, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    fn op(origin: &str, seq: u64, minutes: i64, gid: &Gid, op: SilenceOp) -> OpRecord {
        OpRecord {
            origin: origin.into(),
            seq,
            hlc: Hlc((at(minutes).timestamp_millis() as u64) << 16),
            change: Change::Silence {
                silence: gid.clone(),
                op,
                at: None,
            },
        }
    }

    #[test]
    fn the_first_end_in_the_merged_order_counts() {
        let gid = Gid::new("ioc", 5);
        let made = Silence {
            id: 5,
            matcher: SilenceMatch {
                unit: Some("17935".into()),
                ..Default::default()
            },
            starts_at: at(0),
            ends_at: at(120),
            comment: "Bảo trì".into(),
            created_by: "giam-sat".into(),
            created_at: at(0),
            ended_by: None,
        };
        let ended = |who: &str| SilenceOp::Ended { actor: who.into() };
        let ops = vec![
            op(
                "ioc",
                1,
                0,
                &gid,
                SilenceOp::Put {
                    silence: Box::new(made.clone()),
                },
            ),
            op("oc-nam-dan", 1, 30, &gid, ended("nv-xa")),
            op("ioc", 2, 31, &gid, ended("giam-sat")),
            // Only the silence's own node makes it.
            op(
                "oc-nam-dan",
                2,
                32,
                &gid,
                SilenceOp::Put {
                    silence: Box::new(Silence {
                        ends_at: at(600),
                        ..made.clone()
                    }),
                },
            ),
        ];
        let s = fold_silence(9, &ops).unwrap();
        assert_eq!(s.id, 9);
        assert_eq!(s.ends_at, at(30));
        assert_eq!(s.ended_by.as_deref(), Some("nv-xa"));
        let mut reversed = ops.clone();
        reversed.reverse();
        reversed.push(ops[2].clone());
        assert_eq!(fold_silence(9, &reversed), Some(s));
        // Ended after it was over: nothing changes.
        let late = vec![
            ops[0].clone(),
            op("oc-nam-dan", 1, 150, &gid, ended("nv-xa")),
        ];
        let s = fold_silence(9, &late).unwrap();
        assert_eq!((s.ends_at, s.ended_by), (at(120), None));
        assert!(fold_silence(9, &ops[1..3]).is_none(), "not made yet");
    }
}
