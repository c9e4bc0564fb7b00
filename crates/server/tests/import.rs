//! `POST /api/import` over a real socket: a CSV is read as it arrives, its refusals of one
//! cause are one dead letter with a count and samples (not one per row), a second import of
//! the same mistake is a letter of its own, and an upload cut off halfway keeps what came
//! before it.

mod common;

use ioc_model::{DeadLetter, ImportReport};
use std::net::SocketAddr;

use common::start;

const GHOST: &str =
    "entity_id = \"ghost\"\ntime = \"time\"\nmetrics = { water_level = \"level\" }\n";
const STATION: &str =
    "entity_id = \"st-1\"\ntime = \"time\"\nmetrics = { water_level = \"level\" }\n\
                       station = { name = \"Trạm 1\", kind = \"WaterLevelGauge\" }\n";

/// Rows `from..to` of a CSV, one a minute from 2021-03-01, in pieces of 1,000 rows.
fn rows(from: usize, to: usize) -> Vec<String> {
    let start = chrono::DateTime::parse_from_rfc3339("2021-03-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let mut out = Vec::new();
    let mut piece = String::new();
    if from == 0 {
        piece.push_str("time,level\n");
    }
    for i in from..to {
        let t = start + chrono::Duration::minutes(i as i64);
        piece.push_str(&format!("{},{}\n", t.to_rfc3339(), 10 + i % 50));
        if (i + 1) % 1000 == 0 {
            out.push(std::mem::take(&mut piece));
        }
    }
    if !piece.is_empty() {
        out.push(piece);
    }
    out
}

async fn import(
    addr: SocketAddr,
    name: &str,
    mapping: &str,
    body: reqwest::Body,
) -> Result<(u16, String), reqwest::Error> {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/import"))
        .query(&[
            ("format", "csv"),
            ("source", "history"),
            ("name", name),
            ("mapping", mapping),
        ])
        .body(body)
        .send()
        .await?;
    Ok((r.status().as_u16(), r.text().await.unwrap_or_default()))
}

fn streamed(pieces: Vec<String>) -> reqwest::Body {
    reqwest::Body::wrap_stream(futures_util::stream::iter(
        pieces
            .into_iter()
            .map(Ok::<_, std::io::Error>)
            .collect::<Vec<_>>(),
    ))
}

async fn letters(addr: SocketAddr) -> Vec<DeadLetter> {
    reqwest::get(format!("http://{addr}/api/deadletters?source=history"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_of_one_mistake_is_one_dead_letter_with_its_count() {
    let (_dir, engine, addr) = start().await;
    const N: usize = 23_456;
    let (status, body) = import(addr, "ghost.csv", GHOST, streamed(rows(0, N)))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let report: ImportReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.accepted, 0);
    assert_eq!(report.refused, N);
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let r = &report.rejected[0];
    assert_eq!(r.count, N);
    assert!(
        r.reason.contains("unknown entity \"ghost\""),
        "{}",
        r.reason
    );
    assert!(
        r.samples.is_empty(),
        "one reason, not repeated: {:?}",
        r.samples
    );

    // One letter for the whole file (its rows went through the pipeline in several chunks).
    let l = letters(addr).await;
    assert_eq!(l.len(), 1, "{l:#?}");
    assert_eq!(l[0].count, N as u64);
    assert_eq!(l[0].origin.as_deref(), Some("ghost.csv"));
    assert!(l[0].samples.is_empty());
    assert!(l[0].reason.contains("unknown entity"), "{}", l[0].reason);
    assert_eq!(engine.health().observations, 0);

    // The same mistake again is another import: a letter of its own.
    let (status, _) = import(addr, "ghost.csv", GHOST, streamed(rows(0, 10)))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let l = letters(addr).await;
    assert_eq!(l.len(), 2, "{l:#?}");
    assert_eq!(l[0].count, 10);
    assert_eq!(l[1].count, N as u64);

    // Good rows and bad ones in one file: the good are kept, each cause of the bad is one
    // letter.
    let mut pieces = rows(0, 12_000);
    pieces.insert(3, "not a time,12\nnor this,13\n".into());
    pieces.push("2021-03-20T00:00:00Z,not a number\n".into());
    let (status, body) = import(addr, "st-1.csv", STATION, streamed(pieces))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let report: ImportReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.accepted, 12_001, "the station and its rows");
    assert_eq!(report.refused, 3);
    assert_eq!(
        report.rejected.iter().map(|r| r.count).collect::<Vec<_>>(),
        vec![2, 1],
        "{:#?}",
        report.rejected
    );
    assert_eq!(
        report.rejected[0].samples.len(),
        1,
        "the other line of the same cause: {:#?}",
        report.rejected
    );
    assert_eq!(engine.health().observations, 12_000);
    let l = letters(addr).await;
    let of_file: Vec<&DeadLetter> = l
        .iter()
        .filter(|d| d.origin.as_deref() == Some("st-1.csv"))
        .collect();
    assert_eq!(of_file.len(), 2, "{of_file:#?}");
    assert_eq!(of_file.iter().map(|d| d.count).sum::<u64>(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_cut_off_keeps_what_came_before() {
    let (_dir, engine, addr) = start().await;
    let mut pieces: Vec<Result<String, std::io::Error>> =
        rows(0, 20_000).into_iter().map(Ok).collect();
    pieces.push(Err(std::io::Error::other("the cable was pulled")));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));
    // The client gives up on its own side; the server must neither hang nor lose the rows
    // it had already taken.
    let _ = import(addr, "st-1.csv", STATION, body).await;
    let mut kept = 0;
    for _ in 0..100 {
        kept = engine.health().observations;
        if kept > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            if engine.health().observations == kept {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        (5_000..=20_000).contains(&kept),
        "the rows before the cut are kept: {kept}"
    );
    // And the server still takes the rest.
    let (status, body) = import(addr, "st-1.csv", STATION, streamed(rows(0, 20_000)))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(engine.health().observations, 20_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_document_over_its_limit_is_refused_and_a_csv_is_not() {
    let (_dir, _engine, addr) = start().await;
    // 70 MB of GeoJSON-ish bytes, streamed: over the 64 MiB a document is decoded whole in.
    let piece = "x".repeat(1 << 20);
    let pieces: Vec<Result<String, std::io::Error>> = (0..70).map(|_| Ok(piece.clone())).collect();
    let r = reqwest::Client::new()
        .post(format!(
            "http://{addr}/api/import?format=geojson&name=big.geojson"
        ))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert!(status == 413 || status == 422, "{status} {text}");
            assert!(text.contains("limit"), "{text}");
        }
        // The server may answer before the client has sent it all, and close.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
}
