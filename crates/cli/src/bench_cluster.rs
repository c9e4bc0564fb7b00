//! `ioc bench cluster`: the province's path past one machine, measured on this one. Devices'
//! messages are published to a NATS JetStream cluster of three nodes (Debian's `nats-server`,
//! the stream replicated on all three); the engine reads them through its durable consumer,
//! decodes them, runs its rules, commits to PostgreSQL and acknowledges. Throughput runs from
//! the first publish until the store has committed the last observation.
//!
//! Baseline, in the same run: the same number of rows `COPY`ed in binary into a table of the
//! same key in the same PostgreSQL, a transaction per writer batch (what the database takes
//! with nothing in front of it).
//!
//! The PostgreSQL is the one `--store` names (in scratch schemas, dropped afterwards) or, by
//! default, one of the benchmark's own (`initdb` in a temporary folder, `fsync` on).

use async_nats::jetstream;
use ioc_engine::bench::PgScratch;
use ioc_engine::local::nats::Cluster;
use ioc_engine::{Config, Engine};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Devices publishing; each message carries two readings (PM2.5 and PM10).
const DEVICES: usize = 1000;
const METRICS_PER_MESSAGE: usize = 2;
/// Publishes awaiting the stream's acknowledgement at once.
const IN_FLIGHT: usize = 2048;

pub struct ClusterBench {
    pub observations: usize,
    pub obs_per_s: f64,
    pub baseline_rows_per_s: f64,
    pub store: String,
}

impl ClusterBench {
    /// `cluster: <obs/s> obs/s, baseline copy <rows/s> rows/s, ratio <r>`.
    pub fn summary(&self) -> String {
        format!(
            "cluster: {:.0} obs/s, baseline copy {:.0} rows/s, ratio {:.2}",
            self.obs_per_s,
            self.baseline_rows_per_s,
            self.obs_per_s / self.baseline_rows_per_s
        )
    }
}

/// Message `k`: device `k % DEVICES`, one second after its previous one, ending near now.
fn message(k: usize, start: chrono::DateTime<chrono::Utc>) -> (String, Vec<u8>) {
    let device = k % DEVICES;
    let round = k / DEVICES;
    let t = start + chrono::Duration::seconds(round as i64);
    let pm25 = 10.0 + ((k * 7919) % 400) as f64 / 10.0;
    let body = format!(
        r#"{{"id":"bench-{device:04}","type":"AirQualityObserved","location":{{"type":"Point","coordinates":[{},{}]}},"dateObserved":"{}","pm25":{pm25},"pm10":{}}}"#,
        105.0 + (device % 100) as f64 * 0.01,
        18.6 + (device / 100) as f64 * 0.01,
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        pm25 * 1.5
    );
    (format!("ioc.bench.{device:04}"), body.into_bytes())
}

pub async fn run(n_obs: usize, store: Option<String>) -> anyhow::Result<ClusterBench> {
    anyhow::ensure!(
        ioc_engine::local::nats::binary().is_some(),
        "nats-server is not installed (Debian package nats-server; `cargo xtask setup --test`)"
    );
    let messages = n_obs.div_ceil(METRICS_PER_MESSAGE).max(DEVICES);
    let observations = messages * METRICS_PER_MESSAGE;
    let rounds = messages.div_ceil(DEVICES);
    let start = chrono::Utc::now() - chrono::Duration::seconds(rounds as i64 + 60);

    // PostgreSQL: the one named, or our own.
    let own;
    let url = match &store {
        Some(u) => u.clone(),
        None => {
            own = tokio::task::spawn_blocking(|| ioc_engine::store::testing::start_cluster(true))
                .await?
                .map_err(anyhow::Error::msg)?;
            own.url("postgres")
        }
    };
    let mut scratch = PgScratch::new(&url).await?;
    let result = measure(&mut scratch, messages, observations, start).await;
    scratch.drop_schemas().await?;
    let (obs_per_s, baseline_rows_per_s) = result?;
    Ok(ClusterBench {
        observations,
        obs_per_s,
        baseline_rows_per_s,
        store: if store.is_some() {
            "PostgreSQL at --store".into()
        } else {
            "PostgreSQL 15 of the benchmark's own (fsync on)".into()
        },
    })
}

async fn measure(
    scratch: &mut PgScratch,
    messages: usize,
    observations: usize,
    start: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(f64, f64)> {
    // Baseline: as many rows, COPY.
    let rows: Vec<(i64, i64, f64)> = (0..observations)
        .map(|i| {
            let k = i / METRICS_PER_MESSAGE;
            let series = ((k % DEVICES) * METRICS_PER_MESSAGE + i % METRICS_PER_MESSAGE) as i64;
            let ts = start.timestamp_millis() + (k / DEVICES) as i64 * 1000;
            (series + 1, ts, (i % 400) as f64)
        })
        .collect();
    let baseline = scratch.copy_rows(&rows).await?;
    drop(rows);

    let brokers = tokio::task::spawn_blocking(|| Cluster::start(3)).await?;
    let servers = brokers
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let data = tempfile::tempdir()?;
    let mut config = Config::parse(&format!(
        r#"
        [[source]]
        name = "bench-nats"
        kind = "nats"
        servers = [{servers}]
        stream = "IOC"
        subjects = ["ioc.>"]
        replicas = 3
        consumer = "ioc-bench"
        decoder = "ngsi-ld"
        "#
    ))?;
    config.paths.data = Some(data.path().to_owned());
    config.store.url = Some(scratch.pipeline_url());
    let engine = Arc::new(Engine::start(config).await?);
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.sources()[0].state != ioc_model::SourceState::Connected {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the engine did not connect to the NATS cluster"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let client = async_nats::ConnectOptions::new()
        .connect(brokers.urls())
        .await?;
    let js = jetstream::new(client);
    // The engine makes the stream and its consumer once connected.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(stream) = js.get_stream("IOC").await {
            if stream.consumer_info("ioc-bench").await.is_ok() {
                break;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the engine made no stream and consumer on the cluster"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t0 = Instant::now();
    let mut acks = std::collections::VecDeque::with_capacity(IN_FLIGHT);
    let mut last = 0;
    for k in 0..messages {
        let (subject, body) = message(k, start);
        acks.push_back(js.publish(subject, body.into()).await?);
        if acks.len() >= IN_FLIGHT {
            last = last.max(acks.pop_front().expect("in flight").await?.sequence);
        }
    }
    for ack in acks {
        last = last.max(ack.await?.sequence);
    }
    // Done when the engine has acknowledged the last message: it acknowledges after the
    // commit, so every reading before it is in PostgreSQL.
    let stream = js.get_stream("IOC").await?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let info = stream.consumer_info("ioc-bench").await?;
        if info.ack_floor.stream_sequence >= last {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the pipeline stalled at message {} of {last}",
            info.ack_floor.stream_sequence
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let obs_per_s = observations as f64 / t0.elapsed().as_secs_f64();
    engine.shutdown().await;
    drop(brokers);
    Ok((obs_per_s, baseline))
}
