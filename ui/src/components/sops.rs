//! The SOP screen (`7`): every standard operating procedure with its version and steps; an
//! editor that checks the TOML as you type (line and column of a mistake), shows the steps
//! as they will run (what comes after what, who works each, its SLA, its condition), saves a
//! new version (incidents already running keep theirs), shows earlier versions and removes a
//! template.

use super::app::Ops;
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::Settings;
use ioc_model::{RuleCheck, SopInfo, ValidateBody};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

const NEW_SOP: &str = r#"name = "su-co-moi"
title = "Quy trình mới"
categories = []

[[step]]
id = "xac_minh"
title = "Xác minh thông tin"
role = "operator"
sla = "15m"
checklist = ["Kiểm tra số liệu", "Xem camera khu vực"]

[[step]]
id = "xu_ly"
title = "Xử lý"
role = "supervisor"
require = ["comment"]
"#;

#[derive(Clone, PartialEq)]
struct Editing {
    /// The template's name before the edit; `None` for a new one.
    replacing: Option<String>,
    /// Showing an earlier version (read-only).
    old_version: Option<u32>,
}

#[component]
pub fn SopsView() -> impl IntoView {
    let i18n = use_i18n();
    let settings = expect_context::<Settings>();
    let ops = Ops::get();
    let list = RwSignal::new(Vec::<SopInfo>::new());
    let load_error = RwSignal::new(None::<String>);
    let refresh = move || {
        spawn_local(async move {
            match client::sops::list().await {
                Ok(l) => {
                    list.set(l);
                    load_error.set(None);
                }
                Err(e) => load_error.set(Some(e)),
            }
        })
    };
    refresh();
    let editing = RwSignal::new(None::<Editing>);
    let text = RwSignal::new(String::new());
    let check = RwSignal::new(None::<RuleCheck>);
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
                    let c = match client::sops::validate(&body).await {
                        Ok(c) => c,
                        Err(e) => RuleCheck {
                            ok: false,
                            name: None,
                            problems: vec![ioc_model::RuleProblem {
                                rule: None,
                                origin: "text".into(),
                                line: 1,
                                column: 1,
                                message: e,
                            }],
                        },
                    };
                    check.set(Some(c));
                });
            },
            Duration::from_millis(300),
        )
        .ok();
        pending.set_value(h);
    };
    let open = move |s: Option<SopInfo>| {
        check.set(None);
        match s {
            Some(s) => {
                text.set(s.text.clone());
                editing.set(Some(Editing {
                    replacing: Some(s.name.clone()),
                    old_version: None,
                }));
            }
            None => {
                text.set(NEW_SOP.to_string());
                editing.set(Some(Editing {
                    replacing: None,
                    old_version: None,
                }));
            }
        }
        validate();
    };
    let show_version = move |name: String, v: u32| {
        spawn_local(async move {
            match client::sops::version_text(&name, v).await {
                Ok(t) => {
                    text.set(t);
                    editing.set(Some(Editing {
                        replacing: Some(name),
                        old_version: Some(v),
                    }));
                    check.set(None);
                }
                Err(e) => ops.toast(e, true),
            }
        });
    };
    let save = move |_| {
        let Some(ed) = editing.get_untracked() else {
            return;
        };
        let body = ioc_model::RuleText {
            text: text.get_untracked(),
        };
        spawn_local(async move {
            match client::sops::save(ed.replacing.as_deref(), &body).await {
                Ok((200 | 201, body)) => {
                    if let Ok(info) = serde_json::from_str::<SopInfo>(&body) {
                        ops.toast(
                            i18n.tr_with(
                                "sop-saved",
                                &[
                                    ("name", info.name.clone().into()),
                                    ("version", info.version.into()),
                                ],
                            ),
                            false,
                        );
                        editing.set(Some(Editing {
                            replacing: Some(info.name.clone()),
                            old_version: None,
                        }));
                    }
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
            match client::sops::remove(&name).await {
                Ok(()) => {
                    ops.toast(i18n.tr_n("sop-deleted", "name", name), false);
                    editing.set(None);
                    refresh();
                }
                Err(e) => ops.toast(e, true),
            }
        });
    };
    let chosen = move || {
        let name = editing.get()?.replacing?;
        list.get().into_iter().find(|s| s.name == name)
    };
    // An old version, or a template kept from the province (changed at the IOC).
    let provinces = move || chosen().is_some_and(|s| s.province);
    let read_only = move || editing.get().is_some_and(|e| e.old_version.is_some()) || provinces();
    view! {
        <section class="page" id="sops-page">
            <header class="page-head">
                <h1>{move || i18n.tr("sop-title")}</h1>
                <span class="muted">{move || i18n.tr("sop-hint")}</span>
                <div class="page-actions">
                    <button class="btn primary" id="sop-new" on:click=move |_| open(None)>{move || i18n.tr("sop-add")}</button>
                </div>
            </header>
            <Show when=move || load_error.get().is_some()>
                <p class="error">{move || load_error.get().unwrap_or_default()}</p>
            </Show>
            <div class="rules-layout">
                <table class="grid" id="sops-table">
                    <thead><tr>
                        <th>{move || i18n.tr("sop-name")}</th>
                        <th>{move || i18n.tr("sop-categories")}</th>
                        <th class="num">{move || i18n.tr("sop-steps")}</th>
                        <th>{move || i18n.tr("sop-version")}</th>
                    </tr></thead>
                    <tbody>
                        <For
                            each=move || list.get()
                            key=|s| (s.name.clone(), s.version)
                            children=move |s| {
                                let name = s.name.clone();
                                let is_chosen = { let n = name.clone(); move || editing.get().and_then(|e| e.replacing).as_deref() == Some(n.as_str()) };
                                let s2 = s.clone();
                                let lang = i18n.lang.get_untracked();
                                let updated = format::date_time(s.updated_at, &settings.timezone.get_untracked(), lang);
                                view! {
                                    <tr class="clickable" class:chosen=is_chosen data-sop=name.clone() on:click=move |_| open(Some(s2.clone()))>
                                        <td class="strong">{s.title.clone()}
                                            {s.province.then(|| view! { <span class="province-badge">{move || i18n.tr("from-province")}</span> })}
                                            <div class="muted mono">{name.clone()}</div></td>
                                        <td>{s.categories.iter().map(|c| i18n.tr_or(&format!("cat-{c}"), c)).collect::<Vec<_>>().join(", ")}</td>
                                        <td class="num">{s.steps.len()}</td>
                                        <td>"v"{s.version}<div class="muted">{updated}" · "{s.updated_by.clone()}</div></td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
                <Show when=move || editing.get().is_some()>
                    <div class="rule-editor" id="sop-editor">
                        <h2>{move || editing.get().and_then(|e| e.replacing).unwrap_or_else(|| i18n.tr("sop-new"))}
                            {move || editing.get().and_then(|e| e.old_version).map(|v| format!(" · v{v}"))}</h2>
                        {move || chosen().map(|s| {
                            let name = s.name.clone();
                            view! {
                                <div class="versions">{move || i18n.tr("sop-versions")}": "
                                    {s.versions.clone().into_iter().map(|v| {
                                        let name = name.clone();
                                        let s = s.clone();
                                        let current = v == s.version;
                                        view! {
                                            <button class="btn small" class:primary=move || editing.get().and_then(|e| e.old_version) == Some(v) || (current && editing.get().is_some_and(|e| e.old_version.is_none()))
                                                on:click=move |_| if current { open(Some(s.clone())) } else { show_version(name.clone(), v) }>
                                                {format!("v{v}")}
                                            </button>
                                        }
                                    }).collect_view()}
                                </div>
                            }
                        })}
                        <Show when=move || read_only() && !provinces()>
                            <p class="muted">{move || i18n.tr("sop-old-version")}</p>
                        </Show>
                        <Show when=provinces>
                            <p class="muted" id="sop-province">{move || i18n.tr("sop-province")}</p>
                        </Show>
                        <textarea class="toml" id="sop-text" rows="20" spellcheck="false"
                            prop:readOnly=read_only
                            prop:value=move || text.get()
                            on:input=move |e| { text.set(event_target_value(&e)); validate(); }></textarea>
                        <div class="rule-check" id="sop-check">
                            {move || match check.get() {
                                None if read_only() => view! { <span></span> }.into_any(),
                                None => view! { <span class="muted">{i18n.tr("rule-checking")}</span> }.into_any(),
                                Some(c) if c.ok => view! { <span class="ok">{i18n.tr("sop-valid")}</span> }.into_any(),
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
                            <Show when=move || !read_only()>
                                <button class="btn primary" id="sop-save" prop:disabled=move || !check.get().is_some_and(|c| c.ok) on:click=save>{move || i18n.tr("rule-save")}</button>
                            </Show>
                            <Show when=move || !provinces() && editing.get().is_some_and(|e| e.replacing.is_some() && e.old_version.is_none())>
                                <button class="btn danger" id="sop-delete" on:click=remove>{move || i18n.tr("rule-delete")}</button>
                            </Show>
                            <button class="btn" on:click=move |_| editing.set(None)>{move || i18n.tr("src-cancel")}</button>
                        </div>
                        {move || chosen().filter(|_| editing.get().is_none_or(|e| e.old_version.is_none())).map(|s| view! {
                            <h3>{i18n.tr("sop-flow")}</h3>
                            <ol class="sop-flow" id="sop-flow">
                                {s.steps.into_iter().map(|st| {
                                    let after = if st.after.is_empty() { i18n.tr("sop-starts") } else { i18n.tr_n("sop-after", "steps", st.after.join(", ")) };
                                    view! {
                                        <li>
                                            <strong>{st.title.clone()}</strong>" "<span class="muted mono">{st.id.clone()}</span>
                                            <div class="muted">
                                                {i18n.tr(&format!("role-{}", st.role.as_str()))}" · "{after}
                                                {st.sla_seconds.map(|s| format!(" · SLA {}", humantime::format_duration(Duration::from_secs(s))))}
                                                {(st.checklist > 0).then(|| format!(" · ☑ {}", st.checklist))}
                                            </div>
                                            {(!st.answers.is_empty()).then(|| view! { <div>{i18n.tr("step-question")}": "{st.answers.join(" / ")}</div> })}
                                            {st.condition.map(|c| view! { <div class="mono muted">"if "{c}</div> })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ol>
                        })}
                    </div>
                </Show>
            </div>
        </section>
    }
}
