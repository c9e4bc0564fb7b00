//! A real MQTT broker for tests: Debian's `mosquitto` on a free loopback port, stopped when
//! dropped. `cargo xtask setup --test` installs it.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn binary() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("mosquitto is not installed: run `cargo xtask setup --test` (Debian package mosquitto)");
}

impl Mosquitto {
    /// A broker that keeps persistent sessions in memory and lets many QoS 1 messages be in
    /// flight per client.
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Mosquitto {
            child: None,
            port: free_port(),
            dir,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nmax_inflight_messages 1000\n\
                 max_queued_messages 1000000\nautosave_interval 1\n",
                self.port,
                self.dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Stops the broker (like a crash or an operator restart), keeping its port and state.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Publishes with `mosquitto_pub` (QoS 1).
    pub fn publish(&self, topic: &str, payload: &[u8]) {
        use std::io::Write;
        let mut c = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-s",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub (Debian package mosquitto-clients)");
        c.stdin.take().unwrap().write_all(payload).unwrap();
        assert!(c.wait().unwrap().success(), "mosquitto_pub failed");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
