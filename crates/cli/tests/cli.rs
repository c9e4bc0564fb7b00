//! The `ioc` binary as a user runs it.

#[path = "../../engine/tests/common/missing.rs"]
mod missing;

use std::process::Command;

fn ioc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ioc"))
}

#[test]
fn a_bad_config_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:nope\"\n").unwrap();
    let out = ioc()
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen") && err.contains("bad.toml"), "{err}");

    std::fs::write(
        &cfg,
        "[[source]]\nname = \"x\"\nkind = \"simulator\"\nscale = \"big\"\n",
    )
    .unwrap();
    let out = ioc()
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("scale"), "{err}");
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let out = ioc()
        .args(["serve", "--config", "/nonexistent/ioc.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read config file /nonexistent/ioc.toml"),
        "{err}"
    );
}

#[test]
fn import_basemap_accepts_geojson_and_refuses_junk() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.geojson");
    std::fs::write(&junk, "not json at all").unwrap();
    let out = ioc()
        .args(["import", "basemap"])
        .arg(&junk)
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid GeoJSON"));

    let good = dir.path().join("good.geojson");
    std::fs::write(
        &good,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature",
            "properties":{"code":"1","name":"Vinh"},
            "geometry":{"type":"Polygon","coordinates":[[[105,18],[106,18],[106,19],[105,18]]]}}]}"#,
    )
    .unwrap();
    let out = ioc()
        .args(["import", "basemap"])
        .arg(&good)
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 units registered"), "{stdout}");
    assert!(dir.path().join("data/basemap/basemap.geojson").exists());
}

#[test]
fn bench_prints_the_summary_line() {
    let out = ioc()
        .args(["bench", "ingest", "-n", "20000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("ingest: ") && last.contains(" obs/s, p99 ") && last.contains(" ratio "),
        "{last}"
    );
}

fn shared() -> Option<std::path::PathBuf> {
    missing::shared_data("").filter(|p| p.is_dir())
}

#[test]
fn imports_of_the_reference_files() {
    let Some(shared) = shared() else {
        return missing::missing("../shared/data not found: the reference files to import");
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // CAP: the 1.2 messages go in, the others are refused with the reason (exit 1).
    let mut cmd = ioc();
    cmd.args(["import", "cap"]).arg("--data").arg(&data);
    for f in std::fs::read_dir(shared.join("cap")).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "xml") {
            cmd.arg(f);
        }
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "some files are not CAP 1.2");
    assert_eq!(text.matches("1 accepted, 0 refused").count(), 10, "{text}");
    assert!(text.contains("refused: not CAP 1.2"), "{text}");

    // JSON through a mapping: 721 cameras of Hồ Chí Minh City.
    let mapping = dir.path().join("cameras.toml");
    std::fs::write(
        &mapping,
        r#"
id = "id"
id_prefix = "hcmc-cam-"
name = "name"
lon = "longitude"
lat = "latitude"
kind = "Camera"
domain = "safety"
status = "status"
attributes = { code = "code", ptz = "ptz" }
"#,
    )
    .unwrap();
    let out = ioc()
        .args(["import", "json", "--mapping"])
        .arg(&mapping)
        .arg(shared.join("cameras/hcmc-cameras-raw.json"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("721 accepted, 0 refused"), "{text}");

    // CSV with a described station: three years of hourly PM2.5.
    let mapping = dir.path().join("airnow.toml");
    std::fs::write(
        &mapping,
        r#"
entity_id = "us-embassy-hanoi"
station = { name = "Đại sứ quán Hoa Kỳ, Hà Nội", kind = "AirQualityStation", lon = 105.8465, lat = 21.0226 }
time = "Date (LT)"
time_format = "%Y-%m-%d %I:%M %p"
timezone = "Asia/Ho_Chi_Minh"
metrics = { pm25 = "Raw Conc." }
require = { "QC Name" = "Valid" }
"#,
    )
    .unwrap();
    let out = ioc()
        .args(["import", "csv", "--mapping"])
        .arg(&mapping)
        .arg(shared.join("airnow-hanoi/Hanoi_PM2.5_2018_YTD.csv"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("refused (csv)") && text.contains(" 0 refused"),
        "{text}"
    );

    // With a server running on the folder, the import goes through it and shows at once.
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_ioc"))
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    let out = ioc()
        .args(["import", "ngsi"])
        .arg(shared.join("ngsi-ld/WaterObserved/example.json"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = |path: &str| {
        let url = format!("{url}{path}");
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move { reqwest::get(url).await.unwrap().text().await.unwrap() })
    };
    let body = get("/api/entities/WaterObserved:MNCA-001");
    assert!(body.contains("\"waterLevel\""), "{body}");
    assert!(get("/api/sources").contains("\"import\""));
    // And a second engine on the same folder is refused.
    let out = ioc()
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another IOC engine"));
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
}

fn user_add(dir: &std::path::Path, args: &[&str], password: &str) -> std::process::Output {
    use std::io::Write;
    let mut c = ioc()
        .args(["user", "add"])
        .args(args)
        .arg("--password-stdin")
        .arg("--data")
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    c.wait_with_output().unwrap()
}

#[test]
fn accounts_switch_sign_in_on_and_the_audit_log_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    // Without an account, serving beyond loopback is refused (before listening anywhere).
    let out = ioc()
        .args(["serve", "--listen", "0.0.0.0:0", "--no-demo", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no user account"),
        "{err}"
    );

    let out = user_add(dir.path(), &["lan", "--role", "pilot"], "mật khẩu dài");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));
    let out = user_add(dir.path(), &["lan", "--role", "operator"], "short");
    assert!(!out.status.success());
    let out = user_add(
        dir.path(),
        &["oc-vinh", "--role", "oc_staff", "--unit", "16681"],
        "mật khẩu dài",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("16681"));
    let out = user_add(dir.path(), &["admin", "--role", "admin"], "mật khẩu dài");
    assert!(out.status.success());

    let verify = || {
        ioc()
            .args(["audit", "verify", "--data"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact: 2 entries"));

    // Somebody edits the database by hand: found, and named.
    let db = rusqlite::Connection::open(dir.path().join("ioc.db")).unwrap();
    db.execute(
        "UPDATE audit SET after = replace(after, 'oc_staff', 'admin') WHERE seq = 1",
        [],
    )
    .unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("audit entry 1 was altered"), "{err}");
}

/// Once accounts exist, `ioc import` into a running engine goes through the engine's admin
/// key (from the owner-only `server.json`, taken from this machine only); a keyed audit
/// chain and an exported head catch what a plain chain cannot: the newest entries cut with
/// the head rewritten.
#[test]
fn import_through_a_signed_in_server_and_a_keyed_audit_chain_with_a_witness() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("secrets/audit.key");
    let cfg = dir.path().join("ioc.toml");
    std::fs::write(&cfg, format!("[audit]\nkey_file = \"{}\"\n", key.display())).unwrap();
    let common = |c: &mut Command| {
        c.arg("--data").arg(&data).arg("--config").arg(&cfg);
    };
    let add = |name: &str| {
        use std::io::Write;
        let mut add = ioc();
        add.args(["user", "add", name, "--role", "admin", "--password-stdin"]);
        common(&mut add);
        let mut c = add
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(b"mat khau rat dai\n")
            .unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    add("admin");
    add("minh");
    assert!(key.exists(), "the key is made at the first use");

    let mut serve = Command::new(env!("CARGO_BIN_EXE_ioc"));
    serve.args(["serve", "--no-demo", "--listen", "127.0.0.1:0"]);
    common(&mut serve);
    let mut server = Killed(
        serve
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(server.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("server.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "server.json holds the admin key");

    let file = dir.path().join("gauge.json");
    std::fs::write(
        &file,
        r#"{"id": "urn:ngsi-ld:WaterObserved:test-1", "type": "WaterObserved",
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [105.6, 18.7]}},
            "height": {"type": "Property", "value": 2.5, "observedAt": "2026-12-01T00:00:00Z"}}"#,
    )
    .unwrap();
    let mut import = ioc();
    import.args(["import", "ngsi"]).arg(&file);
    common(&mut import);
    let out = import.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // The server holds the folder's lock, so only through it can this succeed.
    assert!(text.contains("2 accepted"), "{text}");
    // Without credentials the same server refuses.
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/api/import?format=ngsi-ld"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 401);
    drop(server);

    // The head, for a witness elsewhere; the keyed chain verifies with it.
    let mut head = ioc();
    head.args(["audit", "head"]);
    common(&mut head);
    let out = head.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let witness = dir.path().join("witness.json");
    std::fs::write(&witness, &out.stdout).unwrap();
    let verify = |extra: &[&str]| {
        let mut v = ioc();
        v.args(["audit", "verify"]).args(extra);
        common(&mut v);
        v.output().unwrap()
    };
    let w = witness.to_str().unwrap();
    let out = verify(&["--witness", w]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("keyed") && text.contains("witness"), "{text}");

    // Someone with the database cuts the newest entry and writes a plain head: the key
    // finds it even without the witness, and the witness finds it too.
    let db = rusqlite::Connection::open(data.join("ioc.db")).unwrap();
    let last: i64 = db
        .query_row("SELECT max(seq) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert!(last >= 2, "{last}");
    db.execute("DELETE FROM audit WHERE seq = ?1", [last])
        .unwrap();
    let h: String = db
        .query_row("SELECT hash FROM audit WHERE seq = ?1", [last - 1], |r| {
            r.get(0)
        })
        .unwrap();
    db.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'audit_head'",
        [format!("{} {h}", last - 1)],
    )
    .unwrap();
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("head"));
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, "ab".repeat(32)).unwrap();
    let out = verify(&["--key", other_key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another key"));
    let out = verify(&["--witness", w]);
    assert_eq!(out.status.code(), Some(1));
}

/// A child stopped (SIGTERM, then waited for) when the test ends, even by a panic.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// `ioc node add` makes a node account of some units and prints its token once; a name
/// that cannot name a node, or one already taken, is refused.
#[test]
fn node_add_prints_a_token_for_a_node_account() {
    let dir = tempfile::tempdir().unwrap();
    let add = |args: &[&str]| {
        ioc()
            .args(["node", "add"])
            .args(args)
            .arg("--data")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = add(&["oc-nam-dan", "--units", "17935, 17936"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let token = stdout.trim();
    assert!(
        token.starts_with("ioc-node.") && token.len() > 40,
        "{stdout}"
    );
    assert!(stderr.contains("17935, 17936"), "{stderr}");
    assert!(!add(&["oc-nam-dan"]).status.success(), "taken");
    let bad = add(&["OC Nam Đàn"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lowercase"));
    let list = ioc()
        .args(["user", "list", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("oc-nam-dan\tnode\t[\"17935\",\"17936\"]"),
        "{list}"
    );
}

/// `ioc backup` of the folder a running `ioc serve` (the demo, writing all along) holds,
/// `ioc restore` into a new folder: the restored folder has what the server had committed
/// and serves; a second restore over it and a folder of a newer version are refused with
/// messages that say what to do.
#[test]
fn backup_while_serving_and_restore_into_a_new_folder() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Killed(
        ioc()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(server.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("http://"), "{line}");
    let count = |db: &std::path::Path| -> i64 {
        let c =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        c.query_row("SELECT count(*) FROM observations", [], |r| r.get(0))
            .unwrap()
    };
    // The demo's history and live simulator are in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count(&data.join("ioc.db")) < 1000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the demo wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let file = dir.path().join("nghe-an.iocbackup");
    let out = ioc()
        .args(["backup", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("backed up") && said.contains("files"),
        "{said}"
    );
    let at_backup = count(&data.join("ioc.db"));
    drop(server);
    let after = count(&data.join("ioc.db"));

    let restored = dir.path().join("restored");
    let out = ioc()
        .arg("restore")
        .arg(&file)
        .arg("--data")
        .arg(&restored)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A snapshot of the running server: what it had, not what came after.
    let n = count(&restored.join("ioc.db"));
    assert!(
        n >= 1000 && n <= at_backup.max(after),
        "{n} of {at_backup}..{after}"
    );
    assert!(restored.join("rules").is_dir());

    // Never over a folder that holds something.
    let out = ioc()
        .arg("restore")
        .arg(&file)
        .arg("--data")
        .arg(&restored)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not empty"), "{err}");

    // A folder written by a newer version is refused by every command that opens it.
    let c = rusqlite::Connection::open(restored.join("ioc.db")).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    c.pragma_update(None, "user_version", v + 1).unwrap();
    drop(c);
    let out = ioc()
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(&restored)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("newer IOC Console"),
        "{err}"
    );
}
