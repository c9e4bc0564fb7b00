//! `ioc serve --store postgres://…`: the provincial IOC on PostgreSQL, as a real process. The
//! readiness check answers the same as on SQLite; what the demo simulator fed in is in the
//! database, not in the data folder (a node started on another folder finds it); a URL with
//! a password in it is refused before anything starts.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
#[path = "common/serve.rs"]
mod serving;

fn serve(data: &Path, store: Option<&str>) -> (Child, String) {
    let mut args = vec!["--listen".into(), "127.0.0.1:0".into(), "--data".into()];
    args.push(data.as_os_str().to_owned());
    if let Some(url) = store {
        args.extend(["--store".into(), url.into()]);
    }
    serving::serve::<std::ffi::OsString>(args)
}

async fn json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The readiness answer without the values that differ from run to run.
fn shape(v: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_provincial_ioc_runs_on_postgresql() {
    let lite = tempfile::tempdir().unwrap();
    let (child, base) = serve(lite.path(), None);
    let (status, on_sqlite) = json(&format!("{base}/api/ready")).await;
    assert_eq!(status, 200, "{on_sqlite}");
    stop(child);

    let Some(url) = ioc_engine::store::testing::database("serve_postgres") else {
        return;
    };
    let first = tempfile::tempdir().unwrap();
    let (child, base) = serve(first.path(), Some(&url));
    let (status, on_postgres) = json(&format!("{base}/api/ready")).await;
    assert_eq!(status, 200, "{on_postgres}");
    assert_eq!(shape(&on_postgres), shape(&on_sqlite));
    assert!(!shape(&on_sqlite).is_empty());
    // The demo's Nghệ An devices, and readings of theirs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let entities = loop {
        let (_, v) = json(&format!("{base}/api/entities")).await;
        let n = v.as_array().map(Vec::len).unwrap_or(0);
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "no devices: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop(child);
    assert!(
        !first.path().join(ioc_engine::store::DB_FILE).exists(),
        "nothing written to SQLite in the data folder"
    );

    // Another node, another data folder, the same database: the same devices.
    let second = tempfile::tempdir().unwrap();
    let (child, base) = serve(second.path(), Some(&url));
    let (_, v) = json(&format!("{base}/api/entities")).await;
    let again = v.as_array().map(Vec::len).unwrap_or(0);
    stop(child);
    assert!(
        again >= entities,
        "{again} devices after, {entities} before"
    );
}

/// Runs a command that must end by itself, and kills it (failing the test) if it does not.
fn ends_within(cmd: &mut Command, secs: u64) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("still running after {secs} s: it should have refused at once");
        }
    }
}

#[test]
fn a_store_url_with_a_password_is_refused_before_anything_starts() {
    let data = tempfile::tempdir().unwrap();
    let out = ends_within(
        Command::new(env!("CARGO_BIN_EXE_ioc"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .args(["--store", "postgres://ioc:hunter2@127.0.0.1:1/ioc"]),
        30,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PGPASSWORD"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "the password is not repeated: {err}"
    );
}

#[test]
fn backup_of_a_postgresql_store_points_to_pg_dump() {
    let data = tempfile::tempdir().unwrap();
    let out = ends_within(
        Command::new(env!("CARGO_BIN_EXE_ioc"))
            .args(["backup", "--data"])
            .arg(data.path())
            .args(["--store", "postgres://ioc@127.0.0.1:1/ioc", "--out"])
            .arg(data.path().join("b.tar")),
        30,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!data.path().join("b.tar").exists());
}
