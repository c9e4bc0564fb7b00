//! Title, clock, feed status (with a "data stale since …" warning), alert counts, language.

use super::app::Now;
use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Conn, Live, Selection, Settings, View};
use chrono::DateTime;
use ioc_model::{AlertState, Severity};
use leptos::prelude::*;

#[component]
pub fn TopBar() -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let sel = expect_context::<Selection>();
    let settings = expect_context::<Settings>();
    let now = expect_context::<Now>();
    let me = expect_context::<super::login::Session>();

    let clock = move || format::time(now.0.get(), &settings.timezone.get(), i18n.lang.get());
    let stale = move || {
        now.0.track();
        live.conn.get() != Conn::Live || format::now_ms() - live.last_message.get() > 15_000.0
    };
    let status_text = move || {
        let tz = settings.timezone.get();
        let lang = i18n.lang.get();
        if stale() {
            let since = live.last_message.get();
            if since > 0.0 {
                let t = DateTime::from_timestamp_millis(since as i64).unwrap_or_default();
                let mut args = fluent_bundle::FluentArgs::new();
                args.set("time", format::time(t, &tz, lang));
                crate::i18n::translate(lang, "data-stale", Some(&args))
            } else {
                i18n.tr("conn-connecting")
            }
        } else {
            i18n.tr("conn-live")
        }
    };
    // Totals, whatever the queue's filters let through (silenced alerts are held back).
    let count = move |sev: Severity| {
        live.alerts.with(|m| {
            m.values()
                .filter(|a| a.severity == sev && a.silenced.is_none())
                .count()
        })
    };
    let new_count = move || {
        live.alerts.with(|m| {
            m.values()
                .filter(|a| a.state == AlertState::New && a.silenced.is_none())
                .count()
        })
    };
    let late_directives = move || {
        now.0.track();
        let t = format::now();
        live.directives
            .with(|m| m.values().filter(|d| d.overdue || d.late_at(t)).count())
    };

    view! {
        <header class="topbar">
            <div class="brand">
                <span class="logo" aria-hidden="true">"◉"</span>
                <div>
                    <div class="title" title=move || i18n.tr("app-title")>{move || i18n.tr("app-short")}</div>
                    <div class="subtitle">
                        {move || i18n.tr_n("entities-count", "count", live.entities.with(|e| e.len()))}
                    </div>
                </div>
            </div>
            <div class="counts">
                <span class="count critical" title=move || i18n.tr("sev-critical")>
                    {move || count(Severity::Critical)}
                </span>
                <span class="count major" title=move || i18n.tr("sev-major")>
                    {move || count(Severity::Major)}
                </span>
                <span class="count warning" title=move || i18n.tr("sev-warning")>
                    {move || count(Severity::Warning)}
                </span>
                <span class="count new">{move || i18n.tr_n("queue-new", "count", new_count())}</span>
            </div>
            <nav class="views">
                {View::ALL
                    .into_iter()
                    .map(|(v, key, k)| {
                        view! {
                            <button
                                class="view-tab"
                                class:active=move || sel.view.get() == v
                                title=k
                                on:click=move |_| sel.view.set(v)
                            >
                                {move || i18n.tr(key)}
                                {(v == View::Incidents).then(|| view! {
                                    <Show when=move || { live.incidents.with(|m| !m.is_empty()) }>
                                        <span class="tab-count" id="tab-incidents">{move || live.incidents.with(|m| m.len())}</span>
                                    </Show>
                                })}
                                {(v == View::Directives).then(|| view! {
                                    <Show when=move || { late_directives() > 0 }>
                                        <span class="tab-count late" id="tab-directives-late">{late_directives}</span>
                                    </Show>
                                })}
                            </button>
                        }
                    })
                    .collect_view()}
            </nav>
            <div class="spacer"></div>
            <div class="feed" class:stale=stale id="feed-status">
                <i class="pulse"></i>
                {status_text}
            </div>
            <div class="clock">{clock}</div>
            <button class="lang" on:click=move |_| i18n.toggle() title="L">
                {move || i18n.tr("lang-switch")}
            </button>
            {move || {
                me.0.get().filter(|m| m.sign_in_required).map(|m| {
                    let role = format!("role-{}", m.user.role.as_str());
                    view! {
                        <div class="user" id="user-chip">
                            <span class="user-name" title=m.user.display_name.clone()>{m.user.display_name.clone()}</span>
                            <span class="user-role">{move || i18n.tr(&role)}</span>
                            <button class="link" id="sign-out" on:click=move |_| super::login::sign_out()>
                                {move || i18n.tr("sign-out")}
                            </button>
                        </div>
                    }
                })
            }}
            <button class="help-btn" on:click=move |_| sel.help.update(|h| *h = !*h) title="?">
                "?"
            </button>
        </header>
    }
}
