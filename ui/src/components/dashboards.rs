//! The dashboards screen (`9`): the built-in leader and city dashboards and everyone's own,
//! on a grid of 12 columns; a period to look at (live, today, this week, this month, or a
//! day); and an editor: add panels of any kind, move and resize them, name the dashboard,
//! share it with roles, save it (kept by the server, there after a restart), copy a
//! built-in one. "Open the wall" shows the video wall (windows of their own in the desktop
//! app, a browser window elsewhere).

use super::app::Ops;
use super::panels::{KpiValues, PanelView};
use crate::api;
use crate::client;
use crate::i18n::use_i18n;
use crate::state::Live;
use ioc_model::{Dashboard, KpiValue, Panel, PanelKind, Role, Severity, GRID_COLUMNS};
use leptos::prelude::*;
use leptos::task::spawn_local;

const CHOSEN: &str = "ioc.dashboard";

/// The first free row under every panel.
fn bottom(d: &Dashboard) -> u8 {
    d.panels.iter().map(|p| p.y + p.h).max().unwrap_or(0)
}

/// Whether `p` fits next to the others.
fn free(d: &Dashboard, p: &Panel) -> bool {
    p.fits()
        && d.panels
            .iter()
            .filter(|o| o.id != p.id)
            .all(|o| p.x + p.w <= o.x || o.x + o.w <= p.x || p.y + p.h <= o.y || o.y + o.h <= p.y)
}

/// Opens the video wall: the desktop app's own windows, else a browser window.
pub fn open_wall(ops: Ops) {
    spawn_local(async move {
        match client::dashboards::open_desktop_wall().await {
            Ok(_) => ops.toast(ops.i18n().tr("wall-opened"), false),
            Err(_) => {
                if let Some(w) = web_sys::window() {
                    let _ = w.open_with_url_and_target("/wall?screen=1", "ioc-wall-1");
                }
            }
        }
    });
}

#[component]
pub fn DashboardsView() -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let me = expect_context::<super::login::Session>();
    let ops = Ops::get();
    let list = RwSignal::new(Vec::<Dashboard>::new());
    let chosen = RwSignal::new(api::local_storage_get(CHOSEN).unwrap_or_else(|| "leader".into()));
    let editing = RwSignal::new(None::<Dashboard>);
    let refresh = move || {
        spawn_local(async move {
            match client::dashboards::list().await {
                Ok(l) => list.set(l),
                Err(e) => ops.toast(e, true),
            }
        })
    };
    refresh();
    Effect::new(move |_| {
        api::local_storage_set(CHOSEN, &chosen.get());
    });
    // The period looked at: "" live, or day/week/month with a date.
    let period = RwSignal::new(String::new());
    let date = RwSignal::new(crate::format::now().format("%Y-%m-%d").to_string());
    let fetched = RwSignal::new(Vec::<KpiValue>::new());
    Effect::new(move |_| {
        let (p, d) = (period.get(), date.get());
        if p.is_empty() {
            return;
        }
        spawn_local(async move {
            if let Ok(v) = client::kpis::all(&p, &d).await {
                fetched.set(v);
            }
        });
    });
    let values = Signal::derive(move || {
        if period.get().is_empty() {
            live.kpis.get()
        } else {
            fetched.get()
        }
    });
    provide_context(KpiValues(values));

    let current = Memo::new(move |_| {
        editing.get().or_else(|| {
            let id = chosen.get();
            list.with(|l| l.iter().find(|d| d.id == id).or_else(|| l.first()).cloned())
        })
    });
    let user = move || me.0.get().map(|m| (m.user.username.clone(), m.user.role));
    let mine = move |d: &Dashboard| {
        !d.builtin && user().is_none_or(|(u, r)| d.owner == u || r == Role::Admin)
    };
    let start_edit = move |copy: bool| {
        let Some(mut d) = current.get_untracked() else {
            return;
        };
        if copy {
            d.id = String::new();
            d.builtin = false;
            d.name = format!("{} ({})", d.name, i18n.tr("dash-copy-of"));
            d.shared_roles = Vec::new();
        }
        editing.set(Some(d));
    };
    let new_dash = move |_| {
        editing.set(Some(Dashboard {
            id: String::new(),
            name: i18n.tr("dash-new-name"),
            owner: String::new(),
            shared_roles: Vec::new(),
            builtin: false,
            panels: Vec::new(),
            updated_at: crate::format::now(),
        }));
    };
    let save = move |_| {
        let Some(d) = editing.get_untracked() else {
            return;
        };
        spawn_local(async move {
            let r = if d.id.is_empty() {
                client::dashboards::create(&d).await
            } else {
                match client::dashboards::replace(&d).await {
                    Ok((200, body)) => serde_json::from_str(&body).map_err(|e| e.to_string()),
                    Ok((_, body)) => Err(serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["error"].as_str().map(str::to_string))
                        .unwrap_or(body)),
                    Err(e) => Err(e),
                }
            };
            match r {
                Ok(saved) => {
                    chosen.set(saved.id.clone());
                    editing.set(None);
                    ops.toast(i18n.tr_n("dash-saved", "name", saved.name), false);
                    refresh();
                }
                Err(e) => ops.toast(i18n.tr_n("action-failed", "error", e), true),
            }
        });
    };
    let remove = move |_| {
        let Some(d) = current.get_untracked() else {
            return;
        };
        spawn_local(async move {
            match client::dashboards::remove(&d.id).await {
                Ok(()) => {
                    chosen.set("leader".into());
                    refresh();
                }
                Err(e) => ops.toast(e, true),
            }
        });
    };
    // The new panel's form.
    let f_kind = RwSignal::new("kpi".to_string());
    let f_kpi = RwSignal::new(String::new());
    let f_entity = RwSignal::new(String::new());
    let f_metric = RwSignal::new(String::new());
    let f_text = RwSignal::new(String::new());
    let f_title = RwSignal::new(String::new());
    let add_panel = move |_| {
        editing.update(|d| {
            let Some(d) = d else { return };
            let kind = PanelKind::parse(&f_kind.get_untracked()).unwrap_or(PanelKind::Kpi);
            let (w, h) = match kind {
                PanelKind::Kpi => (3, 2),
                PanelKind::Map => (6, 5),
                PanelKind::Table => (12, 4),
                PanelKind::Text => (4, 2),
                PanelKind::Camera => (4, 3),
                _ => (6, 3),
            };
            let n = (1..)
                .find(|n| !d.panels.iter().any(|p| p.id == format!("p{n}")))
                .unwrap_or(1);
            let kpi = Some(f_kpi.get_untracked()).filter(|k| !k.is_empty());
            let mut p = Panel {
                id: format!("p{n}"),
                kind,
                x: 0,
                y: bottom(d),
                w,
                h,
                title: Some(f_title.get_untracked()).filter(|t| !t.trim().is_empty()),
                kpi: kpi.clone(),
                kpis: if kind == PanelKind::Table {
                    live.kpis
                        .get_untracked()
                        .into_iter()
                        .map(|k| k.id)
                        .collect()
                } else {
                    Vec::new()
                },
                entity: Some(f_entity.get_untracked()).filter(|e| !e.is_empty()),
                metric: Some(f_metric.get_untracked()).filter(|m| !m.is_empty()),
                days: Some(7),
                text: Some(f_text.get_untracked()).filter(|t| !t.trim().is_empty()),
                min_severity: (kind == PanelKind::Alerts).then_some(Severity::Major),
                limit: None,
            };
            // Next to the last one when there is room.
            for x in 0..GRID_COLUMNS.saturating_sub(w - 1) {
                let mut q = p.clone();
                q.x = x;
                q.y = bottom(d).saturating_sub(h);
                if free(d, &q) {
                    p = q;
                    break;
                }
            }
            d.panels.push(p);
        });
    };
    let nudge = move |id: String, dx: i8, dy: i8, dw: i8, dh: i8| {
        editing.update(|d| {
            let Some(d) = d else { return };
            let Some(p) = d.panels.iter().find(|p| p.id == id).cloned() else {
                return;
            };
            let mut q = p.clone();
            q.x = (q.x as i8 + dx).max(0) as u8;
            q.y = (q.y as i8 + dy).max(0) as u8;
            q.w = (q.w as i8 + dw).max(1) as u8;
            q.h = (q.h as i8 + dh).max(1) as u8;
            if free(d, &q) {
                if let Some(slot) = d.panels.iter_mut().find(|x| x.id == id) {
                    *slot = q;
                }
            }
        });
    };
    let drop_panel = move |id: String| {
        editing.update(|d| {
            if let Some(d) = d {
                d.panels.retain(|p| p.id != id);
            }
        });
    };

    view! {
        <section class="page dashboards-page" id="dashboards-page">
            <header class="page-head">
                <div class="dash-tabs" id="dash-tabs">
                    <For each=move || list.get() key=|d| (d.id.clone(), d.updated_at) children=move |d| {
                        let id = d.id.clone();
                        let active = { let id = id.clone(); move || chosen.get() == id && editing.get().is_none() };
                        view! {
                            <button class="view-tab" class:active=active data-dashboard=id.clone()
                                on:click=move |_| { editing.set(None); chosen.set(id.clone()); }>{d.name.clone()}</button>
                        }
                    }/>
                </div>
                <div class="page-actions">
                    <select id="dash-period" prop:value=period on:change=move |e| period.set(event_target_value(&e))>
                        <option value="">{move || i18n.tr("dash-live")}</option>
                        <option value="day">{move || i18n.tr("dash-day")}</option>
                        <option value="week">{move || i18n.tr("dash-week")}</option>
                        <option value="month">{move || i18n.tr("dash-month")}</option>
                    </select>
                    <Show when=move || !period.get().is_empty()>
                        <input type="date" id="dash-date" prop:value=date on:change=move |e| date.set(event_target_value(&e))/>
                    </Show>
                    <Show when=move || editing.get().is_none()>
                        <button class="btn" id="dash-new" on:click=new_dash>{move || i18n.tr("dash-new")}</button>
                        <button class="btn" id="dash-copy" on:click=move |_| start_edit(true)>{move || i18n.tr("dash-copy")}</button>
                        <Show when=move || current.get().is_some_and(|d| mine(&d))>
                            <button class="btn" id="dash-edit" on:click=move |_| start_edit(false)>{move || i18n.tr("dash-edit")}</button>
                            <button class="btn danger" id="dash-delete" on:click=remove>{move || i18n.tr("rule-delete")}</button>
                        </Show>
                        <button class="btn primary" id="wall-open" on:click=move |_| open_wall(ops)>{move || i18n.tr("wall-open")}</button>
                    </Show>
                </div>
            </header>
            <Show when=move || editing.get().is_some()>
                <form class="form dash-editor" id="dash-editor" on:submit=move |e| { e.prevent_default(); }>
                    <div class="row">
                        <label class="grow">{move || i18n.tr("dash-name")}
                            <input id="dash-name" prop:value=move || editing.get().map(|d| d.name).unwrap_or_default()
                                on:input=move |e| { let v = event_target_value(&e); editing.update(|d| if let Some(d) = d { d.name = v; }); }/>
                        </label>
                        <div class="share">{move || i18n.tr("dash-share")}
                            {Role::ALL.into_iter().filter(|r| *r != Role::Node).map(|r| view! {
                                <label><input type="checkbox" class="dash-share" data-role=r.as_str()
                                    prop:checked=move || editing.get().is_some_and(|d| d.shared_roles.contains(&r))
                                    on:change=move |_| editing.update(|d| if let Some(d) = d {
                                        if d.shared_roles.contains(&r) { d.shared_roles.retain(|x| *x != r) } else { d.shared_roles.push(r) }
                                    })/>
                                    {move || i18n.tr(&format!("role-{}", r.as_str()))}</label>
                            }).collect_view()}
                        </div>
                    </div>
                    <div class="row">
                        <label>{move || i18n.tr("dash-panel-kind")}
                            <select id="panel-kind" prop:value=f_kind on:change=move |e| f_kind.set(event_target_value(&e))>
                                {PanelKind::ALL.into_iter().map(|k| view! { <option value=k.as_str()>{move || i18n.tr(&format!("panel-{}", k.as_str()))}</option> }).collect_view()}
                            </select>
                        </label>
                        <label>"KPI"
                            <select id="panel-kpi" prop:value=f_kpi on:change=move |e| f_kpi.set(event_target_value(&e))>
                                <option value="">"—"</option>
                                {move || live.kpis.get().into_iter().map(|k| view! { <option value=k.id.clone()>{k.name.clone()}</option> }).collect_view()}
                            </select>
                        </label>
                        <label>{move || i18n.tr("silence-entity")}<input id="panel-entity" prop:value=f_entity on:input=move |e| f_entity.set(event_target_value(&e))/></label>
                        <label>{move || i18n.tr("dash-metric")}<input id="panel-metric" prop:value=f_metric on:input=move |e| f_metric.set(event_target_value(&e))/></label>
                        <label class="grow">{move || i18n.tr("dash-panel-title")}<input id="panel-title" prop:value=f_title on:input=move |e| f_title.set(event_target_value(&e))/></label>
                        <label class="grow">{move || i18n.tr("panel-text")}<input id="panel-text" prop:value=f_text on:input=move |e| f_text.set(event_target_value(&e))/></label>
                        <button class="btn" type="button" id="panel-add" on:click=add_panel>{move || i18n.tr("dash-add-panel")}</button>
                    </div>
                    <div class="row">
                        <button class="btn primary" type="button" id="dash-save" on:click=save>{move || i18n.tr("rule-save")}</button>
                        <button class="btn" type="button" on:click=move |_| editing.set(None)>{move || i18n.tr("src-cancel")}</button>
                        <span class="muted">{move || i18n.tr("dash-edit-hint")}</span>
                    </div>
                </form>
            </Show>
            {move || current.get().map(|d| {
                let edit = editing.get().is_some();
                let key = d.id.clone();
                view! {
                    <div class="dash-grid" class:editing=edit id="dash-grid" data-dashboard=d.id.clone()>
                        {d.panels.into_iter().map(|p| {
                            let id = p.id.clone();
                            let controls = edit.then(|| {
                                let b = |label: &'static str, dx, dy, dw, dh, cls: &'static str| {
                                    let id = id.clone();
                                    view! { <button class=format!("btn small {cls}") on:click=move |_| nudge(id.clone(), dx, dy, dw, dh)>{label}</button> }
                                };
                                let id2 = id.clone();
                                let style = format!("grid-column: {} / span {}; grid-row: {} / span 1;", p.x + 1, p.w, p.y + 1);
                                view! {
                                    <div class="panel-controls" style=style data-controls=id.clone()>
                                        {b("←", -1, 0, 0, 0, "left")}{b("→", 1, 0, 0, 0, "right")}{b("↑", 0, -1, 0, 0, "up")}{b("↓", 0, 1, 0, 0, "down")}
                                        {b("−W", 0, 0, -1, 0, "narrower")}{b("+W", 0, 0, 1, 0, "wider")}{b("−H", 0, 0, 0, -1, "shorter")}{b("+H", 0, 0, 0, 1, "taller")}
                                        <button class="btn small danger" on:click=move |_| drop_panel(id2.clone())>"✕"</button>
                                    </div>
                                }
                            });
                            view! { <PanelView panel=p key_prefix=key.clone()/>{controls} }
                        }).collect_view()}
                    </div>
                }
            })}
        </section>
    }
}
