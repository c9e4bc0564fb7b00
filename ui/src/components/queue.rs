//! The alert queue: open alerts, most urgent first (new before acknowledged, then severity,
//! then newest), with severity colour, category, unit, age and an acknowledge button.
//! The keyboard cursor (j/k) is the highlighted row; `a` acknowledges it.

use super::app::{Now, Ops, Queue};
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Live, QueueFilter, Selection};
use ioc_model::{Alert, AlertState, Domain, Severity};
use leptos::prelude::*;

#[component]
pub fn AlertQueue() -> impl IntoView {
    let i18n = use_i18n();
    let queue = expect_context::<Queue>();
    let filter = expect_context::<QueueFilter>();
    let live = expect_context::<Live>();
    let sel = expect_context::<Selection>();
    let ops = Ops::get();
    // Every unacknowledged critical alert, whatever the filters say.
    let critical = Memo::new(move |_| {
        let mut v: Vec<Alert> = live.alerts.with(|m| {
            m.values()
                .filter(|a| {
                    a.severity == Severity::Critical
                        && a.state == AlertState::New
                        && a.silenced.is_none()
                })
                .cloned()
                .collect()
        });
        v.sort_by(Alert::queue_cmp);
        v
    });
    let units = Memo::new(move |_| {
        let mut u: Vec<String> = live
            .alerts
            .with(|m| m.values().filter_map(|a| a.unit_name.clone()).collect());
        u.sort();
        u.dedup();
        u
    });
    view! {
        <aside class="queue" aria-label=move || i18n.tr("queue-title")>
            <Show when=move || critical.with(|c| !c.is_empty())>
                <div class="critical-banner" id="critical-banner" role="alert" on:click=move |_| {
                    if let Some(a) = critical.with_untracked(|c| c.first().cloned()) {
                        sel.alert.set(Some(a.id));
                        ops.focus_alert(&a);
                    }
                }>
                    <strong>{move || i18n.tr_n("critical-banner", "count", critical.with(|c| c.len()))}</strong>
                    <span>{move || critical.with(|c| c.first().map(|a| format!("{} — {}", a.entity_name, a.message)).unwrap_or_default())}</span>
                </div>
            </Show>
            <h2 class="queue-title">
                {move || i18n.tr("queue-title")}
                <span class="queue-total">{move || queue.0.with(|q| q.len())}</span>
                <Show when=move || filter.active()>
                    <button class="link" id="filter-clear" on:click=move |_| filter.clear()>{move || i18n.tr("filter-clear")}</button>
                </Show>
            </h2>
            <div class="queue-filters" id="queue-filters">
                <input
                    type="search"
                    id="queue-search"
                    placeholder=move || i18n.tr("filter-search")
                    prop:value=move || filter.text.get()
                    on:input=move |e| filter.text.set(event_target_value(&e))
                    on:keydown=move |e: web_sys::KeyboardEvent| {
                        if e.key() == "Escape" || e.key() == "Enter" {
                            if let Some(t) = e.target().and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(t).ok()) {
                                let _ = t.blur();
                            }
                        }
                    }
                />
                <select id="filter-severity" on:change=move |e| filter.min_severity.set(Severity::parse(&event_target_value(&e)))
                    prop:value=move || filter.min_severity.get().map(|s| s.as_str()).unwrap_or("")>
                    <option value="">{move || i18n.tr("filter-all-severities")}</option>
                    {Severity::ALL.into_iter().filter(|s| *s != Severity::Info).map(|s| view! {
                        <option value=s.as_str()>{move || i18n.tr_n("filter-at-least", "severity", i18n.tr(&format!("sev-{}", s.as_str())))}</option>
                    }).collect_view()}
                </select>
                <select id="filter-state" on:change=move |e| filter.state.set(event_target_value(&e))
                    prop:value=move || filter.state.get()>
                    <option value="">{move || i18n.tr("filter-all-states")}</option>
                    <option value="new">{move || i18n.tr("state-new")}</option>
                    <option value="working">{move || i18n.tr("filter-working")}</option>
                    <option value="cleared">{move || i18n.tr("cleared")}</option>
                    <option value="silenced">{move || i18n.tr_n("filter-silenced", "count", live.alerts.with(|m| m.values().filter(|a| a.silenced.is_some()).count()))}</option>
                </select>
                <select id="filter-domain" on:change=move |e| filter.domain.set(event_target_value(&e))
                    prop:value=move || filter.domain.get()>
                    <option value="">{move || i18n.tr("filter-all-domains")}</option>
                    {Domain::ALL.into_iter().map(|d| view! {
                        <option value=d.as_str()>{move || i18n.tr_or(&format!("domain-{}", d.as_str()), d.as_str())}</option>
                    }).collect_view()}
                </select>
                <select id="filter-unit" on:change=move |e| filter.unit.set(event_target_value(&e))
                    prop:value=move || filter.unit.get()>
                    <option value="">{move || i18n.tr("filter-all-units")}</option>
                    <For each=move || units.get() key=|u| u.clone() children=move |u| view! {
                        <option value=u.clone()>{u.clone()}</option>
                    }/>
                </select>
            </div>
            <Show when=move || queue.0.with(|q| q.is_empty())>
                <p class="queue-empty">{move || i18n.tr("queue-empty")}</p>
            </Show>
            <ol class="alerts" id="alert-list">
                <For
                    each=move || queue.0.get()
                    key=|a| (a.id, a.updated_at, a.state.as_str(), a.active, a.count, a.incident, a.silenced)
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
                {alert.incident.map(|i| view! { <span class="incident-tag" title=move || i18n.tr("incident")>{format!("⚑ #{i}")}</span> })}
                {alert.silenced.map(|_| view! { <span class="silenced-tag">{move || i18n.tr("silenced")}</span> })}
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
