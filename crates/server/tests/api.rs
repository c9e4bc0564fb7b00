//! The HTTP API and the WebSocket feed over real sockets: a client that reconnects with its
//! last sequence number gets only what it missed.

mod common;
#[path = "../../engine/tests/common/missing.rs"]
mod missing;

use futures_util::StreamExt;
use ioc_engine::{Config, Engine, Item, Obs};
use ioc_model::{Domain, Entity, ServerMsg};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn start() -> (tempfile::TempDir, Arc<Engine>, SocketAddr) {
    common::start_with(|config| {
        config.hub.frame_interval = Duration::from_millis(20);
        config.hub.heartbeat = Duration::from_millis(300);
    })
    .await
}

fn gauge(id: &str) -> Item {
    let e = Entity::new(
        id,
        "WaterLevelGauge",
        &format!("Thủy văn {id}"),
        Domain::Water,
    )
    .at(105.5, 18.7)
    .with_attr("alarm_1", 3.0)
    .with_attr("alarm_2", 4.0)
    .with_attr("alarm_3", 5.0);
    Item::Entity(Box::new(e))
}

fn level(id: &str, secs: i64, v: f64) -> Item {
    Item::Obs(Obs {
        entity: Arc::from(id),
        metric: Arc::from("water_level"),
        time: chrono::Utc::now() - chrono::Duration::seconds(100 - secs),
        value: v,
    })
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(addr: SocketAddr, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .json(&serde_json::json!({"comment": "on it"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Next data message (heartbeats skipped).
async fn next(ws: &mut Ws) -> ServerMsg {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            let m: ServerMsg = serde_json::from_str(&t).unwrap();
            if !matches!(m, ServerMsg::Heartbeat { .. }) {
                return m;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_api_answers_and_acknowledges() {
    let (_dir, engine, addr) = start().await;
    let tx = engine.sender();
    tx.ingest(
        "t",
        vec![
            gauge("wl-1"),
            gauge("wl-2"),
            level("wl-2", 0, 3.2),
            level("wl-1", 0, 4.2),
        ],
    )
    .await
    .unwrap();

    let (s, health) = get(addr, "/api/health").await;
    assert_eq!(s, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["entities"], 2);

    let (_, entities) = get(addr, "/api/entities").await;
    let e = &entities[0];
    assert_eq!(e["id"], "wl-1");
    assert_eq!(e["type"], "WaterLevelGauge");
    assert_eq!(e["status"], "online");
    assert_eq!(e["latest"]["water_level"]["value"], 4.2);
    assert!(e["lon"].is_number() && e["lat"].is_number());

    let (_, open) = get(addr, "/api/alerts?state=open").await;
    let open = open.as_array().unwrap();
    assert_eq!(open.len(), 2, "alarm I on wl-2, alarm II on wl-1: {open:?}");
    let id = open[0]["id"].as_i64().unwrap();
    assert_eq!(open[0]["severity"], "major", "most severe first");
    assert_eq!(open[0]["entity"], "wl-1");
    assert_eq!(open[1]["severity"], "warning");

    let (s, acked) = post(addr, &format!("/api/alerts/{id}/ack")).await;
    assert_eq!(s, 200);
    assert_eq!(acked["state"], "acknowledged");
    let (s, err) = post(addr, &format!("/api/alerts/{id}/ack")).await;
    assert_eq!(s, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("acknowledged"));
    let (s, _) = post(addr, "/api/alerts/999999/ack").await;
    assert_eq!(s, 404);

    let (s, one) = get(addr, &format!("/api/alerts/{id}")).await;
    assert_eq!(s, 200);
    let events = one["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["actor"], "operator");
    assert_eq!(events[1]["comment"], "on it");

    let (s, _) = get(addr, "/api/alerts?state=bogus").await;
    assert_eq!(s, 400);
    let (_, all) = get(addr, "/api/alerts?state=all").await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    let (s, series) = get(addr, "/api/entities/wl-1/series?metric=water_level").await;
    assert_eq!(s, 200);
    assert_eq!(series["points"][0]["last"], 4.2);
    let (s, _) = get(addr, "/api/entities/wl-1/series?metric=nothing").await;
    assert_eq!(s, 404);
    let (s, body) = get(addr, "/api/nothing-here").await;
    assert_eq!(s, 404);
    assert!(body["error"].is_string());
    let (_, basemap) = get(addr, "/api/basemap").await;
    assert_eq!(basemap["kind"], "none");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_snapshot_deltas_and_catch_up_after_reconnect() {
    let (_dir, engine, addr) = start().await;
    let tx = engine.sender();
    tx.ingest(
        "t",
        vec![gauge("wl-1"), gauge("wl-2"), level("wl-1", 0, 1.0)],
    )
    .await
    .unwrap();

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let ServerMsg::Snapshot {
        epoch,
        seq,
        entities,
        ..
    } = next(&mut ws).await
    else {
        panic!("a snapshot first")
    };
    assert_eq!(entities.len(), 2);
    assert_eq!(entities[0].latest["water_level"].value, 1.0);

    tx.ingest("t", vec![level("wl-1", 1, 1.5)]).await.unwrap();
    let ServerMsg::Delta {
        from,
        seq: seq2,
        values,
        ..
    } = next(&mut ws).await
    else {
        panic!("a delta")
    };
    assert_eq!(from, seq + 1);
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].value, 1.5);
    drop(ws);

    // While disconnected: three values for wl-1, one for wl-2, an alert.
    tx.ingest(
        "t",
        vec![
            level("wl-1", 2, 2.0),
            level("wl-2", 2, 0.5),
            level("wl-1", 3, 2.5),
            level("wl-1", 4, 3.5),
        ],
    )
    .await
    .unwrap();

    let url = format!("ws://{addr}/ws?epoch={epoch}&since={seq2}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let ServerMsg::Delta {
        from,
        values,
        alerts,
        entities,
        ..
    } = next(&mut ws).await
    else {
        panic!("a delta, not a snapshot, after reconnecting")
    };
    assert_eq!(from, seq2 + 1, "starts right after what the client had");
    // wl-2 came online meanwhile, so it comes whole (with its latest values); wl-1 as a value.
    let mut got: Vec<(String, f64)> = values
        .iter()
        .map(|v| (v.entity.clone(), v.value))
        .chain(
            entities
                .iter()
                .map(|e| (e.id.clone(), e.latest["water_level"].value)),
        )
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![("wl-1".into(), 3.5), ("wl-2".into(), 0.5)],
        "coalesced"
    );
    assert_eq!(alerts.len(), 1, "the alert raised meanwhile");

    // A client from another run of the server (or too far behind) gets a snapshot.
    let (mut ws2, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?epoch=old&since=5"))
            .await
            .unwrap();
    assert!(matches!(next(&mut ws2).await, ServerMsg::Snapshot { .. }));

    // A quiet feed sends heartbeats.
    let hb = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                if t.contains("\"heartbeat\"") {
                    return;
                }
            }
        }
    })
    .await;
    assert!(hb.is_ok(), "a heartbeat while nothing changes");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_are_added_checked_kept_and_removed_from_the_admin_screen() {
    let (dir, engine, addr) = start().await;
    let client = reqwest::Client::new();
    let put = |body: &'static str| {
        let client = client.clone();
        async move {
            let r = client
                .post(format!("http://{addr}/api/sources"))
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, err) = put("name = \"x\"\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1\"\ntopics = [\"a/#\"]\nqos = \"one\"\n").await;
    assert_eq!(s, 400);
    assert!(err["error"].as_str().unwrap().contains("qos"), "{err}");
    let (s, err) = put("kind = \"mqtt\"").await;
    assert_eq!(s, 400, "{err}");

    let (s, status) = put("name = \"field-broker\"\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1\"\ntopics = [\"a/#\"]\n").await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(status["managed"], true);
    assert_eq!(status["kind"], "mqtt");
    let (_, list) = get(addr, "/api/sources").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    engine.shutdown().await;
    drop(engine);

    // Kept across a restart.
    let mut config = Config::default().without_demo();
    config.paths.data = Some(dir.path().to_owned());
    let engine = Arc::new(Engine::start(config).await.unwrap());
    let names: Vec<String> = engine.sources().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["field-broker"]);
    engine.delete_source("field-broker", "test").await.unwrap();
    assert!(engine.sources().is_empty());
    assert!(engine.delete_source("field-broker", "test").await.is_err());
    engine.shutdown().await;
}

/// The province's boundary tiles reach the map at a screen's detail (far fewer vertices, the
/// same communes), gzip-compressed as stored; the deepest zoom's tiles, which the map
/// enlarges, exactly as stored.
#[tokio::test(flavor = "multi_thread")]
async fn basemap_tiles_are_served_at_a_screens_detail() {
    let Some(geo) = missing::shared_data("geo") else {
        return missing::missing("../shared/data/geo not found: the real Nghệ An basemap");
    };
    let (_dir, engine, addr) = start().await;
    let archive = geo.join("nghe-an-boundaries.pmtiles");
    ioc_engine::basemap::import(engine.data_dir(), &archive)
        .await
        .unwrap();
    let reader = pmtiles::AsyncPmTilesReader::new_with_path(&archive)
        .await
        .unwrap();
    let max = reader.get_header().max_zoom;
    assert_eq!(max, 13);
    let gunzip = |b: &[u8]| {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let mut seen = 0;
    for (z, x, y) in [(5u8, 25u32, 14u32), (7, 101, 57), (13, 6500, 3663)] {
        let stored = reader
            .get_tile(pmtiles::TileCoord::new(z, x, y).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{z}/{x}/{y} is in the archive"));
        let r = client
            .get(format!("http://{addr}/api/basemap/tiles/{z}/{x}/{y}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-encoding"], "gzip");
        let served = r.bytes().await.unwrap();
        let (before, after) = (gunzip(&stored), gunzip(&served));
        use ioc_engine::basemap::simplify::vertices;
        if z == max {
            assert_eq!(&served[..], &stored[..], "{z}/{x}/{y} as stored");
        } else {
            let (b, a) = (vertices(&before).unwrap(), vertices(&after).unwrap());
            assert!(a > 0 && a * 3 < b, "{z}/{x}/{y}: {b} -> {a} vertices");
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
    engine.shutdown().await;
}
