//! Importing files from the UI: drop them anywhere on the window, or pick them. Each goes to
//! `POST /api/import` (format from the name: CAP XML, NGSI-LD JSON, GeoJSON); the result is
//! shown as a message, refusals are in the dead letters.

use super::app::Ops;
use crate::client;
use crate::i18n::use_i18n;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

thread_local! {
    static DRAGGING: std::cell::Cell<Option<RwSignal<bool>>> = const { std::cell::Cell::new(None) };
}

fn dragging() -> Option<RwSignal<bool>> {
    DRAGGING.with(|d| d.get())
}

pub fn on_drag_over(e: web_sys::DragEvent) {
    let has_files = e
        .data_transfer()
        .is_some_and(|dt| dt.types().includes(&"Files".into(), 0));
    if has_files {
        e.prevent_default();
        if let Some(d) = dragging() {
            d.set(true);
        }
    }
}

pub fn on_drop(e: web_sys::DragEvent) {
    let Some(files) = e.data_transfer().and_then(|dt| dt.files()) else {
        return;
    };
    e.prevent_default();
    if let Some(d) = dragging() {
        d.set(false);
    }
    upload(files, Ops::get_untracked());
}

/// Sends every file of the list, one after the other.
pub fn upload(files: web_sys::FileList, ops: Ops) {
    let list: Vec<web_sys::File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
    spawn_local(async move {
        for f in list {
            let name = f.name();
            let result = async {
                let buf = JsFuture::from(f.array_buffer())
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                let bytes = js_sys::Uint8Array::new(&buf).to_vec();
                client::import::file(&name, bytes).await
            }
            .await;
            ops.import_result(&name, result);
        }
    });
}

/// The overlay shown while files are dragged over the window.
#[component]
pub fn DropZone() -> impl IntoView {
    let i18n = use_i18n();
    let shown = RwSignal::new(false);
    DRAGGING.with(|d| d.set(Some(shown)));
    view! {
        <Show when=move || shown.get()>
            <div
                class="dropzone"
                on:dragleave=move |_| shown.set(false)
                on:click=move |_| shown.set(false)
            >
                <div class="dropzone-box">{move || i18n.tr("import-drop")}</div>
            </div>
        </Show>
    }
}

/// A button opening the file picker.
#[component]
pub fn ImportButton() -> impl IntoView {
    let i18n = use_i18n();
    let ops = Ops::get();
    let input = NodeRef::<leptos::html::Input>::new();
    view! {
        <input
            type="file"
            multiple=true
            accept=".xml,.cap,.json,.jsonld,.geojson"
            style="display:none"
            node_ref=input
            id="import-input"
            on:change=move |e| {
                let el: web_sys::HtmlInputElement = e.target().unwrap().unchecked_into();
                if let Some(files) = el.files() {
                    upload(files, ops);
                }
                el.set_value("");
            }
        />
        <button class="btn" on:click=move |_| {
            if let Some(i) = input.get() {
                i.click();
            }
        }>{move || i18n.tr("import-button")}</button>
    }
}
