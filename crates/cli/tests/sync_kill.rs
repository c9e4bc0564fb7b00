//! SIGKILL of a node in the middle of a sync, then a restart: the sync resumes where it was
//! and ends with every reading at the IOC exactly once. The store's key would hide a reading
//! written twice, so the test also compares the rollups' counts (a reading counted twice
//! would show there) with the OC's own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
#[path = "common/serve.rs"]
mod serving;

/// Readings of the imported station: enough for tens of requests of 5,000.
const ROWS: usize = 120_000;

fn ioc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ioc"))
}

/// A running `ioc serve`, killed if the test ends early (a failed assertion leaves no
/// server behind).
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, config: &Path, port: u16) -> (Serving, String) {
    let listen = format!("127.0.0.1:{port}");
    let (data, config) = (data.as_os_str(), config.as_os_str());
    let (child, url) = serving::serve([
        "--listen".as_ref(),
        listen.as_ref(),
        "--data".as_ref(),
        data,
        "--config".as_ref(),
        config,
    ]);
    (Serving(child), url)
}

fn kill(s: &mut Serving) {
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(s.0.id() as i32, libc::SIGKILL) };
    let _ = s.0.wait();
}

fn stop(s: &mut Serving) {
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(s.0.id() as i32, libc::SIGTERM) };
    let _ = s.0.wait();
}

fn health(url: &str) -> serde_json::Value {
    let url = format!("{url}/api/health");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            match reqwest::get(&url).await {
                Ok(r) => r.json().await.unwrap_or(serde_json::Value::Null),
                Err(_) => serde_json::Value::Null,
            }
        })
}

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config without the demo (a disabled drop folder stands for "no sources").
fn config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[node]\nname = \"{name}\"\n\n[[source]]\nname = \"none\"\nkind = \"file\"\npath = \"{}\"\nenabled = false\n{extra}",
            dir.join("drop").display()
        ),
    )
    .unwrap();
    path
}

/// Uploads `ROWS` readings of station `id`, ten seconds apart over the last fortnight
/// (history, within raw retention), to an engine.
fn import(url: &str, id: &str) {
    let mut csv = String::from("time,pm25\n");
    let start = chrono::Utc::now() - chrono::Duration::days(15);
    for i in 0..ROWS {
        let t = start + chrono::Duration::seconds(10 * i as i64);
        csv.push_str(&format!("{},{}.{}\n", t.to_rfc3339(), 5 + i % 80, i % 10));
    }
    let mapping = format!(
        "entity_id = \"{id}\"\ntime = \"time\"\nmetrics = {{ pm25 = \"pm25\" }}\n\
         station = {{ name = \"{id}\", kind = \"AirQualityObserved\", lon = 105.6, lat = 18.7 }}\n"
    );
    let url = url.to_string();
    let r: serde_json::Value = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            reqwest::Client::new()
                .post(format!("{url}/api/import"))
                .query(&[
                    ("format", "csv"),
                    ("name", "kill.csv"),
                    ("mapping", mapping.as_str()),
                ])
                .body(csv)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
    assert!(
        r["accepted"].as_u64().is_some_and(|n| n >= ROWS as u64),
        "{r}"
    );
}

/// (readings, readings the minute rollups count) of a station in a data folder's store.
fn counted(data: &Path, id: &str) -> (i64, i64) {
    let db = rusqlite::Connection::open(data.join("ioc.db")).unwrap();
    let series: i64 = db
        .query_row(
            "SELECT s.id FROM series s JOIN entities e ON e.id = s.entity
             WHERE e.ext_id = ?1 AND s.metric = 'pm25'",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    let rows = db
        .query_row(
            "SELECT COUNT(*) FROM observations WHERE series = ?1",
            [series],
            |r| r.get(0),
        )
        .unwrap();
    let rolled = db
        .query_row(
            "SELECT SUM(count) FROM rollup_1m WHERE series = ?1",
            [series],
            |r| r.get(0),
        )
        .unwrap();
    (rows, rolled)
}

fn data_backlog(url: &str) -> Option<u64> {
    health(url)["upstream"]["data_backlog"].as_u64()
}

fn converged(url: &str) -> bool {
    let h = health(url);
    h["upstream"]["state"] == "connected"
        && h["upstream"]["backlog"] == 0
        && h["upstream"]["data_backlog"] == 0
}

#[test]
fn a_node_killed_mid_sync_resumes_without_loss_or_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let (ioc_data, oc_data) = (dir.path().join("ioc"), dir.path().join("oc"));
    let ioc_config = config(dir.path(), "ioc-nghe-an", "");
    let out = ioc()
        .args(["node", "add", "oc-nam-dan", "--data"])
        .arg(&ioc_data)
        .arg("--config")
        .arg(&ioc_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_file = dir.path().join("upstream.token");
    std::fs::write(&token_file, &out.stdout).unwrap();
    let port = free_port();
    let oc_config = config(
        dir.path(),
        "oc-nam-dan",
        &format!(
            "\n[upstream]\nurl = \"http://127.0.0.1:{port}\"\ntoken_file = \"{}\"\n",
            token_file.display()
        ),
    );

    // The OC, cut off (the IOC is not up), stores a station's readings.
    let (mut oc, oc_url) = serve(&oc_data, &oc_config, 0);
    import(&oc_url, "st-kill-oc");
    wait("the OC counts what waits", 30, || {
        data_backlog(&oc_url).is_some_and(|n| n > ROWS as u64)
    });

    // The IOC comes up; the sync starts; the OC is killed in the middle of it.
    let (mut ioc_proc, _) = serve(&ioc_data, &ioc_config, port);
    let total = data_backlog(&oc_url).unwrap();
    wait("the sync under way", 60, || {
        data_backlog(&oc_url).is_some_and(|n| n < total * 4 / 5)
    });
    let left = data_backlog(&oc_url).unwrap();
    kill(&mut oc);
    eprintln!("OC killed with {left} of {total} left to send");
    assert!(left > 0, "killed in the middle, not after");
    let (mut oc, oc_url) = serve(&oc_data, &oc_config, 0);
    wait("the OC resumes and finishes", 120, || converged(&oc_url));

    // Again, killing the IOC in the middle this time: the IOC is down while the OC stores
    // another station's readings, comes up, and is killed while taking them.
    stop(&mut ioc_proc);
    wait("the OC sees the IOC gone", 10, || {
        health(&oc_url)["upstream"]["state"] == "offline"
    });
    import(&oc_url, "st-kill-ioc");
    wait("the OC counts what waits", 30, || {
        data_backlog(&oc_url).is_some_and(|n| n > ROWS as u64)
    });
    let (mut ioc_proc, _) = serve(&ioc_data, &ioc_config, port);
    let total = data_backlog(&oc_url).unwrap();
    wait("the sync under way", 60, || {
        data_backlog(&oc_url).is_some_and(|n| n < total * 4 / 5)
    });
    let left = data_backlog(&oc_url).unwrap();
    kill(&mut ioc_proc);
    eprintln!("IOC killed with {left} of {total} left to send");
    assert!(left > 0, "killed in the middle, not after");
    wait("the OC sees the IOC gone", 10, || {
        health(&oc_url)["upstream"]["state"] == "offline"
    });
    let (mut ioc_proc, _) = serve(&ioc_data, &ioc_config, port);
    wait("the OC finishes with the restarted IOC", 120, || {
        converged(&oc_url)
    });

    stop(&mut oc);
    stop(&mut ioc_proc);
    for id in ["st-kill-oc", "st-kill-ioc"] {
        let at_oc = counted(&oc_data, id);
        let at_ioc = counted(&ioc_data, id);
        assert_eq!(at_oc, (ROWS as i64, ROWS as i64), "{id} at the OC");
        assert_eq!(at_ioc, at_oc, "{id}: the IOC holds every reading once");
    }
}
