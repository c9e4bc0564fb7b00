//! What the server's integration tests share: an engine on a fresh folder, served on a free
//! loopback port until the test ends.

#![allow(dead_code)] // each test file uses its part

use ioc_engine::{Config, Engine};
use std::net::SocketAddr;
use std::sync::Arc;

/// Serves `engine` on a free loopback port.
pub async fn serve(engine: Arc<Engine>) -> SocketAddr {
    let listener = ioc_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ioc_server::serve(engine, listener, std::future::pending()));
    addr
}

/// An engine without the demo data on a fresh folder, `tweak`ed, and served.
pub async fn start_with(
    tweak: impl FnOnce(&mut Config),
) -> (tempfile::TempDir, Arc<Engine>, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default().without_demo();
    config.paths.data = Some(dir.path().to_owned());
    tweak(&mut config);
    let engine = Arc::new(Engine::start(config).await.unwrap());
    let addr = serve(engine.clone()).await;
    (dir, engine, addr)
}

/// An engine without the demo data on a fresh folder, served.
pub async fn start() -> (tempfile::TempDir, Arc<Engine>, SocketAddr) {
    start_with(|_| {}).await
}
