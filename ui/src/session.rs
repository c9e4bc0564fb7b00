//! The sign-in session lives in an `HttpOnly` cookie that the server sets at sign-in (and
//! the desktop app's one-time ticket): the browser sends it with every request and the
//! feed's upgrade, and no script of the page (not even an injected one) can read it. What
//! the UI keeps here is only what to do when the server says the session is gone.

use std::cell::RefCell;

/// What to do when an action was kept to send later.
type OnQueued = Box<dyn Fn(u64)>;

thread_local! {
    static ON_SIGNED_OUT: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
    static ON_QUEUED: RefCell<Option<OnQueued>> = const { RefCell::new(None) };
}

/// What to do when a workstation kept an action to send when the IOC is back (`202`), with
/// how many wait.
pub fn on_queued(f: impl Fn(u64) + 'static) {
    ON_QUEUED.with(|c| *c.borrow_mut() = Some(Box::new(f)));
}

pub(crate) fn queued(waiting: u64) {
    ON_QUEUED.with(|c| {
        if let Some(f) = c.borrow().as_ref() {
            f(waiting)
        }
    });
}

/// Forgets a token an older version kept in local storage.
pub fn init() {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.remove_item("ioc.token");
    }
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
