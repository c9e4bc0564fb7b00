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

use chrono::{DateTime, Utc};
use ioc_engine::aqi::{aqi_us, nowcast, vn_aqi, Pollutant, UsCategory, UsTable};
use ioc_engine::{Config, Engine, ManualClock};
use missing::{missing, shared_data};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

fn read(path: &Path) -> Vec<Row> {
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

/// The readings the engine takes (Valid, and possible: a clean hour a little below zero
/// counts as it is, as AirNow counts it), by hour.
fn readings(rows: &[Row]) -> HashMap<i64, f64> {
    rows.iter()
        .filter(|r| r.valid && r.raw >= -10.0)
        .map(|r| (r.hour, r.raw))
        .collect()
}

/// Whether an hour's twelve-hour window is one the files list once each (a file's last line
/// may repeat the next one's first hour), and complete from the first hour on.
fn consistent(rows: &[Row]) -> impl Fn(i64) -> bool {
    let mut listed: HashMap<i64, usize> = HashMap::new();
    for r in rows {
        *listed.entry(r.hour).or_default() += 1;
    }
    let first = rows.iter().map(|r| r.hour).min().unwrap();
    move |h| h - first >= 11 && (0..12).all(|i| listed.get(&(h - i)).is_none_or(|n| *n == 1))
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
    let raw = readings(&rows);
    let consistent = consistent(&rows);

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
    assert!(rate(nc_match, nc_total) >= 99.99, "NowCast match rate");
    assert!(rate(aqi_match, aqi_total) >= 99.5, "AQI match rate");
    assert!(rate(aqi_close, aqi_total) >= 99.99, "AQI within ±1");
}

/// The station the files come from, as `ioc import csv` would be told with `--mapping`.
const MAPPING: &str = r#"
entity_id = "us-embassy-hanoi"
station = { name = "Đại sứ quán Hoa Kỳ, Hà Nội", kind = "AirQualityStation", lon = 105.85, lat = 21.02 }
time = "Date (LT)"
time_format = "%Y-%m-%d %I:%M %p"
timezone = "Asia/Ho_Chi_Minh"
metrics = { pm25 = "Raw Conc." }
require = { "QC Name" = "Valid" }
"#;

/// The files' lines month by month (a file's last line may be the next year's first hour),
/// each month a CSV file of its own with the header.
fn months(files: &[String]) -> Vec<String> {
    let mut by_month: BTreeMap<(String, String), String> = BTreeMap::new();
    for text in files {
        let mut lines = text.split_inclusive('\n');
        let header = lines.next().unwrap();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            by_month
                .entry((f[3].to_string(), f[4].to_string()))
                .or_insert_with(|| header.to_string())
                .push_str(line);
        }
    }
    by_month.into_values().collect()
}

/// `ioc import csv` of history hands a month of hourly PM2.5 to the pipeline as one message.
/// The derived values belong to every hour all the same: each month of 2016–2018 goes in as
/// one message, in order, and every hour AirNow gives a NowCast for — including the hours
/// whose own reading is missing, where two of the last three hours still hold — has our
/// NowCast, US AQI and VN_AQI, the NowCast equal to AirNow's column where its arithmetic is
/// consistent (the same test as above, here through the engine), the AQI that of AirNow's
/// NowCast by the breakpoints the engine uses (2024; the files used those of 2012).
#[tokio::test]
async fn months_imported_as_one_message_each_have_the_derived_values_of_every_hour() {
    let Some(dir) = data() else {
        return missing("../shared/data/airnow-hanoi not found: nothing to compare against");
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default().without_demo();
    config.paths.data = Some(tmp.path().to_owned());
    config.rules = Some(Vec::new());
    let now: DateTime<Utc> = "2019-01-01T00:00:00Z".parse().unwrap();
    let engine = Engine::start_with_clock(config, Arc::new(ManualClock::new(now)))
        .await
        .unwrap();
    let mapping: toml::Value = toml::from_str(MAPPING).unwrap();
    let (mut rows, mut files) = (Vec::new(), Vec::new());
    for year in [2016, 2017, 2018] {
        let path = dir.join(format!("Hanoi_PM2.5_{year}_YTD.csv"));
        rows.extend(read(&path));
        files.push(std::fs::read_to_string(&path).unwrap());
    }
    let months = months(&files);
    assert_eq!(months.len(), 37, "2016–2018 and the first hour of 2019");
    let mut accepted = 0;
    for month in months {
        let r = engine
            .import(
                "airnow",
                "csv",
                Some(&mapping),
                Some("month.csv"),
                month.into_bytes(),
            )
            .await
            .unwrap();
        // Fewer items than the pipeline takes as one message.
        assert!(r.rejected.is_empty() && r.accepted < 5000, "{r:?}");
        accepted += r.accepted;
    }
    assert!(accepted > 25_000, "{accepted} accepted");

    // The file's hours are local (UTC+7, no daylight saving): ours are UTC.
    let ms = |hour: i64| (hour - 7) * 3_600_000;
    let stored = |metric: &str| -> HashMap<i64, f64> {
        engine
            .reader()
            .raw("us-embassy-hanoi", metric, i64::MIN, i64::MAX, 1_000_000)
            .unwrap()
            .into_iter()
            .collect()
    };
    let (ours_nc, ours_aqi, ours_vn) = (stored("pm25_nowcast"), stored("aqi_us"), stored("vn_aqi"));
    let readings = readings(&rows);
    let consistent = consistent(&rows);
    // Two of the last three hours have a reading the engine takes.
    let two_of_three = |h: i64| (0..3).filter(|i| readings.contains_key(&(h - i))).count() >= 2;

    let (mut hours, mut without_reading, mut missing, mut not_due) = (0, 0, 0, 0);
    let (mut compared, mut nc_match, mut aqi_match) = (0, 0, 0);
    for r in rows.iter().filter(|r| r.nowcast >= 0.0) {
        // No NowCast is due where two of the last three hours have no reading the engine
        // takes: AirNow then repeats its last NowCast for a few hours.
        if !two_of_three(r.hour) {
            not_due += 1;
            continue;
        }
        hours += 1;
        let t = ms(r.hour);
        let (Some(&nc), Some(&aqi), Some(&vn)) =
            (ours_nc.get(&t), ours_aqi.get(&t), ours_vn.get(&t))
        else {
            missing += 1;
            continue;
        };
        if !readings.contains_key(&r.hour) {
            without_reading += 1;
        }
        assert_eq!(
            vn,
            f64::from(vn_aqi(nc, Pollutant::Pm25).unwrap()),
            "VN_AQI at {t}"
        );
        let of_ours = aqi_us(nc, Pollutant::Pm25, UsTable::Epa2024).unwrap();
        assert_eq!(aqi, f64::from(of_ours.value), "US AQI at {t}");
        if consistent(r.hour) {
            compared += 1;
            nc_match += usize::from((nc - r.nowcast).abs() <= 0.1 + 1e-9);
            // A NowCast 0.1 apart may be one index point apart.
            let theirs = aqi_us(r.nowcast, Pollutant::Pm25, UsTable::Epa2024).unwrap();
            aqi_match += usize::from((aqi - f64::from(theirs.value)).abs() <= 1.0);
        }
    }
    let rate = |m: usize, t: usize| 100.0 * m as f64 / t.max(1) as f64;
    println!(
        "AirNow Hanoi 2016–2018, imported a month per message: {hours} hours with a NowCast \
         ({without_reading} of them without a reading of their own), {missing} without ours; \
         NowCast within 0.1 µg/m³ {nc_match}/{compared} = {:.2} %, US AQI (2024) within 1 of \
         that of AirNow's NowCast {aqi_match}/{compared} = {:.2} %; {not_due} AirNow hours \
         without two of three readings",
        rate(nc_match, compared),
        rate(aqi_match, compared),
    );
    assert!(hours > 25_000, "{hours} hours");
    assert_eq!(
        missing, 0,
        "hours AirNow has a NowCast for and we have none"
    );
    assert!(
        without_reading > 100,
        "hours without a reading: {without_reading}"
    );
    assert!(compared > 24_000, "{compared} compared");
    assert!(rate(nc_match, compared) >= 99.99, "NowCast agreement");
    assert!(rate(aqi_match, compared) >= 99.99, "AQI agreement");
    engine.shutdown().await;
}

/// The 2016 file imported as it is, without `require` on its QC column: the rows whose raw
/// concentration is AirNow's missing marker (−999) or far below zero are refused to the dead
/// letters, one letter per cause with its count, and nothing below −10 µg/m³ is stored (a
/// clean hour's noise a little below zero is a reading); the import is history (dated 2016),
/// so it pages no one even with a rule it would trip.
#[tokio::test]
async fn airnow_missing_markers_are_refused_not_averaged() {
    let Some(dir) = data() else {
        return missing("../shared/data/airnow-hanoi not found: nothing to import");
    };
    let path = dir.join("Hanoi_PM2.5_2016_YTD.csv");
    let rows = read(&path);
    let impossible = rows.iter().filter(|r| r.raw < -10.0).count();
    let noise = rows
        .iter()
        .filter(|r| (-10.0..0.0).contains(&r.raw))
        .count();
    assert!(
        impossible > 300 && noise > 5,
        "{impossible} impossible rows, {noise} noise"
    );

    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default().without_demo();
    config.paths.data = Some(tmp.path().to_owned());
    config.rules = Some(vec![ioc_engine::config::RuleConfig {
        name: "pm25-high".into(),
        when: "metric == 'pm25' && value > 150.0".into(),
        severity: ioc_model::Severity::Major,
        message: "PM2.5 {value}".into(),
        enabled: true,
        ..Default::default()
    }]);
    let now: DateTime<Utc> = "2019-01-01T00:00:00Z".parse().unwrap();
    let engine = Engine::start_with_clock(config, Arc::new(ManualClock::new(now)))
        .await
        .unwrap();
    let mapping: toml::Value = toml::from_str(&MAPPING.replace("require", "# require")).unwrap();
    let r = engine
        .import(
            "airnow",
            "csv",
            Some(&mapping),
            Some("Hanoi_PM2.5_2016_YTD.csv"),
            std::fs::read(&path).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.refused, impossible, "{r:?}");
    // One cause, whatever the number: the marker and a sensor's −15 alike.
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert!(r.rejected[0]
        .reason
        .contains("pm25 -999 is outside its plausible range -10 to 2000"));
    assert_eq!(r.rejected[0].count, impossible);
    assert!(r.history >= r.accepted - 1 && r.accepted > 8_000, "{r:?}");
    let stored = engine
        .reader()
        .raw("us-embassy-hanoi", "pm25", i64::MIN, i64::MAX, 1_000_000)
        .unwrap();
    assert!(stored.len() > 8_000, "{} stored", stored.len());
    assert!(
        stored.iter().all(|(_, v)| *v >= -10.0),
        "an impossible reading was stored"
    );
    assert_eq!(stored.iter().filter(|(_, v)| *v < 0.0).count(), noise);
    assert!(
        stored.iter().any(|(_, v)| *v > 150.0),
        "the file has hours above the rule's threshold"
    );
    assert!(
        engine.hub().open_alerts().is_empty(),
        "history pages no one"
    );
    let letters = engine
        .dead_letters(Some("airnow".into()), None, 100)
        .await
        .unwrap();
    assert_eq!(
        letters.iter().map(|l| l.count as usize).sum::<usize>(),
        impossible
    );
    engine.shutdown().await;
}
