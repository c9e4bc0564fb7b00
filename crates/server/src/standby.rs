//! A node standing by: several `ioc serve` on one PostgreSQL store, one of them holding the
//! pipeline's lease ([`ioc_engine::store::lease`]) and running the engine. The others listen
//! all the same: `/api/ready` says `503` (a load balancer sends its traffic to the active
//! node), and every other request — the API, the live feed, a camera's video — is forwarded
//! to the active node where it is decided (who may call it, for which units, idempotency),
//! so a client that reached a standby is served, not refused. Each second the standby tries
//! to take the lease; when it has it, it stops forwarding (forwarded feeds are cut and their
//! clients reconnect, to this node now) and its engine starts on the same socket.
//!
//! What the standby itself answers is only its readiness: it has no engine, no hub and no
//! accounts loaded, so it cannot decide anything on its own.

use crate::security::Hosts;
use crate::ws;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use ioc_engine::store::lease::Lease;
use ioc_engine::store::Location;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The client's address, and those of the proxies before it.
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Set on what a standby forwards: a standby refuses a request that carries it, so that a
/// node that names itself as the active one (a wrong `[server] advertise`) cannot forward in
/// a loop.
const FORWARDED_BY: HeaderName = HeaderName::from_static("x-ioc-standby");

/// How often a standby tries to take the lease (takeover within about this plus an engine
/// start after the holder goes).
const POLL: Duration = Duration::from_secs(1);

struct Standby {
    /// Where the active node answers, as it wrote it with its lease (`None`: nobody holds it,
    /// or the holder did not say).
    active: Mutex<Option<String>>,
    /// Whether the store answered the last try.
    store: Mutex<bool>,
    client: reqwest::Client,
    /// Cancelled when this node takes the lease: the forwarded feeds end with it.
    done: tokio_util::sync::CancellationToken,
}

/// Stands by on `listener` until this node takes the pipeline's lease on `at` and returns it
/// (`url`: where this node answers, written with the lease for the others to forward to).
/// `None` when `shutdown` came first.
pub async fn stand_by(
    listener: tokio::net::TcpListener,
    at: Location,
    url: String,
    hosts: &[String],
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<(Option<Lease>, tokio::net::TcpListener)> {
    let state = Arc::new(Standby {
        active: Mutex::new(None),
        store: Mutex::new(false),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(std::io::Error::other)?,
        done: tokio_util::sync::CancellationToken::new(),
    });
    let app = Router::new()
        .route("/api/ready", get(ready))
        .fallback(forward)
        .with_state(state.clone());
    let app = crate::harden(app, Arc::new(Hosts::new(hosts)));
    // The same socket for the standby's server and, afterwards, the engine's: a client
    // connecting during the handover waits in the backlog instead of being refused.
    let listener = listener.into_std()?;
    let served = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
    // Served from the first answer on (a client is never told "no active node known" only
    // because the first try is under way).
    let mut app = Some((served, app));
    let mut server = None;
    tokio::pin!(shutdown);
    let mut said: Option<String> = None;
    let lease = loop {
        let (at2, url2) = (at.clone(), url.clone());
        let tried =
            tokio::task::spawn_blocking(move || match Lease::try_take(&at2, Some(&url2))? {
                Some(lease) => Ok(Ok(lease)),
                None => Lease::holder(&at2.connect()?).map(Err),
            })
            .await
            .map_err(std::io::Error::other)?;
        let news = match tried {
            Ok(Ok(lease)) => break Some(lease),
            Ok(Err(holder)) => {
                *state.store.lock().unwrap() = true;
                let to = holder.and_then(|h| h.url);
                *state.active.lock().unwrap() = to.clone();
                match to {
                    Some(to) => format!("standing by: the active node is {to}"),
                    None => "standing by: the lease is held by a node that did not say where \
                             it answers"
                        .to_string(),
                }
            }
            Err(e) => {
                // The active node may well be fine: go on forwarding to it.
                *state.store.lock().unwrap() = false;
                format!("standing by: the store does not answer: {e}")
            }
        };
        if let Some((served, app)) = app.take() {
            let serving = axum::serve(
                served,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(state.done.clone().cancelled_owned());
            server = Some(tokio::spawn(async move { serving.await }));
        }
        if said.as_deref() != Some(news.as_str()) {
            tracing::warn!("{news}");
            said = Some(news);
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut shutdown => break None,
        }
    };
    // Forwarded feeds end here and idle connections are closed, so their clients come back
    // to this node; requests under way get a moment to finish.
    state.done.cancel();
    if let Some(mut server) = server {
        if tokio::time::timeout(Duration::from_secs(2), &mut server)
            .await
            .is_err()
        {
            server.abort();
            let _ = server.await;
        }
    }
    Ok((lease, tokio::net::TcpListener::from_std(listener)?))
}

/// `/api/ready` of a standby: up, not ready (whether its store answered).
async fn ready(State(s): State<Arc<Standby>>) -> Response {
    let store = *s.store.lock().unwrap();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(ioc_model::Readiness {
            up: true,
            ready: false,
            store,
        }),
    )
        .into_response()
}

/// Headers that belong to one hop, not to the request or answer forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::HOST
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TE
        || name == header::TRAILER
        || name == header::PROXY_AUTHORIZATION
        || name == header::PROXY_AUTHENTICATE
        || name.as_str() == "keep-alive"
}

fn unavailable(message: String) -> Response {
    let mut r = crate::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Every request but the readiness check: to the active node.
async fn forward(
    State(s): State<Arc<Standby>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    if req.headers().contains_key(FORWARDED_BY) {
        return crate::ApiError::new(
            StatusCode::LOOP_DETECTED,
            "a standby forwarded this request to another standby: check each node's \
             [server] advertise",
        )
        .into_response();
    }
    let Some(active) = s.active.lock().unwrap().clone() else {
        return unavailable(
            "this node stands by and no active node is known yet (one takes over within \
             seconds); try again"
                .into(),
        );
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    // Who asked, for the active node's log, and so that it never takes a forwarded request
    // for one from its own loopback (the admin key is taken from there only).
    let chain = match req
        .headers()
        .get(FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(before) => format!("{before}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    match HeaderValue::from_str(&chain) {
        Ok(v) => req.headers_mut().insert(FORWARDED_FOR, v),
        Err(_) => return crate::ApiError::bad_request("bad X-Forwarded-For").into_response(),
    };
    if req.headers().contains_key(header::SEC_WEBSOCKET_KEY) {
        return bridge(&active, &path, req, s.done.clone()).await;
    }
    let (parts, body) = req.into_parts();
    let mut to = s
        .client
        .request(parts.method, format!("{active}{path}"))
        .header(FORWARDED_BY, "1");
    for (k, v) in &parts.headers {
        // The Host the client named goes on: the active node checks it, names the session
        // cookie after it and builds its answers' policies from it.
        if !hop_by_hop(k) || k == header::HOST {
            to = to.header(k, v);
        }
    }
    let to = to.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    match to.send().await {
        Ok(answer) => {
            let mut r = Response::builder().status(answer.status());
            let headers = r.headers_mut().expect("a fresh builder");
            copy(answer.headers(), headers);
            r.body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|e| unavailable(e.to_string()))
        }
        Err(e) => unavailable(format!(
            "this node stands by and the active node ({active}) did not answer: {e}"
        )),
    }
}

fn copy(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        if !hop_by_hop(k) {
            to.append(k.clone(), v.clone());
        }
    }
}

/// A WebSocket (the live feed, a camera's video): connected to the active node first, so
/// that its refusal (401, 404) is the client's answer; then messages both ways until
/// either side ends.
async fn bridge(
    active: &str,
    path: &str,
    req: Request,
    done: tokio_util::sync::CancellationToken,
) -> Response {
    let ws_url = format!("ws{}{path}", active.trim_start_matches("http"));
    let mut upstream_req = match ws_url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return unavailable(format!("cannot forward to {ws_url}: {e}")),
    };
    upstream_req
        .headers_mut()
        .insert(FORWARDED_BY, HeaderValue::from_static("1"));
    for name in [
        header::HOST,
        FORWARDED_FOR,
        header::COOKIE,
        header::AUTHORIZATION,
        header::ORIGIN,
        header::USER_AGENT,
        header::ACCEPT_LANGUAGE,
    ] {
        if let Some(v) = req.headers().get(&name) {
            upstream_req.headers_mut().insert(name, v.clone());
        }
    }
    let upstream = match tokio_tungstenite::connect_async(upstream_req).await {
        Ok((socket, _)) => socket,
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => {
            let (parts, body) = answer.into_parts();
            let mut r = Response::builder().status(parts.status);
            copy(&parts.headers, r.headers_mut().expect("a fresh builder"));
            return r
                .body(Body::from(body.unwrap_or_default()))
                .unwrap_or_else(|e| unavailable(e.to_string()));
        }
        Err(e) => {
            return unavailable(format!(
                "this node stands by and the active node ({active}) did not answer: {e}"
            ))
        }
    };
    let (resp, on_upgrade) = match ws::handshake(req) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else { return };
        let client = ws::server_socket(up).await;
        let (mut to_client, mut from_client) = client.split();
        let (mut to_active, mut from_active) = upstream.split();
        let down = async {
            while let Some(Ok(m)) = from_active.next().await {
                if to_client.send(m).await.is_err() {
                    break;
                }
            }
            let _ = to_client.close().await;
        };
        let up = async {
            while let Some(Ok(m)) = from_client.next().await {
                if to_active.send(m).await.is_err() {
                    break;
                }
            }
            let _ = to_active.close().await;
        };
        // Either side ending ends both, as does this node taking the lease: the client
        // reconnects and resumes.
        tokio::select! {
            _ = down => {}
            _ = up => {}
            _ = done.cancelled() => {}
        }
    });
    resp
}
