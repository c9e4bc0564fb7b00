//! The IOC Console user interface: Leptos compiled to WebAssembly. It reaches data only
//! through the server's HTTP API ([`client`], over [`api`]) and WebSocket feed ([`feed`]), so
//! the very same build runs in the desktop window, in a browser and on a video wall.

mod api;
mod attention;
mod chart;
mod client;
mod components;
mod feed;
mod format;
mod i18n;
mod map;
mod session;
mod state;
mod still;
mod video;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    feed::mark("ioc-wasm-start");
    session::init();
    leptos::mount::mount_to_body(components::login::Root);
}
