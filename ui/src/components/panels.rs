//! The panels dashboards and the wall are made of: a KPI tile (value, target, status,
//! change), a chart (a KPI's series, or a device's metric), a ranking of communes, a map
//! (communes coloured by a KPI, or the live devices), open alerts, incidents, a table of
//! KPIs, words. Each reads what the server keeps ready (the live KPI values over the feed,
//! the rollups behind the series), so a year opens in well under a second; on the wall
//! (`large`) the same panels use the wall's big type.

use super::app::Now;
use crate::chart;
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::map;
use crate::state::Live;
use ioc_model::{
    Alert, Better, Incident, KpiSeries, KpiValue, Panel, PanelKind, Period, SeriesResponse,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;
use wasm_bindgen::JsCast;

/// The basemap as `/api/basemap` describes it (JSON), fetched once.
#[derive(Clone, Copy)]
pub struct Basemap(pub RwSignal<Option<String>>);

impl Basemap {
    pub fn load(self) {
        spawn_local(async move {
            if let Ok(info) = client::basemap().await {
                self.0.set(Some(crate::map::basemap_json(&info)));
            }
        });
    }
}

/// The KPI values panels show: live (each KPI's current period) or of a chosen period.
#[derive(Clone, Copy)]
pub struct KpiValues(pub Signal<Vec<KpiValue>>);

/// How a value is judged on screen: its status, "none" when nothing was
/// measured, "empty" when nothing happened to measure (no alerts to
/// acknowledge: the value is the definition's `empty`, not a judgement).
pub fn shown_status(k: &KpiValue) -> &'static str {
    match (k.no_data, k.value) {
        (false, _) => k.status.as_str(),
        (true, Some(_)) => "empty",
        (true, None) => "none",
    }
}

/// A KPI value with its unit, as tiles print it.
pub fn value_text(v: Option<f64>, uom: &str) -> String {
    match v {
        None => "—".into(),
        Some(x) => {
            let n = if x.abs() >= 100.0 || x.fract().abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            };
            if uom.is_empty() {
                n
            } else if uom == "%" {
                format!("{n} %")
            } else {
                format!("{n} {uom}")
            }
        }
    }
}

/// The name a KPI is shown with in the current language.
pub fn kpi_name(k: &KpiValue, en: bool) -> String {
    if en {
        k.name_en.clone().unwrap_or_else(|| k.name.clone())
    } else {
        k.name.clone()
    }
}

#[component]
pub fn PanelView(panel: Panel, key_prefix: String, #[prop(optional)] large: bool) -> impl IntoView {
    let i18n = use_i18n();
    let values = expect_context::<KpiValues>();
    let kpi_id = panel.kpi.clone();
    let find = move |id: &Option<String>| {
        let id = id.clone()?;
        values.0.with(|v| v.iter().find(|k| k.id == id).cloned())
    };
    let title = {
        let p = panel.clone();
        move || {
            p.title.clone().unwrap_or_else(|| match p.kind {
                PanelKind::Kpi | PanelKind::Ranking | PanelKind::Chart | PanelKind::Map
                    if p.kpi.is_some() =>
                {
                    find(&p.kpi)
                        .map(|k| kpi_name(&k, i18n.lang.get() == crate::i18n::Lang::En))
                        .unwrap_or_else(|| p.kpi.clone().unwrap_or_default())
                }
                kind => i18n.tr(&format!("panel-{}", kind.as_str())),
            })
        }
    };
    let style = format!(
        "grid-column: {} / span {}; grid-row: {} / span {};",
        panel.x + 1,
        panel.w,
        panel.y + 1,
        panel.h
    );
    let body = match panel.kind {
        PanelKind::Kpi => view! { <KpiTile id=kpi_id.clone().unwrap_or_default()/> }.into_any(),
        PanelKind::Chart => view! { <ChartPanel panel=panel.clone() large=large/> }.into_any(),
        PanelKind::Ranking => view! { <RankingPanel id=kpi_id.clone().unwrap_or_default() limit=panel.limit.unwrap_or(10) as usize/> }.into_any(),
        PanelKind::Map => view! { <MapPanel id=format!("{key_prefix}-{}", panel.id) kpi=kpi_id.clone() large=large/> }.into_any(),
        PanelKind::Alerts => view! { <AlertsPanel min=panel.min_severity limit=panel.limit.unwrap_or(8) as usize/> }.into_any(),
        PanelKind::Incidents => view! { <IncidentsPanel limit=panel.limit.unwrap_or(6) as usize/> }.into_any(),
        PanelKind::Table => view! { <TablePanel ids=panel.kpis.clone()/> }.into_any(),
        PanelKind::Text => view! { <p class="panel-text">{panel.text.clone().unwrap_or_default()}</p> }.into_any(),
        PanelKind::Camera => view! { <CameraPanel camera=panel.entity.clone().unwrap_or_default()/> }.into_any(),
    };
    view! {
        <section class=format!("panel panel-{}", panel.kind.as_str()) style=style data-panel=panel.id.clone() data-kind=panel.kind.as_str()>
            <h3 class="panel-title">{title}</h3>
            <div class="panel-body">{body}</div>
        </section>
    }
}

#[component]
fn KpiTile(id: String) -> impl IntoView {
    let i18n = use_i18n();
    let values = expect_context::<KpiValues>();
    let k = Memo::new(move |_| values.0.with(|v| v.iter().find(|k| k.id == id).cloned()));
    move || match k.get() {
        None => view! { <div class="muted">{i18n.tr("kpi-loading")}</div> }.into_any(),
        Some(k) => {
            let st = shown_status(&k);
            let arrow = match (k.value, k.previous) {
                (Some(v), Some(p)) if (v - p).abs() > 1e-9 => {
                    let up = v > p;
                    let good = up == (k.better == Better::Higher);
                    Some((
                        if up { "▲" } else { "▼" },
                        if good { "good" } else { "bad" },
                        value_text(Some((v - p).abs()), &k.uom),
                    ))
                }
                _ => None,
            };
            view! {
                <div class=format!("kpi-tile status-{st}") data-kpi=k.id.clone() data-status=k.status.as_str() data-value=k.value.map(|v| v.to_string()).unwrap_or_default()>
                    <div class="kpi-value">{value_text(k.value, &k.uom)}</div>
                    <div class="kpi-target">{i18n.tr_n("kpi-target", "target", value_text(Some(k.target), &k.uom))}</div>
                    {arrow.map(|(a, c, d)| view! { <div class=format!("kpi-trend {c}")>{a}" "{d}" "<span class="muted">{i18n.tr("kpi-vs-previous")}</span></div> })}
                    {k.no_data.then(|| view! { <div class="muted">{i18n.tr(if k.value.is_some() { "kpi-empty" } else { "kpi-no-data" })}</div> })}
                </div>
            }
            .into_any()
        }
    }
}

/// Keeps `size` at the laid-out size of `node` (whole pixels), following it as it changes: a
/// wall's first layout, a window moved to another monitor, a panel resized. The observer
/// goes with the panel.
fn watch_size(node: NodeRef<leptos::html::Div>, size: RwSignal<(u32, u32)>) {
    use wasm_bindgen::closure::Closure;
    type Watch = (web_sys::ResizeObserver, Closure<dyn Fn(js_sys::Array)>);
    let kept = StoredValue::new_local(None::<Watch>);
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        let Some(el) = node.get() else { return false };
        let seen = Closure::<dyn Fn(js_sys::Array)>::new(move |entries: js_sys::Array| {
            let Ok(e) = entries.get(0).dyn_into::<web_sys::ResizeObserverEntry>() else {
                return;
            };
            let r = e.content_rect();
            let s = (r.width().round() as u32, r.height().round() as u32);
            if s.0 > 0 && s.1 > 0 && size.get_untracked() != s {
                size.set(s);
            }
        });
        let Ok(ro) = web_sys::ResizeObserver::new(seen.as_ref().unchecked_ref()) else {
            return true;
        };
        ro.observe(&el);
        kept.set_value(Some((ro, seen)));
        true
    });
    on_cleanup(move || {
        let _ = kept.try_update_value(|w| {
            if let Some((ro, _)) = w.take() {
                ro.disconnect();
            }
        });
    });
}

/// Fetches with `fetch` now and every `every`, into `into`; stops with the panel.
fn poll<T, F>(fetch: impl Fn() -> F + 'static, every: Duration, into: RwSignal<Option<T>>)
where
    T: Send + Sync + 'static,
    F: std::future::Future<Output = Result<T, String>> + 'static,
{
    let fetch = std::rc::Rc::new(fetch);
    let load = move || {
        let fetch = fetch.clone();
        spawn_local(async move {
            if let Ok(v) = fetch().await {
                into.try_set(Some(v));
            }
        });
    };
    load();
    if let Ok(h) = set_interval_with_handle(load, every) {
        on_cleanup(move || h.clear());
    }
}

#[component]
pub fn ChartPanel(panel: Panel, large: bool) -> impl IntoView {
    let settings = expect_context::<crate::state::Settings>();
    let i18n = use_i18n();
    let days = i64::from(panel.days.unwrap_or(7).max(1));
    // Drawn at the size the panel has (a wall's rows are short and wide), the wall's big
    // type only where there is room for it.
    let node = NodeRef::<leptos::html::Div>::new();
    let laid_out = RwSignal::new(if large { (900, 360) } else { (560, 200) });
    watch_size(node, laid_out);
    let fit = move || {
        let (w, h) = laid_out.get();
        ((w.max(160), h.max(80)), large && h >= 240)
    };
    if let Some(k) = panel.kpi.clone() {
        let series = RwSignal::new(None::<KpiSeries>);
        let to = format::now() + chrono::Duration::hours(1);
        let from = to - chrono::Duration::days(days);
        let fetch = move || {
            let k = k.clone();
            async move { client::kpis::series(&k, from, to, None, None).await }
        };
        poll(fetch, Duration::from_secs(60), series);
        view! {
            <div class="chart" node_ref=node inner_html=move || {
                let Some(s) = series.get() else { return String::new() };
                let (size, large) = fit();
                let tz = settings.timezone.get();
                let lang = i18n.lang.get();
                let period = s.period;
                let pts: Vec<(f64, Option<f64>, &str)> = s.points.iter().map(|p| (p.from.timestamp_millis() as f64, p.value, p.status.as_str())).collect();
                let label = move |t: f64| {
                    let d = chrono::DateTime::from_timestamp_millis(t as i64).unwrap_or_default();
                    if period == Period::Hour { format::hm(d, &tz, lang) } else { format::day_month(d, &tz, lang) }
                };
                chart::kpi(&pts, s.target, s.uom.is_empty(), &label, size, large)
            }></div>
        }
        .into_any()
    } else {
        let (entity, metric) = (
            panel.entity.clone().unwrap_or_default(),
            panel.metric.clone().unwrap_or_default(),
        );
        let series = RwSignal::new(None::<SeriesResponse>);
        let to = format::now();
        let from = to - chrono::Duration::days(days);
        let fetch = move || {
            let (entity, metric) = (entity.clone(), metric.clone());
            async move { client::entities::series(&entity, &metric, from, to).await }
        };
        poll(fetch, Duration::from_secs(60), series);
        let (f, t) = (from.timestamp_millis() as f64, to.timestamp_millis() as f64);
        view! {
            <div class="chart" node_ref=node inner_html=move || {
                let Some(s) = series.get() else { return String::new() };
                let (size, _) = fit();
                let tz = settings.timezone.get();
                let lang = i18n.lang.get();
                let bands: Vec<chart::Band> = s.points.iter().map(|p| chart::Band { t: p.t.timestamp_millis() as f64, min: p.min, max: p.max, avg: p.avg }).collect();
                let label = move |t: f64| {
                    let d = chrono::DateTime::from_timestamp_millis(t as i64).unwrap_or_default();
                    if days <= 2 { format::hm(d, &tz, lang) } else { format::day_month(d, &tz, lang) }
                };
                chart::render(&chart::ChartSpec { bands: &bands, live: &[], from: f, to: t, thresholds: &[], uom: &s.uom, time_label: &label, width: size.0, height: size.1 })
            }></div>
        }
        .into_any()
    }
}

#[component]
fn RankingPanel(id: String, limit: usize) -> impl IntoView {
    let values = expect_context::<KpiValues>();
    let k = Memo::new(move |_| values.0.with(|v| v.iter().find(|k| k.id == id).cloned()));
    move || {
        let Some(k) = k.get() else {
            return view! { <div></div> }.into_any();
        };
        let max = k
            .by_unit
            .iter()
            .filter_map(|u| u.value)
            .fold(k.target, f64::max)
            .max(1e-9);
        view! {
            <ol class="ranking">
                {k.by_unit.iter().take(limit).map(|u| {
                    let w = u.value.map(|v| (v / max * 100.0).clamp(0.0, 100.0)).unwrap_or(0.0);
                    view! {
                        <li class=format!("status-{}", u.status.as_str()) data-unit=u.unit.clone()>
                            <span class="rank-name">{u.unit_name.clone()}</span>
                            <span class="rank-bar"><i style=format!("width:{w:.1}%")></i></span>
                            <span class="rank-value">{value_text(u.value, &k.uom)}</span>
                        </li>
                    }
                }).collect_view()}
            </ol>
        }
        .into_any()
    }
}

#[component]
pub fn MapPanel(id: String, kpi: Option<String>, large: bool) -> impl IntoView {
    let live = expect_context::<Live>();
    let values = expect_context::<KpiValues>();
    let basemap = expect_context::<Basemap>();
    let node = NodeRef::<leptos::html::Div>::new();
    let key = id.clone();
    // Once it is on the page and the basemap is known: the map, then its colours.
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        let (Some(el), Some(info)) = (node.get(), basemap.0.get()) else {
            return false;
        };
        let el: web_sys::HtmlElement = el.unchecked_into();
        map::small::init(&key, &el, &info, large);
        true
    });
    let key2 = id.clone();
    let kpi2 = kpi.clone();
    Effect::new(move |_| {
        basemap.0.track();
        match &kpi2 {
            Some(k) => {
                let by_unit = values
                    .0
                    .with(|v| v.iter().find(|x| &x.id == k).map(|x| x.by_unit.clone()))
                    .unwrap_or_default();
                map::small::color_units(&key2, &by_unit);
            }
            None => {
                live.revision.track();
                live.entities.with_untracked(|e| {
                    live.alerts
                        .with_untracked(|a| map::small::show_devices(&key2, e, a))
                });
            }
        }
    });
    // Without boundaries there is nothing to colour: say so on the panel, as the main map does,
    // rather than leave an empty box.
    let i18n = use_i18n();
    let no_basemap = move || {
        basemap.0.with(|b| {
            b.as_deref()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                .is_some_and(|v| v["kind"] == "none")
        })
    };
    view! {
        <div class="small-map" id=id.clone() node_ref=node>
            <Show when=no_basemap>
                <div class="map-note small-map-note">{move || i18n.tr("basemap-none")}</div>
            </Show>
        </div>
    }
}

fn queue_order(live: Live, min: Option<ioc_model::Severity>, limit: usize) -> Vec<Alert> {
    let mut v: Vec<Alert> = live.alerts.with(|m| {
        m.values()
            .filter(|a| a.silenced.is_none() && min.is_none_or(|s| a.severity >= s))
            .cloned()
            .collect()
    });
    v.sort_by(Alert::queue_cmp);
    v.truncate(limit);
    v
}

#[component]
fn AlertsPanel(min: Option<ioc_model::Severity>, limit: usize) -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let now = expect_context::<Now>();
    let list = Memo::new(move |_| queue_order(live, min, limit));
    view! {
        <ol class="panel-list">
            <Show when=move || list.with(|l| l.is_empty())>
                <li class="muted">{move || i18n.tr("queue-empty")}</li>
            </Show>
            <For each=move || list.get() key=|a| (a.id, a.updated_at) children=move |a| {
                let sev = a.severity.as_str();
                let raised = a.raised_at;
                view! {
                    <li class=format!("sev-{sev}") data-alert=a.id>
                        <span class=format!("sev-badge {sev}")>{move || i18n.tr(&format!("sev-{sev}"))}</span>
                        " "<strong>{a.entity_name.clone()}</strong>" "{a.message.clone()}
                        <span class="muted">{move || format!(" · {}", format::ago(&i18n, raised, now.0.get()))}</span>
                    </li>
                }
            }/>
        </ol>
    }
}

#[component]
fn IncidentsPanel(limit: usize) -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let list = Memo::new(move |_| {
        let mut v: Vec<Incident> = live.incidents.with(|m| m.values().cloned().collect());
        v.sort_by(Incident::list_cmp);
        v.truncate(limit);
        v
    });
    view! {
        <ol class="panel-list">
            <Show when=move || list.with(|l| l.is_empty())>
                <li class="muted">{move || i18n.tr("incident-none")}</li>
            </Show>
            <For each=move || list.get() key=|i| (i.id, i.updated_at) children=move |i| {
                let sev = i.severity.as_str();
                let (done, total) = i.progress();
                let late = i.late_steps(format::now());
                view! {
                    <li class=format!("sev-{sev}") data-incident=i.id>
                        <span class=format!("sev-badge {sev}")>{move || i18n.tr(&format!("sev-{sev}"))}</span>
                        " "<strong>{format!("#{} ", i.id)}</strong>{i.title.clone()}
                        {(total > 0).then(|| view! { <span class="muted">{format!(" · {done}/{total}")}</span> })}
                        {(late > 0).then(|| view! { <span class="late">{move || format!(" · {}", i18n.tr_n("incident-late-steps", "count", late))}</span> })}
                    </li>
                }
            }/>
        </ol>
    }
}

#[component]
fn TablePanel(ids: Vec<String>) -> impl IntoView {
    let i18n = use_i18n();
    let values = expect_context::<KpiValues>();
    let rows = Memo::new(move |_| {
        values.0.with(|v| {
            ids.iter()
                .filter_map(|id| v.iter().find(|k| &k.id == id).cloned())
                .collect::<Vec<_>>()
        })
    });
    view! {
        <table class="grid kpi-table">
            <thead><tr>
                <th>{move || i18n.tr("kpi-name")}</th>
                <th class="num">{move || i18n.tr("kpi-value")}</th>
                <th class="num">{move || i18n.tr("kpi-target-col")}</th>
                <th>{move || i18n.tr("kpi-status")}</th>
            </tr></thead>
            <tbody>
                {move || rows.get().into_iter().map(|k| {
                    let st = shown_status(&k);
                    let en = i18n.lang.get() == crate::i18n::Lang::En;
                    view! {
                        <tr data-kpi=k.id.clone()>
                            <td>{kpi_name(&k, en)}</td>
                            <td class="num strong">{value_text(k.value, &k.uom)}</td>
                            <td class="num">{value_text(Some(k.target), &k.uom)}</td>
                            <td><span class=format!("kpi-dot status-{st}")></span>{i18n.tr(&format!("kpi-status-{st}"))}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// A camera on a dashboard or the wall: live when it has a stream, else its still; its name
/// under it. A camera that is not (or no longer) known says so.
#[component]
fn CameraPanel(camera: String) -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<crate::state::Live>();
    let id = camera.clone();
    // Decided once the camera is known (kept: its readings changing do not restart it).
    let shown = Memo::new(move |_| {
        live.entities.with(|m| {
            m.get(&id).map(|e| {
                (
                    e.name.clone(),
                    ioc_model::camera::has_live(e),
                    ioc_model::camera::has_still(e) || ioc_model::camera::has_live(e),
                )
            })
        })
    });
    let attr = camera.clone();
    view! {
        <div class="camera-panel" data-camera=attr>
            {move || match shown.get() {
                Some((name, live, true)) => view! {
                    <crate::still::CameraView camera=camera.clone() live=live/>
                    <div class="camera-panel-name">{name}</div>
                }.into_any(),
                Some((name, _, false)) => view! { <p class="muted">{name}": "{i18n.tr("camera-still-none")}</p> }.into_any(),
                None => view! { <p class="muted">{i18n.tr("panel-no-camera")}" "{camera.clone()}</p> }.into_any(),
            }}
        </div>
    }
}
