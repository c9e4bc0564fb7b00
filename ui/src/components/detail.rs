//! The entity panel: what it is, where, its status, latest values, a live chart of the last
//! six hours (plotters, from the 1-minute rollups plus the values arriving on the feed) and
//! its open alerts.

use super::app::{Now, Ops};
use crate::chart::{self, Band, ChartSpec};
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Live, Selection, Settings};
use chrono::{DateTime, Duration, Utc};
use ioc_model::{metric, Alert, Entity, SeriesResponse};
use leptos::prelude::*;
use leptos::task::spawn_local;

fn metrics_in_order(e: &Entity) -> Vec<String> {
    let mut known: Vec<String> = metric::METRICS
        .iter()
        .filter(|m| e.latest.contains_key(m.id))
        .map(|m| m.id.to_string())
        .collect();
    let mut other: Vec<String> = e
        .latest
        .keys()
        .filter(|k| metric::info(k).is_none())
        .cloned()
        .collect();
    other.sort();
    known.extend(other);
    known
}

#[component]
pub fn DetailPanel() -> impl IntoView {
    let i18n = use_i18n();
    let sel = expect_context::<Selection>();
    let live = expect_context::<Live>();
    let settings = expect_context::<Settings>();
    let now = expect_context::<Now>();
    let ops = Ops::get();

    let entity = Memo::new(move |_| {
        sel.entity
            .get()
            .and_then(|id| live.entities.with(|m| m.get(&id).cloned()))
    });
    let metric_sel = RwSignal::new(None::<String>);
    Effect::new(move |prev: Option<Option<String>>| {
        let id = sel.entity.get();
        if prev.as_ref() != Some(&id) {
            let first = entity
                .get_untracked()
                .and_then(|e| metrics_in_order(&e).into_iter().next());
            metric_sel.set(first);
        }
        id
    });
    // A device's values arrive a moment after it is selected (the feed sends only those of
    // the device on screen): the first of them is shown when they come.
    Effect::new(move |_| {
        let Some(e) = entity.get() else { return };
        if metric_sel.get_untracked().is_none() {
            if let Some(m) = metrics_in_order(&e).into_iter().next() {
                metric_sel.set(Some(m));
            }
        }
    });

    // History from the API whenever the entity or metric changes.
    let series = RwSignal::new(None::<Result<(SeriesResponse, DateTime<Utc>), String>>);
    let live_points = RwSignal::new(Vec::<(f64, f64)>::new());
    Effect::new(move |_| {
        let (Some(id), Some(m)) = (sel.entity.get(), metric_sel.get()) else {
            return;
        };
        series.set(None);
        live_points.set(Vec::new());
        spawn_local(async move {
            let to = format::now();
            let from = to - Duration::hours(6);
            let r = client::entities::series(&id, &m, from, to).await;
            // Only if the operator has not moved on meanwhile.
            if sel.entity.get_untracked().as_deref() == Some(id.as_str())
                && metric_sel.get_untracked().as_deref() == Some(m.as_str())
            {
                series.set(Some(r.map(|s| (s, to))));
            }
        });
    });
    // Values arriving on the feed extend the chart.
    Effect::new(move |_| {
        live.revision.track();
        let (Some(e), Some(m)) = (entity.get_untracked(), metric_sel.get_untracked()) else {
            return;
        };
        if let Some(r) = e.latest.get(&m) {
            let t = r.time.timestamp_millis() as f64;
            live_points.update(|pts| {
                if pts.last().is_none_or(|(lt, _)| t > *lt) {
                    pts.push((t, r.value));
                }
            });
        }
    });

    let svg = Memo::new(move |_| {
        let (Some(e), Some(m)) = (entity.get(), metric_sel.get()) else {
            return String::new();
        };
        let lang = i18n.lang.get();
        let tz = settings.timezone.get();
        series.with(|s| match s {
            Some(Ok((resp, to))) => {
                let bands: Vec<Band> = resp
                    .points
                    .iter()
                    .map(|p| Band {
                        t: p.t.timestamp_millis() as f64 + 30_000.0,
                        min: p.min,
                        max: p.max,
                        avg: p.avg,
                    })
                    .collect();
                let last_band = bands.last().map(|b| b.t).unwrap_or(0.0);
                let pts: Vec<(f64, f64)> = live_points
                    .get()
                    .into_iter()
                    .filter(|(t, _)| *t > last_band)
                    .collect();
                let end = pts
                    .last()
                    .map(|p| p.0)
                    .unwrap_or(0.0)
                    .max(to.timestamp_millis() as f64);
                let from = end - 6.0 * 3_600_000.0;
                let thresholds: Vec<(f64, String)> = if m == "water_level" {
                    (1..=3)
                        .filter_map(|n| {
                            e.attr_f64(&format!("alarm_{n}"))
                                .map(|v| (v, i18n.tr_n("alarm-level", "n", n)))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let label = move |t: f64| {
                    format::hm(
                        DateTime::from_timestamp_millis(t as i64).unwrap_or_default(),
                        &tz,
                        lang,
                    )
                };
                chart::render(&ChartSpec {
                    bands: &bands,
                    live: &pts,
                    from,
                    to: end,
                    thresholds: &thresholds,
                    uom: metric::uom(&m),
                    time_label: &label,
                    width: 392,
                    height: 210,
                })
            }
            _ => String::new(),
        })
    });

    // A camera: its live picture when it has a stream (kept open while the same camera is
    // shown: its values and status changing do not restart it), else its still.
    let camera = Memo::new(move |_| {
        use ioc_model::camera::{has_live, has_still};
        entity.with(|e| {
            e.as_ref()
                .filter(|e| has_live(e) || has_still(e))
                .map(|e| (e.id.clone(), has_live(e)))
        })
    });

    let alerts = Memo::new(move |_| {
        let Some(id) = sel.entity.get() else {
            return Vec::new();
        };
        let mut v: Vec<Alert> = live.alerts.with(|m| {
            m.values()
                .filter(|a| a.entity.as_deref() == Some(id.as_str()))
                .cloned()
                .collect()
        });
        v.sort_by(Alert::queue_cmp);
        v
    });

    view! {
        <Show when=move || entity.get().is_some()>
            <aside class="detail" id="detail">
                {move || {
                    let Some(e) = entity.get() else { return ().into_any() };
                    let tz = settings.timezone.get();
                    let lang = i18n.lang.get();
                    let kind = e.kind.clone();
                    let status = e.status.as_str();
                    let metrics = metrics_in_order(&e);
                    view! {
                        <header class="detail-head">
                            <div>
                                <div class="detail-kind">{i18n.tr_or(&format!("type-{kind}"), &kind)}</div>
                                <h2 class="detail-name">{e.name.clone()}</h2>
                                <div class="detail-id">{e.id.clone()}</div>
                            </div>
                            <button class="close" title="Esc" on:click=move |_| ops.select_entity(None, false)>
                                "×"
                            </button>
                        </header>
                        <dl class="facts">
                            <dt>{i18n.tr("detail-status")}</dt>
                            <dd class=format!("status {status}")>{i18n.tr(&format!("status-{status}"))}</dd>
                            <dt>{i18n.tr("detail-unit")}</dt>
                            <dd>{e.unit_name.clone().unwrap_or_else(|| "—".into())}</dd>
                            <dt>{i18n.tr("detail-last-seen")}</dt>
                            <dd>
                                {e.last_seen
                                    .map(|t| format!("{} ({})", format::time(t, &tz, lang), format::ago(&i18n, t, now.0.get_untracked())))
                                    .unwrap_or_else(|| "—".into())}
                            </dd>
                            <dt>{i18n.tr("detail-location")}</dt>
                            <dd>
                                {e.position()
                                    .map(|(lon, lat)| format!("{lat:.5}, {lon:.5}"))
                                    .unwrap_or_else(|| "—".into())}
                            </dd>
                        </dl>
                        <h3>{i18n.tr("detail-latest")}</h3>
                        {if metrics.is_empty() && e.last_seen.is_some() {
                            // It has reported: its values are on their way (the feed sends
                            // them once the device is on screen).
                            view! { <p class="muted loading">"…"</p> }.into_any()
                        } else if metrics.is_empty() {
                            view! { <p class="muted">{i18n.tr("detail-no-data")}</p> }.into_any()
                        } else {
                            view! {
                                <div class="metrics" role="tablist">
                                    {metrics
                                        .iter()
                                        .map(|m| {
                                            let r = e.latest.get(m).cloned();
                                            let m2 = m.clone();
                                            let m3 = m.clone();
                                            view! {
                                                <button
                                                    class="metric"
                                                    class:active=move || metric_sel.get().as_deref() == Some(m2.as_str())
                                                    data-metric=m.clone()
                                                    on:click=move |_| metric_sel.set(Some(m3.clone()))
                                                >
                                                    <span class="metric-name">{i18n.tr_or(&format!("metric-{m}"), m)}</span>
                                                    <span class="metric-value">
                                                        {r.as_ref().map(|r| format::value(m, r.value)).unwrap_or_default()}
                                                    </span>
                                                    {(m == "vn_aqi")
                                                        .then(|| r.as_ref().map(|r| metric::vn_aqi_band(r.value)))
                                                        .flatten()
                                                        .map(|band| {
                                                            view! {
                                                                <span class=format!("aqi-band b{band}")>
                                                                    {i18n.tr(&format!("vnaqi-{band}"))}
                                                                </span>
                                                            }
                                                        })}
                                                </button>
                                            }
                                        })
                                        .collect_view()}
                                </div>
                            }
                                .into_any()
                        }}
                    }
                        .into_any()
                }}
                {move || {
                    camera
                        .get()
                        .map(|(id, live)| {
                            view! {
                                <h3>{i18n.tr("detail-camera")}</h3>
                                <crate::still::CameraView camera=id live=live/>
                            }
                        })
                }}
                <h3>{move || i18n.tr("detail-chart")}</h3>
                <div class="chart" id="chart">
                    {move || match series.with(|s| s.as_ref().map(|r| r.as_ref().err().cloned())) {
                        None => view! { <p class="muted">{i18n.tr("detail-loading")}</p> }.into_any(),
                        Some(Some(err)) => view! { <p class="error">{err}</p> }.into_any(),
                        Some(None) => view! { <div inner_html=move || svg.get()></div> }.into_any(),
                    }}
                </div>
                <Show when=move || !alerts.with(|a| a.is_empty())>
                    <h3>{move || i18n.tr("detail-alerts")}</h3>
                    <ul class="entity-alerts">
                        {move || {
                            alerts
                                .get()
                                .into_iter()
                                .map(|a| {
                                    let sev = a.severity.as_str();
                                    view! {
                                        <li class=format!("sev-{sev}")>
                                            <span class=format!("sev-badge {sev}")>{i18n.tr(&format!("sev-{sev}"))}</span>
                                            " "
                                            {a.message.clone()}
                                        </li>
                                    }
                                })
                                .collect_view()
                        }}
                    </ul>
                </Show>
            </aside>
        </Show>
    }
}
