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
    let addr = listener.local_addr()?;
    // Signals are listened to once, for the whole run: one that comes while a standby turns
    // active (between the two servers) still stops it.
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.cancel();
        }
    });
    // On PostgreSQL several nodes share the store: one runs the pipeline (it holds the
    // lease), the others stand by on their socket, forwarding to it, until it goes.
    let (lease, listener) = match &config.store.url {
        Some(_) => {
            let (store, data_dir) = (config.store.clone(), config.data_dir());
            let at = tokio::task::spawn_blocking(move || {
                ioc_engine::store::open_configured(&store, &data_dir)
            })
            .await??;
            let advertise = match &config.server.advertise {
                Some(url) => url.trim_end_matches('/').to_string(),
                None if addr.ip().is_unspecified() => anyhow::bail!(
                    "listening on {addr} on a shared PostgreSQL store: say where the other \
                     nodes reach this one with [server] advertise = \"http://ADDRESS:{}\"",
                    addr.port()
                ),
                None => format!("http://{addr}"),
            };
            // Tests and scripts read this line to find the port, standby or not.
            println!("IOC Console listening on http://{addr}");
            let (lease, listener) = ioc_server::standby::stand_by(
                listener,
                at,
                advertise,
                &config.server.hosts,
                stop.clone().cancelled_owned(),
            )
            .await?;
            let Some(lease) = lease else {
                tracing::info!("stopped while standing by");
                return Ok(());
            };
            tracing::info!("this node holds the lease: starting the pipeline");
            (Some(lease), listener)
        }
        None => (None, listener),
    };
    let on_postgres = lease.is_some();
    let engine = Arc::new(Engine::start_leased(config, clock, lease).await?);
    engine.announce(&format!("http://{addr}"));
    if !on_postgres {
        // Tests and scripts read this line to find the port (server.json is written by then).
        println!("IOC Console listening on http://{addr}");
    }
    tracing::info!("data in {}", engine.data_dir().display());
    let lost = {
        let engine = engine.clone();
        async move {
            while !engine.lease_lost() {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    };
    tokio::select! {
        served = ioc_server::serve(engine.clone(), listener, stop.cancelled_owned()) => served?,
        _ = lost => {
            // Another node may run the pipeline already: nothing more may be written from
            // here, not even what is queued (it was not acknowledged, so its sources send
            // it again). The service manager starts this node again, as a standby.
            tracing::error!(
                "lost the store's lease (the connection to PostgreSQL that held it is gone): \
                 stopping at once so that one node runs the pipeline"
            );
            eprintln!("ioc serve: lost the store's lease; stopping");
            std::process::exit(75);
        }
    }
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
