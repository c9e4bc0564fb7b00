//! The root: asks the server who is signed in (`/api/me`); shows the sign-in form when a
//! session is needed, else the console. A session that ends (401 anywhere) brings the form
//! back.

use super::app::App;
use crate::api;
use crate::client;
use crate::i18n::{I18n, Lang};
use crate::session;
use ioc_model::{AuthProviders, LoginRequest, Me};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Who is signed in, for the top bar and for offering only what the role may do.
#[derive(Clone, Copy)]
pub struct Session(pub RwSignal<Option<Me>>);

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Checking,
    SignIn,
    Ready,
    /// The server cannot be reached: the console still starts (it retries on its own).
    Offline,
}

#[component]
pub fn Root() -> impl IntoView {
    let stored_lang = api::local_storage_get("ioc.lang").and_then(|s| Lang::parse(&s));
    let i18n = I18n {
        lang: RwSignal::new(stored_lang.unwrap_or(Lang::Vi)),
    };
    provide_context(i18n);
    let me = Session(RwSignal::new(None));
    provide_context(me);
    let phase = RwSignal::new(Phase::Checking);
    session::on_signed_out(move || {
        if phase.get_untracked() == Phase::Ready
            && me.0.get_untracked().is_some_and(|m| m.sign_in_required)
        {
            phase.set(Phase::SignIn);
        }
    });
    spawn_local(async move {
        match client::auth::me().await {
            Ok(m) => {
                me.0.set(Some(m));
                phase.set(Phase::Ready);
            }
            Err(e) if e.starts_with("401") => {
                phase.set(Phase::SignIn);
            }
            Err(_) => phase.set(Phase::Offline),
        }
    });
    view! {
        {move || match phase.get() {
            Phase::Checking => view! { <div class="splash">"IOC Console"</div> }.into_any(),
            Phase::SignIn => view! { <SignIn/> }.into_any(),
            Phase::Ready | Phase::Offline if super::wall::is_wall() => {
                view! { <super::wall::WallApp/> }.into_any()
            }
            Phase::Ready | Phase::Offline => view! { <App/> }.into_any(),
        }}
    }
}

#[component]
fn SignIn() -> impl IntoView {
    let i18n = expect_context::<I18n>();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    // Back from the province's sign-in page with a refusal (`/?sso_error=…`).
    let sso_error = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|q| web_sys::UrlSearchParams::new_with_str(&q).ok())
        .and_then(|p| p.get("sso_error"));
    let error =
        RwSignal::new(sso_error.map(|r| i18n.tr_with("login-sso-failed", &[("reason", r.into())])));
    let busy = RwSignal::new(false);
    let providers = RwSignal::new(None::<AuthProviders>);
    let server_url = RwSignal::new(String::new());
    let switching = RwSignal::new(false);
    spawn_local(async move {
        if let Ok(p) = client::auth::providers().await {
            server_url.set(p.upstream.clone().unwrap_or_default());
            providers.set(Some(p));
        }
    });
    // The desktop app only: sign in to a provincial IOC as its workstation, or use this
    // computer's own engine. The app remembers the choice and starts again on it.
    let choose = move |url: Option<String>| {
        if switching.get_untracked() {
            return;
        }
        switching.set(true);
        error.set(None);
        spawn_local(async move {
            match client::auth::choose_server(url).await {
                Ok(_) => {} // the app closes and opens again on the new server
                Err(e) => {
                    error.set(Some(e));
                    switching.set(false);
                }
            }
        });
    };
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let body = LoginRequest {
            username: username.get_untracked().trim().to_string(),
            password: password.get_untracked(),
        };
        spawn_local(async move {
            match client::auth::login(&body).await {
                Ok(_) => {
                    // The session is in its cookie now. Start clean: the feed and every
                    // screen with the new session.
                    let _ = web_sys::window().expect("window").location().reload();
                }
                Err(e) => {
                    error.set(Some(if e.starts_with("401") {
                        i18n.tr("login-wrong")
                    } else if e.starts_with("429") {
                        i18n.tr("login-locked")
                    } else {
                        e
                    }));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <div class="login">
            <form class="login-box" on:submit=submit>
                <div class="brand">
                    <span class="logo" aria-hidden="true">"◉"</span>
                    <div class="title">{move || i18n.tr("app-title")}</div>
                </div>
                <h1>{move || i18n.tr("login-title")}</h1>
                {move || providers.get().and_then(|p| p.upstream).map(|url| view! {
                    <div id="login-upstream" class="muted">
                        {move || i18n.tr_with("login-at-ioc", &[("url", url.clone().into())])}
                    </div>
                })}
                {move || providers.get().and_then(|p| p.sso).map(|sso| {
                    let next: String = web_sys::window()
                        .and_then(|w| w.location().pathname().ok())
                        .unwrap_or_else(|| "/".into());
                    let href = client::auth::sso_href(&sso.login, &next);
                    view! {
                        <a id="login-sso" class="btn primary sso" href=href>{sso.label}</a>
                        <div class="login-or muted">{move || i18n.tr("login-or")}</div>
                    }
                })}
                <label>
                    {move || i18n.tr("login-username")}
                    <input id="login-username" type="text" autocomplete="username" autofocus
                        prop:value=username on:input=move |e| username.set(event_target_value(&e))/>
                </label>
                <label>
                    {move || i18n.tr("login-password")}
                    <input id="login-password" type="password" autocomplete="current-password"
                        prop:value=password on:input=move |e| password.set(event_target_value(&e))/>
                </label>
                <Show when=move || error.get().is_some()>
                    <div class="form-error" role="alert">{move || error.get().unwrap_or_default()}</div>
                </Show>
                <button id="login-submit" class="btn primary" type="submit" disabled=move || busy.get()>
                    {move || i18n.tr("login-submit")}
                </button>
                <Show when=move || providers.get().is_some_and(|p| p.desktop)>
                    <details class="login-server" id="login-server">
                        <summary>{move || i18n.tr("server-title")}</summary>
                        <label>
                            {move || i18n.tr("server-ioc-url")}
                            <input id="server-url" type="url" placeholder="https://ioc.nghean.gov.vn"
                                prop:value=server_url on:input=move |e| server_url.set(event_target_value(&e))/>
                        </label>
                        <button id="server-connect" class="btn" type="button" disabled=move || switching.get()
                            on:click=move |_| choose(Some(server_url.get_untracked().trim().to_string()))>
                            {move || i18n.tr("server-connect")}
                        </button>
                        <Show when=move || providers.get().is_some_and(|p| p.upstream.is_some())>
                            <button id="server-local" class="btn" type="button" disabled=move || switching.get()
                                on:click=move |_| choose(None)>
                                {move || i18n.tr("server-local")}
                            </button>
                        </Show>
                        <Show when=move || switching.get()>
                            <div class="muted">{move || i18n.tr("server-switching")}</div>
                        </Show>
                    </details>
                </Show>
                <button class="lang" type="button" on:click=move |_| i18n.toggle()>
                    {move || i18n.tr("lang-switch")}
                </button>
            </form>
        </div>
    }
}

/// Ends the session on the server and shows the sign-in form.
pub fn sign_out() {
    spawn_local(async move {
        let _ = client::auth::logout().await;
        let _ = web_sys::window().expect("window").location().reload();
    });
}
