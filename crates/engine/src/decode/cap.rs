//! CAP 1.2, the OASIS Common Alerting Protocol: received alerts in, any alert out.
//!
//! In: an `<alert>` in the CAP 1.2 namespace is checked against the rules of the official
//! schema (required elements, the enumerations, the date-time pattern, polygon and circle
//! syntax) and becomes an [`ExternalAlert`] per `<info>` block… merged into one alert: the
//! first `<info>` (the message's main language) gives headline and severity, every `<area>`
//! of it gives the area (polygons as a GeoJSON MultiPolygon; circles as 32-sided polygons).
//! `Update` replaces the alert its `references` name, `Cancel` withdraws it. Anything else —
//! CAP 1.0/1.1, an Atom index of alerts, a missing `<sent>` — is refused with the reason.
//!
//! Out: [`to_cap`] writes any alert as CAP 1.2 XML that validates against the schema; an
//! alert that came in as CAP is given back as received.

use super::{DecodeCtx, Decoder, MAX_PAYLOAD};
use crate::ingest::{ExternalAlert, Item};
use chrono::{DateTime, Utc};
use ioc_model::{Alert, AlertState, Domain, Severity};
use serde::{Deserialize, Serialize};

pub const CAP12_NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";

#[derive(Deserialize, Debug)]
struct CapAlert {
    #[serde(rename = "@xmlns")]
    xmlns: Option<String>,
    identifier: Option<String>,
    sender: Option<String>,
    sent: Option<String>,
    status: Option<String>,
    #[serde(rename = "msgType")]
    msg_type: Option<String>,
    scope: Option<String>,
    references: Option<String>,
    #[serde(default)]
    info: Vec<Info>,
}

#[derive(Deserialize, Debug)]
struct Info {
    #[serde(default)]
    category: Vec<String>,
    event: Option<String>,
    #[serde(rename = "responseType", default)]
    response_type: Vec<String>,
    urgency: Option<String>,
    severity: Option<String>,
    certainty: Option<String>,
    effective: Option<String>,
    onset: Option<String>,
    expires: Option<String>,
    headline: Option<String>,
    description: Option<String>,
    #[serde(default)]
    area: Vec<Area>,
}

#[derive(Deserialize, Debug)]
struct Area {
    #[serde(rename = "areaDesc")]
    area_desc: Option<String>,
    #[serde(default)]
    polygon: Vec<String>,
    #[serde(default)]
    circle: Vec<String>,
}

const STATUS: &[&str] = &["Actual", "Exercise", "System", "Test", "Draft"];
const MSG_TYPE: &[&str] = &["Alert", "Update", "Cancel", "Ack", "Error"];
const SCOPE: &[&str] = &["Public", "Restricted", "Private"];
const CATEGORY: &[&str] = &[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
];
const RESPONSE: &[&str] = &[
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None",
];
const URGENCY: &[&str] = &["Immediate", "Expected", "Future", "Past", "Unknown"];
const SEVERITY: &[&str] = &["Extreme", "Severe", "Moderate", "Minor", "Unknown"];
const CERTAINTY: &[&str] = &["Observed", "Likely", "Possible", "Unlikely", "Unknown"];

/// `YYYY-MM-DDThh:mm:ss±hh:mm`, as the schema requires (no `Z`, no fractions).
pub fn parse_cap_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.trim().as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shape = b.len() == 25
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && matches!(b[19], b'+' | b'-')
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25);
    if !shape {
        return None;
    }
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Formats a time the way CAP wants it.
pub fn cap_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn required<'a>(v: &'a Option<String>, what: &str) -> Result<&'a str, String> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("<{what}> is missing")),
    }
}

fn one_of<'a>(v: &'a Option<String>, what: &str, allowed: &[&str]) -> Result<&'a str, String> {
    let s = required(v, what)?;
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(format!(
            "<{what}> is {s:?}, not one of {}",
            allowed.join(", ")
        ))
    }
}

fn time(v: &Option<String>, what: &str) -> Result<Option<DateTime<Utc>>, String> {
    match v.as_deref() {
        None => Ok(None),
        Some(s) => parse_cap_time(s).map(Some).ok_or_else(|| {
            format!("<{what}> {s:?} is not a CAP date-time (YYYY-MM-DDThh:mm:ss±hh:mm)")
        }),
    }
}

/// `lat,lon lat,lon …` → a closed GeoJSON ring.
fn polygon(s: &str) -> Result<Vec<[f64; 2]>, String> {
    let ring: Vec<[f64; 2]> = s
        .split_whitespace()
        .map(|pair| {
            let (lat, lon) = pair
                .split_once(',')
                .ok_or_else(|| format!("polygon point {pair:?} is not lat,lon"))?;
            let (lat, lon): (f64, f64) = (
                lat.parse()
                    .map_err(|_| format!("polygon latitude {lat:?}"))?,
                lon.parse()
                    .map_err(|_| format!("polygon longitude {lon:?}"))?,
            );
            if !on_earth(lon, lat) {
                return Err(format!("polygon point {pair:?} is not on Earth"));
            }
            Ok([lon, lat])
        })
        .collect::<Result<_, String>>()?;
    if ring.len() < 4 {
        return Err(format!(
            "a polygon needs at least 4 points, this one has {}",
            ring.len()
        ));
    }
    if ring.first() != ring.last() {
        return Err("a polygon must end where it starts".into());
    }
    Ok(ring)
}

/// `lat,lon radius_km` → a 32-sided ring.
fn circle(s: &str) -> Result<Vec<[f64; 2]>, String> {
    let (center, radius) = s
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("circle {s:?} is not \"lat,lon radius\""))?;
    let (lat, lon) = center
        .split_once(',')
        .ok_or_else(|| format!("circle centre {center:?} is not lat,lon"))?;
    let (lat, lon, r): (f64, f64, f64) = (
        lat.parse()
            .map_err(|_| format!("circle latitude {lat:?}"))?,
        lon.parse()
            .map_err(|_| format!("circle longitude {lon:?}"))?,
        radius
            .trim()
            .parse()
            .map_err(|_| format!("circle radius {radius:?}"))?,
    );
    if !on_earth(lon, lat) {
        return Err(format!("circle centre {center:?} is not on Earth"));
    }
    // Half the Earth's circumference: a radius past it wraps round.
    if !(0.0..=20_000.0).contains(&r) {
        return Err(format!("circle radius {radius:?} is not 0 to 20,000 km"));
    }
    let mut ring: Vec<[f64; 2]> = (0..32)
        .map(|i| {
            let a = i as f64 / 32.0 * std::f64::consts::TAU;
            let dlat = r / 111.32 * a.sin();
            let dlon = r / (111.32 * lat.to_radians().cos().max(0.01)) * a.cos();
            // A circle past a pole or the antimeridian stays on the map: latitude stops at
            // the pole, longitude wraps round.
            let lon = (lon + dlon + 180.0).rem_euclid(360.0) - 180.0;
            [lon, (lat + dlat).clamp(-90.0, 90.0)]
        })
        .collect();
    ring.push(ring[0]);
    Ok(ring)
}

/// A WGS 84 position (a NaN or infinite coordinate is not one).
fn on_earth(lon: f64, lat: f64) -> bool {
    lon.abs() <= 180.0 && lat.abs() <= 90.0
}

fn severity(s: &str) -> Severity {
    match s {
        "Extreme" => Severity::Critical,
        "Severe" => Severity::Major,
        "Moderate" => Severity::Warning,
        _ => Severity::Info,
    }
}

fn domain(categories: &[String]) -> Domain {
    match categories.first().map(String::as_str) {
        Some("Met" | "Geo") => Domain::Water,
        Some("Env") => Domain::Environment,
        Some("Transport") => Domain::Traffic,
        Some("Health") => Domain::Health,
        Some("Safety" | "Security" | "Rescue" | "Fire" | "CBRNE") => Domain::Safety,
        Some("Infra") => Domain::Planning,
        _ => Domain::Other,
    }
}

/// The name of the document's root element.
fn root_element(xml: &str) -> Result<String, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                return Ok(String::from_utf8_lossy(e.name().as_ref()).into_owned())
            }
            Ok(Event::Eof) => return Err("not a CAP alert: the document is empty".into()),
            Ok(_) => continue,
            Err(e) => return Err(format!("not well-formed XML: {e}")),
        }
    }
}

/// Checks a CAP message and turns it into the alert it announces, updates or cancels.
pub fn decode_cap(xml: &str, source: &str) -> Result<ExternalAlert, String> {
    let root = root_element(xml)?;
    if root.rsplit(':').next() != Some("alert") {
        return Err(format!(
            "not a CAP alert: the document is <{root}>, not <alert>"
        ));
    }
    let a: CapAlert =
        quick_xml::de::from_str(xml).map_err(|e| format!("not well-formed CAP XML: {e}"))?;
    match a.xmlns.as_deref() {
        Some(CAP12_NS) => {}
        Some(ns) => {
            return Err(format!(
                "not CAP 1.2: the namespace is {ns:?}, expected {CAP12_NS:?}"
            ))
        }
        None => return Err(format!("no CAP namespace; expected xmlns=\"{CAP12_NS}\"")),
    }
    let identifier = required(&a.identifier, "identifier")?;
    if identifier.contains([' ', ',', '<', '&']) {
        return Err(format!(
            "<identifier> {identifier:?} contains a space, comma, < or &"
        ));
    }
    let sender = required(&a.sender, "sender")?;
    let sent = time(&a.sent, "sent")?.ok_or("<sent> is missing")?;
    one_of(&a.status, "status", STATUS)?;
    let msg_type = one_of(&a.msg_type, "msgType", MSG_TYPE)?;
    one_of(&a.scope, "scope", SCOPE)?;
    for (i, info) in a.info.iter().enumerate() {
        let at = |e: String| format!("<info> #{}: {e}", i + 1);
        if info.category.is_empty() {
            return Err(at("<category> is missing".into()));
        }
        for c in &info.category {
            if !CATEGORY.contains(&c.trim()) {
                return Err(at(format!(
                    "<category> {c:?} is not one of {}",
                    CATEGORY.join(", ")
                )));
            }
        }
        for r in &info.response_type {
            if !RESPONSE.contains(&r.trim()) {
                return Err(at(format!(
                    "<responseType> {r:?} is not one of {}",
                    RESPONSE.join(", ")
                )));
            }
        }
        required(&info.event, "event").map_err(at)?;
        one_of(&info.urgency, "urgency", URGENCY).map_err(at)?;
        one_of(&info.severity, "severity", SEVERITY).map_err(at)?;
        one_of(&info.certainty, "certainty", CERTAINTY).map_err(at)?;
        for (v, what) in [
            (&info.effective, "effective"),
            (&info.onset, "onset"),
            (&info.expires, "expires"),
        ] {
            time(v, what).map_err(at)?;
        }
        for area in &info.area {
            required(&area.area_desc, "areaDesc").map_err(at)?;
            for p in &area.polygon {
                polygon(p).map_err(at)?;
            }
            for c in &area.circle {
                circle(c).map_err(at)?;
            }
        }
    }

    // An Update or Cancel refers to the alert it changes: the first referenced identifier
    // (references are "sender,identifier,sent" triples) is the key.
    let key = match msg_type {
        "Update" | "Cancel" => a
            .references
            .as_deref()
            .and_then(|r| r.split_whitespace().next())
            .and_then(|t| t.split(',').nth(1))
            .unwrap_or(identifier)
            .to_string(),
        _ => identifier.to_string(),
    };
    let info = a.info.first();
    let mut rings = Vec::new();
    let mut descs = Vec::new();
    for area in info.map(|i| i.area.as_slice()).unwrap_or_default() {
        descs.extend(area.area_desc.clone());
        for p in &area.polygon {
            rings.push(polygon(p)?);
        }
        for c in &area.circle {
            rings.push(circle(c)?);
        }
    }
    let area = (!rings.is_empty()).then(|| {
        serde_json::json!({
            "type": "MultiPolygon",
            "coordinates": rings.into_iter().map(|r| vec![r]).collect::<Vec<_>>(),
        })
    });
    let headline = info
        .and_then(|i| i.headline.clone().or_else(|| i.event.clone()))
        .unwrap_or_else(|| format!("CAP {msg_type} from {sender}"));
    Ok(ExternalAlert {
        key,
        source: source.to_string(),
        category: info
            .and_then(|i| i.event.clone())
            .unwrap_or_else(|| "cap".into()),
        domain: info.map(|i| domain(&i.category)).unwrap_or(Domain::Other),
        severity: info
            .and_then(|i| i.severity.as_deref())
            .map(severity)
            .unwrap_or(Severity::Info),
        headline,
        description: info.and_then(|i| i.description.clone()),
        area_desc: (!descs.is_empty()).then(|| descs.join("; ")),
        area,
        entity: None,
        sent,
        expires: info
            .and_then(|i| i.expires.as_deref())
            .and_then(parse_cap_time),
        cancelled: msg_type == "Cancel",
        raw: Some(xml.to_string()),
    })
}

/// `decoder = "cap"`: one CAP message per payload.
#[derive(Default, Clone, Copy, Debug)]
pub struct Cap;

impl Decoder for Cap {
    fn decode(&self, payload: &[u8], ctx: &DecodeCtx<'_>) -> Result<Vec<Item>, String> {
        if payload.len() > MAX_PAYLOAD {
            return Err(format!(
                "payload of {} bytes is over the limit",
                payload.len()
            ));
        }
        let xml = std::str::from_utf8(payload)
            .map_err(|e| format!("payload is not UTF-8 (byte {}): {e}", e.valid_up_to()))?;
        Ok(vec![Item::Alert(Box::new(decode_cap(xml, ctx.source)?))])
    }
}

// ---------------------------------------------------------------------------------------
// Export

#[derive(Serialize)]
#[serde(rename = "alert")]
struct OutAlert {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    identifier: String,
    sender: String,
    sent: String,
    status: &'static str,
    #[serde(rename = "msgType")]
    msg_type: &'static str,
    scope: &'static str,
    info: OutInfo,
}

#[derive(Serialize)]
struct OutInfo {
    language: &'static str,
    category: &'static str,
    event: String,
    urgency: &'static str,
    severity: &'static str,
    certainty: &'static str,
    #[serde(rename = "senderName")]
    sender_name: String,
    headline: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    area: Vec<OutArea>,
}

#[derive(Serialize)]
struct OutArea {
    #[serde(rename = "areaDesc")]
    area_desc: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    polygon: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    circle: Vec<String>,
}

/// Who we are, in exported CAP.
pub struct Issuer<'a> {
    /// CAP `sender`, e.g. `ioc@nghean.gov.vn`.
    pub sender: &'a str,
    /// CAP `senderName`.
    pub name: &'a str,
}

fn polygons_of(g: &serde_json::Value) -> Vec<String> {
    let ring = |r: &serde_json::Value| -> Option<String> {
        let pts: Vec<String> = r
            .as_array()?
            .iter()
            .filter_map(|p| Some(format!("{},{}", p.get(1)?.as_f64()?, p.get(0)?.as_f64()?)))
            .collect();
        (pts.len() >= 4).then(|| pts.join(" "))
    };
    match g["type"].as_str() {
        Some("Polygon") => g["coordinates"].get(0).and_then(ring).into_iter().collect(),
        Some("MultiPolygon") => g["coordinates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get(0).and_then(ring))
            .collect(),
        _ => Vec::new(),
    }
}

/// An alert as CAP 1.2 XML. One that arrived as CAP (`raw`) is returned unchanged.
pub fn to_cap(
    a: &Alert,
    position: Option<(f64, f64)>,
    issuer: &Issuer<'_>,
    raw: Option<&str>,
) -> String {
    if let Some(raw) = raw {
        return raw.to_string();
    }
    let cap_severity = match a.severity {
        Severity::Critical => "Extreme",
        Severity::Major => "Severe",
        Severity::Warning => "Moderate",
        Severity::Info => "Minor",
    };
    let category = match a.domain {
        Domain::Environment => "Env",
        Domain::Water => "Met",
        Domain::Traffic => "Transport",
        Domain::Health => "Health",
        Domain::Safety => "Safety",
        Domain::Planning => "Infra",
        _ => "Other",
    };
    let polygon = a.area.as_ref().map(polygons_of).unwrap_or_default();
    let circle = match (polygon.is_empty(), position) {
        (true, Some((lon, lat))) => vec![format!("{lat},{lon} 1.0")],
        _ => Vec::new(),
    };
    let out = OutAlert {
        xmlns: CAP12_NS,
        identifier: format!("{}-{}", issuer.sender.replace(['@', ' ', ','], "."), a.id),
        sender: issuer.sender.to_string(),
        sent: cap_time(a.raised_at),
        status: "Actual",
        msg_type: if a.state.is_open() { "Alert" } else { "Cancel" },
        scope: "Public",
        info: OutInfo {
            language: "vi-VN",
            category,
            event: a.category.clone(),
            urgency: if !a.state.is_open() || !a.active {
                "Past"
            } else {
                "Immediate"
            },
            severity: cap_severity,
            certainty: "Observed",
            sender_name: issuer.name.to_string(),
            headline: a.message.clone(),
            description: Some(match &a.description {
                Some(d) => d.clone(),
                None => format!(
                    "{} — {}{}",
                    a.entity_name,
                    a.message,
                    if a.state == AlertState::New {
                        ""
                    } else {
                        " (đã tiếp nhận)"
                    }
                ),
            }),
            area: vec![OutArea {
                area_desc: a.unit_name.clone().unwrap_or_else(|| a.entity_name.clone()),
                polygon,
                circle,
            }],
        },
    };
    let body = quick_xml::se::to_string(&out).expect("plain structs serialize");
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>NA-2026-11-26-01</identifier>
  <sender>kttv@nghean.gov.vn</sender>
  <sent>2026-11-26T08:00:00+07:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Met</category>
    <event>Lũ trên sông Cả</event>
    <urgency>Expected</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <expires>2026-11-27T08:00:00+07:00</expires>
    <headline>Cảnh báo lũ báo động II trên sông Cả</headline>
    <area>
      <areaDesc>Nam Đàn, Hưng Nguyên</areaDesc>
      <polygon>18.6,105.4 18.8,105.4 18.8,105.7 18.6,105.7 18.6,105.4</polygon>
      <circle>18.67,105.68 5</circle>
    </area>
  </info>
</alert>"#;

    #[test]
    fn a_cap_alert_becomes_an_alert_with_its_area() {
        let a = decode_cap(MINIMAL, "kttv").unwrap();
        assert_eq!(a.key, "NA-2026-11-26-01");
        assert_eq!(a.severity, Severity::Major);
        assert_eq!(a.domain, Domain::Water);
        assert_eq!(a.headline, "Cảnh báo lũ báo động II trên sông Cả");
        assert_eq!(a.area_desc.as_deref(), Some("Nam Đàn, Hưng Nguyên"));
        assert_eq!(a.sent.to_rfc3339(), "2026-11-26T01:00:00+00:00");
        assert_eq!(a.expires.unwrap().to_rfc3339(), "2026-11-27T01:00:00+00:00");
        let area = a.area.unwrap();
        assert_eq!(area["type"], "MultiPolygon");
        assert_eq!(
            area["coordinates"].as_array().unwrap().len(),
            2,
            "polygon and circle"
        );
        assert_eq!(
            area["coordinates"][0][0][0],
            serde_json::json!([105.4, 18.6])
        );
        assert!(!a.cancelled);
    }

    #[test]
    fn cancel_and_update_refer_to_the_original() {
        let cancel = MINIMAL
            .replace("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>\n<references>kttv@nghean.gov.vn,NA-2026-11-26-01,2026-11-26T08:00:00+07:00</references>")
            .replace("NA-2026-11-26-01</identifier>", "NA-2026-11-26-02</identifier>");
        let a = decode_cap(&cancel, "kttv").unwrap();
        assert_eq!(a.key, "NA-2026-11-26-01");
        assert!(a.cancelled);
    }

    #[test]
    fn invalid_cap_is_refused_with_the_reason() {
        let cases = [
            (MINIMAL.replace("cap:1.2", "cap:1.1"), "not CAP 1.2"),
            (
                MINIMAL.replace("<status>Actual</status>", "<status>Real</status>"),
                "<status>",
            ),
            (MINIMAL.replace("+07:00</sent>", "Z</sent>"), "<sent>"),
            (
                MINIMAL.replace("<severity>Severe</severity>", ""),
                "<severity> is missing",
            ),
            (
                MINIMAL.replace("<category>Met</category>", "<category>Weather</category>"),
                "<category>",
            ),
            (
                MINIMAL.replace(" 18.6,105.4</polygon>", "</polygon>"),
                "end where it starts",
            ),
            (
                MINIMAL.replace("<identifier>NA-2026-11-26-01</identifier>", ""),
                "<identifier> is missing",
            ),
            (
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"/>".to_string(),
                "not a CAP alert",
            ),
            (
                "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>".to_string(),
                "not well-formed",
            ),
        ];
        for (xml, expect) in cases {
            let e = decode_cap(&xml, "t").unwrap_err();
            assert!(e.contains(expect), "expected {expect:?} in {e:?}");
        }
    }

    #[test]
    fn exported_cap_reads_back() {
        let a = decode_cap(MINIMAL, "kttv").unwrap();
        let alert = Alert {
            id: 7,
            rule: "pm25-high".into(),
            entity: Some("aq-1".into()),
            entity_name: "Quan trắc không khí Vinh".into(),
            unit: Some("16681".into()),
            unit_name: Some("Thành Vinh".into()),
            domain: Domain::Environment,
            category: "air_quality".into(),
            severity: Severity::Major,
            state: AlertState::New,
            active: true,
            message: "PM2.5 160 µg/m³ > 150 & rising <fast>".into(),
            metric: Some("pm25".into()),
            value: Some(160.0),
            raised_at: a.sent,
            updated_at: a.sent,
            cleared_at: None,
            acked_at: None,
            acked_by: None,
            count: 1,
            external_id: None,
            area: None,
            description: None,
            expires_at: None,
            assignee: None,
            shelved_until: None,
            escalation: 0,
            incident: None,
            silenced: None,
            resolved_at: None,
            events: vec![],
        };
        let issuer = Issuer {
            sender: "ioc@nghean.gov.vn",
            name: "IOC Nghệ An",
        };
        let xml = to_cap(&alert, Some((105.68, 18.67)), &issuer, None);
        let back = decode_cap(&xml, "self").unwrap();
        assert_eq!(back.headline, alert.message, "escaped and read back");
        assert_eq!(back.severity, Severity::Major);
        assert!(back.area.is_some(), "a circle around the station");
        assert_eq!(to_cap(&alert, None, &issuer, Some(MINIMAL)), MINIMAL);
    }
}
