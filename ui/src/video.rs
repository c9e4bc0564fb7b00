//! Live camera video: one WebSocket per camera (`/api/cameras/{id}/live`), its fragmented MP4
//! appended to a Media Source Extensions buffer behind a `<video>`. Plays in Chromium and in
//! the desktop window (WebKitGTK, through GStreamer).
//!
//! Kept at the live edge: the engine sends each frame as it arrives, and the player skips
//! ahead whenever more than a second piles up (a tab in the background, a slow machine), and
//! drops what it has shown. A dropped connection is opened again after two seconds, and
//! the picture starts afresh from the camera's last key frame.

use crate::format::now_ms;
use ioc_model::camera::{parse_live, LiveKind};
use ioc_model::CameraStream;
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, HtmlVideoElement, MediaSource, MessageEvent, SourceBuffer, WebSocket};

/// More than this behind the newest frame, the player jumps ahead.
const MAX_BEHIND_S: f64 = 1.0;
/// Frames waiting to be appended beyond this: start again from a key frame.
const MAX_QUEUE: usize = 300;

/// What a screen shows about the stream besides the picture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shown {
    pub state: Option<CameraStream>,
    /// Frames appended since the player opened.
    pub frames: u32,
    /// Camera to this page, the last frame (ms).
    pub latency_ms: Option<f64>,
    /// The browser cannot play the camera's codec.
    pub unplayable: Option<String>,
}

struct Player {
    camera: String,
    video: HtmlVideoElement,
    ws: Option<WebSocket>,
    ms: Option<MediaSource>,
    sb: Option<SourceBuffer>,
    url: Option<String>,
    mime: Option<String>,
    queue: VecDeque<Vec<u8>>,
    shown: RwSignal<Shown>,
    closed: bool,
    /// Kept alive as long as the player.
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

type Shared = Rc<RefCell<Player>>;

fn ws_url(camera: &str) -> String {
    let loc = web_sys::window().expect("window").location();
    let proto = if loc.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    // The session cookie goes with the upgrade.
    format!(
        "{proto}://{}/api/cameras/{}/live",
        loc.host().unwrap_or_default(),
        crate::api::enc(camera)
    )
}

fn keep(p: &Shared, f: impl FnMut(JsValue) + 'static) -> js_sys::Function {
    let c = Closure::<dyn FnMut(JsValue)>::new(f);
    let func: js_sys::Function = c.as_ref().unchecked_ref::<js_sys::Function>().clone();
    p.borrow_mut().handlers.push(c);
    func
}

fn connect(p: &Shared) {
    let camera = p.borrow().camera.clone();
    let Ok(ws) = WebSocket::new(&ws_url(&camera)) else {
        retry(p);
        return;
    };
    ws.set_binary_type(BinaryType::Arraybuffer);
    let weak = Rc::downgrade(p);
    let on_message = keep(p, move |e: JsValue| {
        let (Some(p), Ok(e)) = (weak.upgrade(), e.dyn_into::<MessageEvent>()) else {
            return;
        };
        let data = e.data();
        if let Some(text) = data.as_string() {
            if let Ok(s) = serde_json::from_str::<CameraStream>(&text) {
                let shown = p.borrow().shown;
                shown.update(|v| v.state = Some(s));
            }
        } else if let Ok(buf) = data.dyn_into::<js_sys::ArrayBuffer>() {
            on_binary(&p, js_sys::Uint8Array::new(&buf).to_vec());
        }
    });
    let weak = Rc::downgrade(p);
    let on_close = keep(p, move |_| {
        if let Some(p) = weak.upgrade() {
            if !p.borrow().closed {
                retry(&p);
            }
        }
    });
    ws.set_onmessage(Some(&on_message));
    ws.set_onclose(Some(&on_close));
    p.borrow_mut().ws = Some(ws);
}

fn retry(p: &Shared) {
    {
        let mut pl = p.borrow_mut();
        if let Some(ws) = pl.ws.take() {
            ws.set_onclose(None);
            ws.set_onmessage(None);
            let _ = ws.close();
        }
        // The next connection starts with an init segment: begin again from it.
        pl.mime = None;
    }
    let weak = Rc::downgrade(p);
    set_timeout(
        move || {
            if let Some(p) = weak.upgrade() {
                if !p.borrow().closed {
                    connect(&p);
                }
            }
        },
        Duration::from_secs(2),
    );
}

fn on_binary(p: &Shared, msg: Vec<u8>) {
    let Some((kind, captured, mp4)) = parse_live(&msg) else {
        return;
    };
    match kind {
        LiveKind::Init => {
            let Some(mime) = p.borrow().shown.get_untracked().state.and_then(|s| s.mime) else {
                return;
            };
            if p.borrow().mime.as_deref() != Some(mime.as_str()) {
                reset(p, &mime);
            }
            p.borrow_mut().queue.push_back(mp4.to_vec());
        }
        LiveKind::Media => {
            let mut pl = p.borrow_mut();
            if pl.mime.is_none() {
                return;
            }
            if pl.queue.len() > MAX_QUEUE {
                drop(pl);
                retry(p);
                return;
            }
            pl.queue.push_back(mp4.to_vec());
            let shown = pl.shown;
            drop(pl);
            shown.update(|s| {
                s.frames += 1;
                s.latency_ms = captured.map(|c| now_ms() - c as f64);
            });
        }
    }
    pump(p);
}

/// A new MediaSource for `mime` (the first init, or a camera that changed codec).
fn reset(p: &Shared, mime: &str) {
    let shown = p.borrow().shown;
    if !MediaSource::is_type_supported(mime) {
        shown.update(|s| s.unplayable = Some(mime.to_string()));
        p.borrow_mut().mime = None;
        return;
    }
    shown.update(|s| s.unplayable = None);
    let Ok(ms) = MediaSource::new() else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_source(&ms) else {
        return;
    };
    {
        let mut pl = p.borrow_mut();
        if let Some(old) = pl.url.take() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        pl.sb = None;
        pl.queue.clear();
        pl.mime = Some(mime.to_string());
        pl.video.set_src(&url);
        pl.url = Some(url);
        pl.ms = Some(ms.clone());
    }
    let weak = Rc::downgrade(p);
    let mime = mime.to_string();
    let on_open = keep(p, move |_| {
        let Some(p) = weak.upgrade() else { return };
        let Some(ms) = p.borrow().ms.clone() else {
            return;
        };
        let Ok(sb) = ms.add_source_buffer(&mime) else {
            let shown = p.borrow().shown;
            shown.update(|s| s.unplayable = Some(mime.clone()));
            return;
        };
        sb.set_mode(web_sys::SourceBufferAppendMode::Segments);
        let weak = Rc::downgrade(&p);
        let on_done = keep(&p, move |_| {
            if let Some(p) = weak.upgrade() {
                after_append(&p);
                pump(&p);
            }
        });
        let _ = sb.add_event_listener_with_callback("updateend", &on_done);
        p.borrow_mut().sb = Some(sb);
        pump(&p);
    });
    let _ = ms.add_event_listener_with_callback("sourceopen", &on_open);
}

fn pump(p: &Shared) {
    let mut pl = p.borrow_mut();
    let Some(sb) = pl.sb.clone() else { return };
    if sb.updating() {
        return;
    }
    let Some(next) = pl.queue.pop_front() else {
        return;
    };
    drop(pl);
    let arr = js_sys::Uint8Array::from(next.as_slice());
    if sb.append_buffer_with_array_buffer_view(&arr).is_err() {
        // The buffer is full or broken: start again from the next connection's key frame.
        retry(p);
    }
}

/// Keeps the picture at the live edge and the buffer small.
fn after_append(p: &Shared) {
    let pl = p.borrow();
    let (Some(sb), video) = (pl.sb.clone(), pl.video.clone()) else {
        return;
    };
    drop(pl);
    let Ok(ranges) = sb.buffered() else { return };
    let n = ranges.length();
    if n == 0 {
        return;
    }
    let (Ok(start), Ok(end)) = (ranges.start(0), ranges.end(n - 1)) else {
        return;
    };
    let now = video.current_time();
    if end - now > MAX_BEHIND_S || now < start {
        video.set_current_time((end - 0.1).max(start));
    }
    if video.paused() {
        let _ = video.play();
    }
    if now - start > 30.0 && !sb.updating() {
        let _ = sb.remove(start, now - 10.0);
    }
}

fn close(p: &Shared) {
    let mut pl = p.borrow_mut();
    pl.closed = true;
    if let Some(ws) = pl.ws.take() {
        ws.set_onclose(None);
        ws.set_onmessage(None);
        let _ = ws.close();
    }
    if let Some(url) = pl.url.take() {
        let _ = web_sys::Url::revoke_object_url(&url);
    }
    pl.video.remove_attribute("src").ok();
    pl.sb = None;
    pl.ms = None;
    pl.queue.clear();
}

pub use ioc_model::camera::related_cameras;

/// The cameras that rules and SOPs name for their alerts (`cameras = [...]`), read from the
/// server at start and every minute after (rules and SOPs change seldom).
#[derive(Clone, Copy)]
pub struct NamedCameras {
    by_rule: RwSignal<std::collections::HashMap<String, Vec<String>>>,
    /// The cameras of the SOP the server would choose for each category.
    by_category: RwSignal<std::collections::HashMap<String, Vec<String>>>,
}

impl NamedCameras {
    /// Makes them, loads them and keeps them fresh, as a context for the screens below.
    pub fn provide() -> NamedCameras {
        let named = NamedCameras {
            by_rule: RwSignal::new(Default::default()),
            by_category: RwSignal::new(Default::default()),
        };
        provide_context(named);
        let load = move || {
            leptos::task::spawn_local(async move {
                if let Ok(r) = crate::client::rules::list().await {
                    named.by_rule.set(
                        r.rules
                            .into_iter()
                            .filter(|r| !r.cameras.is_empty())
                            .map(|r| (r.name, r.cameras))
                            .collect(),
                    );
                }
                if let Ok(mut sops) = crate::client::sops::list().await {
                    sops.sort_by(|a, b| a.name.cmp(&b.name));
                    let mut by = std::collections::HashMap::new();
                    for s in sops {
                        for c in s.categories {
                            by.entry(c).or_insert_with(|| s.cameras.clone());
                        }
                    }
                    named.by_category.set(by);
                }
            });
        };
        load();
        let _ = set_interval_with_handle(load, Duration::from_secs(60));
        named
    }

    /// The cameras named for an alert: by its rule, by its category's SOP, by its device.
    pub fn for_alert(
        &self,
        a: &ioc_model::Alert,
        entities: &std::collections::HashMap<String, ioc_model::Entity>,
    ) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_rule
            .with(|m| m.get(&a.rule).cloned().unwrap_or_default());
        v.extend(
            self.by_category
                .with(|m| m.get(&a.category).cloned().unwrap_or_default()),
        );
        if let Some(e) = a.entity.as_ref().and_then(|id| entities.get(id)) {
            v.extend(ioc_model::camera::named_by(e));
        }
        v
    }
}

/// A camera's live picture with its state over it. `data-frames` and `data-state` let a test
/// (and a curious operator's devtools) see it play.
#[component]
pub fn CameraLive(camera: String) -> impl IntoView {
    let i18n = crate::i18n::use_i18n();
    let shown = RwSignal::new(Shown::default());
    let node = NodeRef::<leptos::html::Video>::new();
    let player = StoredValue::new_local(None::<Shared>);
    let cam = camera.clone();
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        let Some(video) = node.get() else {
            return false;
        };
        let p = Rc::new(RefCell::new(Player {
            camera: cam.clone(),
            video,
            ws: None,
            ms: None,
            sb: None,
            url: None,
            mime: None,
            queue: VecDeque::new(),
            shown,
            closed: false,
            handlers: Vec::new(),
        }));
        connect(&p);
        player.set_value(Some(p));
        true
    });
    on_cleanup(move || {
        let _ = player.try_update_value(|p| {
            if let Some(p) = p.take() {
                close(&p);
            }
        });
    });
    let state = move || {
        shown.with(|s| {
            if s.unplayable.is_some() {
                "unplayable"
            } else {
                s.state
                    .as_ref()
                    .map(|x| x.state.as_str())
                    .unwrap_or("connecting")
            }
        })
    };
    let label = move || {
        shown.with(|s| {
            if let Some(m) = &s.unplayable {
                return format!("{} ({m})", i18n.tr("camera-unplayable"));
            }
            let Some(st) = &s.state else {
                return i18n.tr("camera-state-connecting");
            };
            let mut t = i18n.tr(&format!("camera-state-{}", st.state.as_str()));
            if let Some(p) = st
                .problem
                .filter(|_| st.state != ioc_model::StreamState::Live)
            {
                t = format!(
                    "{t}: {}",
                    i18n.tr(&format!("camera-problem-{}", p.as_str()))
                );
            }
            t
        })
    };
    // The camera's own words: shown where the summary cannot say more (a protocol error),
    // on hover otherwise.
    let detail = move || {
        shown.with(|s| {
            s.state
                .as_ref()
                .filter(|x| x.state != ioc_model::StreamState::Live)
                .and_then(|x| x.detail.clone())
        })
    };
    let detail_shown = move || {
        shown.with(|s| {
            s.state
                .as_ref()
                .filter(|x| x.problem == Some(ioc_model::StreamProblem::Protocol))
                .and_then(|x| x.detail.clone())
        })
    };
    view! {
        <div
            class="camera-live"
            data-camera=camera
            data-state=state
            data-frames=move || shown.with(|s| s.frames)
            data-latency=move || shown.with(|s| s.latency_ms.map(|l| format!("{l:.0}")).unwrap_or_default())
        >
            <video node_ref=node muted=true autoplay=true playsinline=true></video>
            <div class=move || format!("camera-badge {}", state()) title=move || detail().unwrap_or_default()>
                <span class="camera-dot"></span>
                {label}
            </div>
            {move || detail_shown().map(|d| view! { <div class="camera-detail">{d}</div> })}
        </div>
    }
}
