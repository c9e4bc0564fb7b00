//! The WebSocket half of the UI's only way to data. Connects to `/ws`, applies snapshots and
//! deltas to [`Live`], pushes marker colours to the map, and reconnects by itself with
//! back-off, resuming from the last sequence number it saw so only what was missed is sent.
//! A connection that goes silent (no message, not even a heartbeat, for 15 s) is treated as
//! dead and replaced.
//!
//! The feed is taken with `values=watched`: devices come without their values, and the
//! values of the devices this screen shows (see [`watch`]) come as they change. The map
//! needs every device's status, not its 10,000 readings a second.

use crate::format::now_ms;
use crate::map;
use crate::state::{Conn, Live};
use ioc_model::{ClientMsg, ServerMsg};
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, WebSocket};

/// No message for this long means the connection is dead.
const SILENCE_MS: f64 = 15_000.0;

struct Socket {
    ws: WebSocket,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_open: Closure<dyn FnMut()>,
    _on_close: Closure<dyn FnMut()>,
}

#[derive(Default)]
struct FeedState {
    socket: Option<Socket>,
    epoch: Option<String>,
    seq: u64,
    backoff_ms: u32,
    reconnect_pending: bool,
    /// The devices whose values the screen shows (sent again on every connection).
    watched: Vec<String>,
}

thread_local! {
    static FEED: RefCell<FeedState> = RefCell::new(FeedState::default());
}

/// Starts the feed and its watchdog.
pub fn start(live: Live) {
    connect(live);
    set_interval(
        move || {
            let silent = now_ms() - live.last_message.get_untracked() > SILENCE_MS;
            if silent && live.conn.get_untracked() == Conn::Live {
                live.conn.set(Conn::Lost);
                close_and_retry(live);
            }
        },
        Duration::from_secs(1),
    );
}

fn ws_url() -> String {
    let loc = web_sys::window().expect("window").location();
    let proto = if loc.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    let host = loc.host().unwrap_or_default();
    // The session cookie goes with the upgrade.
    FEED.with(|f| {
        let f = f.borrow();
        match &f.epoch {
            Some(e) => format!(
                "{proto}://{host}/ws?values=watched&epoch={}&since={}",
                crate::api::enc(e),
                f.seq
            ),
            None => format!("{proto}://{host}/ws?values=watched"),
        }
    })
}

/// Marks a step of the page's start on its performance timeline: `ioc bench map` reads them
/// to say where the first render's time goes.
pub(crate) fn mark(name: &str) {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark(name);
    }
}

/// [`mark`] once the next frame has been drawn (a mark of what the screen shows).
pub(crate) fn mark_after_frame(name: &'static str) {
    let Some(w) = web_sys::window() else { return };
    let after = Closure::once_into_js(move || {
        // The frame's callbacks run before it is painted: mark in the task after it.
        set_timeout(move || mark(name), Duration::ZERO);
    });
    let _ = w.request_animation_frame(after.unchecked_ref());
}

/// Says which devices' values the screen shows now (the selected one): their values come at
/// once and then as they change. Kept and said again on every reconnection.
pub fn watch(ids: Vec<String>) {
    FEED.with(|f| {
        let mut f = f.borrow_mut();
        if f.watched == ids {
            return;
        }
        f.watched = ids;
        if let Some(s) = &f.socket {
            send_watch(&s.ws, &f.watched);
        }
    });
}

fn send_watch(ws: &WebSocket, ids: &[String]) {
    if ws.ready_state() != WebSocket::OPEN {
        return; // said on open
    }
    let msg = ClientMsg::Watch {
        entities: ids.to_vec(),
    };
    if let Ok(text) = serde_json::to_string(&msg) {
        let _ = ws.send_with_str(&text);
    }
}

fn connect(live: Live) {
    mark("ioc-feed-connect");
    if has_early() {
        // Taken in a task of its own, after the page's first views (and the map) are made:
        // a snapshot already received is applied then, while the map loads, not before it
        // is even created. Until then the early socket keeps buffering.
        set_timeout(move || open(live), Duration::ZERO);
    } else {
        open(live);
    }
}

/// Whether `boot.js` left a socket to take.
fn has_early() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &JsValue::from_str("__iocEarlyFeed")).ok())
        .is_some_and(|e| !e.is_undefined() && !e.is_null())
}

fn open(live: Live) {
    let (ws, early) = match adopt_early() {
        Some(x) => x,
        None => match WebSocket::new(&ws_url()) {
            Ok(ws) => (ws, Vec::new()),
            Err(_) => {
                schedule_reconnect(live);
                return;
            }
        },
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        if let Some(text) = e.data().as_string() {
            on_text(live, &text);
        }
    });
    let on_open = Closure::<dyn FnMut()>::new(move || opened(live));
    let on_close = Closure::<dyn FnMut()>::new(move || {
        if live.conn.get_untracked() != Conn::Connecting {
            live.conn.set(Conn::Lost);
        }
        schedule_reconnect(live);
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let open = ws.ready_state() == WebSocket::OPEN;
    FEED.with(|f| {
        f.borrow_mut().socket = Some(Socket {
            ws,
            _on_message: on_message,
            _on_open: on_open,
            _on_close: on_close,
        })
    });
    // The early socket's own events happened before this code had it: replayed, in order
    // (no event runs while this does).
    if open {
        opened(live);
    }
    for text in early {
        on_text(live, &text);
    }
}

/// The socket `boot.js` opened while the WebAssembly loaded (a province's snapshot is
/// built and sent meanwhile) and the messages it got so far; taken once, if still usable.
fn adopt_early() -> Option<(WebSocket, Vec<String>)> {
    let window = web_sys::window()?;
    let key = JsValue::from_str("__iocEarlyFeed");
    let early = js_sys::Reflect::get(&window, &key).ok()?;
    if early.is_undefined() || early.is_null() {
        return None;
    }
    let _ = js_sys::Reflect::delete_property(window.unchecked_ref::<js_sys::Object>(), &key);
    let ws: WebSocket = js_sys::Reflect::get(&early, &JsValue::from_str("ws"))
        .ok()?
        .dyn_into()
        .ok()?;
    let usable = matches!(ws.ready_state(), WebSocket::CONNECTING | WebSocket::OPEN);
    // Its own handlers stop here, whatever happens next.
    ws.set_onmessage(None);
    ws.set_onclose(None);
    if !usable {
        return None;
    }
    let messages: js_sys::Array = js_sys::Reflect::get(&early, &JsValue::from_str("messages"))
        .ok()?
        .dyn_into()
        .ok()?;
    let texts = messages.iter().filter_map(|m| m.as_string()).collect();
    Some((ws, texts))
}

/// One message from the server, as text.
fn on_text(live: Live, text: &str) {
    live.last_message.set(now_ms());
    let snapshot = text.starts_with(r#"{"type":"snapshot""#);
    if snapshot {
        mark("ioc-snapshot-received");
    }
    match serde_json::from_str::<ServerMsg>(text) {
        Ok(msg) => {
            if snapshot {
                mark("ioc-snapshot-parsed");
            }
            apply(live, msg);
            if snapshot {
                mark("ioc-snapshot-applied");
            }
        }
        Err(err) => web_sys::console::warn_1(&format!("bad message from server: {err}").into()),
    }
}

/// The socket is open: say what this screen watches.
fn opened(live: Live) {
    mark("ioc-feed-open");
    FEED.with(|f| {
        let f = f.borrow();
        if let (Some(s), false) = (&f.socket, f.watched.is_empty()) {
            send_watch(&s.ws, &f.watched);
        }
    });
    live.conn.set(Conn::Live);
    live.last_message.set(now_ms());
    FEED.with(|f| f.borrow_mut().backoff_ms = 0);
}

fn close_and_retry(live: Live) {
    let old = FEED.with(|f| f.borrow_mut().socket.take());
    if let Some(s) = old {
        s.ws.set_onclose(None);
        s.ws.set_onmessage(None);
        let _ = s.ws.close();
    }
    schedule_reconnect(live);
}

fn schedule_reconnect(live: Live) {
    let delay = FEED.with(|f| {
        let mut f = f.borrow_mut();
        if f.reconnect_pending {
            return None;
        }
        f.reconnect_pending = true;
        f.backoff_ms = (f.backoff_ms * 2).clamp(500, 10_000);
        Some(f.backoff_ms)
    });
    let Some(delay) = delay else { return };
    set_timeout(
        move || {
            FEED.with(|f| {
                let mut f = f.borrow_mut();
                f.reconnect_pending = false;
                if let Some(s) = f.socket.take() {
                    s.ws.set_onclose(None);
                    s.ws.set_onmessage(None);
                    let _ = s.ws.close();
                }
            });
            connect(live);
        },
        Duration::from_millis(delay as u64),
    );
}

/// Applies one server message to the live picture and the map.
fn apply(live: Live, msg: ServerMsg) {
    match msg {
        ServerMsg::Snapshot {
            epoch,
            seq,
            time,
            entities,
            alerts,
            incidents,
            directives,
            silences,
            kpis,
            link,
        } => {
            live.kpis.set(kpis);
            live.link.set(link);
            live.incidents
                .set(incidents.into_iter().map(|i| (i.id, i)).collect());
            live.directives
                .set(directives.into_iter().map(|d| (d.id, d)).collect());
            live.silences
                .set(silences.into_iter().map(|s| (s.id, s)).collect());
            FEED.with(|f| {
                let mut f = f.borrow_mut();
                f.epoch = Some(epoch);
                f.seq = seq;
            });
            live.entities
                .set(entities.into_iter().map(|e| (e.id.clone(), e)).collect());
            live.alerts.set(
                alerts
                    .into_iter()
                    .filter(|a| a.state.is_open())
                    .map(|a| (a.id, a))
                    .collect(),
            );
            live.data_time.set(Some(time));
            live.entities.with_untracked(|e| {
                live.alerts.with_untracked(|a| {
                    map::set_all(e, a);
                    map::set_areas(a);
                })
            });
        }
        ServerMsg::Delta {
            seq,
            time,
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
            FEED.with(|f| f.borrow_mut().seq = seq);
            if link.is_some() {
                live.link.set(link);
            }
            if !kpis.is_empty() {
                live.kpis.set(kpis);
            }
            if !incidents.is_empty() {
                live.incidents.update(|m| {
                    for i in incidents {
                        if i.in_view() {
                            m.insert(i.id, i);
                        } else {
                            m.remove(&i.id);
                        }
                    }
                });
            }
            if !directives.is_empty() {
                live.directives.update(|m| {
                    for d in directives {
                        if d.state.is_open() {
                            m.insert(d.id, d);
                        } else {
                            m.remove(&d.id);
                        }
                    }
                });
            }
            if !silences.is_empty() {
                let now = crate::format::now();
                live.silences.update(|m| {
                    for s in silences {
                        if s.current_at(now) {
                            m.insert(s.id, s);
                        } else {
                            m.remove(&s.id);
                        }
                    }
                });
            }
            let mut touched: HashSet<String> = HashSet::new();
            let mut new_entity = false;
            let mut areas_changed = false;
            if !entities.is_empty() || !values.is_empty() {
                live.entities.update(|map| {
                    for mut e in entities {
                        touched.insert(e.id.clone());
                        match map.remove(&e.id) {
                            // Its values came on their own: a new version keeps them.
                            Some(old) => e.keep_values_of(old),
                            None => new_entity = true,
                        }
                        map.insert(e.id.clone(), e);
                    }
                    set_values(map, values);
                });
            }
            if !alerts.is_empty() {
                live.alerts.update(|map| {
                    for a in alerts {
                        areas_changed |= a.area.is_some();
                        if let Some(e) = &a.entity {
                            touched.insert(e.clone());
                        }
                        if a.state.is_open() {
                            map.insert(a.id, a);
                        } else {
                            map.remove(&a.id);
                        }
                    }
                });
            }
            live.data_time.set(Some(time));
            live.entities.with_untracked(|e| {
                live.alerts.with_untracked(|a| {
                    if new_entity {
                        map::set_all(e, a)
                    } else if !touched.is_empty() {
                        map::update(touched.iter().map(String::as_str), e, a)
                    }
                    if areas_changed {
                        map::set_areas(a);
                    }
                })
            });
        }
        // The number this connection is at (changes that were only values move it too).
        ServerMsg::Heartbeat { seq, .. } => {
            reached(seq);
            return;
        }
        ServerMsg::Values { seq, time, values } => {
            reached(seq);
            live.entities.update(|map| set_values(map, values));
            live.data_time.set(Some(time));
        }
    }
    live.revision.update(|r| *r += 1);
}

/// The connection is at `seq` (never back).
fn reached(seq: u64) {
    FEED.with(|f| {
        let mut f = f.borrow_mut();
        f.seq = f.seq.max(seq);
    });
}

/// New values of the devices held (a value of an unknown device is dropped).
fn set_values(
    map: &mut std::collections::HashMap<String, ioc_model::Entity>,
    values: Vec<ioc_model::ValueUpdate>,
) {
    for v in values {
        if let Some(e) = map.get_mut(&v.entity) {
            e.set_value(&v.metric, v.value, v.time);
        }
    }
}
