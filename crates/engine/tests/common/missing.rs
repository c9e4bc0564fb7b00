//! What a test does when something it needs is not on this machine: the shared reference data
//! (`../shared/data`) or a tool (pdftotext, xmllint, mosquitto, …).
//!
//! Under CI (`CI` set, as CI services set it) a missing thing is a failure that says what is
//! missing and how to get it: a test that returns early there would pass without testing
//! anything. Elsewhere it is a visible note on stderr naming the test's file and line, and the
//! caller returns (or carries on without that part).
//!
//! One file, included by path wherever a test needs it (the engine's, server's, CLI's and
//! end-to-end tests, and the engine's unit tests), so every skip in the repository goes
//! through it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Whether this is a CI run: `CI` set to anything but empty, `0` or `false`.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

/// Something the calling test needs is missing (`what` says what and how to get it). Under CI
/// it panics; otherwise it prints a visible note and returns, for the caller to `return`:
///
/// ```ignore
/// let Some(dir) = shared_data("cap") else {
///     return missing("../shared/data/cap not found");
/// };
/// ```
#[track_caller]
pub fn missing(what: &str) {
    let at = std::panic::Location::caller();
    if under_ci() {
        panic!("{what}: under CI (CI is set) a test may not skip for want of it");
    }
    eprintln!(
        "\n*** NOT TESTED ({}:{}): {what}\n*** (under CI this fails)\n",
        at.file(),
        at.line()
    );
}

/// The workspace's root: the first folder above this crate's manifest with a `Cargo.lock`.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or(manifest)
        .to_path_buf()
}

/// `rel` in the shared reference data (`IOC_SHARED_DATA`, by default `../shared/data` beside
/// the workspace), when it is there.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let base = std::env::var_os("IOC_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"));
    let p = if rel.is_empty() { base } else { base.join(rel) };
    p.exists().then_some(p)
}

/// Runs a tool; `None` (after [`missing`]) when it is not installed. `package` says where it
/// comes from. A tool that is there but fails is the test's failure, not a skip.
#[track_caller]
pub fn run_tool(cmd: &mut std::process::Command, package: &str) -> Option<std::process::Output> {
    match cmd.output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            missing(&format!(
                "{:?} is not installed ({package}; `cargo xtask setup --test` installs it)",
                cmd.get_program()
            ));
            None
        }
        Err(e) => panic!("{:?}: {e}", cmd.get_program()),
    }
}
