//! The NATS JetStream source against real brokers (Debian's `nats-server` on loopback): a
//! three-node cluster that loses a node in the middle of a burst (nothing lost, nothing stored
//! or counted twice), and an MQTT device publishing through the broker's MQTT listener.

mod common;
#[path = "common/missing.rs"]
mod missing;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use common::nats::Cluster;
use ioc_engine::{Config, Engine};
use ioc_model::SourceState;
use missing::missing;
use std::time::{Duration, Instant};

const CONSUMER: &str = "ioc-province-bus";

fn config(dir: &std::path::Path, servers: &[String], replicas: usize) -> Config {
    let servers = servers
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut c = Config::parse(&format!(
        r#"
        [[source]]
        name = "province-bus"
        kind = "nats"
        servers = [{servers}]
        stream = "IOC"
        subjects = ["ioc.>"]
        replicas = {replicas}
        consumer = "{CONSUMER}"
        decoder = "ngsi-ld"
        ack_wait = "2s"
        "#
    ))
    .unwrap();
    c.paths.data = Some(dir.to_owned());
    c
}

async fn wait_for<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn have_broker() -> bool {
    if common::nats::binary().is_none() {
        missing("nats-server is not installed (Debian nats-server; `cargo xtask setup --test`)");
        return false;
    }
    true
}

/// Publishes one message until the stream acknowledges it. The message id makes a publish
/// repeated after a lost acknowledgement a duplicate the stream drops.
async fn publish(js: &jetstream::Context, i: usize, body: String) -> PublishAckFuture {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = PublishMessage::build()
            .payload(body.clone().into())
            .message_id(format!("burst-{i}"));
        match js.send_publish("ioc.burst", m).await {
            Ok(ack) => return ack,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot publish {i}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_node_killed_mid_burst_loses_nothing_and_counts_nothing_twice() {
    if !have_broker() {
        return;
    }
    let mut cluster = Cluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path(), &cluster.urls(), 3))
        .await
        .unwrap();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(cluster.urls())
        .await
        .unwrap();
    let js = jetstream::new(client);
    wait_for("the engine's stream and consumer", 30, async || {
        let stream = js.get_stream("IOC").await.ok()?;
        stream.consumer_info(CONSUMER).await.ok()?;
        (engine.sources()[0].state == SourceState::Connected).then_some(())
    })
    .await;

    const N: usize = 4_000;
    const WINDOW: usize = 200;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
    let body = |i: usize| {
        let t = (t0 + chrono::Duration::milliseconds(i as i64)).to_rfc3339();
        format!(r#"{{"id": "burst", "type": "Device", "dateObserved": "{t}", "seq": {i}}}"#)
    };
    let mut killed = None;
    let mut i = 0;
    while i < N {
        let end = (i + WINDOW).min(N);
        let mut pending = Vec::new();
        for j in i..end {
            pending.push((j, publish(&js, j, body(j)).await));
        }
        for (j, ack) in pending {
            if ack.await.is_err() {
                // Lost with the node that died: the same message again, with the same id.
                let mut again = publish(&js, j, body(j)).await;
                let deadline = Instant::now() + Duration::from_secs(30);
                while let Err(e) = again.await {
                    assert!(Instant::now() < deadline, "message {j} never stored: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    again = publish(&js, j, body(j)).await;
                }
            }
        }
        i = end;
        if killed.is_none() && i >= N / 2 {
            // Kill the node that leads the engine's consumer: its deliveries and the
            // acknowledgements on their way are cut off.
            let stream = js.get_stream("IOC").await.unwrap();
            let info = stream.consumer_info(CONSUMER).await.unwrap();
            let leader = info
                .cluster
                .and_then(|c| c.leader)
                .expect("a replicated consumer has a leader");
            cluster.node(&leader).kill();
            killed = Some(leader);
        }
    }
    let killed = killed.unwrap();

    let engine_ref = &engine;
    let seen = wait_for("every observation in the engine", 90, async || {
        let n = engine_ref.health().observations;
        (n >= N as u64).then_some(n)
    })
    .await;
    assert_eq!(seen, N as u64, "stored once each");
    let latest = engine
        .hub()
        .entity("burst")
        .and_then(|e| e.latest.get("seq").map(|r| r.value));
    assert_eq!(latest, Some((N - 1) as f64));

    // The broker holds each message once and, in the end, has every one acknowledged.
    let mut stream = js.get_stream("IOC").await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        N as u64,
        "the stream holds each message once (publishers' ids)"
    );
    let js_ref = &js;
    wait_for("every message acknowledged", 60, async || {
        let stream = js_ref.get_stream("IOC").await.ok()?;
        let info = stream.consumer_info(CONSUMER).await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
    let status = &engine.sources()[0];
    eprintln!(
        "killed {killed}; the engine received {} messages for {N} observations",
        status.messages
    );
    assert!(status.messages >= N as u64);
    assert_eq!(status.rejected, 0, "{:?}", status.last_error);
    // One node down of three: the cluster keeps its quorum and the source shows connected.
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.sources()[0].state != SourceState::Connected {
        assert!(
            Instant::now() < deadline,
            "the source stays {:?} ({:?})\n{}",
            engine.sources()[0].state,
            engine.sources()[0].last_error,
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    engine.shutdown().await;
}

const ENTITY: &str = r#"{"id": "urn:ngsi-ld:AirQualityObserved:vinh-01",
  "type": "AirQualityObserved",
  "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [105.68, 18.67]}},
  "pm25": {"type": "Property", "value": 55.5, "observedAt": "TIME"}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_mqtt_device_publishes_through_the_brokers_mqtt_listener() {
    if !have_broker() {
        return;
    }
    let cluster = Cluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path(), &cluster.urls(), 1))
        .await
        .unwrap();
    let client = async_nats::connect(cluster.urls()).await.unwrap();
    let js = jetstream::new(client);
    wait_for("the engine's stream", 30, async || {
        js.get_stream("IOC").await.ok()?;
        (engine.sources()[0].state == SourceState::Connected).then_some(())
    })
    .await;

    let now = chrono::Utc::now().to_rfc3339();
    let port = cluster.nodes[0].mqtt_port.to_string();
    let payload = ENTITY.replace("TIME", &now);
    let Some(out) = missing::run_tool(
        std::process::Command::new("mosquitto_pub").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "1",
            "-i",
            "vinh-aq-01",
            "-t",
            "ioc/vinh/aq",
            "-m",
            &payload,
        ]),
        "Debian mosquitto-clients",
    ) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    let hub = engine.hub().clone();
    let e = wait_for("the entity from the MQTT device", 30, async || {
        hub.entity("urn:ngsi-ld:AirQualityObserved:vinh-01")
            .filter(|e| e.latest.contains_key("pm25"))
    })
    .await;
    assert_eq!(e.latest["pm25"].value, 55.5);
    assert_eq!(e.position(), Some((105.68, 18.67)));

    // A payload the decoder refuses is kept as a dead letter with the subject it came on.
    let out = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "1",
            "-t",
            "ioc/vinh/aq",
            "-m",
            "{\"id\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let engine_ref = &engine;
    let dl = wait_for("the dead letter", 30, async || {
        let dl = engine_ref.dead_letters(None, None, 10).await.ok()?;
        (!dl.is_empty()).then_some(dl)
    })
    .await;
    assert_eq!(dl[0].origin.as_deref(), Some("ioc.vinh.aq"), "{dl:?}");
    engine.shutdown().await;
}
