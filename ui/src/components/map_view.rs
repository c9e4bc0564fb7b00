//! The map and its legend.

use super::app::Ops;
use crate::client;
use crate::i18n::use_i18n;
use crate::map;
use ioc_model::BasemapKind;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::prelude::*;

#[component]
pub fn MapView() -> impl IntoView {
    let i18n = use_i18n();
    let node = NodeRef::<html::Div>::new();
    let basemap = RwSignal::new(None::<BasemapKind>);
    let started = StoredValue::new(false);
    let ops = Ops::get();
    Effect::new(move |_| {
        let Some(el) = node.get() else { return };
        if started.get_value() {
            return;
        }
        started.set_value(true);
        let on_select = Closure::<dyn Fn(String)>::new(move |id: String| {
            ops.select_entity(Some(id), false);
        });
        map::map_init(&el, &on_select);
        on_select.forget(); // one map for the page's lifetime
                            // The feed may have brought the picture before the map existed (it opens while the
                            // page loads): the map starts with it.
        let live = expect_context::<crate::state::Live>();
        live.entities.with_untracked(|e| {
            live.alerts.with_untracked(|a| {
                if !e.is_empty() {
                    map::set_all(e, a);
                }
                if !a.is_empty() {
                    map::set_areas(a);
                }
            })
        });
        spawn_local(async move {
            if let Ok(info) = client::basemap().await {
                basemap.set(Some(info.kind));
                map::map_set_basemap(&map::basemap_json(&info));
            }
        });
    });
    let legend = [
        ("critical", "sev-critical"),
        ("major", "sev-major"),
        ("warning", "sev-warning"),
        ("normal", "legend-normal"),
        ("offline", "legend-offline"),
    ];
    view! {
        <div class="map" id="map" node_ref=node></div>
        <div class="legend">
            {legend
                .into_iter()
                .map(|(level, key)| {
                    view! {
                        <span class="legend-item">
                            <i class=format!("dot {level}")></i>
                            {move || i18n.tr(key)}
                        </span>
                    }
                })
                .collect_view()}
        </div>
        <Show when=move || basemap.get() == Some(BasemapKind::None)>
            <div class="map-note">{move || i18n.tr("basemap-none")}</div>
        </Show>
    }
}
