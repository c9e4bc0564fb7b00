//! The operations screen: top bar, map with the detail panel, alert queue; keyboard first.

use super::alert_panel::{actions, start_action, state_of, AlertPanel, AlertWork};
use super::detail::DetailPanel;
use super::help::HelpOverlay;
use super::map_view::MapView;
use super::queue::AlertQueue;
use super::topbar::TopBar;
use crate::api;
use crate::client;
use crate::feed;
use crate::format;
use crate::i18n::{I18n, Lang};
use crate::map;
use crate::state::{Live, QueueFilter, Selection, Settings, View};
use chrono::{DateTime, Utc};
use ioc_model::Alert;
use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;
use wasm_bindgen::JsCast;

/// The browser's clock, ticking once a second, for ages and the top-bar clock.
#[derive(Clone, Copy)]
pub struct Now(pub RwSignal<DateTime<Utc>>);

/// Alerts in queue order (most urgent first).
#[derive(Clone, Copy)]
pub struct Queue(pub Memo<Vec<Alert>>);

/// The SOP templates in force (for choosing one when opening an incident).
#[derive(Clone, Copy)]
pub struct SopList(pub RwSignal<Vec<ioc_model::SopInfo>>);

impl SopList {
    /// The template the server would choose for an alert category.
    pub fn for_category(&self, category: &str) -> Option<String> {
        self.0.with_untracked(|l| {
            let mut v: Vec<&ioc_model::SopInfo> = l
                .iter()
                .filter(|s| s.categories.iter().any(|c| c == category))
                .collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v.first().map(|s| s.name.clone())
        })
    }

    pub fn refresh(&self) {
        let list = self.0;
        spawn_local(async move {
            if let Ok(l) = client::sops::list().await {
                list.set(l);
            }
        });
    }
}

/// The units (communes, departments, OCs), for choosing one.
#[derive(Clone, Copy)]
pub struct Units(pub RwSignal<Vec<ioc_model::Unit>>);

/// The operator's actions. Fetched from the context while rendering (event handlers run
/// outside the reactive owner, where contexts cannot be looked up).
#[derive(Clone, Copy)]
pub struct Ops {
    live: Live,
    sel: Selection,
    i18n: I18n,
}

thread_local! {
    static OPS: std::cell::Cell<Option<Ops>> = const { std::cell::Cell::new(None) };
}

impl Ops {
    pub fn get() -> Ops {
        expect_context::<Ops>()
    }

    pub fn live(&self) -> Live {
        self.live
    }

    pub fn i18n(&self) -> I18n {
        self.i18n
    }

    /// For handlers attached outside any component (window events).
    pub fn get_untracked() -> Ops {
        OPS.with(|o| o.get()).expect("the app has started")
    }

    /// Reports a finished import.
    pub fn import_result(&self, name: &str, r: Result<ioc_model::ImportReport, String>) {
        match r {
            Ok(r) => self.toast(
                self.i18n.tr_with(
                    "import-done",
                    &[
                        ("name", name.to_string().into()),
                        ("accepted", r.accepted.into()),
                        ("rejected", r.refused.into()),
                        ("history", r.history.into()),
                    ],
                ),
                r.refused > 0,
            ),
            Err(e) => self.toast(
                self.i18n.tr_with(
                    "import-failed",
                    &[("name", name.to_string().into()), ("error", e.into())],
                ),
                true,
            ),
        }
    }

    /// Opens an entity's details and highlights it on the map.
    pub fn select_entity(&self, id: Option<String>, fly: bool) {
        self.sel.entity.set(id.clone());
        match id {
            Some(id) => {
                let pos = self
                    .live
                    .entities
                    .with_untracked(|m| m.get(&id).and_then(|e| e.position()));
                if let Some((lon, lat)) = pos {
                    map::map_select(&id, lon, lat, fly);
                }
            }
            None => map::map_select("", 0.0, 0.0, false),
        }
    }

    /// Shows what an alert is about: its entity, or the area of a received alert.
    pub fn focus_alert(&self, a: &Alert) {
        self.sel.alert.set(Some(a.id));
        if a.entity.is_some() {
            self.select_entity(a.entity.clone(), true);
        } else if let Some(g) = &a.area {
            self.select_entity(None, false);
            map::map_fit_geometry(&g.to_string());
        }
    }

    /// Shows a short message for a few seconds.
    pub fn toast(&self, text: String, error: bool) {
        if error && text.contains(api::QUEUED) {
            return; // not a failure: the queue's own toast says what happened
        }
        let sel = self.sel;
        sel.toast.set(Some((text.clone(), error)));
        set_timeout(
            move || {
                if sel.toast.get_untracked().is_some_and(|(t, _)| t == text) {
                    sel.toast.set(None);
                }
            },
            Duration::from_secs(4),
        );
    }

    /// Acknowledges an alert through the API.
    pub fn acknowledge(&self, id: i64) {
        self.alert_action(id, "ack", Default::default());
    }
}

#[component]
pub fn App() -> impl IntoView {
    let stored_lang = api::local_storage_get("ioc.lang").and_then(|s| Lang::parse(&s));
    let i18n = expect_context::<I18n>();
    let live = Live::new();
    provide_context(live);
    let sel = Selection {
        view: RwSignal::new(View::Operations),
        dead_source: RwSignal::new(None),
        entity: RwSignal::new(None),
        alert: RwSignal::new(None),
        incident: RwSignal::new(None),
        directive: RwSignal::new(None),
        help: RwSignal::new(false),
        toast: RwSignal::new(None),
    };
    provide_context(sel);
    // The selected device's values come on the feed; no other device's do.
    Effect::new(move |_| crate::feed::watch(sel.entity.get().into_iter().collect()));
    let incident_work = super::incidents::IncidentWork::new();
    provide_context(incident_work);
    super::incidents::provide(incident_work, sel);
    let directive_work = super::directives::DirectiveWork::new();
    provide_context(directive_work);
    let sops = SopList(RwSignal::new(Vec::new()));
    provide_context(sops);
    let named = crate::video::NamedCameras::provide();
    sops.refresh();
    let basemap = super::panels::Basemap(RwSignal::new(None));
    provide_context(basemap);
    basemap.load();
    let units = Units(RwSignal::new(Vec::new()));
    provide_context(units);
    spawn_local(async move {
        if let Ok(u) = client::units().await {
            units.0.set(u);
        }
    });
    // The SOPs change on their screen: look again when coming back.
    Effect::new(move |_| {
        if sel.view.get() != View::Sops {
            sops.refresh();
        }
    });
    let (settings, _) = provide_time();

    let filter = QueueFilter::new();
    provide_context(filter);
    let queue = Queue(Memo::new(move |_| {
        let mut v: Vec<Alert> = live
            .alerts
            .with(|m| m.values().filter(|a| filter.passes(a)).cloned().collect());
        v.sort_by(Alert::queue_cmp);
        v
    }));
    provide_context(queue);
    let ops = Ops { live, sel, i18n };
    provide_context(ops);
    crate::session::on_queued(move |waiting| {
        ops.toast(i18n.tr_n("action-queued", "ops", waiting), false);
    });
    let work = AlertWork::new(named);
    let grid = super::cameras::Grid::new();
    provide_context(grid);
    provide_context(work);
    OPS.with(|o| o.set(Some(ops)));

    spawn_local(async move {
        if let Ok(h) = client::health().await {
            settings.timezone.set(h.timezone);
            if stored_lang.is_none() {
                if let Some(l) = Lang::parse(&h.language) {
                    i18n.lang.set(l);
                }
            }
        }
    });
    feed::start(live);
    crate::attention::start(live);

    // The focused alert follows the queue: when it leaves (resolved), focus its neighbour —
    // unless it is open in the alert panel, where it stays to be closed.
    Effect::new(move |prev: Option<Vec<i64>>| {
        let ids: Vec<i64> = queue.0.with(|q| q.iter().map(|a| a.id).collect());
        if work.open.get_untracked() {
            return ids;
        }
        if let Some(cur) = sel.alert.get_untracked() {
            if !ids.contains(&cur) {
                let pos = prev
                    .as_ref()
                    .and_then(|p| p.iter().position(|&x| x == cur))
                    .unwrap_or(0);
                sel.alert
                    .set(ids.get(pos.min(ids.len().saturating_sub(1))).copied());
            }
        }
        ids
    });

    let _keys = window_event_listener(ev::keydown, move |e: web_sys::KeyboardEvent| {
        if e.ctrl_key() || e.meta_key() || e.alt_key() {
            return;
        }
        let typing = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if typing {
            return;
        }
        // Keys every screen shares.
        let view = sel.view.get_untracked();
        let global = match e.key().as_str() {
            "?" => {
                sel.help.update(|h| *h = !*h);
                true
            }
            "l" => {
                i18n.toggle();
                true
            }
            "m" => {
                let m = !crate::attention::muted();
                crate::attention::set_muted(m);
                ops.toast(i18n.tr(if m { "sound-off" } else { "sound-on" }), false);
                true
            }
            k if k.len() == 1 && k.chars().all(|c| c.is_ascii_digit()) => {
                // 1…9, then 0 for the tenth.
                let n: usize = k.parse().unwrap_or(1);
                sel.view.set(View::ALL[(n + 9) % 10].0);
                true
            }
            "-" => {
                sel.view.set(View::Cameras);
                true
            }
            "Escape" if sel.help.get_untracked() => {
                sel.help.set(false);
                true
            }
            "/" if view != View::Operations => {
                sel.view.set(View::Operations);
                set_timeout(
                    || {
                        if let Some(el) = web_sys::window()
                            .and_then(|w| w.document())
                            .and_then(|d| d.get_element_by_id("queue-search"))
                            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                        {
                            let _ = el.focus();
                        }
                    },
                    Duration::from_millis(20),
                );
                true
            }
            _ => false,
        };
        if global {
            e.prevent_default();
            return;
        }
        let handled = match view {
            View::Incidents => super::incidents::on_key(&e.key(), ops, live, sel, incident_work),
            View::Directives => super::directives::on_key(&e.key(), ops, live, sel, directive_work),
            View::Operations => operations_key(&e, ops, live, sel, work, queue, i18n),
            View::Cameras => super::cameras::on_key(&e.key(), ops, live, sel, grid),
            _ => false,
        };
        if handled {
            e.prevent_default();
        }
    });

    view! {
        <div class="app" on:dragover=super::import::on_drag_over on:drop=super::import::on_drop>
            <TopBar/>
            <super::link::LinkBanner/>
            <datalist id="unit-codes">
                <For each=move || units.0.get() key=|u| u.code.clone() children=|u| view! { <option value=u.code.clone()>{u.name.clone()}</option> }/>
            </datalist>
            <datalist id="sop-names">
                <For each=move || sops.0.get() key=|s| s.name.clone() children=|s| view! { <option value=s.name.clone()>{s.title.clone()}</option> }/>
            </datalist>
            // The operations screen stays mounted (the map keeps its state); the others sit on top.
            <main class="main" class:hidden=move || sel.view.get() != View::Operations>
                <section class="map-area">
                    <MapView/>
                    <DetailPanel/>
                    <AlertPanel/>
                </section>
                <AlertQueue/>
            </main>
            <Show when=move || sel.view.get() == View::Sources>
                <super::sources::SourcesView/>
            </Show>
            <Show when=move || sel.view.get() == View::DeadLetters>
                <super::deadletters::DeadLettersView/>
            </Show>
            <Show when=move || sel.view.get() == View::Rules>
                <super::rules::RulesView/>
            </Show>
            <Show when=move || sel.view.get() == View::Incidents>
                <super::incidents::IncidentsView/>
            </Show>
            <Show when=move || sel.view.get() == View::Directives>
                <super::directives::DirectivesView/>
            </Show>
            <Show when=move || sel.view.get() == View::Sops>
                <super::sops::SopsView/>
            </Show>
            <Show when=move || sel.view.get() == View::Silences>
                <super::silences::SilencesView/>
            </Show>
            <Show when=move || sel.view.get() == View::Dashboards>
                <super::dashboards::DashboardsView/>
            </Show>
            <Show when=move || sel.view.get() == View::Cameras>
                <super::cameras::CamerasView/>
            </Show>
            <Show when=move || sel.view.get() == View::Kpis>
                <super::kpis::KpisView/>
            </Show>
            <super::import::DropZone/>
            <HelpOverlay/>
            <Show when=move || sel.toast.get().is_some()>
                <div
                    class="toast"
                    class:error=move || sel.toast.get().is_some_and(|(_, e)| e)
                    role="status"
                >
                    {move || sel.toast.get().map(|(t, _)| t).unwrap_or_default()}
                </div>
            </Show>
        </div>
    }
}

/// The operations screen's keys: the queue's cursor and the alert lifecycle.
fn operations_key(
    e: &web_sys::KeyboardEvent,
    ops: Ops,
    live: Live,
    sel: Selection,
    work: AlertWork,
    queue: Queue,
    i18n: I18n,
) -> bool {
    {
        let ids: Vec<i64> = queue.0.with_untracked(|q| q.iter().map(|a| a.id).collect());
        let pos = sel
            .alert
            .get_untracked()
            .and_then(|id| ids.iter().position(|&x| x == id));
        match e.key().as_str() {
            "j" | "ArrowDown" => {
                let next = pos
                    .map(|p| (p + 1).min(ids.len().saturating_sub(1)))
                    .unwrap_or(0);
                sel.alert.set(ids.get(next).copied());
                true
            }
            "k" | "ArrowUp" => {
                let prev = pos.map(|p| p.saturating_sub(1)).unwrap_or(0);
                sel.alert.set(ids.get(prev).copied());
                true
            }
            // The lifecycle's keys act on the cursor's alert, panel open or not.
            key @ ("a" | "g" | "w" | "c" | "r" | "x" | "z" | "i" | "s" | "v") => {
                if let Some(id) = sel.alert.get_untracked() {
                    if let Some(state) = state_of(live, id) {
                        match actions(state).into_iter().find(|(_, k)| *k == key) {
                            Some((action, _)) => {
                                if matches!(
                                    action,
                                    "assign" | "comment" | "shelve" | "incident" | "silence"
                                ) {
                                    work.open.set(true);
                                }
                                start_action(ops, work, id, action);
                            }
                            None => ops.toast(i18n.tr("action-not-now"), true),
                        }
                    }
                }
                true
            }
            "Enter" => {
                if let Some(id) = sel.alert.get_untracked() {
                    if let Some(a) = live.alerts.with_untracked(|m| m.get(&id).cloned()) {
                        ops.focus_alert(&a);
                    }
                    work.open.set(true);
                }
                true
            }
            "Escape" => {
                if sel.help.get_untracked() {
                    sel.help.set(false);
                } else if work.ask.get_untracked().is_some() {
                    work.ask.set(None);
                } else if work.open.get_untracked() {
                    work.open.set(false);
                } else if sel.entity.get_untracked().is_some() {
                    ops.select_entity(None, false);
                } else {
                    sel.alert.set(None);
                }
                true
            }
            "/" => {
                sel.view.set(View::Operations);
                if let Some(el) = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.get_element_by_id("queue-search"))
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = el.focus();
                }
                true
            }
            "h" => {
                map::map_home();
                true
            }
            _ => false,
        }
    }
}

/// What every page (console and wall) keeps the time with: the display settings (the time
/// zone until the server says otherwise) and a clock ticking each second.
pub(super) fn provide_time() -> (Settings, Now) {
    let settings = Settings {
        timezone: RwSignal::new("Asia/Ho_Chi_Minh".to_string()),
    };
    provide_context(settings);
    let now = Now(RwSignal::new(format::now()));
    provide_context(now);
    set_interval(move || now.0.set(format::now()), Duration::from_secs(1));
    (settings, now)
}
