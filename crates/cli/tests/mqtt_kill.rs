//! Kill the engine (SIGKILL) in the middle of an MQTT burst: after a restart, every message
//! the broker delivered is in the store. The broker only forgets a QoS 1 message once it is
//! acknowledged, and the engine acknowledges only after the SQLite commit.
//!
//! The store ignores a second copy of a message (same series and time), so counting its rows
//! cannot show a message committed twice. The test counts deliveries instead: the broker logs
//! every message it sends the engine and every acknowledgement it gets back, and the engine
//! counts the messages it hands to its pipeline. That shows, message by message, that the kill
//! landed mid-burst, that nothing was acknowledged before its commit, that after the restart
//! exactly the unacknowledged messages came again, each once, and that the only messages
//! committed twice are the last ones committed before the kill, whose acknowledgements had not
//! reached the broker (what at-least-once allows, and the store's key absorbs).

#[path = "../../engine/tests/common/mosquitto.rs"]
mod mosquitto;
#[path = "common/serve.rs"]
mod serving;

use mosquitto::Mosquitto;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Messages in the burst: the kill comes once a fifth are committed, and while the engine and
/// the test's polling catch up the broker hands over a few thousand more; a burst this long
/// still has most of it to go when the kill lands.
const N: usize = 10_000;

fn get(url: &str) -> serde_json::Value {
    let url = url.to_string();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            match reqwest::get(&url).await {
                Ok(r) => r.json().await.unwrap_or(serde_json::Value::Null),
                Err(_) => serde_json::Value::Null,
            }
        })
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the broker did with the engine's session, from its log: the messages it sent the
/// engine and the acknowledgements it received, per connection of the engine (0: before the
/// kill, 1: after the restart). A message is known by its place in the burst: the broker
/// sends a client's messages in the order they were published and gives each a packet id of
/// its own, kept when it sends it again.
#[derive(Debug, Default)]
struct Deliveries {
    /// Per connection: (message, sent again flagged as a duplicate), in the order sent.
    sent: [Vec<(usize, bool)>; 2],
    /// Per connection: the messages acknowledged, in the order received.
    acked: [Vec<usize>; 2],
}

fn deliveries(log: &str, client: &str) -> Deliveries {
    let connected = format!(" as {client} (");
    let sending = format!("Sending PUBLISH to {client} (");
    let puback = format!("Received PUBACK from {client} (Mid: ");
    let mut d = Deliveries::default();
    let mut by_mid: HashMap<u32, usize> = HashMap::new();
    let mut connection: Option<usize> = None;
    for line in log.lines() {
        if line.contains(&connected) {
            connection = Some(connection.map_or(0, |c| c + 1));
            assert!(
                connection < Some(2),
                "the engine connected more than twice:\n{line}"
            );
        } else if let Some(rest) = line.split_once(&sending).map(|(_, r)| r) {
            // "(d0, q1, r0, m17, 'ioc/seq', ... (163 bytes))"
            let mut f = rest.split(", ");
            let dup = f.next() == Some("d1");
            let mid: u32 = f
                .nth(2)
                .and_then(|m| m.strip_prefix('m'))
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| panic!("a packet id in {line:?}"));
            let next = by_mid.len();
            let msg = *by_mid.entry(mid).or_insert(next);
            d.sent[connection.expect("sent before connecting")].push((msg, dup));
        } else if let Some(rest) = line.split_once(&puback).map(|(_, r)| r) {
            let mid: u32 = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| panic!("a packet id in {line:?}"));
            let msg = *by_mid
                .get(&mid)
                .unwrap_or_else(|| panic!("acknowledged, never sent: {line:?}"));
            d.acked[connection.expect("acknowledged before connecting")].push(msg);
        }
    }
    d
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

#[test]
fn sigkill_mid_burst_loses_nothing() {
    let broker = Mosquitto::start_logged();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("ioc.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[source]]
name = "province-mqtt"
kind = "mqtt"
url = "{}"
topics = ["ioc/#"]
decoder = "ngsi-ld"
client_id = "ioc-kill-test"
"#,
            broker.url()
        ),
    )
    .unwrap();

    let (mut server, url) = serving::serve_configured(&data, &config, &[]);
    wait("the MQTT source to connect", || {
        get(&format!("{url}/api/sources"))[0]["state"] == "connected"
    });

    // The burst: N NGSI key-values messages, one second apart in data time, all in the past
    // (values dated in the future are refused).
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(N as i64 + 3600);
    let mut publisher = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-q",
            "1",
            "-t",
            "ioc/seq",
            "-l",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    let lines: Vec<String> = (0..N)
        .map(|i| {
            let t = (t0 + chrono::Duration::seconds(i as i64)).to_rfc3339();
            format!(
                r#"{{"id": "seq-1", "type": "Device", "location": {{"type": "Point", "coordinates": [105.68, 18.67]}}, "dateObserved": "{t}", "seq": {i}}}"#
            )
        })
        .collect();
    let writer = std::thread::spawn(move || {
        for l in lines {
            if writeln!(stdin, "{l}").is_err() {
                break;
            }
        }
    });

    // Kill it hard once a good part has arrived.
    wait("part of the burst to be committed", || {
        get(&format!("{url}/api/health"))["observations"]
            .as_u64()
            .is_some_and(|n| n > (N / 5) as u64)
    });
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    // What was committed when the kill landed: the engine is dead, the store is as it left it.
    let at_kill = stored(&data);
    let committed = at_kill.len();
    println!("committed when the kill landed: {committed} of {N}");
    assert!(
        committed > 0 && committed < N,
        "the kill must land mid-burst: {committed} of {N} committed"
    );
    assert_eq!(
        at_kill,
        (0..committed as i64).collect::<Vec<_>>(),
        "committed in the order they arrived, none twice"
    );
    writer.join().unwrap();
    assert!(
        publisher.wait().unwrap().success(),
        "every message reached the broker"
    );

    // Restart: the broker redelivers what was not acknowledged.
    let (mut server, url) = serving::serve_configured(&data, &config, &[]);
    wait("every message in the store", || {
        let latest = get(&format!("{url}/api/entities/seq-1"));
        latest["latest"]["seq"]["value"].as_f64() == Some((N - 1) as f64)
    });
    // Handed to the pipeline since the restart (the engine's own count), and stored anew.
    let handed = get(&format!("{url}/api/sources"))[0]["messages"]
        .as_u64()
        .unwrap() as usize;
    let inserted = get(&format!("{url}/api/health"))["observations"]
        .as_u64()
        .unwrap() as usize;
    // Quiet for a moment, then stop cleanly and count.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    server.wait().unwrap();
    let all = stored(&data);
    assert_eq!(
        all,
        (0..N as i64).collect::<Vec<_>>(),
        "every message is in the store, once"
    );

    // Deliveries, message by message, as the broker saw them.
    let d = deliveries(&broker.log(), "ioc-kill-test");
    let acked = d.acked[0].len();
    println!(
        "before the kill: {} sent, {acked} acknowledged, {committed} committed; \
         after the restart: {} sent ({} flagged as duplicates), {handed} handed to the \
         pipeline, {inserted} stored anew",
        d.sent[0].len(),
        d.sent[1].len(),
        d.sent[1].iter().filter(|(_, dup)| *dup).count(),
    );
    assert_eq!(
        d.acked[0],
        (0..acked).collect::<Vec<_>>(),
        "before the kill, acknowledged in the order received, each once"
    );
    assert!(
        acked <= committed,
        "acknowledged before being committed: {acked} acknowledged, {committed} committed"
    );
    let mut again: Vec<usize> = d.sent[1].iter().map(|(m, _)| *m).collect();
    again.sort_unstable();
    assert_eq!(
        again,
        (acked..N).collect::<Vec<_>>(),
        "after the restart, every message not acknowledged came again, each once, and \
         nothing that was acknowledged"
    );
    assert_eq!(
        handed,
        N - acked,
        "the engine handed each message it was delivered after the restart to its pipeline \
         once: {handed} handed, {} delivered",
        N - acked
    );
    let mut acked_again = d.acked[1].clone();
    acked_again.sort_unstable();
    assert_eq!(
        acked_again, again,
        "after the restart, each message delivered was acknowledged once, by the clean stop"
    );
    assert_eq!(inserted, N - committed, "stored anew after the restart");
    // So the messages committed twice (handed over again, already stored) are exactly those
    // committed before the kill whose acknowledgements had not reached the broker: the tail
    // `acked..committed` of what was committed, never one acknowledged.
    println!(
        "committed twice (the store kept one): {} (messages {acked}..{committed})",
        handed - inserted
    );
}
