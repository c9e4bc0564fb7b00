//! What the server's integration tests share: an engine on a fresh folder, served on a free
//! loopback port until the test ends.

#![allow(dead_code)] // each test file uses its part

use ioc_engine::{Config, Engine};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

/// Serves `engine` on a free loopback port.
pub async fn serve(engine: Arc<Engine>) -> SocketAddr {
    let listener = ioc_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ioc_server::serve(engine, listener, std::future::pending()));
    addr
}

/// An engine without the demo data on a fresh folder, `tweak`ed, and served.
pub async fn start_with(
    tweak: impl FnOnce(&mut Config),
) -> (tempfile::TempDir, Arc<Engine>, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default().without_demo();
    config.paths.data = Some(dir.path().to_owned());
    tweak(&mut config);
    let engine = Arc::new(Engine::start(config).await.unwrap());
    let addr = serve(engine.clone()).await;
    (dir, engine, addr)
}

/// An engine without the demo data on a fresh folder, served.
pub async fn start() -> (tempfile::TempDir, Arc<Engine>, SocketAddr) {
    start_with(|_| {}).await
}

/// A TCP proxy the test can cut (every connection dropped, new ones refused) and restore.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn to(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: the cable is out
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, open, conns }
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// A water-level gauge of `unit` (alarm level I at 5.3 m).
pub fn gauge(id: &str, unit: &str) -> ioc_engine::Item {
    ioc_engine::Item::Entity(Box::new(
        ioc_model::Entity::new(
            id,
            "WaterLevelGauge",
            &format!("Trạm {id}"),
            ioc_model::Domain::Water,
        )
        .at(105.49, 18.70)
        .in_unit(unit, unit)
        .with_attr("alarm_1", 5.3),
    ))
}

/// A water level read at `time`.
pub fn level_at(id: &str, value: f64, time: chrono::DateTime<chrono::Utc>) -> ioc_engine::Item {
    ioc_engine::Item::Obs(ioc_engine::Obs {
        entity: Arc::from(id),
        metric: Arc::from("water_level"),
        time,
        value,
    })
}

/// A commune of the province's map.
pub fn unit(code: &str, name: &str) -> ioc_engine::Item {
    ioc_engine::Item::Unit(ioc_model::Unit {
        code: code.into(),
        name: name.into(),
        full_name: None,
        parent: None,
        lon: None,
        lat: None,
    })
}

/// Waits up to `secs` for `what`; the time it took.
pub async fn within(secs: u64, what: &str, mut ok: impl FnMut() -> bool) -> std::time::Duration {
    let t = std::time::Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(secs),
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    t.elapsed()
}

/// Runs a future to its end from a synchronous closure (a `within` condition).
pub fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// Every alert with its timeline, keyed by its entity, without what is local to a node (its
/// id, its incident's id, also on the line of its joining it): what every node must agree on.
pub fn alerts_by_entity(
    e: &ioc_engine::Engine,
) -> std::collections::BTreeMap<String, ioc_model::Alert> {
    let all = block(e.alerts(ioc_model::AlertState::ALL.to_vec(), 100_000)).unwrap();
    all.into_iter()
        .map(|a| {
            let mut full = block(e.alert(a.id)).unwrap().unwrap();
            full.id = 0;
            full.incident = None;
            for ev in &mut full.events {
                if ev.kind == ioc_model::AlertEventKind::Incident {
                    ev.value = None;
                }
            }
            (full.entity.clone().unwrap_or_default(), full)
        })
        .collect()
}

/// The IOC's KPI of the river gauges of `unit` for `day` equals the OC's, and counts at
/// least `gauges` of them.
pub fn same_kpi_of_day(
    ioc: &ioc_engine::Engine,
    oc: &ioc_engine::Engine,
    day: chrono::NaiveDate,
    unit: &str,
    gauges: usize,
) {
    let kpi = |e: &ioc_engine::Engine| {
        block(e.view(ioc_engine::Scope::Province).kpi_value(
            "river-below-alarm",
            Some(ioc_model::Period::Day),
            Some(day),
            Some(unit.into()),
        ))
        .unwrap()
    };
    let (k_ioc, k_oc) = (kpi(ioc), kpi(oc));
    assert!(
        k_oc.denominator >= gauges as f64,
        "a KPI with something to say: {k_oc:?}"
    );
    assert_eq!(
        (k_ioc.value, k_ioc.numerator, k_ioc.denominator),
        (k_oc.value, k_oc.numerator, k_oc.denominator),
        "the IOC's KPI of the day is the OC's"
    );
}

/// The password of the accounts [`add_user`] makes.
pub const PASSWORD: &str = "mật khẩu ca trực";

/// Adds an account of `role` for `units` (none: the whole province).
pub fn add_user(engine: &Engine, name: &str, role: ioc_model::Role, units: &[&str]) {
    engine
        .auth()
        .add_user(
            &ioc_engine::auth::NewUser {
                username: name.into(),
                display_name: None,
                role,
                units: units.iter().map(|u| u.to_string()).collect(),
                password: PASSWORD.into(),
            },
            "test",
            chrono::Utc::now().timestamp_millis(),
        )
        .unwrap();
}

/// Signs in as an account [`add_user`] made; the bearer token.
pub async fn token(addr: SocketAddr, user: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/login"))
        .json(&serde_json::json!({"username": user, "password": PASSWORD, "token": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{user}");
    r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}
