//! The store on both of its databases: the same batches written through the writer, the same
//! questions asked through the reader, the same answers from SQLite (the embedded default)
//! and PostgreSQL (the provincial IOC past one machine; a cluster of the test's own).

use ioc_engine::clock::SystemClock;
use ioc_engine::store::{
    self, DeadLetterRow, EntityRow, Location, ObsRow, Reader, StoreConfig, WriteBatch, Writer,
};
use ioc_model::{Domain, Entity, Unit};
use std::sync::Arc;

/// Today's midnight (UTC): readings of a year ago would be gone, as retention wants.
fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| chrono::Utc::now().timestamp_millis().div_euclid(86_400_000) * 86_400_000)
}

/// What one store answered, to compare the two.
#[derive(Debug, PartialEq)]
struct Answers {
    outcomes: Vec<(usize, usize)>,
    entities: Vec<(i64, String, Option<f64>)>,
    series: Vec<(i64, i64, String)>,
    latest: Vec<(i64, (i64, f64))>,
    raw: Vec<(i64, f64)>,
    minutes: Vec<(i64, u64, f64, f64, f64, f64)>,
    hours: Vec<(i64, u64, f64, f64)>,
    dead_letters: Vec<(String, String, usize, u64)>,
    found_by_text: usize,
    observations: u64,
}

fn entity(id: &str, lon: f64) -> Entity {
    Entity::new(id, "AirQualityStation", id, Domain::Environment).at(lon, 18.67)
}

fn obs(series: i64, ts: i64, value: f64) -> ObsRow {
    ObsRow {
        series,
        ts,
        value,
        restates: false,
    }
}

async fn exercise(at: Location) -> Answers {
    let t0 = t0();
    let clock = Arc::new(SystemClock);
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let writer = Writer::spawn(&at, &StoreConfig::default(), clock, tz, None).unwrap();
    let mut outcomes = Vec::new();
    let mut first = WriteBatch {
        units: vec![Unit {
            code: "40".into(),
            name: "Nghệ An".into(),
            full_name: Some("Tỉnh Nghệ An".into()),
            parent: None,
            lon: Some(105.0),
            lat: Some(19.2),
        }],
        entities: vec![
            EntityRow {
                id: 1,
                entity: entity("vinh-aq-1", 105.69),
                source: Some("mqtt".into()),
                updated_at: t0,
            },
            EntityRow {
                id: 2,
                entity: entity("cua-lo-aq-1", 105.72),
                source: None,
                updated_at: t0,
            },
        ],
        series: vec![(1, 1, "pm25".into()), (2, 2, "pm25".into())],
        ..Default::default()
    };
    // The last hour of a day, a reading every 10 minutes (the next day is another partition).
    for k in 0..6 {
        first
            .observations
            .push(obs(1, t0 - 3_600_000 + k * 600_000, 10.0 + k as f64));
    }
    first.observations.push(obs(2, t0, 55.5));
    first.dead_letters.push(DeadLetterRow::new(
        "mqtt",
        t0,
        Some("ioc/vinh/aq"),
        "unknown entity vinh-aq-9",
        Some(b"{\"entity\":\"vinh-aq-9\",\"PM25\":12}"),
    ));
    let o = writer.write(first).await.unwrap();
    outcomes.push((o.inserted, o.duplicates));

    // A reading of a time already stored (the first is kept), two of the next day, and an
    // entity moved.
    let second = WriteBatch {
        entities: vec![EntityRow {
            id: 2,
            entity: entity("cua-lo-aq-1", 105.75),
            source: None,
            updated_at: t0 + 1,
        }],
        observations: vec![
            obs(1, t0 - 600_000, 99.0),
            obs(1, t0, 16.0),
            obs(1, t0 + 60_000, 40.0),
        ],
        ..Default::default()
    };
    let o = writer.write(second).await.unwrap();
    outcomes.push((o.inserted, o.duplicates));
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();

    let reader = Reader::new(&at);
    tokio::task::spawn_blocking(move || {
        let state = reader.load_state(t0).unwrap();
        let mut latest: Vec<_> = state.latest.into_iter().collect();
        latest.sort_by_key(|(id, _)| *id);
        let minutes = reader
            .series("vinh-aq-1", "pm25", t0 - 3_600_000, t0 + 3_600_000, 1800)
            .unwrap()
            .expect("a known series")
            .into_iter()
            .map(|p| (p.t.timestamp_millis(), p.count, p.min, p.max, p.avg, p.last))
            .collect();
        let hours = reader
            .series("vinh-aq-1", "pm25", t0 - 3_600_000, t0 + 3_600_000, 3600)
            .unwrap()
            .expect("a known series")
            .into_iter()
            .map(|p| (p.t.timestamp_millis(), p.count, p.min, p.max))
            .collect();
        Answers {
            outcomes,
            entities: state
                .entities
                .iter()
                .map(|(id, e)| (*id, e.id.clone(), e.lon))
                .collect(),
            series: state.series,
            latest,
            raw: reader
                .raw("vinh-aq-1", "pm25", t0 - 600_000, t0 + 600_000, 10)
                .unwrap(),
            minutes,
            hours,
            dead_letters: reader
                .dead_letters(Some("mqtt"), None, 10)
                .unwrap()
                .into_iter()
                .map(|d| (d.source, d.reason, d.size, d.count))
                .collect(),
            found_by_text: reader
                .dead_letters(None, Some("VINH-AQ-9\",\"pm25"), 10)
                .unwrap()
                .len(),
            observations: reader.count_observations().unwrap(),
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_same_batches_give_the_same_answers_on_sqlite_and_postgresql() {
    let t0 = t0();
    let dir = tempfile::tempdir().unwrap();
    let path = store::open(dir.path()).unwrap();

    let on_sqlite = exercise(Location::Sqlite(path)).await;

    // What either store must answer.
    assert_eq!(on_sqlite.outcomes, vec![(7, 0), (2, 1)]);
    assert_eq!(
        on_sqlite.entities,
        vec![
            (1, "vinh-aq-1".into(), Some(105.69)),
            (2, "cua-lo-aq-1".into(), Some(105.75))
        ]
    );
    assert_eq!(
        on_sqlite.latest,
        vec![(1, (t0 + 60_000, 40.0)), (2, (t0, 55.5))]
    );
    assert_eq!(
        on_sqlite.raw,
        vec![(t0 - 600_000, 15.0), (t0, 16.0), (t0 + 60_000, 40.0)]
    );
    // Half hours: 10..12, 13..15, then 16 and 40 after midnight.
    assert_eq!(on_sqlite.minutes.len(), 3);
    assert_eq!(on_sqlite.minutes[2], (t0, 2, 16.0, 40.0, 28.0, 40.0));
    assert_eq!(
        on_sqlite.hours,
        vec![(t0 - 3_600_000, 6, 10.0, 15.0), (t0, 2, 16.0, 40.0)]
    );
    assert_eq!(on_sqlite.dead_letters.len(), 1);
    assert_eq!(on_sqlite.found_by_text, 1, "found whatever the case");
    assert_eq!(on_sqlite.observations, 9);

    let Some(url) = store::testing::database("stores_same_answers") else {
        return;
    };
    let at = Location::postgres(&url).unwrap();
    let opened = at.clone();
    tokio::task::spawn_blocking(move || store::open_postgres(&opened))
        .await
        .unwrap()
        .unwrap();
    let on_postgres = exercise(at).await;
    assert_eq!(on_postgres, on_sqlite);
}

#[test]
fn a_postgres_url_with_a_password_is_refused() {
    let err = Location::postgres("postgres://ioc:secret@127.0.0.1:5432/ioc").unwrap_err();
    assert!(err.to_string().contains("PGPASSWORD"), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(Location::postgres("postgres://ioc@127.0.0.1:5432/").is_err());
    assert!(Location::postgres("mysql://ioc@127.0.0.1/ioc").is_err());
    assert!(Location::postgres("postgres://ioc@127.0.0.1:5432/ioc").is_ok());
}
