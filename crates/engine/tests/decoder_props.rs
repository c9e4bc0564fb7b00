//! Property tests over every decoder: whatever bytes arrive (random, or a valid payload
//! truncated, bit-flipped, spliced), a decoder returns items or a reason and never panics;
//! every refusal carries a reason a person can read. The seeds are real payloads from
//! `../shared/data` where present, else small inline ones.

#[path = "common/missing.rs"]
mod missing;

use ioc_engine::decode::{self, DecodeCtx, Decoder, MAX_PAYLOAD};
use ioc_engine::Item;
use proptest::prelude::*;
use std::sync::Arc;

/// A real payload of the shared data; without it (said once, and a failure under CI) the
/// caller seeds with a small inline one.
fn shared(rel: &str) -> Option<Vec<u8>> {
    let bytes = missing::shared_data(rel).and_then(|p| std::fs::read(p).ok());
    if bytes.is_none() {
        // Said once (the decoders are built for every case); under CI every time, a failure.
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if missing::under_ci() || !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
            missing::missing(&format!(
                "../shared/data/{rel} not found: decoders seeded with small inline payloads only"
            ));
        }
    }
    bytes
}

const JSON_MAPPING: &str = r#"
items = "/data"
id = "station.code"
time = "ts"
lon = "lng"
lat = "lat"
name = "station.name"
kind = "AirQualityStation"
metrics = { pm25 = "pm2_5", temperature = "temp" }
"#;

const JSON_SEED: &str = r#"{"data": [
 {"station": {"code": "VINH-01", "name": "Trạm Vinh"}, "ts": "2026-11-26T07:00:00+07:00",
  "lng": 105.68, "lat": 18.67, "pm2_5": 41.5, "temp": "24.1"},
 {"station": {"code": "CL-02", "name": "Cửa Lò"}, "ts": "2026-11-26T07:00:00+07:00",
  "lng": 105.72, "lat": 18.80, "pm2_5": 12, "temp": 23}
]}"#;

const CSV_MAPPING: &str = r#"
entity_id = "hanoi"
time = "Date (LT)"
time_format = "%Y-%m-%d %I:%M %p"
timezone = "Asia/Ho_Chi_Minh"
metrics = { pm25 = "Raw Conc." }
"#;

const GEOJSON_SEED: &str = r#"{"type": "FeatureCollection", "features": [
 {"type": "Feature", "id": "cam-1", "properties": {"name": "Camera Quang Trung", "type": "Camera"},
  "geometry": {"type": "Point", "coordinates": [105.6813, 18.6734]}},
 {"type": "Feature", "properties": {"id": "gauge-2", "name": "Trạm Nam Đàn", "type": "WaterLevelGauge"},
  "geometry": {"type": "Polygon", "coordinates": [[[105.4, 18.6], [105.5, 18.6], [105.5, 18.7], [105.4, 18.6]]]}}
]}"#;

const NGSI_SEED: &str = r#"{"id": "urn:ngsi-ld:AirQualityObserved:Vinh-01",
 "type": "AirQualityObserved",
 "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-11-26T00:00:00Z"}},
 "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [105.68, 18.67]}},
 "pm25": {"type": "Property", "value": 41.5, "unitCode": "GQ"},
 "temperature": {"type": "Property", "value": 24.1, "unitCode": "CEL"},
 "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"]}"#;

/// Every decoder with a valid payload for it.
fn decoders() -> Vec<(&'static str, Arc<dyn Decoder>, Vec<u8>)> {
    let json_map: toml::Value = toml::from_str(JSON_MAPPING).unwrap();
    let csv_map: toml::Value = toml::from_str(CSV_MAPPING).unwrap();
    let csv_seed = shared("airnow-hanoi/Hanoi_PM2.5_2018_YTD.csv")
        .map(|b| {
            let text = String::from_utf8_lossy(&b).into_owned();
            text.lines().take(40).collect::<Vec<_>>().join("\n").into_bytes()
        })
        .unwrap_or_else(|| {
            b"Site,Date (LT),Raw Conc.\nHanoi,2018-01-01 01:00 AM,69.2\nHanoi,2018-01-01 02:00 AM,70\n"
                .to_vec()
        });
    let cap_seed = shared("cap/v1dot2_appendix_adot1.xml").unwrap_or_else(|| {
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x-1</identifier><sender>ioc@nghean.gov.vn</sender>
<sent>2026-11-26T07:00:00+07:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
<info><category>Met</category><event>Lũ</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>
<area><areaDesc>Nam Đàn</areaDesc><polygon>18.6,105.4 18.6,105.5 18.7,105.5 18.6,105.4</polygon></area></info></alert>"#
            .as_bytes()
            .to_vec()
    });
    let ngsi_seed = shared("ngsi-ld/AirQualityObserved/example-normalized.jsonld")
        .unwrap_or_else(|| NGSI_SEED.as_bytes().to_vec());
    vec![
        (
            "ngsi-ld",
            decode::build("ngsi-ld", None).unwrap(),
            ngsi_seed,
        ),
        ("cap", decode::build("cap", None).unwrap(), cap_seed),
        (
            "json",
            decode::build("json", Some(&json_map)).unwrap(),
            JSON_SEED.as_bytes().to_vec(),
        ),
        (
            "csv",
            decode::build("csv", Some(&csv_map)).unwrap(),
            csv_seed,
        ),
        (
            "geojson",
            decode::build("geojson", None).unwrap(),
            GEOJSON_SEED.as_bytes().to_vec(),
        ),
        (
            "sensorthings",
            decode::build("sensorthings", None).unwrap(),
            include_bytes!("sensorthings_seed.json").to_vec(),
        ),
    ]
}

fn ctx() -> DecodeCtx<'static> {
    DecodeCtx {
        source: "props",
        origin: Some("props"),
        received_at: "2026-11-26T00:00:00Z".parse().unwrap(),
    }
}

/// Decodes and checks what must hold of any answer.
fn check(name: &str, d: &dyn Decoder, bytes: &[u8]) -> Result<Vec<Item>, String> {
    let out = d.decode(bytes, &ctx());
    match &out {
        Err(reason) => assert!(!reason.trim().is_empty(), "{name}: empty reason"),
        Ok(items) => {
            for i in items {
                if let Item::Rejected(reason) = i {
                    assert!(!reason.trim().is_empty(), "{name}: empty item reason");
                }
            }
        }
    }
    out
}

#[test]
fn every_seed_decodes_to_something() {
    for (name, d, seed) in decoders() {
        let items = check(name, &*d, &seed).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            items.iter().any(|i| !matches!(i, Item::Rejected(_))),
            "{name}: nothing decoded from the seed"
        );
    }
}

#[test]
fn oversized_non_utf8_truncated_and_wrong_type_payloads_are_refused_with_a_reason() {
    for (name, d, seed) in decoders() {
        let mut big = seed.clone();
        big.resize(MAX_PAYLOAD + 1, b' ');
        let e = check(name, &*d, &big).unwrap_err();
        assert!(e.contains("limit"), "{name}: {e}");

        let mut latin1 = seed.clone();
        latin1.splice(0..0, [0xff, 0xfe, 0xe9]);
        let e = check(name, &*d, &latin1).unwrap_err();
        assert!(e.contains("UTF-8"), "{name}: {e}");

        let half = &seed[..seed.len() / 2];
        match check(name, &*d, half) {
            // CSV is line-based: a cut file yields the rows before the cut and a refusal
            // of the cut row, or only whole rows.
            Ok(items) => assert_eq!(
                name, "csv",
                "{name} accepted a truncated payload: {items:?}"
            ),
            Err(e) => assert!(!e.is_empty()),
        }

        if name != "csv" {
            let e = check(name, &*d, b"42").unwrap_err();
            assert!(!e.is_empty(), "{name}");
        }
    }
}

/// A change to a valid payload.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (
            any::<usize>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                prop::sample::select(vec![
                    b"\"".to_vec(),
                    b"{".to_vec(),
                    b"]".to_vec(),
                    b"<".to_vec(),
                    b"null".to_vec(),
                    b"-1e999".to_vec(),
                    b"NaN".to_vec(),
                    b",".to_vec(),
                    b"\n".to_vec(),
                    "ắ".as_bytes().to_vec(),
                ]),
            ]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..256).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in muts {
        let len = b.len().max(1);
        match m {
            Mutation::Truncate(i) => b.truncate(i % len),
            Mutation::Flip(i, x) => {
                if !b.is_empty() {
                    b[i % len] ^= x;
                }
            }
            Mutation::Insert(i, bytes) => {
                let at = i % (b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let at = i % len;
                let end = (at + n).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
            Mutation::Duplicate(i, n) => {
                let at = i % len;
                let end = (at + n).min(b.len());
                if at < end {
                    let part = b[at..end].to_vec();
                    b.splice(end..end, part);
                }
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for (name, d, _) in decoders() {
            let _ = check(name, &*d, &bytes);
        }
    }

    #[test]
    fn mutated_payloads_never_panic(which in 0usize..6, muts in prop::collection::vec(mutation(), 1..6)) {
        let all = decoders();
        let (name, d, seed) = &all[which % all.len()];
        let bytes = apply(seed, &muts);
        let _ = check(name, &**d, &bytes);
    }
}
