//! `ioc bench api`: the server under screens and readers while data pours in. A real
//! `ioc serve` process on loopback (so its memory is its own), fed observations over HTTP at
//! a steady rate; hundreds of WebSocket clients and tens of REST readers at once.
//!
//! Measured: the delay from sending an observation to a client seeing it (each value is
//! its own send time), messages lost (a delta that does not continue the client's sequence,
//! which must never happen: a slow client is cut and resumes from its sequence), the REST
//! readers' latency, and the server's resident memory per client — connected, and after
//! they left.

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct ApiBench {
    pub clients: usize,
    pub readers: usize,
    pub rate: usize,
    pub seconds: u64,
    pub entities: usize,
}

/// A child `ioc serve`, stopped when dropped.
pub(crate) struct Server {
    pub child: std::process::Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    proc_kib(pid, "status", "VmRSS:")
}

/// The KiB on the line starting `key` of `/proc/PID/file` (0 once the process is gone).
pub(crate) fn proc_kib(pid: u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
pub(crate) struct Tally {
    delays_ms: Mutex<Vec<f64>>,
    pub lost: AtomicU64,
    messages: AtomicU64,
    pub reconnects: AtomicU64,
    pub connected: AtomicU64,
}

/// One screen: follows the feed, checks every delta continues its sequence, samples delays.
pub(crate) async fn client(
    url: String,
    start: Instant,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    sample: bool,
) {
    let (mut epoch, mut seq): (Option<String>, u64) = (None, 0);
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let u = match &epoch {
            Some(e) => format!("{url}/ws?epoch={e}&since={seq}"),
            None => format!("{url}/ws"),
        };
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(u.replace("http", "ws")).await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if first {
            tally.connected.fetch_add(1, Ordering::Relaxed);
            first = false;
        } else {
            tally.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        loop {
            let m = tokio::select! {
                m = ws.next() => m,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if stop.load(Ordering::Relaxed) { break } else { continue }
                }
            };
            let Some(Ok(m)) = m else { break };
            let Ok(text) = m.into_text() else { continue };
            let text: &str = &text;
            tally.messages.fetch_add(1, Ordering::Relaxed);
            // Only what continuity needs; values only for the sampling clients.
            let Ok(h) = serde_json::from_str::<Head>(text) else {
                continue;
            };
            match h.kind.as_str() {
                "snapshot" => {
                    epoch = h.epoch;
                    seq = h.seq.unwrap_or(seq);
                }
                "delta" => {
                    if h.from != Some(seq + 1) {
                        tally.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    seq = h.seq.unwrap_or(seq);
                    if sample {
                        let Ok(v) = serde_json::from_str::<Value>(text) else {
                            continue;
                        };
                        let now = start.elapsed().as_secs_f64() * 1000.0;
                        let mut d = tally.delays_ms.lock().unwrap();
                        for x in v["values"].as_array().into_iter().flatten() {
                            if x["metric"] == "benchSentMs" {
                                if let Some(sent) = x["value"].as_f64() {
                                    d.push(now - sent);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// The head of a feed message.
#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    epoch: Option<String>,
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    seq: Option<u64>,
}

/// `n` observations of the devices from `from` on, each valued `t_ms` (its send time).
fn batch(entities: usize, t_ms: f64, from: usize, n: usize) -> Vec<Value> {
    let now = chrono::Utc::now().to_rfc3339();
    (from..from + n)
        .map(|i| {
            json!({"id": format!("bench-{}", i % entities), "type": "Device",
                   "benchSentMs": t_ms, "dateObserved": now})
        })
        .collect()
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<Value>) -> anyhow::Result<()> {
    http.post(url)
        .body(serde_json::to_vec(&body)?)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Imports generated devices (GeoJSON features) into the server at `url` through
/// `POST /api/import`, 10,000 to a request.
pub(crate) async fn import_devices(
    http: &reqwest::Client,
    url: &str,
    features: &[Value],
) -> anyhow::Result<()> {
    for chunk in features.chunks(10_000) {
        let body = json!({"type": "FeatureCollection", "features": chunk});
        let r = http
            .post(format!("{url}/api/import"))
            .query(&[("format", "geojson"), ("name", "province.geojson")])
            .body(body.to_string())
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "import: {}", r.text().await?);
    }
    Ok(())
}

/// Starts `ioc serve` on loopback on a fresh data folder (in `dir`), with no demo data and
/// `config` as its configuration.
pub(crate) fn serve(dir: &std::path::Path, config: &str) -> anyhow::Result<Server> {
    serve_with(dir, config, &[])
}

/// [`serve`] with more arguments for `ioc serve`.
pub(crate) fn serve_with(
    dir: &std::path::Path,
    config: &str,
    args: &[&str],
) -> anyhow::Result<Server> {
    let cfg = dir.join("bench.toml");
    std::fs::write(&cfg, config)?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http"))
        .ok_or_else(|| anyhow::anyhow!("the server did not start: {line:?}"))?
        .to_string();
    Ok(Server { child, url })
}

pub async fn run(b: ApiBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The feed's catch-up log holds the whole run, so a client cut for being slow resumes.
    let server = serve(dir.path(), "[hub]\nlog_capacity = 200000\n")?;
    let pid = server.child.id();
    let http = reqwest::Client::new();
    let start = Instant::now();

    // The devices, then a steady feed: every value is the time it was sent.
    let import = format!("{}/api/import?format=ngsi-ld&source=bench", server.url);
    post(&http, &import, batch(b.entities, 0.0, 0, b.entities)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let feeder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        let per_tick = (b.rate / 10).max(1);
        let (http, import, entities) = (http.clone(), import.clone(), b.entities);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut next = 0;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let t = start.elapsed().as_secs_f64() * 1000.0;
                if post(&http, &import, batch(entities, t, next, per_tick))
                    .await
                    .is_ok()
                {
                    sent.fetch_add(per_tick as u64, Ordering::Relaxed);
                }
                next += per_tick;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_kib(pid);
    let files_before = open_files(pid);

    // The screens: every tenth one records delays (parsing every message of 500 clients
    // would make this process the bottleneck, not the server).
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for i in 0..b.clients {
        clients.push(tokio::spawn(client(
            server.url.clone(),
            start,
            stop.clone(),
            tally.clone(),
            i % 10 == 0,
        )));
    }
    // The readers.
    let rest_ms = Arc::new(Mutex::new(Vec::<f64>::new()));
    let rest_errors = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for i in 0..b.readers {
        let (stop, http, rest_ms, errors) = (
            stop.clone(),
            http.clone(),
            rest_ms.clone(),
            rest_errors.clone(),
        );
        let base = server.url.clone();
        let entities = b.entities;
        readers.push(tokio::spawn(async move {
            let mut k = i;
            while !stop.load(Ordering::Relaxed) {
                let path = match k % 3 {
                    0 => "/api/alerts".to_string(),
                    1 => "/api/health".to_string(),
                    _ => format!("/api/entities/bench-{}", k % entities),
                };
                let t = Instant::now();
                match http.get(format!("{base}{path}")).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        rest_ms
                            .lock()
                            .unwrap()
                            .push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                k += b.readers;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(b.seconds)).await;
    let rss_with = rss_kib(pid);
    let files_with = open_files(pid);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    for r in readers {
        let _ = r.await;
    }
    let _ = feeder.await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_kib(pid);
    let files_after = open_files(pid);
    drop(server);

    let mut delays = std::mem::take(&mut *tally.delays_ms.lock().unwrap());
    let mut rest = std::mem::take(&mut *rest_ms.lock().unwrap());
    let (p50, p99) = (percentile(&mut delays, 0.5), percentile(&mut delays, 0.99));
    let connected = tally.connected.load(Ordering::Relaxed);
    let per_client = rss_with.saturating_sub(rss_before) / (connected.max(1));
    println!(
        "sent {} obs in {} s ({:.0} obs/s) to {connected} feed clients and {} REST readers",
        sent.load(Ordering::Relaxed),
        b.seconds,
        sent.load(Ordering::Relaxed) as f64 / (b.seconds as f64 + 2.0),
        b.readers
    );
    println!(
        "feed: {} messages, {} delays sampled, p50 {p50:.1} ms, p99 {p99:.1} ms (send → client), \
         {} reconnects",
        tally.messages.load(Ordering::Relaxed),
        delays.len(),
        tally.reconnects.load(Ordering::Relaxed)
    );
    println!(
        "rest: {} requests, p50 {:.1} ms, p99 {:.1} ms, {} errors",
        rest.len(),
        percentile(&mut rest, 0.5),
        percentile(&mut rest, 0.99),
        rest_errors.load(Ordering::Relaxed)
    );
    println!(
        "server rss: {} KiB before clients, {} KiB with them, {} KiB after they left",
        rss_before, rss_with, rss_after
    );
    println!(
        "server open files: {files_before} before clients, {files_with} with them, \
         {files_after} after they left"
    );
    println!(
        "api: {connected} clients, p99 {p99:.0} ms, dropped {}, rss per client {per_client} KiB",
        tally.lost.load(Ordering::Relaxed)
    );
    if connected < b.clients as u64 {
        anyhow::bail!("only {connected} of {} clients connected", b.clients);
    }
    Ok(())
}
