//! The `ioc` binary as a user runs it.

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
