//! The rules screen: every event rule with where it comes from and whether it runs; an editor
//! that validates as you type (TOML, keys, CEL, with line and column); save and remove; and a
//! backtest that replays stored history through the rule being edited and lists when it
//! would have fired.

use super::app::Ops;
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::Settings;
use ioc_model::{BacktestResponse, RuleCheck, RuleInfo, RulesResponse, ValidateBody};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

const NEW_RULE: &str = r#"name = "pm25-rat-cao"
when = "metric == 'pm25' && value > 250.0"
for = "10m"
severity = "critical"
message = "{entity.name}: PM2.5 {value} µg/m³"
category = "air_quality"
"#;

/// What the editor holds.
#[derive(Clone, PartialEq)]
struct Editing {
    /// The rule's name before the edit; `None` for a new rule.
    replacing: Option<String>,
    editable: bool,
}

#[component]
pub fn RulesView() -> impl IntoView {
    let i18n = use_i18n();
    let settings = expect_context::<Settings>();
    let ops = Ops::get();
    let list = RwSignal::new(RulesResponse::default());
    let load_error = RwSignal::new(None::<String>);
    let refresh = move || {
        spawn_local(async move {
            match client::rules::list().await {
                Ok(r) => {
                    list.set(r);
                    load_error.set(None);
                }
                Err(e) => load_error.set(Some(e)),
            }
        })
    };
    refresh();
    // The files can change under us (hot reload): look again every few seconds.
    let timer = set_interval_with_handle(refresh, Duration::from_secs(5)).ok();
    on_cleanup(move || {
        if let Some(t) = timer {
            t.clear();
        }
    });

    let editing = RwSignal::new(None::<Editing>);
    let text = RwSignal::new(String::new());
    let check = RwSignal::new(None::<RuleCheck>);
    let backtest = RwSignal::new(None::<Result<BacktestResponse, String>>);
    let testing = RwSignal::new(false);
    let hours = RwSignal::new(24i64);

    // Validation as you type: a moment after the last key.
    let pending = StoredValue::new(None::<TimeoutHandle>);
    let validate = move || {
        if let Some(h) = pending.get_value() {
            h.clear();
        }
        let h = set_timeout_with_handle(
            move || {
                let body = ValidateBody {
                    text: text.get_untracked(),
                    replacing: editing.get_untracked().and_then(|e| e.replacing),
                };
                spawn_local(async move {
                    match client::rules::validate(&body).await {
                        Ok(c) => check.set(Some(c)),
                        Err(e) => check.set(Some(RuleCheck {
                            ok: false,
                            name: None,
                            problems: vec![ioc_model::RuleProblem {
                                rule: None,
                                origin: "text".into(),
                                line: 1,
                                column: 1,
                                message: e,
                            }],
                        })),
                    }
                });
            },
            Duration::from_millis(300),
        )
        .ok();
        pending.set_value(h);
    };

    let open = move |r: Option<RuleInfo>| {
        backtest.set(None);
        check.set(None);
        match r {
            Some(r) => {
                text.set(r.text.clone());
                editing.set(Some(Editing {
                    replacing: Some(r.name.clone()),
                    editable: r.editable,
                }));
            }
            None => {
                text.set(NEW_RULE.to_string());
                editing.set(Some(Editing {
                    replacing: None,
                    editable: true,
                }));
            }
        }
        validate();
    };

    let save = move |_| {
        let Some(ed) = editing.get_untracked() else {
            return;
        };
        let body = ioc_model::RuleText {
            text: text.get_untracked(),
        };
        spawn_local(async move {
            match client::rules::save(ed.replacing.as_deref(), &body).await {
                Ok((200 | 201, body)) => {
                    let c: Option<RuleCheck> = serde_json::from_str(&body).ok();
                    let name = c.and_then(|c| c.name).unwrap_or_default();
                    ops.toast(i18n.tr_n("rule-saved", "name", name.clone()), false);
                    editing.set(Some(Editing {
                        replacing: Some(name),
                        editable: true,
                    }));
                    refresh();
                }
                Ok((_, body)) => match serde_json::from_str::<RuleCheck>(&body) {
                    Ok(c) => check.set(Some(c)),
                    Err(_) => ops.toast(body, true),
                },
                Err(e) => ops.toast(e, true),
            }
        });
    };

    let remove = move |_| {
        let Some(name) = editing.get_untracked().and_then(|e| e.replacing) else {
            return;
        };
        spawn_local(async move {
            match client::rules::remove(&name).await {
                Ok(()) => {
                    ops.toast(i18n.tr_n("rule-deleted", "name", name), false);
                    editing.set(None);
                    refresh();
                }
                Err(e) => ops.toast(e, true),
            }
        });
    };

    let run_backtest = move |_| {
        let to = format::now();
        let from = to - chrono::Duration::hours(hours.get_untracked());
        let body = ioc_model::BacktestRequest {
            text: text.get_untracked(),
            from: Some(from),
            to: Some(to),
        };
        testing.set(true);
        spawn_local(async move {
            let r = match client::rules::backtest(&body).await {
                Ok((200, body)) => serde_json::from_str(&body).map_err(|e| e.to_string()),
                Ok((_, body)) => match serde_json::from_str::<RuleCheck>(&body) {
                    Ok(c) => {
                        check.set(Some(c));
                        Err(i18n.tr("rule-fix-first"))
                    }
                    Err(_) => Err(body),
                },
                Err(e) => Err(e),
            };
            testing.set(false);
            backtest.set(Some(r));
        });
    };

    let fmt_time = move |t: chrono::DateTime<chrono::Utc>| {
        format::date_time(t, &settings.timezone.get(), i18n.lang.get())
    };

    view! {
        <section class="page" id="rules-page">
            <header class="page-head">
                <h1>{move || i18n.tr("rule-title")}</h1>
                <span class="muted">{move || list.with(|l| l.folder.clone().map(|f| i18n.tr_n("rule-folder", "folder", f)).unwrap_or_default())}</span>
                <div class="page-actions">
                    <button class="btn primary" id="rule-new" on:click=move |_| open(None)>
                        {move || i18n.tr("rule-add")}
                    </button>
                </div>
            </header>
            <Show when=move || load_error.get().is_some()>
                <p class="error">{move || load_error.get().unwrap_or_default()}</p>
            </Show>
            <Show when=move || list.with(|l| !l.problems.is_empty())>
                <div class="problems" id="rule-problems">
                    <For
                        each=move || list.get().problems
                        key=|p| (p.origin.clone(), p.rule.clone(), p.line, p.column, p.message.clone())
                        children=move |p| view! {
                            <p class="error">
                                {format!("{} {}:{} — {}{}", p.origin, p.line, p.column,
                                    p.rule.map(|r| format!("{r}: ")).unwrap_or_default(), p.message)}
                            </p>
                        }
                    />
                </div>
            </Show>
            <div class="rules-layout">
                <table class="grid" id="rules-table">
                    <thead>
                        <tr>
                            <th>{move || i18n.tr("rule-name")}</th>
                            <th>{move || i18n.tr("rule-severity")}</th>
                            <th>{move || i18n.tr("rule-for")}</th>
                            <th>{move || i18n.tr("rule-origin")}</th>
                            <th>{move || i18n.tr("rule-state")}</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || list.get().rules
                            key=|r| (r.name.clone(), r.text.clone(), r.error.clone(), r.origin.clone())
                            children=move |r| {
                                let name = r.name.clone();
                                let sev = r.severity.as_str();
                                let state = if r.error.is_some() { "error" } else if r.enabled { "running" } else { "disabled" };
                                let chosen = {
                                    let name = name.clone();
                                    move || editing.get().and_then(|e| e.replacing).as_deref() == Some(name.as_str())
                                };
                                let r2 = r.clone();
                                view! {
                                    <tr data-rule=name.clone() class:chosen=chosen class="clickable" on:click=move |_| open(Some(r2.clone()))>
                                        <td class="strong">{name.clone()}<div class="muted mono">{r.when.clone()}</div></td>
                                        <td><span class=format!("sev-badge {sev}")>{move || i18n.tr(&format!("sev-{sev}"))}</span></td>
                                        <td>{r.for_.clone()}</td>
                                        <td class="muted">{r.origin.clone()}</td>
                                        <td title=r.error.clone().unwrap_or_default()>
                                            <span class=format!("state-dot {state}")></span>
                                            {move || i18n.tr(&format!("rule-state-{state}"))}
                                        </td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
                <Show when=move || editing.get().is_some()>
                    <div class="rule-editor" id="rule-editor">
                        <h2>{move || editing.get().and_then(|e| e.replacing).unwrap_or_else(|| i18n.tr("rule-new"))}</h2>
                        <Show when=move || !editing.get().is_some_and(|e| e.editable)>
                            <p class="muted">{move || i18n.tr("rule-read-only")}</p>
                        </Show>
                        <textarea
                            class="toml"
                            id="rule-text"
                            rows="12"
                            spellcheck="false"
                            prop:readOnly=move || !editing.get().is_some_and(|e| e.editable)
                            prop:value=move || text.get()
                            on:input=move |e| { text.set(event_target_value(&e)); validate(); }
                        ></textarea>
                        <div class="rule-check" id="rule-check">
                            {move || match check.get() {
                                None => view! { <span class="muted">{i18n.tr("rule-checking")}</span> }.into_any(),
                                Some(c) if c.ok => view! { <span class="ok">{i18n.tr("rule-valid")}</span> }.into_any(),
                                Some(c) => view! {
                                    <ul class="error">
                                        {c.problems.into_iter().map(|p| {
                                            let mut args = fluent_bundle::FluentArgs::new();
                                            args.set("line", p.line);
                                            args.set("column", p.column);
                                            let at = crate::i18n::translate(i18n.lang.get(), "rule-at", Some(&args));
                                            view! { <li>{format!("{at}: {}", p.message)}</li> }
                                        }).collect_view()}
                                    </ul>
                                }.into_any(),
                            }}
                        </div>
                        <div class="page-actions">
                            <Show when=move || editing.get().is_some_and(|e| e.editable)>
                                <button class="btn primary" id="rule-save"
                                    prop:disabled=move || !check.get().is_some_and(|c| c.ok)
                                    on:click=save>{move || i18n.tr("rule-save")}</button>
                            </Show>
                            <Show when=move || editing.get().is_some_and(|e| e.editable && e.replacing.is_some())>
                                <button class="btn danger" id="rule-delete" on:click=remove>{move || i18n.tr("rule-delete")}</button>
                            </Show>
                            <select id="backtest-period" on:change=move |e| hours.set(event_target_value(&e).parse().unwrap_or(24))>
                                <option value="6">{move || i18n.tr_n("rule-last-hours", "hours", 6)}</option>
                                <option value="24" selected>{move || i18n.tr_n("rule-last-hours", "hours", 24)}</option>
                                <option value="168">{move || i18n.tr_n("rule-last-hours", "hours", 168)}</option>
                            </select>
                            <button class="btn" id="rule-backtest" prop:disabled=move || testing.get() on:click=run_backtest>
                                {move || if testing.get() { i18n.tr("rule-testing") } else { i18n.tr("rule-backtest") }}
                            </button>
                            <button class="btn" on:click=move |_| editing.set(None)>{move || i18n.tr("src-cancel")}</button>
                        </div>
                        {move || backtest.get().map(|r| match r {
                            Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                            Ok(b) => {
                                let mut args = fluent_bundle::FluentArgs::new();
                                args.set("firings", b.firings.len());
                                args.set("observations", b.observations);
                                let summary = crate::i18n::translate(i18n.lang.get(), "rule-backtest-summary", Some(&args));
                                view! {
                                    <div class="backtest" id="backtest-result">
                                        <p class="strong">{summary}</p>
                                        {b.truncated.then(|| view! { <p class="warn">{i18n.tr("rule-truncated")}</p> })}
                                        <table class="grid">
                                            <thead><tr>
                                                <th>{i18n.tr("rule-entity")}</th>
                                                <th>{i18n.tr("rule-raised")}</th>
                                                <th>{i18n.tr("rule-cleared")}</th>
                                                <th class="num">{i18n.tr("rule-value")}</th>
                                                <th class="num">{i18n.tr("rule-peak")}</th>
                                                <th>{i18n.tr("rule-severity")}</th>
                                            </tr></thead>
                                            <tbody>
                                                {b.firings.into_iter().take(500).map(|f| {
                                                    let sev = f.severity.as_str();
                                                    view! {
                                                        <tr class="firing">
                                                            <td>{f.entity_name.clone()}<div class="muted">{f.unit.clone().unwrap_or_default()}</div></td>
                                                            <td>{fmt_time(f.raised_at)}</td>
                                                            <td>{f.cleared_at.map(fmt_time).unwrap_or_else(|| i18n.tr("rule-still-firing"))}</td>
                                                            <td class="num">{format::value(&f.metric, f.value)}</td>
                                                            <td class="num">{format::value(&f.metric, f.peak)}</td>
                                                            <td><span class=format!("sev-badge {sev}")>{i18n.tr(&format!("sev-{sev}"))}</span></td>
                                                        </tr>
                                                    }
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                }.into_any()
                            }
                        })}
                    </div>
                </Show>
            </div>
        </section>
    }
}
