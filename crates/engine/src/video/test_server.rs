//! A real RTSP server for the cameras' tests and `ioc bench video`: GStreamer's, with live
//! test patterns (see `test_server.py` beside this file for its mounts). Started on loopback
//! on free ports and stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SCRIPT: &str = include_str!("test_server.py");

/// The Debian packages it needs, for messages.
pub const PACKAGES: &str = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good \
gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-x";

/// The user and password of the `/auth` mount.
pub const USER: &str = "operator";
pub const PASSWORD: &str = "secret-pw";

#[derive(Debug, Clone)]
pub struct Options {
    /// `/cam0` … : this many H.264 mounts.
    pub mounts: usize,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Fixed ports (to start a server again where a killed one was); 0: any free one.
    pub port: u16,
    pub auth_port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mounts: 1,
            width: 320,
            height: 180,
            fps: 15,
            port: 0,
            auth_port: 0,
        }
    }
}

pub struct TestServer {
    child: Child,
    pub port: u16,
    pub auth_port: u16,
    _dir: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A folder removed on drop (the script is written there).
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Whether the server can run here (python3 with GStreamer's RTSP server bindings).
pub fn available() -> Result<(), String> {
    let ok = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import GstRtspServer",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "GStreamer's RTSP server is not installed (Debian: {PACKAGES}; `cargo xtask setup --tests` installs them)"
        ))
    }
}

impl TestServer {
    pub fn start(opts: &Options) -> Result<TestServer, String> {
        available()?;
        let dir = std::env::temp_dir().join(format!(
            "ioc-rtsp-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let dir = tempfile_dir::Dir(dir);
        let script: PathBuf = dir.0.join("test_server.py");
        std::fs::write(&script, SCRIPT).map_err(|e| e.to_string())?;
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args(["--port", &opts.port.to_string()])
            .args(["--auth-port", &opts.auth_port.to_string()])
            .args(["--mounts", &opts.mounts.to_string()])
            .args(["--width", &opts.width.to_string()])
            .args(["--height", &opts.height.to_string()])
            .args(["--fps", &opts.fps.to_string()])
            .args(["--user", USER, "--password", PASSWORD])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| "the RTSP test server did not start in 20 s".to_string())?;
        let mut parts = line.split_whitespace();
        let (Some("ready"), Some(port), Some(auth_port)) =
            (parts.next(), parts.next(), parts.next())
        else {
            let _ = child.kill();
            return Err(format!("the RTSP test server said {line:?}"));
        };
        Ok(TestServer {
            child,
            port: port.parse().map_err(|_| format!("port {port:?}"))?,
            auth_port: auth_port
                .parse()
                .map_err(|_| format!("port {auth_port:?}"))?,
            _dir: dir,
        })
    }

    /// `rtsp://127.0.0.1:port/<mount>` (on the open server).
    pub fn url(&self, mount: &str) -> String {
        format!(
            "rtsp://127.0.0.1:{}/{}",
            self.port,
            mount.trim_start_matches('/')
        )
    }

    /// The mount behind credentials.
    pub fn auth_url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/auth", self.auth_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it at once (a camera losing power).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}
