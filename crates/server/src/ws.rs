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
//!
//! A client on `?values=watched` (the console) gets devices without their values and names
//! the few whose values it shows ([`ClientMsg::Watch`]); those come as [`ServerMsg::Values`],
//! read from the hub's current state each frame and compared with what this client was last
//! sent (so a watched device costs a lookup per frame, not a walk of the change log).

use crate::auth::Caller;
use crate::extract::Query;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use ioc_engine::auth::Principal;
use ioc_engine::hub::Catchup;
use ioc_model::{ClientMsg, FeedValues, ServerMsg, ValueUpdate, MAX_WATCHED};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub(crate) type Socket = WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;
use tokio::time::{sleep_until, Instant};

#[derive(Deserialize, Default, JsonSchema)]
pub struct WsQuery {
    epoch: Option<String>,
    since: Option<u64>,
    /// `all` (the default) or `watched`: only the values of the devices the client watches.
    #[serde(default)]
    values: FeedValues,
}

/// `101 Switching Protocols`, in the API's description.
pub struct Switching(pub(crate) Response);

impl IntoResponse for Switching {
    fn into_response(self) -> Response {
        self.0
    }
}

impl aide::OperationOutput for Switching {
    type Inner = ();
    fn inferred_responses(
        _: &mut aide::generate::GenContext,
        _: &mut aide::openapi::Operation,
    ) -> Vec<(Option<u16>, aide::openapi::Response)> {
        vec![(
            Some(101),
            aide::openapi::Response {
                description: "switched to a WebSocket".into(),
                ..Default::default()
            },
        )]
    }
}

/// The upgrade to a WebSocket, done here rather than by axum's extractor so that the feed
/// can send long messages in fragments: the library copies every frame into a per-client
/// buffer that keeps its largest size, so whole snapshots would cost each client a
/// snapshot's worth of memory for as long as it stays.
pub async fn upgrade(
    State(st): State<AppState>,
    c: Caller,
    Query(q): Query<WsQuery>,
    req: Request,
) -> Result<Switching, crate::ApiError> {
    let (resp, on_upgrade) = handshake(req)?;
    let who = c.who;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => session(st, q, who, server_socket(up).await).await,
            Err(e) => tracing::debug!("a feed upgrade failed: {e}"),
        }
    });
    Ok(Switching(resp))
}

/// Checks a WebSocket upgrade request and makes its `101` answer; the socket comes when the
/// returned upgrade resolves (after the answer is sent).
pub(crate) fn handshake(
    req: Request,
) -> Result<(Response, hyper::upgrade::OnUpgrade), crate::ApiError> {
    let h = req.headers();
    let has = |name: header::HeaderName, want: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
        })
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return Err(crate::ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "the feed is a WebSocket (Connection: upgrade, Upgrade: websocket)",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return Err(crate::ApiError::bad_request(
            "Sec-WebSocket-Version: 13 only",
        ));
    }
    let accept = h
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| tokio_tungstenite::tungstenite::handshake::derive_accept_key(k.as_bytes()))
        .ok_or_else(|| crate::ApiError::bad_request("no Sec-WebSocket-Key"))?;
    let on_upgrade = hyper::upgrade::on(req);
    let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let hs = r.headers_mut();
    hs.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    hs.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    hs.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64"),
    );
    Ok((r, on_upgrade))
}

/// The server side of an upgraded connection, set up for a feed.
pub(crate) async fn server_socket(up: hyper::upgrade::Upgraded) -> Socket {
    let mut config = WebSocketConfig::default();
    // Clients send nothing but pings; frames go out as they are made.
    config.read_buffer_size = 4 * 1024;
    config.write_buffer_size = 0;
    config.max_write_buffer_size = MAX_WRITE_BUFFER;
    config.max_message_size = Some(64 * 1024);
    WebSocketStream::from_raw_socket(hyper_util::rt::TokioIo::new(up), Role::Server, Some(config))
        .await
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

type Entry = (Instant, Arc<OnceCell<(Bytes, u64)>>);

#[derive(Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Snapshot(Arc<str>, FeedValues),
    Delta(Arc<str>, FeedValues, u64),
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
    fn cell(&self, key: CacheKey, reuse: Duration) -> Arc<OnceCell<(Bytes, u64)>> {
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

/// The message as this client takes it, encoded; no bytes for a delta left empty (one
/// that only carried values, for a client that does not take them).
fn encode(st: &AppState, msg: ServerMsg, p: &Principal, values: FeedValues) -> (Bytes, u64) {
    let mut msg = st.engine.view(p.scope()).feed(msg);
    let seq = msg.seq();
    if values == FeedValues::Watched && without_values(&mut msg) {
        return (Bytes::new(), seq);
    }
    let text = serde_json::to_vec(&msg).expect("messages serialize");
    (Bytes::from(text), seq)
}

/// Takes the values out of a snapshot or delta; whether what is left is an empty delta.
fn without_values(msg: &mut ServerMsg) -> bool {
    match msg {
        ServerMsg::Snapshot { entities, .. } => {
            for e in entities {
                e.latest.clear();
            }
            false
        }
        ServerMsg::Delta {
            entities,
            values,
            alerts,
            incidents,
            directives,
            silences,
            kpis,
            link,
            ..
        } => {
            values.clear();
            for e in entities.iter_mut() {
                e.latest.clear();
            }
            entities.is_empty()
                && alerts.is_empty()
                && incidents.is_empty()
                && directives.is_empty()
                && silences.is_empty()
                && kpis.is_empty()
                && link.is_none()
        }
        ServerMsg::Heartbeat { .. } | ServerMsg::Values { .. } => false,
    }
}

/// What a client at `since` of `epoch` needs next, encoded (shared when others need it too),
/// and the number it is at after it; no bytes when there is nothing to send up to there.
async fn next(
    st: &AppState,
    p: &Principal,
    epoch: Option<&str>,
    since: u64,
    values: FeedValues,
) -> Option<(Bytes, u64)> {
    let hub = st.engine.hub();
    let scope = scope_key(p);
    let current = epoch == Some(hub.epoch());
    if current && since == hub.seq() {
        return None;
    }
    let key = if current {
        CacheKey::Delta(scope, values, since)
    } else {
        CacheKey::Snapshot(scope, values)
    };
    let reuse = if current { DELTA_REUSE } else { SNAPSHOT_REUSE };
    let cell = st.feed.cell(key, reuse);
    let got = cell
        .get_or_init(|| async {
            match hub.since_with(epoch, since, values == FeedValues::Watched) {
                Catchup::UpToDate => (Bytes::new(), since),
                Catchup::Delta(m) | Catchup::Snapshot(m) => encode(st, m, p, values),
                Catchup::LeanSnapshot(s) => {
                    let view = st.engine.view(p.scope());
                    let lean = ioc_engine::hub::LeanSnapshot {
                        msg: view.feed(s.msg),
                        entities: s.entities,
                    };
                    let scope = view.scope();
                    let seq = lean.msg.seq();
                    (Bytes::from(lean.encode(|u| scope.allows(u))), seq)
                }
            }
        })
        .await
        .clone();
    if current && got.1 == since {
        None
    } else {
        Some(got)
    }
}

/// The devices a `values=watched` client watches, and the time of each value it was sent.
#[derive(Default)]
struct Watched {
    sent: HashMap<String, HashMap<String, chrono::DateTime<chrono::Utc>>>,
}

impl Watched {
    /// Takes a client's message; `false` if it is not one.
    fn take(&mut self, text: &str) -> bool {
        match serde_json::from_str::<ClientMsg>(text) {
            Ok(ClientMsg::Watch { entities }) => {
                let mut sent = HashMap::new();
                for id in entities.into_iter().take(MAX_WATCHED) {
                    let had = self.sent.remove(&id).unwrap_or_default();
                    sent.insert(id, had);
                }
                self.sent = sent;
                true
            }
            Err(_) => false,
        }
    }

    /// The watched devices' values this client has not been sent yet, within its units, as
    /// a message for a client at `seq`.
    fn news(&mut self, st: &AppState, p: &Principal, seq: u64) -> Option<Bytes> {
        if self.sent.is_empty() {
            return None;
        }
        let scope = p.scope();
        let mut values = Vec::new();
        let sent = &mut self.sent;
        st.engine
            .hub()
            .with_entities(sent.keys().map(String::as_str).collect::<Vec<_>>(), |e| {
                if !scope.allows(e.unit.as_deref()) {
                    return;
                }
                let Some(had) = sent.get(&e.id) else { return };
                for (m, r) in &e.latest {
                    if had.get(m) != Some(&r.time) {
                        values.push(ValueUpdate {
                            entity: e.id.clone(),
                            metric: m.clone(),
                            time: r.time,
                            value: r.value,
                        });
                    }
                }
            });
        if values.is_empty() {
            return None;
        }
        for v in &values {
            if let Some(had) = sent.get_mut(&v.entity) {
                had.insert(v.metric.clone(), v.time);
            }
        }
        let m = ServerMsg::Values {
            seq,
            time: st.engine.clock().now(),
            values,
        };
        Some(Bytes::from(
            serde_json::to_vec(&m).expect("messages serialize"),
        ))
    }
}

/// The largest frame a message is sent in; longer messages go in fragments (the browser
/// puts them together), so a client's socket never copies more than this at once.
const FRAGMENT: usize = 16 * 1024;

/// Sends one text message (in fragments when long); `false` when the client is gone or
/// took nothing for [`SLOW_CLIENT`].
pub(crate) async fn send(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    text: Bytes,
) -> bool {
    let sent = async {
        if text.len() <= FRAGMENT {
            let frame = Frame::message(text, OpCode::Data(Data::Text), true);
            return sink.send(Message::Frame(frame)).await;
        }
        let mut start = 0;
        while start < text.len() {
            let end = (start + FRAGMENT).min(text.len());
            let op = if start == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            let frame = Frame::message(text.slice(start..end), op, end == text.len());
            sink.send(Message::Frame(frame)).await?;
            start = end;
        }
        Ok(())
    };
    match tokio::time::timeout(SLOW_CLIENT, sent).await {
        Ok(r) => r.is_ok(),
        Err(_) => {
            tracing::info!("cut a feed client that took nothing for {SLOW_CLIENT:?}");
            false
        }
    }
}

async fn session(st: AppState, q: WsQuery, p: Principal, socket: Socket) {
    let hub = st.engine.hub().clone();
    let frame = hub.config().frame_interval;
    let heartbeat = hub.config().heartbeat.max(Duration::from_millis(100));
    let mut changes = hub.subscribe();
    let (mut sink, mut stream) = socket.split();
    let values = q.values;
    let mut watched = Watched::default();

    let mut seq = q.since.unwrap_or(0);
    if let Some((text, s)) = next(&st, &p, q.epoch.as_deref(), seq, values).await {
        seq = s;
        if !text.is_empty() && !send(&mut sink, text).await {
            return;
        }
    }
    let epoch = hub.epoch().to_string();
    let mut last_sent = Instant::now();
    let mut last_frame = Instant::now();
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break; // engine gone
                }
                // Coalesce: wait out the frame interval, then send everything at once.
                sleep_until(last_frame + frame).await;
                last_frame = Instant::now();
                if let Some((text, s)) = next(&st, &p, Some(&epoch), seq, values).await {
                    seq = s;
                    if !text.is_empty() {
                        if !send(&mut sink, text).await {
                            break;
                        }
                        last_sent = Instant::now();
                    }
                }
                if let Some(text) = watched.news(&st, &p, seq) {
                    if !send(&mut sink, text).await {
                        break;
                    }
                    last_sent = Instant::now();
                }
            }
            _ = sleep_until(last_sent + heartbeat) => {
                let hb = ServerMsg::Heartbeat { seq, time: st.engine.clock().now() };
                let text = Bytes::from(serde_json::to_vec(&hb).expect("messages serialize"));
                if !send(&mut sink, text).await {
                    break;
                }
                last_sent = Instant::now();
            }
            incoming = stream.next() => {
                match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(t))) if values == FeedValues::Watched => {
                        if !watched.take(t.as_str()) {
                            tracing::debug!("a feed client sent a message that is not one");
                            continue;
                        }
                        // A device just watched: its values at once.
                        if let Some(text) = watched.news(&st, &p, seq) {
                            if !send(&mut sink, text).await {
                                break;
                            }
                            last_sent = Instant::now();
                        }
                    }
                    Some(Ok(_)) => {} // pings are answered by the library
                }
            }
        }
    }
}
