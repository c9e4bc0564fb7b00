//! The `sensorthings` source against a real OGC SensorThings API 1.1 server:
//! django-ogc-sensorthings (PyPI, installed by `cargo xtask setup --test` into
//! `target/py-sensorthings`) on a free loopback port, seeded by the test through the
//! API's own create requests. Things become placed entities, Observations become
//! observations (with NowCast/AQI for PM2.5), the next polls read only what is new and
//! store nothing twice, and a server that goes away
//! shows as an error and is read again when it comes back. What is refused (a value from a
//! clock a day ahead) is in the dead letters once, not once per poll.
//!
//! This server cannot filter on `phenomenonTime` (its ORM backend has no such column), so
//! the source is set to `time_property = "resultTime"`, which it supports.

use chrono::{DateTime, Duration as Age, SecondsFormat, Utc};
use ioc_engine::{Config, Engine};
use ioc_model::SourceState;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("IOC_STA_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-sensorthings/bin/python");
    assert!(
        p.exists(),
        "no SensorThings server at {}: run `cargo xtask setup --test`",
        p.display()
    );
    p
}

/// django-ogc-sensorthings on loopback; killed when dropped.
struct Server {
    child: Option<Child>,
    port: u16,
    db: tempfile::TempDir,
}

impl Server {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(python());
        c.args(["-m", "django"])
            .args(args)
            .current_dir(self.db.path())
            .env(
                "PYTHONPATH",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sensorthings"),
            )
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("DJANGO_SETTINGS_MODULE", "settings")
            .env("STA_DB", self.db.path().join("sta.sqlite3"))
            .env("STA_SERVICE_URL", format!("{}/sensorthings", self.origin()));
        c
    }

    fn start() -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Server {
            child: None,
            port,
            db: tempfile::tempdir().unwrap(),
        };
        let out = s
            .command(&["migrate", "--noinput"])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s.spawn();
        s
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn root(&self) -> String {
        format!("{}/sensorthings/v1.1", self.origin())
    }

    fn spawn(&mut self) {
        let addr = format!("127.0.0.1:{}", self.port);
        let child = self
            .command(&["runserver", &addr, "--noreload", "--nothreading"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("runserver starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the SensorThings server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates an entity through the API and returns its `@iot.id` (from `Location`).
async fn create(client: &reqwest::Client, root: &str, collection: &str, body: Value) -> String {
    let r = client
        .post(format!("{root}/{collection}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "POST {collection}: {:?}", r.text().await);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    loc.rsplit_once('(')
        .unwrap()
        .1
        .trim_end_matches(')')
        .trim_matches('\'')
        .to_string()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn datastream(
    client: &reqwest::Client,
    root: &str,
    thing: &str,
    property: &str,
    unit: &str,
) -> String {
    create(
        client,
        root,
        "Datastreams",
        json!({
            "name": format!("{property} {thing}"),
            "description": property,
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": "http://unitsofmeasure.org"},
            "Thing": {"@iot.id": thing},
            "ObservedProperty": {"name": property, "definition": format!("http://example.org/{property}"), "description": property},
            "Sensor": {"name": "sensor", "description": "sensor", "encodingType": "text/html", "metadata": "http://example.org"},
        }),
    )
    .await
}

async fn observe(client: &reqwest::Client, root: &str, ds: &str, t: DateTime<Utc>, result: Value) {
    create(
        client,
        root,
        "Observations",
        json!({"phenomenonTime": iso(t), "result": result, "Datastream": {"@iot.id": ds}}),
    )
    .await;
}

async fn thing(client: &reqwest::Client, root: &str, name: &str, lon: f64, lat: f64) -> String {
    create(
        client,
        root,
        "Things",
        json!({
            "name": name,
            "description": name,
            "properties": {"owner": "Sở Tài nguyên và Môi trường Nghệ An"},
            "Locations": [{"name": name, "description": name, "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [lon, lat]}}],
        }),
    )
    .await
}

async fn until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn things_and_observations_from_a_real_sensorthings_server() {
    let mut server = Server::start();
    let root = server.root();
    let client = reqwest::Client::new();
    let now = Utc::now();

    let vinh = thing(&client, &root, "Trạm quan trắc Vinh", 105.6813, 18.6734).await;
    let pm25 = datastream(&client, &root, &vinh, "PM2.5", "µg/m³").await;
    let temp = datastream(&client, &root, &vinh, "Temperature", "°C").await;
    let nam_dan = thing(&client, &root, "Trạm thủy văn Nam Đàn", 105.4938, 18.6975).await;
    let level = datastream(&client, &root, &nam_dan, "Water level", "m").await;
    // Thirteen hours of hourly PM2.5 at 40 µg/m³, the last hour at 60.
    for h in (0..13).rev() {
        let v = if h == 0 { 60.0 } else { 40.0 };
        observe(&client, &root, &pm25, now - Age::hours(h), json!(v)).await;
    }
    observe(&client, &root, &temp, now - Age::minutes(10), json!(24.5)).await;
    observe(&client, &root, &level, now - Age::minutes(30), json!(3.2)).await;
    // A gauge whose clock runs a day ahead.
    observe(&client, &root, &level, now + Age::days(1), json!(9.9)).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::parse(&format!(
        r#"
        [[source]]
        name = "sta"
        kind = "sensorthings"
        url = "{root}"
        interval = "1s"
        decoder = "sensorthings"
        time_property = "resultTime"
        lookback = "1d"
        overlap = "10m"
        "#
    ))
    .unwrap();
    config.paths.data = Some(dir.path().to_owned());
    let engine = Engine::start(config).await.unwrap();

    let station = until("the air-quality station with its AQI", 30, || {
        let e = engine.hub().entity(&format!("sta:{vinh}"))?;
        (e.latest.contains_key("vn_aqi") && e.latest.contains_key("temperature")).then_some(e)
    })
    .await;
    assert_eq!(station.kind, "AirQualityStation");
    assert_eq!(station.name, "Trạm quan trắc Vinh");
    assert_eq!(station.position(), Some((105.6813, 18.6734)));
    assert_eq!(station.latest["pm25"].value, 60.0);
    assert_eq!(station.latest["temperature"].value, 24.5);
    // NowCast of 12 h at 40 then 60: weight 40/60 → (60 + 40·Σw^i)/(Σw^i) ≈ 46.7.
    let nowcast = station.latest["pm25_nowcast"].value;
    assert!((46.0..47.5).contains(&nowcast), "{nowcast}");
    assert!(station.latest.contains_key("aqi_us"));

    // The Thing comes a poll before its Observations may: wait for the value itself.
    let gauge = until("the water gauge and its level", 10, || {
        engine
            .hub()
            .entity(&format!("sta:{nam_dan}"))
            .filter(|g| g.latest.contains_key("water_level"))
    })
    .await;
    assert_eq!(gauge.kind, "WaterLevelGauge");
    assert_eq!(gauge.latest["water_level"].value, 3.2);
    let dead = until("the future value in the dead letters", 10, || {
        let d = engine.reader().dead_letters(Some("sta"), None, 10).ok()?;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert!(dead[0].reason.contains("in the future"), "{:?}", dead[0]);
    assert_eq!(engine.sources()[0].state, SourceState::Connected);

    // What is new is read on the next polls; a new station appears.
    let fresh = now + Age::minutes(1);
    observe(&client, &root, &pm25, fresh, json!(180.0)).await;
    let phuc = thing(&client, &root, "Trạm Cửa Lò", 105.7246, 18.8062).await;
    let phuc_pm = datastream(&client, &root, &phuc, "PM2.5", "µg/m³").await;
    observe(&client, &root, &phuc_pm, fresh, json!(22.0)).await;
    until("the new observation", 15, || {
        let e = engine.hub().entity(&format!("sta:{vinh}"))?;
        (e.latest["pm25"].value == 180.0).then_some(())
    })
    .await;
    until("the new station", 15, || {
        engine.hub().entity(&format!("sta:{phuc}"))
    })
    .await;
    // Several more polls re-read the overlap; still stored once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let raw = engine
        .reader()
        .raw(
            &format!("sta:{vinh}"),
            "pm25",
            (now - Age::days(1)).timestamp_millis(),
            (Utc::now() + Age::hours(1)).timestamp_millis(),
            1000,
        )
        .unwrap();
    assert_eq!(raw.len(), 14, "{raw:?}");
    // Refused once, not again on every poll that re-reads it.
    let dead = engine.reader().dead_letters(Some("sta"), None, 10).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");

    // The server goes away: an error within seconds; it comes back: read again.
    server.stop();
    let err = until("the outage to show", 15, || {
        let s = engine.sources().remove(0);
        (s.state == SourceState::Error).then_some(s.last_error)
    })
    .await;
    assert!(err.unwrap_or_default().contains("GET"));
    server.spawn();
    observe(&client, &root, &temp, Utc::now(), json!(26.0)).await;
    until("recovery", 30, || {
        let e = engine.hub().entity(&format!("sta:{vinh}"))?;
        (engine.sources()[0].state == SourceState::Connected
            && e.latest["temperature"].value == 26.0)
            .then_some(())
    })
    .await;
    engine.shutdown().await;
}
