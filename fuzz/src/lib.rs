//! What every fuzz target runs: the engine's own entry point for one kind of untrusted input,
//! and the invariants its answer must keep. A panic (including a failed invariant) is a
//! crash for libFuzzer.
//!
//! The same file is the regression test's harness: `crates/engine/tests/fuzz_regressions.rs`
//! includes it with `#[path]`, so a committed crash input goes through exactly the code the
//! fuzzer ran. It therefore uses only crates the engine depends on.
//!
//! Inputs of the mapped decoders (`decode_json`, `decode_csv`, `decode_geojson`,
//! `decode_sensorthings`) may carry their mapping: `<mapping TOML> NUL <payload>` (TOML text
//! cannot contain NUL). Without a NUL the whole input is the payload, read with the
//! decoder's default mapping below.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ioc_engine::decode::{self, DecodeCtx};
use ioc_engine::Item;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every target, by the name of its `fuzz_targets/<name>.rs`.
pub const TARGETS: &[&str] = &[
    "decode_ngsi_ld",
    "decode_cap",
    "decode_json",
    "decode_csv",
    "decode_geojson",
    "decode_sensorthings",
    "parse_config",
    "parse_source",
    "parse_rules",
    "parse_sop",
    "parse_kpi",
];

/// What became of one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Taken (for decoders: at least one item came out).
    Accepted,
    /// Refused with this reason (never empty).
    Refused(String),
    /// Not an input of this target at all (e.g. a mapping that is not UTF-8).
    Ignored,
}

/// Runs `target` on `data`. Panics on a crash or a broken invariant.
pub fn run(target: &str, data: &[u8]) -> Outcome {
    match target {
        "decode_ngsi_ld" => decoder("ngsi-ld", None, data),
        "decode_cap" => decode_cap(data),
        "decode_json" => mapped("json", Some(JSON_MAPPING), data),
        "decode_csv" => mapped("csv", Some(CSV_MAPPING), data),
        "decode_geojson" => mapped("geojson", None, data),
        "decode_sensorthings" => mapped("sensorthings", None, data),
        "parse_config" => text(data, parse_config),
        "parse_source" => text(data, parse_source),
        "parse_rules" => text(data, parse_rules),
        "parse_sop" => text(data, parse_sop),
        "parse_kpi" => text(data, parse_kpi),
        other => panic!("no fuzz target {other:?} (one of {})", TARGETS.join(", ")),
    }
}

/// The mapping of `decode_json` when the input carries none (the shape of the README's).
pub const JSON_MAPPING: &str = r#"items = "/data"
id = "station.code"
id_prefix = "na-"
time = "ts"
timezone = "Asia/Ho_Chi_Minh"
lon = "lng"
lat = "lat"
name = "station.name"
kind = "AirQualityStation"
domain = "environment"
status = "status"
metrics = { pm25 = "pm2_5", temperature = "temp" }
attributes = { district = "address.district" }
"#;

/// The mapping of `decode_csv` when the input carries none: the AirNow files.
pub const CSV_MAPPING: &str = r#"entity_id = "us-embassy-hanoi"
station = { name = "Đại sứ quán Hoa Kỳ", kind = "AirQualityStation", lon = 105.85, lat = 21.02 }
time = "Date (LT)"
time_format = "%Y-%m-%d %I:%M %p"
timezone = "Asia/Ho_Chi_Minh"
metrics = { pm25 = "Raw Conc.", nowcast = "NowCast Conc.", aqi = "AQI" }
require = { "QC Name" = "Valid" }
"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 1, 0, 0).unwrap()
}

fn ctx() -> DecodeCtx<'static> {
    DecodeCtx {
        source: "fuzz",
        origin: Some("fuzz"),
        received_at: now(),
    }
}

fn refused(target: &str, reason: String) -> Outcome {
    assert!(
        !reason.trim().is_empty(),
        "{target}: refused without a reason"
    );
    Outcome::Refused(reason)
}

fn text(data: &[u8], f: fn(&str) -> Outcome) -> Outcome {
    match std::str::from_utf8(data) {
        Ok(t) => f(t),
        // Every parser here takes `&str`: the bytes never reach it.
        Err(_) => Outcome::Ignored,
    }
}

// ---------------------------------------------------------------------------------------
// Decoders

fn mapped(name: &str, default: Option<&str>, data: &[u8]) -> Outcome {
    let (mapping, payload) = match data.iter().position(|&b| b == 0) {
        Some(i) => match std::str::from_utf8(&data[..i]) {
            Ok(m) => (Some(m), &data[i + 1..]),
            Err(_) => return Outcome::Ignored,
        },
        None => (default, data),
    };
    decoder(name, mapping, payload)
}

/// `decode::build` then `decode`, as a source does with its `decoder` and `[source.mapping]`.
fn decoder(name: &str, mapping: Option<&str>, payload: &[u8]) -> Outcome {
    let mapping = match mapping.map(toml::from_str::<toml::Table>) {
        None => None,
        Some(Ok(t)) => Some(toml::Value::Table(t)),
        // A config that does not parse never gets as far as a decoder.
        Some(Err(_)) => return Outcome::Ignored,
    };
    let d = match decode::build(name, mapping.as_ref()) {
        Ok(d) => d,
        Err(e) => return refused(name, e),
    };
    match d.decode(payload, &ctx()) {
        Err(e) => refused(name, e),
        Ok(items) => {
            for item in &items {
                check_item(name, item);
            }
            Outcome::Accepted
        }
    }
}

fn decode_cap(data: &[u8]) -> Outcome {
    let out = decoder("cap", None, data);
    if out == Outcome::Accepted {
        // What the alert panel's "CAP" button gives back for a CAP-borne alert: as received.
        let xml = std::str::from_utf8(data).expect("accepted CAP is UTF-8");
        let a = decode::cap::decode_cap(xml, "fuzz").expect("decoded once, decodes again");
        assert_eq!(
            a.raw.as_deref(),
            Some(xml),
            "CAP keeps the message as received"
        );
    }
    out
}

/// What every item a decoder hands to the pipeline must be.
pub fn check_item(decoder: &str, item: &Item) {
    match item {
        Item::Obs(o) => {
            assert!(
                o.value.is_finite(),
                "{decoder}: observation {}/{} is {}",
                o.entity,
                o.metric,
                o.value
            );
            assert!(
                !o.entity.trim().is_empty(),
                "{decoder}: observation without an entity"
            );
            assert!(
                !o.metric.trim().is_empty(),
                "{decoder}: observation of {} without a metric",
                o.entity
            );
        }
        Item::Entity(e) => {
            assert!(!e.id.trim().is_empty(), "{decoder}: entity without an id");
            match (e.lon, e.lat) {
                (None, None) => {}
                (Some(lon), Some(lat)) => assert!(
                    lon.is_finite() && lat.is_finite(),
                    "{decoder}: entity {:?} at {lon}, {lat}",
                    e.id
                ),
                (lon, lat) => panic!(
                    "{decoder}: entity {:?} at half a place {lon:?} {lat:?}",
                    e.id
                ),
            }
        }
        Item::Alert(a) => {
            assert!(!a.key.trim().is_empty(), "{decoder}: alert without a key");
            assert!(
                !a.headline.trim().is_empty(),
                "{decoder}: alert {:?} without a headline",
                a.key
            );
            if let Some(area) = &a.area {
                check_area(decoder, &a.key, area);
            }
        }
        Item::Unit(u) => assert!(
            !u.code.trim().is_empty() && !u.name.trim().is_empty(),
            "{decoder}: unit without a code or name"
        ),
        Item::Rejected(reason) => assert!(
            !reason.trim().is_empty(),
            "{decoder}: an item refused without a reason"
        ),
    }
}

/// An alert's area is a GeoJSON geometry of points on Earth: the map draws it, geofences
/// and the CAP export read it.
fn check_area(decoder: &str, key: &str, area: &serde_json::Value) {
    fn points(v: &serde_json::Value, out: &mut Vec<(Option<f64>, Option<f64>)>) {
        match v.as_array() {
            Some(a) if a.first().is_some_and(|x| !x.is_array()) => {
                out.push((
                    a.first().and_then(|x| x.as_f64()),
                    a.get(1).and_then(|x| x.as_f64()),
                ));
            }
            Some(a) => a.iter().for_each(|x| points(x, out)),
            None => out.push((None, None)),
        }
    }
    let mut pts = Vec::new();
    points(&area["coordinates"], &mut pts);
    assert!(
        !pts.is_empty(),
        "{decoder}: alert {key:?}: an area without points"
    );
    for p in pts {
        match p {
            (Some(lon), Some(lat)) if lon.abs() <= 180.0 && lat.abs() <= 90.0 => {}
            other => panic!("{decoder}: alert {key:?}: area point {other:?} is not on Earth"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parsers

/// The configuration file (`ioc serve --config FILE`).
fn parse_config(text: &str) -> Outcome {
    match ioc_engine::Config::parse(text) {
        Err(e) => refused("config", e.to_string()),
        Ok(c) => {
            let _ = c.tz();
            for s in c.effective_sources() {
                assert!(!s.name().is_empty(), "config: a source without a name");
                let _ = (s.kind(), s.max_age(), s.enabled());
            }
            // What the engine compiles at start: the config's rules with the rules folder's.
            if let Some(rules) = &c.rules {
                let _ = ioc_engine::rules::RuleSet::compile(rules);
            }
            let _ = ioc_engine::kpi::KpiSet::build(&c.kpis, &[]);
            Outcome::Accepted
        }
    }
}

/// A source from the admin screen (`PUT /api/sources`): parsed, its secrets merged and
/// redacted as the engine and the API do.
fn parse_source(text: &str) -> Outcome {
    use ioc_engine::sources::secrets;
    let (shown, _) = secrets::redact(text);
    if !shown.is_empty() {
        // What `GET /api/sources` shows never holds a secret key's value.
        let doc: toml_edit::DocumentMut = shown.parse().expect("redacted TOML parses");
        for key in secrets::SECRET_KEYS {
            assert!(doc.get(key).is_none(), "source: {key} survived redaction");
        }
    }
    let merged = secrets::merge(text, Some(text));
    match ioc_engine::config::SourceConfig::parse(text) {
        Err(e) => refused("source", e),
        Ok(c) => {
            assert!(
                !c.name().trim().is_empty(),
                "source: accepted without a name"
            );
            let _ = (c.kind(), c.max_age(), c.enabled());
            // Editing a source without retyping its secrets keeps a source that parses.
            let merged = merged.expect("a source that parses merges");
            if let Err(e) = ioc_engine::config::SourceConfig::parse(&merged) {
                panic!("source: merged with itself it no longer parses: {e}");
            }
            Outcome::Accepted
        }
    }
}

static SCRATCH: AtomicU64 = AtomicU64::new(0);

/// A rules file in the rules folder, and the same text checked as the rules screen does;
/// what compiles is then run: observations through the live evaluator, its timers, its
/// messages.
fn parse_rules(text: &str) -> Outcome {
    use ioc_engine::rules::manage::RuleManager;
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    // A fresh folder per input, so one input's last good rules never leak into the next.
    let dir = std::env::temp_dir().join(format!(
        "ioc-fuzz-rules-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, Ordering::Relaxed)
    ));
    let (mut m, _) = RuleManager::open(dir.clone(), Some(&[]), tz);
    std::fs::write(dir.join("fuzz.toml"), text).expect("scratch rules file");
    let set = m.reload();
    let problems = m.list().problems;
    let _ = std::fs::remove_dir_all(&dir);
    run_rules(&set);

    // The rules screen: one rule, checked (TOML, keys, CEL, position of each problem).
    match m.check(text, None) {
        Err(c) => {
            assert!(!c.ok, "rules: a refusal that says ok");
            assert!(!c.problems.is_empty(), "rules: refused with no problem");
            for p in &c.problems {
                assert!(
                    !p.message.trim().is_empty(),
                    "rules: a problem without a message"
                );
                assert!(p.line >= 1 && p.column >= 1, "rules: problem at {p:?}");
            }
        }
        Ok(rule) => {
            // Saved, the rule is written as `rule_text`: it must read back as the same rule.
            let saved = ioc_engine::rules::files::rule_text(&rule);
            let again = ioc_engine::rules::files::parse_rule(&saved)
                .unwrap_or_else(|p| panic!("rules: saved text {saved:?} does not parse: {p:?}"));
            assert_eq!(
                saved,
                ioc_engine::rules::files::rule_text(&again),
                "rules: a saved rule reads back differently"
            );
            let set = m.compile_one(text).expect("checked rules compile");
            run_rules(&set);
        }
    }
    if set.is_empty() && problems.is_empty() {
        Outcome::Ignored
    } else if set.is_empty() {
        refused("rules", problems[0].message.clone())
    } else {
        Outcome::Accepted
    }
}

fn run_rules(set: &ioc_engine::rules::RuleSet) {
    use ioc_engine::alerts::RaiseSpec;
    use ioc_engine::rules::{entity_value, render_message, Evaluator, Observed, Signal};
    use ioc_engine::store::from_ms;
    use ioc_model::{Domain, Entity};
    use std::sync::Arc;
    if set.is_empty() {
        return;
    }
    let mut e = Entity::new(
        "aq-vinh-01",
        "AirQualityStation",
        "Trạm Vinh",
        Domain::Environment,
    )
    .at(105.68, 18.67)
    .in_unit("16681", "Phường Trường Vinh");
    e.attributes
        .insert("alarm_1".into(), serde_json::json!(4.5));
    let cel = entity_value(&e);
    let mut metrics: Vec<String> = vec!["pm25".into(), "water_level".into()];
    for r in set.rules() {
        let _ = (r.name(), r.has_clear_condition(), r.applies_to(&e));
        for m in r.config.when.split('\'').skip(1).step_by(2).take(4) {
            metrics.push(m.to_string());
        }
    }
    let mut ev = Evaluator::new(set);
    let mut signals = Vec::new();
    let mut book = ioc_engine::alerts::AlertBook::new(Vec::new(), 1);
    let t0 = now();
    let values = [0.0, 151.0, 151.0, 99.0, -1.0, 1e9, 151.0];
    for (i, v) in values.into_iter().enumerate() {
        for m in &metrics {
            let metric: Arc<str> = Arc::from(m.as_str());
            let time = t0 + Duration::minutes(7 * i as i64);
            ev.observe(
                set,
                &Observed {
                    entity_id: 1,
                    entity: &e,
                    cel: &cel,
                    metric: &metric,
                    value: v,
                    time,
                },
                &mut signals,
                |_, _| {},
            );
            for r in set.rules() {
                let _ = r.active_at(time, set.tz);
                let _ = r.severity_for(v);
                let _ = render_message(&r.config.message, &e, m, v);
            }
        }
    }
    for h in [1, 24, 24 * 400] {
        let at = t0 + Duration::hours(h);
        signals.extend(ev.tick(set, at.timestamp_millis()));
        // What the pipeline does with the signals (pipeline/mod.rs `signal`), and its tick's
        // escalation of what nobody acknowledged (`tick_into`, `[alerts]` defaults).
        for s in signals.drain(..) {
            match s {
                Signal::Raise {
                    rule,
                    metric,
                    value,
                    at,
                    ..
                } => {
                    let r = set.get(rule);
                    book.raise(
                        &e,
                        RaiseSpec {
                            rule: r.name(),
                            category: &r.category,
                            severity: r.severity_for(value),
                            domain: r.config.domain,
                            message: render_message(&r.config.message, &e, &metric, value),
                            metric: &metric,
                            value,
                            at: from_ms(at),
                        },
                    );
                }
                Signal::Clear { rule, at, .. } => {
                    let r = set.get(rule);
                    book.clear(r.name(), &e.id, from_ms(at), r.config.auto_resolve);
                }
            }
        }
        let escalation = |a: &ioc_model::Alert| {
            let after = set
                .by_name(&a.rule)
                .and_then(|(_, r)| r.config.escalate_after)
                .unwrap_or(std::time::Duration::from_secs(15 * 60));
            (!after.is_zero()).then(|| ioc_engine::alerts::Escalation {
                after: Duration::from_std(after).unwrap_or(Duration::MAX),
                max: 2,
            })
        };
        let _ = book.due(at, &escalation);
    }
}

/// An SOP template from the SOP screen: checked; what is accepted is instantiated as a new
/// incident and worked through, every question answered (each answer in turn).
fn parse_sop(text: &str) -> Outcome {
    use ioc_engine::operate::sop::{self, ConditionCtx, SopTemplate};
    use ioc_model::StepStatus;
    let config = match sop::parse(text) {
        Err(problems) => {
            assert!(!problems.is_empty(), "sop: refused with no problem");
            for p in &problems {
                assert!(
                    !p.message.trim().is_empty(),
                    "sop: a problem without a message"
                );
                assert!(p.line >= 1 && p.column >= 1, "sop: problem at {p:?}");
            }
            return refused("sop", problems[0].message.clone());
        }
        Ok(c) => c,
    };
    let t = SopTemplate {
        config,
        version: 1,
        text: text.to_string(),
        updated_at: now(),
        updated_by: "fuzz".into(),
    };
    let _ = t.info(vec![1]);
    let ctx = ConditionCtx {
        severity: "major",
        category: "flood",
        unit: Some("16681"),
        domain: "water",
    };
    let width = t
        .config
        .steps
        .iter()
        .map(|s| s.answers.len())
        .max()
        .unwrap_or(1)
        .max(1);
    for pick in 0..width.min(4) {
        let mut steps = t.instantiate();
        let mut at = now();
        // Every round finishes at least one step, or nothing is left to do.
        for _ in 0..=steps.len() {
            sop::advance(&mut steps, &ctx, at, "fuzz");
            let Some(s) = steps.iter_mut().find(|s| s.status == StepStatus::Ready) else {
                break;
            };
            if !s.answers.is_empty() {
                s.answer = Some(s.answers[pick % s.answers.len()].clone());
            }
            s.status = StepStatus::Done;
            s.done_at = Some(at);
            at += Duration::minutes(5);
        }
        sop::advance(&mut steps, &ctx, at, "fuzz");
        assert!(
            steps.iter().all(|s| s.status.finished()),
            "sop: an incident that cannot finish: {:?}",
            steps
                .iter()
                .map(|s| (&s.id, s.status, &s.after))
                .collect::<Vec<_>>()
        );
    }
    Outcome::Accepted
}

/// A KPI definition from the KPI screen: checked; what is accepted is computed over a day
/// of rollups and records, as the KPI screen and the reports do.
fn parse_kpi(text: &str) -> Outcome {
    use ioc_engine::kpi::def::{self, Source};
    use ioc_engine::kpi::eval::{self, Buckets, Measured, Roll};
    use ioc_engine::kpi::period;
    use ioc_engine::kpi::records::Record;
    let k = match def::parse(text, "console") {
        Err(problems) => {
            assert!(!problems.is_empty(), "kpi: refused with no problem");
            for p in &problems {
                assert!(
                    !p.message.trim().is_empty(),
                    "kpi: a problem without a message"
                );
                assert!(p.line >= 1 && p.column >= 1, "kpi: problem at {p:?}");
            }
            return refused("kpi", problems[0].message.clone());
        }
        Ok(k) => k,
    };
    // The editor shows `text_of`; saved from there it must be accepted again.
    let shown = def::text_of(&k.config);
    if let Err(p) = def::parse(&shown, "console") {
        panic!("kpi: its own text {shown:?} is refused: {p:?}");
    }
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let this = period::containing(k.config.period, now(), tz);
    let periods = [period::previous(k.config.period, this.0, tz), this];
    let items = if k.config.of.source == Source::Observations {
        let e = ioc_model::Entity::new(
            "aq-vinh-01",
            k.config
                .of
                .entity_type
                .as_deref()
                .unwrap_or("AirQualityStation"),
            "Trạm Vinh",
            ioc_model::Domain::Environment,
        )
        .in_unit("16681", "Phường Trường Vinh");
        let entities = [Measured {
            series: 1,
            id: e.id.clone(),
            kind: e.kind.clone(),
            name: e.name.clone(),
            unit: e.unit.clone(),
            unit_name: e.unit_name.clone(),
            cel: ioc_engine::rules::cel_value_of_entity(&e),
        }];
        let hour = |t: DateTime<Utc>| t.timestamp_millis().div_euclid(3_600_000);
        let rolls: Vec<Roll> = (hour(periods[0].0)..hour(periods[1].1))
            .step_by(5)
            .enumerate()
            .map(|(i, bucket)| Roll {
                series: 1,
                bucket,
                count: 1 + i as i64 % 3,
                min: i as f64,
                max: 10.0 * i as f64,
                sum: 15.0 * i as f64,
                last: 5.0 * i as f64,
                last_ts: bucket * 3_600_000,
            })
            .collect();
        eval::observation_items(&k, &periods, &entities, &rolls, Buckets::Hour, tz)
    } else {
        let fields = def::fields(k.config.of.source);
        let records: Vec<Record> = (0..6)
            .map(|i| Record {
                kind: "record",
                id: format!("r{i}"),
                name: format!("record {i}"),
                unit: (i % 2 == 0).then(|| "16681".to_string()),
                unit_name: None,
                at: periods[i % 2].0.timestamp_millis() + i as i64 * 60_000,
                fields: fields
                    .iter()
                    .enumerate()
                    .map(|(j, f)| (*f, sample_value(i + j)))
                    .collect(),
            })
            .collect();
        eval::record_items(&k, &periods, &records)
    };
    for items in &items {
        let o = eval::outcome(&k, items);
        let _ = k.status(o.value);
        for u in eval::by_unit(&k, items) {
            let _ = k.status(u.value);
        }
    }
    Outcome::Accepted
}

fn sample_value(i: usize) -> cel::Value {
    use std::sync::Arc;
    match i % 5 {
        0 => cel::Value::Null,
        1 => cel::Value::Bool(i.is_multiple_of(2)),
        2 => cel::Value::Float(i as f64 * 2.5),
        3 => cel::Value::Int(i as i64),
        _ => cel::Value::String(Arc::new(
            ["critical", "major", "open", "16681"][i % 4].into(),
        )),
    }
}
