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
