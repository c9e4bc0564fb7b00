//! `ioc bench mqtt`: observations through a real mosquitto broker into the engine, next to
//! what the same broker delivers to a plain subscriber in the same run.
//!
//! Throughput: N messages published as fast as the broker takes them; the pipeline's figure
//! runs from the first publish until the hub shows the last message, the baseline's until a
//! plain QoS 1 subscriber has received it. Latency: a further tenth published at half the
//! pipeline's rate, from each publish until the hub shows that message.

use ioc_engine::{Config, Engine};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A mosquitto of our own on a free loopback port.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> anyhow::Result<Broker> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_inflight_messages 1000\nmax_queued_messages 10000000\n"
            ),
        )?;
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or_else(|| {
                anyhow::anyhow!("mosquitto is not installed (Debian package mosquitto)")
            })?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Broker { child, port })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(id: &str, port: u16) -> (AsyncClient, rumqttc::EventLoop) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(1000);
    o.set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(o, 10_000)
}

fn payload(i: usize, t0: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let t = (t0 + chrono::Duration::milliseconds(i as i64)).to_rfc3339();
    format!(
        r#"{{"id":"bench-mqtt","type":"Device","location":{{"type":"Point","coordinates":[105.68,18.67]}},"dateObserved":"{t}","seq":{i}}}"#
    )
    .into_bytes()
}

/// Publishes messages `range` as fast as the client allows (QoS 1), waiting for every PUBACK.
async fn publish_all(
    port: u16,
    range: std::ops::Range<usize>,
    t0: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let (c, mut ev) = client(&format!("bench-pub-{}", range.start), port);
    let n = range.len();
    let pump = tokio::spawn(async move {
        let mut acked = 0;
        while acked < n {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => return Err(anyhow::anyhow!("publisher: {e}")),
            }
        }
        Ok(())
    });
    for i in range {
        c.publish("bench/seq", QoS::AtLeastOnce, false, payload(i, t0))
            .await?;
    }
    pump.await??;
    let _ = c.disconnect().await;
    Ok(())
}

pub struct MqttBench {
    pub n: usize,
    pub pipeline_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub baseline_per_s: f64,
}

pub async fn run(n: usize) -> anyhow::Result<MqttBench> {
    ioc_engine::sources::mqtt::rustls_provider();
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(dir.path())?;
    let port = broker.port;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(1);

    // Baseline: mosquitto to a plain subscriber.
    let (sub, mut sub_ev) = client("bench-plain-sub", port);
    sub.subscribe("bench/#", QoS::AtLeastOnce).await?;
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = sub_ev.poll().await? {
            break;
        }
    }
    let started = Instant::now();
    let publisher = tokio::spawn(publish_all(port, 0..n, t0));
    let mut got = 0;
    while got < n {
        if let Event::Incoming(Packet::Publish(_)) = sub_ev.poll().await? {
            got += 1;
        }
    }
    let baseline_per_s = n as f64 / started.elapsed().as_secs_f64();
    publisher.await??;
    let _ = sub.disconnect().await;
    drop(sub_ev);

    // The pipeline: MQTT source → decode → store → rules → hub.
    let mut config = Config::parse(&format!(
        r#"
        [[source]]
        name = "bench-mqtt"
        kind = "mqtt"
        url = "mqtt://127.0.0.1:{port}"
        topics = ["bench/#"]
        decoder = "ngsi-ld"
        client_id = "bench-engine"
        clean_session = true
        "#
    ))?;
    config.paths.data = Some(dir.path().join("engine"));
    let engine = Arc::new(Engine::start(config).await?);
    let deadline = Instant::now() + Duration::from_secs(20);
    while engine.sources()[0].state != ioc_model::SourceState::Connected {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the engine did not connect to the broker"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = |engine: &Engine| -> Option<usize> {
        engine
            .hub()
            .entity("bench-mqtt")?
            .latest
            .get("seq")
            .map(|r| r.value as usize)
    };
    let started = Instant::now();
    let publisher = tokio::spawn(publish_all(port, 0..n, t0));
    let mut changes = engine.hub().subscribe();
    while seen(&engine) != Some(n - 1) {
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the pipeline stalled"
        );
    }
    let pipeline_per_s = n as f64 / started.elapsed().as_secs_f64();
    publisher.await??;

    // Latency at half that rate, one message at a time.
    let m = (n / 10).max(100);
    let pause = Duration::from_secs_f64(1.0 / (pipeline_per_s / 2.0));
    let (c, mut ev) = client("bench-pub-latency", port);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let mut sent = Vec::with_capacity(m);
    let mut latencies = Vec::with_capacity(m);
    let mut next = tokio::time::Instant::now();
    let mut visible = n - 1;
    for k in 0..m {
        tokio::time::sleep_until(next).await;
        next += pause;
        sent.push(Instant::now());
        c.publish("bench/seq", QoS::AtLeastOnce, false, payload(n + k, t0))
            .await?;
        while let Some(s) = seen(&engine).filter(|s| *s > visible) {
            for j in visible + 1..=s {
                latencies.push(sent[j - n].elapsed().as_secs_f64() * 1000.0);
            }
            visible = s;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while visible < n + m - 1 {
        let _ = tokio::time::timeout(Duration::from_millis(5), changes.changed()).await;
        if let Some(s) = seen(&engine).filter(|s| *s > visible) {
            for j in visible + 1..=s {
                latencies.push(sent[j - n].elapsed().as_secs_f64() * 1000.0);
            }
            visible = s;
        }
        anyhow::ensure!(Instant::now() < deadline, "latency phase stalled");
    }
    let _ = c.disconnect().await;
    engine.shutdown().await;
    drop(broker);
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(MqttBench {
        n,
        pipeline_per_s,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        baseline_per_s,
    })
}
