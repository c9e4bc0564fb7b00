//! The sign-in session: a token kept in the browser's local storage, sent as
//! `Authorization: Bearer` to the API and as `?token=` to the feed. The desktop app hands
//! its window a token in the address's fragment (`#token=…`), taken from there at start.

use std::cell::RefCell;

const KEY: &str = "ioc.token";

thread_local! {
    static TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
    static ON_SIGNED_OUT: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Takes a token from the fragment (then removes it from the address), else from storage.
pub fn init() {
    let window = web_sys::window().expect("window");
    let hash = window.location().hash().unwrap_or_default();
    let from_fragment = hash
        .strip_prefix("#token=")
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    if let Some(t) = &from_fragment {
        crate::api::local_storage_set(KEY, t);
        if let Ok(h) = window.history() {
            let path = window.location().pathname().unwrap_or_else(|_| "/".into());
            let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
        }
    }
    let t = from_fragment.or_else(|| crate::api::local_storage_get(KEY));
    TOKEN.with(|c| *c.borrow_mut() = t.filter(|t| !t.is_empty()));
}

pub fn token() -> Option<String> {
    TOKEN.with(|c| c.borrow().clone())
}

pub fn set(token: &str) {
    crate::api::local_storage_set(KEY, token);
    TOKEN.with(|c| *c.borrow_mut() = Some(token.to_string()));
}

pub fn clear() {
    crate::api::local_storage_set(KEY, "");
    TOKEN.with(|c| *c.borrow_mut() = None);
}

/// What to do when the server says the session is gone (401).
pub fn on_signed_out(f: impl Fn() + 'static) {
    ON_SIGNED_OUT.with(|c| *c.borrow_mut() = Some(Box::new(f)));
}

pub(crate) fn signed_out() {
    ON_SIGNED_OUT.with(|c| {
        if let Some(f) = c.borrow().as_ref() {
            f()
        }
    });
}
