//! The HTTP polling and WebSocket sources against small servers of the test's own: paging,
//! auth headers, "since" on the next poll, errors shown and recovered from; a WebSocket feed
//! that drops and is resumed from the last message's time.

#[path = "common/store.rs"]
mod test_store;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use ioc_engine::{Config, Engine};
use ioc_model::SourceState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Seen {
    queries: Vec<HashMap<String, String>>,
    fail: bool,
}

type Shared = Arc<Mutex<Seen>>;

async fn items(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("secret") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut s = seen.lock().unwrap();
    if s.fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "database down").into_response();
    }
    s.queries.push(q.clone());
    let page: u32 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let body = if page == 1 {
        serde_json::json!({"data": [{"id": "a", "name": "Trạm A", "lng": 105.6, "lat": 18.7, "v": 1.5}],
                           "links": {"next": "/api/items?page=2"}})
    } else {
        serde_json::json!({"data": [{"id": "b", "name": "Trạm B", "lng": 105.7, "lat": 18.8, "v": 2.5}],
                           "links": {}})
    };
    Json(body).into_response()
}

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("127.0.0.1:{}", addr.port())
}

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

fn engine_config(dir: &std::path::Path, source: &str) -> Config {
    let mut c = Config::parse(source).unwrap();
    c.paths.data = Some(dir.to_owned());
    c.store.url = test_store::url_for(dir);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn http_polling_pages_since_and_errors() {
    let seen: Shared = Default::default();
    let addr = serve(
        Router::new()
            .route("/api/items", get(items))
            .with_state(seen.clone()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(engine_config(
        dir.path(),
        &format!(
            r#"
            [[source]]
            name = "province-api"
            kind = "http"
            url = "http://{addr}/api/items?page=1"
            interval = "1s"
            decoder = "json"
            headers = {{ "X-Api-Key" = "secret" }}
            since_param = "since"
            next = "/links/next"
            [source.mapping]
            items = "/data"
            id = "id"
            name = "name"
            lon = "lng"
            lat = "lat"
            kind = "AirQualityStation"
            metrics = {{ pm25 = "v" }}
            "#
        ),
    ))
    .await
    .unwrap();
    until("both pages", 10, || {
        let b = engine.hub().entity("b")?;
        (b.latest.get("pm25")?.value == 2.5).then_some(())
    })
    .await;
    assert_eq!(engine.hub().entity("a").unwrap().name, "Trạm A");
    until("a second poll with since", 10, || {
        seen.lock()
            .unwrap()
            .queries
            .iter()
            .find(|q| q.contains_key("since"))
            .map(|_| ())
    })
    .await;
    assert_eq!(engine.sources()[0].state, SourceState::Connected);

    seen.lock().unwrap().fail = true;
    let err = until("the error to show", 10, || {
        let s = engine.sources().remove(0);
        (s.state == SourceState::Error).then_some(s.last_error)
    })
    .await;
    assert!(err.unwrap().contains("500"));
    seen.lock().unwrap().fail = false;
    until("recovery", 15, || {
        (engine.sources()[0].state == SourceState::Connected).then_some(())
    })
    .await;
    engine.shutdown().await;
}

#[derive(Default)]
struct Feed {
    connects: Vec<HashMap<String, String>>,
    subscribed: Vec<String>,
}

async fn feed(
    State(f): State<Arc<Mutex<Feed>>>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> axum::response::Response {
    let n = {
        let mut f = f.lock().unwrap();
        f.connects.push(q);
        f.connects.len()
    };
    ws.on_upgrade(move |socket| talk(socket, f, n))
}

async fn talk(mut socket: WebSocket, f: Arc<Mutex<Feed>>, n: usize) {
    if let Some(Ok(Message::Text(t))) = socket.recv().await {
        f.lock().unwrap().subscribed.push(t.to_string());
    }
    let value = if n == 1 { 1.0 } else { 9.0 };
    let msg = serde_json::json!({"id": "ws-1", "type": "WaterObserved", "waterLevel": value,
        "location": {"type": "Point", "coordinates": [105.5, 18.7]}});
    let _ = socket.send(Message::Text(msg.to_string().into())).await;
    let _ = socket.send(Message::Text("not json".into())).await;
    if n == 1 {
        drop(socket); // drop the first connection
    } else {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_feed_reconnects_and_resumes() {
    let state: Arc<Mutex<Feed>> = Default::default();
    let addr = serve(
        Router::new()
            .route("/feed", get(feed))
            .with_state(state.clone()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(engine_config(
        dir.path(),
        &format!(
            r#"
            [[source]]
            name = "city-feed"
            kind = "websocket"
            url = "ws://{addr}/feed"
            subscribe = '{{"action": "subscribe"}}'
            resume_param = "since"
            "#
        ),
    ))
    .await
    .unwrap();
    until("the first value", 10, || {
        (engine.hub().entity("ws-1")?.latest.get("waterLevel")?.value == 1.0).then_some(())
    })
    .await;
    until("the value after reconnecting", 15, || {
        (engine.hub().entity("ws-1")?.latest.get("waterLevel")?.value == 9.0).then_some(())
    })
    .await;
    {
        let f = state.lock().unwrap();
        assert_eq!(f.connects.len(), 2);
        assert!(!f.connects[0].contains_key("since"));
        assert!(
            f.connects[1].contains_key("since"),
            "resumed from the last message"
        );
        assert_eq!(f.subscribed, vec!["{\"action\": \"subscribe\"}"; 2]);
    }
    until("both junk messages refused", 10, || {
        (engine.sources()[0].rejected == 2).then_some(())
    })
    .await;
    assert_eq!(engine.sources()[0].state, SourceState::Connected);
    engine.shutdown().await;
}
