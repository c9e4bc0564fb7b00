//! `ioc bench …`: throughput next to a baseline measured in the same run.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Observations through decode → store → rules → hub, next to plain batched inserts.
    Ingest {
        /// Number of observations.
        #[arg(short, default_value_t = 500_000)]
        n: usize,
        /// Scratch folder (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Ingest { n, dir } => {
            let tmp;
            let dir = match dir {
                Some(d) => d,
                None => {
                    tmp = tempfile::tempdir()?;
                    tmp.path().to_owned()
                }
            };
            let r = ioc_engine::bench::ingest(&dir, n).await?;
            println!("observations: {}", r.observations);
            println!(
                "pipeline: {:.0} obs/s, p50 {:.1} ms, p99 {:.1} ms",
                r.obs_per_s, r.p50_ms, r.p99_ms
            );
            println!(
                "baseline (batched rusqlite inserts, same rows): {:.0} rows/s",
                r.baseline_rows_per_s
            );
            println!("{}", r.summary());
            Ok(())
        }
    }
}
