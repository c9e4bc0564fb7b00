//! `cargo xtask dist`: the installable packages, into `target/dist/`.
//!
//! - `ioc-server_<version>_amd64.deb`: `ioc` with a systemd unit (own user `ioc`, data in
//!   `/var/lib/ioc`, configuration in `/etc/ioc` as a conffile, logs in the journal, a
//!   graceful stop on SIGTERM). Built with Debian's own `dpkg-deb` from the files in
//!   `assets/packaging/ioc-server/`.
//!
//! - `ioc-console_<version>_amd64.deb`: the desktop app, from the Tauri bundler (`cargo tauri
//!   build --bundles deb`, tauri-cli installed when missing) as `tauri.conf.json`'s `bundle`
//!   says: the icon, a menu entry with the Vietnamese name, the video wall as a second entry.
//!   No AppImage: its bundler downloads linuxdeploy from GitHub, which is not Debian's.
//!
//! `cargo xtask dist --check ROOT` then installs the package in a clean Debian 12 chroot at
//! ROOT (made with debootstrap when absent), checks the unit with `systemd-analyze verify`,
//! starts the service's command as the unit does (as `ioc`, no systemd in a chroot), waits
//! for `/api/ready`, stops it with SIGTERM and checks the exit, then removes and purges the
//! package (the data stays, the configuration and the user go); then the desktop package:
//! its menu entries validated, the console and the wall started under Xvfb until they close
//! by themselves, and purged.

use crate::{root, sh, step, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PACKAGE: &str = "ioc-server";

/// The workspace's version (`[workspace.package] version`).
fn version() -> Result<String> {
    let toml = std::fs::read_to_string(root().join("Cargo.toml")).map_err(|e| e.to_string())?;
    let start = toml
        .find("[workspace.package]")
        .ok_or("no [workspace.package] in Cargo.toml")?;
    toml[start..]
        .lines()
        .find_map(|l| {
            let v = l.trim().strip_prefix("version")?.trim().strip_prefix('=')?;
            Some(v.trim().trim_matches('"').to_string())
        })
        .ok_or_else(|| "no version in [workspace.package]".into())
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::copy(from, to).map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", to.display()))
}

fn write(to: &Path, text: &str) -> Result {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(to, text).map_err(|e| format!("{}: {e}", to.display()))
}

fn dir_kib(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|d| d.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    walk(dir).div_ceil(1024)
}

/// Builds the server package from the release `ioc`; returns its path.
fn server_deb(version: &str) -> Result<PathBuf> {
    let dist = root().join("target/dist");
    let stage = dist.join("stage").join(PACKAGE);
    let _ = std::fs::remove_dir_all(&stage);
    let files = root().join("assets/packaging").join(PACKAGE);
    let bin = stage.join("usr/bin/ioc");
    copy(&root().join("target/release/ioc"), &bin, 0o755)?;
    // The symbols are for a debugger, not for a control room's server (about half the size).
    sh("strip", &["--strip-unneeded", bin.to_str().unwrap()])?;
    copy(
        &files.join("ioc.service"),
        &stage.join("lib/systemd/system/ioc.service"),
        0o644,
    )?;
    copy(
        &files.join("ioc.toml"),
        &stage.join("etc/ioc/ioc.toml"),
        0o640,
    )?;
    let doc = stage.join("usr/share/doc").join(PACKAGE);
    copy(
        &files.join("README.Debian"),
        &doc.join("README.Debian"),
        0o644,
    )?;
    write(
        &doc.join("copyright"),
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: IOC Console\n\nFiles: *\nLicense: Apache-2.0\n \
         On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.\n",
    )?;
    for script in ["postinst", "prerm", "postrm"] {
        copy(
            &files.join(script),
            &stage.join("DEBIAN").join(script),
            0o755,
        )?;
    }
    write(&stage.join("DEBIAN/conffiles"), "/etc/ioc/ioc.toml\n")?;
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: amd64\n\
         Maintainer: IOC Console <ioc-console@example.invalid>\n\
         Installed-Size: {}\n\
         Depends: libc6 (>= 2.36), libgcc-s1, adduser\n\
         Section: net\n\
         Priority: optional\n\
         Description: IOC Console engine and server for smart-city operations centers\n \
         The engine of a provincial IOC or a commune's operations center: ingestion\n \
         (MQTT, NGSI-LD, SensorThings, CAP, cameras, files), event rules, alerts,\n \
         incidents worked through SOPs, directives and KPIs, with its HTTP/WebSocket API\n \
         and the web console, run as the systemd service ioc.\n",
        dir_kib(&stage)
    );
    write(&stage.join("DEBIAN/control"), &control)?;
    let deb = dist.join(format!("{PACKAGE}_{version}_amd64.deb"));
    sh(
        "dpkg-deb",
        &[
            "--root-owner-group",
            "--build",
            stage.to_str().unwrap(),
            deb.to_str().unwrap(),
        ],
    )?;
    Ok(deb)
}

/// The Tauri bundler's command line (`cargo tauri`), installed from crates.io when missing.
fn tauri_cli() -> Result {
    let there = Command::new("cargo")
        .args(["tauri", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !there {
        step("installing tauri-cli (the Tauri bundler; once, about 15 minutes)");
        sh(
            "cargo",
            &["install", "tauri-cli", "--version", "^2", "--locked"],
        )?;
    }
    Ok(())
}

/// The desktop app as a `.deb`, made by the Tauri bundler from `tauri.conf.json` (`bundle`:
/// the icon, the menu entry with its Vietnamese name, the wall as a second entry, the
/// GStreamer plugins the cameras' video needs); returns its path in `target/dist/`.
fn desktop_deb(version: &str) -> Result<PathBuf> {
    tauri_cli()?;
    step("release build of ioc-desktop and its .deb (the Tauri bundler)");
    let _config = BundlerConfig::write()?;
    // The UI is embedded from ui/dist (built above); nothing to run before the build.
    crate::sh_in(
        &root().join("src-tauri"),
        "cargo",
        &["tauri", "build", "--ci", "--bundles", "deb"],
        &[],
    )?;
    let made = root().join(format!(
        "target/release/bundle/deb/{DESKTOP_PACKAGE}_{version}_amd64.deb"
    ));
    if !made.exists() {
        return Err(format!("the bundler made no {}", made.display()));
    }
    let deb = root().join("target/dist").join(made.file_name().unwrap());
    std::fs::create_dir_all(deb.parent().unwrap()).map_err(|e| e.to_string())?;
    std::fs::copy(&made, &deb).map_err(|e| format!("{}: {e}", made.display()))?;
    Ok(deb)
}

/// The bundler's copy of `tauri.conf.json`, in the app crate's folder while it lives.
///
/// The configuration lives at the workspace's root (the repository's shape) with its paths
/// relative to the root, and `tauri-build` reads it there. The bundler (`cargo tauri`) only
/// looks for it beside the app's `Cargo.toml` and reads paths relative to that folder: it
/// gets a copy there with every path made absolute, removed when the bundle is made.
struct BundlerConfig(PathBuf);

impl BundlerConfig {
    fn write() -> Result<BundlerConfig> {
        use serde_json::Value;
        let root = root();
        let text = std::fs::read_to_string(root.join("tauri.conf.json"))
            .map_err(|e| format!("tauri.conf.json: {e}"))?;
        let mut c: Value =
            serde_json::from_str(&text).map_err(|e| format!("tauri.conf.json: {e}"))?;
        let abs = |v: &mut Value| {
            if let Some(p) = v.as_str().filter(|p| !p.starts_with('/')) {
                *v = Value::from(root.join(p).to_string_lossy().into_owned());
            }
        };
        if let Some(v) = c.pointer_mut("/build/frontendDist") {
            abs(v);
        }
        if let Some(Value::Array(icons)) = c.pointer_mut("/bundle/icon") {
            icons.iter_mut().for_each(abs);
        }
        if let Some(v) = c.pointer_mut("/bundle/linux/deb/desktopTemplate") {
            abs(v);
        }
        if let Some(Value::Object(files)) = c.pointer_mut("/bundle/linux/deb/files") {
            files.values_mut().for_each(abs);
        }
        let at = root.join("src-tauri/tauri.conf.json");
        let json = serde_json::to_string_pretty(&c).map_err(|e| e.to_string())?;
        std::fs::write(&at, json).map_err(|e| format!("{}: {e}", at.display()))?;
        Ok(BundlerConfig(at))
    }
}

impl Drop for BundlerConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The desktop package's name: the bundler's, from `productName` (which also names the menu
/// entry's file, hence a Debian-style name: the people see the entry's `Name`, in Vietnamese
/// first).
const DESKTOP_PACKAGE: &str = "ioc-console";

pub fn dist(args: &[String]) -> Result {
    crate::setup(false)?;
    crate::build_ui(true)?;
    step("release build of ioc (the UI embedded)");
    sh("cargo", &["build", "--release", "-p", "ioc"])?;
    let version = version()?;
    step("packages");
    let deb = server_deb(&version)?;
    println!("{}", deb.display());
    let desktop = desktop_deb(&version)?;
    println!("{}", desktop.display());
    if let Some(i) = args.iter().position(|a| a == "--check") {
        let chroot = args
            .get(i + 1)
            .map(PathBuf::from)
            .ok_or("--check needs the folder of a Debian 12 chroot (made if absent)")?;
        check_server_deb(&deb, &chroot)?;
        check_desktop_deb(&desktop, &chroot)?;
    }
    Ok(())
}

/// Installs the desktop package in the chroot, checks its menu entries and icon, starts the
/// console and the wall under a virtual display until they close by themselves, then purges it.
fn check_desktop_deb(deb: &Path, chroot: &Path) -> Result {
    step(&format!(
        "installing {} in the same Debian 12",
        deb.display()
    ));
    let _mounts = Mounts::new(chroot)?;
    let _ = in_root(chroot, &format!("dpkg --purge {DESKTOP_PACKAGE}"));
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(deb, chroot.join("tmp").join(&name)).map_err(|e| e.to_string())?;
    // The package's Depends come from Debian's archive (WebKitGTK, GTK, GStreamer); the
    // display and the desktop-file checker are the test's own.
    in_root(
        chroot,
        &format!(
            "apt-get -q update >/dev/null && apt-get -y -q install /tmp/{name} \
             xvfb xauth x11-apps desktop-file-utils >/dev/null"
        ),
    )?;
    let facts = in_root(
        chroot,
        "ls /usr/share/applications; \
         for f in /usr/share/applications/ioc-*.desktop; do desktop-file-validate \"$f\" && echo \"valid $f\"; done; \
         grep -h '^Name\\|^Exec' /usr/share/applications/ioc-*.desktop; \
         ls /usr/share/icons/hicolor/128x128/apps/",
    )?;
    println!("{facts}");
    for want in [
        "Name[vi]=Trung tâm Điều hành IOC",
        "Name[vi]=Màn hình tường IOC",
        "Exec=ioc-desktop --wall",
        "valid /usr/share/applications/ioc-console.desktop",
        "valid /usr/share/applications/ioc-desktop-wall.desktop",
        "ioc-desktop.png",
    ] {
        if !facts.contains(want) {
            return Err(format!("after install, expected {want:?} in:\n{facts}"));
        }
    }
    if facts.matches("valid /usr/share/applications/").count() < 2 {
        return Err(format!(
            "a menu entry is not a valid desktop file:\n{facts}"
        ));
    }
    for (what, args, shot) in [
        ("the console", "", "console"),
        ("the wall", " --wall", "wall"),
    ] {
        step(&format!(
            "starting {what} under Xvfb (it closes itself after 25 s)"
        ));
        // A picture of the screen after 15 s, for a person to look at.
        let out = in_root(
            chroot,
            &format!(
                "rm -rf /tmp/ioc-desktop-check /tmp/{shot}.xwd && HOME=/root xvfb-run -a \
                 -s '-screen 0 1366x768x24' sh -c 'ioc-desktop{args} --data /tmp/ioc-desktop-check \
                 --exit-after 25 2>&1 & app=$!; sleep 15; xwd -root -silent > /tmp/{shot}.xwd; \
                 wait $app'; echo \"exit=$?\"; ls /tmp/ioc-desktop-check"
            ),
        )?;
        let tail: Vec<&str> = out.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        println!("{}", tail.join("\n"));
        if !out.contains("exit=0") || !out.contains("ioc.db") {
            return Err(format!("{what} did not run and close cleanly:\n{out}"));
        }
        let png = root().join(format!("target/dist/check-{shot}.png"));
        let xwd = chroot.join(format!("tmp/{shot}.xwd"));
        if sh(
            "convert",
            &[&format!("xwd:{}", xwd.display()), png.to_str().unwrap()],
        )
        .is_ok()
        {
            println!("screenshot: {}", png.display());
        }
    }
    in_root(chroot, &format!("apt-get -y -q purge {DESKTOP_PACKAGE}"))?;
    let left = in_root(
        chroot,
        "test -e /usr/bin/ioc-desktop && echo bin-left; \
         ls /usr/share/applications | grep ioc-desktop && echo menu-left; true",
    )?;
    if left.contains("left") {
        return Err(format!("after purge: {left}"));
    }
    println!("{name}: installed, both menu entries valid, console and wall ran, purged");
    Ok(())
}

/// Runs `script` in the chroot (as root), failing with its output.
fn in_root(chroot: &Path, script: &str) -> Result<String> {
    let out = Command::new("chroot")
        .arg(chroot)
        .args(["/bin/sh", "-ec", script])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("chroot: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("in the chroot, `{script}` failed:\n{text}"))
    }
}

/// Mounts /proc and /dev for the chroot while it lives; unmounts however the check ends.
struct Mounts(PathBuf);

impl Mounts {
    fn new(chroot: &Path) -> Result<Mounts> {
        for m in ["proc", "dev"] {
            let at = chroot.join(m);
            let mounted = Command::new("mountpoint")
                .arg("-q")
                .arg(&at)
                .status()
                .is_ok_and(|s| s.success());
            if !mounted {
                sh("mount", &["--bind", &format!("/{m}"), at.to_str().unwrap()])?;
            }
        }
        Ok(Mounts(chroot.to_owned()))
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in ["dev", "proc"] {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.0.join(m))
                .status();
        }
    }
}

fn ready(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "2", url])
        .output()
        .ok()?;
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    body.contains("\"ready\":true").then_some(body)
}

fn check_server_deb(deb: &Path, chroot: &Path) -> Result {
    step(&format!(
        "installing {} in a clean Debian 12 at {}",
        deb.display(),
        chroot.display()
    ));
    if !chroot.join("bin/sh").exists() {
        crate::apt(&["debootstrap"])?;
        sh(
            "debootstrap",
            &[
                "--variant=minbase",
                "--include=ca-certificates,systemd,adduser",
                "bookworm",
                chroot.to_str().unwrap(),
                "http://deb.debian.org/debian",
            ],
        )?;
    }
    let _mounts = Mounts::new(chroot)?;
    let _ = std::fs::copy("/etc/resolv.conf", chroot.join("etc/resolv.conf"));
    // Start from no package at all: a previous check's leftovers would hide a fault.
    let _ = in_root(
        chroot,
        &format!("dpkg --purge {PACKAGE}; rm -rf /var/lib/ioc"),
    );
    let inside = chroot.join("tmp").join(deb.file_name().unwrap());
    std::fs::copy(deb, &inside).map_err(|e| e.to_string())?;
    let name = deb.file_name().unwrap().to_string_lossy();
    // apt resolves the Depends from Debian's archive, as on a real server.
    in_root(
        chroot,
        &format!("apt-get -q update >/dev/null && apt-get -y -q install /tmp/{name}"),
    )?;
    let facts = in_root(
        chroot,
        "getent passwd ioc; stat -c '%U %a' /var/lib/ioc; stat -c '%U:%G %a' /etc/ioc/ioc.toml; \
         systemd-analyze verify /lib/systemd/system/ioc.service && echo unit-ok",
    )?;
    println!("{facts}");
    for want in ["ioc:", "ioc 700", "root:ioc 640", "unit-ok"] {
        if !facts.contains(want) {
            return Err(format!("after install, expected {want:?} in:\n{facts}"));
        }
    }

    step("starting the service's command as the unit does (user ioc)");
    let exec = in_root(
        chroot,
        "sed -n 's/^ExecStart=//p' /lib/systemd/system/ioc.service",
    )?;
    // setpriv execs the command (runuser would stay as its parent and turn a SIGTERM into
    // a SIGKILL after a moment): the child's pid is the server's, as under systemd.
    let mut serve = Command::new("chroot")
        .arg(chroot)
        .args([
            "setpriv",
            "--reuid=ioc",
            "--regid=ioc",
            "--init-groups",
            "--",
        ])
        .args(exec.split_whitespace())
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .spawn()
        .map_err(|e| format!("chroot: {e}"))?;
    let url = "http://127.0.0.1:8080/api/ready";
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Some(b) = ready(url) {
            break b;
        }
        if let Ok(Some(s)) = serve.try_wait() {
            return Err(format!(
                "the service's command exited before it was ready ({s})"
            ));
        }
        if Instant::now() > deadline {
            let _ = serve.kill();
            return Err(format!("{url} not ready within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    println!("{url}: {body}");
    // A graceful stop, as systemd's KillSignal=SIGTERM.
    sh("kill", &["-TERM", &serve.id().to_string()])?;
    let stopping = Instant::now();
    let status = serve.wait().map_err(|e| e.to_string())?;
    println!("stopped in {:.1?} ({status})", stopping.elapsed());
    if !status.success() {
        return Err(format!(
            "the service did not stop cleanly on SIGTERM ({status})"
        ));
    }
    let kept = in_root(chroot, "ls /var/lib/ioc")?;
    if !kept.contains("ioc.db") {
        return Err(format!("no database in /var/lib/ioc after a run: {kept}"));
    }

    step("remove and purge: the data stays, the configuration and the user go");
    in_root(chroot, &format!("apt-get -y -q purge {PACKAGE}"))?;
    let after = in_root(
        chroot,
        "test -e /usr/bin/ioc && echo bin-left; test -e /etc/ioc && echo etc-left; \
         getent passwd ioc && echo user-left; test -e /var/lib/ioc/ioc.db && echo data-kept; true",
    )?;
    if after.contains("left") || !after.contains("data-kept") {
        return Err(format!("after purge: {after}"));
    }
    println!("{name}: installed, ran as ioc, stopped cleanly, purged (data kept)");
    Ok(())
}
