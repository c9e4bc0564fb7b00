//! The incidents screen (`5`): incidents not closed on the left, the chosen one on the right
//! with its alerts, its SOP steps (ready steps highlighted, late ones red, with the time
//! left), its directives and its timeline, and the after-action report (PDF, CSV).
//!
//! Keyboard: in the list `j`/`k` choose and `Enter` goes into the steps; in the steps
//! `j`/`k` move, `t` ticks the next checklist item, `d` (or `Enter`) finishes the step
//! (asking its answer and comment), `s` skips it, `u` attaches a file; anywhere `c`
//! comments, `n` issues a directive, `r` resolves, `o` reopens, `x` closes, `v` marks what the
//! federation's merge flagged as reviewed, `Esc` goes back.

use super::app::{Now, Ops};
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Live, Selection, Settings, View};
use ioc_model::{
    Incident, IncidentActionRequest, IncidentEventKind, IncidentState, Role, Step, StepStatus,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

/// Where the keyboard is on the incidents screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    List,
    Steps,
}

/// What the screen is asking for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Comment,
    Resolve,
    Reopen,
    Close,
    Review,
    StepDone,
    Skip,
    Directive,
}

/// The screen's state, shared with the keyboard handler.
#[derive(Clone, Copy)]
pub struct IncidentWork {
    pub focus: RwSignal<Focus>,
    /// The step the cursor is on.
    pub step: RwSignal<Option<String>>,
    pub ask: RwSignal<Option<Ask>>,
    /// The chosen incident in full (timeline, directives, files), from the server.
    pub detail: RwSignal<Option<Incident>>,
    /// Bumped to load the detail again.
    pub rev: RwSignal<u64>,
}

impl IncidentWork {
    pub fn new() -> IncidentWork {
        IncidentWork {
            focus: RwSignal::new(Focus::List),
            step: RwSignal::new(None),
            ask: RwSignal::new(None),
            detail: RwSignal::new(None),
            rev: RwSignal::new(0),
        }
    }
}

/// Incidents in list order.
fn listed(live: Live) -> Vec<Incident> {
    let mut v: Vec<Incident> = live
        .incidents
        .with_untracked(|m| m.values().cloned().collect());
    v.sort_by(Incident::list_cmp);
    v
}

/// The chosen incident: live if not closed, else as the server last described it.
fn current(live: Live, sel: Selection, work: IncidentWork) -> Option<Incident> {
    let id = sel.incident.get_untracked()?;
    live.incidents
        .with_untracked(|m| m.get(&id).cloned())
        .or_else(|| work.detail.get_untracked().filter(|d| d.id == id))
}

/// The first step that can be worked, else the first that is not finished.
fn first_open_step(i: &Incident) -> Option<String> {
    i.steps
        .iter()
        .find(|s| s.status == StepStatus::Ready)
        .or_else(|| i.steps.iter().find(|s| !s.status.finished()))
        .map(|s| s.id.clone())
}

impl Ops {
    /// Opens an incident for an alert (through `sop`, or the category's) and shows it.
    pub fn open_incident(&self, alert: i64, sop: Option<String>) {
        let ops = *self;
        spawn_local(async move {
            let body = ioc_model::OpenIncidentRequest {
                alerts: vec![alert],
                sop: sop.filter(|s| !s.trim().is_empty()),
                ..Default::default()
            };
            match client::incidents::open(&body).await {
                Ok(i) => {
                    ops.live().incidents.update(|m| {
                        m.insert(i.id, i.clone());
                    });
                    ops.show_incident(i.id, first_open_step(&i));
                    ops.toast(ops.i18n().tr_n("incident-opened", "id", i.id), false);
                }
                Err(e) => ops.toast(ops.i18n().tr_n("action-failed", "error", e), true),
            }
        });
    }

    /// Goes to the incidents screen on this incident, in its steps.
    pub fn show_incident(&self, id: i64, step: Option<String>) {
        let sel = expect_context_sel();
        let work = incident_work();
        sel.incident.set(Some(id));
        sel.view.set(View::Incidents);
        work.step.set(step);
        work.focus.set(Focus::Steps);
        work.rev.update(|r| *r += 1);
    }

    /// Sends an action of incident `id` (of its `step`, if one); the answer replaces the live
    /// copy.
    fn incident_action(
        &self,
        id: i64,
        step: Option<String>,
        action: &'static str,
        body: IncidentActionRequest,
        done_key: &'static str,
    ) {
        let ops = *self;
        let work = incident_work();
        spawn_local(async move {
            let answer = match &step {
                Some(step) => client::incidents::step_act(id, step, action, &body).await,
                None => client::incidents::act(id, action, &body).await,
            };
            match answer {
                Ok(i) => {
                    ops.live().incidents.update(|m| {
                        if i.state == IncidentState::Closed {
                            m.remove(&i.id);
                        } else {
                            m.insert(i.id, i.clone());
                        }
                    });
                    // After a step, the cursor goes to the next one that can be worked.
                    let on_finished = work
                        .step
                        .get_untracked()
                        .and_then(|s| i.steps.iter().find(|x| x.id == s))
                        .is_none_or(|s| s.status.finished());
                    if on_finished {
                        work.step.set(first_open_step(&i));
                    }
                    work.rev.update(|r| *r += 1);
                    ops.toast(format!("#{}: {}", i.id, ops.i18n().tr(done_key)), false);
                }
                Err(e) => ops.toast(ops.i18n().tr_n("action-failed", "error", e), true),
            }
        });
    }

    /// Ticks the next unticked item of the cursor's step.
    fn tick_next(&self, i: &Incident, step: &Step) {
        match step.checklist.iter().position(|c| !c.done) {
            Some(n) => self.incident_action(
                i.id,
                Some(step.id.clone()),
                "check",
                IncidentActionRequest {
                    item: Some(n),
                    done: Some(true),
                    ..Default::default()
                },
                "incident-checked",
            ),
            None => self.toast(self.i18n().tr("incident-checklist-done"), false),
        }
    }
}

thread_local! {
    static WORK: std::cell::Cell<Option<(IncidentWork, Selection)>> = const { std::cell::Cell::new(None) };
}

fn incident_work() -> IncidentWork {
    WORK.with(|w| w.get())
        .expect("the incidents screen state exists")
        .0
}

fn expect_context_sel() -> Selection {
    WORK.with(|w| w.get())
        .expect("the incidents screen state exists")
        .1
}

/// Registers the screen's state for handlers outside the reactive owner.
pub fn provide(work: IncidentWork, sel: Selection) {
    WORK.with(|w| w.set(Some((work, sel))));
}

/// The screen's keys; `true` when the key was used.
pub fn on_key(key: &str, ops: Ops, live: Live, sel: Selection, work: IncidentWork) -> bool {
    if work.ask.get_untracked().is_some() {
        return false;
    }
    let list = listed(live);
    let inc = current(live, sel, work);
    let step = inc.as_ref().and_then(|i| {
        let s = work.step.get_untracked()?;
        i.steps.iter().find(|x| x.id == s).cloned()
    });
    let in_steps = work.focus.get_untracked() == Focus::Steps && inc.is_some();
    match key {
        "j" | "ArrowDown" | "k" | "ArrowUp" => {
            let down = matches!(key, "j" | "ArrowDown");
            if in_steps {
                let Some(i) = &inc else { return true };
                let ids: Vec<&str> = i.steps.iter().map(|s| s.id.as_str()).collect();
                let pos = step
                    .as_ref()
                    .and_then(|s| ids.iter().position(|x| *x == s.id));
                let next = match (pos, down) {
                    (None, _) => 0,
                    (Some(p), true) => (p + 1).min(ids.len().saturating_sub(1)),
                    (Some(p), false) => p.saturating_sub(1),
                };
                work.step.set(ids.get(next).map(|s| s.to_string()));
            } else {
                let ids: Vec<i64> = list.iter().map(|i| i.id).collect();
                let pos = sel
                    .incident
                    .get_untracked()
                    .and_then(|id| ids.iter().position(|&x| x == id));
                let next = match (pos, down) {
                    (None, _) => 0,
                    (Some(p), true) => (p + 1).min(ids.len().saturating_sub(1)),
                    (Some(p), false) => p.saturating_sub(1),
                };
                if let Some(&id) = ids.get(next) {
                    sel.incident.set(Some(id));
                    work.step.set(list.get(next).and_then(first_open_step));
                }
            }
            true
        }
        "Enter" => {
            if in_steps {
                if step.as_ref().is_some_and(|s| s.status == StepStatus::Ready) {
                    work.ask.set(Some(Ask::StepDone));
                }
            } else if let Some(i) = &inc {
                work.focus.set(Focus::Steps);
                if work.step.get_untracked().is_none() {
                    work.step.set(first_open_step(i));
                }
            } else if let Some(first) = list.first() {
                sel.incident.set(Some(first.id));
            }
            true
        }
        "Escape" => {
            if work.focus.get_untracked() == Focus::Steps {
                work.focus.set(Focus::List);
            } else {
                sel.view.set(View::Operations);
            }
            true
        }
        "t" if in_steps => {
            if let (Some(i), Some(s)) = (&inc, &step) {
                ops.tick_next(i, s);
            }
            true
        }
        "d" if in_steps => {
            match &step {
                Some(s) if s.status == StepStatus::Ready => work.ask.set(Some(Ask::StepDone)),
                _ => ops.toast(ops.i18n().tr("incident-step-not-ready"), true),
            }
            true
        }
        "s" if in_steps => {
            if step.as_ref().is_some_and(|s| !s.status.finished()) {
                work.ask.set(Some(Ask::Skip));
            }
            true
        }
        "u" if in_steps => {
            pick_file();
            true
        }
        "c" if inc
            .as_ref()
            .is_some_and(|i| i.state != IncidentState::Closed) =>
        {
            work.ask.set(Some(Ask::Comment));
            true
        }
        "n" if inc
            .as_ref()
            .is_some_and(|i| i.state != IncidentState::Closed) =>
        {
            work.ask.set(Some(Ask::Directive));
            true
        }
        "r" if inc.as_ref().is_some_and(|i| i.state == IncidentState::Open) => {
            work.ask.set(Some(Ask::Resolve));
            true
        }
        "o" if inc
            .as_ref()
            .is_some_and(|i| i.state == IncidentState::Resolved) =>
        {
            work.ask.set(Some(Ask::Reopen));
            true
        }
        "x" if inc
            .as_ref()
            .is_some_and(|i| i.state == IncidentState::Resolved) =>
        {
            work.ask.set(Some(Ask::Close));
            true
        }
        "v" if inc.as_ref().is_some_and(|i| i.attention.is_some()) => {
            work.ask.set(Some(Ask::Review));
            true
        }
        "r" | "o" | "x" | "v" if inc.is_some() => {
            ops.toast(ops.i18n().tr("action-not-now"), true);
            true
        }
        _ => false,
    }
}

fn pick_file() {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("step-file"))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        el.click();
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

/// "còn 12 phút" / "quá hạn 3 phút".
fn due_text(
    i18n: crate::i18n::I18n,
    due: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let m = (due - now).num_minutes();
    if m >= 0 {
        i18n.tr_n("step-due-in", "minutes", m)
    } else {
        i18n.tr_n("step-late-by", "minutes", -m)
    }
}

#[component]
pub fn IncidentsView() -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let sel = expect_context::<Selection>();
    let work = expect_context::<IncidentWork>();
    let settings = expect_context::<Settings>();
    let now = expect_context::<Now>();
    let me = expect_context::<super::login::Session>();
    let ops = Ops::get();

    let list = Memo::new(move |_| {
        let mut v: Vec<Incident> = live.incidents.with(|m| m.values().cloned().collect());
        v.sort_by(Incident::list_cmp);
        v
    });
    // Something chosen when there is something to choose.
    Effect::new(move |_| {
        let l = list.get();
        if sel.incident.get_untracked().is_none() {
            if let Some(first) = l.first() {
                sel.incident.set(Some(first.id));
                work.step.set(first_open_step(first));
            }
        }
    });
    // The chosen incident in full, again whenever it changes.
    Effect::new(move |_| {
        work.rev.track();
        let Some(id) = sel.incident.get() else {
            work.detail.set(None);
            return;
        };
        let _ = live.incidents.with(|m| m.get(&id).map(|i| i.updated_at));
        spawn_local(async move {
            if let Ok(d) = client::incidents::get(id).await {
                if sel.incident.get_untracked() == Some(id) {
                    work.detail.set(Some(d));
                }
            }
        });
    });
    let incident = Memo::new(move |_| {
        let id = sel.incident.get()?;
        let live_copy = live.incidents.with(|m| m.get(&id).cloned());
        let detail = work.detail.get().filter(|d| d.id == id);
        match (live_copy, detail) {
            // Live state, the timeline and files from the detail.
            (Some(mut l), Some(d)) => {
                l.events = d.events;
                l.directives = d.directives;
                l.attachments = d.attachments;
                Some(l)
            }
            (Some(l), None) => Some(l),
            (None, d) => d,
        }
    });
    // Its evidence clips (its own and its alerts'), loaded with it and as its timeline grows.
    let clips = RwSignal::new(Vec::<ioc_model::ClipInfo>::new());
    let clip_key =
        Memo::new(move |_| incident.with(|i| i.as_ref().map(|i| (i.id, i.events.len()))));
    Effect::new(move |_| {
        let Some((id, _)) = clip_key.get() else {
            clips.set(Vec::new());
            return;
        };
        spawn_local(async move {
            if let Ok(v) = client::cameras::clips_of_incident(id).await {
                if clip_key.get_untracked().map(|k| k.0) == Some(id) {
                    clips.set(v);
                }
            }
        });
    });
    let may_close = move || {
        me.0.get().is_none_or(|m| {
            !m.sign_in_required || matches!(m.user.role, Role::Supervisor | Role::Admin)
        })
    };

    // The one-line prompt and the step form.
    let input = RwSignal::new(String::new());
    let answer = RwSignal::new(String::new());
    let dir_unit = RwSignal::new(String::new());
    let dir_title = RwSignal::new(String::new());
    let dir_within = RwSignal::new("2h".to_string());
    Effect::new(move |_| {
        let Some(ask) = work.ask.get() else { return };
        input.set(String::new());
        answer.set(String::new());
        if ask == Ask::Directive {
            dir_unit.set(
                incident
                    .get_untracked()
                    .and_then(|i| i.unit)
                    .unwrap_or_default(),
            );
            dir_title.set(String::new());
            dir_within.set("2h".into());
        }
        // After the form is drawn.
        set_timeout(
            move || {
                let has_answers = incident
                    .get_untracked()
                    .zip(work.step.get_untracked())
                    .and_then(|(i, s)| i.steps.into_iter().find(|x| x.id == s))
                    .is_some_and(|s| !s.answers.is_empty());
                match ask {
                    Ask::Directive => focus_by_id("dir-title"),
                    Ask::StepDone if has_answers => focus_by_id("step-answer"),
                    Ask::StepDone => focus_by_id("step-comment"),
                    _ => focus_by_id("inc-ask-input"),
                }
            },
            std::time::Duration::from_millis(30),
        );
    });
    let submit = move || {
        let (Some(ask), Some(i)) = (work.ask.get_untracked(), incident.get_untracked()) else {
            return;
        };
        let id = i.id;
        let text = input.get_untracked().trim().to_string();
        let comment = (!text.is_empty()).then_some(text.clone());
        let step = work.step.get_untracked().unwrap_or_default();
        let body = IncidentActionRequest {
            comment: comment.clone(),
            ..Default::default()
        };
        match ask {
            Ask::Comment => ops.incident_action(id, None, "comment", body, "action-comment"),
            Ask::Resolve => ops.incident_action(id, None, "resolve", body, "action-resolve"),
            Ask::Reopen => ops.incident_action(id, None, "reopen", body, "incident-reopened"),
            Ask::Close => ops.incident_action(id, None, "close", body, "action-close"),
            Ask::Review => ops.incident_action(id, None, "review", body, "incident-reviewed"),
            Ask::Skip => ops.incident_action(id, Some(step), "skip", body, "incident-skipped"),
            Ask::StepDone => {
                let a = answer.get_untracked();
                ops.incident_action(
                    id,
                    Some(step),
                    "done",
                    IncidentActionRequest {
                        comment,
                        answer: (!a.is_empty()).then_some(a),
                        ..Default::default()
                    },
                    "incident-step-done",
                )
            }
            Ask::Directive => {
                let title = dir_title.get_untracked().trim().to_string();
                if title.is_empty() {
                    ops.toast(i18n.tr("directive-needs-title"), true);
                    return;
                }
                let req = ioc_model::IssueDirectiveRequest {
                    unit: dir_unit.get_untracked().trim().to_string(),
                    title,
                    body: String::new(),
                    deadline: None,
                    within: Some(dir_within.get_untracked()),
                    incident: Some(id),
                };
                spawn_local(async move {
                    match client::directives::issue(&req).await {
                        Ok(d) => {
                            live.directives.update(|m| {
                                m.insert(d.id, d.clone());
                            });
                            work.rev.update(|r| *r += 1);
                            ops.toast(i18n.tr_n("directive-issued", "unit", d.unit_name), false);
                        }
                        Err(e) => ops.toast(i18n.tr_n("action-failed", "error", e), true),
                    }
                });
            }
        }
        work.ask.set(None);
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
    // A file chosen for the cursor's step.
    let on_file = move |e: web_sys::Event| {
        let Some(input) = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        input.set_value("");
        let (Some(i), step) = (incident.get_untracked(), work.step.get_untracked()) else {
            return;
        };
        let name = file.name();
        let kind = file.type_();
        spawn_local(async move {
            let bytes = match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
                Ok(b) => js_sys::Uint8Array::new(&b).to_vec(),
                Err(e) => {
                    ops.toast(format!("{e:?}"), true);
                    return;
                }
            };
            match client::incidents::attach(i.id, &name, step.as_deref(), bytes, &kind).await {
                Ok(a) => {
                    work.rev.update(|r| *r += 1);
                    ops.toast(i18n.tr_n("incident-attached", "name", a.name), false);
                }
                Err(e) => ops.toast(i18n.tr_n("action-failed", "error", e), true),
            }
        });
    };

    let tz = move || settings.timezone.get();
    view! {
        <section class="page incidents-page" id="incidents-page">
            <header class="page-head">
                <h1>{move || i18n.tr("incident-title")}</h1>
                <span class="muted">{move || i18n.tr("incident-keys")}</span>
            </header>
            <div class="incidents-layout">
                <ol class="incident-list" id="incident-list" class:focused=move || work.focus.get() == Focus::List>
                    <Show when=move || list.with(|l| l.is_empty())>
                        <li class="muted empty">{move || i18n.tr("incident-none")}</li>
                    </Show>
                    <For
                        each=move || list.get()
                        key=|i| (i.id, i.updated_at, i.state.as_str(), i.attention.is_some())
                        children=move |i| {
                            let id = i.id;
                            let sev = i.severity.as_str();
                            let (done, total) = i.progress();
                            let chosen = move || sel.incident.get() == Some(id);
                            let late = move || { now.0.track(); live.incidents.with(|m| m.get(&id).map(|i| i.late_steps(format::now())).unwrap_or(0)) };
                            view! {
                                <li class=format!("incident-row sev-{sev} state-{}", i.state.as_str()) class:chosen=chosen data-id=id
                                    on:click=move |_| { sel.incident.set(Some(id)); work.focus.set(Focus::List); }>
                                    <div class="alert-head">
                                        <span class=format!("sev-badge {sev}")>{move || i18n.tr(&format!("sev-{sev}"))}</span>
                                        <span class="alert-id">"#"{id}</span>
                                        <span class="age">{move || i18n.tr(&format!("incident-state-{}", i.state.as_str()))}</span>
                                    </div>
                                    <div class="alert-entity">{i.title.clone()}</div>
                                    <div class="alert-foot">
                                        <span class="unit">{i.unit_name.clone().unwrap_or_default()}</span>
                                        <Show when=move || { total > 0 }>
                                            <span class="progress"><i style=format!("width:{}%", done * 100 / total.max(1))></i></span>
                                            <span>{format!("{done}/{total}")}</span>
                                        </Show>
                                        <Show when=move || { late() > 0 }>
                                            <span class="late">{move || i18n.tr_n("incident-late-steps", "count", late())}</span>
                                        </Show>
                                        {i.attention.is_some().then(|| view! {
                                            <span class="attention-badge">{move || i18n.tr("incident-attention-badge")}</span>
                                        })}
                                    </div>
                                </li>
                            }
                        }
                    />
                </ol>
                <input type="file" id="step-file" class="hidden" on:change=on_file/>
                {move || incident.get().map(|i| {
                    let id = i.id;
                    let sev = i.severity.as_str();
                    let state = i.state;
                    let lang = i18n.lang.get();
                    let sop = i.sop.clone().map(|s| format!("{} · v{}", s.title, s.version)).unwrap_or_else(|| i18n.tr("incident-no-sop"));
                    let pdf = client::incidents::report_pdf_url(id);
                    let csv = client::incidents::report_csv_url(id);
                    let steps = i.steps.clone();
                    let events = i.events.clone();
                    let directives: Vec<ioc_model::Directive> = {
                        let mut d = i.directives.clone();
                        live.directives.with(|m| {
                            for x in d.iter_mut() {
                                if let Some(fresh) = m.get(&x.id) { *x = fresh.clone(); }
                            }
                            for x in m.values().filter(|x| x.incident == Some(id)) {
                                if !d.iter().any(|y| y.id == x.id) { d.push(x.clone()); }
                            }
                        });
                        d.sort_by_key(|x| x.id);
                        d
                    };
                    let attachments = i.attachments.clone();
                    let alerts = i.alerts.clone();
                    let n_alerts = alerts.len();
                    view! {
                        <article class=format!("incident-detail sev-{sev}") id="incident-detail" data-id=id data-state=state.as_str()>
                            <header class="incident-head">
                                <span class=format!("sev-badge {sev}")>{move || i18n.tr(&format!("sev-{sev}"))}</span>
                                <span class="alert-id">"#"{id}</span>
                                <h2>{i.title.clone()}</h2>
                                <span class="state" id="incident-state" data-state=state.as_str()>{move || i18n.tr(&format!("incident-state-{}", state.as_str()))}</span>
                            </header>
                            <dl class="facts">
                                <dt>{move || i18n.tr("unit")}</dt><dd>{i.unit_name.clone().unwrap_or_else(|| i18n.tr("incident-province"))}</dd>
                                <dt>{move || i18n.tr("incident-sop")}</dt><dd>{sop}</dd>
                                <dt>{move || i18n.tr("incident-opened-at")}</dt><dd>{format::date_time(i.opened_at, &tz(), lang)}" · "{i.opened_by.clone()}</dd>
                            </dl>
                            {i.attention.clone().map(|why| view! {
                                <div class="attention-box" id="incident-attention" role="alert">
                                    <strong>{move || i18n.tr("incident-attention")}</strong>
                                    <span class="muted">{move || i18n.tr("incident-attention-why")}</span>
                                    <span class="why">{why}</span>
                                    <Show when=may_close>
                                        <button class="btn small" id="inc-review" on:click=move |_| work.ask.set(Some(Ask::Review))>{move || i18n.tr("do-review")}" "<kbd>"v"</kbd></button>
                                    </Show>
                                </div>
                            })}
                            <div class="actions">
                                <Show when=move || state != IncidentState::Closed>
                                    <button class="btn small" on:click=move |_| work.ask.set(Some(Ask::Comment))>{move || i18n.tr("do-comment")}" "<kbd>"c"</kbd></button>
                                    <button class="btn small" on:click=move |_| work.ask.set(Some(Ask::Directive))>{move || i18n.tr("do-directive")}" "<kbd>"n"</kbd></button>
                                </Show>
                                <Show when=move || state == IncidentState::Open>
                                    <button class="btn small" id="inc-resolve" on:click=move |_| work.ask.set(Some(Ask::Resolve))>{move || i18n.tr("do-resolve")}" "<kbd>"r"</kbd></button>
                                </Show>
                                <Show when=move || state == IncidentState::Resolved>
                                    <button class="btn small" on:click=move |_| work.ask.set(Some(Ask::Reopen))>{move || i18n.tr("do-reopen")}" "<kbd>"o"</kbd></button>
                                </Show>
                                <Show when=move || state == IncidentState::Resolved && may_close()>
                                    <button class="btn small" id="inc-close" on:click=move |_| work.ask.set(Some(Ask::Close))>{move || i18n.tr("do-close")}" "<kbd>"x"</kbd></button>
                                </Show>
                                <a class="btn small" id="report-pdf" href=pdf target="_blank">{move || i18n.tr("incident-report-pdf")}</a>
                                <a class="btn small" id="report-csv" href=csv>{move || i18n.tr("incident-report-csv")}</a>
                            </div>
                            <Show when=move || work.ask.get().is_some_and(|a| !matches!(a, Ask::StepDone | Ask::Directive))>
                                <form class="ask" on:submit=move |e| { e.prevent_default(); submit(); }>
                                    <label>
                                        {move || i18n.tr(match work.ask.get() {
                                            Some(Ask::Resolve) => "ask-resolve-incident",
                                            Some(Ask::Reopen) => "ask-reopen",
                                            Some(Ask::Close) => "ask-close-incident",
                                            Some(Ask::Review) => "ask-review",
                                            Some(Ask::Skip) => "ask-skip",
                                            _ => "ask-comment",
                                        })}
                                        <input id="inc-ask-input" prop:value=input on:input=move |e| input.set(event_target_value(&e)) on:keydown=on_keys/>
                                    </label>
                                </form>
                            </Show>
                            <Show when=move || work.ask.get() == Some(Ask::Directive)>
                                <form class="ask directive-form" id="directive-form" on:submit=move |e| { e.prevent_default(); submit(); }>
                                    <label>{move || i18n.tr("directive-title-field")}
                                        <input id="dir-title" prop:value=dir_title on:input=move |e| dir_title.set(event_target_value(&e)) on:keydown=on_keys/>
                                    </label>
                                    <div class="row">
                                        <label>{move || i18n.tr("directive-unit")}
                                            <input id="dir-unit" list="unit-codes" prop:value=dir_unit on:input=move |e| dir_unit.set(event_target_value(&e)) on:keydown=on_keys/>
                                        </label>
                                        <label>{move || i18n.tr("directive-within")}
                                            <input id="dir-within" prop:value=dir_within on:input=move |e| dir_within.set(event_target_value(&e)) on:keydown=on_keys/>
                                        </label>
                                    </div>
                                </form>
                            </Show>
                            <h3>{move || i18n.tr_n("incident-alerts", "count", n_alerts)}</h3>
                            <ul class="incident-alerts">
                                {alerts.iter().map(|&a| {
                                    // Live while open; afterwards as it was when it joined.
                                    let info = live.alerts.with_untracked(|m| m.get(&a).map(|x| format!("{} — {}", x.entity_name, x.message)))
                                        .or_else(|| events.iter().find(|e| e.alert == Some(a) && e.kind == IncidentEventKind::AlertAdded).and_then(|e| e.comment.clone()));
                                    view! {
                                        <li><a href="#" on:click=move |e| {
                                            e.prevent_default();
                                            sel.view.set(View::Operations);
                                            sel.alert.set(Some(a));
                                            if let Some(al) = live.alerts.with_untracked(|m| m.get(&a).cloned()) { ops.focus_alert(&al); }
                                        }>"#"{a}</a>" "{info.unwrap_or_default()}</li>
                                    }
                                }).collect_view()}
                            </ul>
                            <Show when=move || !steps.is_empty()>
                                <h3>{move || i18n.tr("incident-steps")}</h3>
                            </Show>
                            <ol class="steps" id="incident-steps" class:focused=move || work.focus.get() == Focus::Steps>
                                {i.steps.clone().into_iter().enumerate().map(|(n, s)| {
                                    let sid = s.id.clone();
                                    let role = s.role;
                                    let status = s.status;
                                    let cursor = { let sid = sid.clone(); move || work.step.get().as_deref() == Some(sid.as_str()) };
                                    let due = s.due_at;
                                    // Only an open incident's steps are being worked (and can be late).
                                    let working = state == IncidentState::Open;
                                    let late = move || { now.0.track(); working && status == StepStatus::Ready && due.is_some_and(|d| d <= format::now()) };
                                    let was_late = s.overdue;
                                    let asking = { let c = cursor.clone(); move || c() && work.ask.get() == Some(Ask::StepDone) };
                                    let answers = s.answers.clone();
                                    let step_files: Vec<&ioc_model::AttachmentInfo> = attachments.iter().filter(|a| a.step.as_deref() == Some(sid.as_str())).collect();
                                    let files = step_files.iter().map(|a| {
                                        let href = client::incidents::attachment_url(a.id);
                                        view! { <a class="file" href=href target="_blank">{format!("📎 {}", a.name)}</a> }
                                    }).collect_view();
                                    let row = NodeRef::<leptos::html::Li>::new();
                                    let c2 = cursor.clone();
                                    Effect::new(move |_| { if c2() { if let Some(el) = row.get() { el.scroll_into_view_with_bool(false); } } });
                                    let sid_click = sid.clone();
                                    view! {
                                        <li node_ref=row class=format!("step status-{}", status.as_str()) class:cursor=cursor class:late=late class:was-late=move || was_late && status.finished()
                                            data-step=sid.clone() data-status=status.as_str()
                                            on:click=move |_| { work.step.set(Some(sid_click.clone())); work.focus.set(Focus::Steps); }>
                                            <div class="step-head">
                                                <span class="step-n">{n + 1}</span>
                                                <span class="step-title">{s.title.clone()}</span>
                                                <span class="role">{move || i18n.tr(&format!("role-{}", role.as_str()))}</span>
                                                <span class="step-state">{move || i18n.tr(&format!("step-{}", status.as_str()))}</span>
                                                {due.filter(|_| working && status == StepStatus::Ready).map(|d| view! {
                                                    <span class="due">{move || due_text(i18n, d, now.0.get())}</span>
                                                })}
                                            </div>
                                            {(!s.checklist.is_empty()).then(|| {
                                                let items = s.checklist.iter().enumerate().map(|(k, c)| {
                                                    let sid = sid.clone();
                                                    let done = c.done;
                                                    let ready = working && status == StepStatus::Ready;
                                                    view! {
                                                        <li class:done=done>
                                                            <label>
                                                                <input type="checkbox" prop:checked=done prop:disabled=!ready
                                                                    on:click=move |e| {
                                                                        e.stop_propagation();
                                                                        ops.incident_action(
                                                                            id,
                                                                            Some(sid.clone()),
                                                                            "check",
                                                                            IncidentActionRequest { item: Some(k), done: Some(!done), ..Default::default() },
                                                                            "incident-checked",
                                                                        );
                                                                    }/>
                                                                {c.text.clone()}
                                                            </label>
                                                        </li>
                                                    }
                                                }).collect_view();
                                                view! { <ul class="checklist">{items}</ul> }
                                            })}
                                            {(!s.answers.is_empty()).then(|| view! {
                                                <div class="answers">{move || i18n.tr("step-question")}": "{s.answers.join(" / ")}</div>
                                            })}
                                            {(s.require_comment || s.require_attachment).then(|| view! {
                                                <div class="needs muted">
                                                    {s.require_comment.then(|| i18n.tr("step-needs-comment"))}
                                                    " "
                                                    {s.require_attachment.then(|| i18n.tr("step-needs-file"))}
                                                </div>
                                            })}
                                            {s.condition.clone().map(|c| view! { <div class="muted cond">{move || i18n.tr("step-if")}" "<code>{c.clone()}</code></div> })}
                                            <div class="files">{files}</div>
                                            {s.done_by.clone().map(|who| view! {
                                                <div class="step-done">
                                                    {s.answer.clone().map(|a| view! { <strong>{a}</strong>" · " })}
                                                    {s.comment.clone().unwrap_or_default()}
                                                    <span class="muted">{format!(" — {who}")}</span>
                                                </div>
                                            })}
                                            <Show when=asking.clone()>
                                                <form class="ask step-form" on:submit=move |e| { e.prevent_default(); submit(); }>
                                                    {(!answers.is_empty()).then(|| {
                                                        let opts = answers.iter().map(|a| view! { <option value=a.clone()>{a.clone()}</option> }).collect_view();
                                                        let first = answers.first().cloned().unwrap_or_default();
                                                        answer.set(first);
                                                        view! {
                                                            <label>{move || i18n.tr("step-answer")}
                                                                <select id="step-answer" prop:value=answer on:change=move |e| answer.set(event_target_value(&e))
                                                                    on:keydown=move |e: web_sys::KeyboardEvent| {
                                                                        if e.key() == "Enter" { e.prevent_default(); e.stop_propagation(); focus_by_id("step-comment"); }
                                                                        if e.key() == "Escape" { e.stop_propagation(); work.ask.set(None); }
                                                                    }>{opts}</select>
                                                            </label>
                                                        }
                                                    })}
                                                    <label>{move || i18n.tr("step-comment")}
                                                        <input id="step-comment" prop:value=input on:input=move |e| input.set(event_target_value(&e)) on:keydown=on_keys/>
                                                    </label>
                                                </form>
                                            </Show>
                                        </li>
                                    }
                                }).collect_view()}
                            </ol>
                            <Show when=move || !directives.is_empty()>
                                <h3>{move || i18n.tr("incident-directives")}</h3>
                            </Show>
                            <ul class="incident-directives">
                                {move || {
                                    let mut d = incident.get().map(|i| i.directives).unwrap_or_default();
                                    live.directives.with(|m| {
                                        for x in d.iter_mut() { if let Some(f) = m.get(&x.id) { *x = f.clone(); } }
                                        for x in m.values().filter(|x| x.incident == Some(id)) { if !d.iter().any(|y| y.id == x.id) { d.push(x.clone()); } }
                                    });
                                    d.sort_by_key(|x| x.id);
                                    d.into_iter().map(|d| {
                                        let late = d.overdue || d.late_at(format::now());
                                        view! {
                                            <li class="directive-row" class:late=late data-id=d.id>
                                                <span class="alert-id">"#"{d.id}</span>" "
                                                <strong>{d.unit_name.clone()}</strong>": "{d.title.clone()}
                                                <span class="muted">{format!(" · {} · {} %", i18n.tr(&format!("directive-state-{}", d.state.as_str())), d.progress)}</span>
                                            </li>
                                        }
                                    }).collect_view()
                                }}
                            </ul>
                            <Show when=move || !clips.with(|c| c.is_empty())>
                                <h3>{move || i18n.tr("clips")}</h3>
                                <ul class="clips" id="incident-clips">
                                    <For each=move || clips.get() key=|c| (c.id, c.state.as_str(), c.size) let:c>
                                        <super::alert_panel::ClipRow clip=c/>
                                    </For>
                                </ul>
                            </Show>
                            <h3>{move || i18n.tr("timeline")}</h3>
                            <ol class="timeline" id="incident-timeline">
                                {events.into_iter().rev().map(|ev| {
                                    let what = format!("ievent-{}", ev.kind.as_str());
                                    let when = format::date_time(ev.at, &tz(), lang);
                                    let subject = ev.step.clone().or_else(|| ev.alert.map(|a| format!("#{a}"))).unwrap_or_default();
                                    let overdue = matches!(ev.kind, IncidentEventKind::StepOverdue | IncidentEventKind::DirectiveOverdue | IncidentEventKind::NotApplied);
                                    view! {
                                        <li class="event" class:late=overdue>
                                            <span class="when">{when}</span>
                                            // Who, and on which console.
                                            <span class="who">{match &ev.node {
                                                Some(n) => format!("{}@{n}", ev.actor),
                                                None => ev.actor.clone(),
                                            }}</span>
                                            <span class="what">{move || i18n.tr_or(&what, &what)}" "<span class="muted">{subject.clone()}</span></span>
                                            {ev.comment.clone().map(|c| view! { <span class="comment">{c}</span> })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ol>
                        </article>
                    }
                })}
            </div>
        </section>
    }
}
