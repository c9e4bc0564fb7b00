//! A camera's recent still (`/api/cameras/{id}/snapshot`), for where a live picture would be
//! too much or there is none: the alert's cameras without a stream, a camera's panel, the map's
//! hover card (`js/map.js` asks the same address).
//!
//! Asked again every [`REFRESH`] while it is on screen, and never otherwise; the engine asks
//! the camera at most once per `[video] snapshot_every` whoever asks, so a wall of screens
//! costs the camera one request per interval.

use crate::client;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// How often a still on screen is asked for again.
pub const REFRESH: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Default, PartialEq)]
struct Got {
    /// An object URL of the picture (revoked when replaced).
    url: Option<String>,
    /// When the camera took it (RFC 3339, from `X-Still-Taken`).
    taken: Option<String>,
    /// Drawn for a simulated camera (its picture says so, and its time).
    simulated: bool,
    /// The last refresh failed; the picture (if any) is older.
    error: Option<String>,
    asks: u32,
}

async fn fetch(camera: &str, n: u32) -> Result<(String, Option<String>, bool), String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str(&client::cameras::snapshot_url(camera, n)))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response")?;
    if !resp.ok() {
        let text = JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?)
            .await
            .ok()
            .and_then(|t| t.as_string())
            .unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(msg);
    }
    let h = resp.headers();
    let taken = h.get("x-still-taken").ok().flatten();
    let simulated = h.get("x-still-simulated").ok().flatten().is_some();
    let blob: web_sys::Blob = JsFuture::from(resp.blob().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?
        .dyn_into()
        .map_err(|_| "not a picture")?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    Ok((url, taken, simulated))
}

/// A camera's still with when it was taken; `data-state` is `loading`, `shown` or `none`.
#[component]
pub fn CameraStill(camera: String) -> impl IntoView {
    let i18n = crate::i18n::use_i18n();
    let settings = expect_context::<crate::state::Settings>();
    let got = RwSignal::new(Got::default());
    let alive = StoredValue::new(true);
    let cam = camera.clone();
    let load = move || {
        let cam = cam.clone();
        let n = got.with_untracked(|g| g.asks) + 1;
        spawn_local(async move {
            let r = fetch(&cam, n).await;
            if !alive.get_value() {
                if let Ok((url, ..)) = r {
                    let _ = web_sys::Url::revoke_object_url(&url);
                }
                return;
            }
            got.update(|g| {
                g.asks = n;
                match r {
                    Ok((url, taken, simulated)) => {
                        if let Some(old) = g.url.replace(url) {
                            let _ = web_sys::Url::revoke_object_url(&old);
                        }
                        g.taken = taken;
                        g.simulated = simulated;
                        g.error = None;
                    }
                    Err(e) => g.error = Some(e),
                }
            });
        });
    };
    load();
    let timer = set_interval_with_handle(load, REFRESH).ok();
    on_cleanup(move || {
        alive.set_value(false);
        if let Some(t) = timer {
            t.clear();
        }
        if let Some(url) = got.with_untracked(|g| g.url.clone()) {
            let _ = web_sys::Url::revoke_object_url(&url);
        }
    });
    let state = move || {
        got.with(|g| match (&g.url, g.asks) {
            (Some(_), _) => "shown",
            (None, 0) => "loading",
            (None, _) => "none",
        })
    };
    // A drawn still says its time and that it is simulated itself.
    let caption = move || {
        got.with(|g| {
            if g.simulated {
                return String::new();
            }
            let Some(t) = g
                .taken
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            else {
                return String::new();
            };
            format!(
                "{} {}",
                i18n.tr("camera-still-taken"),
                crate::format::time(
                    t.with_timezone(&chrono::Utc),
                    &settings.timezone.get(),
                    i18n.lang.get()
                )
            )
        })
    };
    let has_caption = move || !caption().is_empty() || got.with(|g| g.error.is_some());
    view! {
        <figure class="camera-still" data-camera=camera data-state=state>
            {move || got.with(|g| g.url.clone()).map(|u| view! { <img src=u alt=""/> })}
            {move || got.with(|g| (g.url.is_none() && g.asks > 0).then(|| view! {
                <div class="camera-still-none">{i18n.tr("camera-still-none")}</div>
            }))}
            <figcaption class:hidden=move || !has_caption()>
                {caption}
                {move || got.with(|g| g.error.clone()).map(|e| {
                    let title = e.clone();
                    view! {
                        <span class="camera-still-error" title=title>" · "{i18n.tr("camera-still-failed")}": "{e}</span>
                    }
                })}
            </figcaption>
        </figure>
    }
}

/// A camera as it can best be shown: live when it has a stream, otherwise its still.
#[component]
pub fn CameraView(camera: String, live: bool) -> impl IntoView {
    if live {
        view! { <crate::video::CameraLive camera=camera/> }.into_any()
    } else {
        view! { <CameraStill camera=camera/> }.into_any()
    }
}
