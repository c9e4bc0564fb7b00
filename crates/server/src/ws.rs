//! `/ws`: the live feed. On connect the client gets a snapshot, or, when it passes the
//! `epoch` and `since` of what it already has and the hub still remembers that far back, only
//! what changed. Then one coalesced delta per `hub.frame_interval` at most, whenever something
//! changed, and a heartbeat after `hub.heartbeat` of silence. A slow client simply receives
//! bigger, fewer deltas: nothing queues up per client; one that takes nothing for a while
//! is cut, and resumes from its sequence number when it reconnects. Encoded messages are
//! shared between clients ([`FeedCache`]), so a client costs its socket, not a copy of the
//! city.
//!
//! Someone limited to some units gets only their units' devices and values, alerts,
//! incidents, directives and silences (through their [`ioc_engine::View`]).

use crate::auth::Caller;
use crate::extract::Query;
use crate::AppState;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use ioc_engine::auth::Principal;
use ioc_engine::hub::Catchup;
use ioc_model::ServerMsg;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
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
    ws.max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| session(st, q, c.who, socket))
}

/// Feed messages as sent, shared by every client that needs the same one: a few hundred
/// screens of the same scope at the same sequence number get one encoded delta, and clients
/// connecting within the same second one encoded snapshot (a snapshot a little behind is
/// still right: the next delta brings the client up to date). Entries live a couple of
/// seconds.
#[derive(Default)]
pub struct FeedCache {
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

type Entry = (Instant, Arc<OnceCell<(Utf8Bytes, u64)>>);

#[derive(Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Snapshot(Arc<str>),
    Delta(Arc<str>, u64),
}

/// How long a shared message is reused.
const SNAPSHOT_REUSE: Duration = Duration::from_secs(1);
const DELTA_REUSE: Duration = Duration::from_millis(500);
/// A client that has not taken a message in this long is cut; it reconnects and resumes
/// from its sequence number (nothing is skipped, nothing piles up on the server).
const SLOW_CLIENT: Duration = Duration::from_secs(10);
/// The most a client's socket may hold unsent (a snapshot of a whole province fits).
const MAX_WRITE_BUFFER: usize = 64 * 1024 * 1024;

impl FeedCache {
    /// The entry for `key`, made if missing or too old; old entries go.
    fn cell(&self, key: CacheKey, reuse: Duration) -> Arc<OnceCell<(Utf8Bytes, u64)>> {
        let now = Instant::now();
        let mut m = self.entries.lock().unwrap();
        if m.len() > 256 {
            m.retain(|_, (at, _)| now.duration_since(*at) < Duration::from_secs(2));
        }
        match m.get(&key) {
            Some((at, cell)) if now.duration_since(*at) < reuse => cell.clone(),
            _ => {
                let cell = Arc::new(OnceCell::new());
                m.insert(key, (now, cell.clone()));
                cell
            }
        }
    }
}

fn scope_key(p: &Principal) -> Arc<str> {
    let mut units = p.info.units.clone();
    units.sort();
    Arc::from(units.join(","))
}

fn encode(st: &AppState, msg: ServerMsg, p: &Principal) -> (Utf8Bytes, u64) {
    let msg = st.engine.view(p.scope()).feed(msg);
    let seq = msg.seq();
    let text = serde_json::to_string(&msg).expect("messages serialize");
    (Utf8Bytes::from(text), seq)
}

/// What a client at `since` of `epoch` needs next, encoded (shared when others need it too).
async fn next(
    st: &AppState,
    p: &Principal,
    epoch: Option<&str>,
    since: u64,
) -> Option<(Utf8Bytes, u64)> {
    let hub = st.engine.hub();
    let scope = scope_key(p);
    let current = epoch == Some(hub.epoch());
    if current && since == hub.seq() {
        return None;
    }
    let key = if current {
        CacheKey::Delta(scope, since)
    } else {
        CacheKey::Snapshot(scope)
    };
    let reuse = if current { DELTA_REUSE } else { SNAPSHOT_REUSE };
    let cell = st.feed.cell(key, reuse);
    let got = cell
        .get_or_init(|| async {
            match hub.since(epoch, since) {
                Catchup::UpToDate => (Utf8Bytes::from_static(""), since),
                Catchup::Delta(m) | Catchup::Snapshot(m) => encode(st, m, p),
            }
        })
        .await
        .clone();
    if got.0.is_empty() || (current && got.1 == since) {
        None
    } else {
        Some(got)
    }
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    text: Utf8Bytes,
) -> bool {
    match tokio::time::timeout(SLOW_CLIENT, sink.send(Message::Text(text))).await {
        Ok(r) => r.is_ok(),
        Err(_) => {
            tracing::info!("cut a feed client that took nothing for {SLOW_CLIENT:?}");
            false
        }
    }
}

async fn session(st: AppState, q: WsQuery, p: Principal, socket: WebSocket) {
    let hub = st.engine.hub().clone();
    let frame = hub.config().frame_interval;
    let heartbeat = hub.config().heartbeat.max(Duration::from_millis(100));
    let mut changes = hub.subscribe();
    let (mut sink, mut stream) = socket.split();

    let mut seq = q.since.unwrap_or(0);
    if let Some((text, s)) = next(&st, &p, q.epoch.as_deref(), seq).await {
        seq = s;
        if !send(&mut sink, text).await {
            return;
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
                if let Some((text, s)) = next(&st, &p, Some(&epoch), seq).await {
                    seq = s;
                    if !send(&mut sink, text).await {
                        break;
                    }
                    last_sent = Instant::now();
                }
            }
            _ = sleep_until(last_sent + heartbeat) => {
                let hb = ServerMsg::Heartbeat { seq, time: st.engine.clock().now() };
                let text = Utf8Bytes::from(serde_json::to_string(&hb).expect("messages serialize"));
                if !send(&mut sink, text).await {
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
