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
    /// CA file clients trust, when the listener speaks TLS.
    pub ca_file: Option<PathBuf>,
    /// Where the broker logs every packet it sends and receives, if it does.
    log: Option<PathBuf>,
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
            ca_file: None,
            log: None,
        };
        m.spawn();
        m
    }

    /// A broker as [`Mosquitto::start`] that also logs every packet it sends and receives
    /// (read with [`Mosquitto::log`]), so a test can count what each client was delivered and
    /// what it acknowledged.
    pub fn start_logged() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mosquitto.log");
        let mut m = Mosquitto {
            child: None,
            port: free_port(),
            dir,
            ca_file: None,
            log: Some(log),
        };
        m.spawn();
        m
    }

    /// What the broker logged so far (see [`Mosquitto::start_logged`]).
    pub fn log(&self) -> String {
        let path = self
            .log
            .as_ref()
            .expect("a broker started with start_logged");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// A broker whose listener speaks TLS with a certificate for 127.0.0.1 signed by a CA of
    /// its own (`ca_file`).
    pub fn start_tls() -> Mosquitto {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "IOC test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let cert = params.signed_by(&key, &issuer).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        let mut m = Mosquitto {
            child: None,
            port: free_port(),
            dir,
            ca_file: Some(ca_file),
            log: None,
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
                 max_queued_messages 1000000\nautosave_interval 1\n{}{}",
                self.port,
                self.dir.path().display(),
                match &self.log {
                    // `user root`: a broker started as root keeps the rights to write its log
                    // in the test's folder (it would otherwise become the user mosquitto).
                    Some(log) =>
                        format!("log_dest file {}\nlog_type all\nuser root\n", log.display()),
                    None => String::new(),
                },
                match &self.ca_file {
                    Some(_) => format!(
                        "cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
                        self.dir.path().display()
                    ),
                    None => String::new(),
                }
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
        let scheme = if self.ca_file.is_some() {
            "mqtts"
        } else {
            "mqtt"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
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
            .args(
                self.ca_file
                    .iter()
                    .flat_map(|f| [std::ffi::OsStr::new("--cafile"), f.as_os_str()]),
            )
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
