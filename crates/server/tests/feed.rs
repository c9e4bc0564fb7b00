//! The live feed sends long messages in fragments (so no client's socket copies a whole
//! snapshot): a client still receives each as one message, whole.

mod common;

use futures_util::StreamExt;
use ioc_engine::{Config, Engine, Item, Obs};
use ioc_model::{Domain, Entity, ServerMsg};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn a_long_snapshot_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default().without_demo();
    config.paths.data = Some(dir.path().to_owned());
    let engine = Arc::new(Engine::start(config).await.unwrap());
    let mut items = Vec::new();
    for i in 0..600 {
        let id = format!("tram-{i:04}");
        items.push(Item::Entity(Box::new(
            Entity::new(
                &id,
                "AirQualityObserved",
                &format!("Trạm quan trắc số {i}"),
                Domain::Environment,
            )
            .at(105.0 + f64::from(i) / 1000.0, 18.7),
        )));
        items.push(Item::Obs(Obs {
            entity: Arc::from(id.as_str()),
            metric: Arc::from("pm25"),
            time: chrono::Utc::now() - chrono::Duration::seconds(5),
            value: f64::from(i % 90),
        }));
    }
    engine.sender().ingest("t", items).await.unwrap();
    let addr = common::serve(engine.clone()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(
        first.len() > 64 * 1024,
        "long enough to be fragmented: {}",
        first.len()
    );
    let ServerMsg::Snapshot { entities, .. } = serde_json::from_str(&first).unwrap() else {
        panic!("a snapshot first")
    };
    assert_eq!(entities.len(), 600);
    // A plain GET is not an upgrade.
    let r = reqwest::get(format!("http://{addr}/ws")).await.unwrap();
    assert_eq!(r.status().as_u16(), 426);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The feed's messages for `for_ms`, heartbeats included.
async fn messages(ws: &mut Ws, for_ms: u64) -> Vec<ServerMsg> {
    let mut got = Vec::new();
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(for_ms);
    while let Ok(Some(m)) = tokio::time::timeout_at(until, ws.next()).await {
        if let Ok(tokio_tungstenite::tungstenite::Message::Text(t)) = m {
            got.push(serde_json::from_str(&t).unwrap());
        }
    }
    got
}

/// The values a list of messages carries, and whether any device in them came with values.
fn values_in(msgs: &[ServerMsg]) -> (Vec<(String, f64)>, bool) {
    let mut values = Vec::new();
    let mut with_latest = false;
    for m in msgs {
        match m {
            ServerMsg::Values { values: v, .. } => {
                values.extend(v.iter().map(|v| (v.entity.clone(), v.value)))
            }
            ServerMsg::Delta {
                values: v,
                entities,
                ..
            } => {
                values.extend(v.iter().map(|v| (v.entity.clone(), v.value)));
                with_latest |= entities.iter().any(|e| !e.latest.is_empty());
            }
            ServerMsg::Snapshot { entities, .. } => {
                with_latest |= entities.iter().any(|e| !e.latest.is_empty());
            }
            ServerMsg::Heartbeat { .. } => {}
        }
    }
    (values, with_latest)
}

/// A screen on `values=watched` gets devices without their values, and the values of only
/// the devices it watches that are in its units: at once when it starts watching, then as
/// they change. Heartbeats bring it up to the hub's number though it was sent no delta.
#[tokio::test(flavor = "multi_thread")]
async fn a_watching_client_gets_only_the_values_it_watches() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (_dir, engine, addr) = common::start_with(|c| {
        c.hub.heartbeat = std::time::Duration::from_millis(500);
    })
    .await;
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(5);
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let tx = engine.sender();
    tx.ingest(
        "t",
        vec![
            common::gauge("wl-1", "u1"),
            common::gauge("wl-2", "u1"),
            common::gauge("wl-3", "u2"),
            common::level_at("wl-1", 1.0, at(0)),
            common::level_at("wl-2", 2.0, at(0)),
            common::level_at("wl-3", 3.0, at(0)),
        ],
    )
    .await
    .unwrap();
    common::add_user(&engine, "oc-u1", ioc_model::Role::OcStaff, &["u1"]);
    let token = common::token(addr, "oc-u1").await;
    let mut req = format!("ws://{addr}/ws?values=watched")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    let first = messages(&mut ws, 300).await;
    let Some(ServerMsg::Snapshot { entities, .. }) = first.first() else {
        panic!("a snapshot first: {first:?}")
    };
    let mut ids: Vec<&str> = entities.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["wl-1", "wl-2"], "the unit's devices");
    let (values, with_latest) = values_in(&first);
    assert!(
        values.is_empty() && !with_latest,
        "no values yet: {first:?}"
    );

    // Watching one of its devices and one of another unit.
    let watch = serde_json::to_string(&ioc_model::ClientMsg::Watch {
        entities: vec!["wl-1".into(), "wl-3".into()],
    })
    .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(watch))
        .await
        .unwrap();
    let got = messages(&mut ws, 400).await;
    assert_eq!(values_in(&got).0, [("wl-1".to_string(), 1.0)], "{got:?}");

    // New values for all three: only the watched one of its unit comes, newest only.
    tx.ingest(
        "t",
        vec![
            common::level_at("wl-1", 1.5, at(10)),
            common::level_at("wl-1", 1.7, at(20)),
            common::level_at("wl-2", 2.5, at(10)),
            common::level_at("wl-3", 3.5, at(10)),
        ],
    )
    .await
    .unwrap();
    let after_ingest = engine.hub().seq();
    let got = messages(&mut ws, 1500).await;
    let (values, with_latest) = values_in(&got);
    assert_eq!(values, [("wl-1".to_string(), 1.7)], "{got:?}");
    assert!(!with_latest, "no device with values: {got:?}");
    let heartbeat = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Heartbeat { seq, .. } => Some(*seq),
            _ => None,
        })
        .max();
    assert!(
        heartbeat.is_some_and(|s| s >= after_ingest),
        "a heartbeat at least at the hub's number {after_ingest} after the values: {got:?}"
    );
    // Watching nothing: no more values.
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"type":"watch","entities":[]}"#,
    ))
    .await
    .unwrap();
    tx.ingest("t", vec![common::level_at("wl-1", 1.9, at(30))])
        .await
        .unwrap();
    let got = messages(&mut ws, 800).await;
    assert!(values_in(&got).0.is_empty(), "{got:?}");
    engine.shutdown().await;
}
