//! The video wall (`/wall?screen=N`, or `ioc-desktop --wall`: a window per monitor): no
//! chrome, big type, high contrast. Each screen plays its playlist of dashboards, each for
//! its seconds; an alert at least as severe as the profile says (not silenced) switches the
//! wall to it — its place on the map, its chart, the nearest camera — until it clears.
//!
//! It runs for weeks unattended: the feed reconnects by itself (and says since when the
//! data is stale while it cannot), and everything a screen shows is built once and kept —
//! the playlist's dashboards are all mounted and only shown in turn, the preset's map is
//! one map moved from alert to alert — so memory stays flat and nothing needs a reload.

use super::panels::{Basemap, ChartPanel, KpiValues, MapPanel, PanelView};
use crate::client;
use crate::feed;
use crate::format;
use crate::i18n::use_i18n;
use crate::map;
use crate::state::{Conn, Live};
use ioc_model::{Alert, AlertState, Dashboard, Panel, PanelKind, WallProfile};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

/// Whether this page is the wall.
pub fn is_wall() -> bool {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .is_some_and(|p| p == "/wall" || p.starts_with("/wall/"))
}

/// The screen number in the address (`?screen=2`), from 1.
fn screen_number() -> usize {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|s| {
            s.trim_start_matches('?')
                .split('&')
                .find_map(|kv| kv.strip_prefix("screen=").map(str::to_string))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(1usize)
        .max(1)
}

/// The alert the wall switches to: the most severe (then newest) open, active, unsilenced
/// one at least `min` severe.
pub fn preset_alert(alerts: &[&Alert], min: ioc_model::Severity) -> Option<i64> {
    alerts
        .iter()
        .filter(|a| a.active && a.state.is_open() && a.state != AlertState::Shelved)
        .filter(|a| a.silenced.is_none() && a.severity >= min)
        .max_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(a.raised_at.cmp(&b.raised_at))
        })
        .map(|a| a.id)
}

#[component]
pub fn WallApp() -> impl IntoView {
    let i18n = use_i18n();
    let live = Live::new();
    provide_context(live);
    let (settings, now) = super::app::provide_time();
    let basemap = Basemap(RwSignal::new(None));
    provide_context(basemap);
    basemap.load();
    let named = crate::video::NamedCameras::provide();
    provide_context(KpiValues(Signal::derive(move || live.kpis.get())));
    // For the soak test: a reload would change this.
    let _ = js_sys::Reflect::set(
        &js_sys::global(),
        &"__wallLoadedAt".into(),
        &js_sys::Date::now().into(),
    );
    spawn_local(async move {
        if let Ok(h) = client::health().await {
            settings.timezone.set(h.timezone);
        }
    });
    feed::start(live);

    let screen = screen_number();
    let profile = RwSignal::new(None::<WallProfile>);
    let dashboards = RwSignal::new(Vec::<Dashboard>::new());
    let load = move || {
        spawn_local(async move {
            if let Ok(p) = client::dashboards::wall().await {
                profile.set(Some(p));
            }
            if let Ok(d) = client::dashboards::list().await {
                dashboards.set(d);
            }
        })
    };
    load();
    // The profile may change; look again every few minutes (no reload needed).
    set_interval(load, Duration::from_secs(300));

    let playlist = Memo::new(move |_| {
        let p = profile.get()?;
        let s = p
            .screens
            .get((screen - 1) % p.screens.len().max(1))?
            .clone();
        Some(s)
    });
    let items = Memo::new(move |_| {
        let s = playlist.get()?;
        let ds = dashboards.get();
        Some(
            s.playlist
                .iter()
                .filter_map(|it| {
                    ds.iter()
                        .find(|d| d.id == it.dashboard)
                        .map(|d| (d.clone(), it.seconds))
                })
                .collect::<Vec<_>>(),
        )
    });
    // The first screen drawn with data: marked on the page's timeline (after the frame that
    // shows it) for `ioc bench map`.
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        let ready = items.with(|i| i.as_ref().is_some_and(|v| !v.is_empty()))
            && live.data_time.with(|t| t.is_some());
        if ready {
            crate::feed::mark_after_frame("ioc-wall-painted");
        }
        ready
    });
    let current = RwSignal::new(0usize);
    let started = RwSignal::new(format::now_ms());
    let preset = Memo::new(move |_| {
        let min = profile.get().map(|p| p.preset_severity)?;
        live.alerts.with(|m| {
            let v: Vec<&Alert> = m.values().collect();
            preset_alert(&v, min)
        })
    });
    // The rotation, paused while an alert holds the wall.
    set_interval(
        move || {
            if preset.get_untracked().is_some() {
                started.set(format::now_ms());
                return;
            }
            let Some(list) = items.get_untracked() else {
                return;
            };
            if list.is_empty() {
                return;
            }
            let i = current.get_untracked() % list.len();
            if format::now_ms() - started.get_untracked() >= f64::from(list[i].1) * 1000.0 {
                current.set((i + 1) % list.len());
                started.set(format::now_ms());
            }
        },
        Duration::from_millis(250),
    );
    let showing = move || {
        if preset.get().is_some() {
            "preset".to_string()
        } else {
            items
                .get()
                .and_then(|l| {
                    l.get(current.get() % l.len().max(1))
                        .map(|(d, _)| d.id.clone())
                })
                .unwrap_or_default()
        }
    };
    let stale = move || {
        now.0.track();
        live.conn.get() != Conn::Live || format::now_ms() - live.last_message.get() > 15_000.0
    };
    let stale_since = move || {
        let t = live.last_message.get();
        if t <= 0.0 {
            return i18n.tr("conn-connecting");
        }
        let d = chrono::DateTime::from_timestamp_millis(t as i64).unwrap_or_default();
        i18n.tr_n(
            "wall-stale",
            "time",
            format::time(d, &settings.timezone.get(), i18n.lang.get()),
        )
    };
    let alert = Memo::new(move |_| {
        let id = preset.get()?;
        live.alerts.with(|m| m.get(&id).cloned())
    });
    // The alert's cameras, as the operator's alert panel shows them (kept while the same
    // alert is on the wall: its values changing do not restart the pictures).
    let cameras = Memo::new(move |_| {
        alert.with(|a| {
            let Some(a) = a else { return Vec::new() };
            live.entities.with(|m| {
                let names = named.for_alert(a, m);
                crate::video::related_cameras(
                    m,
                    a.entity.as_deref(),
                    &names,
                    super::alert_panel::RELATED_CAMERAS,
                    super::alert_panel::RELATED_RADIUS_M,
                )
            })
        })
    });
    // The preset's map follows the alert.
    Effect::new(move |_| {
        let place = alert.get().and_then(|a| {
            let e = a.entity.as_ref()?;
            let pos = live
                .entities
                .with_untracked(|m| m.get(e).and_then(|x| x.position()))?;
            Some((pos, a.entity_name.clone()))
        });
        match place {
            Some(((lon, lat), name)) => map::small::focus("wall-preset-map", lon, lat, &name),
            None => map::small::focus("wall-preset-map", f64::NAN, f64::NAN, ""),
        }
    });
    let progress = move || {
        now.0.track();
        let Some(list) = items.get() else { return 0.0 };
        let Some((_, secs)) = list.get(current.get() % list.len().max(1)) else {
            return 0.0;
        };
        ((format::now_ms() - started.get()) / (f64::from(*secs) * 1000.0) * 100.0).clamp(0.0, 100.0)
    };

    view! {
        <div class="wall" id="wall" data-showing=showing data-screen=screen data-alert=move || preset.get().map(|i| i.to_string()).unwrap_or_default()>
            <header class="wall-bar">
                <span class="wall-title">{move || i18n.tr("app-title")}</span>
                <span class="wall-now">{move || {
                    let n = items.get().map(|l| l.len()).unwrap_or(0);
                    let name = items.get().and_then(|l| l.get(current.get() % l.len().max(1)).map(|(d, _)| d.name.clone())).unwrap_or_default();
                    if preset.get().is_some() { i18n.tr("wall-alert") } else { format!("{name} · {}/{n}", current.get() % n.max(1) + 1) }
                }}</span>
                <span class="wall-clock">{move || format::time(now.0.get(), &settings.timezone.get(), i18n.lang.get())}</span>
            </header>
            <div class="wall-progress"><i style=move || format!("width:{:.1}%", progress())></i></div>
            <super::link::LinkBanner/>
            <Show when=stale>
                <div class="wall-stale" id="wall-stale" role="alert">{stale_since}</div>
            </Show>
            <div class="wall-stage">
                {move || items.get().map(|list| list.into_iter().enumerate().map(|(i, (d, _))| {
                    let id = d.id.clone();
                    let visible = move || preset.get().is_none() && items.get().is_some_and(|l| current.get() % l.len().max(1) == i);
                    view! {
                        <div class="dash-grid wall-dash" class:shown=visible data-dashboard=id.clone()>
                            {d.panels.into_iter().map(|p| view! { <PanelView panel=p key_prefix=format!("wall-{id}") large=true/> }).collect_view()}
                        </div>
                    }
                }).collect_view())}
                <div class="wall-preset" class:shown=move || preset.get().is_some() id="wall-preset">
                    <div class="preset-map"><MapPanel id="wall-preset-map".to_string() kpi=None large=true/></div>
                    <div class="preset-side">
                        {move || alert.get().map(|a| {
                            let sev = a.severity.as_str();
                            view! {
                                <div class=format!("preset-alert sev-{sev}") data-alert=a.id>
                                    <div class=format!("sev-badge {sev}")>{i18n.tr(&format!("sev-{sev}"))}</div>
                                    <div class="preset-entity">{a.entity_name.clone()}</div>
                                    <div class="preset-msg">{a.message.clone()}</div>
                                    <div class="muted">{a.unit_name.clone().unwrap_or_default()}" · "{format::time(a.raised_at, &settings.timezone.get_untracked(), i18n.lang.get_untracked())}</div>
                                </div>
                            }
                        })}
                        {move || alert.get().and_then(|a| Some((a.entity.clone()?, a.metric.clone()?))).map(|(e, m)| {
                            let p = Panel { id: format!("preset-chart-{e}-{m}"), kind: PanelKind::Chart, x: 0, y: 0, w: 12, h: 4, title: None, kpi: None, kpis: Vec::new(), entity: Some(e), metric: Some(m), days: Some(1), text: None, min_severity: None, limit: None };
                            view! { <div class="preset-chart"><ChartPanel panel=p large=true/></div> }
                        })}
                        <Show when=move || !cameras.with(|c| c.is_empty())>
                            <div class="preset-cameras" id="wall-cameras">
                                <div class="muted">{move || i18n.tr("wall-camera")}</div>
                                <For each=move || cameras.get() key=|c| c.clone() let:cam>
                                    <crate::still::CameraView camera=cam.0 live=cam.1/>
                                </For>
                            </div>
                        </Show>
                    </div>
                </div>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::Severity;

    fn alert(id: i64, sev: Severity, active: bool, silenced: bool) -> Alert {
        let mut a: Alert = serde_json::from_value(serde_json::json!({
            "id": id, "rule": "r", "entity_name": "x", "domain": "water", "category": "flood",
            "severity": sev, "state": "new", "active": active, "message": "m",
            "raised_at": format!("2026-12-01T00:0{id}:00Z"), "updated_at": "2026-12-01T00:00:00Z",
            "count": 1
        }))
        .unwrap();
        if silenced {
            a.silenced = Some(1);
        }
        a
    }

    #[test]
    fn the_most_severe_newest_alert_holds_the_wall() {
        let a = [
            alert(1, Severity::Critical, true, false),
            alert(2, Severity::Critical, true, false),
            alert(3, Severity::Critical, true, true),
            alert(4, Severity::Major, true, false),
            alert(5, Severity::Critical, false, false),
        ];
        let refs: Vec<&Alert> = a.iter().collect();
        assert_eq!(preset_alert(&refs, Severity::Critical), Some(2));
        assert_eq!(
            preset_alert(&refs[3..], Severity::Critical),
            None,
            "cleared or too mild"
        );
        assert_eq!(preset_alert(&refs[3..], Severity::Major), Some(4));
    }
}
