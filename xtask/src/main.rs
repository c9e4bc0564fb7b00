//! `cargo xtask …`: everything a newcomer or CI needs, on a fresh Debian 12 machine with only
//! Rust. Each command first installs what it needs and is missing (Debian packages, the
//! wasm32 target, the wasm-bindgen CLI matching Cargo.lock, npm packages, tauri-driver).
//!
//! ```text
//! cargo xtask run [-- APP ARGS]   build and open the desktop app on the Nghệ An demo
//! cargo xtask serve [-- ARGS]     the same engine and UI for a browser (ioc serve)
//! cargo xtask test                every check and test, as CI runs it
//! cargo xtask ui [--debug]        build the web UI into ui/dist
//! cargo xtask setup [--test]      only install what is missing
//! cargo xtask bench               ioc bench ingest, rules and mqtt, release build
//! ```

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Packages to build and run the desktop app and the UI.
const APT_BUILD: &[&str] = &[
    "build-essential",
    "pkg-config",
    "file",
    "curl",
    "libssl-dev",
    "libwebkit2gtk-4.1-dev",
    "libxdo-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
];

/// Extra packages for the test suite: browsers, WebDriver servers, a virtual display.
const APT_TEST: &[&str] = &[
    "mosquitto",
    "mosquitto-clients",
    "libxml2-utils",
    "xvfb",
    "xauth",
    "webkit2gtk-driver",
    "chromium",
    "chromium-driver",
    "imagemagick",
    "python3",
    "python3-venv",
    // The desktop test's notification server on a private session bus.
    "dbus-daemon",
    "python3-dbus",
    "python3-gi",
    // pdftotext: the tests read the text of the PDF reports.
    "poppler-utils",
];

const TAURI_DRIVER: &str = "2.1.0";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r.to_vec()),
        None => ("help", vec![]),
    };
    let rest: Vec<String> = rest.into_iter().filter(|a| a != "--").collect();
    let started = Instant::now();
    let result = match cmd {
        "setup" => setup(rest.iter().any(|a| a == "--test")),
        "ui" => setup(false).and_then(|_| build_ui(!rest.iter().any(|a| a == "--debug"))),
        "run" => run_app(&rest),
        "serve" => serve(&rest),
        "test" => test(),
        "bench" => bench(),
        _ => {
            eprintln!(
                "usage: cargo xtask <run|serve|test|ui|setup|bench>\n\
                 \n  run    build and open the desktop app (Nghệ An demo)\
                 \n  serve  run `ioc serve` for a browser on http://127.0.0.1:8080\
                 \n  test   every check and test, as CI runs it\
                 \n  ui     build the web UI into ui/dist\
                 \n  setup  install what is missing (--test: also the test tools)\
                 \n  bench  ioc bench ingest, rules and mqtt on a release build"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => {
            if cmd == "test" {
                println!("xtask test: all passed in {:.0?}", started.elapsed());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn step(what: &str) {
    println!("\n==> {what}");
}

/// Runs a command in the workspace root, failing on a non-zero exit.
fn sh(program: &str, args: &[&str]) -> Result {
    sh_in(&root(), program, args, &[])
}

fn sh_in(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn cargo_bin_dir() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

// ---------------------------------------------------------------------------------------
// setup

fn setup(for_tests: bool) -> Result {
    let mut packages: Vec<&str> = APT_BUILD.to_vec();
    if for_tests {
        packages.extend(APT_TEST);
    }
    // Node.js only to fetch MapLibre and the fonts from npm; any installed node/npm will do
    // (some machines have NodeSource's, which conflicts with Debian's npm package).
    if !have("npm") {
        packages.extend(["nodejs", "npm"]);
    }
    apt(&packages)?;
    wasm_target()?;
    wasm_bindgen_cli()?;
    npm_packages()?;
    if for_tests {
        tauri_driver()?;
        sensorthings_server()?;
        python_tool(
            "schemathesis (the API tester)",
            "crates/server/tests/schemathesis/requirements.txt",
            "target/py-schemathesis",
        )?;
        oidc_provider()?;
    }
    Ok(())
}

fn apt(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            output("dpkg-query", &["-W", "-f=${Status}", p])
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    let root_user = output("id", &["-u"]).is_some_and(|s| s.trim() == "0");
    let mut prefix: Vec<&str> = Vec::new();
    if !root_user {
        if !have("sudo") {
            return Err(format!(
                "these Debian packages are missing and this is not root (and there is no sudo): {}",
                missing.join(" ")
            ));
        }
        prefix.push("sudo");
    }
    let run = |args: &[&str]| -> Result {
        let mut full: Vec<&str> = prefix.clone();
        full.extend(args);
        sh_in(
            &root(),
            full[0],
            &full[1..],
            &[("DEBIAN_FRONTEND", "noninteractive")],
        )
    };
    run(&["apt-get", "update", "-q"])?;
    let mut args = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    run(&args)
}

fn wasm_target() -> Result {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    step("adding the wasm32-unknown-unknown target");
    sh("rustup", &["target", "add", "wasm32-unknown-unknown"])
}

/// The wasm-bindgen version Cargo.lock resolved; the CLI must be exactly the same.
fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines
                .next()
                .and_then(|v| v.trim().strip_prefix("version = \""))
            {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    Err("wasm-bindgen is not in Cargo.lock".into())
}

fn wasm_bindgen_cli() -> Result {
    let version = locked_wasm_bindgen()?;
    let bin = cargo_bin_dir().join("wasm-bindgen");
    let current =
        output(bin.to_str().unwrap_or("wasm-bindgen"), &["--version"]).unwrap_or_default();
    if current.split_whitespace().nth(1) == Some(version.as_str()) {
        return Ok(());
    }
    step(&format!(
        "installing wasm-bindgen-cli {version} (a few minutes, once)"
    ));
    // Not --locked: the CLI's own lock file pins a yanked crate.
    sh(
        "cargo",
        &["install", "--force", &format!("wasm-bindgen-cli@{version}")],
    )
}

fn npm_packages() -> Result {
    let ui = root().join("ui");
    let stamp = ui.join("node_modules/.package-lock.json");
    let lock = ui.join("package-lock.json");
    let fresh = match (std::fs::metadata(&stamp), std::fs::metadata(&lock)) {
        (Ok(s), Ok(l)) => s.modified().ok() >= l.modified().ok(),
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    step("installing npm packages (MapLibre GL JS, fonts)");
    sh_in(&ui, "npm", &["ci", "--no-audit", "--no-fund"], &[])
}

/// A Python tool in a venv of its own under target/, from pinned requirements (every
/// package with its version, installed without resolving); reinstalled when they change.
fn python_tool(what: &str, requirements: &str, venv: &str) -> Result {
    let reqs = root().join(requirements);
    let venv = root().join(venv);
    let stamp = venv.join("installed-requirements.txt");
    let wanted = std::fs::read_to_string(&reqs).map_err(|e| format!("{}: {e}", reqs.display()))?;
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    step(&format!("installing {what}"));
    let _ = std::fs::remove_dir_all(&venv);
    sh("python3", &["-m", "venv", &venv.to_string_lossy()])?;
    sh(
        &venv.join("bin/pip").to_string_lossy(),
        &["install", "-q", "--no-deps", "-r", &reqs.to_string_lossy()],
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))
}

/// The OpenID provider the sign-in tests start (npm `oidc-provider`, pinned).
fn oidc_provider() -> Result {
    let dir = root().join("tests/oidc");
    let stamp = dir.join("node_modules/.package-lock.json");
    let fresh = match (
        std::fs::metadata(&stamp),
        std::fs::metadata(dir.join("package-lock.json")),
    ) {
        (Ok(s), Ok(l)) => s.modified().ok() >= l.modified().ok(),
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    step("installing the OpenID provider for the sign-in tests (oidc-provider)");
    sh_in(&dir, "npm", &["ci", "--no-audit", "--no-fund"], &[])
}

/// A real OGC SensorThings server (django-ogc-sensorthings from PyPI, pinned) in a venv
/// under target/, for the sensorthings source test; reinstalled when the pins change.
fn sensorthings_server() -> Result {
    let reqs = root().join("crates/engine/tests/sensorthings/requirements.txt");
    let venv = root().join("target/py-sensorthings");
    let stamp = venv.join("installed-requirements.txt");
    let wanted = std::fs::read_to_string(&reqs).map_err(|e| format!("{}: {e}", reqs.display()))?;
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    step("installing a SensorThings server (django-ogc-sensorthings) for the tests");
    let _ = std::fs::remove_dir_all(&venv);
    let venv_s = venv.to_string_lossy();
    sh("python3", &["-m", "venv", &venv_s])?;
    let pip = venv.join("bin/pip");
    sh(
        &pip.to_string_lossy(),
        &["install", "-q", "--no-deps", "-r", &reqs.to_string_lossy()],
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))
}

fn tauri_driver() -> Result {
    let bin = cargo_bin_dir().join("tauri-driver");
    if bin.exists() {
        return Ok(());
    }
    step(&format!("installing tauri-driver {TAURI_DRIVER}"));
    sh(
        "cargo",
        &[
            "install",
            "--locked",
            &format!("tauri-driver@{TAURI_DRIVER}"),
        ],
    )
}

// ---------------------------------------------------------------------------------------
// UI

fn copy(from: &Path, to: &Path) -> Result {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} → {}: {e}", from.display(), to.display()))
}

fn build_ui(release: bool) -> Result {
    step(&format!(
        "building the UI ({})",
        if release { "release" } else { "debug" }
    ));
    let root = root();
    let mut args = vec![
        "build",
        "-p",
        "ioc-ui",
        "--target",
        "wasm32-unknown-unknown",
    ];
    if release {
        args.push("--release");
    }
    sh("cargo", &args)?;
    let profile = if release { "release" } else { "debug" };
    let wasm = root.join(format!(
        "target/wasm32-unknown-unknown/{profile}/ioc_ui.wasm"
    ));
    let dist = root.join("ui/dist");
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::create_dir_all(&dist).map_err(|e| e.to_string())?;
    let bindgen = cargo_bin_dir().join("wasm-bindgen");
    sh(
        bindgen.to_str().unwrap_or("wasm-bindgen"),
        &[
            "--target",
            "web",
            "--no-typescript",
            "--out-dir",
            dist.to_str().unwrap(),
            wasm.to_str().unwrap(),
        ],
    )?;
    let ui = root.join("ui");
    copy(&ui.join("index.html"), &dist.join("index.html"))?;
    copy(&ui.join("boot.js"), &dist.join("boot.js"))?;
    copy(&ui.join("style.css"), &dist.join("style.css"))?;
    copy(&ui.join("static/favicon.svg"), &dist.join("favicon.svg"))?;
    let ml = ui.join("node_modules/maplibre-gl/dist");
    for f in [
        "maplibre-gl.mjs",
        "maplibre-gl-shared.mjs",
        "maplibre-gl-worker.mjs",
        "maplibre-gl.css",
    ] {
        copy(&ml.join(f), &dist.join("vendor").join(f))?;
    }
    copy(
        &ui.join("node_modules/maplibre-gl/LICENSE.txt"),
        &dist.join("vendor/LICENSE-maplibre-gl.txt"),
    )?;
    // The UI font, Vietnamese subsets included; the map labels use the same files.
    let fonts = ui.join("node_modules/@fontsource/be-vietnam-pro");
    let mut css = String::new();
    for weight in ["400", "600"] {
        for subset in ["vietnamese", "latin-ext", "latin"] {
            let name = format!("be-vietnam-pro-{subset}-{weight}-normal.woff2");
            copy(
                &fonts.join("files").join(&name),
                &dist.join("fonts").join(&name),
            )?;
        }
        let src = std::fs::read_to_string(fonts.join(format!("{weight}.css")))
            .map_err(|e| format!("fontsource css: {e}"))?;
        // Keep only the woff2 sources (the copied files).
        for line in src.lines() {
            let line = match line.find(", url(") {
                Some(i) if line.trim_start().starts_with("src:") => format!("{};", &line[..i]),
                _ => line.to_string(),
            };
            css.push_str(&line.replace("./files/", "./"));
            css.push('\n');
        }
    }
    std::fs::write(dist.join("fonts/fonts.css"), css).map_err(|e| e.to_string())?;
    copy(
        &fonts.join("LICENSE"),
        &dist.join("fonts/LICENSE-be-vietnam-pro.txt"),
    )?;
    println!("UI built into {}", dist.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// run, serve

fn has_display() -> bool {
    env::var_os("DISPLAY").is_some() || env::var_os("WAYLAND_DISPLAY").is_some()
}

fn run_app(args: &[String]) -> Result {
    setup(false)?;
    build_ui(true)?;
    if !has_display() {
        println!(
            "\nNo display here (DISPLAY and WAYLAND_DISPLAY are unset), so no window can open.\n\
             Serving the same app for a browser instead: open http://127.0.0.1:8080/"
        );
        return serve_built(args);
    }
    step("building the desktop app");
    sh("cargo", &["build", "-p", "ioc-desktop"])?;
    step("starting IOC Console");
    let bin = root().join("target/debug/ioc-desktop");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sh(bin.to_str().unwrap(), &args)
}

fn serve(args: &[String]) -> Result {
    setup(false)?;
    build_ui(true)?;
    serve_built(args)
}

fn serve_built(args: &[String]) -> Result {
    sh("cargo", &["build", "-p", "ioc"])?;
    let bin = root().join("target/debug/ioc");
    let mut full = vec!["serve"];
    full.extend(args.iter().map(String::as_str));
    sh(bin.to_str().unwrap(), &full)
}

// ---------------------------------------------------------------------------------------
// test

/// The packages built and tested natively, in one cargo invocation so features unify once.
const NATIVE: &[&str] = &[
    "-p",
    "ioc-model",
    "-p",
    "ioc-engine",
    "-p",
    "ioc-server",
    "-p",
    "ioc",
    "-p",
    "ioc-desktop",
    "-p",
    "ioc-e2e",
];

fn test() -> Result {
    setup(true)?;
    step("formatting");
    sh("cargo", &["fmt", "--all", "--", "--check"])?;
    build_ui(true)?;
    step("clippy (native and wasm)");
    let mut args = vec!["clippy", "--all-targets"];
    args.extend(NATIVE);
    args.extend(["-p", "xtask", "--", "-D", "warnings"]);
    sh("cargo", &args)?;
    sh(
        "cargo",
        &[
            "clippy",
            "-p",
            "ioc-ui",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    step("building the binaries and tests");
    let mut args = vec!["test", "--no-run"];
    args.extend(NATIVE);
    sh("cargo", &args)?;
    step("unit and integration tests");
    let mut args = vec!["test"];
    args.extend(NATIVE);
    args.extend(["--", "--skip", "e2e_"]);
    sh("cargo", &args)?;
    step("UI unit tests (native)");
    sh("cargo", &["test", "-p", "ioc-ui", "--lib"])?;
    step("end-to-end: browser (headless Chromium) and desktop window (tauri-driver, Xvfb)");
    let args = [
        "-a",
        "-s",
        "-screen 0 1600x900x24",
        "cargo",
        "test",
        "-p",
        "ioc-e2e",
        "--",
        "e2e_",
        "--test-threads",
        "1",
        "--nocapture",
    ];
    let path = format!(
        "{}:{}",
        cargo_bin_dir().display(),
        env::var("PATH").unwrap_or_default()
    );
    sh_in(&root(), "xvfb-run", &args, &[("PATH", &path)])?;
    println!("screenshots: {}", root().join("target/e2e").display());
    Ok(())
}

fn bench() -> Result {
    step("benchmarks (release build): ingest, rules, then MQTT through mosquitto");
    sh("cargo", &["build", "--release", "-p", "ioc"])?;
    let bin = root().join("target/release/ioc");
    sh(bin.to_str().unwrap(), &["bench", "ingest"])?;
    sh(bin.to_str().unwrap(), &["bench", "rules"])?;
    sh(bin.to_str().unwrap(), &["bench", "kpi"])?;
    sh(bin.to_str().unwrap(), &["bench", "mqtt"])
}
