//! Cameras: their streams' state, their credentials (write-only) and the live video itself,
//! sent to a screen over one WebSocket per camera as fragmented MP4 (see
//! [`ioc_model::camera`] for the messages).

use crate::auth::Caller;
use crate::extract::{Id, Key, Path, Query};
use crate::reply::{Created, Download};
use crate::ws::handshake;
use crate::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use ioc_engine::video::feed::{Frame, Init, Packet};
use ioc_model::camera::{live_header, LiveKind};
use ioc_model::{CameraCredentials, CameraStream, ClipInfo, ClipRequest};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Every camera stream the caller may see.
pub async fn list(State(st): State<AppState>, c: Caller) -> Json<Vec<CameraStream>> {
    let view = c.view(&st);
    Json(
        st.engine
            .video()
            .streams()
            .into_iter()
            .filter_map(|mut s| {
                s.unit = view.entity(&s.camera).ok()?.unit;
                Some(s)
            })
            .collect(),
    )
}

/// One camera's stream.
pub async fn one(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
) -> ApiResult<CameraStream> {
    let unit = c.view(&st).entity(&id)?.unit;
    st.engine
        .video()
        .stream_now(st.engine.hub(), &id)
        .map(|s| Json(CameraStream { unit, ..s }))
        .ok_or_else(|| ApiError::not_found(format!("{id:?} has no video stream (no rtsp_url)")))
}

/// Sets a camera's credentials (an empty password removes them); they are never shown again.
/// Answers the camera's stream as it is now, or `null` for a camera without a live stream (a
/// still or ONVIF address only).
pub async fn credentials(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
    Json(body): Json<CameraCredentials>,
) -> ApiResult<Option<CameraStream>> {
    let unit = c.view(&st).entity(&id)?.unit;
    let s = st
        .engine
        .set_camera_credentials(&id, body, &c.actor())
        .await?;
    Ok(Json(s.map(|s| CameraStream { unit, ..s })))
}

/// A camera's recent still, as served.
pub struct StillImage(ioc_engine::video::snapshot::Still);

impl IntoResponse for StillImage {
    fn into_response(self) -> Response {
        let s = self.0;
        let mut r = s.bytes.into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(s.mime));
        // A screen shows it and asks again later; nobody else keeps it.
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        // What a camera sent (or what was drawn) may run nothing and load nothing, even
        // when opened on its own.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
        );
        if let Ok(v) = HeaderValue::from_str(&s.taken.to_rfc3339()) {
            h.insert(HeaderName::from_static("x-still-taken"), v);
        }
        if s.simulated {
            h.insert(
                HeaderName::from_static("x-still-simulated"),
                HeaderValue::from_static("true"),
            );
        }
        if let Some(why) = s.stale {
            // Header values are ASCII: the reason is for the log and the tests; the UI shows
            // the still's age.
            let ascii: String = why
                .chars()
                .filter(|c| c.is_ascii() && !c.is_control())
                .collect();
            if let Ok(v) = HeaderValue::from_str(&ascii) {
                h.insert(HeaderName::from_static("x-still-stale"), v);
            }
        }
        r
    }
}

impl aide::OperationOutput for StillImage {
    type Inner = ();
    fn inferred_responses(
        _ctx: &mut aide::generate::GenContext,
        _op: &mut aide::openapi::Operation,
    ) -> Vec<(Option<u16>, aide::openapi::Response)> {
        vec![(
            Some(200),
            aide::openapi::Response {
                description: "a JPEG or PNG still from the camera (an SVG drawing for a \
                              simulated camera); X-Still-Taken says when"
                    .into(),
                ..Default::default()
            },
        )]
    }
}

/// A camera's recent still: asked of the camera at most once per `[video] snapshot_every`,
/// whoever asks; 404 when it has no `snapshot_url`, 502 when the camera did not give one.
pub async fn snapshot(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
) -> Result<StillImage, ApiError> {
    c.view(&st).entity(&id)?;
    Ok(StillImage(st.engine.camera_still(&id).await?))
}

/// A viewer that cannot take a frame in this long is cut (it reconnects and starts again
/// at a key frame); nothing piles up for it on the server.
const SLOW_VIEWER: Duration = Duration::from_secs(5);

/// The live video of one camera (WebSocket): its state as text, then an init segment and
/// the frames from the last key frame on, as binary messages.
pub async fn live(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
    req: Request,
) -> Result<crate::ws::Switching, ApiError> {
    c.view(&st).entity(&id)?;
    let feed = st
        .engine
        .video()
        .feed_now(st.engine.hub(), &id)
        .ok_or_else(|| ApiError::not_found(format!("{id:?} has no video stream (no rtsp_url)")))?;
    let (resp, on_upgrade) = handshake(req)?;
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else { return };
        let mut config = WebSocketConfig::default();
        config.read_buffer_size = 4 * 1024;
        config.write_buffer_size = 0;
        config.max_write_buffer_size = 16 * 1024 * 1024;
        config.max_message_size = Some(64 * 1024);
        let socket = WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(up),
            Role::Server,
            Some(config),
        )
        .await;
        if let Err(e) = watch(feed, socket).await {
            tracing::debug!("a camera viewer left: {e}");
        }
    });
    Ok(crate::ws::Switching(resp))
}

fn init_msg(i: &Init) -> Message {
    let mut b = Vec::with_capacity(i.segment.len() + 9);
    b.extend_from_slice(&live_header(LiveKind::Init, None));
    b.extend_from_slice(&i.segment);
    Message::Binary(b.into())
}

fn frame_msg(f: &Frame) -> Message {
    let mut b = Vec::with_capacity(f.segment.len() + 9);
    b.extend_from_slice(&live_header(LiveKind::Media, f.captured_ms));
    b.extend_from_slice(&f.segment);
    Message::Binary(b.into())
}

fn state_msg(s: &CameraStream) -> Message {
    Message::Text(serde_json::to_string(s).expect("serializes").into())
}

async fn watch<S>(
    feed: Arc<ioc_engine::video::feed::Feed>,
    mut socket: WebSocketStream<S>,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let w = feed.watch();
    let mut rx = w.rx;
    let send = async |socket: &mut WebSocketStream<S>, m: Message| -> Result<(), String> {
        match tokio::time::timeout(SLOW_VIEWER, socket.send(m)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("too slow".into()),
        }
    };
    send(&mut socket, state_msg(&w.status)).await?;
    // Frames are sent only after an init, from a key frame.
    let mut waiting_key = true;
    let mut has_init = false;
    if let Some(i) = &w.init {
        send(&mut socket, init_msg(i)).await?;
        has_init = true;
        for f in w.frames.iter().filter(|f| Arc::ptr_eq(&f.init, i)) {
            if waiting_key && !f.key {
                continue;
            }
            waiting_key = false;
            send(&mut socket, frame_msg(f)).await?;
        }
    }
    loop {
        tokio::select! {
            p = rx.recv() => match p {
                Ok(Packet::Init(i)) => {
                    send(&mut socket, init_msg(&i)).await?;
                    has_init = true;
                    waiting_key = true;
                }
                Ok(Packet::Frame(f)) => {
                    if !has_init || (waiting_key && !f.key) {
                        continue;
                    }
                    waiting_key = false;
                    send(&mut socket, frame_msg(&f)).await?;
                }
                Ok(Packet::State(s)) => send(&mut socket, state_msg(&s)).await?,
                // Fell behind: skip to the next key frame rather than hold anything back.
                Err(RecvError::Lagged(_)) => waiting_key = true,
                Err(RecvError::Closed) => return Ok(()),
            },
            m = socket.next() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Saves an evidence clip of the camera around a moment (default: now, `[video] clip_before`
/// before and `clip_after` after), for an alert or an incident the caller may work on.
/// Answers at once with the clip `recording`; it is saved when the time after has passed.
pub async fn save_clip(
    State(st): State<AppState>,
    c: Caller,
    Path(Key { id }): Path<Key>,
    Json(req): Json<ClipRequest>,
) -> Result<Created<ClipInfo>, ApiError> {
    let view = c.view(&st);
    view.entity(&id)?;
    if let Some(a) = req.alert {
        view.alert(a).await?;
    }
    if let Some(i) = req.incident {
        view.incident(i).await?;
    }
    Ok(Created(
        st.engine.save_clip(&id, req, c.who.as_actor()).await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
pub struct ClipsQuery {
    /// Only the clips of this alert.
    alert: Option<i64>,
    /// Only the clips of this incident (and of its alerts).
    incident: Option<i64>,
    /// Only the clips of this camera.
    camera: Option<String>,
    limit: Option<usize>,
}

/// Evidence clips within the caller's units, newest first.
pub async fn clips(
    State(st): State<AppState>,
    c: Caller,
    Query(q): Query<ClipsQuery>,
) -> ApiResult<Vec<ClipInfo>> {
    use ioc_engine::store::ClipFilter;
    let view = c.view(&st);
    let limit = Some(q.limit.unwrap_or(200).min(1000));
    let mut v = view.clips(ClipFilter {
        alert: q.alert,
        incident: q.incident,
        camera: q.camera.clone(),
        limit,
        ..Default::default()
    })?;
    // An incident's clips include those saved for its alerts before it was opened.
    if let (Some(i), None) = (q.incident, q.alert) {
        for a in view.incident(i).await?.alerts {
            v.extend(view.clips(ClipFilter {
                alert: Some(a),
                camera: q.camera.clone(),
                limit,
                ..Default::default()
            })?);
        }
        v.sort_by_key(|c| std::cmp::Reverse(c.id));
        v.dedup_by_key(|c| c.id);
    }
    Ok(Json(v))
}

/// One evidence clip's record.
pub async fn clip(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> ApiResult<ClipInfo> {
    Ok(Json(c.view(&st).clip(id)?))
}

/// A saved clip's MP4 file, always as a download (never shown inline).
pub async fn clip_file(
    State(st): State<AppState>,
    c: Caller,
    Path(Id { id }): Path<Id>,
) -> Result<Download, ApiError> {
    let (info, bytes) = c.view(&st).clip_file(id).await?;
    Ok(Download {
        name: info.file_name,
        content_type: "video/mp4".into(),
        bytes,
    })
}
