//! Backup while the engine runs, restore into a new folder, compare: every table and every
//! file the same; a damaged backup or a folder that holds something is refused without
//! writing anything.

use ioc_engine::backup::{self, BackupError};
use ioc_engine::{Config, Engine, Item, Obs};
use ioc_model::{Domain, Entity};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;

fn gauge(id: &str, n: usize) -> Vec<Item> {
    let e = Entity::new(
        id,
        "WaterLevelGauge",
        &format!("Thủy văn {id}"),
        Domain::Water,
    )
    .at(105.5, 18.7)
    .in_unit("16681", "Vinh")
    .with_attr("alarm_1", 3.0);
    let mut items = vec![Item::Entity(Box::new(e))];
    let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
    items.extend((0..n).map(|i| {
        Item::Obs(Obs {
            entity: Arc::from(id),
            metric: Arc::from("water_level"),
            time: t0 + chrono::Duration::seconds(i as i64 * 10),
            value: 2.0 + i as f64 / 100.0,
        })
    }));
    items
}

/// Every table's rows, each table's sorted, by name.
fn tables(db: &Path) -> Vec<(String, Vec<String>)> {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    names
        .into_iter()
        .map(|t| {
            let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
            let n = st.column_count();
            let mut rows: Vec<String> = st
                .query_map([], |r| {
                    let row: Vec<rusqlite::types::Value> =
                        (0..n).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                    Ok(format!("{row:?}"))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            (t, rows)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_running_restores_into_a_new_folder_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = Config::default().without_demo();
    config.paths.data = Some(data.clone());
    let engine = Engine::start(config).await.unwrap();
    for id in ["wl-a", "wl-b", "wl-c"] {
        engine
            .sender()
            .ingest("test", gauge(id, 200))
            .await
            .unwrap();
    }
    // Files beside the database: a report and an evidence clip.
    std::fs::create_dir_all(data.join("reports")).unwrap();
    std::fs::write(data.join("reports/bao-cao.pdf"), b"%PDF-1.7 a report").unwrap();
    std::fs::create_dir_all(data.join("clips/2026")).unwrap();
    std::fs::write(data.join("clips/2026/7.mp4"), vec![7u8; 100_000]).unwrap();
    // The commits are still in the WAL: a copy of ioc.db alone would miss them.
    let wal = std::fs::metadata(data.join("ioc.db-wal")).unwrap().len();
    assert!(wal > 0, "the test needs commits in the WAL");

    let file = dir.path().join("ioc.backup");
    let made = backup::backup(&data, &file).unwrap();
    assert!(file.is_file() && !dir.path().join("ioc.backup.partial").exists());
    assert!(made.files >= 4, "{made:?}");
    assert_eq!(made.schema_version, ioc_engine::store::SCHEMA_VERSION);

    let restored = dir.path().join("restored");
    let back = backup::restore(&file, &restored).unwrap();
    assert_eq!(back.files, made.files);
    let (a, b) = (
        tables(&data.join("ioc.db")),
        tables(&restored.join("ioc.db")),
    );
    let observations = a
        .iter()
        .find(|(t, _)| t == "observations")
        .map(|(_, r)| r.len());
    assert_eq!(
        observations,
        Some(600),
        "the source holds what was ingested"
    );
    assert!(a.len() > 10, "{} tables", a.len());
    let names = |v: &[(String, Vec<String>)]| v.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "the same tables");
    for ((t, ra), (_, rb)) in a.iter().zip(&b) {
        assert!(
            ra == rb,
            "{t}: {} rows backed up, {} restored, or rows that differ",
            ra.len(),
            rb.len()
        );
    }
    for f in ["reports/bao-cao.pdf", "clips/2026/7.mp4"] {
        assert_eq!(
            std::fs::read(data.join(f)).unwrap(),
            std::fs::read(restored.join(f)).unwrap(),
            "{f}"
        );
    }
    let rules: Vec<_> = std::fs::read_dir(data.join("rules")).unwrap().collect();
    assert!(!rules.is_empty());
    for r in rules {
        let name = r.unwrap().file_name();
        assert_eq!(
            std::fs::read(data.join("rules").join(&name)).unwrap(),
            std::fs::read(restored.join("rules").join(&name)).unwrap()
        );
    }
    // What belongs to the running engine stays behind.
    assert!(!restored.join("engine.lock").exists());
    engine.shutdown().await;

    // The restored folder runs.
    let mut config = Config::default().without_demo();
    config.paths.data = Some(restored.clone());
    let again = Engine::start(config).await.unwrap();
    let ids: Vec<String> = again.hub().entities().into_iter().map(|e| e.id).collect();
    for id in ["wl-a", "wl-b", "wl-c"] {
        assert!(ids.iter().any(|i| i == id), "{id} in {ids:?}");
    }
    again.shutdown().await;

    // Never over a folder that holds something.
    let err = backup::restore(&file, &restored).unwrap_err();
    assert!(matches!(err, BackupError::NotEmpty(_)), "{err}");
    assert!(err.to_string().contains("new folder"), "{err}");
}

#[test]
fn a_damaged_backup_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ioc_engine::store::open(&data).unwrap();
    std::fs::write(data.join("notes.txt"), "x".repeat(50_000)).unwrap();
    let file = dir.path().join("b");
    backup::backup(&data, &file).unwrap();

    // Cut short: no manifest at the end.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let target = dir.path().join("t");
    let err = backup::restore(&cut, &target).unwrap_err();
    assert!(matches!(err, BackupError::Invalid { .. }), "{err}");
    assert!(!target.exists());

    // Not a backup at all.
    std::fs::write(&cut, b"hello").unwrap();
    let err = backup::restore(&cut, &target).unwrap_err();
    assert!(matches!(err, BackupError::Invalid { .. }), "{err}");
    assert!(!target.exists());
    // No staging folder left behind either.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ioc-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Nothing to back up.
    let err = backup::backup(&dir.path().join("empty"), &dir.path().join("x")).unwrap_err();
    assert!(matches!(err, BackupError::NoDatabase(_)), "{err}");
}

/// A file whose bytes are not what the manifest says (a tampered or rotted archive, its
/// gzip and tar intact) is refused.
#[test]
fn a_file_that_differs_from_the_manifest_is_refused() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ioc_engine::store::open(&data).unwrap();
    std::fs::write(data.join("notes.txt"), "original").unwrap();
    let file = dir.path().join("b");
    backup::backup(&data, &file).unwrap();
    // Rewrite the archive with notes.txt changed and the manifest kept.
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&file).unwrap(),
    ));
    let forged = dir.path().join("forged");
    let mut out = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&forged).unwrap(),
        flate2::Compression::fast(),
    ));
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().into_owned();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        if name == Path::new("notes.txt") {
            body = b"forged!!".to_vec();
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o600);
        out.append_data(&mut h, &name, body.as_slice()).unwrap();
    }
    out.into_inner().unwrap().finish().unwrap().flush().unwrap();
    let target = dir.path().join("t");
    let err = backup::restore(&forged, &target).unwrap_err();
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert!(!target.exists());
}
