//! The data sources screen: every source's live health (state, last message, counts, rate,
//! last error), refreshed every two seconds; sources added here can be edited and removed,
//! sources of the config file are shown as such. Files are imported from here too.

use super::app::{Now, Ops};
use super::import::ImportButton;
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Selection, Settings, View};
use chrono::DateTime;
use ioc_model::SourceStatus;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

const EXAMPLE: &str = r#"name = "province-mqtt"
kind = "mqtt"
url = "mqtt://127.0.0.1:1883"
topics = ["ioc/#"]
decoder = "ngsi-ld"
"#;

#[component]
pub fn SourcesView() -> impl IntoView {
    let i18n = use_i18n();
    let sel = expect_context::<Selection>();
    let settings = expect_context::<Settings>();
    let now = expect_context::<Now>();
    let ops = Ops::get();
    let sources = RwSignal::new(Vec::<SourceStatus>::new());
    // On the provincial IOC: the consoles (commune OCs) that sync with it.
    let nodes = RwSignal::new(Vec::<ioc_model::NodeLink>::new());
    let error = RwSignal::new(None::<String>);
    let refresh = move || {
        spawn_local(async move {
            match client::sources::list().await {
                Ok(s) => {
                    sources.set(s);
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
            if let Ok(h) = client::health().await {
                nodes.set(h.nodes);
            }
        })
    };
    refresh();
    let timer = set_interval_with_handle(refresh, Duration::from_secs(2)).ok();
    on_cleanup(move || {
        if let Some(t) = timer {
            t.clear();
        }
    });

    // The form: None = closed, Some(text) = editing.
    let form = RwSignal::new(None::<String>);
    let form_error = RwSignal::new(None::<String>);
    let save = move |_| {
        let Some(text) = form.get_untracked() else {
            return;
        };
        spawn_local(async move {
            match client::sources::save(&text).await {
                Ok(s) => {
                    form.set(None);
                    form_error.set(None);
                    ops.toast(i18n.tr_n("src-saved", "name", s.name), false);
                    refresh();
                }
                Err(e) => form_error.set(Some(e)),
            }
        });
    };
    let remove = move |name: String| {
        spawn_local(async move {
            match client::sources::remove(&name).await {
                Ok(()) => {
                    ops.toast(i18n.tr_n("src-deleted", "name", name), false);
                    refresh();
                }
                Err(e) => ops.toast(e, true),
            }
        });
    };

    view! {
        <section class="page" id="sources-page">
            <header class="page-head">
                <h1>{move || i18n.tr("src-title")}</h1>
                <div class="page-actions">
                    <ImportButton/>
                    <button class="btn primary" on:click=move |_| form.set(Some(EXAMPLE.to_string()))>
                        {move || i18n.tr("src-add")}
                    </button>
                </div>
            </header>
            <Show when=move || error.get().is_some()>
                <p class="error">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <Show when=move || form.get().is_some()>
                <div class="form">
                    <p class="muted">{move || i18n.tr("src-form-help")}</p>
                    <textarea
                        class="toml"
                        id="source-toml"
                        rows="10"
                        spellcheck="false"
                        prop:value=move || form.get().unwrap_or_default()
                        on:input=move |e| form.set(Some(event_target_value(&e)))
                    ></textarea>
                    <Show when=move || form_error.get().is_some()>
                        <p class="error" id="source-error">{move || form_error.get().unwrap_or_default()}</p>
                    </Show>
                    <div class="page-actions">
                        <button class="btn primary" id="source-save" on:click=save>{move || i18n.tr("src-save")}</button>
                        <button class="btn" on:click=move |_| { form.set(None); form_error.set(None); }>
                            {move || i18n.tr("src-cancel")}
                        </button>
                    </div>
                </div>
            </Show>
            <table class="grid" id="sources-table">
                <thead>
                    <tr>
                        <th>{move || i18n.tr("src-name")}</th>
                        <th>{move || i18n.tr("src-kind")}</th>
                        <th>{move || i18n.tr("src-state")}</th>
                        <th>{move || i18n.tr("src-where")}</th>
                        <th>{move || i18n.tr("src-last")}</th>
                        <th class="num">{move || i18n.tr("src-messages")}</th>
                        <th class="num">{move || i18n.tr("src-rate")}</th>
                        <th class="num">{move || i18n.tr("src-rejected")}</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || sources.get()
                        key=|s| (s.name.clone(), s.state.as_str(), s.messages, s.rejected, s.last_error.clone(), s.rate.to_bits())
                        children=move |s| {
                            let state = s.state.as_str();
                            let name_dl = s.name.clone();
                            let name_del = s.name.clone();
                            let config = s.config.clone();
                            let last = s.last_message_at;
                            let has_rejected = s.rejected > 0;
                            view! {
                                <tr data-source=s.name.clone() data-state=state>
                                    <td class="strong">{s.name.clone()}</td>
                                    <td>{s.kind.clone()}</td>
                                    <td>
                                        <span class=format!("state-dot {state}")></span>
                                        {move || i18n.tr(&format!("src-state-{state}"))}
                                        {s.last_error.clone().map(|e| view! { <div class="src-error">{e}</div> })}
                                    </td>
                                    <td class="muted">{s.detail.clone().unwrap_or_default()}</td>
                                    <td title=move || last.map(|t| format::date_time(t, &settings.timezone.get(), i18n.lang.get())).unwrap_or_default()>
                                        {move || last.map(|t: DateTime<chrono::Utc>| format::ago(&i18n, t, now.0.get())).unwrap_or_else(|| "—".into())}
                                    </td>
                                    <td class="num">{s.messages}</td>
                                    <td class="num">{format!("{:.1}", s.rate)}</td>
                                    <td class="num">
                                        <a href="#" class:warn=has_rejected on:click=move |e: web_sys::MouseEvent| {
                                            e.prevent_default();
                                            sel.dead_source.set(Some(name_dl.clone()));
                                            sel.view.set(View::DeadLetters);
                                        }>{s.rejected}</a>
                                    </td>
                                    <td class="actions">
                                        {match config {
                                            Some(cfg) => view! {
                                                <button class="btn small" on:click=move |_| form.set(Some(cfg.clone()))>{move || i18n.tr("src-edit")}</button>
                                                <button class="btn small danger" on:click=move |_| remove(name_del.clone())>{move || i18n.tr("src-delete")}</button>
                                            }.into_any(),
                                            None => view! { <span class="muted">{move || i18n.tr("src-config-file")}</span> }.into_any(),
                                        }}
                                    </td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            <Show when=move || sources.with(|s| s.is_empty())>
                <p class="muted">{move || i18n.tr("src-none")}</p>
            </Show>
            <Show when=move || nodes.with(|n| !n.is_empty())>
                <h2>{move || i18n.tr("nodes-title")}</h2>
                <table class="grid" id="nodes-table">
                    <thead>
                        <tr>
                            <th>{move || i18n.tr("nodes-name")}</th>
                            <th>{move || i18n.tr("src-state")}</th>
                            <th>{move || i18n.tr("nodes-last-seen")}</th>
                            <th>{move || i18n.tr("nodes-lag")}</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || nodes.get().into_iter().map(|n| {
                            let state = serde_json::to_value(n.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                            let key = format!("link-state-{state}");
                            let seen = n.last_seen;
                            view! {
                                <tr class="node" data-node=n.node.clone() data-state=state.clone()>
                                    <td>{n.node.clone()}</td>
                                    <td class=format!("state {state}")>{move || i18n.tr(&key)}</td>
                                    <td>{move || format::ago(&i18n, seen, now.0.get())}</td>
                                    <td>{n.lag}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </Show>
        </section>
    }
}
