//! The alert queue: open alerts, most urgent first (new before acknowledged, then severity,
//! then newest), with severity colour, category, unit, age and an acknowledge button.
//! The keyboard cursor (j/k) is the highlighted row; `a` acknowledges it.

use super::app::{Now, Ops, Queue};
use crate::format;
use crate::i18n::use_i18n;
use crate::state::Selection;
use ioc_model::{Alert, AlertState};
use leptos::prelude::*;

#[component]
pub fn AlertQueue() -> impl IntoView {
    let i18n = use_i18n();
    let queue = expect_context::<Queue>();
    view! {
        <aside class="queue" aria-label=move || i18n.tr("queue-title")>
            <h2 class="queue-title">
                {move || i18n.tr("queue-title")}
                <span class="queue-total">{move || queue.0.with(|q| q.len())}</span>
            </h2>
            <Show when=move || queue.0.with(|q| q.is_empty())>
                <p class="queue-empty">{move || i18n.tr("queue-empty")}</p>
            </Show>
            <ol class="alerts" id="alert-list">
                <For
                    each=move || queue.0.get()
                    key=|a| (a.id, a.updated_at, a.state.as_str(), a.active, a.count)
                    children=move |a| view! { <AlertRow alert=a/> }
                />
            </ol>
        </aside>
    }
}

#[component]
fn AlertRow(alert: Alert) -> impl IntoView {
    let i18n = use_i18n();
    let sel = expect_context::<Selection>();
    let now = expect_context::<Now>();
    let settings = expect_context::<crate::state::Settings>();
    let ops = Ops::get();
    let id = alert.id;
    let focused = move || sel.alert.get() == Some(id);
    let row = NodeRef::<leptos::html::Li>::new();
    // Keep the keyboard cursor in view.
    Effect::new(move |_| {
        if focused() {
            if let Some(el) = row.get() {
                el.scroll_into_view_with_bool(false);
            }
        }
    });
    let focus_target = alert.clone();
    let severity = alert.severity.as_str();
    let state = alert.state;
    let raised = alert.raised_at;
    let category = alert.category.clone();
    let unit = alert.unit_name.clone().unwrap_or_default();
    let cleared = !alert.active;
    let count = alert.count;
    view! {
        <li
            node_ref=row
            class=format!("alert sev-{severity} state-{}", state.as_str())
            class:focused=focused
            class:cleared=cleared
            data-id=id
            data-state=state.as_str()
            on:click=move |_| {
                sel.alert.set(Some(id));
                ops.focus_alert(&focus_target);
            }
        >
            <div class="alert-head">
                <span class=format!("sev-badge {severity}")>
                    {move || i18n.tr(&format!("sev-{severity}"))}
                </span>
                <span class="category">
                    {
                        let c = category.clone();
                        move || i18n.tr_or(&format!("cat-{c}"), &c)
                    }
                </span>
                <span class="age" title=move || {
                    format::date_time(raised, &settings.timezone.get(), i18n.lang.get())
                }>{move || format::ago(&i18n, raised, now.0.get())}</span>
            </div>
            <div class="alert-entity">{alert.entity_name.clone()}</div>
            <div class="alert-msg">{alert.message.clone()}</div>
            <div class="alert-foot">
                <span class="unit">{unit}</span>
                <Show when=move || cleared>
                    <span class="cleared-tag">{move || i18n.tr("cleared")}</span>
                </Show>
                <Show when=move || { count > 1 }>
                    <span class="repeats">{move || i18n.tr_n("repeats", "count", count)}</span>
                </Show>
                <span class="state">{move || i18n.tr(&format!("state-{}", state.as_str()))}</span>
                <Show when=move || state == AlertState::New>
                    <button
                        class="ack"
                        title="a"
                        on:click=move |e| {
                            e.stop_propagation();
                            ops.acknowledge(id);
                        }
                    >
                        {move || i18n.tr("ack")}
                    </button>
                </Show>
            </div>
        </li>
    }
}
