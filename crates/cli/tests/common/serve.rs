//! `ioc serve` as a real process for the CLI's tests: started with the arguments a test
//! gives, and found by the line it prints once it listens (`IOC Console listening on URL`).
//! One file, included by path by each test that needs it.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Runs `ioc serve ARGS` and returns the process with the URL it listens on.
pub fn serve<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ioc"))
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(url.starts_with("http://"), "{line:?}");
    (child, url)
}

/// `ioc serve` on a free loopback port with a data folder and a configuration file, and
/// `extra` arguments (`--store URL`).
pub fn serve_configured(
    data: &std::path::Path,
    config: &std::path::Path,
    extra: &[&str],
) -> (Child, String) {
    let mut args: Vec<&OsStr> = vec![
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    serve(args)
}

/// Waits until `f` holds, polling, and fails the test with `what` after `secs`.
pub async fn wait(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
