//! The drop-folder source: files put in a folder are imported by their kind (CAP, GeoJSON,
//! NGSI-LD), moved to `imported/` once committed, or to `failed/` with the reason in the dead
//! letters; hidden files are left alone; files dropped later are picked up too.

use chrono::Utc;
use ioc_engine::{Config, Engine};
use ioc_model::{AlertState, SourceState};
use std::path::Path;
use std::time::{Duration, Instant};

async fn until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

const CAMERAS: &str = r#"{"type": "FeatureCollection", "features": [
 {"type": "Feature", "id": "cam-quang-trung", "properties": {"name": "Ngã tư Quang Trung", "type": "Camera"},
  "geometry": {"type": "Point", "coordinates": [105.6813, 18.6734]}},
 {"type": "Feature", "id": "cam-ben-thuy", "properties": {"name": "Cầu Bến Thủy", "type": "Camera"},
  "geometry": {"type": "Point", "coordinates": [105.7003, 18.6517]}}]}"#;

fn cap(id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{id}</identifier><sender>kttv@nghean.gov.vn</sender>
  <sent>{}</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>vi-VN</language><category>Met</category><event>Lũ trên sông Cả</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>
    <headline>Cảnh báo lũ sông Cả tại Nam Đàn</headline>
    <area><areaDesc>Nam Đàn</areaDesc>
      <polygon>18.65,105.45 18.65,105.55 18.75,105.55 18.75,105.45 18.65,105.45</polygon></area>
  </info>
</alert>"#,
        Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_folder_is_imported_and_tidied() {
    let data = tempfile::tempdir().unwrap();
    let drop = tempfile::tempdir().unwrap();
    let d = drop.path();
    std::fs::write(d.join("cameras.geojson"), CAMERAS).unwrap();
    std::fs::write(d.join("lu-song-ca.xml"), cap("kttv-2026-001")).unwrap();
    std::fs::write(d.join("oops.json"), b"{\"id\": \"urn:ngsi-ld:x\", ").unwrap();
    std::fs::write(d.join(".uploading.xml"), b"<alert").unwrap();

    let mut config = Config::parse(&format!(
        r#"
        [[source]]
        name = "drop"
        kind = "file"
        url = "file://{}"
        interval = "200ms"
        settle = "0s"
        "#,
        d.display()
    ))
    .unwrap();
    config.paths.data = Some(data.path().to_owned());
    let engine = Engine::start(config).await.unwrap();

    until("the cameras", 10, || engine.hub().entity("cam-ben-thuy")).await;
    let alert = until("the CAP alert", 10, || {
        engine
            .hub()
            .open_alerts()
            .into_iter()
            .find(|a| a.external_id.as_deref() == Some("kttv-2026-001"))
    })
    .await;
    assert_eq!(alert.state, AlertState::New);
    assert!(alert.area.is_some());
    until("the folder tidied", 10, || {
        (names(d) == [".uploading.xml", "failed", "imported"]).then_some(())
    })
    .await;
    let imported = names(&d.join("imported"));
    assert_eq!(imported.len(), 2, "{imported:?}");
    assert!(imported.iter().any(|n| n.ends_with("-cameras.geojson")));
    let failed = names(&d.join("failed"));
    assert!(failed[0].ends_with("-oops.json"), "{failed:?}");
    let dead = engine
        .reader()
        .dead_letters(Some("drop"), None, 10)
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].origin.as_deref(), Some("oops.json"));
    assert!(dead[0].reason.contains("not valid JSON"), "{dead:?}");

    // Dropped later: picked up on a later look.
    std::fs::write(d.join("lu-2.xml"), cap("kttv-2026-002")).unwrap();
    until("the second alert", 10, || {
        engine
            .hub()
            .open_alerts()
            .into_iter()
            .find(|a| a.external_id.as_deref() == Some("kttv-2026-002"))
    })
    .await;
    let s = engine.sources().remove(0);
    assert_eq!((s.kind.as_str(), s.state), ("file", SourceState::Connected));
    assert_eq!(s.rejected, 1);
    let open = engine.alerts(vec![AlertState::New], 10).await.unwrap();
    assert_eq!(open.len(), 2);
    engine.shutdown().await;
}
