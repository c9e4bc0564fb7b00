//! The MQTT source against a real broker (mosquitto on loopback): NGSI-LD in, malformed
//! payloads to the dead letters, a dropped broker seen within seconds and recovered from.

mod common;

use common::mosquitto::Mosquitto;
use ioc_engine::{Config, Engine};
use ioc_model::SourceState;
use std::time::{Duration, Instant};

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(dir: &std::path::Path, url: &str, protocol: &str) -> Config {
    let mut c = Config::parse(&format!(
        r#"
        [[source]]
        name = "province-mqtt"
        kind = "mqtt"
        url = "{url}"
        topics = ["ioc/#"]
        decoder = "ngsi-ld"
        protocol = "{protocol}"
        client_id = "ioc-test-{protocol}"
        keep_alive = "5s"
        "#
    ))
    .unwrap();
    c.paths.data = Some(dir.to_owned());
    c
}

const ENTITY: &str = r#"{"id": "urn:ngsi-ld:AirQualityObserved:vinh-01",
  "type": "AirQualityObserved",
  "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
  "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [105.68, 18.67]}},
  "pm25": {"type": "Property", "value": 55.5, "observedAt": "TIME"}}"#;

async fn source_state(engine: &Engine) -> SourceState {
    engine.sources()[0].state
}

async fn scenario(protocol: &str) {
    let mut broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path(), &broker.url(), protocol))
        .await
        .unwrap();
    wait_for("the source to connect", || {
        (engine.sources()[0].state == SourceState::Connected).then_some(())
    })
    .await;

    let now = chrono::Utc::now().to_rfc3339();
    broker.publish("ioc/vinh/aq", ENTITY.replace("TIME", &now).as_bytes());
    let e = wait_for("the entity from MQTT", || {
        engine
            .hub()
            .entity("urn:ngsi-ld:AirQualityObserved:vinh-01")
            .filter(|e| e.latest.contains_key("pm25"))
    })
    .await;
    assert_eq!(e.latest["pm25"].value, 55.5);
    assert_eq!(e.position(), Some((105.68, 18.67)));

    // Malformed: dead letter with the reason, the source keeps going.
    broker.publish("ioc/vinh/aq", b"{\"id\": \"x\"");
    let dl = loop {
        let dl = engine.dead_letters(None, None, 10).await.unwrap();
        if !dl.is_empty() {
            break dl;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dl[0].source, "province-mqtt");
    assert_eq!(dl[0].origin.as_deref(), Some("ioc/vinh/aq"));
    assert!(dl[0].reason.contains("not valid JSON"), "{}", dl[0].reason);
    assert_eq!(dl[0].payload, "{\"id\": \"x\"");
    let s = &engine.sources()[0];
    assert_eq!((s.messages, s.rejected), (2, 1));
    assert!(s.last_message_at.is_some());

    // The broker goes away: visible within seconds; it comes back: so do we.
    broker.stop();
    let t0 = Instant::now();
    wait_for("the source to notice", || {
        (engine.sources()[0].state != SourceState::Connected).then_some(())
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(engine.sources()[0].last_error.is_some());
    broker.restart();
    wait_for("the source to reconnect", || {
        (engine.sources()[0].state == SourceState::Connected).then_some(())
    })
    .await;
    let later = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    broker.publish(
        "ioc/vinh/aq",
        ENTITY
            .replace("TIME", &later)
            .replace("55.5", "66.6")
            .as_bytes(),
    );
    wait_for("a value after the reconnection", || {
        let e = engine
            .hub()
            .entity("urn:ngsi-ld:AirQualityObserved:vinh-01")?;
        (e.latest["pm25"].value == 66.6).then_some(())
    })
    .await;
    assert_eq!(source_state(&engine).await, SourceState::Connected);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_3_1_1() {
    scenario("3.1.1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_5() {
    scenario("5").await;
}

/// A burst much larger than any internal queue: everything arrives (a regression test for a
/// deadlock between the acknowledgements and the event loop that carries them).
#[tokio::test(flavor = "multi_thread")]
async fn a_large_burst_arrives_whole() {
    use std::io::Write;
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path(), &broker.url(), "3.1.1"))
        .await
        .unwrap();
    wait_for("the source to connect", || {
        (engine.sources()[0].state == SourceState::Connected).then_some(())
    })
    .await;
    const N: usize = 20_000;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut publisher = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-q",
            "1",
            "-t",
            "ioc/burst",
            "-l",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = publisher.stdin.take().unwrap();
        for i in 0..N {
            let t = (t0 + chrono::Duration::milliseconds(i as i64)).to_rfc3339();
            writeln!(
                stdin,
                r#"{{"id": "burst", "type": "Device", "dateObserved": "{t}", "seq": {i}}}"#
            )
            .unwrap();
        }
    }
    assert!(publisher.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = engine
            .hub()
            .entity("burst")
            .and_then(|e| e.latest.get("seq").map(|r| r.value));
        if seen == Some((N - 1) as f64) {
            break;
        }
        assert!(Instant::now() < deadline, "stuck at {seen:?} of {N}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(engine.health().observations, N as u64);
    engine.shutdown().await;
}

fn tls_config(dir: &std::path::Path, url: &str, ca_file: &std::path::Path) -> Config {
    let mut c = Config::parse(&format!(
        r#"
        [[source]]
        name = "province-mqtts"
        kind = "mqtt"
        url = "{url}"
        topics = ["ioc/#"]
        decoder = "ngsi-ld"
        ca_file = "{}"
        keep_alive = "5s"
        "#,
        ca_file.display()
    ))
    .unwrap();
    c.paths.data = Some(dir.to_owned());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_the_brokers_ca_and_refused_with_another() {
    let broker = Mosquitto::start_tls();
    let ca = broker.ca_file.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(tls_config(dir.path(), &broker.url(), &ca))
        .await
        .unwrap();
    wait_for("the TLS source to connect", || {
        (engine.sources()[0].state == SourceState::Connected).then_some(())
    })
    .await;
    let now = chrono::Utc::now().to_rfc3339();
    broker.publish("ioc/vinh/aq", ENTITY.replace("TIME", &now).as_bytes());
    let e = wait_for("the entity over TLS", || {
        engine
            .hub()
            .entity("urn:ngsi-ld:AirQualityObserved:vinh-01")
            .filter(|e| e.latest.contains_key("pm25"))
    })
    .await;
    assert_eq!(e.latest["pm25"].value, 55.5);
    engine.shutdown().await;

    // A client that trusts another CA does not connect, and says why.
    let other = Mosquitto::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(tls_config(
        dir.path(),
        &broker.url(),
        other.ca_file.as_ref().unwrap(),
    ))
    .await
    .unwrap();
    let err = wait_for("the TLS error", || {
        let s = engine.sources().remove(0);
        (s.state == SourceState::Error).then_some(s.last_error)
    })
    .await
    .unwrap_or_default();
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("Tls"),
        "{err}"
    );
    engine.shutdown().await;
}
