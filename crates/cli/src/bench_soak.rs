//! `ioc bench soak`: a day at full load. A real `ioc serve` process (so its memory, files and
//! database are its own) with 100,000 devices at real places of Nghệ An, 10,000 rules and 50
//! connected screens, fed 10,000 observations a second over HTTP for `--hours` of wall time.
//! Its engine clock runs `--speed` times faster than the wall clock, so what happens by the
//! clock — retention passes, hourly and daily rollups, rule timers, day boundaries — goes
//! through a day in an hour, while everything that happens per observation happens at the
//! real rate.
//!
//! Each device reports three of the catalogue's hundred metrics in turn (every device every
//! 10 s at the default rate and size). Sampled every `--sample`: the server's resident memory,
//! open files, database and WAL size; drawn (plotters, SVG), written as CSV beside it, printed. Lost: the observations the server acknowledged (its
//! import reports, each answered after the commit) that the daily rollups — never deleted,
//! so they count every observation ever stored — do not hold once it has stopped.

use crate::bench_api::{open_files, rss_kib, serve_with, Tally};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct SoakBench {
    pub hours: f64,
    pub speed: f64,
    pub rate: usize,
    pub devices: usize,
    pub rules: usize,
    pub clients: usize,
    pub db_mb: u64,
    pub sample: Duration,
    pub communes: PathBuf,
    pub out: PathBuf,
}

/// One sample of the server.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Wall minutes since the feed started.
    minute: f64,
    /// Engine hours since the feed started.
    engine_h: f64,
    rss_mb: f64,
    files: usize,
    db_mb: f64,
    wal_mb: f64,
    acked: u64,
}

const METRICS: usize = 100;
use ioc_engine::bench::RULE_KINDS as KINDS;

/// The rules `ioc bench rules` loads (`ioc_engine::bench::rule_condition`), each held for a
/// minute; the first ten are reached about once a second in all.
fn rules_toml(count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        out.push_str(&format!(
            "\n[[rule]]\nname = \"soak-{i}\"\nwhen = \"{}\"\nfor = \"60s\"\nseverity = \"warning\"\nmessage = \"{{entity.name}}: {{value}}\"\n",
            ioc_engine::bench::rule_condition(i)
        ));
    }
    out
}

/// The JSON decoder's mapping for the feed: `{"id", "t", "mNN": value}`.
fn mapping() -> String {
    let metrics: Vec<String> = (0..METRICS)
        .map(|m| format!("m{m:02} = \"m{m:02}\""))
        .collect();
    format!(
        "id = \"id\"\ntime = \"t\"\nmetrics = {{ {} }}\n",
        metrics.join(", ")
    )
}

fn file_mb(p: &std::path::Path) -> f64 {
    std::fs::metadata(p)
        .map(|m| m.len() as f64 / 1048576.0)
        .unwrap_or(0.0)
}

pub async fn run(b: SoakBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        b.hours > 0.0 && b.speed >= 1.0,
        "--hours > 0 and --speed ≥ 1"
    );
    let communes = std::fs::read_to_string(&b.communes).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (the communes' boundaries, ../shared/data/geo)",
            b.communes.display()
        )
    })?;
    let dir = tempfile::tempdir()?;
    let epoch = chrono::Utc::now();
    let config = format!(
        "[store]\nmax_size_mb = {}\n{}",
        b.db_mb,
        rules_toml(b.rules)
    );
    let speed = b.speed.to_string();
    let epoch_ms = epoch.timestamp_millis().to_string();
    let server = serve_with(
        dir.path(),
        &config,
        &["--clock-speed", &speed, "--clock-epoch", &epoch_ms],
    )?;
    let pid = server.child.id();
    let db = dir.path().join("data").join("ioc.db");
    let wal = dir.path().join("data").join("ioc.db-wal");
    let clock = ioc_engine::clock::ScaledClock {
        epoch,
        speed: b.speed,
    };
    use ioc_engine::clock::Clock;
    let http = reqwest::Client::new();

    // The province: devices at real places, spread by commune, with their own limit.
    let t0 = Instant::now();
    let province = ioc_engine::demo::province::devices(&communes, b.devices, 14)?;
    let mut features = province["features"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        features.len() == b.devices,
        "{} devices generated",
        features.len()
    );
    let mut ids = Vec::with_capacity(features.len());
    for (i, f) in features.iter_mut().enumerate() {
        // The catalogue's three kinds, so its rules find their devices.
        f["properties"]["type"] = json!(KINDS[i % 3]);
        f["properties"]["limit"] = json!(100.0);
        ids.push(
            f["properties"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    crate::bench_api::import_devices(&http, &server.url, &features).await?;
    drop(features);
    eprintln!(
        "soak: {} devices and {} rules loaded in {:.0} s; feeding {} obs/s for {} h, engine clock ×{}",
        b.devices,
        b.rules,
        t0.elapsed().as_secs_f64(),
        b.rate,
        b.hours,
        b.speed
    );

    // The screens.
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for _ in 0..b.clients {
        clients.push(tokio::spawn(crate::bench_api::client(
            server.url.clone(),
            start,
            stop.clone(),
            tally.clone(),
            false,
        )));
    }

    // The feed: every 100 ms a tenth of the rate, each post answered after its commit.
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let feeder = {
        let (stop, acked, failed, errors) =
            (stop.clone(), acked.clone(), failed.clone(), errors.clone());
        let url = format!("{}/api/import", server.url);
        let mapping = mapping();
        let per_tick = (b.rate / 10).max(1);
        let http = http.clone();
        let ids = Arc::new(ids);
        tokio::spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(4));
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut k: usize = 0;
            let mut posts = tokio::task::JoinSet::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let t = clock
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let mut records = Vec::with_capacity(per_tick);
                for _ in 0..per_tick {
                    let d = k % ids.len();
                    // Each device has three of the hundred metrics, in turn.
                    let m = (d + (k / ids.len() % 3) * 33) % METRICS;
                    let x = (k.wrapping_mul(7919)) % 10_000;
                    // One in 10,000 above the first rules' 99.
                    let value = if x == 0 {
                        99.5
                    } else {
                        (x % 990) as f64 / 10.0
                    };
                    let mut r = serde_json::Map::new();
                    r.insert("id".into(), json!(ids[d]));
                    r.insert("t".into(), json!(t));
                    r.insert(format!("m{m:02}"), json!(value));
                    records.push(Value::Object(r));
                    k += 1;
                }
                let body = serde_json::to_vec(&records).expect("JSON");
                let permit = slots.clone().acquire_owned().await.expect("semaphore");
                let (http, url, mapping) = (http.clone(), url.clone(), mapping.clone());
                let (acked, failed, errors) = (acked.clone(), failed.clone(), errors.clone());
                posts.spawn(async move {
                    let _permit = permit;
                    let r = http
                        .post(&url)
                        .query(&[
                            ("format", "json"),
                            ("source", "soak"),
                            ("mapping", &mapping),
                        ])
                        .body(body)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            match r.json::<ioc_model::ImportReport>().await {
                                Ok(rep) => {
                                    acked.fetch_add(rep.accepted as u64, Ordering::Relaxed);
                                    if rep.refused > 0 {
                                        errors.lock().unwrap().push(format!("{:?}", rep.rejected));
                                    }
                                }
                                Err(e) => {
                                    failed.fetch_add(per_tick as u64, Ordering::Relaxed);
                                    errors.lock().unwrap().push(e.to_string());
                                }
                            }
                        }
                        Ok(r) => {
                            failed.fetch_add(per_tick as u64, Ordering::Relaxed);
                            let s = r.status();
                            let text = r.text().await.unwrap_or_default();
                            errors.lock().unwrap().push(format!("{s}: {text}"));
                        }
                        Err(e) => {
                            failed.fetch_add(per_tick as u64, Ordering::Relaxed);
                            errors.lock().unwrap().push(e.to_string());
                        }
                    }
                });
                while posts.try_join_next().is_some() {}
            }
            while posts.join_next().await.is_some() {}
            k
        })
    };

    // Samples until the time is up.
    let total = Duration::from_secs_f64(b.hours * 3600.0);
    let mut samples: Vec<Sample> = Vec::new();
    let engine_start = clock.now();
    loop {
        let s = Sample {
            minute: start.elapsed().as_secs_f64() / 60.0,
            engine_h: (clock.now() - engine_start).num_seconds() as f64 / 3600.0,
            rss_mb: rss_kib(pid) as f64 / 1024.0,
            files: open_files(pid),
            db_mb: file_mb(&db),
            wal_mb: file_mb(&wal),
            acked: acked.load(Ordering::Relaxed),
        };
        let rate = samples
            .last()
            .map(|p| (s.acked - p.acked) as f64 / ((s.minute - p.minute) * 60.0).max(1e-9))
            .unwrap_or(0.0);
        eprintln!(
            "soak: {:6.1} min (engine {:5.1} h): rss {:6.0} MB, files {:4}, db {:7.0} MB, wal {:5.0} MB, {:.0} obs/s, feed lost {}, reconnects {}",
            s.minute,
            s.engine_h,
            s.rss_mb,
            s.files,
            s.db_mb,
            s.wal_mb,
            rate,
            tally.lost.load(Ordering::Relaxed),
            tally.reconnects.load(Ordering::Relaxed),
        );
        samples.push(s);
        if start.elapsed() >= total || server_gone(pid) {
            break;
        }
        tokio::time::sleep(b.sample.min(total.saturating_sub(start.elapsed()))).await;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = feeder.await?;
    for c in clients {
        let _ = c.await;
    }
    anyhow::ensure!(!server_gone(pid), "the server died during the soak");
    let connected = tally.connected.load(Ordering::Relaxed);
    drop(server); // SIGTERM, waits for the commit of what is queued.

    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let stored: i64 = conn.query_row(
        "SELECT COALESCE(SUM(r.count), 0) FROM rollup_1d r JOIN series s ON s.id = r.series
         WHERE s.metric GLOB 'm[0-9][0-9]'",
        [],
        |r| r.get(0),
    )?;
    let raw: i64 = conn.query_row("SELECT COUNT(*) FROM observations", [], |r| r.get(0))?;
    let alerts: i64 = conn.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0))?;
    let acked = acked.load(Ordering::Relaxed);
    let lost = acked.saturating_sub(stored.max(0) as u64);
    let extra = (stored.max(0) as u64).saturating_sub(acked);

    let svg = plot(&samples, &b)?;
    if let Some(parent) = b.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&b.out, svg)?;
    let mut csv = String::from("minute,engine_h,rss_mb,files,db_mb,wal_mb,acked\n");
    for s in &samples {
        csv.push_str(&format!(
            "{:.2},{:.2},{:.1},{},{:.1},{:.1},{}\n",
            s.minute, s.engine_h, s.rss_mb, s.files, s.db_mb, s.wal_mb, s.acked
        ));
    }
    std::fs::write(b.out.with_extension("csv"), csv)?;
    let warm = samples
        .iter()
        .find(|s| s.minute >= samples.last().map_or(0.0, |l| l.minute) * 0.1)
        .copied()
        .unwrap_or(samples[0]);
    let last = *samples.last().expect("a sample");
    let peak = |f: fn(&Sample) -> f64| samples.iter().map(f).fold(0.0, f64::max);
    let errors = errors.lock().unwrap();
    eprintln!(
        "soak: sent {sent} observations, acknowledged {acked}, not taken {} ({} errors{}), stored {stored} (daily rollups), {raw} raw rows left, {alerts} alerts, {connected} of {} screens connected, feed gaps {}, plot {}",
        failed.load(Ordering::Relaxed),
        errors.len(),
        errors.first().map(|e| format!(", first: {e}")).unwrap_or_default(),
        b.clients,
        tally.lost.load(Ordering::Relaxed),
        b.out.display()
    );
    eprintln!(
        "soak: peaks rss {:.0} MB, db {:.0} MB, wal {:.0} MB; files {} -> {}; after 10% of the run rss {:.0} MB, db {:.0} MB; engine clock {:.1} h",
        peak(|s| s.rss_mb),
        peak(|s| s.db_mb),
        peak(|s| s.wal_mb),
        warm.files,
        last.files,
        warm.rss_mb,
        warm.db_mb,
        last.engine_h
    );
    if extra > 0 {
        eprintln!("soak: {extra} more observations stored than acknowledged");
    }
    println!(
        "soak: {} h, rss {:.0} -> {:.0} MB, db {:.0} MB, wal {:.0} MB, lost {lost}",
        b.hours, warm.rss_mb, last.rss_mb, last.db_mb, last.wal_mb
    );
    Ok(())
}

fn server_gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}/status")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
}

/// Four panels over wall minutes: resident memory, open files, database and WAL size.
fn plot(samples: &[Sample], b: &SoakBench) -> anyhow::Result<String> {
    use plotters::prelude::*;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1200, 800)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!(
                "ioc bench soak: {} devices, {} rules, {} screens, {} obs/s, {} h (engine clock ×{})",
                b.devices, b.rules, b.clients, b.rate, b.hours, b.speed
            ),
            ("sans-serif", 20),
        )?;
        let panels = root.split_evenly((2, 2));
        let x_max = samples.last().map_or(1.0, |s| s.minute).max(1.0);
        type Panel = (&'static str, fn(&Sample) -> f64, RGBColor);
        let series: [Panel; 4] = [
            ("resident memory (MB)", |s| s.rss_mb, RED),
            ("open files", |s| s.files as f64, BLUE),
            ("database file (MB)", |s| s.db_mb, GREEN),
            ("WAL file (MB)", |s| s.wal_mb, MAGENTA),
        ];
        for (area, (name, f, colour)) in panels.iter().zip(series) {
            let y_max = samples.iter().map(f).fold(1.0, f64::max) * 1.15;
            let mut chart = ChartBuilder::on(area)
                .caption(name, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
            chart
                .configure_mesh()
                .x_desc("minutes")
                .light_line_style(WHITE)
                .draw()?;
            chart.draw_series(LineSeries::new(
                samples.iter().map(|s| (s.minute, f(s))),
                colour.stroke_width(2),
            ))?;
        }
        root.present()?;
    }
    Ok(out)
}
