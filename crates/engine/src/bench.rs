//! `ioc bench ingest`: how fast observations go from bytes to the hub, next to how fast plain
//! batched SQLite inserts of the same rows go on the same machine in the same run.
//!
//! The pipeline side decodes JSON messages (the generic JSON observation form), runs the demo
//! rules, commits through the store writer (raw rows + 1-minute rollups) and publishes to the
//! hub. Throughput is measured on 90 % of the messages sent as fast as the engine takes them;
//! latency on the remaining 10 %, sent in small messages at half that rate (a loaded but not
//! saturated engine, as in production), from the moment a message is handed to the engine to
//! the moment the hub has published it. The baseline writes the very same rows into the very same table
//! with one prepared statement and one transaction per batch.

use crate::config::Config;
use crate::ingest::{Ingest, Item, Obs};
use crate::store::StoreConfig;
use crate::Engine;
use chrono::{DateTime, Duration as ChronoDuration, Offset, Utc};
use ioc_model::{Domain, Entity};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct IngestBench {
    pub observations: usize,
    pub obs_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub baseline_rows_per_s: f64,
}

impl IngestBench {
    pub fn ratio(&self) -> f64 {
        self.obs_per_s / self.baseline_rows_per_s
    }

    /// The summary line (`ingest: <obs/s> obs/s, p99 <ms> ms, baseline <rows/s> rows/s, ratio <r>`).
    pub fn summary(&self) -> String {
        format!(
            "ingest: {:.0} obs/s, p99 {:.1} ms, baseline {:.0} rows/s, ratio {:.2}",
            self.obs_per_s,
            self.p99_ms,
            self.baseline_rows_per_s,
            self.ratio()
        )
    }
}

/// Generic JSON observation, as home-grown feeds send it.
#[derive(Deserialize)]
struct JsonObs<'a> {
    #[serde(borrow)]
    entity: &'a str,
    #[serde(borrow)]
    metric: &'a str,
    time: DateTime<Utc>,
    value: f64,
}

const METRICS: [&str; 4] = ["pm25", "pm10", "water_level", "speed"];

fn entity(i: usize) -> Entity {
    let kind = ["AirQualityStation", "WaterLevelGauge", "TrafficCounter"][i % 3];
    Entity::new(
        &format!("bench-{i:05}"),
        kind,
        &format!("Bench {i}"),
        Domain::Environment,
    )
    .at(
        105.0 + (i % 100) as f64 * 0.01,
        18.6 + (i / 100) as f64 * 0.01,
    )
    .with_attr("alarm_1", 3.0)
    .with_attr("alarm_2", 4.0)
    .with_attr("alarm_3", 5.0)
    .with_attr("limit", 1000.0)
}

/// The synthetic messages: `n` observations over `entities` entities and 4 metrics, one
/// second apart per series, ending now. Values stay below the demo thresholds except for a
/// few percent, so rules run their real path and some alerts are raised.
fn messages(n: usize, entities: usize, end: DateTime<Utc>) -> Vec<(usize, Vec<u8>)> {
    let per_round = entities * METRICS.len();
    let rounds = n.div_ceil(per_round);
    let start = end - ChronoDuration::seconds(rounds as i64);
    (0..n)
        .map(|k| {
            let round = k / per_round;
            let e = (k % per_round) / METRICS.len();
            let m = METRICS[k % METRICS.len()];
            let time = start + ChronoDuration::seconds(round as i64);
            let value = match (m, (k * 7919) % 100) {
                ("pm25", x) if x < 3 => 200.0,
                ("pm25", x) => 20.0 + x as f64,
                ("pm10", x) => 30.0 + x as f64,
                ("water_level", x) => 1.0 + x as f64 / 40.0,
                (_, x) => 5.0 + x as f64 / 2.0,
            };
            let json = format!(
                r#"{{"entity":"bench-{e:05}","metric":"{m}","time":"{}","value":{value}}}"#,
                time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            (e, json.into_bytes())
        })
        .collect()
}

/// Devices of `ioc bench ingest`.
const INGEST_ENTITIES: usize = 1000;

/// Runs the benchmark in `dir` (two fresh databases are made there), or with the store on
/// the PostgreSQL database at `store` (in two scratch schemas of it, dropped afterwards; the
/// baseline is then `COPY` of the same rows).
pub async fn ingest(dir: &Path, n: usize, store: Option<&str>) -> anyhow::Result<IngestBench> {
    let end = Utc::now();
    let msgs = messages(n, INGEST_ENTITIES, end);
    let rows: Vec<(i64, i64, f64)> = msgs
        .iter()
        .map(|(_, b)| {
            let o: JsonObs = serde_json::from_slice(b).expect("own format");
            let e: i64 = o.entity[6..].parse().unwrap();
            let m = METRICS.iter().position(|x| *x == o.metric).unwrap() as i64;
            (e * 4 + m + 1, o.time.timestamp_millis(), o.value)
        })
        .collect();
    let mut scratch = match store {
        Some(url) => Some(PgScratch::new(url).await?),
        None => None,
    };
    let result = run_ingest(dir, n, msgs, rows, scratch.as_mut()).await;
    if let Some(s) = scratch {
        s.drop_schemas().await?;
    }
    result
}

/// Two scratch schemas of a PostgreSQL database: the pipeline's store and the baseline's
/// table, so a benchmark never touches what the database already holds.
pub struct PgScratch {
    url: String,
    client: tokio_postgres::Client,
    pipeline: String,
    copy: String,
}

impl PgScratch {
    pub async fn new(url: &str) -> anyhow::Result<PgScratch> {
        crate::store::Location::postgres(url)?;
        let config = crate::store::db::pg_config(url)?;
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let tag = format!("ioc_bench_{}", std::process::id());
        let scratch = PgScratch {
            url: url.to_string(),
            client,
            pipeline: format!("{tag}_pipeline"),
            copy: format!("{tag}_copy"),
        };
        // Left by a run that was killed.
        let _ = scratch.drop_schemas().await;
        scratch
            .client
            .batch_execute(&format!(
                "CREATE SCHEMA {p}; CREATE SCHEMA {c};
                 CREATE TABLE {c}.observations (part BIGINT NOT NULL, series BIGINT NOT NULL,
                     ts BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL,
                     PRIMARY KEY (part, series, ts));",
                p = scratch.pipeline,
                c = scratch.copy
            ))
            .await?;
        Ok(scratch)
    }

    /// The store's URL with the pipeline's schema first on its search path.
    pub fn pipeline_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}options=-c%20search_path%3D{}",
            self.url, self.pipeline
        )
    }

    /// The baseline: the rows `COPY`ed in binary into a table of the same key, a
    /// transaction per writer batch. Rows per second.
    pub async fn copy_rows(&mut self, rows: &[(i64, i64, f64)]) -> anyhow::Result<f64> {
        use futures_util::pin_mut;
        use tokio_postgres::binary_copy::BinaryCopyInWriter;
        use tokio_postgres::types::Type;
        let sql = format!(
            "COPY {}.observations (part, series, ts, value) FROM STDIN BINARY",
            self.copy
        );
        let t0 = Instant::now();
        for chunk in rows.chunks(StoreConfig::default().batch_max) {
            let tx = self.client.transaction().await?;
            let sink = tx.copy_in(&sql).await?;
            let writer =
                BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::INT8, Type::FLOAT8]);
            pin_mut!(writer);
            for (s, ts, v) in chunk {
                let part = ts.div_euclid(3_600_000);
                let row: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&part, s, ts, v];
                writer.as_mut().write(&row).await?;
            }
            writer.finish().await?;
            tx.commit().await?;
        }
        Ok(rows.len() as f64 / t0.elapsed().as_secs_f64())
    }

    /// Removes both schemas and what is in them.
    pub async fn drop_schemas(&self) -> anyhow::Result<()> {
        self.client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE",
                self.pipeline, self.copy
            ))
            .await?;
        Ok(())
    }
}

async fn run_ingest(
    dir: &Path,
    n: usize,
    msgs: Vec<(usize, Vec<u8>)>,
    rows: Vec<(i64, i64, f64)>,
    scratch: Option<&mut PgScratch>,
) -> anyhow::Result<IngestBench> {
    const ENTITIES: usize = INGEST_ENTITIES;
    const CHUNK: usize = 2048;
    // Baseline: the same rows, plain batched inserts into the same table (SQLite), or plain
    // COPY into a table of the same key (PostgreSQL).
    let pipeline_url = scratch.as_ref().map(|s| s.pipeline_url());
    let baseline_rows_per_s = if let Some(scratch) = scratch {
        scratch.copy_rows(&rows).await?
    } else {
        let path = dir.join("baseline.db");
        let _ = std::fs::remove_file(&path);
        tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
            std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
            let mut conn = crate::store::connect(&path)?;
            crate::store::migrate_connection(&mut conn).map_err(anyhow::Error::msg)?;
            let t0 = Instant::now();
            for chunk in rows.chunks(StoreConfig::default().batch_max) {
                let tx = conn.transaction()?;
                {
                    let mut st = tx.prepare_cached(
                        "INSERT INTO observations (part, series, ts, value)
                         VALUES (?4, ?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )?;
                    for (s, ts, v) in chunk {
                        st.execute(crate::store::db::params![
                            s,
                            ts,
                            v,
                            ts.div_euclid(3_600_000)
                        ])?;
                    }
                }
                tx.commit()?;
            }
            Ok(rows.len() as f64 / t0.elapsed().as_secs_f64())
        })
        .await??
    };

    // The pipeline.
    let data = dir.join("engine");
    let _ = std::fs::remove_dir_all(&data);
    let mut config = Config::default().without_demo();
    config.paths.data = Some(data);
    config.store.url = pipeline_url;
    let engine = Engine::start(config).await?;
    let sender = engine.sender();
    let report = sender
        .ingest(
            "bench",
            (0..ENTITIES)
                .map(|i| Item::Entity(Box::new(entity(i))))
                .collect(),
        )
        .await?;
    anyhow::ensure!(report.rejected.is_empty(), "bench entities refused");

    let source: Arc<str> = Arc::from("bench");
    let ids: Vec<Arc<str>> = (0..ENTITIES)
        .map(|i| Arc::from(format!("bench-{i:05}")))
        .collect();
    let metrics: Vec<Arc<str>> = METRICS.iter().map(|m| Arc::from(*m)).collect();
    let decode = |chunk: &[(usize, Vec<u8>)]| -> Vec<Item> {
        chunk
            .iter()
            .map(|(e, bytes)| {
                let o: JsonObs = serde_json::from_slice(bytes).expect("own format");
                let m = METRICS.iter().position(|x| *x == o.metric).unwrap();
                Item::Obs(Obs {
                    entity: ids[*e].clone(),
                    metric: metrics[m].clone(),
                    time: o.time,
                    value: o.value,
                })
            })
            .collect()
    };
    let send = |items: Vec<Item>| {
        let sender = sender.clone();
        let source = source.clone();
        async move {
            let sent = Instant::now();
            let (done, rx) = tokio::sync::oneshot::channel();
            let mut ingest = Ingest::new(source, items);
            ingest.done = Some(done);
            sender.send(ingest).await?;
            anyhow::Ok(tokio::spawn(async move {
                let r = rx.await;
                (sent.elapsed().as_secs_f64() * 1000.0, r)
            }))
        }
    };

    // Throughput: everything as fast as the engine takes it (back-pressure applies).
    let (throughput_part, latency_part) = msgs.split_at(n - n / 10);
    let mut waits = Vec::new();
    let t0 = Instant::now();
    for chunk in throughput_part.chunks(CHUNK) {
        waits.push(send(decode(chunk)).await?);
    }
    let mut accepted = 0;
    for w in waits {
        let (_, r) = w.await?;
        accepted += r?.accepted;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let obs_per_s = throughput_part.len() as f64 / elapsed;

    // Latency: the last tenth at half that rate, in small messages, as live sources send.
    const SMALL: usize = 200;
    let pause = std::time::Duration::from_secs_f64(SMALL as f64 / (obs_per_s / 2.0));
    let mut latencies: Vec<f64> = Vec::new();
    let mut waits = Vec::new();
    let mut next = tokio::time::Instant::now();
    for chunk in latency_part.chunks(SMALL) {
        tokio::time::sleep_until(next).await;
        next += pause;
        waits.push(send(decode(chunk)).await?);
    }
    for w in waits {
        let (ms, r) = w.await?;
        accepted += r?.accepted;
        latencies.push(ms);
    }
    engine.shutdown().await;
    anyhow::ensure!(
        accepted == n,
        "only {accepted} of {n} observations accepted"
    );
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(IngestBench {
        observations: n,
        obs_per_s,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        baseline_rows_per_s,
    })
}

/// Figures of `ioc bench rules`: the pipeline's throughput with no rules, and with each count
/// of rules loaded, the same observations each time, the cases interleaved round after round
/// so the machine's drift falls on all of them alike.
#[derive(Debug, Clone)]
pub struct RulesBench {
    pub observations: usize,
    pub rounds: usize,
    /// Median observations/s with no rules.
    pub no_rules_per_s: f64,
    /// Per count of rules: the median observations/s and the ratios to the no-rules run of
    /// the same round, sorted.
    pub with_rules: Vec<RulesCase>,
}

/// One count of rules in [`RulesBench`].
#[derive(Debug, Clone)]
pub struct RulesCase {
    pub rules: usize,
    pub per_s: f64,
    pub ratios: Vec<f64>,
}

impl RulesCase {
    pub fn ratio(&self) -> f64 {
        median(&self.ratios)
    }
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl RulesBench {
    /// The summary line: each count's median ratio to the no-rules pipeline.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .with_rules
            .iter()
            .map(|c| format!("{} rules {:.2}", c.rules, c.ratio()))
            .collect();
        format!(
            "rules: no rules {:.0} obs/s; ratio {}",
            self.no_rules_per_s,
            parts.join(", ")
        )
    }
}

const RULE_METRICS: usize = 100;
/// The device types the benchmark catalogue's rules name (`ioc bench soak` gives its devices
/// these types so the same rules find them).
pub const RULE_KINDS: [&str; 3] = ["AirQualityStation", "WaterLevelGauge", "TrafficCounter"];
const KINDS: [&str; 3] = RULE_KINDS;

/// The condition of rule `i` of the benchmark catalogue, as a large province's would be (each
/// names its metric `mNN` of 100 and its type, so the index finds it): mostly fixed
/// thresholds, one in ten against the device's own level (`entity.attributes.limit`), one in
/// a hundred with arithmetic only CEL decides. The first ten (above 99) can fire.
pub fn rule_condition(i: usize) -> String {
    let threshold = if i < 10 {
        99.0
    } else {
        100.0 + (i / 100) as f64
    };
    let test = match i % 100 {
        _ if i < 10 => format!("value > {threshold:.1}"),
        50 => "value > entity.attributes.limit * 2.0".to_string(),
        n if n % 10 == 0 => "value > entity.attributes.limit".to_string(),
        _ => format!("value > {threshold:.1}"),
    };
    format!(
        "entity.type == '{}' && metric == 'm{:02}' && {test}",
        KINDS[i % 3],
        i % RULE_METRICS
    )
}

/// `count` rules of the catalogue ([`rule_condition`]), each held for a minute.
fn bench_rules(count: usize) -> Vec<crate::rules::RuleConfig> {
    (0..count)
        .map(|i| crate::rules::RuleConfig {
            name: format!("bench-{i}"),
            when: rule_condition(i),
            for_: std::time::Duration::from_secs(60),
            severity: ioc_model::Severity::Warning,
            message: "{entity.name}: {value}".into(),
            ..Default::default()
        })
        .collect()
}

async fn rules_run(
    dir: &Path,
    rules: Vec<crate::rules::RuleConfig>,
    n: usize,
) -> anyhow::Result<f64> {
    const ENTITIES: usize = 1000;
    const CHUNK: usize = 2048;
    let data = dir.join(format!("rules-{}", rules.len()));
    let _ = std::fs::remove_dir_all(&data);
    let mut config = Config::default().without_demo();
    config.paths.data = Some(data);
    config.rules = Some(rules);
    let engine = Engine::start(config).await?;
    let errors = engine.rule_errors().await;
    anyhow::ensure!(
        errors.is_empty(),
        "bench rules refused: {:?}",
        errors.first()
    );
    let sender = engine.sender();
    sender
        .ingest(
            "bench",
            (0..ENTITIES)
                .map(|i| Item::Entity(Box::new(entity(i))))
                .collect(),
        )
        .await?;
    let ids: Vec<Arc<str>> = (0..ENTITIES)
        .map(|i| Arc::from(format!("bench-{i:05}")))
        .collect();
    let metrics: Vec<Arc<str>> = (0..RULE_METRICS)
        .map(|m| Arc::from(format!("m{m:02}")))
        .collect();
    let start = Utc::now() - ChronoDuration::seconds((n / ENTITIES) as i64 + 10);
    let items: Vec<Item> = (0..n)
        .map(|k| {
            Item::Obs(Obs {
                entity: ids[k % ENTITIES].clone(),
                metric: metrics[(k / ENTITIES + k) % RULE_METRICS].clone(),
                time: start + ChronoDuration::milliseconds((k / ENTITIES) as i64 * 1000),
                value: ((k * 7919) % 1000) as f64 / 10.0,
            })
        })
        .collect();
    let mut chunks = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(CHUNK).collect::<Vec<_>>());
    }
    let t0 = Instant::now();
    let mut waits = Vec::new();
    for chunk in chunks {
        let (done, rx) = tokio::sync::oneshot::channel();
        let mut ingest = Ingest::new(Arc::from("bench"), chunk);
        ingest.done = Some(done);
        sender.send(ingest).await?;
        waits.push(rx);
    }
    let mut accepted = 0;
    for w in waits {
        accepted += w.await?.accepted;
    }
    let per_s = n as f64 / t0.elapsed().as_secs_f64();
    engine.shutdown().await;
    anyhow::ensure!(accepted == n, "only {accepted} of {n} accepted");
    Ok(per_s)
}

/// Runs `ioc bench rules` in `dir`: `n` observations through the pipeline with no rules and
/// with each of `counts` rules loaded, the cases interleaved, `rounds` times over.
pub async fn rules(
    dir: &Path,
    n: usize,
    counts: &[usize],
    rounds: usize,
) -> anyhow::Result<RulesBench> {
    let rounds = rounds.max(1);
    let mut none = Vec::new();
    let mut per_case: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); counts.len()];
    for _ in 0..rounds {
        let base = rules_run(dir, Vec::new(), n).await?;
        none.push(base);
        for (i, &k) in counts.iter().enumerate() {
            let per_s = rules_run(dir, bench_rules(k), n).await?;
            per_case[i].0.push(per_s);
            per_case[i].1.push(per_s / base);
        }
    }
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    Ok(RulesBench {
        observations: n,
        rounds,
        no_rules_per_s: median(&sorted(none)),
        with_rules: counts
            .iter()
            .zip(per_case)
            .map(|(&rules, (per_s, ratios))| RulesCase {
                rules,
                per_s: median(&sorted(per_s)),
                ratios: sorted(ratios),
            })
            .collect(),
    })
}

/// Figures of `ioc bench kpi`.
#[derive(Debug, Clone)]
pub struct KpiBench {
    pub stations: usize,
    pub days: i64,
    pub observations: usize,
    /// A year (or `days`) of a daily KPI from the daily rollups, ms.
    pub from_rollups_ms: f64,
    /// The same days and values computed from the raw observations, ms.
    pub from_raw_ms: f64,
    /// Everything the leader dashboard reads for that range: every KPI's current value, the
    /// KPI series of its charts and a device's chart, ms.
    pub dashboard_ms: f64,
}

impl KpiBench {
    pub fn ratio(&self) -> f64 {
        self.from_raw_ms / self.from_rollups_ms.max(1e-6)
    }

    pub fn summary(&self) -> String {
        format!(
            "kpi: {} days of {} stations, from rollups {:.1} ms, from raw {:.1} ms, ratio {:.1}; \
             leader dashboard over the range {:.0} ms",
            self.days,
            self.stations,
            self.from_rollups_ms,
            self.from_raw_ms,
            self.ratio(),
            self.dashboard_ms
        )
    }
}

/// `ioc bench kpi`: `days` of hourly PM2.5 from `stations` stations through the real
/// pipeline, then a daily KPI over the whole range read from the rollups, next to the same
/// numbers computed from the raw rows in one SQL query (checked equal), and the leader
/// dashboard's reads over the range.
pub async fn kpi(dir: &Path, stations: usize, days: i64) -> anyhow::Result<KpiBench> {
    let now = Utc::now();
    let clock = Arc::new(crate::clock::ManualClock::new(now));
    let mut config = Config::parse("[reports]\nschedule = []\n[kpi_settings]\nrefresh = \"1h\"\n")?
        .without_demo();
    config.paths.data = Some(dir.to_owned());
    config.rules = Some(Vec::new());
    let tz = config.tz();
    let engine = Engine::start_with_clock(config, clock).await?;
    let sender = engine.sender();
    let mut items: Vec<Item> = (0..stations)
        .map(|i| {
            Item::Entity(Box::new(
                Entity::new(
                    &format!("aq-{i:03}"),
                    "AirQualityStation",
                    &format!("Trạm {i}"),
                    Domain::Environment,
                )
                .at(105.0 + i as f64 * 0.01, 18.7)
                .in_unit(&format!("{}", 16600 + i % 20), &format!("Xã {}", i % 20)),
            ))
        })
        .collect();
    sender.ingest("bench", std::mem::take(&mut items)).await?;
    let start = now - ChronoDuration::days(days);
    let hours = days * 24;
    let mut observations = 0;
    for h in 0..hours {
        let t = start + ChronoDuration::hours(h);
        for i in 0..stations {
            let v = 20.0
                + ((h as f64 / 24.0) * std::f64::consts::TAU).sin().abs() * 40.0
                + (i % 7) as f64;
            items.push(Item::Obs(Obs {
                entity: Arc::from(format!("aq-{i:03}").as_str()),
                metric: Arc::from("pm25"),
                time: t,
                value: v,
            }));
            observations += 1;
        }
        if items.len() >= 5000 {
            sender.ingest("bench", std::mem::take(&mut items)).await?;
        }
    }
    sender.ingest("bench", items).await?;

    let range = (start, now);
    let t0 = Instant::now();
    let s = engine
        .kpi_series("pm25-mean", range.0, range.1, None, None)
        .await?;
    let from_rollups_ms = t0.elapsed().as_secs_f64() * 1000.0;

    // The baseline: each station's daily mean from the raw rows, then the mean of stations.
    let reader = engine.reader().clone();
    // The display zone's offset (Nghệ An has one all year).
    let offset_ms = i64::from(now.with_timezone(&tz).offset().fix().local_minus_utc()) * 1000;
    let (f, t) = (range.0.timestamp_millis(), range.1.timestamp_millis());
    let t0 = Instant::now();
    let raw: Vec<(i64, f64)> = tokio::task::spawn_blocking(move || {
        reader.with(|c| {
            let mut stmt = c.prepare(
                "SELECT day, AVG(mean) FROM (
                   SELECT o.series, (o.ts + ?1) / 86400000 AS day, AVG(o.value) AS mean
                   FROM observations o JOIN series s ON s.id = o.series
                   WHERE s.metric = 'pm25' AND o.ts >= ?2 AND o.ts < ?3
                   GROUP BY o.series, day)
                 GROUP BY day ORDER BY day",
            )?;
            let rows = stmt
                .query_map(crate::store::db::params![offset_ms, f, t], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    })
    .await??;
    let from_raw_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let by_rollups: Vec<f64> = s.points.iter().filter_map(|p| p.value).collect();
    let same = by_rollups.len() == raw.len()
        && by_rollups
            .iter()
            .zip(&raw)
            .all(|(a, (_, b))| (a - b).abs() < 1e-6 * b.abs().max(1.0));
    anyhow::ensure!(
        same,
        "the rollups and the raw rows disagree ({} and {} days)",
        by_rollups.len(),
        raw.len()
    );

    let t0 = Instant::now();
    engine.kpi_values(None, None, None).await?;
    for b in crate::dashboards::builtin(now) {
        for p in &b.panels {
            if let (ioc_model::PanelKind::Chart, Some(k)) = (p.kind, &p.kpi) {
                engine.kpi_series(k, range.0, range.1, None, None).await?;
            }
        }
    }
    engine
        .series("aq-000".into(), "pm25".into(), range.0, range.1)
        .await?;
    let dashboard_ms = t0.elapsed().as_secs_f64() * 1000.0;
    engine.shutdown().await;
    Ok(KpiBench {
        stations,
        days,
        observations,
        from_rollups_ms,
        from_raw_ms,
        dashboard_ms,
    })
}
