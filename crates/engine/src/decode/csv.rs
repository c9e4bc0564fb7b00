//! CSV time series: one row per time (and entity), one column per metric.
//!
//! ```toml
//! [source.mapping]
//! entity = "station"              # the column with the entity id (entities known already), or:
//! entity_id = "us-embassy-hanoi"  # one entity for the whole file, optionally described:
//! station = { name = "Đại sứ quán Hoa Kỳ", kind = "AirQualityStation", lon = 105.85, lat = 21.02 }
//! time = "Date (LT)"
//! time_format = "%Y-%m-%d %I:%M %p"
//! timezone = "Asia/Ho_Chi_Minh"
//! metrics = { pm25 = "Raw Conc." }
//! require = { "QC Name" = "Valid" }   # other rows are skipped (counted, not refused)
//! delimiter = ","
//! ```
//!
//! A row whose time or value cannot be read is refused on its own (a dead letter naming the
//! row); the rest of the file goes in.

use super::json::TimeReader;
use super::{DecodeCtx, Decoder, MAX_PAYLOAD};
use crate::ingest::{Item, Obs};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

fn comma() -> String {
    ",".into()
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Registers (or updates) the `entity_id` entity before its values.
    #[serde(default)]
    pub station: Option<StationSpec>,
    pub time: String,
    #[serde(default)]
    pub time_format: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    pub metrics: BTreeMap<String, String>,
    #[serde(default)]
    pub require: BTreeMap<String, String>,
    #[serde(default = "comma")]
    pub delimiter: String,
}

/// The one entity of a file, described in the mapping.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StationSpec {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub domain: Option<ioc_model::Domain>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub lat: Option<f64>,
}

/// What one row gave.
pub enum Row {
    Items(Vec<Item>),
    /// Left out by `require`.
    Skipped,
    Refused(String),
}

pub struct CsvDecoder {
    mapping: CsvMapping,
    times: TimeReader,
}

/// Column positions resolved against a header.
pub struct Columns {
    entity: Option<usize>,
    time: usize,
    metrics: Vec<(Arc<str>, usize)>,
    require: Vec<(usize, String)>,
}

impl CsvDecoder {
    pub fn new(mapping: CsvMapping) -> Result<CsvDecoder, String> {
        if mapping.entity.is_none() == mapping.entity_id.is_none() {
            return Err("the CSV mapping needs either `entity` (a column) or `entity_id`".into());
        }
        if mapping.metrics.is_empty() {
            return Err("the CSV mapping names no metric column".into());
        }
        if mapping.delimiter.len() != 1 {
            return Err("the CSV delimiter must be one byte".into());
        }
        let times = TimeReader::new(mapping.time_format.as_deref(), mapping.timezone.as_deref())?;
        Ok(CsvDecoder { mapping, times })
    }

    /// The entity the mapping describes, to send before the rows.
    pub fn station(&self) -> Option<Item> {
        let (id, s) = (
            self.mapping.entity_id.as_ref()?,
            self.mapping.station.as_ref()?,
        );
        let kind = s.kind.as_deref().unwrap_or("Device");
        let mut e = ioc_model::Entity::new(
            id,
            kind,
            &s.name,
            s.domain
                .unwrap_or_else(|| crate::decode::ngsi_ld::domain_of(kind)),
        );
        if let (Some(lon), Some(lat)) = (s.lon, s.lat) {
            e = e.at(lon, lat);
        }
        Some(Item::Entity(Box::new(e)))
    }

    pub fn reader<R: std::io::Read>(&self, r: R) -> csv::Reader<R> {
        csv::ReaderBuilder::new()
            .delimiter(self.mapping.delimiter.as_bytes()[0])
            .flexible(true)
            .from_reader(r)
    }

    pub fn columns(&self, header: &csv::StringRecord) -> Result<Columns, String> {
        let col = |name: &str| {
            header.iter().position(|h| h.trim() == name).ok_or_else(|| {
                format!(
                    "no column {name:?} (columns: {})",
                    header.iter().collect::<Vec<_>>().join(", ")
                )
            })
        };
        Ok(Columns {
            entity: self.mapping.entity.as_deref().map(col).transpose()?,
            time: col(&self.mapping.time)?,
            metrics: self
                .mapping
                .metrics
                .iter()
                .map(|(m, c)| Ok((Arc::from(m.as_str()), col(c)?)))
                .collect::<Result<_, String>>()?,
            require: self
                .mapping
                .require
                .iter()
                .map(|(c, v)| Ok((col(c)?, v.clone())))
                .collect::<Result<_, String>>()?,
        })
    }

    pub fn row(&self, line: u64, cols: &Columns, r: &csv::StringRecord) -> Row {
        if cols
            .require
            .iter()
            .any(|(i, v)| r.get(*i).map(str::trim) != Some(v.as_str()))
        {
            return Row::Skipped;
        }
        let at = |e: String| Row::Refused(format!("line {line}: {e}"));
        let entity: Arc<str> = match (cols.entity, &self.mapping.entity_id) {
            (Some(i), _) => match r.get(i).map(str::trim) {
                Some(s) if !s.is_empty() => Arc::from(s),
                _ => return at("no entity id".into()),
            },
            (None, Some(id)) => Arc::from(id.as_str()),
            (None, None) => unreachable!("checked in new()"),
        };
        let raw_time = r.get(cols.time).unwrap_or("");
        let Some(time) = self.times.read(&serde_json::Value::String(raw_time.into())) else {
            return at(format!(
                "time {raw_time:?} does not read as {}",
                self.mapping.time_format.as_deref().unwrap_or("RFC 3339")
            ));
        };
        let mut items = Vec::new();
        for (metric, i) in &cols.metrics {
            let raw = r.get(*i).unwrap_or("").trim();
            if raw.is_empty() {
                continue;
            }
            let Ok(value) = raw.parse::<f64>() else {
                return at(format!("{metric} {raw:?} is not a number"));
            };
            if !value.is_finite() {
                return at(format!("{metric} {raw:?} is not a finite number"));
            }
            items.push(Item::Obs(Obs {
                entity: entity.clone(),
                metric: metric.clone(),
                time,
                value,
            }));
        }
        Row::Items(items)
    }
}

impl Decoder for CsvDecoder {
    fn decode(&self, payload: &[u8], _ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String> {
        if payload.len() > MAX_PAYLOAD {
            return Err(format!(
                "payload of {} bytes is over the limit; import large files with `ioc import csv`",
                payload.len()
            ));
        }
        let mut rdr = self.reader(payload);
        let header = rdr
            .headers()
            .map_err(|e| format!("CSV header: {e}"))?
            .clone();
        let cols = self.columns(&header)?;
        let mut items: Vec<Item> = self.station().into_iter().collect();
        for (n, rec) in rdr.records().enumerate() {
            let line = n as u64 + 2;
            match rec {
                Ok(r) => match self.row(line, &cols, &r) {
                    Row::Items(i) => items.extend(i),
                    Row::Skipped => {}
                    Row::Refused(reason) => items.push(Item::Rejected(reason)),
                },
                Err(e) => items.push(Item::Rejected(format!("line {line}: {e}"))),
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_observations_in_the_right_zone() {
        let d = CsvDecoder::new(CsvMapping {
            entity: None,
            entity_id: Some("hanoi".into()),
            station: None,
            time: "Date (LT)".into(),
            time_format: Some("%Y-%m-%d %I:%M %p".into()),
            timezone: Some("Asia/Ho_Chi_Minh".into()),
            metrics: [("pm25".to_string(), "Raw Conc.".to_string())].into(),
            require: [("QC Name".to_string(), "Valid".to_string())].into(),
            delimiter: ",".into(),
        })
        .unwrap();
        let csv = "Site,Date (LT),Raw Conc.,QC Name\n\
                   Hanoi,2018-01-01 01:00 AM,69.2,Valid\n\
                   Hanoi,2018-01-01 02:00 AM,-999,Missing\n\
                   Hanoi,2018-01-01 03:00 PM,abc,Valid\n\
                   Hanoi,not a date,1,Valid\n";
        let ctx = DecodeCtx {
            source: "t",
            origin: None,
            received_at: chrono::Utc::now(),
        };
        let items = d.decode(csv.as_bytes(), &ctx).unwrap();
        assert_eq!(
            items.len(),
            3,
            "one value, the Missing row skipped, two refusals"
        );
        let Item::Obs(o) = &items[0] else { panic!() };
        assert_eq!(o.value, 69.2);
        assert_eq!(o.time.to_rfc3339(), "2017-12-31T18:00:00+00:00");
        let Item::Rejected(r) = &items[1] else {
            panic!()
        };
        assert!(r.starts_with("line 4") && r.contains("not a number"), "{r}");
        let Item::Rejected(r) = &items[2] else {
            panic!()
        };
        assert!(
            r.starts_with("line 5") && r.contains("does not read"),
            "{r}"
        );
    }

    #[test]
    fn a_wrong_mapping_says_what_is_missing() {
        let m = CsvMapping {
            entity: Some("station".into()),
            entity_id: None,
            station: None,
            time: "t".into(),
            time_format: None,
            timezone: None,
            metrics: [("pm25".to_string(), "pm".to_string())].into(),
            require: Default::default(),
            delimiter: ",".into(),
        };
        let d = CsvDecoder::new(m.clone()).unwrap();
        let ctx = DecodeCtx {
            source: "t",
            origin: None,
            received_at: chrono::Utc::now(),
        };
        let e = d.decode(b"id,t,pm\n", &ctx).err().unwrap();
        assert!(e.contains("no column \"station\""), "{e}");
        assert!(CsvDecoder::new(CsvMapping {
            entity_id: Some("x".into()),
            ..m
        })
        .is_err());
    }
}
