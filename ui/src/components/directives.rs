//! The directives screen (`6`): orders to units with their deadlines — late ones in red —
//! and what the units reported. The IOC issues (`n`) and withdraws (`x`); a unit's people
//! acknowledge (`a`), report progress (`p`, e.g. `60 đã sơ tán 24 hộ`) and report it done
//! (`d`). `j`/`k` move; `h` shows finished ones too.

use super::app::{Now, Ops};
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Live, Selection, Settings, View};
use ioc_model::{Directive, DirectiveActionRequest, DirectiveState, IssueDirectiveRequest};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Issue,
    Ack,
    Report,
    Done,
    Cancel,
}

#[derive(Clone, Copy)]
pub struct DirectiveWork {
    pub ask: RwSignal<Option<Ask>>,
    /// Finished directives shown too (from the store).
    pub history: RwSignal<bool>,
    pub finished: RwSignal<Vec<Directive>>,
}

impl DirectiveWork {
    pub fn new() -> DirectiveWork {
        DirectiveWork {
            ask: RwSignal::new(None),
            history: RwSignal::new(false),
            finished: RwSignal::new(Vec::new()),
        }
    }
}

/// What the screen lists: open ones live, then finished ones when asked for.
fn rows(live: Live, work: DirectiveWork) -> Vec<Directive> {
    let mut v: Vec<Directive> = live.directives.with(|m| m.values().cloned().collect());
    if work.history.get() {
        for d in work.finished.get() {
            if !d.state.is_open() && !v.iter().any(|x| x.id == d.id) {
                v.push(d);
            }
        }
    }
    v.sort_by(Directive::list_cmp);
    v
}

fn load_history(work: DirectiveWork) {
    spawn_local(async move {
        if let Ok(v) = client::directives::finished().await {
            work.finished.set(v);
        }
    });
}

/// The screen's keys; `true` when the key was used.
pub fn on_key(key: &str, ops: Ops, live: Live, sel: Selection, work: DirectiveWork) -> bool {
    if work.ask.get_untracked().is_some() {
        return false;
    }
    let list = rows(live, work);
    let cur = sel
        .directive
        .get_untracked()
        .and_then(|id| list.iter().find(|d| d.id == id).cloned());
    match key {
        "j" | "ArrowDown" | "k" | "ArrowUp" => {
            let down = matches!(key, "j" | "ArrowDown");
            let pos = cur
                .as_ref()
                .and_then(|c| list.iter().position(|d| d.id == c.id));
            let next = match (pos, down) {
                (None, _) => 0,
                (Some(p), true) => (p + 1).min(list.len().saturating_sub(1)),
                (Some(p), false) => p.saturating_sub(1),
            };
            sel.directive.set(list.get(next).map(|d| d.id));
            true
        }
        "n" => {
            work.ask.set(Some(Ask::Issue));
            true
        }
        "h" => {
            let h = !work.history.get_untracked();
            work.history.set(h);
            if h {
                load_history(work);
            }
            true
        }
        "Escape" => {
            sel.view.set(View::Operations);
            true
        }
        "a" | "p" | "d" | "x" => {
            let Some(d) = cur else { return true };
            let ask = match key {
                "a" if d.state == DirectiveState::Issued => Some(Ask::Ack),
                "p" if d.state.is_open() => Some(Ask::Report),
                "d" if d.state.is_open() => Some(Ask::Done),
                "x" if d.state.is_open() => Some(Ask::Cancel),
                _ => None,
            };
            match ask {
                Some(a) => work.ask.set(Some(a)),
                None => ops.toast(ops.i18n().tr("action-not-now"), true),
            }
            true
        }
        _ => false,
    }
}

fn focus_by_id(id: &str) {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}

/// `"60 đã sơ tán 24 hộ"`: a leading number is the percentage, the rest the words.
pub fn parse_report(text: &str) -> (Option<u8>, Option<String>) {
    let t = text.trim();
    let (head, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    match head.trim_end_matches('%').parse::<u8>() {
        Ok(p) => (
            Some(p),
            Some(rest.trim().to_string()).filter(|r| !r.is_empty()),
        ),
        Err(_) => (None, Some(t.to_string()).filter(|r| !r.is_empty())),
    }
}

#[component]
pub fn DirectivesView() -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let sel = expect_context::<Selection>();
    let work = expect_context::<DirectiveWork>();
    let settings = expect_context::<Settings>();
    let now = expect_context::<Now>();
    let ops = Ops::get();
    let list = Memo::new(move |_| rows(live, work));
    Effect::new(move |_| {
        let l = list.get();
        let cur = sel.directive.get_untracked();
        if cur.is_none_or(|c| !l.iter().any(|d| d.id == c)) {
            sel.directive.set(l.first().map(|d| d.id));
        }
    });
    let input = RwSignal::new(String::new());
    let f_unit = RwSignal::new(String::new());
    let f_title = RwSignal::new(String::new());
    let f_body = RwSignal::new(String::new());
    let f_within = RwSignal::new("2h".to_string());
    Effect::new(move |_| {
        let Some(ask) = work.ask.get() else { return };
        input.set(String::new());
        set_timeout(
            move || {
                focus_by_id(if ask == Ask::Issue {
                    "new-dir-unit"
                } else {
                    "dir-ask-input"
                })
            },
            std::time::Duration::from_millis(30),
        );
    });
    let submit = move || {
        let Some(ask) = work.ask.get_untracked() else {
            return;
        };
        if ask == Ask::Issue {
            let req = IssueDirectiveRequest {
                unit: f_unit.get_untracked().trim().to_string(),
                title: f_title.get_untracked().trim().to_string(),
                body: f_body.get_untracked().trim().to_string(),
                deadline: None,
                within: Some(f_within.get_untracked()),
                incident: None,
            };
            spawn_local(async move {
                match client::directives::issue(&req).await {
                    Ok(d) => {
                        live.directives.update(|m| {
                            m.insert(d.id, d.clone());
                        });
                        sel.directive.set(Some(d.id));
                        f_title.set(String::new());
                        f_body.set(String::new());
                        work.ask.set(None);
                        ops.toast(i18n.tr_n("directive-issued", "unit", d.unit_name), false);
                    }
                    Err(e) => ops.toast(i18n.tr_n("action-failed", "error", e), true),
                }
            });
            return;
        }
        let Some(id) = sel.directive.get_untracked() else {
            return;
        };
        let text = input.get_untracked();
        let (action, body) = match ask {
            Ask::Ack => (
                "ack",
                DirectiveActionRequest {
                    text: Some(text).filter(|t| !t.trim().is_empty()),
                    progress: None,
                },
            ),
            Ask::Report => {
                let (progress, text) = parse_report(&text);
                ("report", DirectiveActionRequest { text, progress })
            }
            Ask::Done => (
                "done",
                DirectiveActionRequest {
                    text: Some(text).filter(|t| !t.trim().is_empty()),
                    progress: None,
                },
            ),
            _ => (
                "cancel",
                DirectiveActionRequest {
                    text: Some(text).filter(|t| !t.trim().is_empty()),
                    progress: None,
                },
            ),
        };
        work.ask.set(None);
        spawn_local(async move {
            match client::directives::act(id, action, &body).await {
                Ok(d) => {
                    live.directives.update(|m| {
                        if d.state.is_open() {
                            m.insert(d.id, d.clone());
                        } else {
                            m.remove(&d.id);
                        }
                    });
                    if !d.state.is_open() {
                        work.finished.update(|f| f.push(d.clone()));
                    }
                    ops.toast(
                        format!(
                            "#{}: {}",
                            d.id,
                            i18n.tr(&format!("directive-state-{}", d.state.as_str()))
                        ),
                        false,
                    );
                }
                Err(e) => ops.toast(i18n.tr_n("action-failed", "error", e), true),
            }
        });
    };
    let on_keys = move |e: web_sys::KeyboardEvent| match e.key().as_str() {
        "Escape" => {
            e.stop_propagation();
            work.ask.set(None);
        }
        "Enter" => {
            e.prevent_default();
            e.stop_propagation();
            submit();
        }
        _ => {}
    };
    let tz = move || settings.timezone.get();
    view! {
        <section class="page" id="directives-page">
            <header class="page-head">
                <h1>{move || i18n.tr("directive-title")}</h1>
                <span class="muted">{move || i18n.tr("directive-keys")}</span>
                <div class="page-actions">
                    <label class="muted"><input type="checkbox" prop:checked=move || work.history.get()
                        on:change=move |_| { let h = !work.history.get_untracked(); work.history.set(h); if h { load_history(work); } }/>
                        " "{move || i18n.tr("directive-history")}</label>
                    <button class="btn primary" id="directive-new" on:click=move |_| work.ask.set(Some(Ask::Issue))>{move || i18n.tr("directive-new")}" "<kbd>"n"</kbd></button>
                </div>
            </header>
            <Show when=move || work.ask.get() == Some(Ask::Issue)>
                <form class="form directive-form" id="new-directive" on:submit=move |e| { e.prevent_default(); submit(); }>
                    <div class="row">
                        <label>{move || i18n.tr("directive-unit")}
                            <input id="new-dir-unit" list="unit-codes" prop:value=f_unit on:input=move |e| f_unit.set(event_target_value(&e)) on:keydown=on_keys/>
                        </label>
                        <label class="grow">{move || i18n.tr("directive-title-field")}
                            <input id="new-dir-title" prop:value=f_title on:input=move |e| f_title.set(event_target_value(&e)) on:keydown=on_keys/>
                        </label>
                        <label>{move || i18n.tr("directive-within")}
                            <input id="new-dir-within" prop:value=f_within on:input=move |e| f_within.set(event_target_value(&e)) on:keydown=on_keys/>
                        </label>
                    </div>
                    <label>{move || i18n.tr("directive-body")}
                        <input id="new-dir-body" prop:value=f_body on:input=move |e| f_body.set(event_target_value(&e)) on:keydown=on_keys/>
                    </label>
                </form>
            </Show>
            <Show when=move || work.ask.get().is_some_and(|a| a != Ask::Issue)>
                <form class="form ask" on:submit=move |e| { e.prevent_default(); submit(); }>
                    <label>
                        {move || i18n.tr(match work.ask.get() {
                            Some(Ask::Report) => "ask-report",
                            Some(Ask::Done) => "ask-done",
                            Some(Ask::Cancel) => "ask-cancel",
                            _ => "ask-ack",
                        })}
                        <input id="dir-ask-input" prop:value=input on:input=move |e| input.set(event_target_value(&e)) on:keydown=on_keys/>
                    </label>
                </form>
            </Show>
            <table class="grid" id="directives-table">
                <thead><tr>
                    <th>"#"</th>
                    <th>{move || i18n.tr("directive-unit")}</th>
                    <th>{move || i18n.tr("directive-title-field")}</th>
                    <th>{move || i18n.tr("directive-deadline")}</th>
                    <th>{move || i18n.tr("rule-state")}</th>
                    <th class="num">{move || i18n.tr("directive-progress")}</th>
                    <th>{move || i18n.tr("directive-issued-by")}</th>
                </tr></thead>
                <tbody>
                    <For
                        each=move || list.get()
                        key=|d| (d.id, d.updated_at, d.state.as_str())
                        children=move |d| {
                            let id = d.id;
                            let deadline = d.deadline;
                            let open = d.state.is_open();
                            let late = move || { now.0.track(); d.overdue || (open && deadline <= format::now()) };
                            let chosen = move || sel.directive.get() == Some(id);
                            let reports = d.reports.clone();
                            let state = d.state.as_str();
                            view! {
                                <tr class="clickable directive" class:chosen=chosen class:late=late data-id=id data-state=state
                                    on:click=move |_| sel.directive.set(Some(id))>
                                    <td>{id}{d.incident.map(|i| view! { <div><a href="#" on:click=move |e| { e.prevent_default(); e.stop_propagation(); ops.show_incident(i, None); }>{format!("⚑ #{i}")}</a></div> })}</td>
                                    <td class="strong">{d.unit_name.clone()}</td>
                                    <td>{d.title.clone()}<div class="muted">{d.body.clone()}</div>
                                        <Show when=chosen>
                                            <ol class="timeline">
                                                {reports.iter().rev().map(|r| view! {
                                                    <li class="event" class:not-applied=r.kind == "not_applied">
                                                        <span class="when">{format::date_time(r.at, &tz(), i18n.lang.get_untracked())}</span>
                                                        <span class="who">{match &r.node {
                                                            Some(n) => format!("{} @ {n}", r.actor),
                                                            None => r.actor.clone(),
                                                        }}</span>
                                                        <span class="what">{i18n.tr_or(&format!("dreport-{}", r.kind), &r.kind)}{r.progress.map(|p| format!(" {p} %"))}</span>
                                                        {r.text.clone().map(|t| view! { <span class="comment">{t}</span> })}
                                                    </li>
                                                }).collect_view()}
                                            </ol>
                                        </Show>
                                    </td>
                                    <td>{move || format::date_time(deadline, &tz(), i18n.lang.get())}
                                        <Show when=move || open>
                                            <div class="due">{move || {
                                                let m = (deadline - now.0.get()).num_minutes();
                                                if m >= 0 { i18n.tr_n("step-due-in", "minutes", m) } else { i18n.tr_n("step-late-by", "minutes", -m) }
                                            }}</div>
                                        </Show>
                                    </td>
                                    <td>{move || i18n.tr(&format!("directive-state-{state}"))}</td>
                                    <td class="num"><span class="progress"><i style=format!("width:{}%", d.progress)></i></span>" "{d.progress}" %"</td>
                                    <td class="muted">{d.issued_by.clone()}</td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            <Show when=move || list.with(|l| l.is_empty())>
                <p class="muted">{move || i18n.tr("directive-none")}</p>
            </Show>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::parse_report;

    #[test]
    fn a_report_line_is_a_percentage_and_words() {
        assert_eq!(
            parse_report("60 đã sơ tán 24 hộ"),
            (Some(60), Some("đã sơ tán 24 hộ".into()))
        );
        assert_eq!(parse_report("75%"), (Some(75), None));
        assert_eq!(parse_report("đang làm"), (None, Some("đang làm".into())));
        assert_eq!(parse_report("  "), (None, None));
    }
}
