//! `ioc bench …`: throughput next to a baseline measured in the same run.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Observations through decode → store → rules → hub, next to plain batched inserts.
    Ingest {
        /// Number of observations.
        #[arg(short, default_value_t = 500_000)]
        n: usize,
        /// Scratch folder (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The store on PostgreSQL (postgres://USER@HOST:PORT/DB, password in PGPASSWORD),
        /// in scratch schemas dropped afterwards; the baseline is then plain COPY.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// The pipeline with 10, 1,000 and 10,000 rules loaded, next to the same pipeline with
    /// none.
    Rules {
        /// Observations per run.
        #[arg(short, default_value_t = 200_000)]
        n: usize,
        /// Rounds of the interleaved cases (medians are printed).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// The operations screen in headless Chromium with a generated province of 10,000,
    /// 50,000 and 100,000 devices: first complete render, frames per second while panning,
    /// 2,000 status changes until drawn; baseline: the same page with 1,000 devices.
    Map {
        /// The communes' boundaries the devices are spread over.
        #[arg(
            long,
            default_value = "../shared/data/geo/nghe-an-communes-2025.geojson"
        )]
        communes: PathBuf,
        /// Sizes after the 1,000-device baseline.
        #[arg(long, value_delimiter = ',', default_values_t = [10_000, 50_000, 100_000])]
        sizes: Vec<usize>,
    },
    /// The desktop app's memory on the demo, all its processes (the app and its engine,
    /// WebKit's), once settled; baselines: the same engine alone (`ioc serve`, no window)
    /// and the same app showing an empty page (the floor under any screen).
    /// Needs a display (Xvfb) and `ioc-desktop` beside this program.
    Desktop {
        /// Seconds each program runs before it is sampled.
        #[arg(long, default_value_t = 60)]
        settle: u64,
        /// The basemap both import.
        #[arg(long, default_value = "../shared/data/geo/nghe-an-boundaries.pmtiles")]
        basemap: PathBuf,
        /// The `ioc-desktop` program (default: beside this one).
        #[arg(long)]
        desktop: Option<PathBuf>,
    },
    /// A day at full load: `ioc serve` with 100,000 devices, 10,000 rules and 50 screens fed
    /// 10,000 observations a second for `--hours` of wall time, its engine clock `--speed`
    /// times faster (retention, rollups, rule timers go through a day); memory, open files,
    /// database and WAL sampled and plotted; acknowledged observations counted in the store.
    Soak {
        /// Wall-clock hours at full load.
        #[arg(long, default_value_t = 1.0)]
        hours: f64,
        /// How much faster the engine's clock runs than the wall clock.
        #[arg(long, default_value_t = 24.0)]
        speed: f64,
        /// Observations per second.
        #[arg(long, default_value_t = 10_000)]
        rate: usize,
        #[arg(long, default_value_t = 100_000)]
        devices: usize,
        #[arg(long, default_value_t = 10_000)]
        rules: usize,
        #[arg(long, default_value_t = 50)]
        clients: usize,
        /// The database's size budget (`[store] max_size_mb`).
        #[arg(long, default_value_t = 1024)]
        db_mb: u64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 30)]
        sample: u64,
        /// The communes' boundaries the devices are spread over.
        #[arg(
            long,
            default_value = "../shared/data/geo/nghe-an-communes-2025.geojson"
        )]
        communes: PathBuf,
        /// Where the plot (SVG) goes.
        #[arg(long, default_value = "target/bench/soak.svg")]
        out: PathBuf,
    },
    /// Observations through a real mosquitto broker into the hub, next to what the broker
    /// delivers to a plain subscriber.
    Mqtt {
        /// Number of messages.
        #[arg(short, default_value_t = 50_000)]
        n: usize,
    },
    /// Devices' messages through a three-node NATS JetStream cluster into the engine (rules
    /// on) and PostgreSQL, next to plain COPY of as many rows into the same PostgreSQL.
    Cluster {
        /// Number of observations (two per message).
        #[arg(short, default_value_t = 200_000)]
        n: usize,
        /// The PostgreSQL to write to (postgres://USER@HOST:PORT/DB, password in
        /// PGPASSWORD), in scratch schemas dropped afterwards. Default: one of the
        /// benchmark's own (initdb in a temporary folder, fsync on).
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// `ioc serve` on loopback with hundreds of WebSocket clients and tens of REST readers
    /// while observations arrive: delivery delay, messages lost, memory per client.
    Api {
        #[arg(long, default_value_t = 500)]
        clients: usize,
        #[arg(long, default_value_t = 50)]
        readers: usize,
        /// Observations per second.
        #[arg(long, default_value_t = 5000)]
        rate: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 2000)]
        entities: usize,
    },
    /// A large CSV streamed to `ioc serve` (for an unknown entity, then for a described
    /// station): rows per second, server memory before, at its peak and after, dead letters.
    Import {
        #[arg(long, default_value_t = 629_145)]
        rows: usize,
    },
    /// A commune OC cut off from the IOC for a simulated day (readings of every sensor a
    /// minute, both sides working the same alerts), then reconnected: the time until both
    /// hold the same state, next to plain batched inserts of the same rows.
    Sync {
        #[arg(long, default_value_t = 500)]
        sensors: usize,
        #[arg(long, default_value_t = 1440)]
        minutes: usize,
        /// Alerts both sides work (five acts each side per alert).
        #[arg(long, default_value_t = 400)]
        alerts: usize,
    },
    /// Cameras (GStreamer's RTSP server) read by `ioc serve` and watched over its
    /// WebSocket: frames per second, camera-to-viewer latency, CPU and memory per stream,
    /// next to the same cameras read directly.
    Video {
        #[arg(long, default_value_t = 16)]
        streams: usize,
        /// Seconds measured (after the streams are live).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 640)]
        width: u32,
        #[arg(long, default_value_t = 360)]
        height: u32,
        #[arg(long, default_value_t = 15)]
        fps: u32,
    },
    /// A year of a KPI from the rollups, next to the same numbers from the raw rows; the
    /// leader dashboard's reads over the year.
    Kpi {
        #[arg(long, default_value_t = 30)]
        stations: usize,
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Api {
            clients,
            readers,
            rate,
            seconds,
            entities,
        } => {
            crate::bench_api::run(crate::bench_api::ApiBench {
                clients,
                readers,
                rate,
                seconds,
                entities,
            })
            .await
        }
        BenchCommand::Import { rows } => crate::bench_import::run(rows).await,
        BenchCommand::Video {
            streams,
            seconds,
            width,
            height,
            fps,
        } => {
            crate::bench_video::run(crate::bench_video::VideoBench {
                streams,
                seconds,
                width,
                height,
                fps,
            })
            .await
        }
        BenchCommand::Sync {
            sensors,
            minutes,
            alerts,
        } => {
            crate::bench_sync::run(crate::bench_sync::SyncBench {
                sensors,
                minutes,
                alerts,
            })
            .await
        }
        BenchCommand::Ingest { n, dir, store } => {
            let tmp;
            let dir = match dir {
                Some(d) => d,
                None => {
                    tmp = tempfile::tempdir()?;
                    tmp.path().to_owned()
                }
            };
            let r = ioc_engine::bench::ingest(&dir, n, store.as_deref()).await?;
            println!("observations: {}", r.observations);
            println!(
                "pipeline: {:.0} obs/s, p50 {:.1} ms, p99 {:.1} ms",
                r.obs_per_s, r.p50_ms, r.p99_ms
            );
            let how = if store.is_some() {
                "PostgreSQL COPY, binary, a transaction per writer batch"
            } else {
                "batched rusqlite inserts"
            };
            println!(
                "baseline ({how}, same rows): {:.0} rows/s",
                r.baseline_rows_per_s
            );
            println!("{}", r.summary());
            Ok(())
        }
        BenchCommand::Map { communes, sizes } => {
            let mut all = vec![1_000];
            all.extend(sizes);
            let cases = crate::bench_map::run(crate::bench_map::MapBench {
                communes,
                sizes: all,
                changes: 2_000,
            })
            .await?;
            let (base, last) = (&cases[0], cases.last().expect("a case"));
            println!(
                "map: {} devices, first render {:.0} ms, pan {:.1} fps, 2000 changes {:.0} ms, \
                 baseline 1000 devices {:.0} ms",
                last.devices,
                last.first_render_ms,
                last.pan_fps,
                last.changes_ms,
                base.first_render_ms
            );
            Ok(())
        }
        BenchCommand::Desktop {
            settle,
            basemap,
            desktop,
        } => {
            crate::bench_desktop::run(crate::bench_desktop::DesktopBench {
                settle: std::time::Duration::from_secs(settle),
                basemap,
                desktop,
            })
            .await
        }
        BenchCommand::Soak {
            hours,
            speed,
            rate,
            devices,
            rules,
            clients,
            db_mb,
            sample,
            communes,
            out,
        } => {
            crate::bench_soak::run(crate::bench_soak::SoakBench {
                hours,
                speed,
                rate,
                devices,
                rules,
                clients,
                db_mb,
                sample: std::time::Duration::from_secs(sample.max(1)),
                communes,
                out,
            })
            .await
        }
        BenchCommand::Rules { n, rounds } => {
            let tmp = tempfile::tempdir()?;
            let r = ioc_engine::bench::rules(tmp.path(), n, &[10, 1_000, 10_000], rounds).await?;
            println!(
                "observations per run: {}; {} rounds of the cases interleaved, medians",
                r.observations, r.rounds
            );
            println!("no rules: {:.0} obs/s", r.no_rules_per_s);
            for c in &r.with_rules {
                println!(
                    "{} rules: {:.0} obs/s, ratio {:.2} (rounds {:.2} … {:.2})",
                    c.rules,
                    c.per_s,
                    c.ratio(),
                    c.ratios.first().copied().unwrap_or(f64::NAN),
                    c.ratios.last().copied().unwrap_or(f64::NAN)
                );
            }
            println!("{}", r.summary());
            Ok(())
        }
        BenchCommand::Kpi { stations, days } => {
            let tmp = tempfile::tempdir()?;
            let r = ioc_engine::bench::kpi(tmp.path(), stations, days).await?;
            println!("observations: {} (hourly PM2.5)", r.observations);
            println!(
                "daily pm25-mean over {} days from the rollups: {:.1} ms",
                r.days, r.from_rollups_ms
            );
            println!(
                "the same from the raw rows (one SQL query): {:.1} ms",
                r.from_raw_ms
            );
            println!(
                "leader dashboard's reads over the range: {:.0} ms",
                r.dashboard_ms
            );
            println!("{}", r.summary());
            Ok(())
        }
        BenchCommand::Cluster { n, store } => {
            let r = crate::bench_cluster::run(n, store).await?;
            println!(
                "observations: {} (two a message, 1,000 devices)",
                r.observations
            );
            println!("store: {}", r.store);
            println!(
                "pipeline (NATS JetStream, 3 nodes → engine, rules on → PostgreSQL): {:.0} obs/s",
                r.obs_per_s
            );
            println!(
                "baseline (PostgreSQL COPY, binary, a transaction per writer batch): {:.0} rows/s",
                r.baseline_rows_per_s
            );
            println!("{}", r.summary());
            Ok(())
        }
        BenchCommand::Mqtt { n } => {
            let r = crate::bench_mqtt::run(n).await?;
            println!("messages: {}", r.n);
            println!(
                "pipeline (mosquitto → engine → hub): {:.0} obs/s, p50 {:.1} ms, p99 {:.1} ms",
                r.pipeline_per_s, r.p50_ms, r.p99_ms
            );
            println!(
                "baseline (mosquitto → plain subscriber): {:.0} msg/s",
                r.baseline_per_s
            );
            println!(
                "mqtt: {:.0} obs/s, p99 {:.1} ms, baseline {:.0} msg/s, ratio {:.2}",
                r.pipeline_per_s,
                r.p99_ms,
                r.baseline_per_s,
                r.pipeline_per_s / r.baseline_per_s
            );
            Ok(())
        }
    }
}
