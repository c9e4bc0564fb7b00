//! Kill the engine (SIGKILL) in the middle of a burst it reads from NATS JetStream: after a
//! restart every message is in the store, once. JetStream forgets nothing it stored; the
//! engine's durable consumer acknowledges a message only after its SQLite commit, so what the
//! broker holds as acknowledged when the kill lands is never more than what was committed,
//! and the rest comes again after the restart.

#[path = "../../engine/tests/common/missing.rs"]
mod missing;
#[path = "../../engine/tests/common/nats.rs"]
mod nats;
#[path = "common/seq_burst.rs"]
mod seq_burst;
#[path = "common/serve.rs"]
mod serving;

use async_nats::jetstream;
use serving::wait;
use std::path::Path;
use std::time::Duration;

const N: usize = 10_000;
const CONSUMER: &str = "ioc-kill-test";

async fn get(url: &str) -> serde_json::Value {
    match reqwest::get(url).await {
        Ok(r) => r.json().await.unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    }
}

/// The `seq` values stored for the burst's entity, in order.
fn stored(data: &Path) -> Vec<i64> {
    let db = rusqlite::Connection::open(data.join("ioc.db")).unwrap();
    let mut q = db
        .prepare(
            "SELECT o.value FROM observations o
             JOIN series s ON s.id = o.series JOIN entities e ON e.id = s.entity
             WHERE e.ext_id = 'seq-1' AND s.metric = 'seq' ORDER BY o.value",
        )
        .unwrap();
    q.query_map([], |r| r.get::<_, f64>(0))
        .unwrap()
        .map(|v| v.unwrap() as i64)
        .collect()
}

async fn consumer_info(js: &jetstream::Context) -> jetstream::consumer::Info {
    js.get_stream("IOC")
        .await
        .unwrap()
        .consumer_info(CONSUMER)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_burst_loses_nothing() {
    if nats::binary().is_none() {
        return missing::missing(
            "nats-server is not installed (Debian nats-server; `cargo xtask setup --test`)",
        );
    }
    let broker = nats::Cluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("ioc.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[source]]
name = "province-bus"
kind = "nats"
servers = ["{}"]
stream = "IOC"
subjects = ["ioc.>"]
consumer = "{CONSUMER}"
decoder = "ngsi-ld"
ack_wait = "5s"
"#,
            broker.urls()[0]
        ),
    )
    .unwrap();

    // The whole burst is in the stream before the engine starts: it reads as fast as it can.
    let js = jetstream::new(async_nats::connect(broker.urls()).await.unwrap());
    js.create_stream(jetstream::stream::Config {
        name: "IOC".into(),
        subjects: vec!["ioc.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    seq_burst::publish(&js, N).await;

    let (mut server, url) = serving::serve_configured(&data, &config, &[]);
    wait("part of the burst to be committed", 60, async || {
        get(&format!("{url}/api/health")).await["observations"]
            .as_u64()
            .is_some_and(|n| n > (N / 5) as u64)
    })
    .await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let at_kill = stored(&data);
    let committed = at_kill.len();
    assert!(
        committed > 0 && committed < N,
        "the kill must land mid-burst: {committed} of {N} committed"
    );
    assert_eq!(
        at_kill,
        (0..committed as i64).collect::<Vec<_>>(),
        "committed in the order they arrived, none twice"
    );
    // What the broker holds as acknowledged (give an acknowledgement on its way a moment).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = consumer_info(&js).await;
    let acked = info.ack_floor.stream_sequence as usize;
    println!(
        "at the kill: {committed} committed, {acked} acknowledged, {} delivered",
        info.delivered.stream_sequence
    );
    assert!(
        acked <= committed,
        "acknowledged before being committed: {acked} acknowledged, {committed} committed"
    );

    // Restart: the consumer hands over what was not acknowledged.
    let (mut server, url) = serving::serve_configured(&data, &config, &[]);
    wait("every message in the store", 120, async || {
        get(&format!("{url}/api/entities/seq-1")).await["latest"]["seq"]["value"].as_f64()
            == Some((N - 1) as f64)
    })
    .await;
    let js_ref = &js;
    wait("every message acknowledged", 60, async || {
        let info = consumer_info(js_ref).await;
        info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
    let handed = get(&format!("{url}/api/sources")).await[0]["messages"]
        .as_u64()
        .unwrap() as usize;
    let inserted = get(&format!("{url}/api/health")).await["observations"]
        .as_u64()
        .unwrap() as usize;
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    server.wait().unwrap();
    assert_eq!(
        stored(&data),
        (0..N as i64).collect::<Vec<_>>(),
        "every message is in the store, once"
    );
    assert_eq!(inserted, N - committed, "stored anew after the restart");
    assert!(
        handed >= N - acked,
        "every message not acknowledged came again: {handed} handed, {} unacknowledged",
        N - acked
    );
    println!(
        "after the restart: {handed} handed to the pipeline, {inserted} stored anew, \
         {} committed twice (the store kept one)",
        handed - inserted
    );
}
