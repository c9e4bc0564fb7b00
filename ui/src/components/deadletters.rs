//! Refused data: every payload a source or an import could not take, with the reason,
//! newest first; searchable, filtered by source, exportable as CSV.

use super::app::Now;
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Selection, Settings};
use ioc_model::DeadLetter;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

#[component]
pub fn DeadLettersView() -> impl IntoView {
    let i18n = use_i18n();
    let sel = expect_context::<Selection>();
    let settings = expect_context::<Settings>();
    let now = expect_context::<Now>();
    let rows = RwSignal::new(Vec::<DeadLetter>::new());
    let sources = RwSignal::new(Vec::<String>::new());
    let query = RwSignal::new(String::new());
    let source = sel.dead_source;

    let filter = move || {
        let text = query.get();
        client::deadletters::Filter {
            source: source.get(),
            text: Some(text.trim().to_string()).filter(|t| !t.is_empty()),
        }
    };
    let load = move || {
        let f = filter();
        spawn_local(async move {
            if let Ok(r) = client::deadletters::list(&f).await {
                rows.set(r);
            }
        });
    };
    Effect::new(move |_| load());
    spawn_local(async move {
        if let Ok(s) = client::sources::list().await {
            sources.set(s.into_iter().map(|s| s.name).collect());
        }
    });
    let timer = set_interval_with_handle(load, Duration::from_secs(5)).ok();
    on_cleanup(move || {
        if let Some(t) = timer {
            t.clear();
        }
    });

    view! {
        <section class="page" id="dead-page">
            <header class="page-head">
                <h1>{move || i18n.tr("dead-title")}</h1>
                <div class="page-actions">
                    <select
                        on:change=move |e| {
                            let v = event_target_value(&e);
                            source.set((!v.is_empty()).then_some(v));
                        }
                    >
                        <option value="">{move || i18n.tr("dead-all-sources")}</option>
                        {move || {
                            let mut names = sources.get();
                            if let Some(s) = source.get() {
                                if !names.contains(&s) {
                                    names.push(s);
                                }
                            }
                            names
                                .into_iter()
                                .map(|n| {
                                    let is = n.clone();
                                    view! {
                                        <option value=n.clone() selected=move || source.get().as_deref() == Some(is.as_str())>
                                            {n.clone()}
                                        </option>
                                    }
                                })
                                .collect_view()
                        }}
                    </select>
                    <input
                        type="search"
                        id="dead-search"
                        placeholder=move || i18n.tr("dead-search")
                        on:input=move |e| query.set(event_target_value(&e))
                    />
                    <a class="btn" id="dead-export" href=move || client::deadletters::csv_url(&filter())>
                        {move || i18n.tr("dead-export")}
                    </a>
                </div>
            </header>
            <table class="grid" id="dead-table">
                <thead>
                    <tr>
                        <th>{move || i18n.tr("dead-time")}</th>
                        <th>{move || i18n.tr("dead-source")}</th>
                        <th>{move || i18n.tr("dead-origin")}</th>
                        <th>{move || i18n.tr("dead-reason")}</th>
                        <th>{move || i18n.tr("dead-payload")}</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || rows.get()
                        key=|d| (d.id, d.count)
                        children=move |d| {
                            let t = d.received_at;
                            let preview: String = d.payload.chars().take(80).collect();
                            view! {
                                <tr>
                                    <td title=move || format::date_time(t, &settings.timezone.get(), i18n.lang.get())>
                                        {move || format::ago(&i18n, t, now.0.get())}
                                    </td>
                                    <td>{d.source.clone()}</td>
                                    <td class="muted">{d.origin.clone().unwrap_or_default()}</td>
                                    <td class="reason">
                                        {d.reason.clone()}
                                        <Show when=move || { d.count > 1 }>
                                            <span class="count" data-count=d.count>
                                                {move || i18n.tr_n("dead-count", "n", d.count)}
                                            </span>
                                        </Show>
                                        {(!d.samples.is_empty()).then(|| {
                                            let samples = d.samples.clone();
                                            view! {
                                                <details class="samples">
                                                    <summary>{move || i18n.tr("dead-samples")}</summary>
                                                    <ul>
                                                        {samples.into_iter().map(|s| view! { <li>{s}</li> }).collect_view()}
                                                    </ul>
                                                </details>
                                            }
                                        })}
                                    </td>
                                    <td>
                                        <details>
                                            <summary><code>{preview}</code></summary>
                                            <pre>{d.payload.clone()}</pre>
                                            <span class="muted">{move || i18n.tr_n("dead-bytes", "n", d.size)}</span>
                                        </details>
                                    </td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            <Show when=move || rows.with(|r| r.is_empty())>
                <p class="muted">{move || i18n.tr("dead-none")}</p>
            </Show>
        </section>
    }
}
