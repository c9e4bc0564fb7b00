//! The alert being worked: what it is, its state, who has it, every action its lifecycle
//! allows now (each with its key), and its timeline. Opened with Enter on the queue's cursor,
//! closed with Esc. Actions that need words (assign, comment, shelve) ask for them in one
//! line: Enter sends, Esc cancels.

use super::app::{Now, Ops};
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Live, Selection, Settings};
use chrono::Duration;
use ioc_model::{Alert, AlertActionRequest, AlertEventKind, AlertState};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// What the one-line prompt is asking for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Assign,
    Comment,
    Shelve,
    /// Which SOP to open the incident with.
    Incident,
    /// For how long, and why: `2h bảo trì camera`.
    Silence,
}

/// The panel's state, shared with the keyboard handler.
#[derive(Clone, Copy)]
pub struct AlertWork {
    pub open: RwSignal<bool>,
    pub ask: RwSignal<Option<Ask>>,
    /// Bumped after every action, to reload the timeline.
    pub rev: RwSignal<u64>,
    /// The cameras rules and SOPs name, for the alert's cameras.
    pub named: crate::video::NamedCameras,
}

impl AlertWork {
    pub fn new(named: crate::video::NamedCameras) -> AlertWork {
        AlertWork {
            named,
            open: RwSignal::new(false),
            ask: RwSignal::new(None),
            rev: RwSignal::new(0),
        }
    }
}

/// The actions an alert in `state` allows, with their keys.
pub fn actions(state: AlertState) -> Vec<(&'static str, &'static str)> {
    use AlertState::*;
    let mut v = Vec::new();
    if state == New {
        v.push(("ack", "a"));
    }
    if matches!(state, New | Acknowledged | Assigned | InProgress) {
        v.push(("assign", "g"));
    }
    if matches!(state, Acknowledged | Assigned) {
        v.push(("start", "w"));
    }
    if state != Closed {
        v.push(("comment", "c"));
    }
    if matches!(state, New | Acknowledged | Assigned | InProgress | Shelved) {
        v.push(("resolve", "r"));
    }
    if state == Resolved {
        v.push(("close", "x"));
    }
    if matches!(state, New | Acknowledged | Assigned) {
        v.push(("shelve", "z"));
    }
    if state == Shelved {
        v.push(("unshelve", "z"));
    }
    if state.is_open() {
        v.push(("incident", "i"));
        v.push(("silence", "s"));
    }
    if state != Closed {
        v.push(("clip", "v"));
    }
    v
}

/// The cameras that go with an alert (see [`crate::video::related_cameras`]).
pub fn cameras_of(
    a: &Alert,
    entities: &std::collections::HashMap<String, ioc_model::Entity>,
    named: crate::video::NamedCameras,
) -> Vec<(String, bool)> {
    let names = named.for_alert(a, entities);
    crate::video::related_cameras(
        entities,
        a.entity.as_deref(),
        &names,
        RELATED_CAMERAS,
        RELATED_RADIUS_M,
    )
}

impl Ops {
    /// Saves an evidence clip of each of the alert's cameras with a stream, around now.
    pub fn save_clips(&self, work: AlertWork, id: i64) {
        let ops = *self;
        let Some(a) = ops.live().alerts.with_untracked(|m| m.get(&id).cloned()) else {
            return;
        };
        let cams: Vec<String> = ops.live().entities.with_untracked(|m| {
            cameras_of(&a, m, work.named)
                .into_iter()
                .filter(|(_, live)| *live)
                .map(|(c, _)| c)
                .collect()
        });
        if cams.is_empty() {
            ops.toast(ops.i18n().tr("clip-no-camera"), true);
            return;
        }
        let req = ioc_model::ClipRequest {
            alert: Some(id),
            incident: a.incident,
            ..Default::default()
        };
        spawn_local(async move {
            let mut saved = Vec::new();
            for c in &cams {
                match client::cameras::save_clip(c, &req).await {
                    Ok(info) => saved.push(info),
                    Err(e) => ops.toast(ops.i18n().tr_n("action-failed", "error", e), true),
                }
            }
            if let Some(first) = saved.first() {
                let msg = ops.i18n().tr_with(
                    "clip-started",
                    &[
                        ("n", (saved.len() as u64).into()),
                        ("before", u64::from(first.before_s).into()),
                        ("after", u64::from(first.after_s).into()),
                    ],
                );
                ops.toast(msg, false);
                work.rev.update(|r| *r += 1);
            }
        });
    }
}

/// `"2h bảo trì camera"`: a duration, then why.
pub fn parse_silence(text: &str) -> Option<(String, String)> {
    let t = text.trim();
    let (d, why) = t.split_once(char::is_whitespace)?;
    humantime::parse_duration(d).ok()?;
    let why = why.trim();
    (!why.is_empty()).then(|| (d.to_string(), why.to_string()))
}

impl Ops {
    /// Silences this alert's rule on its entity (or area) for a while.
    pub fn silence_alert(&self, a: &Alert, duration: String, why: String) {
        let ops = *self;
        let req = ioc_model::SilenceRequest {
            matcher: ioc_model::SilenceMatch {
                rule: Some(a.rule.clone()),
                entity: a.entity.clone(),
                unit: if a.entity.is_none() {
                    a.unit.clone()
                } else {
                    None
                },
                category: None,
            },
            duration: Some(duration),
            comment: why,
            ..Default::default()
        };
        spawn_local(async move {
            match client::silences::create(&req).await {
                Ok(s) => {
                    ops.live().silences.update(|m| {
                        m.insert(s.id, s);
                    });
                    ops.toast(ops.i18n().tr("silence-added"), false);
                }
                Err(e) => ops.toast(ops.i18n().tr_n("action-failed", "error", e), true),
            }
        });
    }

    /// Sends an action; the answer is applied at once (the feed confirms it).
    pub fn alert_action(&self, id: i64, action: &'static str, body: AlertActionRequest) {
        let ops = *self;
        let work = expect_context_untracked();
        spawn_local(async move {
            match client::alerts::act(id, action, &body).await {
                Ok(alert) => {
                    ops.live().alerts.update(|m| {
                        if alert.state.is_open() {
                            m.insert(alert.id, alert.clone());
                        } else {
                            m.remove(&id);
                        }
                    });
                    if let Some(w) = work {
                        w.last.set(Some(alert));
                        w.work.rev.update(|r| *r += 1);
                    }
                    let i18n = ops.i18n();
                    let done = i18n.tr(&format!("action-{action}"));
                    ops.toast(format!("#{id}: {done}"), false);
                }
                Err(e) => ops.toast(ops.i18n().tr_n("action-failed", "error", e), true),
            }
        });
    }
}

/// The panel's signals, reachable from handlers outside the reactive owner.
#[derive(Clone, Copy)]
struct PanelRefs {
    work: AlertWork,
    /// The alert as the last action left it (a resolved alert leaves the live set).
    last: RwSignal<Option<Alert>>,
}

thread_local! {
    static PANEL: std::cell::Cell<Option<PanelRefs>> = const { std::cell::Cell::new(None) };
}

fn expect_context_untracked() -> Option<PanelRefs> {
    PANEL.with(|p| p.get())
}

/// The state of alert `id`: live if open, else as the panel's last action left it.
pub fn state_of(live: Live, id: i64) -> Option<AlertState> {
    live.alerts
        .with_untracked(|m| m.get(&id).map(|a| a.state))
        .or_else(|| {
            let refs = PANEL.with(|p| p.get())?;
            refs.last
                .with_untracked(|l| l.as_ref().filter(|a| a.id == id).map(|a| a.state))
        })
}

/// Starts an action from the keyboard or a button: direct, or through the prompt.
pub fn start_action(ops: Ops, work: AlertWork, id: i64, action: &'static str) {
    match action {
        "assign" => work.ask.set(Some(Ask::Assign)),
        "comment" => work.ask.set(Some(Ask::Comment)),
        "shelve" => work.ask.set(Some(Ask::Shelve)),
        "silence" => work.ask.set(Some(Ask::Silence)),
        "clip" => ops.save_clips(work, id),
        "incident" => {
            // Already in one: go there.
            let inc = ops
                .live()
                .alerts
                .with_untracked(|m| m.get(&id).and_then(|a| a.incident));
            match inc {
                Some(i) => ops.show_incident(i, None),
                None => work.ask.set(Some(Ask::Incident)),
            }
        }
        other => ops.alert_action(id, other, AlertActionRequest::default()),
    }
}

/// How many of an alert's cameras show with it, and how far from its device they may be.
pub const RELATED_CAMERAS: usize = 2;
pub const RELATED_RADIUS_M: f64 = 3_000.0;

#[component]
pub fn AlertPanel() -> impl IntoView {
    let i18n = use_i18n();
    let sel = expect_context::<Selection>();
    let live = expect_context::<Live>();
    let settings = expect_context::<Settings>();
    let now = expect_context::<Now>();
    let work = expect_context::<AlertWork>();
    let ops = Ops::get();
    let last = RwSignal::new(None::<Alert>);
    PANEL.with(|p| p.set(Some(PanelRefs { work, last })));

    // The alert: live if open, else as the last answer left it.
    let alert = Memo::new(move |_| {
        let id = sel.alert.get()?;
        live.alerts
            .with(|m| m.get(&id).cloned())
            .or_else(|| last.get().filter(|a| a.id == id))
    });
    // Its timeline, reloaded when it changes.
    let detail = RwSignal::new(None::<Alert>);
    Effect::new(move |_| {
        work.rev.track();
        let (true, Some(a)) = (work.open.get(), alert.get()) else {
            return;
        };
        let id = a.id;
        let _ = (a.updated_at, a.state);
        spawn_local(async move {
            if let Ok(d) = client::alerts::get(id).await {
                if sel.alert.get_untracked() == Some(id) {
                    detail.set(Some(d));
                }
            }
        });
    });
    let input = RwSignal::new(String::new());
    let input_ref = NodeRef::<leptos::html::Input>::new();
    let sops = expect_context::<super::app::SopList>();
    Effect::new(move |_| {
        if work.ask.get().is_some() {
            input.set(match work.ask.get_untracked() {
                Some(Ask::Shelve) => "1h".into(),
                Some(Ask::Silence) => "2h ".into(),
                // The category's SOP, as the server would choose it.
                Some(Ask::Incident) => alert
                    .get_untracked()
                    .and_then(|a| sops.for_category(&a.category))
                    .unwrap_or_default(),
                _ => String::new(),
            });
            if let Some(el) = input_ref.get() {
                let _ = el.focus();
            }
        }
    });
    let submit = move || {
        let (Some(ask), Some(a)) = (work.ask.get_untracked(), alert.get_untracked()) else {
            return;
        };
        let text = input.get_untracked().trim().to_string();
        if ask == Ask::Incident {
            work.ask.set(None);
            work.open.set(false);
            ops.open_incident(a.id, Some(text));
            return;
        }
        if ask == Ask::Silence {
            let Some((duration, why)) = parse_silence(&text) else {
                ops.toast(i18n.tr("silence-bad"), true);
                return;
            };
            work.ask.set(None);
            ops.silence_alert(&a, duration, why);
            return;
        }
        let body = match ask {
            Ask::Assign => AlertActionRequest {
                to: Some(text),
                ..Default::default()
            },
            Ask::Comment => AlertActionRequest {
                comment: Some(text),
                ..Default::default()
            },
            Ask::Incident | Ask::Silence => unreachable!("handled above"),
            Ask::Shelve => match humantime::parse_duration(&text) {
                Ok(d) => AlertActionRequest {
                    until: Some(
                        format::now() + Duration::from_std(d).unwrap_or(Duration::hours(1)),
                    ),
                    ..Default::default()
                },
                Err(_) => {
                    ops.toast(i18n.tr("shelve-bad-duration"), true);
                    return;
                }
            },
        };
        let action = match ask {
            Ask::Assign => "assign",
            Ask::Comment => "comment",
            _ => "shelve",
        };
        work.ask.set(None);
        ops.alert_action(a.id, action, body);
    };

    // The alert's cameras: kept while the same alert is open (its changes do not restart
    // the pictures).
    let cameras = Memo::new(move |_| {
        alert.with(|a| {
            let Some(a) = a else { return Vec::new() };
            live.entities.with(|m| cameras_of(a, m, work.named))
        })
    });
    // Its evidence clips: loaded with the alert and after every action, then every two
    // seconds while one is still recording.
    let clips = RwSignal::new(Vec::<ioc_model::ClipInfo>::new());
    let clip_alert = Memo::new(move |_| alert.with(|a| a.as_ref().map(|a| a.id)));
    let load_clips = move || {
        let Some(id) = clip_alert.get_untracked() else {
            clips.set(Vec::new());
            return;
        };
        spawn_local(async move {
            if let Ok(v) = client::cameras::clips_of_alert(id).await {
                if clip_alert.get_untracked() == Some(id) {
                    clips.set(v);
                }
            }
        });
    };
    Effect::new(move |_| {
        clip_alert.track();
        work.rev.track();
        load_clips();
    });
    if let Ok(h) = set_interval_with_handle(
        move || {
            if clips
                .with_untracked(|v| v.iter().any(|c| c.state == ioc_model::ClipState::Recording))
            {
                load_clips();
            }
        },
        std::time::Duration::from_secs(2),
    ) {
        on_cleanup(move || h.clear());
    }

    view! {
        <Show when=move || work.open.get() && alert.get().is_some()>
          <div class="alert-side">
            <Show when=move || !cameras.with(|c| c.is_empty())>
                <section class="alert-cameras" id="alert-cameras">
                    <h3>{move || i18n.tr("alert-cameras")}</h3>
                    <For each=move || cameras.get() key=|c| c.clone() let:cam>
                        <crate::still::CameraView camera=cam.0 live=cam.1/>
                    </For>
                </section>
            </Show>
            {move || alert.get().map(|a| {
                let id = a.id;
                let sev = a.severity.as_str();
                let tz = settings.timezone.get();
                let lang = i18n.lang.get();
                let state_key = format!("state-{}", a.state.as_str());
                let cat = a.category.clone();
                let buttons = actions(a.state)
                    .into_iter()
                    .map(|(action, key)| {
                        view! {
                            <button
                                class="btn small"
                                id=format!("act-{action}")
                                title=key
                                on:click=move |_| start_action(ops, work, id, action)
                            >
                                {move || i18n.tr(&format!("do-{action}"))}
                                " "<kbd>{key}</kbd>
                            </button>
                        }
                    })
                    .collect_view();
                view! {
                    <section class=format!("alert-panel sev-{sev}") id="alert-panel" aria-label=move || i18n.tr("alert-panel")>
                        <header>
                            <span class=format!("sev-badge {sev}")>{move || i18n.tr(&format!("sev-{sev}"))}</span>
                            <span class="category">{move || i18n.tr_or(&format!("cat-{cat}"), &cat)}</span>
                            <span class="alert-id">"#"{id}</span>
                            <span class="state" id="alert-state" data-state=a.state.as_str()>{move || i18n.tr(&state_key)}</span>
                            <button class="close" title="Esc" on:click=move |_| work.open.set(false)>"×"</button>
                        </header>
                        <div class="alert-entity">{a.entity_name.clone()}</div>
                        <div class="alert-msg">{a.message.clone()}</div>
                        <dl class="facts">
                            <dt>{move || i18n.tr("raised-at")}</dt>
                            <dd>{format::date_time(a.raised_at, &tz, lang)}</dd>
                            {a.unit_name.clone().map(|u| view! { <dt>{move || i18n.tr("unit")}</dt><dd>{u}</dd> })}
                            {a.assignee.clone().map(|u| view! { <dt>{move || i18n.tr("assignee")}</dt><dd id="alert-assignee">{u}</dd> })}
                            {a.shelved_until.filter(|_| a.state == AlertState::Shelved).map(|t| view! {
                                <dt>{move || i18n.tr("shelved-until")}</dt><dd>{format::date_time(t, &tz, lang)}</dd>
                            })}
                            {(a.escalation > 0).then(|| view! {
                                <dt>{move || i18n.tr("escalated")}</dt><dd class="escalated">{a.escalation}</dd>
                            })}
                            {a.incident.map(|i| view! {
                                <dt>{move || i18n.tr("incident")}</dt>
                                <dd><a href="#" id="alert-incident" on:click=move |e| { e.prevent_default(); ops.show_incident(i, None); }>{format!("#{i}")}</a></dd>
                            })}
                            {a.silenced.map(|s| view! {
                                <dt>{move || i18n.tr("silenced")}</dt><dd class="muted">{format!("#{s}")}</dd>
                            })}
                        </dl>
                        <div class="actions">{buttons}</div>
                        <Show when=move || work.ask.get().is_some()>
                            <form class="ask" on:submit=move |e| { e.prevent_default(); submit(); }>
                                <label>
                                    {move || match work.ask.get() {
                                        Some(Ask::Assign) => i18n.tr("ask-assign"),
                                        Some(Ask::Comment) => i18n.tr("ask-comment"),
                                        Some(Ask::Incident) => i18n.tr("ask-incident"),
                                        Some(Ask::Silence) => i18n.tr("ask-silence"),
                                        _ => i18n.tr("ask-shelve"),
                                    }}
                                    <input
                                        id="ask-input"
                                        list=move || (work.ask.get() == Some(Ask::Incident)).then_some("sop-names")
                                        node_ref=input_ref
                                        prop:value=input
                                        on:input=move |e| input.set(event_target_value(&e))
                                        on:keydown=move |e: web_sys::KeyboardEvent| {
                                            if e.key() == "Escape" {
                                                e.stop_propagation();
                                                work.ask.set(None);
                                            }
                                        }
                                    />
                                </label>
                            </form>
                        </Show>
                        <Show when=move || !clips.with(|c| c.is_empty())>
                            <h3>{move || i18n.tr("clips")}</h3>
                            <ul class="clips" id="alert-clips">
                                <For each=move || clips.get() key=|c| (c.id, c.state.as_str(), c.size) let:c>
                                    <ClipRow clip=c/>
                                </For>
                            </ul>
                        </Show>
                        <h3>{move || i18n.tr("timeline")}</h3>
                        <ol class="timeline" id="alert-timeline">
                            {move || detail.get().filter(|d| d.id == id).map(|d| {
                                d.events.into_iter().rev().map(|ev| {
                                    let what = match ev.kind {
                                        AlertEventKind::Transition => ev.to.map(|s| format!("state-{}", s.as_str())).unwrap_or_default(),
                                        k => format!("event-{}", serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()),
                                    };
                                    let when = format::ago(&i18n, ev.at, now.0.get());
                                    view! {
                                        <li class="event">
                                            <span class="when">{when}</span>
                                            // Who, and on which console when it was another's.
                                            <span class="who">{match &ev.node {
                                                Some(n) => format!("{}@{n}", ev.actor),
                                                None => ev.actor.clone(),
                                            }}</span>
                                            <span class="what">{move || i18n.tr_or(&what, &what)}</span>
                                            {ev.comment.clone().map(|c| view! { <span class="comment">{c}</span> })}
                                        </li>
                                    }
                                }).collect_view()
                            })}
                        </ol>
                    </section>
                }
            })}
          </div>
        </Show>
    }
}

/// One evidence clip: its camera, its span, its state and, once saved, its download.
#[component]
pub fn ClipRow(clip: ioc_model::ClipInfo) -> impl IntoView {
    let i18n = use_i18n();
    let settings = expect_context::<Settings>();
    let c = clip;
    let tz = settings.timezone.get_untracked();
    let lang = i18n.lang.get_untracked();
    let span = match (c.from, c.to) {
        (Some(f), Some(t)) => format!(
            "{}–{}",
            format::time(f, &tz, lang),
            format::time(t, &tz, lang)
        ),
        _ => format::time(c.at, &tz, lang),
    };
    let state = c.state.as_str();
    let href = client::cameras::clip_file_url(c.id);
    let mb = if c.size < 1 << 20 {
        format!("{} KB", c.size.div_ceil(1024))
    } else {
        format!("{:.1} MB", c.size as f64 / 1_048_576.0)
    };
    view! {
        <li class=format!("clip {state}") data-clip=c.id data-state=state>
            <span class="clip-camera">{c.camera_name.clone()}</span>
            <span class="clip-span">{span}</span>
            <span class="clip-state">{move || i18n.tr(&format!("clip-{state}"))}</span>
            {(c.state == ioc_model::ClipState::Saved).then(|| view! {
                <a class="btn small" href=href download=c.file_name.clone() title=c.sha256.clone().unwrap_or_default()>
                    {move || i18n.tr("clip-download")}" ("{mb.clone()}")"
                </a>
            })}
            {c.error.clone().map(|e| view! { <span class="muted clip-error">{e}</span> })}
        </li>
    }
}
