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
//! cargo xtask fuzz [--minutes N]  coverage-guided fuzzing of the decoders and parsers
//! cargo xtask dist [--check ROOT] the installable packages into target/dist/ (--check:
//!                                 install, start and purge them in a Debian 12 chroot)
//! ```

mod dist;

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
    // The UI's files are served precompressed (brotli beside gzip).
    "brotli",
    // The desktop window (WebKitGTK) plays the cameras' H.264/H.265 through GStreamer.
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-libav",
];

/// The engine's integration tests that run a second time with the store on PostgreSQL
/// (`IOC_TEST_STORE=postgres`): those that write and read the store the most. The
/// end-to-end tests run once, on SQLite.
const STORE_MATRIX: &[&str] = &[
    "pipeline",
    "operations",
    "kpis",
    "rule_features",
    "rule_management",
    "http_ws",
    "federation",
];

/// Extra packages for the test suite: browsers, WebDriver servers, a virtual display.
const APT_TEST: &[&str] = &[
    "mosquitto",
    "mosquitto-clients",
    // The NATS JetStream source: a three-node cluster on loopback, its MQTT listener.
    "nats-server",
    // The store's PostgreSQL side: each test process runs a cluster of its own (initdb).
    "postgresql-15",
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
    // The cameras' tests: a real RTSP server with a test pattern (GStreamer's, driven from
    // Python), H.264/VP8 encoders, the clock burnt into the picture, and ffprobe to check the
    // evidence clips.
    "gir1.2-gst-rtsp-server-1.0",
    "gir1.2-gstreamer-1.0",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-x",
    "ffmpeg",
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
        "fuzz" => fuzz_command(&rest),
        "dist" => dist::dist(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <run|serve|test|ui|setup|bench|fuzz|dist>\n\
                 \n  run    build and open the desktop app (Nghệ An demo)\
                 \n  serve  run `ioc serve` for a browser on http://127.0.0.1:8080\
                 \n  test   every check and test, as CI runs it\
                 \n  ui     build the web UI into ui/dist\
                 \n  setup  install what is missing (--test: also the test tools)\
                 \n  bench  ioc bench ingest, rules and mqtt on a release build\
                 \n  dist   the packages into target/dist/ (--check ROOT: install and start \
                 them in a Debian 12 chroot at ROOT)\
                 \n  fuzz   fuzz every decoder and parser (--minutes N, default {FUZZ_MINUTES}; \
                 then target names to run only those)"
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
    js_modules(&ui.join("js"), &dist.join("snippets"))?;
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
    if release {
        shrink_wasm(&dist.join("ioc_ui_bg.wasm"))?;
        precompress(&dist)?;
    }
    println!("UI built into {}", dist.display());
    Ok(())
}

/// wasm-bindgen copies the modules Rust imports (`ui/js/map.js`, …) into `snippets/<crate>/js/`,
/// but not the modules those import (`devices.js`, shared by the maps): every `ui/js` module
/// goes beside them.
fn js_modules(js: &Path, snippets: &Path) -> Result {
    let read = |d: &Path| std::fs::read_dir(d).map_err(|e| format!("{}: {e}", d.display()));
    for crate_dir in read(snippets)? {
        let to = crate_dir.map_err(|e| e.to_string())?.path().join("js");
        if !to.is_dir() {
            continue;
        }
        for f in read(js)? {
            let f = f.map_err(|e| e.to_string())?.path();
            let name = f.file_name().unwrap_or_default();
            if f.extension().is_some_and(|x| x == "js") && !to.join(name).exists() {
                copy(&f, &to.join(name))?;
            }
        }
    }
    Ok(())
}

/// The release wasm through binaryen's optimiser (npm `binaryen`, pinned in ui/package.json:
/// Debian's 108 breaks wasm-bindgen's output), tuned for size: it is downloaded by every
/// console and wall at every start.
fn shrink_wasm(wasm: &Path) -> Result {
    let before = std::fs::metadata(wasm).map_err(|e| e.to_string())?.len();
    let opt = root().join("ui/node_modules/.bin/wasm-opt");
    let path = wasm.to_str().unwrap();
    sh(
        opt.to_str().unwrap(),
        &[
            "-Oz",
            // What rustc's wasm32 target emits by default.
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
            path,
            "-o",
            path,
        ],
    )?;
    let after = std::fs::metadata(wasm).map_err(|e| e.to_string())?.len();
    println!(
        "wasm-opt: {:.1} MB -> {:.1} MB",
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    Ok(())
}

/// A brotli and a gzip copy beside every file worth compressing (the server sends the one a
/// client accepts); fonts and images are compressed already.
fn precompress(dir: &Path) -> Result {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("wasm" | "js" | "mjs" | "css" | "html" | "svg" | "json")
            ) {
                files.push(p);
            }
        }
    }
    let (mut raw, mut br) = (0u64, 0u64);
    for f in &files {
        let name = f.to_str().unwrap();
        sh("brotli", &["--quality=11", "--keep", "--force", name])?;
        sh("gzip", &["-9", "--keep", "--force", "--no-name", name])?;
        raw += std::fs::metadata(f).map_err(|e| e.to_string())?.len();
        br += std::fs::metadata(format!("{name}.br"))
            .map_err(|e| e.to_string())?
            .len();
    }
    println!(
        "precompressed {} files: {:.1} MB -> {:.1} MB with brotli",
        files.len(),
        raw as f64 / 1e6,
        br as f64 / 1e6
    );
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
    disk_space()?;
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
    step("the engine's store-heavy tests again, on PostgreSQL (a cluster of their own)");
    let mut args = vec!["test", "-p", "ioc-engine"];
    for t in STORE_MATRIX {
        args.extend(["--test", t]);
    }
    sh_in(&root(), "cargo", &args, &[("IOC_TEST_STORE", "postgres")])?;
    step("UI unit tests (native)");
    sh("cargo", &["test", "-p", "ioc-ui", "--lib"])?;
    // A few seconds of coverage-guided fuzzing per decoder and parser (`cargo xtask fuzz`
    // runs longer); a crash fails the suite with its reproducer.
    let targets: Vec<&str> = FUZZ_TARGETS.iter().map(|(t, _)| *t).collect();
    fuzz(&targets, FUZZ_TEST_SECONDS)?;
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

/// What a cold `cargo xtask test` leaves in target/ and fuzz/target/ (measured on a clean
/// clone: about 15 GB), with room to spare for the linker's temporary files.
const COLD_BUILD_BYTES: u64 = 22 << 30;
/// Below this, even an incremental build can run out half-way through a link.
const MIN_FREE_BYTES: u64 = 4 << 30;

/// Fails at once, with numbers, when the disk cannot hold the build: otherwise it fails half an
/// hour later as a linker "Bus error" or "No space left on device" deep in cargo's output.
fn disk_space() -> Result {
    let target = root().join("target");
    let probe = if target.exists() {
        target.clone()
    } else {
        root()
    };
    let Some(out) = output("df", &["-Pk", &probe.to_string_lossy()]) else {
        return Ok(()); // no df: nothing to say, cargo will report
    };
    let free = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|k| k.parse::<u64>().ok())
        .map(|k| k * 1024);
    let Some(free) = free else { return Ok(()) };
    let built = output("du", &["-sk", &target.to_string_lossy()])
        .and_then(|o| o.split_whitespace().next()?.parse::<u64>().ok())
        .map(|k| k * 1024)
        .unwrap_or(0);
    let need = COLD_BUILD_BYTES.saturating_sub(built).max(MIN_FREE_BYTES);
    let gb = |b: u64| b as f64 / (1u64 << 30) as f64;
    println!(
        "disk: {:.1} GB free, target/ holds {:.1} GB, this run needs about {:.1} GB more",
        gb(free),
        gb(built),
        gb(need)
    );
    if free < need {
        return Err(format!(
            "not enough disk space for the build: {:.1} GB free on {}, about {:.1} GB needed \
             (a cold build of every test is about {:.0} GB); free some space and run again",
            gb(free),
            probe.display(),
            gb(need),
            gb(COLD_BUILD_BYTES)
        ));
    }
    Ok(())
}

fn bench() -> Result {
    step(
        "benchmarks (release build): ingest, rules, KPIs, federation sync, MQTT through \
         mosquitto, then NATS JetStream into PostgreSQL",
    );
    sh("cargo", &["build", "--release", "-p", "ioc"])?;
    let bin = root().join("target/release/ioc");
    sh(bin.to_str().unwrap(), &["bench", "ingest"])?;
    sh(bin.to_str().unwrap(), &["bench", "rules"])?;
    sh(bin.to_str().unwrap(), &["bench", "kpi"])?;
    sh(bin.to_str().unwrap(), &["bench", "sync"])?;
    sh(bin.to_str().unwrap(), &["bench", "mqtt"])?;
    sh(bin.to_str().unwrap(), &["bench", "cluster"])
}

// ---------------------------------------------------------------------------------------
// fuzz

/// cargo-fuzz, installed at this version from crates.io when missing.
const CARGO_FUZZ: &str = "0.13.2";
/// `cargo xtask fuzz` without `--minutes`.
const FUZZ_MINUTES: f64 = 10.0;
/// What `cargo xtask test` gives each target, in seconds.
const FUZZ_TEST_SECONDS: u64 = 4;

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`) and the largest input each is given.
const FUZZ_TARGETS: &[(&str, usize)] = &[
    ("decode_ngsi_ld", 64 * 1024),
    ("decode_cap", 64 * 1024),
    ("decode_json", 64 * 1024),
    ("decode_csv", 64 * 1024),
    ("decode_geojson", 64 * 1024),
    ("decode_sensorthings", 64 * 1024),
    ("parse_config", 16 * 1024),
    ("parse_source", 8 * 1024),
    ("parse_rules", 8 * 1024),
    ("parse_sop", 16 * 1024),
    ("parse_kpi", 8 * 1024),
];

/// `CI` set to anything but empty, `0`, `false` or `no` (as the tests' `common/missing.rs`).
fn under_ci() -> bool {
    env::var("CI").is_ok_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

/// `cargo xtask fuzz [--minutes N] [TARGET…]`: N minutes spread over the targets.
fn fuzz_command(args: &[String]) -> Result {
    let mut minutes = FUZZ_MINUTES;
    let mut only: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--minutes" => {
                minutes = it
                    .next()
                    .and_then(|m| m.parse::<f64>().ok())
                    .filter(|m| *m > 0.0)
                    .ok_or("--minutes needs a number of minutes")?;
            }
            name => match FUZZ_TARGETS.iter().find(|(t, _)| *t == name) {
                Some((t, _)) => only.push(t),
                None => {
                    return Err(format!(
                        "unknown argument {name:?} (--minutes N, or target names: {})",
                        FUZZ_TARGETS
                            .iter()
                            .map(|(t, _)| *t)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            },
        }
    }
    if only.is_empty() {
        only = FUZZ_TARGETS.iter().map(|(t, _)| *t).collect();
    }
    let seconds = ((minutes * 60.0) / only.len() as f64).round().max(1.0) as u64;
    fuzz(&only, seconds)
}

/// Builds the fuzz targets, builds the seed corpus, and runs each target for `seconds`.
/// Every target runs; any crash fails the whole with the reproducer's path.
fn fuzz(targets: &[&str], seconds: u64) -> Result {
    let dir = root().join("fuzz");
    fuzz_check_targets(&dir)?;
    cargo_fuzz()?;
    step("building the fuzz targets (instrumented, --sanitizer none: stable Rust)");
    // Its own workspace and target folder (fuzz/target, named so that a CARGO_TARGET_DIR
    // set for the main build is not taken): the main build is untouched. 16 codegen units
    // instead of cargo-fuzz's 1 and unoptimised dependencies (fuzz/Cargo.toml) keep the
    // cold build near two minutes on two cores.
    let target_dir = dir.join("target");
    let built = Instant::now();
    sh_in(
        &dir,
        "cargo",
        &[
            "fuzz",
            "build",
            "--sanitizer",
            "none",
            "--codegen-units",
            "16",
            "--target-dir",
            target_dir.to_str().ok_or("fuzz/target is not UTF-8")?,
        ],
        &[],
    )?;
    println!("fuzz build: {} s", built.elapsed().as_secs());
    let host = output("rustc", &["-vV"])
        .and_then(|v| {
            v.lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        })
        .ok_or("cannot read the host triple from `rustc -vV`")?;
    let bins = dir.join("target").join(host).join("release");

    step("building the seed corpus (../shared/data, the repository's examples, fuzz/seeds)");
    let seeds = dir.join("target/seeds");
    fuzz_seeds(&seeds)?;

    step(&format!(
        "fuzzing {} target(s), {seconds} s each",
        targets.len()
    ));
    let tmp = dir.join("target/tmp");
    let logs = dir.join("target/logs");
    for d in [&tmp, &logs] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let mut failed = Vec::new();
    for &t in targets {
        let max_len = FUZZ_TARGETS
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, l)| *l)
            .unwrap_or(16 * 1024);
        let corpus = dir.join("corpus").join(t);
        let artifacts = dir.join("artifacts").join(t);
        for d in [&corpus, &artifacts] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let before = fuzz_files(&artifacts);
        let log_path = logs.join(format!("{t}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let started = Instant::now();
        // Run the binary itself, not `cargo fuzz run`: no cargo (and no build lock) is held
        // while it fuzzes.
        let status = Command::new(bins.join(t))
            .arg(&corpus)
            .arg(seeds.join(t))
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-max_len={max_len}"))
            // An input that takes this long is a hang worth a report, not a slow machine.
            .arg("-timeout=30")
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            // The rules target writes a scratch rules folder per input here.
            .env("TMPDIR", &tmp)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", bins.join(t).display()))?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        println!("{}", fuzz_summary(t, &text, started.elapsed().as_secs()));
        if !status.success() {
            let found: Vec<PathBuf> = fuzz_files(&artifacts)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!(
                "\n{t} FAILED ({status}); the end of {}:\n{}",
                log_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            for f in &found {
                eprintln!(
                    "\nreproducer: {}\n  run it:      {} {}\n  minimize it: cargo fuzz tmin --sanitizer none {t} {}\n  \
                     then fix it and commit the input under crates/engine/tests/fuzz_regressions/{t}/",
                    f.display(),
                    bins.join(t).display(),
                    f.display(),
                    f.display()
                );
            }
            failed.push(t);
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    if failed.is_empty() {
        println!("fuzzing: no crash in {} target(s)", targets.len());
        Ok(())
    } else {
        Err(format!("fuzzing found a crash in {}", failed.join(", ")))
    }
}

/// One line per target from libFuzzer's log: executions, coverage, corpus, speed.
fn fuzz_summary(target: &str, log: &str, secs: u64) -> String {
    let field = |line: &str, key: &str| -> Option<String> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split_whitespace().next().map(str::to_string)
    };
    let last = log.lines().rev().find(|l| l.contains(" cov: "));
    let stat = |key: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| "?".into())
    };
    let get = |key| {
        last.and_then(|l| field(l, key))
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "{target:<20} {:>10} execs {:>7} exec/s  cov {:>6}  ft {:>6}  corpus {:>6}  {secs} s",
        stat("stat::number_of_executed_units:"),
        stat("stat::average_exec_per_sec:"),
        get("cov: "),
        get("ft: "),
        get("corp: ").split('/').next().unwrap_or("?"),
    )
}

fn fuzz_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Every file in `fuzz/fuzz_targets` is run and every target named here exists.
fn fuzz_check_targets(dir: &Path) -> Result {
    let mut on_disk: Vec<String> = fuzz_files(&dir.join("fuzz_targets"))
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    on_disk.sort();
    let mut named: Vec<String> = FUZZ_TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    named.sort();
    if on_disk == named {
        Ok(())
    } else {
        Err(format!(
            "fuzz/fuzz_targets has {on_disk:?} but xtask's FUZZ_TARGETS names {named:?}"
        ))
    }
}

/// cargo-fuzz at [`CARGO_FUZZ`], installed from crates.io when missing or another version.
fn cargo_fuzz() -> Result {
    let current = output("cargo", &["fuzz", "--version"]).unwrap_or_default();
    if current.split_whitespace().nth(1) == Some(CARGO_FUZZ) {
        return Ok(());
    }
    step(&format!("installing cargo-fuzz {CARGO_FUZZ} (once)"));
    sh(
        "cargo",
        &[
            "install",
            "--locked",
            "--force",
            &format!("cargo-fuzz@{CARGO_FUZZ}"),
        ],
    )
    .map_err(|e| format!("cargo-fuzz is needed to fuzz and could not be installed: {e}"))
}

/// `../shared/data` (or `$IOC_SHARED_DATA`). Missing: a failure under CI, else a warning
/// (the committed seeds and the repository's examples are still used).
fn fuzz_shared_data() -> Result<Option<PathBuf>> {
    let dir = env::var_os("IOC_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/data"));
    if dir.is_dir() {
        return Ok(Some(dir));
    }
    let msg = format!(
        "{} is missing: the fuzz corpus of CAP, NGSI-LD, AirNow CSV and GeoJSON is built from it",
        dir.display()
    );
    if under_ci() {
        Err(msg)
    } else {
        println!("warning: {msg}; fuzzing from the committed seeds only");
        Ok(None)
    }
}

/// Writes the seed corpus into `out/<target>/` (rebuilt every run, never committed): real
/// payloads from `../shared/data`, the configuration examples of the README, the SOP
/// templates and KPI catalogue of the engine, and the hand-written `fuzz/seeds/<target>/`.
fn fuzz_seeds(out: &Path) -> Result {
    let _ = std::fs::remove_dir_all(out);
    let mut counts: Vec<(&str, usize)> = FUZZ_TARGETS.iter().map(|(t, _)| (*t, 0)).collect();
    let mut put = |target: &str, name: &str, bytes: &[u8]| -> Result {
        let d = out.join(target);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(d.join(name), bytes).map_err(|e| e.to_string())?;
        if let Some(c) = counts.iter_mut().find(|(t, _)| *t == target) {
            c.1 += 1;
        }
        Ok(())
    };
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let root = root();

    // Hand-written seeds.
    for (t, _) in FUZZ_TARGETS {
        for f in fuzz_files(&root.join("fuzz/seeds").join(t)) {
            let name = format!("committed-{}", f.file_name().unwrap().to_string_lossy());
            put(t, &name, &read(&f)?)?;
        }
    }

    // The configuration examples of the README and docs: whole, and each table on its own
    // as a config; `[[source]]`, `[[rule]]` and `[[kpi]]` tables as the admin, rules and KPI
    // screens take them.
    let mut blocks = Vec::new();
    for doc in [root.join("README.md")]
        .into_iter()
        .chain(fuzz_files(&root.join("docs")))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = String::from_utf8_lossy(&read(&doc)?).into_owned();
        let mut block: Option<String> = None;
        for line in text.lines() {
            match (&mut block, line.trim_start()) {
                (None, l) if l.starts_with("```toml") => block = Some(String::new()),
                (Some(b), l) if l.starts_with("```") => {
                    blocks.push(std::mem::take(b));
                    block = None;
                }
                (Some(b), _) => {
                    b.push_str(line);
                    b.push('\n');
                }
                _ => {}
            }
        }
    }
    let mut rules_file = String::new();
    for (i, block) in blocks.iter().enumerate() {
        put(
            "parse_config",
            &format!("readme-{i}.toml"),
            block.as_bytes(),
        )?;
        // Tables: each starts at a header that is not a sub-table of the one before.
        let mut tables: Vec<String> = Vec::new();
        for line in block.lines() {
            let l = line.trim_start();
            let sub = l.starts_with("[source.") || l.starts_with("[kpi.");
            if l.starts_with('[') && !sub || tables.is_empty() {
                tables.push(String::new());
            }
            let t = tables.last_mut().unwrap();
            t.push_str(line);
            t.push('\n');
        }
        for (j, t) in tables.iter().enumerate() {
            put(
                "parse_config",
                &format!("readme-{i}-{j}.toml"),
                t.as_bytes(),
            )?;
            let (head, body) = t.split_once('\n').unwrap_or((t, ""));
            let head = head.split('#').next().unwrap_or("").trim();
            match head {
                "[[source]]" => {
                    let body = body.replace("[source.", "[");
                    put(
                        "parse_source",
                        &format!("readme-{i}-{j}.toml"),
                        body.as_bytes(),
                    )?;
                }
                "[[rule]]" => {
                    rules_file.push_str(t);
                    put("parse_rules", &format!("readme-{i}-{j}.toml"), t.as_bytes())?;
                    put(
                        "parse_rules",
                        &format!("readme-{i}-{j}-bare.toml"),
                        body.as_bytes(),
                    )?;
                }
                "[[kpi]]" => {
                    let body = body.replace("[kpi.of]", "[of]");
                    put(
                        "parse_kpi",
                        &format!("readme-{i}-{j}.toml"),
                        body.as_bytes(),
                    )?;
                }
                _ => {}
            }
        }
    }
    put(
        "parse_rules",
        "readme-all-rules.toml",
        rules_file.as_bytes(),
    )?;

    // The engine's SOP templates and KPI catalogue (as the KPI screen shows each).
    let engine = root.join("crates/engine");
    for f in fuzz_files(&engine.join("src/operate/sops")) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        put("parse_sop", &name, &read(&f)?)?;
    }
    let catalogue =
        String::from_utf8_lossy(&read(&engine.join("src/kpi/catalogue.toml"))?).into_owned();
    put("parse_config", "kpi-catalogue.toml", catalogue.as_bytes())?;
    for (i, chunk) in catalogue.split("\n[[kpi]]\n").skip(1).enumerate() {
        let text = chunk.replace("[kpi.of]", "[of]");
        put(
            "parse_kpi",
            &format!("catalogue-{i}.toml"),
            text.trim().as_bytes(),
        )?;
    }
    put(
        "decode_sensorthings",
        "sensorthings_seed.json",
        &read(&engine.join("tests/sensorthings_seed.json"))?,
    )?;

    if let Some(shared) = fuzz_shared_data()? {
        // CAP: every message (the XSDs are not messages).
        for f in fuzz_files(&shared.join("cap")) {
            if f.extension().is_some_and(|e| e == "xml") {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                put("decode_cap", &name, &read(&f)?)?;
            }
        }
        // NGSI-LD / NGSIv2 / key-values / GeoJSON examples of the Smart Data Models.
        for ty in fuzz_files(&shared.join("ngsi-ld")) {
            for f in fuzz_files(&ty) {
                let name = format!(
                    "{}-{}",
                    ty.file_name().unwrap().to_string_lossy(),
                    f.file_name().unwrap().to_string_lossy()
                );
                put("decode_ngsi_ld", &name, &read(&f)?)?;
            }
        }
        // AirNow CSV: the header and a day of rows from several places of each year (the
        // decoder's default mapping reads them; some with a mapping of their own).
        let by_site =
            "entity = \"Site\"\ntime = \"Date (LT)\"\ntime_format = \"%Y-%m-%d %I:%M %p\"\n\
                       metrics = { pm25 = \"Raw Conc.\", aqi = \"AQI\" }\n";
        for f in fuzz_files(&shared.join("airnow-hanoi")) {
            let text = String::from_utf8_lossy(&read(&f)?).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            let Some((header, rows)) = lines.split_first() else {
                continue;
            };
            let year = f.file_stem().unwrap().to_string_lossy().into_owned();
            for (k, start) in [0usize, 700, 2200, 4100, 6000, 8000]
                .into_iter()
                .enumerate()
            {
                let Some(day) = rows.get(start..(start + 24).min(rows.len())) else {
                    continue;
                };
                let chunk = format!("{header}\n{}\n", day.join("\n"));
                put("decode_csv", &format!("{year}-{k}.csv"), chunk.as_bytes())?;
                if k % 2 == 0 {
                    let mapped = format!("{by_site}\0{chunk}");
                    put(
                        "decode_csv",
                        &format!("{year}-{k}-site.csv"),
                        mapped.as_bytes(),
                    )?;
                }
            }
        }
        // GeoJSON: small pieces of the province's boundaries.
        for (name, every) in [
            ("nghe-an-communes-2025.geojson", 10),
            ("nghe-an-province.geojson", 1),
        ] {
            let text = String::from_utf8_lossy(&read(&shared.join("geo").join(name))?).into_owned();
            let pieces = fuzz_geojson_pieces(&text, every);
            for (i, p) in pieces.iter().enumerate() {
                put("decode_geojson", &format!("{name}-{i}.json"), p.as_bytes())?;
                put("decode_ngsi_ld", &format!("{name}-{i}.json"), p.as_bytes())?;
            }
            if pieces.len() >= 3 {
                let fc = format!(
                    "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
                    pieces[..3].join(",")
                );
                put("decode_geojson", &format!("{name}-fc.json"), fc.as_bytes())?;
                let mapping = "id = \"code\"\nname = \"fullName\"\nkind = \"Commune\"\n\
                               domain = \"planning\"\nid_prefix = \"xa-\"\n";
                let mapped = format!("{mapping}\0{fc}");
                put(
                    "decode_geojson",
                    &format!("{name}-fc-mapped.json"),
                    mapped.as_bytes(),
                )?;
            }
        }
        // A home-grown JSON feed: Hồ Chí Minh City's traffic cameras, a few at a time.
        let cams = String::from_utf8_lossy(&read(&shared.join("cameras/hcmc-cameras-raw.json"))?)
            .into_owned();
        let objects: Vec<&str> = cams
            .split("\n  },\n")
            .map(|o| o.trim_start_matches('[').trim())
            .collect();
        let mapping = "id = \"code\"\nid_prefix = \"hcm-\"\nname = \"name\"\nlon = \"longitude\"\n\
                       lat = \"latitude\"\nkind = \"Camera\"\ndomain = \"traffic\"\nstatus = \"status\"\n\
                       attributes = { ptz = \"ptz\", streets = \"streets\" }\n";
        for start in [0usize, 100, 300, 500, 700] {
            if let Some(some) = objects.get(start..(start + 3).min(objects.len())) {
                let items: Vec<String> = some
                    .iter()
                    .map(|o| {
                        let o = o.trim_end_matches(']').trim().trim_end_matches(',');
                        if o.ends_with('}') {
                            o.to_string()
                        } else {
                            format!("{o}\n  }}")
                        }
                    })
                    .collect();
                let payload = format!("{mapping}\0[{}]", items.join(",\n"));
                put(
                    "decode_json",
                    &format!("cameras-{start}.json"),
                    payload.as_bytes(),
                )?;
            }
        }
    }
    let empty: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(t, _)| *t)
        .collect();
    if !empty.is_empty() {
        return Err(format!("no seeds for {}", empty.join(", ")));
    }
    println!(
        "seeds: {}",
        counts
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Small GeoJSON features cut from a boundaries file by plain text scanning (its features'
/// id, properties and the first points of their outline, closed again): every `every`-th
/// feature as a Polygon, and its first point as a Point.
fn fuzz_geojson_pieces(text: &str, every: usize) -> Vec<String> {
    let mut out = Vec::new();
    let starts: Vec<usize> = text.match_indices("\"Feature\"").map(|(i, _)| i).collect();
    for (n, w) in starts.iter().enumerate().step_by(every.max(1)) {
        let end = starts.get(n + 1).copied().unwrap_or(text.len());
        let f = &text[*w..end];
        let id = f
            .find("\"id\"")
            .and_then(|i| f[i + 4..].split('"').nth(1))
            .unwrap_or("x");
        let props = f
            .find("\"properties\"")
            .and_then(|i| {
                let rest = &f[i..];
                let open = rest.find('{')?;
                let close = rest[open..].find('}')?;
                Some(&rest[open..=open + close])
            })
            .unwrap_or("{}");
        let Some(c) = f.find("\"coordinates\"") else {
            continue;
        };
        let numbers: Vec<&str> = f[c + 13..]
            .split(|ch: char| !(ch.is_ascii_digit() || ch == '.' || ch == '-'))
            .filter(|s| !s.is_empty() && s.parse::<f64>().is_ok())
            .take(24)
            .collect();
        if numbers.len() < 8 {
            continue;
        }
        let mut ring: Vec<String> = numbers
            .chunks(2)
            .filter(|p| p.len() == 2)
            .map(|p| format!("[{},{}]", p[0], p[1]))
            .collect();
        ring.push(ring[0].clone());
        out.push(format!(
            "{{\"type\":\"Feature\",\"id\":\"{id}\",\"properties\":{props},\
             \"geometry\":{{\"type\":\"Polygon\",\"coordinates\":[[{}]]}}}}",
            ring.join(",")
        ));
        out.push(format!(
            "{{\"type\":\"Feature\",\"id\":\"{id}-p\",\"properties\":{props},\
             \"geometry\":{{\"type\":\"Point\",\"coordinates\":{}}}}}",
            ring[0]
        ));
    }
    out
}
