//! Helpers for the end-to-end tests: start the real `ioc` server and the real desktop app,
//! the WebDriver servers (chromedriver, tauri-driver) in their own process groups so nothing
//! outlives a test, and poll until something shows up or a deadline passes.
//!
//! The binaries must be built first (`cargo xtask test` does it): `target/debug/ioc`,
//! `target/debug/ioc-desktop` and the UI in `ui/dist`.

pub mod camera;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// What a test does when something it needs is missing: fails under CI, says so otherwise.
#[path = "../../crates/engine/tests/common/missing.rs"]
pub mod missing;

/// `../shared/data` (real reference data), when it is next to the project.
pub fn shared_data() -> Option<PathBuf> {
    missing::shared_data("").filter(|p| p.is_dir())
}

/// A built binary of the workspace.
pub fn bin(name: &str) -> PathBuf {
    let p = root().join("target/debug").join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo xtask test` (it builds the binaries and the UI first)",
        p.display()
    );
    p
}

/// Where screenshots and logs go (kept as CI artifacts).
pub fn artifacts() -> PathBuf {
    let p = root().join("target/e2e");
    std::fs::create_dir_all(&p).expect("create target/e2e");
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process in its own process group; dropping it stops the whole group.
pub struct Proc {
    pub child: Child,
    name: String,
}

impl Proc {
    pub fn spawn(mut cmd: Command, name: &str) -> Proc {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal_group(&self, sig: i32) {
        // SAFETY: kill(2) with a negative pid signals the process group we created.
        unsafe {
            libc::kill(-(self.child.id() as i32), sig);
        }
    }

    /// SIGTERM, then SIGKILL after `grace`. Returns whether it exited by itself in time.
    pub fn stop(&mut self, grace: Duration) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            return true;
        }
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.signal_group(libc::SIGKILL); // leftovers of the group
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop in {grace:?}; killing it", self.name);
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// A config for tests: a small, fast Nghệ An demo (≈90 entities reporting twice a second,
/// an episode every few seconds) and the demo rules with durations of seconds.
pub fn fast_config(dir: &Path) -> PathBuf {
    let path = dir.join("fast.toml");
    std::fs::write(
        &path,
        r#"
[hub]
frame_interval = "100ms"
heartbeat = "1s"

[[source]]
name = "demo"
kind = "simulator"
interval = "500ms"
scale = 0.3
episode_every = "3s"
episode_length = "25s"
backfill = "10m"

[[rule]]
name = "pm25-very-unhealthy"
when = "metric == 'pm25' && value > 150.0"
for = "2s"
severity = "major"
category = "air_quality"
message = "PM2.5 {value} µg/m³ > 150"

[[rule]]
name = "water-alarm-2"
when = "metric == 'water_level' && value >= entity.attributes.alarm_2"
severity = "critical"
category = "flood"
message = "Mực nước {value} m vượt báo động II"

[[rule]]
name = "camera-offline"
when = "metric == 'online' && value < 0.5"
for = "2s"
severity = "major"
category = "camera"
message = "Camera mất kết nối"

[[rule]]
name = "rain-heavy"
when = "metric == 'rain_1h' && value >= 50.0"
severity = "warning"
category = "rain"
message = "Mưa rất to: {value} mm/giờ"
"#,
    )
    .expect("write config");
    path
}

/// `ioc serve` on a loopback port.
pub struct Server {
    proc: Proc,
    pub addr: SocketAddr,
    pub data: PathBuf,
}

impl Server {
    /// Starts `ioc serve --data DATA --config CONFIG` on `port` (0: any free port) and waits
    /// until it listens. Its log goes to `target/e2e/NAME.log`.
    pub fn start(name: &str, data: &Path, config: &Path, port: u16) -> Server {
        Server::start_with(name, data, config, port, &[])
    }

    /// [`Server::start`] with more arguments for `ioc serve` (`--no-demo`).
    pub fn start_with(name: &str, data: &Path, config: &Path, port: u16, args: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(artifacts().join(format!("{name}.log")))
            .expect("log file");
        let mut cmd = Command::new(bin("ioc"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data")
            .arg(data)
            .arg("--config")
            .arg(config)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log);
        let mut proc = Proc::spawn(cmd, "ioc serve");
        let stdout = proc.child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("IOC Console listening on http://") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("ioc serve did not start; see target/e2e/{name}.log"))
            .parse()
            .expect("an address");
        Server {
            proc,
            addr,
            data: data.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The server's process id (for its memory).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Stops it the way an operator's Ctrl-C would; panics if it does not exit cleanly.
    pub fn stop(mut self) {
        assert!(
            self.proc.stop(Duration::from_secs(20)),
            "ioc serve did not shut down within 20 s"
        );
    }
}

/// Sends `body` to `POST /api/import` as a file called `name` in `format` (with a JSON
/// source's `mapping` when given), as the import screen does; panics with the server's answer
/// unless it is taken.
pub async fn import(
    server: &Server,
    format: &str,
    name: &str,
    mapping: Option<&str>,
    body: String,
) {
    let mut query = vec![("format", format), ("name", name)];
    query.extend(mapping.map(|m| ("mapping", m)));
    let r = reqwest::Client::new()
        .post(server.url("/api/import"))
        .query(&query)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /api/import: {e}"));
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// Imports the real Nghệ An boundaries into `data`, when the shared data is present.
pub fn import_basemap(data: &Path) -> bool {
    let Some(shared) = shared_data() else {
        missing::missing("../shared/data not found: running without a basemap");
        return false;
    };
    let status = Command::new(bin("ioc"))
        .args(["import", "basemap"])
        .arg(shared.join("geo/nghe-an-boundaries.pmtiles"))
        .arg("--data")
        .arg(data)
        .status()
        .expect("run ioc import basemap");
    assert!(status.success(), "ioc import basemap failed");
    true
}

pub async fn get_json(url: &str) -> serde_json::Value {
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.expect("JSON")
}

/// Polls `f` every 200 ms until it gives a value; panics after `timeout` saying what it
/// waited for.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// [`wait_for`] on a page: when the time is up, a screenshot (`<shot>-timeout.png`) and the
/// page's text go to the log before the panic, so a failure on CI shows what was on screen.
pub async fn wait_page<T, F, Fut>(
    c: &fantoccini::Client,
    shot: &str,
    what: &str,
    timeout: Duration,
    mut f: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            if let Ok(png) = c.screenshot().await {
                let path = artifacts().join(format!("{shot}-timeout.png"));
                if std::fs::write(&path, png).is_ok() {
                    eprintln!("screenshot: {}", path.display());
                }
            }
            if let Ok(text) = c
                .execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                )
                .await
            {
                eprintln!("the page said:\n{}", text.as_str().unwrap_or_default());
            }
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A WebDriver server (chromedriver or tauri-driver) on a free port.
pub struct WebDriver {
    _proc: Proc,
    pub url: String,
}

impl WebDriver {
    async fn start(mut cmd: Command, name: &str, port: u16) -> WebDriver {
        let log = std::fs::File::create(artifacts().join(format!("{name}.log"))).expect("log");
        cmd.stdout(log.try_clone().expect("log")).stderr(log);
        let proc = Proc::spawn(cmd, name);
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        wait_for(
            &format!("{name} to listen"),
            Duration::from_secs(30),
            || {
                let status = status.clone();
                async move { reqwest::get(&status).await.ok().map(|_| ()) }
            },
        )
        .await;
        WebDriver { _proc: proc, url }
    }

    pub async fn chromedriver() -> WebDriver {
        let port = free_port();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}"));
        WebDriver::start(cmd, "chromedriver", port).await
    }

    pub async fn tauri_driver() -> WebDriver {
        WebDriver::tauri_driver_with(&[]).await
    }

    /// tauri-driver with these variables in its environment (and so in the app's).
    pub async fn tauri_driver_with(envs: &[(&str, &str)]) -> WebDriver {
        let (port, native) = (free_port(), free_port());
        let mut cmd = Command::new("tauri-driver");
        cmd.envs(envs.iter().copied());
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ]);
        WebDriver::start(cmd, "tauri-driver", port).await
    }

    /// A session in headless Chromium (software WebGL, 1600×900).
    pub async fn chrome_session(&self) -> fantoccini::Client {
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--use-angle=swiftshader",
                    "--enable-unsafe-swiftshader", "--window-size=1600,900",
                    // Talk to the browser over a pipe, not a DevTools port on "localhost"
                    // (which a bare chroot may not even resolve).
                    "--remote-debugging-pipe",
                ]
            }
        });
        self.session(caps).await
    }

    pub async fn session(&self, caps: serde_json::Value) -> fantoccini::Client {
        // Two TLS stacks are linked in (reqwest's, fantoccini's); pick one. Only loopback
        // HTTP is used, but the client insists on having a provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let caps = caps
            .as_object()
            .expect("an object")
            .clone()
            .into_iter()
            .collect();
        fantoccini::ClientBuilder::rustls()
            .expect("TLS")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver session at {}: {e}", self.url))
    }
}

/// Saves a screenshot to `target/e2e/NAME.png`.
pub async fn screenshot(client: &fantoccini::Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = artifacts().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// Runs a script in the page and returns its result.
pub async fn js(client: &fantoccini::Client, script: &str) -> serde_json::Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// The browser's session cookie as a `Cookie` header value (`name=value`): WebDriver can read
/// it although no script of the page can (it is HttpOnly), so a test can fetch what a signed-in
/// user's browser would, e.g. a download link.
pub async fn session_cookie(client: &fantoccini::Client) -> String {
    let session = client
        .get_all_cookies()
        .await
        .expect("cookies")
        .into_iter()
        .find(|k| k.name().starts_with("ioc_session_"))
        .expect("the session cookie");
    format!("{}={}", session.name(), session.value())
}

/// A private D-Bus session bus with a desktop notification server on it
/// (`support/notification_server.py`) that records every notification it is sent, so a test
/// can check that the desktop app really notified. Both stop with it.
pub struct NotificationBus {
    _bus: Proc,
    _server: Proc,
    _dir: tempfile::TempDir,
    /// For `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
    log: PathBuf,
}

impl NotificationBus {
    pub fn start() -> NotificationBus {
        let dir = tempfile::tempdir().expect("a folder for the bus");
        let socket = dir.path().join("bus");
        let mut cmd = Command::new("dbus-daemon");
        cmd.args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut bus = Proc::spawn(cmd, "dbus-daemon");
        let stdout = bus.child.stdout.take().expect("piped stdout");
        let mut address = String::new();
        BufReader::new(stdout)
            .read_line(&mut address)
            .expect("the bus's address");
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        let log = dir.path().join("notifications.jsonl");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(root().join("tests/support/notification_server.py"))
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(std::fs::File::create(&log).expect("notification log"))
            .stderr(
                std::fs::File::create(artifacts().join("notification-server.log")).expect("log"),
            );
        let server = Proc::spawn(cmd, "notification server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("READY")
        {
            assert!(
                Instant::now() < deadline,
                "the notification server did not start; see target/e2e/notification-server.log"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        NotificationBus {
            _bus: bus,
            _server: server,
            _dir: dir,
            address,
            log,
        }
    }

    /// Every notification received so far.
    pub fn notifications(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Adds an account with `ioc user add` on a data folder (the first one turns sign-in on).
pub fn add_user(data: &Path, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut c = Command::new(bin("ioc"))
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--data",
        ])
        .arg(data)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{password}").unwrap();
    assert!(c.wait().unwrap().success(), "ioc user add");
}

/// A TCP proxy the test can cut (every connection dropped, new ones refused) and restore.
pub struct Proxy {
    pub addr: SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn to(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> =
            std::sync::Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, open, conns }
    }

    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `ioc workstation --upstream URL` on a loopback port: a control-room workstation of an IOC.
pub struct Workstation {
    proc: Proc,
    pub addr: SocketAddr,
}

impl Workstation {
    /// Starts it with its queue in `data` and waits until it listens; its log goes to
    /// `target/e2e/NAME.log`.
    pub fn start(name: &str, data: &Path, upstream: &str) -> Workstation {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(artifacts().join(format!("{name}.log")))
            .expect("log file");
        let mut cmd = Command::new(bin("ioc"));
        cmd.args([
            "workstation",
            "--upstream",
            upstream,
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(log);
        let mut proc = Proc::spawn(cmd, "ioc workstation");
        let stdout = proc.child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) =
                    line.strip_prefix("IOC Console workstation listening on http://")
                {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("ioc workstation did not start; see target/e2e/{name}.log"))
            .parse()
            .expect("an address");
        Workstation { proc, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn stop(mut self) {
        assert!(
            self.proc.stop(Duration::from_secs(20)),
            "ioc workstation did not shut down within 20 s"
        );
    }
}
