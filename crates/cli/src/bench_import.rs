//! `ioc bench import`: a large CSV uploaded to a real `ioc serve` on loopback, as the live
//! probe did (629,145 rows, 15 MB, for an entity nobody registered), then the same rows for a
//! station the file describes. Measured: rows per second, the server's resident memory
//! before (the baseline, in the same run), at its peak during the upload and after it, and
//! how many dead letters the refusals became (one per cause, not one per row).

use crate::bench_api::{rss_kib, serve};
use ioc_model::{DeadLetter, ImportReport};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows per piece of the generated upload.
const PIECE: usize = 10_000;

/// The CSV: a header, then one reading a minute from 2020-01-01.
fn pieces(rows: usize) -> impl Iterator<Item = Result<bytes::Bytes, std::io::Error>> {
    let start = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
        .expect("a valid time")
        .to_utc();
    (0..rows.div_ceil(PIECE)).map(move |p| {
        let mut s = String::with_capacity(PIECE * 32);
        if p == 0 {
            s.push_str("time,pm25\n");
        }
        for i in p * PIECE..((p + 1) * PIECE).min(rows) {
            let t = start + chrono::Duration::minutes(i as i64);
            s.push_str(&format!("{},{}.{}\n", t.to_rfc3339(), 5 + i % 80, i % 10));
        }
        Ok(bytes::Bytes::from(s))
    })
}

fn size(rows: usize) -> u64 {
    pieces(rows)
        .map(|p| p.map(|b| b.len() as u64).unwrap_or(0))
        .sum()
}

/// Uploads `rows` rows with `mapping`, sampling the server's memory meanwhile: (report,
/// seconds, peak RSS in KiB).
async fn upload(
    url: &str,
    pid: u32,
    rows: usize,
    name: &str,
    mapping: &str,
) -> anyhow::Result<(ImportReport, f64, u64)> {
    let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/import"))
        .query(&[
            ("format", "csv"),
            ("source", "bench-import"),
            ("name", name),
            ("mapping", mapping),
        ])
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces(rows),
        )))
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        anyhow::bail!(
            "import: {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    let report: ImportReport = resp.json().await?;
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    Ok((report, secs, peak.load(Ordering::Relaxed)))
}

pub async fn run(rows: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = serve(dir.path(), "")?;
    let pid = server.child.id();
    let url = server.url.clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);
    let mb = size(rows) as f64 / 1e6;
    println!("server rss before: {before} KiB (the baseline); {rows} rows, {mb:.1} MB a file");

    let cases = [
        (
            "unknown entity",
            "ghost.csv",
            "entity_id = \"ghost-station\"\ntime = \"time\"\nmetrics = { pm25 = \"pm25\" }\n",
        ),
        (
            "described station",
            "station.csv",
            "entity_id = \"bench-station\"\ntime = \"time\"\nmetrics = { pm25 = \"pm25\" }\n\
             station = { name = \"Bench\", kind = \"AirQualityObserved\", lon = 105.68, lat = 18.67 }\n",
        ),
        // Memory that a first import leaves (caches now warm) is not memory each one keeps:
        // a second and a third station end where the first did.
        (
            "second station",
            "station-2.csv",
            "entity_id = \"bench-station-2\"\ntime = \"time\"\nmetrics = { pm25 = \"pm25\" }\n\
             station = { name = \"Bench 2\", kind = \"AirQualityObserved\", lon = 105.6, lat = 18.7 }\n",
        ),
        (
            "third station",
            "station-3.csv",
            "entity_id = \"bench-station-3\"\ntime = \"time\"\nmetrics = { pm25 = \"pm25\" }\n\
             station = { name = \"Bench 3\", kind = \"AirQualityObserved\", lon = 105.7, lat = 18.8 }\n",
        ),
    ];
    let mut worst_peak = before;
    for (what, name, mapping) in cases {
        let (report, secs, peak) = upload(&url, pid, rows, name, mapping).await?;
        worst_peak = worst_peak.max(peak);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_kib(pid);
        let letters: Vec<DeadLetter> = reqwest::get(format!(
            "{url}/api/deadletters?source=bench-import&limit=100000"
        ))
        .await?
        .json()
        .await?;
        let letters: Vec<&DeadLetter> = letters
            .iter()
            .filter(|d| d.origin.as_deref() == Some(name))
            .collect();
        println!(
            "{what}: {rows} rows in {secs:.1} s ({:.0} rows/s): {} accepted, {} refused in {} \
             cause(s) → {} dead letter(s) counting {}; rss peak {peak} KiB (×{:.2} of the \
             baseline), {after} KiB 3 s after",
            rows as f64 / secs,
            report.accepted,
            report.refused,
            report.rejected.len(),
            letters.len(),
            letters.iter().map(|d| d.count).sum::<u64>(),
            peak as f64 / before.max(1) as f64,
        );
    }
    let after = rss_kib(pid);
    println!(
        "import: {rows} rows four times, rss before {before} KiB, peak {worst_peak} KiB, after \
         {after} KiB, peak/before {:.2}",
        worst_peak as f64 / before.max(1) as f64
    );
    drop(server);
    Ok(())
}
