//! `ioc bench video`: N cameras (GStreamer's RTSP server, one live encoder per camera) read by
//! a real `ioc serve` and watched by N viewers over its WebSocket, on loopback.
//!
//! Measured at the viewers: frames per second delivered and camera-to-viewer latency (each
//! frame carries its capture time, from the camera's RTCP sender reports); at the server:
//! CPU and resident memory per stream. The baseline, in the same run: the same cameras read
//! straight over RTSP (`retina`, no remux, no WebSocket, no server), with its own latency —
//! the console's cost is the difference.

use crate::bench_api::{rss_kib, serve};
use futures_util::StreamExt;
use ioc_engine::video::test_server::{Options, TestServer};
use ioc_model::camera::{parse_live, LiveKind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct VideoBench {
    pub streams: usize,
    pub seconds: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// CPU time (user + system) of a process, in seconds.
fn cpu_s(pid: u32) -> f64 {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0)
}

#[derive(Default)]
struct Tally {
    latencies_ms: Mutex<Vec<f64>>,
    frames: AtomicU64,
    untimed: AtomicU64,
    measuring: AtomicBool,
}

/// One viewer: what a screen's player receives, counted.
async fn viewer(url: String, tally: Arc<Tally>, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    while !stop.load(Ordering::Relaxed) {
        let m = tokio::select! {
            m = ws.next() => m,
            _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
        };
        let Some(Ok(m)) = m else { break };
        let tokio_tungstenite::tungstenite::Message::Binary(b) = m else {
            continue;
        };
        let Some((LiveKind::Media, captured, _)) = parse_live(&b) else {
            continue;
        };
        if !tally.measuring.load(Ordering::Relaxed) {
            continue;
        }
        tally.frames.fetch_add(1, Ordering::Relaxed);
        match captured {
            Some(ms) => {
                let now = chrono::Utc::now().timestamp_millis();
                tally.latencies_ms.lock().unwrap().push((now - ms) as f64);
            }
            None => {
                tally.untimed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

pub async fn run(b: VideoBench) -> anyhow::Result<()> {
    ioc_engine::video::test_server::available().map_err(anyhow::Error::msg)?;
    let n = b.streams.max(1);
    let cams = TestServer::start(&Options {
        mounts: n,
        width: b.width,
        height: b.height,
        fps: b.fps,
        ..Options::default()
    })
    .map_err(anyhow::Error::msg)?;
    println!(
        "cameras: {n} × H.264 {}×{} at {} fps (GStreamer RTSP server, pid {})",
        b.width,
        b.height,
        b.fps,
        cams.pid()
    );
    let window = Duration::from_secs(b.seconds.max(5));

    // The console: a real server reading every camera, and one viewer per camera.
    let dir = tempfile::tempdir()?;
    let server = serve(dir.path(), "")?;
    let pid = server.child.id();
    let rss_idle = rss_kib(pid);
    let features: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"type": "Feature",
                "geometry": {"type": "Point", "coordinates": [105.68 + i as f64 * 0.001, 18.67]},
                "properties": {"id": format!("bench-cam-{i}"), "type": "Camera",
                    "name": format!("Camera {i}"), "rtsp_url": cams.url(&format!("cam{i}"))}})
        })
        .collect();
    let http = reqwest::Client::new();
    http.post(format!(
        "{}/api/import?format=geojson&name=cameras.geojson",
        server.url
    ))
    .body(serde_json::json!({"type": "FeatureCollection", "features": features}).to_string())
    .send()
    .await?
    .error_for_status()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let streams: Vec<ioc_model::CameraStream> = http
            .get(format!("{}/api/cameras", server.url))
            .send()
            .await?
            .json()
            .await?;
        let live = streams
            .iter()
            .filter(|s| s.state == ioc_model::StreamState::Live && s.latency_ms.is_some())
            .count();
        if live == n {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!("only {live} of {n} streams live and timed after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let ws_base = server.url.replacen("http", "ws", 1);
    let viewers: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(viewer(
                format!("{ws_base}/api/cameras/bench-cam-{i}/live"),
                tally.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, t0, cam_cpu0) = (cpu_s(pid), Instant::now(), cpu_s(cams.pid()));
    tally.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(window).await;
    tally.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_s(pid) - cpu0) / elapsed * 100.0;
    let cam_cpu = (cpu_s(cams.pid()) - cam_cpu0) / elapsed * 100.0;
    let rss = rss_kib(pid);
    stop.store(true, Ordering::Relaxed);
    for v in viewers {
        let _ = v.await;
    }
    drop(server);
    let mut lat = std::mem::take(&mut *tally.latencies_ms.lock().unwrap());
    let frames = tally.frames.load(Ordering::Relaxed);
    let fps = frames as f64 / elapsed / n as f64;
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));

    // Baseline: the same cameras straight over RTSP in this process, no server.
    let base = baseline(&cams, n, window).await?;

    println!(
        "viewers: {frames} frames in {elapsed:.1} s ({} without a capture time yet)",
        tally.untimed.load(Ordering::Relaxed)
    );
    println!("camera to viewer through ioc serve: p50 {p50:.1} ms, p99 {p99:.1} ms, {fps:.1} fps per stream");
    println!(
        "baseline (direct RTSP, same cameras): p50 {:.1} ms, p99 {:.1} ms, {:.1} fps per stream",
        base.0, base.1, base.2
    );
    println!(
        "server: cpu {cpu:.1} % of a core ({:.2} % per stream), rss {:.1} MB idle → {:.1} MB ({:.2} MB per stream); cameras' encoders {cam_cpu:.0} %",
        cpu / n as f64,
        rss_idle as f64 / 1024.0,
        rss as f64 / 1024.0,
        (rss.saturating_sub(rss_idle)) as f64 / 1024.0 / n as f64
    );
    println!(
        "video: {n} streams, p99 {p99:.0} ms, {fps:.1} fps per stream, cpu {:.2} % per stream",
        cpu / n as f64
    );
    Ok(())
}

/// Reads the cameras directly (the engine's RTSP client, no remux for viewers, no server):
/// p50 and p99 camera-to-client latency and frames per second per stream.
async fn baseline(
    cams: &TestServer,
    n: usize,
    window: Duration,
) -> anyhow::Result<(f64, f64, f64)> {
    use ioc_engine::video::feed::{Feed, Packet};
    use ioc_engine::video::rtsp::{session, Target};
    let stop = tokio_util::sync::CancellationToken::new();
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for i in 0..n {
        let feed = Arc::new(Feed::new(
            &format!("base-{i}"),
            Duration::from_secs(1),
            chrono::Utc::now(),
        ));
        let target = Target {
            url: url::Url::parse(&cams.url(&format!("cam{i}")))?,
            udp: false,
            credentials: None,
        };
        let mut rx = feed.watch().rx;
        let (t, s) = (tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = s.cancelled() => {}
                _ = session(&target, &feed, Duration::from_secs(5), Duration::from_secs(10)) => {}
                _ = async {
                    while let Ok(p) = rx.recv().await {
                        if let Packet::Frame(f) = p {
                            if t.measuring.load(Ordering::Relaxed) {
                                t.frames.fetch_add(1, Ordering::Relaxed);
                                if let Some(ms) = f.captured_ms {
                                    t.latencies_ms.lock().unwrap().push((chrono::Utc::now().timestamp_millis() - ms) as f64);
                                }
                            }
                        }
                    }
                } => {}
            }
        }));
    }
    // Sender reports first (they come every few seconds).
    tokio::time::sleep(Duration::from_secs(6)).await;
    tally.measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    tally.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let mut lat = std::mem::take(&mut *tally.latencies_ms.lock().unwrap());
    let fps = tally.frames.load(Ordering::Relaxed) as f64 / elapsed / n as f64;
    Ok((percentile(&mut lat, 0.5), percentile(&mut lat, 0.99), fps))
}
