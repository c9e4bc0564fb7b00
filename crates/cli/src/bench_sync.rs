//! `ioc bench sync`: a commune OC cut off from the provincial IOC for a simulated day, then
//! reconnected. During the day the OC stores 500 sensors' readings a minute (720,000) and
//! both sides work the same alerts (about 2,000 alert transitions each); afterwards the time
//! until both hold the same state is measured, next to a baseline from the same run: the same
//! rows (readings and operations) written into a fresh store with plain batched inserts.
//! Both engines run in this process, the IOC served on loopback, the link through a proxy.

use chrono::{Duration as ChronoDuration, Utc};
use ioc_engine::alerts::AlertAction;
use ioc_engine::{Config, Engine, Item, Obs};
use ioc_model::{AlertState, Domain, Entity, LinkState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const NAM_DAN: &str = "17935";

const RULES: &str = r#"
[[rule]]
name = "water-alarm-3"
when = "metric == 'water_level' && value >= 5.0"
severity = "critical"
category = "flood"
message = "Mực nước {value} m vượt báo động III"
"#;

pub struct SyncBench {
    pub sensors: usize,
    pub minutes: usize,
    pub alerts: usize,
}

/// A TCP proxy that can be cut and restored: the link.
struct Proxy {
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> anyhow::Result<(Proxy, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Ok((Proxy { open, conns }, addr))
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

fn config(dir: &std::path::Path, node: &str) -> anyhow::Result<Config> {
    let mut c = Config::parse(RULES)?.without_demo();
    c.paths.data = Some(dir.to_owned());
    c.node.name = Some(node.into());
    Ok(c)
}

async fn wait(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> anyhow::Result<Duration> {
    let t = Instant::now();
    while !ok() {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(secs),
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(t.elapsed())
}

fn gauge(i: usize) -> Item {
    Item::Entity(Box::new(
        Entity::new(
            &format!("wl-{i:04}"),
            "WaterLevelGauge",
            &format!("Trạm {i}"),
            Domain::Water,
        )
        .at(
            105.3 + (i % 50) as f64 * 0.01,
            18.6 + (i / 50) as f64 * 0.01,
        )
        .in_unit(NAM_DAN, "Xã Nam Đàn"),
    ))
}

/// The readings of every sensor at minute `m` of the day ending at `end`.
fn minute(sensors: usize, m: usize, start: chrono::DateTime<Utc>) -> Vec<Item> {
    let t = start + ChronoDuration::minutes(m as i64);
    (0..sensors)
        .map(|i| {
            Item::Obs(Obs {
                entity: Arc::from(format!("wl-{i:04}")),
                metric: Arc::from("water_level"),
                time: t,
                // Below alarm level: the day's history raises nothing by itself.
                value: 1.0 + ((i * 7 + m) % 300) as f64 / 100.0,
            })
        })
        .collect()
}

pub async fn run(b: SyncBench) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let ioc = Arc::new(Engine::start(config(&tmp.path().join("ioc"), "ioc-nghe-an")?).await?);
    let listener = ioc_server::bind("127.0.0.1:0".parse()?).await?;
    let ioc_addr = listener.local_addr()?;
    tokio::spawn(ioc_server::serve(
        ioc.clone(),
        listener,
        std::future::pending(),
    ));
    let token = {
        let conn = ioc_engine::store::connect_path(ioc.store())?;
        ioc_engine::auth::add_node(&conn, "oc-nam-dan", &[NAM_DAN.into()], "bench", 0, None)?
    };
    let (proxy, link) = Proxy::start(ioc_addr).await?;
    let token_file = tmp.path().join("upstream.token");
    std::fs::write(&token_file, token)?;
    let mut oc_config = config(&tmp.path().join("oc"), "oc-nam-dan")?;
    oc_config.upstream = Some(ioc_engine::config::UpstreamConfig {
        url: format!("http://{link}"),
        token_file,
    });
    let oc = Arc::new(Engine::start(oc_config).await?);
    let link_state = |e: &Engine| e.health().upstream.expect("an upstream");

    // Before the cut: the sensors, and the alerts both sides will work.
    let sensors: Vec<Item> = (0..b.sensors).map(gauge).collect();
    oc.sender().ingest("bench", sensors).await?;
    let now = Utc::now();
    let raise: Vec<Item> = (0..b.alerts)
        .map(|i| {
            Item::Obs(Obs {
                entity: Arc::from(format!("wl-{i:04}")),
                metric: Arc::from("water_level"),
                time: now,
                value: 5.5,
            })
        })
        .collect();
    oc.sender().ingest("bench", raise).await?;
    wait("the OC's alerts and sensors at the IOC", 120, || {
        let l = link_state(&oc);
        ioc.health().open_alerts >= b.alerts
            && l.state == LinkState::Connected
            && l.backlog == 0
            && l.data_backlog == 0
    })
    .await?;
    let pairs = {
        let at_oc = oc.alerts(AlertState::ALL.to_vec(), 100_000).await?;
        let at_ioc = ioc.alerts(AlertState::ALL.to_vec(), 100_000).await?;
        anyhow::ensure!(
            at_oc.len() == b.alerts && at_ioc.len() == b.alerts,
            "{} alerts at the OC, {} at the IOC",
            at_oc.len(),
            at_ioc.len()
        );
        let mut pairs = Vec::new();
        for a in &at_oc {
            let i = at_ioc
                .iter()
                .find(|x| x.entity == a.entity)
                .ok_or_else(|| anyhow::anyhow!("alert of {:?} not at the IOC", a.entity))?;
            pairs.push((a.id, i.id));
        }
        pairs.sort();
        pairs
    };

    // The cut: a day apart.
    proxy.cut();
    wait("the OC sees the cut", 10, || {
        link_state(&oc).state == LinkState::Offline
    })
    .await?;
    let start = Utc::now() - ChronoDuration::minutes(b.minutes as i64 + 5);
    let t = Instant::now();
    let mut chunk = Vec::new();
    for m in 0..b.minutes {
        chunk.extend(minute(b.sensors, m, start));
        if chunk.len() >= 10_000 {
            let r = oc
                .sender()
                .ingest("bench", std::mem::take(&mut chunk))
                .await?;
            anyhow::ensure!(r.rejected.is_empty(), "{:?}", r.rejected.first());
        }
    }
    if !chunk.is_empty() {
        oc.sender().ingest("bench", chunk).await?;
    }
    let observations = b.sensors * b.minutes;
    eprintln!(
        "the OC stored {observations} readings of the day in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Both sides work the same alerts: the OC acknowledges, assigns, starts and comments;
    // the IOC comments, resolves and closes (some of the OC's acts will not apply).
    let mut actions = 0;
    for (k, (oc_id, ioc_id)) in pairs.iter().enumerate() {
        let oc_acts = [
            AlertAction::Ack,
            AlertAction::Comment,
            AlertAction::Assign {
                to: "doi-xung-kich".into(),
            },
            AlertAction::Start,
            AlertAction::Comment,
        ];
        for a in oc_acts {
            let comment = matches!(a, AlertAction::Comment).then(|| format!("xã báo {k}"));
            if oc
                .alert_act(*oc_id, a, "nv-xa", comment, None)
                .await
                .is_ok()
            {
                actions += 1;
            }
        }
        let ioc_acts = [
            AlertAction::Comment,
            AlertAction::Ack,
            AlertAction::Comment,
            AlertAction::Resolve,
            AlertAction::Close,
        ];
        for a in ioc_acts {
            let comment = matches!(a, AlertAction::Comment).then(|| format!("tỉnh chỉ đạo {k}"));
            if ioc
                .alert_act(*ioc_id, a, "lanh-dao", comment, None)
                .await
                .is_ok()
            {
                actions += 1;
            }
        }
    }
    wait("the OC counts what waits", 10, || {
        let l = link_state(&oc);
        l.backlog > 0 && l.data_backlog as usize >= observations
    })
    .await?;

    // The link comes back: until both hold the same state.
    let t = Instant::now();
    proxy.restore();
    wait("converged", 600, || {
        let l = link_state(&oc);
        l.state == LinkState::Connected && l.backlog == 0 && l.data_backlog == 0
    })
    .await?;
    // The OC has pulled the IOC's acts too once connected; check every alert is the same.
    for (oc_id, ioc_id) in &pairs {
        let (mut a, mut i) = (
            oc.alert(*oc_id).await?.expect("at the OC"),
            ioc.alert(*ioc_id).await?.expect("at the IOC"),
        );
        a.id = 0;
        i.id = 0;
        anyhow::ensure!(
            a == i,
            "alert of {:?} differs after the merge:\nOC:  {}\nIOC: {}",
            a.entity,
            serde_json::to_string(&a)?,
            serde_json::to_string(&i)?
        );
    }
    let converged = t.elapsed().as_secs_f64();
    // Every reading of the day is at the IOC.
    let at_ioc = ioc
        .series(
            "wl-0000".into(),
            "water_level".into(),
            start,
            start + ChronoDuration::minutes(b.minutes as i64),
        )
        .await?
        .map(|s| s.points.len())
        .unwrap_or(0);
    anyhow::ensure!(at_ioc > 0, "the day's readings reached the IOC");

    // Baseline: the same rows (the day's readings and the operations) into a fresh store.
    let rows = observations + actions;
    let baseline = {
        let path = tmp.path().join("baseline.db");
        let sensors = b.sensors;
        let minutes = b.minutes;
        tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
            let mut conn = ioc_engine::store::connect_path(&path)?;
            ioc_engine::store::migrate_connection(&mut conn).map_err(anyhow::Error::msg)?;
            let t = Instant::now();
            let start_ms = start.timestamp_millis();
            let all: Vec<(i64, i64, f64)> = (0..minutes)
                .flat_map(|m| {
                    (0..sensors).map(move |i| {
                        (i as i64 + 1, start_ms + m as i64 * 60_000, 1.0 + ((i * 7 + m) % 300) as f64 / 100.0)
                    })
                })
                .collect();
            for chunk in all.chunks(8192) {
                let tx = conn.transaction()?;
                {
                    let mut st = tx.prepare_cached(
                        "INSERT OR IGNORE INTO observations (part, series, ts, value)
                         VALUES (?4, ?1, ?2, ?3)",
                    )?;
                    for (s, ts, v) in chunk {
                        st.execute(ioc_engine::store::db::params![s, ts, v, ts.div_euclid(3_600_000)])?;
                    }
                }
                tx.commit()?;
            }
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO oplog (origin, seq, hlc, subject, body) VALUES ('b', ?1, ?1, 'alert:b/1', '{}')",
                )?;
                for k in 0..actions {
                    st.execute([k as i64 + 1])?;
                }
            }
            tx.commit()?;
            Ok(rows as f64 / t.elapsed().as_secs_f64())
        })
        .await??
    };
    println!(
        "sensors: {}, minutes: {}, alerts: {}",
        b.sensors, b.minutes, b.alerts
    );
    println!(
        "merged: {:.0} actions/s, {:.0} observations/s",
        actions as f64 / converged,
        observations as f64 / converged
    );
    println!(
        "sync: converged in {converged:.1} s, {actions} actions, {observations} observations, baseline {baseline:.0} rows/s"
    );
    oc.shutdown().await;
    ioc.shutdown().await;
    Ok(())
}
