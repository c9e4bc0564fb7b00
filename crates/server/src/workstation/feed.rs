//! The IOC's live feed, taken once by the workstation and relayed to each of its windows.
//!
//! One WebSocket to the IOC's `/ws`, as the person signed in here, resumed from the last
//! sequence number (so a blip costs a delta, not a snapshot). Every message is applied to
//! the workstation's [`Picture`] and passed on to the windows as it came; a window that
//! (re)connects gets the picture as one snapshot. The link is watched: the IOC's feed sends
//! at least a heartbeat every 5 s and the workstation pings every 2 s, so a connection that
//! has said nothing for 4.5 s is declared lost, the windows' banner turns offline within
//! 5 s of a cut, and the picture stays on screen.

use super::{session, Gate};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use ioc_model::ServerMsg;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Silence after which the IOC's feed is taken for lost.
const DEAD_AFTER: Duration = Duration::from_millis(4500);
/// How often the workstation pings the IOC.
const PING_EVERY: Duration = Duration::from_secs(2);
/// A window hears at least this often (a heartbeat when nothing else comes).
const WINDOW_HEARTBEAT: Duration = Duration::from_secs(5);

/// Keeps the feed from the IOC for whoever is signed in, reconnecting with back-off.
pub async fn run(g: Arc<Gate>) {
    let mut current = g.current.subscribe();
    let mut backoff = Duration::from_millis(250);
    loop {
        let who = current.borrow_and_update().clone();
        let Some(who) = who else {
            g.set_up(false, Some("chưa đăng nhập / not signed in".into()));
            if current.changed().await.is_err() {
                return;
            }
            continue;
        };
        let reason = match connect(&g, &who.token).await {
            Ok(ws) => {
                backoff = Duration::from_millis(250);
                relay(&g, ws, &mut current).await
            }
            Err(e) => e,
        };
        g.set_up(false, Some(reason));
        tokio::select! {
            _ = sleep(backoff) => {}
            r = current.changed() => if r.is_err() { return },
        }
        backoff = (backoff * 2).min(Duration::from_secs(4));
    }
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(g: &Gate, token: &str) -> Result<Upstream, String> {
    let mut url = g.upstream.join("ws").expect("a path");
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme).expect("ws schemes");
    {
        let p = g.picture.lock().unwrap();
        if !p.is_empty() {
            url.query_pairs_mut()
                .append_pair("epoch", &p.epoch)
                .append_pair("since", &p.seq.to_string());
        }
    }
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}")
            .parse()
            .map_err(|_| "a token that is not a header")?,
    );
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(256 * 1024 * 1024);
    config.max_frame_size = Some(64 * 1024 * 1024);
    match timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async_with_config(req, Some(config), false),
    )
    .await
    {
        Err(_) => Err("timed out connecting".into()),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(r)))
            if r.status() == StatusCode::UNAUTHORIZED =>
        {
            // The IOC no longer knows this session: sign in again.
            g.become_current(None);
            Err("the IOC ended the session: sign in again".into())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

/// Relays one connection until it ends; why it ended.
async fn relay(
    g: &Gate,
    ws: Upstream,
    current: &mut tokio::sync::watch::Receiver<Option<super::Signed>>,
) -> String {
    let (mut sink, mut stream) = ws.split();
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            m = stream.next() => {
                let text = match m {
                    None => return "the IOC closed the feed".into(),
                    Some(Err(e)) => return e.to_string(),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) => return "the IOC closed the feed".into(),
                    Some(Ok(_)) => { last_heard = Instant::now(); continue; }
                };
                last_heard = Instant::now();
                let msg: ServerMsg = match serde_json::from_str(text.as_str()) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!("workstation: a feed message from the IOC it cannot read: {e}");
                        continue;
                    }
                };
                let out: Arc<str> = {
                    let mut p = g.picture.lock().unwrap();
                    p.apply(&msg);
                    match msg {
                        ServerMsg::Snapshot { .. } => {
                            // Carries this workstation's link, not the IOC's.
                            p.link = Some(g.link_unlocked_hint());
                            serde_json::to_string(&p.snapshot().expect("just applied"))
                                .expect("messages serialize")
                                .into()
                        }
                        _ => Arc::from(text.as_str()),
                    }
                };
                let _ = g.news.send(out);
                if !g.link.lock().unwrap().up {
                    g.set_up(true, None);
                    g.wake.notify_one();
                } else {
                    g.link.lock().unwrap().last_sync = Some(Utc::now());
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    return format!("nothing from the IOC for {} s", DEAD_AFTER.as_secs_f32());
                }
                if timeout(Duration::from_secs(2), sink.send(Message::Ping(Bytes::new()))).await.is_err() {
                    return "the IOC takes nothing".into();
                }
            }
            r = current.changed() => {
                if r.is_err() {
                    return "closing".into();
                }
                return "another person signed in".into();
            }
        }
    }
}

impl Gate {
    /// The link for a snapshot being relayed (the feed is up: it just spoke).
    fn link_unlocked_hint(&self) -> ioc_model::UpstreamLink {
        let mut l = self.link();
        if l.state == ioc_model::LinkState::Offline {
            l.state = if l.backlog > 0 {
                ioc_model::LinkState::CatchingUp
            } else {
                ioc_model::LinkState::Connected
            };
            l.since = Utc::now();
            l.error = None;
        }
        l
    }
}

/// `/ws` of the workstation: a window's feed, from the relayed picture.
pub async fn window(State(g): State<Arc<Gate>>, req: Request) -> Response {
    let sid = session::sid(req.headers());
    let Some(who) = g.signed(sid.as_deref()) else {
        return crate::ApiError::new(StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    if !req.headers().contains_key(header::ORIGIN) {
        return crate::ApiError::new(StatusCode::FORBIDDEN, "from this site's pages only")
            .into_response();
    }
    let is_current = g
        .current
        .borrow()
        .as_ref()
        .is_some_and(|c| c.user.username == who.user.username);
    if !is_current {
        return crate::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "someone else signed in on this workstation: sign in again",
        )
        .into_response();
    }
    let (resp, on_upgrade) = match crate::ws::handshake(req) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    tokio::spawn(async move {
        if let Ok(up) = on_upgrade.await {
            serve_window(g, crate::ws::server_socket(up).await).await;
        }
    });
    resp
}

async fn serve_window(g: Arc<Gate>, socket: crate::ws::Socket) {
    let mut news = g.news.subscribe();
    let mut reset = g.reset.subscribe();
    let (mut sink, mut stream) = socket.split();
    let snapshot = |g: &Gate| -> Option<Bytes> {
        let mut p = g.picture.lock().unwrap();
        if p.is_empty() {
            return None;
        }
        p.link = Some(g.link());
        p.snapshot()
            .map(|m| Bytes::from(serde_json::to_vec(&m).expect("messages serialize")))
    };
    if let Some(s) = snapshot(&g) {
        if !crate::ws::send(&mut sink, s).await {
            return;
        }
    }
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            m = news.recv() => {
                let text = match m {
                    Ok(t) => Bytes::from(t.as_bytes().to_vec()),
                    Err(RecvError::Lagged(_)) => match snapshot(&g) {
                        Some(s) => s,
                        None => continue,
                    },
                    Err(RecvError::Closed) => break,
                };
                if !crate::ws::send(&mut sink, text).await {
                    break;
                }
                last_sent = Instant::now();
            }
            _ = tokio::time::sleep_until(last_sent + WINDOW_HEARTBEAT) => {
                let seq = g.picture.lock().unwrap().seq;
                let hb = ServerMsg::Heartbeat { seq, time: Utc::now() };
                let text = Bytes::from(serde_json::to_vec(&hb).expect("messages serialize"));
                if !crate::ws::send(&mut sink, text).await {
                    break;
                }
                last_sent = Instant::now();
            }
            _ = reset.changed() => break,
            incoming = stream.next() => {
                match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(_)) => {}
                }
            }
        }
    }
}
