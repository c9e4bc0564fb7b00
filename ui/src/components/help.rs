//! The keyboard help overlay (`?`).

use crate::i18n::use_i18n;
use crate::state::Selection;
use leptos::prelude::*;

#[component]
pub fn HelpOverlay() -> impl IntoView {
    let i18n = use_i18n();
    let sel = expect_context::<Selection>();
    let keys = [
        ("j / ↓", "help-next"),
        ("k / ↑", "help-prev"),
        ("a", "help-ack"),
        ("g", "help-assign"),
        ("w", "help-start"),
        ("c", "help-comment"),
        ("r", "help-resolve"),
        ("x", "help-close-alert"),
        ("z", "help-shelve"),
        ("i", "help-incident"),
        ("s", "help-silence"),
        ("v", "help-clip"),
        ("Enter", "help-open"),
        ("Esc", "help-close"),
        ("h", "help-map"),
        ("l", "help-lang"),
        ("1 … 8", "help-views"),
        ("5", "help-incident-keys"),
        ("6", "help-directive-keys"),
        ("/", "help-search"),
        ("m", "help-mute"),
        ("?", "help-help"),
    ];
    view! {
        <Show when=move || sel.help.get()>
            <div class="overlay" on:click=move |_| sel.help.set(false)>
                <div class="help" role="dialog" on:click=|e| e.stop_propagation()>
                    <h2>{move || i18n.tr("help-title")}</h2>
                    <table>
                        {keys
                            .into_iter()
                            .map(|(k, label)| {
                                view! {
                                    <tr>
                                        <td><kbd>{k}</kbd></td>
                                        <td>{move || i18n.tr(label)}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </table>
                </div>
            </div>
        </Show>
    }
}
