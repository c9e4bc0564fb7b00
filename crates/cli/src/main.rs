//! `ioc`: the IOC Console engine on the command line.
//!
//! ```text
//! ioc serve [--listen ADDR] [--data DIR] [--config FILE] [--no-demo]
//! ioc workstation --upstream URL [--listen ADDR] [--data DIR]
//! ioc import basemap FILE [--data DIR] [--config FILE]
//! ioc bench ingest [-n N]
//! ioc demo places GEOJSON > assets/demo/nghe-an-communes.csv
//! ioc user add NAME --role ROLE [--unit CODE]... --password-stdin [--data DIR]
//! ioc node add NAME [--units U1,U2] [--data DIR]
//! ioc audit verify [--data DIR]
//! ioc backup [--data DIR] --out FILE
//! ioc restore FILE --data DIR
//! ioc report --domain D --period day|week|month --date YYYY-MM-DD --format pdf|csv|xlsx --out FILE
//! ```

/// glibc's allocator keeps what a burst of clients used long after they left (measured by
/// `ioc bench api`); mimalloc returns it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod backup;
mod bench;
mod bench_api;
mod bench_cluster;
mod bench_desktop;
mod bench_import;
mod bench_map;
mod bench_mqtt;
mod bench_soak;
mod bench_sync;
mod bench_video;
mod demo;
mod import;
mod report;
mod serve;
mod user;
mod workstation;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "ioc", version, about = "IOC Console: engine, server and tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the engine keeps its data and how it is configured.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Data folder (database, imported basemap). Default: the user's data folder.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Configuration file (TOML). Default: built-in defaults (the Nghệ An demo).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The store's database when it is not SQLite in the data folder: PostgreSQL at
    /// postgres://USER@HOST:PORT/DB (its password in PGPASSWORD). Overrides `[store] url`.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

impl Common {
    /// The configuration with command-line overrides applied.
    pub fn load(&self) -> anyhow::Result<ioc_engine::Config> {
        let mut config = ioc_engine::Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data {
            config.paths.data = Some(d.clone());
        }
        if let Some(url) = &self.store {
            config.store.url = Some(url.clone());
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine and serve the API, the live feed and the UI over HTTP.
    Serve(serve::ServeArgs),
    /// A control-room workstation of a provincial IOC: its picture and actions, through
    /// network blips (open the printed address in a browser on this computer).
    Workstation(workstation::WorkstationArgs),
    /// Import data files.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Measure the engine against a baseline on this machine.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Tools for the built-in demo scenario.
    #[command(subcommand)]
    Demo(demo::DemoCommand),
    /// User accounts (the first one switches sign-in on).
    #[command(subcommand)]
    User(user::UserCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(user::AuditCommand),
    /// Federation: the nodes (commune OCs, workstations) that sync with this IOC.
    #[command(subcommand)]
    Node(user::NodeCommand),
    /// A statistical report (PDF, CSV, XLSX) of a domain over a day, week or month.
    Report(report::ReportArgs),
    /// Back up a data folder into one file, while the engine runs on it.
    Backup(backup::BackupArgs),
    /// Restore a backup into a new (or empty) data folder.
    Restore(backup::RestoreArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Imports and benchmarks report what matters themselves; the server logs its life.
    let quiet = matches!(
        cli.command,
        Command::Import(_)
            | Command::Bench(_)
            | Command::User(_)
            | Command::Audit(_)
            | Command::Node(_)
            | Command::Report(_)
            | Command::Backup(_)
            | Command::Restore(_)
    );
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| if quiet { "error" } else { "info" }.into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Workstation(a) => workstation::run(a).await,
            Command::Import(c) => import::run(c).await,
            Command::Bench(c) => bench::run(c).await,
            Command::Demo(c) => demo::run(c),
            Command::User(c) => user::run_user(c),
            Command::Audit(c) => user::run_audit(c),
            Command::Node(c) => user::run_node(c),
            Command::Report(a) => report::run(a),
            Command::Backup(a) => backup::run_backup(a),
            Command::Restore(a) => backup::run_restore(a),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
