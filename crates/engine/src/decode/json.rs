//! Generic JSON with a declarative mapping, for the many home-grown feeds: where the records
//! are, and where in each record the entity id, time, location, name and measured values are.
//!
//! ```toml
//! [source.mapping]
//! items = "/data"                 # the list of records (default: the payload, or [payload])
//! id = "stationId"                # JSON pointer ("/a/b") or dotted path ("a.b")
//! id_prefix = "hn-"               # optional, prepended to ids
//! time = "ts"                     # optional; default: when the payload arrived
//! time_format = "unix"            # rfc3339 (default, also ISO without offset), unix, unix_ms,
//!                                 # or a strftime pattern such as "%d/%m/%Y %H:%M"
//! timezone = "Asia/Ho_Chi_Minh"   # for times written without an offset (default UTC)
//! lon = "lng"
//! lat = "lat"
//! name = "stationName"
//! kind = "AirQualityStation"      # entity type for every record
//! domain = "environment"
//! status = "status"               # ok/success/online/true/1 → online, anything else offline
//! metrics = { pm25 = "pm2_5", temperature = "temp" }
//! attributes = { district = "address.district" }
//! ```
//!
//! Numbers written as strings ("12.5") are numbers; a metric path that is absent or `null` in
//! a record is skipped; anything else that is not a number refuses the payload.

use super::{json, parse_time, DecodeCtx, Decoder};
use crate::ingest::{Item, Obs};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use ioc_model::{Domain, Entity, EntityStatus};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonMapping {
    #[serde(default)]
    pub items: Option<String>,
    pub id: String,
    #[serde(default)]
    pub id_prefix: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub time_format: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub lon: Option<String>,
    #[serde(default)]
    pub lat: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub domain: Option<Domain>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A value at a JSON pointer (`/a/0/b`) or dotted path (`a.0.b`).
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() || path == "/" {
        return Some(v);
    }
    if path.starts_with('/') {
        return v.pointer(path);
    }
    path.split('.').try_fold(v, |cur, key| match cur {
        Value::Object(o) => o.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A number, or a string holding one.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// How to read times written in some feed.
#[derive(Debug, Clone)]
pub struct TimeReader {
    format: Option<String>,
    tz: Option<chrono_tz::Tz>,
}

impl TimeReader {
    pub fn new(format: Option<&str>, timezone: Option<&str>) -> Result<TimeReader, String> {
        let tz = match timezone {
            Some(name) => Some(name.parse::<chrono_tz::Tz>().map_err(|_| {
                format!("unknown time zone {name:?} (an IANA name such as Asia/Ho_Chi_Minh)")
            })?),
            None => None,
        };
        Ok(TimeReader {
            format: format.map(str::to_string),
            tz,
        })
    }

    fn local(&self, t: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz {
            Some(tz) => tz
                .from_local_datetime(&t)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
            None => Some(t.and_utc()),
        }
    }

    pub fn read(&self, v: &Value) -> Option<DateTime<Utc>> {
        match self.format.as_deref() {
            Some("unix") => DateTime::from_timestamp(number(v)? as i64, 0),
            Some("unix_ms") => DateTime::from_timestamp_millis(number(v)? as i64),
            None | Some("rfc3339") => {
                let s = v.as_str()?;
                if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
                    return Some(t.with_timezone(&Utc));
                }
                // No offset: in the configured zone.
                let naive = parse_time(s)?.naive_utc();
                self.local(naive)
            }
            Some(fmt) => {
                let s = v.as_str()?.trim();
                if let Ok(t) = DateTime::parse_from_str(s, fmt) {
                    return Some(t.with_timezone(&Utc));
                }
                self.local(NaiveDateTime::parse_from_str(s, fmt).ok()?)
            }
        }
    }
}

/// `decoder = "json"` with its mapping.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    mapping: JsonMapping,
    times: TimeReader,
}

impl JsonDecoder {
    pub fn new(mapping: JsonMapping) -> Result<JsonDecoder, String> {
        let times = TimeReader::new(mapping.time_format.as_deref(), mapping.timezone.as_deref())?;
        if mapping.id.trim().is_empty() {
            return Err("mapping.id must name where the entity id is".into());
        }
        Ok(JsonDecoder { mapping, times })
    }

    fn record(&self, i: usize, r: &Value, ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String> {
        let m = &self.mapping;
        let at = |e: String| format!("record #{}: {e}", i + 1);
        let id = match get_path(r, &m.id) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(at(format!("no entity id at {:?}", m.id))),
        };
        let id = format!("{}{id}", m.id_prefix.as_deref().unwrap_or(""));
        let time = match &m.time {
            None => ctx.received_at,
            Some(p) => {
                let v = get_path(r, p).ok_or_else(|| at(format!("no time at {p:?}")))?;
                self.times
                    .read(v)
                    .ok_or_else(|| at(format!("time {v} at {p:?} is not a readable time")))?
            }
        };
        let mut items = Vec::new();
        let describes = m.name.is_some()
            || m.lon.is_some()
            || m.kind.is_some()
            || m.status.is_some()
            || !m.attributes.is_empty();
        if describes {
            let name = m
                .name
                .as_ref()
                .and_then(|p| get_path(r, p))
                .and_then(|v| v.as_str())
                .unwrap_or(&id)
                .to_string();
            let mut e = Entity::new(
                &id,
                m.kind.as_deref().unwrap_or("Device"),
                &name,
                m.domain.unwrap_or(Domain::Other),
            );
            if let (Some(lon), Some(lat)) = (&m.lon, &m.lat) {
                let lon = get_path(r, lon).and_then(number);
                let lat = get_path(r, lat).and_then(number);
                match (lon, lat) {
                    (Some(lon), Some(lat)) => e = e.at(lon, lat),
                    (None, None) => {}
                    _ => return Err(at("only half a location".into())),
                }
            }
            if let Some(p) = &m.status {
                e.status = match get_path(r, p) {
                    None | Some(Value::Null) => EntityStatus::Unknown,
                    Some(Value::Bool(true)) => EntityStatus::Online,
                    Some(v) if number(v) == Some(1.0) => EntityStatus::Online,
                    Some(Value::String(s))
                        if matches!(
                            s.to_ascii_lowercase().as_str(),
                            "ok" | "success" | "online" | "true" | "up"
                        ) =>
                    {
                        EntityStatus::Online
                    }
                    Some(_) => EntityStatus::Offline,
                };
            }
            for (attr, p) in &m.attributes {
                if let Some(v) = get_path(r, p).filter(|v| !v.is_null()) {
                    e.attributes.insert(attr.clone(), v.clone());
                }
            }
            items.push(Item::Entity(Box::new(e)));
        }
        let entity: Arc<str> = Arc::from(id.as_str());
        for (metric, p) in &m.metrics {
            match get_path(r, p) {
                None | Some(Value::Null) => continue,
                Some(v) => {
                    let value = number(v)
                        .ok_or_else(|| at(format!("{metric} at {p:?} is {v}, not a number")))?;
                    items.push(Item::Obs(Obs {
                        entity: entity.clone(),
                        metric: Arc::from(metric.as_str()),
                        time,
                        value,
                    }));
                }
            }
        }
        Ok(items)
    }
}

impl Decoder for JsonDecoder {
    fn decode(&self, payload: &[u8], ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String> {
        let v = json(payload)?;
        let list = match &self.mapping.items {
            Some(p) => get_path(&v, p).ok_or_else(|| format!("no records at {p:?}"))?,
            None => &v,
        };
        let records: Vec<&Value> = match list {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![list],
            other => return Err(format!("records must be objects, found {other}")),
        };
        let mut items = Vec::new();
        for (i, r) in records.iter().enumerate() {
            items.extend(self.record(i, r, ctx)?);
        }
        if items.is_empty() {
            return Err("nothing in the payload matches the mapping".into());
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> DecodeCtx<'static> {
        DecodeCtx {
            source: "t",
            origin: None,
            received_at: "2026-11-26T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn paths() {
        let v = serde_json::json!({"a": {"b": [10, {"c": "x"}]}});
        assert_eq!(get_path(&v, "a.b.0"), Some(&serde_json::json!(10)));
        assert_eq!(get_path(&v, "/a/b/1/c"), Some(&serde_json::json!("x")));
        assert_eq!(get_path(&v, "a.nope"), None);
        assert_eq!(number(&serde_json::json!(" 12.5 ")), Some(12.5));
        assert_eq!(number(&serde_json::json!("n/a")), None);
    }

    #[test]
    fn a_feed_through_a_mapping() {
        let mapping: JsonMapping = toml::from_str(
            r#"
            items = "/data"
            id = "station.code"
            id_prefix = "hn-"
            time = "ts"
            time_format = "%d/%m/%Y %H:%M"
            timezone = "Asia/Ho_Chi_Minh"
            lon = "lng"
            lat = "lat"
            name = "station.name"
            kind = "AirQualityStation"
            domain = "environment"
            metrics = { pm25 = "pm2_5", temperature = "temp" }
            "#,
        )
        .unwrap();
        let d = JsonDecoder::new(mapping).unwrap();
        let payload = serde_json::json!({"data": [
            {"station": {"code": "S1", "name": "Hoàn Kiếm"}, "ts": "26/11/2026 08:00",
             "lng": 105.85, "lat": 21.03, "pm2_5": "55.5", "temp": null},
        ]});
        let items = d.decode(payload.to_string().as_bytes(), &ctx()).unwrap();
        let Item::Entity(e) = &items[0] else { panic!() };
        assert_eq!((e.id.as_str(), e.name.as_str()), ("hn-S1", "Hoàn Kiếm"));
        assert_eq!(e.position(), Some((105.85, 21.03)));
        assert_eq!(items.len(), 2, "temp is null: skipped");
        let Item::Obs(o) = &items[1] else { panic!() };
        assert_eq!((&*o.metric, o.value), ("pm25", 55.5));
        assert_eq!(
            o.time.to_rfc3339(),
            "2026-11-26T01:00:00+00:00",
            "08:00 in Hà Nội"
        );

        let bad = serde_json::json!({"data": [{"station": {"code": "S1"}, "ts": "26/11/2026 08:00", "pm2_5": "high"}]});
        let e = d.decode(bad.to_string().as_bytes(), &ctx()).unwrap_err();
        assert!(e.contains("record #1") && e.contains("not a number"), "{e}");
        let e = d.decode(b"{\"data\": []}", &ctx()).unwrap_err();
        assert!(e.contains("nothing"), "{e}");
        assert!(JsonDecoder::new(JsonMapping {
            id: "x".into(),
            timezone: Some("Mars/Olympus".into()),
            ..Default::default()
        })
        .is_err());
    }
}
