//! A real NATS JetStream cluster of our own: Debian's `nats-server`, one process per node on
//! free loopback ports, each with its own store in a temporary folder, stopped when dropped.
//! For the tests (a node killed mid-burst) and `ioc bench cluster`. `cargo xtask setup
//! --test` installs the broker.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Node {
    pub name: String,
    pub port: u16,
    /// The node's MQTT listener.
    pub mqtt_port: u16,
    child: Option<Child>,
    log: PathBuf,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Where Debian installs the broker, if it is installed.
pub fn binary() -> Option<PathBuf> {
    ["/usr/bin/nats-server", "/usr/sbin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Cluster {
    /// `n` nodes (1 for a lone server, 3 for a cluster that survives losing one), each with
    /// JetStream and an MQTT listener, all routed to each other. Returns once JetStream
    /// answers on every node (the cluster has elected its meta leader).
    pub fn start(n: usize) -> Cluster {
        let bin = binary().expect("nats-server is installed (checked by the caller)");
        let dir = tempfile::tempdir().unwrap();
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for (i, cport) in cluster_ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let port = free_port();
            let mqtt_port = free_port();
            let store = dir.path().join(&name);
            std::fs::create_dir_all(&store).unwrap();
            let cluster = if n > 1 {
                format!(
                    "cluster {{\n  name: ioc\n  listen: \"127.0.0.1:{cport}\"\n  routes: [{routes}]\n}}\n"
                )
            } else {
                String::new()
            };
            let conf = format!(
                "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\n\
                 jetstream {{\n  store_dir: \"{}\"\n}}\n\
                 mqtt {{\n  listen: \"127.0.0.1:{mqtt_port}\"\n}}\n{cluster}",
                store.display()
            );
            let conf_file = dir.path().join(format!("{name}.conf"));
            std::fs::write(&conf_file, conf).unwrap();
            let log = dir.path().join(format!("{name}.log"));
            let mut node = Node {
                name,
                port,
                mqtt_port,
                child: None,
                log,
            };
            node.spawn(&bin, &conf_file);
            nodes.push(node);
        }
        let c = Cluster { nodes, dir };
        for node in &c.nodes {
            node.wait_listening();
        }
        c
    }

    /// Every node's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }

    /// The node named `name`.
    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// What every node logged, for a failing test's message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(&n.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} ---\n{}", n.name, tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Node {
    fn spawn(&mut self, bin: &Path, conf: &Path) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server {} did not listen: {}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the node at once (SIGKILL): no goodbye to its clients or its peers.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
