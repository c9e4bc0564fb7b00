//! The silences screen (`8`): silences and maintenance windows not over yet, what each
//! matches, when it ends, who put it and why; a form to add one (from now, or a window
//! later) and a button to end one early. Alerts they hold back are in the queue under the
//! "silenced" filter.

use super::app::{Now, Ops};
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Live, Settings};
use ioc_model::{Silence, SilenceMatch, SilenceRequest};
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn SilencesView() -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let settings = expect_context::<Settings>();
    let now = expect_context::<Now>();
    let ops = Ops::get();
    let list = Memo::new(move |_| {
        let mut v: Vec<Silence> = live.silences.with(|m| m.values().cloned().collect());
        v.sort_by_key(|s| (s.starts_at, s.id));
        v
    });
    let held = move |id: i64| {
        live.alerts
            .with(|m| m.values().filter(|a| a.silenced == Some(id)).count())
    };
    let f_rule = RwSignal::new(String::new());
    let f_entity = RwSignal::new(String::new());
    let f_unit = RwSignal::new(String::new());
    let f_category = RwSignal::new(String::new());
    let f_start = RwSignal::new(String::new());
    let f_duration = RwSignal::new("2h".to_string());
    let f_comment = RwSignal::new(String::new());
    let opt =
        |s: RwSignal<String>| Some(s.get_untracked().trim().to_string()).filter(|x| !x.is_empty());
    let add = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        // A start "in 30m" makes it a maintenance window.
        let starts_at = match opt(f_start) {
            None => None,
            Some(s) => match humantime::parse_duration(&s) {
                Ok(d) => Some(format::now() + chrono::Duration::from_std(d).unwrap_or_default()),
                Err(_) => {
                    ops.toast(i18n.tr("shelve-bad-duration"), true);
                    return;
                }
            },
        };
        let req = SilenceRequest {
            matcher: SilenceMatch {
                rule: opt(f_rule),
                entity: opt(f_entity),
                unit: opt(f_unit),
                category: opt(f_category),
            },
            starts_at,
            ends_at: None,
            duration: opt(f_duration),
            comment: f_comment.get_untracked(),
        };
        spawn_local(async move {
            match client::silences::create(&req).await {
                Ok(s) => {
                    live.silences.update(|m| {
                        m.insert(s.id, s);
                    });
                    f_comment.set(String::new());
                    ops.toast(i18n.tr("silence-added"), false);
                }
                Err(e) => ops.toast(i18n.tr_n("action-failed", "error", e), true),
            }
        });
    };
    let end = move |id: i64| {
        spawn_local(async move {
            match client::silences::end(id).await {
                Ok(()) => {
                    live.silences.update(|m| {
                        m.remove(&id);
                    });
                    ops.toast(i18n.tr("silence-ended"), false);
                }
                Err(e) => ops.toast(i18n.tr_n("action-failed", "error", e), true),
            }
        });
    };
    let tz = move || settings.timezone.get();
    view! {
        <section class="page" id="silences-page">
            <header class="page-head">
                <h1>{move || i18n.tr("silence-title")}</h1>
                <span class="muted">{move || i18n.tr("silence-hint")}</span>
            </header>
            <form class="form silence-form" id="silence-form" on:submit=add>
                <div class="row">
                    <label>{move || i18n.tr("silence-rule")}<input id="sil-rule" prop:value=f_rule on:input=move |e| f_rule.set(event_target_value(&e))/></label>
                    <label>{move || i18n.tr("silence-entity")}<input id="sil-entity" prop:value=f_entity on:input=move |e| f_entity.set(event_target_value(&e))/></label>
                    <label>{move || i18n.tr("directive-unit")}<input id="sil-unit" list="unit-codes" prop:value=f_unit on:input=move |e| f_unit.set(event_target_value(&e))/></label>
                    <label>{move || i18n.tr("silence-category")}<input id="sil-category" prop:value=f_category on:input=move |e| f_category.set(event_target_value(&e))/></label>
                </div>
                <div class="row">
                    <label>{move || i18n.tr("silence-starts-in")}<input id="sil-start" placeholder="30m" prop:value=f_start on:input=move |e| f_start.set(event_target_value(&e))/></label>
                    <label>{move || i18n.tr("silence-lasts")}<input id="sil-duration" prop:value=f_duration on:input=move |e| f_duration.set(event_target_value(&e))/></label>
                    <label class="grow">{move || i18n.tr("silence-why")}<input id="sil-comment" prop:value=f_comment on:input=move |e| f_comment.set(event_target_value(&e))/></label>
                    <button class="btn primary" type="submit" id="sil-add">{move || i18n.tr("silence-add")}</button>
                </div>
            </form>
            <table class="grid" id="silences-table">
                <thead><tr>
                    <th>"#"</th>
                    <th>{move || i18n.tr("silence-matches")}</th>
                    <th>{move || i18n.tr("silence-when")}</th>
                    <th>{move || i18n.tr("silence-why")}</th>
                    <th class="num">{move || i18n.tr("silence-held")}</th>
                    <th></th>
                </tr></thead>
                <tbody>
                    <For each=move || list.get() key=|s| (s.id, s.ends_at)
                        children=move |s| {
                            let id = s.id;
                            let m = &s.matcher;
                            let what = [
                                m.rule.as_ref().map(|r| format!("rule={r}")),
                                m.entity.as_ref().map(|e| format!("entity={e}")),
                                m.unit.as_ref().map(|u| format!("unit={u}")),
                                m.category.as_ref().map(|c| format!("category={c}")),
                            ].into_iter().flatten().collect::<Vec<_>>().join(" · ");
                            let (starts, ends) = (s.starts_at, s.ends_at);
                            let active = move || { now.0.track(); let t = format::now(); starts <= t && t < ends };
                            view! {
                                <tr data-id=id class:pending=move || !active()>
                                    <td>{id}</td>
                                    <td class="mono">{what}</td>
                                    <td>
                                        {move || if active() { i18n.tr("silence-active") } else { i18n.tr("silence-pending") }}
                                        <div class="muted">{move || format!("{} → {}", format::date_time(starts, &tz(), i18n.lang.get()), format::date_time(ends, &tz(), i18n.lang.get()))}</div>
                                    </td>
                                    <td>{s.comment.clone()}<div class="muted">{s.created_by.clone()}</div></td>
                                    <td class="num">{move || held(id)}</td>
                                    <td class="actions"><button class="btn small danger" on:click=move |_| end(id)>{move || i18n.tr("silence-end")}</button></td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            <Show when=move || list.with(|l| l.is_empty())>
                <p class="muted">{move || i18n.tr("silence-none")}</p>
            </Show>
        </section>
    }
}
