//! `ioc workstation --upstream URL`: a control-room workstation without the desktop window
//! (a browser on this computer opens it), the same gateway `ioc-desktop --upstream` runs.

use crate::Common;
use clap::Args;
use std::net::SocketAddr;

#[derive(Args)]
pub struct WorkstationArgs {
    /// The provincial IOC's address (`https://ioc.example.vn`).
    #[arg(long, value_name = "URL")]
    upstream: String,
    /// Address to listen on; loopback only (default 127.0.0.1:8090; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    common: Common,
}

pub async fn run(args: WorkstationArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8090)));
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "a workstation serves the windows of this computer only: listen on 127.0.0.1, \
             not {listen} (the IOC itself is `ioc serve`)"
        );
    }
    let opts = ioc_server::workstation::Options {
        upstream: args.upstream,
        data: config.data_dir().join("workstation"),
        ui_dir: config.server.ui_dir.clone(),
        hosts: vec![],
    };
    let listener = ioc_server::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let upstream = opts.upstream.clone();
    let data = opts.data.clone();
    let stop = crate::serve::shutdown_signal();
    let served = ioc_server::workstation::serve(opts, listener, stop, None);
    // Tests and scripts read this line to find the port.
    println!("IOC Console workstation listening on http://{addr} (IOC: {upstream})");
    tracing::info!("queue of actions in {}", data.display());
    served.await
}
