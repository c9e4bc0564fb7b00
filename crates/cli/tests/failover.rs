//! Two `ioc serve` nodes on one PostgreSQL store, as real processes: the first holds the
//! pipeline's lease and runs the engine; the second stands by (`/api/ready` 503) and forwards
//! the API and the live feed to it. The active node is killed (SIGKILL) in the middle of a
//! burst its NATS consumer reads: the standby takes over within 10 s, every observation the
//! bus accepted is stored once, the operator actions the killed node acknowledged are there,
//! and a feed client that was on the standby reconnects to it and carries on. A node whose
//! lease ends under it (its database connection cut) stops at once.

#[path = "../../engine/tests/common/missing.rs"]
mod missing;
#[path = "../../engine/tests/common/nats.rs"]
mod nats;
#[path = "common/seq_burst.rs"]
mod seq_burst;
#[path = "common/serve.rs"]
mod serving;

use async_nats::jetstream;
use futures_util::StreamExt;
use serving::wait;
use std::path::Path;
use std::time::{Duration, Instant};

const N: usize = 10_000;

async fn get(url: &str) -> (u16, serde_json::Value) {
    match reqwest::get(url).await {
        Ok(r) => (
            r.status().as_u16(),
            r.json().await.unwrap_or(serde_json::Value::Null),
        ),
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// An operator signed in at one node's address, as a browser is: a session cookie, and
/// that address as the origin of what it sends.
struct Browser {
    base: String,
    cookie: String,
}

const PASSWORD: &str = "mật khẩu đủ dài";

impl Browser {
    async fn sign_in(base: &str) -> Browser {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/login"))
            .header("origin", base)
            .json(&serde_json::json!({"username": "lan", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "signing in at {base}");
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        Browser {
            base: base.to_string(),
            cookie,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let c = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
        let mut r = if method == "POST" {
            c.post(url)
        } else {
            c.get(url)
        }
        .header("cookie", &self.cookie)
        .header("origin", &self.base);
        if let Some(b) = body {
            r = r.json(&b);
        }
        match r.send().await {
            Ok(r) => (
                r.status().as_u16(),
                r.json().await.unwrap_or(serde_json::Value::Null),
            ),
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// Sends a directive to `unit`; it must be accepted.
    async fn directive(&self, unit: &str, title: &str) {
        let body = serde_json::json!({"unit": unit, "title": title, "within": "2h"});
        let (status, reply) = self.call("POST", "/api/directives", Some(body)).await;
        assert!(status < 300, "{title}: {status} {reply}");
    }

    async fn feed(&self, query: &str) -> Feed {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("ws{}/ws{query}", self.base.trim_start_matches("http"));
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        req.headers_mut()
            .insert("origin", self.base.parse().unwrap());
        tokio_tungstenite::connect_async(req).await.unwrap().0
    }
}

/// `ioc user add lan` on the store: from then on every request needs a session.
fn add_account(data: &Path, store: &str) {
    use std::io::Write;
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_ioc"))
        .args([
            "user",
            "add",
            "lan",
            "--role",
            "admin",
            "--password-stdin",
            "--data",
        ])
        .arg(data)
        .args(["--store", store])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success());
}

/// The burst's `seq` values in the store: how many rows, how many distinct.
fn stored(store: &str) -> (i64, i64) {
    let at = ioc_engine::store::Location::postgres(store).unwrap();
    let db = at.connect().unwrap();
    db.query_row(
        "SELECT count(*), count(DISTINCT o.value) FROM observations o
         JOIN series s ON s.id = o.series JOIN entities e ON e.id = s.entity
         WHERE e.ext_id = 'seq-1' AND s.metric = 'seq'",
        ioc_engine::store::db::params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

type Feed =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next feed message (a snapshot, a delta or a heartbeat), or `None` when the feed ended.
async fn next(feed: &mut Feed) -> Option<serde_json::Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), feed.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                return Some(serde_json::from_str(&t).unwrap())
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return None,
            Err(_) => panic!("the feed said nothing for 30 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_active_node_mid_burst_loses_nothing() {
    if nats::binary().is_none() {
        return missing::missing(
            "nats-server is not installed (Debian nats-server; `cargo xtask setup --test`)",
        );
    }
    let Some(store) = ioc_engine::store::testing::database("failover") else {
        return;
    };
    let broker = nats::Cluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ioc.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[source]]
name = "province-bus"
kind = "nats"
servers = ["{}"]
stream = "IOC"
subjects = ["ioc.>"]
consumer = "ioc-failover"
decoder = "ngsi-ld"
ack_wait = "5s"

# The province's units (for directives), and little else.
[[source]]
name = "demo"
kind = "simulator"
interval = "1h"
"#,
            broker.urls()[0]
        ),
    )
    .unwrap();

    add_account(&dir.path().join("a"), &store);
    let (mut active, a) =
        serving::serve_configured(&dir.path().join("a"), &config, &["--store", &store]);
    wait("the first node ready", 60, async || {
        get(&format!("{a}/api/ready")).await.0 == 200
    })
    .await;
    let (standby, b) =
        serving::serve_configured(&dir.path().join("b"), &config, &["--store", &store]);
    let (status, ready) = get(&format!("{b}/api/ready")).await;
    assert_eq!(status, 503, "a second node stands by: {ready}");
    assert_eq!(ready["up"], true);
    assert_eq!(ready["ready"], false);

    // What the standby is asked, the active node answers; signed in through the standby,
    // the session cookie is the standby's address's (the active node sees the Host asked).
    let at_b = Browser::sign_in(&b).await;
    let at_a = Browser::sign_in(&a).await;
    let port_b = b.rsplit(':').next().unwrap();
    assert!(
        at_b.cookie.starts_with(&format!("ioc_session_{port_b}=")),
        "{}",
        at_b.cookie
    );
    let (status, health) = at_b.call("GET", "/api/health", None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    let mut unit = String::new();
    wait("the province's units", 60, async || {
        let (_, units) = at_b.call("GET", "/api/units", None).await;
        unit = units[1]["code"].as_str().unwrap_or_default().to_string();
        !unit.is_empty()
    })
    .await;
    at_b.directive(&unit, "Qua nút dự phòng").await;
    let mut on_standby = at_b.feed("").await;
    let snapshot = next(&mut on_standby).await.expect("a snapshot");
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let old_epoch = snapshot["epoch"].as_str().unwrap().to_string();

    // The burst, through the bus.
    let js = jetstream::new(async_nats::connect(broker.urls()).await.unwrap());
    seq_burst::publish(&js, N).await;
    wait("part of the burst committed", 120, async || {
        stored(&store).0 > (N / 10) as i64
    })
    .await;
    at_a.directive(&unit, "Ngay trước sự cố").await;

    active.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    active.wait().unwrap();
    let (at_kill, _) = stored(&store);
    assert!(
        (at_kill as usize) < N,
        "the kill must land mid-burst: {at_kill} of {N} committed"
    );

    // The forwarded feed ends with the node it came from.
    while let Some(m) = next(&mut on_standby).await {
        assert_ne!(m["type"], "snapshot", "{m}");
    }
    wait("the standby to take over", 10, async || {
        get(&format!("{b}/api/ready")).await.0 == 200
    })
    .await;
    let takeover = killed.elapsed();
    println!(
        "takeover in {} ms; {at_kill} of {N} committed at the kill",
        takeover.as_millis()
    );

    // The client comes back with what it had: another run, so the whole state, at once.
    // Still signed in: the same cookie, no new sign-in.
    let mut again = at_b.feed(&format!("?epoch={old_epoch}&since=1")).await;
    let m = next(&mut again).await.expect("the feed again");
    assert_eq!(m["type"], "snapshot", "{m}");
    assert_ne!(m["epoch"], old_epoch.as_str());
    let titles: Vec<&str> = m["directives"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["title"].as_str())
        .collect();
    for want in ["Qua nút dự phòng", "Ngay trước sự cố"] {
        assert!(
            titles.contains(&want),
            "{want} acknowledged, then lost: {titles:?}"
        );
    }

    wait("every observation in the store", 120, async || {
        stored(&store).0 >= N as i64
    })
    .await;
    assert_eq!(stored(&store), (N as i64, N as i64), "every one, once");
    let (_, latest) = at_b.call("GET", "/api/entities/seq-1", None).await;
    assert_eq!(
        latest["latest"]["seq"]["value"].as_f64(),
        Some((N - 1) as f64)
    );

    // The new active node loses its lease (its connection to the database ends, as in a
    // network cut): it stops at once rather than run a pipeline another node may run too.
    let mut now_active = standby;
    let db = ioc_engine::store::Location::postgres(&store)
        .unwrap()
        .connect()
        .unwrap();
    let ended: i64 = db
        .query_row(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND objid::bigint = ?1
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            ioc_engine::store::db::params![ioc_engine::store::lease::KEY],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ended, 1, "one connection holds the lease");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = now_active.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            now_active.kill().unwrap();
            panic!("still running 10 s after losing its lease");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(75), "{status}");
}
