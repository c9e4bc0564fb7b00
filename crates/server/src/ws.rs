//! `/ws`: the live feed. On connect the client gets a snapshot, or, when it passes the
//! `epoch` and `since` of what it already has and the hub still remembers that far back, only
//! what changed. Then one coalesced delta per `hub.frame_interval` at most, whenever something
//! changed, and a heartbeat after `hub.heartbeat` of silence. A slow client simply receives
//! bigger, fewer deltas: nothing queues up per client.
//!
//! Someone limited to some units gets only their units' devices and values, alerts,
//! incidents, directives and silences (through their [`ioc_engine::View`]).

use crate::auth::Caller;
use crate::extract::Query;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use ioc_engine::auth::Principal;
use ioc_engine::hub::Catchup;
use ioc_model::ServerMsg;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

#[derive(Deserialize, Default, JsonSchema)]
pub struct WsQuery {
    epoch: Option<String>,
    since: Option<u64>,
}

pub async fn upgrade(
    State(st): State<AppState>,
    c: Caller,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| session(st, q, c.who, socket))
}

/// Keeps only what is in the person's units.
fn scoped(st: &AppState, msg: ServerMsg, p: &Principal) -> ServerMsg {
    st.engine.view(p.scope()).feed(msg)
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    msg: &ServerMsg,
) -> bool {
    let text = serde_json::to_string(msg).expect("messages serialize");
    sink.send(Message::Text(text.into())).await.is_ok()
}

async fn session(st: AppState, q: WsQuery, p: Principal, socket: WebSocket) {
    let hub = st.engine.hub().clone();
    let frame = hub.config().frame_interval;
    let heartbeat = hub.config().heartbeat.max(Duration::from_millis(100));
    let mut changes = hub.subscribe();
    let (mut sink, mut stream) = socket.split();

    let mut seq = q.since.unwrap_or(0);
    match hub.since(q.epoch.as_deref(), seq) {
        Catchup::UpToDate => {}
        Catchup::Delta(m) | Catchup::Snapshot(m) => {
            seq = m.seq();
            if !send(&mut sink, &scoped(&st, m, &p)).await {
                return;
            }
        }
    }
    let epoch = hub.epoch().to_string();
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break; // engine gone
                }
                // Coalesce: wait out the frame interval, then send everything at once.
                sleep_until(last_sent + frame).await;
                match hub.since(Some(&epoch), seq) {
                    Catchup::UpToDate => continue,
                    Catchup::Delta(m) | Catchup::Snapshot(m) => {
                        seq = m.seq();
                        if !send(&mut sink, &scoped(&st, m, &p)).await {
                            break;
                        }
                        last_sent = Instant::now();
                    }
                }
            }
            _ = sleep_until(last_sent + heartbeat) => {
                let hb = ServerMsg::Heartbeat { seq, time: st.engine.clock().now() };
                if !send(&mut sink, &hb).await {
                    break;
                }
                last_sent = Instant::now();
            }
            incoming = stream.next() => {
                match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(_)) => {} // pings are answered by the library; nothing else is expected
                }
            }
        }
    }
}
