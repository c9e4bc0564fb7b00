//! The link to the provincial IOC, on every screen and the wall of a node that has one:
//! connected, catching up (how much), or offline since when with what waits to be sent. It
//! comes on the feed the moment the engine's link changes, so it never says connected for
//! longer than the engine believes it.

use crate::format;
use crate::i18n::use_i18n;
use crate::state::{Live, Settings};
use ioc_model::LinkState;
use leptos::prelude::*;

#[component]
pub fn LinkBanner() -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let settings = expect_context::<Settings>();
    // Always there (empty without an upstream), so the console's grid keeps its rows.
    let banner = move || {
        live.link.get().map(|l| {
            let (class, text) = match l.state {
                LinkState::Connected => ("link-banner connected", i18n.tr("link-connected")),
                LinkState::CatchingUp => (
                    "link-banner catching-up",
                    i18n.tr_with(
                        "link-catching-up",
                        &[("ops", l.backlog.into()), ("data", l.data_backlog.into())],
                    ),
                ),
                LinkState::Offline => (
                    "link-banner offline",
                    i18n.tr_with(
                        "link-offline",
                        &[
                            (
                                "since",
                                format::hm(l.since, &settings.timezone.get(), i18n.lang.get())
                                    .into(),
                            ),
                            ("ops", l.backlog.into()),
                        ],
                    ),
                ),
            };
            let title = l.error.clone().unwrap_or_else(|| l.url.clone());
            view! {
                <div class=class id="link-banner" role=(l.state == LinkState::Offline).then_some("alert")
                    data-state=serde_json::to_value(l.state).ok().and_then(|v| v.as_str().map(str::to_string)) title=title>
                    {text}
                </div>
            }
        })
    };
    view! { <div class="link-slot">{banner}</div> }
}
