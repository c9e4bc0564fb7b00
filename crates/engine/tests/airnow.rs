//! NowCast and US AQI against every row of the US Embassy Hanoi monitor's AirNow files
//! (`../shared/data/airnow-hanoi`): the NowCast recomputed from the raw hourly concentrations,
//! and the AQI computed from the file's own NowCast with the 2012 breakpoints the files were
//! produced with. Rows the file marks invalid (sentinel values) are skipped.
//!
//! The file publishes raw concentrations to 0.1 µg/m³, so a NowCast recomputed from them can
//! differ from AirNow's (computed from unrounded values) by one unit in the last place: a
//! match is within 0.1. Rows whose 12-hour window the file cannot support — the first hours of
//! the record, hours listed twice — are not the file's own consistent arithmetic and are
//! counted apart.

#[path = "common/missing.rs"]
mod missing;

use ioc_engine::aqi::{aqi_us, nowcast, Pollutant, UsCategory, UsTable};
use missing::{missing, shared_data};
use std::collections::HashMap;
use std::path::PathBuf;

fn data() -> Option<PathBuf> {
    shared_data("airnow-hanoi").filter(|p| p.is_dir())
}

struct Row {
    hour: i64,
    nowcast: f64,
    aqi: i64,
    category: String,
    raw: f64,
    valid: bool,
}

fn read(path: &std::path::Path) -> Vec<Row> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let (y, mo, d, h) = (col("Year"), col("Month"), col("Day"), col("Hour"));
    let (nc, aqi, cat, raw, qc) = (
        col("NowCast Conc."),
        col("AQI"),
        col("AQI Category"),
        col("Raw Conc."),
        col("QC Name"),
    );
    rdr.records()
        .map(|r| r.unwrap())
        .map(|r| {
            let date = chrono::NaiveDate::from_ymd_opt(
                r[y].parse().unwrap(),
                r[mo].parse().unwrap(),
                r[d].parse().unwrap(),
            )
            .unwrap();
            let hour = date.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp() / 3600
                + r[h].parse::<i64>().unwrap();
            Row {
                hour,
                nowcast: r[nc].parse().unwrap_or(-999.0),
                aqi: r[aqi].parse().unwrap_or(-999),
                category: r[cat].to_string(),
                raw: r[raw].parse().unwrap_or(-999.0),
                valid: &r[qc] == "Valid",
            }
        })
        .collect()
}

#[test]
fn nowcast_and_aqi_match_airnow_hanoi() {
    let Some(dir) = data() else {
        return missing("../shared/data/airnow-hanoi not found: nothing to compare against");
    };
    let mut rows = Vec::new();
    for year in [2016, 2017, 2018] {
        rows.extend(read(&dir.join(format!("Hanoi_PM2.5_{year}_YTD.csv"))));
    }
    assert!(rows.len() > 20_000, "{} rows", rows.len());
    let raw: HashMap<i64, f64> = rows
        .iter()
        .filter(|r| r.valid && r.raw >= 0.0)
        .map(|r| (r.hour, r.raw))
        .collect();
    let mut listed: HashMap<i64, usize> = HashMap::new();
    for r in &rows {
        *listed.entry(r.hour).or_default() += 1;
    }
    let first = rows.iter().map(|r| r.hour).min().unwrap();
    let consistent =
        |h: i64| h - first >= 11 && (0..12).all(|i| listed.get(&(h - i)).is_none_or(|n| *n == 1));

    let (mut nc_total, mut nc_match, mut skipped) = (0, 0, 0);
    let (mut aqi_total, mut aqi_match, mut aqi_close, mut cat_match) = (0, 0, 0, 0);
    for r in rows.iter().filter(|r| r.valid) {
        if r.nowcast >= 0.0 {
            let hours: Vec<Option<f64>> =
                (0..12).map(|i| raw.get(&(r.hour - i)).copied()).collect();
            if let Some(ours) = nowcast(&hours, Pollutant::Pm25) {
                if !consistent(r.hour) {
                    skipped += 1;
                } else {
                    nc_total += 1;
                    if (ours - r.nowcast).abs() <= 0.1 + 1e-9 {
                        nc_match += 1;
                    }
                }
            }
        }
        if r.nowcast >= 0.0 && r.aqi >= 0 {
            aqi_total += 1;
            let ours = aqi_us(r.nowcast, Pollutant::Pm25, UsTable::Epa2012)
                .unwrap()
                .value as i64;
            aqi_match += (ours == r.aqi) as usize;
            aqi_close += ((ours - r.aqi).abs() <= 1) as usize;
            cat_match += (UsCategory::of(ours as u32).label() == r.category) as usize;
        }
    }
    let rate = |m: usize, t: usize| 100.0 * m as f64 / t.max(1) as f64;
    println!(
        "AirNow Hanoi 2016–2018: NowCast within 0.1 µg/m³ {nc_match}/{nc_total} = {:.2} % \
         ({skipped} rows without a consistent 12-hour window), \
         AQI exact {aqi_match}/{aqi_total} = {:.2} %, within ±1 {:.2} %, category {:.2} %",
        rate(nc_match, nc_total),
        rate(aqi_match, aqi_total),
        rate(aqi_close, aqi_total),
        rate(cat_match, aqi_total),
    );
    assert!(nc_total > 20_000 && aqi_total > 20_000);
    assert!(rate(nc_match, nc_total) >= 99.4, "NowCast match rate");
    assert!(rate(aqi_match, aqi_total) >= 99.5, "AQI match rate");
    assert!(rate(aqi_close, aqi_total) >= 99.99, "AQI within ±1");
}
