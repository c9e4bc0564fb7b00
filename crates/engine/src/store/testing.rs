//! A PostgreSQL of the tests' own: Debian's `initdb` and `postgres` in a temporary folder, on
//! a free loopback port, never a server the machine happens to run.
//!
//! One cluster per test process (started by the first test that asks, ~2 s), a fresh
//! database per test. The server runs as a child of a thread that lives as long as the
//! process, under `setpriv --pdeathsig`: when the test process ends, however it ends, the
//! server gets SIGINT (a fast shutdown). Its folder is named after the process, and the
//! next cluster removes the folders of processes that are gone.
//!
//! As root (CI, the fresh-Debian chroot) PostgreSQL refuses to run; the cluster then runs as
//! the `postgres` user Debian's package creates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running test cluster.
pub struct TempCluster {
    pub port: u16,
    pub dir: PathBuf,
    /// The superuser the cluster was made with.
    pub user: String,
}

const FOLDER_PREFIX: &str = "ioc-pg-test-";

impl TempCluster {
    /// `postgres://…` for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{}@127.0.0.1:{}/{db}", self.user, self.port)
    }
}

/// The folder of PostgreSQL 15's programs.
pub fn bin_dir() -> Option<PathBuf> {
    let dir = Path::new("/usr/lib/postgresql/15/bin");
    dir.join("initdb").exists().then(|| dir.to_owned())
}

/// The cluster of this process, started on first use.
pub fn cluster() -> Result<&'static TempCluster, String> {
    static CLUSTER: OnceLock<Result<TempCluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| start(false))
        .as_ref()
        .map_err(Clone::clone)
}

/// A fresh, empty database on the test cluster, named after `name` and a counter: its URL.
/// Where PostgreSQL 15 is not installed: `None` with a message, or a panic under CI (a test
/// whose tool is missing must fail there, not pass in silence).
pub fn database(name: &str) -> Option<String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let cluster = match cluster() {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED (PostgreSQL part of {name}): {e}");
            return None;
        }
        Err(e) => panic!("{name}: no PostgreSQL to test on: {e}"),
    };
    let db: String = format!("{name}_{}", N.fetch_add(1, Ordering::Relaxed))
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let admin = super::db::Db::postgres(&cluster.url("postgres"))
        .unwrap_or_else(|e| panic!("the test cluster on port {}: {e}", cluster.port));
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        admin
            .execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    Some(cluster.url(&db))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `setpriv` arguments that run a program as `postgres` when we are root.
fn as_owner(root: bool) -> Vec<&'static str> {
    if root {
        vec![
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--reset-env",
        ]
    } else {
        vec![]
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Removes the folders of test clusters whose process is gone.
fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(FOLDER_PREFIX)
            .map(|rest| rest.split('.').next().unwrap_or(rest))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A cluster of its own (the benchmarks': `fsync` on, as a real server runs), stopped with
/// the process.
pub fn start_cluster(fsync: bool) -> Result<TempCluster, String> {
    start(fsync)
}

fn start(fsync: bool) -> Result<TempCluster, String> {
    let bin = bin_dir().ok_or(
        "PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin/initdb); \
         `cargo xtask setup --test` installs it",
    )?;
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = tmp.join(format!(
        "{FOLDER_PREFIX}{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let root = is_root();
    if root {
        let ok = Command::new("chown")
            .args(["postgres:postgres", &dir.to_string_lossy()])
            .status()
            .map_err(|e| e.to_string())?
            .success();
        if !ok {
            return Err("cannot give the test cluster's folder to the postgres user".into());
        }
    }
    let data = dir.join("data");
    let user = "ioc";
    let out = Command::new("setpriv")
        .args(as_owner(root))
        .arg(bin.join("initdb"))
        .args([
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "-U",
            user,
            "-D",
        ])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port()?;
    let log = dir.join("postgres.log");
    let (tx, rx) = std::sync::mpsc::channel();
    let args: Vec<String> = as_owner(root)
        .into_iter()
        .map(String::from)
        .chain([
            "--pdeathsig=INT".into(),
            bin.join("postgres").to_string_lossy().into(),
            "-D".into(),
            data.to_string_lossy().into(),
            "-p".into(),
            port.to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-k".into(),
            dir.to_string_lossy().into(),
            // Tests need no durability across a power cut; they need speed.
            "-c".into(),
            format!("fsync={}", if fsync { "on" } else { "off" }),
            "-c".into(),
            "max_connections=200".into(),
        ])
        .collect();
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("ioc-test-postgres".into())
        .spawn(move || {
            let child = Command::new("setpriv")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn();
            let _ = tx.send(child.map(|c| c.id()).map_err(|e| e.to_string()));
            // The server's parent: it must outlive every test of the process.
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("starting postgres: {e}"))?;
    let cluster = TempCluster {
        port,
        dir,
        user: user.into(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match super::db::Db::postgres(&cluster.url("postgres")) {
            Ok(_) => return Ok(cluster),
            Err(e) if Instant::now() > deadline => {
                return Err(format!(
                    "postgres did not accept connections on port {port}: {e}; its log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
