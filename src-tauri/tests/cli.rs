//! The desktop binary's command line, without opening a window.

use std::process::Command;

fn app() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ioc-desktop"))
}

#[test]
fn help_lists_the_options() {
    let out = app().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in ["--data", "--config", "--no-demo", "--exit-after"] {
        assert!(text.contains(opt), "{opt} missing from:\n{text}");
    }
}

#[test]
fn a_bad_config_stops_before_any_window_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ioc.toml");
    std::fs::write(&cfg, "[display]\nlanguage = \"fr\"\n").unwrap();
    let out = app()
        .arg("--config")
        .arg(&cfg)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("display.language"), "{err}");
}
