//! The CAP files of `../shared/data/cap`: CAP 1.2 messages import, the rest is refused with
//! the reason; CAP we export validates against the official CAP 1.2 schema (checked with
//! `xmllint`, from Debian's libxml2-utils).

#[path = "common/missing.rs"]
mod missing;

use ioc_engine::decode::cap::{decode_cap, to_cap, Issuer};
use ioc_model::{Alert, AlertState, Domain, Severity};
use missing::{missing, run_tool, shared_data};
use std::process::Command;

#[test]
fn cap_12_files_import_and_others_are_refused() {
    let Some(dir) = shared_data("cap") else {
        return missing("../shared/data/cap not found: the CAP files to import");
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    let (mut imported, mut refused) = (Vec::new(), Vec::new());
    for n in &names {
        let xml = std::fs::read_to_string(dir.join(n)).unwrap();
        match decode_cap(&xml, "files") {
            Ok(a) => imported.push((n.clone(), a)),
            Err(e) => refused.push((n.clone(), e)),
        }
    }
    for (n, e) in &refused {
        println!("refused {n}: {e}");
    }
    let imported_names: Vec<&str> = imported.iter().map(|(n, _)| n.as_str()).collect();
    for n in &names {
        let cap12 = n.starts_with("v1dot2") || n.starts_with("ipaws-") || n.starts_with("google-");
        assert_eq!(imported_names.contains(&n.as_str()), cap12, "{n}");
    }
    // CAP 1.0 and 1.1 (the spec's older examples, the NWS message) are refused as such.
    for (n, e) in &refused {
        assert!(e.contains("not CAP 1.2"), "{n}: {e}");
    }
    // The spec's examples: the homeland security advisory has a polygon-less area, the
    // earthquake one a circle, the thunderstorm one a polygon.
    let with_area = imported.iter().filter(|(_, a)| a.area.is_some()).count();
    assert!(with_area >= 3, "{with_area} with areas");
    let (_, cancel) = imported
        .iter()
        .find(|(n, _)| n.starts_with("google-"))
        .unwrap();
    assert_eq!(
        cancel.key, "PAAQ-1-mg5a94",
        "an Update keys on the alert it updates"
    );
    println!(
        "CAP files: {} imported, {} refused",
        imported.len(),
        refused.len()
    );
}

fn alert(id: i64, severity: Severity, area: Option<serde_json::Value>) -> Alert {
    let t = "2026-11-26T01:00:00Z".parse().unwrap();
    Alert {
        id,
        rule: "water-alarm-2".into(),
        entity: Some("wl-17935".into()),
        entity_name: "Thủy văn Nam Đàn (sông Cả)".into(),
        unit: Some("17935".into()),
        unit_name: Some("Nam Đàn".into()),
        domain: Domain::Water,
        category: "flood".into(),
        severity,
        state: AlertState::Acknowledged,
        active: true,
        message: "Mực nước 3.81 m vượt báo động II <sông Cả> & \"lũ\"".into(),
        metric: Some("water_level".into()),
        value: Some(3.81),
        raised_at: t,
        updated_at: t,
        cleared_at: None,
        acked_at: None,
        acked_by: None,
        count: 1,
        external_id: None,
        area,
        description: None,
        expires_at: None,
        assignee: None,
        shelved_until: None,
        escalation: 0,
        incident: None,
        silenced: None,
        resolved_at: None,
        events: vec![],
    }
}

#[test]
fn exported_cap_validates_against_the_cap_12_schema() {
    let Some(xsd) = shared_data("cap/schema/cap12.xsd") else {
        return missing("../shared/data/cap/schema/cap12.xsd not found: the CAP 1.2 schema");
    };
    let tmp = tempfile::tempdir().unwrap();
    let issuer = Issuer {
        sender: "ioc@nghean.gov.vn",
        name: "Trung tâm Điều hành thông minh Nghệ An",
    };
    let polygon = serde_json::json!({"type": "Polygon", "coordinates": [[[105.4, 18.6], [105.7, 18.6], [105.7, 18.8], [105.4, 18.6]]]});
    let cases = [
        alert(1, Severity::Critical, None),
        alert(2, Severity::Info, Some(polygon)),
    ];
    for a in &cases {
        let xml = to_cap(a, Some((105.5, 18.7)), &issuer, None);
        let f = tmp.path().join(format!("alert-{}.xml", a.id));
        std::fs::write(&f, &xml).unwrap();
        let Some(out) = run_tool(
            Command::new("xmllint")
                .arg("--noout")
                .arg("--schema")
                .arg(&xsd)
                .arg(&f),
            "Debian package libxml2-utils",
        ) else {
            return;
        };
        assert!(
            out.status.success(),
            "{}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And it reads back as what it said.
        let back = decode_cap(&xml, "self").unwrap();
        assert_eq!(back.headline, a.message);
    }
}
