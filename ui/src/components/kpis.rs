//! The KPI screen (`0`): every KPI against its target; one KPI's page — its value over a
//! period, its trend, the communes ranked, and what is behind the number (the stations, the
//! alerts…, for the province or one commune); its definition, checked as you type; and the
//! statistical reports: made on demand with a progress bar, and those of the schedule.

use super::app::Ops;
use super::panels::{kpi_name, value_text};
use crate::chart;
use crate::client;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Live, Settings};
use ioc_model::{
    Domain, KpiDef, KpiDefs, KpiItem, KpiSeries, KpiValue, Period, ReportFormat, ReportJob,
    ReportRequest, ReportState, Reports, RuleCheck, ValidateBody,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

const NEW_KPI: &str = r#"id = "chi-so-moi"
name = "Chỉ số mới"
domain = "environment"
period = "day"
uom = "%"
target = 90.0
better = "higher"
green = 90.0
amber = 75.0

[of]
source = "observations"
metric = "pm25"
each = "avg"
measure = "share"
where = "value <= 50.0"
"#;

#[component]
pub fn KpisView() -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let settings = expect_context::<Settings>();
    let ops = Ops::get();
    let chosen = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if chosen.get_untracked().is_none() {
            if let Some(k) = live.kpis.with(|v| v.first().map(|k| k.id.clone())) {
                chosen.set(Some(k));
            }
        }
    });
    let en = move || i18n.lang.get() == crate::i18n::Lang::En;

    // The chosen KPI over a period: its own current one, or a day/week/month of a date.
    let period = RwSignal::new(String::new());
    let date = RwSignal::new(format::now().format("%Y-%m-%d").to_string());
    let unit = RwSignal::new(None::<String>);
    let value = RwSignal::new(None::<KpiValue>);
    let items = RwSignal::new(Vec::<KpiItem>::new());
    let range_days = RwSignal::new(30i64);
    let series = RwSignal::new(None::<KpiSeries>);
    let over = move || {
        let p = period.get();
        client::kpis::Over {
            period: (!p.is_empty()).then(|| (p, date.get())),
            unit: unit.get(),
        }
    };
    Effect::new(move |_| {
        let Some(id) = chosen.get() else { return };
        let over = over();
        live.kpis.track();
        spawn_local(async move {
            if let Ok(v) = client::kpis::value(&id, &over).await {
                value.set(Some(v));
            }
            if let Ok(v) = client::kpis::detail(&id, &over).await {
                items.set(v);
            }
        });
    });
    Effect::new(move |_| {
        let Some(id) = chosen.get() else { return };
        let days = range_days.get();
        let u = unit.get();
        let to = format::now() + chrono::Duration::hours(1);
        let from = to - chrono::Duration::days(days);
        let period = (days > 60).then_some("week");
        spawn_local(async move {
            if let Ok(s) = client::kpis::series(&id, from, to, period, u.as_deref()).await {
                series.set(Some(s));
            }
        });
    });

    // The definition editor.
    let defs = RwSignal::new(KpiDefs::default());
    let load_defs = move || {
        spawn_local(async move {
            if let Ok(d) = client::kpis::defs().await {
                defs.set(d);
            }
        })
    };
    load_defs();
    let editing = RwSignal::new(None::<(Option<String>, bool)>);
    // The definition open is the province's (kept from the IOC, read-only here).
    let provinces = RwSignal::new(false);
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
                    replacing: editing.get_untracked().and_then(|e| e.0),
                };
                spawn_local(async move {
                    if let Ok(c) = client::kpis::validate_def(&body).await {
                        check.set(Some(c));
                    }
                });
            },
            Duration::from_millis(300),
        )
        .ok();
        pending.set_value(h);
    };
    let edit = move |new: bool| {
        check.set(None);
        if new {
            text.set(NEW_KPI.into());
            provinces.set(false);
            editing.set(Some((None, true)));
        } else {
            let id = chosen.get_untracked();
            let d = defs
                .with_untracked(|d| d.defs.iter().find(|x| Some(&x.id) == id.as_ref()).cloned());
            if let Some(d) = d {
                text.set(d.text.clone());
                provinces.set(d.origin == "province");
                editing.set(Some((Some(d.id), d.editable)));
            }
        }
        validate();
    };
    let save = move |_| {
        let Some((replacing, _)) = editing.get_untracked() else {
            return;
        };
        let body = ioc_model::RuleText {
            text: text.get_untracked(),
        };
        spawn_local(async move {
            match client::kpis::save_def(replacing.as_deref(), &body).await {
                Ok((200 | 201, b)) => {
                    if let Ok(d) = serde_json::from_str::<KpiDef>(&b) {
                        ops.toast(i18n.tr_n("kpi-saved", "name", d.name.clone()), false);
                        chosen.set(Some(d.id));
                    }
                    editing.set(None);
                    load_defs();
                }
                Ok((_, b)) => match serde_json::from_str::<RuleCheck>(&b) {
                    Ok(c) => check.set(Some(c)),
                    Err(_) => ops.toast(b, true),
                },
                Err(e) => ops.toast(e, true),
            }
        });
    };

    // Reports.
    let r_domain = RwSignal::new(String::new());
    let r_period = RwSignal::new("day".to_string());
    let r_date = RwSignal::new(
        (format::now() - chrono::Duration::days(1))
            .format("%Y-%m-%d")
            .to_string(),
    );
    let r_format = RwSignal::new("pdf".to_string());
    let reports = RwSignal::new(Reports::default());
    let load_reports = move || {
        spawn_local(async move {
            if let Ok(r) = client::reports::list().await {
                reports.set(r);
            }
        })
    };
    load_reports();
    let job = RwSignal::new(None::<ReportJob>);
    let start = move |_| {
        let Ok(d) = chrono::NaiveDate::parse_from_str(&r_date.get_untracked(), "%Y-%m-%d") else {
            ops.toast(i18n.tr("report-bad-date"), true);
            return;
        };
        let req = ReportRequest {
            domain: Domain::parse(&r_domain.get_untracked()),
            period: Period::parse(&r_period.get_untracked()).unwrap_or(Period::Day),
            date: d,
            unit: None,
            format: ReportFormat::parse(&r_format.get_untracked()).unwrap_or(ReportFormat::Pdf),
        };
        spawn_local(async move {
            match client::reports::start(&req).await {
                Ok(j) => job.set(Some(j)),
                Err(e) => ops.toast(e, true),
            }
        });
    };
    // While one runs: how far it is, twice a second.
    if let Ok(h) = set_interval_with_handle(
        move || {
            let Some(j) = job
                .get_untracked()
                .filter(|j| j.state == ReportState::Running)
            else {
                return;
            };
            spawn_local(async move {
                if let Ok(n) = client::reports::get(j.id).await {
                    if n.state != ReportState::Running {
                        load_reports();
                    }
                    job.set(Some(n));
                }
            });
        },
        Duration::from_millis(500),
    ) {
        on_cleanup(move || h.clear());
    }

    let tz = move || settings.timezone.get();
    view! {
        <section class="page kpis-page" id="kpis-page">
            <header class="page-head">
                <h1>{move || i18n.tr("kpi-title")}</h1>
                <div class="page-actions">
                    <button class="btn" id="kpi-new" on:click=move |_| edit(true)>{move || i18n.tr("kpi-add")}</button>
                </div>
            </header>
            <div class="kpi-layout">
                <table class="grid" id="kpi-table">
                    <thead><tr>
                        <th>{move || i18n.tr("kpi-name")}</th>
                        <th class="num">{move || i18n.tr("kpi-value")}</th>
                        <th class="num">{move || i18n.tr("kpi-target-col")}</th>
                        <th>{move || i18n.tr("kpi-status")}</th>
                    </tr></thead>
                    <tbody>
                        <For each=move || live.kpis.get() key=|k| (k.id.clone(), k.value.map(|v| v.to_bits()), k.status.as_str()) children=move |k| {
                            let id = k.id.clone();
                            let st = crate::components::panels::shown_status(&k);
                            let is = { let id = id.clone(); move || chosen.get().as_deref() == Some(id.as_str()) };
                            let kk = k.clone();
                            view! {
                                <tr class="clickable" class:chosen=is data-kpi=id.clone() on:click=move |_| { unit.set(None); chosen.set(Some(id.clone())); }>
                                    <td>{move || kpi_name(&kk, en())}<div class="muted">{move || if k.domain == Domain::Other { i18n.tr("kpi-domain-other") } else { i18n.tr_or(&format!("domain-{}", k.domain.as_str()), k.domain.as_str()) }}" · "{move || i18n.tr(&format!("period-{}", k.period.as_str()))}</div></td>
                                    <td class="num strong">{value_text(k.value, &k.uom)}</td>
                                    <td class="num">{value_text(Some(k.target), &k.uom)}</td>
                                    <td><span class=format!("kpi-dot status-{st}")></span>{move || i18n.tr(&format!("kpi-status-{st}"))}</td>
                                </tr>
                            }
                        }/>
                    </tbody>
                </table>
                <div class="kpi-page" id="kpi-page">
                    {move || value.get().filter(|v| chosen.get().as_deref() == Some(v.id.as_str())).map(|v| {
                        let st = crate::components::panels::shown_status(&v);
                        let lang = i18n.lang.get();
                        let when = format!("{} – {}", format::date_time(v.from, &tz(), lang), format::date_time(v.to, &tz(), lang));
                        view! {
                            <div class="kpi-head">
                                <h2>{kpi_name(&v, en())}</h2>
                                <div class="kpi-big"><span class=format!("kpi-value status-{st}") id="kpi-value">{value_text(v.value, &v.uom)}</span>
                                    <span class="muted">{i18n.tr_n("kpi-target", "target", value_text(Some(v.target), &v.uom))}</span></div>
                                <div class="muted">{when}{unit.get().map(|u| format!(" · {u}"))}</div>
                                {(st == "empty" || st == "none").then(|| view! { <div class="muted" id="kpi-state">{i18n.tr(if st == "empty" { "kpi-empty" } else { "kpi-no-data" })}</div> })}
                                {v.owner.clone().map(|o| view! { <div class="muted">{i18n.tr("kpi-owner")}": "{o}</div> })}
                            </div>
                        }
                    })}
                    <div class="row controls">
                        <select id="kpi-period" prop:value=period on:change=move |e| period.set(event_target_value(&e))>
                            <option value="">{move || i18n.tr("kpi-current")}</option>
                            <option value="day">{move || i18n.tr("dash-day")}</option>
                            <option value="week">{move || i18n.tr("dash-week")}</option>
                            <option value="month">{move || i18n.tr("dash-month")}</option>
                        </select>
                        <Show when=move || !period.get().is_empty()>
                            <input type="date" id="kpi-date" prop:value=date on:change=move |e| date.set(event_target_value(&e))/>
                        </Show>
                        <select id="kpi-range" on:change=move |e| range_days.set(event_target_value(&e).parse().unwrap_or(30))>
                            <option value="7">{move || i18n.tr_n("kpi-last-days", "days", 7)}</option>
                            <option value="30" selected>{move || i18n.tr_n("kpi-last-days", "days", 30)}</option>
                            <option value="365">{move || i18n.tr_n("kpi-last-days", "days", 365)}</option>
                        </select>
                        <Show when=move || unit.get().is_some()>
                            <button class="btn small" on:click=move |_| unit.set(None)>{move || i18n.tr("kpi-whole-province")}</button>
                        </Show>
                        <button class="btn small" id="kpi-edit" on:click=move |_| edit(false)>{move || i18n.tr("kpi-definition")}</button>
                    </div>
                    <div class="chart" id="kpi-trend" inner_html=move || {
                        let Some(s) = series.get() else { return String::new() };
                        let (tz, lang, p) = (tz(), i18n.lang.get(), s.period);
                        let pts: Vec<(f64, Option<f64>, &str)> = s.points.iter().map(|x| (x.from.timestamp_millis() as f64, x.value, x.status.as_str())).collect();
                        let label = move |t: f64| {
                            let d = chrono::DateTime::from_timestamp_millis(t as i64).unwrap_or_default();
                            if p == Period::Hour { format::hm(d, &tz, lang) } else { format::day_month(d, &tz, lang) }
                        };
                        chart::kpi(&pts, s.target, s.uom.is_empty(), &label, (720, 220), false)
                    }></div>
                    <h3>{move || i18n.tr("kpi-ranking")}</h3>
                    <ol class="ranking" id="kpi-ranking">
                        {move || value.get().map(|v| {
                            let max = v.by_unit.iter().filter_map(|u| u.value).fold(v.target, f64::max).max(1e-9);
                            v.by_unit.iter().map(|u| {
                                let w = u.value.map(|x| (x / max * 100.0).clamp(0.0, 100.0)).unwrap_or(0.0);
                                let code = u.unit.clone();
                                view! {
                                    <li class=format!("clickable status-{}", u.status.as_str()) data-unit=u.unit.clone() on:click=move |_| unit.set(Some(code.clone()))>
                                        <span class="rank-name">{u.unit_name.clone()}</span>
                                        <span class="rank-bar"><i style=format!("width:{w:.1}%")></i></span>
                                        <span class="rank-value">{value_text(u.value, &v.uom)}</span>
                                    </li>
                                }
                            }).collect_view()
                        })}
                    </ol>
                    <h3>{move || i18n.tr("kpi-behind")}</h3>
                    <table class="grid" id="kpi-items">
                        <thead><tr><th></th><th>{move || i18n.tr("kpi-item")}</th><th>{move || i18n.tr("unit")}</th><th class="num">{move || i18n.tr("kpi-value")}</th></tr></thead>
                        <tbody>
                            {move || items.get().into_iter().take(200).map(|it| view! {
                                <tr data-item=it.id.clone() class:counted=it.counted>
                                    <td>{if it.counted { "✓" } else { "✗" }}</td>
                                    <td>{it.name.clone()}<div class="muted">{it.kind.clone()}" "{it.id.clone()}</div></td>
                                    <td>{it.unit_name.clone().unwrap_or_default()}</td>
                                    <td class="num">{it.value.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <Show when=move || editing.get().is_some()>
                        <div class="rule-editor" id="kpi-editor">
                            <Show when=move || provinces.get()>
                                <p class="muted" id="kpi-province">{move || i18n.tr("kpi-province")}</p>
                            </Show>
                            <textarea class="toml" id="kpi-text" rows="18" spellcheck="false"
                                prop:readOnly=move || !editing.get().is_some_and(|e| e.1)
                                prop:value=move || text.get()
                                on:input=move |e| { text.set(event_target_value(&e)); validate(); }></textarea>
                            <div class="rule-check" id="kpi-check">{move || match check.get() {
                                None => view! { <span class="muted">{i18n.tr("rule-checking")}</span> }.into_any(),
                                Some(c) if c.ok => view! { <span class="ok">{i18n.tr("kpi-valid")}</span> }.into_any(),
                                Some(c) => view! { <ul class="error">{c.problems.into_iter().map(|p| view! { <li>{format!("{}:{} — {}", p.line, p.column, p.message)}</li> }).collect_view()}</ul> }.into_any(),
                            }}</div>
                            <div class="page-actions">
                                <Show when=move || editing.get().is_some_and(|e| e.1)>
                                    <button class="btn primary" id="kpi-save" prop:disabled=move || !check.get().is_some_and(|c| c.ok) on:click=save>{move || i18n.tr("rule-save")}</button>
                                </Show>
                                <button class="btn" on:click=move |_| editing.set(None)>{move || i18n.tr("src-cancel")}</button>
                            </div>
                        </div>
                    </Show>
                </div>
            </div>
            <h2>{move || i18n.tr("report-title")}</h2>
            <form class="form report-form" id="report-form" on:submit=move |e| { e.prevent_default(); }>
                <div class="row">
                    <label>{move || i18n.tr("report-domain")}
                        <select id="report-domain" prop:value=r_domain on:change=move |e| r_domain.set(event_target_value(&e))>
                            <option value="">{move || i18n.tr("report-all-domains")}</option>
                            {[Domain::Environment, Domain::Water, Domain::Traffic, Domain::Safety, Domain::Other].into_iter().map(|d| view! {
                                <option value=d.as_str()>{move || if d == Domain::Other { i18n.tr("kpi-domain-other") } else { i18n.tr_or(&format!("domain-{}", d.as_str()), d.as_str()) }}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>{move || i18n.tr("report-period")}
                        <select id="report-period" prop:value=r_period on:change=move |e| r_period.set(event_target_value(&e))>
                            <option value="day">{move || i18n.tr("period-day")}</option>
                            <option value="week">{move || i18n.tr("period-week")}</option>
                            <option value="month">{move || i18n.tr("period-month")}</option>
                        </select>
                    </label>
                    <label>{move || i18n.tr("report-date")}<input type="date" id="report-date" prop:value=r_date on:change=move |e| r_date.set(event_target_value(&e))/></label>
                    <label>{move || i18n.tr("report-format")}
                        <select id="report-format" prop:value=r_format on:change=move |e| r_format.set(event_target_value(&e))>
                            <option value="pdf">"PDF"</option><option value="csv">"CSV"</option><option value="xlsx">"XLSX"</option>
                        </select>
                    </label>
                    <button class="btn primary" type="button" id="report-start" on:click=start>{move || i18n.tr("report-make")}</button>
                </div>
                {move || job.get().map(|j| {
                    let done = j.state == ReportState::Done;
                    let href = client::reports::file_url(j.id);
                    view! {
                        <div class="report-progress" id="report-progress" data-state=format!("{:?}", j.state).to_lowercase()>
                            <span class="progress wide"><i style=format!("width:{}%", j.progress)></i></span>
                            " "{j.progress}" % · "{stage_text(i18n, &j.stage)}
                            {j.error.clone().map(|e| view! { <span class="error">" "{e}</span> })}
                            {done.then(|| view! { " " <a class="btn small primary" id="report-download" href=href>{i18n.tr("report-download")}" "{j.file_name.clone().unwrap_or_default()}</a> })}
                        </div>
                    }
                })}
            </form>
            <ul class="report-files" id="report-files">
                {move || reports.get().files.into_iter().take(30).map(|f| {
                    let href = client::reports::folder_file_url(&f.name);
                    view! { <li><a href=href>{f.name.clone()}</a><span class="muted">{format!(" · {} kB", f.size.div_ceil(1024))}</span></li> }
                }).collect_view()}
                {move || reports.get().jobs.into_iter().filter(|j| j.state == ReportState::Failed).take(5).map(|j| view! {
                    <li class="error">{format!("#{} {}: {}", j.id, j.by, j.error.unwrap_or_default())}</li>
                }).collect_view()}
            </ul>
        </section>
    }
}

/// What a report job is doing, in the reader's language (`KPI <id>` names the KPI).
fn stage_text(i18n: crate::i18n::I18n, stage: &str) -> String {
    match stage {
        "start" | "alerts" | "incidents" | "render" | "save" | "done" => {
            i18n.tr(&format!("report-stage-{stage}"))
        }
        other => other.to_string(),
    }
}
