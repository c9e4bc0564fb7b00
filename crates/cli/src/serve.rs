//! `ioc serve`.

use crate::Common;
use clap::Args;
use ioc_engine::Engine;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Run without the built-in Nghệ An simulator.
    #[arg(long)]
    no_demo: bool,
    /// For `ioc bench soak`: the engine's clock runs this many times faster than the wall
    /// clock from `--clock-epoch` (ms since 1970) on.
    #[arg(long, hide = true, requires = "clock_epoch")]
    clock_speed: Option<f64>,
    #[arg(long, hide = true)]
    clock_epoch: Option<i64>,
    #[command(flatten)]
    common: Common,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.common.load()?;
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if args.no_demo {
        config = config.without_demo();
    }
    let listen = config.server.listen;
    if !listen.ip().is_loopback() && !any_account(&config)? {
        anyhow::bail!(
            "refusing to listen on {listen}: no user account exists, so anyone on the network \
             could operate the console. Add one first (`ioc user add NAME --role admin \
             --password-stdin`), or listen on 127.0.0.1"
        );
    }
    // A request must name this server by a host it knows (DNS rebinding): the address it
    // listens on is one; on every address, the names must be configured.
    if !listen.ip().is_loopback() {
        if listen.ip().is_unspecified() {
            if config.server.hosts.is_empty() {
                tracing::warn!(
                    "listening on {listen} but [server] hosts is empty: only requests for \
                     localhost/127.0.0.1 are answered; add the names and addresses people use"
                );
            }
        } else {
            let ip = match listen.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            config.server.hosts.push(ip);
        }
    }
    let listener = ioc_server::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let clock: Arc<dyn ioc_engine::clock::Clock> = match (args.clock_speed, args.clock_epoch) {
        (Some(speed), Some(epoch)) => Arc::new(ioc_engine::clock::ScaledClock {
            epoch: chrono::DateTime::from_timestamp_millis(epoch)
                .ok_or_else(|| anyhow::anyhow!("--clock-epoch {epoch} is out of range"))?,
            speed,
        }),
        _ => Arc::new(ioc_engine::clock::SystemClock),
    };
    let engine = Arc::new(Engine::start_with_clock(config, clock).await?);
    let addr = listener.local_addr()?;
    engine.announce(&format!("http://{addr}"));
    // Tests and scripts read this line to find the port (server.json is written by then).
    println!("IOC Console listening on http://{addr}");
    tracing::info!("data in {}", engine.data_dir().display());
    ioc_server::serve(engine.clone(), listener, shutdown_signal()).await?;
    tracing::info!("stopping: committing what was accepted");
    engine.shutdown().await;
    Ok(())
}

/// Whether the data folder has any user account (checked before listening anywhere).
fn any_account(config: &ioc_engine::Config) -> anyhow::Result<bool> {
    let db = ioc_engine::store::open_configured(&config.store, &config.data_dir())?;
    let conn = ioc_engine::store::connect_path(&db)?;
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users)",
        ioc_engine::store::db::params![],
        |r| r.get(0),
    )?)
}

pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
