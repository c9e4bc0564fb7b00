//! A simulated day of outage on manual clocks: the IOC and a commune OC (its clock ten
//! minutes fast), linked through a proxy the test cuts. While apart, the OC stores 500
//! gauges' readings a minute for the whole day (720,000) and both sides work the same 400
//! alerts as the day goes by: 2,000 acts at the IOC, about 1,200 at the OC (its rule
//! resolves an alert acknowledged after it cleared, so later acts there are refused), with
//! the clears, escalations and resolutions of the OC's own clock, about 2,000 alert
//! transitions on each side. Reconnected: every alert is the same at both, each act on it
//! once, every reading of the day at the IOC, and the IOC's KPI of the day equal to the
//! OC's.

mod common;

use common::{alerts_by_entity, block, gauge, level_at, unit, within, Proxy};
use ioc_engine::alerts::AlertAction;
use ioc_engine::{Config, Engine, ManualClock};
use ioc_model::{AlertState, LinkState};
use std::sync::Arc;
use std::time::Instant;

const RULES: &str = r#"
[[rule]]
name = "water-alarm-3"
when = "metric == 'water_level' && value >= 5.0"
severity = "critical"
category = "flood"
message = "Mực nước {value} m vượt báo động III"
"#;
const NAM_DAN: &str = "17935";
const SENSORS: usize = 500;
const MINUTES: i64 = 24 * 60;
const ALERTS: usize = 400;
/// The OC's clock runs this far ahead of the IOC's.
const DRIFT: i64 = 10;

fn config(dir: &std::path::Path, node: &str) -> Config {
    let mut c = Config::parse(RULES).unwrap().without_demo();
    c.paths.data = Some(dir.to_owned());
    c.node.name = Some(node.into());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_apart_on_manual_clocks_converges() {
    // The day before yesterday, from midnight in Nghệ An.
    let tz = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
    let day = (chrono::Utc::now().with_timezone(&tz) - chrono::Duration::days(2)).date_naive();
    let t0 = day
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(tz)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let ioc_clock = Arc::new(ManualClock::new(t0));
    let oc_clock = Arc::new(ManualClock::new(t0 + chrono::Duration::minutes(DRIFT)));
    let dir = tempfile::tempdir().unwrap();
    let ioc = Arc::new(
        Engine::start_with_clock(
            config(&dir.path().join("ioc"), "ioc-nghe-an"),
            ioc_clock.clone(),
        )
        .await
        .unwrap(),
    );
    let ioc_addr = common::serve(ioc.clone()).await;
    ioc.sender()
        .ingest("t", vec![unit(NAM_DAN, "Nam Đàn")])
        .await
        .unwrap();
    let token = {
        let conn = ioc_engine::store::connect_path(ioc.store()).unwrap();
        ioc_engine::auth::add_node(&conn, "oc-nam-dan", &[NAM_DAN.into()], "test", 0, None).unwrap()
    };
    let link = Proxy::to(ioc_addr).await;
    let token_file = dir.path().join("upstream.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let mut oc_config = config(&dir.path().join("oc"), "oc-nam-dan");
    oc_config.upstream = Some(ioc_engine::config::UpstreamConfig {
        url: format!("http://{}", link.addr),
        token_file,
    });
    let oc = Arc::new(
        Engine::start_with_clock(oc_config, oc_clock.clone())
            .await
            .unwrap(),
    );
    let linked = |e: &Engine| {
        e.health().upstream.is_some_and(|u| {
            u.state == LinkState::Connected && u.backlog == 0 && u.data_backlog == 0
        })
    };

    // At midnight: the gauges, and a flood on the first ALERTS of them.
    let id = |g: usize| format!("wl-{g:03}");
    let mut items: Vec<_> = (0..SENSORS).map(|g| gauge(&id(g), NAM_DAN)).collect();
    items.extend((0..ALERTS).map(|g| level_at(&id(g), 5.5, t0)));
    oc.sender().ingest("t", items).await.unwrap();
    within(60, "the commune's alerts at the province", || {
        linked(&oc)
            && block(ioc.alerts(vec![AlertState::New], 100_000))
                .unwrap()
                .len()
                == ALERTS
    })
    .await;
    let pairs: Vec<(i64, i64)> = {
        let at_oc = block(oc.alerts(AlertState::ALL.to_vec(), 100_000)).unwrap();
        let at_ioc = block(ioc.alerts(AlertState::ALL.to_vec(), 100_000)).unwrap();
        at_oc
            .iter()
            .map(|a| {
                let i = at_ioc.iter().find(|x| x.entity == a.entity).unwrap();
                (a.id, i.id)
            })
            .collect()
    };
    assert_eq!(pairs.len(), ALERTS);

    // The cable is cut for the day.
    link.cut();
    within(10, "the OC sees the cut", || {
        oc.health()
            .upstream
            .is_some_and(|u| u.state == LinkState::Offline)
    })
    .await;
    let started = Instant::now();
    let oc_acts = |k: usize| {
        [
            AlertAction::Ack,
            AlertAction::Comment,
            AlertAction::Assign {
                to: format!("doi-{}", k % 7),
            },
            AlertAction::Start,
            AlertAction::Comment,
        ]
    };
    let ioc_acts = [
        AlertAction::Comment,
        AlertAction::Ack,
        AlertAction::Comment,
        AlertAction::Resolve,
        AlertAction::Close,
    ];
    // Acts that were made (each must be on its alert once after the merge), per alert.
    let mut made = vec![(0usize, 0usize); ALERTS];
    let mut readings = Vec::new();
    let mut stored = 0usize;
    for m in 1..=MINUTES {
        ioc_clock.set(t0 + chrono::Duration::minutes(m));
        oc_clock.set(t0 + chrono::Duration::minutes(m + DRIFT));
        // The gauges report on their own clocks, a reading a minute, below the alarm.
        let at = t0 + chrono::Duration::minutes(m);
        readings.extend((0..SENSORS).map(|g| {
            level_at(
                &id(g),
                1.0 + ((g * 7 + m as usize) % 300) as f64 / 100.0,
                at,
            )
        }));
        if readings.len() >= 20 * SENSORS || m == MINUTES {
            let r = oc
                .sender()
                .ingest("t", std::mem::take(&mut readings))
                .await
                .unwrap();
            assert!(r.rejected.is_empty(), "{:?}", r.rejected.first());
            stored += r.accepted;
        }
        // Through the day, each alert's turn: the commune works it, the province too (one
        // act a minute on each side, so both histories interleave).
        let k = (m as usize).saturating_sub(60) / 3;
        let step = (m as usize).saturating_sub(60) % 3;
        if m >= 60 && k < ALERTS {
            let (oc_id, ioc_id) = pairs[k];
            let (from, to) = match step {
                0 => (0, 2),
                1 => (2, 4),
                _ => (4, 5),
            };
            for a in &oc_acts(k)[from..to] {
                let comment = matches!(a, AlertAction::Comment).then(|| format!("xã {k}"));
                if oc
                    .alert_act(oc_id, a.clone(), "nv-xa", comment, None)
                    .await
                    .is_ok()
                {
                    made[k].0 += 1;
                }
            }
            for a in &ioc_acts[from..to] {
                let comment = matches!(a, AlertAction::Comment).then(|| format!("tỉnh {k}"));
                if ioc
                    .alert_act(ioc_id, a.clone(), "lanh-dao", comment, None)
                    .await
                    .is_ok()
                {
                    made[k].1 += 1;
                }
            }
        }
    }
    let (oc_made, ioc_made): (usize, usize) =
        made.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
    eprintln!(
        "the day apart: {stored} readings stored at the OC, {oc_made} acts at the OC and \
         {ioc_made} at the IOC, in {:?}",
        started.elapsed()
    );
    assert_eq!(stored, SENSORS * MINUTES as usize);
    assert!(oc_made >= 2 * ALERTS && ioc_made >= 4 * ALERTS);

    // The cable is back.
    let back = Instant::now();
    link.restore();
    within(600, "converged", || linked(&oc)).await;
    within(60, "the same alerts at both", || {
        let (p, c) = (alerts_by_entity(&ioc), alerts_by_entity(&oc));
        p.len() == ALERTS && p == c
    })
    .await;
    eprintln!("converged {:?} after the cable was back", back.elapsed());
    let alerts = alerts_by_entity(&ioc);
    for (k, g) in (0..ALERTS).enumerate() {
        let a = &alerts[&id(g)];
        let by = |who: &str| a.events.iter().filter(|e| e.actor == who).count();
        assert_eq!(
            (by("nv-xa"), by("lanh-dao")),
            made[k],
            "{}: each act once: {:?}",
            id(g),
            a.events
        );
        assert!(a
            .events
            .iter()
            .filter(|e| e.actor == "nv-xa")
            .all(|e| e.node.as_deref() == Some("oc-nam-dan")));
    }
    // Every reading of the day at the IOC, and its KPI of the day the OC's.
    let points = block(ioc.series(
        id(SENSORS - 1),
        "water_level".into(),
        t0,
        t0 + chrono::Duration::minutes(MINUTES + 1),
    ))
    .unwrap()
    .map(|s| s.points.len())
    .unwrap_or(0);
    assert!(points > 0, "the day's readings at the IOC");
    common::same_kpi_of_day(&ioc, &oc, day, NAM_DAN, SENSORS);
    oc.shutdown().await;
}
