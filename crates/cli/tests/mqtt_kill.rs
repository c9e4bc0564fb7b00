//! Kill the engine (SIGKILL) in the middle of an MQTT burst: after a restart, every message
//! the broker delivered is in the store, none twice. The broker only forgets a QoS 1 message
//! once it is acknowledged, and the engine acknowledges only after the SQLite commit.

#[path = "../../engine/tests/common/mosquitto.rs"]
mod mosquitto;

use mosquitto::Mosquitto;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 4000;

fn serve(data: &Path, config: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ioc"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://"), "{line}");
    (child, url)
}

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

#[test]
fn sigkill_mid_burst_loses_nothing() {
    let broker = Mosquitto::start();
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

    let (mut server, url) = serve(&data, &config);
    wait("the MQTT source to connect", || {
        get(&format!("{url}/api/sources"))[0]["state"] == "connected"
    });

    // The burst: N NGSI key-values messages, one second apart in data time.
    let t0 = chrono::Utc::now() - chrono::Duration::hours(2);
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
    writer.join().unwrap();
    assert!(
        publisher.wait().unwrap().success(),
        "every message reached the broker"
    );

    // Restart: the broker redelivers what was not acknowledged.
    let (mut server, url) = serve(&data, &config);
    wait("every message in the store", || {
        let latest = get(&format!("{url}/api/entities/seq-1"));
        latest["latest"]["seq"]["value"].as_f64() == Some((N - 1) as f64)
    });
    let after = get(&format!("{url}/api/health"))["observations"]
        .as_u64()
        .unwrap();
    println!("committed after the restart: {after} of {N}");
    assert!(after > 0, "the kill came before the end of the burst");
    // Quiet for a moment, then stop cleanly and count.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    server.wait().unwrap();
    let db = rusqlite::Connection::open(data.join("ioc.db")).unwrap();
    let (count, distinct): (i64, i64) = db
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT o.value) FROM observations o
             JOIN series s ON s.id = o.series JOIN entities e ON e.id = s.entity
             WHERE e.ext_id = 'seq-1' AND s.metric = 'seq'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(distinct, N as i64, "every message is in the store");
    assert_eq!(count, N as i64, "none twice");
}
